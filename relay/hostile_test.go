package relay

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/relay-syslog/relay/internal/testpeer"
)

// The hostile-input tests throw at a running relay what a segment full of
// devices nobody controls may send, and check in each case that the relay
// stays up, that a well-behaved client on the same listener keeps being
// served (every one of its messages arrives), that memory stays bounded
// (the process's resident set, sampled during the attack), and that a
// metric counts the attack with a reason.

// rssBytes is this process's resident set size from /proc/self/status.
func rssBytes(t testing.TB) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		skipOrFail(t, "no /proc/self/status: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// goMemory is the memory the Go runtime holds from the operating system
// (heap, stacks, runtime structures) less what it has released: the
// relay's share of the resident set. Unlike VmRSS it leaves out the race
// detector's shadow memory, which under -race is several times the heap.
func goMemory() int64 {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64() - s[1].Value.Uint64())
}

// rssSampler records the peak resident set size, and the peak of
// goMemory, while it runs.
type rssSampler struct {
	base, goBase int64
	peak, goPeak atomic.Int64
	stop         chan struct{}
	done         chan struct{}
}

func sampleRSS(t testing.TB) *rssSampler {
	runtime.GC()
	s := &rssSampler{base: rssBytes(t), goBase: goMemory(), stop: make(chan struct{}), done: make(chan struct{})}
	s.peak.Store(s.base)
	s.goPeak.Store(s.goBase)
	go func() {
		defer close(s.done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-tick.C:
				if v := rssBytes(t); v > s.peak.Load() {
					s.peak.Store(v)
				}
				if v := goMemory(); v > s.goPeak.Load() {
					s.goPeak.Store(v)
				}
			}
		}
	}()
	return s
}

// finish stops sampling, logs both measures, and fails the test if the
// Go runtime's memory grew by more than limit during the attack.
func (s *rssSampler) finish(t testing.TB, limit int64) {
	t.Helper()
	close(s.stop)
	<-s.done
	peak, goPeak := s.peak.Load(), s.goPeak.Load()
	t.Logf("memory during the attack: resident %d MiB before, %d MiB peak (+%d MiB); Go runtime %d MiB before, %d MiB peak (+%d MiB)",
		s.base>>20, peak>>20, (peak-s.base)>>20, s.goBase>>20, goPeak>>20, (goPeak-s.goBase)>>20)
	if goPeak-s.goBase > limit {
		t.Errorf("memory grew by %d MiB, more than %d MiB", (goPeak-s.goBase)>>20, limit>>20)
	}
}

// goodClient sends sequence-numbered messages to addr, a batch of 50 per
// connection (over TLS when cfg is set), until stopped, and checks that
// every one arrived in the relay's file output.
type goodClient struct {
	run  string
	sent atomic.Int64
	stop chan struct{}
	done chan error
}

func startGoodClient(run, addr string, cfg *tls.Config) *goodClient {
	g := &goodClient{run: run, stop: make(chan struct{}), done: make(chan error, 1)}
	go func() {
		for i := 0; ; i += 50 {
			select {
			case <-g.stop:
				g.done <- nil
				return
			default:
			}
			var err error
			if cfg != nil {
				err = sendTLS(addr, cfg, run, i, i+50)
			} else {
				err = testpeer.SendTCP(addr, run, i, i+50, true)
			}
			if err != nil {
				g.done <- fmt.Errorf("well-behaved client: %w", err)
				return
			}
			g.sent.Store(int64(i + 50))
			time.Sleep(10 * time.Millisecond)
		}
	}()
	return g
}

// finish stops the client and checks that everything it sent arrived.
func (g *goodClient) finish(t testing.TB, out string) {
	t.Helper()
	close(g.stop)
	if err := <-g.done; err != nil {
		t.Error(err)
	}
	n := int(g.sent.Load())
	if n == 0 {
		t.Error("the well-behaved client sent nothing")
		return
	}
	if !testpeer.WaitFor(10*time.Second, func() bool { return testpeer.Check(g.run, n, testpeer.ReadLines(out)).Delivered() == n }) {
		t.Errorf("well-behaved client: %v", testpeer.Check(g.run, n, testpeer.ReadLines(out)))
		return
	}
	t.Logf("well-behaved client: all %d messages arrived", n)
}

