package relay

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"time"

	"github.com/relay-syslog/relay/outputs"
)

// reloadRequest carries a new configuration to Run, which applies it.
type reloadRequest struct {
	cfg    *Config
	result chan error
}

// ErrNotRunning is returned by Reload when Run is not serving: before Run,
// after it has returned, and after Close.
var ErrNotRunning = errors.New("relay is not running")

// Serving is closed once Run serves and takes reloads. A reload asked for
// while the relay starts (a SIGHUP as soon as its sockets answer) waits
// for it rather than fail with ErrNotRunning.
func (s *Server) Serving() <-chan struct{} { return s.serving }

// Stopped is closed once Run no longer takes reloads, or by Close before
// Run.
func (s *Server) Stopped() <-chan struct{} { return s.stopped }

// ReloadFile reads and validates the configuration at path and applies it
// to the running relay. On any error the running configuration stays as it
// is; the error says why, and the reload metrics record it.
func (s *Server) ReloadFile(path string) error {
	cfg, err := LoadConfig(path)
	if err != nil {
		s.recordReload(err)
		return err
	}
	return s.Reload(cfg)
}

// Reload applies cfg, already validated, to the running relay: listeners,
// routes and outputs are added, changed and removed in place. An output's
// queue is keyed by its name, so the queue of an output that still exists
// keeps its data and its unsent batches; a removed output's queue stays on
// disk and is picked up again if the output comes back. When Run is not
// serving, Reload returns ErrNotRunning at once.
func (s *Server) Reload(cfg *Config) error {
	s.mu.Lock()
	running := s.state == stateRunning
	s.mu.Unlock()
	if running {
		req := reloadRequest{cfg: cfg, result: make(chan error, 1)}
		select {
		case s.reloads <- req:
			return <-req.result
		case <-s.stopped:
		}
	}
	s.recordReload(ErrNotRunning)
	return ErrNotRunning
}

func (s *Server) recordReload(err error) {
	if err != nil {
		s.metrics.ConfigReloads.WithLabelValues("failure").Inc()
		s.metrics.ConfigLastReloadOK.Set(0)
		var partial partlyApplied
		if errors.As(err, &partial) {
			s.log.Error("configuration reloaded in part: the new configuration is in force except for what failed", "err", partial.err)
			return
		}
		s.log.Error("configuration reload failed; the running configuration stays in force", "err", err)
		return
	}
	s.metrics.ConfigReloads.WithLabelValues("success").Inc()
	s.metrics.ConfigLastReloadOK.Set(1)
	s.metrics.ConfigLastReloadTime.SetToCurrentTime()
	s.log.Info("configuration reloaded")
}

// partlyApplied is a reload that took effect except for what err names
// (a listener that could not bind its new address, a queue limit).
type partlyApplied struct{ err error }

func (p partlyApplied) Error() string { return "applied in part: " + p.err.Error() }
func (p partlyApplied) Unwrap() error { return p.err }

// apply changes the running relay to cfg. It runs on Run's goroutine.
// Everything that can fail before anything changes (opening new queues,
// building destinations) is done first; a listener that cannot bind its
// new address afterwards is reported and left down.
func (s *Server) apply(cfg *Config) (err error) {
	defer func() { s.recordReload(err) }()
	old := s.cfg
	if err := restartOnly(old, cfg); err != nil {
		return err
	}
	if cfg.DedupWindow != old.DedupWindow && s.dedup != nil {
		s.log.Warn("dedup_window changes only with a restart")
	}
	p, err := s.prepare(old, cfg)
	if err != nil {
		return err
	}
	prev := s.commit(cfg, p)
	errs := s.applyLimits(p.limits)
	s.replaceWorkers(p.replaced)
	// The old router's dispatches may still append to the outputs about to
	// be removed; their queues close only after these are done.
	prev.drain()
	errs = append(errs, s.removeOutputs(cfg)...)
	errs = append(errs, s.rebindListeners(cfg)...)
	for _, rc := range old.Routes {
		if !slices.ContainsFunc(cfg.Routes, func(n RouteConfig) bool { return n.Name == rc.Name }) {
			s.metrics.RemoveRoute(rc.Name)
		}
	}
	changes := configChanges(old, cfg)
	if r := restartedUnchanged(old, p.replaced); len(r) > 0 {
		// A converting output's worker holds the listeners' settings (a
		// stamping one, the relay ID): it starts again, and reconnects,
		// though its own table did not change.
		changes = append(changes, "outputs_restarted", r)
	}
	s.log.Info("applied configuration", append([]any{"listeners", len(s.listeners), "outputs", len(s.outputs)},
		changes...)...)
	if err := errors.Join(errs...); err != nil {
		return partlyApplied{err}
	}
	return nil
}

