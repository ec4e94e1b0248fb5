package relay

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relay-syslog/relay/internal/testpeer"
	"github.com/relay-syslog/relay/queue"
)

// TestRouteMessageConditions checks each message condition on the MSG part
// only: words in the hostname, the tag or the structured data do not count.
func TestRouteMessageConditions(t *testing.T) {
	t.Parallel()
	const bom = "\xef\xbb\xbf"
	for _, c := range []struct {
		name  string
		route string
		in    string
		want  bool
	}{
		{"contains in 3164 content", `message_contains = ["error"]`, "<13>Nov 23 10:00:00 web1 app: disk error", true},
		{"contains any of the list", `message_contains = ["nothing", "disk"]`, "<13>Nov 23 10:00:00 web1 app: disk error", true},
		{"contains not in the hostname", `message_contains = ["error"]`, "<13>Nov 23 10:00:00 error-host app: all fine", false},
		{"contains not in the tag", `message_contains = ["error"]`, "<13>Nov 23 10:00:00 web1 error[1]: all fine", false},
		{"contains not in 5424 structured data", `message_contains = ["error"]`, `<13>1 2026-11-23T10:00:00Z web1 app - - [x@1 k="error"] fine`, false},
		{"contains in 5424 MSG after a BOM", `message_contains = ["fine"]`, `<13>1 2026-11-23T10:00:00Z web1 app - - - ` + bom + "fine", true},
		{"contains is case-sensitive", `message_contains = ["error"]`, "<13>Nov 23 10:00:00 web1 app: ERROR", false},
		{"contains in a message without a header", `message_contains = ["error"]`, "<13>error without header", true},
		{"contains in a message without a PRI", `message_contains = ["error"]`, "plain error line", true},
		{"contains with invalid UTF-8 around it", `message_contains = ["error"]`, "<13>Nov 23 10:00:00 web1 app: \xff\xfeerror\xc3", true},
		{"contains a NUL", `message_contains = ["a\u0000b"]`, "<13>Nov 23 10:00:00 web1 app: xa\x00by", true},
		{"not_contains passes", `message_not_contains = ["debug", "trace"]`, "<13>Nov 23 10:00:00 web1 app: disk error", true},
		{"not_contains refuses", `message_not_contains = ["debug", "trace"]`, "<13>Nov 23 10:00:00 web1 app: trace on", false},
		{"not_contains ignores the hostname", `message_not_contains = ["debug"]`, "<13>Nov 23 10:00:00 debug app: fine", true},
		{"regex matches", `message_regex = ['^link (up|down)$']`, "<13>Nov 23 10:00:00 sw1 kernel: link down", true},
		{"regex anchors at the MSG start", `message_regex = ['^kernel']`, "<13>Nov 23 10:00:00 sw1 kernel: link down", false},
		{"regex any of the list", `message_regex = ['^x$', 'fail(ed|ure)']`, "<13>Nov 23 10:00:00 sw1 app: auth failure", true},
		{"regex flags stay in their pattern", `message_regex = ['(?i)^X$', 'fail']`, "<13>Nov 23 10:00:00 sw1 app: FAIL", false},
		{"regex case flag", `message_regex = ['(?i)fail']`, "<13>Nov 23 10:00:00 sw1 app: FAIL", true},
		{"regex on invalid UTF-8", `message_regex = ['a.b']`, "<13>Nov 23 10:00:00 sw1 app: a\xffb", true},
		{"not_regex passes", `message_not_regex = ['^health(check)?']`, "<13>Nov 23 10:00:00 lb app: GET /", true},
		{"not_regex refuses", `message_not_regex = ['^health(check)?']`, "<13>Nov 23 10:00:00 lb app: healthcheck ok", false},
		{"all set conditions hold", "message_contains = [\"disk\"]\nmessage_not_contains = [\"ok\"]\nmessage_regex = ['\\d+%']\nmessage_not_regex = ['^tmp']", "<13>Nov 23 10:00:00 h app: disk 91% full", true},
		{"one condition fails", "message_contains = [\"disk\"]\nmessage_not_contains = [\"ok\"]\nmessage_regex = ['\\d+%']", "<13>Nov 23 10:00:00 h app: disk 91% ok", false},
		{"with a hostname glob", "hostnames = [\"db*\"]\nmessage_contains = [\"slow\"]", "<13>Nov 23 10:00:00 web1 app: slow query", false},
		{"with an app-name glob", "app_names = [\"postgres\"]\nmessage_contains = [\"slow\"]", "<13>Nov 23 10:00:00 db1 postgres[9]: slow query", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, qs := testRouter(t, "[[route]]\nname = \"r\"\noutputs = [\"a\"]\n"+c.route+"\n")
			r.dispatch(queue.Entry{Listener: "udp", Data: []byte(c.in)})
			if got := len(qs["a"].got) == 1; got != c.want {
				t.Errorf("%s on %q: routed %v, want %v", c.route, c.in, got, c.want)
			}
		})
	}
}

