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
	// partial: the listener reads a share of each stamped stream (a
	// kafka listener), so dedup counts no gaps in them.
	partial bool
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
	return in.route(data, source, now)
}

// handleStamped is handle for a message whose stamp came beside it (in
// Kafka record headers) rather than in its structured data.
func (in *ingest) handleStamped(data []byte, source string, now time.Time, origin string, epoch, seq uint64) (accepted bool) {
	in.received.Inc()
	in.bytes.Add(float64(len(data)))
	if in.dedup != nil && in.dedup.checkFrom(origin, epoch, seq, now, in.partial) {
		return true // the first copy was accepted
	}
	return in.route(data, source, now)
}

// route hands one message to the router and counts the outcome.
func (in *ingest) route(data []byte, source string, now time.Time) (accepted bool) {
	_, accepted = in.dispatch(data, source, now)
	return accepted
}

// dispatch is route; routed is false when no route took the message.
func (in *ingest) dispatch(data []byte, source string, now time.Time) (routed, accepted bool) {
	r := acquire(in.router)
	routed, accepted = r.dispatch(queue.Entry{
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
	return routed, accepted
}

// flush writes the partial records of every queue to disk. A listener that
// acknowledges messages to its sender (RELP) calls it before acknowledging:
// only then are the messages on disk and survive a kill -9.
func (in *ingest) flush() error {
	r := acquire(in.router)
	defer r.release()
	return r.flush()
}

// listenerReasons returns the reasons relay_listener_errors_total can count
// on a listener configured as lc. They are exported at 0 from the start so
// that the first scrape shows them and increase() sees the first event.
func listenerReasons(lc ListenerConfig) []string {
	reasons := []string{"truncated", "read_error"}
	content := []string{"no_pri", "nul_byte", "invalid_utf8"}
	stream := []string{"accept_error", "too_many_connections", "evicted_silent", "evicted_idle", "idle_timeout", "incomplete_frame", "denied", "rate_limited"}
	switch lc.Protocol {
	case "udp":
		reasons = append(append(reasons, "empty", "denied", "rate_limited"), content...)
	case "unix":
		reasons = append(append(reasons, "empty"), content...)
	case "tcp":
		reasons = append(append(append(reasons, "frame_timeout", "tls_on_plain_port"), content...), stream...)
	case "tls":
		reasons = append(append(append(append(reasons, "frame_timeout"), content...), stream...), tlsHandshakeReasons...)
	case "relp":
		reasons = append(append(reasons, "invalid_frame", "protocol_error", "store_failed", "write_error"), stream...)
		if lc.TLS.CertFile != "" {
			reasons = append(reasons, tlsHandshakeReasons...)
		}
	case "kafka":
		reasons = []string{"truncated", "empty", "fetch_error", "unknown_topic", "store_failed", "connect_error", "auth_failed", "tls_failed"}
	}
	return reasons
}

// tlsHandshakeReasons are what describeHandshakeError returns.
var tlsHandshakeReasons = []string{
	"plaintext_on_tls_port", "tls_handshake_timeout", "tls_handshake_aborted", "tls_rejected_by_client",
	"tls_no_client_cert", "tls_unknown_ca", "tls_cert_expired", "tls_bad_cert", "tls_name_not_allowed",
	"tls_version_or_cipher", "tls_handshake_error",
}

// exportReasons creates the listener's error series at 0.
func (in *ingest) exportReasons(reasons []string) {
	for _, r := range reasons {
		in.errors.WithLabelValues(r)
	}
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
	return ok && in.dedup.checkFrom(origin, epoch, seq, now, in.partial)
}
