package outputs

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/relay-syslog/relay/internal/kafkatest"
	"github.com/relay-syslog/relay/internal/testfixture"
	"github.com/relay-syslog/relay/internal/testpeer"
	"github.com/relay-syslog/relay/metrics"
	"github.com/relay-syslog/relay/queue"
)

// kafkaDoneQueue counts the messages of the batches the Worker gave back.
type kafkaDoneQueue struct {
	*queue.Queue
	done atomic.Int64
}

func (q *kafkaDoneQueue) Done(b *queue.Batch) error {
	q.done.Add(int64(len(b.Entries)))
	return q.Queue.Done(b)
}

// kafkaWorker runs a Worker with opts over a Kafka destination until the
// test ends.
func kafkaWorker(t *testing.T, wopts WorkerOptions, kopts KafkaOptions, q Queue) (*metrics.Metrics, *lockedBuffer) {
	t.Helper()
	m, err := metrics.New(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	kopts.Log = log
	kopts.OnTooLarge = m.OutputDropped.WithLabelValues("out", "too_large").Inc
	kopts.OnProduceError = func(code string) { m.KafkaProduceErrors.WithLabelValues("out", code).Inc() }
	if kopts.ConnectTimeout == 0 {
		kopts.ConnectTimeout = 5 * time.Second
	}
	if kopts.DeliveryTimeout == 0 {
		kopts.DeliveryTimeout = 10 * time.Second
	}
	d, err := NewKafka(kopts)
	if err != nil {
		t.Fatal(err)
	}
	wopts.Name = "out"
	if wopts.RetryInitial == 0 {
		wopts.RetryInitial, wopts.RetryMax = 10*time.Millisecond, 200*time.Millisecond
	}
	if wopts.StallTimeout == 0 {
		wopts.StallTimeout = 2 * kopts.DeliveryTimeout
	}
	w := NewWorker(wopts, q, d, m, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return m, logs
}

// hostMessage is sequence message i of run from host%d.
func hostMessage(run string, i int) string {
	return fmt.Sprintf("<134>Nov 23 10:00:00 host%d seqgen[42]: run=%s seq=%08d", i%5, run, i)
}

func waitDone(t *testing.T, q *kafkaDoneQueue, n int, logs *lockedBuffer) {
	t.Helper()
	if !testpeer.WaitFor(60*time.Second, func() bool { return q.done.Load() >= int64(n) }) {
		t.Fatalf("%d of %d messages confirmed\n%s", q.done.Load(), n, logs.String())
	}
}

var hostRE = regexp.MustCompile(`^<\d+>1 \S+ (\S+) `)

// TestKafkaKeysAndHeaders: kcat reads every message, once, from a 3-broker
// cluster with 6 partitions, with the key the output's key setting asks
// for and, with stamping, the stamp as headers.
func TestKafkaKeysAndHeaders(t *testing.T) {
	const n = 300
	for _, key := range KafkaKeys {
		t.Run(string(key), func(t *testing.T) {
			c := kafkatest.Start(t, 3, "logs", 6)
			q := &kafkaDoneQueue{Queue: newTestQueue(t)}
			for i := range n {
				e := queue.Entry{Received: time.Now(), Listener: "l", Source: "192.0.2.9:514",
					Epoch: 7, Seq: uint64(i + 1), Data: []byte(hostMessage("kh", i))}
				if err := q.Append(e); err != nil {
					t.Fatal(err)
				}
			}
			if err := q.Flush(); err != nil {
				t.Fatal(err)
			}
			_, logs := kafkaWorker(t, WorkerOptions{Format: RFC5424, StampOrigin: "edge-1"},
				KafkaOptions{Brokers: c.Addrs, Topic: "logs", Key: key, RelayID: "edge-1", StampOrigin: "edge-1"}, q)
			waitDone(t, q, n, logs)

			recs := c.Consume(t, "logs")
			var values []string
			partOf := map[string]int32{}
			for _, r := range recs {
				values = append(values, r.Value)
				m := hostRE.FindStringSubmatch(r.Value)
				if m == nil {
					t.Fatalf("record value %q is not RFC 5424", r.Value)
				}
				want := map[KafkaKey]string{KeyHostname: m[1], KeyRelayID: "edge-1", KeyNone: ""}[key]
				if r.Key != want {
					t.Fatalf("record %q has key %q, want %q", r.Value, r.Key, want)
				}
				if key != KeyNone {
					if p, ok := partOf[r.Key]; ok && p != r.Partition {
						t.Fatalf("key %q in partitions %d and %d", r.Key, p, r.Partition)
					}
					partOf[r.Key] = r.Partition
				}
				seq, err := strconv.Atoi(r.Headers[KafkaHeaderSeq])
				if err != nil || r.Headers[KafkaHeaderOrigin] != "edge-1" || r.Headers[KafkaHeaderEpoch] != "7" {
					t.Fatalf("record %q has headers %v", r.Value, r.Headers)
				}
				if !strings.Contains(r.Value, fmt.Sprintf("seq=%08d", seq-1)) ||
					!strings.Contains(r.Value, fmt.Sprintf(`seq="%d"`, seq)) {
					t.Fatalf("record %q has header seq %d", r.Value, seq)
				}
			}
			tally := testpeer.Check("kh", n, values)
			if len(tally.Missing) > 0 || tally.Duplicates > 0 || tally.Foreign > 0 {
				t.Fatalf("kcat read: %v", tally)
			}
			if key == KeyHostname && len(partOf) != 5 {
				t.Fatalf("%d distinct keys, want 5 hosts", len(partOf))
			}
		})
	}
}

// TestKafkaProduceErrorsLoseNothing: while a stream of messages goes out,
// the brokers answer produce requests with NOT_ENOUGH_REPLICAS, then
// NOT_LEADER_FOR_PARTITION, then not at all (request timeouts), each for a
// while. Every message arrives; what failed was sent again and counted.
func TestKafkaProduceErrorsLoseNothing(t *testing.T) {
	const n, chunk = 30000, 500
	c := kafkatest.Start(t, 3, "logs", 6)
	var drop atomic.Bool
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if drop.Load() {
			return nil, nil, true // no answer: the client's request times out
		}
		return nil, nil, false
	})
	q := &kafkaDoneQueue{Queue: newTestQueue(t)}
	// Records the brokers keep refusing fail after the delivery timeout
	// and are counted by code; the stall timeout, far longer, ends the
	// unanswered requests, which the client cannot fail on its own while
	// it does not know whether they were written.
	m, logs := kafkaWorker(t, WorkerOptions{StallTimeout: 10 * time.Second}, KafkaOptions{Brokers: c.Addrs, Topic: "logs", Key: KeyHostname,
		DeliveryTimeout: time.Second}, q)

	phases := []func() func(){
		func() func() {
			h := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.NotEnoughReplicas, Count: -1})
			return h.Remove
		},
		func() func() {
			h := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.NotLeaderForPartition, Count: -1})
			return h.Remove
		},
		func() func() {
			drop.Store(true)
			return func() { drop.Store(false) }
		},
	}
	phase := 0
	for i := 0; i < n; i += chunk {
		for j := i; j < i+chunk; j++ {
			if err := q.Append(queue.Entry{Received: time.Now(), Listener: "l", Data: []byte(hostMessage("pe", j))}); err != nil {
				t.Fatal(err)
			}
		}
		if err := q.Flush(); err != nil {
			t.Fatal(err)
		}
		// Each fault holds while several chunks are queued and until it has
		// made the client give up on records at least once.
		if i > 0 && i%(n/4) == 0 && phase < len(phases) {
			before := testfixture.CollectorSum(t, m.OutputResent)
			undo := phases[phase]()
			phase++
			if !testpeer.WaitFor(60*time.Second, func() bool { return testfixture.CollectorSum(t, m.OutputResent) > before }) {
				undo()
				t.Fatalf("fault %d: nothing was resent\n%s", phase, logs.String())
			}
			undo()
		}
		time.Sleep(5 * time.Millisecond)
	}
	waitDone(t, q, n, logs)
	var values []string
	for _, r := range c.Consume(t, "logs") {
		values = append(values, r.Value)
	}
	tally := testpeer.Check("pe", n, values)
	if len(tally.Missing) > 0 || tally.Foreign > 0 {
		t.Fatalf("after produce errors: %v", tally)
	}
	errs := testfixture.CollectorSum(t, m.KafkaProduceErrors)
	resent := testfixture.CollectorSum(t, m.OutputResent)
	t.Logf("%v; resent %v, produce errors %v", tally, resent, errs)
	if errs == 0 {
		t.Fatalf("no produce error counted")
	}
	if resent == 0 {
		t.Fatalf("nothing counted as resent")
	}
}

