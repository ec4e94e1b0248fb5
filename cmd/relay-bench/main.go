// Command relay-bench is the end-to-end benchmark of the relay. It sends
// sequence-numbered syslog load through the relay, and through rsyslog in
// two queue setups when rsyslogd is installed, into a counting sink it
// owns, and reports throughput, loss, duplicates, CPU per million
// messages, peak memory and latency, with ratios against rsyslog measured
// in the same run. docs/benchmarks.md explains the scenarios.
//
// Run it from the repository root: go run ./cmd/relay-bench -h
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// options are the command-line settings.
type options struct {
	scenarios []string
	targets   []string
	relayBin  string
	relayOpts string
	relayUDP  string
	rsyslogd  string
	syslogNG  string
	jsonPath  string
	keep      bool

	size     int
	conns    int
	udpConns int
	framing  framing
	duration time.Duration
	tcpCount uint64

	udpRate     float64
	latencyRate float64
	outageRate  float64
	outage      time.Duration
	outageLead  time.Duration
	outageMax   time.Duration
	dualRate    float64
	dualRuns    int
	udpBufMiB   int

	loggenTCPRates   []float64
	loggenUDPRate    float64
	loggenUDPSenders int
	loggenUDPRuns    int

	perhostCount uint64

	drainIdle    time.Duration
	drainTimeout time.Duration
	quietWait    time.Duration
	quietCores   float64
}

var allScenarios = []string{"tcp", "udp", "latency", "outage", "dual", "loggen-tcp", "loggen-udp", "perhost"}
var allTargets = []string{"direct", "relay", "rsyslog-disk", "rsyslog-da", "syslog-ng-reliable", "syslog-ng-mem"}

