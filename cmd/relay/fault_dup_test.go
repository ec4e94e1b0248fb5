package main

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relay-syslog/relay/internal/testpeer"
)

// buildPlainRelay builds the relay without the race detector, which could
// not carry the load of the tests that use it.
func buildPlainRelay(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "relay")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// steadySender sends sequence-numbered messages of run to addr over TCP at
// about rate messages per second until stop is closed, reconnecting after
// an error. Messages it cannot send (the relay is down) are skipped, not
// sent late, so the stream stays steady. It returns the next unsent number.
func steadySender(addr, run string, rate int, stop <-chan struct{}) (next *atomic.Int64, done <-chan struct{}) {
	next = new(atomic.Int64)
	fin := make(chan struct{})
	go func() {
		defer close(fin)
		const tick = 10 * time.Millisecond
		per := rate * int(tick) / int(time.Second)
		var c net.Conn
		defer func() {
			if c != nil {
				c.Close()
			}
		}()
		tk := time.NewTicker(tick)
		defer tk.Stop()
		var buf []byte
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
			}
			from := int(next.Load())
			next.Store(int64(from + per))
			if c == nil {
				var err error
				if c, err = net.DialTimeout("tcp", addr, time.Second); err != nil {
					c = nil
					continue
				}
			}
			buf = buf[:0]
			for i := from; i < from+per; i++ {
				m := testpeer.SeqMessage(run, i)
				buf = fmt.Appendf(buf, "%d %s", len(m), m)
			}
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := c.Write(buf); err != nil {
				c.Close()
				c = nil
			}
		}
	}()
	return next, fin
}

var recoveredRE = regexp.MustCompile(`(\d+) records? \((\d+) messages?\) (?:was|were) in flight at the last stop`)

// TestFaultKill9DuplicatesSteady kills the relay with SIGKILL at random
// moments while a steady stream of about 50,000 messages a second flows
// through it to a healthy upstream, and counts the messages the upstream
// gets twice. After a kill only the records in flight (written to the
// upstream, not yet confirmed: the in-flight journal, which the relay
// reports at the next start) may go out again, plus at most one record per
// kill; not what go-diskqueue read since its last sync.
func TestFaultKill9DuplicatesSteady(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test")
	}
	bin := buildPlainRelay(t)
	upstream := testpeer.NewReceiver(t, "127.0.0.1:0")
	const batch = 1024 // queue.batch_messages, the default
	s := newSetup(t, fmt.Sprintf(`
[[output]]
name = "head"
protocol = "tcp"
address = %q
retry_initial = "20ms"
retry_max = "200ms"
queue.batch_messages = %d
[[route]]
name = "all"
outputs = ["head"]
`, upstream.Addr(), batch))
	const rate, kills = 50000, 5
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 7))
	t.Logf("kill timing seed %d", seed)

	stop := make(chan struct{})
	next, senderDone := steadySender(s.tcpAddr, "dup", rate, stop)
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		<-senderDone
	}()

	// replayed sums the messages each start found in flight in the journal.
	replayed := 0
	noteStart := func(p *proc) {
		if m := recoveredRE.FindStringSubmatch(p.logs.String()); m != nil {
			n, _ := strconv.Atoi(m[2])
			replayed += n
		}
	}
	for k := 0; k < kills; k++ {
		p := s.start(t, bin)
		noteStart(p)
		time.Sleep(time.Duration(1000+rng.IntN(1000)) * time.Millisecond) // the fault's moment, not synchronisation
		p.kill9()
	}
	p := s.start(t, bin)
	noteStart(p)
	time.Sleep(500 * time.Millisecond) // steady traffic after the last restart too, not synchronisation
	close(stop)
	<-senderDone
	sent := int(next.Load())
	// Everything the relay holds drains; the upstream count then stays put.
	last := -1
	if !testpeer.WaitFor(2*time.Minute, func() bool {
		d, ok1 := p.metric("relay_queue_depth_records")
		u, ok2 := p.metric("relay_queue_unwritten_messages")
		n := upstream.Count()
		settled := ok1 && ok2 && d == 0 && u == 0 && n == last
		last = n
		return settled
	}) {
		t.Fatalf("the queue did not drain:\n%s", p.logs.String())
	}
	p.stop()
	tally := testpeer.Check("dup", sent, upstream.Messages())
	// Foreign counts frames a kill cut short on the sender's connection,
	// which the relay forwards as they came.
	t.Logf("kill -9 x%d at %d msg/s: %d numbers sent, %d delivered, %d not accepted while the relay was down, %d cut short, %d duplicates (%.0f per kill), %d messages replayed from the journal",
		kills, rate, sent, tally.Delivered(), len(tally.Missing), tally.Foreign, tally.Duplicates, float64(tally.Duplicates)/kills, replayed)
	if bound := replayed + kills*batch; tally.Duplicates > bound {
		t.Errorf("%d duplicates; at most the %d messages in flight at the kills plus one record (%d) per kill, %d, may arrive twice", tally.Duplicates, replayed, batch, bound)
	}
}
