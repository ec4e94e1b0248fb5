package relay

import (
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relay-syslog/relay/internal/repeatlog"
	"github.com/relay-syslog/relay/internal/syslog"
	"github.com/relay-syslog/relay/metrics"
	"github.com/relay-syslog/relay/queue"
)

// appender is what the router needs from an output's queue.
type appender interface {
	Append(e queue.Entry) error
	AppendEncoded(enc queue.Encoded) error
	Flush() error
}

// route is a compiled [[route]]: its conditions and the outputs it sends
// to, as indexes into router.outputs.
type route struct {
	name    string
	cond    conditions
	outputs []int
	final   bool
	// checksSender and checksHeader say whether cond looks at the
	// sender's address and past the PRI: set once, so that a route with
	// neither costs one test of each per message.
	checksSender, checksHeader bool
	matched                    prometheus.Counter
}

// routeOutput is one output as the router sees it.
type routeOutput struct {
	name    string
	queue   appender
	dropped *prometheus.CounterVec // by reason
}

// router hands each message to the queue of every output its routes name.
// It is called concurrently by every listener goroutine; it holds no mutable
// state of its own (the queues serialise themselves).
type router struct {
	routes    []route // in config order
	fallbacks []route // for messages no route matched
	outputs   []routeOutput
	log       *slog.Logger
	// dropLog keeps a queue that refuses every message (a full disk) from
	// logging a line per message: one per output and reason per interval,
	// with the number dropped.
	dropLog *repeatlog.Limiter

	// epoch and seq number every routed message, so that outputs can stamp
	// it and a receiving relay can find copies that came over two paths.
	epoch uint32
	seq   *atomic.Uint64 // shared by the routers of one Server across reloads

	// active counts the listener calls (dispatch, flush) running on this
	// router. A reload that replaces it waits for them (see drain) before it
	// closes the queue of a removed output, so that no message bound for
	// that output meets a closed queue.
	active  atomic.Int64
	retired atomic.Bool   // set by drain: the last call out signals idle
	idle    chan struct{} // buffered 1; a token means active may be zero

	// parsesHeader is set when a route needs more than the PRI.
	parsesHeader bool
}

func newRouter(cfg *Config, queues map[string]*queue.Queue, m *metrics.Metrics, log *slog.Logger) *router {
	r := &router{log: log, seq: new(atomic.Uint64), idle: make(chan struct{}, 1), dropLog: repeatlog.New(dropLogInterval)}
	index := map[string]int{}
	for _, o := range cfg.Outputs {
		index[o.Name] = len(r.outputs)
		r.outputs = append(r.outputs, routeOutput{
			name:    o.Name,
			queue:   queues[o.Name],
			dropped: m.OutputDropped.MustCurryWith(prometheus.Labels{"output": o.Name}),
		})
	}
	listeners := map[string]bool{}
	for _, l := range cfg.Listeners {
		listeners[l.Name] = true
	}
	for _, rc := range cfg.Routes {
		rt := route{
			name:    rc.Name,
			cond:    compileConditions(rc, listeners, func(string, string, ...any) {}),
			final:   rc.Final,
			matched: m.RouteMatched.WithLabelValues(rc.Name),
		}
		for _, name := range rc.Outputs {
			rt.outputs = append(rt.outputs, index[name])
		}
		rt.checksSender, rt.checksHeader = rt.cond.needsSender(), rt.cond.needsHeader()
		r.parsesHeader = r.parsesHeader || rt.checksHeader
		if rc.Fallback {
			r.fallbacks = append(r.fallbacks, rt)
		} else {
			r.routes = append(r.routes, rt)
		}
	}
	return r
}

// acquire returns the current router of p, counted as active until
// release. The second load closes the race with a reload that stores a new
// router and finds the old one idle just before this call counted itself:
// either drain sees the count, or this call sees the new router and moves
// to it.
func acquire(p *atomic.Pointer[router]) *router {
	for {
		r := p.Load()
		r.active.Add(1)
		if p.Load() == r {
			return r
		}
		r.release()
	}
}

// release ends a call that acquire counted.
func (r *router) release() {
	if r.active.Add(-1) == 0 && r.retired.Load() {
		select {
		case r.idle <- struct{}{}:
		default:
		}
	}
}

// drain waits until no listener call runs on r, which must no longer be
// the current router: every new call goes to its successor. A dispatch is
// short, but under the block full policy it may wait up to the queue's
// block_timeout for room.
func (r *router) drain() {
	r.retired.Store(true)
	for r.active.Load() != 0 {
		<-r.idle
	}
}

// dispatch stores e in the queue of every output a matching route names,
// once per output even when several routes name it. Routes are tried in
// order; a matching final route ends the search; fallback routes are tried
// only when no other route matched. It reports whether any route matched
// and whether every store succeeded; a failed store is counted as a drop of
// that output.
func (r *router) dispatch(e queue.Entry) (routed, accepted bool) {
	pri, _, ok := syslog.ReadPRI(e.Data)
	if !ok {
		pri = syslog.DefaultPRI
	}
	// A uint64 set keeps this allocation-free; configurations with more
	// than 64 outputs fall back to a slice.
	var seen outputSet
	if len(r.outputs) > 64 {
		seen.big = make([]bool, len(r.outputs))
	}
	accepted = true
	e.Epoch, e.Seq = r.epoch, r.seq.Add(1)
	// The header is parsed only for routes with hostname or app-name
	// globs or conditions on the message text, at most once per message;
	// without such routes not even its buffer is set up.
	if r.parsesHeader {
		h := header{data: e.Data}
		routed = r.match(e, pri, &h, &seen)
	} else {
		routed = r.match(e, pri, nil, &seen)
	}
	if routed {
		accepted = r.store(e, &seen)
	}
	return routed, routed && accepted
}

