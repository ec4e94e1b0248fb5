package relay

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relay-syslog/relay/internal/syslog"
	"github.com/relay-syslog/relay/metrics"
	"github.com/relay-syslog/relay/queue"
)

// listener is one bound socket. New binds it; serve reads until close is
// called and returns only when every goroutine it started has ended.
type listener interface {
	name() string
	addr() string
	serve(ctx context.Context)
	close() error
}

// ingest is the part every listener shares: count what arrived and hand it
// to the router. The counters are bound to the listener's label once, so the
// per-message path does no label lookups.
type ingest struct {
	listener string
	// router is read for every message, so routes a reload installs apply
	// at once.
	router   *atomic.Pointer[router]
	received prometheus.Counter
	bytes    prometheus.Counter
	accepted prometheus.Counter
	unrouted prometheus.Counter
	errors   *prometheus.CounterVec
	// dedup, when set, drops second copies of stamped messages.
	dedup *dedup
}

func newIngest(name string, r *atomic.Pointer[router], m *metrics.Metrics) *ingest {
	return &ingest{
		listener: name,
		router:   r,
		received: m.ListenerMessages.WithLabelValues(name),
		bytes:    m.ListenerBytes.WithLabelValues(name),
		accepted: m.Accepted.WithLabelValues(name),
		unrouted: m.Unrouted.WithLabelValues(name),
		errors:   m.ListenerErrors.MustCurryWith(prometheus.Labels{"listener": name}),
	}
}

// handle routes one message and reports whether it was accepted (stored in
// every queue its routes name, or at least packed for storing: see flush).
// data may be reused by the caller afterwards: the queues copy it.
func (in *ingest) handle(data []byte, source string, now time.Time) (accepted bool) {
	in.received.Inc()
	in.bytes.Add(float64(len(data)))
	if in.dedup != nil && in.isDuplicate(data, now) {
		return true // the first copy was accepted
	}
	r := acquire(in.router)
	routed, accepted := r.dispatch(queue.Entry{
		Received: now,
		Listener: in.listener,
		Source:   source,
		Data:     data,
	})
	r.release()
	switch {
	case !routed:
		in.unrouted.Inc()
	case accepted:
		in.accepted.Inc()
	}
	return accepted
}

// flush writes the partial records of every queue to disk. A listener that
// acknowledges messages to its sender (RELP) calls it before acknowledging:
// only then are the messages on disk and survive a kill -9.
func (in *ingest) flush() error {
	r := acquire(in.router)
	defer r.release()
	return r.flush()
}

// countError counts a problem with received data or a connection.
func (in *ingest) countError(reason string) {
	in.errors.WithLabelValues(reason).Inc()
}

// isDuplicate reports whether data carries another relay's stamp that was
// seen before. Only listeners with dedup pay for the parse.
func (in *ingest) isDuplicate(data []byte, now time.Time) bool {
	var m syslog.Message
	syslog.Parse(data, syslog.ParseOptions{SkipTimestamp: true}, &m)
	origin, epoch, seq, ok := readStamp(&m)
	return ok && in.dedup.check(origin, epoch, seq, now)
}
