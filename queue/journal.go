package queue

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
)

// The in-flight journal exists because go-diskqueue forgets a record the
// moment it is received from ReadChan: its read position moves forward in
// memory at once and reaches disk at the next sync. A record the output
// worker has taken but not yet delivered would be lost by a crash after that
// sync. So before Next returns a record, the record is appended to
// <Dir>/inflight.journal, and Done takes it out again.
//
// Each journal entry is
//
//	[u32 length | doneFlag][u32 crc32c of the record][record bytes]
//
// written with one pwrite(2) and no fsync: a kill -9 leaves the page cache,
// and so the entry, intact, while an fsync per record would cost more than
// everything else the queue does. The journal therefore protects against the
// death of the process, not against power loss: a power loss can lose the
// entries the kernel had not yet written back, and with them the records
// whose advanced read position go-diskqueue had already fsynced.
//
// Done marks an entry by setting doneFlag in its length (a 4-byte pwrite in
// place). When no entry is live any more the file is truncated to zero
// instead, which is the common case for a worker that finishes one batch
// before it takes the next; the journal then never grows beyond one record.
//
// A worker that keeps several batches in flight, as the TCP output does
// while it waits for the upstream to confirm them, may never reach zero live
// entries, so truncation alone would let the file grow for as long as the
// load lasts. The journal is therefore compacted: when, after a Done, the
// file is longer than compactMinBytes and more than twice the bytes of its
// live entries, the live entries are copied in order into
// inflight.journal.tmp, which is fsynced, renamed over inflight.journal,
// and followed by an fsync of the directory. Compaction is rare, so these
// fsyncs cost little, and without the first one a power loss after the
// rename could leave an empty journal in place of the old one. A crash at
// any point leaves either the old file or the new one under the journal's
// name, and each holds every live entry; a leftover .tmp file is removed at
// open.
//
// A compaction needs more dead bytes than live ones, and more than
// compactMinBytes/2 of them, while the file it writes has none: so each
// compaction comes after at least that many bytes of Done entries and
// copies fewer bytes than it drops. Entries move, so whatever refers to an
// entry (a Batch, a record recovered at open) holds its jentry, whose
// offset compaction updates, rather than the offset itself; the journal
// links the jentries of the live entries in file order and keeps a running
// total of their bytes, so that deciding to compact costs nothing.
//
// The remaining window: go-diskqueue may persist its advanced read position
// between our receive from ReadChan and our journal write. If the process is
// killed inside that window, after the metadata reached disk and before our
// write, the record is lost. Persisting the metadata takes two fsyncs (the
// data file and the metadata file) and a rename, milliseconds, while our
// write follows the receive within microseconds in the same goroutine. The
// window is real only if that goroutine is descheduled for longer than the
// two fsyncs take, between two statements; we know of no way to close it
// without changing go-diskqueue, and consider it theoretical.

const (
	journalName      = "inflight.journal"
	journalTmpName   = journalName + ".tmp"
	journalHeaderLen = 8
	// doneFlag marks a journal entry delivered. Records are far smaller than
	// 2 GiB, so the top bit of the length is free.
	doneFlag = 1 << 31
	// keepBufLen is the largest write buffer kept after a record that was
	// much smaller than it.
	keepBufLen = 1 << 20
	// compactMinBytes is the file size below which the journal is never
	// compacted: small enough to bound the file of a busy worker, large
	// enough that the fsyncs of a compaction are amortised over thousands
	// of appends.
	compactMinBytes = 4 << 20
)

// jentry is the handle of one live journal entry. The journal links the
// handles of its live entries in file order, which is the order compaction
// writes them in.
type jentry struct {
	off        int64 // offset of the entry; changed by compaction
	size       int   // length of the record, without the header
	prev, next *jentry
}

// journalRecord is one live journal entry found at open.
type journalRecord struct {
	e   *jentry
	rec []byte
}

