package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"

	"github.com/relay-syslog/relay/internal/repeatlog"
	"github.com/relay-syslog/relay/internal/syslog"
	"github.com/relay-syslog/relay/outputs"
)

// The record headers that carry another relay's stamp beside a message
// are those a Kafka output with stamp_sequence writes: the origin relay's
// id, its epoch and the message's sequence number, in decimal.
const (
	KafkaHeaderOrigin = outputs.KafkaHeaderOrigin
	KafkaHeaderEpoch  = outputs.KafkaHeaderEpoch
	KafkaHeaderSeq    = outputs.KafkaHeaderSeq
)

const (
	// kafkaCommitInterval is how often the offsets of accepted records are
	// committed while records arrive. What was accepted and not yet
	// committed when a relay dies is read again by the partition's next
	// owner: at most this long of duplicates per partition.
	kafkaCommitInterval = time.Second
	// kafkaCommitTimeout bounds the commit when partitions are revoked and
	// the last one when the listener closes, so a stop does not wait on an
	// unreachable cluster.
	kafkaCommitTimeout = 5 * time.Second
	// kafkaPollRecords bounds one burst: its records are routed, the
	// queues flushed once, and their offsets marked for commit.
	kafkaPollRecords = 4096
	// kafkaFetchMaxBytes bounds one fetch response (a broker still sends a
	// first record larger than this whole).
	kafkaFetchMaxBytes = 16 << 20
	// kafkaErrorLogInterval paces the lines about a fetch or commit error
	// that repeats.
	kafkaErrorLogInterval = 10 * time.Second
	// kafkaFetchErrorPause is the pause after a poll that returned only
	// errors.
	kafkaFetchErrorPause = 250 * time.Millisecond
)

// kafkaMetrics are the collectors of the kafka listeners, registered on
// the first one's creation and shared by all.
type kafkaMetrics struct {
	lag          *prometheus.GaugeVec
	records      *prometheus.CounterVec
	commitErrors *prometheus.CounterVec
}

func newKafkaMetrics(reg prometheus.Registerer) (*kafkaMetrics, error) {
	m := &kafkaMetrics{
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "relay_kafka_consumer_lag",
			Help: "Records in the partition after the last one the kafka listener read (high watermark of its last fetch minus its position).",
		}, []string{"listener", "topic", "partition"}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_kafka_records_read_total",
			Help: "Records the kafka listener read, per topic.",
		}, []string{"listener", "topic"}),
		commitErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_kafka_commit_errors_total",
			Help: "Offset commits of the kafka listener that failed; the records after the last commit that succeeded are read again by the partition's next owner.",
		}, []string{"listener"}),
	}
	for _, c := range []prometheus.Collector{m.lag, m.records, m.commitErrors} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// remove stops exporting the series of listener name.
func (m *kafkaMetrics) remove(name string) {
	labels := prometheus.Labels{"listener": name}
	m.lag.DeletePartialMatch(labels)
	m.records.DeletePartialMatch(labels)
	m.commitErrors.DeletePartialMatch(labels)
}

// kafkaListener consumes topics as a member of a consumer group: the
// group's members (relays with the same group) share the partitions, and
// a partition moves to another member when its owner leaves or dies.
//
// Each record's value is one syslog message, routed as a message of any
// listener is. An offset is marked for commit only after the records up
// to it are accepted and the queues flushed (the same moment a RELP
// listener acknowledges), and only marked offsets are committed. A relay
// killed at any moment therefore leaves behind a committed offset at or
// before what it stored; the partition's next owner reads the rest again
// (duplicates, not losses).
//
// The client blocks rebalances while a polled burst is being stored
// (BlockRebalanceOnPoll): a revoked partition's records are all accepted
// and marked, and its offset committed, before another member may take it.
type kafkaListener struct {
	cfg    ListenerConfig
	in     *ingest
	log    *slog.Logger
	client *kgo.Client

	lag          *prometheus.GaugeVec   // topic, partition
	records      *prometheus.CounterVec // topic
	commitErrors prometheus.Counter
	errLog       *repeatlog.Limiter
	// connectFailing is set while connections fail for a reason the
	// settings can fix (a refused login, an untrusted certificate).
	connectFailing atomic.Bool

	ctx    context.Context // ends polling; cancelled by close
	cancel context.CancelFunc

	mu      sync.Mutex
	serving bool // serve runs and closes the client when it returns
	closed  bool
}

