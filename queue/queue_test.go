package queue

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nsqio/go-diskqueue"
)

// logSink collects log lines; t.Logf cannot be used because go-diskqueue
// may log from its own goroutine.
type logSink struct {
	mu    sync.Mutex
	lines []string
}

func (l *logSink) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func openQueue(t testing.TB, dir string, mod func(*Options)) (*Queue, *logSink) {
	t.Helper()
	logs := &logSink{}
	opts := Options{Name: "out", Dir: dir, Logf: logs.logf, Infof: logs.logf}
	if mod != nil {
		mod(&opts)
	}
	q, err := Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { q.Close() })
	return q, logs
}

const testPrefix = "<13>message "

func testEntry(i int) Entry {
	return Entry{
		Received: time.Unix(1700000000, int64(i)),
		Listener: "tcp",
		Source:   fmt.Sprintf("192.0.2.%d:514", i%3),
		Data:     fmt.Appendf(nil, "%s%06d", testPrefix, i),
	}
}

// entryIndex returns i for an entry made by testEntry(i) and checks the
// other fields.
func entryIndex(t testing.TB, e Entry) int {
	t.Helper()
	i, err := strconv.Atoi(strings.TrimPrefix(string(e.Data), testPrefix))
	if err != nil {
		t.Fatalf("unexpected entry data %q", e.Data)
	}
	if want := testEntry(i); !sameEntry(e, want) {
		t.Fatalf("entry %d = %+v, want %+v", i, e, want)
	}
	return i
}

func appendRange(t testing.TB, q *Queue, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := q.Append(testEntry(i)); err != nil {
			t.Fatalf("Append(%d): %v", i, err)
		}
	}
}

// next calls Next with a deadline, so that a bug shows as a failure rather
// than a hung test.
func next(t testing.TB, q *Queue) *Batch {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := q.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return b
}

// drain takes batches and marks them done until n entries have arrived, and
// returns their indexes in order.
func drain(t testing.TB, q *Queue, n int) []int {
	t.Helper()
	var got []int
	for len(got) < n {
		b := next(t, q)
		for _, e := range b.Entries {
			got = append(got, entryIndex(t, e))
		}
		if err := q.Done(b); err != nil {
			t.Fatalf("Done: %v", err)
		}
	}
	return got
}

func checkSequence(t testing.TB, got []int, from, to int) {
	t.Helper()
	if len(got) != to-from {
		t.Fatalf("got %d entries, want %d", len(got), to-from)
	}
	for k, i := range got {
		if i != from+k {
			t.Fatalf("entry %d is message %d, want %d", k, i, from+k)
		}
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestRoundTripConcurrent(t *testing.T) {
	t.Parallel()
	q, _ := openQueue(t, t.TempDir(), func(o *Options) { o.BatchMessages = 64 })
	const producers, perProducer = 4, 2500

	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for k := range perProducer {
				i := p*perProducer + k
				if err := q.Append(testEntry(i)); err != nil {
					t.Errorf("Append(%d): %v", i, err)
					return
				}
			}
		})
	}

	// The consumer runs while the producers append; each producer's entries
	// must arrive complete and in its order.
	last := make([]int, producers)
	for p := range last {
		last[p] = p*perProducer - 1
	}
	for got := 0; got < producers*perProducer; {
		b := next(t, q)
		if len(b.Entries) > 64 {
			t.Errorf("batch of %d entries, want at most 64", len(b.Entries))
		}
		for _, e := range b.Entries {
			i := entryIndex(t, e)
			p := i / perProducer
			if i != last[p]+1 {
				t.Fatalf("producer %d: message %d after %d", p, i, last[p])
			}
			last[p] = i
			got++
		}
		if err := q.Done(b); err != nil {
			t.Fatalf("Done: %v", err)
		}
	}
	wg.Wait()
	if d := q.Depth(); d != 0 {
		t.Errorf("Depth after drain = %d, want 0", d)
	}
	if c := q.Corrupt(); c != 0 {
		t.Errorf("Corrupt = %d, want 0", c)
	}
}

func TestRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	batch := func(o *Options) { o.BatchMessages = 100; o.Linger = time.Hour }
	q, logs := openQueue(t, dir, batch)
	appendRange(t, q, 0, 1050)
	if err := q.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if s := logs.String(); s != "" {
		t.Errorf("unexpected log lines from a new queue:\n%s", s)
	}

	q, _ = openQueue(t, dir, batch)
	// Close put the partial record of 50 entries.
	if d := q.Depth(); d != 11 {
		t.Errorf("Depth after reopen = %d, want 11", d)
	}
	checkSequence(t, drain(t, q, 1050), 0, 1050)
	if err := q.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	q, logs = openQueue(t, dir, batch)
	if d := q.Depth(); d != 0 {
		t.Errorf("Depth after draining and reopening = %d, want 0", d)
	}
	if b, ok, err := q.TryNext(); ok || err != nil {
		t.Errorf("TryNext on a drained queue = %v, %v, %v; want nil, false, nil", b, ok, err)
	}
	if s := logs.String(); s != "" {
		t.Errorf("unexpected log lines after a clean restart:\n%s", s)
	}
}

func TestNotDoneBeforeClose(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	batch := func(o *Options) { o.BatchMessages = 10; o.Linger = time.Hour } // record boundaries by count alone, however slow the machine
	q, _ := openQueue(t, dir, batch)
	appendRange(t, q, 0, 40)
	if err := q.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	held := next(t, q) // 0..9, never done
	b := next(t, q)    // 10..19
	if err := q.Done(b); err != nil {
		t.Fatalf("Done: %v", err)
	}
	next(t, q) // 20..29, never done either
	if err := q.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := q.Done(held); !errors.Is(err, ErrClosed) {
		t.Errorf("Done after Close = %v, want ErrClosed", err)
	}

	// The records in flight are a note, not a warning: a clean stop with
	// the upstream down leaves them too.
	warnings := &logSink{}
	q, logs := openQueue(t, dir, func(o *Options) { batch(o); o.Logf = warnings.logf })
	if d := q.Depth(); d != 3 {
		t.Errorf("Depth after reopen = %d, want 3 (two recovered, one waiting)", d)
	}
	if want := `queue "out": 2 records (20 messages) were in flight at the last stop, not confirmed delivered; they are sent again first`; logs.String() != want {
		t.Errorf("log = %q, want %q", logs, want)
	}
	if s := warnings.String(); s != "" {
		t.Errorf("warnings at reopen: %s", s)
	}
	var got []int
	for range 3 {
		b := next(t, q)
		for _, e := range b.Entries {
			got = append(got, entryIndex(t, e))
		}
		if err := q.Done(b); err != nil {
			t.Fatalf("Done: %v", err)
		}
	}
	var want []int
	for i := range 40 {
		if i < 10 || i >= 20 {
			want = append(want, i)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after reopen got %v, want %v", got, want)
	}
	fi, err := os.Stat(filepath.Join(dir, journalName))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != 0 {
		t.Errorf("journal is %d bytes with nothing in flight, want 0", fi.Size())
	}
}

// flipInRecord flips the last byte of the nth record of a diskqueue data
// file, which lies inside the record's last message.
func flipInRecord(t *testing.T, path string, n int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	off := 0
	for i := 0; ; i++ {
		if off+4 > len(data) {
			t.Fatalf("%s has only %d records", path, i)
		}
		size := int(binary.BigEndian.Uint32(data[off:]))
		if i == n {
			data[off+4+size-1] ^= 0x20
			break
		}
		off += 4 + size
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptDataFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	batch := func(o *Options) { o.BatchMessages = 10; o.Linger = time.Hour } // record boundaries by count alone, however slow the machine
	q, _ := openQueue(t, dir, batch)
	appendRange(t, q, 0, 50)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	flipInRecord(t, filepath.Join(dir, "out.diskqueue.000000.dat"), 1)
	flipInRecord(t, filepath.Join(dir, "out.diskqueue.000000.dat"), 3)

	q, logs := openQueue(t, dir, batch)
	got := drain(t, q, 30)
	var want []int
	for i := range 50 {
		if i/10 != 1 && i/10 != 3 {
			want = append(want, i)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if c := q.Corrupt(); c != 2 {
		t.Errorf("Corrupt = %d, want 2", c)
	}
	if s := logs.String(); !strings.Contains(s, `queue "out": skipped 1 corrupt records`) {
		t.Errorf("no log line about the corrupt records:\n%s", s)
	}
	if b := q.LostBytes(); b < 2*(4+minRecordLen) {
		t.Errorf("LostBytes = %d, want the two corrupt records' bytes", b)
	}
	if d := q.Depth(); d != 0 {
		t.Errorf("Depth = %d, want 0", d)
	}
}

func TestCorruptJournal(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	batch := func(o *Options) { o.BatchMessages = 10; o.Linger = time.Hour } // record boundaries by count alone, however slow the machine
	q, _ := openQueue(t, dir, batch)
	appendRange(t, q, 0, 20)
	if err := q.Flush(); err != nil {
		t.Fatal(err)
	}
	// Take both records and deliver neither.
	next(t, q)
	next(t, q)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	// Tear the second journal entry: the first must still come back.
	path := filepath.Join(dir, journalName)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, fi.Size()-3); err != nil {
		t.Fatal(err)
	}

	q, logs := openQueue(t, dir, batch)
	if c := q.Corrupt(); c != 1 {
		t.Errorf("Corrupt after a torn journal = %d, want 1", c)
	}
	if !strings.Contains(logs.String(), "torn or corrupt in-flight journal") {
		t.Errorf("torn journal not logged:\n%s", logs)
	}
	checkSequence(t, drain(t, q, 10), 0, 10)
}

func TestTryNext(t *testing.T) {
	t.Parallel()
	q, _ := openQueue(t, t.TempDir(), func(o *Options) { o.Linger = time.Hour }) // one record however slow the machine
	if b, ok, err := q.TryNext(); ok || b != nil || err != nil {
		t.Fatalf("TryNext on an empty queue = %v, %v, %v; want nil, false, nil", b, ok, err)
	}
	appendRange(t, q, 0, 5)
	if err := q.Flush(); err != nil {
		t.Fatal(err)
	}
	var b *Batch
	eventually(t, "TryNext to return the record", func() bool {
		var ok bool
		var err error
		b, ok, err = q.TryNext()
		if err != nil {
			t.Fatalf("TryNext: %v", err)
		}
		return ok
	})
	if len(b.Entries) != 5 {
		t.Errorf("TryNext returned %d entries, want 5", len(b.Entries))
	}
	if err := q.Done(b); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := q.TryNext(); ok || !errors.Is(err, ErrClosed) {
		t.Errorf("TryNext after Close = %v, %v; want false, ErrClosed", ok, err)
	}
}

func TestLinger(t *testing.T) {
	t.Parallel()
	q, _ := openQueue(t, t.TempDir(), func(o *Options) {
		o.BatchMessages = 1000
		o.Linger = 20 * time.Millisecond
	})
	appendRange(t, q, 0, 3)
	// No Flush: the Linger timer must put the record by itself.
	b := next(t, q)
	if len(b.Entries) != 3 {
		t.Fatalf("lingered record has %d entries, want 3", len(b.Entries))
	}
	if err := q.Done(b); err != nil {
		t.Fatal(err)
	}
	// A second record gets its own timer.
	appendRange(t, q, 3, 4)
	checkSequence(t, drain(t, q, 1), 3, 4)
}

func TestBatchBytes(t *testing.T) {
	t.Parallel()
	q, _ := openQueue(t, t.TempDir(), func(o *Options) {
		o.BatchMessages = 1000
		o.BatchBytes = 100
		o.Linger = time.Hour
	})
	appendRange(t, q, 0, 10)
	// Each entry encodes to more than 30 bytes, so a record holds at most 4.
	got := 0
	for got < 8 {
		b := next(t, q)
		if n := len(b.Entries); n > 4 {
			t.Errorf("record of %d entries exceeds BatchBytes", n)
		}
		got += len(b.Entries)
		q.Done(b)
	}
}

// failPut makes every Put fail, as a full disk would.
type failPut struct {
	diskqueue.Interface
	err error
}

func (f failPut) Put([]byte) error { return f.err }

// TestFailedWriteRetainsRecord: a record the disk refuses stays in memory
// and is written once the disk accepts again; meanwhile new messages are
// refused with a counted DropError; nothing accepted is lost. Only a Close
// while the disk still refuses loses the retained record, through OnDrop.
func TestFailedWriteRetainsRecord(t *testing.T) {
	t.Parallel()
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
	setDQ := func(d diskqueue.Interface) {
		q.mu.Lock()
		q.setDQ(d)
		q.mu.Unlock()
	}
	setDQ(failPut{real(), syscall.ENOSPC})

	// The third entry fills the record; its write fails, but the entries
	// are accepted and retained.
	appendRange(t, q, 0, 3)
	if !errors.Is(q.Err(), syscall.ENOSPC) {
		t.Fatalf("Err() = %v, want ENOSPC", q.Err())
	}
	// While it is retained, new entries are refused and counted.
	err := q.Append(testEntry(3))
	var de *DropError
	if !errors.As(err, &de) || de.Count != 1 || de.Reason != ReasonDiskFull || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Append while retained = %v, want a disk_full DropError of 1", err)
	}
	if err := q.Flush(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Flush while the disk refuses = %v, want ENOSPC", err)
	}

	// The disk accepts again: the retry timer writes the retained record
	// without any new Append.
	setDQ(real())
	eventually(t, "the retained record to be written after the disk recovered", func() bool { return q.Err() == nil })
	appendRange(t, q, 4, 6)
	if err := q.Flush(); err != nil {
		t.Fatal(err)
	}
	got := drain(t, q, 5)
	if want := []int{0, 1, 2, 4, 5}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("delivered %v, want %v", got, want)
	}
	select {
	case d := <-drops:
		t.Errorf("OnDrop(%d, %q) called though nothing accepted was lost", d.count, d.reason)
	default:
	}

	// Close while the disk refuses: the retained record is lost, and said so.
	setDQ(failPut{real(), syscall.ENOSPC})
	appendRange(t, q, 6, 8)
	setDQ(failClosePut{real()}) // Close still closes go-diskqueue itself
	_ = q.Close()
	select {
	case d := <-drops:
		if d.count != 2 || d.reason != ReasonLostAtStop {
			t.Errorf("OnDrop(%d, %q) at Close, want (2, %s)", d.count, d.reason, ReasonLostAtStop)
		}
	default:
		t.Error("Close lost the retained record without OnDrop")
	}
}

// failClosePut refuses Puts with ENOSPC but closes the real queue.
type failClosePut struct{ diskqueue.Interface }

func (f failClosePut) Put([]byte) error { return syscall.ENOSPC }

func (f failClosePut) rewrap(d diskqueue.Interface) diskqueue.Interface { return failClosePut{d} }

// unwrapDQ returns the go-diskqueue inside the tests' wrappers.
func unwrapDQ(d diskqueue.Interface) diskqueue.Interface {
	switch w := d.(type) {
	case failPut:
		return w.Interface
	case failClosePut:
		return w.Interface
	}
	return d
}

func TestClosed(t *testing.T) {
	t.Parallel()
	q, _ := openQueue(t, t.TempDir(), nil)
	errc := make(chan error, 1)
	go func() {
		_, err := q.Next(context.Background())
		errc <- err
	}()
	if err := q.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("blocked Next returned %v after Close, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not wake a blocked Next")
	}
	if err := q.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	if err := q.Append(testEntry(0)); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close = %v, want ErrClosed", err)
	}
	if err := q.Flush(); !errors.Is(err, ErrClosed) {
		t.Errorf("Flush after Close = %v, want ErrClosed", err)
	}
	if _, err := q.Next(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Next after Close = %v, want ErrClosed", err)
	}
	if d := q.Depth(); d != 0 {
		t.Errorf("Depth after Close = %d, want 0", d)
	}
}

