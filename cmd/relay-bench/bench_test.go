package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relay-syslog/relay/relay"
)

func TestTemplateRoundTrip(t *testing.T) {
	for _, size := range []int{minMessageSize, 200, 4096} {
		tmpl, err := newTemplate("ab12", size)
		if err != nil {
			t.Fatal(err)
		}
		if len(tmpl.msg) != size {
			t.Fatalf("template of size %d is %d bytes", size, len(tmpl.msg))
		}
		for _, f := range []framing{framingOctet, framingLF, framingNone} {
			buf, off := tmpl.frame(f)
			tmpl.stamp(buf, off, 1234567890, 987654321012345)
			msg := buf[off:]
			if f == framingLF {
				msg = msg[:len(msg)-1]
			}
			if f == framingOctet && !bytes.HasPrefix(buf, []byte(fmt.Sprintf("%d ", size))) {
				t.Errorf("octet frame starts %q", buf[:8])
			}
			run, seq, sent, err := parseFields(msg)
			if err != nil || string(run) != "ab12" || seq != 1234567890 || sent != 987654321012345 {
				t.Errorf("size %d %v: parseFields = %q, %d, %d, %v", size, f, run, seq, sent, err)
			}
		}
	}
	if _, err := newTemplate("ab12", minMessageSize-1); err == nil {
		t.Error("newTemplate accepted a size too small for the fields")
	}
	if _, err := newTemplate("toolong", 200); err == nil {
		t.Error("newTemplate accepted a run tag of the wrong length")
	}
	for _, bad := range []string{"", "hello", "<13>x R=ab12 S=12345678x0 T=0000000000000000", "<13>x R=ab12 S=0000000001 T=000000000000000"} {
		if _, _, _, err := parseFields([]byte(bad)); err == nil {
			t.Errorf("parseFields(%q) = nil error", bad)
		}
	}
}

func TestHistogram(t *testing.T) {
	prev := -1
	for us := uint64(0); us < 1<<22; us = us*9/8 + 1 {
		b := bucketOf(us)
		if b < prev {
			t.Fatalf("bucketOf(%d) = %d, below bucketOf of a smaller value (%d)", us, b, prev)
		}
		prev = b
		if mid := bucketMid(b); mid < float64(us)*0.96 || mid > float64(us)*1.04+1 {
			t.Fatalf("bucketMid(bucketOf(%d)) = %v: more than 4%% off", us, mid)
		}
	}
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Millisecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.99, 990 * time.Millisecond}} {
		got := h.quantile(c.q)
		if got < c.want*96/100 || got > c.want*104/100 {
			t.Errorf("quantile(%v) = %v, want about %v", c.q, got, c.want)
		}
	}
	var empty histogram
	if empty.quantile(0.99) != 0 {
		t.Error("quantile of an empty histogram is not 0")
	}
}

func TestNextFrame(t *testing.T) {
	in := []byte("5 hello3 abc\nline one\r\nline two\n\n12 twelve bytes")
	var got []string
	for len(in) > 0 {
		msg, used, err := nextFrame(in)
		if err != nil || used == 0 {
			t.Fatalf("nextFrame(%q) = %q, %d, %v", in, msg, used, err)
		}
		if msg != nil {
			got = append(got, string(msg))
		}
		in = in[used:]
	}
	want := []string{"hello", "abc", "line one\r", "line two", "twelve bytes"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("frames = %q, want %q", got, want)
	}
	for _, partial := range []string{"12 twelve", "123", "no line end"} {
		if msg, used, err := nextFrame([]byte(partial)); used != 0 || err != nil {
			t.Errorf("nextFrame(%q) = %q, %d, %v; want incomplete", partial, msg, used, err)
		}
	}
	for _, bad := range []string{"99999999999 x", "12x45 y", "9999999 x"} {
		if _, _, err := nextFrame([]byte(bad)); err == nil {
			t.Errorf("nextFrame(%q) accepted a bad octet count", bad)
		}
	}
}

// TestGeneratorIntoSink sends straight into the sink, at full speed and at
// a fixed rate, and checks the sink's accounting.
func TestGeneratorIntoSink(t *testing.T) {
	c := newClock()
	for _, spec := range []loadSpec{
		{Proto: "tcp", Framing: framingOctet, Conns: 1, Count: 20000, Duration: 10 * time.Second, Size: 200},
		{Proto: "tcp", Framing: framingLF, Conns: 3, Count: 10001, Duration: 10 * time.Second, Size: 120},
		// A count that would take 50 s at the rate: the duration must end it.
		{Proto: "tcp", Framing: framingOctet, Conns: 2, Rate: 20000, Count: 1_000_000, Duration: 300 * time.Millisecond, Size: 200},
	} {
		t.Run(fmt.Sprintf("%v-conns=%d-rate=%v", spec.Framing, spec.Conns, spec.Rate), func(t *testing.T) {
			s, err := newSink("127.0.0.1:0", "test", spec.Count, c)
			if err != nil {
				t.Fatal(err)
			}
			defer s.stop()
			g, err := newGenerator(spec, "test", c)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if err := g.run(context.Background(), s.addr); err != nil {
				t.Fatal(err)
			}
			took := time.Since(start)
			sent := g.sentSet()
			want := spec.Count
			if spec.Rate > 0 {
				want = uint64(spec.Rate * spec.Duration.Seconds())
				if took < spec.Duration || took > spec.Duration+10*time.Second {
					t.Errorf("a %s load took %s", spec.Duration, took)
				}
				if n := sent.total(); n < want*8/10 || n > want*12/10+10 {
					t.Errorf("sent %d at %v msg/s for %s, want about %d", n, spec.Rate, spec.Duration, want)
				}
			} else if sent.total() != want {
				t.Errorf("sent %d, want %d", sent.total(), want)
			}
			if !waitFor(5*time.Second, func() bool { return s.uniqueCount() >= sent.total() }) {
				t.Fatalf("sink has %d of %d", s.uniqueCount(), sent.total())
			}
			st := s.stats()
			if miss := s.missing(sent); miss != 0 || st.Dups != 0 || st.Foreign != 0 || st.BadFrames != 0 {
				t.Errorf("missing %d, stats %+v", miss, st)
			}
			if st.P50 <= 0 || st.P99 < st.P50 || st.P99 > 2*time.Second {
				t.Errorf("latencies p50 %v p99 %v", st.P50, st.P99)
			}
		})
	}
}

