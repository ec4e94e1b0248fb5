package queue

import (
	"sync/atomic"
	"time"
)

// The age of the oldest message waiting is the one number an alert on a
// stuck output needs. The oldest message not yet delivered is the first
// entry of the oldest record the output has taken and not marked done: the
// worker takes records as soon as it can, so while records wait, the head
// one is in flight (an output that cannot deliver keeps retrying what it
// took). Tracking the records taken costs one pointer per record in flight
// and nothing per message; the age itself is computed when it is read.

// ageState keeps the records taken in the order Next returned them; the
// front is trimmed as records are done. q.cmu guards taken.
type ageState struct {
	taken []*Batch
	// oldest is the receive time, in Unix nanoseconds, of the first entry
	// of the oldest record not done; 0 when none is in flight.
	oldest atomic.Int64
}

// ageTaken notes a record returned by Next. q.cmu must be held.
func (q *Queue) ageTaken(b *Batch) {
	q.age.taken = append(q.age.taken, b)
	if len(q.age.taken) == 1 {
		q.age.oldest.Store(batchReceived(b))
	}
}

// ageDone trims the records done off the front after a Done. Records done
// out of order stay until those before them are done. q.cmu must be held.
func (q *Queue) ageDone() {
	t := q.age.taken
	i := 0
	for i < len(t) && t[i].done {
		t[i] = nil
		i++
	}
	if i == 0 {
		return
	}
	q.age.taken = t[i:]
	if len(q.age.taken) == 0 {
		q.age.taken = nil // let the array go
		q.age.oldest.Store(0)
		return
	}
	q.age.oldest.Store(batchReceived(q.age.taken[0]))
}

// batchReceived returns the receive time of b's first entry that has one,
// or the time now if none has (the record is at least that old).
func batchReceived(b *Batch) int64 {
	for _, e := range b.Entries {
		if !e.Received.IsZero() {
			return e.Received.UnixNano()
		}
	}
	return time.Now().UnixNano()
}

// OldestWaiting returns the receive time of the oldest message the output
// has taken and not yet delivered, or the zero time when it has nothing in
// flight. Records still in go-diskqueue are newer than those in flight;
// they are counted only once the output takes them, which a running output
// does at once unless it holds undelivered records already.
func (q *Queue) OldestWaiting() time.Time {
	if ns := q.age.oldest.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}
