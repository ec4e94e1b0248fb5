package queue

import (
	"fmt"
	"os"
)

// FsyncMode says when the queue makes what it writes durable against a
// power loss.
type FsyncMode int

const (
	// FsyncInterval leaves it to go-diskqueue's sync, every SyncEvery
	// records or SyncInterval: a record survives a crash of the process as
	// soon as it is written (the page cache holds it), a power loss only
	// after that sync, and the in-flight journal is never synced.
	FsyncInterval FsyncMode = iota
	// FsyncAlways fsyncs the data file after every record put, before the
	// call that put it (Append, Flush) returns, and the journal entry of
	// every record taken before Next returns it. A Flush that returns nil
	// (what a RELP listener waits for before it acknowledges) thus means
	// on disk, and a record the output has taken is on disk in the journal
	// before go-diskqueue's read position past it can be. Each record put
	// and each record taken costs an fdatasync.
	FsyncAlways
)

// dataSync is the state of FsyncAlways on the producer side; q.mu guards
// it.
type dataSync struct {
	f   *os.File // the data file synced last, kept open
	num int64    // its number
	// dirty is set while a record put has not been synced: a failed sync
	// is tried again by the next Flush, which returns its error.
	dirty bool
}

// syncData fsyncs the data file go-diskqueue wrote the last record to.
// go-diskqueue rolls to a new file before it writes a record that would not
// fit, so that file is the newest; a file first synced here gets its
// directory entry synced too. q.mu must be held.
func (q *Queue) syncData() error {
	s := &q.dsync
	if s.f != nil && !q.stillNewest(s.f, s.num) {
		s.f.Close()
		s.f = nil
	}
	if s.f == nil {
		_, last, _, found, err := dataFileRange(q.dir, q.name)
		if err != nil {
			return fmt.Errorf("queue %q: sync: %w", q.name, err)
		}
		if !found {
			return fmt.Errorf("queue %q: sync: no data file", q.name)
		}
		f, err := os.Open(dataPath(q.dir, q.name, last))
		if err != nil {
			return fmt.Errorf("queue %q: sync: %w", q.name, err)
		}
		if err := syncDir(q.dir); err != nil {
			f.Close()
			return fmt.Errorf("queue %q: %w", q.name, err)
		}
		s.f, s.num = f, last
	}
	if err := fdatasync(s.f); err != nil {
		return fmt.Errorf("queue %q: sync: %w", q.name, err)
	}
	s.dirty = false
	return nil
}

// stillNewest reports whether f, data file num, is still the newest data
// file under its name: no later file exists, and the name was not removed
// or replaced (emptied files, a *.bad rename, a recreated directory).
func (q *Queue) stillNewest(f *os.File, num int64) bool {
	if _, err := os.Stat(dataPath(q.dir, q.name, num+1)); err == nil {
		return false
	}
	cur, err := os.Stat(dataPath(q.dir, q.name, num))
	if err != nil {
		return false
	}
	fi, err := f.Stat()
	return err == nil && os.SameFile(cur, fi)
}

// syncPut makes the record just put durable under FsyncAlways; the error,
// if any, is logged once per interval and returned, so that a RELP
// listener does not acknowledge. q.mu must be held.
func (q *Queue) syncPut() error {
	if q.fsync != FsyncAlways {
		return nil
	}
	q.dsync.dirty = true
	if err := q.syncData(); err != nil {
		q.logRepeat("fsync", 1, func(_ int, summary bool) {
			q.logf("%v; messages are not acknowledged to RELP senders until it works%s", err, q.repeatSuffix(summary))
		})
		return err
	}
	return nil
}

// syncEntry makes the journal entry e durable under FsyncAlways. q.cmu must
// be held.
func (q *Queue) syncEntry(e *jentry) error {
	if q.fsync != FsyncAlways || e == nil {
		return nil
	}
	if err := fdatasync(e.seg.f); err != nil {
		return fmt.Errorf("sync journal: %w", err)
	}
	return nil
}
