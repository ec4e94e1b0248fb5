package relay

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/relay-syslog/relay/internal/kafkatest"
	"github.com/relay-syslog/relay/internal/testfixture"
	"github.com/relay-syslog/relay/internal/testpeer"
)

const kafkaTopic = "syslog"

// kafkaFileRelay runs a relay whose listeners (TOML) all go to one file
// output; it returns the relay and the file's path.
func kafkaFileRelay(t *testing.T, listeners string) (*testRelay, string) {
	t.Helper()
	dir := t.TempDir()
	out := filepath.Join(dir, "messages.log")
	r := startRelay(t, dir, `data_dir = "{{DATA}}/q"`+listeners+fmt.Sprintf(`
[[output]]
name = "file"
protocol = "file"
path = %q

[[route]]
name = "all"
outputs = ["file"]
`, out))
	return r, out
}

func seqMessages(run string, from, to int) []string {
	msgs := make([]string, 0, to-from)
	for i := from; i < to; i++ {
		msgs = append(msgs, testpeer.SeqMessage(run, i))
	}
	return msgs
}

// waitAll waits until every message 0..n-1 of run is in the union of the
// files and returns the tally.
func waitAll(t *testing.T, run string, n int, files ...string) testpeer.Tally {
	t.Helper()
	read := func() []string {
		var lines []string
		for _, f := range files {
			lines = append(lines, testpeer.ReadLines(f)...)
		}
		return lines
	}
	if !testpeer.WaitFor(90*time.Second, func() bool { return testpeer.Check(run, n, read()).Delivered() == n }) {
		t.Fatalf("run %s: %v", run, testpeer.Check(run, n, read()))
	}
	return testpeer.Check(run, n, read())
}

// TestKafkaListenerConsumesAndCommits: records produced by a franz-go
// client to a 6-partition topic on 3 brokers all arrive in the file, byte
// for byte, and the group's committed offsets reach the end of every
// partition; the lag gauge falls to 0.
func TestKafkaListenerConsumesAndCommits(t *testing.T) {
	needLong(t)
	t.Parallel()
	c := kafkatest.Start(t, 3, kafkaTopic, 6, kafkatest.ShortSessions)
	brokers := c.ListenAddrs()
	r, out := kafkaFileRelay(t, kafkatest.ListenerTOML("kafka", brokers, kafkaTopic, "heads", ""))
	const n = 3000
	c.ProduceKgo(t, kafkaTopic, seqMessages("kc", 0, n))
	tally := waitAll(t, "kc", n, out)
	if tally.Duplicates != 0 || tally.Foreign != 0 {
		t.Errorf("one relay, no fault: %v", tally)
	}
	if !testpeer.WaitFor(60*time.Second, func() bool { return c.Committed("heads", kafkaTopic) == n }) {
		t.Errorf("group committed %d records, want %d", c.Committed("heads", kafkaTopic), n)
	}
	if got := r.metric("relay_kafka_records_read_total", "listener", "kafka", "topic", kafkaTopic); got != n {
		t.Errorf("relay_kafka_records_read_total = %v, want %d", got, n)
	}
	if got := r.metric("relay_messages_accepted_total", "listener", "kafka"); got != n {
		t.Errorf("relay_messages_accepted_total = %v, want %d", got, n)
	}
	if got := r.metric("relay_kafka_consumer_lag", "listener", "kafka"); got != 0 {
		t.Errorf("relay_kafka_consumer_lag summed = %v, want 0", got)
	}
	if got := r.metric("relay_kafka_commit_errors_total", "listener", "kafka"); got != 0 {
		t.Errorf("relay_kafka_commit_errors_total = %v, want 0", got)
	}
}

