// Package metrics holds the relay's Prometheus collectors and its HTTP
// endpoints (/metrics, /healthz, /readyz).
//
// Every collector is registered on a registry the caller injects, never on
// the global default one, so tests can build as many relays as they like in
// one process and read each one's numbers in isolation.
package metrics

import (
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

const namespace = "relay"

// Metrics is the set of collectors the relay updates on its hot paths.
type Metrics struct {
	ListenerMessages    *prometheus.CounterVec
	ListenerBytes       *prometheus.CounterVec
	ListenerErrors      *prometheus.CounterVec
	ListenerConnections *prometheus.GaugeVec

	Accepted     *prometheus.CounterVec
	Unrouted     *prometheus.CounterVec
	RouteMatched *prometheus.CounterVec

	OutputSent    *prometheus.CounterVec
	OutputBytes   *prometheus.CounterVec
	OutputErrors  *prometheus.CounterVec
	OutputRetries *prometheus.CounterVec
	OutputResent  *prometheus.CounterVec
	// OutputPossiblyLost counts messages confirmed on a TCP or TLS
	// connection that the upstream then reset while they may still have
	// sat unread in its socket buffer.
	OutputPossiblyLost *prometheus.CounterVec
	OutputDropped      *prometheus.CounterVec
	OutputUp           *prometheus.GaugeVec
	// OutputLastDelivery is when the output last had a batch confirmed.
	OutputLastDelivery *prometheus.GaugeVec
	// OutputWindow is the most the output currently holds written and
	// unconfirmed.
	OutputWindow *prometheus.GaugeVec

	ParseProblems *prometheus.CounterVec

	ConfigReloads        *prometheus.CounterVec
	ConfigLastReloadOK   prometheus.Gauge
	ConfigLastReloadTime prometheus.Gauge

	TargetUp     *prometheus.GaugeVec
	TargetSent   *prometheus.CounterVec
	TargetErrors *prometheus.CounterVec

	queues *queueCollector
}

// New creates the relay's collectors and registers them, together with the
// Go runtime and process collectors, on reg.
func New(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		ListenerMessages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "listener_messages_received_total",
			Help: "Messages received, per listener.",
		}, []string{"listener"}),
		ListenerBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "listener_bytes_received_total",
			Help: "Message bytes received (framing excluded), per listener.",
		}, []string{"listener"}),
		ListenerErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "listener_errors_total",
			Help: "Problems with received data or connections, per listener and reason.",
		}, []string{"listener", "reason"}),
		ListenerConnections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "listener_connections",
			Help: "Open stream connections, per listener.",
		}, []string{"listener"}),
		Accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "messages_accepted_total",
			Help: "Messages stored in the queue of every output their routes name, per listener.",
		}, []string{"listener"}),
		Unrouted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "messages_unrouted_total",
			Help: "Messages no route matched, per listener; they are counted and not stored.",
		}, []string{"listener"}),
		RouteMatched: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "route_messages_matched_total",
			Help: "Messages a route matched, per route.",
		}, []string{"route"}),
		OutputSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "output_messages_sent_total",
			Help: "Messages handed to the destination (written and flushed), per output.",
		}, []string{"output"}),
		OutputBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "output_bytes_sent_total",
			Help: "Bytes written to the destination, per output: the messages as sent (after format conversion) with their framing, before TLS encryption.",
		}, []string{"output"}),
		OutputErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "output_send_errors_total",
			Help: "Failed connection attempts and sends, per output.",
		}, []string{"output"}),
		OutputRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "output_retries_total",
			Help: "Batches sent again after an error, per output.",
		}, []string{"output"}),
		OutputResent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "output_messages_resent_total",
			Help: "Messages sent again because a connection broke before the upstream confirmed them; the upstream may see them twice.",
		}, []string{"output"}),
		OutputPossiblyLost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "output_messages_possibly_lost_total",
			Help: "Messages confirmed over TCP or TLS shortly before the upstream reset the connection: its process may not have read them. An upper bound; RELP has none.",
		}, []string{"output"}),
		OutputDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "output_messages_dropped_total",
			Help: "Messages an output gave up on, per output and reason.",
		}, []string{"output", "reason"}),
		OutputUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "output_up",
			Help: "1 when the output's last send succeeded, 0 while it is failing or stalled.",
		}, []string{"output"}),
		OutputLastDelivery: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "output_last_delivery_timestamp_seconds",
			Help: "When the upstream last confirmed a batch of the output, as a Unix time; 0 until the first since the relay started.",
		}, []string{"output"}),
		OutputWindow: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "output_unconfirmed_limit_bytes",
			Help: "The most the output holds written and not yet confirmed: 16 MiB, or less while its connections keep breaking with messages unconfirmed.",
		}, []string{"output"}),
		ParseProblems: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "parse_problems_total",
			Help: "Messages that did not parse cleanly when an output converted them (format rfc5424 or rfc3164), per output, listener and reason. They are still forwarded, whole.",
		}, []string{"output", "listener", "reason"}),
		ConfigReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "config_reloads_total",
			Help: "Configuration reloads (SIGHUP), by result: success or failure.",
		}, []string{"result"}),
		ConfigLastReloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "config_last_reload_successful",
			Help: "1 when the last reload succeeded (or none was tried), 0 when it failed and the previous configuration stayed in force.",
		}),
		ConfigLastReloadTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "config_last_reload_success_timestamp_seconds",
			Help: "When the configuration was last loaded successfully (start or reload), as a Unix time.",
		}),
		TargetUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "target_up",
			Help: "1 while the target of an output with several targets is connected, 0 while it is down.",
		}, []string{"output", "target"}),
		TargetSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "target_messages_sent_total",
			Help: "Messages sent to each target of an output with several targets.",
		}, []string{"output", "target"}),
		TargetErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "target_errors_total",
			Help: "Failed connections and sends, per target of an output with several targets.",
		}, []string{"output", "target"}),
		queues: &queueCollector{stats: map[string]QueueStats{}},
	}
	cs := []prometheus.Collector{
		m.ListenerMessages, m.ListenerBytes, m.ListenerErrors, m.ListenerConnections,
		m.Accepted, m.Unrouted, m.RouteMatched,
		m.OutputSent, m.OutputBytes, m.OutputErrors, m.OutputRetries, m.OutputResent,
		m.OutputPossiblyLost, m.OutputDropped, m.OutputUp, m.OutputLastDelivery, m.OutputWindow,
		m.ParseProblems,
		m.ConfigReloads, m.ConfigLastReloadOK, m.ConfigLastReloadTime,
		m.TargetUp, m.TargetSent, m.TargetErrors,
		m.queues,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, result := range []string{"success", "failure"} {
		m.ConfigReloads.WithLabelValues(result)
	}
	m.ConfigLastReloadOK.Set(1)
	m.ConfigLastReloadTime.SetToCurrentTime()
	return m, nil
}

