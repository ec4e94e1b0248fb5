package relay

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/relay-syslog/relay/internal/kafkatest"
	"github.com/relay-syslog/relay/internal/syslog"
	"github.com/relay-syslog/relay/internal/testpeer"
)

// The tests in this file keep docs/ in step with the code: every config key
// and every metric has a section in the reference pages and every section
// names something that exists, and every recipe's config file loads and
// runs.

const docsDir = "../docs"

// docHeadingRE matches the heading of a reference section: a config key or
// a metric name in backquotes, alone on a heading line.
var docHeadingRE = regexp.MustCompile("(?m)^#{2,4} `([a-z0-9_.]+)`[ \t]*$")

var docsAnyHeadingRE = regexp.MustCompile(`(?m)^#{1,6} `)

// docSections returns the reference sections of the markdown file at path,
// keyed by the name in their heading, each with its text up to the next
// heading.
func docSections(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	sections := map[string]string{}
	for _, m := range docHeadingRE.FindAllStringSubmatchIndex(text, -1) {
		name := text[m[2]:m[3]]
		if _, dup := sections[name]; dup {
			t.Errorf("%s: %q has two sections", path, name)
		}
		body := text[m[1]:]
		if loc := docsAnyHeadingRE.FindStringIndex(body); loc != nil {
			body = body[:loc[0]]
		}
		sections[name] = body
	}
	if len(sections) == 0 {
		t.Fatalf("%s: no sections headed by a `name` found", path)
	}
	return sections
}

var docExampleRE = regexp.MustCompile("(?m)^Example: `([^`]+)`[ \t]*$")

// TestDocsConfigurationReference checks docs/configuration.md against the
// config structs: a section for every key, no section for a key that does
// not exist, and in each an example that decodes into that key.
func TestDocsConfigurationReference(t *testing.T) {
	t.Parallel()
	path := filepath.Join(docsDir, "configuration.md")
	sections := docSections(t, path)
	keys := map[string]bool{}
	for _, key := range tomlKeys(reflect.TypeOf(Config{}), "") {
		keys[key] = true
		body, ok := sections[key]
		if !ok {
			t.Errorf("%s does not document key %q: add a section headed ### `%s`", path, key, key)
			continue
		}
		m := docExampleRE.FindStringSubmatch(body)
		if m == nil {
			t.Errorf("%s: key %q has no line \"Example: `...`\"", path, key)
			continue
		}
		if err := docsDecodeExample(key, m[1]); err != nil {
			t.Errorf("%s: example of %q: %v", path, key, err)
		}
	}
	for key := range sections {
		if !keys[key] {
			t.Errorf("%s documents key %q, which the config structs do not have", path, key)
		}
	}
}

// docsDecodeExample decodes example ("max_message_size = \"16KiB\"") in the
// table key belongs to and checks that it sets key and nothing else, with
// a value of the right type.
func docsDecodeExample(key, example string) error {
	table, local := "", key
	if head, rest, ok := strings.Cut(key, "."); ok {
		switch head {
		case "metrics":
			table, local = "[metrics]\n", rest
		case "listener", "output", "route":
			table, local = "[["+head+"]]\n", rest
		}
	}
	if name, _, _ := strings.Cut(example, "="); strings.TrimSpace(name) != local {
		return fmt.Errorf("%q does not set %s", example, local)
	}
	var cfg Config
	md, err := toml.Decode(table+example+"\n", &cfg)
	if err != nil {
		return fmt.Errorf("%q: %w", example, err)
	}
	if u := md.Undecoded(); len(u) > 0 {
		return fmt.Errorf("%q: unknown key %v", example, u)
	}
	return nil
}

// TestDocsMetricsReference runs a relay that touches most labelled vectors
// and checks docs/metrics.md against what it exports and against the metric
// names defined in the Go sources: a section for every relay_* metric, and
// no section for a metric that does not exist. The label values the code
// counts (listener error reasons, drop reasons, parse problems) must be
// named in their metric's section.
func TestDocsMetricsReference(t *testing.T) {
	t.Parallel()
	path := filepath.Join(docsDir, "metrics.md")
	sections := docSections(t, path)

	defined := docsMetricNames(t)
	exported := docsGatherMetrics(t)
	known := map[string]bool{}
	for _, names := range [][]string{defined, exported} {
		for _, name := range names {
			known[name] = true
		}
	}
	for _, name := range exported {
		if _, ok := sections[name]; !ok {
			t.Errorf("%s does not document %s, which the relay exports: add a section headed ### `%s`", path, name, name)
		}
	}
	for _, name := range defined {
		if _, ok := sections[name]; !ok && !slices.Contains(exported, name) {
			t.Errorf("%s does not document %s, which the Go sources define: add a section headed ### `%s`", path, name, name)
		}
	}
	var unexported []string
	for _, name := range defined {
		if !slices.Contains(exported, name) {
			unexported = append(unexported, name)
		}
	}
	t.Logf("the test relay exported %d relay_* families; defined in the sources but not exported by it: %v", len(exported), unexported)
	for name := range sections {
		if !known[name] {
			t.Errorf("%s documents %s, which neither the relay exports nor the Go sources define", path, name)
		}
	}

	for metric, values := range docsLabelValues(t) {
		body := sections[metric]
		for _, v := range values {
			if !strings.Contains(body, "`"+v+"`") {
				t.Errorf("%s: the section of %s does not explain the label value `%s`, which the code counts", path, metric, v)
			}
		}
	}
}

