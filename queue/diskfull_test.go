package queue

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nsqio/go-diskqueue"
)

// TestRetainedRecordTakenFromMemory: while the disk refuses writes, the
// consumer gets what is on disk first and then the record the disk refused,
// from memory; the producer may then pack the next record. One taken from
// memory and not done when the queue closes is lost and reported.
func TestRetainedRecordTakenFromMemory(t *testing.T) {
	type drop struct {
		count  int
		reason string
	}
	drops := make(chan drop, 4)
	q, _ := openQueue(t, t.TempDir(), func(o *Options) {
		o.BatchMessages = 3
		o.Linger = time.Hour
		o.OnDrop = func(count int, reason string, _ error) { drops <- drop{count, reason} }
	})
	real := func() diskqueue.Interface { return unwrapDQ(q.diskq()) }
	appendRange(t, q, 0, 6) // two records on disk
	q.setDQ(failPut{real(), syscall.ENOSPC})
	failJournal(t, q)
	appendRange(t, q, 6, 9) // retained
	if err := q.Append(testEntry(9)); err == nil {
		t.Fatal("Append while a record is retained succeeded")
	}
	if u := q.Unwritten(); u != 3 {
		t.Errorf("Unwritten = %d, want 3", u)
	}
	checkSequence(t, drain(t, q, 9), 0, 9)
	if u := q.Unwritten(); u != 0 {
		t.Errorf("Unwritten = %d after the record from memory was done, want 0", u)
	}
	if q.Err() == nil {
		t.Error("Err() = nil while the disk still refuses")
	}

	// The next record goes the same way; taken and not done, it is lost at
	// Close and reported.
	appendRange(t, q, 10, 13)
	b := next(t, q)
	if got := fmt.Sprint(entryIndexes(t, b)); got != "[10 11 12]" {
		t.Fatalf("second record from memory = %s", got)
	}
	if u := q.Unwritten(); u != 3 {
		t.Errorf("Unwritten = %d with a record from memory in flight, want 3", u)
	}
	q.setDQ(failClosePut{real()})
	err := q.Close()
	var de *DropError
	if !errors.As(err, &de) || de.Reason != ReasonLostAtStop || de.Count != 3 {
		t.Errorf("Close = %v, want a %s DropError of 3", err, ReasonLostAtStop)
	}
	select {
	case d := <-drops:
		if d != (drop{3, ReasonLostAtStop}) {
			t.Errorf("OnDrop%v, want (3, %s)", d, ReasonLostAtStop)
		}
	default:
		t.Error("Close lost a record from memory without OnDrop")
	}
}

// failJournal makes the journal's writes fail, as they do on a full disk.
func failJournal(t *testing.T, q *Queue) {
	t.Helper()
	q.cmu.Lock()
	defer q.cmu.Unlock()
	s := q.j.segs[len(q.j.segs)-1]
	ro, err := os.Open(s.f.Name())
	if err != nil {
		t.Fatal(err)
	}
	s.f.Close()
	s.f = ro
}

func entryIndexes(t *testing.T, b *Batch) []int {
	t.Helper()
	var is []int
	for _, e := range b.Entries {
		is = append(is, entryIndex(t, e))
	}
	return is
}