// newKafkaListener creates the consumer of cfg. It connects lazily: a
// cluster that cannot be reached is logged and retried while it serves.
func newKafkaListener(cfg ListenerConfig, in *ingest, m *kafkaMetrics, log *slog.Logger) (*kafkaListener, error) {
	l := &kafkaListener{
		cfg:          cfg,
		in:           in,
		log:          log.With("listener", cfg.Name),
		lag:          m.lag.MustCurryWith(prometheus.Labels{"listener": cfg.Name}),
		records:      m.records.MustCurryWith(prometheus.Labels{"listener": cfg.Name}),
		commitErrors: m.commitErrors.WithLabelValues(cfg.Name),
		errLog:       repeatlog.New(kafkaErrorLogInterval),
	}
	security, err := kafkaSecurity("listener "+strconv.Quote(cfg.Name), cfg.TLS.client(), cfg.SASL, cfg.Brokers, l.log)
	if err != nil {
		return nil, err
	}
	// The group's members share the partitions, and one stream's
	// numbers are spread over them: what this relay does not read is not
	// lost.
	in.partial = true
	l.ctx, l.cancel = context.WithCancel(context.Background())
	session := cfg.SessionTimeout.Duration
	// Kafka's advice: heartbeats at most a third of the session timeout.
	heartbeat := min(3*time.Second, session/5)
	client, err := kgo.NewClient(append(security,
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ConsumeTopics(cfg.Topics...),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ClientID("relay"),
		kgo.SessionTimeout(session),
		kgo.HeartbeatInterval(heartbeat),
		// kgo refuses marks together with DisableAutoCommit. With
		// AutoCommitMarks its autocommit commits only offsets the listener
		// marked, never what was merely polled.
		kgo.AutoCommitMarks(),
		kgo.AutoCommitInterval(kafkaCommitInterval),
		kgo.AutoCommitCallback(l.committed),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsRevoked(l.revoked),
		kgo.OnPartitionsLost(l.lost),
		// The client buffers at most one fetch response per broker.
		kgo.FetchMaxBytes(kafkaFetchMaxBytes),
		kgo.FetchMaxPartitionBytes(int32(max(int64(cfg.MaxMessageSize)*4, 1<<20))),
		kgo.WithLogger(kgoLogger{l.log}),
		kgo.WithHooks(kafkaConnectHook{l: l, sasl: cfg.SASL.Mechanism != ""}),
	)...)
	if err != nil {
		l.cancel()
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	l.client = client
	l.log.Info("consuming", "protocol", "kafka", "brokers", cfg.Brokers, "topics", cfg.Topics, "group", cfg.Group)
	return l, nil
}

func (l *kafkaListener) name() string { return l.cfg.Name }

// addr names the cluster; a kafka listener binds no socket.
func (l *kafkaListener) addr() string { return "kafka:" + l.cfg.Group }

// close stops polling. serve commits what was accepted, leaves the group
// and returns.
func (l *kafkaListener) close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	serving := l.serving
	l.mu.Unlock()
	l.cancel()
	if !serving {
		l.leave()
	}
	return nil
}

// leave commits the marked offsets and leaves the group, each within
// kafkaCommitTimeout, and closes the client. The members that take the
// partitions go on from what this one stored.
func (l *kafkaListener) leave() {
	l.client.AllowRebalance()
	ctx, cancel := context.WithTimeout(context.Background(), kafkaCommitTimeout)
	err := l.client.CommitMarkedOffsets(ctx)
	cancel()
	if err != nil {
		l.commitFailed(err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), kafkaCommitTimeout)
	defer cancel()
	if err := l.client.LeaveGroupContext(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		l.log.Warn("leave consumer group", "group", l.cfg.Group, "err", err)
	}
	l.client.Close()
	l.errLog.Stop()
}

