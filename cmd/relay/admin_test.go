package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relay-syslog/relay/internal/testpeer"
)

// TestBuildInfoAndStartupLine: the first log line and relay_build_info
// name the version, and they agree with relay -version.
func TestBuildInfoAndStartupLine(t *testing.T) {
	out, _, code := runRelay(t, "-version")
	if code != 0 {
		t.Fatalf("relay -version: exit %d", code)
	}
	var ver, rev, gover string
	if _, err := fmt.Sscanf(out, "relay %s (revision %s %s", &ver, &rev, &gover); err != nil {
		t.Fatalf("relay -version printed %q: %v", out, err)
	}
	rev, gover = strings.TrimSuffix(rev, ","), strings.TrimSuffix(gover, ")")
	if gover != runtime.Version() {
		t.Errorf("relay -version says Go %q, want %q", gover, runtime.Version())
	}

	s := newSetup(t, fmt.Sprintf(`[[output]]
name = "file"
protocol = "file"
path = %q
[[route]]
name = "all"
outputs = ["file"]
`, filepath.Join(t.TempDir(), "out.log")))
	p := s.start(t, relayBin)
	defer p.stop()
	want := fmt.Sprintf(`relay_build_info{goversion=%q,revision=%q,version=%q} 1`, gover, rev, ver)
	if body := testpeer.HTTPGet(s.metricsURL); !strings.Contains(body, want) {
		t.Errorf("/metrics lacks %s:\n%s", want, body)
	}
	first, _, _ := strings.Cut(p.logs.String(), "\n")
	for _, field := range []string{`msg="relay starting"`, "version=" + ver, "revision=" + rev, "go=" + gover} {
		if !strings.Contains(first, field) {
			t.Errorf("first log line %q lacks %s", first, field)
		}
	}
}

// docMetric is one metric section of docs/metrics.md.
type docMetric struct {
	name string
	body string
}

var docMetricHeadingRE = regexp.MustCompile("(?m)^### `(relay_[a-z0-9_]+)`[ \t]*$")

// readDocMetrics returns the metric sections of docs/metrics.md.
func readDocMetrics(t *testing.T) []docMetric {
	t.Helper()
	b, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	var out []docMetric
	locs := docMetricHeadingRE.FindAllStringSubmatchIndex(text, -1)
	for i, m := range locs {
		end := len(text)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		body := text[m[1]:end]
		if j := strings.Index(body, "\n## "); j >= 0 {
			body = body[:j]
		}
		out = append(out, docMetric{name: text[m[2]:m[3]], body: body})
	}
	if len(out) < 20 {
		t.Fatalf("docs/metrics.md: only %d metric sections found", len(out))
	}
	return out
}

// docTableReasons returns the reasons of the table in a metric section,
// each with the text of its second column.
func docTableReasons(body string) map[string]string {
	rows := map[string]string{}
	re := regexp.MustCompile("(?m)^\\| `([a-z0-9_]+)` \\| ([^|]*)\\|")
	for _, m := range re.FindAllStringSubmatch(body, -1) {
		rows[m[1]] = strings.TrimSpace(m[2])
	}
	return rows
}

// docListsProtocol reports whether the listeners column of a reason's row
// ("all", or names separated by commas) names one of names.
func docListsProtocol(column string, names []string) bool {
	if column == "all" {
		return true
	}
	for _, p := range strings.Split(column, ", ") {
		if slices.Contains(names, p) {
			return true
		}
	}
	return false
}

// scrape parses Prometheus text into series ("name{a="x",b="y"}") and
// their values.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	body := testpeer.HTTPGet(url)
	if body == "" {
		t.Fatalf("no answer from %s", url)
	}
	series := map[string]float64{}
	for _, line := range strings.Split(body, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("unparsable line %q", line)
		}
		series[line[:i]] = v
	}
	return series
}

