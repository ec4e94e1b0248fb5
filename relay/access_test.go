package relay

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relay-syslog/relay/internal/testpeer"
)

func TestAllowedNetworks(t *testing.T) {
	t.Parallel()
	a, err := newAccessControl(ListenerConfig{AllowedNetworks: []string{
		"192.0.2.0/24", "2001:db8::/32", "198.51.100.7", "203.0.113.9/16", "::ffff:10.1.0.0/112", "fe80::/10",
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		addr string
		want bool
	}{
		{"192.0.2.1", true},
		{"192.0.2.255", true},
		{"192.0.3.1", false},
		{"::ffff:192.0.2.77", true}, // IPv4 on a dual-stack socket
		{"2001:db8:1::5", true},
		{"2001:db9::5", false},
		{"198.51.100.7", true},
		{"198.51.100.8", false},
		{"203.0.1.1", true}, // 203.0.113.9/16 is 203.0.0.0/16
		{"10.1.200.3", true},
		{"10.2.0.1", false},
		{"fe80::1%eth0", true}, // a zone never keeps a match from matching
		{"127.0.0.1", false},
	} {
		if got := a.allows(netip.MustParseAddr(c.addr)); got != c.want {
			t.Errorf("allows(%s) = %v, want %v", c.addr, got, c.want)
		}
	}
	none, err := newAccessControl(ListenerConfig{})
	if err != nil || none != nil {
		t.Fatalf("no restrictions: %v, %v; want nil, nil", none, err)
	}
	if !none.allows(netip.MustParseAddr("192.0.2.1")) {
		t.Error("a nil accessControl refused a sender")
	}
}

func TestRateLimiterAllow(t *testing.T) {
	t.Parallel()
	l := newRateLimiter(10, 5, 100)
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	now := time.Now()
	for i := range 5 {
		if !l.allow(a, now) {
			t.Fatalf("message %d of the burst refused", i)
		}
	}
	if l.allow(a, now) {
		t.Fatal("sixth message at once allowed, burst is 5")
	}
	if !l.allow(b, now) {
		t.Fatal("another sender is limited by the first one's bucket")
	}
	if !l.allow(a, now.Add(100*time.Millisecond)) {
		t.Fatal("no token 100ms later at 10/s")
	}
	if l.allow(a, now.Add(150*time.Millisecond)) {
		t.Fatal("a token 50ms after the last one at 10/s")
	}
	// A long silence refills to the burst, not beyond.
	later := now.Add(time.Hour)
	for i := range 5 {
		if !l.allow(a, later) {
			t.Fatalf("after an hour: message %d refused", i)
		}
	}
	if l.allow(a, later) {
		t.Fatal("after an hour the bucket holds more than the burst")
	}
	// IPv4 and IPv4-mapped IPv6 are one sender.
	if l.allow(netip.MustParseAddr("::ffff:192.0.2.1"), later) {
		t.Fatal("::ffff:192.0.2.1 has its own bucket")
	}
}

func TestRateLimiterDefaultBurst(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		rate float64
		want float64
	}{{100, 100}, {2.5, 3}, {0.1, 1}} {
		if l := newRateLimiter(c.rate, 0, 10); l.burst != c.want {
			t.Errorf("rate %v: burst %v, want %v (one second's worth, at least 1)", c.rate, l.burst, c.want)
		}
	}
}

func TestRateLimiterReserve(t *testing.T) {
	t.Parallel()
	l := newRateLimiter(10, 1, 100)
	a := netip.MustParseAddr("192.0.2.1")
	now := time.Now()
	for i, want := range []time.Duration{0, 100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond} {
		if got := l.reserve(a, now); got != want {
			t.Errorf("reserve %d: wait %v, want %v", i, got, want)
		}
	}
	// Paying the debt off: 300ms later the next token is 100ms away.
	if got := l.reserve(a, now.Add(300*time.Millisecond)); got != 100*time.Millisecond {
		t.Errorf("after 300ms: wait %v, want 100ms", got)
	}
}

// TestRateLimiterBounded: a flood from a million distinct (spoofed) source
// addresses keeps the limiter at its cap, and a sender that keeps sending
// keeps its bucket (least recently used eviction).
func TestRateLimiterBounded(t *testing.T) {
	const maxSenders = 1000
	l := newRateLimiter(1, 1, maxSenders)
	steady := netip.MustParseAddr("198.51.100.1")
	now := time.Now()
	if !l.allow(steady, now) {
		t.Fatal("first message refused")
	}
	for i := range 1 << 20 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		l.allow(a, now)
		if i%500 == 0 && l.allow(steady, now) {
			t.Fatalf("after %d spoofed senders the steady sender's empty bucket was forgotten", i)
		}
	}
	if n := l.senders(); n != maxSenders {
		t.Errorf("limiter holds %d senders, want the cap %d", n, maxSenders)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		now = now.Add(time.Microsecond)
		l.allow(netip.AddrFrom4([4]byte{11, byte(now.Nanosecond() >> 16), byte(now.Nanosecond() >> 8), byte(now.Nanosecond())}), now)
	})
	if allocs > 0.1 {
		t.Errorf("a new sender at the cap costs %.2f allocations, want none (evicted buckets are reused)", allocs)
	}
}

