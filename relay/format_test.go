package relay

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/relay-syslog/relay/internal/syslog"
	"github.com/relay-syslog/relay/internal/testpeer"
)

// TestOutputFormats sends the same lines to three outputs: raw, rfc5424 and
// rfc3164, through a listener with a fixed timezone.
func TestOutputFormats(t *testing.T) {
	t.Parallel()
	raw := testpeer.NewReceiver(t, "127.0.0.1:0")
	conv := testpeer.NewReceiver(t, "127.0.0.1:0")
	legacy := testpeer.NewReceiver(t, "127.0.0.1:0")
	r := startRelay(t, t.TempDir(), `data_dir = "{{DATA}}"
[[listener]]
name = "tcp"
protocol = "tcp"
address = "127.0.0.1:0"
timezone = "America/New_York"
`+tcpOutputTOML("raw", raw.Addr())+tcpOutputTOML("conv", conv.Addr())+`format = "rfc5424"
`+tcpOutputTOML("legacy", legacy.Addr())+`format = "rfc3164"
[[route]]
name = "all"
outputs = ["raw", "conv", "legacy"]
`)
	lines := []string{
		"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
		`<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application"] An application event`,
		"<189>123: *Mar  1 00:00:00.123 UTC: %SYS-5-CONFIG_I: Configured from console",
		"no header at all, just words",
		"<13>Nov 23 10:00:00 sshd[4711]: Accepted publickey for admin",
		"<189>124: Mar  1 00:00:00.123 IST: %SYS-5-CONFIG_I: Configured from vty",
	}
	var stream strings.Builder
	for _, l := range lines {
		fmt.Fprintf(&stream, "%d %s", len(l), l)
	}
	if err := testpeer.SendRaw(r.addr("tcp"), stream.String()); err != nil {
		t.Fatal(err)
	}
	for _, rc := range []*testpeer.Receiver{raw, conv, legacy} {
		if !testpeer.WaitFor(30*time.Second, func() bool { return rc.Count() >= len(lines) }) {
			t.Fatalf("got %d of %d", rc.Count(), len(lines))
		}
	}
	// raw: byte for byte.
	for i, got := range raw.Messages() {
		if got != lines[i] {
			t.Errorf("raw %d = %q, want %q", i, got, lines[i])
		}
	}
	// rfc5424: every line parses cleanly as RFC 5424.
	now := time.Now()
	for i, got := range conv.Messages() {
		var m syslog.Message
		syslog.Parse([]byte(got), syslog.ParseOptions{Received: now}, &m)
		if m.Format != syslog.FormatRFC5424 || m.Problem != syslog.ProblemNone {
			t.Errorf("rfc5424 %d = %q: format %v, problem %v", i, got, m.Format, m.Problem)
		}
	}
	c := conv.Messages()
	// The 3164 line is read in the listener's zone (EDT in October: -04:00),
	// and the sender's address is kept as origin.
	if !strings.Contains(c[0], "T22:14:15-04:00 mymachine su - - [origin ip=\"127.0.0.1\"] 'su root' failed") {
		t.Errorf("converted 3164 line = %q", c[0])
	}
	// 5424 passes through, with origin added to its SD.
	if !strings.HasPrefix(c[1], `<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application"][origin ip="127.0.0.1"] An application event`) {
		t.Errorf("passed-through 5424 line = %q", c[1])
	}
	// The unparseable line is wrapped whole, with PRI 13 and the sender as host.
	if !strings.HasPrefix(c[3], "<13>1 ") || !strings.HasSuffix(c[3], " no header at all, just words") || !strings.Contains(c[3], " 127.0.0.1 ") {
		t.Errorf("wrapped line = %q", c[3])
	}
	if got := r.metric("relay_parse_problems_total", "output", "conv", "reason", "no_pri"); got != 1 {
		t.Errorf("parse problems no_pri = %v, want 1", got)
	}
	// A zone name the relay does not know is counted, and the line is
	// still converted from its header, in the listener's zone (EST in
	// March: -05:00).
	if got := r.metric("relay_parse_problems_total", "output", "conv", "reason", "unknown_zone"); got != 1 {
		t.Errorf("parse problems unknown_zone = %v, want 1", got)
	}
	if !strings.Contains(c[5], "T00:00:00.123-05:00 127.0.0.1 - - - [origin ip=\"127.0.0.1\"][meta sequenceId=\"124\"] %SYS-5-CONFIG_I: Configured from vty") {
		t.Errorf("converted line with an unknown zone = %q", c[5])
	}
	// rfc3164: every line is a BSD line.
	for i, got := range legacy.Messages() {
		var m syslog.Message
		syslog.Parse([]byte(got), syslog.ParseOptions{Received: now}, &m)
		if m.Format != syslog.FormatRFC3164 {
			t.Errorf("rfc3164 %d = %q: format %v, problem %v", i, got, m.Format, m.Problem)
		}
	}
}
