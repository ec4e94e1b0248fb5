package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relay-syslog/relay/internal/testpeer"
	"github.com/relay-syslog/relay/queue"
)

// runRelayIn is runRelay with standard input.
func runRelayIn(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(relayBin, args...)
	var o, e bytes.Buffer
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return o.String(), e.String(), ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), 0
}

// queueDataFiles returns the non-empty data files of the queue in dir, in
// order.
func queueDataFiles(t *testing.T, dir, name string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, de := range des {
		n := de.Name()
		if strings.HasPrefix(n, name+".diskqueue.") && strings.HasSuffix(n, ".dat") && !strings.HasSuffix(n, ".meta.dat") {
			if fi, err := de.Info(); err == nil && fi.Size() > 0 {
				files = append(files, n)
			}
		}
	}
	slices.Sort(files)
	return files
}

// recordOffsets returns the offset of every record of a data file.
func recordOffsets(t *testing.T, path string) []int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var offs []int64
	for off := 0; off+4 <= len(b); off += 4 + int(binary.BigEndian.Uint32(b[off:])) {
		offs = append(offs, int64(off))
	}
	return offs
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", from, to).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
}

// dumpedSeqs runs relay queue dump with args and returns the sequence
// numbers of the messages it printed (raw, one per line).
func dumpedSeqs(t *testing.T, run string, args ...string) []int {
	t.Helper()
	out, errOut, code := runRelay(t, append([]string{"queue", "dump"}, args...)...)
	if code != 0 {
		t.Fatalf("dump %v: exit %d: %s", args, code, errOut)
	}
	var seqs []int
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if line == "" {
			continue
		}
		_, rest, ok := strings.Cut(line, "run="+run+" seq=")
		if !ok {
			t.Fatalf("dumped line %q is not a message of run %s", line, run)
		}
		n, err := strconv.Atoi(strings.Fields(rest)[0])
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, n)
	}
	return seqs
}

