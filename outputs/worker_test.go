package outputs

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/relay-syslog/relay/internal/testfixture"
	"github.com/relay-syslog/relay/internal/testpeer"
	"github.com/relay-syslog/relay/metrics"
	"github.com/relay-syslog/relay/queue"
)

func newTestQueue(t *testing.T) *queue.Queue {
	t.Helper()
	q, err := queue.Open(queue.Options{Name: "out", Dir: filepath.Join(t.TempDir(), "out"), BatchMessages: 100})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

func fill(t *testing.T, q *queue.Queue, run string, n int) {
	t.Helper()
	testfixture.AppendSeq(t, q, run, 0, n)
}

// runWorker runs a Worker until the test ends and returns its metrics.
func runWorker(t *testing.T, q Queue, dest Destination) *metrics.Metrics {
	t.Helper()
	m, err := metrics.New(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	w := NewWorker(WorkerOptions{Name: "out", RetryInitial: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond},
		q, dest, m, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return m
}

func tcpDest(addr string) *TCP {
	return NewTCP(TCPOptions{Address: addr, ConnectTimeout: time.Second, WriteTimeout: 5 * time.Second, ConfirmDelay: 50 * time.Millisecond})
}

// TestWorkerDeliversAndSettles: everything arrives once, and every batch is
// given back to the queue once confirmed.
func TestWorkerDeliversAndSettles(t *testing.T) {
	t.Parallel()
	for _, framing := range []Framing{OctetCounting, LF} {
		t.Run(fmt.Sprint(framing), func(t *testing.T) {
			recv := testpeer.NewReceiver(t, "127.0.0.1:0")
			q := newTestQueue(t)
			fill(t, q, "w", 20000)
			d := tcpDest(recv.Addr())
			d.opts.Framing = framing
			runWorker(t, q, d)
			if !testpeer.WaitFor(30*time.Second, func() bool { return recv.Count() >= 20000 }) {
				t.Fatalf("received %d of 20000", recv.Count())
			}
			if !testpeer.WaitFor(30*time.Second, func() bool { return q.Depth() == 0 }) {
				t.Errorf("queue depth %d after delivery, want 0: batches not settled", q.Depth())
			}
			if tally := testpeer.Check("w", 20000, recv.Messages()); len(tally.Missing) > 0 || tally.Duplicates > 0 {
				t.Errorf("%v", tally)
			}
		})
	}
}

// TestWorkerResendsAfterReset: an upstream that reads a little and then
// resets its connection (SO_LINGER 0), dropping whatever sits unread in its
// socket buffer as a crashing upstream does, loses nothing: unconfirmed
// batches go out again on the next connection.
func TestWorkerResendsAfterReset(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		// First connection: read a little, then reset.
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_, _ = io.ReadFull(c, make([]byte, 50000))
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
		ln.Close()
	}()
	q := newTestQueue(t)
	fill(t, q, "r", 20000)
	// The confirmation window must outlast the reader's pause, as it does
	// for a live upstream that reads promptly: bytes its kernel
	// acknowledged but it never read are what the reset throws away.
	d := tcpDest(addr)
	d.opts.ConfirmDelay = 5 * time.Second
	m := runWorker(t, q, d)
	<-done
	// The partial first connection's bytes are discarded here: with a reset
	// nothing of it counts. A fresh receiver on the same port takes over.
	recv := testpeer.NewReceiver(t, addr)
	if !testpeer.WaitFor(20*time.Second, func() bool { return testpeer.Check("r", 20000, recv.Messages()).Delivered() == 20000 }) {
		t.Fatalf("after reset: %v", testpeer.Check("r", 20000, recv.Messages()))
	}
	resent := testfixture.CollectorSum(t, m.OutputResent)
	errs := testfixture.CollectorSum(t, m.OutputErrors)
	if errs < 1 {
		t.Errorf("send errors = %v, want >= 1", errs)
	}
	t.Logf("resent %v messages after the reset", resent)
}

// TestWorkerWaitsForUpstream: with no upstream at first, the worker retries
// with backoff and delivers everything once one appears.
func TestWorkerWaitsForUpstream(t *testing.T) {
	port := testpeer.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	q := newTestQueue(t)
	fill(t, q, "u", 1000)
	m := runWorker(t, q, tcpDest(addr))
	if !testpeer.WaitFor(5*time.Second, func() bool { return testfixture.CollectorSum(t, m.OutputErrors) >= 3 }) {
		t.Fatalf("no retries counted while the upstream was down")
	}
	recv := testpeer.NewReceiver(t, addr)
	if !testpeer.WaitFor(10*time.Second, func() bool { return recv.Count() >= 1000 }) {
		t.Fatalf("received %d of 1000 after the upstream came up", recv.Count())
	}
	if tally := testpeer.Check("u", 1000, recv.Messages()); len(tally.Missing) > 0 || tally.Duplicates > 0 {
		t.Errorf("%v", tally)
	}
}

func TestFileDestination(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sub", "out.log")
	q := newTestQueue(t)
	if err := q.Append(queue.Entry{Data: []byte("<13>one\ntwo")}); err != nil {
		t.Fatal(err)
	}
	fill(t, q, "f", 10)
	f := NewFile(path)
	f.rotateCheck = 0 // look for rotation before every batch
	runWorker(t, q, f)
	if !testpeer.WaitFor(30*time.Second, func() bool { return len(testpeer.ReadLines(path)) == 11 }) {
		t.Fatalf("file has %d lines, want 11", len(testpeer.ReadLines(path)))
	}
	if first := testpeer.ReadLines(path)[0]; first != "<13>one#012two" {
		t.Errorf("first line %q, want the LF escaped as #012", first)
	}
	// Rotation: move the file away; new messages go to a new file.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	fill(t, q, "g", 5)
	if !testpeer.WaitFor(30*time.Second, func() bool { return len(testpeer.ReadLines(path)) == 5 }) {
		t.Fatalf("after rotation the new file has %d lines, want 5", len(testpeer.ReadLines(path)))
	}
}

func TestUDPDestination(t *testing.T) {
	t.Parallel()
	recv := testpeer.NewUDPReceiver(t, "127.0.0.1:0")
	q := newTestQueue(t)
	fill(t, q, "d", 200)
	runWorker(t, q, NewUDP(recv.Addr(), time.Second))
	if !testpeer.WaitFor(30*time.Second, func() bool { return len(recv.Messages()) >= 200 }) {
		t.Fatalf("received %d of 200 datagrams", len(recv.Messages()))
	}
	if !strings.HasPrefix(recv.Messages()[0], "<134>") {
		t.Errorf("datagram %q", recv.Messages()[0])
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	b := backoff{initial: 100 * time.Millisecond, max: time.Second}
	steps := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, s := range steps {
		step := s * time.Millisecond
		d := b.Next()
		if d < step/2 || d > step {
			t.Errorf("wait %d = %v, want between %v and %v", i, d, step/2, step)
		}
	}
	b.Reset()
	if d := b.Next(); d > 100*time.Millisecond {
		t.Errorf("after Reset wait = %v, want <= 100ms", d)
	}
}

// TestWorkerSummarizesLongOutage: while an upstream stays down, the worker
// logs at most one summary per SummaryEvery, not a line per attempt.
func TestWorkerSummarizesLongOutage(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: every attempt is refused
	q := newTestQueue(t)
	fill(t, q, "s", 10)
	m, err := metrics.New(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	const every = 500 * time.Millisecond
	w := NewWorker(WorkerOptions{Name: "out", RetryInitial: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond, SummaryEvery: every},
		q, tcpDest(addr), m, slog.New(slog.NewTextHandler(logs, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	began := time.Now()
	errs := m.OutputErrors.WithLabelValues("out")
	attempts := func() float64 {
		var d dto.Metric
		_ = errs.Write(&d)
		return d.GetCounter().GetValue()
	}
	// Several summary intervals' worth of refused attempts.
	if !testpeer.WaitFor(30*time.Second, func() bool { return time.Since(began) > 4*every && attempts() > 20 }) {
		t.Fatalf("only %v attempts", attempts())
	}
	cancel()
	<-done
	elapsed := time.Since(began)
	text := logs.String()
	stopped, summaries := strings.Count(text, "stopped delivering"), strings.Count(text, "still not delivering")
	if stopped != 1 {
		t.Errorf("%d stopped-delivering lines, want 1:\n%s", stopped, text)
	}
	if limit := int(elapsed/every) + 1; summaries < 1 || summaries > limit {
		t.Errorf("%d summary lines in %v with SummaryEvery %v, want 1 to %d:\n%s", summaries, elapsed, every, limit, text)
	}
	if n := strings.Count(text, "\n"); n > 2+int(elapsed/every) {
		t.Errorf("%d log lines for %v failed attempts:\n%s", n, attempts(), text)
	}
}

// lockedBuffer is a bytes.Buffer a worker may log to while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestWorkerFullWindowWaitsOnlyForConfirmDelay: a worker whose unconfirmed
// window is full checks again when its oldest batch has waited
// confirm_delay, not only at its SettleTick, so one connection's output is
// not held back a tick per window. With a window of one batch and a tick of
// an hour, every batch after the first needs that.
func TestWorkerFullWindowWaitsOnlyForConfirmDelay(t *testing.T) {
	t.Parallel()
	recv := testpeer.NewReceiver(t, "127.0.0.1:0")
	q := newTestQueue(t)
	const n = 1000 // 10 batches of 100
	fill(t, q, "w", n)
	d := tcpDest(recv.Addr())
	d.opts.ConfirmDelay = 10 * time.Millisecond
	startWorker(t, WorkerOptions{SettleTick: time.Hour, MaxUnsettledBytes: 1}, q, d, &lockedBuffer{})
	if !testpeer.WaitFor(30*time.Second, func() bool { return recv.Count() >= n }) {
		t.Fatalf("received %d of %d: a full window waited for the settle tick", recv.Count(), n)
	}
	if tally := testpeer.Check("w", n, recv.Messages()); len(tally.Missing) > 0 || tally.Duplicates > 0 {
		t.Errorf("%v", tally)
	}
}

// TestWorkerSettlesAtStop: a worker stopped right after its last write
// waits (a bounded time) for the upstream to confirm it, so a clean stop
// does not leave delivered batches in the journal to be sent again after
// the restart.
func TestWorkerSettlesAtStop(t *testing.T) {
	t.Parallel()
	recv := testpeer.NewReceiver(t, "127.0.0.1:0")
	q := newTestQueue(t)
	fill(t, q, "stop", 1000)
	d := tcpDest(recv.Addr())
	d.opts.ConfirmDelay = 200 * time.Millisecond
	m, err := metrics.New(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	w := NewWorker(WorkerOptions{Name: "out", RetryInitial: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond},
		q, d, m, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	if !testpeer.WaitFor(30*time.Second, func() bool { return recv.Count() >= 1000 }) {
		cancel()
		<-done
		t.Fatalf("%v", testpeer.Check("stop", 1000, recv.Messages()))
	}
	cancel()
	<-done
	if n := q.Depth(); n != 0 {
		t.Errorf("%d records left unconfirmed after a clean stop with a healthy upstream", n)
	}
}