// QueueStats is what the metrics need from an output's queue. The values are
// read when Prometheus scrapes, so nothing has to be kept in sync by hand.
type QueueStats interface {
	Depth() int64
	DiskBytes() int64
	Corrupt() uint64
	Unwritten() int
	Recovered() int
	Full() bool
	LostRecords() uint64
	LostBytes() uint64
	// OldestWaiting is the receive time of the oldest message not yet
	// delivered, zero when there is none.
	OldestWaiting() time.Time
}

// AddQueue exports the queue of output name until RemoveQueue is called.
func (m *Metrics) AddQueue(name string, q QueueStats) {
	m.queues.mu.Lock()
	defer m.queues.mu.Unlock()
	m.queues.stats[name] = q
}

// RemoveQueue stops exporting the queue of output name.
func (m *Metrics) RemoveQueue(name string) {
	m.queues.mu.Lock()
	defer m.queues.mu.Unlock()
	delete(m.queues.stats, name)
}

// RemoveOutput stops exporting every series of output name: its queue, its
// counters and gauges, its targets and its parse problems. Call it once
// nothing updates them any more (the worker has stopped and the queue is
// closed): an update through WithLabelValues would export the series again.
func (m *Metrics) RemoveOutput(name string) {
	m.RemoveQueue(name)
	for _, v := range []*prometheus.CounterVec{m.OutputSent, m.OutputBytes, m.OutputErrors, m.OutputRetries, m.OutputResent, m.OutputPossiblyLost} {
		v.DeleteLabelValues(name)
	}
	m.OutputUp.DeleteLabelValues(name)
	m.OutputLastDelivery.DeleteLabelValues(name)
	m.OutputWindow.DeleteLabelValues(name)
	byOutput := prometheus.Labels{"output": name}
	m.OutputDropped.DeletePartialMatch(byOutput)
	m.ParseProblems.DeletePartialMatch(byOutput)
	m.TargetUp.DeletePartialMatch(byOutput)
	m.TargetSent.DeletePartialMatch(byOutput)
	m.TargetErrors.DeletePartialMatch(byOutput)
}

// RemoveTarget stops exporting the series of one target of output.
func (m *Metrics) RemoveTarget(output, target string) {
	m.TargetUp.DeleteLabelValues(output, target)
	m.TargetSent.DeleteLabelValues(output, target)
	m.TargetErrors.DeleteLabelValues(output, target)
}

