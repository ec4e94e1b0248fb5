package queue

import (
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
// A consumer that always keeps a batch in flight would make the file grow
// until the queue is reopened.
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
	journalHeaderLen = 8
	// doneFlag marks a journal entry delivered. Records are far smaller than
	// 2 GiB, so the top bit of the length is free.
	doneFlag = 1 << 31
	// keepBufLen is the largest write buffer kept after a record that was
	// much smaller than it.
	keepBufLen = 1 << 20
)

// journalRecord is one live journal entry found at open.
type journalRecord struct {
	off int64
	rec []byte
}

type journal struct {
	f    *os.File
	end  int64  // offset of the next entry
	live int    // entries written and not yet done
	buf  []byte // reused buffer for one entry, so each append is one write
}

// openJournal opens (creating it if needed) the journal in dir and returns
// the live entries it holds, in the order they were written. An entry that
// is torn or fails its checksum ends the scan: everything from it on is
// dropped from the file, and torn reports how many bytes that was.
func openJournal(dir string) (j *journal, recovered []journalRecord, torn int64, err error) {
	f, err := os.OpenFile(filepath.Join(dir, journalName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("open journal: %w", err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return nil, nil, 0, fmt.Errorf("read journal: %w", err)
	}

	j = &journal{f: f}
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
			recovered = append(recovered, journalRecord{off: off, rec: rec})
		}
		off += journalHeaderLen + size
	}
	torn = int64(len(data)) - off

	// Cut off what cannot be read, so that new entries follow the last good
	// one and stay reachable for the next recovery.
	j.live = len(recovered)
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

// append writes rec as a live entry and returns its offset.
func (j *journal) append(rec []byte) (int64, error) {
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
		return 0, fmt.Errorf("write journal: %w", err)
	}
	// Do not keep a buffer sized for one huge record for the life of the
	// queue.
	if cap(j.buf) > keepBufLen && n < cap(j.buf)/4 {
		j.buf = nil
	}
	off := j.end
	j.end += int64(n)
	j.live++
	return off, nil
}

// done takes the entry of size bytes at off out of the journal.
func (j *journal) done(off int64, size int) error {
	j.live--
	if j.live == 0 {
		if err := j.f.Truncate(0); err == nil {
			j.end = 0
			return nil
		}
		// If truncating failed, marking the entry is still correct.
	}
	var word [4]byte
	binary.BigEndian.PutUint32(word[:], uint32(size)|doneFlag)
	if _, err := j.f.WriteAt(word[:], off); err != nil {
		return fmt.Errorf("mark journal entry at %d done: %w", off, err)
	}
	return nil
}

func (j *journal) close() error {
	if err := j.f.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("close journal: %w", err)
	}
	return nil
}
