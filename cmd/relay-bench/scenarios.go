package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// harness runs scenarios; one scenario against one target is a session.
type harness struct {
	o      *options
	tmp    string
	stderr io.Writer
	clock  *clock
	ng     *syslogNG // syslog-ng and loggen, when found
	runs   int
}

// applies reports whether scenario sc is measured through t: the direct
// baseline only makes sense for plain TCP throughput; syslog-ng is compared
// on TCP and UDP, and the loggen scenarios (fixed rates, where rsyslog's
// Disk queue cannot keep up) compare the relay with rsyslog's
// disk-assisted queue and syslog-ng.
func (h *harness) applies(sc string, t target) bool {
	switch t.(type) {
	case *directTarget:
		return sc == "tcp"
	case *syslogNGTarget:
		return sc == "tcp" || sc == "udp" || slices.Contains(loggenScenarios, sc)
	}
	if slices.Contains(loggenScenarios, sc) {
		return t.Name() != "rsyslog-disk"
	}
	if sc == "perhost" {
		_, ok := h.perhostTargetFor(t)
		return ok
	}
	return true
}

// step is one measurement of a scenario through one target; round counts
// from 1 in a scenario repeated for a median and is 0 otherwise.
type step struct {
	t     target
	round int
}

// schedule orders the measurements of scenario sc. A scenario that a
// target of issue 18 judges by a median (dual: the relay, -dual-runs
// rounds; loggen-udp: the relay against rsyslog-da, -loggen-udp-runs
// rounds) runs its first round through every target it applies to and the
// later ones through the targets compared only; each round reverses the
// previous one's order, so neither target always runs first.
func (h *harness) schedule(sc string, targets []target) []step {
	var ts []target
	for _, t := range targets {
		if h.applies(sc, t) {
			ts = append(ts, t)
		}
	}
	var rounds int
	var repeated []string
	switch sc {
	case "dual":
		rounds, repeated = h.o.dualRuns, []string{"relay"}
	case "loggen-udp":
		rounds, repeated = h.o.loggenUDPRuns, []string{"relay", "rsyslog-da"}
	}
	for _, name := range repeated {
		if !slices.ContainsFunc(ts, func(t target) bool { return t.Name() == name }) {
			rounds = 0 // nothing to compare: one measurement each
		}
	}
	if rounds <= 1 {
		steps := make([]step, len(ts))
		for i, t := range ts {
			steps[i] = step{t: t}
		}
		return steps
	}
	var steps []step
	for r := 1; r <= rounds; r++ {
		var round []step
		for _, t := range ts {
			if r == 1 || slices.Contains(repeated, t.Name()) {
				round = append(round, step{t: t, round: r})
			}
		}
		if r%2 == 0 {
			slices.Reverse(round)
		}
		steps = append(steps, round...)
	}
	return steps
}

// runScenario measures scenario sc through t; round is the step's (dual
// runs its two measurements in the opposite order in even rounds).
func (h *harness) runScenario(ctx context.Context, sc string, t target, round int) []result {
	o := h.o
	tcp := loadSpec{Proto: "tcp", Framing: o.framing, Conns: o.conns, Size: o.size, Duration: o.duration}
	switch sc {
	case "tcp":
		spec := tcp
		spec.Count = o.tcpCount
		return []result{h.steady(ctx, "tcp", t, spec, 1)}
	case "udp":
		spec := tcp
		spec.Proto, spec.Framing, spec.Rate, spec.Conns = "udp", framingNone, o.udpRate, o.udpConns
		spec.Count = countFor(spec.Rate, spec.Duration)
		return []result{h.steady(ctx, "udp", t, spec, 1)}
	case "latency":
		spec := tcp
		spec.Rate = o.latencyRate
		spec.Count = countFor(spec.Rate, spec.Duration)
		return []result{h.steady(ctx, "latency", t, spec, 1)}
	case "outage":
		return []result{h.outage(ctx, t)}
	case "loggen-tcp", "loggen-udp":
		return h.loggenScenario(ctx, sc, t)
	case "perhost":
		return []result{h.perhost(ctx, t)}
	case "dual":
		spec := tcp
		spec.Rate = o.dualRate
		spec.Count = countFor(spec.Rate, spec.Duration)
		if round%2 == 0 && round > 0 {
			two := h.steady(ctx, "dual-2", t, spec, 2)
			return []result{two, h.steady(ctx, "dual-1", t, spec, 1)}
		}
		one := h.steady(ctx, "dual-1", t, spec, 1)
		return []result{one, h.steady(ctx, "dual-2", t, spec, 2)}
	}
	return []result{{Scenario: sc, Target: t.Name(), Error: "unknown scenario"}}
}

