package queue_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/relay-syslog/relay/internal/testfixture"
	"github.com/relay-syslog/relay/queue"
)

// The benchmarks are an external test package so that they can share
// testfixture's entry with the benchmarks of the packages above the queue.

func openBenchQueue(b *testing.B) *queue.Queue {
	b.Helper()
	q, err := queue.Open(queue.Options{Name: "out", Dir: b.TempDir()})
	if err != nil {
		b.Fatalf("Open: %v", err)
	}
	b.Cleanup(func() { q.Close() })
	return q
}

func BenchmarkQueueAppend(b *testing.B) {
	q := openBenchQueue(b)
	e := testfixture.BenchEntry()
	b.SetBytes(int64(len(e.Data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := q.Append(e); err != nil {
			b.Fatal(err)
		}
	}
	if err := q.Flush(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

func BenchmarkQueueAppendParallel(b *testing.B) {
	q := openBenchQueue(b)
	b.SetBytes(200)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		e := testfixture.BenchEntry()
		for pb.Next() {
			if err := q.Append(e); err != nil {
				b.Error(err)
				return
			}
		}
	})
	if err := q.Flush(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkQueueNext measures draining, one op per entry. The queue is
// filled in chunks with the timer stopped, which keeps the disk use of a
// long run bounded.
func BenchmarkQueueNext(b *testing.B) {
	q := openBenchQueue(b)
	e := testfixture.BenchEntry()
	ctx := context.Background()
	b.SetBytes(int64(len(e.Data)))
	b.ReportAllocs()
	b.ResetTimer()
	for remaining := b.N; remaining > 0; {
		b.StopTimer()
		n := min(remaining, 100_000)
		for range n {
			if err := q.Append(e); err != nil {
				b.Fatal(err)
			}
		}
		if err := q.Flush(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for got := 0; got < n; {
			batch, err := q.Next(ctx)
			if err != nil {
				b.Fatal(err)
			}
			got += len(batch.Entries)
			if !bytes.Equal(batch.Entries[0].Data, e.Data) {
				b.Fatal("wrong data")
			}
			if err := q.Done(batch); err != nil {
				b.Fatal(err)
			}
		}
		remaining -= n
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

func BenchmarkAppendEntry(b *testing.B) {
	e := testfixture.BenchEntry()
	buf := make([]byte, 0, 1<<20)
	b.SetBytes(int64(len(e.Data)))
	b.ReportAllocs()
	for b.Loop() {
		if len(buf) > cap(buf)-512 {
			buf = buf[:0]
		}
		buf = queue.AppendEntry(buf, e)
	}
}

func BenchmarkDecodeRecord(b *testing.B) {
	const perRecord = 256
	entries := make([]queue.Entry, perRecord)
	for i := range entries {
		entries[i] = testfixture.BenchEntry()
	}
	rec := queue.AppendRecord(nil, entries)
	b.SetBytes(int64(len(rec)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := queue.DecodeRecord(rec); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perRecord), "ns/entry")
}

// BenchmarkQueueFsync compares queue.fsync = "interval" and "always" with a
// consumer taking and marking done every record as it comes. "burst128"
// appends 128 messages and flushes, as a RELP listener does before it
// acknowledges a window; "stream" appends one message per op and leaves the
// records to fill (by count, size or linger), as plain TCP listeners do.
// Under "always" each record put costs an fdatasync of the data file, and
// each record taken one of the journal.
func BenchmarkQueueFsync(b *testing.B) {
	for _, mode := range []queue.FsyncMode{queue.FsyncInterval, queue.FsyncAlways} {
		for _, burst := range []int{128, 1} {
			name := mode.String() + "/burst128"
			if burst == 1 {
				name = mode.String() + "/stream"
			}
			b.Run(name, func(b *testing.B) {
				q, err := queue.Open(queue.Options{Name: "out", Dir: b.TempDir(), Fsync: mode})
				if err != nil {
					b.Fatalf("Open: %v", err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				consumed := make(chan struct{})
				go func() {
					defer close(consumed)
					for {
						batch, err := q.Next(ctx)
						if err != nil {
							return
						}
						if err := q.Done(batch); err != nil {
							b.Error(err)
							return
						}
					}
				}()
				e := testfixture.BenchEntry()
				b.SetBytes(int64(burst * len(e.Data)))
				for b.Loop() {
					for range burst {
						if err := q.Append(e); err != nil {
							b.Fatal(err)
						}
					}
					if burst > 1 {
						if err := q.Flush(); err != nil {
							b.Fatal(err)
						}
					}
				}
				b.ReportMetric(float64(b.N*burst)/b.Elapsed().Seconds(), "msgs/s")
				cancel()
				<-consumed
				q.Close()
			})
		}
	}
}

// BenchmarkQueueNextInFlight is BenchmarkQueueNext with the records of
// 200 entries each and 25 batches kept in flight, as a TCP output keeps
// them while it waits for confirmations: the journal never empties, so its
// segments rotate and retire.
func BenchmarkQueueNextInFlight(b *testing.B) {
	q := openBenchQueue(b)
	e := testfixture.BenchEntry()
	ctx := context.Background()
	const perRecord, keep = 200, 25
	b.SetBytes(int64(len(e.Data)))
	b.ReportAllocs()
	b.ResetTimer()
	var inflight []*queue.Batch
	for remaining := b.N; remaining > 0; {
		b.StopTimer()
		n := min(remaining, 100_000)
		for i := range n {
			if err := q.Append(e); err != nil {
				b.Fatal(err)
			}
			if (i+1)%perRecord == 0 {
				if err := q.Flush(); err != nil {
					b.Fatal(err)
				}
			}
		}
		if err := q.Flush(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for got := 0; got < n; {
			batch, err := q.Next(ctx)
			if err != nil {
				b.Fatal(err)
			}
			got += len(batch.Entries)
			inflight = append(inflight, batch)
			if len(inflight) > keep {
				if err := q.Done(inflight[0]); err != nil {
					b.Fatal(err)
				}
				inflight = inflight[1:]
			}
		}
		remaining -= n
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