// hostileRelay starts a relay with a plain TCP, a TLS and a UDP listener,
// all with the given extra settings, writing to a file.
func hostileRelay(t *testing.T, extra string) (r *testRelay, out string, client *tls.Config) {
	t.Helper()
	ca := testpeer.NewTestCA(t, "relay")
	srv := ca.Server("relay", "relay.test")
	dir := t.TempDir()
	out = filepath.Join(dir, "out.log")
	r = startRelay(t, dir, fmt.Sprintf(`data_dir = "{{DATA}}/q"
[[listener]]
name = "tcp"
protocol = "tcp"
address = "127.0.0.1:0"
%[1]s

[[listener]]
name = "tls"
protocol = "tls"
address = "127.0.0.1:0"
tls.cert_file = %[2]q
tls.key_file = %[3]q
%[1]s

[[listener]]
name = "udp"
protocol = "udp"
address = "127.0.0.1:0"
`, extra, srv.CertFile, srv.KeyFile)+fileOutTOML(out))
	return r, out, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}
}

func (r *testRelay) waitReason(t testing.TB, listener, reason string, atLeast float64) {
	t.Helper()
	if !testpeer.WaitFor(10*time.Second, func() bool {
		return r.metric("relay_listener_errors_total", "listener", listener, "reason", reason) >= atLeast
	}) {
		t.Errorf("relay_listener_errors_total{listener=%q,reason=%q} = %v, want >= %v", listener, reason,
			r.metric("relay_listener_errors_total", "listener", listener, "reason", reason), atLeast)
		return
	}
	t.Logf("relay_listener_errors_total{listener=%q,reason=%q} = %v", listener, reason,
		r.metric("relay_listener_errors_total", "listener", listener, "reason", reason))
}

// sendRaw writes data on a new connection, half-closes it and waits for
// the relay to close its side.
func sendRaw(addr string, data ...[]byte) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	for _, d := range data {
		if _, err := c.Write(d); err != nil {
			return err
		}
	}
	_ = c.(*net.TCPConn).CloseWrite()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.Copy(io.Discard, c)
	return err
}

func TestHostileGarbage(t *testing.T) {
	r, out, _ := hostileRelay(t, "")
	rss := sampleRSS(t)
	good := startGoodClient("good-garbage", r.addr("tcp"), nil)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			junk := make([]byte, 1<<20)
			_, _ = rand.Read(junk)
			// Random bytes have NULs, LFs and digits in them; start with a
			// byte that is not '<' so at least one frame has no PRI.
			junk[0] = 'x'
			if err := sendRaw(r.addr("tcp"), junk); err != nil {
				t.Errorf("garbage: %v", err)
			}
		}()
	}
	u, err := net.Dial("udp", r.addr("udp"))
	if err != nil {
		t.Fatal(err)
	}
	for range 1000 {
		junk := make([]byte, 1+int(time.Now().UnixNano()%1400))
		_, _ = rand.Read(junk)
		junk[0] = 0xff
		_, _ = u.Write(junk)
	}
	u.Close()
	wg.Wait()
	good.finish(t, out)
	rss.finish(t, 100<<20)
	r.waitReason(t, "tcp", "no_pri", 1)
	r.waitReason(t, "tcp", "invalid_utf8", 1)
	r.waitReason(t, "tcp", "nul_byte", 1)
	r.waitReason(t, "udp", "no_pri", 500) // the kernel may drop some datagrams
}