func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "relay-bench: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := bench(ctx, o, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "relay-bench: %v\n", err)
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("relay-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	scenarios := fs.String("scenarios", strings.Join(allScenarios, ","), "scenarios to run, comma-separated: "+strings.Join(allScenarios, ", "))
	targets := fs.String("targets", strings.Join(allTargets, ","), "targets, comma-separated: "+strings.Join(allTargets, ", ")+" (direct is the generator straight into the sink, tcp scenario only; rsyslog and syslog-ng targets are skipped when their daemon is missing)")
	fs.StringVar(&o.relayBin, "relay", "", "relay binary to measure; without it ./cmd/relay is built into a temporary directory")
	fs.StringVar(&o.relayOpts, "relay-output-opts", "", "extra TOML keys for every relay [[output]], ';'-separated, for experiments (e.g. 'confirm_delay = \"50ms\"; queue.sync_every = 100'); the default measures the defaults")
	fs.StringVar(&o.relayUDP, "relay-udp-opts", "", "extra TOML keys for the relay's UDP [[listener]], ';'-separated, for experiments (e.g. 'read_buffer = \"16MiB\"')")
	fs.StringVar(&o.rsyslogd, "rsyslogd", "", "rsyslogd binary (default: found on PATH or in /usr/sbin)")
	fs.StringVar(&o.syslogNG, "syslog-ng", os.Getenv("RELAY_BENCH_SYSLOG_NG"), "directory tools/get-syslog-ng.sh unpacked syslog-ng and loggen into (default $RELAY_BENCH_SYSLOG_NG; empty: syslog-ng and loggen on PATH); the syslog-ng targets and the loggen scenarios are skipped without them")
	fs.StringVar(&o.jsonPath, "json", "", "write the results as JSON to this file (default bench-results/<timestamp>.json; \"-\" for none)")
	fs.BoolVar(&o.keep, "keep", false, "keep the working directory (configurations, logs, queues) and print its path")
	fs.IntVar(&o.size, "size", 200, "message size in bytes, framing excluded")
	fs.IntVar(&o.conns, "conns", 1, "sender connections of the tcp load")
	fs.IntVar(&o.udpConns, "udp-conns", 2, "udp scenario: sender sockets (a segment's load comes from many devices; one socket cannot pace 200k msg/s on a 2-core machine shared with the relay and the sink)")
	framingFlag := fs.String("framing", "octet", "tcp framing of the load: octet or lf")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "how long each scenario sends (the outage scenario has its own flags)")
	fs.Uint64Var(&o.tcpCount, "tcp-count", 10_000_000, "tcp scenario: send at most this many messages")
	fs.Float64Var(&o.udpRate, "udp-rate", 200_000, "udp scenario: messages per second")
	fs.Float64Var(&o.latencyRate, "latency-rate", 100_000, "latency scenario: messages per second over tcp")
	fs.Float64Var(&o.outageRate, "outage-rate", 50_000, "outage scenario: messages per second over tcp")
	fs.DurationVar(&o.outage, "outage", 5*time.Second, "outage scenario: how long the sink is down (issue 8 asks for 30s)")
	fs.DurationVar(&o.outageLead, "outage-lead", 2*time.Second, "outage scenario: sending time before the sink goes down")
	fs.DurationVar(&o.outageMax, "outage-max-drain", 60*time.Second, "outage scenario: give up waiting for the backlog to drain after this long")
	fs.Float64Var(&o.dualRate, "dual-rate", 100_000, "dual scenario: messages per second over tcp, to one and then two destinations")
	fs.IntVar(&o.dualRuns, "dual-runs", 5, "dual scenario: rounds through the relay, each one and two destinations back to back in alternating order; issue 18 judges the median (other targets run one round)")
	fs.IntVar(&o.udpBufMiB, "udp-buffer", 4, "UDP receive buffer of every target, MiB (the relay's unless -relay-udp-opts sets it; syslog-ng's so-rcvbuf is capped by net.core.rmem_max)")
	loggenRates := fs.String("loggen-tcp-rates", "50000,150000", "loggen-tcp scenario: the fixed rates, messages per second, comma-separated; one loggen, one connection, each for -duration")
	fs.Float64Var(&o.loggenUDPRate, "loggen-udp-rate", 100_000, "loggen-udp scenario: datagrams per second of each loggen, for -duration")
	fs.IntVar(&o.loggenUDPSenders, "loggen-udp-senders", 2, "loggen-udp scenario: loggen processes sending at once (one cannot offer 200k datagrams/s on 2 cores)")
	fs.IntVar(&o.loggenUDPRuns, "loggen-udp-runs", 3, "loggen-udp scenario: rounds through the relay and rsyslog-da, in alternating order; issue 18 judges the median (syslog-ng runs one round)")
	fs.Uint64Var(&o.perhostCount, "perhost-count", 200_000, "perhost scenario: messages from 50 hosts over tcp, written to a file per host (relay and rsyslog only)")
	fs.DurationVar(&o.drainIdle, "drain-idle", 3*time.Second, "after sending, stop waiting for deliveries when none arrive for this long")
	fs.DurationVar(&o.drainTimeout, "drain-timeout", 60*time.Second, "after sending, wait at most this long for deliveries")
	fs.DurationVar(&o.quietWait, "quiet-wait", 0, "before each measurement, wait up to this long for the machine to be quiet (for shared machines; 0: do not wait)")
	fs.Float64Var(&o.quietCores, "quiet-cores", 0.2, "with -quiet-wait: the CPU use, in cores, below which the machine counts as quiet")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if o.framing, err = parseFramingFlag(*framingFlag); err != nil {
		return nil, err
	}
	if o.scenarios, err = parseList("scenarios", *scenarios, allScenarios); err != nil {
		return nil, err
	}
	if o.targets, err = parseList("targets", *targets, allTargets); err != nil {
		return nil, err
	}
	if o.size < minMessageSize || o.size > 60<<10 {
		return nil, fmt.Errorf("-size %d: use %d to %d bytes", o.size, minMessageSize, 60<<10)
	}
	if o.conns < 1 || o.conns > 1000 {
		return nil, fmt.Errorf("-conns %d: use 1 to 1000", o.conns)
	}
	if o.udpConns < 1 || o.udpConns > 1000 {
		return nil, fmt.Errorf("-udp-conns %d: use 1 to 1000", o.udpConns)
	}
	for name, d := range map[string]time.Duration{"duration": o.duration, "outage": o.outage, "outage-lead": o.outageLead,
		"outage-max-drain": o.outageMax, "drain-idle": o.drainIdle, "drain-timeout": o.drainTimeout} {
		if d <= 0 {
			return nil, fmt.Errorf("-%s must be positive", name)
		}
	}
	for name, r := range map[string]float64{"udp-rate": o.udpRate, "latency-rate": o.latencyRate,
		"outage-rate": o.outageRate, "dual-rate": o.dualRate} {
		if r <= 0 || r > 10e6 {
			return nil, fmt.Errorf("-%s %g: use a rate above 0 and at most 10M msg/s", name, r)
		}
	}
	for _, f := range strings.Split(*loggenRates, ",") {
		r, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || r <= 0 || r > 10e6 {
			return nil, fmt.Errorf("-loggen-tcp-rates: %q: use rates above 0 and at most 10M msg/s", f)
		}
		o.loggenTCPRates = append(o.loggenTCPRates, r)
	}
	if o.loggenUDPRate <= 0 || o.loggenUDPRate > 10e6 {
		return nil, fmt.Errorf("-loggen-udp-rate %g: use a rate above 0 and at most 10M msg/s", o.loggenUDPRate)
	}
	if o.loggenUDPSenders < 1 || o.loggenUDPSenders > 16 {
		return nil, fmt.Errorf("-loggen-udp-senders %d: use 1 to 16", o.loggenUDPSenders)
	}
	if o.dualRuns < 1 || o.dualRuns > 50 {
		return nil, fmt.Errorf("-dual-runs %d: use 1 to 50", o.dualRuns)
	}
	if o.loggenUDPRuns < 1 || o.loggenUDPRuns > 50 {
		return nil, fmt.Errorf("-loggen-udp-runs %d: use 1 to 50", o.loggenUDPRuns)
	}
	if o.udpBufMiB < 1 || o.udpBufMiB > 1024 {
		return nil, fmt.Errorf("-udp-buffer %d: use 1 to 1024 MiB", o.udpBufMiB)
	}
	if o.quietWait < 0 || o.quietCores <= 0 {
		return nil, fmt.Errorf("-quiet-wait must not be negative and -quiet-cores must be positive")
	}
	if o.perhostCount == 0 || o.perhostCount > 1e7 {
		return nil, fmt.Errorf("-perhost-count %d: use 1 to 1e7", o.perhostCount)
	}
	if o.tcpCount == 0 || o.tcpCount > 1e9 {
		return nil, fmt.Errorf("-tcp-count %d: use 1 to 1e9", o.tcpCount)
	}
	return o, nil
}

