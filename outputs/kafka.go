package outputs

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/relay-syslog/relay/internal/syslog"
	"github.com/relay-syslog/relay/queue"
)

// KafkaKey is what a Kafka output uses as a record's key, which decides
// its partition.
type KafkaKey string

// The record keys of a Kafka output.
const (
	// KeyHostname keys a record by the message's HOSTNAME (the sender's
	// address when it has none), so one host's messages keep their order
	// within one partition.
	KeyHostname KafkaKey = "hostname"
	// KeyRelayID keys every record by the relay's id.
	KeyRelayID KafkaKey = "relay_id"
	// KeyNone sends records without a key, spread over the partitions.
	KeyNone KafkaKey = "none"
)

// KafkaKeys lists the valid keys, for error messages.
var KafkaKeys = []KafkaKey{KeyHostname, KeyRelayID, KeyNone}

// KafkaCompressions lists the compression codecs a Kafka output accepts.
var KafkaCompressions = []string{"none", "gzip", "snappy", "lz4", "zstd"}

// DefaultKafkaCompression is the codec of a Kafka output that names none:
// lz4 costs the least CPU of the codecs and still shrinks syslog text
// several times.
const DefaultKafkaCompression = "lz4"

// SASL mechanisms a Kafka output speaks.
var KafkaSASLMechanisms = []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}

// Header keys a Kafka output with stamping adds to every record: the
// origin relay's id, its epoch and the message's sequence number, as
// decimal text (the same values as the RFC 5424 stamp).
const (
	KafkaHeaderOrigin = "relay.origin"
	KafkaHeaderEpoch  = "relay.epoch"
	KafkaHeaderSeq    = "relay.seq"
)

// DefaultKafkaBatchBytes is the producer's batch limit when the topic's
// max.message.bytes cannot be read: franz-go's default, below Kafka's
// default limit of 1048588.
const DefaultKafkaBatchBytes = 1000012

// minKafkaBatchBytes is the smallest batch limit the output lowers to when
// the broker refuses batches the client thought fit; maxKafkaBatchBytes
// the largest it uses.
const minKafkaBatchBytes, maxKafkaBatchBytes = 1 << 10, 16 << 20

// kafkaRecordOverhead is more than a record batch's header and one record's
// framing take beside its key, value and headers.
const kafkaRecordOverhead = 512

// KafkaOptions configures a Kafka destination.
type KafkaOptions struct {
	Brokers []string
	Topic   string
	Key     KafkaKey
	// RelayID is the key with KeyRelayID.
	RelayID string
	// StampOrigin, when set, adds the stamp headers to every record whose
	// message has a sequence number.
	StampOrigin string
	Compression string // one of KafkaCompressions; "" means DefaultKafkaCompression
	// TLS, when set, returns the client configuration for each new client.
	// Its ServerName, when empty, is each broker's host.
	TLS func() (*tls.Config, error)
	// SASLMechanism, when set, is one of KafkaSASLMechanisms; the password
	// is read from SASLPasswordFile at each new client.
	SASLMechanism, SASLUsername, SASLPasswordFile string
	// ConnectTimeout bounds the first metadata request of a new client.
	ConnectTimeout time.Duration
	// DeliveryTimeout is how long a record may wait in the client before it
	// fails and its queue record is sent again.
	DeliveryTimeout time.Duration
	// Linger is how long the client waits to fill a batch (5 ms when 0).
	Linger time.Duration
	// OnTooLarge is called for every message dropped as larger than the
	// broker accepts.
	OnTooLarge func()
	// OnProduceError is called for every record the client failed, with
	// the Kafka error code's name or a short reason.
	OnProduceError func(code string)
	Log            *slog.Logger
}