func TestHostileTLSHandshakeToPlainPort(t *testing.T) {
	r, out, client := hostileRelay(t, "")
	rss := sampleRSS(t)
	good := startGoodClient("good-tls2plain", r.addr("tcp"), nil)
	for range 50 {
		start := time.Now()
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", r.addr("tcp"), client)
		if err == nil {
			c.Close()
			t.Fatal("a TLS handshake succeeded on the plain TCP port")
		}
		// Closed at once, not after idle_timeout.
		if took := time.Since(start); took > 2*time.Second {
			t.Fatalf("the relay took %v to drop a TLS client on its plain port", took)
		}
	}
	good.finish(t, out)
	rss.finish(t, 50<<20)
	r.waitReason(t, "tcp", "tls_on_plain_port", 50)
	if n := r.metric("relay_listener_messages_received_total", "listener", "tcp"); n != float64(good.sent.Load()) {
		t.Errorf("tcp listener received %v messages, want only the %d of the good client: a ClientHello is not a message", n, good.sent.Load())
	}
}

func TestHostilePlaintextToTLSPort(t *testing.T) {
	r, out, client := hostileRelay(t, "")
	rss := sampleRSS(t)
	good := startGoodClient("good-plain2tls", r.addr("tls"), client)
	for i := range 50 {
		start := time.Now()
		if err := sendRaw(r.addr("tls"), []byte(testpeer.SeqMessage("plain", i)+"\n")); err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatal(err)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Fatalf("the relay took %v to drop a plain-text client on its TLS port", took)
		}
	}
	good.finish(t, out)
	rss.finish(t, 50<<20)
	r.waitReason(t, "tls", "plaintext_on_tls_port", 50)
	if n := testpeer.Check("plain", 50, testpeer.ReadLines(out)).Delivered(); n != 0 {
		t.Errorf("%d plain-text messages were accepted on the TLS port", n)
	}
}

func TestHostileLyingOctetCounts(t *testing.T) {
	r, out, _ := hostileRelay(t, "")
	rss := sampleRSS(t)
	good := startGoodClient("good-octets", r.addr("tcp"), nil)
	huge := append([]byte("9999999999 <13>too-large "), bytes.Repeat([]byte("y"), 2<<20)...)
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"too-large", huge}, // claims 10 GB, sends 2 MiB, closes
		{"too-large-for-limit", []byte("99999 <13>short")},          // more than max_message_size, stream ends
		{"negative", []byte("-5 <13>negative\n")},                   // not a count: an LF-framed message
		{"not-a-number", []byte("abc <13>nan\n12a <13>nan2\n")},     // likewise
		{"longer-than-stream", []byte("500 <13>only-twenty-bytes")}, // cut short
		{"zero", []byte("0 <13>zero\n")},                            // a leading zero is not a count
	} {
		if err := sendRaw(r.addr("tcp"), c.data); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	good.finish(t, out)
	rss.finish(t, 50<<20)
	r.waitReason(t, "tcp", "truncated", 1)
	r.waitReason(t, "tcp", "incomplete_frame", 2)
	r.waitReason(t, "tcp", "no_pri", 4)
}

func TestHostileLongLines(t *testing.T) {
	r, out, _ := hostileRelay(t, "")
	rss := sampleRSS(t)
	good := startGoodClient("good-long", r.addr("tcp"), nil)
	line := append(append([]byte("<13>"), bytes.Repeat([]byte("a"), 1<<20)...), '\n')
	counted := append([]byte(strconv.Itoa(len(line)-1)+" "), line[:len(line)-1]...)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := line // four 1 MiB LF-framed lines
			if i%2 == 1 {
				data = counted // four 1 MiB octet-counted frames
			}
			if err := sendRaw(r.addr("tcp"), data, data, data, data); err != nil {
				t.Errorf("long lines: %v", err)
			}
		}()
	}
	wg.Wait()
	good.finish(t, out)
	rss.finish(t, 100<<20)
	r.waitReason(t, "tcp", "truncated", 32)
}

