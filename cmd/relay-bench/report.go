package main

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// result is one scenario measured through one target.
type result struct {
	Scenario     string  `json:"scenario"`
	Round        int     `json:"round,omitempty"` // of a scenario repeated for a median, from 1
	Target       string  `json:"target"`
	Proto        string  `json:"proto"`
	Framing      string  `json:"framing"`
	Conns        int     `json:"conns"`
	Size         int     `json:"size"`
	Rate         float64 `json:"rate_target,omitempty"` // 0: as fast as possible
	Destinations int     `json:"destinations"`

	Sent      uint64 `json:"sent"`
	Delivered uint64 `json:"delivered"` // distinct messages that reached every sink
	Lost      uint64 `json:"lost"`      // summed over sinks
	Dups      uint64 `json:"duplicates"`
	Foreign   uint64 `json:"foreign"`    // messages not of this run (probes, the target's own)
	BadFrames uint64 `json:"bad_frames"` // sink connections ended by bad framing

	SendSeconds float64 `json:"send_seconds"`
	InputRate   float64 `json:"input_rate"` // messages sent per second
	// Throughput is distinct messages at the first sink per second, from
	// the first send to the last arrival.
	Throughput     float64 `json:"throughput"`
	CPUSeconds     float64 `json:"cpu_seconds"`
	CPUPerMillion  float64 `json:"cpu_seconds_per_million"` // per million messages sent
	PeakRSSMiB     float64 `json:"peak_rss_mib"`
	P50ms          float64 `json:"p50_ms"`
	P99ms          float64 `json:"p99_ms"`
	MaxMs          float64 `json:"max_ms"`
	RcvbufErrors   *uint64 `json:"udp_rcvbuf_errors,omitempty"` // /proc/net/snmp delta, whole machine
	UDPInErrors    *uint64 `json:"udp_in_errors,omitempty"`
	SocketDrops    *uint64 `json:"udp_socket_drops,omitempty"` // the target's own socket, /proc/net/udp drops column
	OtherLoadCores float64 `json:"other_load_cores"`           // CPU used by neither the target nor the harness
	HarnessCores   float64 `json:"harness_cores"`

	Drain *drainResult       `json:"drain,omitempty"`
	Extra map[string]float64 `json:"target_metrics,omitempty"`
	Notes []string           `json:"notes,omitempty"`
	Error string             `json:"error,omitempty"`
}

// drainResult is what the outage scenario measures after the sink returns.
type drainResult struct {
	OutageSeconds    float64 `json:"outage_seconds"`
	Backlog          uint64  `json:"backlog"`           // sent but not delivered when the sink returned
	ReconnectSeconds float64 `json:"reconnect_seconds"` // sink back → first message
	DrainSeconds     float64 `json:"drain_seconds"`     // first message → caught up
	DeliveryRate     float64 `json:"delivery_rate"`     // messages delivered per second while draining
	InputRate        float64 `json:"input_rate"`        // messages sent per second meanwhile
	NetDrainRate     float64 `json:"net_drain_rate"`    // delivery minus input: how fast the backlog shrank
	DeliveryRatio    float64 `json:"delivery_ratio"`    // delivery rate / input rate
	NetRatio         float64 `json:"net_ratio"`         // net drain rate / input rate
}

// machine describes where the run happened.
type machine struct {
	CPUs            int     `json:"cpus"`
	Kernel          string  `json:"kernel"`
	Go              string  `json:"go"`
	Rsyslog         string  `json:"rsyslog,omitempty"`
	SyslogNG        string  `json:"syslog_ng,omitempty"`
	LoadAvg1        float64 `json:"loadavg_1m"`
	BusyCoresBefore float64 `json:"busy_cores_before"`
}

