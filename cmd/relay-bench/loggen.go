package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"
)

// The loggen scenarios measure with a generator this project did not
// write: syslog-ng's loggen, the tool syslog users benchmark with. Its
// messages are RFC 5424, LF-framed, with loggen's own sequence fields, so
// the sink counts them as foreign: delivery is a count (two loggen
// processes started together share run ids), not a set of sequence
// numbers, and latency is not measured.

// loggenScenarios are the scenarios that need loggen.
var loggenScenarios = []string{"loggen-tcp", "loggen-udp"}

// loggenLoad is one loggen run: procs processes, each one connection at
// rate messages per second until count messages.
type loggenLoad struct {
	proto string // "tcp" or "udp"
	rate  float64
	count uint64
	procs int
}

func (h *harness) loggenScenario(ctx context.Context, sc string, t target) []result {
	o := h.o
	switch sc {
	case "loggen-tcp":
		var out []result
		for _, rate := range o.loggenTCPRates {
			l := loggenLoad{proto: "tcp", rate: rate, procs: 1, count: uint64(rate * o.duration.Seconds())}
			out = append(out, h.loggenRun(ctx, fmt.Sprintf("loggen-tcp-%s", kilo(rate)), t, l))
		}
		return out
	case "loggen-udp":
		l := loggenLoad{proto: "udp", rate: o.loggenUDPRate, procs: o.loggenUDPSenders, count: uint64(o.loggenUDPRate * o.duration.Seconds())}
		name := fmt.Sprintf("loggen-udp-%dx%s", l.procs, kilo(l.rate))
		return []result{h.loggenRun(ctx, name, t, l)}
	}
	return []result{{Scenario: sc, Target: t.Name(), Error: "unknown scenario"}}
}

// loggenRun runs one loggen load through t into one sink and measures the
// target's CPU per message sent and what reached the sink.
func (h *harness) loggenRun(ctx context.Context, name string, t target, l loggenLoad) result {
	spec := loadSpec{Proto: l.proto, Framing: framingLF, Conns: l.procs, Size: h.o.size, Rate: l.rate * float64(l.procs), Count: 1, Duration: h.o.duration}
	if l.proto == "udp" {
		spec.Framing = framingNone
	}
	s, err := h.open(ctx, name, t, spec, 1)
	if err != nil {
		return result{Scenario: name, Target: t.Name(), Error: err.Error()}
	}
	s.begin()
	foreign0 := s.sinks[0].stats().Foreign
	sent, sendErr := h.runLoggen(ctx, s.addr(), l, s.dir)
	s.sendEnd = h.clock.now()
	delivered := func() uint64 { return s.sinks[0].stats().Foreign - foreign0 }
	s.drainCount(ctx, sent, delivered)
	got := min(delivered(), sent)
	r := s.finish(sendErr)
	r.Sent, r.Delivered, r.Lost = sent, got, sent-got
	r.SendSeconds = (s.sendEnd - s.start).Seconds()
	r.InputRate, r.Throughput, r.CPUPerMillion = 0, 0, 0
	if r.SendSeconds > 0 {
		r.InputRate = float64(sent) / r.SendSeconds
	}
	if st := s.sinks[0].stats(); got > 0 && st.Last > s.start {
		r.Throughput = float64(got) / (st.Last - s.start).Seconds()
	}
	if sent > 0 && r.CPUSeconds > 0 {
		r.CPUPerMillion = r.CPUSeconds / float64(sent) * 1e6
	}
	if sent > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("delivered %.2f%%", 100*float64(got)/float64(sent)))
	}
	return r
}

// runLoggen runs l's loggen processes against addr together and returns
// the messages they say they sent.
func (h *harness) runLoggen(ctx context.Context, addr string, l loggenLoad, dir string) (uint64, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	transport := "-S"
	if l.proto == "udp" {
		transport = "-D"
	}
	// -I bounds a generator that cannot keep the rate; -Q drops the
	// per-second lines.
	limit := int(math.Ceil(2*h.o.duration.Seconds())) + 5
	args := []string{"-i", transport, "-P", "-F", "-Q", "-s", strconv.Itoa(h.o.size),
		"-r", strconv.Itoa(int(l.rate)), "-n", strconv.FormatUint(l.count, 10), "-I", strconv.Itoa(limit), host, port}
	var wg sync.WaitGroup
	counts := make([]uint64, l.procs)
	errs := make([]error, l.procs)
	for i := range l.procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out bytes.Buffer
			cmd := exec.CommandContext(ctx, h.ng.loggen, args...)
			cmd.Env = append(os.Environ(), h.ng.env...)
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			_ = os.WriteFile(fmt.Sprintf("%s/loggen-%d.log", dir, i), out.Bytes(), 0o644)
			n, perr := loggenSent(out.String())
			counts[i] = n
			if err != nil {
				errs[i] = fmt.Errorf("loggen: %w: %s", err, firstLine(out.String()))
			} else {
				errs[i] = perr
			}
		}()
	}
	wg.Wait()
	var total uint64
	for _, n := range counts {
		total += n
	}
	return total, errors.Join(errs...)
}

// drainCount waits until delivered reaches want, or nothing arrived for
// -drain-idle, or -drain-timeout passed.
func (s *session) drainCount(ctx context.Context, want uint64, delivered func() uint64) {
	deadline := time.Now().Add(s.h.o.drainTimeout)
	last, lastChange := delivered(), time.Now()
	for time.Now().Before(deadline) && ctx.Err() == nil {
		n := delivered()
		if n >= want {
			return
		}
		if n != last {
			last, lastChange = n, time.Now()
		} else if time.Since(lastChange) > s.h.o.drainIdle {
			s.res.Notes = append(s.res.Notes, fmt.Sprintf("no delivery for -drain-idle %s with %d of %d outstanding", s.h.o.drainIdle, want-n, want))
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ctx.Err() == nil {
		s.res.Notes = append(s.res.Notes, fmt.Sprintf("still delivering after -drain-timeout %s", s.h.o.drainTimeout))
	}
}