func TestHostileNULAndInvalidUTF8(t *testing.T) {
	r, out, client := hostileRelay(t, "")
	rss := sampleRSS(t)
	good := startGoodClient("good-bytes", r.addr("tcp"), nil)
	nul := "<13>nul\x00in\x00the\x00middle"
	bad := "<13>caf\xe9 \xff\xfe not utf-8"
	var b bytes.Buffer
	for range 100 {
		fmt.Fprintf(&b, "%d %s%d %s", len(nul), nul, len(bad), bad)
	}
	if err := sendRaw(r.addr("tcp"), b.Bytes()); err != nil {
		t.Fatal(err)
	}
	c, err := tls.Dial("tcp", r.addr("tls"), client)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "%s\n%s\n", nul, bad)
	c.Close()
	good.finish(t, out)
	rss.finish(t, 50<<20)
	r.waitReason(t, "tcp", "nul_byte", 100)
	r.waitReason(t, "tcp", "invalid_utf8", 100)
	r.waitReason(t, "tls", "nul_byte", 1)
	r.waitReason(t, "tls", "invalid_utf8", 1)
	// They are forwarded all the same: byte for byte, except that the
	// file output writes each NUL as rsyslog does, "#000".
	lines := testpeer.ReadLines(out)
	if !contains(lines, strings.ReplaceAll(nul, "\x00", "#000")) || !contains(lines, bad) {
		t.Error("the NUL or the invalid UTF-8 message was not written as it came")
	}
}

// TestHostileSlowloris: clients that trickle a frame one byte at a time
// are closed idle_timeout after their last complete message, however often
// they send a byte; a slow client that completes its messages is not.
func TestHostileSlowloris(t *testing.T) {
	needLong(t)
	r, out, _ := hostileRelay(t, `idle_timeout = "2s"`)
	rss := sampleRSS(t)
	good := startGoodClient("good-slowloris", r.addr("tcp"), nil)
	const slow = 20
	var wg sync.WaitGroup
	closedAfter := make([]time.Duration, slow)
	for i := range slow {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", r.addr("tcp"))
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			every := time.Second // the slowloris: a byte a second
			if i%2 == 1 {
				every = 250 * time.Millisecond // faster than idle_timeout
			}
			start := time.Now()
			msg := []byte("<13>a frame that never ends ")
			for j := 0; time.Since(start) < 30*time.Second; j++ {
				if _, err := c.Write(msg[j%len(msg) : j%len(msg)+1]); err != nil {
					closedAfter[i] = time.Since(start)
					return
				}
				// A closed connection shows as EOF on read.
				_ = c.SetReadDeadline(time.Now().Add(every))
				if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
					closedAfter[i] = time.Since(start)
					return
				}
			}
			t.Errorf("slow client %d (a byte every %v) still connected after 30s", i, every)
		}()
	}
	// A slow but honest client: a complete message every 400ms, for 3s.
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := net.Dial("tcp", r.addr("tcp"))
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		for i := range 8 {
			m := testpeer.SeqMessage("slow-honest", i)
			if _, err := fmt.Fprintf(c, "%d %s", len(m), m); err != nil {
				t.Errorf("slow honest client cut off after %d messages: %v", i, err)
				return
			}
			time.Sleep(400 * time.Millisecond)
		}
	}()
	wg.Wait()
	good.finish(t, out)
	rss.finish(t, 50<<20)
	for i, d := range closedAfter {
		if d == 0 || d > 20*time.Second {
			t.Errorf("slow client %d closed after %v, want about 2s (idle_timeout)", i, d)
		}
	}
	r.waitReason(t, "tcp", "frame_timeout", slow)
	if !testpeer.WaitFor(30*time.Second, func() bool { return testpeer.Check("slow-honest", 8, testpeer.ReadLines(out)).Delivered() == 8 }) {
		t.Errorf("slow honest client: %v", testpeer.Check("slow-honest", 8, testpeer.ReadLines(out)))
	}
}

// raiseFileLimit lifts the soft RLIMIT_NOFILE towards want, as far as the
// hard limit allows (raising that needs CAP_SYS_RESOURCE, which a test
// cannot count on), and returns the soft limit now in force.
func raiseFileLimit(t testing.TB, want uint64) uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	prev := lim
	if uint64(lim.Cur) < want {
		setRlimit(&lim.Cur, min(want, uint64(lim.Max)))
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Logf("raise RLIMIT_NOFILE: %v", err)
		}
		t.Cleanup(func() { _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &prev) })
	}
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	return uint64(lim.Cur)
}

