package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relay-syslog/relay/internal/testpeer"
)

// TestFaultCappedQueueBlockDoesNotStarveOthers: an output whose upstream
// is dead, with a small queue.max_bytes under the default block policy,
// beside a healthy file output. Once the dead output's queue is full, one
// message waits block_timeout and is dropped; after that the dead output
// no longer holds up the listener, so the file output gets every message
// at the listener's pace, the dead output's drops are counted for it
// alone, and relay_queue_full shows it.
func TestFaultCappedQueueBlockDoesNotStarveOthers(t *testing.T) {
	dead := fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t)) // nothing listens
	file := filepath.Join(t.TempDir(), "file.log")
	s := newSetup(t, fmt.Sprintf(`
[[output]]
name = "dead"
protocol = "tcp"
address = %q
queue.max_bytes = "64KiB"
[[output]]
name = "file"
protocol = "file"
path = %q
[[route]]
name = "all"
outputs = ["dead", "file"]
`, dead, file))
	p := s.start(t, relayBin)
	const n = 3000 // about 5 times what fits in 64 KiB
	sent := make(chan error, 1)
	go func() { sent <- testpeer.SendTCP(s.tcpAddr, "cap", 0, n, true) }()
	ok := testpeer.WaitFor(60*time.Second, func() bool {
		return testpeer.Check("cap", n, testpeer.ReadLines(file)).Delivered() == n
	})
	tally := testpeer.Check("cap", n, testpeer.ReadLines(file))
	deadDropped, _ := p.metric("relay_output_messages_dropped_total", `output="dead"`, `reason="queue_full"`)
	fileDropped, _ := p.metric("relay_output_messages_dropped_total", `output="file"`)
	full, _ := p.metric("relay_queue_full", `output="dead"`)
	t.Logf("capped dead output beside a file output: sent %d, file output delivered %d, dead output dropped (queue_full) %v, file output dropped %v, relay_queue_full{dead} %v",
		n, tally.Delivered(), deadDropped, fileDropped, full)
	if !ok {
		t.Fatalf("the file output got %v within 60 s: the dead output's full queue holds up the listener\n%s", tally, p.logs.String())
	}
	if err := <-sent; err != nil {
		t.Errorf("send: %v", err)
	}
	if deadDropped == 0 || deadDropped >= n {
		t.Errorf("dead output dropped %v as queue_full, want some but not all of %d", deadDropped, n)
	}
	if fileDropped != 0 {
		t.Errorf("file output dropped %v, want 0", fileDropped)
	}
	if full != 1 {
		t.Errorf("relay_queue_full{output=\"dead\"} = %v, want 1", full)
	}
	p.stop()
}

