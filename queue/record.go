package queue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"
	"unicode/utf8"
)

// A record is the unit the queue writes to go-diskqueue. It packs many
// entries so that one Put (a goroutine round trip plus one write(2)) carries
// many messages:
//
//	[version: 1 byte = RecordVersion]
//	[crc32c of everything after it: 4 bytes, big endian]
//	[uvarint record sequence number]            (version 3 only)
//	[uvarint entry count, at least 1]
//	entry*: [uvarint receive time, unix nanoseconds; 0 is the zero time]
//	        [uvarint epoch][uvarint sequence]   (version 2 only)
//	        [1 byte length][listener]
//	        [1 byte length][source]
//	        [uvarint length][data]
//
// go-diskqueue has no checksums of its own and delivers flipped bytes
// silently, so every record carries a CRC32C (Castagnoli, which the CPU
// computes in hardware on amd64 and arm64).
//
// The record sequence number is the queue's own count of records put,
// increasing in the order they enter go-diskqueue; 0 means none. After a
// crash it tells which records read again from go-diskqueue were taken
// before (see journal.go). It is not the relay's per-message sequence
// number: a message's Epoch and Seq are stamped by the router, concurrently
// for several listeners, and do not rise in queue order.

// RecordVersion is the first byte of every record this package writes.
// Version 1 records, without epoch and sequence, and version 2 records,
// without a record sequence number, are still read.
const RecordVersion = 3

const (
	// MaxNameLen is the longest listener or source name a record keeps;
	// longer names are truncated.
	MaxNameLen = 255

	// MaxDataLen is the largest message Append accepts. It bounds the size of
	// a record (and so the maxMsgSize given to go-diskqueue) and keeps one
	// absurd message from making the reader allocate without limit.
	MaxDataLen = 16 << 20

	// maxEntryLen is the largest encoded entry.
	maxEntryLen = binary.MaxVarintLen64 + 1 + MaxNameLen + 1 + MaxNameLen + binary.MaxVarintLen64 + MaxDataLen

	// maxBatchBytes caps Options.BatchBytes. A record is flushed as soon as it
	// reaches BatchBytes, so no record grows beyond maxBatchBytes plus one
	// entry.
	maxBatchBytes = 16 << 20

	// headerRoom is the space RecordBuilder keeps in front of the entries for
	// the version, the checksum, the record sequence number and the count,
	// which are known only when the record is finished.
	headerRoom = 1 + 4 + 2*binary.MaxVarintLen64

	// maxRecordLen is the largest record this package writes or reads.
	maxRecordLen = headerRoom + maxBatchBytes + maxEntryLen

	// minEntryLen is the smallest encoded entry: a one-byte time, two empty
	// names and an empty message. The decoder uses it to reject a count the
	// record cannot possibly hold before it allocates for it.
	minEntryLen = 4

	// minRecordLen is the smallest encoded record of any version: version,
	// CRC, a one-byte count and one entry (version 3 adds at least one byte
	// of record sequence number).
	minRecordLen = 1 + 4 + 1 + minEntryLen
)

// castagnoli is the CRC32C table shared by records and the journal.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorruptRecord is wrapped by every error DecodeRecord returns.
var ErrCorruptRecord = errors.New("corrupt record")

// AppendEntry appends the encoding of e (without any record header) to dst
// and returns the extended slice. Listener and Source are truncated to
// MaxNameLen bytes at a UTF-8 boundary. A Received time equal to the Unix
// epoch is stored as 0 and so reads back as the zero time.
func AppendEntry(dst []byte, e Entry) []byte {
	dst = binary.AppendUvarint(dst, encodeTime(e.Received))
	dst = binary.AppendUvarint(dst, uint64(e.Epoch))
	dst = binary.AppendUvarint(dst, e.Seq)
	l := truncateName(e.Listener)
	dst = append(dst, byte(len(l)))
	dst = append(dst, l...)
	s := truncateName(e.Source)
	dst = append(dst, byte(len(s)))
	dst = append(dst, s...)
	dst = binary.AppendUvarint(dst, uint64(len(e.Data)))
	return append(dst, e.Data...)
}

// RecordBuilder packs entries into one record. The zero value is ready to
// use; its buffer is reused across records after Reset.
type RecordBuilder struct {
	buf   []byte // headerRoom reserved bytes, then the encoded entries
	count int
	seq   uint64 // the record sequence number Bytes writes
}

// SetSeq sets the record sequence number Bytes writes (0: none). Reset
// keeps it.
func (b *RecordBuilder) SetSeq(seq uint64) { b.seq = seq }

// Add appends e to the record.
func (b *RecordBuilder) Add(e Entry) {
	if len(b.buf) < headerRoom {
		b.buf = append(b.buf[:0], make([]byte, headerRoom)...)
	}
	b.buf = AppendEntry(b.buf, e)
	b.count++
}

// addEncoded appends an entry encoded by AppendEntry to the record.
func (b *RecordBuilder) addEncoded(enc []byte) {
	if len(b.buf) < headerRoom {
		b.buf = append(b.buf[:0], make([]byte, headerRoom)...)
	}
	b.buf = append(b.buf, enc...)
	b.count++
}

