package relay

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relay-syslog/relay/internal/testpeer"
)

// TestRouteByNetworkEndToEnd sends from four loopback addresses over TCP
// and routes on the sender's address: one file takes two of the senders
// (one named by a prefix, one by a bare address), the other everything
// outside a /31 that holds them.
func TestRouteByNetworkEndToEnd(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`data_dir = %q
%s
[[output]]
name = "fw"
protocol = "file"
path = %q

[[output]]
name = "rest"
protocol = "file"
path = %q

[[route]]
name = "firewalls"
outputs = ["fw"]
networks = ["127.0.0.2/32", "127.0.0.3"]

[[route]]
name = "others"
outputs = ["rest"]
not_networks = ["127.0.0.2/31"]
`, filepath.Join(dir, "q"), listenersTOML(), filepath.Join(dir, "fw.log"), filepath.Join(dir, "rest.log"))
	r := startRelay(t, dir, cfg)

	const perSender = 50
	want := map[string][]string{}
	for _, from := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"} {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 10 * time.Second}
		c, err := d.Dial("tcp", r.addr("tcp"))
		if err != nil {
			t.Fatalf("dial from %s: %v", from, err)
		}
		var stream strings.Builder
		for i := range perSender {
			line := fmt.Sprintf("<134>Dec  7 10:00:00 host app: from %s #%d", from, i)
			fmt.Fprintf(&stream, "%d %s", len(line), line)
			out := "rest"
			if from == "127.0.0.2" || from == "127.0.0.3" {
				out = "fw"
			}
			want[out] = append(want[out], line)
		}
		if _, err := c.Write([]byte(stream.String())); err != nil {
			t.Fatalf("send from %s: %v", from, err)
		}
		c.Close()
	}
	if !testpeer.WaitFor(60*time.Second, func() bool {
		return len(testpeer.ReadLines(filepath.Join(dir, "fw.log")))+len(testpeer.ReadLines(filepath.Join(dir, "rest.log"))) >= 4*perSender
	}) {
		t.Errorf("the files did not reach %d lines in 60 s", 4*perSender)
	}
	r.stop()
	for _, out := range []string{"fw", "rest"} {
		got := testpeer.ReadLines(filepath.Join(dir, out+".log"))
		slices.Sort(got)
		w := slices.Clone(want[out])
		slices.Sort(w)
		if !slices.Equal(got, w) {
			missing, extra := diffLines(w, got)
			t.Errorf("%s.log: %d lines, want %d; %d missing (first %q), %d extra (first %q)",
				out, len(got), len(w), len(missing), first(missing), len(extra), first(extra))
		}
	}
}

// TestRouteNetworkMatching checks the sender conditions on the sources
// listeners record: IPv4 and IPv6 with ports, IPv4 senders on a dual-stack
// socket, a zoned link-local address, and sources that are no address.
func TestRouteNetworkMatching(t *testing.T) {
	t.Parallel()
	var problems []string
	problem := func(key, format string, args ...any) {
		problems = append(problems, key+": "+fmt.Sprintf(format, args...))
	}
	in := compileConditions(RouteConfig{Networks: []string{"10.1.0.0/16", "2001:db8::/32", "::ffff:192.0.2.0/120", "fe80::1"}}, nil, problem)
	out := compileConditions(RouteConfig{NotNetworks: []string{"10.1.0.0/16", "2001:db8::/32"}}, nil, problem)
	if len(problems) > 0 {
		t.Fatalf("valid networks refused: %v", problems)
	}
	for _, c := range []struct {
		source  string
		inNets  bool
		outNets bool
	}{
		{"10.1.2.3:514", true, false},
		{"10.2.0.1:514", false, true},
		{"[::ffff:10.1.200.1]:514", true, false}, // IPv4 on a dual-stack socket
		{"[2001:db8::7]:6514", true, false},
		{"[2001:db9::7]:6514", false, true},
		{"192.0.2.77:514", true, true},       // an IPv4 network written as IPv6
		{"[fe80::1%eth0]:514", true, true},   // the zone is not part of the sender
		{"/run/relay/log.sock", false, true}, // a unix socket: no address
		{"syslog-topic/3", false, true},      // Kafka: no address
		{"", false, true},
	} {
		s := sender{source: c.source}
		if got := in.matchSender(&s); got != c.inNets {
			t.Errorf("networks, source %q: match %v, want %v", c.source, got, c.inNets)
		}
		s = sender{source: c.source}
		if got := out.matchSender(&s); got != c.outNets {
			t.Errorf("not_networks, source %q: match %v, want %v", c.source, got, c.outNets)
		}
	}
}

func TestRouteNetworkConfigErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ route, want string }{
		{`networks = ["10.0.0.300/8"]`, `line 14: route[0].networks: invalid network "10.0.0.300/8"`},
		{`not_networks = ["10.0.0.0/8", "fw1.example.net"]`, `line 14: route[0].not_networks: invalid network "fw1.example.net"`},
		{`networks = "10.0.0.0/8"`, `line 14: route[0].networks: must be an array`},
		// A zone is not allowed in a prefix; read as an address with the
		// zone "eth0/64", it was taken for fe80::1 alone.
		{`networks = ["fe80::1%eth0/64"]`, `line 14: route[0].networks: invalid network "fe80::1%eth0/64"`},
	} {
		_, err := ParseConfig("t.toml", []byte(validBase+c.route+"\n"))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.route, err, c.want)
		}
	}
}

// TestRouteNetworkSetLookup checks the sorted ranges a networks list is
// compiled to against trying each prefix in turn, on overlapping, nested,
// adjacent and catch-all prefixes of both families and on the addresses at
// and next to every prefix's edges, and that ten thousand prefixes covering
// one network collapse to one range (a lookup then is a binary search).
func TestRouteNetworkSetLookup(t *testing.T) {
	t.Parallel()
	list := []string{
		"10.0.0.0/8", "10.1.0.0/16", "10.1.2.3", "10.255.255.255/32", "11.0.0.0/8",
		"192.0.2.0/25", "192.0.2.128/25", "192.0.2.64/26", "0.0.0.0/1", "172.16.0.0/12",
		"2001:db8::/32", "2001:db8:1::/48", "2001:db9::1", "fe80::/10", "ff00::/8",
		"::/1", "::ffff:198.51.100.0/120", "255.255.255.255", "::ffff:0:0/95",
	}
	var prefixes []netip.Prefix
	for _, n := range list {
		p, err := parseNetwork(n)
		if err != nil {
			t.Fatal(err)
		}
		prefixes = append(prefixes, p)
	}
	var probes []netip.Addr
	for _, p := range prefixes {
		lo, hi := p.Addr(), lastAddr(p)
		probes = append(probes, lo, hi, lo.Next(), hi.Prev())
		if prev := lo.Prev(); prev.IsValid() {
			probes = append(probes, prev)
		}
		if next := hi.Next(); next.IsValid() {
			probes = append(probes, next)
		}
	}
	probes = append(probes, netip.MustParseAddr("0.0.0.0"), netip.MustParseAddr("::"),
		netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), netip.MustParseAddr("128.0.0.0"))
	for k := 1; k <= len(prefixes); k++ {
		// Every prefix of the list, to vary what overlaps what.
		set := newNetSet(prefixes[:k])
		for _, a := range probes {
			if got, want := set.contains(a), inAny(prefixes[:k], a); got != want {
				t.Errorf("first %d networks, %v: contains %v, want %v", k, a, got, want)
			}
		}
	}

	var many []netip.Prefix
	for i := range 10000 {
		many = append(many, netip.MustParsePrefix(fmt.Sprintf("10.%d.%d.0/24", i/256, i%256)))
	}
	set := newNetSet(many)
	if len(set.ranges) != 1 {
		t.Fatalf("10,000 adjacent /24s: %d ranges, want 1", len(set.ranges))
	}
	for _, c := range []struct {
		addr string
		in   bool
	}{{"10.0.0.0", true}, {"10.39.15.255", true}, {"10.39.16.0", false}, {"9.255.255.255", false}} {
		if got := set.contains(netip.MustParseAddr(c.addr)); got != c.in {
			t.Errorf("%s: contains %v, want %v", c.addr, got, c.in)
		}
	}
}
