package relay

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/relay-syslog/relay/relay/syslog"
)

// tcpListener accepts syslog over TCP with RFC 6587 framing, detected per
// frame (octet counting or LF-terminated).
type tcpListener struct {
	cfg ListenerConfig
	ln  net.Listener
	in  *ingest
	log *slog.Logger

	connections interface{ Set(float64) }

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup // one per connection handler
}

func newTCPListener(cfg ListenerConfig, in *ingest, gauge interface{ Set(float64) }, log *slog.Logger) (*tcpListener, error) {
	ln, err := net.Listen("tcp", cfg.Address)
	if err != nil {
		return nil, err
	}
	l := &tcpListener{
		cfg: cfg, ln: ln, in: in, connections: gauge,
		log:   log.With("listener", cfg.Name),
		conns: map[net.Conn]struct{}{},
	}
	l.log.Info("listening", "protocol", "tcp", "address", l.addr())
	return l, nil
}

func (l *tcpListener) name() string { return l.cfg.Name }
func (l *tcpListener) addr() string { return l.ln.Addr().String() }

// serve accepts connections until the listener is closed, then waits for
// every connection handler to end.
func (l *tcpListener) serve(ctx context.Context) {
	defer l.wg.Wait()
	var delay time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off instead of
			// spinning, as net/http does.
			l.in.countError("accept_error")
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			l.log.Warn("accept", "err", err, "retry_in", delay)
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return
			}
			continue
		}
		delay = 0
		if !l.track(c) {
			continue
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer l.untrack(c)
			l.handle(c)
		}()
	}
}

// track registers c, or refuses it when the listener is closing or full.
func (l *tcpListener) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		c.Close()
		return false
	}
	if l.cfg.MaxConnections > 0 && len(l.conns) >= l.cfg.MaxConnections {
		l.in.countError("too_many_connections")
		c.Close()
		return false
	}
	l.conns[c] = struct{}{}
	l.connections.Set(float64(len(l.conns)))
	return true
}

func (l *tcpListener) untrack(c net.Conn) {
	c.Close()
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.conns, c)
	l.connections.Set(float64(len(l.conns)))
}

// handle reads frames from one connection until it ends.
func (l *tcpListener) handle(c net.Conn) {
	source := c.RemoteAddr().String()
	fr := syslog.NewFrameReader(c, int(l.cfg.MaxMessageSize))
	idle := l.cfg.IdleTimeout.Duration
	for {
		// The deadline is moved only when the next frame needs a read from
		// the socket, which keeps the per-message path cheap.
		if idle > 0 && fr.Buffered() == 0 {
			_ = c.SetReadDeadline(time.Now().Add(idle))
		}
		msg, truncated, err := fr.Next()
		if len(msg) > 0 {
			if truncated {
				l.in.countError("truncated")
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				l.in.countError("incomplete_frame")
			}
			l.in.handle(msg, source, time.Now())
		}
		if err != nil {
			switch {
			case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
			case errors.Is(err, os.ErrDeadlineExceeded):
				l.in.countError("idle_timeout")
			default:
				l.in.countError("read_error")
				l.log.Debug("connection ended", "remote", source, "err", err)
			}
			return
		}
	}
}

// close stops accepting and closes every open connection; serve returns
// once their handlers have ended.
func (l *tcpListener) close() error {
	err := l.ln.Close()
	l.mu.Lock()
	l.closed = true
	for c := range l.conns {
		c.Close()
	}
	l.mu.Unlock()
	return err
}

func socketMode(s string) os.FileMode {
	m, err := strconv.ParseUint(s, 8, 32)
	if err != nil {
		return 0o666
	}
	return os.FileMode(m)
}
