package queue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// The in-flight journal exists because the reader (reader.go) moves past a
// record the moment it reads it and deletes a data file once it has read it
// to its end. A record the output worker has taken but not yet delivered
// would be lost by a crash after that, and after a clean stop, which
// persists the read position. So before Next returns a record, the record is appended to the
// journal in <Dir>, and Done takes it out again.
//
// Each journal entry is
//
//	[u32 length | doneFlag][u32 checksum][record bytes]
//
// The checksum is the CRC32C of the record's bytes from the sixth on,
// continued over its first five (journalSum): the record's own checksum
// covers the same bytes from the sixth on, so the consumer computes the CRC
// of a record once for both. Entries whose checksum is the CRC32C of the
// record in order, as earlier releases wrote them, are read as well.
//
// written with one pwrite(2) and, unless FsyncAlways asks for an fdatasync
// after it (fsync.go), no fsync: a kill -9 leaves the page cache,
// and so the entry, intact, while an fsync per record would cost more than
// everything else the queue does. The journal therefore protects against the
// death of the process, not against power loss: a power loss can lose the
// entries the kernel had not yet written back, and with them the records
// whose advanced read position go-diskqueue had already fsynced.
//
// Done marks an entry by setting doneFlag in its length (a 4-byte pwrite in
// place). When the file entries are appended to has no live entry left it
// is truncated to zero instead, which is the common case for a worker that
// finishes one batch before it takes the next; the journal then never grows
// beyond one record.
//
// A worker that keeps several batches in flight, as the TCP output does
// while it waits for the upstream to confirm them, may never reach zero live
// entries, so truncation alone would let the file grow for as long as the
// load lasts. The journal is therefore a sequence of segment files:
// inflight.journal, then inflight.journal.1, .2 and so on. Appends go to the
// newest; once it holds segmentBytes and a live entry, the next append
// starts a new segment. An older segment whose last live entry is done is
// retired (below). Outputs finish their batches in the order they took them, so the
// oldest segment empties first and the journal stays about one segment plus
// the records in flight, without ever copying an entry: compacting one file
// by copying its live entries and fsyncing costs about a third of the output
// worker's time at 1M msg/s.
//
// A retired segment is kept as the next one to start (one such spare at a
// time; another is deleted): the next segment renames it and writes over
// it from the start. Deleting a 4 MiB file and creating the next one would
// make the kernel free and allocate its page cache, blocks and inode again,
// about a third of what a journal append costs. A segment is retired by an end mark,
// [u32 0][u32 endMarkSum], at its start, and every append to a reused one is
// followed by an end mark, which the next append overwrites: recovery stops
// there, so the older, done entries further on are never read (nor can the
// bytes of a message be taken for an entry). When nothing is in flight any
// more the spare is deleted, so an idle journal is one empty file.
//
// Recovery reads the segments in sequence order, each in file order, which
// is the order the entries were appended in. A segment retired after its
// entries were done needs no fsync: if a power loss brings it back, its
// entries come back as duplicates, never as losses.
//
// Records taken before a crash. The read position is persisted only at a
// clean stop, so after a kill -9 the reader reads again every record of the
// oldest data file it had read: the records the output delivered, and the
// ones in the journal, which Open delivers from there. Each record therefore carries
// a sequence number, increasing in the order records are put (record.go),
// and the journal keeps the highest one taken in the file inflight.taken:
// after the journal write, Next overwrites it in place (one 12-byte pwrite,
// [u64 sequence number][u32 crc32c], no fsync). At open, the highest of that
// number and the numbers of the entries in the segments (done ones too) is
// what was taken before the crash, and Next skips every record the reader
// reads up to it: it was delivered, or the journal holds it. The entries
// count too because the marker is written after the entry: a crash between
// the two would otherwise deliver that record twice. A marker that is
// missing or fails its checksum skips nothing more than the entries say.
// Records put back by the salvage (salvage.go) get new numbers, so they are
// not taken for delivered ones; records of older versions carry none and are
// never skipped.
//
// No window remains between the read and the journal write: the read
// position reaches disk only at Close, after the journal, and the data file
// a record was read from is deleted only by a later read, after the
// record's journal write.