// restartOnly refuses changes that need a restart.
func restartOnly(old, cfg *Config) error {
	var errs []error
	if filepath.Clean(cfg.DataDir) != filepath.Clean(old.DataDir) {
		errs = append(errs, fmt.Errorf("data_dir cannot change on reload (%s → %s): restart the relay", old.DataDir, cfg.DataDir))
	}
	if cfg.Metrics.Address != old.Metrics.Address {
		errs = append(errs, fmt.Errorf("metrics.address cannot change on reload (%q → %q): restart the relay", old.Metrics.Address, cfg.Metrics.Address))
	}
	return errors.Join(errs...)
}

// reloadPlan is what prepare made ready for a reload, before anything
// running changed.
type reloadPlan struct {
	added    map[string]*outputState // new outputs, queue open, worker not started
	replaced map[string]*outputState // name → the new state, same queue
	limits   map[string]QueueConfig  // name → the queue settings with new limits
}

// prepare opens the queues of new outputs and builds every worker that must
// change. On error it closes what it opened, and nothing running changed.
func (s *Server) prepare(old, cfg *Config) (_ *reloadPlan, err error) {
	// A worker reads the relay ID only to stamp, and the listeners'
	// settings only to convert what it sends; an output that does neither
	// keeps its worker (and its connection) when they change.
	idChanged := cfg.RelayID != old.RelayID
	normalizeChanged := !reflect.DeepEqual(normalizeSettings(cfg.Listeners), normalizeSettings(old.Listeners))
	p := &reloadPlan{added: map[string]*outputState{}, replaced: map[string]*outputState{}, limits: map[string]QueueConfig{}}
	defer func() {
		if err != nil {
			for _, o := range p.added {
				_ = o.queue.Close()
			}
		}
	}()
	// The outputs kept, removed ones included (they are closed only once
	// the reload is committed), and the ones added, all hold a queue open.
	running := slices.Clone(cfg.Outputs)
	for _, o := range s.outputs {
		if !slices.ContainsFunc(running, func(oc OutputConfig) bool { return oc.Name == o.cfg.Name }) {
			running = append(running, o.cfg)
		}
	}
	if err := sharedQueueDir(cfg.DataDir, running); err != nil {
		return nil, err
	}
	for _, oc := range cfg.Outputs {
		cur := s.outputs[oc.Name]
		if cur == nil {
			q, err := openQueue(cfg.DataDir, oc, s.log, s.metrics)
			if err != nil {
				return nil, err
			}
			w, err := s.newWorker(cfg, oc, q)
			if err != nil {
				_ = q.Close()
				return nil, err
			}
			p.added[oc.Name] = &outputState{cfg: oc, queue: q, worker: w}
			continue
		}
		if prev, ok := outputNamed(old.Outputs, oc.Name); ok && fileSettings(prev.Queue) != fileSettings(oc.Queue) {
			s.log.Warn("queue file settings (max_file_size, sync_every, sync_interval, fsync, batch_messages, batch_bytes, linger) change only with a restart; max_bytes, full_policy and block_timeout change now",
				"output", oc.Name)
		}
		// The file settings that run stay; only the limits can differ.
		oc.Queue = withLimits(cur.cfg.Queue, oc.Queue)
		if oc.Queue != cur.cfg.Queue {
			p.limits[oc.Name] = oc.Queue
		}
		same := cur.cfg
		same.Queue = oc.Queue
		workerChanges := idChanged && oc.StampSequence || normalizeChanged && oc.Format != outputs.Raw
		if !workerChanges && reflect.DeepEqual(same, oc) {
			continue // at most the limits change, in place
		}
		w, err := s.newWorker(cfg, oc, cur.queue)
		if err != nil {
			return nil, err
		}
		p.replaced[oc.Name] = &outputState{cfg: oc, queue: cur.queue, worker: w}
	}
	return p, nil
}

// commit makes cfg the running configuration: the new outputs exist before
// the new router sends to them, and their workers start. It returns the
// router it replaced, which listeners may still be using.
func (s *Server) commit(cfg *Config, p *reloadPlan) (prev *router) {
	s.mu.Lock()
	s.cfg = cfg
	for name, o := range p.added {
		s.outputs[name] = o
		s.metrics.AddQueue(name, o.queue)
	}
	s.mu.Unlock()
	prev = s.router.Swap(s.newRouter(cfg))
	for _, o := range p.added {
		s.startWorker(o)
	}
	return prev
}