// TestKafkaListenerKcat: what kcat (librdkafka, a client the relay's code
// shares nothing with) produces arrives.
func TestKafkaListenerKcat(t *testing.T) {
	needLong(t)
	t.Parallel()
	c := kafkatest.Start(t, 3, kafkaTopic, 6, kafkatest.ShortSessions)
	brokers := c.ListenAddrs()
	_, out := kafkaFileRelay(t, kafkatest.ListenerTOML("kafka", brokers, kafkaTopic, "heads", ""))
	const n = 2000
	c.Produce(t, kafkaTopic, "", seqMessages("kcat", 0, n))
	tally := waitAll(t, "kcat", n, out)
	if tally.Duplicates != 0 || tally.Foreign != 0 {
		t.Errorf("one relay, no fault: %v", tally)
	}
	want := testpeer.SeqMessage("kcat", 17)
	if lines := testpeer.ReadLines(out); !strings.Contains("\n"+strings.Join(lines, "\n")+"\n", "\n"+want+"\n") {
		t.Errorf("message not byte-exact in the file: want line %q", want)
	}
}

// TestKafkaListenerGroupShares: two relays in one group share the six
// partitions and together deliver everything; when one stops, the other
// takes its partitions and goes on where it committed.
func TestKafkaListenerGroupShares(t *testing.T) {
	needLong(t)
	t.Parallel()
	c := kafkatest.Start(t, 3, kafkaTopic, 6, kafkatest.ShortSessions)
	brokers := c.ListenAddrs()
	a, outA := kafkaFileRelay(t, kafkatest.ListenerTOML("kafka", brokers, kafkaTopic, "heads", ""))
	_, outB := kafkaFileRelay(t, kafkatest.ListenerTOML("kafka", brokers, kafkaTopic, "heads", ""))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	g, err := c.WaitGroupInfo(ctx, "heads", func(g *kfake.GroupInfo) bool {
		return g != nil && g.State == "Stable" && len(g.Members) == 2 && g.NumAssigned() == 6 &&
			g.Members[0].NumAssigned() > 0 && g.Members[1].NumAssigned() > 0
	})
	if err != nil {
		t.Fatalf("group did not share the partitions between two members: %+v", g)
	}
	const n = 3000
	c.ProduceKgo(t, kafkaTopic, seqMessages("gs", 0, n))
	tally := waitAll(t, "gs", n, outA, outB)
	ta, tb := testpeer.Check("gs", n, testpeer.ReadLines(outA)), testpeer.Check("gs", n, testpeer.ReadLines(outB))
	if ta.Delivered() == 0 || tb.Delivered() == 0 {
		t.Errorf("one relay got nothing: a %d, b %d", ta.Delivered(), tb.Delivered())
	}
	t.Logf("shared: a %d, b %d, %v", ta.Delivered(), tb.Delivered(), tally)

	// A clean stop commits what a stored and leaves the group: b takes
	// every partition and reads only what came after.
	a.stop()
	c.ProduceKgo(t, kafkaTopic, seqMessages("gs2", 0, n))
	tally = waitAll(t, "gs2", n, outA, outB)
	if got := testpeer.Check("gs2", n, testpeer.ReadLines(outA)).Delivered(); got != 0 {
		t.Errorf("stopped relay delivered %d of the second run", got)
	}
	if tally.Duplicates != 0 {
		t.Errorf("after a clean stop: %v", tally)
	}
	if all := waitAll(t, "gs", n, outA, outB); all.Duplicates != 0 {
		t.Errorf("a clean stop made b read again what a had stored: %v", all)
	}
}