const (
	journalName = "inflight.journal" // the first segment; later ones add ".N"
	// journalTmpName is the file a single-file, compacting journal wrote
	// before renaming it over the journal; queue directories written by
	// such a relay may hold one, which is removed at open.
	journalTmpName   = journalName + ".tmp"
	journalHeaderLen = 8
	// doneFlag marks a journal entry delivered. Records are far smaller than
	// 2 GiB, so the top bit of the length is free.
	doneFlag = 1 << 31
	// keepBufLen is the largest write buffer kept after a record that was
	// much smaller than it.
	keepBufLen = 1 << 20
	// segmentBytes is the size past which appends start a new segment:
	// large enough that segments are created and deleted rarely, small
	// enough that a worker with batches in flight keeps little dead data.
	segmentBytes = 4 << 20
	// takenName is the file of the highest record sequence number taken.
	takenName = "inflight.taken"
	takenLen  = 12
	// endMarkSum is the checksum field of an end mark, whose length word
	// is 0: no entry has length 0, and a zeroed tail (a file the disk lost
	// the end of) still reads as torn.
	endMarkSum = 0x656e6421
)

// isEndMark reports whether rest starts with an end mark.
func isEndMark(rest []byte) bool {
	return len(rest) >= journalHeaderLen && binary.BigEndian.Uint32(rest) == 0 &&
		binary.BigEndian.Uint32(rest[4:]) == endMarkSum
}

// putEndMark writes an end mark into b, which must hold journalHeaderLen
// bytes.
func putEndMark(b []byte) {
	binary.BigEndian.PutUint32(b, 0)
	binary.BigEndian.PutUint32(b[4:], endMarkSum)
}

// segment is one journal file.
type segment struct {
	seq  uint64
	f    *os.File
	end  int64 // offset of the next entry
	live int   // entries written and not yet done
	// reused is set while older content lies past end (a reused spare):
	// appends then end with an end mark.
	reused bool
}

// jentry is the handle of one live journal entry.
type jentry struct {
	seg  *segment
	off  int64
	size int // length of the record, without the header
}

// journalRecord is one live journal entry found at open.
type journalRecord struct {
	e   *jentry
	rec []byte
}

type journal struct {
	dir  string
	segs []*segment // in sequence order; appends go to the last
	live int        // live entries in all segments
	buf  []byte     // reused buffer for one entry, so each append is one write

	// spare is a drained segment, retired by an end mark at its start,
	// that startSegment reuses; nil if none.
	spare *segment

	// takenF holds the highest record sequence number taken, taken; the
	// marker is written only when it rises. takenMu guards both after
	// open: Next marks the records it takes under the consumer lock, and
	// evictOldest the records it drops under the producer lock, which
	// must not wait for the consumer's (see markTaken).
	takenMu sync.Mutex
	takenF  *os.File
	taken   uint64

	// syncDirs makes a new segment's directory entry durable (FsyncAlways).
	syncDirs bool

	// segmentMax is segmentBytes except in tests.
	segmentMax int64
	// rotations counts segments started, deletions segments retired, for
	// tests.
	rotations, deletions int
	// testHook, if set, is called after a new segment was started
	// ("rotated") and after an emptied one was retired ("deleted"), so that
	// tests can kill the process there.
	testHook func(step string)
}

func segmentName(seq uint64) string {
	if seq == 0 {
		return journalName
	}
	return journalName + "." + strconv.FormatUint(seq, 10)
}

// segmentSeq returns the sequence number of a segment file's name.
func segmentSeq(name string) (uint64, bool) {
	if name == journalName {
		return 0, true
	}
	digits, ok := strings.CutPrefix(name, journalName+".")
	if !ok {
		return 0, false
	}
	seq, err := strconv.ParseUint(digits, 10, 64)
	return seq, err == nil && seq > 0 && strconv.FormatUint(seq, 10) == digits
}

