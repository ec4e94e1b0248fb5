package outputs

import (
	"bufio"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relay-syslog/relay/internal/testfixture"
	"github.com/relay-syslog/relay/internal/testpeer"
	"github.com/relay-syslog/relay/metrics"
)

// TestWorkerCountsPossiblyLostAtReset: an upstream that stops reading, keeps
// the connection open past confirm_delay and then closes it with data
// unread (its kernel sends a reset) loses what it had acknowledged; plain
// TCP cannot know which messages those were. Every one lost must be among
// those counted as possibly lost, and the rest arrive on the next
// connection.
func TestWorkerCountsPossiblyLostAtReset(t *testing.T) {
	t.Parallel()
	tcp := func(addr string) Destination {
		return NewTCP(TCPOptions{Address: addr, Framing: LF, ConnectTimeout: time.Second,
			WriteTimeout: 30 * time.Second, ConfirmDelay: 50 * time.Millisecond})
	}
	t.Run("tcp", func(t *testing.T) {
		t.Parallel()
		countsPossiblyLostAtReset(t, tcp)
	})
	// A failover pool whose first target resets: the batches go on to the
	// second (here the same listener), and what the first confirmed and
	// may not have read is counted as for a single target.
	t.Run("pool", func(t *testing.T) {
		t.Parallel()
		countsPossiblyLostAtReset(t, func(addr string) Destination {
			m, err := metrics.New(prometheus.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			return NewPool("out", Failover, time.Minute, []PoolTarget{{Name: "a", Dest: tcp(addr)}, {Name: "b", Dest: tcp(addr)}}, m, nil)
		})
	})
}

func countsPossiblyLostAtReset(t *testing.T, dest func(addr string) Destination) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	const stopAfter, first, n = 500, 800, 1000
	var (
		mu       sync.Mutex
		received []string
	)
	stopped := make(chan struct{})
	closeFirst := make(chan struct{})
	go func() {
		// The first connection: read stopAfter lines, then read nothing
		// more and close when told, with what arrived meanwhile unread.
		c, err := ln.Accept()
		if err != nil {
			return
		}
		r := bufio.NewReader(c)
		for i := 0; i < stopAfter; i++ {
			line, err := r.ReadString('\n')
			if err != nil {
				break
			}
			mu.Lock()
			received = append(received, strings.TrimSuffix(line, "\n"))
			mu.Unlock()
		}
		close(stopped)
		<-closeFirst
		c.Close()
		// Later connections are read in full.
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				s := bufio.NewScanner(c)
				for s.Scan() {
					mu.Lock()
					received = append(received, s.Text())
					mu.Unlock()
				}
			}()
		}
	}()
	messages := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), received...)
	}

	q := newTestQueue(t)
	testfixture.AppendSeq(t, q, "pl", 0, first)
	d := dest(ln.Addr().String())
	logs := &lockedBuffer{}
	m := startWorker(t, WorkerOptions{}, q, d, logs)
	<-stopped
	// The rest of the first messages fit in the peer's socket buffer: they
	// are acknowledged, and confirmed confirm_delay later.
	if !testpeer.WaitFor(30*time.Second, func() bool { return q.Depth() == 0 }) {
		t.Fatalf("the first %d messages were not confirmed: queue depth %d", first, q.Depth())
	}
	close(closeFirst)
	// The next batch finds the connection reset.
	testfixture.AppendSeq(t, q, "pl", first, n)
	if !testpeer.WaitFor(30*time.Second, func() bool {
		return testpeer.Check("pl", n, messages()).Delivered() >= stopAfter+n-first
	}) {
		t.Fatalf("after the reset: %v", testpeer.Check("pl", n, messages()))
	}
	tally := testpeer.Check("pl", n, messages())
	possiblyLost := testfixture.CollectorSum(t, m.OutputPossiblyLost)
	t.Logf("%v; possibly lost %v", tally, possiblyLost)
	if len(tally.Missing) == 0 {
		t.Fatalf("the upstream lost nothing; the test did not reproduce the case: %v", tally)
	}
	for _, seq := range tally.Missing {
		if seq < stopAfter || seq >= first {
			t.Errorf("message %d missing, outside what the upstream held unread", seq)
		}
	}
	if possiblyLost < float64(len(tally.Missing)) {
		t.Errorf("%d messages lost, %v counted as possibly lost", len(tally.Missing), possiblyLost)
	}
	if !strings.Contains(logs.String(), "possibly_lost_messages") {
		t.Errorf("no log line about the possibly lost messages:\n%s", logs.String())
	}
}
