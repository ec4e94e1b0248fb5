package main

import (
	"fmt"
	"path/filepath"
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