// openJournal opens (creating it if needed) the journal in dir and returns
// the live entries it holds, in the order they were written. In each
// segment, an entry that is torn or fails its checksum ends the scan:
// everything from it on is dropped from the file, and torn reports how many
// bytes that was in all. j.taken is the highest record sequence number taken
// before: the marker's or an entry's.
func openJournal(dir string) (_ *journal, recovered []journalRecord, torn int64, err error) {
	// A compaction killed before its rename leaves its new file behind;
	// the journal itself is still the old file, complete.
	_ = os.Remove(filepath.Join(dir, journalTmpName))
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("open journal: %w", err)
	}
	var seqs []uint64
	for _, de := range des {
		if seq, ok := segmentSeq(de.Name()); ok && de.Type().IsRegular() {
			seqs = append(seqs, seq)
		}
	}
	slices.Sort(seqs)
	if len(seqs) == 0 {
		seqs = []uint64{0}
	}

	jr := &journal{dir: dir, segmentMax: segmentBytes}
	if err := jr.openTaken(); err != nil {
		return nil, nil, 0, err
	}
	for _, seq := range seqs {
		_, recs, t, err := jr.openSegment(seq)
		if err != nil {
			jr.close() // every segment opened so far
			return nil, nil, 0, err
		}
		recovered = append(recovered, recs...)
		torn += t
	}
	// Segments with nothing live are of no further use, except the newest,
	// which appends continue in. One that cannot be removed holds nothing
	// live either; the next open tries again.
	kept := jr.segs[:0]
	for i, s := range jr.segs {
		if s.live > 0 || i == len(jr.segs)-1 {
			kept = append(kept, s)
			continue
		}
		s.f.Close()
		_ = os.Remove(filepath.Join(dir, segmentName(s.seq)))
	}
	jr.segs = kept
	return jr, recovered, torn, nil
}

// openSegment opens segment seq, appends it to j.segs and returns its live
// entries. It cuts off what cannot be read, so that new entries follow the
// last good one and stay reachable for the next recovery.
func (j *journal) openSegment(seq uint64) (*segment, []journalRecord, int64, error) {
	f, err := os.OpenFile(filepath.Join(j.dir, segmentName(seq)), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("open journal: %w", err)
	}
	s := &segment{seq: seq, f: f}
	j.segs = append(j.segs, s)
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("read journal: %w", err)
	}
	var recovered []journalRecord
	var off int64
	ended := false
	for off < int64(len(data)) {
		rest := data[off:]
		if isEndMark(rest) {
			ended = true // what follows is a reused file's older content
			break
		}
		if len(rest) < journalHeaderLen {
			break
		}
		word := binary.BigEndian.Uint32(rest)
		size := int64(word &^ doneFlag)
		if size == 0 || size > maxRecordLen || size > int64(len(rest)-journalHeaderLen) {
			break
		}
		rec := rest[journalHeaderLen : journalHeaderLen+size]
		if !journalSumMatches(rec, binary.BigEndian.Uint32(rest[4:])) {
			break
		}
		j.taken = max(j.taken, RecordSeq(rec))
		if word&doneFlag == 0 {
			e := &jentry{seg: s, off: off, size: int(size)}
			s.live++
			j.live++
			recovered = append(recovered, journalRecord{e: e, rec: rec})
		}
		off += journalHeaderLen + size
	}
	torn := int64(len(data)) - off
	if ended {
		torn = 0
	}
	if s.live == 0 {
		off = 0
	}
	if off != int64(len(data)) {
		if err := f.Truncate(off); err != nil {
			return nil, nil, 0, fmt.Errorf("truncate journal: %w", err)
		}
	}
	s.end = off
	return s, recovered, torn, nil
}

// journalSumMatches reports whether sum is the checksum of a journal entry
// holding rec, in today's form or in the earlier one (the CRC32C of rec),
// which journals written by an older relay carry.
func journalSumMatches(rec []byte, sum uint32) bool {
	return sum == journalSum(rec, bodySum(rec)) || sum == crc32.Checksum(rec, castagnoli)
}

// journalSum is the checksum of a journal entry holding rec, given
// bodySum(rec): that CRC continued over the first five bytes, so that every
// byte of rec is covered.
func journalSum(rec []byte, body uint32) uint32 {
	if len(rec) < 1+4 {
		return crc32.Checksum(rec, castagnoli)
	}
	return crc32.Update(body, castagnoli, rec[:5])
}

// append writes rec as a live entry and returns its handle.
func (j *journal) append(rec []byte) (*jentry, error) {
	return j.appendSum(rec, journalSum(rec, bodySum(rec)))
}

