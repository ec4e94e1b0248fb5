package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/relay-syslog/relay/internal/testpeer"
)

// Reloads under load: SIGHUP while senders stream, counting what reaches
// the upstream once, twice or never.

// reload rewrites the configuration with every old → new replacement
// applied, sends SIGHUP and waits until the relay reports the reload a
// success.
func (p *proc) reload(t *testing.T, s relaySetup, replacements ...string) {
	t.Helper()
	b, err := os.ReadFile(s.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.NewReplacer(replacements...).Replace(string(b))
	if err := os.WriteFile(s.cfgPath, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	before, _ := p.metric("relay_config_reloads_total", `result="success"`)
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if !testpeer.WaitFor(30*time.Second, func() bool {
		n, _ := p.metric("relay_config_reloads_total", `result="success"`)
		return n > before
	}) {
		failed, _ := p.metric("relay_config_reloads_total", `result="failure"`)
		t.Fatalf("reload not applied (%v failed):\n%s", failed, p.logs.String())
	}
}

// streamer is a bounded TCP sender of sequence-numbered messages that keeps
// its connection open, as syslog senders do: it writes batches, at most
// 100,000 messages a second, until told to stop or until max messages are
// written. A batch whose write fails is
// written again on a new connection; what was written before is never
// resent, so a relay that drops what its kernel accepted shows gaps.
type streamer struct {
	addr, run string
	max       int
	stop      chan struct{}
	done      chan struct{}

	mu      sync.Mutex
	sent    int // messages 0..sent-1 were written
	redials int
	err     error
}

func startStreamer(addr, run string, max int) *streamer {
	s := &streamer{addr: addr, run: run, max: max, stop: make(chan struct{}), done: make(chan struct{})}
	go s.loop()
	return s
}

const streamBatch = 200

func (s *streamer) loop() {
	defer close(s.done)
	deadline := time.Now().Add(3 * time.Minute)
	var c net.Conn
	var w *bufio.Writer
	defer func() {
		if c != nil {
			// Every byte written is read by the relay before it closes.
			if err := closeStream(c); err != nil {
				s.fail(fmt.Errorf("final close: %w", err))
			}
		}
	}()
	for from := 0; from < s.max && time.Now().Before(deadline); {
		select {
		case <-s.stop:
			return
		default:
		}
		if c == nil {
			var err error
			if c, err = net.DialTimeout("tcp", s.addr, 5*time.Second); err != nil {
				// Refused while a listener is rebound: try again.
				time.Sleep(10 * time.Millisecond)
				continue
			}
			w = bufio.NewWriterSize(c, 64<<10)
		}
		to := min(from+streamBatch, s.max)
		for i := from; i < to; i++ {
			m := testpeer.SeqMessage(s.run, i)
			fmt.Fprintf(w, "%d %s", len(m), m)
		}
		if err := w.Flush(); err != nil {
			c.Close()
			c = nil
			s.mu.Lock()
			s.redials++
			s.mu.Unlock()
			continue
		}
		from = to
		time.Sleep(2 * time.Millisecond) // at most 100,000 messages a second
		s.mu.Lock()
		s.sent = from
		s.mu.Unlock()
	}
	if time.Now().After(deadline) {
		s.fail(errors.New("sender ran out of time"))
	}
}

func closeStream(c net.Conn) error {
	defer c.Close()
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return err
	}
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	var b [1]byte
	if _, err := c.Read(b[:]); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

func (s *streamer) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
	}
}

// finish stops the sender and returns how many messages it wrote.
func (s *streamer) finish(t *testing.T) int {
	t.Helper()
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		t.Errorf("sender %s: %v", s.run, s.err)
	}
	t.Logf("sender %s: wrote %d messages, opened a new connection after a failed write %d times", s.run, s.sent, s.redials)
	return s.sent
}

func (s *streamer) written() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent
}