// TestGeneratorUDP checks the batched datagram sender: every sequence
// number once, each datagram one whole message.
func TestGeneratorUDP(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	_ = pc.(*net.UDPConn).SetReadBuffer(4 << 20)
	const count = 1000
	spec := loadSpec{Proto: "udp", Conns: 2, Rate: 20000, Count: count, Duration: 5 * time.Second, Size: 300}
	g, err := newGenerator(spec, "udpt", newClock())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint64]int{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for len(seen) < count {
			_ = pc.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			run, seq, _, err := parseFields(buf[:n])
			if err != nil || string(run) != "udpt" || n != spec.Size {
				t.Errorf("datagram %q: %v", buf[:n], err)
				return
			}
			seen[seq]++
		}
	}()
	if err := g.run(context.Background(), pc.LocalAddr().String()); err != nil {
		t.Fatal(err)
	}
	<-done
	if g.totalSent() != count || len(seen) != count {
		t.Fatalf("sent %d, received %d distinct", g.totalSent(), len(seen))
	}
	for seq, n := range seen {
		if seq >= count || n != 1 {
			t.Errorf("seq %d arrived %d times", seq, n)
		}
	}
}

// TestSinkCountsDuplicatesForeignAndOutage sends the same messages twice,
// messages of another run, and checks the counts survive a stop and
// restart of the sink on the same address.
func TestSinkCountsDuplicatesForeignAndOutage(t *testing.T) {
	c := newClock()
	s, err := newSink("127.0.0.1:0", "mine", 100, c)
	if err != nil {
		t.Fatal(err)
	}
	defer s.stop()
	send := func(run string, seqs ...uint64) {
		t.Helper()
		tmpl, _ := newTemplate(run, 150)
		conn, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for _, seq := range seqs {
			buf, off := tmpl.frame(framingOctet)
			tmpl.stamp(buf, off, seq, int64(c.now()))
			if _, err := conn.Write(buf); err != nil {
				t.Fatal(err)
			}
		}
	}
	send("mine", 0, 1, 2, 2, 500)
	send("othr", 3)
	if !waitFor(5*time.Second, func() bool { st := s.stats(); return st.Unique+st.Dups+st.Foreign == 6 }) {
		t.Fatalf("stats %+v", s.stats())
	}
	s.stop()
	if _, err := net.DialTimeout("tcp", s.addr, time.Second); err == nil {
		t.Fatal("stopped sink still accepts connections")
	}
	s.markNext()
	if err := s.restart(); err != nil {
		t.Fatal(err)
	}
	send("mine", 1, 3)
	if !waitFor(5*time.Second, func() bool { return s.uniqueCount() == 4 }) {
		t.Fatalf("stats %+v", s.stats())
	}
	st := s.stats()
	if st.Dups != 2 || st.Foreign != 2 {
		t.Errorf("dups %d foreign %d, want 2 and 2", st.Dups, st.Foreign)
	}
	if _, before, ok := s.mark(); !ok || before != 3 {
		t.Errorf("mark = %d, %v; want 3 unique before the first arrival after the restart", before, ok)
	}
	if miss := s.missing(seqSet{conns: 1, sent: []uint64{5}}); miss != 1 {
		t.Errorf("missing of 0..4 = %d, want 1 (seq 4)", miss)
	}
}

func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return cond()
}

