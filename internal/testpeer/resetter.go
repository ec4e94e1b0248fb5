package testpeer

import (
	"io"
	"math/rand/v2"
	"net"
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
	t.Cleanup(func() { ln.Close(); <-r.done })
	return r
}

func (r *Resetter) run() {
	defer close(r.done)
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		_, _ = io.CopyN(io.Discard, c, int64(1+rand.IntN(r.max)))
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
		r.mu.Lock()
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
