// Package testpeer provides the real peers the relay's tests talk to: a TCP
// and UDP syslog receiver that records what arrives, a sender of
// sequence-numbered messages, and a runner for a real rsyslogd as sender or
// upstream. It is used by tests and by the benchmark harness; it is not part
// of the daemon.
package testpeer

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/relay-syslog/relay/internal/syslog"
)

// Receiver is a TCP syslog server that records every message it reads, with
// RFC 6587 framing detected per frame. In blackhole mode it accepts
// connections and never reads from them, like an upstream that hangs; a
// stalled Receiver does the same until StartReading.
type Receiver struct {
	ln        net.Listener
	blackhole bool
	gate      chan struct{} // closed once a stalled receiver reads
	gateOnce  sync.Once
	// A slow receiver reads at most chunk bytes every pause.
	chunk int
	pause time.Duration

	mu    sync.Mutex
	msgs  []string
	bytes int64 // read from every connection, framing included
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
	done  chan struct{}

	byConn [][]string // the messages of each connection, in accept order; mu guards it
}

// NewReceiver listens on addr ("127.0.0.1:0" for any port) and serves until
// Close; t.Cleanup closes it.
func NewReceiver(t testing.TB, addr string) *Receiver {
	t.Helper()
	r, err := ListenReceiver(addr, false)
	if err != nil {
		t.Fatalf("receiver: %v", err)
	}
	t.Cleanup(r.Close)
	return r
}

// NewBlackhole is a Receiver that never reads.
func NewBlackhole(t testing.TB, addr string) *Receiver {
	t.Helper()
	r, err := ListenReceiver(addr, true)
	if err != nil {
		t.Fatalf("blackhole: %v", err)
	}
	t.Cleanup(r.Close)
	return r
}

// NewStalledReceiver is a Receiver that accepts connections and reads
// nothing from them until StartReading, like an upstream whose process
// hangs for a while and then recovers.
func NewStalledReceiver(t testing.TB, addr string) *Receiver {
	t.Helper()
	r, err := listenReceiver(addr, false, make(chan struct{}))
	if err != nil {
		t.Fatalf("stalled receiver: %v", err)
	}
	t.Cleanup(r.Close)
	return r
}

// StartReading ends a stalled receiver's stall: it reads every connection,
// those accepted meanwhile included, from then on.
func (r *Receiver) StartReading() {
	r.gateOnce.Do(func() { close(r.gate) })
}

// NewSlowReceiver is a Receiver that reads at most chunk bytes from each
// connection every pause, like an upstream that keeps up with less than it
// is sent.
func NewSlowReceiver(t testing.TB, addr string, chunk int, pause time.Duration) *Receiver {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("slow receiver: %v", err)
	}
	r := newReceiver(ln, false, nil)
	r.chunk, r.pause = chunk, pause
	r.start()
	t.Cleanup(r.Close)
	return r
}

// ListenReceiver starts a Receiver without a testing.TB.
func ListenReceiver(addr string, blackhole bool) (*Receiver, error) {
	return listenReceiver(addr, blackhole, nil)
}

func listenReceiver(addr string, blackhole bool, gate chan struct{}) (*Receiver, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	r := newReceiver(ln, blackhole, gate)
	r.start()
	return r, nil
}

func newReceiver(ln net.Listener, blackhole bool, gate chan struct{}) *Receiver {
	return &Receiver{ln: ln, blackhole: blackhole, gate: gate, conns: map[net.Conn]struct{}{}, done: make(chan struct{})}
}

func (r *Receiver) start() {
	r.wg.Add(1)
	go r.accept()
}

// Addr is the address the receiver listens on.
func (r *Receiver) Addr() string { return r.ln.Addr().String() }

func (r *Receiver) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		r.conns[c] = struct{}{}
		id := len(r.byConn)
		r.byConn = append(r.byConn, nil)
		r.mu.Unlock()
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer func() {
				c.Close()
				r.mu.Lock()
				delete(r.conns, c)
				r.mu.Unlock()
			}()
			if r.blackhole {
				<-r.done
				return
			}
			if r.gate != nil {
				select {
				case <-r.gate:
				case <-r.done:
					return
				}
			}
			fr := syslog.NewFrameReader(countingReader{c, r}, 1<<20)
			for {
				msg, _, err := fr.Next()
				if len(msg) > 0 {
					r.mu.Lock()
					m := string(msg)
					r.msgs = append(r.msgs, m)
					r.byConn[id] = append(r.byConn[id], m)
					r.mu.Unlock()
				}
				if err != nil {
					return
				}
			}
		}()
	}
}

// Count returns how many messages arrived so far.
func (r *Receiver) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

// BytesRead returns how many bytes the receiver read from its connections,
// framing included.
func (r *Receiver) BytesRead() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bytes
}

// countingReader adds what it reads to its Receiver's byte count.
type countingReader struct {
	c net.Conn
	r *Receiver
}

func (cr countingReader) Read(p []byte) (int, error) {
	if cr.r.chunk > 0 {
		select {
		case <-time.After(cr.r.pause):
		case <-cr.r.done:
			return 0, net.ErrClosed
		}
		p = p[:min(len(p), cr.r.chunk)]
	}
	n, err := cr.c.Read(p)
	cr.r.mu.Lock()
	cr.r.bytes += int64(n)
	cr.r.mu.Unlock()
	return n, err
}

// Messages returns a copy of what arrived so far, in arrival order.
func (r *Receiver) Messages() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.msgs...)
}

// MessagesByConn returns what arrived so far connection by connection, in
// the order the connections were accepted: the order a sender that
// reconnects sent it in, even when the receiver read the end of an old
// connection after the start of a new one.
func (r *Receiver) MessagesByConn() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, msgs := range r.byConn {
		out = append(out, msgs...)
	}
	return out
}

// Close stops the receiver and closes every connection; it is idempotent.
func (r *Receiver) Close() {
	select {
	case <-r.done:
		return
	default:
	}
	close(r.done)
	r.ln.Close()
	r.mu.Lock()
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// WaitFor polls cond every few milliseconds until it holds or timeout
// passes, and reports whether it held. Tests use it instead of sleeping.
func WaitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// UDPReceiver records datagrams.
type UDPReceiver struct {
	conn *net.UDPConn
	mu   sync.Mutex
	msgs []string
	wg   sync.WaitGroup
}

// NewUDPReceiver listens on addr; t.Cleanup closes it.
func NewUDPReceiver(t testing.TB, addr string) *UDPReceiver {
	t.Helper()
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.ListenUDP("udp", ua)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadBuffer(8 << 20)
	r := &UDPReceiver{conn: c}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		buf := make([]byte, 65536)
		for {
			n, _, err := c.ReadFromUDP(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) {
					return
				}
				continue
			}
			r.mu.Lock()
			r.msgs = append(r.msgs, string(buf[:n]))
			r.mu.Unlock()
		}
	}()
	t.Cleanup(func() { c.Close(); r.wg.Wait() })
	return r
}

// Addr is the address the receiver listens on.
func (r *UDPReceiver) Addr() string { return r.conn.LocalAddr().String() }

// BytesRead returns the payload bytes of the datagrams received so far.
func (r *UDPReceiver) BytesRead() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n int64
	for _, m := range r.msgs {
		n += int64(len(m))
	}
	return n
}

// Messages returns a copy of what arrived so far.
func (r *UDPReceiver) Messages() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.msgs...)
}
