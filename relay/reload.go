package relay

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
)

// reloadRequest carries a new configuration to Run, which applies it.
type reloadRequest struct {
	cfg    *Config
	result chan error
}

// errNotRunning is returned by Reload when Run is not serving.
var errNotRunning = errors.New("relay is not running")

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
// disk and is picked up again if the output comes back.
func (s *Server) Reload(cfg *Config) error {
	req := reloadRequest{cfg: cfg, result: make(chan error, 1)}
	select {
	case s.reloads <- req:
		return <-req.result
	case <-s.stopped:
		return errNotRunning
	}
}

func (s *Server) recordReload(err error) {
	if err != nil {
		s.metrics.ConfigReloads.WithLabelValues("failure").Inc()
		s.metrics.ConfigLastReloadOK.Set(0)
		s.log.Error("configuration reload failed; the running configuration stays in force", "err", err)
		return
	}
	s.metrics.ConfigReloads.WithLabelValues("success").Inc()
	s.metrics.ConfigLastReloadOK.Set(1)
	s.metrics.ConfigLastReloadTime.SetToCurrentTime()
	s.log.Info("configuration reloaded")
}

// apply changes the running relay to cfg. It runs on Run's goroutine.
// Everything that can fail before anything changes (opening new queues,
// building destinations) is done first; a listener that cannot bind its
// new address afterwards is reported and left down.
func (s *Server) apply(cfg *Config) (err error) {
	defer func() { s.recordReload(err) }()
	old := s.cfg
	if filepath.Clean(cfg.DataDir) != filepath.Clean(old.DataDir) {
		return fmt.Errorf("data_dir cannot change on reload (%s → %s): restart the relay", old.DataDir, cfg.DataDir)
	}
	if cfg.Metrics.Address != old.Metrics.Address {
		return fmt.Errorf("metrics.address cannot change on reload (%q → %q): restart the relay", old.Metrics.Address, cfg.Metrics.Address)
	}

	// Prepare: new outputs' queues and every worker that must change.
	workersChange := cfg.RelayID != old.RelayID ||
		!reflect.DeepEqual(normalizeSettings(cfg.Listeners), normalizeSettings(old.Listeners))
	added := map[string]*outputState{}
	replaced := map[string]*outputState{} // name → the new state, same queue
	limits := map[string]QueueConfig{}    // name → the queue settings with new limits
	defer func() {
		if err != nil {
			for _, o := range added {
				_ = o.queue.Close()
			}
		}
	}()
	for _, oc := range cfg.Outputs {
		cur := s.outputs[oc.Name]
		switch {
		case cur == nil:
			q, err := openQueue(cfg.DataDir, oc, s.log, s.metrics)
			if err != nil {
				return err
			}
			w, err := s.newWorker(cfg, oc, q)
			if err != nil {
				_ = q.Close()
				return err
			}
			added[oc.Name] = &outputState{cfg: oc, queue: q, worker: w}
		default:
			if prev, ok := outputNamed(old.Outputs, oc.Name); ok && fileSettings(prev.Queue) != fileSettings(oc.Queue) {
				s.log.Warn("queue file settings (max_file_size, sync_every, sync_interval, batch_messages, batch_bytes, linger) change only with a restart; max_bytes, full_policy and block_timeout change now",
					"output", oc.Name)
			}
			// The file settings that run stay; only the limits can differ.
			oc.Queue = withLimits(cur.cfg.Queue, oc.Queue)
			if oc.Queue != cur.cfg.Queue {
				limits[oc.Name] = oc.Queue
			}
			same := cur.cfg
			same.Queue = oc.Queue
			if !workersChange && reflect.DeepEqual(same, oc) {
				continue // at most the limits change, in place
			}
			w, err := s.newWorker(cfg, oc, cur.queue)
			if err != nil {
				return err
			}
			replaced[oc.Name] = &outputState{cfg: oc, queue: cur.queue, worker: w}
		}
	}
	if cfg.DedupWindow != old.DedupWindow && s.dedup != nil {
		s.log.Warn("dedup_window changes only with a restart")
	}

	// Commit. New outputs exist before the router sends to them; removed
	// ones stop receiving before their queues close.
	s.mu.Lock()
	s.cfg = cfg
	for name, o := range added {
		s.outputs[name] = o
		s.metrics.AddQueue(name, o.queue)
	}
	s.mu.Unlock()
	s.router.Store(s.newRouter(cfg))
	var errs []error
	for _, o := range added {
		s.startWorker(o)
	}
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
	for name, next := range replaced {
		cur := s.outputs[name]
		cur.stop()
		<-cur.done
		// The old worker's unsent batches go out first on the new one.
		next.worker.Resume(cur.worker.Pending())
		s.mu.Lock()
		s.outputs[name] = next
		s.mu.Unlock()
		s.startWorker(next)
	}
	for name, o := range s.outputs {
		if slices.ContainsFunc(cfg.Outputs, func(oc OutputConfig) bool { return oc.Name == name }) {
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
		s.metrics.RemoveQueue(name)
		s.mu.Unlock()
	}

	// Listeners: close the removed and changed ones, then bind the new and
	// changed ones (a changed one may keep its address).
	want := map[string]ListenerConfig{}
	for _, lc := range cfg.Listeners {
		want[lc.Name] = lc
	}
	for name, ls := range s.listeners {
		if lc, ok := want[name]; ok && reflect.DeepEqual(lc, ls.cfg) {
			continue
		}
		_ = ls.l.close()
		<-ls.done
		s.mu.Lock()
		delete(s.listeners, name)
		s.mu.Unlock()
	}
	for _, lc := range cfg.Listeners {
		if _, ok := s.listeners[lc.Name]; ok {
			continue
		}
		l, err := s.newListener(lc)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ls := &listenerState{cfg: lc, l: l}
		s.mu.Lock()
		s.listeners[lc.Name] = ls
		s.mu.Unlock()
		s.startListener(ls)
	}
	s.log.Info("applied configuration", "listeners", len(s.listeners), "outputs", len(s.outputs),
		"outputs_added", len(added), "outputs_changed", len(replaced))
	return errors.Join(errs...)
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

func outputNamed(outs []OutputConfig, name string) (OutputConfig, bool) {
	for _, o := range outs {
		if o.Name == name {
			return o, true
		}
	}
	return OutputConfig{}, false
}
