package relay

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relay-syslog/relay/internal/syslog"
	"github.com/relay-syslog/relay/internal/testfixture"
	"github.com/relay-syslog/relay/internal/testpeer"
)

func TestDedupWindow(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	d, err := newDedup(128, reg, "", testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	seen := func(seq uint64) bool { return d.check("e1", 1, seq, now) }
	// 1..100 once, then 1..100 again: all second copies are duplicates.
	for s := uint64(1); s <= 100; s++ {
		if seen(s) {
			t.Fatalf("first copy of %d called a duplicate", s)
		}
	}
	for s := uint64(1); s <= 100; s++ {
		if !seen(s) {
			t.Fatalf("second copy of %d not caught", s)
		}
	}
	// Another epoch or origin is a separate stream.
	if d.check("e1", 2, 5, now) || d.check("e2", 1, 5, now) {
		t.Fatal("another epoch or origin was taken for a duplicate")
	}
	// Skip 101..110, go on to 400: the window (128) moves past the hole.
	for s := uint64(111); s <= 400; s++ {
		seen(s)
	}
	if got := testfixture.MetricValue(t, reg, "relay_dedup_gaps_total", "origin", "e1"); got != 10 {
		t.Errorf("gaps = %v, want 10", got)
	}
	if got := testfixture.MetricValue(t, reg, "relay_dedup_duplicates_total", "origin", "e1"); got != 100 {
		t.Errorf("duplicates = %v, want 100", got)
	}
	// A number older than the window is late, passed on.
	if seen(50) {
		t.Error("late message dropped")
	}
	if got := testfixture.MetricValue(t, reg, "relay_dedup_late_total", "origin", "e1"); got != 1 {
		t.Errorf("late = %v, want 1", got)
	}
	// Holes inside the window are visible before the window passes them.
	seen(405)
	if got := testfixture.MetricValue(t, reg, "relay_dedup_window_missing", "origin", "e1"); got != 4 {
		t.Errorf("missing in window = %v, want 4 (401..404)", got)
	}
}

func TestStampRoundTrip(t *testing.T) {
	t.Parallel()
	var m syslog.Message
	line := `<13>1 2026-11-23T10:00:00Z host app - - [meta sequenceId="7"][relay@32473 origin="edge \"1\"" epoch="3" seq="7"] hello`
	syslog.Parse([]byte(line), syslog.ParseOptions{SkipTimestamp: true}, &m)
	origin, epoch, seq, ok := readStamp(&m)
	if !ok || origin != `edge "1"` || epoch != 3 || seq != 7 {
		t.Fatalf("readStamp = %q %d %d %v", origin, epoch, seq, ok)
	}
}

// TestDedupTwoEdgesTwoPaths is the dual-path deployment: two edge relays
// each send every message over UDP along two paths to a head relay, whose
// two listeners dedup. Each path is a lossy link (a UDP forwarder on
// loopback) that drops chosen sequence numbers: path A every 10th, path B
// every 15th, so every 30th is lost on both. The head keeps one copy of
// everything else and reports the true duplicate and gap counts.
func TestDedupTwoEdgesTwoPaths(t *testing.T) {
	needLong(t)
	t.Parallel()
	dir := t.TempDir()
	out := dir + "/head.log"
	head := startRelay(t, dir+"/head", fmt.Sprintf(`data_dir = "{{DATA}}"
relay_id = "head"
[[listener]]
name = "path-a"
protocol = "udp"
address = "127.0.0.1:0"
dedup = true
[[listener]]
name = "path-b"
protocol = "udp"
address = "127.0.0.1:0"
dedup = true
[[output]]
name = "file"
protocol = "file"
path = %q
[[route]]
name = "all"
outputs = ["file"]
`, out))
	dropEvery := func(n uint64) func([]byte) bool {
		return func(b []byte) bool {
			var m syslog.Message
			syslog.Parse(b, syslog.ParseOptions{SkipTimestamp: true}, &m)
			_, _, seq, ok := readStamp(&m)
			return ok && seq%n == 0
		}
	}
	linkA := testpeer.NewLossyUDP(t, head.addr("path-a"), dropEvery(10))
	linkB := testpeer.NewLossyUDP(t, head.addr("path-b"), dropEvery(15))

	// The last number must not be lost on both paths: a receiver cannot
	// know about a loss after the last message it got.
	const n = 3001
	for _, edge := range []string{"edge1", "edge2"} {
		e := startRelay(t, dir+"/"+edge, fmt.Sprintf(`data_dir = "{{DATA}}"
relay_id = %q
[[listener]]
name = "tcp"
protocol = "tcp"
address = "127.0.0.1:0"
[[output]]
name = "a"
protocol = "udp"
address = %q
format = "rfc5424"
stamp_sequence = true
[[output]]
name = "b"
protocol = "udp"
address = %q
format = "rfc5424"
stamp_sequence = true
[[route]]
name = "both-paths"
outputs = ["a", "b"]
`, edge, linkA.Addr(), linkB.Addr()))
		// Paced, so that nothing but the links' deliberate drops loses a
		// datagram on loopback.
		for i := 0; i < n; i += 100 {
			end := min(i+100, n)
			if err := testpeer.SendTCP(e.addr("tcp"), edge, i, end, true); err != nil {
				t.Fatal(err)
			}
			want := float64(end)
			testpeer.WaitFor(5*time.Second, func() bool {
				return e.metric("relay_output_messages_sent_total", "output", "a") >= want &&
					e.metric("relay_output_messages_sent_total", "output", "b") >= want
			})
		}
	}
	// Per edge (sequence numbers 1..n): lost on both paths: every 30th
	// (100); arriving twice: the numbers neither path drops:
	// n - (n/10 + n/15 - n/30) = 2601.
	const wantGaps, wantDups = n / 30, n - (n/10 + n/15 - n/30)
	if !testpeer.WaitFor(30*time.Second, func() bool {
		return head.metric("relay_dedup_duplicates_total") >= 2*wantDups &&
			len(testpeer.ReadLines(out)) >= 2*(n-wantGaps)
	}) {
		t.Fatalf("head: duplicates %v (want %d), lines %d (want %d)", head.metric("relay_dedup_duplicates_total"),
			2*wantDups, len(testpeer.ReadLines(out)), 2*(n-wantGaps))
	}
	lines := testpeer.ReadLines(out)
	for _, edge := range []string{"edge1", "edge2"} {
		tally := testpeer.Check(edge, n, lines)
		dups := head.metric("relay_dedup_duplicates_total", "origin", edge)
		gaps := head.metric("relay_dedup_gaps_total", "origin", edge) + head.metric("relay_dedup_window_missing", "origin", edge)
		t.Logf("%s: sent %d, head kept %d, duplicates dropped %v, gaps reported %v (true: %d duplicates, %d gaps)",
			edge, n, tally.Delivered(), dups, gaps, wantDups, wantGaps)
		if tally.Duplicates != 0 {
			t.Errorf("%s: %d duplicates passed the dedup", edge, tally.Duplicates)
		}
		if len(tally.Missing) != wantGaps || dups != wantDups || gaps != wantGaps {
			t.Errorf("%s: missing %d, duplicates %v, gaps %v; want %d, %d, %d", edge, len(tally.Missing), dups, gaps, wantGaps, wantDups, wantGaps)
		}
	}
}

// TestDedupSeriesExistFromAnOriginsFirstMessage: an origin's counters exist
// at 0 from its first stamped message, so increase() sees its first gap.
func TestDedupSeriesExistFromAnOriginsFirstMessage(t *testing.T) {
	reg := prometheus.NewRegistry()
	d, err := newDedup(128, reg, t.TempDir(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	d.check("edge-1", 1, 1, time.Now())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if testfixture.HasLabels(m, "origin", "edge-1") {
				found[mf.GetName()] = true
			}
		}
	}
	for _, name := range []string{"relay_dedup_duplicates_total", "relay_dedup_gaps_total", "relay_dedup_late_total", "relay_dedup_window_missing"} {
		if !found[name] {
			t.Errorf("%s{origin=\"edge-1\"} absent after the origin's first message", name)
		}
	}
}

// TestDedupRestartKeepsStreams: a dedup table that stops and starts again
// on the same data dir goes on where it stopped. The holes it had at the
// stop are counted as gaps at the start, the numbers lost while it was down
// are holes and then gaps, and a copy of a number seen before the stop is
// late, not new.
func TestDedupRestartKeepsStreams(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	reg1 := prometheus.NewRegistry()
	d1, err := newDedup(128, reg1, dir, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	for s := uint64(1); s <= 100; s++ {
		if s != 50 {
			d1.check("e1", 1, s, now)
		}
	}
	d1.save()

	reg2 := prometheus.NewRegistry()
	d2, err := newDedup(128, reg2, dir, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := testfixture.MetricValue(t, reg2, "relay_dedup_gaps_total", "origin", "e1"); got != 1 {
		t.Errorf("gaps after the restart = %v, want 1 (50, missing at the stop)", got)
	}
	// 101..110 were lost while the relay was down.
	for s := uint64(111); s <= 120; s++ {
		if d2.check("e1", 1, s, now) {
			t.Fatalf("%d called a duplicate", s)
		}
	}
	if got := testfixture.MetricValue(t, reg2, "relay_dedup_window_missing", "origin", "e1"); got != 10 {
		t.Errorf("missing in window after the restart = %v, want 10 (101..110)", got)
	}
	if d2.check("e1", 1, 60, now) {
		t.Error("a number seen before the restart was dropped")
	}
	if got := testfixture.MetricValue(t, reg2, "relay_dedup_late_total", "origin", "e1"); got != 1 {
		t.Errorf("late = %v, want 1", got)
	}
	for s := uint64(121); s <= 400; s++ {
		d2.check("e1", 1, s, now)
	}
	if got := testfixture.MetricValue(t, reg2, "relay_dedup_gaps_total", "origin", "e1"); got != 11 {
		t.Errorf("gaps once the window moved past = %v, want 11", got)
	}

	// Without a save at stop (kill -9), the periodic save keeps what was
	// seen up to dedupSaveInterval before.
	d2.check("e1", 1, 401, now.Add(dedupSaveInterval))
	d3, err := newDedup(128, prometheus.NewRegistry(), dir, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if s := d3.streams[streamKey{"e1", 1}]; s == nil || s.highest != 401 {
		t.Errorf("stream after a restart without a stop: %+v, want highest 401", s)
	}

	// A damaged state file is ignored, not fatal.
	if err := os.WriteFile(filepath.Join(dir, dedupStateFile), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	d4, err := newDedup(128, prometheus.NewRegistry(), dir, testLogger(t))
	if err != nil || len(d4.streams) != 0 {
		t.Errorf("with a damaged state file: %v, %d streams", err, len(d4.streams))
	}
	// A state file that cannot be written leaves no temporary file.
	gone := filepath.Join(dir, "gone")
	d5, err := newDedup(128, prometheus.NewRegistry(), gone, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	d5.check("e1", 1, 1, now)
	d5.save()
	if _, err := os.Stat(gone); !os.IsNotExist(err) {
		t.Errorf("a save into a missing directory created it or left a file: %v", err)
	}
}

// TestDedupHostileOrigins: a stamp's origin comes from the network (a
// message's structured data, a Kafka record header) and names metric
// series. One that is not UTF-8 or is huge is passed on unchecked and
// counted, never a panic; and forged origins without end leave at most
// the table's worth of series, not one per origin ever seen.
func TestDedupHostileOrigins(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	d, err := newDedup(64, reg, "", testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, origin := range []string{"\xff\xfe", "edge\xc3\x28", strings.Repeat("o", maxOriginLen+1)} {
		for range 2 {
			if d.check(origin, 1, 7, now) {
				t.Errorf("origin %.20q: a second copy was dropped; an origin that cannot be a label is not checked", origin)
			}
		}
	}
	if got := gatheredSum(t, reg, "relay_dedup_invalid_stamps_total"); got != 6 {
		t.Errorf("relay_dedup_invalid_stamps_total = %v, want 6", got)
	}
	if d.check(strings.Repeat("o", maxOriginLen), 1, 7, now) {
		t.Error("an origin of the longest length allowed was called a duplicate")
	}
	for i := range 3 * maxStreams {
		d.check(fmt.Sprintf("forged-%d", i), 1, 1, now.Add(time.Duration(i)))
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "relay_dedup_") {
			n += len(mf.GetMetric())
		}
	}
	if n > 4*maxStreams+1 {
		t.Errorf("%d dedup series after %d forged origins, want at most %d (the streams tracked)", n, 3*maxStreams, 4*maxStreams)
	}
}

// gatheredSum is the sum of the values of the counter name in reg.
func gatheredSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// TestDedupForget: a number forgotten (its message was refused by a queue
// and is read again) is not a duplicate at its next arrival, and only
// that number is forgotten.
func TestDedupForget(t *testing.T) {
	t.Parallel()
	d, err := newDedup(64, prometheus.NewRegistry(), "", testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for s := uint64(1); s <= 3; s++ {
		d.check("e", 1, s, now)
	}
	d.forget("e", 1, 2)
	d.forget("e", 1, 1000) // beyond the window: nothing to forget
	d.forget("other", 1, 2)
	if d.check("e", 1, 2, now) {
		t.Error("a forgotten number was called a duplicate")
	}
	if !d.check("e", 1, 1, now) || !d.check("e", 1, 3, now) || !d.check("e", 1, 2, now) {
		t.Error("a number not forgotten was not called a duplicate")
	}
}
