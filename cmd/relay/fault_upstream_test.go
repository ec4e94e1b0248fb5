package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/relay-syslog/relay/internal/testpeer"
)

// TestFaultUpstreamCapsSessions: an upstream that resets every connection
// after 1 MB, for ever, as receivers and middleboxes that cap a session do.
// Nothing written shortly before such a reset can be confirmed, so an
// output that always fills the next connection with the same unconfirmed
// head never gets past it. The output must make progress: every message
// arrives, and the duplicates are bounded and counted as resent.
func TestFaultUpstreamCapsSessions(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test")
	}
	// confirm_delay must outlast how long the upstream may take to read
	// what its kernel acknowledged, as in production: a batch confirmed
	// while it still sits unread beyond the cap is lost with the reset.
	// On a busy machine a reader can lag by tens of milliseconds.
	addr := fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t))
	s := newSetup(t, fmt.Sprintf(`
[[output]]
name = "capped"
protocol = "tcp"
address = %q
confirm_delay = "1s"
retry_initial = "10ms"
retry_max = "100ms"
[[route]]
name = "all"
outputs = ["capped"]
`, addr))
	p := s.start(t, relayBin)
	// The backlog waits while the upstream is down, so every session starts
	// with more to send than the cap.
	const total = 40000
	if err := testpeer.SendTCP(s.tcpAddr, "cap", 0, total, true); err != nil {
		t.Fatal(err)
	}
	if !testpeer.WaitFor(20*time.Second, func() bool {
		acc, _ := p.metric("relay_messages_accepted_total")
		unw, _ := p.metric("relay_queue_unwritten_messages")
		return acc == total && unw == 0
	}) {
		t.Fatalf("messages not queued:\n%s", p.logs.String())
	}
	upstream := testpeer.NewSessionCap(t, addr, 1<<20)
	delivered := func() bool { return testpeer.Check("cap", total, upstream.Messages()).Delivered() == total }
	ok := testpeer.WaitFor(90*time.Second, delivered)
	tally := testpeer.Check("cap", total, upstream.Messages())
	resent, _ := p.metric("relay_output_messages_resent_total", `output="capped"`)
	depth, _ := p.metric("relay_queue_depth_records", `output="capped"`)
	t.Logf("sessions capped at 1 MB: sent %d, delivered %d, duplicates %d, resent counted %v, sessions %d, records still queued %v",
		total, tally.Delivered(), tally.Duplicates, resent, upstream.Resets(), depth)
	if !ok {
		t.Fatalf("no progress against an upstream that caps sessions: %v\n%s", tally, p.logs.String())
	}
	// Every duplicate the upstream saw was sent again by the relay, and
	// counted so.
	if float64(tally.Duplicates) > resent {
		t.Errorf("upstream saw %d duplicates, relay_output_messages_resent_total = %v", tally.Duplicates, resent)
	}
	// A broken session resends at most what the output held unconfirmed,
	// which halves from the second broken session on until a session
	// carries mostly new messages: a few times the backlog in all, where
	// an output that resends its whole window each time never stops.
	if resent > 4*total {
		t.Errorf("relay_output_messages_resent_total = %v for %d messages", resent, total)
	}
	p.stop()
}

// TestFaultUpstreamStalls: an upstream that accepts connections and reads
// nothing, until it recovers. Within write_timeout of the stall the output
// reads relay_output_up 0 and logs that it stopped delivering; for as long
// as the stall lasts it stays so, its last delivery time stands still and
// no reconnect passes for a recovery; when the upstream reads again, every
// message arrives and the output logs that it resumed.
func TestFaultUpstreamStalls(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test")
	}
	upstream := testpeer.NewStalledReceiver(t, "127.0.0.1:0")
	const writeTimeout = 2 * time.Second
	s := newSetup(t, fmt.Sprintf(`
[[output]]
name = "stalled"
protocol = "tcp"
address = %q
write_timeout = %q
confirm_delay = "50ms"
retry_initial = "10ms"
retry_max = "200ms"
[[route]]
name = "all"
outputs = ["stalled"]
`, upstream.Addr(), writeTimeout.String()))
	p := s.start(t, relayBin)
	const total = 50000
	metric := func(name string) float64 {
		v, ok := p.metric(name, `output="stalled"`)
		if !ok {
			t.Fatalf("/metrics did not answer:\n%s", p.logs.String())
		}
		return v
	}
	if !testpeer.WaitFor(20*time.Second, func() bool { return metric("relay_output_up") == 1 }) {
		t.Fatalf("output not up before the test:\n%s", p.logs.String())
	}
	began := time.Now()
	if err := testpeer.SendTCP(s.tcpAddr, "stall", 0, total, true); err != nil {
		t.Fatal(err)
	}
	const stopped, resumed = "output stopped delivering", "output resumed delivering"
	if !testpeer.WaitFor(30*time.Second, func() bool {
		return metric("relay_output_up") == 0 && strings.Contains(p.logs.String(), stopped)
	}) {
		t.Fatalf("a stalled upstream still reads as up after %v:\n%s", time.Since(began), p.logs.String())
	}
	detected := time.Since(began)
	last := metric("relay_output_last_delivery_timestamp_seconds")

	// The stall goes on for several write timeouts, with reconnects: the
	// output stays down and nothing counts as delivered.
	watch := time.Now()
	for time.Since(watch) < 3*writeTimeout {
		if up := metric("relay_output_up"); up != 0 {
			t.Fatalf("relay_output_up = %v while the upstream still reads nothing:\n%s", up, p.logs.String())
		}
		if l := metric("relay_output_last_delivery_timestamp_seconds"); l != last {
			t.Fatalf("last delivery moved from %v to %v while the upstream reads nothing:\n%s", last, l, p.logs.String())
		}
		time.Sleep(100 * time.Millisecond) // sampling the stall, not synchronisation
	}
	if strings.Contains(p.logs.String(), resumed) {
		t.Fatalf("the output logged a recovery while the upstream read nothing:\n%s", p.logs.String())
	}
	errs := metric("relay_output_send_errors_total")

	upstream.StartReading()
	if !testpeer.WaitFor(60*time.Second, func() bool { return testpeer.Check("stall", total, upstream.Messages()).Delivered() == total }) {
		t.Fatalf("after the stall: %v\n%s", testpeer.Check("stall", total, upstream.Messages()), p.logs.String())
	}
	if !testpeer.WaitFor(30*time.Second, func() bool {
		return metric("relay_output_up") == 1 && strings.Contains(p.logs.String(), resumed)
	}) {
		t.Fatalf("no recovery reported after the stall:\n%s", p.logs.String())
	}
	if l := metric("relay_output_last_delivery_timestamp_seconds"); l <= last {
		t.Errorf("last delivery %v, not after the stall's %v", l, last)
	}
	tally := testpeer.Check("stall", total, upstream.Messages())
	var lines []string
	for _, l := range strings.Split(p.logs.String(), "\n") {
		if strings.Contains(l, "output=stalled") {
			lines = append(lines, l)
		}
	}
	t.Logf("stalled upstream, write_timeout %v: up=0 and %q logged %v after the messages were sent; send errors during the stall %v; sent %d, delivered %d, duplicates %d; output log:\n%s",
		writeTimeout, stopped, detected.Round(100*time.Millisecond), errs, total, tally.Delivered(), tally.Duplicates, strings.Join(lines, "\n"))
	p.stop()
}
