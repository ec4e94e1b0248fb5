package testpeer

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"testing"
)

// Resetter is an upstream that misbehaves a fixed number of times: it
// accepts a connection, reads a random number of bytes (at most maxBytes)
// and resets the connection (SO_LINGER 0), discarding what it read, as a
// crashing server would. After that it serves as a normal Receiver on the
// same address.
type Resetter struct {
	ln    net.Listener
	addr  string
	times int
	max   int

	mu   sync.Mutex
	n    int
	cur  net.Conn // the connection being read, closed by the cleanup
	stop bool     // set by the cleanup
	recv *Receiver
	done chan struct{}
	t    testing.TB
}

// NewResetter listens on addr; t.Cleanup closes it.
func NewResetter(t testing.TB, addr string, times, maxBytes int) *Resetter {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	r := &Resetter{ln: ln, addr: addr, times: times, max: maxBytes, done: make(chan struct{}), t: t}
	go r.run()
	t.Cleanup(func() {
		// A sender that wrote less than the reset point keeps the read
		// waiting: end it.
		ln.Close()
		r.mu.Lock()
		r.stop = true
		if r.cur != nil {
			r.cur.Close()
		}
		r.mu.Unlock()
		<-r.done
	})
	return r
}

func (r *Resetter) run() {
	defer close(r.done)
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		if r.stop {
			r.mu.Unlock()
			c.Close()
			return
		}
		r.cur = c
		r.mu.Unlock()
		_, _ = io.CopyN(io.Discard, c, int64(1+rand.IntN(r.max)))
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
		r.mu.Lock()
		if r.stop {
			r.mu.Unlock()
			return
		}
		r.cur = nil
		r.n++
		last := r.n >= r.times
		r.mu.Unlock()
		if last {
			r.ln.Close()
			recv, err := ListenReceiver(r.addr, false)
			if err != nil {
				r.t.Errorf("resetter: take over %s: %v", r.addr, err)
				return
			}
			r.mu.Lock()
			r.recv = recv
			r.mu.Unlock()
			r.t.Cleanup(recv.Close)
			return
		}
	}
}

// Count is how many connections were reset so far.
func (r *Resetter) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// Done reports whether every reset has happened and the receiver serves.
func (r *Resetter) Done() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.recv != nil
}

// Receiver is the well-behaved receiver that took over, or nil before.
func (r *Resetter) Receiver() *Receiver {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.recv
}

// SessionCap is an upstream that caps every session: on each connection it
// reads at most limit bytes, records the complete messages among them as a
// Receiver would, and resets the connection (SO_LINGER 0), so whatever the
// sender wrote beyond the cap is lost with the connection. Receivers and
// middleboxes that limit a session's length behave like this, for ever.
type SessionCap struct {
	ln    net.Listener
	limit int

	mu     sync.Mutex
	msgs   []string
	resets int
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

// NewSessionCap listens on addr; t.Cleanup closes it and its connections.
func NewSessionCap(t testing.TB, addr string, limit int) *SessionCap {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &SessionCap{ln: ln, limit: limit, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.close)
	return s
}

// Addr is the address it listens on.
func (s *SessionCap) Addr() string { return s.ln.Addr().String() }

func (s *SessionCap) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serve(c)
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
			s.mu.Lock()
			delete(s.conns, c)
			s.resets++
			s.mu.Unlock()
		}()
	}
}

// serve reads up to the cap from c, recording each message as soon as it
// is complete, as a receiver that processes what it reads would.
func (s *SessionCap) serve(c net.Conn) {
	buf := make([]byte, 0, 64<<10)
	for left := s.limit; left > 0; {
		if len(buf) == cap(buf) {
			buf = append(buf, make([]byte, len(buf))...)[:len(buf)]
		}
		n, err := c.Read(buf[len(buf):min(cap(buf), len(buf)+left)])
		left -= n
		buf = buf[:len(buf)+n]
		msgs, used := completeFrames(buf)
		buf = buf[:copy(buf, buf[used:])]
		s.mu.Lock()
		s.msgs = append(s.msgs, msgs...)
		s.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// completeFrames splits b into RFC 6587 frames, octet-counted or ending in
// a line feed, and returns the complete ones and how many bytes they took:
// a frame the cap cuts off is not a message.
func completeFrames(b []byte) (msgs []string, used int) {
	for used < len(b) {
		rest := b[used:]
		if rest[0] >= '1' && rest[0] <= '9' {
			sp := bytes.IndexByte(rest, ' ')
			if sp < 0 {
				return msgs, used
			}
			n, err := strconv.Atoi(string(rest[:sp]))
			if err != nil || len(rest) < sp+1+n {
				return msgs, used
			}
			msgs = append(msgs, string(rest[sp+1:sp+1+n]))
			used += sp + 1 + n
			continue
		}
		lf := bytes.IndexByte(rest, '\n')
		if lf < 0 {
			return msgs, used
		}
		if lf > 0 {
			msgs = append(msgs, string(rest[:lf]))
		}
		used += lf + 1
	}
	return msgs, used
}

// Messages returns a copy of the complete messages read so far.
func (s *SessionCap) Messages() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.msgs...)
}

// Resets is how many sessions it has cut so far.
func (s *SessionCap) Resets() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.resets
}

func (s *SessionCap) close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}