func parseList(name, s string, known []string) ([]string, error) {
	var out []string
	for _, v := range strings.Split(s, ",") {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		if !slices.Contains(known, v) {
			return nil, fmt.Errorf("-%s: unknown %q (known: %s)", name, v, strings.Join(known, ", "))
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("-%s: nothing selected", name)
	}
	return out, nil
}

// bench runs the selected scenarios against the selected targets, prints
// the tables and writes the JSON report.
func bench(ctx context.Context, o *options, stdout, stderr io.Writer) error {
	tmp, err := os.MkdirTemp("", "relay-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		defer fmt.Fprintf(stderr, "relay-bench: working directory kept: %s\n", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}

	rep := &report{Started: time.Now().UTC(), Machine: describeMachine(), Args: os.Args[1:]}
	warnLoad(rep, stderr)

	var ng *syslogNG
	wantNG := slices.ContainsFunc(o.targets, func(t string) bool { return strings.HasPrefix(t, "syslog-ng") }) ||
		slices.ContainsFunc(o.scenarios, func(sc string) bool { return slices.Contains(loggenScenarios, sc) })
	if wantNG {
		if ng, err = findSyslogNG(o.syslogNG); err != nil {
			rep.warn(stderr, "%v: skipping the syslog-ng targets and the loggen scenarios", err)
			ng = &syslogNG{}
		}
		rep.Machine.SyslogNG = ng.version
		if ng.loggen == "" {
			o.scenarios = slices.DeleteFunc(o.scenarios, func(sc string) bool { return slices.Contains(loggenScenarios, sc) })
			if len(o.scenarios) == 0 {
				return errors.New("no scenario to run: loggen not found")
			}
		}
	}
	udpBuf := fmt.Sprintf("read_buffer = \"%dMiB\"", o.udpBufMiB)
	if o.relayUDP != "" {
		udpBuf = strings.ReplaceAll(o.relayUDP, ";", "\n")
	}

	var targets []target
	for _, name := range o.targets {
		switch name {
		case "direct":
			targets = append(targets, &directTarget{})
		case "relay":
			bin := o.relayBin
			if bin == "" {
				if bin, err = buildRelay(ctx, tmp, stderr); err != nil {
					return err
				}
			}
			targets = append(targets, &relayTarget{bin: bin,
				outputOpts: strings.ReplaceAll(o.relayOpts, ";", "\n"),
				udpOpts:    udpBuf})
		case "rsyslog-disk", "rsyslog-da":
			bin := o.rsyslogd
			if bin == "" {
				bin = findRsyslogd()
			}
			if bin == "" {
				rep.warn(stderr, "rsyslogd not found (Debian package rsyslog): skipping %s; install it for the ratios", name)
				continue
			}
			rep.Machine.Rsyslog = rsyslogVersion(bin)
			targets = append(targets, &rsyslogTarget{bin: bin, queue: strings.TrimPrefix(name, "rsyslog-"), rcvbufMiB: o.udpBufMiB})
		case "syslog-ng-reliable", "syslog-ng-mem":
			if ng.daemon == "" {
				rep.warn(stderr, "syslog-ng not found: skipping %s", name)
				continue
			}
			targets = append(targets, &syslogNGTarget{ng: ng, mode: strings.TrimPrefix(name, "syslog-ng-"), rcvbuf: o.udpBufMiB << 20})
		}
	}
	if len(targets) == 0 {
		return errors.New("no target to measure")
	}

	h := &harness{o: o, tmp: tmp, stderr: stderr, clock: newClock(), ng: ng}
	for _, sc := range o.scenarios {
		for _, st := range h.schedule(sc, targets) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			round := ""
			if st.round > 0 {
				round = fmt.Sprintf(" (round %d)", st.round)
			}
			fmt.Fprintf(stderr, "relay-bench: %s through %s%s …\n", sc, st.t.Name(), round)
			results := h.runScenario(ctx, sc, st.t, st.round)
			for i := range results {
				results[i].Round = st.round
				if results[i].Error != "" {
					fmt.Fprintf(stderr, "relay-bench: %s/%s: %s\n", results[i].Scenario, results[i].Target, results[i].Error)
				}
			}
			rep.Results = append(rep.Results, results...)
		}
	}
	rep.Finished = time.Now().UTC()
	rep.Ratios = ratios(rep.Results)
	rep.Targets = checkTargets(rep.Results)
	printReport(stdout, rep)
	return writeJSON(o.jsonPath, rep, stdout)
}

// buildRelay builds ./cmd/relay of the module the harness runs in.
func buildRelay(ctx context.Context, dir string, stderr io.Writer) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", fmt.Errorf("build the relay: %w (or pass -relay PATH)", err)
	}
	bin := filepath.Join(dir, "relay")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/relay")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/relay: %w", err)
	}
	return bin, nil
}

