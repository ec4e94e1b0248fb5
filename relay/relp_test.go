package relay

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/relay-syslog/relay/internal/relp"
	"github.com/relay-syslog/relay/internal/testpeer"
)

// relpListenerTOML is a RELP listener on a free port.
func relpListenerTOML(extra string) string {
	return `
[[listener]]
name = "relp"
protocol = "relp"
address = "127.0.0.1:0"
` + extra
}

func fileOutputTOML(path string) string {
	return fmt.Sprintf(`
[[output]]
name = "file"
protocol = "file"
path = %q

[[route]]
name = "all"
outputs = ["file"]
`, path)
}

// relpConn dials the relay's RELP listener and returns a client and a
// reader of the raw answers.
func dialRELP(t *testing.T, addr string) (*relp.Client, net.Conn) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	return relp.NewClient(c, c, 0), c
}

// TestRELPListenerDelivers sends over RELP with a window and finds every
// message, byte for byte and once, in the file output. Every answer is 200
// and arrives only once the message is accepted.
func TestRELPListenerDelivers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out := filepath.Join(dir, "messages.log")
	r := startRelay(t, dir, `data_dir = "{{DATA}}/q"`+relpListenerTOML("window = 16\n")+fileOutputTOML(out))
	const n = 5000
	acked, err := testpeer.SendRELP(r.addr("relp"), "relp", 0, n, 64)
	if err != nil {
		t.Fatalf("after %d acknowledgements: %v", acked, err)
	}
	if got := r.metric("relay_messages_accepted_total", "listener", "relp"); got != n {
		t.Errorf("accepted %v messages when all %d were acknowledged", got, n)
	}
	if !testpeer.WaitFor(30*time.Second, func() bool { return len(testpeer.ReadLines(out)) >= n }) {
		t.Fatalf("file has %d lines, want %d", len(testpeer.ReadLines(out)), n)
	}
	lines := testpeer.ReadLines(out)
	if tally := testpeer.Check("relp", n, lines); len(tally.Missing) > 0 || tally.Duplicates > 0 {
		t.Errorf("%v", tally)
	}
	if !contains(lines, testpeer.SeqMessage("relp", 42)) {
		t.Errorf("message not byte-exact in the file")
	}
	if e := r.metric("relay_listener_errors_total", "listener", "relp"); e != 0 {
		t.Errorf("listener errors = %v, want 0", e)
	}
}

// readAnswers reads frames until the connection ends and returns them as
// "TXNR COMMAND DATA" strings.
func readAnswers(t *testing.T, c net.Conn) []string {
	t.Helper()
	rd := relp.NewReader(c, 1<<16)
	var got []string
	for range 10000 {
		f, err := rd.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !isReset(err) {
				t.Errorf("reading answers: %v", err)
			}
			return got
		}
		got = append(got, strings.TrimSpace(fmt.Sprintf("%d %s %s", f.Txnr, f.Command, firstLine(f.Data))))
	}
	t.Fatal("too many answers")
	return nil
}

func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	return s
}

