package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/relay-syslog/relay/internal/testpeer"
)

var relayBin string

// TestMain builds the real binary once; the tests drive it as an
// administrator would.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "relay-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	relayBin = filepath.Join(dir, "relay")
	// The tests drive a race-detecting build, except in the long runs of
	// RELAY_E2E_FULL=1: there the detector's five- to tenfold cost per
	// message would make a million messages take hours on two cores.
	build := []string{"build", "-race", "-o", relayBin, "."}
	if os.Getenv("RELAY_E2E_FULL") == "1" {
		build = []string{"build", "-o", relayBin, "."}
	}
	if out, err := exec.Command("go", build...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build relay: %v\n%s", err, out)
		os.Exit(1)
	}
	// The race detector sleeps a second at exit by default, which would
	// count against the shutdown time the tests measure.
	os.Setenv("GORACE", "atexit_sleep_ms=0")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func runRelay(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(relayBin, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return o.String(), e.String(), ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), 0
}

func TestVersion(t *testing.T) {
	out, _, code := runRelay(t, "-version")
	if code != 0 || !strings.HasPrefix(out, "relay ") {
		t.Fatalf("relay -version = %q, exit %d", out, code)
	}
}

func TestCheckConfigValid(t *testing.T) {
	out, errOut, code := runRelay(t, "-check-config", "-config", "../../config.toml.example")
	if code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// Without -config the built-in copy of the example is checked.
	if _, errOut, code := runRelay(t, "-check-config"); code != 0 {
		t.Fatalf("built-in config: exit %d: %s", code, errOut)
	}
}

// TestCheckConfigReportsEveryProblem: exit 1 and one line per problem.
func TestCheckConfigReportsEveryProblem(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.toml")
	bad := `data_dir = "x"
colour = "blue"
[[listener]]
name = "in"
protocol = "udp"
address = "localhost"
[[output]]
name = "out"
protocol = "tcp"
address = "127.0.0.1:514"
retry_initial = "soon"
[[route]]
name = "r"
outputs = ["out", "elsewhere"]
`
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := runRelay(t, "-check-config", "-config", path)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr %q", code, errOut)
	}
	// The bad duration does not hide the other problems.
	for _, want := range []string{
		`line 2: colour: unknown key "colour"`,
		`line 6: listener[0].address: invalid address "localhost"`,
		`line 11: output[0].retry_initial: invalid duration "soon"`,
		`line 14: route[0].outputs: names output "elsewhere", which is not defined`,
		"4 problems",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
}

func TestMissingConfigFile(t *testing.T) {
	_, errOut, code := runRelay(t, "-config", filepath.Join(t.TempDir(), "nope.toml"))
	if code != 1 || !strings.Contains(errOut, "no such file") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

// TestSIGTERMWithUpstreamDown starts the binary with an upstream that hangs
// and one that does not exist, queues messages, and checks SIGTERM ends it
// within a few seconds with exit 0, and that a restart finds the queue.
func TestSIGTERMWithUpstreamDown(t *testing.T) {
	dir := t.TempDir()
	hung := testpeer.NewBlackhole(t, "127.0.0.1:0")
	tcpPort := testpeer.FreePort(t)
	deadPort := testpeer.FreePort(t)
	metricsPort := testpeer.FreePort(t)
	cfg := fmt.Sprintf(`data_dir = %q
[metrics]
address = "127.0.0.1:%d"
[[listener]]
name = "tcp"
protocol = "tcp"
address = "127.0.0.1:%d"
[[output]]
name = "hung"
protocol = "tcp"
address = %q
[[output]]
name = "dead"
protocol = "tcp"
address = "127.0.0.1:%d"
[[route]]
name = "all"
outputs = ["hung", "dead"]
`, filepath.Join(dir, "data"), metricsPort, tcpPort, hung.Addr(), deadPort)
	path := filepath.Join(dir, "relay.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	start := func() (*exec.Cmd, *syncBuffer) {
		return startRelayProcess(t, fmt.Sprintf("127.0.0.1:%d", tcpPort), "-config", path)
	}
	cmd, logs := start()
	if err := testpeer.SendTCP(fmt.Sprintf("127.0.0.1:%d", tcpPort), "term", 0, 50000, true); err != nil {
		t.Fatal(err)
	}
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)
	if !testpeer.WaitFor(10*time.Second, func() bool {
		return strings.Contains(testpeer.HTTPGet(metricsURL), `relay_messages_accepted_total{listener="tcp"} 50000`)
	}) {
		t.Fatalf("messages not accepted; metrics:\n%s", testpeer.HTTPGet(metricsURL))
	}
	began := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	took := time.Since(began)
	if err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
	}
	if took > 5*time.Second {
		t.Errorf("SIGTERM took %v with the upstreams down, want < 5s", took)
	}
	t.Logf("SIGTERM with both upstreams down: stopped in %v", took.Round(time.Millisecond))

	// The queue is still there after a restart: its depth shows on /metrics.
	cmd, logs = start()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	if !testpeer.WaitFor(10*time.Second, func() bool {
		body := testpeer.HTTPGet(metricsURL)
		return strings.Contains(body, `relay_queue_depth_records{output="dead"}`) &&
			!strings.Contains(body, `relay_queue_depth_records{output="dead"} 0`)
	}) {
		t.Fatalf("queue of the dead output empty after restart:\n%s\n%s", testpeer.HTTPGet(metricsURL), logs.String())
	}
}