// docsGatherMetrics runs a relay with dedup listeners, a converting file
// output and a pool of targets, sends a few messages (one without a PRI, one
// stamped message twice), reloads it, and returns the relay_* families it
// exports.
func docsGatherMetrics(t *testing.T) []string {
	t.Helper()
	dir := t.TempDir()
	recv := testpeer.NewReceiver(t, "127.0.0.1:0")
	out := filepath.Join(dir, "out.log")
	text := fmt.Sprintf(`data_dir = "{{DATA}}/q"
relay_id = "docs"
[metrics]
address = "127.0.0.1:0"
[[listener]]
name = "udp"
protocol = "udp"
address = "127.0.0.1:0"
dedup = true
[[listener]]
name = "tcp"
protocol = "tcp"
address = "127.0.0.1:0"
allowed_networks = ["127.0.0.0/8", "::1"]
rate_limit = 1000
[[output]]
name = "file"
protocol = "file"
path = %q
format = "rfc5424"
[[output]]
name = "pool"
protocol = "tcp"
targets = [%q]
retry_initial = "20ms"
retry_max = "200ms"
[[route]]
name = "all"
outputs = ["file", "pool"]
`, out, recv.Addr())
	r := startRelay(t, dir, text)
	stamped := `<14>1 2026-01-02T03:04:05Z edge app - - [relay@32473 origin="edge-docs" epoch="1" seq="7"] stamped`
	for _, msg := range []string{"no pri here", stamped, stamped} {
		if err := docsSendUDP(r.addr("udp"), msg); err != nil {
			t.Fatal(err)
		}
	}
	if err := testpeer.SendRaw(r.addr("tcp"), "11 <13>tcp msg"); err != nil {
		t.Fatal(err)
	}
	if !testpeer.WaitFor(10*time.Second, func() bool { return recv.Count() >= 3 && len(testpeer.ReadLines(out)) >= 3 }) {
		t.Fatalf("pool got %d of 3 messages, file %d of 3", recv.Count(), len(testpeer.ReadLines(out)))
	}
	cfg, err := ParseConfig("docs.toml", []byte(strings.ReplaceAll(text, "{{DATA}}", dir)))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Metrics.Address = r.srv.cfg.Metrics.Address
	if err := r.srv.Reload(cfg); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "relay_") {
			names = append(names, mf.GetName())
		}
	}
	if !slices.Contains(names, "relay_dedup_duplicates_total") || !slices.Contains(names, "relay_target_up") {
		t.Fatalf("the relay did not export the metrics this test means to touch; got %v", names)
	}
	return names
}

// docsMetricSourceREs find metric names where the Go sources define them.
var docsMetricSourceREs = []struct {
	re     *regexp.Regexp
	prefix string
}{
	{regexp.MustCompile(`Namespace:\s*namespace,\s*Name:\s*"([a-z0-9_]+)"`), "relay_"},
	{regexp.MustCompile(`NewDesc\(\s*namespace\s*\+\s*"_([a-z0-9_]+)"`), "relay_"},
	{regexp.MustCompile(`(?:Name:\s*|NewDesc\(\s*)"(relay_[a-z0-9_]+)"`), ""},
}

// docsMetricNames returns the relay_* metric names defined in the
// module's non-test Go files.
func docsMetricNames(t *testing.T) []string {
	t.Helper()
	set := map[string]bool{}
	docsWalkGoSources(t, "..", func(path, src string) {
		for _, s := range docsMetricSourceREs {
			for _, m := range s.re.FindAllStringSubmatch(src, -1) {
				set[s.prefix+m[1]] = true
			}
		}
	})
	if !set["relay_output_up"] || !set["relay_dedup_gaps_total"] {
		t.Fatalf("the source scan found too little (%d names): has the metrics code changed shape?", len(set))
	}
	return docsSortedKeys(set)
}

