package queue

import (
	"encoding/binary"
	"errors"
	"io"
)

// Finding the next intact record after damage (the salvage, and Inspect's
// report of what the salvage will find) tries every offset. A candidate
// offset whose length prefix fits the file could cost a read and a CRC of
// up to maxRecordLen bytes, and a damaged file can hold such a prefix at
// every few offsets (a repeated pattern, or a long run of old records
// shifted by a byte), which made the scan quadratic: hours for a few MiB.
// So a candidate is first checked for its shape without reading its
// bytes: the fields in front of the entries and every entry's lengths,
// read where they stand, must add up to exactly the record's length. The
// entry walk of a candidate stops at the first field out of bounds, which
// in damaged or random bytes comes within a few steps; only a candidate
// whose whole structure adds up is read and checksummed.

// scanWindow is how much of the file the scan reads at a time for the
// length prefixes and headers of consecutive offsets.
const scanWindow = 1 << 20

// entryPeek covers an entry's fields in front of its data: time, epoch and
// sequence, both names with their lengths, and the data length.
const entryPeek = 3*binary.MaxVarintLen64 + 1 + MaxNameLen + 1 + MaxNameLen + binary.MaxVarintLen64

// recordScanner finds intact records in a file from any offset on.
type recordScanner struct {
	f    io.ReaderAt
	size int64

	win    []byte // the file from winOff on
	winOff int64
	peek   [entryPeek]byte
	rec    []byte // the last candidate read whole, reused
}

func newRecordScanner(f io.ReaderAt, size int64) *recordScanner {
	return &recordScanner{f: f, size: size}
}

// bytesAt returns up to n bytes of the file at off (fewer at its end). With
// fill, a miss moves the window there (the sequential scan); otherwise a
// miss reads into a small buffer (an entry walk, which jumps ahead).
func (s *recordScanner) bytesAt(off int64, n int, fill bool) ([]byte, error) {
	n = int(min(int64(n), s.size-off))
	if n <= 0 {
		return nil, nil
	}
	if off >= s.winOff && off+int64(n) <= s.winOff+int64(len(s.win)) {
		return s.win[off-s.winOff : off-s.winOff+int64(n)], nil
	}
	buf := s.peek[:min(n, len(s.peek))]
	if fill {
		if s.win == nil {
			s.win = make([]byte, min(scanWindow, s.size))
		}
		s.winOff = off
		s.win = s.win[:min(int64(cap(s.win)), s.size-off)]
		buf = s.win
	}
	got, err := s.f.ReadAt(buf, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if fill {
		s.win = s.win[:got]
	}
	return buf[:min(got, n)], nil
}

// next returns the offset of the first record at or after pos whose length
// prefix, structure and CRC check out, with its bytes (valid until the
// next call), or the file's size and nil if there is none.
func (s *recordScanner) next(pos int64) (int64, []byte, error) {
	for ; pos+4+minRecordLen <= s.size; pos++ {
		hdr, err := s.bytesAt(pos, 4+1+4+2*binary.MaxVarintLen64, true)
		if err != nil {
			return 0, nil, err
		}
		n := int64(binary.BigEndian.Uint32(hdr))
		if v := hdr[4]; v < 1 || v > RecordVersion || n < minRecordLen || n > maxRecordLen || pos+4+n > s.size {
			continue
		}
		ok, err := s.shapeFits(pos+4, n, hdr[4:])
		if err != nil {
			return 0, nil, err
		}
		if !ok {
			continue
		}
		if int64(cap(s.rec)) < n {
			s.rec = make([]byte, n)
		}
		rec := s.rec[:n]
		if _, err := s.f.ReadAt(rec, pos+4); err != nil {
			return 0, nil, err
		}
		if _, err := DecodeRecord(rec); err == nil {
			return pos, rec, nil
		}
	}
	return s.size, nil, nil
}

// shapeFits reports whether the n bytes at off have a record's structure,
// as decodeRecord reads it, without the checksum: head is the file from
// off on (at least the version, checksum and two varints, or all of the
// record).
func (s *recordScanner) shapeFits(off, n int64, head []byte) (bool, error) {
	end := off + n
	version := head[0]
	p := head[5:]
	if version >= 3 {
		_, k := binary.Uvarint(p)
		if k <= 0 {
			return false, nil
		}
		p = p[k:]
	}
	count, k := binary.Uvarint(p)
	if k <= 0 || count == 0 {
		return false, nil
	}
	at := off + int64(len(head)-len(p)+k)
	if at > end || count > uint64(end-at)/minEntryLen {
		return false, nil
	}
	for range count {
		b, err := s.bytesAt(at, entryPeek, false)
		if err != nil {
			return false, err
		}
		used, size, ok := entryFields(b, version)
		if rest := end - at - int64(used); !ok || rest < 0 || size > uint64(rest) {
			return false, nil
		}
		at += int64(used) + int64(size)
	}
	return at == end, nil
}

// entryFields reads an entry's fields in front of its data from b and
// returns how many bytes they take and the data length.
func entryFields(b []byte, version byte) (used int, size uint64, ok bool) {
	p := b
	_, k := binary.Uvarint(p)
	if k <= 0 {
		return 0, 0, false
	}
	p = p[k:]
	if version >= 2 {
		epoch, k := binary.Uvarint(p)
		if k <= 0 || epoch > 1<<32-1 {
			return 0, 0, false
		}
		p = p[k:]
		if _, k = binary.Uvarint(p); k <= 0 {
			return 0, 0, false
		}
		p = p[k:]
	}
	for range 2 {
		if len(p) < 1 || len(p) < 1+int(p[0]) {
			return 0, 0, false
		}
		p = p[1+int(p[0]):]
	}
	size, k = binary.Uvarint(p)
	if k <= 0 {
		return 0, 0, false
	}
	p = p[k:]
	return len(b) - len(p), size, true
}