// RemoveListener stops exporting the series of listener name. Its parse
// problems stay: the outputs may still convert queued messages from it.
func (m *Metrics) RemoveListener(name string) {
	for _, v := range []*prometheus.CounterVec{m.ListenerMessages, m.ListenerBytes, m.Accepted, m.Unrouted} {
		v.DeleteLabelValues(name)
	}
	m.ListenerErrors.DeletePartialMatch(prometheus.Labels{"listener": name})
	m.ListenerConnections.DeleteLabelValues(name)
	m.ParseProblems.DeletePartialMatch(prometheus.Labels{"listener": name})
}

// RemoveRoute stops exporting the series of route name.
func (m *Metrics) RemoveRoute(name string) {
	m.RouteMatched.DeleteLabelValues(name)
}

var (
	queueDepthDesc = prometheus.NewDesc(namespace+"_queue_depth_records",
		"Records (batches of messages) waiting in the output's disk queue, including those in flight.",
		[]string{"output"}, nil)
	queueBytesDesc = prometheus.NewDesc(namespace+"_queue_disk_bytes",
		"Bytes the output's queue occupies on disk.",
		[]string{"output"}, nil)
	queueUnwrittenDesc = prometheus.NewDesc(namespace+"_queue_unwritten_messages",
		"Messages accepted into the output's queue but not yet written to its files (they are written within queue.linger, or retried after a write error).",
		[]string{"output"}, nil)
	queueRecoveredDesc = prometheus.NewDesc(namespace+"_queue_recovered_records",
		"Records found in flight in the queue's journal at start (after a stop or a crash) and sent again; the upstream may see some of their messages twice.",
		[]string{"output"}, nil)
	queueCorruptDesc = prometheus.NewDesc(namespace+"_queue_corrupt_records_total",
		"Queue records skipped because their checksum or encoding was bad.",
		[]string{"output"}, nil)
	queueFullDesc = prometheus.NewDesc(namespace+"_queue_full",
		"1 while the output's queue is at queue.max_bytes and messages for it are dropped (under block: without waiting, since one waited block_timeout in vain); 0 once one fits again.",
		[]string{"output"}, nil)
	queueLostRecordsDesc = prometheus.NewDesc(namespace+"_queue_lost_records_total",
		"Queue records that could not be read from the queue's files (damaged, cut short or removed), after salvage.",
		[]string{"output"}, nil)
	queueLostBytesDesc = prometheus.NewDesc(namespace+"_queue_lost_bytes_total",
		"Bytes of queue data found damaged or missing: skipped damaged regions, corrupt records, and data files cut short.",
		[]string{"output"}, nil)
	queueOldestAgeDesc = prometheus.NewDesc(namespace+"_queue_oldest_message_age_seconds",
		"Seconds since the oldest message waiting for the output (taken from its queue and not yet confirmed) was received; 0 when nothing waits.",
		[]string{"output"}, nil)
)

// queueCollector reads queue statistics on scrape.
type queueCollector struct {
	mu    sync.Mutex
	stats map[string]QueueStats
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueDepthDesc
	ch <- queueBytesDesc
	ch <- queueCorruptDesc
	ch <- queueUnwrittenDesc
	ch <- queueRecoveredDesc
	ch <- queueFullDesc
	ch <- queueLostRecordsDesc
	ch <- queueLostBytesDesc
	ch <- queueOldestAgeDesc
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	names := make([]string, 0, len(c.stats))
	for name := range c.stats {
		names = append(names, name)
	}
	sort.Strings(names)
	stats := make([]QueueStats, len(names))
	for i, name := range names {
		stats[i] = c.stats[name]
	}
	c.mu.Unlock()

	for i, name := range names {
		q := stats[i]
		ch <- prometheus.MustNewConstMetric(queueDepthDesc, prometheus.GaugeValue, float64(q.Depth()), name)
		ch <- prometheus.MustNewConstMetric(queueBytesDesc, prometheus.GaugeValue, float64(q.DiskBytes()), name)
		ch <- prometheus.MustNewConstMetric(queueCorruptDesc, prometheus.CounterValue, float64(q.Corrupt()), name)
		ch <- prometheus.MustNewConstMetric(queueUnwrittenDesc, prometheus.GaugeValue, float64(q.Unwritten()), name)
		ch <- prometheus.MustNewConstMetric(queueRecoveredDesc, prometheus.GaugeValue, float64(q.Recovered()), name)
		full := 0.0
		if q.Full() {
			full = 1
		}
		ch <- prometheus.MustNewConstMetric(queueFullDesc, prometheus.GaugeValue, full, name)
		ch <- prometheus.MustNewConstMetric(queueLostRecordsDesc, prometheus.CounterValue, float64(q.LostRecords()), name)
		ch <- prometheus.MustNewConstMetric(queueLostBytesDesc, prometheus.CounterValue, float64(q.LostBytes()), name)
		age := 0.0
		if t := q.OldestWaiting(); !t.IsZero() {
			age = max(time.Since(t).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(queueOldestAgeDesc, prometheus.GaugeValue, age, name)
	}
}
