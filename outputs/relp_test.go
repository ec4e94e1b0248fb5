package outputs

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relay-syslog/relay/internal/relp"
	"github.com/relay-syslog/relay/internal/testfixture"
	"github.com/relay-syslog/relay/internal/testpeer"
	"github.com/relay-syslog/relay/queue"
)

// relpServer is an in-test RELP upstream built from internal/relp. It records
// every message it answers 200, and its behaviour is steered by hooks.
type relpServer struct {
	t  *testing.T
	ln net.Listener

	// refuse, when set, is asked for each message (numbered from 0 over
	// the server's life) whether to answer 500.
	refuse func(n int) bool
	// serverclose, when set, is asked after each message whether to send
	// serverclose and drop the connection without answering the rest.
	serverclose func(n int) bool
	// silent servers answer open but never a message.
	silent bool
	// reverse answers each burst of messages in reverse order.
	reverse bool

	mu       sync.Mutex
	msgs     []string
	received int // syslog frames read, answered or not
	maxOut   int // most frames read and not yet answered on one connection
	commands []string
	conns    map[net.Conn]struct{}
	wg       sync.WaitGroup
}

func newRELPServer(t *testing.T, configure func(*relpServer)) *relpServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &relpServer{t: t, ln: ln, conns: map[net.Conn]struct{}{}}
	if configure != nil {
		configure(s)
	}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.close)
	return s
}

func (s *relpServer) addr() string { return s.ln.Addr().String() }

func (s *relpServer) close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *relpServer) accept() {
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
			defer func() {
				c.Close()
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
			}()
			s.serve(c)
		}()
	}
}

type heldAnswer struct {
	txnr int
	code int
}

// serve runs one session: like the relay's listener, it answers a burst of
// messages when the next frame needs a read.
func (s *relpServer) serve(c net.Conn) {
	rd := relp.NewReader(c, 1<<20)
	var sess relp.ServerSession
	var held []heldAnswer
	var out []byte
	flush := func() bool {
		if s.silent {
			return true
		}
		if s.reverse {
			slices.Reverse(held)
		}
		out = out[:0]
		for _, h := range held {
			out = relp.AppendResponse(out, h.txnr, h.code, "x", nil)
		}
		held = held[:0]
		_, err := c.Write(out)
		return err == nil
	}
	for {
		f, ok, err := rd.TryNext()
		if !ok && err == nil {
			if !flush() {
				return
			}
			f, err = rd.Next()
		}
		if err != nil {
			return
		}
		kind, rsp, perr := sess.Receive(f)
		s.mu.Lock()
		s.commands = append(s.commands, f.Command)
		s.mu.Unlock()
		switch kind {
		case relp.KindSyslog:
			s.mu.Lock()
			n := s.received
			s.received++
			code := relp.CodeOK
			if s.refuse != nil && s.refuse(n) {
				code = relp.CodeError
			} else if !s.silent {
				s.msgs = append(s.msgs, string(f.Data))
			}
			held = append(held, heldAnswer{f.Txnr, code})
			s.maxOut = max(s.maxOut, len(held))
			s.mu.Unlock()
			if s.serverclose != nil && s.serverclose(n) {
				_, _ = c.Write(relp.AppendServerclose(nil))
				return
			}
		case relp.KindReply, relp.KindClose:
			if !flush() {
				return
			}
			b := relp.AppendResponse(nil, f.Txnr, rsp.Code, rsp.Text, rsp.Data)
			if _, err := c.Write(b); err != nil || kind == relp.KindClose || perr != nil {
				return
			}
		}
	}
}

func (s *relpServer) messages() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.msgs)
}

func (s *relpServer) stats() (received, maxOut int, commands []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.received, s.maxOut, slices.Clone(s.commands)
}

func relpDest(addr string, window int) *RELP {
	return NewRELP(RELPOptions{Address: addr, Window: window, ConnectTimeout: time.Second, WriteTimeout: 5 * time.Second})
}

func entries(run string, from, to int) []queue.Entry {
	var es []queue.Entry
	for i := from; i < to; i++ {
		es = append(es, queue.Entry{Data: []byte(testpeer.SeqMessage(run, i))})
	}
	return es
}

// TestRELPDeliversAndSettles: everything arrives once through the Worker
// and every batch is given back to the queue once acknowledged.
func TestRELPDeliversAndSettles(t *testing.T) {
	t.Parallel()
	for _, reverse := range []bool{false, true} {
		name := "in-order"
		if reverse {
			name = "answers-reversed"
		}
		t.Run(name, func(t *testing.T) {
			srv := newRELPServer(t, func(s *relpServer) { s.reverse = reverse })
			q := newTestQueue(t)
			fill(t, q, "relp", 20000)
			runWorker(t, q, relpDest(srv.addr(), 64))
			if !testpeer.WaitFor(30*time.Second, func() bool { return len(srv.messages()) >= 20000 }) {
				t.Fatalf("received %d of 20000", len(srv.messages()))
			}
			if !testpeer.WaitFor(30*time.Second, func() bool { return q.Depth() == 0 }) {
				t.Errorf("queue depth %d after delivery, want 0: batches not settled", q.Depth())
			}
			if tally := testpeer.Check("relp", 20000, srv.messages()); len(tally.Missing) > 0 || tally.Duplicates > 0 {
				t.Errorf("%v", tally)
			}
			if _, maxOut, _ := srv.stats(); maxOut > 64 {
				t.Errorf("up to %d messages outstanding, window 64", maxOut)
			}
		})
	}
}