// TestAccessDenied: a sender outside allowed_networks is refused on TCP
// (connection closed), UDP (datagram dropped) and TLS, and counted.
func TestAccessDenied(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out := filepath.Join(dir, "out.log")
	ca := testpeer.NewTestCA(t, "relay")
	srv := ca.Server("relay", "relay.test")
	r, logs := startRelayLogged(t, dir, fmt.Sprintf(`data_dir = "{{DATA}}/q"
[[listener]]
name = "tcp"
protocol = "tcp"
address = "127.0.0.1:0"
allowed_networks = ["192.0.2.0/24"]

[[listener]]
name = "udp"
protocol = "udp"
address = "127.0.0.1:0"
allowed_networks = ["192.0.2.0/24", "2001:db8::/32"]

[[listener]]
name = "open"
protocol = "tcp"
address = "127.0.0.1:0"
allowed_networks = ["127.0.0.0/8"]

[[listener]]
name = "tls"
protocol = "tls"
address = "127.0.0.1:0"
allowed_networks = ["192.0.2.0/24"]
tls.cert_file = %q
tls.key_file = %q

[[output]]
name = "file"
protocol = "file"
path = %q

[[route]]
name = "all"
outputs = ["file"]
`, srv.CertFile, srv.KeyFile, out))
	if err := testpeer.SendTCP(r.addr("tcp"), "denied", 0, 10, true); err != nil {
		t.Logf("refused TCP sender: %v", err)
	}
	if err := testpeer.SendUDP(r.addr("udp"), "denied", 0, 10); err != nil {
		t.Fatal(err)
	}
	// The refusal is a reset right after accept; it can reach the client
	// while its connect is still returning, which is a refusal too.
	if c, err := net.Dial("tcp", r.addr("tls")); err != nil {
		t.Logf("refused TLS sender: %v", err)
	} else {
		c.Close()
	}
	if err := testpeer.SendTCP(r.addr("open"), "allowed", 0, 10, true); err != nil {
		t.Fatal(err)
	}
	if !testpeer.WaitFor(30*time.Second, func() bool {
		return r.metric("relay_listener_errors_total", "listener", "udp", "reason", "denied") == 10 &&
			r.metric("relay_listener_errors_total", "listener", "tcp", "reason", "denied") == 1 &&
			r.metric("relay_listener_errors_total", "listener", "tls", "reason", "denied") == 1 &&
			len(testpeer.ReadLines(out)) == 10
	}) {
		t.Fatalf("denied: udp %v tcp %v tls %v, want 10, 1, 1; %d lines written, want 10",
			r.metric("relay_listener_errors_total", "listener", "udp", "reason", "denied"),
			r.metric("relay_listener_errors_total", "listener", "tcp", "reason", "denied"),
			r.metric("relay_listener_errors_total", "listener", "tls", "reason", "denied"),
			len(testpeer.ReadLines(out)))
	}
	if tally := testpeer.Check("allowed", 10, testpeer.ReadLines(out)); tally.Foreign != 0 || tally.Delivered() != 10 {
		t.Errorf("file: %v", tally)
	}
	// The log names the refused sender on each kind of listener, and
	// does not repeat itself per datagram.
	for _, l := range []string{"udp", "tcp"} {
		if lines := logLines(logs, "listener="+l, "not in allowed_networks", "remote=127.0.0.1:"); len(lines) != 1 {
			t.Errorf("listener %s: %d lines naming the refused sender, want 1:\n%s", l, len(lines), strings.Join(lines, "\n"))
		}
	}
	// docs/metrics.md: a refused datagram is a listener error, not a
	// received message.
	if n := r.metric("relay_listener_messages_received_total", "listener", "udp"); n != 0 {
		t.Errorf("udp: %v denied datagrams counted as received, want 0", n)
	}
}