// appendSum is append with the entry's checksum, journalSum(rec, ...),
// already computed.
func (j *journal) appendSum(rec []byte, sum uint32) (*jentry, error) {
	s := j.segs[len(j.segs)-1]
	if s.end >= j.segmentMax && s.live > 0 {
		// A segment that cannot be created is not fatal: the current one
		// grows, and the next append tries again.
		if next, err := j.startSegment(s.seq + 1); err == nil {
			s = next
		}
	}
	n := journalHeaderLen + len(rec)
	w := n
	if s.reused {
		w += journalHeaderLen
	}
	if cap(j.buf) < w {
		j.buf = make([]byte, w)
	}
	buf := j.buf[:w]
	binary.BigEndian.PutUint32(buf, uint32(len(rec)))
	binary.BigEndian.PutUint32(buf[4:], sum)
	copy(buf[journalHeaderLen:], rec)
	if s.reused {
		putEndMark(buf[n:])
	}
	// WriteAt (pwrite) at our own end offset replaces "seek to 0" after a
	// truncation: the file offset is never used.
	if _, err := s.f.WriteAt(buf, s.end); err != nil {
		return nil, fmt.Errorf("write journal: %w", err)
	}
	// Do not keep a buffer sized for one huge record for the life of the
	// queue.
	if cap(j.buf) > keepBufLen && n < cap(j.buf)/4 {
		j.buf = nil
	}
	e := &jentry{seg: s, off: s.end, size: len(rec)}
	s.end += int64(n)
	s.live++
	j.live++
	return e, nil
}