// TestKafkaListenerStampHeaders: records carrying a relay's stamp in their
// headers feed dedup: the second copy is dropped and counted.
func TestKafkaListenerStampHeaders(t *testing.T) {
	needLong(t)
	t.Parallel()
	c := kafkatest.Start(t, 3, kafkaTopic, 6, kafkatest.ShortSessions)
	brokers := c.ListenAddrs()
	r, out := kafkaFileRelay(t, kafkatest.ListenerTOML("kafka", brokers, kafkaTopic, "heads", "dedup = true"))
	stamp := []kgo.RecordHeader{
		{Key: KafkaHeaderOrigin, Value: []byte("edge-1")},
		{Key: KafkaHeaderEpoch, Value: []byte("4")},
		{Key: KafkaHeaderSeq, Value: []byte("99")},
	}
	msg := testpeer.SeqMessage("st", 0)
	c.ProduceKgo(t, kafkaTopic, []string{msg}, stamp...)
	c.ProduceKgo(t, kafkaTopic, []string{msg}, stamp...)
	// An unstamped record after both: once it is in the file, both
	// stamped copies were read.
	c.ProduceKgo(t, kafkaTopic, seqMessages("st2", 0, 1))
	if !testpeer.WaitFor(90*time.Second, func() bool {
		return r.metric("relay_listener_messages_received_total", "listener", "kafka") == 3 &&
			testpeer.Check("st2", 1, testpeer.ReadLines(out)).Delivered() == 1
	}) {
		t.Fatalf("received %v, want 3", r.metric("relay_listener_messages_received_total", "listener", "kafka"))
	}
	if got := r.metric("relay_dedup_duplicates_total"); got != 1 {
		t.Errorf("relay_dedup_duplicates_total = %v, want 1", got)
	}
	if !testpeer.WaitFor(30*time.Second, func() bool { return r.metric("relay_output_messages_sent_total", "output", "file") == 2 }) {
		t.Errorf("file output sent %v, want 2", r.metric("relay_output_messages_sent_total", "output", "file"))
	}
	if tally := testpeer.Check("st", 1, testpeer.ReadLines(out)); tally.Delivered() != 1 || tally.Duplicates != 0 {
		t.Errorf("stamped message: %v", tally)
	}
}

func TestKafkaStampHeaders(t *testing.T) {
	h := func(kv ...string) []kgo.RecordHeader {
		var hs []kgo.RecordHeader
		for i := 0; i < len(kv); i += 2 {
			hs = append(hs, kgo.RecordHeader{Key: kv[i], Value: []byte(kv[i+1])})
		}
		return hs
	}
	for _, tc := range []struct {
		headers []kgo.RecordHeader
		ok      bool
	}{
		{h("relay.origin", "e", "relay.epoch", "3", "relay.seq", "7"), true},
		{h("relay.seq", "7", "relay.origin", "e", "x", "y", "relay.epoch", "3"), true},
		{h("relay.origin", "e", "relay.epoch", "3"), false},
		{h("relay.origin", "", "relay.epoch", "3", "relay.seq", "7"), false},
		{h("relay.origin", "e", "relay.epoch", "4294967296", "relay.seq", "7"), false},
		{h("relay.origin", "e", "relay.epoch", "3", "relay.seq", "0"), false},
		{h("relay.origin", "e", "relay.epoch", "3", "relay.seq", "-1"), false},
		{nil, false},
	} {
		origin, epoch, seq, ok := kafkaStamp(tc.headers)
		if ok != tc.ok || ok && (origin != "e" || epoch != 3 || seq != 7) {
			t.Errorf("kafkaStamp(%v) = %q %d %d %v, want ok %v", tc.headers, origin, epoch, seq, ok, tc.ok)
		}
	}
}

