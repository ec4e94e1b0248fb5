//go:build linux

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relay-syslog/relay/internal/testpeer"
)

// The disk faults: a data dir that fills up, a restart on a full disk, a
// disk that refuses writes while the upstream is healthy, a damaged queue
// file and a queue directory removed under the running relay. A small
// tmpfs gives a real ENOSPC; mounting one needs root, which CI has.

// mountTmpfs mounts a tmpfs of size (e.g. "8m") on dir until the test ends.
func mountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test mounts a tmpfs to fill a disk and must run as root in CI")
		}
		t.Skip("needs root to mount a tmpfs")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size="+size); err != nil {
		t.Fatalf("mount tmpfs on %s: %v", dir, err)
	}
	// Registered before the relay starts, so it runs after the relay was
	// killed; a lazy unmount cannot fail on a busy mount.
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
}

// fillDisk fills the file system of dir with a file until it refuses more.
func fillDisk(t *testing.T, dir string) (remove func()) {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !strings.Contains(err.Error(), "no space left") {
				t.Fatalf("fill %s: %v", dir, err)
			}
			break
		}
	}
	// Whatever the last page left free goes too.
	for {
		if _, err := f.Write(buf[:512]); err != nil {
			break
		}
	}
	f.Close()
	return func() {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	}
}

// tmpFiles counts go-diskqueue's metadata temp files left in dir.
func tmpFiles(dir string) int {
	m, _ := filepath.Glob(filepath.Join(dir, "*.meta.dat.*.tmp"))
	return len(m)
}

// logLines counts the lines the relay has logged so far.
func (p *proc) logLines() int { return strings.Count(p.logs.String(), "\n") }

// cpuSeconds is the CPU time the relay process has used so far.
func (p *proc) cpuSeconds(t *testing.T) float64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	// The fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // USER_HZ
}

// ready reports whether /readyz answers 200.
func (p *proc) ready() bool {
	return testpeer.HTTPGet(strings.TrimSuffix(p.metricsURL, "/metrics")+"/readyz") == "ok\n"
}

// accounted waits until every one of the sent messages of the listener is
// either accepted or counted as dropped, and returns both counts.
func (p *proc) accounted(t *testing.T, sent int) (accepted, dropped float64) {
	t.Helper()
	ok := testpeer.WaitFor(60*time.Second, func() bool {
		accepted, _ = p.metric("relay_messages_accepted_total")
		dropped, _ = p.metric("relay_output_messages_dropped_total")
		return accepted+dropped >= float64(sent)
	})
	if !ok {
		t.Fatalf("of %d messages sent, %v accepted and %v dropped\n%s", sent, accepted, dropped, tail(p.logs.String(), 40))
	}
	return accepted, dropped
}

