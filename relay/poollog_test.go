package relay

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relay-syslog/relay/internal/testpeer"
)

// TestPoolTargetFailureIsLogged: a failover pool of two receivers; the
// first stops, so batches move to the second: the log must say which
// target failed, once however many probes fail, and once that it answers
// again when it is back. Nothing is lost meanwhile.
func TestPoolTargetFailureIsLogged(t *testing.T) {
	t.Parallel()
	first := testpeer.NewReceiver(t, "127.0.0.1:0")
	firstAddr := first.Addr()
	second := testpeer.NewReceiver(t, "127.0.0.1:0")
	r, logs := startRelayLogged(t, t.TempDir(), `data_dir = "{{DATA}}/q"`+listenersTOML()+fmt.Sprintf(`
[[output]]
name = "heads"
protocol = "tcp"
targets = [%q, %q]
mode = "failover"
probe_interval = "100ms"
retry_initial = "20ms"
retry_max = "100ms"

[[route]]
name = "all"
outputs = ["heads"]
`, firstAddr, second.Addr()))
	var before []string // what the first target got before it stopped
	all := func() []string {
		return append(append(slices.Clone(before), first.Messages()...), second.Messages()...)
	}
	sent := 0
	send := func(n int) {
		t.Helper()
		if err := testpeer.SendTCP(r.addr("tcp"), "pool", sent, sent+n, true); err != nil {
			t.Fatal(err)
		}
		sent += n
	}
	send(100)
	if !testpeer.WaitFor(30*time.Second, func() bool { return first.Count() >= 100 }) {
		t.Fatalf("before the failure: %d of 100 at the first target", first.Count())
	}
	first.Close()
	before = first.Messages()
	// Keep sending until the second target gets messages, for several
	// probe intervals, so that failed probes would show as extra lines.
	if !testpeer.WaitFor(30*time.Second, func() bool {
		send(10)
		time.Sleep(50 * time.Millisecond)
		return second.Count() >= 50
	}) {
		t.Fatalf("nothing failed over: second target has %d", second.Count())
	}
	failed := logLines(logs, "pool target failed")
	if len(failed) != 1 {
		t.Errorf("%d 'pool target failed' lines, want 1:\n%s", len(failed), strings.Join(failed, "\n"))
	} else if !strings.Contains(failed[0], "target="+firstAddr) || !strings.Contains(failed[0], "level=WARN") || !strings.Contains(failed[0], "output=heads") {
		t.Errorf("the failure line does not name the output and target %s as a warning: %s", firstAddr, failed[0])
	}
	first = testpeer.NewReceiver(t, firstAddr)
	if !testpeer.WaitFor(30*time.Second, func() bool {
		send(10)
		time.Sleep(50 * time.Millisecond)
		return len(logLines(logs, "pool target answers again", "target="+firstAddr)) > 0
	}) {
		t.Fatalf("no 'answers again' line after the first target came back:\n%s", logs.String())
	}
	if !testpeer.WaitFor(30*time.Second, func() bool {
		return testpeer.Check("pool", sent, all()).Delivered() == sent
	}) {
		t.Errorf("lost messages: %v", testpeer.Check("pool", sent, all()))
	}
	if n := len(logLines(logs, "pool target failed")); n != 1 {
		t.Errorf("%d 'pool target failed' lines after the recovery, want 1", n)
	}
}
