package outputs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relay-syslog/relay/metrics"
	"github.com/relay-syslog/relay/queue"
)

// PoolMode chooses how a Pool spreads batches over its targets.
type PoolMode int

const (
	// Failover sends to the first healthy target in configured order and
	// returns to an earlier one as soon as a probe finds it back.
	Failover PoolMode = iota
	// LoadBalance sends successive batches to the healthy targets in turn.
	LoadBalance
)

// ParsePoolMode maps the config words to a PoolMode (see UnmarshalText).
func ParsePoolMode(s string) (PoolMode, error) {
	var m PoolMode
	err := m.UnmarshalText([]byte(s))
	return m, err
}

// PoolTarget is one member of a Pool.
type PoolTarget struct {
	Name string // the address, used as the metrics label
	Dest Destination
}

// Pool is a Destination made of several targets of the same protocol, so a
// segment collector can feed a pool of head servers. Each batch goes to one
// target; a batch is settled when the target it went to settled it.
//
// A target that fails is closed and not tried again until ProbeInterval has
// passed; in failover mode an earlier (preferred) target is probed on that
// schedule and, once it answers, new batches go to it while batches still
// unsettled on the later target are allowed to settle there before that
// connection is closed.
type Pool struct {
	mode          PoolMode
	probeInterval time.Duration
	targets       []*poolTarget
	next          int   // load balancing: where the round-robin continues
	batches       int64 // batches written since Connect: the pool's offset
	settled       int64
	marks         []poolMark
	log           *slog.Logger
	// unreadFrom is the pool offset past which the batches confirmed on a
	// target that then reset may not have been read (see UnreadFrom), or
	// -1.
	unreadFrom int64
}

type poolTarget struct {
	PoolTarget
	connected bool
	// confirmed holds the marks of the batches settled on the current
	// connection, newest last and at most maxConfirmedMarks: what a reset
	// may have left unread (UnreadFrom).
	confirmed []poolMark
	// failing is set from a failure of the target until it answers again,
	// so that each change is logged once, not each probe.
	failing bool
	retryAt time.Time
	up      prometheus.Gauge
	sent    prometheus.Counter
	errors  prometheus.Counter
}

type poolMark struct {
	end    int64 // pool offset after the batch
	target int
	inner  int64 // the target's offset after the batch
}

// NewPool returns a Pool over targets, exporting per-target metrics for the
// output named output and logging to log (nil: nowhere) when a target
// fails and when it answers again.
func NewPool(output string, mode PoolMode, probeInterval time.Duration, targets []PoolTarget, m *metrics.Metrics, log *slog.Logger) *Pool {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Pool{mode: mode, probeInterval: probeInterval, log: log, unreadFrom: -1}
	for _, t := range targets {
		p.targets = append(p.targets, &poolTarget{
			PoolTarget: t,
			up:         m.TargetUp.WithLabelValues(output, t.Name),
			sent:       m.TargetSent.WithLabelValues(output, t.Name),
			errors:     m.TargetErrors.WithLabelValues(output, t.Name),
		})
	}
	return p
}

func (p *Pool) String() string {
	s := "pool("
	for i, t := range p.targets {
		if i > 0 {
			s += ","
		}
		s += t.Dest.String()
	}
	return s + ")"
}

// Connected reports whether any target is connected.
func (p *Pool) Connected() bool {
	for _, t := range p.targets {
		if t.connected {
			return true
		}
	}
	return false
}

// Connect connects targets: in failover mode the first that answers, in
// load-balancing mode every one that answers. It fails only when none does.
func (p *Pool) Connect(ctx context.Context) error {
	p.batches, p.settled = 0, 0
	p.marks = p.marks[:0]
	p.unreadFrom = -1
	// Targets that failed recently are tried only when no other answers,
	// so a blackholed primary does not cost a connect timeout per retry.
	var errs []error
	now := time.Now()
	for _, recentFailures := range []bool{false, true} {
		for i, t := range p.targets {
			if now.Before(t.retryAt) != recentFailures || t.connected {
				continue
			}
			if err := p.connect(ctx, i); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", t.Name, err))
				continue
			}
			if p.mode == Failover {
				return nil
			}
		}
		if p.Connected() {
			return nil
		}
	}
	return errors.Join(errs...)
}

func (p *Pool) connect(ctx context.Context, i int) error {
	t := p.targets[i]
	if err := t.Dest.Connect(ctx); err != nil {
		t.errors.Inc()
		t.up.Set(0)
		t.retryAt = time.Now().Add(p.probeInterval)
		p.noteFailing(t, err)
		return err
	}
	t.connected = true
	t.confirmed = t.confirmed[:0]
	t.up.Set(1)
	if t.failing {
		t.failing = false
		p.log.Info("pool target answers again", "target", t.Name)
	}
	return nil
}

// noteFailing logs the first failure of t since it last worked: which
// target, the error, and that the others take its batches meanwhile (or
// that none is left).
func (p *Pool) noteFailing(t *poolTarget, err error) {
	if t.failing {
		return
	}
	t.failing = true
	others := 0
	for _, o := range p.targets {
		if o != t && !o.failing {
			others++
		}
	}
	p.log.Warn("pool target failed; batches go to the other targets, and it is tried again every probe_interval",
		"target", t.Name, "err", err, "probe_interval", p.probeInterval, "targets_left", others)
}