// TestRELPListenerProtocol sends whole sessions as raw bytes and checks the
// answers, in order, and that the connection is closed when it must be.
func TestRELPListenerProtocol(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out := filepath.Join(dir, "messages.log")
	r := startRelay(t, dir, `data_dir = "{{DATA}}/q"`+relpListenerTOML("window = 4\nmax_message_size = 480\n")+fileOutputTOML(out))
	open := "relp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog"
	frame := func(txnr int, cmd, data string) string { return string(relp.AppendFrame(nil, txnr, cmd, []byte(data))) }
	long := "<13>" + strings.Repeat("L", 600)
	tests := []struct {
		name   string
		in     string
		want   []string
		reason string // listener error counted, if any
	}{
		{
			name: "session",
			in: frame(1, "open", open) + frame(2, "syslog", "<13>a") + frame(3, "syslog", "<13>b") +
				frame(0, "hint", "") + frame(4, "close", ""),
			want: []string{"1 rsp 200 OK", "2 rsp 200 OK", "3 rsp 200 OK", "4 rsp 200 OK", "0 serverclose"},
		},
		{
			// More frames than the window in one write: answered in order.
			name: "beyond the window",
			in: frame(1, "open", open) + frame(2, "syslog", "<13>w1") + frame(3, "syslog", "<13>w2") +
				frame(4, "syslog", "<13>w3") + frame(5, "syslog", "<13>w4") + frame(6, "syslog", "<13>w5") +
				frame(7, "syslog", "<13>w6") + frame(8, "close", ""),
			want: []string{"1 rsp 200 OK", "2 rsp 200 OK", "3 rsp 200 OK", "4 rsp 200 OK", "5 rsp 200 OK",
				"6 rsp 200 OK", "7 rsp 200 OK", "8 rsp 200 OK", "0 serverclose"},
		},
		{
			name: "unknown command refused",
			in:   frame(1, "open", open) + frame(2, "starttls", "") + frame(3, "syslog", "<13>c") + frame(4, "close", ""),
			want: []string{"1 rsp 200 OK", "2 rsp 500 command not supported", "3 rsp 200 OK", "4 rsp 200 OK", "0 serverclose"},
		},
		{
			name:   "syslog before open",
			in:     frame(1, "syslog", "<13>early"),
			want:   []string{"1 rsp 500 session not open"},
			reason: "protocol_error",
		},
		{
			name:   "open without syslog",
			in:     frame(1, "open", "relp_version=0\ncommands=eventlog"),
			want:   []string{"1 rsp 500 cannot open session: relp: peer does not offer the syslog command"},
			reason: "protocol_error",
		},
		{
			name:   "TXNR out of sequence",
			in:     frame(1, "open", open) + frame(2, "syslog", "<13>d") + frame(2, "syslog", "<13>again"),
			want:   []string{"1 rsp 200 OK", "2 rsp 200 OK"},
			reason: "protocol_error",
		},
		{
			// No answer can carry TXNR 0: the message would vanish
			// unanswered and uncounted.
			name:   "syslog with TXNR 0",
			in:     frame(1, "open", open) + frame(0, "syslog", "<13>zero") + frame(2, "syslog", "<13>after") + frame(3, "close", ""),
			want:   []string{"1 rsp 200 OK"},
			reason: "protocol_error",
		},
		{
			// The frame before the garbage is still stored and answered.
			name:   "garbage",
			in:     frame(1, "open", open) + frame(2, "syslog", "<13>e") + "GET / HTTP/1.1\r\n\r\n",
			want:   []string{"1 rsp 200 OK", "2 rsp 200 OK"},
			reason: "invalid_frame",
		},
		{
			name:   "truncated message",
			in:     frame(1, "open", open) + frame(2, "syslog", long) + frame(3, "close", ""),
			want:   []string{"1 rsp 200 OK", "2 rsp 200 OK", "3 rsp 200 OK", "0 serverclose"},
			reason: "truncated",
		},
		{
			name:   "incomplete frame",
			in:     frame(1, "open", open) + "2 syslog 50 <13>cut",
			want:   []string{"1 rsp 200 OK"},
			reason: "incomplete_frame",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := r.metric("relay_listener_errors_total", "listener", "relp", "reason", tc.reason)
			c, err := net.DialTimeout("tcp", r.addr("relp"), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(c, tc.in); err != nil {
				t.Fatal(err)
			}
			// The sender is done: half-close, as a sender that stops does.
			_ = c.(*net.TCPConn).CloseWrite()
			got := readAnswers(t, c)
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("answers:\n got %q\nwant %q", got, tc.want)
			}
			if tc.reason != "" {
				if !testpeer.WaitFor(30*time.Second, func() bool {
					return r.metric("relay_listener_errors_total", "listener", "relp", "reason", tc.reason) > before
				}) {
					t.Errorf("no listener error with reason %q counted", tc.reason)
				}
			}
		})
	}
	// The truncated message arrives cut to max_message_size.
	if !testpeer.WaitFor(30*time.Second, func() bool {
		for _, l := range testpeer.ReadLines(out) {
			if strings.HasPrefix(l, "<13>LLL") && len(l) == 480 {
				return true
			}
		}
		return false
	}) {
		t.Errorf("no truncated message of 480 bytes in %q", testpeer.ReadLines(out))
	}
}

// TestRELPListenerRefusesUnroutedMessages: a message the relay does not
// accept (here: no route takes it) is answered 500, not 200.
func TestRELPListenerRefusesUnroutedMessages(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := startRelay(t, dir, `data_dir = "{{DATA}}/q"`+relpListenerTOML("")+fmt.Sprintf(`
[[listener]]
name = "tcp"
protocol = "tcp"
address = "127.0.0.1:0"

[[output]]
name = "file"
protocol = "file"
path = %q

[[route]]
name = "tcp-only"
listeners = ["tcp"]
outputs = ["file"]
`, filepath.Join(dir, "out.log")))
	_, err := testpeer.SendRELP(r.addr("relp"), "unrouted", 0, 3, 8)
	if err == nil || !strings.Contains(err.Error(), "500") {
		t.Fatalf("SendRELP = %v, want a 500 answer", err)
	}
}

