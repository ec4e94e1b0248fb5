package queue

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// While the disk refuses writes (full, over quota, read-only, failing):
//
//   - The record whose Put failed stays in memory, retained. Append refuses
//     new messages and Flush reports the error without touching the disk:
//     a write attempt per refused message cost a go-diskqueue round trip, a
//     failed metadata sync and a log line each, tens of thousands a second
//     (full CPU and megabytes of log).
//   - A recovery timer tries the retained record again, first after 100 ms
//     and then backing off to once a second.
//   - The output worker takes the retained record straight from memory
//     once it has taken everything go-diskqueue holds (which is older), so
//     a healthy upstream still gets it; the producer may then pack and try
//     the next record. Such a batch has no file behind it: if the relay
//     stops before the upstream confirmed it, its messages are lost and
//     counted (ReasonLostAtStop).
//   - With nothing retained (handed out, or a journal write or the disk's
//     free space made the queue refuse), the timer empties go-diskqueue's
//     files once everything in them was read, and checks the free space;
//     when there is room for two records the queue is ready again.
//   - go-diskqueue writes its metadata to a temp file and renames it; a
//     write that fails leaves the temp file behind, one per attempt. It
//     logs the failure from its own goroutine right after, which is the
//     moment the file is known to be abandoned, so the log hook removes it.
//     Open and Close remove any left by a crash.

const (
	recoverMin = 100 * time.Millisecond
	recoverMax = time.Second
)

// diskState is the queue's view of a disk that refuses writes.
type diskState struct {
	// timer is the recovery timer, nil when not armed; wait is its next
	// delay. q.mu guards both.
	timer *time.Timer
	wait  time.Duration
	// need is the free space, in bytes, that makes the disk usable again.
	need int64
	// retained mirrors q.retained, so that the consumer can check it
	// without the producer's lock.
	retained atomic.Bool
	// memReady wakes a Next waiting on go-diskqueue when a record is
	// retained.
	memReady chan struct{}
	// inMemory holds the batches handed out that no file holds, until
	// Done: true for a retained record the consumer took, false for a
	// record taken from go-diskqueue whose journal write failed. q.cmu
	// guards it.
	inMemory map[*Batch]bool
	// unwritten counts the messages of the retained records taken and not
	// yet done: like the record being packed, nothing on disk has them.
	unwritten atomic.Int64
}

func (q *Queue) initDiskState(batchBytes int) {
	q.ds.need = 2*int64(batchBytes+headerRoom+4) + 64<<10
	q.ds.memReady = make(chan struct{}, 1)
	q.ds.inMemory = map[*Batch]bool{}
}

// diskRefused records err as the reason the queue cannot write and makes
// sure the recovery timer runs. q.mu must be held.
func (q *Queue) diskRefused(err error) {
	if q.putErr.Load() == nil {
		q.ds.wait = recoverMin
	}
	q.putErr.Store(&err)
	q.ds.retained.Store(q.retained)
	if q.retained {
		select {
		case q.ds.memReady <- struct{}{}:
		default:
		}
	}
	if q.ds.timer == nil && !q.closed {
		q.ds.timer = time.AfterFunc(q.ds.wait, q.recoverTick)
	}
}

// diskWorks ends a refusal after a successful write or a free-space check.
// q.mu must be held.
func (q *Queue) diskWorks() {
	q.ds.retained.Store(q.retained)
	if q.putErr.Load() == nil {
		return
	}
	q.putErr.Store(nil)
	if q.ds.timer != nil {
		q.ds.timer.Stop()
		q.ds.timer = nil
	}
	// A disk at the edge of full refuses and takes writes many times a
	// second: the refusals are limited, and so are the recoveries.
	q.logRepeat("works", 1, func(n int, summary bool) {
		if summary {
			q.logf("queue %q: writing worked again %d times%s", q.name, n, q.repeatSuffix(true))
			return
		}
		q.logf("queue %q: writing works again", q.name)
	})
}

// recoverTick retries the retained record, or, with none, frees drained
// files and checks whether the disk has room again.
func (q *Queue) recoverTick() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.ds.timer = nil
	if q.closed || q.putErr.Load() == nil {
		return
	}
	q.ds.wait = min(2*q.ds.wait, recoverMax)
	if q.retained {
		_ = q.flushLocked() // a failure re-arms the timer
		return
	}
	q.reclaimIfDrained(true)
	if err := q.roomCheck(); err != nil {
		q.ds.timer = time.AfterFunc(q.ds.wait, q.recoverTick)
		return
	}
	q.diskWorks()
}

// roomCheck reports whether the queue's file system has room for two
// records and takes writes.
func (q *Queue) roomCheck() error {
	free, readOnly, err := freeSpace(q.dir)
	switch {
	case err != nil:
		return fmt.Errorf("queue %q: %w", q.name, err)
	case readOnly:
		return fmt.Errorf("queue %q: %s is on a read-only file system: %w", q.name, q.dir, syscall.EROFS)
	case free < q.ds.need:
		return fmt.Errorf("queue %q: %d bytes free under %s, %d needed: %w", q.name, free, q.dir, q.ds.need, syscall.ENOSPC)
	}
	return nil
}

