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
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relay-syslog/relay/metrics"
	"github.com/relay-syslog/relay/outputs"
	"github.com/relay-syslog/relay/queue"
)

// DefaultConfirmWindow is how many bytes an output holds written but not yet
// confirmed (outputs.WorkerOptions.MaxUnsettledBytes).
const DefaultConfirmWindow = outputs.DefaultMaxUnsettledBytes

// Options are the parts of a Server that are not configuration.
type Options struct {
	Logger *slog.Logger
	// Registry receives the relay's metrics; a fresh one is made when nil.
	Registry *prometheus.Registry
	// Notify, when set, is told "READY=1" once every listener serves,
	// "RELOADING=1" and "READY=1" around a reload, and "STOPPING=1" when
	// the stop begins (systemd's notify protocol).
	Notify func(state string)
}

// Server is a running relay. New prepares it; Run serves until its context
// ends and then shuts everything down in order. Reload changes listeners,
// routes and outputs while it runs. A Server that is not run is released
// by Close.
type Server struct {
	log     *slog.Logger
	reg     *prometheus.Registry
	metrics *metrics.Metrics
	notify  func(state string)

	lock   *os.File
	epoch  uint32
	seq    atomic.Uint64 // numbers every message across router generations
	dedup  *dedup        // shared by every listener with dedup, made on first use
	kafka  *kafkaMetrics // shared by the kafka listeners, made on first use
	router atomic.Pointer[router]

	// The fields below belong to the goroutine running New, then Run (which
	// applies reloads itself); mu lets the accessors read them from others.
	mu        sync.Mutex
	cfg       *Config
	outputs   map[string]*outputState
	listeners map[string]*listenerState
	httpLn    net.Listener

	// state is where the Server is in its life; mu guards it, stopRun and
	// runDone (which Run sets for Close).
	state   serverState
	stopRun context.CancelFunc // ends the context Run serves on
	runDone chan struct{}      // closed when Run has returned

	// While Run runs: the contexts its goroutines get, and their groups.
	workCtx   context.Context
	listenCtx context.Context
	workers   sync.WaitGroup
	readers   sync.WaitGroup
	reloads   chan reloadRequest
	serving   chan struct{} // closed when Run starts taking reloads
	stopped   chan struct{} // closed when Run stops taking reloads, or by Close before Run
}

type serverState int

const (
	stateNew     serverState = iota // made by New, not yet run
	stateRunning                    // Run serves
	stateDone                       // Run has returned, or Close released a Server never run
)

// errRunOnce is returned by Run on a Server that was run or closed before.
var errRunOnce = errors.New("relay: Run on a Server that has already run or been closed")

// outputState is one output with its queue and its running worker.
type outputState struct {
	cfg    OutputConfig
	queue  *queue.Queue
	worker *outputs.Worker
	stop   context.CancelFunc // ends the worker's Run
	done   chan struct{}      // closed when the worker's Run has returned
}

// listenerState is one bound listener and its serving goroutine.
type listenerState struct {
	cfg  ListenerConfig
	l    listener
	done chan struct{} // closed when serve has returned
	// retired are the listeners that served the same socket before reloads
	// (newest first): they no longer accept, and serve the connections they
	// accepted until those end.
	retired []*listenerState
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
	s := &Server{
		cfg: cfg, log: opts.Logger, reg: opts.Registry, notify: opts.Notify,
		outputs:   map[string]*outputState{},
		listeners: map[string]*listenerState{},
		reloads:   make(chan reloadRequest),
		serving:   make(chan struct{}),
		stopped:   make(chan struct{}),
	}
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
	if s.epoch, err = nextEpoch(cfg.DataDir); err != nil {
		return nil, err
	}
	s.log.Info("relay run", "relay_id", cfg.RelayID, "epoch", s.epoch)
	if err = sharedQueueDir(cfg.DataDir, cfg.Outputs); err != nil {
		return nil, err
	}
	for _, oc := range cfg.Outputs {
		q, err := openQueue(cfg.DataDir, oc, s.log, s.metrics)
		if err != nil {
			return nil, err
		}
		s.outputs[oc.Name] = &outputState{cfg: oc, queue: q}
		s.metrics.AddQueue(oc.Name, q)
		if s.outputs[oc.Name].worker, err = s.newWorker(cfg, oc, q); err != nil {
			return nil, err
		}
	}
	s.router.Store(s.newRouter(cfg))
	if err = s.reg.Register(newUDPDropsCollector(s.udpSockets)); err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	for _, lc := range cfg.Listeners {
		l, err := s.newListener(lc, nil)
		if err != nil {
			return nil, err
		}
		s.listeners[lc.Name] = &listenerState{cfg: lc, l: l}
	}
	if cfg.Metrics.Address != "" {
		if s.httpLn, err = net.Listen("tcp", cfg.Metrics.Address); err != nil {
			return nil, fmt.Errorf("metrics.address: %w", err)
		}
		s.log.Info("serving metrics", "address", s.httpLn.Addr().String())
	}
	return s, nil
}

