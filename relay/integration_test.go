package relay

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relay-syslog/relay/internal/testpeer"
)

// TestFileOutputReceivesUDPAndTCP sends over every listener kind and finds
// each message, byte for byte, as a line of the file output.
func TestFileOutputReceivesUDPAndTCP(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out := filepath.Join(dir, "messages.log")
	sock := filepath.Join(dir, "log.sock")
	r := startRelay(t, dir, `data_dir = "{{DATA}}/q"`+listenersTOML()+fmt.Sprintf(`
[[listener]]
name = "local"
protocol = "unix"
address = %q

[[output]]
name = "file"
protocol = "file"
path = %q

[[route]]
name = "all"
outputs = ["file"]
`, sock, out))

	if err := testpeer.SendUDP(r.addr("udp"), "u", 0, 10); err != nil {
		t.Fatal(err)
	}
	if err := testpeer.SendTCP(r.addr("tcp"), "o", 0, 10, true); err != nil {
		t.Fatal(err)
	}
	if err := testpeer.SendTCP(r.addr("tcp"), "l", 0, 10, false); err != nil {
		t.Fatal(err)
	}
	if err := testpeer.SendUnixgram(sock, "x", 0, 10); err != nil {
		t.Fatal(err)
	}
	if !testpeer.WaitFor(30*time.Second, func() bool { return len(testpeer.ReadLines(out)) >= 40 }) {
		t.Fatalf("file has %d lines, want 40", len(testpeer.ReadLines(out)))
	}
	lines := testpeer.ReadLines(out)
	for _, run := range []string{"u", "o", "l", "x"} {
		tally := testpeer.Check(run, 10, lines)
		if len(tally.Missing) > 0 || tally.Duplicates > 0 {
			t.Errorf("run %s: %v", run, tally)
		}
	}
	want := testpeer.SeqMessage("o", 3)
	found := false
	for _, l := range lines {
		found = found || l == want
	}
	if !found {
		t.Errorf("message not byte-exact in file: want line %q", want)
	}
	if got := r.metric("relay_messages_accepted_total"); got != 40 {
		t.Errorf("relay_messages_accepted_total = %v, want 40", got)
	}
	if got := r.metric("relay_output_messages_sent_total", "output", "file"); got != 40 {
		t.Errorf("relay_output_messages_sent_total = %v, want 40", got)
	}
}

// TestRestartDeliversBacklog queues messages while the upstream is down,
// stops the relay with a non-empty queue, then starts a new relay on the same
// data dir once the upstream is up: every message arrives, exactly once.
func TestRestartDeliversBacklog(t *testing.T) {
	needLong(t)
	dir := t.TempDir()
	port := testpeer.FreePort(t)
	upstream := fmt.Sprintf("127.0.0.1:%d", port)
	cfg := `data_dir = "{{DATA}}"` + listenersTOML() + tcpOutputTOML("head", upstream) + `
[[route]]
name = "all"
outputs = ["head"]
`
	r := startRelay(t, dir, cfg)
	const n = 5000
	if err := testpeer.SendTCP(r.addr("tcp"), "b", 0, n, true); err != nil {
		t.Fatal(err)
	}
	if !testpeer.WaitFor(10*time.Second, func() bool { return r.metric("relay_messages_accepted_total") == n }) {
		t.Fatalf("accepted %v, want %d", r.metric("relay_messages_accepted_total"), n)
	}
	if d := r.stop(); d > 5*time.Second {
		t.Errorf("stop with the upstream down took %v, want < 5s", d)
	}

	recv := testpeer.NewReceiver(t, upstream)
	r2 := startRelay(t, dir, cfg)
	if !testpeer.WaitFor(20*time.Second, func() bool { return recv.Count() >= n }) {
		t.Fatalf("after restart the upstream got %d of %d", recv.Count(), n)
	}
	// Let the relay settle what it sent, then check nothing more arrives.
	testpeer.WaitFor(2*time.Second, func() bool { return r2.metric("relay_queue_depth_records", "output", "head") == 0 })
	r2.stop()
	tally := testpeer.Check("b", n, recv.Messages())
	if len(tally.Missing) > 0 || tally.Duplicates > 0 {
		t.Errorf("backlog: %v", tally)
	}
}

// TestDeadOutputDoesNotBlockAnother sends to two outputs, one of which
// accepts connections and never reads. The healthy one gets everything, and
// a stop still returns quickly.
func TestDeadOutputDoesNotBlockAnother(t *testing.T) {
	needLong(t)
	t.Parallel()
	dir := t.TempDir()
	good := testpeer.NewReceiver(t, "127.0.0.1:0")
	dead := testpeer.NewBlackhole(t, "127.0.0.1:0")
	r := startRelay(t, dir, `data_dir = "{{DATA}}"`+listenersTOML()+
		tcpOutputTOML("good", good.Addr())+tcpOutputTOML("dead", dead.Addr())+`
[[route]]
name = "both"
outputs = ["good", "dead"]
`)
	const n = 100000
	if err := testpeer.SendTCP(r.addr("tcp"), "d", 0, n, true); err != nil {
		t.Fatal(err)
	}
	if !testpeer.WaitFor(30*time.Second, func() bool { return good.Count() >= n }) {
		t.Fatalf("healthy output got %d of %d while the other hung", good.Count(), n)
	}
	if d := r.stop(); d > 5*time.Second {
		t.Errorf("stop with a hung upstream took %v, want < 5s", d)
	}
	tally := testpeer.Check("d", n, good.Messages())
	if len(tally.Missing) > 0 {
		t.Errorf("healthy output: %v", tally)
	}
}