func TestProcParsers(t *testing.T) {
	cpu, err := parseStatCPU([]byte("1234 (relay (x) y) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 100 0\n"))
	if err != nil || cpu != 3*time.Second {
		t.Errorf("parseStatCPU = %v, %v; want 3s", cpu, err)
	}
	hwm, rss, err := parseStatusMemory([]byte("Name:\trelay\nVmHWM:\t   65536 kB\nVmRSS:\t   1024 kB\n"))
	if err != nil || hwm != 64<<20 || rss != 1<<20 {
		t.Errorf("parseStatusMemory = %d, %d, %v", hwm, rss, err)
	}
	snmp := "Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors\n" +
		"Udp: 100 2 7 90 5 0 0 0 0\nUdpLite: InDatagrams\nUdpLite: 0\n"
	rb, ie, err := parseSNMPUDP([]byte(snmp))
	if err != nil || rb != 5 || ie != 7 {
		t.Errorf("parseSNMPUDP = %d, %d, %v; want 5, 7", rb, ie, err)
	}
	busy, err := parseMachineCPU([]byte("cpu  100 10 50 1000 40 5 5 0 0 0\ncpu0 1 2 3\n"))
	if err != nil || busy != 160*time.Second/100 {
		t.Errorf("parseMachineCPU = %v, %v", busy, err)
	}
	udp := "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n" +
		"  1: 0100007F:14BA 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 42 2 0000000000000000 17\n" +
		"  2: 00000000:14BA 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 43 2 0000000000000000 3\n" +
		"  3: 0100007F:14BB 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 44 2 0000000000000000 100\n"
	if n, ok, err := parseUDPPortDrops([]byte(udp), 5306); err != nil || !ok || n != 20 {
		t.Errorf("parseUDPPortDrops = %d, %v, %v; want 20", n, ok, err)
	}
	// The real files of this machine parse too.
	if _, err := procCPU(os.Getpid()); err != nil {
		t.Error(err)
	}
	if _, _, err := procMemory(os.Getpid()); err != nil {
		t.Error(err)
	}
	if _, _, err := udpCounters(); err != nil {
		t.Error(err)
	}
	if _, err := machineCPU(); err != nil {
		t.Error(err)
	}
}

// TestRelayConfigValid keeps the harness's relay configuration in step
// with the relay's own validation.
func TestRelayConfigValid(t *testing.T) {
	text := relayConfig(t.TempDir(), 5514, 9514, []string{"127.0.0.1:6000", "127.0.0.1:6001"}, "confirm_delay = \"50ms\"\nqueue.sync_every = 100", "read_buffer = \"16MiB\"")
	if _, err := relay.ParseConfig("bench.toml", []byte(text)); err != nil {
		t.Fatalf("the harness's relay config is invalid: %v\n%s", err, text)
	}
}

// TestRsyslogConfigValid checks both rsyslog setups with rsyslogd's own
// configuration check (-N1), when rsyslogd is installed.
func TestRsyslogConfigValid(t *testing.T) {
	bin := findRsyslogd()
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("rsyslogd not found: CI must install the Debian package rsyslog")
		}
		t.Skip("rsyslogd not found: install the Debian package rsyslog")
	}
	for _, q := range []string{"disk", "da"} {
		dir := t.TempDir()
		conf := filepath.Join(dir, "rsyslog.conf")
		if err := os.WriteFile(conf, []byte(rsyslogConfig(dir, q, 5514, 4, []string{"127.0.0.1:6000", "127.0.0.1:6001"})), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(bin, "-N1", "-f", conf).CombinedOutput()
		if err != nil || bytes.Contains(out, []byte("error")) {
			t.Errorf("rsyslogd -N1 on the %s config: %v\n%s", q, err, out)
		}
	}
}

func TestParseFlags(t *testing.T) {
	o, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if o.duration != 5*time.Second || o.udpRate != 200_000 || o.latencyRate != 100_000 || o.outageRate != 50_000 || len(o.scenarios) != 8 ||
		o.dualRuns != 5 || o.loggenUDPRuns != 3 {
		t.Errorf("defaults = %+v", o)
	}
	for _, bad := range [][]string{
		{"-scenarios", "nope"},
		{"-targets", ""},
		{"-size", "10"},
		{"-framing", "xml"},
		{"-duration", "0s"},
		{"-udp-rate", "-1"},
		{"-loggen-tcp-rates", "50000,x"},
		{"-loggen-udp-senders", "0"},
		{"-udp-buffer", "0"},
		{"-dual-runs", "0"},
		{"-loggen-udp-runs", "51"},
		{"extra"},
	} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) = nil error", bad)
		}
	}
}

