package relay

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/relay-syslog/relay/internal/kafkatest"
	"github.com/relay-syslog/relay/internal/testpeer"
)

// BenchmarkKafkaConsume measures kfake → relay: a relay whose kafka
// listener reads 100,000 records (6 partitions, 3 brokers) into a file
// output's queue, until every one is accepted and its queue flushed,
// against a bare franz-go group consumer that reads as many from the same
// cluster. Each op is one whole read of the 100,000 records, group join
// and (for the relay) its start included; records/s is the figure. Each
// op uses a new group, so both start from the oldest record.
func BenchmarkKafkaConsume(b *testing.B) {
	const n = 100000
	c := kafkatest.Start(b, 3, kafkaTopic, 6, kafkatest.ShortSessions)
	brokers := c.ListenAddrs()
	c.ProduceKgo(b, kafkaTopic, seqMessages("bench", 0, n))
	group := 0
	b.Run("relay", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			group++
			dir := b.TempDir()
			b.StartTimer()
			r := startRelay(b, dir, `data_dir = "{{DATA}}/q"`+kafkatest.ListenerTOML("kafka", brokers, kafkaTopic, fmt.Sprintf("relay-%d", group), "")+fmt.Sprintf(`
[[output]]
name = "file"
protocol = "file"
path = %q
[[route]]
name = "all"
outputs = ["file"]
`, filepath.Join(dir, "out.log")))
			if !testpeer.WaitFor(5*time.Minute, func() bool { return r.metric("relay_messages_accepted_total", "listener", "kafka") >= n }) {
				b.Fatalf("accepted %v of %d", r.metric("relay_messages_accepted_total", "listener", "kafka"), n)
			}
			b.StopTimer()
			r.stop()
			b.StartTimer()
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	})
	b.Run("franz-go", func(b *testing.B) {
		for b.Loop() {
			group++
			cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(kafkaTopic),
				kgo.ConsumerGroup(fmt.Sprintf("bare-%d", group)), kgo.SessionTimeout(3*time.Second))
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			for got := 0; got < n && ctx.Err() == nil; {
				f := cl.PollRecords(ctx, kafkaPollRecords)
				got += f.NumRecords()
			}
			err = ctx.Err()
			cancel()
			if err == nil {
				err = cl.CommitUncommittedOffsets(context.Background())
			}
			cl.Close()
			if err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	})
}