// Kafka is a Destination that produces each message as one record to a
// topic, with acks from all in-sync replicas and the idempotent producer.
// A batch is settled when every record of it, and of every batch before
// it, was acknowledged. Any failed record fails the destination: the
// Worker closes it, which closes the client and fails what it still holds,
// and sends every unsettled batch again on a new client. So nothing waits
// only in the client's memory once it has failed, and a fatal producer
// state (an out-of-order sequence, an unknown or fenced producer id) ends
// with its client.
type Kafka struct {
	opts   KafkaOptions
	codec  kgo.CompressionCodec
	client *kgo.Client
	// limit is the producer's batch limit: the topic's max.message.bytes
	// as the broker describes it (DefaultKafkaBatchBytes if it does not),
	// or learned, when lower: half the limit of a batch the broker
	// refused although each of its records fit.
	limit, learned atomic.Int32

	msg     syslog.Message
	written int64 // messages written, the offset Write returns
	bytes   int64

	mu sync.Mutex // guards what the promises change
	// gen counts clients; a promise of an older client changes nothing.
	gen     uint64
	batches []*kafkaBatch
	settled int64
	err     error
}

// kafkaBatch is one Write: its offset end, how many of its records have
// not completed, and whether one of them failed.
type kafkaBatch struct {
	end     int64
	pending int
	failed  bool
	// tooLarge counts its messages dropped as too large, counted when
	// the batch settles: a batch sent again drops them again.
	tooLarge int
}

// NewKafka returns a Kafka destination; it connects on Connect.
func NewKafka(opts KafkaOptions) (*Kafka, error) {
	if opts.Linger == 0 {
		opts.Linger = 5 * time.Millisecond
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	codec, err := kafkaCodec(opts.Compression)
	if err != nil {
		return nil, err
	}
	k := &Kafka{opts: opts, codec: codec}
	k.limit.Store(DefaultKafkaBatchBytes)
	k.learned.Store(maxKafkaBatchBytes)
	return k, nil
}

func kafkaCodec(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "", "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("unknown compression %q: use %s", name, strings.Join(KafkaCompressions, ", "))
}

func (k *Kafka) String() string {
	return "kafka://" + strings.Join(k.opts.Brokers, ",") + "/" + k.opts.Topic
}

// Connected reports whether a client is open.
func (k *Kafka) Connected() bool { return k.client != nil }

// BytesWritten counts the record values produced.
func (k *Kafka) BytesWritten() int64 { return k.bytes }

// Connect makes a new client and checks that a broker answers.
func (k *Kafka) Connect(ctx context.Context) error {
	if k.client != nil {
		return nil
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(k.opts.Brokers...),
		kgo.DefaultProduceTopic(k.opts.Topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(k.codec),
		kgo.ProducerLinger(k.opts.Linger),
		kgo.ProducerBatchMaxBytesFn(func(string) int32 { return k.limit.Load() }),
		kgo.MaxBufferedRecords(1 << 16),
		kgo.DisableClientMetrics(),
	}
	if d := k.opts.DeliveryTimeout; d > 0 {
		opts = append(opts, kgo.RecordDeliveryTimeout(d), kgo.ProduceRequestTimeout(min(d, 10*time.Second)))
	}
	if k.opts.ConnectTimeout > 0 {
		opts = append(opts, kgo.DialTimeout(k.opts.ConnectTimeout))
	}
	if k.opts.TLS != nil {
		tc, err := k.opts.TLS()
		if err != nil {
			return err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if k.opts.SASLMechanism != "" {
		m, err := k.saslMechanism()
		if err != nil {
			return err
		}
		opts = append(opts, kgo.SASL(m))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	pctx, cancel := k.connectContext(ctx)
	defer cancel()
	if err := cl.Ping(pctx); err != nil {
		cl.Close()
		if k.opts.SASLMechanism != "" && kafkaLoginRefused(err) {
			return fmt.Errorf("kafka brokers %s: %w: the brokers refused the SASL login (or closed the connection during it, as some do): check sasl.mechanism, sasl.username and the password in sasl.password_file",
				strings.Join(k.opts.Brokers, ","), err)
		}
		return fmt.Errorf("kafka brokers %s: %w", strings.Join(k.opts.Brokers, ","), err)
	}
	k.readLimit(pctx, cl)
	k.mu.Lock()
	k.gen++
	k.err = nil
	k.mu.Unlock()
	k.client = cl
	return nil
}

// kafkaLoginRefused reports whether err is how brokers refuse a SASL
// login: an error code, or a connection closed while it was set up.
func kafkaLoginRefused(err error) bool {
	return errors.Is(err, kerr.SaslAuthenticationFailed) || errors.Is(err, kerr.UnsupportedSaslMechanism) ||
		errors.Is(err, kerr.IllegalSaslState) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET)
}

func (k *Kafka) connectContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if k.opts.ConnectTimeout > 0 {
		return context.WithTimeout(ctx, k.opts.ConnectTimeout)
	}
	return context.WithCancel(ctx)
}

func (k *Kafka) saslMechanism() (sasl.Mechanism, error) {
	return KafkaSASL(k.opts.SASLMechanism, k.opts.SASLUsername, k.opts.SASLPasswordFile)
}

// KafkaSASL returns the SASL mechanism named mechanism (one of
// KafkaSASLMechanisms) for user, with the password read from passwordFile
// now, less a trailing line feed. The Kafka output calls it for each new
// client, the relay's kafka listener at each login, so a changed password
// file applies without a restart.
func KafkaSASL(mechanism, user, passwordFile string) (sasl.Mechanism, error) {
	pw, err := readPasswordFile(passwordFile)
	if err != nil {
		return nil, fmt.Errorf("sasl.password_file: %w", err)
	}
	pass := strings.TrimRight(string(pw), "\r\n")
	switch mechanism {
	case "PLAIN":
		return plain.Auth{User: user, Pass: pass}.AsMechanism(), nil
	case "SCRAM-SHA-256":
		return scram.Auth{User: user, Pass: pass}.AsSha256Mechanism(), nil
	case "SCRAM-SHA-512":
		return scram.Auth{User: user, Pass: pass}.AsSha512Mechanism(), nil
	}
	return nil, fmt.Errorf("sasl.mechanism %q: use %s", mechanism, strings.Join(KafkaSASLMechanisms, ", "))
}

// maxPasswordFile bounds what is read from a password file: a path to a
// device or a log file by mistake must not fill memory at every login.
const maxPasswordFile = 64 << 10

// readPasswordFile reads a password file of at most maxPasswordFile bytes.
func readPasswordFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPasswordFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxPasswordFile {
		return nil, fmt.Errorf("%s: more than %d bytes: not a password file", path, maxPasswordFile)
	}
	return b, nil
}

// readLimit sets the batch limit from the topic's max.message.bytes, so a
// batch of messages that each fit is never refused as a whole. A broker
// that does not tell (no permission to describe configs) leaves the limit
// as it was; a refused batch then lowers it (see complete).
func (k *Kafka) readLimit(ctx context.Context, cl *kgo.Client) {
	defer func() { k.limit.Store(min(k.limit.Load(), k.learned.Load())) }()
	req := kmsg.NewPtrDescribeConfigsRequest()
	res := kmsg.NewDescribeConfigsRequestResource()
	res.ResourceType = kmsg.ConfigResourceTypeTopic
	res.ResourceName = k.opts.Topic
	res.ConfigNames = []string{"max.message.bytes"}
	req.Resources = append(req.Resources, res)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		k.opts.Log.Debug("read the topic's max.message.bytes", "err", err)
		return
	}
	for _, r := range resp.Resources {
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			k.opts.Log.Debug("read the topic's max.message.bytes", "err", err)
			return
		}
		for _, c := range r.Configs {
			if c.Name != "max.message.bytes" || c.Value == nil {
				continue
			}
			if n, err := strconv.Atoi(*c.Value); err == nil && n > 0 {
				k.limit.Store(int32(min(n, maxKafkaBatchBytes)))
			}
		}
	}
}