// setRlimit sets a field of syscall.Rlimit: a uint64 on Linux and macOS,
// an int64 on FreeBSD.
func setRlimit[T ~int64 | ~uint64](field *T, v uint64) { *field = T(v) }

// TestIdleConnectionsHelper is not a test of its own: TestHostileIdle-
// Connections runs the test binary again with it to hold the client ends
// of its idle connections in another process, so that this process's
// descriptors, and its resident memory, are the relay's alone.
func TestIdleConnectionsHelper(t *testing.T) {
	addr := os.Getenv("RELAY_TEST_IDLE_ADDR")
	if addr == "" {
		return // run directly: there is nothing to hold
	}
	n, _ := strconv.Atoi(os.Getenv("RELAY_TEST_IDLE_N"))
	raiseFileLimit(t, uint64(n+100))
	conns := make([]net.Conn, 0, n)
	for range n {
		c, err := net.DialTimeout("tcp", addr, 30*time.Second)
		if err != nil {
			fmt.Printf("error after %d connections: %v\n", len(conns), err)
			os.Exit(1)
		}
		conns = append(conns, c)
	}
	fmt.Printf("ready %d\n", len(conns))
	// Hold them until the parent closes stdin (or dies).
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		c.Close()
	}
}

// holdIdleConnections opens n connections to addr from a helper process
// and returns once they are open; they close when release is called or
// the test ends.
func holdIdleConnections(t *testing.T, addr string, n int) (release func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestIdleConnectionsHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), "RELAY_TEST_IDLE_ADDR="+addr, "RELAY_TEST_IDLE_N="+strconv.Itoa(n))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			stdin.Close()
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		})
	}
	t.Cleanup(release)
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ready ") {
		t.Fatalf("idle connection helper: %q, %v", line, err)
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	return release
}