// moduleRoot finds the directory of the relay's go.mod at or above the
// working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(b), "module github.com/relay-syslog/relay\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the relay repository")
		}
		dir = parent
	}
}

// warnLoad warns when the machine is busy before the run: measurements on
// a loaded machine say more about the other load than about the relay.
func warnLoad(rep *report, stderr io.Writer) {
	n := runtime.NumCPU()
	if la, err := loadAvg(); err == nil {
		rep.Machine.LoadAvg1 = la
		if la > 0.5*float64(n) {
			rep.warn(stderr, "load average %.2f on %d CPUs before starting: other load will skew the results", la, n)
		}
	}
	busy0, err0 := machineCPU()
	time.Sleep(time.Second)
	busy1, err1 := machineCPU()
	if err0 == nil && err1 == nil {
		cores := (busy1 - busy0).Seconds()
		rep.Machine.BusyCoresBefore = cores
		if cores > 0.1*float64(n) {
			rep.warn(stderr, "%.2f of %d CPUs busy in the second before starting: other load will skew the results", cores, n)
		}
	}
}

func writeJSON(path string, rep *report, stdout io.Writer) error {
	if path == "-" {
		return nil
	}
	if path == "" {
		path = filepath.Join("bench-results", rep.Started.Format("20060102-150405")+".json")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nresults written to %s\n", path)
	return nil
}
