package main

import (
	"math/bits"
	"time"
)

// histogram counts latencies in log-linear buckets of microseconds: exact
// below 32 µs, then 32 buckets per power of two (at most ~3% error), up to
// about 2^40 µs. It is not safe for concurrent use; the sink locks it.
type histogram struct {
	counts [41 << subBits]uint64
	n      uint64
	max    time.Duration
}

const subBits = 5

func bucketOf(us uint64) int {
	if us < 1<<subBits {
		return int(us)
	}
	l := bits.Len64(us)
	if l > 40 {
		us, l = 1<<40-1, 40
	}
	m := us >> (l - subBits - 1) // the top subBits+1 bits: [32, 64)
	return (l-subBits)<<subBits + int(m) - 1<<subBits
}

// bucketMid returns a representative value (µs) of bucket i: its midpoint.
func bucketMid(i int) float64 {
	if i < 1<<subBits {
		return float64(i)
	}
	g := i >> subBits
	m := uint64(i&(1<<subBits-1)) + 1<<subBits
	lo := m << (g - 1)
	width := uint64(1) << (g - 1)
	return float64(lo) + float64(width-1)/2
}

func (h *histogram) add(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d/time.Microsecond))]++
	h.n++
	h.max = max(h.max, d)
}

// quantile returns the latency below which a fraction q of the samples
// fall, or 0 without samples.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n-1)) + 1
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(bucketMid(i) * float64(time.Microsecond))
		}
	}
	return h.max
}