// countFor is the message count of a fixed-rate load, a little more than
// rate × d so that the duration, not the count, ends it.
func countFor(rate float64, d time.Duration) uint64 {
	return uint64(rate*d.Seconds()*1.05) + 1000
}

// session is one target running between a generator and its sinks.
type session struct {
	h     *harness
	t     target
	spec  loadSpec
	run   string
	dir   string
	sinks []*sink
	gen   *generator
	res   result

	// Samples at the start of the measured window, and its end of sending.
	start   time.Duration
	sendEnd time.Duration
	cpu0    time.Duration
	self0   time.Duration
	mach0   time.Duration
	rcvbuf0 uint64
	inErr0  uint64
	udpOK   bool
	sock0   uint64
	sockOK  bool
	peakRSS uint64
	stopRSS chan struct{}
	rssDone chan struct{}
}

// waitQuiet waits, up to -quiet-wait, until the machine's CPU use over
// half a second is below -quiet-cores, and returns a note when it had to
// wait or gave up.
func (h *harness) waitQuiet(ctx context.Context) string {
	if h.o.quietWait <= 0 {
		return ""
	}
	start := time.Now()
	var busy float64
	for ctx.Err() == nil {
		b0, err0 := machineCPU()
		sleep(ctx, 500*time.Millisecond)
		b1, err1 := machineCPU()
		if err0 != nil || err1 != nil {
			return ""
		}
		busy = (b1 - b0).Seconds() / 0.5
		waited := time.Since(start)
		if busy < h.o.quietCores {
			if waited < time.Second {
				return ""
			}
			return fmt.Sprintf("waited %s for a quiet machine", waited.Round(time.Second))
		}
		if waited > h.o.quietWait {
			break
		}
		sleep(ctx, time.Second)
	}
	return fmt.Sprintf("machine not quiet after -quiet-wait %s (%.2f cores busy)", h.o.quietWait, busy)
}

func (h *harness) open(ctx context.Context, name string, t target, spec loadSpec, nSinks int) (*session, error) {
	quiet := h.waitQuiet(ctx)
	h.runs++
	s := &session{
		h: h, t: t, spec: spec,
		run: fmt.Sprintf("%04x", rand.IntN(1<<16)),
		dir: filepath.Join(h.tmp, fmt.Sprintf("%02d-%s-%s", h.runs, name, t.Name())),
		res: result{
			Scenario: name, Target: t.Name(), Proto: spec.Proto, Framing: spec.Framing.String(),
			Conns: spec.Conns, Size: spec.Size, Rate: spec.Rate, Destinations: nSinks,
		},
	}
	if quiet != "" {
		s.res.Notes = append(s.res.Notes, quiet)
	}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return nil, err
	}
	if ng, ok := t.(*syslogNGTarget); ok {
		ng.framed = spec.Proto == "tcp" && spec.Framing == framingOctet
	}
	var err error
	if s.gen, err = newGenerator(spec, s.run, h.clock); err != nil {
		return nil, err
	}
	var addrs []string
	for range nSinks {
		sk, err := newSink("127.0.0.1:0", s.run, spec.Count, h.clock)
		if err != nil {
			s.closeSinks()
			return nil, err
		}
		s.sinks = append(s.sinks, sk)
		addrs = append(addrs, sk.addr)
	}
	if err := t.Start(ctx, s.dir, addrs); err != nil {
		s.closeSinks()
		return nil, fmt.Errorf("start %s: %w", t.Name(), err)
	}
	if spec.Proto == "udp" {
		if err := s.probeUDP(ctx); err != nil {
			s.stopTarget()
			s.closeSinks()
			return nil, err
		}
	}
	return s, nil
}

