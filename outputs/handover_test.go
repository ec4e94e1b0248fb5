package outputs

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/relay-syslog/relay/internal/testpeer"
	"github.com/relay-syslog/relay/metrics"
	"github.com/relay-syslog/relay/queue"
)

// TestWorkerHandover: when the upstream confirms what a worker wrote, Run
// returns by itself after Handover with nothing pending, and a successor on the same queue sends the rest
// without a duplicate. When the upstream cannot confirm in time, what
// stays unconfirmed is pending and counted as resent, and the successor
// sends it again.
func TestWorkerHandover(t *testing.T) {
	for _, c := range []struct {
		name         string
		confirmDelay time.Duration
	}{
		{"confirmed", 50 * time.Millisecond},
		{"unconfirmed", time.Hour},
	} {
		t.Run(c.name, func(t *testing.T) {
			recv := testpeer.NewReceiver(t, "127.0.0.1:0")
			q := newTestQueue(t)
			const first, second = 3000, 2000
			fill(t, q, "h", first)
			m, err := metrics.New(prometheus.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			newWorker := func() *Worker {
				d := tcpDest(recv.Addr())
				d.opts.ConfirmDelay = c.confirmDelay
				return NewWorker(WorkerOptions{Name: "out", RetryInitial: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond},
					q, d, m, slog.New(slog.NewTextHandler(io.Discard, nil)))
			}
			w := newWorker()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan struct{})
			go func() { w.Run(ctx); close(done) }()
			if !testpeer.WaitFor(20*time.Second, func() bool { return recv.Count() >= first }) {
				t.Fatalf("received %d of %d", recv.Count(), first)
			}
			w.Handover()
			wantPending := 0
			if c.confirmDelay == time.Hour {
				// The grace a reload gives passes.
				select {
				case <-done:
					t.Fatal("Run returned at a handover with everything unconfirmed")
				case <-time.After(200 * time.Millisecond):
				}
				cancel()
				wantPending = first
			}
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("Run did not return after the handover")
			}
			for i := first; i < first+second; i++ { // for the successor
				if err := q.Append(queue.Entry{Received: time.Now(), Listener: "l", Data: []byte(testpeer.SeqMessage("h", i))}); err != nil {
					t.Fatal(err)
				}
			}
			if err := q.Flush(); err != nil {
				t.Fatal(err)
			}
			pending := 0
			for _, b := range w.Pending() {
				pending += len(b.Entries)
			}
			var resentMetric dto.Metric
			if err := m.OutputResent.WithLabelValues("out").Write(&resentMetric); err != nil {
				t.Fatal(err)
			}
			resent := resentMetric.GetCounter().GetValue()
			if pending != wantPending || resent != float64(wantPending) {
				t.Errorf("pending %d messages, resent counted %v; want %d and %d", pending, resent, wantPending, wantPending)
			}

			next := newWorker()
			next.Resume(w.Pending())
			ctx2, cancel2 := context.WithCancel(context.Background())
			done2 := make(chan struct{})
			go func() { next.Run(ctx2); close(done2) }()
			defer func() { cancel2(); <-done2 }()
			if !testpeer.WaitFor(20*time.Second, func() bool { return recv.Count() >= first+second+wantPending }) {
				t.Fatalf("received %d of %d", recv.Count(), first+second+wantPending)
			}
			tally := testpeer.Check("h", first+second, recv.Messages())
			if len(tally.Missing) > 0 || tally.Duplicates != wantPending {
				t.Errorf("%v; want no loss and %d duplicates", tally, wantPending)
			}
		})
	}
}
