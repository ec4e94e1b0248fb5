package queue

import (
	"testing"
	"time"
)

// TestOldestWaiting follows the head record: the receive time of the first
// entry of the oldest record taken and not done, kept when a later record
// is done first, and zero once everything taken is done.
func TestOldestWaiting(t *testing.T) {
	t.Parallel()
	q, _ := openQueue(t, t.TempDir(), func(o *Options) { o.BatchMessages = 10; o.Linger = time.Minute })
	if got := q.OldestWaiting(); !got.IsZero() {
		t.Fatalf("empty queue: OldestWaiting = %v", got)
	}
	appendRange(t, q, 0, 30)
	b0, b1, b2 := next(t, q), next(t, q), next(t, q)
	want := func(i int) time.Time { return testEntry(i).Received }
	if got := q.OldestWaiting(); !got.Equal(want(0)) {
		t.Fatalf("three in flight: OldestWaiting = %v, want %v", got, want(0))
	}
	if err := q.Done(b1); err != nil {
		t.Fatal(err)
	}
	if got := q.OldestWaiting(); !got.Equal(want(0)) {
		t.Fatalf("second done first: OldestWaiting = %v, want %v", got, want(0))
	}
	if err := q.Done(b0); err != nil {
		t.Fatal(err)
	}
	if got := q.OldestWaiting(); !got.Equal(want(20)) {
		t.Fatalf("first two done: OldestWaiting = %v, want %v", got, want(20))
	}
	if err := q.Done(b2); err != nil {
		t.Fatal(err)
	}
	if got := q.OldestWaiting(); !got.IsZero() {
		t.Fatalf("all done: OldestWaiting = %v", got)
	}
}

// TestOldestWaitingAfterRestart: records found in flight in the journal are
// the oldest once they are taken again.
func TestOldestWaitingAfterRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q, _ := openQueue(t, dir, func(o *Options) { o.BatchMessages = 10; o.Linger = time.Minute })
	appendRange(t, q, 0, 20)
	next(t, q) // in flight at Close
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	q2, _ := openQueue(t, dir, func(o *Options) { o.BatchMessages = 10; o.Linger = time.Minute })
	b := next(t, q2)
	if got, want := q2.OldestWaiting(), testEntry(0).Received; !got.Equal(want) {
		t.Fatalf("OldestWaiting = %v, want %v", got, want)
	}
	if err := q2.Done(b); err != nil {
		t.Fatal(err)
	}
	if got := q2.OldestWaiting(); !got.IsZero() {
		t.Fatalf("after Done: OldestWaiting = %v", got)
	}
}
