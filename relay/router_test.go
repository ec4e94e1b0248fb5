package relay

import (
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relay-syslog/relay/internal/testpeer"
	"github.com/relay-syslog/relay/metrics"
	"github.com/relay-syslog/relay/queue"
)

// recordingQueue stands in for an output queue in the routing table tests,
// which check the routing decision for every PRI; the integration tests
// below route through real queues.
type recordingQueue struct{ got []string }

func (q *recordingQueue) Append(e queue.Entry) error {
	q.got = append(q.got, string(e.Data))
	return nil
}
func (q *recordingQueue) AppendEncoded(enc queue.Encoded) error {
	e, err := enc.Entry()
	if err != nil {
		return err
	}
	return q.Append(e)
}
func (q *recordingQueue) Flush() error { return nil }

func testRouter(t *testing.T, routes string) (*router, map[string]*recordingQueue) {
	t.Helper()
	text := `
[[listener]]
name = "udp"
protocol = "udp"
address = "127.0.0.1:0"
[[listener]]
name = "tcp"
protocol = "tcp"
address = "127.0.0.1:0"
[[output]]
name = "a"
protocol = "file"
path = "a"
[[output]]
name = "b"
protocol = "file"
path = "b"
[[output]]
name = "c"
protocol = "file"
path = "c"
` + routes
	cfg, err := ParseConfig("routes.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	m, err := metrics.New(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	r := newRouter(cfg, nil, m, slog.New(slog.NewTextHandler(io.Discard, nil)))
	qs := map[string]*recordingQueue{}
	for i := range r.outputs {
		q := &recordingQueue{}
		qs[r.outputs[i].name] = q
		r.outputs[i].queue = q
	}
	return r, qs
}

// TestRouteSeverityAndFacilityTable routes every PRI 0..191 through each
// kind of condition and checks the decision against the rule written out.
func TestRouteSeverityAndFacilityTable(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		route string
		want  func(fac, sev int) bool
	}{
		{"no conditions", ``, func(int, int) bool { return true }},
		{"severity warning and above", `severity = "warning"`, func(_, s int) bool { return s <= 4 }},
		{"severity as number", `severity = 2`, func(_, s int) bool { return s <= 2 }},
		{"cisco spelling", `severity = "warnings"`, func(_, s int) bool { return s <= 4 }},
		{"exact severities", `severities = ["err", "info"]`, func(_, s int) bool { return s == 3 || s == 6 }},
		{"negated severities", `not_severities = ["debug", "info"]`, func(_, s int) bool { return s != 7 && s != 6 }},
		{"facilities by name and number", `facilities = ["local0", "auth", 9]`, func(f, _ int) bool { return f == 16 || f == 4 || f == 9 }},
		{"negated facilities", `not_facilities = ["mail", "solaris-cron"]`, func(f, _ int) bool { return f != 2 && f != 15 }},
		{"facility and severity", `facilities = ["local7"]
severity = "err"`, func(f, s int) bool { return f == 23 && s <= 3 }},
		{"all severity names", `severities = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"]`, func(int, int) bool { return true }},
		{"all facility names", `facilities = ["kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp", "ntp", "security", "console", "clock", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"]`,
			func(int, int) bool { return true }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, qs := testRouter(t, "[[route]]\nname = \"r\"\noutputs = [\"a\"]\n"+c.route+"\n")
			for pri := 0; pri <= 191; pri++ {
				msg := fmt.Sprintf("<%d>x", pri)
				before := len(qs["a"].got)
				routed, _ := r.dispatch(queue.Entry{Listener: "udp", Data: []byte(msg)})
				got := len(qs["a"].got) > before
				if want := c.want(pri/8, pri%8); got != want || routed != want {
					t.Errorf("PRI %d (facility %d, severity %d): routed %v, want %v", pri, pri/8, pri%8, got, want)
				}
			}
		})
	}
}

func TestRouteOrderFinalFallbackAndListeners(t *testing.T) {
	t.Parallel()
	r, qs := testRouter(t, `
[[route]]
name = "critical-to-a"
severity = "crit"
outputs = ["a"]
final = true

[[route]]
name = "tcp-to-b"
listeners = ["tcp"]
outputs = ["b", "a"]

[[route]]
name = "rest-to-c"
fallback = true
outputs = ["c"]
`)
	send := func(listener, msg string) {
		r.dispatch(queue.Entry{Listener: listener, Data: []byte(msg)})
	}
	send("tcp", "<2>crit over tcp")   // final: a only
	send("tcp", "<6>info over tcp")   // b and a, once each
	send("udp", "<6>info over udp")   // nothing matched: fallback c
	send("udp", "no pri at all")      // PRI 13 (user.notice): fallback c
	send("udp", "<0>emerg over udp")  // a
	send("udp", "<999>bad pri, kept") // PRI invalid → 13: fallback c
	want := map[string][]string{
		"a": {"<2>crit over tcp", "<6>info over tcp", "<0>emerg over udp"},
		"b": {"<6>info over tcp"},
		"c": {"<6>info over udp", "no pri at all", "<999>bad pri, kept"},
	}
	for name, w := range want {
		if got := qs[name].got; strings.Join(got, "|") != strings.Join(w, "|") {
			t.Errorf("output %s got %q, want %q", name, got, w)
		}
	}
}

