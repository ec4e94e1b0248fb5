package kafkatest

import (
	"fmt"
	"testing"
)

// TestProduceConsume: what kcat produces to a 3-broker cluster, kcat reads
// back, every record with its key.
func TestProduceConsume(t *testing.T) {
	c := Start(t, 3, "t", 6)
	if len(c.Addrs) != 3 {
		t.Fatalf("addresses %v, want 3", c.Addrs)
	}
	var values []string
	for i := range 50 {
		values = append(values, fmt.Sprintf("message %d", i))
	}
	c.Produce(t, "t", "host-a", values)
	recs := c.Consume(t, "t")
	seen := map[string]bool{}
	for _, r := range recs {
		if r.Key != "host-a" {
			t.Fatalf("record %q has key %q", r.Value, r.Key)
		}
		seen[r.Value] = true
	}
	for _, v := range values {
		if !seen[v] {
			t.Fatalf("%q not read back (%d records)", v, len(recs))
		}
	}
}