// probeUDP sends datagrams of another run until one reaches the sink, so
// the load starts only once the whole UDP path works.
func (s *session) probeUDP(ctx context.Context) error {
	addr := s.t.UDPAddr()
	if addr == "" {
		return fmt.Errorf("%s has no UDP input", s.t.Name())
	}
	c, err := net.Dial("udp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	tmpl, _ := newTemplate("prob", s.spec.Size)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		_, _ = c.Write(tmpl.msg)
		time.Sleep(100 * time.Millisecond)
		if s.sinks[0].stats().Foreign > 0 {
			return nil
		}
	}
	return fmt.Errorf("no UDP probe reached the sink through %s within 15s", s.t.Name())
}

// begin takes the samples the measurement is relative to.
func (s *session) begin() {
	s.start = s.h.clock.now()
	s.self0, _ = procCPU(os.Getpid())
	s.mach0, _ = machineCPU()
	if pid := s.t.Pid(); pid != 0 {
		s.cpu0, _ = procCPU(pid)
		s.stopRSS, s.rssDone = make(chan struct{}), make(chan struct{})
		go s.pollRSS(pid)
	}
	if s.spec.Proto == "udp" {
		var err error
		s.rcvbuf0, s.inErr0, err = udpCounters()
		s.udpOK = err == nil
		s.sock0, err = udpPortDrops(udpPort(s.t.UDPAddr()))
		s.sockOK = err == nil
	}
}

// pollRSS keeps the largest resident set seen, in case VmHWM is missing.
func (s *session) pollRSS(pid int) {
	defer close(s.rssDone)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		if hwm, rss, err := procMemory(pid); err == nil {
			s.peakRSS = max(s.peakRSS, hwm, rss)
		}
		select {
		case <-s.stopRSS:
			return
		case <-t.C:
		}
	}
}

func (s *session) addr() string {
	if s.spec.Proto == "udp" {
		return s.t.UDPAddr()
	}
	return s.t.TCPAddr()
}

