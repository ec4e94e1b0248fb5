package relay

import (
	"net"
	"sync"
)

// connSet tracks the open connections of a stream listener: it enforces
// max_connections, keeps the connections gauge true, and lets close reach
// every connection. The zero value is not usable; see newConnSet.
type connSet struct {
	max   int // 0: no limit
	gauge interface{ Set(float64) }

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

func newConnSet(max int, gauge interface{ Set(float64) }) *connSet {
	return &connSet{max: max, gauge: gauge, conns: map[net.Conn]struct{}{}}
}

// add registers c. It closes c and reports why when the listener is closing
// (full false) or at max_connections (full true).
func (s *connSet) add(c net.Conn) (ok, full bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		c.Close()
		return false, false
	case s.max > 0 && len(s.conns) >= s.max:
		c.Close()
		return false, true
	}
	s.conns[c] = struct{}{}
	s.gauge.Set(float64(len(s.conns)))
	return true, false
}

// remove closes c and forgets it.
func (s *connSet) remove(c net.Conn) {
	c.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	s.gauge.Set(float64(len(s.conns)))
}

// closeAll marks the set closed (later adds fail) and calls each on every
// open connection. It reports whether it was the first call.
func (s *connSet) closeAll(each func(net.Conn)) (first bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	first = !s.closed
	s.closed = true
	for c := range s.conns {
		each(c)
	}
	return first
}
