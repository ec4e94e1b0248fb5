package metrics

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

type fakeQueue struct{ depth, bytes int64 }

func (q fakeQueue) Depth() int64     { return q.depth }
func (q fakeQueue) DiskBytes() int64 { return q.bytes }
func (q fakeQueue) Corrupt() uint64  { return 0 }
func (q fakeQueue) Unwritten() int   { return 0 }
func (q fakeQueue) Recovered() int   { return 0 }

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
