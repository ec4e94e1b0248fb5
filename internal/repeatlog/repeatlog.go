// Package repeatlog keeps an error that repeats from flooding the log. A
// full disk refuses every message and fails every metadata sync; a line for
// each would be megabytes a minute, hide everything else and fill the disk
// that holds the log too. So the first occurrence of a key is logged at
// once, later ones within the interval are only counted, and when the
// interval ends the count is logged with the latest occurrence's line.
package repeatlog

import (
	"sync"
	"time"
)

// Limiter limits lines per key. Keys should come from a small fixed set
// (a message format, an output and a reason): their state is kept for the
// life of the Limiter.
type Limiter struct {
	interval time.Duration

	mu      sync.Mutex
	keys    map[string]*state
	stopped bool
}

type state struct {
	quietUntil time.Time // no line for the key before this
	n          int       // counted since the last line
	emit       func(n int, summary bool)
	timer      *time.Timer
}

// New returns a Limiter that logs each key at most once per interval.
func New(interval time.Duration) *Limiter {
	return &Limiter{interval: interval, keys: map[string]*state{}}
}

// Interval is the time a summary line covers at most.
func (l *Limiter) Interval() time.Duration { return l.interval }

// Log reports count occurrences (or messages, bytes: any amount that adds
// up) of key. If key was not logged within the interval, emit is called at
// once with count and summary false. Otherwise count is added to the key's
// tally and, when the interval ends, the latest emit is called with the
// tally and summary true. emit is never called with the Limiter's lock
// held, and never after Stop.
func (l *Limiter) Log(key string, count int, emit func(n int, summary bool)) {
	now := time.Now()
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return
	}
	s := l.keys[key]
	if s == nil {
		s = &state{}
		l.keys[key] = s
	}
	if s.n == 0 && !now.Before(s.quietUntil) {
		s.quietUntil = now.Add(l.interval)
		l.mu.Unlock()
		emit(count, false)
		return
	}
	s.n += count
	s.emit = emit
	if s.timer == nil {
		s.timer = time.AfterFunc(s.quietUntil.Sub(now), func() { l.summarise(key) })
	}
	l.mu.Unlock()
}

// summarise logs the tally of key, if any.
func (l *Limiter) summarise(key string) {
	l.mu.Lock()
	s := l.keys[key]
	s.timer = nil
	if l.stopped || s.n == 0 {
		l.mu.Unlock()
		return
	}
	n, emit := s.n, s.emit
	s.n, s.emit = 0, nil
	s.quietUntil = time.Now().Add(l.interval)
	l.mu.Unlock()
	emit(n, true)
}

// Stop logs every pending tally now and makes later calls to Log do
// nothing; a component calls it when it stops, so that its last counts are
// not lost and nothing is logged after it has gone.
func (l *Limiter) Stop() {
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return
	}
	l.stopped = true
	type pending struct {
		n    int
		emit func(int, bool)
	}
	var ps []pending
	for _, s := range l.keys {
		if s.timer != nil {
			s.timer.Stop()
			s.timer = nil
		}
		if s.n > 0 {
			ps = append(ps, pending{s.n, s.emit})
			s.n, s.emit = 0, nil
		}
	}
	l.mu.Unlock()
	for _, p := range ps {
		p.emit(p.n, true)
	}
}
