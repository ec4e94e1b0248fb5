package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/relay-syslog/relay/internal/testpeer"
)

// The fault suite drives the real binary and does to it what production
// does: kill -9 at any moment, upstreams that vanish or hang, damaged files.

type proc struct {
	t          *testing.T
	cmd        *exec.Cmd
	logs       *syncBuffer
	metricsURL string
}

type relaySetup struct {
	dir, cfgPath, tcpAddr, metricsURL string
}

// newSetup writes a config with a TCP listener and the given outputs and
// routes (TOML), with fixed ports so restarts keep their addresses.
func newSetup(t *testing.T, outputsAndRoutes string) relaySetup {
	t.Helper()
	dir := t.TempDir()
	s := relaySetup{
		dir:        dir,
		cfgPath:    filepath.Join(dir, "relay.toml"),
		tcpAddr:    fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t)),
		metricsURL: fmt.Sprintf("http://127.0.0.1:%d/metrics", testpeer.FreePort(t)),
	}
	cfg := fmt.Sprintf(`data_dir = %q
[metrics]
address = %q
[[listener]]
name = "tcp"
protocol = "tcp"
address = %q
`, filepath.Join(dir, "data"), strings.TrimSuffix(strings.TrimPrefix(s.metricsURL, "http://"), "/metrics"), s.tcpAddr) + outputsAndRoutes
	if err := os.WriteFile(s.cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s relaySetup) start(t *testing.T, bin string) *proc {
	t.Helper()
	cmd := exec.Command(bin, "-config", s.cfgPath)
	logs := new(syncBuffer)
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, cmd: cmd, logs: logs, metricsURL: s.metricsURL}
	if !testpeer.WaitFor(20*time.Second, func() bool { return testpeer.HTTPGet(s.metricsURL) != "" }) {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("relay did not start:\n%s", logs.String())
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return p
}

func (p *proc) kill9() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Wait()
}

func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	_ = p.cmd.Wait()
}

// metric sums the samples of name whose label text contains every one of
// labels (e.g. `output="head"`); ok is false when /metrics did not answer.
func (p *proc) metric(name string, labels ...string) (v float64, ok bool) {
	body := testpeer.HTTPGet(p.metricsURL)
	if body == "" {
		return 0, false
	}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		match := true
		for _, l := range labels {
			match = match && strings.Contains(line, l)
		}
		if !match {
			continue
		}
		f, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err == nil {
			v += f
		}
	}
	return v, true
}

// headOutputTOML is the output most fault tests use: one TCP output
// "head" to addr that retries quickly, and a route sending it everything.
func headOutputTOML(addr string) string {
	return fmt.Sprintf(`
[[output]]
name = "head"
protocol = "tcp"
address = %q
retry_initial = "20ms"
retry_max = "200ms"
[[route]]
name = "all"
outputs = ["head"]
`, addr)
}

// TestFaultKill9Repeatedly kills the relay with SIGKILL 20 times at random
// moments while 200,000 sequence-numbered messages flow through it to an
// upstream. A chunk counts as accepted only once the relay's own metrics
// showed every message of it accepted and written to the queue files; a
// chunk cut off by a kill is sent again, as a real sender would. In the end
// every message arrives; duplicates are reported.
func TestFaultKill9Repeatedly(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test")
	}
	upstream := testpeer.NewReceiver(t, "127.0.0.1:0")
	s := newSetup(t, headOutputTOML(upstream.Addr()))
	const total, chunk, kills = 200000, 2000, 20
	p := sendThroughKills(t, s, "k9", total, chunk, kills, 50*time.Millisecond, 500*time.Millisecond)
	if !testpeer.WaitFor(2*time.Minute, func() bool { return testpeer.Check("k9", total, upstream.Messages()).Delivered() == total }) {
		t.Fatalf("after %d kills: %v\n%s", kills, testpeer.Check("k9", total, upstream.Messages()), p.logs.String())
	}
	p.stop()
	tally := testpeer.Check("k9", total, upstream.Messages())
	t.Logf("kill -9 x%d: sent %d, delivered %d, duplicates %d, missing %d", kills, total, tally.Delivered(), tally.Duplicates, len(tally.Missing))
}