// TestDataDirLock refuses a second relay on the same data dir.
func TestDataDirLock(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := `data_dir = "{{DATA}}"` + listenersTOML() + `
[[output]]
name = "file"
protocol = "file"
path = "{{DATA}}/out.log"
[[route]]
name = "all"
outputs = ["file"]
`
	startRelay(t, dir, cfg)
	c, err := ParseConfig("test", []byte(strings.ReplaceAll(cfg, "{{DATA}}", dir)))
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(c, Options{Logger: testLogger(t)})
	if err == nil || !strings.Contains(err.Error(), "in use by another relay") {
		t.Fatalf("second relay on the same data_dir: err = %v, want 'in use by another relay'", err)
	}
}

// TestTCPOverlongFrames checks the documented rule: a frame longer than
// max_message_size is truncated to it and counted, and the next frame on
// the same connection is read intact.
func TestTCPOverlongFrames(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	recv := testpeer.NewReceiver(t, "127.0.0.1:0")
	r := startRelay(t, dir, `data_dir = "{{DATA}}"
[[listener]]
name = "tcp"
protocol = "tcp"
address = "127.0.0.1:0"
max_message_size = 1000
`+tcpOutputTOML("head", recv.Addr())+`
[[route]]
name = "all"
outputs = ["head"]
`)
	long := "<13>" + strings.Repeat("a", 5000)
	stream := fmt.Sprintf("%d %s", len(long), long) + "5 <13>x" + long + "\n" + "<13>after\n"
	if err := testpeer.SendRaw(r.addr("tcp"), stream); err != nil {
		t.Fatal(err)
	}
	if !testpeer.WaitFor(30*time.Second, func() bool { return recv.Count() >= 4 }) {
		t.Fatalf("got %d messages, want 4: %q", recv.Count(), recv.Messages())
	}
	got := recv.Messages()
	want := []string{long[:1000], "<13>x", long[:1000], "<13>after"}
	for i := range want {
		if i >= len(got) || got[i] != want[i] {
			t.Fatalf("message %d = %.40q..., want %.40q...", i, got[i], want[i])
		}
	}
	if c := r.metric("relay_listener_errors_total", "reason", "truncated"); c != 2 {
		t.Errorf("truncated count = %v, want 2", c)
	}
}

// TestManyTCPSendersAtOnce sends from several connections concurrently.
func TestManyTCPSendersAtOnce(t *testing.T) {
	needLong(t)
	t.Parallel()
	dir := t.TempDir()
	recv := testpeer.NewReceiver(t, "127.0.0.1:0")
	r := startRelay(t, dir, `data_dir = "{{DATA}}"`+listenersTOML()+tcpOutputTOML("head", recv.Addr())+`
[[route]]
name = "all"
outputs = ["head"]
`)
	const conns, per = 8, 5000
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- testpeer.SendTCP(r.addr("tcp"), "m", c*per, (c+1)*per, c%2 == 0)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if !testpeer.WaitFor(30*time.Second, func() bool { return recv.Count() >= conns*per }) {
		t.Fatalf("got %d of %d", recv.Count(), conns*per)
	}
	tally := testpeer.Check("m", conns*per, recv.Messages())
	if len(tally.Missing) > 0 || tally.Duplicates > 0 {
		t.Errorf("%v", tally)
	}
}

// TestIPv6Listeners receives over UDP and TCP on [::1].
func TestIPv6Listeners(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out := filepath.Join(dir, "messages.log")
	r := startRelay(t, dir, `data_dir = "{{DATA}}/q"
[[listener]]
name = "udp6"
protocol = "udp"
address = "[::1]:0"
[[listener]]
name = "tcp6"
protocol = "tcp"
address = "[::1]:0"
`+fmt.Sprintf(`
[[output]]
name = "file"
protocol = "file"
path = %q
[[route]]
name = "all"
outputs = ["file"]
`, out))
	if !strings.HasPrefix(r.addr("udp6"), "[::1]:") {
		t.Fatalf("udp6 bound to %s", r.addr("udp6"))
	}
	if err := testpeer.SendUDP(r.addr("udp6"), "u6", 0, 100); err != nil {
		t.Fatal(err)
	}
	if err := testpeer.SendTCP(r.addr("tcp6"), "t6", 0, 100, true); err != nil {
		t.Fatal(err)
	}
	if !testpeer.WaitFor(30*time.Second, func() bool { return len(testpeer.ReadLines(out)) >= 200 }) {
		t.Fatalf("file has %d lines, want 200", len(testpeer.ReadLines(out)))
	}
	for _, run := range []string{"u6", "t6"} {
		if tally := testpeer.Check(run, 100, testpeer.ReadLines(out)); len(tally.Missing) > 0 || tally.Duplicates > 0 {
			t.Errorf("%s: %v", run, tally)
		}
	}
}
