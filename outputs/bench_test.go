package outputs

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relay-syslog/relay/internal/testfixture"
	"github.com/relay-syslog/relay/metrics"
	"github.com/relay-syslog/relay/queue"
)

// benchBatchLen is the number of messages in one Write, as in a full
// queue record at the default queue.batch_messages.
const benchBatchLen = 256

func benchEntries(data []byte) []queue.Entry {
	entries := make([]queue.Entry, benchBatchLen)
	for i := range entries {
		entries[i] = testfixture.BenchEntry()
		entries[i].Data = data
	}
	return entries
}

// discardSink is a TCP server that reads and counts everything sent to it.
type discardSink struct {
	ln    net.Listener
	bytes atomic.Int64
	wg    sync.WaitGroup
}

func newDiscardSink(b *testing.B) *discardSink {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s := &discardSink{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				buf := make([]byte, 256<<10)
				for {
					n, err := c.Read(buf)
					s.bytes.Add(int64(n))
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	b.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

// BenchmarkTCPWrite measures one Write of a 256-message batch to a local
// TCP server that discards what it reads: framing, the 64 KiB buffered
// writer and the write(2) calls of one flush.
func BenchmarkTCPWrite(b *testing.B) {
	for _, framing := range []Framing{OctetCounting, LF} {
		name := map[Framing]string{OctetCounting: "octet-counting", LF: "lf"}[framing]
		b.Run(name, func(b *testing.B) {
			sink := newDiscardSink(b)
			t := NewTCP(TCPOptions{Address: sink.ln.Addr().String(), Framing: framing,
				ConnectTimeout: time.Second, WriteTimeout: 10 * time.Second})
			ctx := context.Background()
			if err := t.Connect(ctx); err != nil {
				b.Fatal(err)
			}
			defer t.Close()
			entries := benchEntries(testfixture.BenchMessage)
			b.SetBytes(int64(len(entries) * len(testfixture.BenchMessage)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := t.Write(ctx, entries); err != nil {
					b.Fatal(err)
				}
				// The marks list grows by one per Write until Settled
				// trims it, as the Worker does after every batch.
				if _, err := t.Settled(time.Now()); err != nil {
					b.Fatal(err)
				}
			}
			reportPerMessage(b)
		})
	}
}

// BenchmarkTCPSettled measures the connection check a Worker makes after
// every batch: a non-blocking MSG_PEEK and a SIOCOUTQ ioctl.
func BenchmarkTCPSettled(b *testing.B) {
	sink := newDiscardSink(b)
	t := NewTCP(TCPOptions{Address: sink.ln.Addr().String(), ConnectTimeout: time.Second})
	if err := t.Connect(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer t.Close()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := t.Settled(time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFileWrite measures one Write of a 256-message batch to a file,
// with and without line feeds to escape. The file is truncated now and
// then, outside the timer, so a long run does not fill the disk.
func BenchmarkFileWrite(b *testing.B) {
	withLF := append([]byte{}, testfixture.BenchMessage...)
	for i := 40; i < len(withLF); i += 40 {
		withLF[i] = '\n'
	}
	for _, c := range []struct {
		name string
		data []byte
	}{{"plain", testfixture.BenchMessage}, {"escaped-lf", withLF}} {
		b.Run(c.name, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "messages.log")
			f := NewFile(path)
			ctx := context.Background()
			if err := f.Connect(ctx); err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			entries := benchEntries(c.data)
			b.SetBytes(int64(len(entries) * len(c.data)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if i%1000 == 999 {
					b.StopTimer()
					if err := os.Truncate(path, 0); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				if _, err := f.Write(ctx, entries); err != nil {
					b.Fatal(err)
				}
			}
			reportPerMessage(b)
		})
	}
}

// reportPerMessage adds the cost and rate per message to a benchmark whose
// op is one batch.
func reportPerMessage(b *testing.B) {
	msgs := float64(b.N) * benchBatchLen
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/msgs, "ns/msg")
	b.ReportMetric(msgs/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkWorkerTCP measures the whole output path, one op per message: a
// producer keeps a real queue full while a Worker drains it to a local TCP
// server that discards, until every byte has arrived. With the default
// confirm_delay the Worker may hold at most 16 MiB written but not yet
// confirmed, which caps its rate at about 16 MiB per confirm_delay.
func BenchmarkWorkerTCP(b *testing.B) {
	for _, confirm := range []time.Duration{200 * time.Millisecond, 50 * time.Millisecond, 0} {
		b.Run(fmt.Sprintf("confirm_delay=%s", confirm), func(b *testing.B) {
			sink := newDiscardSink(b)
			q, err := queue.Open(queue.Options{Name: "out", Dir: filepath.Join(b.TempDir(), "out")})
			if err != nil {
				b.Fatal(err)
			}
			defer q.Close()
			m, err := metrics.New(prometheus.NewRegistry())
			if err != nil {
				b.Fatal(err)
			}
			dest := NewTCP(TCPOptions{Address: sink.ln.Addr().String(), ConnectTimeout: time.Second,
				WriteTimeout: 10 * time.Second, ConfirmDelay: confirm})
			w := NewWorker(WorkerOptions{Name: "out", RetryInitial: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond},
				q, dest, m, slog.New(slog.NewTextHandler(io.Discard, nil)))
			e := benchEntries(testfixture.BenchMessage)[0]
			frame := int64(len(fmt.Sprint(len(testfixture.BenchMessage))) + 1 + len(testfixture.BenchMessage))
			want := frame * int64(b.N)
			b.SetBytes(int64(len(testfixture.BenchMessage)))
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
			for sink.bytes.Load() < want && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			b.StopTimer()
			cancel()
			wg.Wait()
			if got := sink.bytes.Load(); got < want {
				b.Fatalf("sink got %d bytes, want %d", got, want)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// BenchmarkFilePerHost measures a batch of 256 RFC 3164 messages from 50
// hosts through the formatter (parse, template, path) and a file output
// with a path per host: what a head server does per batch.
func BenchmarkFilePerHost(b *testing.B) {
	dir := b.TempDir()
	f, err := NewFileWith(FileOptions{Path: dir + "/{hostname}.log"})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := f.Connect(ctx); err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	fm := &formatter{template: mustTemplate(b, "{timestamp_bsd} {hostname} {tag} {message}"), path: f.PathTemplate(),
		normalize: map[string]Normalize{"in": {Location: time.UTC}}}
	entries := make([]queue.Entry, benchBatchLen)
	var n int64
	for i := range entries {
		msg := fmt.Sprintf("<134>Dec  6 12:34:56 host%02d nginx[812]: GET /index.html 200 %d bytes in 3 ms", i%50, i)
		entries[i] = queue.Entry{Received: time.Now(), Listener: "in", Data: []byte(msg)}
		n += int64(len(msg))
	}
	b.SetBytes(n)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if i%1000 == 999 {
			b.StopTimer()
			files, _ := filepath.Glob(dir + "/*.log")
			for _, p := range files {
				if err := os.Truncate(p, 0); err != nil {
					b.Fatal(err)
				}
			}
			b.StartTimer()
		}
		out := fm.apply(entries)
		if _, err := f.WritePaths(ctx, out, fm.paths); err != nil {
			b.Fatal(err)
		}
	}
	reportPerMessage(b)
}
