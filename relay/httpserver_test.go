package relay

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/relay-syslog/relay/internal/testpeer"
)

func metricsRelay(t *testing.T) *testRelay {
	t.Helper()
	return startRelay(t, t.TempDir(), `data_dir = "{{DATA}}"
[metrics]
address = "127.0.0.1:0"
`+listenersTOML()+`
[[output]]
name = "file"
protocol = "file"
path = "{{DATA}}/out.log"
[[route]]
name = "all"
outputs = ["file"]
`)
}

// httpGet sends one keep-alive request for path on c and reads the answer.
func httpGet(c net.Conn, br *bufio.Reader, path string, extra string) (*http.Response, error) {
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: relay\r\n%s\r\n", path, extra); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, err
}

// TestMetricsHTTPRefusesHugeHeaders: a request's headers are held in
// memory until they end, so the metrics server takes no more than a
// scraper sends (a few hundred bytes), not net/http's default of 1 MiB a
// connection.
func TestMetricsHTTPRefusesHugeHeaders(t *testing.T) {
	t.Parallel()
	r := metricsRelay(t)
	c, err := net.Dial("tcp", r.srv.MetricsAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	resp, err := httpGet(c, bufio.NewReader(c), "/healthz", "X-Pad: "+strings.Repeat("a", 64<<10)+"\r\n")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("64 KiB of headers: status %d, want %d", resp.StatusCode, http.StatusRequestHeaderFieldsTooLarge)
	}
}

// TestMetricsHTTPClosesIdleConnections: a keep-alive connection that sends
// no next request is closed, so idle connections cannot pile up.
func TestMetricsHTTPClosesIdleConnections(t *testing.T) {
	// Not parallel: it shortens the idle timeout for the relay it starts.
	defer func(d time.Duration) { httpIdleTimeout = d }(httpIdleTimeout)
	httpIdleTimeout = 200 * time.Millisecond
	r := metricsRelay(t)
	c, err := net.Dial("tcp", r.srv.MetricsAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	if resp, err := httpGet(c, br, "/healthz", ""); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz: %v %v", resp, err)
	}
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("an idle keep-alive connection: read %v, want the server's close (EOF)", err)
	}
}

// TestMetricsHTTPConnectionCap: at httpMaxConns open connections a new one
// is closed unanswered, so connections that stay open (keep-alive, a
// client that does not read its answer) cannot exhaust the relay's memory
// and file descriptors, which its syslog listeners need; a slot freed is
// taken again.
func TestMetricsHTTPConnectionCap(t *testing.T) {
	t.Parallel()
	r := metricsRelay(t)
	addr := r.srv.MetricsAddr()
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range httpMaxConns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		if resp, err := httpGet(c, bufio.NewReader(c), "/healthz", ""); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("connection %d: GET /healthz: %v %v", len(held), resp, err)
		}
	}
	extra, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	if resp, err := httpGet(extra, bufio.NewReader(extra), "/healthz", ""); err == nil {
		t.Fatalf("connection %d beyond the cap was answered: %s", httpMaxConns+1, resp.Status)
	}
	held[0].Close()
	held = held[1:]
	if !testpeer.WaitFor(30*time.Second, func() bool {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return false
		}
		defer c.Close()
		resp, err := httpGet(c, bufio.NewReader(c), "/healthz", "Connection: close\r\n")
		return err == nil && resp.StatusCode == http.StatusOK
	}) {
		t.Fatal("a connection closed by its client did not free its slot")
	}
}