func TestKafkaListenerConfigProblems(t *testing.T) {
	for _, tc := range []struct {
		listener string
		want     []string
	}{
		{`protocol = "kafka"`, []string{
			"listener[0].brokers: is required",
			"listener[0].topics: is required",
			"listener[0].group: is required",
		}},
		{`protocol = "kafka"
brokers = ["nohost"]
topics = ["t"]
group = "g"
address = "127.0.0.1:514"
session_timeout = "100ms"
allowed_networks = ["10.0.0.0/8"]`, []string{
			`line 5: listener[0].brokers: invalid address "nohost"`,
			`line 8: listener[0].address: is not used by protocol "kafka"`,
			"line 9: listener[0].session_timeout: 100ms is out of range",
			"line 10: listener[0].allowed_networks: does not apply to kafka listeners",
		}},
		{`protocol = "kafka"
brokers = ["127.0.0.1:9092"]
topics = ["syslog", "sys log", "syslog"]
group = "g"`, []string{
			`line 6: listener[0].topics: invalid topic "sys log"`,
			`line 6: listener[0].topics: "syslog" is named twice`,
		}},
		{`protocol = "tcp"
address = "127.0.0.1:0"
group = "g"`, []string{`line 6: listener[0].group: does not apply to protocol "tcp" (only to "kafka")`}},
		{`protocol = "tcp"
address = "127.0.0.1:0"
sasl.mechanism = "PLAIN"
tls.ca_file = "ca.pem"`, []string{
			`line 6: listener[0].sasl.mechanism: does not apply to protocol "tcp" (only to "kafka")`,
			`line 7: listener[0].tls.ca_file: does not apply to protocol "tcp" (only to "kafka")`,
		}},
		{`protocol = "kafka"
brokers = ["127.0.0.1:9092"]
topics = ["t"]
group = "g"
tls.ca_file = "ca.pem"
tls.cert_file = "head.pem"
tls.client_ca_file = "clients.pem"
tls.min_version = "1.1"
[listener.sasl]
mechanism = "GSSAPI"`, []string{
			`line 8: listener[0].tls.ca_file: needs tls.enable = true`,
			`line 9: listener[0].tls.cert_file: tls.cert_file and tls.key_file go together`,
			`line 10: listener[0].tls.client_ca_file: does not apply to protocol "kafka" (only to "tls", "relp")`,
			`line 11: listener[0].tls.min_version: unsupported version "1.1"`,
			`line 13: listener[0].sasl.mechanism: unknown mechanism "GSSAPI"`,
		}},
		{`protocol = "kafka"
brokers = ["127.0.0.1:9092"]
topics = ["t"]
group = "g"
tls.enable = true
sasl.mechanism = "SCRAM-SHA-512"`, []string{
			`listener[0].sasl.username: is required with sasl.mechanism`,
			`listener[0].sasl.password_file: is required with sasl.mechanism: a file holding the password`,
		}},
	} {
		text := `data_dir = "d"
[[listener]]
name = "k"
` + tc.listener + `
[[output]]
name = "f"
protocol = "file"
path = "f.log"
[[route]]
name = "all"
outputs = ["f"]
`
		_, err := ParseConfig("test.toml", []byte(text))
		if err == nil {
			t.Errorf("%s: accepted", tc.listener)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s:\nerror %v\nwant it to contain %q", tc.listener, err, w)
			}
		}
	}
}

// TestKafkaListenerWithoutCluster: a relay whose brokers do not answer
// starts, serves its other listeners and stops; the failed connections
// are counted.
func TestKafkaListenerWithoutCluster(t *testing.T) {
	needLong(t)
	t.Parallel()
	dead := fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t))
	r, out := kafkaFileRelay(t, listenersTOML()+kafkatest.ListenerTOML("kafka", []string{dead}, kafkaTopic, "heads", ""))
	if err := testpeer.SendTCP(r.addr("tcp"), "nk", 0, 10, true); err != nil {
		t.Fatal(err)
	}
	waitAll(t, "nk", 10, out)
	if !testpeer.WaitFor(60*time.Second, func() bool {
		return r.metric("relay_listener_errors_total", "listener", "kafka", "reason", "connect_error") > 0
	}) {
		t.Error("failed connections to the brokers were not counted as connect_error")
	}
	r.stop()
}

// TestKafkaListenerReload: a reload that changes the kafka listener
// replaces the group member; records produced before and after all
// arrive.
func TestKafkaListenerReload(t *testing.T) {
	needLong(t)
	t.Parallel()
	c := kafkatest.Start(t, 3, kafkaTopic, 6, kafkatest.ShortSessions)
	brokers := c.ListenAddrs()
	dir := t.TempDir()
	out := filepath.Join(dir, "messages.log")
	text := func(session string) string {
		return `data_dir = "` + dir + `/q"` + strings.Replace(kafkatest.ListenerTOML("kafka", brokers, kafkaTopic, "heads", ""), `"3s"`, `"`+session+`"`, 1) + fmt.Sprintf(`
[[output]]
name = "file"
protocol = "file"
path = %q
[[route]]
name = "all"
outputs = ["file"]
`, out)
	}
	r := startRelay(t, dir, text("3s"))
	const n = 1000
	c.ProduceKgo(t, kafkaTopic, seqMessages("rl", 0, n))
	waitAll(t, "rl", n, out)
	cfg, err := ParseConfig("test.toml", []byte(text("4s")))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.srv.Reload(cfg); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	c.ProduceKgo(t, kafkaTopic, seqMessages("rl2", 0, n))
	waitAll(t, "rl2", n, out)
	if tally := testpeer.Check("rl", n, testpeer.ReadLines(out)); tally.Duplicates != 0 {
		t.Errorf("the replaced member had committed what it stored, yet: %v", tally)
	}
}

