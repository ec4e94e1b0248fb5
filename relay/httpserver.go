package relay

import (
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Limits of the metrics HTTP server. Whoever reaches metrics.address can
// open connections, and net/http alone bounds none of what they hold: a
// keep-alive connection waits for its next request for ever, a request's
// headers may take 1 MiB, and an answer may wait for ever for a client
// that does not read it. Each is cut here, and the connections together
// are capped, so that the endpoint cannot take the memory or the file
// descriptors the syslog listeners need.
const (
	// httpMaxConns caps the open connections: a scraper or two and an
	// operator's curl need a handful.
	httpMaxConns = 64
	// httpMaxHeaderBytes bounds a request's headers (net/http adds 4 KiB
	// of slack); a scrape sends a few hundred bytes.
	httpMaxHeaderBytes = 8 << 10
	// httpHeaderTimeout bounds the reading of a request's headers.
	httpHeaderTimeout = 10 * time.Second
	// httpWriteTimeout bounds reading a request and writing its answer;
	// Prometheus gives up on a scrape after 10 s by default.
	httpWriteTimeout = 30 * time.Second
	// httpRefusedLogInterval spaces the warnings about refused connections.
	httpRefusedLogInterval = time.Minute
)

// httpIdleTimeout is how long a keep-alive connection may wait for its next
// request; longer than common scrape intervals, so a scraper keeps its
// connection. A variable so that a test can shorten it.
var httpIdleTimeout = 2 * time.Minute

// newHTTPServer returns the metrics server with the limits above; serve
// it on a listener from capConns.
func newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: httpHeaderTimeout,
		WriteTimeout:      httpWriteTimeout,
		IdleTimeout:       httpIdleTimeout,
		MaxHeaderBytes:    httpMaxHeaderBytes,
	}
}

// capConns returns ln limited to max open connections: a connection
// accepted beyond them is closed at once, unanswered, and a warning says
// so (at most once per httpRefusedLogInterval).
func capConns(ln net.Listener, max int, log *slog.Logger) net.Listener {
	return &cappedListener{Listener: ln, slots: make(chan struct{}, max), log: log}
}

type cappedListener struct {
	net.Listener
	slots    chan struct{}
	log      *slog.Logger
	refused  atomic.Int64
	lastWarn atomic.Int64 // unix nanoseconds of the last warning
}

func (l *cappedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &slotConn{Conn: c, release: func() { <-l.slots }}, nil
		default:
		}
		// Closing at once rather than leaving the connection in the
		// backlog: the client learns at once, and connections that
		// stay open cannot make the accept loop wait for them.
		c.Close()
		n := l.refused.Add(1)
		now := time.Now().UnixNano()
		if last := l.lastWarn.Load(); now-last >= int64(httpRefusedLogInterval) && l.lastWarn.CompareAndSwap(last, now) {
			l.log.Warn("metrics server: too many open connections; refusing new ones",
				"max_connections", cap(l.slots), "refused_since_start", n, "remote", c.RemoteAddr().String())
		}
	}
}

// slotConn gives its slot back when it is closed, once.
type slotConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *slotConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// CloseWrite lets net/http half-close before its final close, as it does
// on a bare TCP connection.
func (c *slotConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