// TestRouteMessageHostile: a message at the size limit against patterns
// that take exponential time in a backtracking engine, and bytes that are
// not UTF-8, are matched (RE2 is linear) and never crash the router.
func TestRouteMessageHostile(t *testing.T) {
	t.Parallel()
	r, qs := testRouter(t, `
[[route]]
name = "backtrack"
message_regex = ['(a|aa)*c', '(x+x+)+y', '^(\w+\s?)*$!']
outputs = ["a"]

[[route]]
name = "contains"
message_contains = ["needle"]
outputs = ["b"]
`)
	huge := "<13>Nov 23 10:00:00 h app: " + strings.Repeat("a", 1<<20) + strings.Repeat("x", 1<<16)
	invalid := make([]byte, 0, 1<<16)
	for i := range 1 << 16 {
		invalid = append(invalid, byte(0x80+i%64))
	}
	for _, m := range [][]byte{[]byte(huge), invalid, append([]byte("<13>Nov 23 10:00:00 h app: "), invalid...), append(invalid, "needle"...)} {
		r.dispatch(queue.Entry{Listener: "udp", Data: m})
	}
	if len(qs["a"].got) != 0 {
		t.Errorf("backtracking patterns matched %d messages, want 0", len(qs["a"].got))
	}
	if len(qs["b"].got) != 1 {
		t.Errorf("contains matched %d messages, want 1 (the needle after invalid bytes)", len(qs["b"].got))
	}
}

func TestRouteMessageConfigErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ route, want string }{
		{`message_regex = ["fo(o"]`, `line 14: route[0].message_regex: invalid regular expression "fo(o"`},
		{`message_not_regex = ["ok", "x{2000}"]`, `line 14: route[0].message_not_regex: invalid regular expression "x{2000}"`},
		{`message_regex = ["(?P<n>a"]`, `line 14: route[0].message_regex: invalid regular expression`},
		{`message_regex = [""]`, `line 14: route[0].message_regex: an empty pattern matches every message`},
		{`message_contains = ["x", ""]`, `line 14: route[0].message_contains: an empty string is in every message`},
		{`message_not_contains = [""]`, `line 14: route[0].message_not_contains: an empty string is in every message`},
		{`message_contains = "error"`, `line 14: route[0].message_contains: must be an array`},
	} {
		_, err := ParseConfig("t.toml", []byte(validBase+c.route+"\n"))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.route, err, c.want)
		}
	}
}

