//go:build linux

package relay

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/relay-syslog/relay/internal/testpeer"
	"testing"
)

// TestListenerErrorNamedOnce: a listener that cannot bind is named once in
// New's error, whichever protocol.
func TestListenerErrorNamedOnce(t *testing.T) {
	dir := t.TempDir()
	notSocket := filepath.Join(dir, "dev-log")
	if err := os.WriteFile(notSocket, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	tcpTaken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcpTaken.Close()
	udpTaken, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udpTaken.Close()
	for _, c := range []struct{ name, protocol, address, want string }{
		{"dev", "unix", notSocket, `listener "dev": ` + notSocket + ` exists and is not a socket`},
		{"udp", "udp", udpTaken.LocalAddr().String(), `listener "udp": listen udp ` + udpTaken.LocalAddr().String() + `: bind: address already in use`},
		{"tcp", "tcp", tcpTaken.Addr().String(), `listener "tcp": listen tcp ` + tcpTaken.Addr().String() + `: bind: address already in use`},
	} {
		text := `data_dir = "` + dir + `"
[[listener]]
name = "` + c.name + `"
protocol = "` + c.protocol + `"
address = "` + c.address + `"
` + fileOutputTOML(filepath.Join(dir, "out.log"))
		cfg, err := ParseConfig("r.toml", []byte(text))
		if err != nil {
			t.Fatal(err)
		}
		srv, err := New(cfg, Options{Logger: testLogger(t)})
		if err == nil {
			srv.Close()
			t.Errorf("New with listener %q succeeded", c.name)
			continue
		}
		if err.Error() != c.want {
			t.Errorf("New: %q, want %q", err, c.want)
		}
	}
}

// maxRetries is the most errors a loop paced by retryDelay can meet within
// d: one at once, then one after each wait.
func maxRetries(d time.Duration) int {
	n := 1
	var wait time.Duration
	for spent := time.Duration(0); ; n++ {
		wait = retryDelay(wait)
		if spent += wait; spent > d {
			return n
		}
	}
}

func TestRetryDelay(t *testing.T) {
	var d time.Duration
	var got []time.Duration
	for range 10 {
		d = retryDelay(d)
		got = append(got, d)
	}
	want := []time.Duration{5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("retry delays %v, want %v ms", got, want)
		}
	}
	if n := maxRetries(time.Second); n != 8 {
		t.Errorf("maxRetries(1s) = %d, want 8 (at 0, 5, 15, 35, 75, 155, 315, 635 ms)", n)
	}
}

// TestUDPReadErrorBacksOff: when reading the UDP socket fails for good (its
// descriptor is made to point at /dev/null, so every read fails with
// ENOTSOCK), the read loop retries with backoff rather than spinning, counts
// each failure as read_error, logs the fault once, and still ends when the
// listener closes.
func TestUDPReadErrorBacksOff(t *testing.T) {
	dir := t.TempDir()
	r, logs := startRelayLogged(t, dir, `data_dir = "{{DATA}}"`+listenersTOML()+fileOutputTOML(filepath.Join(dir, "out.log")))
	r.srv.mu.Lock()
	dl := r.srv.listeners["udp"].l.(*datagramListener)
	r.srv.mu.Unlock()
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	raw, err := dl.conn.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var dupErr error
	start := time.Now()
	if err := raw.Control(func(fd uintptr) { dupErr = syscall.Dup3(int(devNull.Fd()), int(fd), 0) }); err != nil || dupErr != nil {
		t.Fatalf("dup3: %v %v", err, dupErr)
	}
	// The reader waits in the poller on the old socket, which can no longer
	// wake it: a read deadline does, with a first error of another kind.
	readErrors := func() float64 {
		return r.metric("relay_listener_errors_total", "listener", "udp", "reason", "read_error")
	}
	_ = dl.conn.SetReadDeadline(time.Now())
	if !testpeer.WaitFor(20*time.Second, func() bool { return readErrors() >= 1 }) {
		t.Fatal("the read deadline did not wake the reader")
	}
	_ = dl.conn.SetReadDeadline(time.Time{})
	if !testpeer.WaitFor(20*time.Second, func() bool {
		return logs.lineWith("read failed", "socket operation on non-socket") != "" && readErrors() >= 5
	}) {
		t.Fatalf("read_error = %v, want at least 5, with ENOTSOCK logged:\n%s", readErrors(), logs)
	}
	n, elapsed := readErrors(), time.Since(start)
	if limit := maxRetries(elapsed); n > float64(limit) {
		t.Errorf("%v read errors within %v; backoff allows at most %d", n, elapsed, limit)
	}
	// One line per kind: the timeouts, and ENOTSOCK.
	if lines := strings.Count(logs.String(), "read failed; retrying with backoff"); lines != 2 {
		t.Errorf("%d log lines for %v read errors of two kinds, want 2:\n%s", lines, n, logs)
	}
	r.stop()
}

