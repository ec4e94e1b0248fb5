package outputs

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/relay-syslog/relay/internal/kafkatest"
	"github.com/relay-syslog/relay/internal/testfixture"
	"github.com/relay-syslog/relay/metrics"
	"github.com/relay-syslog/relay/queue"
)

// BenchmarkKafka compares, one op per 200-byte message, the whole kafka
// output path (a real queue kept full, a Worker producing through the
// Kafka destination until every message is acknowledged) with a bare
// franz-go producer with the same settings (acks all, idempotent, lz4,
// 5 ms linger) producing from memory, against the same kfake broker. kfake
// is told to discard record bytes (BlackholeProduce), so the broker's
// storage is not what is measured; it still runs in this process, on the
// same cores. The ratio of the two is the figure.
func BenchmarkKafka(b *testing.B) {
	b.Run("relay-output", func(b *testing.B) {
		c := kafkatest.Start(b, 1, "bench", 6, kfake.BlackholeProduce())
		qq, err := queue.Open(queue.Options{Name: "out", Dir: filepath.Join(b.TempDir(), "out")})
		if err != nil {
			b.Fatal(err)
		}
		defer qq.Close()
		q := &kafkaDoneQueue{Queue: qq}
		m, err := metrics.New(prometheus.NewRegistry())
		if err != nil {
			b.Fatal(err)
		}
		dest, err := NewKafka(KafkaOptions{Brokers: c.Addrs, Topic: "bench", Key: KeyHostname,
			ConnectTimeout: 5 * time.Second, DeliveryTimeout: 30 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		w := NewWorker(WorkerOptions{Name: "out", RetryInitial: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond},
			q, dest, m, slog.New(slog.NewTextHandler(io.Discard, nil)))
		e := testfixture.BenchEntry()
		b.SetBytes(int64(len(e.Data)))
		b.ReportAllocs()
		b.ResetTimer()
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); w.Run(ctx) }()
		go func() {
			defer wg.Done()
			for range b.N {
				if err := q.Append(e); err != nil {
					b.Error(err)
					return
				}
			}
			if err := q.Flush(); err != nil {
				b.Error(err)
			}
		}()
		deadline := time.Now().Add(5 * time.Minute)
		for q.done.Load() < int64(b.N) && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		b.StopTimer()
		cancel()
		wg.Wait()
		if got := q.done.Load(); got < int64(b.N) {
			b.Fatalf("%d of %d messages acknowledged", got, b.N)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
	b.Run("bare-franz-go", func(b *testing.B) {
		c := kafkatest.Start(b, 1, "bench", 6, kfake.BlackholeProduce())
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs...), kgo.DefaultProduceTopic("bench"),
			kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerBatchCompression(kgo.Lz4Compression()),
			kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(1<<16), kgo.DisableClientMetrics())
		if err != nil {
			b.Fatal(err)
		}
		defer cl.Close()
		e := testfixture.BenchEntry()
		key := []byte("edge-sw-01")
		b.SetBytes(int64(len(e.Data)))
		b.ReportAllocs()
		b.ResetTimer()
		var failed atomic.Int64
		for range b.N {
			cl.Produce(context.Background(), &kgo.Record{Key: key, Value: e.Data}, func(_ *kgo.Record, err error) {
				if err != nil {
					failed.Add(1)
				}
			})
		}
		if err := cl.Flush(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if n := failed.Load(); n > 0 {
			b.Fatalf("%d records failed", n)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
}
