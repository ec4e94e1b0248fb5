package relay

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/relay-syslog/relay/internal/testpeer"
)

// mountTmpfs mounts a tmpfs of size at a new directory for the test. It
// needs root (CI runs as root); elsewhere the test skips.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("mounting a tmpfs needs root; CI runs as root")
		}
		t.Skip("mounting a tmpfs needs root")
	}
	dir := filepath.Join(t.TempDir(), "small")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mount tmpfs: %v: %s", err, out)
		}
		t.Skipf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// TestDiskFullCountsDropsAndRecovers fills a small tmpfs data dir while the
// upstream is down: the relay stays up, counts the refused messages as
// disk_full, reports not ready; when the upstream returns, every accepted
// message arrives, space comes back and new messages are accepted again.
func TestDiskFullCountsDropsAndRecovers(t *testing.T) {
	needLong(t)
	small := mountTmpfs(t, "2m")
	port := testpeer.FreePort(t)
	upstream := fmt.Sprintf("127.0.0.1:%d", port)
	r := startRelay(t, small, `data_dir = "{{DATA}}"`+listenersTOML()+tcpOutputTOML("head", upstream)+`
queue.max_file_size = "128KiB"
queue.full_policy = "drop_newest"
[[route]]
name = "all"
outputs = ["head"]
`)
	sent := 0
	for sent < 200000 && r.metric("relay_output_messages_dropped_total", "reason", "disk_full") == 0 {
		if err := testpeer.SendTCP(r.addr("tcp"), "full", sent, sent+2000, true); err != nil {
			t.Fatal(err)
		}
		sent += 2000
		testpeer.WaitFor(time.Second, func() bool {
			return r.metric("relay_messages_accepted_total")+r.metric("relay_output_messages_dropped_total") >= float64(sent)
		})
	}
	dropped := r.metric("relay_output_messages_dropped_total", "reason", "disk_full")
	if dropped == 0 {
		t.Fatalf("no disk_full drops after %d messages into a 2 MiB data dir", sent)
	}
	if err := r.srv.ready(); err == nil {
		t.Errorf("ready() = nil while the disk is full")
	}
	accepted := r.metric("relay_messages_accepted_total")
	t.Logf("disk full: sent %d, accepted %v, dropped disk_full %v", sent, accepted, dropped)

	recv := testpeer.NewReceiver(t, upstream)
	if !testpeer.WaitFor(30*time.Second, func() bool { return float64(testpeer.Check("full", sent, recv.Messages()).Delivered()) >= accepted }) {
		t.Fatalf("after the upstream returned: %v, accepted %v", testpeer.Check("full", sent, recv.Messages()), accepted)
	}
	// Once the backlog is out, the queue's files are emptied, the relay
	// reports ready again, and new messages are accepted and delivered.
	if !testpeer.WaitFor(30*time.Second, func() bool {
		return r.srv.ready() == nil && r.metric("relay_queue_disk_bytes") < 512<<10
	}) {
		t.Fatalf("after the backlog drained: ready() = %v, queue disk bytes %v", r.srv.ready(), r.metric("relay_queue_disk_bytes"))
	}
	if err := testpeer.SendTCP(r.addr("tcp"), "after", 0, 1000, true); err != nil {
		t.Fatal(err)
	}
	if !testpeer.WaitFor(30*time.Second, func() bool { return testpeer.Check("after", 1000, recv.Messages()).Delivered() == 1000 }) {
		t.Fatalf("after recovery: %v", testpeer.Check("after", 1000, recv.Messages()))
	}
	tally := testpeer.Check("full", sent, recv.Messages())
	t.Logf("disk full scenario: sent %d, accepted %v, delivered %d, duplicates %d, dropped disk_full %v",
		sent, accepted, tally.Delivered(), tally.Duplicates, dropped)
	if float64(tally.Delivered()) < accepted {
		t.Errorf("delivered %d < accepted %v", tally.Delivered(), accepted)
	}
}

// TestQueueCapBackpressure: with a byte cap and the block policy, a dead
// upstream makes TCP listeners stop reading instead of dropping; when the
// upstream returns, everything arrives.
func TestQueueCapBackpressure(t *testing.T) {
	needLong(t)
	port := testpeer.FreePort(t)
	upstream := fmt.Sprintf("127.0.0.1:%d", port)
	r := startRelay(t, t.TempDir(), `data_dir = "{{DATA}}"`+listenersTOML()+tcpOutputTOML("head", upstream)+`
queue.max_bytes = "256KiB"
queue.full_policy = "block"
queue.block_timeout = "1m"
[[route]]
name = "all"
outputs = ["head"]
`)
	const n = 20000
	sent := make(chan error, 1)
	go func() { sent <- testpeer.SendTCP(r.addr("tcp"), "bp", 0, n, true) }()
	// The sender cannot finish: the relay stopped reading.
	select {
	case err := <-sent:
		t.Fatalf("sender finished while the queue was full (err %v)", err)
	case <-time.After(500 * time.Millisecond):
	}
	if got := r.metric("relay_messages_accepted_total"); got >= n {
		t.Fatalf("accepted %v of %d with a 256 KiB cap", got, n)
	}
	recv := testpeer.NewReceiver(t, upstream)
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if !testpeer.WaitFor(30*time.Second, func() bool { return testpeer.Check("bp", n, recv.Messages()).Delivered() == n }) {
		t.Fatalf("%v", testpeer.Check("bp", n, recv.Messages()))
	}
	if d := r.metric("relay_output_messages_dropped_total"); d != 0 {
		t.Errorf("dropped %v with the block policy", d)
	}
}