// TestFaultDualUDPHeadRestartReportsGap: an edge relay sends every message
// over UDP to both listeners of a dedup head. The head stops (its ports
// then answer with ICMP port unreachable) and starts again on the same
// data dir while the edge goes on sending. The first message after the stop
// is lost on both paths, and on each path more are lost as the output
// retries. Each edge output counts what the upstream refused
// (reason="unreachable"), and the restarted head reports exactly the
// messages that arrived on neither path, although it never saw the
// numbers just before them in this run.
func TestFaultDualUDPHeadRestartReportsGap(t *testing.T) {
	headDir := t.TempDir()
	head := relaySetup{
		dir:        headDir,
		cfgPath:    filepath.Join(headDir, "head.toml"),
		metricsURL: fmt.Sprintf("http://127.0.0.1:%d/metrics", testpeer.FreePort(t)),
	}
	pathA := fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t))
	pathB := fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t))
	out := filepath.Join(headDir, "out.log")
	headCfg := fmt.Sprintf(`data_dir = %q
relay_id = "head"
[metrics]
address = %q
[[listener]]
name = "path-a"
protocol = "udp"
address = %q
dedup = true
[[listener]]
name = "path-b"
protocol = "udp"
address = %q
dedup = true
[[output]]
name = "archive"
protocol = "file"
path = %q
[[route]]
name = "all"
outputs = ["archive"]
`, filepath.Join(headDir, "data"), strings.TrimSuffix(strings.TrimPrefix(head.metricsURL, "http://"), "/metrics"), pathA, pathB, out)
	if err := os.WriteFile(head.cfgPath, []byte(headCfg), 0o644); err != nil {
		t.Fatal(err)
	}
	edge := newSetup(t, fmt.Sprintf(`
[[output]]
name = "head-a"
protocol = "udp"
address = %q
format = "rfc5424"
stamp_sequence = true
retry_initial = "50ms"
retry_max = "500ms"
queue.batch_messages = 1
[[output]]
name = "head-b"
protocol = "udp"
address = %q
format = "rfc5424"
stamp_sequence = true
retry_initial = "50ms"
retry_max = "500ms"
queue.batch_messages = 1
[[route]]
name = "both"
outputs = ["head-a", "head-b"]
`, pathA, pathB))
	// The origin the head sees; a top-level key, before newSetup's tables.
	cfg, err := os.ReadFile(edge.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(edge.cfgPath, append([]byte("relay_id = \"edge\"\n"), cfg...), 0o644); err != nil {
		t.Fatal(err)
	}
	h := head.start(t, relayBin)
	e := edge.start(t, relayBin)

	// send sends messages from..to-1 one by one, a few milliseconds apart,
	// as a live source does. Each is a batch of its own at the edge
	// (queue.batch_messages = 1), as at a live source's pace, however busy
	// the machine: a datagram refused is then always the last of its
	// batch, and lost.
	send := func(from, to int) {
		t.Helper()
		c, err := net.DialTimeout("tcp", edge.tcpAddr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for i := from; i < to; i++ {
			m := testpeer.SeqMessage("dual", i)
			if _, err := fmt.Fprintf(c, "%d %s", len(m), m); err != nil {
				t.Fatal(err)
			}
			time.Sleep(3 * time.Millisecond) // the source's pace, not synchronisation
		}
	}
	const before, n = 500, 800
	send(0, before)
	if !testpeer.WaitFor(30*time.Second, func() bool {
		return testpeer.Check("dual", before, testpeer.ReadLines(out)).Delivered() == before
	}) {
		t.Fatalf("before the stop: %v\n%s", testpeer.Check("dual", before, testpeer.ReadLines(out)), h.logs.String())
	}

	h.stop()
	send(before, n)
	if !testpeer.WaitFor(30*time.Second, func() bool {
		a, _ := e.metric("relay_output_send_errors_total", `output="head-a"`)
		b, _ := e.metric("relay_output_send_errors_total", `output="head-b"`)
		return a > 0 && b > 0
	}) {
		t.Fatalf("the edge's outputs saw no error while the head was down\n%s", e.logs.String())
	}
	h = head.start(t, relayBin)

	// Everything the edge still has reaches the head, and the head's count
	// of gaps matches what arrived on neither path.
	reported := func() float64 {
		missing, _ := h.metric("relay_dedup_window_missing", `origin="edge"`)
		gaps, _ := h.metric("relay_dedup_gaps_total", `origin="edge"`)
		return missing + gaps
	}
	done := testpeer.WaitFor(60*time.Second, func() bool {
		tally := testpeer.Check("dual", n, testpeer.ReadLines(out))
		da, _ := e.metric("relay_queue_depth_records", `output="head-a"`)
		db, _ := e.metric("relay_queue_depth_records", `output="head-b"`)
		return da == 0 && db == 0 && tally.Seen[n-1] > 0 && reported() == float64(len(tally.Missing))
	})
	tally := testpeer.Check("dual", n, testpeer.ReadLines(out))
	var sent, refused [2]float64
	for i, o := range []string{"head-a", "head-b"} {
		sent[i], _ = e.metric("relay_output_messages_sent_total", `output="`+o+`"`)
		refused[i], _ = e.metric("relay_output_messages_dropped_total", `output="`+o+`"`, `reason="unreachable"`)
	}
	t.Logf("dual UDP, head restarted: sent %d, head delivered %d, lost on both paths %d %v; edge outputs sent %v, counted unreachable %v; restarted head reports %v gaps",
		n, tally.Delivered(), len(tally.Missing), tally.Missing, sent, refused, reported())
	if !done {
		t.Errorf("the restarted head reports %v gaps; %d messages arrived on neither path (%v)\n%s", reported(), len(tally.Missing), tally, h.logs.String())
	}
	if len(tally.Missing) == 0 {
		t.Errorf("nothing was lost on both paths: the test did not exercise a gap")
	}
	for i, o := range []string{"head-a", "head-b"} {
		if refused[i] == 0 {
			t.Errorf("edge output %s counted nothing as unreachable, though its upstream refused datagrams", o)
		}
	}
	h.stop()
	e.stop()
}