// docsLabelValues returns, per metric, the label values the code
// counts with string literals: listener error reasons, output drop reasons
// and parse problems.
func docsLabelValues(t *testing.T) map[string][]string {
	t.Helper()
	listener := map[string]bool{}
	reasonRE := regexp.MustCompile(`(?:countError|errors\.WithLabelValues)\("([a-z0-9_]+)"\)`)
	handshakeRE := regexp.MustCompile(`return "([a-z0-9_]+)", `)
	docsWalkGoSources(t, ".", func(path, src string) {
		if filepath.Dir(path) != "." {
			return // relay/ only, not its sub-packages
		}
		for _, m := range reasonRE.FindAllStringSubmatch(src, -1) {
			listener[m[1]] = true
		}
		if i := strings.Index(src, "func describeHandshakeError("); i >= 0 {
			body := src[i:]
			if j := strings.Index(body, "\n}\n"); j >= 0 {
				body = body[:j]
			}
			for _, m := range handshakeRE.FindAllStringSubmatch(body, -1) {
				listener[m[1]] = true
			}
		}
	})
	if !listener["truncated"] || !listener["denied"] {
		t.Fatalf("the source scan found too few listener reasons: %v", docsSortedKeys(listener))
	}
	dropped := docsValuesIn(t, "../queue/queue.go", regexp.MustCompile(`Reason[A-Za-z]+\s*=\s*"([a-z0-9_]+)"`))
	problems := docsValuesIn(t, "../internal/syslog/message.go", regexp.MustCompile(`Problem[A-Za-z]+:\s*"([a-z0-9_]+)"`))
	problems = slices.DeleteFunc(problems, func(s string) bool { return s == "none" })
	return map[string][]string{
		"relay_listener_errors_total":         docsSortedKeys(listener),
		"relay_output_messages_dropped_total": dropped,
		"relay_parse_problems_total":          problems,
	}
}

func docsValuesIn(t *testing.T, path string, re *regexp.Regexp) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var vs []string
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		vs = append(vs, m[1])
	}
	if len(vs) == 0 {
		t.Fatalf("%s: nothing matches %s", path, re)
	}
	return vs
}