// newWorker makes the worker of output oc, reading q.
func (s *Server) newWorker(cfg *Config, oc OutputConfig, q *queue.Queue) (*outputs.Worker, error) {
	var dest outputs.Destination
	var err error
	if oc.Protocol == ProtocolKafka {
		dest, err = newKafkaDestination(oc, cfg.RelayID, s.metrics, s.log)
	} else {
		dest, err = newDestination(oc, s.metrics, s.log)
	}
	if err != nil {
		return nil, fmt.Errorf("output %q: %w", oc.Name, err)
	}
	var tmpl *outputs.Template
	if oc.Template != "" {
		if tmpl, err = outputs.ParseTemplate(oc.Template); err != nil {
			return nil, fmt.Errorf("output %q: template: %w", oc.Name, err)
		}
	}
	return outputs.NewWorker(outputs.WorkerOptions{
		Name:              oc.Name,
		RetryInitial:      oc.RetryInitial.Duration,
		RetryMax:          oc.RetryMax.Duration,
		MaxUnsettledBytes: DefaultConfirmWindow,
		StallTimeout:      stallTimeout(oc),
		Format:            oc.Format,
		Normalize:         normalizeSettings(cfg.Listeners),
		StampOrigin:       stampOrigin(oc, cfg.RelayID),
		Template:          tmpl,
	}, q, dest, s.metrics, s.log), nil
}

// stallTimeout is how long an output's written messages may wait with
// nothing confirmed: write_timeout, where the protocol has one.
func stallTimeout(oc OutputConfig) time.Duration {
	switch oc.Protocol {
	case ProtocolTCP, ProtocolTLS, ProtocolRELP, ProtocolKafka:
		return oc.WriteTimeout.Duration
	}
	return 0
}

// udpSockets lists the UDP listener sockets, for the kernel drops metric.
func (s *Server) udpSockets() []udpSocket {
	s.mu.Lock()
	defer s.mu.Unlock()
	var socks []udpSocket
	for name, ls := range s.listeners {
		if d, ok := ls.l.(*datagramListener); ok {
			if c, ok := d.conn.(*net.UDPConn); ok {
				socks = append(socks, udpSocket{listener: name, conn: c})
			}
		}
	}
	return socks
}

// newRouter compiles cfg's routes over the current outputs' queues.
func (s *Server) newRouter(cfg *Config) *router {
	queues := make(map[string]*queue.Queue, len(s.outputs))
	for name, o := range s.outputs {
		queues[name] = o.queue
	}
	r := newRouter(cfg, queues, s.metrics, s.log)
	r.epoch, r.seq = s.epoch, &s.seq
	return r
}