// TestKafkaListenerCommitErrors: while the cluster refuses offset commits,
// records still arrive and the failures are counted; once it accepts them
// again the group's offsets reach the end.
func TestKafkaListenerCommitErrors(t *testing.T) {
	needLong(t)
	t.Parallel()
	c := kafkatest.Start(t, 3, kafkaTopic, 6, kafkatest.ShortSessions)
	var refuse atomic.Bool
	refuse.Store(true)
	c.ControlKey(int16(kmsg.OffsetCommit), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if !refuse.Load() {
			return nil, nil, false
		}
		req := kreq.(*kmsg.OffsetCommitRequest)
		resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewOffsetCommitResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewOffsetCommitResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.OffsetMetadataTooLarge.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	brokers := c.ListenAddrs()
	r, out := kafkaFileRelay(t, kafkatest.ListenerTOML("kafka", brokers, kafkaTopic, "heads", ""))
	const n = 1000
	c.ProduceKgo(t, kafkaTopic, seqMessages("ce", 0, n))
	waitAll(t, "ce", n, out)
	if !testpeer.WaitFor(60*time.Second, func() bool { return r.metric("relay_kafka_commit_errors_total", "listener", "kafka") > 0 }) {
		t.Fatal("refused commits were not counted")
	}
	if got := c.Committed("heads", kafkaTopic); got != 0 {
		t.Errorf("committed %d records while the cluster refused commits", got)
	}
	refuse.Store(false)
	if !testpeer.WaitFor(60*time.Second, func() bool { return c.Committed("heads", kafkaTopic) == n }) {
		t.Errorf("group committed %d records, want %d", c.Committed("heads", kafkaTopic), n)
	}
}

// TestKafkaListenerGroupDedupNoFalseGaps: two heads with dedup in one
// group each read a share of one edge's stamped stream. The numbers the
// other head read are not losses: neither head counts them as gaps nor
// shows them as missing, while a second copy one head reads is still
// dropped.
func TestKafkaListenerGroupDedupNoFalseGaps(t *testing.T) {
	needLong(t)
	t.Parallel()
	c := kafkatest.Start(t, 3, kafkaTopic, 6, kafkatest.ShortSessions)
	brokers := c.ListenAddrs()
	// A small window, so that it slides past the other head's numbers
	// many times over.
	listener := "\ndedup_window = 64" + kafkatest.ListenerTOML("kafka", brokers, kafkaTopic, "heads", "dedup = true")
	a, outA := kafkaFileRelay(t, listener)
	b, outB := kafkaFileRelay(t, listener)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	g, err := c.WaitGroupInfo(ctx, "heads", func(g *kfake.GroupInfo) bool {
		return g != nil && g.State == "Stable" && len(g.Members) == 2 && g.NumAssigned() == 6 &&
			g.Members[0].NumAssigned() > 0 && g.Members[1].NumAssigned() > 0
	})
	if err != nil {
		t.Fatalf("group did not share the partitions between two members: %+v", g)
	}
	const n = 2000
	values := seqMessages("gd", 0, n)
	recs := make([]*kgo.Record, 0, n+1)
	for i, v := range values {
		recs = append(recs, &kgo.Record{Topic: kafkaTopic, Value: []byte(v), Headers: []kgo.RecordHeader{
			{Key: KafkaHeaderOrigin, Value: []byte("edge-1")},
			{Key: KafkaHeaderEpoch, Value: []byte("1")},
			{Key: KafkaHeaderSeq, Value: []byte(strconv.Itoa(i + 1))},
		}})
	}
	// The last record again, in the same partition as its first copy
	// (records are spread round robin, one partition per batch here).
	last := *recs[n-1]
	pctx, pcancel := context.WithTimeout(context.Background(), time.Minute)
	defer pcancel()
	cl := c.Producer(t)
	if err := cl.ProduceSync(pctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	last.Partition = recs[n-1].Partition
	copyOf, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer copyOf.Close()
	if err := copyOf.ProduceSync(pctx, &last).FirstErr(); err != nil {
		t.Fatal(err)
	}
	tally := waitAll(t, "gd", n, outA, outB)
	ta, tb := testpeer.Check("gd", n, testpeer.ReadLines(outA)), testpeer.Check("gd", n, testpeer.ReadLines(outB))
	if ta.Delivered() == 0 || tb.Delivered() == 0 {
		t.Fatalf("one head got nothing: a %d, b %d", ta.Delivered(), tb.Delivered())
	}
	dropped := func() float64 {
		return a.metric("relay_dedup_duplicates_total") + b.metric("relay_dedup_duplicates_total")
	}
	testpeer.WaitFor(60*time.Second, func() bool { return dropped() >= 1 })
	for name, r := range map[string]*testRelay{"a": a, "b": b} {
		for _, metric := range []string{"relay_dedup_gaps_total", "relay_dedup_window_missing"} {
			if got := r.metric(metric, "origin", "edge-1"); got != 0 {
				t.Errorf("head %s: %s = %v: the other head's share taken for losses", name, metric, got)
			}
		}
	}
	// A rebalance (a member too slow to heartbeat on a busy machine) can
	// move the second copy's partition to the other head, which keeps it:
	// the exact count holds only for a group that stayed as it was.
	if now := c.GroupInfo("heads"); now != nil && now.Epoch == g.Epoch {
		if dropped() != 1 || tally.Duplicates != 0 {
			t.Errorf("second copy: %v dropped, want 1; %v", dropped(), tally)
		}
	} else {
		t.Logf("the group rebalanced; second copy: %v dropped, %v", dropped(), tally)
	}
}

// TestDedupPartialStream: a stream read in part (through a kafka
// listener) drops its duplicates but counts no gaps, neither as the window
// slides nor across a restart, and shows no holes.
func TestDedupPartialStream(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	reg1 := prometheus.NewRegistry()
	d1, err := newDedup(64, reg1, dir, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	// Every third number, as a member reading a third of the partitions.
	for s := uint64(1); s <= 300; s += 3 {
		if d1.checkFrom("e1", 1, s, now, true) {
			t.Fatalf("%d called a duplicate", s)
		}
	}
	if !d1.checkFrom("e1", 1, 298, now, true) {
		t.Error("a second copy was not dropped")
	}
	for _, name := range []string{"relay_dedup_gaps_total", "relay_dedup_window_missing"} {
		if got := testfixture.MetricValue(t, reg1, name, "origin", "e1"); got != 0 {
			t.Errorf("%s = %v for a stream read in part", name, got)
		}
	}
	d1.save()
	reg2 := prometheus.NewRegistry()
	d2, err := newDedup(64, reg2, dir, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	// A stamped message of the same stream from another listener (a
	// dual path next to the kafka one): the stream stays read in part.
	d2.check("e1", 1, 500, now)
	for _, name := range []string{"relay_dedup_gaps_total", "relay_dedup_window_missing"} {
		if got := testfixture.MetricValue(t, reg2, name, "origin", "e1"); got != 0 {
			t.Errorf("after a restart: %s = %v for a stream read in part", name, got)
		}
	}
}

// TestKafkaListenerHostileRecords: whoever may produce to the topic may
// send anything. Empty values, a forged stamp whose origin is not UTF-8,
// an absurd sequence number: the head runs on, counts what it drops, and
// commits every offset once the record is stored or counted.
func TestKafkaListenerHostileRecords(t *testing.T) {
	needLong(t)
	t.Parallel()
	c := kafkatest.Start(t, 1, kafkaTopic, 3, kafkatest.ShortSessions)
	r, out := kafkaFileRelay(t, kafkatest.ListenerTOML("kafka", c.ListenAddrs(), kafkaTopic, "heads", "dedup = true"))
	stamp := func(origin, epoch, seq string) []kgo.RecordHeader {
		return []kgo.RecordHeader{
			{Key: KafkaHeaderOrigin, Value: []byte(origin)},
			{Key: KafkaHeaderEpoch, Value: []byte(epoch)},
			{Key: KafkaHeaderSeq, Value: []byte(seq)},
		}
	}
	records := []*kgo.Record{
		{Value: nil},
		{Value: []byte{}},
		{Value: []byte(testpeer.SeqMessage("hr", 0)), Headers: stamp("\xff\xfe", "1", "3")},
		{Value: []byte(testpeer.SeqMessage("hr", 1)), Headers: stamp("\xff\xfe", "1", "3")},
		{Value: []byte(testpeer.SeqMessage("hr", 2)), Headers: stamp("edge-1", "1", "18446744073709551615")},
		{Value: []byte(testpeer.SeqMessage("hr", 2)), Headers: stamp("edge-1", "1", "18446744073709551615")},
		{Value: []byte(testpeer.SeqMessage("hr", 3)), Headers: stamp("edge-1", "-1", "x")},
		{Value: []byte(testpeer.SeqMessage("hr", 4))},
	}
	cl := c.Producer(t)
	for _, rec := range records {
		rec.Topic = kafkaTopic
		if err := cl.ProduceSync(context.Background(), rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	tally := waitAll(t, "hr", 5, out)
	if tally.Duplicates != 0 {
		t.Errorf("the absurd stamp's second copy is not dropped: %v", tally)
	}
	if !testpeer.WaitFor(60*time.Second, func() bool { return c.Committed("heads", kafkaTopic) == int64(len(records)) }) {
		t.Errorf("group committed %d records, want %d", c.Committed("heads", kafkaTopic), len(records))
	}
	for _, m := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"relay_listener_errors_total", []string{"listener", "kafka", "reason", "empty"}, 2},
		{"relay_dedup_invalid_stamps_total", nil, 2},
		{"relay_dedup_duplicates_total", nil, 1},
		{"relay_listener_messages_received_total", []string{"listener", "kafka"}, 6},
	} {
		if got := r.metric(m.name, m.labels...); got != m.want {
			t.Errorf("%s%v = %v, want %v", m.name, m.labels, got, m.want)
		}
	}
}

// TestKafkaListenerUnknownTopic: a topic that does not exist (a typo, or
// not created yet) is counted and logged, rather than leaving the
// listener waiting in silence; once created, its records are read.
func TestKafkaListenerUnknownTopic(t *testing.T) {
	needLong(t)
	t.Parallel()
	c := kafkatest.Start(t, 1, kafkaTopic, 1, kafkatest.ShortSessions)
	dir := t.TempDir()
	out := filepath.Join(dir, "messages.log")
	r, logs := startRelayLogged(t, dir, `data_dir = "{{DATA}}/q"`+kafkatest.ListenerTOML("kafka", c.ListenAddrs(), "sys-log", "heads", "")+fmt.Sprintf(`
[[output]]
name = "file"
protocol = "file"
path = %q

[[route]]
name = "all"
outputs = ["file"]
`, out))
	if !testpeer.WaitFor(60*time.Second, func() bool {
		return r.metric("relay_listener_errors_total", "listener", "kafka", "reason", "unknown_topic") >= 1
	}) {
		t.Fatalf("relay_listener_errors_total{reason=unknown_topic} = %v, want it counted",
			r.metric("relay_listener_errors_total", "listener", "kafka", "reason", "unknown_topic"))
	}
	if !testpeer.WaitFor(30*time.Second, func() bool { return len(logLines(logs, "topic=sys-log", "does not exist")) > 0 }) {
		t.Errorf("no log line names the unknown topic:\n%s", logs.String())
	}
	adm := c.Producer(t)
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "sys-log", 1, 1
	req.Topics = append(req.Topics, rt)
	if _, err := req.RequestWith(context.Background(), adm); err != nil {
		t.Fatal(err)
	}
	c.ProduceKgo(t, "sys-log", seqMessages("ut", 0, 3))
	waitAll(t, "ut", 3, out)
}

// TestKafkaListenerTopicRecreated: a topic deleted and created again (an
// administrator's reset, a cluster rebuilt) has a new topic ID, which the
// client refuses until told to forget the old one. The listener reads the
// new topic, without spinning on the error meanwhile.
func TestKafkaListenerTopicRecreated(t *testing.T) {
	needLong(t)
	t.Parallel()
	c := kafkatest.Start(t, 1, kafkaTopic, 2, kafkatest.ShortSessions)
	r, out := kafkaFileRelay(t, kafkatest.ListenerTOML("kafka", c.ListenAddrs(), kafkaTopic, "heads", ""))
	c.ProduceKgo(t, kafkaTopic, seqMessages("tr1", 0, 3))
	waitAll(t, "tr1", 3, out)
	adm := c.Producer(t)
	del := kmsg.NewPtrDeleteTopicsRequest()
	del.TopicNames = []string{kafkaTopic}
	dt := kmsg.NewDeleteTopicsRequestTopic()
	dt.Topic = kmsg.StringPtr(kafkaTopic)
	del.Topics = append(del.Topics, dt)
	if _, err := del.RequestWith(context.Background(), adm); err != nil {
		t.Fatal(err)
	}
	create := kmsg.NewPtrCreateTopicsRequest()
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = kafkaTopic, 2, 1
	create.Topics = append(create.Topics, ct)
	if !testpeer.WaitFor(30*time.Second, func() bool {
		resp, err := create.RequestWith(context.Background(), adm)
		return err == nil && len(resp.Topics) == 1 && resp.Topics[0].ErrorCode == 0
	}) {
		t.Fatal("the topic could not be created again")
	}
	c.ProduceKgo(t, kafkaTopic, seqMessages("tr2", 0, 3))
	waitAll(t, "tr2", 3, out)
	// Some fetch errors until the client adopts the new topic, not one per
	// turn of a busy loop.
	if got := r.metric("relay_listener_errors_total", "listener", "kafka", "reason", "fetch_error"); got > 1000 {
		t.Errorf("relay_listener_errors_total{reason=fetch_error} = %v: the listener spun on the error", got)
	}
}

// TestKafkaListenerRefusedNotCommitted: a record an output's queue refuses
// (full, with drop_newest) is counted, and its offset is not committed:
// Kafka keeps it, and the listener reads it again once there is room, so
// it arrives instead of being lost.
func TestKafkaListenerRefusedNotCommitted(t *testing.T) {
	needLong(t)
	t.Parallel()
	c := kafkatest.Start(t, 1, kafkaTopic, 2, kafkatest.ShortSessions)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	upAddr := ln.Addr().String()
	ln.Close() // nothing listens there until the test starts the upstream
	dir := t.TempDir()
	r := startRelay(t, dir, `data_dir = "{{DATA}}/q"`+kafkatest.ListenerTOML("kafka", c.ListenAddrs(), kafkaTopic, "heads", "")+fmt.Sprintf(`
[[output]]
name = "up"
protocol = "tcp"
address = %q
queue.max_bytes = "4KiB"
queue.full_policy = "drop_newest"

[[route]]
name = "all"
outputs = ["up"]
`, upAddr))
	const n = 300
	c.ProduceKgo(t, kafkaTopic, seqMessages("rn", 0, n))
	if !testpeer.WaitFor(60*time.Second, func() bool {
		return r.metric("relay_output_messages_dropped_total", "output", "up", "reason", "queue_full") > 0
	}) {
		t.Fatal("the queue refused nothing: the test needs a full queue")
	}
	if got := c.Committed("heads", kafkaTopic); got >= n {
		t.Fatalf("group committed %d of %d records while the queue refused some", got, n)
	}
	up := testpeer.NewReceiver(t, upAddr)
	if !testpeer.WaitFor(90*time.Second, func() bool { return testpeer.Check("rn", n, up.Messages()).Delivered() == n }) {
		t.Fatalf("after the upstream came: %v", testpeer.Check("rn", n, up.Messages()))
	}
	if !testpeer.WaitFor(60*time.Second, func() bool { return c.Committed("heads", kafkaTopic) == n }) {
		t.Errorf("group committed %d records, want %d", c.Committed("heads", kafkaTopic), n)
	}
}