// docsWalkGoSources calls fn with every non-test Go file under root.
func docsWalkGoSources(t *testing.T, root string, fn func(path, src string)) {
	t.Helper()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "data") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		fn(rel, string(b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func docsSortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

var recipeLinkRE = regexp.MustCompile(`recipes/([A-Za-z0-9_.-]+\.toml)`)

// TestRecipes loads every config file in docs/recipes, checks that
// docs/recipes.md links each one (and links no file that is missing), then
// runs each on loopback — addresses replaced by 127.0.0.1:0, upstreams by
// local receivers, paths by a temporary directory, certificates by a test
// CA's — sends an info and a warning message to every listener, and checks
// that every output delivers and that the recipe does what recipes.md says.
func TestRecipes(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join(docsDir, "recipes", "*.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 4 {
		t.Fatalf("only %d recipe files in %s/recipes", len(files), docsDir)
	}
	md, err := os.ReadFile(filepath.Join(docsDir, "recipes.md"))
	if err != nil {
		t.Fatal(err)
	}
	linked := map[string]bool{}
	for _, m := range recipeLinkRE.FindAllStringSubmatch(string(md), -1) {
		linked[m[1]] = true
	}
	for _, f := range files {
		if !linked[filepath.Base(f)] {
			t.Errorf("docs/recipes.md does not link recipes/%s", filepath.Base(f))
		}
		delete(linked, filepath.Base(f))
	}
	for name := range linked {
		t.Errorf("docs/recipes.md links recipes/%s, which does not exist", name)
	}

	for _, f := range files {
		name := filepath.Base(f)
		t.Run(strings.TrimSuffix(name, ".toml"), func(t *testing.T) {
			cfg, err := LoadConfig(f)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			env := newRecipeEnv(t)
			env.localize(cfg)
			r := docsStartRelay(t, cfg)
			env.sendAll(r, cfg)
			if send := recipeSends[name]; send != nil {
				send(t, r)
			}
			want := 2 * len(cfg.Listeners)
			if !testpeer.WaitFor(30*time.Second, func() bool { return r.metric("relay_messages_accepted_total") >= float64(want) }) {
				t.Fatalf("accepted %v of %d messages", r.metric("relay_messages_accepted_total"), want)
			}
			for _, o := range cfg.Outputs {
				if !testpeer.WaitFor(30*time.Second, func() bool { return r.metric("relay_output_messages_sent_total", "output", o.Name) > 0 }) {
					t.Errorf("output %q sent nothing", o.Name)
				}
			}
			if check := recipeChecks[name]; check != nil {
				check(t, env, r, cfg)
			}
		})
	}
}

// headPerHostLines are sent to head-per-host.toml, each with the file it
// must land in (under /var/log/relay/remote/HOST/).
var headPerHostLines = []struct{ msg, file string }{
	{"<189>Nov 23 10:00:01 sw1 ios: %LINEPROTO-5-UPDOWN: Line protocol on Interface Gi0/1, changed state to up", "sw1/links.log"},
	{"<187>Nov 23 10:00:02 sw2 ios: %LINK-3-UPDOWN: Interface Gi0/2, changed state to down", "sw2/links.log"},
	{"<28>Nov 23 10:00:03 srv1 kernel: e1000e: eth0 NIC Link is Down", "srv1/links.log"},
	{"<187>Nov 23 10:00:04 sw2 ios: %PM-4-ERR_DISABLE: bpduguard error detected on Gi0/3, putting Gi0/3 in err-disable state, changed state to down", "sw2/links.log"},
	{"<187>Nov 23 10:00:05 sw1 app: ERROR disk quota exceeded", "sw1/errors.log"},
	{"<190>Nov 23 10:00:06 srv1 nginx: upstream timed out: connect() failed with error 110", "srv1/errors.log"},
	{"<190>Nov 23 10:00:07 sw2 ifmon: Gi0/1 rx 0 errors, tx 0 errors", "sw2/messages.log"},
	{"<190>Nov 23 10:00:08 sw1 sshd[42]: session opened for user admin", "sw1/messages.log"},
}

// recipeSends send, after sendAll's messages, what a recipe needs for
// every output to have something to deliver.
var recipeSends = map[string]func(t *testing.T, r *testRelay){
	"head-per-host.toml": func(t *testing.T, r *testRelay) {
		var stream strings.Builder
		for _, l := range headPerHostLines {
			fmt.Fprintf(&stream, "%d %s", len(l.msg), l.msg)
		}
		if err := testpeer.SendRaw(r.addr("edges-tcp"), stream.String()); err != nil {
			t.Fatal(err)
		}
	},
}

// recipeChecks hold what recipes.md promises about a recipe beyond "it
// runs and every output delivers".
var recipeChecks = map[string]func(t *testing.T, env *recipeEnv, r *testRelay, cfg *Config){
	"edge-collector.toml": func(t *testing.T, env *recipeEnv, r *testRelay, cfg *Config) {
		n := len(cfg.Listeners)
		head := env.tcp[recipeOrigAddr(t, "edge-collector.toml", "head")]
		local := env.files["/var/log/relay/all.log"]
		if !testpeer.WaitFor(10*time.Second, func() bool { return head.Count() >= n && len(testpeer.ReadLines(local)) >= 2*n }) {
			t.Fatalf("head got %d of %d warnings, file %d of %d messages", head.Count(), n, len(testpeer.ReadLines(local)), 2*n)
		}
		for _, m := range head.Messages() {
			if !strings.Contains(m, "warning-") || !strings.Contains(m, `[origin ip="127.0.0.1"]`) {
				t.Errorf("head got %q; want only warnings, converted to RFC 5424 with the sender's origin", m)
			}
		}
	},
	"dual-udp-edge.toml": func(t *testing.T, env *recipeEnv, r *testRelay, cfg *Config) {
		n := 2 * len(cfg.Listeners)
		for _, o := range cfg.Outputs {
			u := env.udp[recipeOrigAddr(t, "dual-udp-edge.toml", o.Name)]
			if !testpeer.WaitFor(10*time.Second, func() bool { return len(u.Messages()) >= n }) {
				t.Fatalf("%s got %d of %d messages", o.Name, len(u.Messages()), n)
			}
			for _, m := range u.Messages() {
				if !strings.Contains(m, `[relay@32473 origin="`) {
					t.Errorf("%s got %q without a sequence stamp", o.Name, m)
				}
			}
		}
	},
	"dual-path-head.toml": func(t *testing.T, env *recipeEnv, r *testRelay, cfg *Config) {
		// The same stamped message over both paths: one copy is kept.
		stamped := `<12>1 2026-01-02T03:04:05Z edge app - - [relay@32473 origin="edge-test" epoch="1" seq="42"] both-paths`
		for _, l := range cfg.Listeners {
			if err := docsSendUDP(r.addr(l.Name), stamped); err != nil {
				t.Fatal(err)
			}
		}
		if !testpeer.WaitFor(10*time.Second, func() bool { return r.metric("relay_dedup_duplicates_total", "origin", "edge-test") >= 1 }) {
			t.Fatalf("relay_dedup_duplicates_total = %v, want 1", r.metric("relay_dedup_duplicates_total", "origin", "edge-test"))
		}
		archive := env.files["/var/log/relay/edges.log"]
		testpeer.WaitFor(5*time.Second, func() bool { return strings.Contains(strings.Join(testpeer.ReadLines(archive), "\n"), "both-paths") })
		if got := strings.Count(strings.Join(testpeer.ReadLines(archive), "\n"), "both-paths"); got != 1 {
			t.Errorf("archive has %d copies of the stamped message, want 1", got)
		}
	},
	"head-per-host.toml": func(t *testing.T, env *recipeEnv, r *testRelay, cfg *Config) {
		// Every file the lines name holds exactly those lines, in order;
		// sendAll's messages (host "device") are in device/messages.log.
		// The traditional file format writes these RFC 3164 lines as they
		// came, without the PRI.
		root := strings.TrimSuffix(env.files["/var/log/relay/remote/{hostname}/links.log"], "{hostname}/links.log")
		withoutPRI := func(msg string) string { return msg[strings.IndexByte(msg, '>')+1:] }
		want := map[string][]string{}
		for _, l := range headPerHostLines {
			want[l.file] = append(want[l.file], withoutPRI(l.msg))
		}
		for _, l := range cfg.Listeners {
			want["device/messages.log"] = append(want["device/messages.log"], "Nov 23 10:00:00 device docs: info-"+l.Name, "Nov 23 10:00:00 device docs: warning-"+l.Name)
		}
		filesNow := func() map[string][]string {
			got := map[string][]string{}
			filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					rel, _ := filepath.Rel(root, p)
					got[rel] = testpeer.ReadLines(p)
				}
				return nil
			})
			return got
		}
		var got map[string][]string
		testpeer.WaitFor(10*time.Second, func() bool {
			got = filesNow()
			n := 0
			for _, ls := range got {
				n += len(ls)
			}
			return n >= len(headPerHostLines)+2*len(cfg.Listeners)
		})
		if len(got) != len(want) {
			t.Errorf("files %v, want %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
		}
		for f, w := range want {
			g := got[f]
			if f == "device/messages.log" {
				// Two listeners, two connections: their order is not set.
				g, w = slices.Sorted(slices.Values(g)), slices.Sorted(slices.Values(w))
			}
			if !slices.Equal(g, w) {
				t.Errorf("%s holds\n%s\nwant\n%s", f, strings.Join(g, "\n"), strings.Join(w, "\n"))
			}
		}
	},
	"head.toml": func(t *testing.T, env *recipeEnv, r *testRelay, cfg *Config) {
		siem := env.tcp[recipeOrigAddr(t, "head.toml", "siem")]
		n := 2 * len(cfg.Listeners)
		if !testpeer.WaitFor(10*time.Second, func() bool { return siem.Count() >= n }) {
			t.Fatalf("siem got %d of %d messages", siem.Count(), n)
		}
		for _, m := range siem.Messages() {
			if !strings.HasPrefix(m, "<") || !strings.Contains(m, ">1 ") {
				t.Errorf("siem got %q, want RFC 5424", m)
			}
		}
	},
	"tls-edge.toml": func(t *testing.T, env *recipeEnv, r *testRelay, cfg *Config) {
		head := env.tls[recipeOrigAddr(t, "tls-edge.toml", "head")]
		n := 2 * len(cfg.Listeners)
		if !testpeer.WaitFor(10*time.Second, func() bool { return len(head.messages()) >= n }) {
			t.Fatalf("the head got %d of %d messages over TLS", len(head.messages()), n)
		}
	},
	"head-pool.toml": func(t *testing.T, env *recipeEnv, r *testRelay, cfg *Config) {
		targets := cfg.Outputs[0].Targets
		orig := recipeOrigTargets(t, "head-pool.toml")
		n := 2 * len(cfg.Listeners)
		first := env.tcp[orig[0]]
		if !testpeer.WaitFor(10*time.Second, func() bool { return first.Count() >= n }) {
			t.Fatalf("the first head got %d of %d messages", first.Count(), n)
		}
		for i, a := range orig[1:] {
			if c := env.tcp[a].Count(); c != 0 {
				t.Errorf("head %s (%s) got %d messages while the first was up", a, targets[i+1], c)
			}
		}
	},
	"kafka-edge.toml": func(t *testing.T, env *recipeEnv, r *testRelay, cfg *Config) {
		// What kcat, a client written by others, reads: the device's
		// hostname as the key and the edge's stamp in the headers.
		n := 2 * len(cfg.Listeners)
		var recs []kafkatest.Record
		testpeer.WaitFor(30*time.Second, func() bool { recs = env.kafka.Consume(t, cfg.Outputs[0].Topic); return len(recs) >= n })
		if len(recs) != n {
			t.Fatalf("kcat read %d records, want %d", len(recs), n)
		}
		for _, rec := range recs {
			if rec.Key != "device" || rec.Headers["relay.origin"] != "edge-bldg5" || rec.Headers["relay.seq"] == "" ||
				!strings.Contains(rec.Value, `[relay@32473 origin="edge-bldg5"`) {
				t.Errorf("record %+v: want key device, stamp headers and the stamp in the message", rec)
			}
		}
	},
	"kafka-head.toml": recipeKafkaPipeline,
}