func TestRouteHostnameAndAppNameGlobs(t *testing.T) {
	t.Parallel()
	r, qs := testRouter(t, `
[[route]]
name = "core-switches"
hostnames = ["core-sw-*", "EDGE-?"]
outputs = ["a"]

[[route]]
name = "auth"
app_names = ["sshd", "su", "sudo*"]
outputs = ["b"]
`)
	for _, m := range []string{
		"<13>Nov 23 10:00:00 core-sw-01 kernel: link up",                 // a
		"<13>Nov 23 10:00:00 CORE-SW-02 kernel: link down",               // a (case-insensitive)
		"<13>Nov 23 10:00:00 edge-7 sshd[1]: Accepted",                   // a and b
		"<13>Nov 23 10:00:00 web1 sudo: pam_unix(sudo:session)",          // b
		"<13>1 2026-11-23T10:00:00Z core-sw-09 sshd 42 - - 5424 message", // a and b
		"<13>Nov 23 10:00:00 web1 nginx: GET /",                          // neither
	} {
		r.dispatch(queue.Entry{Listener: "udp", Data: []byte(m)})
	}
	if got := len(qs["a"].got); got != 4 {
		t.Errorf("hostname route got %d messages, want 4: %q", got, qs["a"].got)
	}
	if got := len(qs["b"].got); got != 3 {
		t.Errorf("app-name route got %d messages, want 3: %q", got, qs["b"].got)
	}
}

func TestRouteConfigErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ route, want string }{
		{`severity = "loud"`, `route[0].severity: unknown severity "loud"`},
		{`severities = ["info", 9]`, `route[0].severities: unknown severity "9"`},
		{`facilities = ["local8"]`, `route[0].facilities: unknown facility "local8"`},
		{`not_facilities = [24]`, `route[0].not_facilities: unknown facility "24"`},
		{`listeners = ["nope"]`, `route[0].listeners: names listener "nope", which is not defined`},
		{`hostnames = ["[a-"]`, `route[0].hostnames: invalid glob "[a-"`},
	} {
		text := validBase + c.route + "\n"
		_, err := ParseConfig("t.toml", []byte(text))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.route, err, c.want)
		}
	}
}

// TestSeverityRoutingEndToEnd is the segment collector: warning and worse
// to the head server, everything to a local file, through real queues.
func TestSeverityRoutingEndToEnd(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	head := testpeer.NewReceiver(t, "127.0.0.1:0")
	file := filepath.Join(dir, "all.log")
	r := startRelay(t, dir, `data_dir = "{{DATA}}/q"`+listenersTOML()+tcpOutputTOML("head", head.Addr())+fmt.Sprintf(`
[[output]]
name = "file"
protocol = "file"
path = %q

[[route]]
name = "critical-to-head"
severity = "warning"
outputs = ["head"]

[[route]]
name = "everything-to-file"
outputs = ["file"]
`, file))
	var stream strings.Builder
	for pri := 0; pri <= 191; pri++ {
		msg := fmt.Sprintf("<%d>Nov 23 10:00:00 router1 test: pri %d", pri, pri)
		fmt.Fprintf(&stream, "%d %s", len(msg), msg)
	}
	if err := testpeer.SendRaw(r.addr("tcp"), stream.String()); err != nil {
		t.Fatal(err)
	}
	if !testpeer.WaitFor(30*time.Second, func() bool { return len(testpeer.ReadLines(file)) == 192 && head.Count() == 24*5 }) {
		t.Fatalf("file %d lines (want 192), head %d messages (want %d)", len(testpeer.ReadLines(file)), head.Count(), 24*5)
	}
	for _, m := range head.Messages() {
		var pri int
		fmt.Sscanf(m, "<%d>", &pri)
		if pri%8 > 4 {
			t.Errorf("head got severity %d: %q", pri%8, m)
		}
	}
	if got := r.metric("relay_route_messages_matched_total", "route", "critical-to-head"); got != 120 {
		t.Errorf("route matched = %v, want 120", got)
	}
}

// TestStoreDropLogCountsOnce checks the lines a queue that refuses writes
// (a full disk) produces: the number dropped is the dropped attribute, and
// err says why, without a count of its own. The queue's error carries the
// count of the one call that failed, which in a summary of many calls
// contradicted dropped ("dropped=1803 err=\"1 entries dropped: ...\"").
func TestStoreDropLogCountsOnce(t *testing.T) {
	cfg, err := ParseConfig("drops.toml", []byte(validBase))
	if err != nil {
		t.Fatal(err)
	}
	m, err := metrics.New(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	var buf strings.Builder
	r := newRouter(cfg, nil, m, slog.New(slog.NewTextHandler(&buf, nil)))
	cause := fmt.Errorf("queue %q: put record: write file.diskqueue.000005.dat: %w", "file", syscall.ENOSPC)
	out := &r.outputs[0]
	r.countDrop(out, &queue.DropError{Count: 1, Reason: queue.ReasonDiskFull, Err: cause})
	for range 3 {
		r.countDrop(out, &queue.DropError{Count: 1, Reason: queue.ReasonDiskFull, Err: cause})
	}
	r.countDrop(out, &queue.DropError{Count: 5, Reason: queue.ReasonDiskFull, Err: cause})
	r.dropLog.Stop() // logs the summary now, as a stopping relay does

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want the first drop and one summary, got %d lines:\n%s", len(lines), buf.String())
	}
	for i, want := range []string{`msg="store message" output=file dropped=1 `, `msg="store messages" output=file dropped=8 `} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d: want %q in\n%s", i+1, want, lines[i])
		}
		if strings.Contains(lines[i], "entries dropped") {
			t.Errorf("line %d: err gives a count of its own beside dropped:\n%s", i+1, lines[i])
		}
		if !strings.Contains(lines[i], "no space left on device") {
			t.Errorf("line %d: err does not say why:\n%s", i+1, lines[i])
		}
	}
}