// newListener binds the listener lc or, when prev is not nil, builds it on
// a duplicate of prev's socket, sharing prev's connection slots (a reload
// that keeps the socket: see listener_reload.go). Its ingest reads the
// current router for every message, so a reload's new routes apply at once.
func (s *Server) newListener(lc ListenerConfig, prev listener) (_ listener, err error) {
	ln, pc, err := dupSocket(prev)
	if err != nil {
		return nil, fmt.Errorf("listener %q: keep the socket: %w", lc.Name, err)
	}
	defer func() {
		if err != nil {
			closeSocket(ln, pc)
		}
	}()
	in := newIngest(lc.Name, &s.router, s.metrics)
	in.exportReasons(listenerReasons(lc))
	if lc.Dedup {
		if s.dedup == nil {
			d, err := newDedup(s.cfg.DedupWindow, s.reg, s.cfg.DataDir, s.log)
			if err != nil {
				return nil, fmt.Errorf("register dedup metrics: %w", err)
			}
			s.dedup = d
		}
		in.dedup = s.dedup
	}
	var l listener
	gauge := &connGauge{g: s.metrics.ListenerConnections.WithLabelValues(lc.Name)}
	switch lc.Protocol {
	case ProtocolUDP, ProtocolUnix:
		l, err = newDatagramListener(lc, in, s.log, pc)
	case ProtocolTCP, ProtocolTLS:
		l, err = newTCPListener(lc, in, gauge, s.log, ln)
	case ProtocolRELP:
		l, err = newRELPListener(lc, in, gauge, s.log, ln)
	case ProtocolKafka:
		if s.kafka == nil {
			if s.kafka, err = newKafkaMetrics(s.reg); err != nil {
				return nil, fmt.Errorf("register kafka metrics: %w", err)
			}
		}
		l, err = newKafkaListener(lc, in, s.kafka, s.log)
	default:
		err = fmt.Errorf("unknown protocol %q", lc.Protocol)
	}
	if err != nil {
		return nil, fmt.Errorf("listener %q: %w", lc.Name, err)
	}
	if prev != nil {
		shareConnections(l, prev)
	}
	return l, nil
}

func stampOrigin(oc OutputConfig, relayID string) string {
	if !oc.StampSequence {
		return ""
	}
	return relayID
}

// epochFileName is the file in data_dir that holds the last epoch.
const epochFileName = "epoch"

// nextEpoch counts this run of the relay: it reads the number of the last
// run from data_dir/epoch, adds one and stores it (fsynced) before any
// message is stamped with it. Sequence numbers restart with every run, and
// the epoch keeps a receiver from mistaking a new run's numbers for
// duplicates of the last one's.
//
// The number is written to a new file that replaces the old one. On a disk
// full of the relay's own backlog that new file cannot be written, and a
// relay that then refused to start would never send the backlog that
// frees the space; so the old file, whose block is already allocated, is
// overwritten in place instead (a few bytes within one block).
func nextEpoch(dataDir string) (uint32, error) {
	path := filepath.Join(dataDir, epochFileName)
	var last uint64
	if b, err := os.ReadFile(path); err == nil {
		last, _ = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 32)
	}
	next := uint32(last + 1)
	if next == 0 {
		next = 1
	}
	content := []byte(strconv.FormatUint(uint64(next), 10) + "\n")
	err := replaceFile(path, content)
	if err == nil {
		return next, nil
	}
	if last == 0 {
		return 0, fmt.Errorf("epoch: %w", err)
	}
	if ierr := overwriteFile(path, content); ierr != nil {
		return 0, fmt.Errorf("epoch: %w", errors.Join(err, ierr))
	}
	return next, nil
}

// replaceFile writes content to a new file and renames it to path; on
// failure it removes the new file.
func replaceFile(path string, content []byte) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	_, werr := f.Write(content)
	serr := f.Sync()
	cerr := f.Close()
	err = errors.Join(werr, serr, cerr)
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}

// overwriteFile writes content over the start of the existing file path,
// cuts it to that length and syncs it.
func overwriteFile(path string, content []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, werr := f.WriteAt(content, 0)
	terr := f.Truncate(int64(len(content)))
	serr := f.Sync()
	cerr := f.Close()
	return errors.Join(werr, terr, serr, cerr)
}