// recipeKafkaPipeline runs what the Kafka recipe describes on one kfake
// cluster: an edge (kafka-edge.toml) and two heads (kafka-head.toml) in
// one group; what devices send to the edge arrives in the heads' files,
// each message once, and each head writes its share.
func recipeKafkaPipeline(t *testing.T, env *recipeEnv, first *testRelay, cfg *Config) {
	start := func(recipe string) (*testRelay, *Config, *recipeEnv) {
		c, err := LoadConfig(filepath.Join(docsDir, "recipes", recipe))
		if err != nil {
			t.Fatal(err)
		}
		e := newRecipeEnv(t)
		e.kafka = env.kafka
		e.localize(c)
		return docsStartRelay(t, c), c, e
	}
	second, _, env2 := start("kafka-head.toml")
	edge, edgeCfg, _ := start("kafka-edge.toml")
	group := cfg.Listeners[0].Group
	env.kafka.WaitGroup(t, group, "shared by two heads", func(g *kfake.GroupInfo) bool {
		return len(g.Members) == 2 && g.NumAssigned() == 6 && g.Members[0].NumAssigned() > 0 && g.Members[1].NumAssigned() > 0
	})

	// Sixty devices, so that every partition, and so each head, has some.
	const n = 60
	var frames strings.Builder
	for i := range n {
		msg := fmt.Sprintf("<14>Nov 23 10:00:00 device-%02d app: via-kafka-%02d", i, i)
		fmt.Fprintf(&frames, "%d %s", len(msg), msg)
	}
	var tcp string
	for _, l := range edgeCfg.Listeners {
		if l.Protocol == ProtocolTCP {
			tcp = edge.addr(l.Name)
		}
	}
	if err := testpeer.SendRaw(tcp, frames.String()); err != nil {
		t.Fatal(err)
	}
	path := "/var/log/relay/kafka.log"
	files := []string{env.files[path], env2.files[path]}
	count := func() (per [2]int, each map[string]int) {
		each = map[string]int{}
		for i, f := range files {
			for _, line := range testpeer.ReadLines(f) {
				if _, m, ok := strings.Cut(line, "via-kafka-"); ok {
					each[m]++
					per[i]++
				}
			}
		}
		return per, each
	}
	if !testpeer.WaitFor(60*time.Second, func() bool { _, each := count(); return len(each) == n }) {
		per, each := count()
		t.Fatalf("the heads' files hold %d of %d messages sent to the edge (per head %v)", len(each), n, per)
	}
	per, each := count()
	for m, c := range each {
		if c != 1 {
			t.Errorf("message via-kafka-%s is in the heads' files %d times", m, c)
		}
	}
	if per[0] == 0 || per[1] == 0 {
		t.Errorf("messages per head %v: want each head to write its partitions' share", per)
	}
	t.Logf("%d messages through the edge, Kafka and two heads: %v per head", n, per)
	for _, h := range []*testRelay{first, second} {
		if !testpeer.WaitFor(30*time.Second, func() bool { return h.metric("relay_kafka_records_read_total") > 0 }) {
			t.Errorf("a head counts no records read")
		}
	}
}