// TestRELPWindow: with an upstream that never answers, Write sends exactly
// one window of messages and then fails after WriteTimeout.
func TestRELPWindow(t *testing.T) {
	t.Parallel()
	srv := newRELPServer(t, func(s *relpServer) { s.silent = true })
	d := NewRELP(RELPOptions{Address: srv.addr(), Window: 5, ConnectTimeout: time.Second, WriteTimeout: 200 * time.Millisecond})
	if err := d.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	start := time.Now()
	_, err := d.Write(context.Background(), entries("w", 0, 20))
	if err == nil || !strings.Contains(err.Error(), "no acknowledgement") {
		t.Fatalf("Write = %v, want a timeout waiting for acknowledgements", err)
	}
	if took := time.Since(start); took < 200*time.Millisecond || took > 3*time.Second {
		t.Errorf("Write failed after %v, want about the 200ms WriteTimeout", took)
	}
	if !testpeer.WaitFor(30*time.Second, func() bool { r, _, _ := srv.stats(); return r == 5 }) {
		r, _, _ := srv.stats()
		t.Fatalf("upstream read %d messages, want the window of 5", r)
	}
	if off, _ := d.Settled(time.Now()); off != 0 {
		t.Errorf("Settled = %d, want 0", off)
	}
}

// TestRELPCancelUnblocksWrite: a stop interrupts a Write waiting for room.
func TestRELPCancelUnblocksWrite(t *testing.T) {
	t.Parallel()
	srv := newRELPServer(t, func(s *relpServer) { s.silent = true })
	d := relpDest(srv.addr(), 2)
	if err := d.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := d.Write(ctx, entries("c", 0, 10))
		done <- err
	}()
	if !testpeer.WaitFor(30*time.Second, func() bool { r, _, _ := srv.stats(); return r == 2 }) {
		t.Fatal("the window was not sent")
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Write = %v, want context.Canceled", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Write did not return after cancel")
	}
	start := time.Now()
	d.Close() // broken by the cancelled Write: no close handshake
	if took := time.Since(start); took > 400*time.Millisecond {
		t.Errorf("Close after a failed Write took %v", took)
	}
}

// TestRELPSettledOffsets: Settled reports the acknowledged prefix, and a
// refused message makes it an error that stops at the refused one.
func TestRELPSettledOffsets(t *testing.T) {
	t.Parallel()
	srv := newRELPServer(t, func(s *relpServer) { s.refuse = func(n int) bool { return n == 7 } })
	d := relpDest(srv.addr(), 4)
	if err := d.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	off, err := d.Write(context.Background(), entries("s", 0, 5))
	if err != nil || off != 5 {
		t.Fatalf("Write = %d, %v; want 5", off, err)
	}
	if !testpeer.WaitFor(30*time.Second, func() bool { o, _ := d.Settled(time.Now()); return o == 5 }) {
		o, err := d.Settled(time.Now())
		t.Fatalf("Settled = %d, %v; want 5", o, err)
	}
	// Messages 5..9: number 7 is refused.
	_, _ = d.Write(context.Background(), entries("s", 5, 10))
	if !testpeer.WaitFor(30*time.Second, func() bool { _, err := d.Settled(time.Now()); return err != nil }) {
		t.Fatal("a refused message did not break the session")
	}
	off, err = d.Settled(time.Now())
	if off != 7 || !strings.Contains(err.Error(), "refused") {
		t.Errorf("Settled = %d, %v; want 7 and the refusal", off, err)
	}
}

// TestRELPResendsAfterRefusal: messages the upstream refuses (500) are sent
// again on a new connection until accepted; nothing is lost.
func TestRELPResendsAfterRefusal(t *testing.T) {
	t.Parallel()
	srv := newRELPServer(t, func(s *relpServer) {
		s.refuse = func(n int) bool { return n == 100 || n == 5000 || n == 5001 }
	})
	q := newTestQueue(t)
	fill(t, q, "x", 10000)
	m := runWorker(t, q, relpDest(srv.addr(), 128))
	if !testpeer.WaitFor(30*time.Second, func() bool { return testpeer.Check("x", 10000, srv.messages()).Delivered() == 10000 }) {
		t.Fatalf("%v", testpeer.Check("x", 10000, srv.messages()))
	}
	if !testpeer.WaitFor(30*time.Second, func() bool { return q.Depth() == 0 }) {
		t.Errorf("queue depth %d, want 0", q.Depth())
	}
	tally := testpeer.Check("x", 10000, srv.messages())
	t.Logf("%v; resent %v, send errors %v", tally, testfixture.CollectorSum(t, m.OutputResent), testfixture.CollectorSum(t, m.OutputErrors))
	if testfixture.CollectorSum(t, m.OutputErrors) < 2 {
		t.Errorf("send errors = %v, want at least 2 (one per refusal burst)", testfixture.CollectorSum(t, m.OutputErrors))
	}
}

