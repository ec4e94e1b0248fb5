package relay

import (
	"fmt"
	"testing"
	"time"

	"github.com/relay-syslog/relay/internal/testpeer"
)

// TestDualDestinationOneStopped sends every message to a real rsyslog and to
// the project's receiver. rsyslog is stopped mid-stream: the receiver keeps
// getting everything at once, and rsyslog gets its backlog when it returns.
func TestDualDestinationOneStopped(t *testing.T) {
	needLong(t)
	rs, rsAddr, rsOut := rsyslogUpstream(t)
	recv := testpeer.NewReceiver(t, "127.0.0.1:0")
	r := startRelay(t, t.TempDir(), `data_dir = "{{DATA}}"`+listenersTOML()+
		tcpOutputTOML("rsyslog", rsAddr)+tcpOutputTOML("own", recv.Addr())+`
[[route]]
name = "both"
outputs = ["rsyslog", "own"]
`)
	const n = 20000
	if err := testpeer.SendTCP(r.addr("tcp"), "a", 0, n, true); err != nil {
		t.Fatal(err)
	}
	if !testpeer.WaitFor(30*time.Second, func() bool { return len(testpeer.ReadLines(rsOut)) >= n && recv.Count() >= n }) {
		t.Fatalf("before the stop: rsyslog %d, receiver %d of %d", len(testpeer.ReadLines(rsOut)), recv.Count(), n)
	}
	rs.Stop()
	if err := testpeer.SendTCP(r.addr("tcp"), "b", 0, n, true); err != nil {
		t.Fatal(err)
	}
	// The healthy destination is not held up by the stopped one.
	if !testpeer.WaitFor(30*time.Second, func() bool { return testpeer.Check("b", n, recv.Messages()).Delivered() == n }) {
		t.Fatalf("receiver while rsyslog was down: %v", testpeer.Check("b", n, recv.Messages()))
	}
	if d := r.metric("relay_queue_depth_records", "output", "rsyslog"); d == 0 {
		t.Errorf("rsyslog's queue is empty while rsyslog is down")
	}
	rs.Start(testpeer.TCPReady(rsAddr))
	if !testpeer.WaitFor(30*time.Second, func() bool { return testpeer.Check("b", n, testpeer.ReadLines(rsOut)).Delivered() == n }) {
		t.Fatalf("rsyslog after restart: %v", testpeer.Check("b", n, testpeer.ReadLines(rsOut)))
	}
	for _, c := range []struct {
		who  string
		msgs []string
	}{{"rsyslog", testpeer.ReadLines(rsOut)}, {"receiver", recv.Messages()}} {
		for _, run := range []string{"a", "b"} {
			tally := testpeer.Check(run, n, c.msgs)
			t.Logf("%s run %s: %v", c.who, run, tally)
			if len(tally.Missing) > 0 {
				t.Errorf("%s run %s: %v", c.who, run, tally)
			}
		}
	}
}

// TestFailoverToReceiverAndBack: an output with targets [rsyslog, receiver]
// in failover mode. rsyslog stops: traffic moves to the receiver; rsyslog
// returns: the probe moves traffic back. Nothing is lost.
func TestFailoverToReceiverAndBack(t *testing.T) {
	needLong(t)
	rs, rsAddr, rsOut := rsyslogUpstream(t)
	recv := testpeer.NewReceiver(t, "127.0.0.1:0")
	r := startRelay(t, t.TempDir(), `data_dir = "{{DATA}}"`+listenersTOML()+fmt.Sprintf(`
[[output]]
name = "heads"
protocol = "tcp"
targets = [%q, %q]
mode = "failover"
probe_interval = "200ms"
retry_initial = "20ms"
retry_max = "200ms"

[[route]]
name = "all"
outputs = ["heads"]
`, rsAddr, recv.Addr()))
	all := func() []string { return append(testpeer.ReadLines(rsOut), recv.Messages()...) }
	send := func(run string, n int) {
		t.Helper()
		if err := testpeer.SendTCP(r.addr("tcp"), run, 0, n, true); err != nil {
			t.Fatal(err)
		}
		if !testpeer.WaitFor(30*time.Second, func() bool { return testpeer.Check(run, n, all()).Delivered() == n }) {
			t.Fatalf("run %s: %v", run, testpeer.Check(run, n, all()))
		}
	}
	send("p", 5000)
	if recv.Count() != 0 {
		t.Errorf("secondary got %d messages while the primary was up", recv.Count())
	}
	rs.Stop()
	send("s", 5000)
	if testpeer.Check("s", 5000, recv.Messages()).Delivered() == 0 {
		t.Errorf("nothing failed over to the secondary")
	}
	rs.Start(testpeer.TCPReady(rsAddr))
	// Keep sending until the probe has moved traffic back to rsyslog.
	i := 0
	if !testpeer.WaitFor(20*time.Second, func() bool {
		run := fmt.Sprintf("back%d", i)
		i++
		send(run, 200)
		return testpeer.Check(run, 200, testpeer.ReadLines(rsOut)).Delivered() == 200
	}) {
		t.Fatal("traffic never returned to the primary")
	}
	t.Logf("failover: primary-phase %v; outage-phase on secondary %v; failback after %d rounds; target errors %v",
		testpeer.Check("p", 5000, testpeer.ReadLines(rsOut)), testpeer.Check("s", 5000, recv.Messages()), i,
		r.metric("relay_target_errors_total"))
}
