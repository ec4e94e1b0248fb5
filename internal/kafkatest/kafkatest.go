// Package kafkatest starts in-process Kafka clusters (franz-go's kfake) on
// loopback ports for tests, and runs Debian's kcat, a client written by
// others (librdkafka), to read and write their topics. It is imported only
// by _test.go files.
package kafkatest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Cluster is a kfake cluster started for one test and closed by its
// cleanup.
type Cluster struct {
	*kfake.Cluster
	// Addrs are the brokers' loopback addresses, to use as seeds.
	Addrs []string
	// ClientOpts are added to the options of the franz-go clients the
	// helpers make (TLS and SASL, for a cluster that requires them).
	ClientOpts []kgo.Opt
	// KcatArgs are added to kcat's arguments, as ClientOpts are.
	KcatArgs []string
}

// Start starts a cluster of brokers brokers with topic created with
// partitions partitions; opts are passed on to kfake (broker configs,
// SASL, TLS).
func Start(t testing.TB, brokers int, topic string, partitions int32, opts ...kfake.Opt) *Cluster {
	t.Helper()
	opts = append([]kfake.Opt{kfake.NumBrokers(brokers), kfake.SeedTopics(partitions, topic)}, opts...)
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return &Cluster{Cluster: c, Addrs: c.ListenAddrs()}
}

// ShortSessions lets the cluster's groups accept session timeouts down to
// 1 s, so that a test's dead member is noticed within seconds.
var ShortSessions = kfake.GroupMinSessionTimeout(time.Second)

// Seeds returns the broker addresses comma-separated, as kcat's -b takes
// them.
func (c *Cluster) Seeds() string { return strings.Join(c.Addrs, ",") }

// Record is one record as kcat printed it.
type Record struct {
	Partition int32
	Offset    int64
	Key       string
	Value     string
	Headers   map[string]string
}

// Kcat returns the path of kcat. Without it the test is skipped, unless CI
// is set: there the missing tool is a failure.
func Kcat(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("kcat")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("kcat is required with CI set (apt-get install kcat): %v", err)
		}
		t.Skipf("kcat not installed: %v", err)
	}
	return p
}

// kcatJSON is the shape of kcat's -J output.
type kcatJSON struct {
	Partition int32    `json:"partition"`
	Offset    int64    `json:"offset"`
	Key       *string  `json:"key"`
	Payload   *string  `json:"payload"`
	Headers   []string `json:"headers"` // name, value, name, value…
}

// Consume reads topic from the start to its current end with kcat and
// returns every record, with keys and headers. Keys and values must be
// text (kcat writes them as JSON strings).
func (c *Cluster) Consume(t testing.TB, topic string) []Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := append([]string{"-C", "-b", c.Seeds(), "-t", topic, "-o", "beginning", "-e", "-q", "-J",
		"-X", "topic.metadata.refresh.interval.ms=1000"}, c.KcatArgs...)
	cmd := exec.CommandContext(ctx, Kcat(t), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kcat -C %s: %v\n%s", topic, err, stderr.String())
	}
	var recs []Record
	for line := range bytes.Lines(out) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var j kcatJSON
		if err := json.Unmarshal(line, &j); err != nil {
			t.Fatalf("kcat output %q: %v", line, err)
		}
		r := Record{Partition: j.Partition, Offset: j.Offset}
		if j.Key != nil {
			r.Key = *j.Key
		}
		if j.Payload != nil {
			r.Value = *j.Payload
		}
		if len(j.Headers) > 0 {
			r.Headers = make(map[string]string, len(j.Headers)/2)
			for i := 0; i+1 < len(j.Headers); i += 2 {
				r.Headers[j.Headers[i]] = j.Headers[i+1]
			}
		}
		recs = append(recs, r)
	}
	return recs
}