// drain waits until every sink has every message sent, or none arrived
// for drain-idle, or drain-timeout passed.
func (s *session) drain(ctx context.Context) {
	want := s.gen.totalSent()
	deadline := time.Now().Add(s.h.o.drainTimeout)
	var last uint64
	lastChange := time.Now()
	for time.Now().Before(deadline) && ctx.Err() == nil {
		least := want
		var sum uint64
		for _, sk := range s.sinks {
			u := sk.uniqueCount()
			least = min(least, u)
			sum += u
		}
		if least >= want {
			return
		}
		if sum != last {
			last, lastChange = sum, time.Now()
		} else if time.Since(lastChange) > s.h.o.drainIdle {
			s.res.Notes = append(s.res.Notes, fmt.Sprintf("no delivery for -drain-idle %s with %d of %d outstanding", s.h.o.drainIdle, want-least, want))
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ctx.Err() == nil {
		s.res.Notes = append(s.res.Notes, fmt.Sprintf("still delivering after -drain-timeout %s", s.h.o.drainTimeout))
	}
}

// finish takes the closing samples, stops the target and fills in the
// result.
func (s *session) finish(sendErr error) result {
	r := &s.res
	end := s.h.clock.now()
	wall := (end - s.start).Seconds()
	if pid := s.t.Pid(); pid != 0 {
		if cpu, err := procCPU(pid); err == nil {
			r.CPUSeconds = (cpu - s.cpu0).Seconds()
		}
		close(s.stopRSS)
		<-s.rssDone
		if hwm, rss, err := procMemory(pid); err == nil {
			s.peakRSS = max(s.peakRSS, hwm, rss)
		}
		r.PeakRSSMiB = float64(s.peakRSS) / (1 << 20)
	}
	self, _ := procCPU(os.Getpid())
	mach, _ := machineCPU()
	if wall > 0 {
		other := (mach - s.mach0 - (self - s.self0)).Seconds() - r.CPUSeconds
		r.OtherLoadCores = max(0, other/wall)
		r.HarnessCores = (self - s.self0).Seconds() / wall
	}
	if s.udpOK {
		if rb, ie, err := udpCounters(); err == nil {
			d1, d2 := rb-s.rcvbuf0, ie-s.inErr0
			r.RcvbufErrors, r.UDPInErrors = &d1, &d2
		}
	}
	if s.sockOK {
		if n, err := udpPortDrops(udpPort(s.t.UDPAddr())); err == nil {
			d := n - s.sock0
			r.SocketDrops = &d
		}
	}
	r.Extra = s.t.Extra()
	if err := s.stopTarget(); err != nil && r.Error == "" {
		r.Error = err.Error()
	}

	sent := s.gen.sentSet()
	r.Sent = sent.total()
	r.Delivered = r.Sent
	for _, sk := range s.sinks {
		st := sk.stats()
		missing := sk.missing(sent)
		r.Lost += missing
		r.Dups += st.Dups
		r.Foreign += st.Foreign
		r.BadFrames += st.BadFrames
		r.Delivered = min(r.Delivered, r.Sent-missing)
	}
	st := s.sinks[0].stats()
	r.SendSeconds = s.sendEnd.Seconds() - s.start.Seconds()
	if r.SendSeconds > 0 {
		r.InputRate = float64(r.Sent) / r.SendSeconds
	}
	if span := (st.Last - s.start).Seconds(); span > 0 && st.Unique > 0 {
		r.Throughput = float64(st.Unique) / span
	}
	if r.Sent > 0 && r.CPUSeconds > 0 {
		r.CPUPerMillion = r.CPUSeconds / float64(r.Sent) * 1e6
	}
	if r.Lost > 0 {
		// Not delivered is not necessarily lost: say what the target still
		// held when the run ended.
		for k, v := range r.Extra {
			if strings.HasPrefix(k, "relay_queue_depth_records") && v > 0 {
				r.Notes = append(r.Notes, fmt.Sprintf("%s = %g at the end", k, v))
			}
		}
	}
	r.P50ms = ms(st.P50)
	r.P99ms = ms(st.P99)
	r.MaxMs = ms(st.Max)
	if sendErr != nil && r.Error == "" {
		r.Error = "send: " + sendErr.Error()
	}
	s.closeSinks()
	return *r
}

// udpPort is the port of a host:port address, or 0.
func udpPort(addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func (s *session) stopTarget() error { return s.t.Stop() }

func (s *session) closeSinks() {
	for _, sk := range s.sinks {
		sk.stop()
	}
}

// steady is a scenario with one phase: send, wait for the sinks to have
// everything, measure.
func (h *harness) steady(ctx context.Context, name string, t target, spec loadSpec, nSinks int) result {
	s, err := h.open(ctx, name, t, spec, nSinks)
	if err != nil {
		return result{Scenario: name, Target: t.Name(), Error: err.Error()}
	}
	s.begin()
	err = s.gen.run(ctx, s.addr())
	s.sendEnd = h.clock.now()
	s.drain(ctx)
	return s.finish(err)
}

// outage sends at a fixed rate, takes the sink down for a while and brings
// it back, still sending, and measures how fast the target delivers its
// backlog: from the first message after the sink's return until the sink
// has caught up with the generator (or, for a target that lost messages,
// until the gap stopped shrinking).
func (h *harness) outage(ctx context.Context, t target) result {
	o := h.o
	spec := loadSpec{Proto: "tcp", Framing: o.framing, Conns: o.conns, Size: o.size, Rate: o.outageRate}
	spec.Duration = o.outageLead + o.outage + o.outageMax
	spec.Count = countFor(spec.Rate, spec.Duration)
	s, err := h.open(ctx, "outage", t, spec, 1)
	if err != nil {
		return result{Scenario: "outage", Target: t.Name(), Error: err.Error()}
	}
	sk := s.sinks[0]
	s.begin()
	genCtx, stopGen := context.WithCancel(ctx)
	defer stopGen()
	genDone := make(chan error, 1)
	go func() { genDone <- s.gen.run(genCtx, s.addr()) }()

	d := &drainResult{OutageSeconds: o.outage.Seconds()}
	s.res.Drain = d
	var genErr error
	finish := func() result {
		stopGen()
		if genErr == nil {
			genErr = <-genDone
		}
		s.sendEnd = h.clock.now()
		s.drain(ctx)
		return s.finish(genErr)
	}
	wait := func(dur time.Duration) bool {
		select {
		case <-time.After(dur):
			return true
		case genErr = <-genDone:
			if genErr == nil {
				genErr = errors.New("generator ended early")
			}
			return false
		case <-ctx.Done():
			return false
		}
	}
	if !wait(o.outageLead) {
		return finish()
	}
	sk.stop()
	if !wait(o.outage) {
		return finish()
	}
	sk.markNext()
	up := h.clock.now()
	sentAtUp, uniqAtUp := s.gen.totalSent(), sk.uniqueCount()
	d.Backlog = sentAtUp - uniqAtUp
	if err := sk.restart(); err != nil {
		s.res.Error = err.Error()
		return finish()
	}

	// A lag of 100 ms of input is normal pipeline depth, not backlog.
	thr := uint64(max(1000, spec.Rate/10))
	minLag, minAt := ^uint64(0), up
	var minUniq, minSent uint64
	var caughtAt time.Duration
	var caughtUniq, caughtSent uint64
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for caughtAt == 0 {
		select {
		case <-ctx.Done():
			return finish()
		case genErr = <-genDone:
			if genErr == nil {
				genErr = errors.New("generator ended before the backlog drained")
			}
			s.res.Notes = append(s.res.Notes, "backlog not drained within -outage-max-drain")
			return finish()
		case <-tick.C:
		}
		now := h.clock.now()
		sent, uniq := s.gen.totalSent(), sk.uniqueCount()
		lag := sent - min(sent, uniq)
		if _, _, ok := sk.mark(); !ok {
			continue // nothing arrived since the sink came back
		}
		switch {
		case lag <= thr:
			caughtAt, caughtUniq, caughtSent = now, uniq, sent
		case lag+thr/2 < minLag:
			minLag, minAt, minUniq, minSent = lag, now, uniq, sent
		case now-minAt > 3*time.Second:
			// The gap stopped shrinking: what is left is loss.
			caughtAt, caughtUniq, caughtSent = minAt, minUniq, minSent
			s.res.Notes = append(s.res.Notes, fmt.Sprintf("gap stuck at %d messages after the outage", lag))
		}
	}
	firstAt, uniqBefore, _ := sk.mark()
	d.ReconnectSeconds = (firstAt - up).Seconds()
	d.DrainSeconds = (caughtAt - firstAt).Seconds()
	if d.DrainSeconds > 0 {
		d.DeliveryRate = float64(caughtUniq-uniqBefore) / d.DrainSeconds
		d.InputRate = float64(caughtSent-sentAtUp) / (caughtAt - up).Seconds()
		d.NetDrainRate = d.DeliveryRate - d.InputRate
		if d.InputRate > 0 {
			d.DeliveryRatio = d.DeliveryRate / d.InputRate
			d.NetRatio = d.NetDrainRate / d.InputRate
		}
	}
	// A second of steady state after the backlog, then stop.
	sleep(ctx, time.Second)
	return finish()
}