// TestRELPServercloseMidStream: an upstream that says serverclose and drops
// the connection with answers outstanding loses nothing; the unanswered
// messages are resent.
func TestRELPServercloseMidStream(t *testing.T) {
	t.Parallel()
	srv := newRELPServer(t, func(s *relpServer) {
		s.serverclose = func(n int) bool { return n == 3000 || n == 12000 }
	})
	q := newTestQueue(t)
	fill(t, q, "sc", 20000)
	m := runWorker(t, q, relpDest(srv.addr(), 128))
	if !testpeer.WaitFor(30*time.Second, func() bool { return testpeer.Check("sc", 20000, srv.messages()).Delivered() == 20000 }) {
		t.Fatalf("%v", testpeer.Check("sc", 20000, srv.messages()))
	}
	tally := testpeer.Check("sc", 20000, srv.messages())
	resent, retries := testfixture.CollectorSum(t, m.OutputResent), testfixture.CollectorSum(t, m.OutputRetries)
	t.Logf("%v; resent %v messages, retried %v batches", tally, resent, retries)
	// The Worker counts the messages of unsettled batches as resent; the
	// batch being written when the session broke counts as one retry, and
	// the part of it already delivered arrives twice.
	if allowed := int(resent) + int(retries)*100; tally.Duplicates > allowed {
		t.Errorf("%d duplicates, more than the %d the metrics allow for", tally.Duplicates, allowed)
	}
}

// TestRELPUpstreamRestart: the upstream goes away (connections reset) and
// comes back on the same port; every message arrives.
func TestRELPUpstreamRestart(t *testing.T) {
	srv := newRELPServer(t, nil)
	addr := srv.addr()
	q := newTestQueue(t)
	fill(t, q, "rs", 5000)
	runWorker(t, q, relpDest(addr, 32))
	if !testpeer.WaitFor(10*time.Second, func() bool { return len(srv.messages()) >= 1000 }) {
		t.Fatal("nothing delivered before the restart")
	}
	srv.close()
	first := srv.messages()
	fill(t, q, "rs2", 1000) // queued while the upstream is down
	var srv2 *relpServer
	// The port may briefly be taken by a connection in TIME_WAIT of ours;
	// net.Listen sets SO_REUSEADDR, so this succeeds.
	srv2 = newRELPServerAt(t, addr)
	if !testpeer.WaitFor(20*time.Second, func() bool {
		all := append(first, srv2.messages()...)
		return testpeer.Check("rs", 5000, all).Delivered() == 5000 && testpeer.Check("rs2", 1000, all).Delivered() == 1000
	}) {
		all := append(first, srv2.messages()...)
		t.Fatalf("rs: %v; rs2: %v", testpeer.Check("rs", 5000, all), testpeer.Check("rs2", 1000, all))
	}
}

func newRELPServerAt(t *testing.T, addr string) *relpServer {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &relpServer{t: t, ln: ln, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.close)
	return s
}

// TestRELPCloseHandshake: Close on a healthy session sends close and
// waits for its answer.
func TestRELPCloseHandshake(t *testing.T) {
	t.Parallel()
	srv := newRELPServer(t, nil)
	d := relpDest(srv.addr(), 8)
	if err := d.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Write(context.Background(), entries("h", 0, 3)); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if d.Connected() {
		t.Error("Connected after Close")
	}
	_, _, cmds := srv.stats()
	if got := strings.Join(cmds, " "); got != "open syslog syslog syslog close" {
		t.Errorf("upstream saw %q", got)
	}
}

// TestRELPConnectRefused: an upstream that refuses the session, or does
// not speak RELP, makes Connect fail.
func TestRELPConnectRefused(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write(relp.AppendResponse(nil, 1, 500, "go away", nil))
			c.Close()
		}
	}()
	d := relpDest(ln.Addr().String(), 8)
	if err := d.Connect(context.Background()); err == nil || !strings.Contains(err.Error(), "500 go away") {
		t.Fatalf("Connect = %v, want the refusal", err)
	}
	if d.Connected() {
		t.Error("Connected after a failed Connect")
	}
	// A plain TCP syslog server reads open as a message and never answers.
	recv := testpeer.NewReceiver(t, "127.0.0.1:0")
	d = NewRELP(RELPOptions{Address: recv.Addr(), ConnectTimeout: 200 * time.Millisecond})
	if err := d.Connect(context.Background()); err == nil {
		t.Fatal("Connect to a plain TCP server succeeded")
	}
}
