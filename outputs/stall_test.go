package outputs

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relay-syslog/relay/internal/testfixture"
	"github.com/relay-syslog/relay/internal/testpeer"
	"github.com/relay-syslog/relay/metrics"
)

// startWorker runs a Worker with opts (Name "out" and short retries unless
// set) until the test ends, logging into logs.
func startWorker(t *testing.T, opts WorkerOptions, q Queue, dest Destination, logs *lockedBuffer) *metrics.Metrics {
	t.Helper()
	m, err := metrics.New(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	opts.Name = "out"
	if opts.RetryInitial == 0 {
		opts.RetryInitial, opts.RetryMax = 10*time.Millisecond, 100*time.Millisecond
	}
	w := NewWorker(opts, q, dest, m, slog.New(slog.NewTextHandler(logs, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return m
}

// TestWorkerReportsStall: an upstream that accepts and reads nothing makes
// the output read as down, with one log line, within StallTimeout of its
// last confirmation, whether the worker is blocked in a write (a backlog
// larger than the socket buffers) or waiting for confirmations (a small
// one). Reconnects during the stall do not count as a recovery; reading
// again does.
func TestWorkerReportsStall(t *testing.T) {
	for _, c := range []struct {
		name string
		n    int
	}{{"blocked-write", 100000}, {"waiting", 5000}} {
		t.Run(c.name, func(t *testing.T) {
			recv := testpeer.NewStalledReceiver(t, "127.0.0.1:0")
			q := newTestQueue(t)
			fill(t, q, "st", c.n)
			d := tcpDest(recv.Addr())
			// A receiver that never reads acknowledges what fits in its
			// socket buffer with its window open; the relay must fill that
			// buffer (closing the window) within confirm_delay, or the
			// first records count as confirmed. On a busy machine 50 ms
			// is too short for that.
			d.opts.ConfirmDelay = 500 * time.Millisecond
			d.opts.WriteTimeout = 2 * time.Second
			logs := &lockedBuffer{}
			m := startWorker(t, WorkerOptions{StallTimeout: 2 * time.Second}, q, d, logs)
			up := m.OutputUp.WithLabelValues("out")
			last := m.OutputLastDelivery.WithLabelValues("out")
			if !testpeer.WaitFor(30*time.Second, func() bool {
				return testfixture.CollectorSum(t, up) == 0 && strings.Contains(logs.String(), "stopped delivering")
			}) {
				t.Fatalf("a stalled upstream still reads as up:\n%s", logs.String())
			}
			stalledAt := testfixture.CollectorSum(t, last)
			// Several stall timeouts, each ending in a reconnect.
			errs := m.OutputErrors.WithLabelValues("out")
			before := testfixture.CollectorSum(t, errs)
			if !testpeer.WaitFor(30*time.Second, func() bool { return testfixture.CollectorSum(t, errs) >= before+3 }) {
				t.Fatalf("no reconnects during the stall:\n%s", logs.String())
			}
			if v := testfixture.CollectorSum(t, up); v != 0 {
				t.Errorf("relay_output_up = %v during the stall", v)
			}
			if v := testfixture.CollectorSum(t, last); v != stalledAt {
				t.Errorf("last delivery moved from %v to %v during the stall", stalledAt, v)
			}
			if strings.Contains(logs.String(), "resumed") {
				t.Errorf("a recovery was logged during the stall:\n%s", logs.String())
			}
			recv.StartReading()
			// Every reconnect during the stall left a socket buffer of
			// messages in the receiver, which it now reads too: on a busy
			// machine that takes a while.
			if !testpeer.WaitFor(120*time.Second, func() bool {
				return testpeer.Check("st", c.n, recv.Messages()).Delivered() == c.n && q.Depth() == 0
			}) {
				t.Fatalf("after the stall: %v, depth %d\n%s", testpeer.Check("st", c.n, recv.Messages()), q.Depth(), logs.String())
			}
			if testfixture.CollectorSum(t, up) != 1 || !strings.Contains(logs.String(), "resumed delivering") {
				t.Errorf("no recovery reported (up %v):\n%s", testfixture.CollectorSum(t, up), logs.String())
			}
			if v := testfixture.CollectorSum(t, last); v <= stalledAt {
				t.Errorf("last delivery %v, not after the stall's %v", v, stalledAt)
			}
		})
	}
}

// TestWorkerSlowUpstreamIsNoStall: an upstream that reads steadily but
// slower than the output could send keeps its socket buffer full, and its
// receive window mostly closed; it is not stalled. Nothing is resent.
func TestWorkerSlowUpstreamIsNoStall(t *testing.T) {
	recv := testpeer.NewSlowReceiver(t, "127.0.0.1:0", 8<<10, 10*time.Millisecond) // about 800 KB/s
	q := newTestQueue(t)
	const n = 40000 // about 4.5 MB: several seconds
	fill(t, q, "sl", n)
	logs := &lockedBuffer{}
	// The receiver reads every 10 ms; a stall timeout of seconds tells it
	// from a stalled one even when a busy machine delays its reads.
	m := startWorker(t, WorkerOptions{StallTimeout: 5 * time.Second}, q, tcpDest(recv.Addr()), logs)
	if !testpeer.WaitFor(60*time.Second, func() bool { return recv.Count() >= n && q.Depth() == 0 }) {
		t.Fatalf("received %d of %d, depth %d\n%s", recv.Count(), n, q.Depth(), logs.String())
	}
	if errs := testfixture.CollectorSum(t, m.OutputErrors); errs != 0 {
		t.Errorf("%v send errors against a slow upstream:\n%s", errs, logs.String())
	}
	if tally := testpeer.Check("sl", n, recv.Messages()); len(tally.Missing) > 0 || tally.Duplicates > 0 {
		t.Errorf("%v", tally)
	}
}

// TestWorkerProgressesAgainstSessionCap: an upstream that resets every
// session after 512 KiB. The unconfirmed window shrinks until sessions carry
// new messages; everything arrives, and every duplicate is counted.
func TestWorkerProgressesAgainstSessionCap(t *testing.T) {
	up := testpeer.NewSessionCap(t, "127.0.0.1:0", 512<<10)
	q := newTestQueue(t)
	const n = 30000 // about 3.4 MB
	fill(t, q, "cap", n)
	d := tcpDest(up.Addr())
	// Longer than the reader may lag behind its kernel on a busy machine:
	// what is confirmed must have been read before the reset.
	d.opts.ConfirmDelay = 500 * time.Millisecond
	logs := &lockedBuffer{}
	m := startWorker(t, WorkerOptions{StallTimeout: 10 * time.Second}, q, d, logs)
	if !testpeer.WaitFor(90*time.Second, func() bool { return testpeer.Check("cap", n, up.Messages()).Delivered() == n }) {
		t.Fatalf("%v after %d sessions\n%s", testpeer.Check("cap", n, up.Messages()), up.Resets(), logs.String())
	}
	tally := testpeer.Check("cap", n, up.Messages())
	resent := testfixture.CollectorSum(t, m.OutputResent)
	window := testfixture.CollectorSum(t, m.OutputWindow)
	t.Logf("sessions capped at 512 KiB: %d messages, %d sessions, duplicates %d, resent %v, window now %v",
		n, up.Resets(), tally.Duplicates, resent, window)
	if float64(tally.Duplicates) > resent {
		t.Errorf("%d duplicates, %v counted as resent", tally.Duplicates, resent)
	}
	if window >= DefaultMaxUnsettledBytes {
		t.Errorf("unconfirmed window %v, want it shrunk", window)
	}
	if !strings.Contains(logs.String(), "sending less at a time") {
		t.Errorf("the shrinking window was not logged:\n%s", logs.String())
	}
}
