package queue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// drainAll takes records until none arrives for half a second (go-diskqueue
// reads ahead asynchronously, so an empty TryNext does not mean an empty
// queue) and returns the entry indexes in order.
func drainAll(t *testing.T, q *Queue) []int {
	t.Helper()
	var got []int
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		b, err := q.Next(ctx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range b.Entries {
			got = append(got, entryIndex(t, e))
		}
		if err := q.Done(b); err != nil {
			t.Fatal(err)
		}
	}
}

// produce appends entries 0 to n-1 and flushes, in a goroutine; the
// channel gets the first error, or nil.
func produce(q *Queue, n int) <-chan error {
	done := make(chan error, 1)
	go func() {
		for i := range n {
			if err := q.Append(testEntry(i)); err != nil {
				done <- err
				return
			}
		}
		done <- q.Flush()
	}()
	return done
}

// blockedProducer opens a queue capped at 4 KiB under Block and starts
// produce(n) on it; it checks that the producer is blocked, with nothing
// draining the queue, and returns the queue and produce's channel.
func blockedProducer(t *testing.T, n int) (*Queue, <-chan error) {
	t.Helper()
	q, _ := openQueue(t, t.TempDir(), func(o *Options) {
		o.MaxBytes = 4 << 10
		o.FullPolicy = Block
		o.BlockTimeout = time.Minute
		o.BatchMessages = 10
	})
	done := produce(q, n)
	select {
	case err := <-done:
		t.Fatalf("producer finished at a 4 KiB cap without a consumer: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	return q, done
}

// waitProduced waits for produce's result.
func waitProduced(t *testing.T, done <-chan error, what string) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: producer still blocked after 10 s", what)
	}
}

func TestMaxBytesDropNewest(t *testing.T) {
	t.Parallel()
	q, _ := openQueue(t, t.TempDir(), func(o *Options) {
		o.MaxBytes = 8 << 10
		o.FullPolicy = DropNewest
		o.BatchMessages = 10
	})
	accepted, dropped := 0, 0
	for i := range 2000 {
		err := q.Append(testEntry(i))
		var de *DropError
		switch {
		case err == nil:
			accepted++
		case errors.As(err, &de) && de.Reason == ReasonQueueFull && errors.Is(err, ErrFull):
			dropped++
		default:
			t.Fatalf("Append(%d): %v", i, err)
		}
	}
	if err := q.Flush(); err != nil {
		t.Fatal(err)
	}
	if dropped == 0 || accepted == 0 {
		t.Fatalf("accepted %d, dropped %d: the cap did nothing", accepted, dropped)
	}
	if got := q.queued.Load(); got > 8<<10 {
		t.Errorf("queued bytes %d exceed the cap", got)
	}
	got := drainAll(t, q)
	if len(got) != accepted {
		t.Errorf("delivered %d, accepted %d", len(got), accepted)
	}
	// Once drained, there is room again.
	if err := q.Append(testEntry(5000)); err != nil {
		t.Errorf("Append after draining: %v", err)
	}
	t.Logf("cap 8 KiB: accepted %d, dropped %d", accepted, dropped)
}

func TestMaxBytesDropOldest(t *testing.T) {
	t.Parallel()
	var evicted atomic.Int64
	q, _ := openQueue(t, t.TempDir(), func(o *Options) {
		o.MaxBytes = 8 << 10
		o.FullPolicy = DropOldest
		o.BatchMessages = 10
		o.OnDrop = func(count int, reason string, _ error) {
			if reason != ReasonEvicted {
				t.Errorf("drop reason %q, want %q", reason, ReasonEvicted)
			}
			evicted.Add(int64(count))
		}
	})
	const n = 2000
	refused := 0
	for i := range n {
		if err := q.Append(testEntry(i)); err != nil {
			refused++
		}
	}
	if err := q.Flush(); err != nil {
		t.Fatal(err)
	}
	got := drainAll(t, q)
	if evicted.Load() == 0 {
		t.Fatal("nothing evicted")
	}
	if len(got)+int(evicted.Load())+refused != n {
		t.Errorf("delivered %d + evicted %d + refused %d != appended %d", len(got), evicted.Load(), refused, n)
	}
	// What survives is the newest.
	if got[len(got)-1] != n-1 {
		t.Errorf("last delivered %d, want %d", got[len(got)-1], n-1)
	}
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("order broken at %d: %d after %d", i, got[i], got[i-1])
		}
	}
}