// serve polls bursts of records until close is called or ctx ends.
func (l *kafkaListener) serve(ctx context.Context) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.serving = true
	l.mu.Unlock()
	defer l.leave()
	stop := context.AfterFunc(ctx, l.cancel)
	defer stop()
	watched := make(chan struct{})
	defer func() {
		l.cancel() // the poll also ends when the client was closed
		<-watched
	}()
	go func() {
		defer close(watched)
		l.watchTopics()
	}()
	sources := map[kafkaPartition]string{}
	var marks []*kgo.Record
	var recreated []string
	for l.ctx.Err() == nil {
		fetches := l.client.PollRecords(l.ctx, kafkaPollRecords)
		if fetches.IsClientClosed() {
			return
		}
		failed := false
		recreated = recreated[:0]
		fetches.EachError(func(topic string, partition int32, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			failed = true
			if errors.Is(err, kerr.UnknownTopicID) && topic != "" && !slices.Contains(recreated, topic) {
				recreated = append(recreated, topic)
			}
			l.in.countError("fetch_error")
			if topic == "" {
				// Not a partition's error: the client's own (joining
				// the group, say), reported with no topic.
				l.errLog.Log("client", 1, func(n int, summary bool) {
					l.log.Warn("kafka client", "err", err, "errors", n)
				})
				return
			}
			l.errLog.Log("fetch\x00"+topic, 1, func(n int, summary bool) {
				l.log.Warn("fetch from kafka", "topic", topic, "partition", partition, "err", err, "errors", n)
			})
		})
		var rewind map[string]map[int32]kgo.EpochOffset
		marks, rewind = l.store(fetches, sources, marks[:0])
		if len(marks) > 0 {
			l.client.MarkCommitRecords(marks...)
		}
		if len(rewind) > 0 {
			// Still between polls, so the partitions are still this
			// member's: the refused records are fetched again.
			l.client.SetOffsets(rewind)
			failed = true
		}
		// Everything polled is stored and marked, or will be read
		// again: a revoked partition may go now, and its revocation
		// commits what was marked.
		l.client.AllowRebalance()
		if len(recreated) > 0 {
			// The topic was deleted and created again: the client keeps
			// the old topic ID, and fails every fetch, until the topic is
			// purged and added back. Its partitions are then read from
			// the group's commits for the new topic, or from the start.
			topics := fmt.Sprint(recreated)
			l.errLog.Log("recreated", 1, func(n int, summary bool) {
				l.log.Warn("kafka topic was deleted and created again: reading the new one", "topics", topics, "times", n)
			})
			l.client.PurgeTopicsFromClient(recreated...)
			l.client.AddConsumeTopics(recreated...)
		}
		if failed && (fetches.NumRecords() == 0 || len(rewind) > 0) {
			// A poll returns at once with an error that persists, and a
			// full queue has no room at once: pause rather than spin.
			select {
			case <-l.ctx.Done():
			case <-time.After(kafkaFetchErrorPause):
			}
		}
	}
}