// TestLingerCloseRace lets Linger timers fire while Close runs; the race
// detector and the final count check that a late timer does nothing.
func TestLingerCloseRace(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	total := 0
	for range 50 {
		q, _ := openQueue(t, dir, func(o *Options) { o.Linger = time.Nanosecond })
		appendRange(t, q, total, total+3)
		total += 3
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
	}
	q, _ := openQueue(t, dir, nil)
	checkSequence(t, drain(t, q, total), 0, total)
}

func TestNextContext(t *testing.T) {
	t.Parallel()
	q, _ := openQueue(t, t.TempDir(), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := q.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Next on an empty queue = %v, want DeadlineExceeded", err)
	}
}

func TestDoneForeignBatch(t *testing.T) {
	t.Parallel()
	q, _ := openQueue(t, t.TempDir(), nil)
	if err := q.Done(&Batch{}); err == nil {
		t.Error("Done of a batch from no queue succeeded")
	}
	if err := q.Done(nil); err == nil {
		t.Error("Done(nil) succeeded")
	}
}

func TestDepthClamped(t *testing.T) {
	t.Parallel()
	q, _ := openQueue(t, t.TempDir(), nil)
	// The count of records not read can go negative after a crash.
	q.wmu.Lock()
	q.we.depth = -5
	q.wmu.Unlock()
	if d := q.Depth(); d != 0 {
		t.Errorf("Depth with diskqueue depth -5 = %d, want 0", d)
	}
}

