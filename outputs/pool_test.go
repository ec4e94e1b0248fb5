package outputs

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relay-syslog/relay/internal/testfixture"
	"github.com/relay-syslog/relay/internal/testpeer"
	"github.com/relay-syslog/relay/metrics"
)

func newPool(t *testing.T, mode PoolMode, probe time.Duration, addrs ...string) (*Pool, *metrics.Metrics) {
	t.Helper()
	m, err := metrics.New(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	var targets []PoolTarget
	for _, a := range addrs {
		targets = append(targets, PoolTarget{Name: a, Dest: tcpDest(a)})
	}
	return NewPool("out", mode, probe, targets, m, nil), m
}

// TestPoolFailoverAndFailback: with the primary down, batches go to the
// secondary; when the primary comes back, the probe finds it and new batches
// go there. No message is lost across both switches.
func TestPoolFailoverAndFailback(t *testing.T) {
	primaryPort := testpeer.FreePort(t)
	primaryAddr := fmt.Sprintf("127.0.0.1:%d", primaryPort)
	secondary := testpeer.NewReceiver(t, "127.0.0.1:0")
	pool, _ := newPool(t, Failover, 100*time.Millisecond, primaryAddr, secondary.Addr())

	q := newTestQueue(t)
	fill(t, q, "f", 5000)
	m := runWorker(t, q, pool)
	if !testpeer.WaitFor(10*time.Second, func() bool { return secondary.Count() >= 5000 }) {
		t.Fatalf("secondary got %d of 5000 while the primary was down", secondary.Count())
	}
	if v := testfixture.CollectorSum(t, m.OutputErrors); v != 0 {
		t.Logf("output errors while failing over: %v", v)
	}

	primary := testpeer.NewReceiver(t, primaryAddr)
	// Keep messages flowing until the probe moves them to the primary.
	next := 0
	if !testpeer.WaitFor(10*time.Second, func() bool {
		testfixture.AppendSeq(t, q, "g", next, next+100)
		next += 100
		return primary.Count() > 0
	}) {
		t.Fatalf("primary never got traffic back after it recovered")
	}
	testfixture.AppendSeq(t, q, "g", next, next+1000)
	next += 1000
	all := func() []string { return append(primary.Messages(), secondary.Messages()...) }
	if !testpeer.WaitFor(10*time.Second, func() bool { return testpeer.Check("g", next, all()).Delivered() == next }) {
		t.Fatalf("after failback: %v", testpeer.Check("g", next, all()))
	}
	if tally := testpeer.Check("f", 5000, all()); len(tally.Missing) > 0 {
		t.Errorf("before failback: %v", tally)
	}
	t.Logf("failover/failback: secondary %d messages, primary %d, 'g' run %v",
		secondary.Count(), primary.Count(), testpeer.Check("g", next, all()))
}

// TestPoolLoadBalance spreads batches over every healthy target.
func TestPoolLoadBalance(t *testing.T) {
	t.Parallel()
	a := testpeer.NewReceiver(t, "127.0.0.1:0")
	b := testpeer.NewReceiver(t, "127.0.0.1:0")
	pool, m := newPool(t, LoadBalance, 100*time.Millisecond, a.Addr(), b.Addr())
	q := newTestQueue(t)
	fill(t, q, "l", 10000) // 100 batches of 100
	runWorker(t, q, pool)
	if !testpeer.WaitFor(30*time.Second, func() bool { return a.Count()+b.Count() >= 10000 }) {
		t.Fatalf("got %d + %d of 10000", a.Count(), b.Count())
	}
	if a.Count() < 3000 || b.Count() < 3000 {
		t.Errorf("uneven spread: %d and %d", a.Count(), b.Count())
	}
	all := append(a.Messages(), b.Messages()...)
	if tally := testpeer.Check("l", 10000, all); len(tally.Missing) > 0 || tally.Duplicates > 0 {
		t.Errorf("%v", tally)
	}
	if got := testfixture.CollectorSum(t, m.TargetSent); got != 10000 {
		t.Errorf("relay_target_messages_sent_total summed = %v, want 10000", got)
	}
}

// TestPoolLoadBalanceTargetDies: one target of two goes away mid-stream;
// everything still arrives, on the other.
func TestPoolLoadBalanceTargetDies(t *testing.T) {
	a := testpeer.NewReceiver(t, "127.0.0.1:0")
	b := testpeer.NewReceiver(t, "127.0.0.1:0")
	pool, _ := newPool(t, LoadBalance, time.Hour, a.Addr(), b.Addr())
	q := newTestQueue(t)
	fill(t, q, "x", 2000)
	runWorker(t, q, pool)
	if !testpeer.WaitFor(10*time.Second, func() bool { return b.Count() > 0 }) {
		t.Fatal("b got nothing")
	}
	b.Close()
	got := b.Messages()
	testfixture.AppendSeq(t, q, "y", 0, 5000)
	if !testpeer.WaitFor(20*time.Second, func() bool { return testpeer.Check("y", 5000, a.Messages()).Delivered() == 5000 }) {
		t.Fatalf("after b died: %v", testpeer.Check("y", 5000, a.Messages()))
	}
	if tally := testpeer.Check("x", 2000, append(a.Messages(), got...)); len(tally.Missing) > 0 {
		t.Errorf("x: %v", tally)
	}
}