// Produce writes one record per value to topic with kcat, each keyed by
// key when it is not empty.
func (c *Cluster) Produce(t testing.TB, topic, key string, values []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := append([]string{"-P", "-b", c.Seeds(), "-t", topic, "-D", "\n"}, c.KcatArgs...)
	var in strings.Builder
	if key != "" {
		args = append(args, "-K", "\t")
	}
	for _, v := range values {
		if strings.ContainsAny(v, "\n\t") {
			t.Fatalf("kafkatest.Produce: value %q holds a delimiter", v)
		}
		if key != "" {
			fmt.Fprintf(&in, "%s\t", key)
		}
		in.WriteString(v)
		in.WriteByte('\n')
	}
	cmd := exec.CommandContext(ctx, Kcat(t), args...)
	cmd.Stdin = strings.NewReader(in.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kcat -P %s: %v\n%s", topic, err, out)
	}
}

// Producer returns a franz-go client that spreads keyless records over the
// partitions round robin; the test's cleanup closes it.
func (c *Cluster) Producer(t testing.TB) *kgo.Client {
	t.Helper()
	cl := c.producer(t)
	t.Cleanup(cl.Close)
	return cl
}

func (c *Cluster) producer(t testing.TB) *kgo.Client {
	t.Helper()
	opts := append([]kgo.Opt{kgo.SeedBrokers(c.Addrs...), kgo.RecordPartitioner(kgo.RoundRobinPartitioner())}, c.ClientOpts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatalf("kafka producer: %v", err)
	}
	return cl
}

// ProduceAll produces one record per value with cl and returns once the
// cluster acknowledged them all, or with the first error. It calls no
// testing.TB method, so a test's goroutine may use it.
func ProduceAll(cl *kgo.Client, topic string, values []string, headers ...kgo.RecordHeader) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	recs := make([]*kgo.Record, len(values))
	for i, v := range values {
		recs[i] = &kgo.Record{Topic: topic, Value: []byte(v), Headers: headers}
	}
	return cl.ProduceSync(ctx, recs...).FirstErr()
}

// ProduceKgo produces one record per value with franz-go, round robin over
// the partitions, each with headers, and returns once all are
// acknowledged.
func (c *Cluster) ProduceKgo(t testing.TB, topic string, values []string, headers ...kgo.RecordHeader) {
	t.Helper()
	cl := c.producer(t)
	defer cl.Close()
	if err := ProduceAll(cl, topic, values, headers...); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
}

// Committed sums group's committed offsets over topic's partitions: the
// number of records it committed when every partition started at 0.
func (c *Cluster) Committed(group, topic string) int64 {
	g := c.GroupInfo(group)
	if g == nil {
		return 0
	}
	var n int64
	for _, pc := range g.Commits[topic] {
		n += pc.Offset
	}
	return n
}

// WaitGroup waits (two minutes at most) until group is stable and fn holds
// for it; what names the wait in the failure.
func (c *Cluster) WaitGroup(t testing.TB, group, what string, fn func(*kfake.GroupInfo) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if g, err := c.WaitGroupInfo(ctx, group, func(g *kfake.GroupInfo) bool { return g != nil && g.State == "Stable" && fn(g) }); err != nil {
		t.Fatalf("group %s: not %s: %+v", group, what, g)
	}
}

// ListenerTOML is a relay [[listener]] of protocol kafka named name, a
// member of group reading topic from brokers, with a 3 s session timeout
// (a cluster started with ShortSessions accepts it) so that a killed
// member's partitions move within seconds; extra is appended to the table.
func ListenerTOML(name string, brokers []string, topic, group, extra string) string {
	quoted := make([]string, len(brokers))
	for i, b := range brokers {
		quoted[i] = fmt.Sprintf("%q", b)
	}
	return fmt.Sprintf(`
[[listener]]
name = %q
protocol = "kafka"
brokers = [%s]
topics = [%q]
group = %q
session_timeout = "3s"
%s
`, name, strings.Join(quoted, ", "), topic, group, extra)
}