// fillQueue sends messages of run in chunks until the relay counts drops
// for a full disk, and returns how many it sent.
func fillQueue(t *testing.T, p *proc, addr, run string) int {
	t.Helper()
	const chunk, limit = 5000, 400000
	sent := 0
	for sent < limit {
		if err := testpeer.SendTCP(addr, run, sent, sent+chunk, true); err != nil {
			t.Fatal(err)
		}
		sent += chunk
		p.accounted(t, sent)
		if full, _ := p.metric("relay_output_messages_dropped_total", `reason="disk_full"`); full > 0 {
			return sent
		}
	}
	t.Fatalf("the disk did not fill with %d messages", sent)
	return 0
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestFaultFullDataDir fills the data dir (a tmpfs) while the upstream is
// down, keeps sending into the full disk, then leaves it full and idle.
// go-diskqueue must not leak metadata temp files, a repeating error must
// be logged once per interval with a count rather than once per message,
// the idle relay must use next to no CPU, and when the upstream returns
// every accepted message is delivered and readiness recovers.
func TestFaultFullDataDir(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test")
	}
	upstreamAddr := fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t))
	s := newSetup(t, fmt.Sprintf(`
[[output]]
name = "head"
protocol = "tcp"
address = %q
[[route]]
name = "all"
outputs = ["head"]
`, upstreamAddr))
	data := filepath.Join(s.dir, "data")
	mountTmpfs(t, data, "8m")
	qdir := filepath.Join(data, "head")
	p := s.start(t, relayBin)

	sent := fillQueue(t, p, s.tcpAddr, "full")
	// The disk is full: 50,000 more messages are refused.
	linesBefore := p.logLines()
	began := time.Now()
	const more = 50000
	for end := sent + more; sent < end; sent += 5000 {
		if err := testpeer.SendTCP(s.tcpAddr, "full", sent, sent+5000, true); err != nil {
			t.Fatal(err)
		}
	}
	accepted, dropped := p.accounted(t, sent)
	burstLines, burstTook := p.logLines()-linesBefore, time.Since(began)
	if p.ready() {
		t.Errorf("/readyz answers 200 while the disk refuses writes")
	}

	// Idle on the full disk: a measuring window, not a synchronisation.
	const idle = 5 * time.Second
	linesBefore, cpuBefore := p.logLines(), p.cpuSeconds(t)
	maxTmp := 0
	for i, end := 0, time.Now().Add(idle); time.Now().Before(end); i++ {
		maxTmp = max(maxTmp, tmpFiles(qdir))
		if i%10 == 0 {
			testpeer.HTTPGet(p.metricsURL) // a scraper keeps asking meanwhile
		}
		time.Sleep(100 * time.Millisecond)
	}
	idleLines, idleCPU := p.logLines()-linesBefore, p.cpuSeconds(t)-cpuBefore

	// The upstream comes back: every accepted message arrives.
	upstream := testpeer.NewReceiver(t, upstreamAddr)
	if !testpeer.WaitFor(60*time.Second, func() bool {
		return testpeer.Check("full", sent, upstream.Messages()).Delivered() >= int(accepted)
	}) {
		t.Fatalf("accepted %v, %v\n%s", accepted, testpeer.Check("full", sent, upstream.Messages()), tail(p.logs.String(), 40))
	}
	if !testpeer.WaitFor(30*time.Second, p.ready) {
		t.Errorf("/readyz still not ready after the backlog was sent")
	}
	p.stop()
	leftTmp := tmpFiles(qdir)
	tally := testpeer.Check("full", sent, upstream.Messages())

	t.Logf("full data dir: sent %d, accepted %v, delivered %d, counted drops %v, missing %d; "+
		"%d log lines in %.1fs while %d messages were refused; idle on the full disk: %.1f log lines/s, "+
		"%.2f CPU-s in %v, up to %d metadata temp files; %d left after the stop",
		sent, accepted, tally.Delivered(), dropped, len(tally.Missing),
		burstLines, burstTook.Seconds(), more, float64(idleLines)/idle.Seconds(),
		idleCPU, idle, maxTmp, leftTmp)
	if float64(len(tally.Missing)) != dropped {
		t.Errorf("%d messages missing, %v counted as dropped", len(tally.Missing), dropped)
	}
	if burstLines > 20 {
		t.Errorf("%d log lines while the full disk refused %d messages, want a few (one per interval, with a count)", burstLines, more)
	}
	// The worker's retry line (every retry_max, 5 s) and the summaries of
	// the repeating errors (every 10 s) are what may appear.
	if idleLines > 10 {
		t.Errorf("%d log lines in %v idle on the full disk, want at most 10", idleLines, idle)
	}
	if idleCPU > 0.5 {
		t.Errorf("%.2f CPU-s used in %v idle on the full disk, want near idle", idleCPU, idle)
	}
	if maxTmp > 2 || leftTmp > 0 {
		t.Errorf("metadata temp files: up to %d while full, %d after the stop; want at most 2 and 0", maxTmp, leftTmp)
	}
}

// lostAtStop sums the messages the relay's stop log says it could not
// keep (held in memory while the disk refused them).
func lostAtStop(logs string) int {
	n := 0
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, "reason=lost_at_stop") {
			continue
		}
		if i := strings.Index(line, " dropped="); i >= 0 {
			v, _ := strconv.Atoi(strings.Fields(line[i+len(" dropped="):])[0])
			n += v
		}
	}
	return n
}