// TestKafkaOversizeDropped: a message larger than the topic's
// max.message.bytes is dropped and counted, once, and the messages around
// it are delivered: with the limit set on the topic, which the output reads;
// set on the topic, but the output may not read the topic's config; and set
// on the broker, which kfake does not describe as the topic's. In the last
// two the output learns the limit from the batches the broker refuses as
// too large.
func TestKafkaOversizeDropped(t *testing.T) {
	for _, where := range []string{"topic", "topic unreadable", "broker"} {
		t.Run(where, func(t *testing.T) {
			var c *kafkatest.Cluster
			if strings.HasPrefix(where, "topic") {
				c = kafkatest.Start(t, 1, "other", 1)
				if err := c.CreateTopic("logs", 3, map[string]string{"max.message.bytes": "8192"}); err != nil {
					t.Fatal(err)
				}
				if where == "topic unreadable" {
					refuseDescribeConfigs(c)
				}
			} else {
				c = kafkatest.Start(t, 1, "logs", 3, kfake.BrokerConfigs(map[string]string{"message.max.bytes": "8192"}))
			}
			m := testOversize(t, c)
			// Where the limit is not known, the broker refused batches:
			// the drop came from its answer, not from the client's check.
			refused := testfixture.CollectorSum(t, m.KafkaProduceErrors.WithLabelValues("out", kerr.MessageTooLarge.Message))
			if known := where == "topic"; known != (refused == 0) {
				t.Errorf("limit known %v, yet %v batches refused as MESSAGE_TOO_LARGE", known, refused)
			}
		})
	}
}