// watchTopics asks the brokers, at start and then every
// kafkaErrorLogInterval until the listener closes, whether the topics
// exist. The client waits for a missing topic without a word, and the
// group gives this member no partition of it: a typo in topics would
// leave the listener reading nothing, in silence.
func (l *kafkaListener) watchTopics() {
	t := time.NewTicker(kafkaErrorLogInterval)
	defer t.Stop()
	for {
		l.checkTopics()
		select {
		case <-l.ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (l *kafkaListener) checkTopics() {
	req := kmsg.NewPtrMetadataRequest()
	for _, topic := range l.cfg.Topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, rt)
	}
	ctx, cancel := context.WithTimeout(l.ctx, kafkaCommitTimeout)
	defer cancel()
	resp, err := req.RequestWith(ctx, l.client)
	if err != nil {
		return // a broker that cannot be reached is counted by the connect hook
	}
	for _, rt := range resp.Topics {
		if rt.Topic == nil || !errors.Is(kerr.ErrorForCode(rt.ErrorCode), kerr.UnknownTopicOrPartition) {
			continue
		}
		topic := *rt.Topic
		l.in.countError("unknown_topic")
		l.errLog.Log("topic\x00"+topic, 1, func(n int, summary bool) {
			l.log.Error("kafka topic does not exist: nothing is read from it until it is created; check topics", "topic", topic, "group", l.cfg.Group, "errors", n)
		})
	}
}

type kafkaPartition struct {
	topic     string
	partition int32
}

// store routes the records of fetches, flushes the queues and returns
// marks with the last stored record of each partition appended, to be
// marked for commit. A record a queue refuses (full, or its disk) is not
// marked, nor is anything after it in its partition: Kafka keeps them,
// and rewind says where to read that partition again. A flush that fails
// marks nothing and rewinds every partition of the burst: those records
// are not on disk.
func (l *kafkaListener) store(fetches kgo.Fetches, sources map[kafkaPartition]string, marks []*kgo.Record) ([]*kgo.Record, map[string]map[int32]kgo.EpochOffset) {
	now := time.Now()
	maxSize := int(l.cfg.MaxMessageSize)
	var firsts []*kgo.Record
	rewind := map[string]map[int32]kgo.EpochOffset{}
	again := func(r *kgo.Record) {
		if rewind[r.Topic] == nil {
			rewind[r.Topic] = map[int32]kgo.EpochOffset{}
		}
		rewind[r.Topic][r.Partition] = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset}
	}
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if len(p.Records) == 0 {
			return
		}
		key := kafkaPartition{p.Topic, p.Partition}
		source, ok := sources[key]
		if !ok {
			// The topic and partition stand for the sender: the
			// producer's address is not known here.
			source = p.Topic + "/" + strconv.Itoa(int(p.Partition))
			sources[key] = source
		}
		stored := 0
		for _, r := range p.Records {
			if !l.ingest(r, source, maxSize, now) {
				again(r)
				break
			}
			stored++
		}
		l.records.WithLabelValues(p.Topic).Add(float64(min(stored+1, len(p.Records))))
		if stored == 0 {
			return
		}
		last := p.Records[stored-1]
		l.lag.WithLabelValues(p.Topic, strconv.Itoa(int(p.Partition))).Set(float64(max(0, p.HighWatermark-last.Offset-1)))
		marks = append(marks, last)
		firsts = append(firsts, p.Records[0])
	})
	if len(marks) == 0 {
		return marks, rewind
	}
	if err := l.in.flush(); err != nil {
		l.in.countError("store_failed")
		l.errLog.Log("flush", 1, func(n int, summary bool) {
			l.log.Error("store kafka records: their offsets are not committed, and they are read again", "err", err, "errors", n)
		})
		for _, r := range firsts {
			again(r)
		}
		return marks[:0], rewind
	}
	return marks, rewind
}

// ingest routes one record's value as a message. stored is false when a
// queue refused it: it is to be read again, and dedup forgets its stamp
// so that the next reading is not taken for a copy. An empty record, a
// copy dedup drops and a message no route takes are counted and done.
func (l *kafkaListener) ingest(r *kgo.Record, source string, maxSize int, now time.Time) (stored bool) {
	data := r.Value
	if len(data) == 0 {
		l.in.countError("empty")
		return true
	}
	if len(data) > maxSize {
		data = data[:maxSize]
		l.in.countError("truncated")
	}
	in := l.in
	in.received.Inc()
	in.bytes.Add(float64(len(data)))
	var (
		origin     string
		epoch, seq uint64
		stamped    bool
	)
	if in.dedup != nil {
		if origin, epoch, seq, stamped = kafkaStamp(r.Headers); !stamped {
			var m syslog.Message
			syslog.Parse(data, syslog.ParseOptions{SkipTimestamp: true}, &m)
			origin, epoch, seq, stamped = readStamp(&m)
		}
		if stamped && in.dedup.checkFrom(origin, epoch, seq, now, in.partial) {
			return true // the first copy was stored
		}
	}
	routed, accepted := in.dispatch(data, source, now)
	if routed && !accepted {
		if stamped {
			in.dedup.forget(origin, epoch, seq)
		}
		return false
	}
	return true
}