// TestFaultRestartOnFullDisk fills the data dir with the relay's own
// backlog while the upstream is down, stops the relay and starts it again
// on the full disk. It must start, answer /readyz with 503, and once the
// upstream is back send the backlog, become ready and take new messages.
func TestFaultRestartOnFullDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test")
	}
	upstreamAddr := fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t))
	s := newSetup(t, headOutputTOML(upstreamAddr))
	data := filepath.Join(s.dir, "data")
	mountTmpfs(t, data, "8m")
	p := s.start(t, relayBin)
	sent := fillQueue(t, p, s.tcpAddr, "restart")
	accepted, dropped := p.accounted(t, sent)
	p.stop()
	lost := lostAtStop(p.logs.String())
	var st syscall.Statfs_t
	if err := syscall.Statfs(data, &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * st.Bsize

	// The upstream is still down: the relay starts and is not ready.
	p = s.start(t, relayBin)
	if p.ready() {
		t.Errorf("/readyz answers 200 on a full disk")
	}
	upstream := testpeer.NewReceiver(t, upstreamAddr)
	want := int(accepted) - lost
	if !testpeer.WaitFor(60*time.Second, func() bool {
		return testpeer.Check("restart", sent, upstream.Messages()).Delivered() >= want
	}) {
		t.Fatalf("backlog after the restart: %v, want %d delivered\n%s", testpeer.Check("restart", sent, upstream.Messages()), want, tail(p.logs.String(), 40))
	}
	if !testpeer.WaitFor(30*time.Second, p.ready) {
		t.Errorf("/readyz not ready after the backlog was sent:\n%s", tail(p.logs.String(), 20))
	}
	const after = 5000
	if err := testpeer.SendTCP(s.tcpAddr, "after", 0, after, true); err != nil {
		t.Fatal(err)
	}
	if !testpeer.WaitFor(60*time.Second, func() bool {
		return testpeer.Check("after", after, upstream.Messages()).Delivered() == after
	}) {
		t.Errorf("new messages after the drain: %v", testpeer.Check("after", after, upstream.Messages()))
	}
	p.stop()
	tally := testpeer.Check("restart", sent, upstream.Messages())
	t.Logf("restart on a full disk (%d bytes free): sent %d, accepted %v, delivered %d, counted drops %v + %d lost at the first stop, missing %d, duplicates %d",
		free, sent, accepted, tally.Delivered(), dropped, lost, len(tally.Missing), tally.Duplicates)
	if len(tally.Missing) != int(dropped)+lost {
		t.Errorf("%d messages missing, %v dropped and %d lost at stop counted", len(tally.Missing), dropped, lost)
	}
}

// TestFaultDiskRefusesUpstreamHealthy fills the disk under a relay whose
// upstream is healthy: the records the disk refuses are delivered from
// memory, every message is either delivered or counted as dropped, and
// nothing is lost at the stop.
func TestFaultDiskRefusesUpstreamHealthy(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test")
	}
	upstream := testpeer.NewReceiver(t, "127.0.0.1:0")
	s := newSetup(t, headOutputTOML(upstream.Addr()))
	data := filepath.Join(s.dir, "data")
	mountTmpfs(t, data, "8m")
	p := s.start(t, relayBin)
	fillDisk(t, data)

	const n, chunk = 20000, 1000
	for from := 0; from < n; from += chunk {
		if err := testpeer.SendTCP(s.tcpAddr, "mem", from, from+chunk, true); err != nil {
			t.Fatal(err)
		}
	}
	accepted, dropped := p.accounted(t, n)
	delivered := func() int { return testpeer.Check("mem", n, upstream.Messages()).Delivered() }
	if !testpeer.WaitFor(30*time.Second, func() bool { return delivered() >= int(accepted) }) {
		t.Errorf("accepted %v while the disk refused writes, delivered %d; the rest waits in memory", accepted, delivered())
	}
	// Everything handed to the upstream is confirmed before the stop.
	testpeer.WaitFor(10*time.Second, func() bool {
		d, _ := p.metric("relay_queue_depth_records")
		u, _ := p.metric("relay_queue_unwritten_messages")
		return d == 0 && u == 0
	})
	p.stop()
	lost := lostAtStop(p.logs.String())
	tally := testpeer.Check("mem", n, upstream.Messages())
	t.Logf("disk refuses writes, upstream healthy: sent %d, accepted %v, delivered %d, counted drops %v, lost at stop %d (counted), missing %d",
		n, accepted, tally.Delivered(), dropped, lost, len(tally.Missing))
	if len(tally.Missing) != int(dropped)+lost {
		t.Errorf("%d messages missing, %v dropped and %d lost at stop counted", len(tally.Missing), dropped, lost)
	}
	if lost > 0 {
		t.Errorf("%d accepted messages lost at the stop although the upstream took everything", lost)
	}
}

