package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relay-syslog/relay/internal/syslog"
)

// datagramListener receives one message per datagram, over UDP (RFC 5426)
// or a Unix datagram socket (the /dev/log kind).
type datagramListener struct {
	cfg     ListenerConfig
	conn    net.PacketConn
	in      *ingest
	log     *slog.Logger
	socket  string         // the unix socket path to remove on close
	acl     *accessControl // udp: nil when every sender may send at any rate
	content contentCounters
	// Bound once: under a flood every datagram may be refused.
	denied, rateLimited prometheus.Counter
	// warn names refused senders in the log, a few lines a second at
	// most, as the TCP listeners do for refused connections.
	warn *logLimiter

	errs      socketErrors  // paces serve through read errors
	done      chan struct{} // closed by close: ends a backoff wait
	closeOnce sync.Once
}

// newDatagramListener binds the datagram listener cfg, or serves conn when
// it is not nil (a reload keeps the socket). Its errors leave naming the
// listener to the caller (newListener).
func newDatagramListener(cfg ListenerConfig, in *ingest, log *slog.Logger, conn net.PacketConn) (*datagramListener, error) {
	l := &datagramListener{cfg: cfg, in: in, log: log.With("listener", cfg.Name), content: newContentCounters(in), done: make(chan struct{})}
	l.errs = socketErrors{what: "read", log: l.log}
	l.warn = newLogLimiter(l.log)
	switch cfg.Protocol {
	case ProtocolUDP:
		acl, err := newAccessControl(cfg)
		if err != nil {
			return nil, err
		}
		l.acl = acl
		l.denied = in.errors.WithLabelValues("denied")
		l.rateLimited = in.errors.WithLabelValues("rate_limited")
		if conn == nil {
			c, err := net.ListenPacket("udp", cfg.Address)
			if err != nil {
				return nil, err
			}
			conn = c
		}
		l.conn = conn
	case ProtocolUnix:
		if conn == nil {
			if err := removeStaleSocket(cfg.Address); err != nil {
				return nil, err
			}
			c, err := net.ListenPacket("unixgram", cfg.Address)
			if err != nil {
				return nil, err
			}
			conn = c
		}
		l.conn, l.socket = conn, cfg.Address
		if err := os.Chmod(cfg.Address, os.FileMode(*cfg.SocketMode)); err != nil {
			conn.Close()
			return nil, err
		}
	}
	granted, err := setReadBuffer(l.conn, int(cfg.ReadBuffer))
	if err != nil {
		l.log.Warn("set receive buffer", "err", err)
	}
	level := slog.LevelInfo
	if granted < int(cfg.ReadBuffer) {
		level = slog.LevelWarn // bursts may be dropped by the kernel
	}
	l.log.Log(context.Background(), level, "listening", "protocol", cfg.Protocol, "address", l.addr(),
		"read_buffer_wanted", int(cfg.ReadBuffer), "read_buffer_granted", granted)
	return l, nil
}

func (l *datagramListener) name() string { return l.cfg.Name }
func (l *datagramListener) addr() string { return l.conn.LocalAddr().String() }

// serve reads datagrams until the socket is closed, and returns once
// everything read is handled (see udp_batch.go).
func (l *datagramListener) serve(context.Context) {
	r, slots, err := newDatagramReader(l.conn, int(l.cfg.MaxMessageSize))
	if err != nil {
		// Only a socket that is not one has no descriptor.
		l.log.Error("cannot read the socket", "err", err)
		l.in.countError("read_error")
		return
	}
	full := make(chan *datagramChunk, chunksPerListener)
	free := make(chan *datagramChunk, chunksPerListener)
	for range chunksPerListener {
		free <- newDatagramChunk()
	}
	handled := make(chan struct{})
	go func() {
		defer close(handled)
		l.handleChunks(full, free)
	}()
	l.readChunks(r, slots, full, free)
	close(full)
	<-handled
}

