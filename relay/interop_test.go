package relay

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relay-syslog/relay/internal/testpeer"
)

// These tests run the relay between real peers: rsyslogd as upstream and as
// sender, and util-linux logger as a client. Outside CI they skip when the
// program is missing; with CI=true they fail instead.

// rsyslogUpstream starts rsyslogd receiving TCP and writing raw messages to
// a file, and returns its address and the file.
func rsyslogUpstream(t *testing.T) (*testpeer.Rsyslog, string, string) {
	t.Helper()
	port := testpeer.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	rs := testpeer.StartRsyslog(t, testpeer.UpstreamConf(port), testpeer.TCPReady(addr))
	return rs, addr, filepath.Join(rs.Dir, "out.log")
}

// TestRsyslogUpstreamExactlyOnce sends 100,000 sequence-numbered messages
// over TCP and 10,000 over UDP through the relay to a real rsyslog, and
// finds each exactly once in rsyslog's output.
func TestRsyslogUpstreamExactlyOnce(t *testing.T) {
	needLong(t)
	_, upstream, out := rsyslogUpstream(t)
	r := startRelay(t, t.TempDir(), `data_dir = "{{DATA}}"`+listenersTOML()+tcpOutputTOML("head", upstream)+`
[[route]]
name = "all"
outputs = ["head"]
`)
	const nTCP, nUDP = 100000, 10000
	errc := make(chan error, 1)
	go func() { errc <- testpeer.SendUDP(r.addr("udp"), "udp", 0, nUDP) }()
	if err := testpeer.SendTCP(r.addr("tcp"), "tcp", 0, nTCP, true); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !testpeer.WaitFor(60*time.Second, func() bool { return len(testpeer.ReadLines(out)) >= nTCP+nUDP }) {
		t.Fatalf("rsyslog wrote %d lines, want %d", len(testpeer.ReadLines(out)), nTCP+nUDP)
	}
	lines := testpeer.ReadLines(out)
	for _, c := range []struct {
		run string
		n   int
	}{{"tcp", nTCP}, {"udp", nUDP}} {
		tally := testpeer.Check(c.run, c.n, lines)
		t.Logf("%s: %v", c.run, tally)
		if len(tally.Missing) > 0 || tally.Duplicates > 0 {
			t.Errorf("%s: %v", c.run, tally)
		}
	}
	// The raw bytes arrive unchanged.
	if want := testpeer.SeqMessage("tcp", 42); !contains(lines, want) {
		t.Errorf("rsyslog output lacks the byte-exact line %q", want)
	}
}