// TestContentRoutingEndToEnd sends 10,000 messages of random words through
// a real TCP listener and routes on their text to file outputs; each file
// must hold exactly the messages the test selects on its own from the text
// it generated.
func TestContentRoutingEndToEnd(t *testing.T) {
	needLong(t)
	t.Parallel()
	dir := t.TempDir()
	routes := []struct {
		name   string
		keys   string
		expect func(msg string) bool
	}{
		{"contains", `message_contains = ["error", "timeout"]`,
			func(m string) bool { return strings.Contains(m, "error") || strings.Contains(m, "timeout") }},
		{"not-contains", `message_not_contains = ["ok", "debug"]`,
			func(m string) bool { return !strings.Contains(m, "ok") && !strings.Contains(m, "debug") }},
		{"regex", `message_regex = ['^link (up|down)\b', '(?i)disk [0-9]+ FAILED']`,
			regexpAny(`^link (up|down)\b`, `(?i)disk [0-9]+ FAILED`)},
		{"not-regex", `message_not_regex = ['gamma.*gamma']`,
			func(m string) bool { return !regexp.MustCompile(`gamma.*gamma`).MatchString(m) }},
		{"combined", "message_contains = [\"link\"]\nmessage_not_regex = ['down']",
			func(m string) bool { return strings.Contains(m, "link") && !strings.Contains(m, "down") }},
	}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "data_dir = %q\n%s", filepath.Join(dir, "q"), listenersTOML())
	for _, rt := range routes {
		// The files keep the NUL bytes the messages carry, so that each
		// line is its message as sent.
		fmt.Fprintf(&cfg, "\n[[output]]\nname = %q\nprotocol = \"file\"\npath = %q\nescape_control_characters = false\n", rt.name, filepath.Join(dir, rt.name+".log"))
	}
	for _, rt := range routes {
		fmt.Fprintf(&cfg, "\n[[route]]\nname = %q\noutputs = [%q]\n%s\n", rt.name, rt.name, rt.keys)
	}
	r := startRelay(t, dir, cfg.String())

	// Words the conditions look for appear in hostnames and tags too, so
	// a router that matched the whole message instead of MSG would fail.
	words := []string{"error", "timeout", "ok", "debug", "link", "up", "down", "disk", "12", "failed", "FAILED",
		"gamma", "alpha", "beta", "\xff\xfe", "caf\xc3\xa9", "a\x00b"}
	hosts := []string{"web1", "error-host", "link", "db-ok"}
	tags := []string{"app", "debug", "timeout[42]", "kernel"}
	rng := rand.New(rand.NewPCG(16, 2))
	const n = 10000
	var stream strings.Builder
	want := make(map[string][]string)
	for i := range n {
		var msg strings.Builder
		for w := range 1 + rng.IntN(6) {
			if w > 0 {
				msg.WriteByte(' ')
			}
			msg.WriteString(words[rng.IntN(len(words))])
		}
		fmt.Fprintf(&msg, " #%d", i)
		var line string
		host, tag := hosts[rng.IntN(len(hosts))], tags[rng.IntN(len(tags))]
		if i%3 == 0 {
			line = fmt.Sprintf("<%d>1 2026-11-23T10:00:00Z %s %s - - [x@1 w=\"error ok link\"] %s", rng.IntN(192), host, strings.TrimSuffix(tag, "[42]"), msg.String())
		} else {
			line = fmt.Sprintf("<%d>Nov 23 10:00:00 %s %s: %s", rng.IntN(192), host, tag, msg.String())
		}
		fmt.Fprintf(&stream, "%d %s", len(line), line)
		for _, rt := range routes {
			if rt.expect(msg.String()) {
				want[rt.name] = append(want[rt.name], line)
			}
		}
	}
	for _, rt := range routes {
		if len(want[rt.name]) == 0 || len(want[rt.name]) == n {
			t.Fatalf("route %s selects %d of %d messages: the test data does not exercise it", rt.name, len(want[rt.name]), n)
		}
	}
	for _, rt := range routes {
		t.Logf("route %s: %d of %d messages", rt.name, len(want[rt.name]), n)
	}
	if err := testpeer.SendRaw(r.addr("tcp"), stream.String()); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, rt := range routes {
		total += len(want[rt.name])
	}
	if !testpeer.WaitFor(60*time.Second, func() bool {
		got := 0
		for _, rt := range routes {
			got += len(testpeer.ReadLines(filepath.Join(dir, rt.name+".log")))
		}
		return got >= total
	}) {
		t.Errorf("the files did not reach %d lines in 60 s", total)
	}
	r.stop()
	for _, rt := range routes {
		if got := r.metric("relay_route_messages_matched_total", "route", rt.name); got != float64(len(want[rt.name])) {
			t.Errorf("route %s: relay_route_messages_matched_total = %v, want %d", rt.name, got, len(want[rt.name]))
		}
		got := testpeer.ReadLines(filepath.Join(dir, rt.name+".log"))
		w := want[rt.name]
		if !slices.Equal(got, w) {
			missing, extra := diffLines(w, got)
			t.Errorf("route %s: %d lines, want %d; %d missing (first %q), %d extra (first %q)",
				rt.name, len(got), len(w), len(missing), first(missing), len(extra), first(extra))
		}
	}
}

