package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/relay-syslog/relay/internal/testpeer"
)

// TestOrderAcrossOutageRestartAndKill sends one connection's messages
// through the relay while its upstream is healthy, another's while the
// upstream is down, and then, while that backlog drains, restarts the relay
// with SIGTERM and kills it with SIGKILL. Each run must arrive complete and
// in order: first arrivals in sending order, and every repeat part of a
// replay of a suffix (testpeer.CheckOrder), read connection by connection
// in the order the relay opened them.
func TestOrderAcrossOutageRestartAndKill(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test")
	}
	upstreamAddr := fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t))
	up1 := testpeer.NewReceiver(t, upstreamAddr)
	s := newSetup(t, fmt.Sprintf(`
[[output]]
name = "head"
protocol = "tcp"
address = %q
retry_initial = "20ms"
retry_max = "200ms"
queue.batch_messages = 100
[[route]]
name = "all"
outputs = ["head"]
`, upstreamAddr))
	p := s.start(t, relayBin)

	const nA, nB = 20000, 200000
	if err := testpeer.SendTCP(s.tcpAddr, "a", 0, nA, true); err != nil {
		t.Fatal(err)
	}
	if !testpeer.WaitFor(60*time.Second, func() bool { return testpeer.Check("a", nA, up1.Messages()).Delivered() == nA }) {
		t.Fatalf("run a: %v\n%s", testpeer.Check("a", nA, up1.Messages()), p.logs.String())
	}

	// The outage: run b waits in the queue.
	up1.Close()
	if err := testpeer.SendTCP(s.tcpAddr, "b", 0, nB, true); err != nil {
		t.Fatal(err)
	}
	if !testpeer.WaitFor(60*time.Second, func() bool {
		acc, ok1 := p.metric("relay_messages_accepted_total")
		unw, ok2 := p.metric("relay_queue_unwritten_messages")
		return ok1 && ok2 && acc >= nA+nB && unw == 0
	}) {
		t.Fatalf("run b was not stored:\n%s", p.logs.String())
	}
	up2 := testpeer.NewReceiver(t, upstreamAddr)

	// While the backlog drains: a restart, then a kill.
	if !testpeer.WaitFor(60*time.Second, func() bool { return up2.Count() >= nB/10 }) {
		t.Fatalf("the backlog does not drain:\n%s", p.logs.String())
	}
	p.stop()
	p = s.start(t, relayBin)
	if !testpeer.WaitFor(60*time.Second, func() bool { return up2.Count() >= nB/2 }) {
		t.Fatalf("the backlog does not drain after the restart:\n%s", p.logs.String())
	}
	p.kill9()
	p = s.start(t, relayBin)
	if !testpeer.WaitFor(2*time.Minute, func() bool { return testpeer.Check("b", nB, up2.Messages()).Delivered() == nB }) {
		t.Fatalf("run b after the kill: %v\n%s", testpeer.Check("b", nB, up2.Messages()), p.logs.String())
	}
	p.stop()

	msgs := append(up1.MessagesByConn(), up2.MessagesByConn()...)
	for _, run := range []struct {
		name string
		n    int
	}{{"a", nA}, {"b", nB}} {
		tally := testpeer.Check(run.name, run.n, msgs)
		order := testpeer.CheckOrder(run.name, msgs)
		t.Logf("run %s: %v; %v", run.name, tally, order)
		if len(tally.Missing) > 0 {
			t.Errorf("run %s lost messages: %v", run.name, tally)
		}
		if !order.Ok() {
			t.Errorf("run %s out of order: %v", run.name, order)
		}
	}
}