func TestDiskBytes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q, _ := openQueue(t, dir, nil)
	before := q.DiskBytes()
	appendRange(t, q, 0, 1000)
	if err := q.Flush(); err != nil {
		t.Fatal(err)
	}
	// An unrelated file in the directory is not the queue's.
	if err := os.WriteFile(filepath.Join(dir, "other"), make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	after := q.DiskBytes()
	if after-before < 1000*int64(len(testPrefix)) || after > 1<<20 {
		t.Errorf("DiskBytes went from %d to %d after 1000 entries", before, after)
	}
}

func TestOpenOptions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no name", Options{Dir: dir}, "must be a non-empty file name"},
		{"slash", Options{Name: "a/b", Dir: dir}, "must be a non-empty file name"},
		{"dotdot", Options{Name: "..", Dir: dir}, "must be a non-empty file name"},
		{"no dir", Options{Name: "out"}, "no directory"},
		{"percent", Options{Name: "out", Dir: filepath.Join(dir, "100%")}, "must not contain '%'"},
		{"negative", Options{Name: "out", Dir: dir, BatchMessages: -1}, "negative"},
		{"batch bytes", Options{Name: "out", Dir: dir, BatchBytes: 32 << 20}, "exceeds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := Open(tt.opts)
			if err == nil {
				q.Close()
				t.Fatalf("Open(%+v) succeeded, want error containing %q", tt.opts, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Open(%+v) = %v, want error containing %q", tt.opts, err, tt.want)
			}
		})
	}

	// A new directory is created with mode 0750.
	sub := filepath.Join(dir, "new", "queue")
	q, err := Open(Options{Name: "out", Dir: sub})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	fi, err := os.Stat(sub)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm&^0o750 != 0 {
		t.Errorf("queue directory mode = %v, want at most 0750", perm)
	}
}