// Write produces one record per entry. The values are copied: the client
// holds them until the broker answers, past the caller's buffers.
func (k *Kafka) Write(ctx context.Context, entries []queue.Entry) (int64, error) {
	if k.client == nil {
		return k.written, errors.New("kafka: not connected")
	}
	size := 0
	for _, e := range entries {
		size += len(e.Data)
	}
	arena := make([]byte, 0, size)
	b := &kafkaBatch{end: k.written + int64(len(entries)), pending: len(entries)}
	k.mu.Lock()
	gen := k.gen
	k.batches = append(k.batches, b)
	k.mu.Unlock()
	limit := int(k.limit.Load())
	promise := func(r *kgo.Record, err error) { k.complete(gen, b, r, err, limit) }
	for _, e := range entries {
		start := len(arena)
		arena = append(arena, e.Data...)
		r := &kgo.Record{Topic: k.opts.Topic, Value: arena[start:len(arena):len(arena)]}
		r.Key = k.key(e, r.Value)
		if k.opts.StampOrigin != "" && e.Seq != 0 {
			r.Headers = []kgo.RecordHeader{
				{Key: KafkaHeaderOrigin, Value: []byte(k.opts.StampOrigin)},
				{Key: KafkaHeaderEpoch, Value: strconv.AppendUint(nil, uint64(e.Epoch), 10)},
				{Key: KafkaHeaderSeq, Value: strconv.AppendUint(nil, e.Seq, 10)},
			}
		}
		k.bytes += int64(len(e.Data))
		k.client.Produce(ctx, r, promise)
	}
	k.written = b.end
	return k.written, nil
}

