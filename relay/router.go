package relay

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relay-syslog/relay/metrics"
	"github.com/relay-syslog/relay/queue"
)

// appender is what the router needs from an output's queue.
type appender interface {
	Append(e queue.Entry) error
	Flush() error
}

// route is a compiled [[route]]: the outputs it sends to, as indexes into
// router.outputs. A route without conditions matches every message.
type route struct {
	name    string
	outputs []int
}

func (r *route) match(queue.Entry) bool { return true }

// routeOutput is one output as the router sees it.
type routeOutput struct {
	name    string
	queue   appender
	dropped prometheus.Counter
}

// router hands each message to the queue of every output its routes name.
// It is called concurrently by every listener goroutine; it holds no mutable
// state of its own (the queues serialise themselves).
type router struct {
	routes  []route
	outputs []routeOutput
	log     *slog.Logger
}

func newRouter(cfg *Config, queues map[string]*queue.Queue, m *metrics.Metrics, log *slog.Logger) *router {
	r := &router{log: log}
	index := map[string]int{}
	for _, o := range cfg.Outputs {
		index[o.Name] = len(r.outputs)
		r.outputs = append(r.outputs, routeOutput{
			name:    o.Name,
			queue:   queues[o.Name],
			dropped: m.OutputDropped.WithLabelValues(o.Name, "queue_error"),
		})
	}
	for _, rc := range cfg.Routes {
		rt := route{name: rc.Name}
		for _, name := range rc.Outputs {
			rt.outputs = append(rt.outputs, index[name])
		}
		r.routes = append(r.routes, rt)
	}
	return r
}

// dispatch stores e in the queue of every output a matching route names,
// once per output even when several routes name it. It reports whether any
// route matched and whether every store succeeded; a failed store is
// counted as a drop of that output.
func (r *router) dispatch(e queue.Entry) (routed, accepted bool) {
	// A uint64 set keeps this allocation-free; configurations with more
	// than 64 outputs fall back to a slice.
	var seen uint64
	var seenBig []bool
	if len(r.outputs) > 64 {
		seenBig = make([]bool, len(r.outputs))
	}
	accepted = true
	for i := range r.routes {
		rt := &r.routes[i]
		if !rt.match(e) {
			continue
		}
		routed = true
		for _, oi := range rt.outputs {
			if seenBig != nil {
				if seenBig[oi] {
					continue
				}
				seenBig[oi] = true
			} else {
				if seen&(1<<oi) != 0 {
					continue
				}
				seen |= 1 << oi
			}
			out := &r.outputs[oi]
			if err := out.queue.Append(e); err != nil {
				accepted = false
				r.countDrop(out, err)
			}
		}
	}
	return routed, routed && accepted
}

func (r *router) countDrop(out *routeOutput, err error) {
	n := 1
	var de *queue.DropError
	if errors.As(err, &de) {
		n = de.Count
	}
	out.dropped.Add(float64(n))
	r.log.Error("store message", "output", out.name, "dropped", n, "err", err)
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
