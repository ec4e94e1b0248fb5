package main

import (
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/relay-syslog/relay/internal/kafkatest"
	"github.com/relay-syslog/relay/internal/testpeer"
)

// TestFaultKafkaHeadKill9: two head relays (the real binary) consume a
// 6-partition topic on 3 brokers as one group and forward to one upstream.
// One is killed with SIGKILL while records stream in; the group gives its
// partitions to the other, which reads again from the offsets the dead
// one committed. The dead relay is then started without its kafka
// listener, only to send what its queue held. Every message arrives;
// duplicates are reported.
func TestFaultKafkaHeadKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test")
	}
	const topic, group, total = "syslog", "heads", 60000
	c := kafkatest.Start(t, 3, topic, 6, kafkatest.ShortSessions)
	upstream := testpeer.NewReceiver(t, "127.0.0.1:0")
	outputs := fmt.Sprintf(`
[[output]]
name = "head"
protocol = "tcp"
address = %q
retry_initial = "20ms"
retry_max = "200ms"
[[route]]
name = "all"
outputs = ["head"]
`, upstream.Addr())
	kafka := kafkatest.ListenerTOML("kafka", c.Addrs, topic, group, "")
	sa, sb := newSetup(t, outputs+kafka), newSetup(t, outputs+kafka)
	a := sa.start(t, relayBin)
	b := sb.start(t, relayBin)
	c.WaitGroup(t, group, "shared by two members", func(g *kfake.GroupInfo) bool {
		return len(g.Members) == 2 && g.NumAssigned() == 6 && g.Members[0].NumAssigned() > 0 && g.Members[1].NumAssigned() > 0
	})

	producer := c.Producer(t)
	// The producer streams in chunks while head a is killed.
	produced := make(chan error, 1)
	var sent atomic.Int64
	go func() {
		for from := 0; from < total; from += 1000 {
			chunk := make([]string, 0, 1000)
			for i := from; i < from+1000; i++ {
				chunk = append(chunk, testpeer.SeqMessage("hk", i))
			}
			if err := kafkatest.ProduceAll(producer, topic, chunk); err != nil {
				produced <- err
				return
			}
			sent.Store(int64(from + 1000))
		}
		produced <- nil
	}()
	// Kill a while it consumes: once it has read some of its share.
	if !testpeer.WaitFor(time.Minute, func() bool {
		n, ok := a.metric("relay_kafka_records_read_total")
		return ok && n >= 5000
	}) {
		t.Fatalf("head a read nothing:\n%s", a.logs.String())
	}
	readByA, _ := a.metric("relay_kafka_records_read_total")
	a.kill9()
	t.Logf("head a killed after reading %v records, %d produced by then", readByA, sent.Load())
	if err := <-produced; err != nil {
		t.Fatalf("produce: %v", err)
	}
	c.WaitGroup(t, group, "left to the survivor", func(g *kfake.GroupInfo) bool {
		return len(g.Members) == 1 && g.Members[0].NumAssigned() == 6
	})

	// The dead head's queue holds what it accepted and had not
	// delivered; a run without the kafka listener sends it.
	if err := os.WriteFile(sa.cfgPath, []byte(strings.Replace(mustRead(t, sa.cfgPath), kafka, "", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	a = sa.start(t, relayBin)
	if !testpeer.WaitFor(3*time.Minute, func() bool { return testpeer.Check("hk", total, upstream.Messages()).Delivered() == total }) {
		t.Fatalf("after kill -9 of a head: %v\nhead b:\n%s", testpeer.Check("hk", total, upstream.Messages()), b.logs.String())
	}
	readByB, _ := b.metric("relay_kafka_records_read_total")
	a.stop()
	b.stop()
	tally := testpeer.Check("hk", total, upstream.Messages())
	if tally.Foreign != 0 {
		t.Errorf("foreign messages: %v", tally)
	}
	t.Logf("kill -9 of a head: produced %d, a read %v before the kill, b read %v, delivered %d, duplicates %d",
		total, readByA, readByB, tally.Delivered(), tally.Duplicates)
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