// TestSystemdNotify runs the binary as systemd would with Type=notify and
// checks it reports READY=1 once it serves and STOPPING=1 on SIGTERM.
func TestSystemdNotify(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tcpPort := testpeer.FreePort(t)
	cfg := fmt.Sprintf(`data_dir = %q
[[listener]]
name = "tcp"
protocol = "tcp"
address = "127.0.0.1:%d"
[[output]]
name = "file"
protocol = "file"
path = %q
[[route]]
name = "all"
outputs = ["file"]
`, filepath.Join(dir, "data"), tcpPort, filepath.Join(dir, "out.log"))
	path := filepath.Join(dir, "relay.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(relayBin, "-config", path)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	read := func() string {
		buf := make([]byte, 256)
		_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			cmd.Process.Kill()
			t.Fatalf("no notification: %v", err)
		}
		return string(buf[:n])
	}
	if got := read(); got != "READY=1" {
		t.Errorf("first notification %q, want READY=1", got)
	}
	// READY means serving: the listener answers.
	if !testpeer.TCPReady(fmt.Sprintf("127.0.0.1:%d", tcpPort))() {
		t.Error("READY=1 sent before the TCP listener accepts")
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if got := read(); got != "STOPPING=1" {
		t.Errorf("notification on SIGTERM %q, want STOPPING=1", got)
	}
}