// recipeOrigAddr returns the address output name has in the recipe file.
func recipeOrigAddr(t *testing.T, recipe, output string) string {
	t.Helper()
	cfg, err := LoadConfig(filepath.Join(docsDir, "recipes", recipe))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range cfg.Outputs {
		if o.Name == output {
			return string(o.Protocol) + "://" + o.Address
		}
	}
	t.Fatalf("%s has no output %q", recipe, output)
	return ""
}

// recipeOrigTargets returns the targets of the recipe's first output.
func recipeOrigTargets(t *testing.T, recipe string) []string {
	t.Helper()
	cfg, err := LoadConfig(filepath.Join(docsDir, "recipes", recipe))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range cfg.Outputs[0].Targets {
		out = append(out, string(cfg.Outputs[0].Protocol)+"://"+a)
	}
	return out
}

// recipeEnv stands in for a recipe's surroundings: receivers for its
// upstreams, a directory for its files, a CA for its certificates.
type recipeEnv struct {
	t      *testing.T
	dir    string
	ca     *testpeer.TestCA
	server testpeer.Cert
	client testpeer.Cert
	tcp    map[string]*testpeer.Receiver    // by "proto://original address"
	udp    map[string]*testpeer.UDPReceiver // by "proto://original address"
	tls    map[string]*docsTLSSink          // by "proto://original address"
	files  map[string]string                // original path → test path
	kafka  *kafkatest.Cluster               // started by the first kafka listener or output
}

func newRecipeEnv(t *testing.T) *recipeEnv {
	ca := testpeer.NewTestCA(t, "recipes")
	return &recipeEnv{
		t: t, dir: t.TempDir(), ca: ca,
		server: ca.Server("server", "localhost"),
		client: ca.Client("client", "docs-client"),
		tcp:    map[string]*testpeer.Receiver{},
		udp:    map[string]*testpeer.UDPReceiver{},
		tls:    map[string]*docsTLSSink{},
		files:  map[string]string{},
	}
}

