package relay

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// How a reload changes a running listener without losing what the kernel
// holds for it.
//
// A listener whose protocol and address stay the same keeps its socket: a
// new listener with the new settings is built on a duplicate of the socket
// (dupSocket) and starts serving it, then the old one closes only its own
// descriptor. Nothing is closed in the kernel, so the connections waiting
// to be accepted, the datagrams waiting to be read and the open
// connections all stay. The old listener serves the connections it
// accepted, with the settings it accepted them with, until they end; both
// count against one max_connections (shareConnections).
//
// A listener that is removed, or must be bound again (a new address or
// protocol), is read dry before its socket closes (drain): a stream
// listener accepts what waits in its backlog and then stops accepting, and
// each of its connections, once its sender has gone quiet, reads what its
// socket holds and then ends; a datagram listener reads until its socket
// is empty.

// drainGrace bounds how long a reload waits for a listener to be read dry.
const drainGrace = 10 * time.Second

// keepsSocket reports whether a listener configured as old can hand its
// socket to one configured as next. A kafka listener has no socket: a
// changed one is closed (committing what it stored) and a new one joins
// the group.
func keepsSocket(old, next ListenerConfig) bool {
	return old.Protocol != ProtocolKafka && old.Protocol == next.Protocol && old.Address == next.Address
}

// dupSocket duplicates the descriptor of prev's socket (nothing when prev
// is nil): the duplicate keeps the socket open in the kernel after prev
// closes its own.
func dupSocket(prev listener) (net.Listener, net.PacketConn, error) {
	var f *os.File
	var err error
	switch l := prev.(type) {
	case nil:
		return nil, nil, nil
	case *tcpListener:
		f, err = l.ln.(*net.TCPListener).File()
	case *relpListener:
		f, err = l.ln.(*net.TCPListener).File()
	case *datagramListener:
		f, err = l.conn.(interface{ File() (*os.File, error) }).File()
	default:
		return nil, nil, fmt.Errorf("%T cannot hand over its socket", prev)
	}
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	if _, ok := prev.(*datagramListener); ok {
		pc, err := net.FilePacketConn(f)
		return nil, pc, err
	}
	ln, err := net.FileListener(f)
	return ln, nil, err
}

func closeSocket(ln net.Listener, pc net.PacketConn) {
	if ln != nil {
		_ = ln.Close()
	}
	if pc != nil {
		_ = pc.Close()
	}
}

// shareConnections makes next, built on prev's socket, count its
// connections together with prev's and end prev's rate-limit pauses when
// it closes.
func shareConnections(next, prev listener) {
	switch n := next.(type) {
	case *tcpListener:
		p := prev.(*tcpListener)
		p.conns.setMax(n.cfg.MaxConnections)
		n.conns, n.done = p.conns, p.done
	case *relpListener:
		p := prev.(*relpListener)
		p.conns.setMax(n.cfg.MaxConnections)
		n.conns, n.done, n.closing = p.conns, p.done, p.closing
	}
}

// retire makes l, whose socket a successor now serves, stop accepting and
// reading from it. Its open connections go on until they end.
func retire(l listener) {
	switch l := l.(type) {
	case *tcpListener:
		_ = l.ln.Close()
	case *relpListener:
		_ = l.ln.Close()
	case *datagramListener:
		// The socket file belongs to the successor now.
		l.socket = ""
		_ = l.close()
	}
}

// close closes ls's listener and the ones it retired. The newest goes
// first: they share their connections and the state that ends them.
func (ls *listenerState) close() error {
	err := ls.l.close()
	for _, r := range ls.retired {
		_ = r.l.close() // their own sockets are closed already
	}
	return err
}

// wait waits until ls's listener and the ones it retired have returned
// from serve.
func (ls *listenerState) wait() {
	<-ls.done
	for _, r := range ls.retired {
		<-r.done
	}
}

