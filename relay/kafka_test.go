package relay

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/relay-syslog/relay/internal/kafkatest"
	"github.com/relay-syslog/relay/internal/testpeer"
	"github.com/relay-syslog/relay/outputs"
)

var stampSeqRE = regexp.MustCompile(`\[relay@32473 origin="edge-7" epoch="(\d+)" seq="(\d+)"\]`)

// TestKafkaOutputThroughRelay: messages a relay receives over TCP reach a
// kafka output's topic, keyed by the relay's id and with the router's stamp
// as headers equal to the RFC 5424 stamp; a reload that changes the topic
// sends later messages to the new topic, as a changed address does for
// other outputs.
func TestKafkaOutputThroughRelay(t *testing.T) {
	const n = 500
	c := kafkatest.Start(t, 3, "logs", 6)
	if err := c.CreateTopic("logs2", 6, nil); err != nil {
		t.Fatal(err)
	}
	brokers := `"` + strings.Join(c.Addrs, `", "`) + `"`
	cfgText := func(topic string) string {
		return `data_dir = "{{DATA}}"
relay_id = "edge-7"
` + listenersTOML() + fmt.Sprintf(`
[[output]]
name = "kafka"
protocol = "kafka"
brokers = [%s]
topic = %q
key = "relay_id"
format = "rfc5424"
stamp_sequence = true
retry_initial = "20ms"
retry_max = "500ms"
[[route]]
name = "all"
outputs = ["kafka"]
`, brokers, topic)
	}
	dir := t.TempDir()
	r := startRelay(t, dir, cfgText("logs"))
	if err := testpeer.SendTCP(r.addr("tcp"), "kr", 0, n, true); err != nil {
		t.Fatal(err)
	}
	check := func(topic string, from, to int) {
		t.Helper()
		var tally testpeer.Tally
		var recs []kafkatest.Record
		for range 60 {
			recs = c.Consume(t, topic)
			var values []string
			for _, rec := range recs {
				values = append(values, rec.Value)
			}
			if tally = testpeer.Check("kr", to, values); tally.Delivered() == to-from {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		if tally.Delivered() != to-from {
			t.Fatalf("topic %s: %v", topic, tally)
		}
		for _, rec := range recs {
			m := stampSeqRE.FindStringSubmatch(rec.Value)
			if m == nil {
				t.Fatalf("record %q has no stamp", rec.Value)
			}
			if rec.Key != "edge-7" || rec.Headers[outputs.KafkaHeaderOrigin] != "edge-7" ||
				rec.Headers[outputs.KafkaHeaderEpoch] != m[1] || rec.Headers[outputs.KafkaHeaderSeq] != m[2] {
				t.Fatalf("record %q: key %q, headers %v", rec.Value, rec.Key, rec.Headers)
			}
		}
	}
	check("logs", 0, n)

	cfg, err := ParseConfig("test.toml", []byte(strings.ReplaceAll(cfgText("logs2"), "{{DATA}}", dir)))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.srv.Reload(cfg); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if err := testpeer.SendTCP(r.addr("tcp"), "kr", n, 2*n, true); err != nil {
		t.Fatal(err)
	}
	check("logs2", n, 2*n)
	if got := r.metric("relay_output_messages_dropped_total", "output", "kafka", "reason", "too_large"); got != 0 {
		t.Fatalf("dropped too_large = %v", got)
	}
}