// normalizeSettings collects, per listener, how converting outputs complete
// its messages.
func normalizeSettings(listeners []ListenerConfig) map[string]outputs.Normalize {
	m := make(map[string]outputs.Normalize, len(listeners))
	for _, l := range listeners {
		m[l.Name] = outputs.Normalize{Location: l.Timezone.Location(), FillHostname: *l.FillHostname, AddOrigin: *l.AddOrigin}
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
		Fsync:           oc.Queue.Fsync,
		MaxBytes:        int64(oc.Queue.MaxBytes),
		FullPolicy:      oc.Queue.FullPolicy,
		BlockTimeout:    oc.Queue.BlockTimeout.Duration,
		Logf:            func(format string, args ...any) { qlog.Warn(fmt.Sprintf(format, args...)) },
		Infof:           func(format string, args ...any) { qlog.Info(fmt.Sprintf(format, args...)) },
		Debugf:          func(format string, args ...any) { qlog.Debug(fmt.Sprintf(format, args...)) },
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

func newDestination(oc OutputConfig, m *metrics.Metrics, log *slog.Logger) (outputs.Destination, error) {
	if len(oc.Targets) == 0 {
		return newSingleDestination(oc, oc.Address, m, log)
	}
	var targets []outputs.PoolTarget
	for _, addr := range oc.Targets {
		d, err := newSingleDestination(oc, addr, m, log)
		if err != nil {
			return nil, err
		}
		targets = append(targets, outputs.PoolTarget{Name: addr, Dest: d})
	}
	return outputs.NewPool(oc.Name, oc.Mode, oc.ProbeInterval.Duration, targets, m, log.With("output", oc.Name)), nil
}

// unreachableLogEvery is how often a UDP output whose datagrams keep being
// refused logs it.
const unreachableLogEvery = time.Minute

// unreachableReporter counts a datagram a UDP output's upstream refused
// (ICMP port or host unreachable) and logs a warning: at the first
// refusal, then at most once every unreachableLogEvery with the refusals
// since. UDP has no confirmation, so the output goes on sending (and
// relay_output_up stays 1); without the line, an upstream that is not
// listening would lose every message with only a counter to tell.
func unreachableReporter(dropped prometheus.Counter, log *slog.Logger, output, address string) func() {
	var (
		mu   sync.Mutex
		last time.Time
		n    int
	)
	return func() {
		dropped.Inc()
		mu.Lock()
		defer mu.Unlock()
		n++
		if now := time.Now(); last.IsZero() || now.Sub(last) >= unreachableLogEvery {
			log.Warn("udp upstream refuses datagrams (ICMP unreachable: nothing listens there, or no route); what it refuses is lost, counted in relay_output_messages_dropped_total{reason=\"unreachable\"}",
				"output", output, "address", address, "refusals", n)
			last, n = now, 0
		}
	}
}

func newSingleDestination(oc OutputConfig, address string, m *metrics.Metrics, log *slog.Logger) (outputs.Destination, error) {
	switch oc.Protocol {
	case ProtocolTCP, ProtocolTLS:
		opts := outputs.TCPOptions{
			Address:        address,
			Framing:        oc.Framing,
			ConnectTimeout: oc.ConnectTimeout.Duration,
			WriteTimeout:   oc.WriteTimeout.Duration,
			ConfirmDelay:   oc.ConfirmDelay.Duration,
		}
		if oc.Protocol == ProtocolTLS {
			var err error
			if opts.TLS, err = newOutputTLS(oc, address, log); err != nil {
				return nil, err
			}
		}
		return outputs.NewTCP(opts), nil
	case ProtocolUDP:
		u := outputs.NewUDP(address, oc.ConnectTimeout.Duration)
		tooLarge := m.OutputDropped.WithLabelValues(oc.Name, "too_large")
		u.OnTooLarge = tooLarge.Inc
		u.OnUnreachable = unreachableReporter(m.OutputDropped.WithLabelValues(oc.Name, "unreachable"), log, oc.Name, address)
		return u, nil
	case ProtocolRELP:
		opts := outputs.RELPOptions{
			Address:        address,
			Window:         oc.Window,
			ConnectTimeout: oc.ConnectTimeout.Duration,
			WriteTimeout:   oc.WriteTimeout.Duration,
		}
		if oc.TLS.Enable {
			var err error
			if opts.TLS, err = newOutputTLS(oc, address, log); err != nil {
				return nil, err
			}
		}
		return outputs.NewRELP(opts), nil
	case ProtocolFile:
		opts := outputs.FileOptions{Path: oc.Path, MaxOpenFiles: oc.MaxOpenFiles, Fsync: oc.Fsync,
			KeepControl: oc.EscapeControl != nil && !*oc.EscapeControl}
		if oc.FileMode != nil {
			opts.FileMode = os.FileMode(*oc.FileMode)
		}
		if oc.DirMode != nil {
			opts.DirMode = os.FileMode(*oc.DirMode)
		}
		return outputs.NewFileWith(opts)
	}
	return nil, fmt.Errorf("unknown protocol %q", oc.Protocol)
}

// newKafkaDestination makes the destination of a kafka output. Records
// that wait write_timeout in the client fail, and their queue record goes
// out again on a new client.
func newKafkaDestination(oc OutputConfig, relayID string, m *metrics.Metrics, log *slog.Logger) (outputs.Destination, error) {
	opts := outputs.KafkaOptions{
		Brokers:          oc.Brokers,
		Topic:            oc.Topic,
		Key:              oc.Key,
		RelayID:          relayID,
		StampOrigin:      stampOrigin(oc, relayID),
		Compression:      oc.Compression,
		SASLMechanism:    oc.SASL.Mechanism,
		SASLUsername:     oc.SASL.Username,
		SASLPasswordFile: oc.SASL.PasswordFile,
		ConnectTimeout:   oc.ConnectTimeout.Duration,
		DeliveryTimeout:  oc.WriteTimeout.Duration,
		OnTooLarge:       m.OutputDropped.WithLabelValues(oc.Name, "too_large").Inc,
		OnProduceError:   func(code string) { m.KafkaProduceErrors.WithLabelValues(oc.Name, code).Inc() },
		Log:              log.With("output", oc.Name),
	}
	if oc.TLS.Enable {
		build, err := newKafkaTLS(fmt.Sprintf("output %q", oc.Name), oc.TLS, oc.Brokers, log.With("output", oc.Name))
		if err != nil {
			return nil, err
		}
		opts.TLS = build
	}
	return outputs.NewKafka(opts)
}

// ListenerAddr returns the bound address of the named listener, which tells
// tests the port the kernel chose for ":0".
func (s *Server) ListenerAddr(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ls := s.listeners[name]; ls != nil {
		return ls.l.addr()
	}
	return ""
}

// MetricsAddr returns the bound address of the metrics server, or "".
func (s *Server) MetricsAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.httpLn == nil {
		return ""
	}
	return s.httpLn.Addr().String()
}

// Registry returns the registry the relay's metrics are on.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// Run starts every goroutine and serves until ctx ends, applying reloads
// as they come. Then it stops the listeners and waits for their readers,
// flushes partial queue records, stops the output workers (unsent batches
// stay in the queues' in-flight journals), closes the queues and unlocks
// the data dir. It never waits for an upstream. Run returns only when every
// goroutine it started has ended.
func (s *Server) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.state != stateNew {
		s.mu.Unlock()
		return errRunOnce
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.state, s.stopRun, s.runDone = stateRunning, cancel, make(chan struct{})
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.state = stateDone
		s.mu.Unlock()
		close(s.runDone)
	}()

	var httpSrv *http.Server
	var httpDone chan error
	if s.httpLn != nil {
		httpSrv = newHTTPServer(metrics.Handler(s.reg, s.ready))
		httpDone = make(chan error, 1)
		ln := capConns(s.httpLn, httpMaxConns, s.log)
		go func() { httpDone <- httpSrv.Serve(ln) }()
	}

	workCtx, stopWorkers := context.WithCancel(context.Background())
	defer stopWorkers()
	listenCtx, stopListeners := context.WithCancel(context.Background())
	defer stopListeners()
	s.workCtx, s.listenCtx = workCtx, listenCtx
	for _, o := range s.outputs {
		s.startWorker(o)
	}
	for _, ls := range s.listeners {
		s.startListener(ls)
	}

	s.log.Info("relay started", "listeners", len(s.listeners), "outputs", len(s.outputs))
	s.notify("READY=1")
	close(s.serving)
	for running := true; running; {
		select {
		case <-ctx.Done():
			running = false
		case req := <-s.reloads:
			s.notify("RELOADING=1")
			req.result <- s.apply(req.cfg)
			s.notify("READY=1")
		}
	}
	close(s.stopped)
	start := time.Now()
	s.notify("STOPPING=1")
	s.log.Info("stopping")

	stopListeners()
	for _, ls := range s.listeners {
		if err := ls.close(); err != nil {
			s.log.Warn("close listener", "listener", ls.cfg.Name, "err", err)
		}
	}
	s.readers.Wait()
	if s.dedup != nil {
		s.dedup.save()
	}

	var errs []error
	for name, o := range s.outputs {
		if err := o.queue.Flush(); err != nil {
			errs = append(errs, fmt.Errorf("flush queue %q: %w", name, err))
		}
	}
	stopWorkers()
	s.workers.Wait()

	if httpSrv != nil {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = httpSrv.Shutdown(shutdownCtx)
		cancel()
		if err := <-httpDone; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, fmt.Errorf("metrics server: %w", err))
		}
		s.mu.Lock()
		s.httpLn = nil
		s.mu.Unlock()
	}
	s.mu.Lock()
	s.listeners = map[string]*listenerState{}
	s.mu.Unlock()
	if err := s.release(); err != nil {
		errs = append(errs, err)
	}
	s.log.Info("stopped", "took", time.Since(start).Round(time.Millisecond))
	return errors.Join(errs...)
}

