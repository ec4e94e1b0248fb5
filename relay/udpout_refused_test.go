package relay

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/relay-syslog/relay/internal/testpeer"
)

// TestUDPOutputRefusedIsLogged sends through a UDP output to a port nothing
// listens on: the kernel reports the ICMP port unreachable on a later
// write. The relay must say so in its log, once (not per datagram), with
// the address, count the refusals, and not talk about an unconfirmed
// window, which a UDP output does not have.
func TestUDPOutputRefusedIsLogged(t *testing.T) {
	t.Parallel()
	dead := fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t))
	r, logs := startRelayLogged(t, t.TempDir(), `data_dir = "{{DATA}}/q"
[[listener]]
name = "tcp"
protocol = "tcp"
address = "127.0.0.1:0"
[[output]]
name = "copy"
protocol = "udp"
address = "`+dead+`"
retry_initial = "10ms"
retry_max = "50ms"
[[route]]
name = "all"
outputs = ["copy"]
`)
	sent := 0
	if !testpeer.WaitFor(30*time.Second, func() bool {
		// One message at a time, each its own batch: the refusal of one
		// comes back on the next batch's first write, so the earlier
		// datagram is lost and counted. (A refusal within a batch makes
		// the output send the whole batch again, an outage, not a loss.)
		if err := testpeer.SendTCP(r.addr("tcp"), "refused", sent, sent+1, true); err != nil {
			t.Fatal(err)
		}
		sent++
		time.Sleep(100 * time.Millisecond)
		return r.metric("relay_output_messages_dropped_total", "output", "copy", "reason", "unreachable") >= 3
	}) {
		t.Fatalf("no refusal counted after %d messages; log:\n%s", sent, logs.String())
	}
	refusals := r.metric("relay_output_messages_dropped_total", "output", "copy", "reason", "unreachable")
	lines := logLines(logs, "refuses datagrams")
	if len(lines) != 1 {
		t.Errorf("%v refusals logged in %d lines, want 1 (the first, then at most one a minute):\n%s", refusals, len(lines), strings.Join(lines, "\n"))
	} else if !strings.Contains(lines[0], "level=WARN") || !strings.Contains(lines[0], dead) {
		t.Errorf("the line is not a warning naming %s: %s", dead, lines[0])
	}
	for _, line := range logLines(logs, "unconfirmed") {
		if !strings.Contains(line, "level=DEBUG") {
			t.Errorf("a UDP output logged about an unconfirmed window: %s", line)
		}
	}
}