// reloadUnderLoad runs two streamers against the relay's TCP listener and
// applies reloads one after another, each once the senders have written
// more; it returns the runs and how many messages each wrote.
func reloadUnderLoad(t *testing.T, p *proc, s relaySetup, reloads int, variant func(i int) []string) map[string]int {
	t.Helper()
	senders := []*streamer{startStreamer(s.tcpAddr, "a", 2_000_000), startStreamer(s.tcpAddr, "b", 2_000_000)}
	for i := range reloads {
		before := senders[0].written() + senders[1].written()
		if !testpeer.WaitFor(30*time.Second, func() bool { return senders[0].written()+senders[1].written() >= before+2*streamBatch }) {
			t.Fatalf("reload %d: the senders are stuck at %d", i, before)
		}
		p.reload(t, s, variant(i)...)
	}
	sent := map[string]int{}
	for _, snd := range senders {
		sent[snd.run] = snd.finish(t)
	}
	return sent
}

// tallyRuns waits until every run's messages arrived (or 60 s pass) and
// returns the tallies.
func tallyRuns(t *testing.T, up *testpeer.Receiver, sent map[string]int) map[string]testpeer.Tally {
	t.Helper()
	all := func() map[string]testpeer.Tally {
		msgs := up.Messages()
		ts := map[string]testpeer.Tally{}
		for run, n := range sent {
			ts[run] = testpeer.Check(run, n, msgs)
		}
		return ts
	}
	testpeer.WaitFor(60*time.Second, func() bool {
		for _, tally := range all() {
			if len(tally.Missing) > 0 {
				return false
			}
		}
		return true
	})
	return all()
}

// TestFaultReloadTCPListener: 50 reloads that change the TCP listener's
// max_connections and idle_timeout while two senders stream over kept
// connections. Nothing the senders wrote is lost: the listener takes the
// settings in place and keeps its socket and its connections.
func TestFaultReloadTCPListener(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test")
	}
	up := testpeer.NewReceiver(t, "127.0.0.1:0")
	s := newSetup(t, fmt.Sprintf(`max_connections = 100
idle_timeout = "60s"
[[output]]
name = "head"
protocol = "tcp"
address = %q
[[route]]
name = "all"
outputs = ["head"]
`, up.Addr()))
	p := s.start(t, relayBin)
	sent := reloadUnderLoad(t, p, s, 50, func(i int) []string {
		if i%2 == 0 {
			return []string{"max_connections = 100", "max_connections = 101", `idle_timeout = "60s"`, `idle_timeout = "61s"`}
		}
		return []string{"max_connections = 101", "max_connections = 100", `idle_timeout = "61s"`, `idle_timeout = "60s"`}
	})
	tallies := tallyRuns(t, up, sent)
	accepted, _ := p.metric("relay_messages_accepted_total")
	p.stop()
	total, delivered, dups := 0, 0, 0
	for run, tally := range tallies {
		total += sent[run]
		delivered += tally.Delivered()
		dups += tally.Duplicates
		if len(tally.Missing) > 0 {
			t.Errorf("run %s: %v", run, tally)
		}
	}
	t.Logf("50 listener reloads under load: sent %d, accepted %v, delivered %d, lost %d, duplicates %d",
		total, accepted, delivered, total-delivered, dups)
}

// TestFaultReloadOutput: 50 reloads that change the output's confirm_delay
// while two senders stream. Nothing is lost, and every message the upstream
// got twice was counted as resent: the replaced worker lets the upstream
// confirm what it wrote before it hands over the rest.
func TestFaultReloadOutput(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test")
	}
	up := testpeer.NewReceiver(t, "127.0.0.1:0")
	s := newSetup(t, fmt.Sprintf(`
[[output]]
name = "head"
protocol = "tcp"
address = %q
confirm_delay = "50ms"
[[route]]
name = "all"
outputs = ["head"]
`, up.Addr()))
	p := s.start(t, relayBin)
	sent := reloadUnderLoad(t, p, s, 50, func(i int) []string {
		if i%2 == 0 {
			return []string{`confirm_delay = "50ms"`, `confirm_delay = "60ms"`}
		}
		return []string{`confirm_delay = "60ms"`, `confirm_delay = "50ms"`}
	})
	tallies := tallyRuns(t, up, sent)
	resent, _ := p.metric("relay_output_messages_resent_total")
	p.stop()
	total, delivered, dups := 0, 0, 0
	for run, tally := range tallies {
		total += sent[run]
		delivered += tally.Delivered()
		dups += tally.Duplicates
		if len(tally.Missing) > 0 {
			t.Errorf("run %s: %v", run, tally)
		}
	}
	t.Logf("50 output reloads under load: sent %d, delivered %d, duplicates %d, resent counted %v", total, delivered, dups, resent)
	if float64(dups) > resent {
		t.Errorf("%d duplicates arrived, but relay_output_messages_resent_total = %v: resends went uncounted", dups, resent)
	}
}