// key returns the record key of e, whose converted bytes are value.
func (k *Kafka) key(e queue.Entry, value []byte) []byte {
	switch k.opts.Key {
	case KeyNone:
		return nil
	case KeyRelayID:
		return []byte(k.opts.RelayID)
	}
	syslog.Parse(value, syslog.ParseOptions{SkipTimestamp: true}, &k.msg)
	if h := k.msg.Hostname; len(h) > 0 && !bytes.Equal(h, []byte("-")) {
		return bytes.Clone(h)
	}
	if host, _, err := net.SplitHostPort(e.Source); err == nil {
		return []byte(host)
	}
	if e.Source != "" {
		return []byte(e.Source)
	}
	return nil
}

// complete is the promise of one record of batch b, produced by client
// generation gen with the batch limit then in force.
func (k *Kafka) complete(gen uint64, b *kafkaBatch, r *kgo.Record, err error, limit int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if gen != k.gen {
		return // the client was closed and its batches go out again
	}
	b.pending--
	if err == nil {
		return
	}
	if errors.Is(err, kerr.MessageTooLarge) {
		size := len(r.Key) + len(r.Value) + kafkaRecordOverhead
		for _, h := range r.Headers {
			size += len(h.Key) + len(h.Value)
		}
		if size >= limit || limit <= minKafkaBatchBytes {
			// This record alone is more than the broker takes: sending it
			// again would fail the same way for ever.
			b.tooLarge++
			return
		}
		// The broker refused a batch of records that each fit: its limit
		// is lower than the client knew. Smaller batches go out next.
		if int(k.learned.Load()) > limit/2 {
			k.learned.Store(int32(max(limit/2, minKafkaBatchBytes)))
		}
	}
	b.failed = true
	if k.opts.OnProduceError != nil {
		k.opts.OnProduceError(kafkaErrorCode(err))
	}
	if k.err == nil {
		k.err = fmt.Errorf("kafka produce: %w", err)
	}
}

// kafkaErrorCode names err for the produce errors metric: the Kafka error
// code, or what the client says.
func kafkaErrorCode(err error) string {
	var ke *kerr.Error
	switch {
	case errors.As(err, &ke):
		return ke.Message
	case errors.Is(err, kgo.ErrRecordTimeout):
		return "record_timeout"
	case errors.Is(err, kgo.ErrRecordRetries):
		return "record_retries"
	case errors.Is(err, kgo.ErrClientClosed):
		return "client_closed"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return "network"
	}
	return "other"
}

// Settled returns the offset up to which every record was acknowledged (or
// dropped as too large), and the first produce error of this client.
func (k *Kafka) Settled(time.Time) (int64, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	i := 0
	// A failed batch and every batch after it stay unsettled: the Worker
	// gives back what is settled before it handles the error.
	for ; i < len(k.batches) && k.batches[i].pending == 0 && !k.batches[i].failed; i++ {
		k.settled = k.batches[i].end
		for range k.batches[i].tooLarge {
			if k.opts.OnTooLarge != nil {
				k.opts.OnTooLarge()
			}
		}
	}
	clear(k.batches[:i])
	k.batches = k.batches[i:]
	return k.settled, k.err
}

// Close closes the client, which fails every record it still holds; the
// Worker sends their batches again.
func (k *Kafka) Close() error {
	if k.client == nil {
		return nil
	}
	k.mu.Lock()
	k.gen++
	k.batches = nil
	k.settled = k.written
	k.err = nil
	k.mu.Unlock()
	k.client.Close()
	k.client = nil
	return nil
}