// checkRoomAtOpen makes a queue opened on a full disk start not ready, so
// that a relay restarted on a disk full of its own backlog says so before
// the first message fails; it becomes ready once the output has sent enough
// of the backlog.
func (q *Queue) checkRoomAtOpen() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := q.roomCheck(); err != nil {
		q.logf("%v; the queue refuses new messages until the output has sent enough of its backlog", err)
		q.diskRefused(err)
	}
}

// takeRetained hands the retained record to the consumer when go-diskqueue
// has nothing older left to give. q.cmu must be held.
func (q *Queue) takeRetained() *Batch {
	if !q.ds.retained.Load() {
		return nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.retained || q.closed || q.unread() > 0 {
		return nil
	}
	rec := bytes.Clone(q.rb.Bytes())
	n := q.rb.Len()
	q.rb.Reset()
	if cap(q.rb.buf) > q.keepBuf {
		q.rb.buf = nil
	}
	q.retained = false
	q.ds.retained.Store(false)
	q.inflight.Add(1)
	je, err := q.j.append(rec)
	if err != nil {
		je = nil
	} else if err := q.syncEntry(je); err != nil {
		q.logf("queue %q: %v; a power loss may lose the record the disk refused", q.name, err)
	}
	b := q.batch(rec, je)
	if b == nil {
		return nil // cannot happen: the record was built here
	}
	if je == nil {
		q.ds.inMemory[b] = true
		q.ds.unwritten.Add(int64(n))
	}
	q.logRepeat("handed", n, func(n int, summary bool) {
		q.logf("queue %q: the disk refused %d messages; the output takes them from memory%s", q.name, n, q.repeatSuffix(summary))
	})
	return b
}

// doneInMemory forgets b, which is done, if no file held it. q.cmu must
// be held.
func (q *Queue) doneInMemory(b *Batch) {
	if retained, ok := q.ds.inMemory[b]; ok {
		delete(q.ds.inMemory, b)
		if retained {
			q.ds.unwritten.Add(-int64(len(b.Entries)))
		}
	}
}

// journalFailed handles a journal write that failed for a record taken
// from go-diskqueue: the record is delivered anyway (withholding it would
// stall the output, and sending is what frees space on a full disk), held
// in memory until Done. q.cmu must be held.
func (q *Queue) journalFailed(err error) {
	q.logRepeat("journal", 1, func(n int, summary bool) {
		q.logf("queue %q: delivering %d records without crash protection: %v%s", q.name, n, err, q.repeatSuffix(summary))
	})
	q.mu.Lock()
	q.diskRefused(err)
	q.mu.Unlock()
}

// inMemoryMessages counts the messages of the batches handed out that no
// file holds. q.cmu must be held.
func (q *Queue) inMemoryMessages() int {
	n := 0
	for b := range q.ds.inMemory {
		n += len(b.Entries)
	}
	return n
}

// metaTmpPrefix is the start of go-diskqueue's metadata temp file names.
func (q *Queue) metaTmpPrefix() string { return q.name + ".diskqueue.meta.dat." }

// removeFailedMetaTmp removes the temp file named in go-diskqueue's "failed
// to sync" error. It runs on go-diskqueue's goroutine, which has abandoned
// the file and cannot be writing another.
func (q *Queue) removeFailedMetaTmp(args []any) {
	if len(args) < 2 {
		return
	}
	err, ok := args[1].(error)
	if !ok {
		return
	}
	var path string
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &le):
		path = le.Old
	case errors.As(err, &pe):
		path = pe.Path
	}
	base := filepath.Base(path)
	if filepath.Dir(path) == filepath.Clean(q.dir) && strings.HasPrefix(base, q.metaTmpPrefix()) && strings.HasSuffix(base, ".tmp") {
		_ = os.Remove(path)
	}
}

// removeMetaTmps removes every go-diskqueue metadata temp file of the
// queue; go-diskqueue must not be running.
func (q *Queue) removeMetaTmps() {
	des, err := os.ReadDir(q.dir)
	if err != nil {
		return
	}
	for _, de := range des {
		if n := de.Name(); strings.HasPrefix(n, q.metaTmpPrefix()) && strings.HasSuffix(n, ".tmp") {
			_ = os.Remove(filepath.Join(q.dir, n))
		}
	}
}

// dataFilesSize is the size of the queue's data files (not *.bad).
func dataFilesSize(dir, name string) int64 {
	des, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	prefix := name + ".diskqueue."
	var n int64
	for _, de := range des {
		f := de.Name()
		if !strings.HasPrefix(f, prefix) || !strings.HasSuffix(f, ".dat") || strings.HasSuffix(f, ".meta.dat") {
			continue
		}
		if fi, err := de.Info(); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// repeatInterval is the longest a repeating log line is held back.
const repeatInterval = 10 * time.Second

// logRepeat logs through emit at most once per repeatInterval for key,
// with the count of what it stands for (see repeatlog).
func (q *Queue) logRepeat(key string, n int, emit func(n int, summary bool)) {
	q.rl.Log(key, n, emit)
}

// repeatSuffix ends a summary line.
func (q *Queue) repeatSuffix(summary bool) string {
	if !summary {
		return ""
	}
	return fmt.Sprintf(" (since the last such line; logged at most every %s)", q.rl.Interval())
}