// Encoded is an entry encoded once for the queues of several outputs
// (EncodeEntry), which AppendEncoded copies into their records as it is.
type Encoded struct {
	b       []byte
	dataLen int
}

// EncodeEntry encodes e, appending to dst (which the result aliases), for
// AppendEncoded.
func EncodeEntry(dst []byte, e Entry) Encoded {
	return Encoded{b: AppendEntry(dst, e), dataLen: len(e.Data)}
}

// Bytes returns the encoding, which aliases the buffer given to EncodeEntry.
func (enc Encoded) Bytes() []byte { return enc.b }

// Entry decodes enc back into the entry it holds, for what stands in for a
// queue in tests.
func (enc Encoded) Entry() (Entry, error) {
	var b RecordBuilder
	b.addEncoded(enc.b)
	entries, err := DecodeRecord(b.Bytes())
	if err != nil {
		return Entry{}, err
	}
	return entries[0], nil
}

// Len returns the number of entries added since the last Reset.
func (b *RecordBuilder) Len() int { return b.count }

// Size returns the encoded size of the entries added since the last Reset.
func (b *RecordBuilder) Size() int {
	if b.count == 0 {
		return 0
	}
	return len(b.buf) - headerRoom
}

// Bytes finishes the record and returns it. The result aliases the
// builder's buffer: it is valid until the next Add or Reset. Bytes must not
// be used on an empty builder: DecodeRecord rejects a record without entries.
func (b *RecordBuilder) Bytes() []byte {
	if len(b.buf) < headerRoom {
		b.buf = append(b.buf[:0], make([]byte, headerRoom)...)
	}
	var hdr [2 * binary.MaxVarintLen64]byte
	n := binary.PutUvarint(hdr[:], b.seq)
	n += binary.PutUvarint(hdr[n:], uint64(b.count))
	// The sequence number and the count are written right-aligned against
	// the entries and the header in front of them, so the record needs no
	// copy.
	start := headerRoom - n
	copy(b.buf[start:], hdr[:n])
	sum := crc32.Checksum(b.buf[start:], castagnoli)
	start -= 4
	binary.BigEndian.PutUint32(b.buf[start:], sum)
	start--
	b.buf[start] = RecordVersion
	return b.buf[start:]
}

// Reset empties the builder and keeps its buffer.
func (b *RecordBuilder) Reset() {
	if len(b.buf) >= headerRoom {
		b.buf = b.buf[:headerRoom]
	}
	b.count = 0
}

// AppendRecord appends one record holding entries to dst. It is a
// convenience for tools and tests; the queue itself uses a RecordBuilder.
// entries must not be empty.
func AppendRecord(dst []byte, entries []Entry) []byte {
	var b RecordBuilder
	for _, e := range entries {
		b.Add(e)
	}
	return append(dst, b.Bytes()...)
}

// DecodeRecord checks the version and checksum of rec and decodes its
// entries. The Data of each entry points into rec (capacity-limited, so an
// append cannot overwrite the next entry). Equal listener and source names of
// consecutive entries share one string, which saves most string allocations
// because a record usually comes from one listener and few senders.
//
// DecodeRecord never panics; any malformed input yields an error wrapping
// ErrCorruptRecord.
func DecodeRecord(rec []byte) ([]Entry, error) {
	if len(rec) < 1+4 {
		return nil, corruptf("%d bytes is too short", len(rec))
	}
	return decodeRecord(rec, crc32.Checksum(rec[5:], castagnoli), nil)
}

// bodySum returns the CRC32C of what a record's checksum covers (all after
// its version and checksum), or 0 for a record too short to have one.
func bodySum(rec []byte) uint32 {
	if len(rec) < 1+4 {
		return 0
	}
	return crc32.Checksum(rec[5:], castagnoli)
}