// pick returns the target for the next batch. Targets whose probe time has
// come are tried again first: in failover mode only those ranked before the
// current one, since a later one is not wanted while an earlier one works.
func (p *Pool) pick(ctx context.Context) (int, error) {
	now := time.Now()
	current := -1
	for i, t := range p.targets {
		if t.connected {
			current = i
			break
		}
	}
	for i, t := range p.targets {
		if t.connected || now.Before(t.retryAt) {
			continue
		}
		if p.mode == Failover && current >= 0 && i > current {
			break
		}
		_ = p.connect(ctx, i) // a failure only reschedules the probe
	}
	switch p.mode {
	case Failover:
		for i, t := range p.targets {
			if t.connected {
				return i, nil
			}
		}
	case LoadBalance:
		for range p.targets {
			i := p.next % len(p.targets)
			p.next++
			if p.targets[i].connected {
				return i, nil
			}
		}
	}
	return 0, errors.New("no target connected")
}

// Write sends the batch to one target.
func (p *Pool) Write(ctx context.Context, entries []queue.Entry) (int64, error) {
	i, err := p.pick(ctx)
	if err != nil {
		return 0, err
	}
	t := p.targets[i]
	inner, err := t.Dest.Write(ctx, entries)
	if err != nil {
		p.fail(i, err)
		return 0, fmt.Errorf("%s: %w", t.Name, err)
	}
	t.sent.Add(float64(len(entries)))
	p.batches++
	p.marks = append(p.marks, poolMark{end: p.batches, target: i, inner: inner})
	return p.batches, nil
}

// BytesWritten returns what every target wrote.
func (p *Pool) BytesWritten() int64 {
	var n int64
	for _, t := range p.targets {
		n += t.Dest.BytesWritten()
	}
	return n
}

func (p *Pool) fail(i int, err error) {
	t := p.targets[i]
	p.noteUnread(t, err)
	_ = t.Dest.Close()
	t.connected = false
	t.errors.Inc()
	t.up.Set(0)
	t.retryAt = time.Now().Add(p.probeInterval)
	p.noteFailing(t, err)
}

// Settled returns how many batches, counted since Connect, are settled in
// order. A target whose connection broke is closed and reported as an
// error, so that the caller resends everything not settled.
func (p *Pool) Settled(now time.Time) (int64, error) {
	inner := make([]int64, len(p.targets))
	var errs []error
	for i, t := range p.targets {
		if !t.connected {
			continue
		}
		s, err := t.Dest.Settled(now)
		inner[i] = s
		if err != nil {
			p.fail(i, err)
			errs = append(errs, fmt.Errorf("%s: %w", t.Name, err))
		}
	}
	n := 0
	for ; n < len(p.marks); n++ {
		m := p.marks[n]
		if m.inner > inner[m.target] {
			break
		}
		p.settled = m.end
		if t := p.targets[m.target]; t.connected {
			if len(t.confirmed) == maxConfirmedMarks {
				t.confirmed = append(t.confirmed[:0], t.confirmed[maxConfirmedMarks/2:]...)
			}
			t.confirmed = append(t.confirmed, m)
		}
	}
	p.marks = append(p.marks[:0], p.marks[n:]...)
	p.closeDrained()
	return p.settled, errors.Join(errs...)
}

// maxConfirmedMarks bounds the settled batches a target remembers for
// UnreadFrom; a reset can leave unread at most the peer's socket buffer,
// far fewer batches than this.
const maxConfirmedMarks = 4096

// noteUnread asks t's destination, before it is closed, how much of what
// it confirmed a reset may have left unread (TCP.UnreadFrom), and notes
// the pool offset of the first batch concerned.
func (p *Pool) noteUnread(t *poolTarget, err error) {
	r, ok := t.Dest.(unreadReporter)
	if !ok || len(t.confirmed) == 0 {
		return
	}
	from := r.UnreadFrom(err)
	if from < 0 {
		return
	}
	for _, m := range t.confirmed {
		if m.inner > from {
			// The worker counts the confirmed batches ending past the
			// offset it gets; batches other targets took meanwhile (load
			// balancing) are counted too: an upper bound, as it is.
			if p.unreadFrom < 0 || m.end-1 < p.unreadFrom {
				p.unreadFrom = m.end - 1
			}
			break
		}
	}
	t.confirmed = t.confirmed[:0]
}

// UnreadFrom returns the pool offset past which confirmed batches may not
// have been read by a target that reset (see TCP.UnreadFrom), or -1.
func (p *Pool) UnreadFrom(error) int64 {
	from := p.unreadFrom
	p.unreadFrom = -1
	return from
}

// closeDrained closes, in failover mode, connections to targets ranked after
// the one in use once nothing is left unsettled on them.
func (p *Pool) closeDrained() {
	if p.mode != Failover {
		return
	}
	inUse := -1
	for i, t := range p.targets {
		if t.connected {
			inUse = i
			break
		}
	}
	for i := inUse + 1; i < len(p.targets) && inUse >= 0; i++ {
		t := p.targets[i]
		if !t.connected {
			continue
		}
		pending := false
		for _, m := range p.marks {
			pending = pending || m.target == i
		}
		if !pending {
			_ = t.Dest.Close()
			t.connected = false
		}
	}
}

// Close closes every target.
func (p *Pool) Close() error {
	var errs []error
	for _, t := range p.targets {
		if t.connected {
			errs = append(errs, t.Dest.Close())
			t.connected = false
		}
	}
	p.marks = p.marks[:0]
	return errors.Join(errs...)
}