// seriesName spells a series as the text format does: labels sorted by name.
func seriesName(name string, labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(name)
	for i, k := range keys {
		if i == 0 {
			b.WriteByte('{')
		} else {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", k, labels[k])
	}
	if len(keys) > 0 {
		b.WriteByte('}')
	}
	return b.String()
}

// TestFirstScrapeHasEveryDocumentedSeries starts the binary with every
// listener protocol and every kind of output, upstreams all up, and scrapes
// it before any message arrives: every metric docs/metrics.md documents is
// there, with every label combination the configuration makes known (each
// listener with every reason its protocol can count, each output with
// every drop reason, each converting output with every parse problem per
// listener), and every counter reads 0. Only the series labelled by what
// arrives with traffic (the dedup origin) are absent.
func TestFirstScrapeHasEveryDocumentedSeries(t *testing.T) {
	dir := t.TempDir()
	ca := testpeer.NewTestCA(t, "scrape")
	server := ca.Server("server", "localhost")
	tcpUp := testpeer.NewReceiver(t, "127.0.0.1:0")
	poolUp := testpeer.NewReceiver(t, "127.0.0.1:0")
	udpUp := testpeer.NewUDPReceiver(t, "127.0.0.1:0")
	// The metrics port is chosen free and then bound by the relay: another
	// test's process may take it in between, so a start that finds it
	// taken is tried again on another.
	var (
		metricsAddr string
		cmd         *exec.Cmd
		logs        *syncBuffer
	)
	for attempt := 0; ; attempt++ {
		metricsAddr = fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t))
		relpAddr := fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t))
		cfg := fmt.Sprintf(`data_dir = %[1]q
relay_id = "scrape"
[metrics]
address = %[2]q
[[listener]]
name = "udp"
protocol = "udp"
address = "127.0.0.1:0"
dedup = true
[[listener]]
name = "unix"
protocol = "unix"
address = %[3]q
[[listener]]
name = "tcp"
protocol = "tcp"
address = "127.0.0.1:0"
[[listener]]
name = "tls"
protocol = "tls"
address = "127.0.0.1:0"
tls.cert_file = %[4]q
tls.key_file = %[5]q
tls.client_ca_file = %[6]q
[[listener]]
name = "relp"
protocol = "relp"
address = %[7]q
[[listener]]
name = "relps"
protocol = "relp"
address = "127.0.0.1:0"
tls.cert_file = %[4]q
tls.key_file = %[5]q
[[output]]
name = "tcp"
protocol = "tcp"
address = %[8]q
[[output]]
name = "file"
protocol = "file"
path = %[9]q
format = "rfc5424"
[[output]]
name = "udp"
protocol = "udp"
address = %[10]q
[[output]]
name = "relp"
protocol = "relp"
address = %[7]q
[[output]]
name = "pool"
protocol = "tcp"
targets = [%[11]q]
[[route]]
name = "warnings"
severity = "warning"
outputs = ["tcp", "file", "udp", "pool"]
[[route]]
name = "loop"
listeners = ["tcp"]
severities = ["debug"]
outputs = ["relp"]
`, filepath.Join(dir, "data"), metricsAddr, filepath.Join(dir, "log.sock"),
			server.CertFile, server.KeyFile, ca.CAFile, relpAddr,
			tcpUp.Addr(), filepath.Join(dir, "out.log"), udpUp.Addr(), poolUp.Addr())
		path := filepath.Join(dir, "relay.toml")
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd = exec.Command(relayBin, "-config", path)
		logs = new(syncBuffer)
		cmd.Stderr = logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		url := "http://" + metricsAddr + "/metrics"
		if testpeer.WaitFor(20*time.Second, func() bool { return testpeer.HTTPGet(url) != "" }) {
			break
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if attempt == 2 || !strings.Contains(logs.String(), "address already in use") {
			t.Fatalf("relay did not start:\n%s", logs.String())
		}
		_ = os.RemoveAll(filepath.Join(dir, "data"))
	}
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	url := "http://" + metricsAddr + "/metrics"
	got := scrape(t, url)
	families := map[string]bool{}
	for s := range got {
		name, _, _ := strings.Cut(s, "{")
		families[name] = true
	}

	// What each listener is called in the docs' tables.
	listeners := map[string][]string{
		"udp": {"udp"}, "unix": {"unix"}, "tcp": {"tcp"}, "tls": {"tls"},
		"relp": {"relp"}, "relps": {"relp", "relp over TLS"},
	}
	var listenerReasons map[string]string
	outputs := []string{"tcp", "file", "udp", "relp", "pool"}
	want := map[string]bool{}
	for _, m := range readDocMetrics(t) {
		switch {
		case strings.Contains(m.body, "labels `origin`"):
			if families[m.name] {
				t.Errorf("%s is exported before any stamped message arrived; the docs say it appears per origin", m.name)
			}
			continue
		case strings.Contains(m.name, "kafka") && !families[m.name]:
			// This relay has no kafka listener or output; their series
			// exist per partition and per Kafka error code once seen
			// (relay/kafka_listener_test.go and outputs/kafka_test.go
			// read them).
			continue
		case !families[m.name]:
			t.Errorf("the first scrape lacks %s, which docs/metrics.md documents", m.name)
			continue
		}
		switch m.name {
		case "relay_listener_errors_total":
			reasons := docTableReasons(m.body)
			if len(reasons) < 20 {
				t.Fatalf("found only %d reasons in the table of %s", len(reasons), m.name)
			}
			listenerReasons = reasons
			for reason, protocols := range reasons {
				for listener, names := range listeners {
					if docListsProtocol(protocols, names) {
						want[seriesName(m.name, map[string]string{"listener": listener, "reason": reason})] = true
					}
				}
			}
		case "relay_output_messages_dropped_total":
			for reason, meaning := range docTableReasons(m.body) {
				for _, o := range outputs {
					// A reason only one protocol counts says so first
					// ("udp: ..."); each output here is named after its
					// protocol.
					if p, _, ok := strings.Cut(meaning, ":"); ok && !strings.Contains(p, " ") && p != o {
						continue
					}
					want[seriesName(m.name, map[string]string{"output": o, "reason": reason})] = true
				}
			}
		case "relay_parse_problems_total":
			_, text, _ := strings.Cut(m.body, "Reasons:")
			text, _, _ = strings.Cut(text, ". Use")
			n := 0
			for _, r := range regexp.MustCompile("`([a-z_]+)`").FindAllStringSubmatch(text, -1) {
				n++
				for listener := range listeners {
					want[seriesName(m.name, map[string]string{"output": "file", "listener": listener, "reason": r[1]})] = true
				}
			}
			if n < 5 {
				t.Fatalf("found only %d reasons in the section of %s", n, m.name)
			}
		}
	}
	for _, o := range outputs {
		for _, name := range []string{"relay_output_messages_sent_total", "relay_output_bytes_sent_total", "relay_output_send_errors_total",
			"relay_output_retries_total", "relay_output_messages_resent_total", "relay_output_up", "relay_queue_depth_records"} {
			want[seriesName(name, map[string]string{"output": o})] = true
		}
	}
	for listener := range listeners {
		for _, name := range []string{"relay_listener_messages_received_total", "relay_listener_bytes_received_total",
			"relay_messages_accepted_total", "relay_messages_unrouted_total"} {
			want[seriesName(name, map[string]string{"listener": listener})] = true
		}
	}
	for _, l := range []string{"tcp", "tls", "relp"} {
		want[seriesName("relay_listener_connections", map[string]string{"listener": l})] = true
	}
	want[seriesName("relay_listener_kernel_drops_total", map[string]string{"listener": "udp"})] = true
	for _, r := range []string{"warnings", "loop"} {
		want[seriesName("relay_route_messages_matched_total", map[string]string{"route": r})] = true
	}
	for _, r := range []string{"success", "failure"} {
		want[seriesName("relay_config_reloads_total", map[string]string{"result": r})] = true
	}
	for _, name := range []string{"relay_target_up", "relay_target_messages_sent_total", "relay_target_errors_total"} {
		want[seriesName(name, map[string]string{"output": "pool", "target": poolUp.Addr()})] = true
	}
	var missing []string
	for s := range want {
		if _, ok := got[s]; !ok {
			missing = append(missing, s)
		}
	}
	sort.Strings(missing)
	for _, s := range missing {
		t.Errorf("the first scrape lacks %s", s)
	}
	// And the other way round: a reason exported for a listener is one the
	// docs say its protocol counts.
	labelRE := regexp.MustCompile(`^relay_listener_errors_total\{listener="([^"]+)",reason="([^"]+)"\}$`)
	for s := range got {
		if m := labelRE.FindStringSubmatch(s); m != nil {
			protocols, documented := listenerReasons[m[2]]
			if !documented || !docListsProtocol(protocols, listeners[m[1]]) {
				t.Errorf("%s is exported, but docs/metrics.md does not list reason %s for that listener's protocol (%q)", s, m[2], protocols)
			}
		}
	}
	var nonzero []string
	for s, v := range got {
		name, _, _ := strings.Cut(s, "{")
		if strings.HasPrefix(name, "relay_") && strings.HasSuffix(name, "_total") && v != 0 {
			nonzero = append(nonzero, fmt.Sprintf("%s %v", s, v))
		}
	}
	sort.Strings(nonzero)
	for _, s := range nonzero {
		t.Errorf("counter not 0 before any traffic: %s", s)
	}
	if len(missing) == 0 {
		t.Logf("first scrape: %d relay_* series present, every counter 0", len(want))
	}
	buildInfo := false
	for s, v := range got {
		buildInfo = buildInfo || (strings.HasPrefix(s, "relay_build_info{") && v == 1)
	}
	if !buildInfo {
		t.Error("the first scrape lacks relay_build_info")
	}
}