// goalStatus returns the status of the one goal of issue whose text holds
// name, failing the test unless exactly one matches.
func goalStatus(t *testing.T, goals []goal, issue, name string) (string, string) {
	t.Helper()
	var found []goal
	for _, g := range goals {
		if g.Issue == issue && strings.Contains(g.Goal, name) {
			found = append(found, g)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d goals of issue %s named %q in %+v", len(found), issue, name, goals)
	}
	return found[0].Status, found[0].Value
}

// allGoals are the issue and a part of the text of every line checkTargets
// writes, whatever ran.
var allGoals = [][2]string{
	{"8, 18.1", "≥ 1.0× rsyslog memory"}, {"8", "≥ 4× rsyslog Disk"}, {"8", "0 loss, RcvbufErrors"},
	{"8", "peak RSS"}, {"8", "p99 latency"}, {"8", "backlog drains"}, {"8", "≤ 1.3× the CPU of one"},
	{"18.1", "loggen at 150k"}, {"18.1", "loggen at 50k"}, {"18.2", "loses no more than"},
	{"18.2", "on an idle machine"}, {"18.3", "≤ 1.2× the CPU of one"}, {"18.4", "output ≥ 0.95×"},
	{"18.5", "syslog-ng-reliable"}, {"18.5", "syslog-ng-mem"},
}

func TestCheckTargets(t *testing.T) {
	rb := uint64(0)
	results := []result{
		{Scenario: "tcp", Target: "relay", Conns: 1, Throughput: 600e3, InputRate: 610e3, PeakRSSMiB: 40},
		{Scenario: "tcp", Target: "rsyslog-da", Throughput: 500e3},
		{Scenario: "tcp", Target: "rsyslog-disk", Throughput: 200e3},
		{Scenario: "udp", Target: "relay", Rate: 200e3, InputRate: 199e3, Sent: 1000, RcvbufErrors: &rb, OtherLoadCores: 0.05},
		{Scenario: "latency", Target: "relay", Rate: 100e3, P99ms: 60},
		{Scenario: "dual-1", Target: "relay", CPUPerMillion: 1},
		{Scenario: "dual-2", Target: "relay", CPUPerMillion: 1.2},
	}
	goals := checkTargets(results)
	if len(goals) != len(allGoals) {
		t.Errorf("%d goals, want %d: %+v", len(goals), len(allGoals), goals)
	}
	want := map[[2]string]string{
		{"8, 18.1", "≥ 1.0× rsyslog memory"}: met,
		{"8", "≥ 4× rsyslog Disk"}:           missed,
		{"8", "0 loss, RcvbufErrors"}:        met,
		{"8", "peak RSS"}:                    met,
		{"8", "p99 latency"}:                 missed,
		{"8", "backlog drains"}:              notMeasured,
		{"8", "≤ 1.3× the CPU of one"}:       met,
		{"18.1", "loggen at 150k"}:           notMeasured,
		{"18.2", "on an idle machine"}:       met,
		{"18.3", "≤ 1.2× the CPU of one"}:    unproven, // one run of the five asked
		{"18.4", "output ≥ 0.95×"}:           met,
		{"18.5", "syslog-ng-mem"}:            notMeasured,
	}
	for _, k := range allGoals {
		st, value := goalStatus(t, goals, k[0], k[1])
		if w, ok := want[k]; ok && st != w {
			t.Errorf("%s %q: %s (%s), want %s", k[0], k[1], st, value, w)
		}
		if value == "" {
			t.Errorf("%s %q: %s without a figure or a reason", k[0], k[1], st)
		}
	}
	if _, v := goalStatus(t, goals, "8", "backlog drains"); v != "no outage result from relay" {
		t.Errorf("backlog goal not measured because %q", v)
	}

	// An empty run still writes every line, each saying why it has no figure.
	results = []result{{Scenario: "tcp", Target: "relay", Error: "start relay: boom\nlog"}}
	goals = checkTargets(results)
	for _, k := range allGoals {
		if st, _ := goalStatus(t, goals, k[0], k[1]); st != notMeasured {
			t.Errorf("%s %q: %s in a run without results", k[0], k[1], st)
		}
	}
	if _, v := goalStatus(t, goals, "18.4", "output"); v != "tcp through relay failed: start relay: boom" {
		t.Errorf("out/in not measured because %q", v)
	}

	// No loss at a rate below the one asked proves nothing about that rate.
	slow := []result{{Scenario: "udp", Target: "relay", Rate: 200e3, InputRate: 180e3, Sent: 1000, RcvbufErrors: &rb}}
	if st, _ := goalStatus(t, checkTargets(slow), "8", "udp at 200k"); st != unproven {
		t.Errorf("udp at 180k of 200k msg/s without loss: %s, want unproven", st)
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{1.4, 1.1, 1.3}, 1.3}, {[]float64{4, 1, 3, 2}, 2.5}, {[]float64{1.2, 1.5, 1.1, 1.19, 1.25}, 1.2}} {
		in := slices.Clone(c.in)
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
		if !slices.Equal(in, c.in) {
			t.Errorf("median reordered its argument: %v", c.in)
		}
	}
}

// TestSchedule checks the order of the measurements: the repeated
// scenarios alternate the targets compared, and the others run once.
func TestSchedule(t *testing.T) {
	h := &harness{o: &options{dualRuns: 3, loggenUDPRuns: 3}}
	all := []target{&directTarget{}, &relayTarget{}, &rsyslogTarget{queue: "disk"}, &rsyslogTarget{queue: "da"}, &syslogNGTarget{mode: "mem"}}
	names := func(steps []step) string {
		var s []string
		for _, st := range steps {
			s = append(s, label(st.t.Name(), st.round))
		}
		return strings.Join(s, " ")
	}
	for _, c := range []struct {
		sc      string
		targets []target
		want    string
	}{
		{"tcp", all, "direct relay rsyslog-disk rsyslog-da syslog-ng-mem"},
		{"loggen-udp", all, "relay #1 rsyslog-da #1 syslog-ng-mem #1 rsyslog-da #2 relay #2 relay #3 rsyslog-da #3"},
		{"loggen-udp", all[:3], "relay"}, // nothing to compare with: once
		{"dual", all, "relay #1 rsyslog-disk #1 rsyslog-da #1 relay #2 relay #3"},
		{"dual", all[2:4], "rsyslog-disk rsyslog-da"},
	} {
		if got := names(h.schedule(c.sc, c.targets)); got != c.want {
			t.Errorf("schedule(%s) = %s, want %s", c.sc, got, c.want)
		}
	}
}

