package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relay-syslog/relay/internal/testpeer"
)

// slotsRelay runs a relay with a tcp listener capped at max connections
// (idle_timeout at its default, 10 minutes) and a TLS listener, writing to
// a file.
func slotsRelay(t *testing.T, max int) (r *testRelay, out string) {
	t.Helper()
	ca := testpeer.NewTestCA(t, "relay")
	srv := ca.Server("relay", "relay.test")
	dir := t.TempDir()
	out = filepath.Join(dir, "out.log")
	r = startRelay(t, dir, fmt.Sprintf(`data_dir = "{{DATA}}/q"
[[listener]]
name = "tcp"
protocol = "tcp"
address = "127.0.0.1:0"
max_connections = %d

[[listener]]
name = "tls"
protocol = "tls"
address = "127.0.0.1:0"
tls.cert_file = %q
tls.key_file = %q
`, max, srv.CertFile, srv.KeyFile)+fileOutTOML(out))
	return r, out
}

// openFlood opens n connections to addr, each sending first (nil: nothing),
// and waits until the relay holds them all.
func openFlood(t *testing.T, r *testRelay, n int, first func(i int) []byte) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for i := range n {
		c, err := net.DialTimeout("tcp", r.addr("tcp"), 5*time.Second)
		if err != nil {
			t.Fatalf("connection %d of the flood: %v", i, err)
		}
		conns = append(conns, c)
		if first != nil {
			if _, err := c.Write(first(i)); err != nil {
				t.Fatalf("connection %d of the flood: %v", i, err)
			}
		}
	}
	if !testpeer.WaitFor(30*time.Second, func() bool {
		return r.metric("relay_listener_connections", "listener", "tcp") >= float64(n)
	}) {
		t.Fatalf("relay holds %v connections, want %d", r.metric("relay_listener_connections", "listener", "tcp"), n)
	}
	return conns
}

// newSender is the well-behaved sender that connects while the listener is
// full: 79 messages on one new connection. It reports what arrived.
func newSender(t *testing.T, r *testRelay, out, run string) testpeer.Tally {
	t.Helper()
	const n = 79
	err := testpeer.SendTCP(r.addr("tcp"), run, 0, n, true)
	testpeer.WaitFor(60*time.Second, func() bool { return testpeer.Check(run, n, testpeer.ReadLines(out)).Delivered() == n })
	tally := testpeer.Check(run, n, testpeer.ReadLines(out))
	if tally.Delivered() != n {
		t.Errorf("a new sender while max_connections are held: %v (send: %v)", tally, err)
	} else if err != nil {
		t.Errorf("send: %v", err)
	}
	return tally
}

// TestMaxConnectionsSilentFlood: every slot of a listener is held by a
// connection that never sends. A well-behaved sender that connects then
// still gets every message through: the connection silent longest is
// evicted for it (counted), instead of the new one being accepted and
// closed under its feet.
func TestMaxConnectionsSilentFlood(t *testing.T) {
	const max = 200
	r, out := slotsRelay(t, max)
	openFlood(t, r, max, nil)
	tally := newSender(t, r, out, "after-silent")
	r.waitReason(t, "tcp", "evicted_silent", 1)
	t.Logf("%d silent connections at max_connections = %d: new sender delivered %d of 79; evicted_silent %v, too_many_connections %v",
		max, max, tally.Delivered(), r.metric("relay_listener_errors_total", "listener", "tcp", "reason", "evicted_silent"),
		r.metric("relay_listener_errors_total", "listener", "tcp", "reason", "too_many_connections"))
}