// TestSystemdUnitVerifies runs systemd-analyze verify on the shipped unit,
// pointed at the built binary.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze := testpeer.Need(t, "systemd-analyze", "systemd")
	unit, err := os.ReadFile("../../dist/relay.service")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "relay.service")
	if err := os.WriteFile(path, bytes.ReplaceAll(unit, []byte("/usr/local/bin/relay"), []byte(relayBin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestSIGHUPReload edits the config file of a running relay and sends
// SIGHUP: the change applies; then a broken file is refused and the relay
// keeps running.
func TestSIGHUPReload(t *testing.T) {
	dir := t.TempDir()
	tcpPort := testpeer.FreePort(t)
	metricsPort := testpeer.FreePort(t)
	first, second := filepath.Join(dir, "first.log"), filepath.Join(dir, "second.log")
	cfg := func(outputsList string) string {
		return fmt.Sprintf(`data_dir = %q
[metrics]
address = "127.0.0.1:%d"
[[listener]]
name = "tcp"
protocol = "tcp"
address = "127.0.0.1:%d"
[[output]]
name = "first"
protocol = "file"
path = %q
[[output]]
name = "second"
protocol = "file"
path = %q
[[route]]
name = "all"
outputs = %s
`, filepath.Join(dir, "data"), metricsPort, tcpPort, first, second, outputsList)
	}
	path := filepath.Join(dir, "relay.toml")
	if err := os.WriteFile(path, []byte(cfg(`["first"]`)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(relayBin, "-config", path)
	logs := new(syncBuffer)
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	addr := fmt.Sprintf("127.0.0.1:%d", tcpPort)
	if !testpeer.WaitFor(20*time.Second, testpeer.TCPReady(addr)) {
		t.Fatalf("relay did not start:\n%s", logs.String())
	}
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)
	reloads := func(result string) bool {
		return strings.Contains(testpeer.HTTPGet(metricsURL), `relay_config_reloads_total{result="`+result+`"} 1`)
	}

	if err := os.WriteFile(path, []byte(cfg(`["first", "second"]`)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGHUP)
	if !testpeer.WaitFor(10*time.Second, func() bool { return reloads("success") }) {
		t.Fatalf("reload not reported:\n%s", logs.String())
	}
	if err := testpeer.SendTCP(addr, "hup", 0, 10, true); err != nil {
		t.Fatal(err)
	}
	if !testpeer.WaitFor(10*time.Second, func() bool { return len(testpeer.ReadLines(second)) == 10 }) {
		t.Fatalf("the output added by the reload got %d of 10", len(testpeer.ReadLines(second)))
	}

	if err := os.WriteFile(path, []byte("this is = not [valid"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGHUP)
	if !testpeer.WaitFor(10*time.Second, func() bool { return reloads("failure") }) {
		t.Fatalf("failed reload not reported:\n%s", logs.String())
	}
	if !strings.Contains(testpeer.HTTPGet(metricsURL), "relay_config_last_reload_successful 0") {
		t.Error("relay_config_last_reload_successful is not 0 after a failed reload")
	}
	if err := testpeer.SendTCP(addr, "still", 0, 10, true); err != nil {
		t.Fatal(err)
	}
	if !testpeer.WaitFor(10*time.Second, func() bool { return len(testpeer.ReadLines(second)) == 20 }) {
		t.Fatalf("after the failed reload the relay stopped forwarding:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "configuration reload failed") {
		t.Errorf("no log line for the failed reload:\n%s", logs.String())
	}
}

// syncBuffer is a bytes.Buffer a child process may write to while the test
// reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestCPUProfileFlag: -cpuprofile leaves a profile (gzipped, as go tool
// pprof reads it) after a SIGTERM.
func TestCPUProfileFlag(t *testing.T) {
	dir := t.TempDir()
	tcpPort := testpeer.FreePort(t)
	cfg := fmt.Sprintf(`data_dir = %q
[[listener]]
name = "tcp"
protocol = "tcp"
address = "127.0.0.1:%d"
[[output]]
name = "file"
protocol = "file"
path = %q
[[route]]
name = "all"
outputs = ["file"]
`, filepath.Join(dir, "data"), tcpPort, filepath.Join(dir, "out.log"))
	path := filepath.Join(dir, "relay.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	profile := filepath.Join(dir, "cpu.pprof")
	cmd, logs := startRelayProcess(t, fmt.Sprintf("127.0.0.1:%d", tcpPort), "-config", path, "-cpuprofile", profile)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
	}
	b, err := os.ReadFile(profile)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Fatalf("profile is not a gzipped pprof file (%d bytes)", len(b))
	}
}

// startRelayProcess starts the relay binary with args and waits until its
// TCP listener at tcpAddr accepts connections.
func startRelayProcess(t *testing.T, tcpAddr string, args ...string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(relayBin, args...)
	logs := new(syncBuffer)
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if !testpeer.WaitFor(10*time.Second, testpeer.TCPReady(tcpAddr)) {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("relay did not start:\n%s", logs.String())
	}
	return cmd, logs
}

// TestCheckConfigNotesUnroutedOutput: an output that no route names is
// valid (its backlog still drains) but gets nothing new; the check says so
// with its line, and still exits 0.
func TestCheckConfigNotesUnroutedOutput(t *testing.T) {
	path := filepath.Join(t.TempDir(), "forgot.toml")
	text := `data_dir = "` + filepath.Join(t.TempDir(), "data") + `"
[[listener]]
name = "udp"
protocol = "udp"
address = "127.0.0.1:0"
[[output]]
name = "head"
protocol = "tcp"
address = "127.0.0.1:514"
[[output]]
name = "local"
protocol = "file"
path = "` + filepath.Join(t.TempDir(), "all.log") + `"
[[route]]
name = "everything"
outputs = ["local"]
`
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runRelay(t, "-check-config", "-config", path)
	if code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	want := `note: line 7: output "head" is named by no route: it gets no new messages`
	if !strings.Contains(errOut, want) {
		t.Errorf("stderr lacks %q:\n%s", want, errOut)
	}
	if strings.Contains(errOut, `output "local"`) {
		t.Errorf("a routed output is noted:\n%s", errOut)
	}
}

// TestCheckConfigNotesUnwritableFilePath: a file output whose directory
// cannot be created is noted with its line (the relay would start and the
// output retry for ever, its messages piling up in its queue); the check
// still exits 0. A regular file where a directory should be stops root
// too, so the test holds whoever runs it.
func TestCheckConfigNotesUnwritableFilePath(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "afile")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "paths.toml")
	text := `data_dir = "` + filepath.Join(dir, "data") + `"
[[listener]]
name = "udp"
protocol = "udp"
address = "127.0.0.1:0"
[[output]]
name = "plain"
protocol = "file"
path = "` + filepath.Join(blocker, "sub", "all.log") + `"
[[output]]
name = "perhost"
protocol = "file"
path = "` + filepath.Join(blocker, "{hostname}.log") + `"
[[output]]
name = "fine"
protocol = "file"
path = "` + filepath.Join(dir, "logs", "{hostname}", "all.log") + `"
[[route]]
name = "everything"
outputs = ["plain", "perhost", "fine"]
`
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runRelay(t, "-check-config", "-config", path)
	if code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	for _, want := range []string{
		`note: line 9: output "plain": path: directory ` + filepath.Join(blocker, "sub") + ` does not exist and cannot be created: ` + blocker + ` is not a directory`,
		`note: line 13: output "perhost": path: directory ` + blocker + ` is not a directory`,
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, `output "fine"`) {
		t.Errorf("a path that can be created is noted:\n%s", errOut)
	}
}