func TestDualGoals(t *testing.T) {
	runs := func(ratios ...float64) []result {
		var r []result
		for i, x := range ratios {
			round := i + 1
			// Even rounds measure two destinations first, as the harness does.
			one := result{Scenario: "dual-1", Round: round, Target: "relay", Rate: 100e3, InputRate: 100e3, CPUPerMillion: 2}
			two := result{Scenario: "dual-2", Round: round, Target: "relay", Rate: 100e3, InputRate: 100e3, CPUPerMillion: 2 * x}
			if round%2 == 0 {
				r = append(r, two, one)
			} else {
				r = append(r, one, two)
			}
		}
		return r
	}
	for _, c := range []struct {
		ratios       []float64
		want8, want3 string
	}{
		{[]float64{1.1, 1.25, 1.15, 1.2, 1.05}, met, met},
		{[]float64{1.1, 1.35, 1.15, 1.2, 1.05}, met, missed}, // one above 1.3
		{[]float64{1.25, 1.25, 1.15, 1.22, 1.3}, met, missed},
		{[]float64{1.4, 1.35, 1.15, 1.32, 1.3}, missed, missed},
		{[]float64{1.1, 1.1, 1.1}, met, unproven}, // three of five runs
	} {
		goals := checkTargets(runs(c.ratios...))
		st8, _ := goalStatus(t, goals, "8", "two destinations")
		st3, v := goalStatus(t, goals, "18.3", "two destinations")
		if st8 != c.want8 || st3 != c.want3 {
			t.Errorf("runs %v: issue 8 %s, 18.3 %s (%s); want %s, %s", c.ratios, st8, st3, v, c.want8, c.want3)
		}
	}
	_, v := goalStatus(t, checkTargets(runs(1.1, 1.35, 1.15, 1.2, 1.05)), "18.3", "two destinations")
	if want := "median 1.15×, highest 1.35× of 5 runs (1.10, 1.35, 1.15, 1.20, 1.05)"; v != want {
		t.Errorf("value %q, want %q", v, want)
	}
	short := runs(1.1, 1.1, 1.1, 1.1, 1.1)
	short[3].InputRate = 80e3
	if st, _ := goalStatus(t, checkTargets(short), "18.3", "two destinations"); st != unproven {
		t.Errorf("a run at 80k of 100k msg/s: %s, want unproven", st)
	}
}

func TestLoggenTCPGoals(t *testing.T) {
	at := func(sc, target string, rate, in, cpu float64) result {
		return result{Scenario: sc, Target: target, Rate: rate, InputRate: in, Sent: 1000, CPUPerMillion: cpu}
	}
	results := []result{
		at("loggen-tcp-150k", "relay", 150e3, 150e3, 1.2),
		at("loggen-tcp-150k", "rsyslog-da", 150e3, 149e3, 3),
		at("loggen-tcp-50k", "relay", 50e3, 50e3, 2.5),
		at("loggen-tcp-50k", "rsyslog-da", 50e3, 50e3, 3),
	}
	for _, c := range []struct{ name, want string }{{"loggen at 150k", met}, {"loggen at 50k", missed}} {
		if st, v := goalStatus(t, checkTargets(results), "18.1", c.name); st != c.want {
			t.Errorf("%s: %s (%s), want %s", c.name, st, v, c.want)
		}
	}
	// rsyslog-da read slower than loggen could send: measured at its own
	// ceiling, not at 150k.
	results[1].InputRate = 53e3
	st, v := goalStatus(t, checkTargets(results), "18.1", "loggen at 150k")
	if want := "0.40× (1.20 vs 3.00 CPU-s per M msgs; offered 150k vs 53k msg/s)"; st != unproven || v != want {
		t.Errorf("rsyslog-da offered 53k: %s %q, want unproven %q", st, v, want)
	}
	results[1].InputRate, results[0].Lost = 150e3, 3
	if st, _ := goalStatus(t, checkTargets(results), "18.1", "loggen at 150k"); st != missed {
		t.Errorf("relay lost messages over TCP: %s, want missed", st)
	}
}