// TestLogFormatAndLevel: -log-format json writes one JSON object per line,
// -log-level holds back what is below it (and takes "warning" too), and
// bad values are usage errors.
func TestLogFormatAndLevel(t *testing.T) {
	dead := fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t)) // nothing listens
	s := newSetup(t, fmt.Sprintf(`[[output]]
name = "dead"
protocol = "tcp"
address = %q
retry_initial = "20ms"
retry_max = "100ms"
[[route]]
name = "all"
outputs = ["dead"]
`, dead))
	run := func(args ...string) *proc {
		cmd := exec.Command(relayBin, append([]string{"-config", s.cfgPath}, args...)...)
		logs := new(syncBuffer)
		cmd.Stderr = logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		p := &proc{t: t, cmd: cmd, logs: logs, metricsURL: s.metricsURL}
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				p.kill9()
			}
		})
		if !testpeer.WaitFor(20*time.Second, func() bool { return strings.Contains(logs.String(), "stopped delivering") }) {
			p.kill9()
			t.Fatalf("relay %v: no stopped-delivering line:\n%s", args, logs.String())
		}
		return p
	}

	p := run("-log-format", "json", "-log-level", "warning")
	p.stop()
	lines := strings.Split(strings.TrimSpace(p.logs.String()), "\n")
	for _, line := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("-log-format json wrote a line that is not JSON: %q", line)
			continue
		}
		if lvl, _ := rec["level"].(string); lvl != "WARN" && lvl != "ERROR" {
			t.Errorf("-log-level warning let a %s line through: %s", lvl, line)
		}
		if rec["msg"] == nil || rec["time"] == nil {
			t.Errorf("JSON line without msg or time: %s", line)
		}
	}

	p = run("-log-level", "debug")
	if err := testpeer.SendTCP(s.tcpAddr, "debug", 0, 1, true); err != nil {
		t.Fatal(err)
	}
	if !testpeer.WaitFor(20*time.Second, func() bool { return strings.Contains(p.logs.String(), "level=DEBUG") }) {
		t.Errorf("-log-level debug: no debug line while retrying:\n%s", p.logs.String())
	}
	p.stop()

	for _, bad := range [][]string{{"-log-level", "verbose"}, {"-log-format", "xml"}} {
		_, errOut, code := runRelay(t, bad...)
		if code != 2 || !strings.Contains(errOut, bad[0]) {
			t.Errorf("relay %v: exit %d, stderr %q; want 2 and a message naming %s", bad, code, errOut, bad[0])
		}
	}
}

