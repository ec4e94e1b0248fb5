// Package relay is the syslog relay daemon: configuration, listeners, the
// router and the lifecycle that ties them to the output queues and workers.
//
// Data flows one way: listeners → router → one disk queue per output →
// one worker per output → destination. A message is accepted when it is in
// the queue of every output its routes name; from then on it survives a
// restart or a kill -9 of the relay and is delivered at least once.
package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relay-syslog/relay/metrics"
	"github.com/relay-syslog/relay/outputs"
	"github.com/relay-syslog/relay/queue"
)

// Options are the parts of a Server that are not configuration.
type Options struct {
	Logger *slog.Logger
	// Registry receives the relay's metrics; a fresh one is made when nil.
	Registry *prometheus.Registry
	// Notify, when set, is told "READY=1" once every listener serves and
	// "STOPPING=1" when the stop begins (systemd's notify protocol).
	Notify func(state string)
}

// Server is a running relay. New prepares it; Run serves until its context
// ends and then shuts everything down in order.
type Server struct {
	cfg     *Config
	log     *slog.Logger
	reg     *prometheus.Registry
	metrics *metrics.Metrics
	notify  func(state string)

	lock      *os.File
	queues    map[string]*queue.Queue
	workers   []*outputs.Worker
	listeners []listener
	httpLn    net.Listener
}

// New does every step that can fail — lock the data dir, open the queues,
// bind the sockets, register the metrics — and starts nothing. On failure it
// releases whatever it had opened.
func New(cfg *Config, opts Options) (_ *Server, err error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	if opts.Notify == nil {
		opts.Notify = func(string) {}
	}
	s := &Server{cfg: cfg, log: opts.Logger, reg: opts.Registry, notify: opts.Notify, queues: map[string]*queue.Queue{}}
	defer func() {
		if err != nil {
			s.release()
		}
	}()

	if s.metrics, err = metrics.New(s.reg); err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	if err = os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	if s.lock, err = lockDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	epoch, err := nextEpoch(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	s.log.Info("relay run", "relay_id", cfg.RelayID, "epoch", epoch)
	for _, oc := range cfg.Outputs {
		q, err := openQueue(cfg.DataDir, oc, s.log, s.metrics)
		if err != nil {
			return nil, err
		}
		s.queues[oc.Name] = q
		s.metrics.AddQueue(oc.Name, q)
		dest, err := newDestination(oc, s.metrics)
		if err != nil {
			return nil, fmt.Errorf("output %q: %w", oc.Name, err)
		}
		format, err := outputs.ParseFormat(oc.Format)
		if err != nil {
			return nil, fmt.Errorf("output %q: %w", oc.Name, err)
		}
		s.workers = append(s.workers, outputs.NewWorker(outputs.WorkerOptions{
			Name:         oc.Name,
			RetryInitial: oc.RetryInitial.Duration,
			RetryMax:     oc.RetryMax.Duration,
			Format:       format,
			Normalize:    normalizeSettings(cfg.Listeners),
			StampOrigin:  stampOrigin(oc, cfg.RelayID),
		}, q, dest, s.metrics, s.log))
	}
	r := newRouter(cfg, s.queues, s.metrics, s.log)
	r.epoch = epoch
	var dd *dedup
	for _, lc := range cfg.Listeners {
		in := newIngest(lc.Name, r, s.metrics)
		if lc.Dedup {
			if dd == nil {
				if dd, err = newDedup(cfg.DedupWindow, s.reg); err != nil {
					return nil, fmt.Errorf("register dedup metrics: %w", err)
				}
			}
			in.dedup = dd
		}
		var l listener
		switch lc.Protocol {
		case "udp", "unix":
			l, err = newDatagramListener(lc, in, s.log)
		case "tcp":
			l, err = newTCPListener(lc, in, s.metrics.ListenerConnections.WithLabelValues(lc.Name), s.log)
		case "relp":
			l, err = newRELPListener(lc, in, s.metrics.ListenerConnections.WithLabelValues(lc.Name), s.log)
		default:
			err = fmt.Errorf("unknown protocol %q", lc.Protocol)
		}
		if err != nil {
			return nil, fmt.Errorf("listener %q: %w", lc.Name, err)
		}
		s.listeners = append(s.listeners, l)
	}
	if cfg.Metrics.Address != "" {
		if s.httpLn, err = net.Listen("tcp", cfg.Metrics.Address); err != nil {
			return nil, fmt.Errorf("metrics.address: %w", err)
		}
		s.log.Info("serving metrics", "address", s.httpLn.Addr().String())
	}
	return s, nil
}

func stampOrigin(oc OutputConfig, relayID string) string {
	if !oc.StampSequence {
		return ""
	}
	return relayID
}

// nextEpoch counts this run of the relay: it reads the number of the last
// run from data_dir/epoch, adds one and stores it (fsynced) before any
// message is stamped with it. Sequence numbers restart with every run, and
// the epoch keeps a receiver from mistaking a new run's numbers for
// duplicates of the last one's.
func nextEpoch(dataDir string) (uint32, error) {
	path := filepath.Join(dataDir, "epoch")
	var last uint64
	if b, err := os.ReadFile(path); err == nil {
		last, _ = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 32)
	}
	next := uint32(last + 1)
	if next == 0 {
		next = 1
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return 0, fmt.Errorf("epoch: %w", err)
	}
	_, werr := fmt.Fprintf(f, "%d\n", next)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return 0, fmt.Errorf("epoch: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return 0, fmt.Errorf("epoch: %w", err)
	}
	return next, nil
}