func TestUDPGoals(t *testing.T) {
	run := func(round int, target string, lost uint64, in float64) result {
		return result{Scenario: "loggen-udp-2x100k", Round: round, Target: target, Rate: 200e3, InputRate: in, Sent: 10000, Lost: lost}
	}
	for _, c := range []struct {
		name    string
		results []result
		want    string
	}{
		{"relay better in 2 of 3", []result{run(1, "relay", 10, 200e3), run(1, "rsyslog-da", 50, 200e3),
			run(2, "rsyslog-da", 30, 200e3), run(2, "relay", 40, 200e3),
			run(3, "relay", 0, 200e3), run(3, "rsyslog-da", 0, 200e3)}, met},
		{"relay worse in 2 of 3", []result{run(1, "relay", 60, 200e3), run(1, "rsyslog-da", 50, 200e3),
			run(2, "rsyslog-da", 30, 200e3), run(2, "relay", 40, 200e3),
			run(3, "relay", 0, 200e3), run(3, "rsyslog-da", 0, 200e3)}, missed},
		{"two runs", []result{run(1, "relay", 0, 200e3), run(1, "rsyslog-da", 50, 200e3),
			run(2, "rsyslog-da", 30, 200e3), run(2, "relay", 0, 200e3)}, unproven},
		{"loggen short of the rate", []result{run(1, "relay", 0, 120e3), run(1, "rsyslog-da", 50, 200e3),
			run(2, "rsyslog-da", 30, 150e3), run(2, "relay", 0, 150e3),
			run(3, "relay", 0, 160e3), run(3, "rsyslog-da", 0, 200e3)}, unproven},
		// One round each decides (the median of one).
		{"relay better under the heavier load", []result{run(1, "relay", 0, 199e3), run(1, "rsyslog-da", 4300, 180e3),
			run(2, "rsyslog-da", 4300, 180e3), run(2, "relay", 0, 199e3),
			run(3, "relay", 0, 199e3), run(3, "rsyslog-da", 4300, 180e3)}, met},
		{"relay better under the lighter load", []result{run(1, "relay", 0, 150e3), run(1, "rsyslog-da", 4300, 200e3),
			run(2, "rsyslog-da", 4300, 200e3), run(2, "relay", 0, 150e3),
			run(3, "relay", 0, 150e3), run(3, "rsyslog-da", 4300, 200e3)}, unproven},
		{"relay worse under the heavier load", []result{run(1, "relay", 50, 199e3), run(1, "rsyslog-da", 10, 180e3),
			run(2, "rsyslog-da", 10, 180e3), run(2, "relay", 50, 199e3),
			run(3, "relay", 50, 199e3), run(3, "rsyslog-da", 10, 180e3)}, unproven},
		{"relay worse under the lighter load", []result{run(1, "relay", 50, 180e3), run(1, "rsyslog-da", 10, 199e3),
			run(2, "rsyslog-da", 10, 199e3), run(2, "relay", 50, 180e3),
			run(3, "relay", 50, 180e3), run(3, "rsyslog-da", 10, 199e3)}, missed},
	} {
		if st, v := goalStatus(t, checkTargets(c.results), "18.2", "loses no more than"); st != c.want {
			t.Errorf("%s: %s (%s), want %s", c.name, st, v, c.want)
		}
	}
	_, v := goalStatus(t, checkTargets([]result{run(1, "relay", 10, 200e3), run(1, "rsyslog-da", 50, 200e3),
		run(2, "rsyslog-da", 30, 190e3), run(2, "relay", 40, 200e3), run(3, "relay", 0, 200e3), run(3, "rsyslog-da", 0, 200e3)}),
		"18.2", "loses no more than")
	if want := "median run: lost 0.00% vs 0.00% (0 of 10000 vs 0 of 10000, offered 200k vs 200k msg/s); runs: 0.10% vs 0.50%, 0.40% vs 0.30%, 0.00% vs 0.00%"; v != want {
		t.Errorf("value %q\nwant  %q", v, want)
	}

	udp := func(lost uint64, in, other float64) []result {
		return []result{{Scenario: "udp", Target: "relay", Rate: 200e3, InputRate: in, Sent: 1000000, Lost: lost, OtherLoadCores: other}}
	}
	for _, c := range []struct {
		name    string
		results []result
		want    string
	}{
		{"idle, no loss", udp(0, 200e3, 0.05), met},
		{"idle, loss", udp(5, 200e3, 0.05), missed},
		{"idle, loss below the rate", udp(5, 150e3, 0.05), missed},
		{"idle, no loss below the rate", udp(0, 150e3, 0.05), unproven},
		{"busy, no loss", udp(0, 200e3, 1.2), unproven},
		{"busy, loss", udp(5, 200e3, 1.2), unproven},
	} {
		if st, v := goalStatus(t, checkTargets(c.results), "18.2", "on an idle machine"); st != c.want {
			t.Errorf("%s: %s (%s), want %s", c.name, st, v, c.want)
		}
	}
}

func TestOutInAndSyslogNGGoals(t *testing.T) {
	results := []result{
		{Scenario: "tcp", Target: "relay", Conns: 1, InputRate: 1000e3, Throughput: 900e3, CPUPerMillion: 1},
		{Scenario: "tcp", Target: "syslog-ng-reliable", Throughput: 100e3, CPUPerMillion: 10},
		{Scenario: "tcp", Target: "syslog-ng-mem", Throughput: 300e3, CPUPerMillion: 4},
		{Scenario: "udp", Target: "relay", Sent: 100, Lost: 0},
		{Scenario: "udp", Target: "syslog-ng-mem", Sent: 100, Lost: 7},
		{Scenario: "loggen-udp-2x100k", Round: 1, Target: "relay", Sent: 1000, Lost: 10},
		{Scenario: "loggen-udp-2x100k", Round: 1, Target: "syslog-ng-mem", Sent: 1000, Lost: 600},
	}
	goals := checkTargets(results)
	st, v := goalStatus(t, goals, "18.4", "output")
	if want := "0.90× (out 900000 vs in 1000000 msg/s)"; st != missed || v != want {
		t.Errorf("out/in: %s %q, want missed %q", st, v, want)
	}
	st, v = goalStatus(t, goals, "18.5", "syslog-ng-mem")
	if want := "relay/syslog-ng tcp throughput 3.00×, CPU/msg 0.25×; udp lost 0.00% vs 7.00%; loggen-udp-2x100k lost 1.00% vs 60.00%"; st != met || v != want {
		t.Errorf("syslog-ng-mem: %s %q\nwant met %q", st, v, want)
	}
	st, v = goalStatus(t, goals, "18.5", "syslog-ng-reliable")
	if want := "no udp result from syslog-ng-reliable; relay/syslog-ng tcp throughput 9.00×, CPU/msg 0.10×"; st != notMeasured || v != want {
		t.Errorf("syslog-ng-reliable without udp: %s %q\nwant not measured %q", st, v, want)
	}
}