// TestHostileIdleConnections holds 10,000 connections that never send
// (their client ends in a helper process), checks that the relay keeps
// serving a well-behaved client and that connections past max_connections
// evict the silent ones, counted. A second relay with a short idle_timeout then
// reaps 10,000 silent connections, and a third holds 1,000 idle TLS
// sessions.
//
// Nothing here depends on how fast connections open: the relays that must
// hold connections have an idle_timeout no run of the test can reach, so
// none is reaped (freeing a slot past max_connections) while the others
// still open; the relay that reaps counts each connection once however
// many are open at a time.
func TestHostileIdleConnections(t *testing.T) {
	needLong(t)
	const n = 10000
	if limit := raiseFileLimit(t, n+1000); limit < n+1000 {
		skipOrFail(t, "RLIMIT_NOFILE is %d, the relay needs %d descriptors for this test", limit, n+1000)
	}
	const never = `idle_timeout = "1h"`
	r, out, client := hostileRelay(t, fmt.Sprintf("%s\nmax_connections = %d", never, n+20))
	rss := sampleRSS(t)
	start := time.Now()
	release := holdIdleConnections(t, r.addr("tcp"), n)
	if !testpeer.WaitFor(time.Minute, func() bool {
		return r.metric("relay_listener_connections", "listener", "tcp") >= float64(n)
	}) {
		t.Fatalf("relay holds %v connections, want %d", r.metric("relay_listener_connections", "listener", "tcp"), n)
	}
	opened := time.Since(start)
	held := rssBytes(t)
	t.Logf("%d idle connections open after %v; resident memory %d MiB (%d MiB before: %.1f KiB per connection)",
		n, opened.Round(time.Millisecond), held>>20, rss.base>>20, float64(held-rss.base)/float64(n)/1024)
	var conns []net.Conn
	closeConns := func() {
		for _, c := range conns {
			c.Close()
		}
		conns = nil
	}
	defer closeConns()

	// The well-behaved client uses the slots left.
	good := startGoodClient("good-idle", r.addr("tcp"), nil)
	time.Sleep(200 * time.Millisecond)
	good.finish(t, out)

	// Past max_connections: of 40 more, 20 fit; each of the rest evicts
	// one of the connections silent longest (the helper's), counted.
	for i := range 40 {
		c, err := net.DialTimeout("tcp", r.addr("tcp"), 30*time.Second)
		if err != nil {
			t.Fatalf("connection %d past the idle ones: %v", i, err)
		}
		conns = append(conns, c)
	}
	r.waitReason(t, "tcp", "evicted_silent", 20)
	if got := r.metric("relay_listener_connections", "listener", "tcp"); got > n+20 {
		t.Errorf("relay holds %v connections, max_connections is %d", got, n+20)
	}
	rss.finish(t, 200<<20)
	// The next relay needs the descriptors these hold.
	closeConns()
	release()
	if !testpeer.WaitFor(time.Minute, func() bool { return r.metric("relay_listener_connections", "listener", "tcp") == 0 }) {
		t.Fatalf("relay holds %v connections after their clients closed", r.metric("relay_listener_connections", "listener", "tcp"))
	}

	// idle_timeout reaps the silent connections. The helper reports them
	// open once every dial has completed, by when the first may already
	// have been reaped: each is counted once either way.
	r, _, _ = hostileRelay(t, fmt.Sprintf("idle_timeout = \"1s\"\nmax_connections = %d", n))
	rss = sampleRSS(t)
	holdIdleConnections(t, r.addr("tcp"), n)
	if !testpeer.WaitFor(time.Minute, func() bool {
		return r.metric("relay_listener_errors_total", "listener", "tcp", "reason", "idle_timeout") >= n &&
			r.metric("relay_listener_connections", "listener", "tcp") == 0
	}) {
		t.Errorf("%v of %d silent connections reaped by idle_timeout, %v still open",
			r.metric("relay_listener_errors_total", "listener", "tcp", "reason", "idle_timeout"), n,
			r.metric("relay_listener_connections", "listener", "tcp"))
	}
	if got := r.metric("relay_listener_errors_total", "listener", "tcp", "reason", "too_many_connections"); got != 0 {
		t.Errorf("%v connections refused as too many, want 0", got)
	}
	rss.finish(t, 200<<20)

	// Idle TLS sessions: the handshake's state stays with each.
	r, out, client = hostileRelay(t, never)
	rss = sampleRSS(t)
	const nTLS = 1000
	before := rssBytes(t)
	var tlsConns []*tls.Conn
	defer func() {
		for _, c := range tlsConns {
			c.Close()
		}
	}()
	for range nTLS {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 30 * time.Second}, "tcp", r.addr("tls"), client)
		if err != nil {
			t.Fatalf("after %d TLS sessions: %v", len(tlsConns), err)
		}
		tlsConns = append(tlsConns, c)
	}
	if !testpeer.WaitFor(time.Minute, func() bool {
		return r.metric("relay_listener_connections", "listener", "tls") >= nTLS
	}) {
		t.Fatalf("relay holds %v TLS sessions, want %d", r.metric("relay_listener_connections", "listener", "tls"), nTLS)
	}
	heldTLS := rssBytes(t)
	t.Logf("%d idle TLS sessions: resident memory %d MiB (%.1f KiB per session, client ends included)",
		nTLS, heldTLS>>20, float64(heldTLS-before)/nTLS/1024)
	goodTLS := startGoodClient("good-idle-tls", r.addr("tls"), client)
	time.Sleep(200 * time.Millisecond)
	goodTLS.finish(t, out)
	rss.finish(t, 200<<20)
}

