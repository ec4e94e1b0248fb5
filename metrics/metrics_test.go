package metrics

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type fakeQueue struct {
	depth, bytes int64
	oldest       time.Time
}

func (q fakeQueue) Depth() int64        { return q.depth }
func (q fakeQueue) DiskBytes() int64    { return q.bytes }
func (q fakeQueue) Corrupt() uint64     { return 0 }
func (q fakeQueue) Unwritten() int      { return 0 }
func (q fakeQueue) Recovered() int      { return 0 }
func (q fakeQueue) LostRecords() uint64 { return 0 }
func (q fakeQueue) LostBytes() uint64   { return 0 }
func (q fakeQueue) Full() bool          { return false }
func (q fakeQueue) OldestWaiting() time.Time {
	return q.oldest
}

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHandlerServesMetricsAndHealth(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m, err := New(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.ListenerMessages.WithLabelValues("udp").Add(3)
	m.AddQueue("head", fakeQueue{depth: 7, bytes: 4096})
	h := Handler(reg, nil)

	code, body := get(t, h, "/metrics")
	for _, want := range []string{
		`relay_listener_messages_received_total{listener="udp"} 3`,
		`relay_queue_depth_records{output="head"} 7`,
		`relay_queue_disk_bytes{output="head"} 4096`,
		`relay_queue_oldest_message_age_seconds{output="head"} 0`,
		`go_goroutines`,
		`process_resident_memory_bytes`,
	} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics (status %d) lacks %q", code, want)
		}
	}
	m.RemoveQueue("head")
	if _, body := get(t, h, "/metrics"); strings.Contains(body, `output="head"`) {
		t.Errorf("removed queue still exported")
	}
	if code, body := get(t, h, "/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	if code, _ := get(t, h, "/readyz"); code != 200 {
		t.Errorf("/readyz = %d, want 200", code)
	}
	notReady := Handler(reg, func() error { return errors.New("disk full") })
	if code, body := get(t, notReady, "/readyz"); code != 503 || !strings.Contains(body, "disk full") {
		t.Errorf("/readyz when not ready = %d %q", code, body)
	}
}

// TestNewOnSharedRegistryFails: registration errors surface instead of
// panicking, so two relays can never silently share collectors.
func TestNewOnSharedRegistryFails(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	if _, err := New(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := New(reg); err == nil {
		t.Fatal("second New on the same registry succeeded, want an error")
	}
}

// TestRemoveSeries: the series of a removed output (with its targets),
// listener and route leave the scrape; those of the others stay.
func TestRemoveSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := New(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []string{"a", "b"} {
		m.AddQueue(o, fakeQueue{depth: 1})
		m.OutputSent.WithLabelValues(o).Inc()
		m.OutputBytes.WithLabelValues(o).Inc()
		m.OutputErrors.WithLabelValues(o).Inc()
		m.OutputRetries.WithLabelValues(o).Inc()
		m.OutputResent.WithLabelValues(o).Inc()
		m.OutputDropped.WithLabelValues(o, "queue_full").Inc()
		m.OutputUp.WithLabelValues(o).Set(1)
		m.ParseProblems.WithLabelValues(o, "in", "no_header").Inc()
		for _, target := range []string{"t1", "t2"} {
			m.TargetUp.WithLabelValues(o, o+target).Set(1)
			m.TargetSent.WithLabelValues(o, o+target).Inc()
			m.TargetErrors.WithLabelValues(o, o+target).Inc()
		}
	}
	for _, l := range []string{"in", "gone"} {
		m.ListenerMessages.WithLabelValues(l).Inc()
		m.ListenerBytes.WithLabelValues(l).Inc()
		m.ListenerErrors.WithLabelValues(l, "denied").Inc()
		m.ListenerConnections.WithLabelValues(l).Set(1)
		m.Accepted.WithLabelValues(l).Inc()
		m.Unrouted.WithLabelValues(l).Inc()
	}
	m.RouteMatched.WithLabelValues("kept").Inc()
	m.RouteMatched.WithLabelValues("dropped").Inc()

	m.RemoveOutput("b")
	m.RemoveTarget("a", "at2")
	m.RemoveListener("gone")
	m.RemoveRoute("dropped")

	_, body := get(t, Handler(reg, nil), "/metrics")
	for _, gone := range []string{`output="b"`, `target="at2"`, `listener="gone"`, `route="dropped"`} {
		if strings.Contains(body, gone) {
			t.Errorf("a series with %s is still exported", gone)
		}
	}
	for _, kept := range []string{
		`relay_output_up{output="a"} 1`,
		`relay_queue_depth_records{output="a"} 1`,
		`relay_output_messages_dropped_total{output="a",reason="queue_full"} 1`,
		`relay_target_up{output="a",target="at1"} 1`,
		`relay_parse_problems_total{listener="in",output="a",reason="no_header"} 1`,
		`relay_listener_errors_total{listener="in",reason="denied"} 1`,
		`relay_route_messages_matched_total{route="kept"} 1`,
	} {
		if !strings.Contains(body, kept) {
			t.Errorf("scrape lacks %s", kept)
		}
	}
}

func TestBuildInfo(t *testing.T) {
	reg := prometheus.NewRegistry()
	if err := RegisterBuildInfo(reg, BuildInfo{Version: "1.2.3", Revision: "abc", GoVersion: "go1.26.0"}); err != nil {
		t.Fatal(err)
	}
	_, body := get(t, Handler(reg, nil), "/metrics")
	want := `relay_build_info{goversion="go1.26.0",revision="abc",version="1.2.3"} 1`
	if !strings.Contains(body, want) {
		t.Errorf("/metrics lacks %q:\n%s", want, body)
	}
}