// TestUpstreamDown30sUnderLoad: the upstream disappears for 30 seconds while
// messages keep arriving at a steady rate, then returns: none is lost.
func TestUpstreamDown30sUnderLoad(t *testing.T) {
	needLong(t)
	recv := testpeer.NewReceiver(t, "127.0.0.1:0")
	addr := recv.Addr()
	r := startRelay(t, t.TempDir(), `data_dir = "{{DATA}}"`+listenersTOML()+tcpOutputTOML("head", addr)+`
[[route]]
name = "all"
outputs = ["head"]
`)
	// 500 messages every 50 ms (10k/s) for 36 s; the upstream is away from
	// 3 s to 33 s.
	const per, rounds = 500, 720
	start := time.Now()
	var down *testpeer.Receiver = recv
	var back *testpeer.Receiver
	for i := 0; i < rounds; i++ {
		if err := testpeer.SendTCP(r.addr("tcp"), "out30", i*per, (i+1)*per, true); err != nil {
			t.Fatal(err)
		}
		elapsed := time.Since(start)
		if down != nil && elapsed > 3*time.Second {
			down.Close()
			down = nil
		}
		if back == nil && elapsed > 33*time.Second {
			back = testpeer.NewReceiver(t, addr)
		}
		next := start.Add(time.Duration(i+1) * 50 * time.Millisecond)
		time.Sleep(time.Until(next)) // pacing the load, not synchronisation
	}
	if back == nil {
		back = testpeer.NewReceiver(t, addr)
	}
	all := func() []string { return append(recv.Messages(), back.Messages()...) }
	const n = per * rounds
	if !testpeer.WaitFor(60*time.Second, func() bool { return testpeer.Check("out30", n, all()).Delivered() == n }) {
		t.Fatalf("%v", testpeer.Check("out30", n, all()))
	}
	tally := testpeer.Check("out30", n, all())
	t.Logf("30 s outage under 10k msg/s: sent %d, delivered %d, duplicates %d, before the outage %d, after %d",
		n, tally.Delivered(), tally.Duplicates, recv.Count(), back.Count())
}

// TestUpstreamResetsMidBatch: an upstream that resets the connection after
// reading a random part of the stream, ten times over, then behaves.
// Nothing is lost; what was cut off is sent again.
//
// The resetter throws away what it read, as an upstream that crashes
// after reading would: over plain TCP that is lost unless the crash comes
// within confirm_delay of the kernel's acknowledgement, which is what the
// 1 s here models (on a busy machine the resetter may lag the kernel by
// more than the default 50 ms). If it lags by more still, every message
// lost must be among those counted as possibly lost.
func TestUpstreamResetsMidBatch(t *testing.T) {
	needLong(t)
	port := testpeer.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	resets := testpeer.NewResetter(t, addr, 10, 20000)
	r := startRelay(t, t.TempDir(), `data_dir = "{{DATA}}"`+listenersTOML()+tcpOutputTOML("head", addr)+`confirm_delay = "1s"
[[route]]
name = "all"
outputs = ["head"]
`)
	const n = 50000
	if err := testpeer.SendTCP(r.addr("tcp"), "rst", 0, n, true); err != nil {
		t.Fatal(err)
	}
	if !testpeer.WaitFor(60*time.Second, func() bool { return resets.Done() }) {
		t.Fatalf("only %d resets happened", resets.Count())
	}
	possiblyLost := func() float64 { return r.metric("relay_output_messages_possibly_lost_total") }
	if !testpeer.WaitFor(60*time.Second, func() bool {
		missing := n - testpeer.Check("rst", n, resets.Receiver().Messages()).Delivered()
		return missing == 0 || r.metric("relay_queue_depth_records") == 0 && float64(missing) <= possiblyLost()
	}) {
		t.Fatalf("%v; possibly lost %v", testpeer.Check("rst", n, resets.Receiver().Messages()), possiblyLost())
	}
	tally := testpeer.Check("rst", n, resets.Receiver().Messages())
	t.Logf("10 resets mid-batch: sent %d, delivered after the resets %d, duplicates %d, relay resent %v, possibly lost %v",
		n, tally.Delivered(), tally.Duplicates, r.metric("relay_output_messages_resent_total"), possiblyLost())
}
