package outputs

import (
	"math/rand/v2"
	"time"
)

// backoff yields exponentially growing waits with jitter, so that many
// relays whose upstream comes back do not reconnect in lockstep.
type backoff struct {
	initial, max time.Duration
	next         time.Duration
}

// Next returns the wait before the next attempt: half of the current step
// plus a random share of the other half.
func (b *backoff) Next() time.Duration {
	if b.next == 0 {
		b.next = b.initial
	}
	d := b.next
	b.next *= 2
	if b.next > b.max {
		b.next = b.max
	}
	half := d / 2
	return half + time.Duration(rand.Int64N(int64(half)+1))
}

// Reset starts again from the initial wait after a success.
func (b *backoff) Reset() { b.next = 0 }