func TestMaxBytesBlock(t *testing.T) {
	t.Parallel()
	const n = 1000
	q, done := blockedProducer(t, n)
	// Draining lets it through, and nothing is lost.
	var got []int
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for len(got) < n {
		b, err := q.Next(ctx)
		if err != nil {
			t.Fatalf("Next after %d entries: %v", len(got), err)
		}
		for _, e := range b.Entries {
			got = append(got, entryIndex(t, e))
		}
		q.Done(b)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		if v != i {
			t.Fatalf("entry %d is %d", i, v)
		}
	}
}

func TestMaxBytesBlockTimeout(t *testing.T) {
	t.Parallel()
	q, _ := openQueue(t, t.TempDir(), func(o *Options) {
		o.MaxBytes = 2 << 10
		o.FullPolicy = Block
		o.BlockTimeout = 50 * time.Millisecond
		o.BatchMessages = 5
	})
	var err error
	for i := 0; i < 500 && err == nil; i++ {
		err = q.Append(testEntry(i))
	}
	var de *DropError
	if !errors.As(err, &de) || de.Reason != ReasonQueueFull {
		t.Fatalf("err = %v, want a queue_full DropError after the block timeout", err)
	}
}

// TestSetLimitsRaisesCap: an Append blocked on a full queue, with nothing
// draining it, goes through as soon as SetLimits raises the cap; lowering
// it again with DropNewest refuses the next message.
func TestSetLimitsRaisesCap(t *testing.T) {
	t.Parallel()
	const n = 1000
	q, done := blockedProducer(t, n)
	if err := q.SetLimits(1<<20, Block, time.Minute); err != nil {
		t.Fatal(err)
	}
	waitProduced(t, done, "after the cap was raised")
	if got := drainAll(t, q); len(got) != n {
		t.Fatalf("drained %d entries, want %d", len(got), n)
	}

	if err := q.SetLimits(1, DropNewest, 0); err != nil {
		t.Fatal(err)
	}
	var de *DropError
	if err := q.Append(testEntry(n)); !errors.As(err, &de) || de.Reason != ReasonQueueFull {
		t.Errorf("Append at a 1-byte cap under DropNewest = %v, want a queue_full DropError", err)
	}
	if err := q.SetLimits(-1, Block, 0); err == nil {
		t.Error("SetLimits with a negative cap: no error")
	}
}

// TestSetLimitsRemovesCap: setting the cap to 0 (none) while an Append
// waits for room lets it through; under DropOldest nothing is evicted for
// it.
func TestSetLimitsRemovesCap(t *testing.T) {
	t.Parallel()
	for _, policy := range []FullPolicy{Block, DropOldest} {
		const n = 1000
		q, done := blockedProducer(t, n)
		if err := q.SetLimits(0, policy, time.Minute); err != nil {
			t.Fatal(err)
		}
		waitProduced(t, done, fmt.Sprintf("policy %d, after the cap was removed", policy))
		if got := drainAll(t, q); len(got) != n {
			t.Errorf("policy %d: drained %d entries, want all %d (nothing evicted)", policy, len(got), n)
		}
	}
}

