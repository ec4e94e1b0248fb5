package main

import (
	"fmt"
	"strings"
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
	p := sendThroughKills(t, s, "kk", total, chunk, kills, 100*time.Millisecond, time.Second)
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