// readChunks reads datagrams into chunks until the socket is closed. A chunk
// goes to the handler when it is full, when the socket has nothing more to
// read, or when the handler has nothing else to do. One extra byte of buffer
// tells a datagram that filled max_message_size from one that was longer:
// the longer one is truncated to max_message_size (and counted by the
// handler).
func (l *datagramListener) readChunks(r datagramReader, slots []readSlot, full chan<- *datagramChunk, free <-chan *datagramChunk) {
	max := int(l.cfg.MaxMessageSize)
	c := <-free
	handOver := func() {
		full <- c
		c = <-free // waits while the handler holds every chunk
	}
	defer func() {
		if len(c.grams) > 0 {
			full <- c
		}
	}()
	for {
		n, err := r.read(slots, len(c.grams) == 0)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if len(c.grams) > 0 {
				handOver()
			}
			// A datagram socket has no connection to drop: the error is
			// the socket's, and reading again at once would spin.
			l.in.countError("read_error")
			if !pause(l.errs.failed(err, time.Now()), l.done) {
				return
			}
			continue
		}
		if n == 0 {
			handOver() // the socket is empty
			continue
		}
		l.errs.succeeded()
		now := time.Now()
		for i := range slots[:n] {
			s := &slots[i]
			data, truncated := s.buf[:s.n], s.n > max
			if truncated {
				data = data[:max]
			}
			if !c.fits(len(data)) {
				handOver()
			}
			c.add(data, truncated, s, now)
		}
		if len(full) == 0 {
			handOver()
		}
	}
}

// handleChunks checks, routes and queues the datagrams of each chunk, then
// gives the chunk back, until full is closed.
func (l *datagramListener) handleChunks(full <-chan *datagramChunk, free chan<- *datagramChunk) {
	udp := l.cfg.Protocol == ProtocolUDP
	var lastAddr, lastDenied netip.AddrPort
	var lastSource string
	lastAllowed := true
	var limiter *rateLimiter
	if l.acl != nil {
		limiter = l.acl.limiter
	}
	for c := range full {
		for i := range c.grams {
			g := &c.grams[i]
			source := g.source
			if udp {
				// Most traffic comes from few senders: reuse the string
				// and the access decision.
				if g.addr != lastAddr || lastSource == "" {
					lastAddr, lastSource = g.addr, ""
					// A refused sender costs no string.
					if lastAllowed = l.acl.allows(g.addr.Addr()); lastAllowed {
						lastSource = g.addr.String()
					} else if g.addr != lastDenied {
						// Named once until another refused sender comes; a flood of
						// spoofed addresses is paced by the limiter.
						lastDenied = g.addr
						l.warn.warn("datagram dropped: sender not in allowed_networks", "remote", g.addr.String())
					}
				}
				if !lastAllowed {
					l.denied.Inc()
					continue
				}
				if limiter != nil && !limiter.allow(g.addr.Addr(), g.at) {
					l.rateLimited.Inc()
					continue
				}
				source = lastSource
			}
			if g.truncated {
				l.in.countError("truncated")
			}
			data := syslog.TrimDatagram(c.data[g.off : g.off+g.n])
			if len(data) == 0 {
				l.in.countError("empty")
				continue
			}
			l.content.count(data)
			l.in.handle(data, source, g.at)
		}
		c.reset()
		free <- c
	}
}

func (l *datagramListener) close() error {
	l.closeOnce.Do(func() { close(l.done) })
	err := l.conn.Close()
	if l.socket != "" {
		_ = os.Remove(l.socket)
	}
	return err
}

// setReadBuffer asks for a receive buffer of size bytes and returns what the
// kernel granted. SetReadBuffer is silently capped by net.core.rmem_max;
// on Linux SO_RCVBUFFORCE passes the cap when the relay has CAP_NET_ADMIN.
func setReadBuffer(c net.PacketConn, size int) (int, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, errors.New("socket does not expose its descriptor")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return 0, err
	}
	var granted int
	var opErr error
	err = raw.Control(func(fd uintptr) { granted, opErr = setSocketReadBuffer(int(fd), size) })
	if err != nil {
		return 0, err
	}
	return granted, opErr
}

// removeStaleSocket removes a socket file left by an earlier run; it refuses
// to remove anything that is not a socket.
func removeStaleSocket(path string) error {
	st, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("%s exists and is not a socket", path)
	}
	return os.Remove(path)
}
