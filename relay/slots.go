package relay

import (
	"container/list"
	"net"
	"sync/atomic"
	"syscall"
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
// A candidate whose data waits unread in the kernel (its handler has not
// run yet, or waits for a full queue) is not silent or idle: it is marked
// active and passed over, so what its sender wrote is never reset away.
// s.mu must be held.
func (s *connSet) victim(now time.Time) (v *connSlot, silent bool, next time.Time) {
	for e := s.silent.Front(); e != nil; e = s.silent.Front() {
		sl := e.Value.(*connSlot)
		if sl.last.Load() != 0 { // spoke, and spoke is waiting for the lock
			s.unlinkSilent(sl)
			continue
		}
		at := sl.since.Add(silentGrace)
		if now.Before(at) {
			next = at
			break
		}
		if unreadData(sl.c) {
			sl.last.Store(now.UnixNano())
			s.unlinkSilent(sl)
			continue
		}
		return sl, true, time.Time{}
	}
	// A scan of every connection, but only at the cap and when no silent
	// one may go, at most once per eviction or wake-up (and once more per
	// candidate found with data waiting).
	for {
		var idlest *connSlot
		var oldest int64
		for _, sl := range s.conns {
			if l := sl.last.Load(); l != 0 && (idlest == nil || l < oldest) {
				idlest, oldest = sl, l
			}
		}
		if idlest == nil {
			return nil, false, next
		}
		at := time.Unix(0, oldest).Add(quietGrace)
		if now.Before(at) {
			if next.IsZero() || at.Before(next) {
				next = at
			}
			return nil, false, next
		}
		if unreadData(idlest.c) {
			idlest.last.Store(now.UnixNano())
			continue
		}
		return idlest, false, time.Time{}
	}
}

// unreadData reports whether c has bytes waiting in the kernel, with a
// non-blocking peek that leaves them there.
func unreadData(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var n int
	var b [1]byte
	_ = raw.Control(func(fd uintptr) {
		n, _, _ = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	})
	return n > 0
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