// applyLimits sets the new limits of running queues.
func (s *Server) applyLimits(limits map[string]QueueConfig) []error {
	var errs []error
	for name, qc := range limits {
		o := s.outputs[name]
		// Validated with the configuration, so it cannot fail here.
		if err := o.queue.SetLimits(int64(qc.MaxBytes), qc.FullPolicy, qc.BlockTimeout.Duration); err != nil {
			errs = append(errs, fmt.Errorf("output %q: %w", name, err))
			continue
		}
		s.mu.Lock()
		o.cfg.Queue = qc
		s.mu.Unlock()
		s.log.Info("queue limits changed", "output", name, "max_bytes", int64(qc.MaxBytes),
			"full_policy", qc.FullPolicy, "block_timeout", qc.BlockTimeout.Duration)
	}
	return errs
}

// handoverGrace bounds how long a reload waits for the upstreams of
// replaced workers to confirm what those workers wrote.
const handoverGrace = 5 * time.Second

// replaceWorkers swaps in the new workers of changed outputs; each takes
// over its predecessor's queue and unsent batches. The old workers first
// stop taking batches and wait, together and for at most handoverGrace,
// until their upstreams have confirmed what they wrote: a healthy upstream
// then gets nothing twice, and what is still unconfirmed is counted as
// resent.
func (s *Server) replaceWorkers(replaced map[string]*outputState) {
	for name := range replaced {
		s.outputs[name].worker.Handover()
	}
	grace, cancel := context.WithTimeout(context.Background(), handoverGrace)
	defer cancel()
	for name, next := range replaced {
		cur := s.outputs[name]
		select {
		case <-cur.done:
		case <-grace.Done():
			s.log.Warn("the upstream did not confirm what the replaced worker wrote in time; the new worker sends it again",
				"output", name, "waited", handoverGrace)
		}
		cur.stop()
		<-cur.done
		// The old worker's unsent batches go out first on the new one.
		next.worker.Resume(cur.worker.Pending())
		s.mu.Lock()
		s.outputs[name] = next
		s.mu.Unlock()
		s.startWorker(next)
		for _, t := range cur.cfg.Targets {
			if !slices.Contains(next.cfg.Targets, t) {
				s.metrics.RemoveTarget(name, t)
			}
		}
	}
}

// removeOutputs stops the outputs cfg no longer has and closes their
// queues, which stay on disk. No router may send to them any more.
func (s *Server) removeOutputs(cfg *Config) []error {
	var errs []error
	for name, o := range s.outputs {
		if _, ok := outputNamed(cfg.Outputs, name); ok {
			continue
		}
		o.stop()
		<-o.done
		// Unsent batches stay in the queue's journal on disk.
		if err := o.queue.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close queue %q: %w", name, err))
		}
		s.mu.Lock()
		delete(s.outputs, name)
		s.mu.Unlock()
		s.metrics.RemoveOutput(name)
	}
	return errs
}

// rebindListeners applies cfg's listeners. One whose protocol and address
// stay takes its new settings in place, on its socket (updateListener). One
// that goes, or must be bound again, is read dry and closed (drain); its
// successor is bound before that when the two sockets can coexist, so that
// senders moving to a new address find it at once, and after it when they
// share the address.
func (s *Server) rebindListeners(cfg *Config) []error {
	var errs []error
	want := map[string]ListenerConfig{}
	for _, lc := range cfg.Listeners {
		want[lc.Name] = lc
	}
	var gone []*listenerState
	for name, ls := range s.listeners {
		lc, ok := want[name]
		switch {
		case ok && reflect.DeepEqual(lc, ls.cfg):
		case ok && keepsSocket(ls.cfg, lc):
			next, err := s.updateListener(ls, lc)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			s.mu.Lock()
			s.listeners[name] = next
			s.mu.Unlock()
		default:
			gone = append(gone, ls)
		}
	}
	// The listeners to bind: new names, and the successors of those gone.
	var pending []ListenerConfig
	for _, lc := range cfg.Listeners {
		if cur, ok := s.listeners[lc.Name]; !ok || slices.Contains(gone, cur) {
			pending = append(pending, lc)
		}
	}
	bound := map[string]*listenerState{}
	bind := func(lc ListenerConfig) {
		l, err := s.newListener(lc, nil)
		if err != nil {
			errs = append(errs, err)
			return
		}
		ls := &listenerState{cfg: lc, l: l}
		bound[lc.Name] = ls
		s.startListener(ls)
	}
	pending = slices.DeleteFunc(pending, func(lc ListenerConfig) bool {
		if slices.ContainsFunc(gone, func(g *listenerState) bool { return sameSocketAddr(g.cfg, lc) }) {
			return false
		}
		bind(lc)
		return true
	})
	for _, ls := range gone {
		s.drain(ls)
		s.mu.Lock()
		delete(s.listeners, ls.cfg.Name)
		s.mu.Unlock()
		if _, ok := want[ls.cfg.Name]; !ok {
			s.metrics.RemoveListener(ls.cfg.Name)
			if s.kafka != nil {
				s.kafka.remove(ls.cfg.Name)
			}
		}
	}
	for _, lc := range pending {
		bind(lc)
	}
	s.mu.Lock()
	for name, ls := range bound {
		s.listeners[name] = ls
	}
	s.mu.Unlock()
	return errs
}