// TestAcceptErrorBacksOff: a TCP listener whose process is out of file
// descriptors (RLIMIT_NOFILE lowered until every descriptor is taken) fails
// to accept with EMFILE; the accept loop backs off, counts each failure as
// accept_error, logs the fault once, and accepts the waiting connection
// once descriptors are free again. The limit is the process's, so the test
// runs itself in a child process.
func TestAcceptErrorBacksOff(t *testing.T) {
	if os.Getenv("RELAY_TEST_ACCEPT_CHILD") == "1" {
		acceptErrorChild(t)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestAcceptErrorBacksOff$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "RELAY_TEST_ACCEPT_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestAcceptErrorBacksOff") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

// acceptErrorChild is TestAcceptErrorBacksOff in its child process.
func acceptErrorChild(t *testing.T) {
	dir := t.TempDir()
	r, logs := startRelayLogged(t, dir, `data_dir = "{{DATA}}"`+listenersTOML()+fileOutputTOML(filepath.Join(dir, "out.log")))
	addr := r.addr("tcp")
	tcpCounter := func(c prometheus.Counter) float64 {
		var m dto.Metric
		if err := c.Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetCounter().GetValue()
	}
	// Read the counters directly: a scrape opens files in /proc.
	acceptErrors := r.srv.metrics.ListenerErrors.WithLabelValues("tcp", "accept_error")
	accepted := r.srv.metrics.Accepted.WithLabelValues("tcp")

	var limit syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &limit); err != nil {
		t.Fatal(err)
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	highest := 0
	for _, fd := range fds {
		if n, err := strconv.Atoi(fd.Name()); err == nil && n > highest {
			highest = n
		}
	}
	low := limit
	low.Cur = uint64(highest + 8)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	// Take every descriptor below the limit, then free one for the
	// client's socket: the relay's accept has none left.
	var fillers []int
	for range 1000 {
		fd, err := syscall.Open(os.DevNull, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != nil {
			if !errors.Is(err, syscall.EMFILE) {
				t.Fatal(err)
			}
			break
		}
		fillers = append(fillers, fd)
	}
	if len(fillers) == 0 {
		t.Fatal("no descriptor to fill")
	}
	syscall.Close(fillers[len(fillers)-1])
	fillers = fillers[:len(fillers)-1]
	start := time.Now()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !testpeer.WaitFor(20*time.Second, func() bool { return tcpCounter(acceptErrors) >= 4 }) {
		t.Fatalf("accept_error = %v, want at least 4", tcpCounter(acceptErrors))
	}
	n, elapsed := tcpCounter(acceptErrors), time.Since(start)
	for _, fd := range fillers {
		syscall.Close(fd)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &limit); err != nil {
		t.Fatal(err)
	}
	if allowed := maxRetries(elapsed); n > float64(allowed) {
		t.Errorf("%v accept errors within %v; backoff allows at most %d", n, elapsed, allowed)
	}
	if _, err := c.Write([]byte("<13>after the fault\n")); err != nil {
		t.Fatal(err)
	}
	if !testpeer.WaitFor(20*time.Second, func() bool { return tcpCounter(accepted) == 1 }) {
		t.Fatalf("the waiting connection's message was not accepted once descriptors were free:\n%s", logs)
	}
	if lines := strings.Count(logs.String(), "accept failed; retrying with backoff"); lines != 1 {
		t.Errorf("%d log lines for %v accept errors of one kind, want 1:\n%s", lines, n, logs)
	}
	if logs.lineWith("accept failed", "too many open files") == "" {
		t.Errorf("the log line does not give the error:\n%s", logs)
	}
}
