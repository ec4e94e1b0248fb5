package relay

import (
	"container/list"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"
)

// connSet tracks the open connections of a stream listener: it enforces
// max_connections (making room as slots.go describes), keeps the
// connections gauge true, and lets close reach every connection. The zero
// value is not usable; see newConnSet.
type connSet struct {
	max   int // 0: no limit
	gauge interface{ Set(float64) }

	mu     sync.Mutex
	conns  map[net.Conn]*connSlot
	silent list.List     // of *connSlot that have sent nothing yet, oldest first
	room   chan struct{} // signalled, without blocking, when a slot frees
	done   chan struct{} // closed by closeAll
	closed bool
}

func newConnSet(max int, gauge interface{ Set(float64) }) *connSet {
	return &connSet{max: max, gauge: gauge, conns: map[net.Conn]*connSlot{},
		room: make(chan struct{}, 1), done: make(chan struct{})}
}

// add registers c and returns its slot. At max_connections it evicts a
// connection first, reporting it through evicted; when none may be evicted
// yet it calls full once and waits (see slots.go). It returns nil, with c
// closed, when the set is closed or ctx ends first.
func (s *connSet) add(ctx context.Context, c net.Conn, full func(), evicted func(v *connSlot, silent bool)) *connSlot {
	waited := false
	for {
		s.mu.Lock()
		if s.closed || ctx.Err() != nil {
			s.mu.Unlock()
			c.Close()
			return nil
		}
		now := time.Now()
		var next time.Time
		room := s.max == 0 || len(s.conns) < s.max
		var v *connSlot
		var silent bool
		if !room {
			if v, silent, next = s.victim(now); v != nil {
				s.evict(v)
				room = true
			}
		}
		if room {
			sl := &connSlot{c: c, set: s, since: now}
			sl.elem = s.silent.PushBack(sl)
			s.conns[c] = sl
			s.gauge.Set(float64(len(s.conns)))
			s.mu.Unlock()
			if v != nil {
				evicted(v, silent)
			}
			return sl
		}
		s.mu.Unlock()
		if !waited {
			waited = true
			full()
		}
		s.wait(ctx, next.Sub(now))
	}
}

// wait returns when a slot frees, after d (d <= 0: no limit), or when the
// set is closed or ctx ends.
func (s *connSet) wait(ctx context.Context, d time.Duration) {
	var wake <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		wake = t.C
	}
	select {
	case <-s.room:
	case <-wake:
	case <-s.done:
	case <-ctx.Done():
	}
}

// remove closes c and forgets it.
func (s *connSet) remove(c net.Conn) {
	c.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	if sl := s.conns[c]; sl != nil {
		s.unlinkSilent(sl)
		delete(s.conns, c)
	}
	s.gauge.Set(float64(len(s.conns)))
	select {
	case s.room <- struct{}{}:
	default:
	}
}

// closeAll marks the set closed (later adds fail) and calls each on every
// open connection. It reports whether it was the first call.
func (s *connSet) closeAll(each func(net.Conn)) (first bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	first = !s.closed
	if first {
		close(s.done)
	}
	s.closed = true
	for c := range s.conns {
		each(c)
	}
	return first
}

// connServer is the accepting side the stream listeners (tcp, tls, relp)
// share: the accept loop with backoff, allowed_networks, max_connections,
// and one handler goroutine per connection, all waited for when the loop
// ends.
type connServer struct {
	ln       net.Listener
	in       *ingest
	log      *slog.Logger
	warn     *logLimiter
	acl      *accessControl // nil: every sender, no rate limit
	conns    *connSet
	maxConns int            // max_connections, for the log line
	wg       sync.WaitGroup // one per connection handler
}

// init sets s up for the listener cfg, before it is bound.
func (s *connServer) init(cfg ListenerConfig, in *ingest, gauge interface{ Set(float64) }, log *slog.Logger) error {
	acl, err := newAccessControl(cfg)
	if err != nil {
		return err
	}
	s.in, s.acl = in, acl
	s.log = log.With("listener", cfg.Name)
	s.warn = newLogLimiter(s.log)
	s.conns, s.maxConns = newConnSet(cfg.MaxConnections, gauge), cfg.MaxConnections
	return nil
}

// serve accepts connections until the listener is closed, runs handle for
// each in its own goroutine, then waits for every handler to end.
func (s *connServer) serve(ctx context.Context, handle func(c net.Conn, addr netip.Addr, slot *connSlot)) {
	defer s.wg.Wait()
	errs := socketErrors{what: "accept", log: s.log}
	for {
		c, ok := s.accept(ctx, &errs)
		if !ok {
			return
		}
		addr := remoteAddr(c)
		if !s.acl.allows(addr) {
			s.refuse(c)
			continue
		}
		slot := s.track(ctx, c)
		if slot == nil {
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.conns.remove(c)
			handle(c, addr, slot)
		}()
	}
}