// TestPrintReport checks the tables name the rounds of a repeated
// scenario and pair the ratios round by round.
func TestPrintReport(t *testing.T) {
	results := []result{
		{Scenario: "loggen-udp-2x100k", Round: 1, Target: "relay", Sent: 1000, Lost: 10},
		{Scenario: "loggen-udp-2x100k", Round: 1, Target: "rsyslog-da", Sent: 1000, Lost: 20},
		{Scenario: "loggen-udp-2x100k", Round: 1, Target: "syslog-ng-mem", Sent: 1000, Lost: 600},
		{Scenario: "loggen-udp-2x100k", Round: 2, Target: "rsyslog-da", Sent: 1000, Lost: 30},
		{Scenario: "loggen-udp-2x100k", Round: 2, Target: "relay", Sent: 1000, Lost: 40},
	}
	rep := &report{Results: results, Ratios: ratios(results), Targets: checkTargets(results)}
	var out bytes.Buffer
	printReport(&out, rep)
	var lines []string // with the columns' padding collapsed
	for _, l := range strings.Split(out.String(), "\n") {
		lines = append(lines, strings.Join(strings.Fields(l), " "))
	}
	for _, want := range []string{
		"loggen-udp-2x100k #2 relay 1000 40 0",
		"loggen-udp-2x100k #1 syslog-ng-mem 0.00× 0.00× 0.00× 0.00× 10 vs 600",
		"loggen-udp-2x100k #2 rsyslog-da 0.00× 0.00× 0.00× 0.00× 40 vs 30",
		"unproven 18.2 loggen-udp-2x100k: relay loses no more than rsyslog disk-assisted (median of 3 runs) median run:",
	} {
		if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, want) }) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	if n := len(rep.Ratios); n != 3 {
		t.Errorf("%d ratios, want 3 (rsyslog-da in both rounds, syslog-ng-mem in the first): %+v", n, rep.Ratios)
	}
}