// TestCommandLine: -h and help print the usage, listing every command, on
// standard output with exit 0 (as Go's flag package does for -h); version
// is a command; unknown commands, stray arguments and unknown flags are
// usage errors (exit 2) that start nothing.
func TestCommandLine(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"-help"}, {"help"}} {
		out, errOut, code := runRelay(t, args...)
		if code != 0 || errOut != "" {
			t.Errorf("relay %v: exit %d, stderr %q; want 0 and nothing", args, code, errOut)
		}
		for name := range subcommands {
			if !strings.Contains(out, "relay "+name) {
				t.Errorf("relay %v does not list the command %q:\n%s", args, name, out)
			}
		}
		for _, flag := range []string{"-config", "-check-config", "-log-level", "-log-format", "-version"} {
			if !strings.Contains(out, "  "+flag) {
				t.Errorf("relay %v does not list %s:\n%s", args, flag, out)
			}
		}
	}
	version, _, code := runRelay(t, "-version")
	if out, _, c := runRelay(t, "version"); c != 0 || code != 0 || out != version {
		t.Errorf("relay version = %q (exit %d), relay -version = %q (exit %d); want the same, exit 0", out, c, version, code)
	}
	dir := t.TempDir()
	for _, args := range [][]string{
		{"version", "extra"},
		{"bogus"},
		{"-config", filepath.Join(dir, "none.toml"), "version"},
		{"-check-config", "stray"},
		{"-no-such-flag"},
		{"help", "send"},
	} {
		began := time.Now()
		out, errOut, code := runRelay(t, args...)
		if code != 2 || out != "" || !strings.Contains(errOut, "relay") {
			t.Errorf("relay %v: exit %d, stdout %q, stderr %q; want exit 2 with a message on stderr", args, code, out, errOut)
		}
		if took := time.Since(began); took > 10*time.Second {
			t.Errorf("relay %v took %v: it must not start a relay", args, took)
		}
	}
	// A stray word after the flags is refused before anything is bound: the
	// built-in configuration's data dir is never made.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, relayBin, "serve")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("relay serve ran: %s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); err == nil {
		t.Error("relay serve made ./data: it started a relay")
	}
}

