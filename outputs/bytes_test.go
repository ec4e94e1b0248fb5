package outputs

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/relay-syslog/relay/internal/relp"
	"github.com/relay-syslog/relay/internal/testpeer"
	"github.com/relay-syslog/relay/metrics"
	"github.com/relay-syslog/relay/queue"
)

// bytesTestMessages are what every case sends: RFC 3164 and RFC 5424
// messages, one without a PRI and one with a line feed inside, so that a
// converting output writes a different number of bytes than it took from
// the queue.
func bytesTestMessages(run string, n int) []string {
	var msgs []string
	for i := range n {
		switch i % 4 {
		case 0:
			msgs = append(msgs, fmt.Sprintf("<13>Nov 23 10:00:00 host app[1]: %s %d", run, i))
		case 1:
			msgs = append(msgs, fmt.Sprintf("<165>1 2026-01-02T03:04:05.123Z host app - ID1 [x@1 a=\"b\"] %s %d", run, i))
		case 2:
			msgs = append(msgs, fmt.Sprintf("no pri %s %d", run, i))
		case 3:
			msgs = append(msgs, fmt.Sprintf("<14>Nov 23 10:00:00 host app: %s %d\nsecond line", run, i))
		}
	}
	return msgs
}

// runBytesWorker queues msgs, runs a Worker with format over dest until the
// test ends, and returns the relay_output_bytes_sent_total counter.
func runBytesWorker(t *testing.T, format Format, dest Destination, msgs []string) prometheus.Counter {
	t.Helper()
	q := newTestQueue(t)
	for _, m := range msgs {
		if err := q.Append(queue.Entry{Received: time.Now(), Listener: "l", Source: "192.0.2.7:514", Data: []byte(m)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Flush(); err != nil {
		t.Fatal(err)
	}
	m, err := metrics.New(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	w := NewWorker(WorkerOptions{
		Name: "out", RetryInitial: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond,
		Format:    format,
		Normalize: map[string]Normalize{"l": {Location: time.UTC, FillHostname: true, AddOrigin: true}},
	}, q, dest, m, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return m.OutputBytes.WithLabelValues("out")
}

// TestOutputBytesAreWhatTheUpstreamRead: relay_output_bytes_sent_total
// counts the bytes the upstream reads (after conversion, with framing), for
// every destination and format.
func TestOutputBytesAreWhatTheUpstreamRead(t *testing.T) {
	const n = 400
	formats := []Format{Raw, RFC5424, RFC3164}
	for _, format := range formats {
		for _, framing := range []Framing{OctetCounting, LF} {
			t.Run(fmt.Sprintf("tcp-%v-%v", format, framing), func(t *testing.T) {
				recv := testpeer.NewReceiver(t, "127.0.0.1:0")
				d := tcpDest(recv.Addr())
				d.opts.Framing = framing
				msgs := bytesTestMessages("tcp", n)
				if framing == LF {
					// A line feed would split a message under LF framing.
					for i := range msgs {
						msgs[i] = fmt.Sprintf("<13>Nov 23 10:00:00 host app: lf %d", i)
					}
				}
				sent := runBytesWorker(t, format, d, msgs)
				if !testpeer.WaitFor(20*time.Second, func() bool { return recv.Count() >= n }) {
					t.Fatalf("received %d of %d", recv.Count(), n)
				}
				waitBytesEqual(t, sent, recv.BytesRead)
			})
		}
		t.Run(fmt.Sprintf("udp-%v", format), func(t *testing.T) {
			recv := testpeer.NewUDPReceiver(t, "127.0.0.1:0")
			// Few enough datagrams that loopback does not drop any.
			sent := runBytesWorker(t, format, NewUDP(recv.Addr(), time.Second), bytesTestMessages("udp", 40))
			if !testpeer.WaitFor(20*time.Second, func() bool { return len(recv.Messages()) >= 40 }) {
				t.Fatalf("received %d of 40 datagrams", len(recv.Messages()))
			}
			waitBytesEqual(t, sent, recv.BytesRead)
		})
		t.Run(fmt.Sprintf("file-%v", format), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "out.log")
			sent := runBytesWorker(t, format, NewFile(path), bytesTestMessages("file", n))
			if !testpeer.WaitFor(20*time.Second, func() bool { return len(testpeer.ReadLines(path)) >= n }) {
				t.Fatalf("file has %d of %d lines", len(testpeer.ReadLines(path)), n)
			}
			waitBytesEqual(t, sent, func() int64 {
				st, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				return st.Size()
			})
		})
		t.Run(fmt.Sprintf("relp-%v", format), func(t *testing.T) {
			counted := &countingListener{}
			s := newRELPServer(t, func(s *relpServer) {
				counted.Listener = s.ln
				s.ln = counted
			})
			sent := runBytesWorker(t, format, relpDest(s.addr(), 16), bytesTestMessages("relp", n))
			if !testpeer.WaitFor(20*time.Second, func() bool { return len(s.messages()) >= n }) {
				t.Fatalf("received %d of %d", len(s.messages()), n)
			}
			// The session's open command is on the wire too; it is not a
			// message.
			open := int64(len(relp.AppendFrame(nil, 1, relp.CmdOpen, relp.AppendOffers(nil, relp.ClientOffers()))))
			waitBytesEqual(t, sent, func() int64 { return counted.read.Load() - open })
		})
	}
}

// waitBytesEqual waits until the counter equals what the upstream read; the
// counter is bumped after the write returns, the reader may lag behind it.
func waitBytesEqual(t *testing.T, sent prometheus.Counter, read func() int64) {
	t.Helper()
	value := func() int64 {
		var m dto.Metric
		if err := sent.Write(&m); err != nil {
			t.Fatal(err)
		}
		return int64(m.GetCounter().GetValue())
	}
	ok := testpeer.WaitFor(20*time.Second, func() bool { return value() == read() })
	if !ok || read() == 0 {
		t.Errorf("relay_output_bytes_sent_total = %d, the upstream read %d bytes", value(), read())
	}
}

// countingListener counts the bytes read from every connection it accepts.
type countingListener struct {
	net.Listener
	read atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConnRead{Conn: c, n: &l.read}, nil
}

type countingConnRead struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConnRead) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}