// TestRsyslogUpstreamOutage stops the rsyslog upstream for 10 seconds in the
// middle of a stream and starts it again: nothing is lost; duplicates, if
// the broken connection forced a resend, are reported.
func TestRsyslogUpstreamOutage(t *testing.T) {
	needLong(t)
	rs, upstream, out := rsyslogUpstream(t)
	r := startRelay(t, t.TempDir(), `data_dir = "{{DATA}}"`+listenersTOML()+tcpOutputTOML("head", upstream)+`
[[route]]
name = "all"
outputs = ["head"]
`)
	const n = 100000
	sent := make(chan error, 1)
	go func() {
		// Send in slices so the outage falls in the middle of the stream.
		for i := 0; i < n; i += 1000 {
			if err := testpeer.SendTCP(r.addr("tcp"), "out", i, i+1000, true); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	if !testpeer.WaitFor(30*time.Second, func() bool { return len(testpeer.ReadLines(out)) >= n/4 }) {
		t.Fatalf("rsyslog got only %d lines before the outage", len(testpeer.ReadLines(out)))
	}
	rs.Stop()
	before := len(testpeer.ReadLines(out))
	outageEnd := time.Now().Add(10 * time.Second)
	// While the upstream is down the relay keeps accepting and queues.
	testpeer.WaitFor(10*time.Second, func() bool { return time.Now().After(outageEnd) })
	if err := <-sent; err != nil {
		t.Fatalf("sending during the outage: %v", err)
	}
	if got := r.metric("relay_messages_accepted_total"); got != n {
		t.Errorf("accepted %v during the outage, want %d", got, n)
	}
	rs.Start(testpeer.TCPReady(upstream))
	// rsyslog stops reading at SIGTERM and keeps its connections open
	// while it shuts down; what it acknowledged and never read is lost
	// when it closes them. Plain TCP cannot tell which messages those
	// were: the relay counts every one that may have been (an upper bound).
	// Everything else must arrive.
	possiblyLost := func() float64 { return r.metric("relay_output_messages_possibly_lost_total") }
	if !testpeer.WaitFor(60*time.Second, func() bool {
		missing := n - testpeer.Check("out", n, testpeer.ReadLines(out)).Delivered()
		return missing == 0 || r.metric("relay_queue_depth_records") == 0 && float64(missing) <= possiblyLost()
	}) {
		t.Fatalf("after the outage: %v; possibly lost %v", testpeer.Check("out", n, testpeer.ReadLines(out)), possiblyLost())
	}
	tally := testpeer.Check("out", n, testpeer.ReadLines(out))
	t.Logf("outage: %d lines before the stop; %v; relay resent %v, retries %v, possibly lost %v", before, tally,
		r.metric("relay_output_messages_resent_total"), r.metric("relay_output_retries_total"), possiblyLost())
}

// TestRsyslogSender points a real rsyslog omfwd at the relay, over UDP and
// over TCP with octet counting, and checks every message arrives.
func TestRsyslogSender(t *testing.T) {
	needLong(t)
	for _, tc := range []struct {
		name, listener, omfwd string
	}{
		{"udp", "udp", `protocol="udp"`},
		{"tcp-octet-counted", "tcp", `protocol="tcp" TCP_Framing="octet-counted"`},
		{"tcp-lf", "tcp", `protocol="tcp"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recv := testpeer.NewReceiver(t, "127.0.0.1:0")
			r := startRelay(t, t.TempDir(), `data_dir = "{{DATA}}"`+listenersTOML()+tcpOutputTOML("head", recv.Addr())+`
[[route]]
name = "all"
outputs = ["head"]
`)
			relayHost, relayPort, _ := strings.Cut(r.addr(tc.listener), ":")
			inPort := testpeer.FreePort(t)
			inAddr := fmt.Sprintf("127.0.0.1:%d", inPort)
			testpeer.StartRsyslog(t, fmt.Sprintf(`module(load="imtcp")
input(type="imtcp" port="%d" address="127.0.0.1")
*.* action(type="omfwd" target=%q port=%q %s
           queue.type="LinkedList" action.resumeRetryCount="-1")
`, inPort, relayHost, relayPort, tc.omfwd), testpeer.TCPReady(inAddr))
			const n = 10000
			for i := 0; i < n; i += 1000 {
				if err := testpeer.SendTCP(inAddr, tc.name, i, i+1000, true); err != nil {
					t.Fatal(err)
				}
				if tc.listener == "udp" {
					// Pace the UDP hop: rsyslog forwards as fast as it reads.
					testpeer.WaitFor(5*time.Second, func() bool { return recv.Count() >= i+1000 })
				}
			}
			if !testpeer.WaitFor(30*time.Second, func() bool { return testpeer.Check(tc.name, n, recv.Messages()).Delivered() == n }) {
				t.Fatalf("%v", testpeer.Check(tc.name, n, recv.Messages()))
			}
			tally := testpeer.Check(tc.name, n, recv.Messages())
			if tally.Duplicates > 0 {
				t.Errorf("%v", tally)
			}
		})
	}
}

// TestLoggerClient sends with util-linux logger in each of its transports
// and formats and finds each message in the file output.
func TestLoggerClient(t *testing.T) {
	logger := testpeer.Need(t, "logger", "bsdutils")
	dir := t.TempDir()
	out := filepath.Join(dir, "messages.log")
	sock := filepath.Join(dir, "log.sock")
	r := startRelay(t, dir, `data_dir = "{{DATA}}/q"`+listenersTOML()+fmt.Sprintf(`
[[listener]]
name = "local"
protocol = "unix"
address = %q

[[output]]
name = "file"
protocol = "file"
path = %q

[[route]]
name = "all"
outputs = ["file"]
`, sock, out))
	host, port, _ := strings.Cut(r.addr("udp"), ":")
	_, tport, _ := strings.Cut(r.addr("tcp"), ":")
	cases := []struct {
		name string
		args []string
	}{
		{"udp", []string{"--udp", "-n", host, "-P", port}},
		{"udp-rfc5424", []string{"--udp", "--rfc5424", "-n", host, "-P", port}},
		{"udp-rfc3164", []string{"--udp", "--rfc3164", "-n", host, "-P", port}},
		{"tcp", []string{"--tcp", "-n", host, "-P", tport}},
		{"tcp-octet-count", []string{"--tcp", "--octet-count", "-n", host, "-P", tport}},
		{"tcp-rfc5424-octet", []string{"--tcp", "--rfc5424", "--octet-count", "-n", host, "-P", tport}},
		{"unix", []string{"-u", sock, "--socket-errors=on"}},
	}
	for _, c := range cases {
		msg := "hello-from-logger-" + c.name
		args := append(append([]string{}, c.args...), "-t", "relaytest", "-p", "local3.warning", msg)
		if b, err := exec.Command(logger, args...).CombinedOutput(); err != nil {
			t.Fatalf("logger %s: %v: %s", strings.Join(args, " "), err, b)
		}
	}
	if !testpeer.WaitFor(10*time.Second, func() bool { return len(testpeer.ReadLines(out)) >= len(cases) }) {
		t.Fatalf("file has %d lines, want %d", len(testpeer.ReadLines(out)), len(cases))
	}
	lines := testpeer.ReadLines(out)
	for _, c := range cases {
		msg := "hello-from-logger-" + c.name
		var line string
		for _, l := range lines {
			if strings.HasSuffix(l, " "+msg) {
				line = l
			}
		}
		if line == "" {
			t.Errorf("%s: no line ends with %q in %q", c.name, msg, lines)
			continue
		}
		// local3.warning = 19*8+4 = 156
		if !strings.HasPrefix(line, "<156>") {
			t.Errorf("%s: line %q does not start with <156>", c.name, line)
		}
	}
}

func contains(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}