// TestMaxConnectionsIdleFlood: every slot is held by a connection that sent
// one message and then nothing. A new sender waits in the kernel's backlog
// (counted as too_many_connections) until the connection quiet longest may
// be evicted (counted), and then gets every message through; the flood's
// own messages arrive too.
func TestMaxConnectionsIdleFlood(t *testing.T) {
	needLong(t) // waits quietGrace
	const max = 200
	r, out := slotsRelay(t, max)
	openFlood(t, r, max, func(i int) []byte {
		m := testpeer.SeqMessage("idle", i)
		return fmt.Appendf(nil, "%d %s", len(m), m)
	})
	if !testpeer.WaitFor(30*time.Second, func() bool { return r.metric("relay_messages_accepted_total") >= max }) {
		t.Fatalf("the flood's messages: %v accepted, want %d", r.metric("relay_messages_accepted_total"), max)
	}
	tally := newSender(t, r, out, "after-idle")
	r.waitReason(t, "tcp", "evicted_idle", 1)
	r.waitReason(t, "tcp", "too_many_connections", 1)
	if flood := testpeer.Check("idle", max, testpeer.ReadLines(out)); flood.Delivered() != max {
		t.Errorf("the flood's own messages: %v", flood)
	}
	t.Logf("%d idle connections at max_connections = %d: new sender delivered %d of 79; evicted_idle %v, too_many_connections %v",
		max, max, tally.Delivered(), r.metric("relay_listener_errors_total", "listener", "tcp", "reason", "evicted_idle"),
		r.metric("relay_listener_errors_total", "listener", "tcp", "reason", "too_many_connections"))
}

// TestTLSSilentConnectionHandshakeLimit: a connection to a TLS listener
// that sends nothing holds its slot for the handshake limit (10 s), not
// idle_timeout (10 minutes), and is counted as a handshake timeout.
func TestTLSSilentConnectionHandshakeLimit(t *testing.T) {
	needLong(t) // waits the handshake limit
	r, _ := slotsRelay(t, 10)
	c, err := net.DialTimeout("tcp", r.addr("tls"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(60 * time.Second))
	_, err = c.Read(make([]byte, 1))
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a silent TLS connection is still open after 60 s (idle_timeout is 10 minutes)")
	}
	if err != io.EOF {
		t.Logf("read: %v", err)
	}
	t.Logf("silent TLS connection closed by the relay after %v", time.Since(start).Round(100*time.Millisecond))
	r.waitReason(t, "tls", "tls_handshake_timeout", 1)
}

// TestSlotsVictimSkipsUnreadData: at the cap, a connection that looks
// silent or idle but has data waiting in the kernel (its handler has not
// read it yet) is not evicted, so what its sender wrote is not reset away.
func TestSlotsVictimSkipsUnreadData(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	set := newConnSet(2, prometheus.NewGauge(prometheus.GaugeOpts{Name: "g"}))
	pair := func() (client net.Conn, slot *connSlot) {
		client, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { client.Close() })
		server, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { server.Close() })
		slot = set.add(context.Background(), server, func() { t.Error("waited below the cap") }, func(*connSlot, bool) {})
		return client, slot
	}
	writeAndWait := func(c net.Conn, sl *connSlot) {
		t.Helper()
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		if !testpeer.WaitFor(10*time.Second, func() bool { return unreadData(sl.c) }) {
			t.Fatal("the written byte never showed as unread")
		}
	}
	c1, sl1 := pair()
	_, sl2 := pair()
	writeAndWait(c1, sl1)

	now := time.Now()
	set.mu.Lock()
	sl1.since, sl2.since = now.Add(-time.Minute), now.Add(-time.Minute)
	v, silent, _ := set.victim(now)
	set.mu.Unlock()
	if v != sl2 || !silent {
		t.Fatalf("victim = %p (silent %v), want the connection without data %p", v, silent, sl2)
	}
	if sl1.last.Load() == 0 {
		t.Error("the connection with data waiting is still taken for silent")
	}

	// Both quiet for long, the quieter one with data waiting: the other
	// goes.
	set.mu.Lock()
	sl1.last.Store(now.Add(-time.Hour).UnixNano())
	sl2.last.Store(now.Add(-time.Minute).UnixNano())
	set.unlinkSilent(sl2)
	set.mu.Unlock()
	set.mu.Lock()
	v, silent, _ = set.victim(now)
	set.mu.Unlock()
	if v != sl2 || silent {
		t.Fatalf("victim = %p (silent %v), want the idle connection without data %p", v, silent, sl2)
	}
}