func TestInFlightNote(t *testing.T) {
	for _, tc := range []struct {
		records, msgs int
		want          string
	}{
		{1, 1, "1 record (1 message) was in flight at the last stop, not confirmed delivered; it is sent again first"},
		{1, 1024, "1 record (1024 messages) was in flight at the last stop, not confirmed delivered; it is sent again first"},
		{3, 3, "3 records (3 messages) were in flight at the last stop, not confirmed delivered; they are sent again first"},
	} {
		if got := inFlightNote(tc.records, tc.msgs); got != tc.want {
			t.Errorf("inFlightNote(%d, %d) = %q, want %q", tc.records, tc.msgs, got, tc.want)
		}
	}
}

// TestAppendEncoded checks that entries encoded once (for several queues)
// and appended as such come out as Append's do, in order with them, that
// two queues can take the same encoding, and that a message too large is
// refused all the same.
func TestAppendEncoded(t *testing.T) {
	t.Parallel()
	qa, _ := openQueue(t, t.TempDir(), nil)
	qb, _ := openQueue(t, t.TempDir(), nil)
	const n = 300
	var buf []byte
	for i := range n {
		for _, q := range []*Queue{qa, qb} {
			if i%2 == 0 {
				if err := q.Append(testEntry(i)); err != nil {
					t.Fatalf("Append(%d): %v", i, err)
				}
			}
		}
		if i%2 == 1 {
			enc := EncodeEntry(buf[:0], testEntry(i))
			buf = enc.Bytes()
			for _, q := range []*Queue{qa, qb} {
				if err := q.AppendEncoded(enc); err != nil {
					t.Fatalf("AppendEncoded(%d): %v", i, err)
				}
			}
		}
	}
	for _, q := range []*Queue{qa, qb} {
		if err := q.Flush(); err != nil {
			t.Fatal(err)
		}
		var got []int
		for len(got) < n {
			b := next(t, q)
			got = append(got, entryIndexes(t, b)...) // entryIndex checks every field
			if err := q.Done(b); err != nil {
				t.Fatal(err)
			}
		}
		for i, g := range got {
			if g != i {
				t.Fatalf("entry %d holds message %d", i, g)
			}
		}
	}
	huge := testEntry(0)
	huge.Data = make([]byte, MaxDataLen+1)
	var de *DropError
	if err := qa.AppendEncoded(EncodeEntry(nil, huge)); !errors.As(err, &de) || de.Reason != ReasonTooLarge || !errors.Is(err, ErrTooLarge) {
		t.Errorf("AppendEncoded of %d bytes = %v, want a %s drop", len(huge.Data), err, ReasonTooLarge)
	}
}

// TestDoneRecyclesEntries checks that Done takes a batch's entries back,
// and that the next record is decoded into them, correctly.
func TestDoneRecyclesEntries(t *testing.T) {
	t.Parallel()
	q, _ := openQueue(t, t.TempDir(), nil)
	for _, r := range [][2]int{{0, 5}, {5, 8}} {
		appendRange(t, q, r[0], r[1])
		if err := q.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	first := next(t, q)
	checkSequence(t, entryIndexes(t, first), 0, 5)
	reused := &first.Entries[0]
	if err := q.Done(first); err != nil {
		t.Fatal(err)
	}
	if first.Entries != nil {
		t.Errorf("a done batch still has %d entries", len(first.Entries))
	}
	second := next(t, q)
	checkSequence(t, entryIndexes(t, second), 5, 8)
	if &second.Entries[0] != reused {
		t.Error("the second record's entries were not decoded into the first's")
	}
}

func (f failPut) rewrap(d diskqueue.Interface) diskqueue.Interface { return failPut{d, f.err} }