// localize rewrites cfg to run on loopback in the test's directories.
func (e *recipeEnv) localize(cfg *Config) {
	cfg.DataDir = filepath.Join(e.dir, "data")
	if cfg.Metrics.Address != "" {
		cfg.Metrics.Address = "127.0.0.1:0"
	}
	for i := range cfg.Listeners {
		l := &cfg.Listeners[i]
		if l.Protocol == ProtocolKafka {
			l.Brokers = e.cluster(l.Topics...).Addrs
			continue
		}
		if l.Protocol == "unix" {
			l.Address = filepath.Join(e.dir, l.Name+".sock")
		} else {
			l.Address = "127.0.0.1:0"
		}
		if len(l.AllowedNetworks) > 0 {
			l.AllowedNetworks = []string{"127.0.0.0/8", "::1"}
		}
		if l.TLS.CertFile != "" {
			l.TLS.CertFile, l.TLS.KeyFile = e.server.CertFile, e.server.KeyFile
		}
		if l.TLS.ClientCAFile != "" {
			l.TLS.ClientCAFile = e.ca.CAFile
		}
		if len(l.TLS.AllowedNames) > 0 {
			l.TLS.AllowedNames = []string{"docs-client"}
		}
	}
	for i := range cfg.Outputs {
		o := &cfg.Outputs[i]
		o.RetryInitial.Duration, o.RetryMax.Duration = 20*time.Millisecond, 200*time.Millisecond
		if o.Protocol == "file" {
			p := filepath.Join(e.dir, "files", filepath.Base(o.Path))
			if strings.Contains(o.Path, "{") {
				// A path template keeps its directories: they hold fields.
				p = filepath.Join(e.dir, "files", o.Path)
			}
			e.files[o.Path] = p
			o.Path = p
			continue
		}
		if o.Protocol == "kafka" {
			o.Brokers = e.cluster(o.Topic).Addrs
		}
		if o.Address != "" {
			o.Address = e.upstream(string(o.Protocol), o.Address)
		}
		for j, a := range o.Targets {
			o.Targets[j] = e.upstream(string(o.Protocol), a)
		}
		if o.TLS.CAFile != "" {
			o.TLS.CAFile = e.ca.CAFile
		}
		if o.TLS.CertFile != "" {
			o.TLS.CertFile, o.TLS.KeyFile = e.client.CertFile, e.client.KeyFile
		}
		if o.TLS.ServerName != "" {
			o.TLS.ServerName = "localhost"
		}
	}
}

// cluster returns the environment's Kafka cluster, a kfake cluster of 3
// brokers on loopback, starting it the first time with topics of 6
// partitions.
func (e *recipeEnv) cluster(topics ...string) *kafkatest.Cluster {
	if e.kafka == nil {
		e.kafka = kafkatest.Start(e.t, 3, topics[0], 6, kfake.SeedTopics(6, topics[1:]...))
	}
	return e.kafka
}

// upstream starts (once per original address) a local receiver that stands
// in for the upstream at addr and returns its address.
func (e *recipeEnv) upstream(protocol, addr string) string {
	key := protocol + "://" + addr
	switch protocol {
	case "tcp":
		if e.tcp[key] == nil {
			e.tcp[key] = testpeer.NewReceiver(e.t, "127.0.0.1:0")
		}
		return e.tcp[key].Addr()
	case "udp":
		if e.udp[key] == nil {
			e.udp[key] = testpeer.NewUDPReceiver(e.t, "127.0.0.1:0")
		}
		return e.udp[key].Addr()
	case "tls":
		if e.tls[key] == nil {
			e.tls[key] = newDocsTLSSink(e.t, e.server, e.ca)
		}
		return e.tls[key].addr()
	}
	e.t.Fatalf("no test upstream for protocol %q: extend recipeEnv.upstream", protocol)
	return ""
}

// sendAll sends an info and a warning message to every listener of cfg.
func (e *recipeEnv) sendAll(r *testRelay, cfg *Config) {
	t := e.t
	for _, l := range cfg.Listeners {
		for _, sev := range []struct {
			pri  int
			name string
		}{{14, "info"}, {12, "warning"}} {
			msg := fmt.Sprintf("<%d>Nov 23 10:00:00 device docs: %s-%s", sev.pri, sev.name, l.Name)
			if l.Protocol == ProtocolKafka {
				e.kafka.ProduceKgo(t, l.Topics[0], []string{msg})
				continue
			}
			addr := r.addr(l.Name)
			var err error
			switch l.Protocol {
			case "udp":
				err = docsSendUDP(addr, msg)
			case "unix":
				err = docsSendUnix(addr, msg)
			case "tcp":
				err = testpeer.SendRaw(addr, fmt.Sprintf("%d %s", len(msg), msg))
			case "tls":
				err = docsSendTLS(addr, msg, e.client, e.ca)
			case "relp":
				err = docsSendRELP(addr, msg)
			default:
				t.Fatalf("listener %q: no test sender for protocol %q", l.Name, l.Protocol)
			}
			if err != nil {
				t.Fatalf("send to listener %q: %v", l.Name, err)
			}
		}
	}
}