// TestHostileFloodRecovers: after a mix of the attacks above on one relay
// at once, new clients are served normally (nothing wedged).
func TestHostileFloodRecovers(t *testing.T) {
	r, out, client := hostileRelay(t, `idle_timeout = "2s"`)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch i % 4 {
			case 0:
				junk := make([]byte, 256<<10)
				_, _ = rand.Read(junk)
				_ = sendRaw(r.addr("tcp"), junk)
			case 1:
				_ = sendRaw(r.addr("tls"), []byte("<13>plain\n"))
			case 2:
				c, err := tls.Dial("tcp", r.addr("tcp"), client)
				if err == nil {
					c.Close()
				}
			case 3:
				_ = sendRaw(r.addr("tcp"), []byte("9999999999 "))
			}
		}()
	}
	wg.Wait()
	if err := sendTLS(r.addr("tls"), client, "after", 0, 100); err != nil {
		t.Fatal(err)
	}
	if err := testpeer.SendTCP(r.addr("tcp"), "after-tcp", 0, 100, true); err != nil {
		t.Fatal(err)
	}
	for _, run := range []string{"after", "after-tcp"} {
		if !testpeer.WaitFor(5*time.Second, func() bool { return testpeer.Check(run, 100, testpeer.ReadLines(out)).Delivered() == 100 }) {
			t.Errorf("%s: %v", run, testpeer.Check(run, 100, testpeer.ReadLines(out)))
		}
	}
}

// TestHostileTLSHandshakeStall: clients that start a TLS handshake and
// stall are closed after the handshake timeout (idle_timeout here) and
// counted, while a TLS client on the same listener is served.
func TestHostileTLSHandshakeStall(t *testing.T) {
	r, out, client := hostileRelay(t, `idle_timeout = "1s"`)
	rss := sampleRSS(t)
	good := startGoodClient("good-stall", r.addr("tls"), client)
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			// The first bytes of a TLS record header, and nothing more.
			if err := sendRawOpen(r.addr("tls"), []byte{0x16, 0x03, 0x01}); err != nil {
				t.Error(err)
			}
			if took := time.Since(start); took < 800*time.Millisecond || took > 3*time.Second {
				t.Errorf("a stalled handshake was closed after %v, want about 1s", took)
			}
		}()
	}
	wg.Wait()
	good.finish(t, out)
	rss.finish(t, 50<<20)
	r.waitReason(t, "tls", "tls_handshake_timeout", 10)
}

// sendRawOpen writes data, keeps the connection open and waits for the
// relay to close it.
func sendRawOpen(addr string, data []byte) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Write(data); err != nil {
		return err
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.Copy(io.Discard, c)
	if errors.Is(err, syscall.ECONNRESET) {
		err = nil
	}
	return err
}

// TestBusyConnectionKeepsReading: a sender that streams without pause, in
// writes that end in the middle of frames, is never taken for an idle
// one: the read deadline moves with every complete message, not only when
// the relay's buffer happens to be empty. The stream lasts two and a half
// idle timeouts; the sender's pauses (5ms, and whatever a loaded machine
// adds) stay far below one.
func TestBusyConnectionKeepsReading(t *testing.T) {
	needLong(t)
	r, out, _ := hostileRelay(t, `idle_timeout = "2s"`)
	c, err := net.Dial("tcp", r.addr("tcp"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var b bytes.Buffer
	n := 0
	for start := time.Now(); time.Since(start) < 5*time.Second; {
		for range 50 {
			m := testpeer.SeqMessage("busy", n)
			fmt.Fprintf(&b, "%d %s", len(m), m)
			n++
		}
		// Write all but the last 7 bytes, so the relay's reads end inside
		// a frame; they go out with the next chunk.
		data := b.Bytes()
		if _, err := c.Write(data[:len(data)-7]); err != nil {
			t.Fatalf("the relay closed a busy connection after %d messages: %v", n, err)
		}
		rest := append([]byte(nil), data[len(data)-7:]...)
		b.Reset()
		b.Write(rest)
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := c.Write(b.Bytes()); err != nil {
		t.Fatal(err)
	}
	_ = c.(*net.TCPConn).CloseWrite()
	_, _ = io.Copy(io.Discard, c)
	if !testpeer.WaitFor(30*time.Second, func() bool { return testpeer.Check("busy", n, testpeer.ReadLines(out)).Delivered() == n }) {
		t.Errorf("%v", testpeer.Check("busy", n, testpeer.ReadLines(out)))
	}
	for _, reason := range []string{"idle_timeout", "frame_timeout"} {
		if v := r.metric("relay_listener_errors_total", "listener", "tcp", "reason", reason); v != 0 {
			t.Errorf("%s = %v on a busy connection", reason, v)
		}
	}
}
