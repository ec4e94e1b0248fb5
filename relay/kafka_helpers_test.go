package relay

// A small in-process Kafka for the kafka listener's tests: a kfake cluster
// on loopback ports, a franz-go producer and kcat. A shared test package
// (internal/kafkatest) can replace it.

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// startKafka starts a cluster of 3 brokers on 127.0.0.1 with topic of
// partitions partitions. Its groups accept session timeouts down to 1 s,
// so a test's dead member is noticed soon.
func startKafka(t testing.TB, topic string, partitions int32) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(
		kfake.NumBrokers(3),
		kfake.SeedTopics(partitions, topic),
		kfake.GroupMinSessionTimeout(time.Second),
	)
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// kafkaProduce produces one record per value, spread over the partitions
// round robin, and returns once the cluster acknowledged them all.
func kafkaProduce(t testing.TB, brokers []string, topic string, values []string, headers ...kgo.RecordHeader) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	recs := make([]*kgo.Record, len(values))
	for i, v := range values {
		recs[i] = &kgo.Record{Topic: topic, Value: []byte(v), Headers: headers}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// kcatProduce has kcat (librdkafka) produce one record per line, the
// partitions chosen by its default partitioner.
func kcatProduce(t testing.TB, brokers []string, topic string, lines []string) {
	t.Helper()
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		skipOrFail(t, "kcat is not installed (apt-get install kcat): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, kcat, "-P", "-b", strings.Join(brokers, ","), "-t", topic,
		"-X", "topic.partitioner=random")
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kcat: %v\n%s", err, out)
	}
}

// kafkaListenerTOML is a kafka listener of group on brokers' topic with a
// short session timeout, so a killed member's partitions move within
// seconds.
func kafkaListenerTOML(name string, brokers []string, topic, group string, extra string) string {
	return fmt.Sprintf(`
[[listener]]
name = %q
protocol = "kafka"
brokers = [%s]
topics = [%q]
group = %q
session_timeout = "3s"
%s
`, name, quoteList(brokers), topic, group, extra)
}

func quoteList(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(q, ", ")
}

// committedTotal sums the group's committed offsets over topic's
// partitions: the records it has committed when every partition started
// at offset 0.
func committedTotal(c *kfake.Cluster, group, topic string) int64 {
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