// kafkaStamp reads a relay's stamp from record headers; ok is false when
// one is missing or malformed.
func kafkaStamp(headers []kgo.RecordHeader) (origin string, epoch, seq uint64, ok bool) {
	var found int
	var err1, err2 error
	for _, h := range headers {
		switch h.Key {
		case KafkaHeaderOrigin:
			origin = string(h.Value)
			found |= 1
		case KafkaHeaderEpoch:
			epoch, err1 = strconv.ParseUint(string(h.Value), 10, 32)
			found |= 2
		case KafkaHeaderSeq:
			seq, err2 = strconv.ParseUint(string(h.Value), 10, 64)
			found |= 4
		}
	}
	if found != 7 || err1 != nil || err2 != nil || seq == 0 || origin == "" {
		return "", 0, 0, false
	}
	return origin, epoch, seq, true
}

// revoked commits the marked offsets before the partitions go to another
// member. With BlockRebalanceOnPoll it runs between bursts, so every
// record polled from them is stored and marked by then.
func (l *kafkaListener) revoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	ctx, cancel := context.WithTimeout(ctx, kafkaCommitTimeout)
	defer cancel()
	if err := cl.CommitMarkedOffsets(ctx); err != nil {
		l.commitFailed(err)
	}
	l.forget(revoked)
	if len(revoked) > 0 {
		l.log.Info("kafka partitions revoked", "partitions", fmt.Sprint(revoked))
	}
}

// lost forgets partitions taken away without a chance to commit (the
// session expired): their next owner reads again from the last commit.
func (l *kafkaListener) lost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	l.forget(lost)
	if len(lost) > 0 {
		l.log.Warn("kafka partitions lost: what was stored since the last commit will be read again by their next owner", "partitions", fmt.Sprint(lost))
	}
}

func (l *kafkaListener) forget(partitions map[string][]int32) {
	for topic, ps := range partitions {
		for _, p := range ps {
			l.lag.DeleteLabelValues(topic, strconv.Itoa(int(p)))
		}
	}
}

// committed counts the failures of an autocommit, which commits only
// marked offsets.
func (l *kafkaListener) committed(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
	if err == nil && resp != nil {
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if perr := kerr.ErrorForCode(p.ErrorCode); perr != nil {
					err = perr
				}
			}
		}
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		l.commitFailed(err)
	}
}

func (l *kafkaListener) commitFailed(err error) {
	l.commitErrors.Inc()
	l.errLog.Log("commit", 1, func(n int, summary bool) {
		l.log.Warn("commit kafka offsets: the records since the last commit will be read again by the partition's next owner", "group", l.cfg.Group, "err", err, "errors", n)
	})
}

// kafkaConnectHook reports the connections to brokers that failed.
type kafkaConnectHook struct {
	l    *kafkaListener
	sasl bool // the listener logs in with SASL
}

// OnBrokerConnect counts a failed connection (the client tries again,
// after a backoff) under a reason that says what to check. A refused login
// or an untrusted certificate would otherwise leave the listener waiting
// for ever in silence: the client does not log them, nor does a poll return
// them, so they are logged here as errors.
func (h kafkaConnectHook) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	l := h.l
	if err == nil {
		// The error line said nothing is read until the settings are
		// fixed: say when that is over, so the log does not end on it.
		if l.connectFailing.CompareAndSwap(true, false) {
			l.log.Info("kafka brokers: connected again; reading resumes",
				"broker", net.JoinHostPort(meta.Host, strconv.Itoa(int(meta.Port))))
		}
		return
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, kgo.ErrClientClosed) {
		return
	}
	reason, check := kafkaConnectProblem(err, h.sasl)
	l.in.countError(reason)
	if check == "" {
		return // the client logs failed dials itself
	}
	l.connectFailing.Store(true)
	l.errLog.Log(reason, 1, func(n int, summary bool) {
		l.log.Error("kafka brokers: cannot connect, and nothing is read until this is fixed: "+check,
			"broker", net.JoinHostPort(meta.Host, strconv.Itoa(int(meta.Port))), "reason", reason, "err", err, "errors", n)
	})
}