func describeMachine() machine {
	m := machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// ratio compares the relay with another target in one scenario.
type ratio struct {
	Scenario   string  `json:"scenario"`
	Round      int     `json:"round,omitempty"`
	Versus     string  `json:"versus"`
	Throughput float64 `json:"throughput"`         // relay / other; higher is better
	CPU        float64 `json:"cpu_per_message"`    // relay / other; lower is better
	RSS        float64 `json:"peak_rss"`           // relay / other; lower is better
	P99        float64 `json:"p99_latency"`        // relay / other; lower is better
	Loss       string  `json:"loss"`               // "relay N vs other M"
	Drain      float64 `json:"drain,omitempty"`    // delivery rate after an outage, relay / other
	DualCPU    float64 `json:"dual_cpu,omitempty"` // (2 destinations / 1) of relay over that of other
}

// goal is one target of issues 8 and 18 and whether this run met it.
type goal struct {
	Issue  string `json:"issue"` // the issue, and for issue 18 the number of its target: "8", "18.2"
	Goal   string `json:"goal"`
	Value  string `json:"value"` // the figure, or why there is none
	Status string `json:"status"`
}

// The statuses of a goal. Unproven: the run could not test the target as
// it is stated (the generator could not offer the rate it names, the
// machine was not idle, fewer runs than its median asks for), so the
// figure, whatever it is, decides nothing.
const (
	met         = "met"
	missed      = "missed"
	unproven    = "unproven"
	notMeasured = "not measured"
)

const (
	// offeredShare is the share of a fixed rate a load must reach to count
	// as offered at that rate: pacing and starting a generator cost a
	// little.
	offeredShare = 0.97
	// idleCores is the CPU, in cores, that processes other than the target
	// and the harness may use during a run taken "on an idle machine"
	// (the table's other CPU column; -quiet-cores's default).
	idleCores = 0.2
)

type report struct {
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Machine  machine   `json:"machine"`
	Args     []string  `json:"args"`
	Warnings []string  `json:"warnings,omitempty"`
	Results  []result  `json:"results"`
	Ratios   []ratio   `json:"ratios"`
	Targets  []goal    `json:"targets"`
}

func (r *report) warn(w io.Writer, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.Warnings = append(r.Warnings, msg)
	fmt.Fprintf(w, "relay-bench: warning: %s\n", msg)
}

// find returns the first successful result of scenario through target
// (round 1 of a repeated scenario), or nil.
func find(results []result, scenario, target string) *result {
	for i := range results {
		if results[i].Scenario == scenario && results[i].Target == target && results[i].Error == "" {
			return &results[i]
		}
	}
	return nil
}

// findRound is find for one round of a repeated scenario.
func findRound(results []result, scenario, target string, round int) *result {
	for i := range results {
		r := &results[i]
		if r.Scenario == scenario && r.Target == target && r.Round == round && r.Error == "" {
			return r
		}
	}
	return nil
}

// absent says why there is no successful result of scenario through the
// first of targets that has none: it failed, or it did not run.
func absent(results []result, scenario string, targets ...string) string {
	for _, t := range targets {
		if find(results, scenario, t) != nil {
			continue
		}
		for _, r := range results {
			if r.Scenario == scenario && r.Target == t {
				return fmt.Sprintf("%s through %s failed: %s", scenario, t, firstLine(r.Error))
			}
		}
		return fmt.Sprintf("no %s result from %s", scenario, t)
	}
	return ""
}

// offered reports whether r's load reached the fixed rate it asked for
// (a load as fast as possible always did).
func offered(r *result) bool { return r.Rate == 0 || r.InputRate >= offeredShare*r.Rate }

func div(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// median of v (the mean of the middle two for an even count); 0 for none.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

func lossShare(r *result) float64 { return div(float64(r.Lost), float64(r.Sent)) }

// ratios compares the relay with each other target, scenario by scenario
// and, in a repeated scenario, round by round where both ran.
func ratios(results []result) []ratio {
	var out []ratio
	for i := range results {
		rel := &results[i]
		if rel.Target != "relay" || rel.Error != "" {
			continue
		}
		for _, other := range []string{"rsyslog-disk", "rsyslog-da", "syslog-ng-reliable", "syslog-ng-mem", "rsyslog", "direct"} {
			o := findRound(results, rel.Scenario, other, rel.Round)
			if o == nil {
				continue
			}
			ra := ratio{
				Scenario: rel.Scenario, Round: rel.Round, Versus: other,
				Throughput: div(rel.Throughput, o.Throughput),
				CPU:        div(rel.CPUPerMillion, o.CPUPerMillion),
				RSS:        div(rel.PeakRSSMiB, o.PeakRSSMiB),
				P99:        div(rel.P99ms, o.P99ms),
				Loss:       fmt.Sprintf("%d vs %d", rel.Lost, o.Lost),
			}
			if rel.Drain != nil && o.Drain != nil {
				ra.Drain = div(rel.Drain.DeliveryRate, o.Drain.DeliveryRate)
			}
			if rel.Scenario == "dual-2" {
				r1, o1 := findRound(results, "dual-1", "relay", rel.Round), findRound(results, "dual-1", other, rel.Round)
				if r1 != nil && o1 != nil {
					ra.DualCPU = div(div(rel.CPUPerMillion, r1.CPUPerMillion), div(o.CPUPerMillion, o1.CPUPerMillion))
				}
			}
			out = append(out, ra)
		}
	}
	return out
}

func status(ok bool) string {
	if ok {
		return met
	}
	return missed
}

// checkTargets judges the run against the targets of issues 8 and 18: one
// line for each, whatever ran, so that a run shows what it did not
// measure.
func checkTargets(results []result) []goal {
	var g []goal
	add := func(issue, name, value, st string) {
		g = append(g, goal{Issue: issue, Goal: name, Value: value, Status: st})
	}

	rel := find(results, "tcp", "relay")
	for _, c := range []struct {
		issue, other, name string
		limit              float64
	}{
		{"8, 18.1", "rsyslog-da", "tcp throughput ≥ 1.0× rsyslog memory (disk-assisted) queue", 1},
		{"8", "rsyslog-disk", "tcp throughput ≥ 4× rsyslog Disk queue", 4},
	} {
		o := find(results, "tcp", c.other)
		if rel == nil || o == nil {
			add(c.issue, c.name, absent(results, "tcp", "relay", c.other), notMeasured)
			continue
		}
		x := div(rel.Throughput, o.Throughput)
		add(c.issue, c.name, fmt.Sprintf("%.2f× (%.0f vs %.0f msg/s)", x, rel.Throughput, o.Throughput), status(x >= c.limit && rel.Lost == 0))
	}
	if u := find(results, "udp", "relay"); u != nil {
		rb := "n/a"
		ok := u.Lost == 0
		if u.RcvbufErrors != nil {
			rb = fmt.Sprint(*u.RcvbufErrors)
			ok = ok && *u.RcvbufErrors == 0
		}
		sd := "n/a"
		if u.SocketDrops != nil {
			sd = fmt.Sprint(*u.SocketDrops)
		}
		st := status(ok)
		// No loss at a lower rate than asked proves nothing about the rate
		// asked: the generator shares the machine with what it measures.
		if ok && !offered(u) {
			st = unproven
		}
		add("8", fmt.Sprintf("udp at %.0fk msg/s: 0 loss, RcvbufErrors unchanged", u.Rate/1000),
			fmt.Sprintf("lost %d of %d at %.0f msg/s, RcvbufErrors +%s (relay socket drops +%s)", u.Lost, u.Sent, u.InputRate, rb, sd), st)
	} else {
		add("8", "udp at 200k msg/s: 0 loss, RcvbufErrors unchanged", absent(results, "udp", "relay"), notMeasured)
	}
	if rel != nil {
		add("8", "relay peak RSS ≤ 64 MiB at peak throughput", fmt.Sprintf("%.1f MiB", rel.PeakRSSMiB), status(rel.PeakRSSMiB > 0 && rel.PeakRSSMiB <= 64))
	} else {
		add("8", "relay peak RSS ≤ 64 MiB at peak throughput", absent(results, "tcp", "relay"), notMeasured)
	}
	if l := find(results, "latency", "relay"); l != nil {
		add("8", fmt.Sprintf("p99 latency ≤ 50 ms at %.0fk msg/s", l.Rate/1000),
			fmt.Sprintf("p99 %.1f ms (p50 %.1f ms, max %.1f ms)", l.P99ms, l.P50ms, l.MaxMs), status(l.P99ms <= 50 && l.Lost == 0))
	} else {
		add("8", "p99 latency ≤ 50 ms at 100k msg/s", absent(results, "latency", "relay"), notMeasured)
	}
	if o := find(results, "outage", "relay"); o != nil && o.Drain != nil {
		d := o.Drain
		add("8", fmt.Sprintf("after a %.0f s outage at %.0fk msg/s the backlog drains at ≥ 2× the input rate", d.OutageSeconds, o.Rate/1000),
			fmt.Sprintf("backlog shrank at %.1f× input (delivered %.0f msg/s = %.1f× input; %d lost)", d.NetRatio, d.DeliveryRate, d.DeliveryRatio, o.Lost),
			status(d.NetRatio >= 2 && o.Lost == 0))
	} else {
		add("8", "backlog drains at ≥ 2× the input rate after an outage", absent(results, "outage", "relay"), notMeasured)
	}
	dual := dualRuns(results, "relay")
	if len(dual.ratios) > 0 {
		st := status(median(dual.ratios) <= 1.3)
		if !dual.offered {
			st = unproven
		}
		add("8", "two destinations cost ≤ 1.3× the CPU of one", dual.String(), st)
	} else {
		add("8", "two destinations cost ≤ 1.3× the CPU of one", absent(results, "dual-2", "relay"), notMeasured)
	}
	g = append(g, loggenTCPGoals(results)...)
	g = append(g, udpGoals(results)...)
	g = append(g, dualGoal(dual, results), outInGoal(results))
	g = append(g, syslogNGGoals(results)...)
	return g
}

// dualRun is the relay's CPU per message with two destinations over one,
// round by round of the dual scenario.
type dualRun struct {
	ratios  []float64 // in round order
	offered bool      // every measurement reached the rate asked
}

func dualRuns(results []result, target string) dualRun {
	d := dualRun{offered: true}
	for _, one := range results {
		if one.Scenario != "dual-1" || one.Target != target || one.Error != "" {
			continue
		}
		two := findRound(results, "dual-2", target, one.Round)
		if two == nil || one.CPUPerMillion == 0 || two.CPUPerMillion == 0 {
			continue
		}
		d.ratios = append(d.ratios, two.CPUPerMillion/one.CPUPerMillion)
		d.offered = d.offered && offered(&one) && offered(two)
	}
	return d
}

func (d dualRun) String() string {
	runs := make([]string, len(d.ratios))
	for i, x := range d.ratios {
		runs[i] = fmt.Sprintf("%.2f", x)
	}
	s := fmt.Sprintf("median %.2f×, highest %.2f× of %d runs (%s)", median(d.ratios), slices.Max(d.ratios), len(d.ratios), strings.Join(runs, ", "))
	if !d.offered {
		s += "; the generator fell short of the rate in some"
	}
	return s
}

// dualRunsWanted is how many dual runs issue 18's target 3 takes the
// median of.
const dualRunsWanted = 5

func dualGoal(d dualRun, results []result) goal {
	name := fmt.Sprintf("two destinations ≤ 1.2× the CPU of one (median of %d runs), none above 1.3×", dualRunsWanted)
	if len(d.ratios) == 0 {
		return goal{"18.3", name, absent(results, "dual-2", "relay"), notMeasured}
	}
	st := status(median(d.ratios) <= 1.2 && slices.Max(d.ratios) <= 1.3)
	value := d.String()
	if len(d.ratios) < dualRunsWanted {
		st = unproven
		value += fmt.Sprintf("; %d of the %d runs asked", len(d.ratios), dualRunsWanted)
	} else if !d.offered {
		st = unproven
	}
	return goal{"18.3", name, value, st}
}

// loggenTCPGoals judges the relay's CPU per message against rsyslog-da's
// under loggen at issue 18's two rates. A target offered less than the
// rate (TCP slowed loggen to what it reads) was measured at another rate,
// where CPU per message differs, so the ratio proves nothing.
func loggenTCPGoals(results []result) []goal {
	var g []goal
	for _, c := range []struct{ rate, limit float64 }{{150_000, 0.5}, {50_000, 0.7}} {
		sc := "loggen-tcp-" + kilo(c.rate)
		name := fmt.Sprintf("loggen at %s msg/s on one TCP connection: relay CPU per message ≤ %.1f× rsyslog disk-assisted", kilo(c.rate), c.limit)
		rel, da := find(results, sc, "relay"), find(results, sc, "rsyslog-da")
		if rel == nil || da == nil || rel.CPUPerMillion == 0 || da.CPUPerMillion == 0 {
			why := absent(results, sc, "relay", "rsyslog-da")
			if why == "" {
				why = "no CPU figure"
			}
			g = append(g, goal{"18.1", name, why, notMeasured})
			continue
		}
		x := rel.CPUPerMillion / da.CPUPerMillion
		value := fmt.Sprintf("%.2f× (%.2f vs %.2f CPU-s per M msgs; offered %s vs %s msg/s)",
			x, rel.CPUPerMillion, da.CPUPerMillion, kilo(rel.InputRate), kilo(da.InputRate))
		st := status(x <= c.limit)
		switch {
		case rel.Lost > 0:
			st = missed
			value += fmt.Sprintf("; the relay lost %d", rel.Lost)
		case !offered(rel) || !offered(da):
			st = unproven
		}
		g = append(g, goal{"18.1", name, value, st})
	}
	return g
}

// loggenUDPRunsWanted is how many loggen-udp runs issue 18's target 2
// takes the median of.
const loggenUDPRunsWanted = 3

// udpGoals judges issue 18's UDP targets: under two loggen senders the
// relay loses no more than rsyslog-da in the same run (the median of the
// runs, by the difference of their loss shares), and at 200k msg/s from
// the harness's generator the relay loses nothing on an idle machine.
func udpGoals(results []result) []goal {
	var g []goal
	sc := "loggen-udp-2x100k"
	for _, r := range results {
		if strings.HasPrefix(r.Scenario, "loggen-udp") {
			sc = r.Scenario
			break
		}
	}
	name := fmt.Sprintf("%s: relay loses no more than rsyslog disk-assisted (median of %d runs)", sc, loggenUDPRunsWanted)
	type pair struct{ rel, da *result }
	var runs []pair
	for i := range results {
		r := &results[i]
		if r.Scenario != sc || r.Target != "relay" || r.Error != "" {
			continue
		}
		if da := findRound(results, sc, "rsyslog-da", r.Round); da != nil && r.Sent > 0 && da.Sent > 0 {
			runs = append(runs, pair{r, da})
		}
	}
	if len(runs) == 0 {
		why := absent(results, sc, "relay", "rsyslog-da")
		if why == "" {
			why = "nothing sent"
		}
		g = append(g, goal{"18.2", name, why, notMeasured})
	} else {
		diff := func(p pair) float64 { return lossShare(p.rel) - lossShare(p.da) }
		var each []string
		for _, p := range runs {
			each = append(each, fmt.Sprintf("%.2f%% vs %.2f%%", 100*lossShare(p.rel), 100*lossShare(p.da)))
		}
		sorted := slices.Clone(runs)
		slices.SortStableFunc(sorted, func(a, b pair) int { return cmp.Compare(diff(a), diff(b)) })
		m := sorted[len(sorted)/2] // of an even count, the upper one: the less favourable to the relay
		value := fmt.Sprintf("median run: lost %.2f%% vs %.2f%% (%d of %d vs %d of %d, offered %s vs %s msg/s); runs: %s",
			100*lossShare(m.rel), 100*lossShare(m.da), m.rel.Lost, m.rel.Sent, m.da.Lost, m.da.Sent,
			kilo(m.rel.InputRate), kilo(m.da.InputRate), strings.Join(each, ", "))
		st := status(diff(m) <= 0)
		switch {
		case len(runs) < loggenUDPRunsWanted:
			st = unproven
			value += fmt.Sprintf("; %d of the %d runs asked", len(runs), loggenUDPRunsWanted)
		case !fairUDPComparison(m.rel, m.da, diff(m) <= 0):
			// A target that took CPU from loggen was sent less: the
			// comparison holds only if the lighter load lost.
			st = unproven
		}
		g = append(g, goal{"18.2", name, value, st})
	}

	if u := find(results, "udp", "relay"); u != nil {
		name := fmt.Sprintf("udp at %.0fk msg/s on an idle machine: none lost", u.Rate/1000)
		value := fmt.Sprintf("lost %d of %d at %.0f msg/s; other load %.2f cores", u.Lost, u.Sent, u.InputRate, u.OtherLoadCores)
		var st string
		switch {
		case u.OtherLoadCores >= idleCores:
			// Loss on a busy machine says nothing about an idle one, nor does
			// its absence.
			st = unproven
			value += fmt.Sprintf(" (idle: below %.1f)", idleCores)
		case u.Lost > 0:
			st = missed
		case !offered(u):
			st = unproven
		default:
			st = met
		}
		g = append(g, goal{"18.2", name, value, st})
	} else {
		g = append(g, goal{"18.2", "udp at 200k msg/s on an idle machine: none lost", absent(results, "udp", "relay"), notMeasured})
	}
	return g
}

// outInGoal judges issue 18's target 4 on the tcp scenario's relay row:
// what the relay delivered per second over what it accepted.
func outInGoal(results []result) goal {
	name := "one TCP connection: relay output ≥ 0.95× its input"
	r := find(results, "tcp", "relay")
	if r == nil {
		return goal{"18.4", name, absent(results, "tcp", "relay"), notMeasured}
	}
	x := div(r.Throughput, r.InputRate)
	value := fmt.Sprintf("%.2f× (out %.0f vs in %.0f msg/s)", x, r.Throughput, r.InputRate)
	st := status(x >= 0.95 && r.Lost == 0)
	if r.Conns != 1 {
		st = unproven
		value += fmt.Sprintf("; the load used %d connections", r.Conns)
	}
	return goal{"18.4", name, value, st}
}

// syslogNGGoals reports issue 18's target 5, syslog-ng measured beside the
// relay on TCP and UDP, with the relay/syslog-ng figures of the run.
func syslogNGGoals(results []result) []goal {
	var g []goal
	for _, ng := range []string{"syslog-ng-reliable", "syslog-ng-mem"} {
		name := fmt.Sprintf("relay vs %s on TCP and UDP, same run", ng)
		var have, lack []string
		if rel, o := find(results, "tcp", "relay"), find(results, "tcp", ng); rel != nil && o != nil {
			have = append(have, fmt.Sprintf("tcp throughput %.2f×, CPU/msg %.2f×", div(rel.Throughput, o.Throughput), div(rel.CPUPerMillion, o.CPUPerMillion)))
		} else {
			lack = append(lack, absent(results, "tcp", "relay", ng))
		}
		udp := false
		if rel, o := find(results, "udp", "relay"), find(results, "udp", ng); rel != nil && o != nil && rel.Sent > 0 && o.Sent > 0 {
			udp = true
			have = append(have, fmt.Sprintf("udp lost %.2f%% vs %.2f%%", 100*lossShare(rel), 100*lossShare(o)))
		}
		for _, r := range results {
			if !strings.HasPrefix(r.Scenario, "loggen-udp") || r.Target != ng || r.Error != "" || r.Sent == 0 {
				continue
			}
			if rel := findRound(results, r.Scenario, "relay", r.Round); rel != nil && rel.Sent > 0 {
				udp = true
				have = append(have, fmt.Sprintf("%s lost %.2f%% vs %.2f%%", r.Scenario, 100*lossShare(rel), 100*lossShare(&r)))
				break
			}
		}
		if !udp {
			lack = append(lack, absent(results, "udp", "relay", ng))
		}
		value := strings.Join(have, "; ")
		if value != "" {
			value = "relay/syslog-ng " + value
		}
		if len(lack) > 0 {
			value = strings.Join(append(lack, value), "; ")
			g = append(g, goal{"18.5", name, strings.TrimSuffix(value, "; "), notMeasured})
			continue
		}
		g = append(g, goal{"18.5", name, value, met})
	}
	return g
}

func printReport(w io.Writer, rep *report) {
	fmt.Fprintf(w, "relay-bench %s, %d CPUs, kernel %s, %s", rep.Started.Format(time.RFC3339), rep.Machine.CPUs, rep.Machine.Kernel, rep.Machine.Go)
	if rep.Machine.Rsyslog != "" {
		fmt.Fprintf(w, ", %s", rep.Machine.Rsyslog)
	}
	fmt.Fprintf(w, "\n\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\ttarget\tsent\tlost\tdup\tin msg/s\tout msg/s\tCPU s/M\tRSS MiB\tp50 ms\tp99 ms\tother CPU\t")
	for _, r := range rep.Results {
		if r.Error != "" {
			fmt.Fprintf(tw, "%s\t%s\t\t\t\t\t\t\t\t\t\t\t  error: %s\n", label(r.Scenario, r.Round), r.Target, firstLine(r.Error))
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%.2f\t%.2f\t%.2f\t%s\n",
			label(r.Scenario, r.Round), r.Target, r.Sent, r.Lost, r.Dups, kilo(r.InputRate), kilo(r.Throughput),
			opt(r.CPUPerMillion, "%.2f"), opt(r.PeakRSSMiB, "%.1f"), r.P50ms, r.P99ms, r.OtherLoadCores, notes(r))
	}
	tw.Flush()

	if len(rep.Ratios) > 0 {
		fmt.Fprintf(w, "\nrelay / other, same run (throughput and drain: higher is better; CPU per message, RSS, p99: lower is better)\n\n")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "scenario\tversus\tthroughput\tCPU/msg\tRSS\tp99\tlost (relay vs other)\t")
		for _, r := range rep.Ratios {
			extra := ""
			if r.Drain != 0 {
				extra = fmt.Sprintf("  drain rate %.2f×", r.Drain)
			}
			if r.DualCPU != 0 {
				extra = fmt.Sprintf("  CPU growth 2 vs 1 destination: %.2f×", r.DualCPU)
			}
			fmt.Fprintf(tw, "%s\t%s\t%.2f×\t%.2f×\t%.2f×\t%.2f×\t%s\t%s\n", label(r.Scenario, r.Round), r.Versus, r.Throughput, r.CPU, r.RSS, r.P99, r.Loss, extra)
		}
		tw.Flush()
	}

	fmt.Fprintf(w, "\ntargets of issues 8 and 18 (unproven: the run could not test the target as stated; see docs/benchmarks.md)\n\n")
	printGoals(w, rep.Targets)
	for _, warning := range rep.Warnings {
		fmt.Fprintf(w, "\nwarning: %s", warning)
	}
	if len(rep.Warnings) > 0 {
		fmt.Fprintln(w)
	}
}

func printGoals(w io.Writer, goals []goal) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "status\tissue\ttarget\tthis run")
	for _, g := range goals {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", g.Status, g.Issue, g.Goal, g.Value)
	}
	tw.Flush()
}