type journal struct {
	dir       string
	f         *os.File
	end       int64  // offset of the next entry
	live      int    // entries written and not yet done
	liveBytes int64  // bytes of the live entries, headers included
	root      jentry // sentinel of the circular list of live entries
	buf       []byte // reused buffer for one entry, so each append is one write

	// compactMin is the size below which the file is not compacted;
	// compactMinBytes except in tests.
	compactMin int64
	// retryAt is the end offset before which compaction is not tried again
	// after it failed, so that a full disk does not make every Done copy
	// the live entries.
	retryAt     int64
	compactions int // compactions done, for tests
	// testHook, if set, is called at the steps of a compaction ("written"
	// after the new file is fsynced, "renamed" after the rename), so that
	// tests can kill the process there.
	testHook func(step string)
}

// openJournal opens (creating it if needed) the journal in dir and returns
// the live entries it holds, in the order they were written. An entry that
// is torn or fails its checksum ends the scan: everything from it on is
// dropped from the file, and torn reports how many bytes that was.
func openJournal(dir string) (j *journal, recovered []journalRecord, torn int64, err error) {
	// A compaction killed before its rename leaves the new file behind;
	// the journal itself is still the old file, complete. A failure to
	// remove the leftover is harmless: the next compaction truncates it.
	_ = os.Remove(filepath.Join(dir, journalTmpName))
	f, err := os.OpenFile(filepath.Join(dir, journalName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("open journal: %w", err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return nil, nil, 0, fmt.Errorf("read journal: %w", err)
	}

	j = &journal{dir: dir, f: f, compactMin: compactMinBytes}
	j.root.next, j.root.prev = &j.root, &j.root
	var off int64
	for off < int64(len(data)) {
		rest := data[off:]
		if len(rest) < journalHeaderLen {
			break
		}
		word := binary.BigEndian.Uint32(rest)
		size := int64(word &^ doneFlag)
		if size == 0 || size > maxRecordLen || size > int64(len(rest)-journalHeaderLen) {
			break
		}
		rec := rest[journalHeaderLen : journalHeaderLen+size]
		if crc32.Checksum(rec, castagnoli) != binary.BigEndian.Uint32(rest[4:]) {
			break
		}
		if word&doneFlag == 0 {
			recovered = append(recovered, journalRecord{e: j.link(off, int(size)), rec: rec})
		}
		off += journalHeaderLen + size
	}
	torn = int64(len(data)) - off

	// Cut off what cannot be read, so that new entries follow the last good
	// one and stay reachable for the next recovery.
	if j.live == 0 {
		off = 0
	}
	if off != int64(len(data)) {
		if err := f.Truncate(off); err != nil {
			f.Close()
			return nil, nil, 0, fmt.Errorf("truncate journal: %w", err)
		}
	}
	j.end = off
	return j, recovered, torn, nil
}

// link adds a handle for the live entry of a size-byte record at off to the
// end of the live list.
func (j *journal) link(off int64, size int) *jentry {
	e := &jentry{off: off, size: size, prev: j.root.prev, next: &j.root}
	e.prev.next = e
	j.root.prev = e
	j.live++
	j.liveBytes += journalHeaderLen + int64(size)
	return e
}

// unlink takes e out of the live list.
func (j *journal) unlink(e *jentry) {
	e.prev.next = e.next
	e.next.prev = e.prev
	e.prev, e.next = nil, nil
	j.live--
	j.liveBytes -= journalHeaderLen + int64(e.size)
}

// append writes rec as a live entry and returns its handle.
func (j *journal) append(rec []byte) (*jentry, error) {
	n := journalHeaderLen + len(rec)
	if cap(j.buf) < n {
		j.buf = make([]byte, n)
	}
	buf := j.buf[:n]
	binary.BigEndian.PutUint32(buf, uint32(len(rec)))
	binary.BigEndian.PutUint32(buf[4:], crc32.Checksum(rec, castagnoli))
	copy(buf[journalHeaderLen:], rec)
	// WriteAt (pwrite) at our own end offset replaces "seek to 0" after a
	// truncation: the file offset is never used.
	if _, err := j.f.WriteAt(buf, j.end); err != nil {
		return nil, fmt.Errorf("write journal: %w", err)
	}
	// Do not keep a buffer sized for one huge record for the life of the
	// queue.
	if cap(j.buf) > keepBufLen && n < cap(j.buf)/4 {
		j.buf = nil
	}
	e := j.link(j.end, len(rec))
	j.end += int64(n)
	return e, nil
}

// done takes the entry e out of the journal. It does not compact; see
// maybeCompact.
func (j *journal) done(e *jentry) error {
	j.unlink(e)
	if j.live == 0 {
		if err := j.f.Truncate(0); err == nil {
			j.end = 0
			j.retryAt = 0
			return nil
		}
		// If truncating failed, marking the entry is still correct.
	}
	var word [4]byte
	binary.BigEndian.PutUint32(word[:], uint32(e.size)|doneFlag)
	if _, err := j.f.WriteAt(word[:], e.off); err != nil {
		return fmt.Errorf("mark journal entry at %d done: %w", e.off, err)
	}
	return nil
}

// maybeCompact compacts the journal if it is longer than compactMin and
// more than half of it is dead. After a failure it waits for another
// compactMin bytes of appends before it tries again.
func (j *journal) maybeCompact() error {
	if j.end <= j.compactMin || j.end <= 2*j.liveBytes || j.end < j.retryAt {
		return nil
	}
	if err := j.compact(); err != nil {
		j.retryAt = j.end + j.compactMin
		return err
	}
	return nil
}

// compact replaces the journal with a file holding only its live entries,
// in the same order, and moves their handles to their new offsets. If it
// fails before the rename, the old file stays the journal, unchanged.
func (j *journal) compact() error {
	path := filepath.Join(j.dir, journalName)
	tmpPath := filepath.Join(j.dir, journalTmpName)
	f, err := os.OpenFile(tmpPath, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("compact journal: %w", err)
	}
	if err := j.copyLive(f); err != nil {
		f.Close()
		os.Remove(tmpPath)
		return fmt.Errorf("compact journal: %w", err)
	}
	j.step("written")
	if err := os.Rename(tmpPath, path); err != nil {
		f.Close()
		os.Remove(tmpPath)
		return fmt.Errorf("compact journal: %w", err)
	}
	j.step("renamed")

	// From here on the new file is the journal, whatever else fails.
	old := j.f
	j.f = f
	var off int64
	for e := j.root.next; e != &j.root; e = e.next {
		e.off = off
		off += journalHeaderLen + int64(e.size)
	}
	j.end = off
	j.compactions++
	// If this fsync fails, a power loss may bring the old file back under
	// the journal's name. It holds every entry that was live at the
	// compaction; the journal promises no more than that after a power
	// loss anyway (see above).
	errs := []error{syncDir(j.dir)}
	if err := old.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close old journal: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("compact journal: %w", err)
	}
	return nil
}

// copyLive writes the live entries, in order, to f and fsyncs it. The
// entries are copied from the journal file, checksums included, rather
// than re-encoded from the batches, whose entries the consumer may hold.
func (j *journal) copyLive(f *os.File) error {
	w := bufio.NewWriterSize(f, 256<<10)
	for e := j.root.next; e != &j.root; e = e.next {
		n := journalHeaderLen + e.size
		if cap(j.buf) < n {
			j.buf = make([]byte, n)
		}
		buf := j.buf[:n]
		if _, err := j.f.ReadAt(buf, e.off); err != nil {
			return fmt.Errorf("read entry at %d: %w", e.off, err)
		}
		// A mismatch means our bookkeeping is wrong; copying would turn it
		// into a journal that silently drops entries.
		if word := binary.BigEndian.Uint32(buf); word != uint32(e.size) {
			return fmt.Errorf("entry at %d has length word %#x, want live entry of %d bytes", e.off, word, e.size)
		}
		if _, err := w.Write(buf); err != nil {
			return fmt.Errorf("write: %w", err)
		}
	}
	if cap(j.buf) > keepBufLen {
		j.buf = nil
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	return nil
}

func (j *journal) step(name string) {
	if j.testHook != nil {
		j.testHook(name)
	}
}

func (j *journal) close() error {
	if err := j.f.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("close journal: %w", err)
	}
	return nil
}