// TestQueuedBytesSurviveReopen: the cap counts what an earlier run left.
func TestQueuedBytesSurviveReopen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q, _ := openQueue(t, dir, nil)
	appendRange(t, q, 0, 1000)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	want := q.queued.Load()
	q2, _ := openQueue(t, dir, nil)
	if got := q2.queued.Load(); got != want {
		t.Errorf("queued after reopen %d, before %d", got, want)
	}
	drainAll(t, q2)
	if got := q2.queued.Load(); got != 0 {
		t.Errorf("queued after draining %d, want 0", got)
	}
}

// TestErrTracksWriteFailures: a refused write makes Err non-nil until a
// write succeeds again, without a new Append or Flush to try it.
func TestErrTracksWriteFailures(t *testing.T) {
	t.Parallel()
	q, _ := openQueue(t, t.TempDir(), nil)
	q.setDQ(failPut{q.diskq(), syscall.ENOSPC})
	q.Append(testEntry(0))
	if err := q.Flush(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Flush = %v, want ENOSPC", err)
	}
	if !errors.Is(q.Err(), syscall.ENOSPC) {
		t.Errorf("Err() = %v, want ENOSPC", q.Err())
	}
	// The disk accepts again: the recovery timer writes the record.
	q.setDQ(unwrapDQ(q.diskq()))
	eventually(t, "Err() = nil after the disk accepted the record again", func() bool { return q.Err() == nil })
	if err := q.Flush(); err != nil {
		t.Fatal(err)
	}
}

// TestMaxBytesBlockFullStopsWaiting: once a message has waited
// BlockTimeout in vain, the queue is Full and later messages that do not
// fit are dropped at once instead of each waiting BlockTimeout again (an
// output that takes nothing would otherwise hold up the listeners for
// good); when the output takes a record, messages are stored, and wait
// again, as before.
func TestMaxBytesBlockFullStopsWaiting(t *testing.T) {
	q, logs := openQueue(t, t.TempDir(), func(o *Options) {
		o.MaxBytes = 4 << 10
		o.FullPolicy = Block
		o.BlockTimeout = 50 * time.Millisecond
		o.BatchMessages = 10
	})
	var err error
	i := 0
	for ; i < 1000 && err == nil; i++ {
		err = q.Append(testEntry(i))
	}
	var de *DropError
	if !errors.As(err, &de) || de.Reason != ReasonQueueFull {
		t.Fatalf("err = %v, want a queue_full DropError after the block timeout", err)
	}
	if !q.Full() {
		t.Fatal("Full() = false after a message waited block_timeout in vain")
	}
	// A block timeout no test waits for: a message that waited would hang
	// the producer below past its deadline.
	if err := q.SetLimits(4<<10, Block, time.Hour); err != nil {
		t.Fatal(err)
	}
	const more = 200
	dropped := make(chan int, 1)
	go func() {
		n := 0
		for j := range more {
			if err := q.Append(testEntry(i + j)); errors.As(err, &de) && de.Reason == ReasonQueueFull {
				n++
			}
		}
		dropped <- n
	}()
	select {
	case n := <-dropped:
		if n != more {
			t.Errorf("%d of %d messages dropped while full, want all (nothing takes records)", n, more)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Append still waits for room after an earlier message timed out")
	}
	if !strings.Contains(logs.String(), "full") {
		t.Errorf("no log line says the queue is full:\n%s", logs)
	}

	// The output takes a record: there is room, the next message is
	// stored, and the queue is no longer Full.
	b := next(t, q)
	if err := q.Done(b); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a message is stored after a record was taken", func() bool {
		return q.Append(testEntry(5000)) == nil
	})
	if q.Full() {
		t.Error("Full() = true after a message was stored")
	}
	// Once it has room, Block waits again: with nothing draining, the
	// producer blocks (for the hour) rather than dropping, until the cap
	// is lifted.
	done := produce(q, 1000)
	select {
	case err := <-done:
		t.Fatalf("a producer at the cap finished without waiting: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	if err := q.SetLimits(0, Block, 0); err != nil {
		t.Fatal(err)
	}
	waitProduced(t, done, "after the cap was removed")
}