// Close releases what New opened (the data dir lock, the queues, the bound
// sockets) for a Server that is never run. While Run runs, Close stops it,
// as the end of Run's context does, and waits for Run to return; Run
// reports the outcome. After Run has returned, and when called again, Close
// does nothing.
func (s *Server) Close() error {
	s.mu.Lock()
	switch s.state {
	case stateNew:
		s.state = stateDone
		close(s.stopped)
		s.mu.Unlock()
		return s.release()
	case stateRunning:
		stop, done := s.stopRun, s.runDone
		s.mu.Unlock()
		stop()
		<-done
		return nil
	default:
		s.mu.Unlock()
		return nil
	}
}

// startWorker runs o's worker until its own stop or the end of Run.
func (s *Server) startWorker(o *outputState) {
	ctx, stop := context.WithCancel(s.workCtx)
	o.stop, o.done = stop, make(chan struct{})
	s.workers.Add(1)
	go func() {
		defer s.workers.Done()
		defer close(o.done)
		o.worker.Run(ctx)
	}()
}

// startListener serves ls until it is closed.
func (s *Server) startListener(ls *listenerState) {
	ls.done = make(chan struct{})
	s.readers.Add(1)
	go func() {
		defer s.readers.Done()
		defer close(ls.done)
		ls.l.serve(s.listenCtx)
	}()
}

// ready reports whether the relay can store messages: not while a queue's
// last write failed (a full disk, say). It recovers by itself once a write
// succeeds again.
func (s *Server) ready() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for name, o := range s.outputs {
		if err := o.queue.Err(); err != nil {
			errs = append(errs, fmt.Errorf("output %q cannot write its queue: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// release closes what New opened: listeners not yet closed by Run, queues,
// the metrics socket and the data dir lock.
func (s *Server) release() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, ls := range s.listeners {
		_ = ls.close()
	}
	s.listeners = map[string]*listenerState{}
	if s.httpLn != nil {
		_ = s.httpLn.Close()
		s.httpLn = nil
	}
	for name, o := range s.outputs {
		if err := o.queue.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close queue %q: %w", name, err))
		}
		if s.metrics != nil {
			s.metrics.RemoveQueue(name)
		}
	}
	s.outputs = map[string]*outputState{}
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
	path := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("data_dir lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, inUseError(dir, path)
		}
		return nil, fmt.Errorf("data_dir lock %s: %w", path, err)
	}
	_ = f.Truncate(0)
	_, _ = fmt.Fprintf(f, "%d\n", os.Getpid())
	return f, nil
}