// docsStartRelay runs a relay on cfg, as startRelay does on a config text.
func docsStartRelay(t *testing.T, cfg *Config) *testRelay {
	t.Helper()
	reg := prometheus.NewRegistry()
	srv, err := New(cfg, Options{Logger: testLogger(t), Registry: reg})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &testRelay{t: t, srv: srv, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- srv.Run(ctx) }()
	t.Cleanup(func() { r.stop() })
	return r
}

func docsSendUDP(addr, msg string) error {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write([]byte(msg))
	return err
}

func docsSendUnix(path, msg string) error {
	c, err := net.Dial("unixgram", path)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write([]byte(msg))
	return err
}

// docsSendTLS sends msg octet-counted over TLS with a client certificate.
func docsSendTLS(addr, msg string, client testpeer.Cert, ca *testpeer.TestCA) error {
	kp, err := tls.LoadX509KeyPair(client.CertFile, client.KeyFile)
	if err != nil {
		return err
	}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
		&tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", Certificates: []tls.Certificate{kp}})
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(c, "%d %s", len(msg), msg); err != nil {
		return err
	}
	return c.CloseWrite()
}

// docsSendRELP sends msg in one RELP session (open, syslog, close) and checks
// each answer is 200.
func docsSendRELP(addr, msg string) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	offers := "relp_version=0\nrelp_software=docs-test\ncommands=syslog"
	for i, f := range []struct{ cmd, data string }{{"open", offers}, {"syslog", msg}, {"close", ""}} {
		txnr := strconv.Itoa(i + 1)
		frame := txnr + " " + f.cmd + " " + strconv.Itoa(len(f.data))
		if f.data != "" {
			frame += " " + f.data
		}
		if _, err := io.WriteString(c, frame+"\n"); err != nil {
			return err
		}
		gotTxnr, data, err := docsReadRELPAnswer(br)
		if err != nil {
			return fmt.Errorf("relp %s: %w", f.cmd, err)
		}
		if gotTxnr != txnr || !strings.HasPrefix(data, "200") {
			return fmt.Errorf("relp %s: answer %s %q", f.cmd, gotTxnr, data)
		}
	}
	return nil
}

// docsReadRELPAnswer reads one "TXNR rsp DATALEN [SP DATA] LF" frame and
// returns its TXNR and DATA, skipping serverclose hints (TXNR 0).
func docsReadRELPAnswer(br *bufio.Reader) (txnr, data string, err error) {
	for {
		if txnr, err = br.ReadString(' '); err != nil {
			return "", "", err
		}
		cmd, err := br.ReadString(' ')
		if err != nil {
			return "", "", err
		}
		n := 0
		var b byte
		for {
			if b, err = br.ReadByte(); err != nil {
				return "", "", err
			}
			if b < '0' || b > '9' {
				break
			}
			n = 10*n + int(b-'0')
		}
		buf := make([]byte, 0, n)
		if b == ' ' {
			buf = buf[:n]
			if _, err := io.ReadFull(br, buf); err != nil {
				return "", "", err
			}
			if b, err = br.ReadByte(); err != nil {
				return "", "", err
			}
		}
		if b != '\n' {
			return "", "", fmt.Errorf("malformed frame after %q %q", txnr, cmd)
		}
		txnr, cmd = strings.TrimSpace(txnr), strings.TrimSpace(cmd)
		if txnr == "0" {
			continue // serverclose
		}
		if cmd != "rsp" {
			return "", "", fmt.Errorf("unexpected command %q", cmd)
		}
		return txnr, string(buf), nil
	}
}

// docsTLSSink is a TLS syslog receiver (RFC 5425) that records what arrives.
type docsTLSSink struct {
	ln    net.Listener
	mu    sync.Mutex
	msgs  []string
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func newDocsTLSSink(t *testing.T, server testpeer.Cert, ca *testpeer.TestCA) *docsTLSSink {
	t.Helper()
	kp, err := tls.LoadX509KeyPair(server.CertFile, server.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{kp},
		ClientCAs:    ca.Pool(),
		ClientAuth:   tls.VerifyClientCertIfGiven,
	})
	if err != nil {
		t.Fatal(err)
	}
	s := &docsTLSSink{ln: ln, conns: map[net.Conn]bool{}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[c] = true
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				fr := syslog.NewFrameReader(c, 1<<20)
				for {
					msg, _, err := fr.Next()
					if len(msg) > 0 {
						s.mu.Lock()
						s.msgs = append(s.msgs, string(msg))
						s.mu.Unlock()
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *docsTLSSink) addr() string { return s.ln.Addr().String() }

func (s *docsTLSSink) messages() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.msgs...)
}