func regexpAny(patterns ...string) func(string) bool {
	var res []*regexp.Regexp
	for _, p := range patterns {
		res = append(res, regexp.MustCompile(p))
	}
	return func(s string) bool {
		for _, re := range res {
			if re.MatchString(s) {
				return true
			}
		}
		return false
	}
}

// diffLines returns the lines of want not in got and of got not in want.
func diffLines(want, got []string) (missing, extra []string) {
	in := func(list []string) map[string]int {
		m := map[string]int{}
		for _, s := range list {
			m[s]++
		}
		return m
	}
	w, g := in(want), in(got)
	for _, s := range want {
		if g[s] == 0 {
			missing = append(missing, s)
		} else {
			g[s]--
		}
	}
	for _, s := range got {
		if w[s] == 0 {
			extra = append(extra, s)
		} else {
			w[s]--
		}
	}
	return missing, extra
}

func first(list []string) string {
	if len(list) == 0 {
		return ""
	}
	return list[0]
}

// TestFoldedLiteralAgreesWithRegexp checks the byte search that stands in
// for case-insensitive literal patterns against the regexp package on
// random texts with mixed case, multi-byte and invalid UTF-8, and that
// patterns it must not take (letters folding beyond ASCII, anything but a
// literal) are left to the regexp.
func TestFoldedLiteralAgreesWithRegexp(t *testing.T) {
	t.Parallel()
	for _, p := range []string{`(?i)k`, `(?i)disk`, `(?i)S`, `(?i)pan.c`, `(?i)^panic`, `panic`, `(?i)pänic`, `(?i)a|b`, `(?i:fail)ed`} {
		if f := foldedLiteral(p); f != nil {
			t.Errorf("foldedLiteral(%q) = %q, want nil: the regexp must match it", p, f)
		}
	}
	patterns := []string{`(?i)panic`, `(?i)ERROR 12`, `(?i)x`, `(?i)a-b`, `(?i)a\.b`}
	pieces := []string{"p", "P", "a", "A", "n", "N", "i", "I", "c", "C", "e", "r", "R", "o", "O", " ", "1", "2", "x", "X", "-", "b", "B",
		".", "f", "F", "l", "d", "D", "\xff", "\xe2", "\xe2\x84\xaa", "ä", "Ä", "\x00", "panic", "PANIC", "error 12", "failed"}
	rng := rand.New(rand.NewPCG(7, 11))
	for _, p := range patterns {
		fold := foldedLiteral(p)
		if fold == nil {
			t.Errorf("foldedLiteral(%q) = nil, want the literal", p)
			continue
		}
		re := regexp.MustCompile(p)
		matches := 0
		for range 20000 {
			var b []byte
			for range rng.IntN(12) {
				b = append(b, pieces[rng.IntN(len(pieces))]...)
			}
			got, want := containsFold(b, fold), re.Match(b)
			if got != want {
				t.Fatalf("pattern %q on %q: byte search %v, regexp %v", p, b, got, want)
			}
			if want {
				matches++
			}
		}
		if matches == 0 {
			t.Errorf("pattern %q matched none of the random texts: the test does not exercise it", p)
		}
	}
}