// TestBenchDirect runs the whole harness on the direct baseline, which
// needs neither the relay nor rsyslog, and checks the JSON report.
func TestBenchDirect(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.json")
	var out bytes.Buffer
	o, err := parseFlags([]string{"-targets", "direct", "-scenarios", "tcp", "-duration", "300ms", "-tcp-count", "50000", "-json", path}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := bench(context.Background(), o, &out, io.Discard); err != nil {
		t.Fatalf("bench: %v\n%s", err, out.String())
	}
	var rep report
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 1 {
		t.Fatalf("results = %+v", rep.Results)
	}
	r := rep.Results[0]
	if r.Error != "" || r.Sent == 0 || r.Lost != 0 || r.Delivered != r.Sent || r.Throughput <= 0 {
		t.Errorf("result = %+v", r)
	}
	if !strings.Contains(out.String(), "direct") || !strings.Contains(out.String(), "targets of issues 8 and 18") {
		t.Errorf("table:\n%s", out.String())
	}
}

// TestBenchRelay runs short tcp and outage scenarios through a relay built
// from this tree: nothing may be lost, and the backlog after the outage
// must drain.
func TestBenchRelay(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the relay")
	}
	path := filepath.Join(t.TempDir(), "out.json")
	var out bytes.Buffer
	o, err := parseFlags([]string{"-targets", "relay", "-scenarios", "tcp,udp,outage",
		"-duration", "500ms", "-tcp-count", "100000", "-udp-rate", "20000",
		"-outage-rate", "5000", "-outage-lead", "300ms", "-outage", "500ms", "-outage-max-drain", "20s",
		"-json", path}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := bench(context.Background(), o, &out, io.Discard); err != nil {
		t.Fatalf("bench: %v\n%s", err, out.String())
	}
	var rep report
	b, _ := os.ReadFile(path)
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 3 {
		t.Fatalf("results:\n%s", out.String())
	}
	for _, r := range rep.Results {
		if r.Error != "" || r.Sent == 0 || r.Lost != 0 || r.CPUSeconds <= 0 || r.PeakRSSMiB <= 0 {
			t.Errorf("%s: %+v", r.Scenario, r)
		}
		if r.Extra["relay_listener_messages_received_total{listener=\""+r.Proto+"\"}"] == 0 {
			t.Errorf("%s: the relay's metrics were not scraped: %v", r.Scenario, r.Extra)
		}
	}
	if d := rep.Results[2].Drain; d == nil || d.DrainSeconds <= 0 || d.DeliveryRate <= 0 {
		t.Errorf("outage drain = %+v\n%s", d, out.String())
	}
}

func TestLoggenSent(t *testing.T) {
	n, err := loggenSent("count=18443, rate = 17999.32 msg/sec\naverage rate = 17366.13 msg/sec, count=18443, time=1.06201, (average) msg size=200, bandwidth=3391.82 kB/sec\n")
	if err != nil || n != 18443 {
		t.Errorf("loggenSent = %d, %v; want 18443", n, err)
	}
	if _, err := loggenSent("error connecting socket\n"); err == nil {
		t.Error("loggenSent without a closing line: no error")
	}
}

// needSyslogNG returns syslog-ng and loggen from -syslog-ng's default
// (RELAY_BENCH_SYSLOG_NG, else PATH); CI unpacks them (.ci/run).
func needSyslogNG(t *testing.T) *syslogNG {
	t.Helper()
	ng, err := findSyslogNG(os.Getenv("RELAY_BENCH_SYSLOG_NG"))
	if err == nil && ng.daemon != "" && ng.loggen != "" {
		return ng
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("syslog-ng and loggen not found (%v): CI runs tools/get-syslog-ng.sh and sets RELAY_BENCH_SYSLOG_NG", err)
	}
	t.Skip("syslog-ng and loggen not found: tools/get-syslog-ng.sh DIR, then RELAY_BENCH_SYSLOG_NG=DIR")
	return nil
}

// TestSyslogNGConfigValid checks both syslog-ng setups with syslog-ng's
// own syntax check.
func TestSyslogNGConfigValid(t *testing.T) {
	ng := needSyslogNG(t)
	for _, c := range []struct {
		mode   string
		framed bool
	}{{"reliable", true}, {"mem", false}} {
		mode := c.mode
		dir := t.TempDir()
		conf := filepath.Join(dir, "syslog-ng.conf")
		if err := os.WriteFile(conf, []byte(syslogNGConfig(dir, mode, 5514, 4<<20, c.framed, []string{"127.0.0.1:6000", "127.0.0.1:6001"})), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(ng.daemon, "--syntax-only", "-f", conf)
		cmd.Env = append(os.Environ(), ng.env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("syslog-ng --syntax-only on the %s config: %v\n%s", mode, err, out)
		}
	}
}

// TestBenchLoggen runs both loggen scenarios, short and slow, through a
// relay built from this tree: loggen's count is read and every message
// arrives.
func TestBenchLoggen(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the relay and loggen")
	}
	needSyslogNG(t)
	path := filepath.Join(t.TempDir(), "out.json")
	var out bytes.Buffer
	o, err := parseFlags([]string{"-targets", "relay", "-scenarios", "loggen-tcp,loggen-udp",
		"-duration", "1s", "-loggen-tcp-rates", "5000", "-loggen-udp-rate", "2000", "-json", path}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := bench(context.Background(), o, &out, io.Discard); err != nil {
		t.Fatalf("bench: %v\n%s", err, out.String())
	}
	var rep report
	b, _ := os.ReadFile(path)
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 2 {
		t.Fatalf("results:\n%s", out.String())
	}
	for _, r := range rep.Results {
		if r.Error != "" || r.Sent == 0 || r.Lost != 0 || r.Delivered != r.Sent || r.CPUSeconds <= 0 {
			t.Errorf("%s: %+v", r.Scenario, r)
		}
	}
}

// TestBenchSyslogNG runs the harness's own tcp (octet-counted, the
// default framing) and udp loads through syslog-ng: every message arrives
// as it was sent.
func TestBenchSyslogNG(t *testing.T) {
	if testing.Short() {
		t.Skip("runs syslog-ng")
	}
	needSyslogNG(t)
	path := filepath.Join(t.TempDir(), "out.json")
	var out bytes.Buffer
	// About 300 datagrams: they fit the smallest receive buffer syslog-ng
	// may get (net.core.rmem_max's default) while it waits for a busy CPU.
	o, err := parseFlags([]string{"-targets", "syslog-ng-mem", "-scenarios", "tcp,udp", "-duration", "300ms",
		"-tcp-count", "20000", "-udp-rate", "1000", "-json", path}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := bench(context.Background(), o, &out, io.Discard); err != nil {
		t.Fatalf("bench: %v\n%s", err, out.String())
	}
	var rep report
	b, _ := os.ReadFile(path)
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 2 {
		t.Fatalf("results:\n%s", out.String())
	}
	for _, r := range rep.Results {
		if r.Error != "" || r.Sent == 0 || r.Lost != 0 || r.BadFrames != 0 || r.Delivered != r.Sent {
			t.Errorf("%s: %+v", r.Scenario, r)
		}
	}
}

// TestBenchPerhost runs a short perhost scenario through a relay built
// from this tree and through rsyslog: both must write every byte into one
// file per host.
func TestBenchPerhost(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the relay")
	}
	targets := "relay,rsyslog-da"
	if findRsyslogd() == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("rsyslogd not found: CI must install the Debian package rsyslog")
		}
		targets = "relay"
	}
	path := filepath.Join(t.TempDir(), "out.json")
	var out bytes.Buffer
	o, err := parseFlags([]string{"-targets", targets, "-scenarios", "perhost", "-perhost-count", "20000",
		"-conns", "2", "-drain-timeout", "60s", "-json", path}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := bench(context.Background(), o, &out, io.Discard); err != nil {
		t.Fatalf("bench: %v\n%s", err, out.String())
	}
	var rep report
	b, _ := os.ReadFile(path)
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != strings.Count(targets, ",")+1 {
		t.Fatalf("results:\n%s", out.String())
	}
	for _, r := range rep.Results {
		if r.Error != "" || r.Delivered != 20000 || r.Throughput <= 0 || r.CPUSeconds <= 0 {
			t.Errorf("%s: %+v", r.Target, r)
		}
	}
}