// TestFaultTruncatedQueueFile cuts a stopped relay's queue file to 60 %
// and to 0.1 % of its size. What the cut removed is lost, and must be
// counted: relay_queue_lost_records_total (each record holds 100 messages
// here) and relay_queue_lost_bytes_total.
func TestFaultTruncatedQueueFile(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test")
	}
	for _, cut := range []float64{0.6, 0.001} {
		t.Run(fmt.Sprintf("cut to %g percent", cut*100), func(t *testing.T) {
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
[[route]]
name = "all"
outputs = ["head"]
`, upstreamAddr))
			const n = 50000 // 500 records of 100 messages
			p := s.start(t, relayBin)
			if err := testpeer.SendTCP(s.tcpAddr, "cut", 0, n, true); err != nil {
				t.Fatal(err)
			}
			if !testpeer.WaitFor(30*time.Second, func() bool {
				d, _ := p.metric("relay_queue_depth_records")
				return d == n/100
			}) {
				t.Fatalf("queue not filled:\n%s", p.logs.String())
			}
			p.stop()

			file := filepath.Join(s.dir, "data", "head", "head.diskqueue.000000.dat")
			fi, err := os.Stat(file)
			if err != nil {
				t.Fatal(err)
			}
			size := int64(float64(fi.Size()) * cut)
			if err := os.Truncate(file, size); err != nil {
				t.Fatal(err)
			}

			upstream := testpeer.NewReceiver(t, upstreamAddr)
			p = s.start(t, relayBin)
			var lostRecords, lostBytes float64
			settled := testpeer.WaitFor(30*time.Second, func() bool {
				d, _ := p.metric("relay_queue_depth_records")
				sentTotal, _ := p.metric("relay_output_messages_sent_total")
				lostRecords, _ = p.metric("relay_queue_lost_records_total")
				lostBytes, _ = p.metric("relay_queue_lost_bytes_total")
				missing := n - testpeer.Check("cut", n, upstream.Messages()).Delivered()
				return d == 0 && upstream.Count() == int(sentTotal) && float64(missing) <= lostRecords*100
			})
			corrupt, _ := p.metric("relay_queue_corrupt_records_total")
			p.stop()
			tally := testpeer.Check("cut", n, upstream.Messages())
			t.Logf("queue file cut to %d of %d bytes: sent %d, delivered %d, missing %d; counted: %v records lost (%v messages), %v bytes lost, %v corrupt records",
				size, fi.Size(), n, tally.Delivered(), len(tally.Missing), lostRecords, lostRecords*100, lostBytes, corrupt)
			if !settled || float64(len(tally.Missing)) != lostRecords*100 {
				t.Errorf("%d messages missing, relay_queue_lost_records_total = %v (x 100 messages)", len(tally.Missing), lostRecords)
			}
			if lostBytes < float64(fi.Size()-size)*0.9 {
				t.Errorf("relay_queue_lost_bytes_total = %v, the cut removed %d bytes", lostBytes, fi.Size()-size)
			}
		})
	}
}

// removeDir removes dir and everything in it, as an operator's rm -rf
// would; a file the relay creates meanwhile makes it try again.
func removeDir(t *testing.T, dir string) {
	t.Helper()
	var err error
	for range 10 {
		if err = os.RemoveAll(dir); err == nil {
			return
		}
	}
	t.Fatal(err)
}

// TestFaultQueueDirRemoved removes the queue directory of a running relay
// that holds a backlog for a dead upstream. The relay creates it again,
// keeps the backlog (go-diskqueue still held the files open), reports its
// size truthfully, stores new messages, and a restart finds everything.
// Once the upstream is back, everything arrives; the directory is removed
// once more while messages flow, and delivery goes on.
func TestFaultQueueDirRemoved(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test")
	}
	upstreamAddr := fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t))
	s := newSetup(t, headOutputTOML(upstreamAddr))
	qdir := filepath.Join(s.dir, "data", "head")
	written := func(p *proc) bool {
		u, _ := p.metric("relay_queue_unwritten_messages")
		return u == 0
	}
	p := s.start(t, relayBin)
	const first, second, third = 30000, 20000, 20000
	if err := testpeer.SendTCP(s.tcpAddr, "rm", 0, first, true); err != nil {
		t.Fatal(err)
	}
	p.accounted(t, first)
	testpeer.WaitFor(10*time.Second, func() bool { return written(p) })
	backlog, _ := p.metric("relay_queue_disk_bytes")

	removeDir(t, qdir)
	var diskBytes float64
	if !testpeer.WaitFor(30*time.Second, func() bool {
		diskBytes, _ = p.metric("relay_queue_disk_bytes")
		_, err := os.Stat(qdir)
		return err == nil && diskBytes >= backlog
	}) {
		t.Errorf("after removing the queue directory: relay_queue_disk_bytes = %v, %v before", diskBytes, backlog)
	}
	for from := first; from < first+second; from += 5000 {
		if err := testpeer.SendTCP(s.tcpAddr, "rm", from, from+5000, true); err != nil {
			t.Fatal(err)
		}
	}
	p.accounted(t, first+second)
	testpeer.WaitFor(10*time.Second, func() bool { return written(p) })
	p.stop()

	// A restart finds the backlog in the new directory.
	p = s.start(t, relayBin)
	upstream := testpeer.NewReceiver(t, upstreamAddr)
	const n = first + second
	if !testpeer.WaitFor(60*time.Second, func() bool { return testpeer.Check("rm", n, upstream.Messages()).Delivered() == n }) {
		t.Errorf("after the removal and a restart: %v\n%s", testpeer.Check("rm", n, upstream.Messages()), tail(p.logs.String(), 30))
	}

	// Removed again while messages flow to a healthy upstream.
	removeDir(t, qdir)
	for from := 0; from < third; from += 2000 {
		if err := testpeer.SendTCP(s.tcpAddr, "rm2", from, from+2000, true); err != nil {
			t.Fatal(err)
		}
	}
	accepted, dropped := p.accounted(t, third)
	if !testpeer.WaitFor(60*time.Second, func() bool { return testpeer.Check("rm2", third, upstream.Messages()).Delivered() == third }) {
		t.Errorf("removed while delivering: %v\n%s", testpeer.Check("rm2", third, upstream.Messages()), tail(p.logs.String(), 30))
	}
	p.stop()
	if dropped != 0 {
		t.Errorf("%v messages refused after the directory was removed, want 0", dropped)
	}
	tally, tally2 := testpeer.Check("rm", n, upstream.Messages()), testpeer.Check("rm2", third, upstream.Messages())
	t.Logf("queue directory removed with a backlog: sent %d, delivered %d (after a restart), missing %d, duplicates %d; relay_queue_disk_bytes %v before the removal, %v after",
		n, tally.Delivered(), len(tally.Missing), tally.Duplicates, backlog, diskBytes)
	t.Logf("removed while delivering: sent %d, accepted %v, counted drops %v, delivered %d, missing %d, duplicates %d",
		third, accepted, dropped, tally2.Delivered(), len(tally2.Missing), tally2.Duplicates)
}