// TestDataDirInUse: a second relay on a data_dir in use names the process
// that holds it, and -check-config of a file whose data_dir a relay holds
// still says ok, with a note naming that relay.
func TestDataDirInUse(t *testing.T) {
	s := newSetup(t, fmt.Sprintf(`[[output]]
name = "file"
protocol = "file"
path = %q
[[route]]
name = "all"
outputs = ["file"]
`, filepath.Join(t.TempDir(), "out.log")))
	p := s.start(t, relayBin)
	pid := fmt.Sprintf("process %d", p.cmd.Process.Pid)

	out, errOut, code := runRelay(t, "-check-config", "-config", s.cfgPath)
	if code != 0 || !strings.Contains(out, "ok") {
		t.Errorf("-check-config while a relay runs: exit %d, stdout %q; want 0 and ok", code, out)
	}
	if !strings.Contains(errOut, "in use") || !strings.Contains(errOut, pid) {
		t.Errorf("-check-config while a relay runs: stderr %q, want a note naming %s", errOut, pid)
	}

	// A second relay on the same data_dir. Its listener and metrics ports
	// are taken too, but the data_dir lock is checked first.
	_, errOut, code = runRelay(t, "-config", s.cfgPath)
	if code != 1 || !strings.Contains(errOut, "in use by another relay") || !strings.Contains(errOut, pid) {
		t.Errorf("second relay: exit %d, stderr %q; want 1 and a message naming %s", code, errOut, pid)
	}

	p.stop()
	if _, errOut, code := runRelay(t, "-check-config", "-config", s.cfgPath); code != 0 || strings.Contains(errOut, "in use") {
		t.Errorf("-check-config after the stop: exit %d, stderr %q; want 0 and no note", code, errOut)
	}
}

// unitCommands returns the command lines of the shipped unit's key (e.g.
// ExecReload) in order, with the install paths replaced as given.
func unitCommands(t *testing.T, key string, replace ...string) [][]string {
	t.Helper()
	b, err := os.ReadFile("../../dist/relay.service")
	if err != nil {
		t.Fatal(err)
	}
	r := strings.NewReplacer(replace...)
	var cmds [][]string
	for _, line := range strings.Split(string(b), "\n") {
		v, ok := strings.CutPrefix(line, key+"=")
		if !ok {
			continue
		}
		if strings.ContainsAny(v[:1], "-@+!:") {
			t.Fatalf("%s=%s: a prefix changes how systemd runs it (\"-\" ignores failure); this test does not model that", key, v)
		}
		cmds = append(cmds, strings.Fields(r.Replace(v)))
	}
	if len(cmds) == 0 {
		t.Fatalf("dist/relay.service has no %s=", key)
	}
	return cmds
}