// refuseDescribeConfigs makes the cluster answer every DescribeConfigs as
// a broker does to a client without the permission.
func refuseDescribeConfigs(c *kafkatest.Cluster) {
	c.ControlKey(int16(kmsg.DescribeConfigs), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kreq.(*kmsg.DescribeConfigsRequest)
		resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
		for _, r := range req.Resources {
			rr := kmsg.NewDescribeConfigsResponseResource()
			rr.ResourceType, rr.ResourceName = r.ResourceType, r.ResourceName
			rr.ErrorCode = kerr.TopicAuthorizationFailed.Code
			resp.Resources = append(resp.Resources, rr)
		}
		return resp, nil, true
	})
}

func testOversize(t *testing.T, c *kafkatest.Cluster) *metrics.Metrics {
	const n = 400
	rnd := rand.New(rand.NewPCG(1, 2))
	noise := make([]byte, 20000)
	for i := range noise {
		noise[i] = 'a' + byte(rnd.IntN(26)) // compresses little
	}
	q := &kafkaDoneQueue{Queue: newTestQueue(t)}
	for i := range n {
		if i == n/2 {
			big := "<134>Nov 23 10:00:00 host9 big[1]: " + string(noise)
			if err := q.Append(queue.Entry{Received: time.Now(), Listener: "l", Data: []byte(big)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := q.Append(queue.Entry{Received: time.Now(), Listener: "l", Data: []byte(hostMessage("ov", i))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Flush(); err != nil {
		t.Fatal(err)
	}
	m, logs := kafkaWorker(t, WorkerOptions{}, KafkaOptions{Brokers: c.Addrs, Topic: "logs", Key: KeyHostname}, q)
	waitDone(t, q, n+1, logs)
	dropped := m.OutputDropped.WithLabelValues("out", "too_large")
	if v := testfixture.CollectorSum(t, dropped); v != 1 {
		t.Fatalf("dropped too_large = %v, want 1\n%s", v, logs.String())
	}
	var values []string
	for _, r := range c.Consume(t, "logs") {
		values = append(values, r.Value)
	}
	tally := testpeer.Check("ov", n, values)
	if len(tally.Missing) > 0 || tally.Foreign > 0 {
		t.Fatalf("around the oversize message: %v", tally)
	}
	return m
}

// TestKafkaTLSAndSASL: the output authenticates with each SASL mechanism
// over TLS, the password read from a file with a trailing line feed; a
// wrong password keeps the output down, delivers nothing and is reported
// with the keys to check.
func TestKafkaTLSAndSASL(t *testing.T) {
	ca := testpeer.NewTestCA(t, "kafka-ca")
	server := &tls.Config{Certificates: []tls.Certificate{ca.Server("broker", "broker.test").KeyPair(t)}}
	client := func() (*tls.Config, error) { return &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}, nil }
	for _, mech := range KafkaSASLMechanisms {
		for _, pass := range []string{"s3cret", "wrong"} {
			t.Run(mech+"/"+pass, func(t *testing.T) {
				const n = 200
				c := kafkatest.Start(t, 1, "logs", 3, kfake.TLS(server), kfake.EnableSASL(), kfake.Superuser(mech, "relay", "s3cret"))
				pwFile := filepath.Join(t.TempDir(), "password")
				if err := os.WriteFile(pwFile, []byte(pass+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				q := &kafkaDoneQueue{Queue: newTestQueue(t)}
				fill(t, q.Queue, "sa", n)
				m, logs := kafkaWorker(t, WorkerOptions{}, KafkaOptions{Brokers: c.Addrs, Topic: "logs", Key: KeyHostname,
					TLS: client, SASLMechanism: mech, SASLUsername: "relay", SASLPasswordFile: pwFile}, q)
				if pass == "wrong" {
					if !testpeer.WaitFor(30*time.Second, func() bool { return strings.Contains(logs.String(), "stopped delivering") }) {
						t.Fatalf("a wrong password was not reported\n%s", logs.String())
					}
					// The administrator is told what to check, not just
					// how the broker hung up (EOF).
					if !testpeer.WaitFor(30*time.Second, func() bool { return strings.Contains(logs.String(), "sasl.password_file") }) {
						t.Errorf("the wrong password's log line does not name the keys to check\n%s", logs.String())
					}
					if v := testfixture.CollectorSum(t, m.OutputUp); v != 0 || q.done.Load() != 0 {
						t.Fatalf("with a wrong password: up %v, %d messages confirmed", v, q.done.Load())
					}
					return
				}
				waitDone(t, q, n, logs)
				var hw int64
				for _, p := range c.PartitionInfos("logs") {
					hw += p.HighWatermark
				}
				if hw != n {
					t.Fatalf("%d records in the topic, want %d", hw, n)
				}
			})
		}
	}
}

// TestKafkaSASLPasswordFile: the password is the file's text without its
// line end; a file that is too large to be a password (a device named by
// mistake) is refused, not read without end.
func TestKafkaSASLPasswordFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "password")
	if err := os.WriteFile(good, []byte("secret\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := KafkaSASL("PLAIN", "relay", good); err != nil {
		t.Fatalf("KafkaSASL(a password file) = %v", err)
	}
	if _, err := KafkaSASL("PLAIN", "relay", "/dev/zero"); err == nil || !strings.Contains(err.Error(), "not a password file") {
		t.Errorf("KafkaSASL(/dev/zero) = %v, want it refused as not a password file", err)
	}
	if _, err := KafkaSASL("PLAIN", "relay", dir); err == nil || !strings.Contains(err.Error(), "sasl.password_file") {
		t.Errorf("KafkaSASL(a directory) = %v, want an error naming sasl.password_file", err)
	}
}