// decodeRecord is DecodeRecord with the checksum of rec[5:] already
// computed (bodySum), so that the queue's consumer, which checksums a
// record for the journal too, reads each record's bytes once for both. The
// entries are appended to dst[:0] if it has room for them.
func decodeRecord(rec []byte, sum uint32, dst []Entry) ([]Entry, error) {
	if len(rec) < 1+4 {
		return nil, corruptf("%d bytes is too short", len(rec))
	}
	version := rec[0]
	if version < 1 || version > RecordVersion {
		return nil, corruptf("unknown version %d", rec[0])
	}
	want := binary.BigEndian.Uint32(rec[1:5])
	body := rec[5:]
	if got := sum; got != want {
		return nil, corruptf("checksum %08x, want %08x", got, want)
	}
	if version >= 3 {
		if _, n := binary.Uvarint(body); n > 0 {
			body = body[n:]
		} else {
			return nil, corruptf("bad record sequence number")
		}
	}
	count, n := binary.Uvarint(body)
	if n <= 0 {
		return nil, corruptf("bad entry count")
	}
	p := body[n:]
	if count == 0 {
		return nil, corruptf("no entries")
	}
	if count > uint64(len(p)/minEntryLen) {
		return nil, corruptf("%d entries cannot fit in %d bytes", count, len(p))
	}

	entries := dst[:0]
	if uint64(cap(entries)) < count {
		entries = make([]Entry, 0, int(count))
	}
	var listener, source string
	for i := uint64(0); i < count; i++ {
		t, n := binary.Uvarint(p)
		if n <= 0 {
			return nil, corruptf("entry %d: bad time", i)
		}
		p = p[n:]
		var epoch, seq uint64
		if version >= 2 {
			if epoch, n = binary.Uvarint(p); n <= 0 || epoch > 1<<32-1 {
				return nil, corruptf("entry %d: bad epoch", i)
			}
			p = p[n:]
			if seq, n = binary.Uvarint(p); n <= 0 {
				return nil, corruptf("entry %d: bad sequence", i)
			}
			p = p[n:]
		}

		var lb, sb []byte
		var ok bool
		if lb, p, ok = cutName(p); !ok {
			return nil, corruptf("entry %d: listener overruns record", i)
		}
		if sb, p, ok = cutName(p); !ok {
			return nil, corruptf("entry %d: source overruns record", i)
		}

		size, n := binary.Uvarint(p)
		if n <= 0 {
			return nil, corruptf("entry %d: bad data length", i)
		}
		p = p[n:]
		if size > uint64(len(p)) {
			return nil, corruptf("entry %d: data length %d overruns record", i, size)
		}
		data := p[:size:size]
		p = p[size:]

		// The comparison of a []byte converted to string does not allocate.
		if string(lb) != listener {
			listener = string(lb)
		}
		if string(sb) != source {
			source = string(sb)
		}
		entries = append(entries, Entry{
			Received: decodeTime(t),
			Epoch:    uint32(epoch),
			Seq:      seq,
			Listener: listener,
			Source:   source,
			Data:     data,
		})
	}
	if len(p) != 0 {
		return nil, corruptf("%d trailing bytes", len(p))
	}
	return entries, nil
}

// cutName splits a one-byte-length-prefixed name off the front of p.
func cutName(p []byte) (name, rest []byte, ok bool) {
	if len(p) < 1 {
		return nil, p, false
	}
	n := int(p[0])
	p = p[1:]
	if len(p) < n {
		return nil, p, false
	}
	return p[:n], p[n:], true
}

func corruptf(format string, args ...any) error {
	return fmt.Errorf("decode record: "+format+": %w", append(args, ErrCorruptRecord)...)
}

// truncateName shortens s to at most MaxNameLen bytes without splitting a
// UTF-8 sequence, so a truncated name stays printable.
func truncateName(s string) string {
	if len(s) <= MaxNameLen {
		return s
	}
	// Back off at most to the start of the rune that straddles the limit;
	// invalid UTF-8 is simply cut at the limit.
	n := MaxNameLen
	for i := 0; i < utf8.UTFMax-1 && !utf8.RuneStart(s[n]); i++ {
		n--
	}
	return s[:n]
}

// encodeTime maps the zero time to 0 so that an entry without a receive
// time round-trips; time.Time{}.UnixNano is otherwise undefined.
func encodeTime(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	return uint64(t.UnixNano())
}

func decodeTime(u uint64) time.Time {
	if u == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(u))
}

// recordCount returns the entry count a record claims without checking or
// decoding it, for counting the messages of a record that is dropped whole;
// a record too damaged to say counts as one.
func recordCount(rec []byte) int {
	if len(rec) < 6 {
		return 1
	}
	p := rec[5:]
	if rec[0] >= 3 {
		_, n := binary.Uvarint(p)
		if n <= 0 {
			return 1
		}
		p = p[n:]
	}
	count, n := binary.Uvarint(p)
	if n <= 0 || count == 0 || count > uint64(len(rec)) {
		return 1
	}
	return int(count)
}

// RecordSeq returns the record sequence number of rec, or of the first
// bytes of one, without checking its CRC: 0 for a record of a version
// without one, or too short or damaged to say.
func RecordSeq(rec []byte) uint64 {
	if len(rec) < 6 || rec[0] != 3 {
		return 0
	}
	seq, n := binary.Uvarint(rec[5:])
	if n <= 0 {
		return 0
	}
	return seq
}

// restamp returns a copy of the version 3 record rec with the record
// sequence number seq and a new CRC; records of older versions, which
// carry none, are returned as they are.
func restamp(rec []byte, seq uint64) []byte {
	if len(rec) < 6 || rec[0] != 3 {
		return rec
	}
	_, n := binary.Uvarint(rec[5:])
	if n <= 0 {
		return rec
	}
	rest := rec[5+n:]
	out := make([]byte, 5, 5+binary.MaxVarintLen64+len(rest))
	out[0] = 3
	out = binary.AppendUvarint(out, seq)
	out = append(out, rest...)
	binary.BigEndian.PutUint32(out[1:5], crc32.Checksum(out[5:], castagnoli))
	return out
}