// TestRELPListenerStop: a relay that stops with a RELP sender connected
// tells it (serverclose) and stops promptly.
func TestRELPListenerStop(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := startRelay(t, dir, `data_dir = "{{DATA}}/q"`+relpListenerTOML("")+fileOutputTOML(filepath.Join(dir, "out.log")))
	cl, c := dialRELP(t, r.addr("relp"))
	if _, err := cl.Open(); err != nil {
		t.Fatal(err)
	}
	if !testpeer.WaitFor(30*time.Second, func() bool {
		return r.metric("relay_listener_connections", "listener", "relp") == 1
	}) {
		t.Fatalf("connection not counted: %v", r.metric("relay_listener_connections", "listener", "relp"))
	}
	if d := r.stop(); d > 3*time.Second {
		t.Errorf("stop with a RELP sender connected took %v", d)
	}
	got := readAnswers(t, c)
	if strings.Join(got, "|") != "0 serverclose" {
		t.Errorf("the sender got %q, want a serverclose hint", got)
	}
}

// TestRELPListenerIdleTimeout: a silent session is ended with serverclose
// after idle_timeout, and counted.
func TestRELPListenerIdleTimeout(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := startRelay(t, dir, `data_dir = "{{DATA}}/q"`+relpListenerTOML("idle_timeout = \"200ms\"\n")+fileOutputTOML(filepath.Join(dir, "out.log")))
	cl, c := dialRELP(t, r.addr("relp"))
	if _, err := cl.Open(); err != nil {
		t.Fatal(err)
	}
	got := readAnswers(t, c)
	if strings.Join(got, "|") != "0 serverclose" {
		t.Errorf("an idle sender got %q, want a serverclose hint", got)
	}
	if !testpeer.WaitFor(30*time.Second, func() bool {
		return r.metric("relay_listener_errors_total", "listener", "relp", "reason", "idle_timeout") == 1
	}) {
		t.Errorf("idle timeout not counted")
	}
}