// label names a row: the scenario, and its round when it was repeated.
func label(scenario string, round int) string {
	if round == 0 {
		return scenario
	}
	return fmt.Sprintf("%s #%d", scenario, round)
}

// notes is the free-text column of the table: UDP kernel drops, drain
// figures and anything unusual.
func notes(r result) string {
	var n []string
	if r.RcvbufErrors != nil {
		n = append(n, fmt.Sprintf("RcvbufErrors +%d", *r.RcvbufErrors))
	}
	if r.SocketDrops != nil {
		n = append(n, fmt.Sprintf("socket drops +%d", *r.SocketDrops))
	}
	if d := r.Drain; d != nil && d.InputRate > 0 {
		n = append(n, fmt.Sprintf("backlog %d drained at %s msg/s (%.1f× input, net %.1f×) after %.1fs reconnect",
			d.Backlog, kilo(d.DeliveryRate), d.DeliveryRatio, d.NetRatio, d.ReconnectSeconds))
	} else if d != nil && d.DrainSeconds > 0 {
		n = append(n, fmt.Sprintf("backlog %d drained at %s msg/s after %.1fs reconnect, while the target accepted no input",
			d.Backlog, kilo(d.DeliveryRate), d.ReconnectSeconds))
	}
	if r.Destinations > 1 {
		n = append(n, fmt.Sprintf("%d destinations", r.Destinations))
	}
	if r.BadFrames > 0 {
		n = append(n, fmt.Sprintf("%d bad frames", r.BadFrames))
	}
	n = append(n, r.Notes...)
	return "  " + strings.Join(n, "; ")
}

func kilo(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0fk", v/1000)
}

func opt(v float64, format string) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf(format, v)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// fairUDPComparison reports whether a loss comparison of rel and da under
// loggen decides the target: at least one of them was offered the rate,
// and the one that lost less (rel when relayWon) did not have the lighter
// load. A target offered less had it easier, so its win proves nothing,
// while a win under the heavier load holds a fortiori.
func fairUDPComparison(rel, da *result, relayWon bool) bool {
	if !offered(rel) && !offered(da) {
		return false
	}
	winner, loser := rel, da
	if !relayWon {
		winner, loser = da, rel
	}
	return offered(winner) || winner.InputRate >= loser.InputRate
}