// kafkaConnectProblem names the reason a connection to a broker failed
// and, when the relay's settings are the likely cause, what to check.
// withSASL says the client logs in with SASL.
func kafkaConnectProblem(err error, withSASL bool) (reason, check string) {
	var (
		pathErr *fs.PathError
		verify  *tls.CertificateVerificationError
		header  tls.RecordHeaderError
		alert   tls.AlertError
	)
	const checkSASL = "check sasl.mechanism, sasl.username and the password in sasl.password_file against the user the brokers know"
	switch {
	case errors.As(err, &pathErr):
		return "auth_failed", "the password file cannot be read: check sasl.password_file"
	case errors.Is(err, kerr.SaslAuthenticationFailed), errors.Is(err, kerr.UnsupportedSaslMechanism), errors.Is(err, kerr.IllegalSaslState):
		return "auth_failed", "the SASL login was refused: " + checkSASL
	case errors.As(err, &verify):
		return "tls_failed", "the broker's certificate is not trusted: tls.ca_file must hold the CA that signed it, and it must name the broker's host (or tls.server_name)"
	case errors.As(err, &header):
		return "tls_failed", "the broker does not speak TLS there: check brokers and tls.enable"
	case errors.As(err, &alert):
		return "tls_failed", "the broker refused the TLS handshake: check tls.cert_file and tls.key_file (a broker that requires mutual TLS) and tls.min_version"
	case withSASL && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)):
		// A connection that was opened and then closed by the broker
		// while the client set it up: some brokers refuse a login so,
		// without an error code.
		return "auth_failed", "the broker closed the connection during the SASL login, which is how some brokers refuse it: " + checkSASL
	}
	return "connect_error", ""
}

// kafkaDialTimeout bounds a kafka listener's connection to a broker, TLS
// handshake included (kgo's own default).
const kafkaDialTimeout = 10 * time.Second

// kafkaSecurity returns the client options for the TLS and SASL keys of a
// kafka listener. The files are read now, so that a missing or broken one
// stops the listener from starting, and again at each new connection to a
// broker when they changed (the certificates) or always (the password):
// the client lives as long as the listener, and a renewed certificate or a
// changed password applies without a restart.
func kafkaSecurity(what string, tc OutputTLSConfig, sc KafkaSASLConfig, brokers []string, log *slog.Logger) ([]kgo.Opt, error) {
	var opts []kgo.Opt
	if tc.Enable {
		build, err := newKafkaTLS(what, tc, brokers, log)
		if err != nil {
			return nil, err
		}
		dialer := &net.Dialer{Timeout: kafkaDialTimeout}
		opts = append(opts, kgo.Dialer(func(ctx context.Context, network, host string) (net.Conn, error) {
			c, err := build()
			if err != nil {
				return nil, err
			}
			if c.ServerName == "" {
				c = c.Clone()
				c.ServerName, _, _ = net.SplitHostPort(host)
			}
			return (&tls.Dialer{NetDialer: dialer, Config: c}).DialContext(ctx, network, host)
		}))
	}
	if sc.Mechanism != "" {
		if _, err := outputs.KafkaSASL(sc.Mechanism, sc.Username, sc.PasswordFile); err != nil {
			return nil, err
		}
		opts = append(opts, kgo.SASL(kafkaSASLFromFile{sc}))
	}
	return opts, nil
}

// kafkaSASLFromFile is a SASL mechanism whose password is read from
// sasl.password_file at each login.
type kafkaSASLFromFile struct{ cfg KafkaSASLConfig }