// updateListener has a listener built from lc take over ls's socket and
// returns its state; ls's listener is retired. On error ls keeps serving.
func (s *Server) updateListener(ls *listenerState, lc ListenerConfig) (*listenerState, error) {
	l, err := s.newListener(lc, ls.l)
	if err != nil {
		return nil, err
	}
	next := &listenerState{cfg: lc, l: l}
	for _, r := range ls.retired {
		select {
		case <-r.done: // its connections have all ended
		default:
			next.retired = append(next.retired, r)
		}
	}
	old := *ls
	old.retired = nil
	next.retired = append([]*listenerState{&old}, next.retired...)
	s.startListener(next)
	retire(ls.l)
	s.log.Info("listener changed in place; open connections keep their receive settings until they end, while timezone, fill_hostname and add_origin apply at once to every message an output converts, queued ones included",
		"listener", lc.Name, "address", l.addr())
	return next, nil
}

// drain reads ls's socket dry, then closes it and waits for its serving
// goroutines (see the top of this file). After drainGrace it closes what is
// left.
func (s *Server) drain(ls *listenerState) {
	deadline := time.Now().Add(drainGrace)
	switch l := ls.l.(type) {
	case *tcpListener:
		stopAccepting(l.ln, deadline)
		readDry(ls, l.conns, deadline)
	case *relpListener:
		// Closing a RELP listener ends its sessions cleanly: what was
		// stored is answered, and senders resend the rest.
		stopAccepting(l.ln, deadline)
	case *datagramListener:
		waitEmpty(l.conn, deadline)
	}
	_ = ls.close()
	ls.wait()
}

// stopAccepting waits until the serve loop has accepted every connection
// waiting in ln's backlog (or deadline passes), then closes ln. A
// connection the kernel completes after that is reset; its sender sees
// the error.
func stopAccepting(ln net.Listener, deadline time.Time) {
	for time.Now().Before(deadline) {
		if n, err := acceptQueueLen(ln); err != nil || n == 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	_ = ln.Close()
}

// quietBeforeClose is how long a connection of a listener being drained
// must have received nothing, with nothing left unread, before its reading
// side is shut down. A sender still writing, or one the relay is behind
// with, keeps its connection until drainGrace.
const quietBeforeClose = 500 * time.Millisecond

// readDry shuts down the reading side of every connection of conns once it
// is quiet: its handler reads what the kernel still holds for it, then
// meets the end of the stream and ends. It returns when every listener of
// ls has returned from serve, or at deadline.
func readDry(ls *listenerState, conns *connSet, deadline time.Time) {
	done := make(chan struct{})
	go func() {
		ls.wait()
		close(done)
	}()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		// Again on every tick: the serve loop may still add a connection
		// it accepted just before its socket closed.
		conns.forEach(func(c net.Conn) {
			if tc, ok := c.(*net.TCPConn); ok && connQuiet(tc, quietBeforeClose) {
				_ = tc.CloseRead()
			}
		})
		select {
		case <-done:
			return
		case <-tick.C:
			if time.Now().After(deadline) {
				return
			}
		}
	}
}

// waitEmpty waits until nothing is queued on the datagram socket pc (the
// serve loop has read everything), or deadline passes.
func waitEmpty(pc net.PacketConn, deadline time.Time) {
	sc, ok := pc.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	var b [1]byte
	for time.Now().Before(deadline) {
		empty := true
		if err := raw.Control(func(fd uintptr) {
			_, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			empty = errors.Is(rerr, syscall.EAGAIN)
		}); err != nil || empty {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// setMax changes max_connections; connections already open above it stay.
func (s *connSet) setMax(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.max = n
}

// forEach calls f on every open connection.
func (s *connSet) forEach(f func(net.Conn)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		f(c)
	}
}

// connGauge is a listener's connections gauge as one set of connections
// reports it: while the connections of a listener's old socket drain after
// a rebind, the old and the new socket's sets each report their own count
// and the gauge shows the sum. Set is called with the set's lock held.
type connGauge struct {
	g prometheus.Gauge
	n float64
}

func (c *connGauge) Set(v float64) {
	c.g.Add(v - c.n)
	c.n = v
}