// TestQueueCommands builds a backlog behind an unreachable upstream and
// looks at it with relay queue, beside the running relay and after its
// stop; damages a copy and checks that verify reports exactly the damage;
// purges; and follows relay_queue_oldest_message_age_seconds through the
// outage and the drain.
func TestQueueCommands(t *testing.T) {
	upstreamAddr := fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t))
	s := newSetup(t, fmt.Sprintf(`
[[output]]
name = "head"
protocol = "tcp"
address = %q
retry_initial = "20ms"
retry_max = "200ms"
queue.batch_messages = 100
queue.linger = "10s"
queue.max_file_size = "40KiB"
[[route]]
name = "all"
outputs = ["head"]
`, upstreamAddr))
	const n = 5000 // 50 records of 100 messages, about three per data file
	p := s.start(t, relayBin)
	if err := testpeer.SendTCP(s.tcpAddr, "q", 0, n, true); err != nil {
		t.Fatal(err)
	}
	if !testpeer.WaitFor(30*time.Second, func() bool {
		d, _ := p.metric("relay_queue_depth_records")
		return d == n/100
	}) {
		t.Fatalf("queue not filled:\n%s", p.logs.String())
	}
	pid := strconv.Itoa(p.cmd.Process.Pid)

	// Beside the running relay: read-only, said so, with its process.
	var out, errOut string
	var code int
	if !testpeer.WaitFor(30*time.Second, func() bool {
		// The files change while the tool reads them: the figures may
		// take a moment to settle on what the relay holds.
		out, errOut, code = runRelay(t, "queue", "stat", "-config", s.cfgPath)
		return code == 0 && strings.Contains(out, fmt.Sprintf("waiting:   %d messages", n))
	}) {
		t.Fatalf("stat beside the relay: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "process "+pid) || !strings.Contains(out, "snapshot") || !strings.Contains(out, "in flight: ") {
		t.Errorf("stat beside the relay does not say it reads a snapshot beside process %s:\n%s", pid, out)
	}
	// The waiting figures count the records in flight: the line must not
	// read as more messages besides them (20 sent read as 20 plus 1).
	if !strings.Contains(out, ") of those, taken by the output") {
		t.Errorf("stat does not say the records in flight are among the waiting ones:\n%s", out)
	}
	if out, errOut, code = runRelay(t, "queue", "verify", "-config", s.cfgPath); code != 0 || !strings.Contains(out, "sound") {
		t.Errorf("verify beside the relay: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = runRelay(t, "queue", "dump", "-config", s.cfgPath, "-json", "-n", "3")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 || !strings.Contains(errOut, "process "+pid) {
		t.Fatalf("dump -json -n 3 beside the relay: exit %d, %d lines\n%s%s", code, len(lines), out, errOut)
	}
	var first struct{ Output, Received, Listener, Sender, Message string }
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	recv, err := time.Parse(time.RFC3339Nano, first.Received)
	if err != nil || time.Since(recv) > 10*time.Minute || first.Output != "head" || first.Listener != "tcp" ||
		!strings.HasPrefix(first.Sender, "127.0.0.1:") || first.Message != testpeer.SeqMessage("q", 0) {
		t.Errorf("first dumped message: %+v (%v)", first, err)
	}
	if out, errOut, code = runRelay(t, "queue", "purge", "-config", s.cfgPath, "-output", "head", "-yes"); code != 1 || !strings.Contains(errOut, "process "+pid) {
		t.Errorf("purge beside the relay: exit %d, want 1 naming process %s\n%s%s", code, pid, out, errOut)
	}

	// The age of the oldest message grows during the outage.
	age0, _ := p.metric("relay_queue_oldest_message_age_seconds", `output="head"`)
	if !testpeer.WaitFor(30*time.Second, func() bool {
		a, _ := p.metric("relay_queue_oldest_message_age_seconds", `output="head"`)
		return a > 0 && a >= age0+1.5
	}) {
		t.Errorf("relay_queue_oldest_message_age_seconds did not grow from %v during the outage", age0)
	}
	p.stop()

	// At rest.
	out, errOut, code = runRelay(t, "queue", "stat", "-config", s.cfgPath)
	if code != 0 || !strings.Contains(out, "no relay runs") || !strings.Contains(out, fmt.Sprintf("waiting:   %d messages", n)) {
		t.Fatalf("stat at rest: exit %d\n%s%s", code, out, errOut)
	}
	if seqs := dumpedSeqs(t, "q", "-config", s.cfgPath); len(seqs) != n || !slices.IsSorted(seqs) || seqs[0] != 0 || seqs[n-1] != n-1 {
		t.Errorf("dump at rest: %d messages, sorted %v", len(seqs), slices.IsSorted(seqs))
	}
	if seqs := dumpedSeqs(t, "q", "-config", s.cfgPath, "-since", time.Now().Add(time.Hour).Format(time.RFC3339)); len(seqs) != 0 {
		t.Errorf("dump -since an hour ahead printed %d messages", len(seqs))
	}
	if seqs := dumpedSeqs(t, "q", "-config", s.cfgPath, "-since", "1h", "-n", "250"); len(seqs) != 250 || seqs[249] != 249 {
		t.Errorf("dump -since 1h -n 250 printed %d messages", len(seqs))
	}
	if out, errOut, code = runRelay(t, "queue", "verify", "-config", s.cfgPath); code != 0 || !strings.Contains(out, "sound") {
		t.Errorf("verify at rest: exit %d\n%s%s", code, out, errOut)
	}

	// A damaged copy: one record with a flipped byte, one file cut inside
	// its last record.
	damaged := filepath.Join(t.TempDir(), "data")
	copyDir(t, filepath.Join(s.dir, "data"), damaged)
	qdir := filepath.Join(damaged, "head")
	files := queueDataFiles(t, qdir, "head")
	if len(files) < 6 {
		t.Fatalf("only %d data files: %v", len(files), files)
	}
	flipped, cut := files[2], files[4]
	flipOffs := recordOffsets(t, filepath.Join(qdir, flipped))
	b, err := os.ReadFile(filepath.Join(qdir, flipped))
	if err != nil {
		t.Fatal(err)
	}
	rec1 := flipOffs[1]
	b[rec1+4+int64(binary.BigEndian.Uint32(b[rec1:]))-1] ^= 0x20 // the last byte of its last message
	if err := os.WriteFile(filepath.Join(qdir, flipped), b, 0o600); err != nil {
		t.Fatal(err)
	}
	cutOffs := recordOffsets(t, filepath.Join(qdir, cut))
	lastRec := cutOffs[len(cutOffs)-1]
	if err := os.Truncate(filepath.Join(qdir, cut), lastRec+4+100); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = runRelay(t, "queue", "verify", "-data-dir", damaged)
	t.Logf("verify of the damaged copy:\n%s", out)
	if code != 1 || !strings.Contains(out, "DAMAGED: 2 damaged regions, 200 messages lost") ||
		!strings.Contains(out, fmt.Sprintf("%s at offset %d: record fails its check", flipped, rec1)) ||
		!strings.Contains(out, fmt.Sprintf("%s at offset %d: file ends inside a record", cut, lastRec)) ||
		strings.Count(out, "(100 messages)") != 2 {
		t.Errorf("verify of the damaged copy: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code = runRelay(t, "queue", "stat", "-data-dir", damaged); code != 0 ||
		!strings.Contains(out, fmt.Sprintf("waiting:   %d messages", n-200)) || !strings.Contains(out, "damaged:   2 regions") {
		t.Errorf("stat of the damaged copy: exit %d\n%s%s", code, out, errOut)
	}
	if seqs := dumpedSeqs(t, "q", "-data-dir", damaged, "-output", "head"); len(seqs) != n-200 {
		t.Errorf("dump of the damaged copy: %d messages, want %d", len(seqs), n-200)
	}

	// Purge the copy: asked, refused on "n", done on "y".
	out, errOut, code = runRelayIn(t, "n\n", "queue", "purge", "-data-dir", damaged, "-output", "head")
	if code != 1 || !strings.Contains(out, "[y/N]") || !strings.Contains(errOut, "nothing purged") || len(queueDataFiles(t, qdir, "head")) != len(files) {
		t.Errorf("purge answered n: exit %d\n%s%s", code, out, errOut)
	}
	if _, errOut, code = runRelayIn(t, "", "queue", "purge", "-data-dir", damaged); code != 2 || !strings.Contains(errOut, "-output is required") {
		t.Errorf("purge without -output: exit %d: %s", code, errOut)
	}
	out, errOut, code = runRelayIn(t, "y\n", "queue", "purge", "-data-dir", damaged, "-output", "head")
	if code != 0 || !strings.Contains(out, "purged output \"head\"") || len(queueDataFiles(t, qdir, "head")) != 0 {
		t.Errorf("purge answered y: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code = runRelay(t, "queue", "stat", "-data-dir", damaged, "-output", "head"); code != 0 || !strings.Contains(out, "waiting:   0 messages") {
		t.Errorf("stat after purge: exit %d\n%s%s", code, out, errOut)
	}

	// With -yes, on the original once its relay has drained it: nothing
	// asked. First the drain: the age returns to 0.
	upstream := testpeer.NewReceiver(t, upstreamAddr)
	p = s.start(t, relayBin)
	if !testpeer.WaitFor(60*time.Second, func() bool {
		d, _ := p.metric("relay_queue_depth_records")
		a, ok := p.metric("relay_queue_oldest_message_age_seconds", `output="head"`)
		return ok && d == 0 && a == 0 && testpeer.Check("q", n, upstream.Messages()).Delivered() == n
	}) {
		a, _ := p.metric("relay_queue_oldest_message_age_seconds", `output="head"`)
		t.Errorf("after the drain: age %v, %d of %d delivered", a, testpeer.Check("q", n, upstream.Messages()).Delivered(), n)
	}
	p.stop()
	if out, errOut, code = runRelayIn(t, "", "queue", "purge", "-config", s.cfgPath, "-output", "head", "-yes"); code != 0 || strings.Contains(out, "[y/N]") {
		t.Errorf("purge -yes: exit %d\n%s%s", code, out, errOut)
	}
}

// TestCheckConfigQueueDirs: -check-config refuses a data_dir whose queue
// directories the relay could not create or use, naming data_dir and its
// line.
func TestCheckConfigQueueDirs(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfg := filepath.Join(dir, "relay.toml")
	body := fmt.Sprintf(`
data_dir = %q
[[listener]]
name = "udp"
protocol = "udp"
address = "127.0.0.1:0"
[[output]]
name = "head"
protocol = "file"
path = %q
[[route]]
name = "all"
outputs = ["head"]
`, data, filepath.Join(dir, "out.log"))
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	// Not there yet, in a writable parent: fine.
	if out, errOut, code := runRelay(t, "-check-config", "-config", cfg); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	// A file where the queue directory should be.
	if err := os.MkdirAll(data, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "head"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := runRelay(t, "-check-config", "-config", cfg)
	if code != 1 || !strings.Contains(errOut, "line 2: data_dir: queue directory ") || !strings.Contains(errOut, `of output "head" is not a directory`) {
		t.Errorf("a file in place of the queue directory: exit %d: %s", code, errOut)
	}
	// A file where a parent of data_dir should be: it cannot be created.
	data2 := filepath.Join(dir, "out.log", "data")
	if err := os.WriteFile(filepath.Join(dir, "out.log"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte(strings.Replace(body, strconv.Quote(data), strconv.Quote(data2), 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := runRelay(t, "-check-config", "-config", cfg); code != 1 || !strings.Contains(errOut, "does not exist and cannot be created") {
		t.Errorf("data_dir under a file: exit %d: %s", code, errOut)
	}
	if os.Geteuid() == 0 {
		return // root writes anywhere: the permission check cannot fail
	}
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(data, "head")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(data, "head"), 0o500); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := runRelay(t, "-check-config", "-config", cfg); code != 1 || !strings.Contains(errOut, `of output "head" is not writable`) {
		t.Errorf("read-only queue directory: exit %d: %s", code, errOut)
	}
}

// TestQueueDumpJSON: receive time, listener and sender per message; a
// message that is not UTF-8 comes base64-encoded; -until keeps the earlier
// messages. Without -json control bytes are escaped as in a log file, so
// a message stays one line and its terminal escapes stay harmless.
func TestQueueDumpJSON(t *testing.T) {
	data := t.TempDir()
	q, err := queue.Open(queue.Options{Name: "head", Dir: filepath.Join(data, "head")})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	entries := []queue.Entry{
		{Received: t0, Listener: "udp", Source: "192.0.2.1:514", Data: []byte("<13>plain text")},
		{Received: t0.Add(time.Minute), Listener: "tcp", Source: "192.0.2.2:3333", Data: []byte{'<', '1', '3', '>', 0xff, 0xfe}},
		{Received: t0.Add(2 * time.Minute), Listener: "tcp", Source: "192.0.2.2:3333", Data: []byte("<13>red\x1b[31m\nsecond line")},
	}
	for _, e := range entries {
		if err := q.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := queueCommand([]string{"dump", "-data-dir", data, "-json"}, nil, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	want := `{"output":"head","received":"2026-01-02T15:04:05Z","listener":"udp","sender":"192.0.2.1:514","message":"<13>plain text"}
{"output":"head","received":"2026-01-02T15:05:05Z","listener":"tcp","sender":"192.0.2.2:3333","message_base64":"PDEzPv/+"}
{"output":"head","received":"2026-01-02T15:06:05Z","listener":"tcp","sender":"192.0.2.2:3333","message":"<13>red\u001b[31m\nsecond line"}
`
	if out.String() != want {
		t.Errorf("dump -json:\n%s\nwant:\n%s", out.String(), want)
	}
	out.Reset()
	if code := queueCommand([]string{"dump", "-data-dir", data, "-until", "2026-01-02T15:05:00Z"}, nil, &out, &errOut); code != 0 || out.String() != "<13>plain text\n" {
		t.Errorf("dump -until: exit %d, %q", code, out.String())
	}
	out.Reset()
	if code := queueCommand([]string{"dump", "-data-dir", data, "-since", "2026-01-02T15:06:00Z"}, nil, &out, &errOut); code != 0 || out.String() != "<13>red#033[31m#012second line\n" {
		t.Errorf("dump of a message with control bytes: exit %d, %q", code, out.String())
	}
	if code := queueCommand([]string{"dump", "-data-dir", data, "-since", "yesterday"}, nil, &out, &errOut); code != 2 {
		t.Errorf("dump -since yesterday: exit %d, want 2", code)
	}
	out.Reset()
	if code := queueCommand([]string{"dump", "-data-dir", data, "-since", "2026-01-02T15:04:00Z", "-until", "2026-01-02T15:05:00Z"}, nil, &out, &errOut); code != 0 || out.String() != "<13>plain text\n" {
		t.Errorf("dump -since -until: exit %d, %q", code, out.String())
	}
	// A range that selects nothing by its own bounds is a usage error, not
	// "0 messages dumped".
	for _, r := range [][2]string{
		{"2026-01-02T15:05:00Z", "2026-01-02T15:05:00Z"}, // empty: -until is exclusive
		{"2026-01-02T15:06:00Z", "2026-01-02T15:04:00Z"}, // inverted
		{"1h", "2h"}, // 1h ago is after 2h ago
	} {
		out.Reset()
		errOut.Reset()
		code := queueCommand([]string{"dump", "-data-dir", data, "-since", r[0], "-until", r[1]}, nil, &out, &errOut)
		if code != 2 || out.Len() != 0 || !strings.Contains(errOut.String(), "is not before -until") {
			t.Errorf("dump -since %s -until %s: exit %d, stdout %q, stderr %q; want exit 2, nothing dumped, a usage error", r[0], r[1], code, out.String(), errOut.String())
		}
	}
}

// TestQueueCommandHelp checks that relay queue COMMAND -h describes that
// command and its flags only, and relay queue -h all of them.
func TestQueueCommandHelp(t *testing.T) {
	for _, tc := range []struct {
		cmd       string
		has, lack []string
	}{
		{"stat", []string{"-config", "-data-dir", "-output"}, []string{"-json", "-since", "-yes", "verify", "purge"}},
		{"verify", []string{"-config", "-data-dir", "-output", "checksum"}, []string{"-json", "-since", "-yes", "purge"}},
		{"dump", []string{"-json", "-n ", "-since", "-until"}, []string{"-yes", "purge", "verify"}},
		{"purge", []string{"-output", "-yes"}, []string{"-json", "-since", "verify"}},
	} {
		t.Run(tc.cmd, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := queueCommand([]string{tc.cmd, "-h"}, nil, &out, &errOut); code != 0 || errOut.Len() != 0 {
				t.Fatalf("relay queue %s -h: exit %d, stderr %q", tc.cmd, code, errOut.String())
			}
			usage := out.String()
			if !strings.HasPrefix(usage, "Usage: relay queue "+tc.cmd+" ") || !strings.Contains(usage, "\nFlags:\n") {
				t.Errorf("relay queue %s -h does not start with its own usage line:\n%s", tc.cmd, usage)
			}
			for _, w := range tc.has {
				if !strings.Contains(usage, w) {
					t.Errorf("relay queue %s -h lacks %q:\n%s", tc.cmd, w, usage)
				}
			}
			for _, w := range tc.lack {
				if strings.Contains(usage, w) {
					t.Errorf("relay queue %s -h has %q, which is another command's:\n%s", tc.cmd, w, usage)
				}
			}
		})
	}
	var out, errOut bytes.Buffer
	if code := queueCommand([]string{"-h"}, nil, &out, &errOut); code != 0 {
		t.Fatalf("relay queue -h: exit %d", code)
	}
	for _, w := range []string{"Usage: relay queue COMMAND", "stat", "verify", "dump", "purge", "-json", "-yes"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("relay queue -h lacks %q:\n%s", w, out.String())
		}
	}
}

// TestQueueSymlinkDir: a queue directory that is a symbolic link is
// listed, marked as one, and purge refuses to remove files through it.
func TestQueueSymlinkDir(t *testing.T) {
	target := filepath.Join(t.TempDir(), "head")
	q, err := queue.Open(queue.Options{Name: "head", Dir: target})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Append(queue.Entry{Listener: "udp", Data: []byte("<13>kept")}); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadDir(target)
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	if err := os.Symlink(target, filepath.Join(data, "head")); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := queueCommand([]string{"stat", "-data-dir", data}, nil, &out, &errOut); code != 0 ||
		!strings.Contains(out.String(), "a symbolic link to "+target) || !strings.Contains(out.String(), "waiting:   1 message ") {
		t.Errorf("stat: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	for _, args := range [][]string{{"purge", "-data-dir", data, "-output", "head", "-yes"}, {"purge", "-data-dir", data, "-output", "head"}} {
		out.Reset()
		errOut.Reset()
		if code := queueCommand(args, strings.NewReader("y\n"), &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "refused: "+filepath.Join(data, "head")+" is a symbolic link") {
			t.Errorf("%v: exit %d\n%s%s", args, code, out.String(), errOut.String())
		}
	}
	if after, err := os.ReadDir(target); err != nil || len(after) != len(before) {
		t.Errorf("files in the link's target: %d before, %d after (%v)", len(before), len(after), err)
	}
}

// TestCheckConfigFiles: -check-config loads the TLS and SASL files the
// configuration names, as the relay does at start, and reports a missing,
// unreadable or broken one with its key and line; with sound files it
// passes.
func TestCheckConfigFiles(t *testing.T) {
	dir := t.TempDir()
	ca := testpeer.NewTestCA(t, "check")
	server := ca.Server("server", "relay.test")
	password := filepath.Join(dir, "password")
	if err := os.WriteFile(password, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	config := func(certFile, caFile, passwordFile string) string {
		path := filepath.Join(t.TempDir(), "relay.toml")
		text := fmt.Sprintf(`data_dir = %q
[[listener]]
name = "tls"
protocol = "tls"
address = "127.0.0.1:6514"
tls.cert_file = %q
tls.key_file = %q
[[output]]
name = "up"
protocol = "tls"
address = "127.0.0.1:6515"
tls.ca_file = %q
[[output]]
name = "kafka"
protocol = "kafka"
brokers = ["127.0.0.1:9092"]
topic = "syslog"
sasl.mechanism = "SCRAM-SHA-256"
sasl.username = "relay"
sasl.password_file = %q
[[route]]
name = "all"
outputs = ["up", "kafka"]
`, filepath.Join(dir, "data"), certFile, server.KeyFile, caFile, passwordFile)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	if out, errOut, code := runRelay(t, "-check-config", "-config", config(server.CertFile, ca.CAFile, password)); code != 0 {
		t.Fatalf("sound files: exit %d\n%s%s", code, out, errOut)
	}
	_, errOut, code := runRelay(t, "-check-config", "-config", config(filepath.Join(dir, "missing.pem"), notPEM, dir))
	if code != 1 {
		t.Fatalf("broken files: exit %d, want 1\n%s", code, errOut)
	}
	for _, want := range []string{
		"line 6: listener[0].tls.cert_file: tls.cert_file " + filepath.Join(dir, "missing.pem"),
		"line 12: output[0].tls.ca_file: tls.ca_file " + notPEM + ": no PEM certificate found",
		"line 20: output[1].sasl.password_file: read " + dir + ": is a directory",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("-check-config does not report %q:\n%s", want, errOut)
		}
	}
}

// TestQueueVerifyLostSummary: damage whose message count is unknown (a
// removed data file, a bad record length) was summed up as "at least 0
// messages lost", which reads as nothing lost.
func TestQueueVerifyLostSummary(t *testing.T) {
	for _, c := range []struct {
		n       int
		unknown bool
		want    string
	}{
		{0, true, "messages lost: count unknown"},
		{100, true, "at least 100 messages lost"},
		{200, false, "200 messages lost"},
		{1, false, "1 message lost"},
	} {
		if got := lostSummary(c.n, c.unknown); got != c.want {
			t.Errorf("lostSummary(%d, %v) = %q, want %q", c.n, c.unknown, got, c.want)
		}
	}
}
