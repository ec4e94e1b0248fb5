package relay

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/relay-syslog/relay/internal/testpeer"
)

// headTraffic is what TestHeadFilesMatchRsyslog sends: n messages from
// hosts hosts, RFC 3164 with and without a PID and RFC 5424, non-ASCII
// text included. want maps each host to the lines rsyslog's
// RSYSLOG_TraditionalFileFormat gives its messages, computed here from the
// fields rather than by either program.
func headTraffic(n, hosts int) (msgs []string, want map[string][]string) {
	want = map[string][]string{}
	for i := range n {
		host := fmt.Sprintf("host%02d", i%hosts)
		var msg, line string
		switch i % 3 {
		case 0:
			msg = fmt.Sprintf("<134>Dec  6 12:34:%02d %s nginx[%d]: GET /ünï/%d 200", i%60, host, 100+i%7, i)
			line = fmt.Sprintf("Dec  6 12:34:%02d %s nginx[%d]: GET /ünï/%d 200", i%60, host, 100+i%7, i)
		case 1:
			msg = fmt.Sprintf("<165>1 2026-12-06T08:09:%02d.123456+01:00 %s postgres 77 - - query %d took 3ms", i%60, host, i)
			// rsyslog's %syslogtag% of an RFC 5424 message has no colon.
			line = fmt.Sprintf("Dec  6 08:09:%02d %s postgres[77] query %d took 3ms", i%60, host, i)
		case 2:
			msg = fmt.Sprintf("<13>Nov 30 01:02:03 %s kernel: eth0 link up %d", host, i)
			line = fmt.Sprintf("Nov 30 01:02:03 %s kernel: eth0 link up %d", host, i)
		}
		msgs = append(msgs, msg)
		want[host] = append(want[host], line)
	}
	return msgs, want
}

// sendLines sends msgs, LF-framed, over conns connections to addr, message
// i on connection i%conns.
func sendLines(addr string, msgs []string, conns int) error {
	var wg sync.WaitGroup
	errs := make([]error, conns)
	for c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[c] = func() error {
				conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
				if err != nil {
					return err
				}
				defer conn.Close()
				w := bufio.NewWriterSize(conn, 64<<10)
				for i := c; i < len(msgs); i += conns {
					w.WriteString(msgs[i])
					w.WriteByte('\n')
				}
				return w.Flush()
			}()
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// hostFiles reads every *.log file of dir: host name -> lines.
func hostFiles(t *testing.T, dir string) map[string][]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, f := range files {
		out[strings.TrimSuffix(filepath.Base(f), ".log")] = testpeer.ReadLines(f)
	}
	return out
}

func countLines(files map[string][]string) int {
	n := 0
	for _, lines := range files {
		n += len(lines)
	}
	return n
}

// TestHeadFilesMatchRsyslog: a head relay and rsyslog with a dynaFile
// template receive the same 100,000 messages from 50 hosts over TCP; the
// relay's per-host files hold the same lines as rsyslog's, and both hold
// exactly the lines the test computes from the messages.
func TestHeadFilesMatchRsyslog(t *testing.T) {
	needLong(t)
	const n, hosts = 100000, 50
	msgs, want := headTraffic(n, hosts)

	port := testpeer.FreePort(t)
	rsAddr := fmt.Sprintf("127.0.0.1:%d", port)
	rs := testpeer.StartRsyslog(t, fmt.Sprintf(`module(load="imtcp")
template(name="perhost" type="string" string="{{DIR}}/hosts/%%HOSTNAME%%.log")
input(type="imtcp" port="%d" address="127.0.0.1")
*.* action(type="omfile" dynaFile="perhost" template="RSYSLOG_TraditionalFileFormat" dynaFileCacheSize="100")
`, port), testpeer.TCPReady(rsAddr))
	rsDir := filepath.Join(rs.Dir, "hosts")

	relayDir := filepath.Join(t.TempDir(), "hosts")
	r := startRelay(t, t.TempDir(), `data_dir = "{{DATA}}"
[[listener]]
name = "tcp"
protocol = "tcp"
address = "127.0.0.1:0"

[[output]]
name = "hosts"
protocol = "file"
path = "`+relayDir+`/{hostname}.log"
template = "{timestamp_bsd} {hostname} {tag} {message}"

[[route]]
name = "all"
outputs = ["hosts"]
`)
	errc := make(chan error, 1)
	go func() { errc <- sendLines(rsAddr, msgs, 5) }()
	if err := sendLines(r.addr("tcp"), msgs, 5); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !testpeer.WaitFor(120*time.Second, func() bool { return countLines(hostFiles(t, relayDir)) >= n }) {
		t.Fatalf("the relay wrote %d lines, want %d", countLines(hostFiles(t, relayDir)), n)
	}
	if !testpeer.WaitFor(120*time.Second, func() bool { return countLines(hostFiles(t, rsDir)) >= n }) {
		rs.Stop() // flushes what rsyslog buffers
	}
	relayFiles, rsFiles := hostFiles(t, relayDir), hostFiles(t, rsDir)
	if len(relayFiles) != hosts || len(rsFiles) != hosts {
		t.Fatalf("%d relay files and %d rsyslog files, want %d each", len(relayFiles), len(rsFiles), hosts)
	}
	for host, lines := range want {
		got, rsGot := relayFiles[host], rsFiles[host]
		if len(got) != len(lines) || len(rsGot) != len(lines) {
			t.Errorf("%s: relay %d lines, rsyslog %d, want %d", host, len(got), len(rsGot), len(lines))
			continue
		}
		// Each connection keeps its order; across connections the order
		// of arrival is the kernel's, so the lines are compared as sets.
		slices.Sort(lines)
		slices.Sort(got)
		slices.Sort(rsGot)
		for i := range lines {
			if got[i] != rsGot[i] || got[i] != lines[i] {
				t.Errorf("%s: relay %q, rsyslog %q, want %q", host, got[i], rsGot[i], lines[i])
				break
			}
		}
	}
	if _, err := os.Stat(filepath.Join(relayDir, "host00.log")); err != nil {
		t.Fatal(err)
	}
}

