package relay

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relay-syslog/relay/internal/testfixture"
)

// testRelay is a relay run in-process by a test.
type testRelay struct {
	t      testing.TB
	srv    *Server
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
}

// startRelay parses cfgText (a TOML config; "{{DATA}}" is replaced by dataDir)
// and runs a relay on it until the test ends or stop is called.
func startRelay(t testing.TB, dataDir, cfgText string) *testRelay {
	t.Helper()
	cfgText = strings.ReplaceAll(cfgText, "{{DATA}}", dataDir)
	cfg, err := ParseConfig("test.toml", []byte(cfgText))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	reg := prometheus.NewRegistry()
	srv, err := New(cfg, Options{Logger: testLogger(t), Registry: reg})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &testRelay{t: t, srv: srv, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- srv.Run(ctx) }()
	t.Cleanup(func() { r.stop() })
	waitRunning(t, srv)
	return r
}

// waitRunning waits until Run serves, so that a test's Reload does not
// meet ErrNotRunning on a machine slow to start Run's goroutine.
func waitRunning(t testing.TB, srv *Server) {
	t.Helper()
	select {
	case <-srv.Serving():
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not start serving within 30 s")
	}
}

// stop stops the relay and returns how long Run took to return.
func (r *testRelay) stop() time.Duration {
	r.t.Helper()
	if r.cancel == nil {
		return 0
	}
	start := time.Now()
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			r.t.Errorf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		r.t.Fatalf("relay did not stop within 30s")
	}
	return time.Since(start)
}

func (r *testRelay) addr(listener string) string {
	a := r.srv.ListenerAddr(listener)
	if a == "" {
		r.t.Fatalf("no listener %q", listener)
	}
	return a
}

// metric returns the value of the sample of name whose labels include all of
// labels ("key", "value", ...); 0 when there is none.
func (r *testRelay) metric(name string, labels ...string) float64 {
	return testfixture.MetricValue(r.t, r.reg, name, labels...)
}

// testLogger logs through t.Log when -v is given, so failures show the
// relay's own account; otherwise it discards.
func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// skipOrFail skips a test that this machine cannot run, except in CI
// (CI=true), where it fails: there the machine must be able to.
func skipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// needLong skips a slow test (an integration test, or one that waits out
// timeouts) under -short: make test-short. make test, which CI runs, has no
// -short and runs them all.
func needLong(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("slow test; run without -short")
	}
}

// Config fragments for tests.
func listenersTOML() string {
	return `
[[listener]]
name = "udp"
protocol = "udp"
address = "127.0.0.1:0"

[[listener]]
name = "tcp"
protocol = "tcp"
address = "127.0.0.1:0"
`
}

func tcpOutputTOML(name, addr string) string {
	return fmt.Sprintf(`
[[output]]
name = %q
protocol = "tcp"
address = %q
retry_initial = "20ms"
retry_max = "500ms"
`, name, addr)
}