// TestReloadRefusesSocketConflicts: a configuration whose listeners could
// not all bind — a second listener on the TCP listener's address, one on
// the metrics address, two unix listeners on one path — is refused by
// -check-config and by a reload, each problem with its key and line; the
// running relay keeps serving on its old configuration.
func TestReloadRefusesSocketConflicts(t *testing.T) {
	up := testpeer.NewReceiver(t, "127.0.0.1:0")
	s := newSetup(t, fmt.Sprintf(`
[[output]]
name = "head"
protocol = "tcp"
address = %q
[[route]]
name = "all"
outputs = ["head"]
`, up.Addr()))
	p := s.start(t, relayBin)
	good, err := os.ReadFile(s.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(s.dir, "log.sock")
	metricsAddr := strings.TrimSuffix(strings.TrimPrefix(s.metricsURL, "http://"), "/metrics")
	// The listeners below start on the line after the good file's last.
	n := strings.Count(string(good), "\n")
	bad := string(good) + fmt.Sprintf(`[[listener]]
name = "udp-twin"
protocol = "udp"
address = %[1]q
[[listener]]
name = "tcp-twin"
protocol = "relp"
address = %[1]q
[[listener]]
name = "on-metrics"
protocol = "tcp"
address = %[2]q
[[listener]]
name = "devlog"
protocol = "unix"
address = %[3]q
[[listener]]
name = "devlog-twin"
protocol = "unix"
address = %[3]q
`, s.tcpAddr, metricsAddr, sock)
	want := []string{
		fmt.Sprintf(`line %d: listener[2].address: %q overlaps the tcp address of listener[0].address on line 7`, n+8, s.tcpAddr),
		fmt.Sprintf(`line %d: listener[3].address: %q overlaps the metrics address (metrics.address on line 3)`, n+12, metricsAddr),
		fmt.Sprintf(`line %d: listener[5].address: socket path %q is also used by listener[4].address on line %d`, n+20, sock, n+16),
	}
	badPath := filepath.Join(s.dir, "bad.toml")
	if err := os.WriteFile(badPath, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := runRelay(t, "-check-config", "-config", badPath)
	if code != 1 {
		t.Errorf("-check-config exit %d, want 1; stderr %q", code, errOut)
	}
	for _, w := range want {
		if !strings.Contains(errOut, w) {
			t.Errorf("-check-config does not report %q:\n%s", w, errOut)
		}
	}
	if strings.Contains(errOut, fmt.Sprintf("line %d:", n+4)) {
		t.Errorf("udp and tcp on one address reported as a conflict:\n%s", errOut)
	}

	if err := os.WriteFile(s.cfgPath, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if !testpeer.WaitFor(30*time.Second, func() bool {
		n, _ := p.metric("relay_config_reloads_total", `result="failure"`)
		return n == 1
	}) {
		t.Fatalf("the reload was not refused:\n%s", p.logs.String())
	}
	for _, w := range want {
		if !strings.Contains(p.logs.String(), strings.ReplaceAll(w, `"`, `\"`)) {
			t.Errorf("the refused reload's log does not report %q:\n%s", w, p.logs.String())
		}
	}
	if err := testpeer.SendTCP(s.tcpAddr, "still", 0, 100, true); err != nil {
		t.Fatal(err)
	}
	if !testpeer.WaitFor(20*time.Second, func() bool { return up.Count() >= 100 }) {
		t.Errorf("after the refused reload the upstream got %d of 100", up.Count())
	}
	p.stop()
}