// TestHeadFilesHostileHostnames: messages whose hostnames and tags try to
// climb out of the directory, or carry a NUL, 300 bytes or nothing, are
// written to files inside it, and each line arrives once.
func TestHeadFilesHostileHostnames(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "remote")
	r := startRelay(t, t.TempDir(), `data_dir = "{{DATA}}"
[[listener]]
name = "tcp"
protocol = "tcp"
address = "127.0.0.1:0"
fill_hostname = false

[[output]]
name = "hosts"
protocol = "file"
path = "`+dir+`/{hostname}/{app_name}.log"
template = "{message}"

[[route]]
name = "all"
outputs = ["hosts"]
`)
	long := strings.Repeat("h", 300)
	msgs := []string{
		"<13>Dec  6 12:00:00 ../../etc passwd: 0",
		"<13>Dec  6 12:00:00 .. ..: 1",
		"<13>Dec  6 12:00:00 a/b c/../../d: 2",
		"<13>Dec  6 12:00:00 nul\x00byte app: 3",
		"<13>Dec  6 12:00:00 " + long + " app: 4",
		"<13>1 2026-12-06T12:00:00Z - - - - - 5",
		"<13>1 2026-12-06T12:00:00Z ../.. .. - - - 6",
		"<13>1 2026-12-06T12:00:00Z " + long[:255] + " " + long[:48] + " - - - 7",
		"no header at all 8",
	}
	if err := sendLines(r.addr("tcp"), msgs, 1); err != nil {
		t.Fatal(err)
	}
	var files []string
	var lines []string
	collect := func() {
		files, lines = nil, nil
		err := filepath.WalkDir(parent, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			files = append(files, p)
			lines = append(lines, testpeer.ReadLines(p)...)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if !testpeer.WaitFor(60*time.Second, func() bool { collect(); return len(lines) >= len(msgs) }) {
		t.Fatalf("%d lines in %q, want %d", len(lines), files, len(msgs))
	}
	for _, f := range files {
		rel, err := filepath.Rel(dir, f)
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") || strings.Count(rel, "/") != 1 {
			t.Errorf("file %q is not one level below %s", f, dir)
		}
		for _, e := range strings.Split(rel, "/") {
			if len(e) > 255 || strings.ContainsRune(e, 0) {
				t.Errorf("file %q has a bad element %q", f, e)
			}
		}
	}
	if len(lines) != len(msgs) {
		t.Errorf("%d lines, want %d: %q", len(lines), len(msgs), lines)
	}
	for _, w := range []string{"0", "1", "2", "3", "4", "5", "6", "7", "8"} {
		if !slices.ContainsFunc(lines, func(l string) bool { return l == w || strings.HasSuffix(l, " "+w) }) {
			t.Errorf("no line ends in %q: %q", w, lines)
		}
	}
}

// TestFileOutputJSON: format = "json" on a file output writes one valid
// JSON object per line, UTF-8 whatever the sender wrote, with the relay's
// stamp when stamp_sequence is set.
func TestFileOutputJSON(t *testing.T) {
	out := filepath.Join(t.TempDir(), "all.json")
	r := startRelay(t, t.TempDir(), `data_dir = "{{DATA}}"
relay_id = "head1"
[[listener]]
name = "tcp"
protocol = "tcp"
address = "127.0.0.1:0"

[[output]]
name = "json"
protocol = "file"
path = "`+out+`"
format = "json"
stamp_sequence = true

[[route]]
name = "all"
outputs = ["json"]
`)
	msgs := []string{
		`<165>1 2026-12-06T08:09:10.5+01:00 db01 postgres 77 Q1 [x@1 k="v"] slow query`,
		"<13>Dec  6 12:00:00 web01 nginx[1]: bad \xff\xfe bytes \x01",
		"no pri \"quoted\"",
	}
	if err := sendLines(r.addr("tcp"), msgs, 1); err != nil {
		t.Fatal(err)
	}
	if !testpeer.WaitFor(60*time.Second, func() bool { return len(testpeer.ReadLines(out)) >= len(msgs) }) {
		t.Fatalf("%d lines, want %d", len(testpeer.ReadLines(out)), len(msgs))
	}
	lines := testpeer.ReadLines(out)
	if len(lines) != len(msgs) {
		t.Fatalf("%d lines, want %d: %q", len(lines), len(msgs), lines)
	}
	for i, l := range lines {
		var v struct {
			Hostname string `json:"hostname"`
			Message  string `json:"message"`
			Listener string `json:"listener"`
			Relay    struct {
				Origin string `json:"origin"`
				Seq    uint64 `json:"seq"`
			} `json:"relay"`
		}
		if !utf8.ValidString(l) || json.Unmarshal([]byte(l), &v) != nil {
			t.Fatalf("line %d is not valid JSON in UTF-8: %q", i, l)
		}
		if v.Listener != "tcp" || v.Relay.Origin != "head1" || v.Relay.Seq == 0 {
			t.Errorf("line %d: %+v", i, v)
		}
	}
	if !strings.Contains(lines[0], `"structured_data":{"x@1":{"k":"v"}}`) || !strings.Contains(lines[1], `"message":"bad `+"\ufffd\ufffd"+` bytes \u0001"`) {
		t.Errorf("lines:\n%s", strings.Join(lines, "\n"))
	}
}