// TestRELPRelayToRelay chains two relays over RELP in-process: a sender
// → relay A (RELP in, RELP out) → relay B (RELP in, file out). B is stopped
// and started again mid-stream; every message arrives.
func TestRELPRelayToRelay(t *testing.T) {
	needLong(t)
	dirB := t.TempDir()
	out := filepath.Join(dirB, "messages.log")
	port := testpeer.FreePort(t)
	addrB := fmt.Sprintf("127.0.0.1:%d", port)
	cfgB := `data_dir = "{{DATA}}/q"` + fmt.Sprintf(`
[[listener]]
name = "relp"
protocol = "relp"
address = %q
`, addrB) + fileOutputTOML(out)
	b := startRelay(t, dirB, cfgB)
	a := startRelay(t, t.TempDir(), `data_dir = "{{DATA}}"`+relpListenerTOML("")+relpOutputTOML("head", addrB)+`
[[route]]
name = "all"
outputs = ["head"]
`)
	const n = 20000
	sent := make(chan error, 1)
	go func() {
		for i := 0; i < n; i += 1000 {
			if _, err := testpeer.SendRELP(a.addr("relp"), "chain", i, i+1000, 128); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	if !testpeer.WaitFor(20*time.Second, func() bool { return len(testpeer.ReadLines(out)) >= n/4 }) {
		t.Fatalf("only %d lines before the restart", len(testpeer.ReadLines(out)))
	}
	b.stop()
	b = startRelay(t, dirB, cfgB)
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if !testpeer.WaitFor(30*time.Second, func() bool { return testpeer.Check("chain", n, testpeer.ReadLines(out)).Delivered() == n }) {
		t.Fatalf("%v", testpeer.Check("chain", n, testpeer.ReadLines(out)))
	}
	tally := testpeer.Check("chain", n, testpeer.ReadLines(out))
	t.Logf("relay → relay with a restart: %v; A resent %v", tally, a.metric("relay_output_messages_resent_total"))
}

func relpOutputTOML(name, addr string) string {
	return fmt.Sprintf(`
[[output]]
name = %q
protocol = "relp"
address = %q
retry_initial = "20ms"
retry_max = "500ms"
`, name, addr)
}

// ---------------------------------------------------------------- interop

// relpInterop is the chain the interop tests build:
//
//	test ─TCP─▶ rsyslog (imtcp → omrelp) ─RELP─▶ relay ─RELP─▶ rsyslog (imrelp → omfile)
type relpInterop struct {
	sender     *testpeer.Rsyslog
	senderAddr string // imtcp of the sending rsyslog
	upstream   *testpeer.Rsyslog
	upAddr     string
	out        string // the upstream's file
}

func startRELPUpstream(t *testing.T) (*testpeer.Rsyslog, string, string) {
	t.Helper()
	port := testpeer.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	rs := testpeer.StartRsyslog(t, testpeer.RELPUpstreamConf(port), testpeer.TCPReady(addr))
	return rs, addr, filepath.Join(rs.Dir, "out.log")
}

func startRELPSender(t *testing.T, relayAddr string) (*testpeer.Rsyslog, string) {
	t.Helper()
	host, port, _ := strings.Cut(relayAddr, ":")
	inPort := testpeer.FreePort(t)
	inAddr := fmt.Sprintf("127.0.0.1:%d", inPort)
	rs := testpeer.StartRsyslog(t, testpeer.RELPSenderConf(inPort, host, port), testpeer.TCPReady(inAddr))
	return rs, inAddr
}

// sendSlices sends messages 0..n-1 of run to the sending rsyslog in slices
// of 1000, so that faults land in the middle of the stream.
func sendSlices(addr, run string, n int) <-chan error {
	done := make(chan error, 1)
	go func() {
		for i := 0; i < n; i += 1000 {
			if err := testpeer.SendTCP(addr, run, i, min(i+1000, n), true); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	return done
}

// waitDelivered waits until every message of run arrived in out, and
// returns the tally. On failure it reports the tally and what diag says.
func waitDelivered(t *testing.T, out, run string, n int, timeout time.Duration, diag func() string) testpeer.Tally {
	t.Helper()
	if !testpeer.WaitFor(timeout, func() bool { return testpeer.Check(run, n, testpeer.ReadLines(out)).Delivered() == n }) {
		tally := testpeer.Check(run, n, testpeer.ReadLines(out))
		msg := fmt.Sprintf("%s: %v", run, tally)
		if len(tally.Missing) > 0 {
			msg += fmt.Sprintf("; missing %d..%d", tally.Missing[0], tally.Missing[len(tally.Missing)-1])
		}
		if diag != nil {
			msg += "\n" + diag()
		}
		t.Fatal(msg)
	}
	return testpeer.Check(run, n, testpeer.ReadLines(out))
}

const relpInteropMessages = 100000

// TestRELPInteropRsyslog: rsyslog omrelp → relay → rsyslog imrelp,
// 100,000 messages; all arrive.
func TestRELPInteropRsyslog(t *testing.T) {
	needLong(t)
	testpeer.NeedRELP(t)
	_, upAddr, out := startRELPUpstream(t)
	r := startRelay(t, t.TempDir(), `data_dir = "{{DATA}}"`+relpListenerTOML("")+relpOutputTOML("head", upAddr)+`
[[route]]
name = "all"
outputs = ["head"]
`)
	_, inAddr := startRELPSender(t, r.addr("relp"))
	const n = relpInteropMessages
	start := time.Now()
	if err := <-sendSlices(inAddr, "interop", n); err != nil {
		t.Fatal(err)
	}
	tally := waitDelivered(t, out, "interop", n, 120*time.Second, nil)
	t.Logf("rsyslog → relay → rsyslog over RELP: sent %d, %v, in %v; relay resent %v, listener errors %v",
		n, tally, time.Since(start).Round(time.Millisecond),
		r.metric("relay_output_messages_resent_total"), r.metric("relay_listener_errors_total"))
	if !contains(testpeer.ReadLines(out), testpeer.SeqMessage("interop", 4242)) {
		t.Errorf("message not byte-exact at the upstream")
	}
}

// TestRELPInteropUpstreamRestart stops the upstream rsyslog in the middle
// of the stream and starts it again: every message arrives.
func TestRELPInteropUpstreamRestart(t *testing.T) {
	needLong(t)
	testpeer.NeedRELP(t)
	up, upAddr, out := startRELPUpstream(t)
	r := startRelay(t, t.TempDir(), `data_dir = "{{DATA}}"`+relpListenerTOML("")+relpOutputTOML("head", upAddr)+`
[[route]]
name = "all"
outputs = ["head"]
`)
	_, inAddr := startRELPSender(t, r.addr("relp"))
	const n = relpInteropMessages
	sent := sendSlices(inAddr, "uprestart", n)
	if !testpeer.WaitFor(60*time.Second, func() bool { return len(testpeer.ReadLines(out)) >= n/4 }) {
		t.Fatalf("upstream got only %d lines before the restart", len(testpeer.ReadLines(out)))
	}
	up.Stop()
	before := len(testpeer.ReadLines(out))
	// While the upstream is down the relay keeps accepting: wait until
	// more has been accepted than the upstream had written.
	if !testpeer.WaitFor(30*time.Second, func() bool {
		return r.metric("relay_messages_accepted_total") >= float64(before+10000)
	}) {
		t.Logf("accepted %v during the outage", r.metric("relay_messages_accepted_total"))
	}
	up.Start(testpeer.TCPReady(upAddr))
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	tally := waitDelivered(t, out, "uprestart", n, 120*time.Second, nil)
	t.Logf("upstream restart: %d lines before the stop; sent %d, %v; relay resent %v, retries %v",
		before, n, tally, r.metric("relay_output_messages_resent_total"), r.metric("relay_output_retries_total"))
}

// buildRelay builds ../cmd/relay into a directory the test removes.
func buildRelay(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "relay")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/relay").CombinedOutput(); err != nil {
		t.Fatalf("build relay: %v\n%s", err, out)
	}
	return bin
}

// relayProcess is the relay binary run by a test.
type relayProcess struct {
	t       *testing.T
	bin     string
	cfg     string
	cmd     *exec.Cmd
	logs    *syncBuffer
	metrics string
}

// syncBuffer is a bytes.Buffer that the process's stderr copier and the
// test may use at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (p *relayProcess) start(ready func() bool) {
	p.t.Helper()
	p.cmd = exec.Command(p.bin, "-config", p.cfg)
	p.logs = &syncBuffer{}
	p.cmd.Stderr = p.logs
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	if !testpeer.WaitFor(15*time.Second, ready) {
		p.kill()
		p.t.Fatalf("relay did not start:\n%s", p.logs.String())
	}
}

func (p *relayProcess) kill() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Wait()
	p.cmd = nil
}