// TestSystemdReloadCommandLine runs the relay with the unit's ExecStart and
// reloads it with its ExecReload commands as systemd does (in order, the
// first failure fails the reload): a file -check-config refuses fails the
// reload with the problems in its output and never reaches the relay; a
// valid one is applied.
func TestSystemdReloadCommandLine(t *testing.T) {
	dir := t.TempDir()
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t))
	cfgPath := filepath.Join(dir, "relay.toml")
	config := func(outputs string) string {
		return fmt.Sprintf(`data_dir = %q
[metrics]
address = %q
[[listener]]
name = "udp"
protocol = "udp"
address = "127.0.0.1:0"
[[output]]
name = "first"
protocol = "file"
path = %q
[[output]]
name = "second"
protocol = "file"
path = %q
[[route]]
name = "all"
outputs = %s
`, filepath.Join(dir, "data"), metricsAddr, filepath.Join(dir, "first.log"), filepath.Join(dir, "second.log"), outputs)
	}
	if err := os.WriteFile(cfgPath, []byte(config(`["first"]`)), 0o644); err != nil {
		t.Fatal(err)
	}
	paths := []string{"/usr/local/bin/relay", relayBin, "/etc/relay/relay.toml", cfgPath}
	start := unitCommands(t, "ExecStart", paths...)[0]
	relayCmd := exec.Command(start[0], start[1:]...)
	logs := new(syncBuffer)
	relayCmd.Stderr = logs
	if err := relayCmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = relayCmd.Process.Signal(syscall.SIGTERM); _ = relayCmd.Wait() }()
	url := "http://" + metricsAddr + "/metrics"
	if !testpeer.WaitFor(20*time.Second, func() bool { return testpeer.HTTPGet(url) != "" }) {
		t.Fatalf("relay did not start:\n%s", logs.String())
	}
	reload := func() (ok bool, output string) {
		var out strings.Builder
		cmds := unitCommands(t, "ExecReload", append(paths, "$MAINPID", strconv.Itoa(relayCmd.Process.Pid))...)
		for _, c := range cmds {
			cmd := exec.Command(c[0], c[1:]...)
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Run(); err != nil {
				return false, out.String()
			}
		}
		return true, out.String()
	}
	reloads := func(result string) float64 {
		return scrape(t, url)[`relay_config_reloads_total{result="`+result+`"}`]
	}

	if err := os.WriteFile(cfgPath, []byte(config(`["first", "nowhere"]`)), 0o644); err != nil {
		t.Fatal(err)
	}
	ok, out := reload()
	if ok {
		t.Errorf("systemctl reload would succeed with a refused file; output:\n%s", out)
	}
	if !strings.Contains(out, "nowhere") {
		t.Errorf("the failed reload does not say what is wrong:\n%s", out)
	}
	if reloads("failure") != 0 || reloads("success") != 0 {
		t.Errorf("the refused file reached the relay: reloads failure %v, success %v", reloads("failure"), reloads("success"))
	}

	if err := os.WriteFile(cfgPath, []byte(config(`["first", "second"]`)), 0o644); err != nil {
		t.Fatal(err)
	}
	if ok, out := reload(); !ok {
		t.Fatalf("systemctl reload of a valid file would fail:\n%s", out)
	}
	if !testpeer.WaitFor(20*time.Second, func() bool { return reloads("success") == 1 }) {
		t.Fatalf("the valid file was not applied:\n%s", logs.String())
	}
	if relayCmd.ProcessState != nil {
		t.Fatal("the relay exited")
	}
}

// TestSystemdUnitLogGroup: the group the unit gives the service is the one
// make install creates and the README tells administrators to join.
func TestSystemdUnitLogGroup(t *testing.T) {
	group := unitCommands(t, "Group")[0][0]
	for file, want := range map[string]string{
		"../../README.md": "usermod -aG " + group + " ",
		"../../Makefile":  "groupadd --system " + group,
	} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %q: the unit runs with Group=%s", file, want, group)
		}
	}
	if umask := unitCommands(t, "UMask")[0][0]; umask != "0027" {
		t.Errorf("UMask=%s: the log files would not be group-readable only", umask)
	}
}