// fileSettings returns q without its limits: the settings that shape the
// queue's files and records, which change only with a restart.
func fileSettings(q QueueConfig) QueueConfig {
	q.MaxBytes, q.FullPolicy, q.BlockTimeout = 0, 0, Duration{}
	return q
}

// withLimits returns running with the limits of requested.
func withLimits(running, requested QueueConfig) QueueConfig {
	running.MaxBytes, running.FullPolicy, running.BlockTimeout = requested.MaxBytes, requested.FullPolicy, requested.BlockTimeout
	return running
}

// restartedUnchanged names, in order, the outputs whose workers a reload
// replaced although their own configuration is the same: for a change of
// the listeners' settings or of the relay ID.
func restartedUnchanged(old *Config, replaced map[string]*outputState) []string {
	var names []string
	for name, o := range replaced {
		// A queue setting alone never replaces a worker (limits apply in
		// place, the rest waits for a restart), so it is left out.
		if prev, ok := outputNamed(old.Outputs, name); ok {
			prev.Queue = o.cfg.Queue
			if reflect.DeepEqual(prev, o.cfg) {
				names = append(names, name)
			}
		}
	}
	slices.Sort(names)
	return names
}

func outputNamed(outs []OutputConfig, name string) (OutputConfig, bool) {
	for _, o := range outs {
		if o.Name == name {
			return o, true
		}
	}
	return OutputConfig{}, false
}

// configChanges names, per kind of table, what a reload added, changed
// and removed, as log attributes ("outputs_changed", [names]); kinds
// without a change are left out, and a reload that changed nothing says
// so. An administrator reading the log sees what the SIGHUP did.
func configChanges(old, cfg *Config) []any {
	var attrs []any
	diff := func(kind string, oldNames, newNames []string, same func(o, n int) bool) {
		var added, changed, removed []string
		for n, name := range newNames {
			o := slices.Index(oldNames, name)
			switch {
			case o < 0:
				added = append(added, name)
			case !same(o, n):
				changed = append(changed, name)
			}
		}
		for _, name := range oldNames {
			if !slices.Contains(newNames, name) {
				removed = append(removed, name)
			}
		}
		for _, c := range []struct {
			what  string
			names []string
		}{{"added", added}, {"changed", changed}, {"removed", removed}} {
			if len(c.names) > 0 {
				attrs = append(attrs, kind+"_"+c.what, c.names)
			}
		}
	}
	names := func(n int, name func(int) string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = name(i)
		}
		return out
	}
	diff("listeners",
		names(len(old.Listeners), func(i int) string { return old.Listeners[i].Name }),
		names(len(cfg.Listeners), func(i int) string { return cfg.Listeners[i].Name }),
		func(o, n int) bool { return reflect.DeepEqual(old.Listeners[o], cfg.Listeners[n]) })
	diff("outputs",
		names(len(old.Outputs), func(i int) string { return old.Outputs[i].Name }),
		names(len(cfg.Outputs), func(i int) string { return cfg.Outputs[i].Name }),
		func(o, n int) bool { return reflect.DeepEqual(old.Outputs[o], cfg.Outputs[n]) })
	diff("routes",
		names(len(old.Routes), func(i int) string { return old.Routes[i].Name }),
		names(len(cfg.Routes), func(i int) string { return cfg.Routes[i].Name }),
		func(o, n int) bool { return reflect.DeepEqual(old.Routes[o], cfg.Routes[n]) })
	if cfg.RelayID != old.RelayID {
		attrs = append(attrs, "relay_id_changed", true)
	}
	if len(attrs) == 0 {
		attrs = append(attrs, "changes", "none")
	}
	return attrs
}