// failSync makes every metadata sync of go-diskqueue fail as on a full
// disk: it leaves a temp file, as go-diskqueue's own does, and reports the
// failure through the log function.
func TestFailedSyncLeavesNoTempFile(t *testing.T) {
	dir := t.TempDir()
	q, logs := openQueue(t, dir, nil)
	for i := range 1000 {
		tmp := filepath.Join(dir, fmt.Sprintf("out.diskqueue.meta.dat.%d.tmp", i))
		if err := os.WriteFile(tmp, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		err := &os.PathError{Op: "write", Path: tmp, Err: syscall.ENOSPC}
		q.diskqueueLog(diskqueue.ERROR, syncFailedFormat, "out", err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(m) != 0 {
		t.Errorf("%d temp files left, want none", len(m))
	}
	if n := strings.Count(logs.String(), "failed to sync"); n != 1 {
		t.Errorf("%d log lines for 1000 failed syncs, want 1 (and a count later):\n%s", n, logs.String())
	}
	q.Close()
	if s := logs.String(); !strings.Contains(s, "(999 times") {
		t.Errorf("no count of the repeated failures after Close:\n%s", s)
	}
	// Open and Close remove any a crash left.
	if err := os.WriteFile(filepath.Join(dir, "out.diskqueue.meta.dat.7.tmp"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	q, _ = openQueue(t, dir, nil)
	if m, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(m) != 0 {
		t.Errorf("Open left %v", m)
	}
}

// TestStaleDepthDoesNotEmptyUnreadFiles: metadata from before the last
// writes (a crash, or a stop on a full disk) counts fewer records than the
// files hold. Open counts them, so that emptying the files once the queue
// looks drained never deletes records still unread.
func TestStaleDepthDoesNotEmptyUnreadFiles(t *testing.T) {
	dir := t.TempDir()
	batch := func(o *Options) { o.BatchMessages = 100; o.Linger = time.Hour; o.reclaimBytes = 1 << 20 }
	q, _ := openQueue(t, dir, batch)
	const n = 40000 // more than reclaimBytes
	appendRange(t, q, 0, n)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	// The metadata as it was after the first ten records.
	data, err := os.ReadFile(filepath.Join(dir, "out.diskqueue.000000.dat"))
	if err != nil {
		t.Fatal(err)
	}
	pos := 0
	for range 10 {
		pos += 4 + int(be32(data[pos:]))
	}
	if err := os.WriteFile(filepath.Join(dir, "out.diskqueue.meta.dat"), fmt.Appendf(nil, "10\n0,0\n0,%d\n", pos), 0o600); err != nil {
		t.Fatal(err)
	}

	q, _ = openQueue(t, dir, batch)
	if d := q.Depth(); d != n/100 {
		t.Errorf("Depth = %d after Open, want %d", d, n/100)
	}
	got := drain(t, q, 1000)
	appendRange(t, q, n, n+100) // a Put empties the files if they look drained
	got = append(got, drain(t, q, n-1000+100)...)
	checkSequence(t, got, 0, n+100)
}

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// TestDirectoryRemovedWhileOpen removes the queue's directory under an open
// queue with records waiting, one of them in flight. The queue creates the
// directory again with the files it still held open, takes new records,
// and a reopen finds everything not done.
func TestDirectoryRemovedWhileOpen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "q")
	batch := func(o *Options) { o.BatchMessages = 10; o.Linger = time.Hour }
	q, logs := openQueue(t, dir, batch)
	appendRange(t, q, 0, 1000)
	checkSequence(t, drain(t, q, 100), 0, 100)
	next(t, q) // 100..109, in flight
	before := q.DiskBytes()

	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the directory to be restored", func() bool {
		return strings.Contains(logs.String(), "was removed while in use") && q.DiskBytes() >= before
	})
	appendRange(t, q, 1000, 1100)
	if err := q.Flush(); err != nil {
		t.Fatal(err)
	}
	checkSequence(t, drain(t, q, 100), 110, 210)
	if err := q.Close(); err != nil { // inFlight stays in the journal
		t.Fatal(err)
	}

	q, _ = openQueue(t, dir, batch)
	got := drain(t, q, 10+890)
	want := append([]int{}, seq(100, 110)...)
	want = append(want, seq(210, 1100)...)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after reopening: %d entries, want the in-flight record and 210..1099", len(got))
	}
}

func seq(from, to int) []int {
	s := make([]int, 0, to-from)
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

// TestDirectoryRemovedWhileDrained: the directory of a drained queue is
// removed and the next record needs a new data file before the watcher
// notices. The failed write creates the directory again and the record is
// written: nothing is refused. (Emptying the drained queue's files, the
// remedy for a full disk, was tried first and hid the missing directory.)
func TestDirectoryRemovedWhileDrained(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "q")
	opts := func(o *Options) {
		o.BatchMessages = 10
		o.Linger = time.Hour
		o.MaxBytesPerFile = 1 << 10 // every record or two starts a new file
	}
	q, logs := openQueue(t, dir, opts)
	appendRange(t, q, 0, 100)
	if err := q.Flush(); err != nil {
		t.Fatal(err)
	}
	checkSequence(t, drain(t, q, 100), 0, 100)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	appendRange(t, q, 100, 130)
	if err := q.Flush(); err != nil {
		t.Fatalf("a write after the directory was removed: %v\n%s", err, logs)
	}
	checkSequence(t, drain(t, q, 30), 100, 130)
}

// TestFlappingDiskLogsRecoveryOnce: a disk at the edge of full refuses a
// write and takes the next one many times a second. The refusals were
// logged at most once per interval, but every recovery logged "writing
// works again": 170 lines in 1.4 s from a relay whose file output drained
// a full tmpfs. Recoveries are limited like refusals.
func TestFlappingDiskLogsRecoveryOnce(t *testing.T) {
	t.Parallel()
	q, logs := openQueue(t, t.TempDir(), func(o *Options) {
		o.BatchMessages = 3
		o.Linger = time.Hour
	})
	real := q.diskq()
	const flaps = 10
	for i := range flaps {
		q.setDQ(failPut{real, syscall.ENOSPC})
		for k := range 3 {
			_ = q.Append(testEntry(3*i + k)) // the third puts the record, which fails
		}
		if q.Err() == nil {
			t.Fatalf("flap %d: the refused write left no error", i)
		}
		q.setDQ(real)
		// The recovery timer writes the retained record.
		for deadline := time.Now().Add(30 * time.Second); q.Err() != nil; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("flap %d: the disk works again and the queue still refuses: %v", i, q.Err())
			}
		}
	}
	checkSequence(t, drain(t, q, 3*flaps), 0, 3*flaps)
	if n := strings.Count(logs.String(), "writing works again"); n != 1 {
		t.Errorf("%d flaps of the disk logged %d lines saying writing works again, want 1 (and a tally later):\n%s", flaps, n, logs)
	}
}