// normalizeSettings collects, per listener, how converting outputs complete
// its messages.
func normalizeSettings(listeners []ListenerConfig) map[string]outputs.Normalize {
	m := make(map[string]outputs.Normalize, len(listeners))
	for _, l := range listeners {
		loc := time.Local
		if l.Timezone != "" {
			if z, err := time.LoadLocation(l.Timezone); err == nil {
				loc = z
			}
		}
		m[l.Name] = outputs.Normalize{Location: loc, FillHostname: *l.FillHostname, AddOrigin: *l.AddOrigin}
	}
	return m
}

func openQueue(dataDir string, oc OutputConfig, log *slog.Logger, m *metrics.Metrics) (*queue.Queue, error) {
	dropped := m.OutputDropped.MustCurryWith(prometheus.Labels{"output": oc.Name})
	qlog := log.With("output", oc.Name)
	q, err := queue.Open(queue.Options{
		Name:            oc.Name,
		Dir:             filepath.Join(dataDir, oc.Name),
		MaxBytesPerFile: int64(oc.Queue.MaxFileSize),
		SyncEvery:       oc.Queue.SyncEvery,
		SyncInterval:    oc.Queue.SyncInterval.Duration,
		BatchMessages:   oc.Queue.BatchMessages,
		BatchBytes:      int(oc.Queue.BatchBytes),
		Linger:          oc.Queue.Linger.Duration,
		MaxBytes:        int64(oc.Queue.MaxBytes),
		FullPolicy:      fullPolicy(oc.Queue.FullPolicy),
		BlockTimeout:    oc.Queue.BlockTimeout.Duration,
		Logf:            func(format string, args ...any) { qlog.Warn(fmt.Sprintf(format, args...)) },
		OnDrop: func(count int, reason string, err error) {
			dropped.WithLabelValues(reason).Add(float64(count))
			if reason != queue.ReasonEvicted {
				qlog.Error("store messages", "dropped", count, "reason", reason, "err", err)
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("output %q: open queue: %w", oc.Name, err)
	}
	return q, nil
}

func newDestination(oc OutputConfig, m *metrics.Metrics) (outputs.Destination, error) {
	if len(oc.Targets) == 0 {
		return newSingleDestination(oc, oc.Address, m)
	}
	mode, err := outputs.ParsePoolMode(oc.Mode)
	if err != nil {
		return nil, err
	}
	var targets []outputs.PoolTarget
	for _, addr := range oc.Targets {
		d, err := newSingleDestination(oc, addr, m)
		if err != nil {
			return nil, err
		}
		targets = append(targets, outputs.PoolTarget{Name: addr, Dest: d})
	}
	return outputs.NewPool(oc.Name, mode, oc.ProbeInterval.Duration, targets, m), nil
}

func newSingleDestination(oc OutputConfig, address string, m *metrics.Metrics) (outputs.Destination, error) {
	switch oc.Protocol {
	case "tcp":
		framing, err := outputs.ParseFraming(oc.Framing)
		if err != nil {
			return nil, err
		}
		return outputs.NewTCP(outputs.TCPOptions{
			Address:        address,
			Framing:        framing,
			ConnectTimeout: oc.ConnectTimeout.Duration,
			WriteTimeout:   oc.WriteTimeout.Duration,
			ConfirmDelay:   oc.ConfirmDelay.Duration,
		}), nil
	case "udp":
		u := outputs.NewUDP(address, oc.ConnectTimeout.Duration)
		tooLarge := m.OutputDropped.WithLabelValues(oc.Name, "too_large")
		u.OnTooLarge = tooLarge.Inc
		return u, nil
	case "relp":
		return outputs.NewRELP(outputs.RELPOptions{
			Address:        address,
			Window:         oc.Window,
			ConnectTimeout: oc.ConnectTimeout.Duration,
			WriteTimeout:   oc.WriteTimeout.Duration,
		}), nil
	case "file":
		return outputs.NewFile(oc.Path), nil
	}
	return nil, fmt.Errorf("unknown protocol %q", oc.Protocol)
}

// ListenerAddr returns the bound address of the named listener, which tells
// tests the port the kernel chose for ":0".
func (s *Server) ListenerAddr(name string) string {
	for _, l := range s.listeners {
		if l.name() == name {
			return l.addr()
		}
	}
	return ""
}

// MetricsAddr returns the bound address of the metrics server, or "".
func (s *Server) MetricsAddr() string {
	if s.httpLn == nil {
		return ""
	}
	return s.httpLn.Addr().String()
}

// Registry returns the registry the relay's metrics are on.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// Run starts every goroutine and serves until ctx ends. Then it stops the
// listeners and waits for their readers, flushes partial queue records,
// stops the output workers (unsent batches stay in the queues' in-flight
// journals), closes the queues and unlocks the data dir. It never waits for
// an upstream. Run returns only when every goroutine it started has ended.
func (s *Server) Run(ctx context.Context) error {
	var httpSrv *http.Server
	var httpDone chan error
	if s.httpLn != nil {
		httpSrv = &http.Server{
			Handler:           metrics.Handler(s.reg, s.ready),
			ReadHeaderTimeout: 10 * time.Second,
		}
		httpDone = make(chan error, 1)
		go func() { httpDone <- httpSrv.Serve(s.httpLn) }()
	}

	workCtx, stopWorkers := context.WithCancel(context.Background())
	defer stopWorkers()
	var workers sync.WaitGroup
	for _, w := range s.workers {
		workers.Add(1)
		go func() {
			defer workers.Done()
			w.Run(workCtx)
		}()
	}

	var readers sync.WaitGroup
	listenCtx, stopListeners := context.WithCancel(context.Background())
	defer stopListeners()
	for _, l := range s.listeners {
		readers.Add(1)
		go func() {
			defer readers.Done()
			l.serve(listenCtx)
		}()
	}

	s.log.Info("relay started", "listeners", len(s.listeners), "outputs", len(s.workers))
	s.notify("READY=1")
	<-ctx.Done()
	start := time.Now()
	s.notify("STOPPING=1")
	s.log.Info("stopping")

	stopListeners()
	for _, l := range s.listeners {
		if err := l.close(); err != nil {
			s.log.Warn("close listener", "listener", l.name(), "err", err)
		}
	}
	readers.Wait()

	var errs []error
	for name, q := range s.queues {
		if err := q.Flush(); err != nil {
			errs = append(errs, fmt.Errorf("flush queue %q: %w", name, err))
		}
	}
	stopWorkers()
	workers.Wait()

	if httpSrv != nil {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = httpSrv.Shutdown(shutdownCtx)
		cancel()
		if err := <-httpDone; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, fmt.Errorf("metrics server: %w", err))
		}
		s.httpLn = nil
	}
	s.listeners = nil
	if err := s.release(); err != nil {
		errs = append(errs, err)
	}
	s.log.Info("stopped", "took", time.Since(start).Round(time.Millisecond))
	return errors.Join(errs...)
}

func fullPolicy(s string) queue.FullPolicy {
	switch s {
	case "drop_newest":
		return queue.DropNewest
	case "drop_oldest":
		return queue.DropOldest
	}
	return queue.Block
}

// ready reports whether the relay can store messages: not while a queue's
// last write failed (a full disk, say). It recovers by itself once a write
// succeeds again.
func (s *Server) ready() error {
	var errs []error
	for name, q := range s.queues {
		if err := q.Err(); err != nil {
			errs = append(errs, fmt.Errorf("output %q cannot write its queue: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// release closes what New opened: listeners not yet closed by Run, queues,
// the metrics socket and the data dir lock.
func (s *Server) release() error {
	var errs []error
	for _, l := range s.listeners {
		_ = l.close()
	}
	s.listeners = nil
	if s.httpLn != nil {
		_ = s.httpLn.Close()
		s.httpLn = nil
	}
	for name, q := range s.queues {
		if err := q.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close queue %q: %w", name, err))
		}
		if s.metrics != nil {
			s.metrics.RemoveQueue(name)
		}
	}
	s.queues = map[string]*queue.Queue{}
	if s.lock != nil {
		_ = syscall.Flock(int(s.lock.Fd()), syscall.LOCK_UN)
		_ = s.lock.Close()
		s.lock = nil
	}
	return errors.Join(errs...)
}

// lockDataDir takes an exclusive lock so that two relays never share the
// same queues. The kernel drops the lock when the process dies, so a
// kill -9 never leaves a stale lock behind.
func lockDataDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, "relay.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("data_dir lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("data_dir %s is in use by another relay (lock %s held)", dir, path)
		}
		return nil, fmt.Errorf("data_dir lock %s: %w", path, err)
	}
	_ = f.Truncate(0)
	_, _ = fmt.Fprintf(f, "%d\n", os.Getpid())
	return f, nil
}