func (m kafkaSASLFromFile) Name() string { return m.cfg.Mechanism }

func (m kafkaSASLFromFile) Authenticate(ctx context.Context, host string) (sasl.Session, []byte, error) {
	mech, err := outputs.KafkaSASL(m.cfg.Mechanism, m.cfg.Username, m.cfg.PasswordFile)
	if err != nil {
		return nil, nil, err
	}
	return mech.Authenticate(ctx, host)
}

// newKafkaTLS returns the TLS configuration of a kafka client (output or
// listener) built from its tls keys, read again when the files changed.
// Each broker's certificate must carry that broker's name, which the client
// fills in when ServerName is empty, unless tls.server_name says another.
func newKafkaTLS(what string, c OutputTLSConfig, brokers []string, log *slog.Logger) (func() (*tls.Config, error), error) {
	build, err := newClientTLS(what, c, brokers[0], log)
	if err != nil {
		return nil, err
	}
	return func() (*tls.Config, error) {
		tc, err := build()
		if err != nil || c.ServerName != "" {
			return tc, err
		}
		tc = tc.Clone()
		tc.ServerName = ""
		return tc, nil
	}, nil
}

// client returns the tls keys of a kafka listener as an output's, whose
// meaning they have.
func (c ListenerTLSConfig) client() OutputTLSConfig {
	return OutputTLSConfig{Enable: c.Enable, CAFile: c.CAFile, ServerName: c.ServerName, CertFile: c.CertFile, KeyFile: c.KeyFile,
		InsecureSkipVerify: c.InsecureSkipVerify, MinVersion: c.MinVersion, CipherSuites: c.CipherSuites}
}

// kgoLogger passes the client's warnings and errors to the relay's log.
type kgoLogger struct{ log *slog.Logger }

func (k kgoLogger) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (k kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	switch level {
	case kgo.LogLevelError:
		k.log.Error("kafka client: "+msg, keyvals...)
	case kgo.LogLevelWarn:
		k.log.Warn("kafka client: "+msg, keyvals...)
	}
}

// validateKafka checks the keys of a kafka listener.
func (l *ListenerConfig) validateKafka(problem problemFunc) {
	if l.Address != "" {
		problem("address", "is not used by protocol \"kafka\": use brokers")
	}
	if len(l.Brokers) == 0 {
		problem("brokers", "is required for protocol \"kafka\": the cluster's bootstrap brokers as \"host:port\"")
	}
	for _, b := range l.Brokers {
		if err := checkDialAddr(b); err != nil {
			problem("brokers", "%v", err)
		}
	}
	if len(l.Topics) == 0 {
		problem("topics", "is required for protocol \"kafka\": the topics to consume")
	}
	seen := map[string]bool{}
	for _, t := range l.Topics {
		switch {
		case t == "":
			problem("topics", "must not contain an empty name")
		case seen[t]:
			problem("topics", "%q is named twice", t)
		default:
			// A name the brokers cannot hold would be read from never,
			// as a topic not yet created is.
			if err := checkKafkaTopic(t); err != nil {
				problem("topics", "%v", err)
			}
		}
		seen[t] = true
	}
	if l.Group == "" {
		problem("group", "is required for protocol \"kafka\": relays with the same group share the partitions")
	}
	if s := l.SessionTimeout.Duration; s < time.Second || s > 30*time.Minute {
		problem("session_timeout", "%v is out of range: use 1s to 30m", s)
	}
	if (l.TLS.CertFile == "") != (l.TLS.KeyFile == "") {
		problem("tls.cert_file", "tls.cert_file and tls.key_file go together")
	}
	checkKafkaTLS(l.TLS.client(), problem)
	checkKafkaSASL(l.SASL, problem)
	for key, set := range map[string]bool{"allowed_networks": len(l.AllowedNetworks) > 0, "rate_limit": l.RateLimit > 0, "rate_burst": l.RateBurst > 0} {
		if set {
			problem(key, "does not apply to kafka listeners (records have no sender address)")
		}
	}
}