// sendThroughKills sends messages 0..total-1 of run to s's TCP listener in
// chunks while the relay is killed with SIGKILL kills times, each at a
// random moment between minPause and maxPause after its start. A chunk
// counts as accepted only once the relay's own metrics showed every message
// of it accepted and written to the queue files; a chunk cut off by a kill
// is sent again, as a real sender would. It returns the relay of a last,
// clean run, which took what was left.
func sendThroughKills(t *testing.T, s relaySetup, run string, total, chunk, kills int, minPause, maxPause time.Duration) *proc {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 42))
	t.Logf("kill timing seed %d", seed)

	var proven atomic.Int64 // messages [0, proven) are known accepted
	for k := 0; k < kills; k++ {
		p := s.start(t, relayBin)
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			var sentThisRun float64
			for from := int(proven.Load()); from < total; from += chunk {
				select {
				case <-stop:
					return
				default:
				}
				if err := testpeer.SendTCP(s.tcpAddr, run, from, from+chunk, true); err != nil {
					return
				}
				sentThisRun += float64(chunk)
				// Proven once accepted and written; a kill makes /metrics
				// stop answering and the chunk stays unproven.
				ok := testpeer.WaitFor(5*time.Second, func() bool {
					acc, up1 := p.metric("relay_messages_accepted_total")
					unw, up2 := p.metric("relay_queue_unwritten_messages")
					return up1 && up2 && acc >= sentThisRun && unw == 0
				})
				if !ok {
					return
				}
				proven.Store(int64(from + chunk))
			}
		}()
		time.Sleep(minPause + time.Duration(rng.Int64N(int64(maxPause-minPause)))) // the fault's moment, not synchronisation
		p.kill9()
		close(stop)
		<-done
	}
	p := s.start(t, relayBin)
	for from := int(proven.Load()); from < total; from += chunk {
		if err := testpeer.SendTCP(s.tcpAddr, run, from, from+chunk, true); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// TestFaultFlippedBytesInQueueFile damages a stopped relay's queue file —
// one byte inside a record and one record's length prefix — and starts it
// again: startup is fine, at most the damaged records are lost, each is
// counted, and everything else is delivered.
func TestFaultFlippedBytesInQueueFile(t *testing.T) {
	port := testpeer.FreePort(t)
	upstreamAddr := fmt.Sprintf("127.0.0.1:%d", port)
	s := newSetup(t, fmt.Sprintf(`
[[output]]
name = "head"
protocol = "tcp"
address = %q
retry_initial = "20ms"
retry_max = "200ms"
queue.batch_messages = 100
[[route]]
name = "all"
outputs = ["head"]
`, upstreamAddr))
	const n = 5000 // 50 records of 100 messages
	p := s.start(t, relayBin)
	if err := testpeer.SendTCP(s.tcpAddr, "flip", 0, n, true); err != nil {
		t.Fatal(err)
	}
	if !testpeer.WaitFor(10*time.Second, func() bool {
		d, _ := p.metric("relay_queue_depth_records")
		return d >= n/100
	}) {
		t.Fatalf("queue not filled:\n%s", p.logs.String())
	}
	p.stop()

	data := filepath.Join(s.dir, "data", "head", "head.diskqueue.000000.dat")
	b, err := os.ReadFile(data)
	if err != nil {
		t.Fatal(err)
	}
	offsets := []int{}
	for pos := 0; pos+4 <= len(b); pos += 4 + int(binary.BigEndian.Uint32(b[pos:])) {
		offsets = append(offsets, pos)
	}
	if len(offsets) < 40 {
		t.Fatalf("found %d records in the queue file, want 50", len(offsets))
	}
	b[offsets[10]+4+200] ^= 0xff                            // a byte inside record 10
	binary.BigEndian.PutUint32(b[offsets[30]:], 0x7ffffff0) // record 30's length prefix
	if err := os.WriteFile(data, b, 0o600); err != nil {
		t.Fatal(err)
	}

	upstream := testpeer.NewReceiver(t, upstreamAddr)
	p = s.start(t, relayBin)
	want := n - 2*100
	if !testpeer.WaitFor(30*time.Second, func() bool { return testpeer.Check("flip", n, upstream.Messages()).Delivered() >= want }) {
		t.Fatalf("after the damage: %v (want %d)\n%s", testpeer.Check("flip", n, upstream.Messages()), want, p.logs.String())
	}
	// The record with the flipped byte fails its checksum; the one with the
	// damaged length prefix cannot be read at all: one of each.
	var corrupt, lost float64
	testpeer.WaitFor(10*time.Second, func() bool {
		corrupt, _ = p.metric("relay_queue_corrupt_records_total")
		lost, _ = p.metric("relay_queue_lost_records_total")
		return corrupt+lost >= 2
	})
	p.stop()
	tally := testpeer.Check("flip", n, upstream.Messages())
	if len(tally.Missing) > 200 {
		t.Errorf("lost %d messages, at most the 2 damaged records (200) may be lost", len(tally.Missing))
	}
	if corrupt != 1 || lost != 1 {
		t.Errorf("relay_queue_corrupt_records_total = %v, relay_queue_lost_records_total = %v; want 1 and 1", corrupt, lost)
	}
	t.Logf("flipped bytes: sent %d, delivered %d, lost %d, duplicates %d, corrupt records counted %v, lost records counted %v",
		n, tally.Delivered(), len(tally.Missing), tally.Duplicates, corrupt, lost)
}

// TestFaultBlackholeMemoryBounded: one upstream accepts and never reads, the
// other is healthy. Under sustained load the healthy one gets everything and
// the relay's peak resident memory stays bounded. It runs a binary built
// without the race detector, whose memory would say nothing.
func TestFaultBlackholeMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test")
	}
	bin := filepath.Join(t.TempDir(), "relay")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	good := testpeer.NewReceiver(t, "127.0.0.1:0")
	dead := testpeer.NewBlackhole(t, "127.0.0.1:0")
	s := newSetup(t, fmt.Sprintf(`
[[output]]
name = "good"
protocol = "tcp"
address = %q
[[output]]
name = "dead"
protocol = "tcp"
address = %q
[[route]]
name = "all"
outputs = ["good", "dead"]
`, good.Addr(), dead.Addr()))
	p := s.start(t, bin)
	const n = 500000
	for from := 0; from < n; from += 50000 {
		if err := testpeer.SendTCP(s.tcpAddr, "bh", from, from+50000, true); err != nil {
			t.Fatal(err)
		}
	}
	if !testpeer.WaitFor(60*time.Second, func() bool { return good.Count() >= n }) {
		t.Fatalf("healthy output got %d of %d", good.Count(), n)
	}
	hwm := vmHWM(t, p.cmd.Process.Pid)
	p.stop()
	t.Logf("blackholed upstream: %d messages, healthy output got all; relay peak RSS %d MiB", n, hwm>>20)
	if hwm > 128<<20 {
		t.Errorf("peak RSS %d MiB, want <= 128 MiB", hwm>>20)
	}
}

// vmHWM reads the peak resident set size of pid.
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM")
	return 0
}