// openTaken opens the marker file and reads the highest record sequence
// number taken from it; one that is short or fails its checksum (a first
// open, or a disk that lost the page) counts as none.
func (j *journal) openTaken() error {
	f, err := os.OpenFile(filepath.Join(j.dir, takenName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open journal: %w", err)
	}
	j.takenF = f
	var b [takenLen]byte
	if n, _ := f.ReadAt(b[:], 0); n == takenLen && crc32.Checksum(b[:8], castagnoli) == binary.BigEndian.Uint32(b[8:]) {
		j.taken = binary.BigEndian.Uint64(b[:8])
	}
	return nil
}

// readTakenMarker returns the highest record sequence number taken that the
// marker file in dir holds, or 0.
func readTakenMarker(dir string) uint64 {
	f, err := os.Open(filepath.Join(dir, takenName))
	if err != nil {
		return 0
	}
	defer f.Close()
	var b [takenLen]byte
	if n, _ := f.ReadAt(b[:], 0); n == takenLen && crc32.Checksum(b[:8], castagnoli) == binary.BigEndian.Uint32(b[8:]) {
		return binary.BigEndian.Uint64(b[:8])
	}
	return 0
}

// markTaken records that the record with sequence number seq was taken:
// by Next, after the record's entry is written, so a crash between the two
// leaves the entry, which counts as well; or by evictOldest, which drops
// the record, so that a kill -9 does not bring back a record counted as
// evicted. Either reads the records in order, so every record before seq
// was taken, dropped or skipped too.
func (j *journal) markTaken(seq uint64) error {
	j.takenMu.Lock()
	defer j.takenMu.Unlock()
	if seq <= j.taken {
		return nil
	}
	j.taken = seq
	return j.writeTaken()
}

func (j *journal) writeTaken() error {
	var b [takenLen]byte
	binary.BigEndian.PutUint64(b[:8], j.taken)
	binary.BigEndian.PutUint32(b[8:], crc32.Checksum(b[:8], castagnoli))
	if _, err := j.takenF.WriteAt(b[:], 0); err != nil {
		return fmt.Errorf("write %s: %w", takenName, err)
	}
	return nil
}

// startSegment creates segment seq as the one appends go to.
func (j *journal) startSegment(seq uint64) (*segment, error) {
	if s := j.reuseSpare(seq); s != nil {
		return s, nil
	}
	f, err := os.OpenFile(filepath.Join(j.dir, segmentName(seq)), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("start journal segment: %w", err)
	}
	if j.syncDirs {
		if err := syncDir(j.dir); err != nil {
			f.Close()
			_ = os.Remove(filepath.Join(j.dir, segmentName(seq)))
			return nil, fmt.Errorf("start journal segment: %w", err)
		}
	}
	s := &segment{seq: seq, f: f}
	j.segs = append(j.segs, s)
	j.rotations++
	j.step("rotated")
	return s, nil
}

// dropSpare deletes the spare segment, if any.
func (j *journal) dropSpare() {
	if j.spare == nil {
		return
	}
	j.spare.f.Close()
	_ = os.Remove(filepath.Join(j.dir, segmentName(j.spare.seq)))
	j.spare = nil
}

// reuseSpare renames the spare segment to segment seq and returns it as the
// one appends go to, or returns nil if there is no spare or it cannot be
// renamed (it is then deleted). Its end mark at the start makes it empty
// under either name.
func (j *journal) reuseSpare(seq uint64) *segment {
	s := j.spare
	if s == nil {
		return nil
	}
	j.spare = nil
	from, to := filepath.Join(j.dir, segmentName(s.seq)), filepath.Join(j.dir, segmentName(seq))
	err := os.Rename(from, to)
	if err == nil && j.syncDirs {
		err = syncDir(j.dir)
	}
	if err != nil {
		s.f.Close()
		_ = os.Remove(from)
		_ = os.Remove(to)
		return nil
	}
	*s = segment{seq: seq, f: s.f, reused: true}
	j.segs = append(j.segs, s)
	j.rotations++
	j.step("rotated")
	return s
}

// done takes the entry e out of the journal.
func (j *journal) done(e *jentry) error {
	s := e.seg
	s.live--
	j.live--
	last := s == j.segs[len(j.segs)-1]
	if s.live == 0 && last {
		if err := s.f.Truncate(0); err == nil {
			s.end, s.reused = 0, false
			if j.live == 0 {
				j.dropSpare()
			}
			return nil
		}
		// If truncating failed, marking the entry is still correct.
	}
	if s.live == 0 && !last {
		return j.deleteSegment(s, e)
	}
	return markDone(s, e)
}

// markDone sets doneFlag in the length word of e.
func markDone(s *segment, e *jentry) error {
	var word [4]byte
	binary.BigEndian.PutUint32(word[:], uint32(e.size)|doneFlag)
	if _, err := s.f.WriteAt(word[:], e.off); err != nil {
		return fmt.Errorf("mark journal entry at %d done: %w", e.off, err)
	}
	return nil
}

// deleteSegment retires s, whose last live entry, e, is done: it becomes
// the spare, by an end mark at its start, or, when there is a spare already
// or the mark cannot be written, it is deleted. Only if the file cannot be
// removed either is e marked done in it, so that the next open finds
// nothing live there and removes it then. Either way s leaves the journal.
func (j *journal) deleteSegment(s *segment, e *jentry) error {
	j.segs = slices.DeleteFunc(j.segs, func(x *segment) bool { return x == s })
	if j.spare == nil {
		var mark [journalHeaderLen]byte
		putEndMark(mark[:])
		if _, err := s.f.WriteAt(mark[:], 0); err == nil {
			s.end, s.live = 0, 0
			j.spare = s
			j.deletions++
			j.step("deleted")
			return nil
		}
	}
	var errs []error
	if err := os.Remove(filepath.Join(j.dir, segmentName(s.seq))); err != nil {
		errs = append(errs, fmt.Errorf("delete journal segment: %w", err), markDone(s, e))
	}
	errs = append(errs, s.f.Close())
	j.deletions++
	j.step("deleted")
	return errors.Join(errs...)
}

func (j *journal) step(name string) {
	if j.testHook != nil {
		j.testHook(name)
	}
}

// size returns the bytes of all segments.
func (j *journal) size() int64 {
	var n int64
	for _, s := range j.segs {
		n += s.end
	}
	return n
}

func (j *journal) close() error {
	var errs []error
	if j.takenF != nil {
		if err := j.takenF.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
			errs = append(errs, fmt.Errorf("close journal: %w", err))
		}
	}
	for _, s := range j.segs {
		if err := s.f.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
			errs = append(errs, fmt.Errorf("close journal: %w", err))
		}
	}
	// The spare holds nothing live; the next open removes it.
	if j.spare != nil {
		j.spare.f.Close()
		j.spare = nil
	}
	return errors.Join(errs...)
}