// refuse counts and resets the connection of a sender outside
// allowed_networks.
func (s *connServer) refuse(c net.Conn) {
	s.in.countError("denied")
	s.warn.warn("connection refused: sender not in allowed_networks", "remote", c.RemoteAddr().String())
	// A reset rather than a FIN: no TIME_WAIT state is kept for a sender
	// that is not welcome.
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}

// track registers c, making room at max_connections (see slots.go); it
// returns nil when the listener closes first.
func (s *connServer) track(ctx context.Context, c net.Conn) *connSlot {
	return s.conns.add(ctx, c, func() {
		s.in.countError("too_many_connections")
		s.warn.warn("max_connections reached and no connection may be evicted yet: new connections wait in the kernel's backlog",
			"remote", c.RemoteAddr().String(), "max_connections", s.maxConns)
	}, func(v *connSlot, silent bool) {
		reason, what, since := "evicted_idle", "idle", time.Unix(0, v.last.Load())
		if silent {
			reason, what, since = "evicted_silent", "silent", v.since
		}
		s.in.countError(reason)
		s.warn.warn("max_connections reached: closed the connection "+what+" longest to admit a new one",
			"evicted", v.c.RemoteAddr().String(), what+"_for", time.Since(since).Round(time.Millisecond),
			"admitted", c.RemoteAddr().String(), "max_connections", s.maxConns)
	})
}

// accept returns the next connection, or false once the listener is closed
// or ctx ends. Other errors (out of file descriptors and the like) are
// counted as accept_error and retried with backoff.
func (s *connServer) accept(ctx context.Context, errs *socketErrors) (net.Conn, bool) {
	for {
		c, err := s.ln.Accept()
		if err == nil {
			errs.succeeded()
			return c, true
		}
		if errors.Is(err, net.ErrClosed) {
			return nil, false
		}
		s.in.countError("accept_error")
		t := time.NewTimer(errs.failed(err, time.Now()))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, false
		}
	}
}

// socketErrors paces a loop that accepts from or reads a socket through a
// fault that persists, as net/http's Serve does for Accept: the first retry
// comes after minRetryDelay, each further one after twice as long, at most
// maxRetryDelay, until a call succeeds. The first error of a kind (an errno
// such as EMFILE) is logged at once; more of that kind are counted and
// logged with their count at most once per socketErrorLogInterval, so a
// fault neither spins nor floods the log.
type socketErrors struct {
	what  string // "accept" or "read", for the log line
	log   *slog.Logger
	delay time.Duration        // the wait after the last error; 0 after a success
	kinds map[string]*errorLog // by errorKind
}

type errorLog struct {
	logged   time.Time // when an error of this kind was last logged
	unlogged int       // errors of this kind since then
}

const (
	minRetryDelay          = 5 * time.Millisecond
	maxRetryDelay          = time.Second
	socketErrorLogInterval = time.Minute
	// maxErrorKinds bounds the kinds remembered; past it they are
	// forgotten and each is logged at once again.
	maxErrorKinds = 16
)

// retryDelay returns the wait after an error that followed a wait of prev
// (0 for the first error after a success).
func retryDelay(prev time.Duration) time.Duration {
	return min(max(2*prev, minRetryDelay), maxRetryDelay)
}

// failed records err, logs it when it is the first of its kind or the
// kind's interval has passed, and returns how long to wait before the next
// try.
func (e *socketErrors) failed(err error, now time.Time) time.Duration {
	e.delay = retryDelay(e.delay)
	kind := errorKind(err)
	k := e.kinds[kind]
	if k == nil {
		if e.kinds == nil || len(e.kinds) >= maxErrorKinds {
			e.kinds = map[string]*errorLog{}
		}
		k = &errorLog{}
		e.kinds[kind] = k
	}
	k.unlogged++
	if k.logged.IsZero() || now.Sub(k.logged) >= socketErrorLogInterval {
		e.log.Warn(e.what+" failed; retrying with backoff", "err", err, "errors_since_last_line", k.unlogged,
			"retry_in", e.delay, "next_line_in", socketErrorLogInterval)
		k.logged, k.unlogged = now, 0
	}
	return e.delay
}

// succeeded ends a run of errors: the next one is retried after
// minRetryDelay again.
func (e *socketErrors) succeeded() {
	if e.delay != 0 {
		e.delay = 0
	}
}

// errorKind names what went wrong in err for the log: its errno when it has
// one, which leaves out the addresses that vary from one error to the next.
func errorKind(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	return err.Error()
}