// TestRateLimit: on UDP the excess over rate_limit + rate_burst is dropped
// and counted; on TCP nothing is lost, the sender is slowed down.
func TestRateLimit(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.log")
	r := startRelay(t, dir, fmt.Sprintf(`data_dir = "{{DATA}}/q"
[[listener]]
name = "udp"
protocol = "udp"
address = "127.0.0.1:0"
rate_limit = 50
rate_burst = 100

[[listener]]
name = "tcp"
protocol = "tcp"
address = "127.0.0.1:0"
rate_limit = 500
rate_burst = 100

[[output]]
name = "file"
protocol = "file"
path = %q

[[route]]
name = "all"
outputs = ["file"]
`, out))
	start := time.Now()
	if err := testpeer.SendUDP(r.addr("udp"), "udp", 0, 1000); err != nil {
		t.Fatal(err)
	}
	sendTook := time.Since(start)
	if !testpeer.WaitFor(30*time.Second, func() bool {
		return r.metric("relay_listener_messages_received_total", "listener", "udp")+
			r.metric("relay_listener_errors_total", "listener", "udp", "reason", "rate_limited") == 1000
	}) {
		t.Fatalf("udp: received %v + rate_limited %v, want 1000 in all",
			r.metric("relay_listener_messages_received_total", "listener", "udp"),
			r.metric("relay_listener_errors_total", "listener", "udp", "reason", "rate_limited"))
	}
	// At most the burst plus what the rate refilled while the relay read
	// them, which ended before now (on a busy machine well after the
	// sender finished).
	readTook := time.Since(start)
	maxAllowed := 100 + int(readTook.Seconds()*50) + 1
	got := int(r.metric("relay_listener_messages_received_total", "listener", "udp"))
	if got < 100 || got > maxAllowed {
		t.Errorf("udp: %d of 1000 datagrams taken (sent in %v, read within %v), want 100 to %d", got, sendTook, readTook, maxAllowed)
	}

	// TCP: 600 messages at 500/s with a burst of 100 take about a second,
	// and every one arrives.
	start = time.Now()
	if err := testpeer.SendTCP(r.addr("tcp"), "tcp", 0, 600, true); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if took < 800*time.Millisecond {
		t.Errorf("tcp: 600 messages at 500/s (burst 100) read in %v, want about 1s", took)
	}
	if !testpeer.WaitFor(30*time.Second, func() bool { return testpeer.Check("tcp", 600, testpeer.ReadLines(out)).Delivered() == 600 }) {
		t.Fatalf("tcp: %v", testpeer.Check("tcp", 600, testpeer.ReadLines(out)))
	}
	if n := r.metric("relay_listener_errors_total", "listener", "tcp", "reason", "rate_limited"); n == 0 {
		t.Error("tcp: no rate_limited pause counted")
	}
	t.Logf("udp: %d of 1000 taken; tcp: 600 messages in %v, %v pauses", got, took.Round(time.Millisecond),
		r.metric("relay_listener_errors_total", "listener", "tcp", "reason", "rate_limited"))
}

// TestRELPAccessControl: a RELP listener refuses senders outside
// allowed_networks like a TCP one (a reset, counted as denied), and over
// rate_limit it stops reading until the sender is within its rate again:
// the sender waits for its acknowledgements, and nothing is lost.
func TestRELPAccessControl(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out := filepath.Join(dir, "out.log")
	r := startRelay(t, dir, `data_dir = "{{DATA}}/q"
[[listener]]
name = "closed"
protocol = "relp"
address = "127.0.0.1:0"
allowed_networks = ["192.0.2.0/24"]

[[listener]]
name = "limited"
protocol = "relp"
address = "127.0.0.1:0"
allowed_networks = ["127.0.0.0/8"]
rate_limit = 500
rate_burst = 100
`+fileOutputTOML(out))
	if n, err := testpeer.SendRELP(r.addr("closed"), "denied", 0, 10, 8); err == nil {
		t.Errorf("refused RELP sender: %d acknowledged, want an error", n)
	}
	if !testpeer.WaitFor(30*time.Second, func() bool {
		return r.metric("relay_listener_errors_total", "listener", "closed", "reason", "denied") == 1
	}) {
		t.Errorf("denied = %v, want 1", r.metric("relay_listener_errors_total", "listener", "closed", "reason", "denied"))
	}

	// 600 messages at 500/s with a burst of 100: about a second, each
	// acknowledged and delivered.
	start := time.Now()
	acked, err := testpeer.SendRELP(r.addr("limited"), "limited", 0, 600, 32)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("after %d acknowledgements: %v", acked, err)
	}
	if took < 800*time.Millisecond {
		t.Errorf("600 messages at 500/s (burst 100) acknowledged in %v, want about 1s", took)
	}
	if !testpeer.WaitFor(30*time.Second, func() bool { return testpeer.Check("limited", 600, testpeer.ReadLines(out)).Delivered() == 600 }) {
		t.Fatalf("file: %v", testpeer.Check("limited", 600, testpeer.ReadLines(out)))
	}
	if tally := testpeer.Check("limited", 600, testpeer.ReadLines(out)); tally.Foreign != 0 || tally.Duplicates != 0 {
		t.Errorf("file: %v", tally)
	}
	if n := r.metric("relay_listener_errors_total", "listener", "limited", "reason", "rate_limited"); n == 0 {
		t.Error("no rate_limited pause counted")
	}
	t.Logf("600 RELP messages in %v, %v pauses", took.Round(time.Millisecond),
		r.metric("relay_listener_errors_total", "listener", "limited", "reason", "rate_limited"))
}
