package relay

import (
	"container/list"
	"net"
	"sync/atomic"
	"time"
)

// At max_connections a stream listener makes room for a new connection by
// closing one that is not using its slot: first the one that has sent
// nothing for longest, once it has been silent for silentGrace (a real
// sender, TLS or not, speaks first and at once); else the one quiet for
// longest, once quiet for quietGrace. When no connection may be evicted
// yet, the listener stops accepting until one may or a slot frees: new
// connections wait in the kernel's backlog, their data in its buffers,
// rather than being accepted and closed, which would lose what the sender
// already wrote. So a flood of connections that open and say nothing, or
// say something and then nothing, delays a new sender by seconds, never
// locks it out.
const (
	silentGrace = time.Second
	quietGrace  = 10 * time.Second
)

// connSlot is one connection's place in a connSet. The connection's
// handler reports data through active; the accept loop reads the times
// when it needs a connection to evict.
type connSlot struct {
	c     net.Conn
	set   *connSet
	since time.Time    // accepted
	last  atomic.Int64 // Unix nanoseconds of the last data read; 0 until the first
	// elem is the slot's place in set.silent while it has sent nothing;
	// set.mu guards it.
	elem *list.Element
}

// active records that data arrived from the connection at now. It costs an
// atomic store per read from the socket, and the set's lock once, at the
// first data.
func (sl *connSlot) active(now time.Time) {
	if sl.last.Swap(now.UnixNano()) == 0 {
		sl.set.spoke(sl)
	}
}

// spoke takes sl off the list of connections that have sent nothing.
func (s *connSet) spoke(sl *connSlot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unlinkSilent(sl)
}

func (s *connSet) unlinkSilent(sl *connSlot) {
	if sl.elem != nil {
		s.silent.Remove(sl.elem)
		sl.elem = nil
	}
}

// victim returns the connection to evict at now, or nil and the time at
// which one may be evicted if none changes (zero: none ever, by itself).
// s.mu must be held.
func (s *connSet) victim(now time.Time) (v *connSlot, silent bool, next time.Time) {
	for e := s.silent.Front(); e != nil; e = s.silent.Front() {
		sl := e.Value.(*connSlot)
		if sl.last.Load() != 0 { // spoke, and spoke is waiting for the lock
			s.unlinkSilent(sl)
			continue
		}
		at := sl.since.Add(silentGrace)
		if !now.Before(at) {
			return sl, true, time.Time{}
		}
		next = at
		break
	}
	// A scan of every connection, but only at the cap and when no silent
	// one may go, at most once per eviction or wake-up.
	var idlest *connSlot
	var oldest int64
	for _, sl := range s.conns {
		if l := sl.last.Load(); l != 0 && (idlest == nil || l < oldest) {
			idlest, oldest = sl, l
		}
	}
	if idlest != nil {
		at := time.Unix(0, oldest).Add(quietGrace)
		if !now.Before(at) {
			return idlest, false, time.Time{}
		}
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	return nil, false, next
}

// evict forgets sl and closes its connection with a reset: the sender's
// next write fails at once, and it reconnects, instead of writing into a
// connection that is gone. Its handler sees the connection closed and
// ends. s.mu must be held.
func (s *connSet) evict(sl *connSlot) {
	s.unlinkSilent(sl)
	delete(s.conns, sl.c)
	if tc, ok := sl.c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	sl.c.Close()
}