func (p *relayProcess) term() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
	p.cmd = nil
}

// metric reads one sample from the process's /metrics, or -1.
func (p *relayProcess) metric(series string) float64 {
	body := testpeer.HTTPGet(p.metrics)
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err == nil {
				return f
			}
		}
	}
	return -1
}

// TestRELPInteropRelayKill9 runs the relay binary between the two rsyslogs
// and kills it with SIGKILL twice in the middle of the stream, starting it
// again on the same data dir each time: every message arrives.
func TestRELPInteropRelayKill9(t *testing.T) {
	needLong(t)
	testpeer.NeedRELP(t)
	bin := buildRelay(t)
	_, upAddr, out := startRELPUpstream(t)
	dir := t.TempDir()
	relayPort := testpeer.FreePort(t)
	metricsPort := testpeer.FreePort(t)
	relayAddr := fmt.Sprintf("127.0.0.1:%d", relayPort)
	cfg := fmt.Sprintf(`data_dir = %q
[metrics]
address = "127.0.0.1:%d"

[[listener]]
name = "relp"
protocol = "relp"
address = %q
`, filepath.Join(dir, "data"), metricsPort, relayAddr) + relpOutputTOML("head", upAddr) + `
[[route]]
name = "all"
outputs = ["head"]
`
	cfgPath := filepath.Join(dir, "relay.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &relayProcess{t: t, bin: bin, cfg: cfgPath, metrics: fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)}
	ready := func() bool {
		return p.metric("relay_output_up{output=\"head\"}") == 1 || testpeer.TCPReady(relayAddr)()
	}
	p.start(ready)
	t.Cleanup(p.term)

	_, inAddr := startRELPSender(t, relayAddr)
	const n = relpInteropMessages
	sent := sendSlices(inAddr, "kill9", n)
	kills := 0
	for _, at := range []int{n / 4, n / 2} {
		// Kill while messages flow both in and out: the upstream has
		// written at least at lines and this relay process has accepted
		// new messages from the sender, not only drained its backlog.
		if !testpeer.WaitFor(90*time.Second, func() bool {
			return len(testpeer.ReadLines(out)) >= at && p.metric(`relay_messages_accepted_total{listener="relp"}`) >= 5000
		}) {
			t.Fatalf("upstream got only %d lines, waiting for %d before a kill\n%s", len(testpeer.ReadLines(out)), at, p.logs.String())
		}
		accepted := p.metric(`relay_messages_accepted_total{listener="relp"}`)
		p.kill()
		kills++
		t.Logf("kill -9 #%d with %d lines upstream; the relay had accepted %v since its start", kills, len(testpeer.ReadLines(out)), accepted)
		p.start(ready)
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	tally := waitDelivered(t, out, "kill9", n, 120*time.Second, func() string {
		return "relay log since the last start:\n" + p.logs.String()
	})
	t.Logf("relay killed with SIGKILL %d times: sent %d, %v", kills, n, tally)
}
