package queue

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The reader (reader.go), like go-diskqueue v1.1.0's, renames a data file
// it cannot read (a damaged length prefix, a record cut short, a read error)
// to *.bad and skips to the next file; every record after the damage would
// be lost. The queue therefore salvages the file from the position of the
// damage: it scans for records whose length and CRC32C check out, skipping
// damaged bytes, puts the records it finds back on the queue (at its tail),
// counts the bytes it had to skip as lost (lost.go), and deletes the file.
// A small sidecar file (<file>.bad.pos) remembers the position across a
// restart;
// a *.bad file found at Open without one is salvaged from its start, which
// may deliver records again (duplicates, never losses).

const salvageRetry = 50 * time.Millisecond

type salvageJob struct {
	file  string // the data file name before it was renamed *.bad
	pos   int64
	cause string // the read error; empty for a file found at Open
	tries int
	// readError is set for a read error of this run, whose records the
	// reader counts as lost at its tail (see lost.go).
	readError bool
}

type salvager struct {
	mu    sync.Mutex
	jobs  []salvageJob
	timer *time.Timer
}

func (q *Queue) armSalvageLocked() {
	if q.sv.timer == nil {
		q.sv.timer = time.AfterFunc(salvageRetry, q.runSalvage)
	} else {
		q.sv.timer.Reset(salvageRetry)
	}
}

// findBadFiles queues every *.bad data file of the queue for salvage, with
// its recorded position or from the start.
func (q *Queue) findBadFiles() {
	des, err := os.ReadDir(q.dir)
	if err != nil {
		return
	}
	prefix := q.name + ".diskqueue."
	for _, de := range des {
		name := de.Name()
		if !strings.HasPrefix(name, prefix) || !strings.HasSuffix(name, ".dat.bad") {
			continue
		}
		file := filepath.Join(q.dir, strings.TrimSuffix(name, ".bad"))
		var pos int64
		if b, err := os.ReadFile(file + ".bad.pos"); err == nil {
			pos, _ = parseSalvagePos(b) // 0 when damaged: duplicates, never losses
		}
		q.sv.jobs = append(q.sv.jobs, salvageJob{file: file, pos: pos})
	}
}

// parseSalvagePos reads a *.bad.pos sidecar. A damaged one gives 0: a
// salvage from the start may deliver records again but loses none.
func parseSalvagePos(b []byte) (int64, error) {
	pos, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	switch {
	case err != nil:
		return 0, fmt.Errorf("unreadable: %w", err)
	case pos < 0:
		return 0, fmt.Errorf("negative offset %d", pos)
	}
	return pos, nil
}

// runSalvage works through the pending jobs. It runs on a timer, holding the
// producer lock while it puts salvaged records.
func (q *Queue) runSalvage() {
	q.sv.mu.Lock()
	jobs := q.sv.jobs
	q.sv.jobs = nil
	q.sv.mu.Unlock()

	var again []salvageJob
	q.mu.Lock()
	for _, job := range jobs {
		if q.closed {
			again = append(again, job)
			continue
		}
		if _, err := os.Stat(job.file + ".bad"); err != nil {
			// go-diskqueue renames right after it logs; if the file never
			// appears, the read failed for another reason (the file was
			// already gone) and there is nothing to salvage.
			if job.tries++; job.tries < 20 {
				again = append(again, job)
			} else {
				_ = os.Remove(job.file + ".bad.pos")
				if job.cause != "" {
					q.logf("queue %q: go-diskqueue could not read %s at offset %d (%s) and skipped the rest of it; it could not be set aside for salvage, so records after that offset may be lost (relay_queue_lost_records_total)",
						q.name, filepath.Base(job.file), job.pos, job.cause)
				}
				q.salvageDone(job, 0, 0)
			}
			continue
		}
		if err := q.salvageLocked(job); err != nil {
			q.logf("queue %q: salvage %s: %v", q.name, filepath.Base(job.file)+".bad", err)
			if job.tries++; job.tries < 20 {
				again = append(again, job)
			} else {
				q.salvageDone(job, 0, 0)
			}
		}
	}
	q.mu.Unlock()

	if len(again) > 0 {
		q.sv.mu.Lock()
		q.sv.jobs = append(again, q.sv.jobs...)
		if !q.isClosed() {
			q.armSalvageLocked()
		}
		q.sv.mu.Unlock()
	}
}

func (q *Queue) isClosed() bool {
	select {
	case <-q.closing:
		return true
	default:
		return false
	}
}

// salvageLocked scans job.file.bad from job.pos, puts every intact record
// back on the queue and removes the file. q.mu must be held.
func (q *Queue) salvageLocked(job salvageJob) error {
	bad := job.file + ".bad"
	f, err := os.Open(bad)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	var recovered, damaged int
	var damagedBytes int64
	sc := newRecordScanner(f, size)
	pos := job.pos
	for pos < size {
		at, rec, err := sc.next(pos)
		if err != nil {
			return err
		}
		if at > pos {
			damagedBytes += at - pos
			// Bytes too few to hold a record at the end are no region
			// of their own.
			if pos+4+minRecordLen <= size {
				damaged++
			}
		}
		if rec == nil {
			break
		}
		pos = at + 4 + int64(len(rec))
		// A new number: the old one may lie below what was taken before
		// a crash, and Next would skip the record.
		q.recSeq++
		rec = restamp(rec, q.recSeq)
		if err := q.put(rec); err != nil {
			return fmt.Errorf("put salvaged record: %w", err)
		}
		q.queued.Add(int64(len(rec)) + 4)
		recovered++
	}
	cause := job.cause
	if cause == "" {
		cause = "set aside before this start"
	}
	switch {
	case damaged > 0:
		q.logf("queue %q: data file %s is damaged (read error at offset %d: %s): %d records after it recovered and queued again, %d damaged regions (%d bytes) skipped; the messages in them are lost (relay_queue_lost_records_total)",
			q.name, filepath.Base(job.file), job.pos, cause, recovered, damaged, damagedBytes)
	case recovered > 0:
		q.logf("queue %q: data file %s could not be read at offset %d (%s): all %d records after it recovered and queued again, nothing lost",
			q.name, filepath.Base(job.file), job.pos, cause, recovered)
	case job.pos < size:
		q.logf("queue %q: data file %s could not be read at offset %d (%s): its last %d bytes are no whole record and were skipped",
			q.name, filepath.Base(job.file), job.pos, cause, size-job.pos)
	default:
		// The reader had caught up with the writer as it moved to a new
		// file: go-diskqueue reads the old one past its end.
		q.debugf("queue %q: removed %s, read to its end when go-diskqueue moved to the next file (nothing lost)",
			q.name, filepath.Base(job.file))
	}
	if recovered > 0 && q.fsync == FsyncAlways {
		// The records put back must be on disk before the file that
		// held them is gone.
		if err := q.syncData(); err != nil {
			return err
		}
	}
	if err := os.Remove(bad); err != nil {
		return err
	}
	_ = os.Remove(job.file + ".bad.pos")
	q.salvageDone(job, recovered, damagedBytes)
	return nil
}
