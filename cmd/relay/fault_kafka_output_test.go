package main

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relay-syslog/relay/internal/kafkatest"
	"github.com/relay-syslog/relay/internal/testpeer"
)

// TestFaultKafkaKill9: the relay is killed with SIGKILL at random moments
// while sequence-numbered messages flow through a kafka output to a
// 3-broker, 6-partition kfake cluster. As in TestFaultKill9Repeatedly, a
// chunk counts as accepted only once the relay's metrics showed it accepted
// and written; a chunk cut off by a kill is sent again. In the end kcat
// reads every message from the topic; duplicates are reported.
func TestFaultKafkaKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test")
	}
	c := kafkatest.Start(t, 3, "logs", 6)
	kafkatest.Kcat(t)
	s := newSetup(t, fmt.Sprintf(`
[[output]]
name = "kafka"
protocol = "kafka"
brokers = [%s]
topic = "logs"
retry_initial = "20ms"
retry_max = "200ms"
[[route]]
name = "all"
outputs = ["kafka"]
`, `"`+strings.Join(c.Addrs, `", "`)+`"`))
	const total, chunk, kills = 60000, 2000, 6
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 42))
	t.Logf("kill timing seed %d", seed)

	var proven atomic.Int64 // messages [0, proven) are known accepted
	for k := 0; k < kills; k++ {
		p := s.start(t, relayBin)
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			var sentThisRun float64
			for from := int(proven.Load()); from < total; from += chunk {
				select {
				case <-stop:
					return
				default:
				}
				if err := testpeer.SendTCP(s.tcpAddr, "kk", from, from+chunk, true); err != nil {
					return
				}
				sentThisRun += chunk
				ok := testpeer.WaitFor(5*time.Second, func() bool {
					acc, up1 := p.metric("relay_messages_accepted_total")
					unw, up2 := p.metric("relay_queue_unwritten_messages")
					return up1 && up2 && acc >= sentThisRun && unw == 0
				})
				if !ok {
					return
				}
				proven.Store(int64(from + chunk))
			}
		}()
		time.Sleep(time.Duration(100+rng.IntN(900)) * time.Millisecond) // the fault's moment, not synchronisation
		p.kill9()
		close(stop)
		<-done
	}
	p := s.start(t, relayBin)
	for from := int(proven.Load()); from < total; from += chunk {
		if err := testpeer.SendTCP(s.tcpAddr, "kk", from, from+chunk, true); err != nil {
			t.Fatal(err)
		}
	}
	if !testpeer.WaitFor(2*time.Minute, func() bool {
		depth, ok := p.metric("relay_queue_depth_records", `output="kafka"`)
		return ok && depth == 0
	}) {
		t.Fatalf("the queue did not drain\n%s", p.logs.String())
	}
	var tally testpeer.Tally
	for range 30 { // the last records may still be on their way
		var values []string
		for _, r := range c.Consume(t, "logs") {
			values = append(values, r.Value)
		}
		if tally = testpeer.Check("kk", total, values); tally.Delivered() == total {
			break
		}
		time.Sleep(time.Second)
	}
	p.stop()
	if tally.Delivered() != total || tally.Foreign > 0 {
		t.Fatalf("after %d kills: %v\n%s", kills, tally, p.logs.String())
	}
	t.Logf("kafka kill -9 x%d: %v", kills, tally)
}