// encBufs holds the buffers store encodes a message into; a buffer on the
// stack would escape through the appender interface.
var encBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// maxKeptEncBuf is the largest buffer store gives back to encBufs.
const maxKeptEncBuf = 64 << 10

// store appends e to the queue of every output in seen and reports whether
// every append succeeded; a failed one is counted as a drop of that output.
// A message for several outputs is encoded once, and each queue copies the
// encoding.
func (r *router) store(e queue.Entry, seen *outputSet) (accepted bool) {
	accepted = true
	if seen.n == 1 {
		out := &r.outputs[seen.first()]
		if err := out.queue.Append(e); err != nil {
			accepted = false
			r.countDrop(out, err)
		}
		return accepted
	}
	bp := encBufs.Get().(*[]byte)
	enc := queue.EncodeEntry((*bp)[:0], e)
	seen.each(func(i int) {
		out := &r.outputs[i]
		if err := out.queue.AppendEncoded(enc); err != nil {
			accepted = false
			r.countDrop(out, err)
		}
	})
	if b := enc.Bytes(); cap(b) <= maxKeptEncBuf {
		*bp = b
		encBufs.Put(bp)
	}
	return accepted
}

// match applies the routes, then, if none matched, the fallbacks, and
// collects the outputs they name in seen. h is nil when no route needs the
// header.
func (r *router) match(e queue.Entry, pri int, h *header, seen *outputSet) bool {
	src := sender{source: e.Source}
	if r.apply(r.routes, e, pri, h, &src, seen) {
		return true
	}
	return r.apply(r.fallbacks, e, pri, h, &src, seen)
}

func (r *router) apply(routes []route, e queue.Entry, pri int, h *header, src *sender, seen *outputSet) (matched bool) {
	for i := range routes {
		rt := &routes[i]
		if !rt.cond.matchPRI(pri, e.Listener) {
			continue
		}
		if rt.checksSender && !rt.cond.matchSender(src) {
			continue
		}
		if rt.checksHeader && !rt.cond.matchHeader(h) {
			continue
		}
		matched = true
		rt.matched.Inc()
		for _, oi := range rt.outputs {
			seen.add(oi)
		}
		if rt.final {
			break
		}
	}
	return matched
}

// outputSet records which outputs a message goes to.
type outputSet struct {
	small uint64
	big   []bool
	n     int // outputs in the set
}

// add marks output i; an output several routes name is counted once.
func (s *outputSet) add(i int) {
	if s.big != nil {
		if !s.big[i] {
			s.big[i] = true
			s.n++
		}
		return
	}
	if s.small&(1<<i) == 0 {
		s.small |= 1 << i
		s.n++
	}
}

// first returns the lowest output in the set, which must not be empty.
func (s *outputSet) first() int {
	if s.big != nil {
		return slices.Index(s.big, true)
	}
	return bits.TrailingZeros64(s.small)
}

// each calls f with every output in the set, in index order.
func (s *outputSet) each(f func(i int)) {
	if s.big != nil {
		for i, in := range s.big {
			if in {
				f(i)
			}
		}
		return
	}
	for m := s.small; m != 0; m &= m - 1 {
		f(bits.TrailingZeros64(m))
	}
}

// dropLogInterval is the longest the router holds back the count of
// messages a queue refused.
const dropLogInterval = 10 * time.Second

// countDrop counts the messages a failed append lost. A full queue is
// counted silently (the counter tells the story; a log line per message
// would flood the log exactly when the relay is overloaded); write errors
// are logged too, at most once per interval per output and reason, with
// the number of messages dropped since the last line.
func (r *router) countDrop(out *routeOutput, err error) {
	n, reason := 1, queue.ReasonDiskError
	var de *queue.DropError
	switch {
	case errors.As(err, &de):
		// The lines below give the count as dropped, and a summary adds up
		// many calls: the DropError's own count would contradict it.
		n, reason, err = de.Count, de.Reason, de.Err
	case errors.Is(err, queue.ErrClosed):
		// Only when the relay is stopping: a reload closes a removed
		// output's queue once no dispatch that could reach it runs.
		reason = queue.ReasonClosed
	}
	out.dropped.WithLabelValues(reason).Add(float64(n))
	switch reason {
	case queue.ReasonQueueFull:
		return
	case queue.ReasonClosed:
		r.dropLog.Log(out.name+"\x00"+reason, n, func(n int, _ bool) {
			r.log.Warn("store message: the output's queue is closed", "output", out.name, "dropped", n)
		})
		return
	}
	r.dropLog.Log(out.name+"\x00"+reason, n, func(n int, summary bool) {
		if summary {
			r.log.Error("store messages", "output", out.name, "dropped", n, "reason", reason, "err", err, "since_last_line", "up to "+dropLogInterval.String())
			return
		}
		r.log.Error("store message", "output", out.name, "dropped", n, "reason", reason, "err", err)
	})
}

// flush writes every output's partial record to disk.
func (r *router) flush() error {
	var errs []error
	for i := range r.outputs {
		if err := r.outputs[i].queue.Flush(); err != nil {
			errs = append(errs, fmt.Errorf("output %q: %w", r.outputs[i].name, err))
		}
	}
	return errors.Join(errs...)
}
