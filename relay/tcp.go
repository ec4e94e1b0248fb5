package relay

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relay-syslog/relay/internal/syslog"
)

// handshakeTimeout bounds a TLS handshake (and idle_timeout, when shorter,
// bounds it more), so a client that connects and stalls holds a
// connection slot for seconds, not minutes.
const handshakeTimeout = 10 * time.Second

// minRatePause is the shortest pause a rate-limited TCP connection takes.
const minRatePause = 10 * time.Millisecond

// tcpListener accepts syslog over TCP with RFC 6587 framing, detected per
// frame (octet counting or LF-terminated), and, with protocol "tls", over
// TLS (RFC 5425, which is octet counting over TLS; LF framing is accepted
// too, as from plain TCP senders).
type tcpListener struct {
	connServer
	cfg ListenerConfig

	tls       *tlsReloader // protocol "tls"; nil for plain TCP
	tlsConfig *tls.Config
	content   contentCounters

	done chan struct{} // closed by close: ends rate-limit pauses
}

// newTCPListener binds cfg.Address, or serves ln when it is not nil (a
// reload keeps the socket).
func newTCPListener(cfg ListenerConfig, in *ingest, gauge interface{ Set(float64) }, log *slog.Logger, ln net.Listener) (*tcpListener, error) {
	l := &tcpListener{cfg: cfg, done: make(chan struct{}), content: newContentCounters(in)}
	err := l.init(cfg, in, gauge, log)
	if err != nil {
		return nil, err
	}
	if cfg.Protocol == ProtocolTLS {
		// Before binding: a listener without a usable certificate must not
		// accept connections it cannot serve.
		if l.tls, err = newListenerTLS(cfg, l.log); err != nil {
			return nil, err
		}
		l.tlsConfig = l.tls.serverTLSConfig()
	}
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Address); err != nil {
			return nil, err
		}
	}
	l.ln = ln
	args := []any{"protocol", cfg.Protocol, "address", l.addr()}
	if cfg.Protocol == "tls" {
		args = append(args, "mutual_tls", cfg.TLS.ClientCAFile != "")
	}
	l.log.Info("listening", args...)
	return l, nil
}

func (l *tcpListener) name() string { return l.cfg.Name }
func (l *tcpListener) addr() string { return l.ln.Addr().String() }

func (l *tcpListener) serve(ctx context.Context) { l.connServer.serve(ctx, l.handle) }

func remoteAddr(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort().Addr()
	}
	return netip.Addr{}
}

// handle reads frames from one connection until it ends.
func (l *tcpListener) handle(c net.Conn, addr netip.Addr, slot *connSlot) {
	source := c.RemoteAddr().String()
	// A TLS client speaks first, so a silent one is a handshake that does
	// not start: it gets the handshake's limit, not idle_timeout.
	wait := l.cfg.IdleTimeout.Duration
	if l.tls != nil {
		wait = handshakeLimit(wait)
	}
	if wait > 0 {
		_ = c.SetReadDeadline(time.Now().Add(wait))
	}
	// Wait for the first bytes before anything is allocated for the
	// connection (a frame buffer, TLS state): thousands of connections
	// that never send cost only their goroutine. The first bytes also tell
	// a TLS client from a plain one.
	var first [2]byte
	n, err := peekFirst(c, first[:])
	if err != nil || n == 0 {
		switch {
		case !errors.Is(err, os.ErrDeadlineExceeded):
		case l.tls != nil:
			l.in.countError("tls_handshake_timeout")
			l.warn.warn("TLS handshake failed", "remote", source, "reason", "tls_handshake_timeout",
				"problem", fmt.Sprintf("the client sent nothing within %s", wait))
		default:
			l.in.countError("idle_timeout")
		}
		return
	}
	slot.active(time.Now())
	// A TLS record starts with content type 22 (handshake) and major
	// version 3; no syslog message starts with byte 22.
	looksTLS := first[0] == 0x16 && (n < 2 || first[1] == 0x03)
	var rd io.Reader = c
	var conn net.Conn = c
	switch {
	case l.tls == nil && looksTLS:
		l.in.countError("tls_on_plain_port")
		l.warn.warn("a client started a TLS handshake on a plain TCP listener", "remote", source,
			"check", "use a listener with protocol \"tls\" for this sender, or configure the sender for plain TCP")
		return
	case l.tls != nil && !looksTLS:
		l.in.countError("plaintext_on_tls_port")
		l.warn.warn("a client sent plain text to a TLS listener", "remote", source,
			"check", "configure the sender for TLS (RFC 5425), or point it at a plain TCP listener")
		return
	case l.tls != nil:
		tc := l.handshake(c, source)
		if tc == nil {
			return
		}
		defer tc.Close() // sends close_notify; the relay never writes otherwise
		rd, conn = tc, tc
	}
	l.read(conn, rd, source, addr, slot)
}

// read is the frame loop of one connection.
func (l *tcpListener) read(conn net.Conn, rd io.Reader, source string, addr netip.Addr, slot *connSlot) {
	if _, isTLS := rd.(*tls.Conn); !isTLS {
		// A TLS read returns one TLS record at most, so a short read
		// does not tell that the socket is drained: pacing it would cap
		// a busy TLS connection at one record per readPause.
		rd = &pacedReader{r: rd}
	}
	fr := syslog.NewFrameReader(rd, int(l.cfg.MaxMessageSize))
	idle := l.cfg.IdleTimeout.Duration
	// The read deadline is idle_timeout after the last complete message
	// (give or take an eighth of it). Moving it costs a timer update, so it
	// moves when the next message needs a read from the socket or when it
	// is an eighth stale; a busy stream whose reads end mid-frame still
	// keeps it fresh, and a client that trickles a frame a byte at a time
	// (slowloris) is closed idle_timeout after its last complete message.
	lastMove := time.Now()
	if idle > 0 {
		_ = conn.SetReadDeadline(lastMove.Add(idle))
	} else {
		_ = conn.SetReadDeadline(time.Time{}) // the handshake's
	}
	var limiter *rateLimiter
	if l.acl != nil {
		limiter = l.acl.limiter
	}
	// The time of arrival is taken once per read from the socket: the
	// messages of one read arrived together, and time.Now per message costs
	// several percent of the relay's CPU time at 1M msg/s on a machine whose
	// clock is slow to read (a VM without a usable TSC).
	var now time.Time
	lastRead := ^uint64(0)
	for {
		msg, truncated, err := fr.Next()
		if r := fr.Reads(); r != lastRead {
			now, lastRead = time.Now(), r
			slot.active(now)
		}
		if len(msg) > 0 {
			if truncated {
				l.in.countError("truncated")
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				l.in.countError("incomplete_frame")
			}
			l.content.count(msg)
			l.in.handle(msg, source, now)
			if limiter != nil {
				// Backpressure: nothing more is read from this sender
				// until its bucket has the tokens; TCP flow control slows
				// the sender down. Short debts are paid in one pause of
				// at least minRatePause, not a timer per message: the
				// debt is kept, so the rate is the same.
				if wait := limiter.reserve(addr, now); wait >= minRatePause {
					l.in.countError("rate_limited")
					if !pause(wait, l.done) {
						return
					}
					now = time.Now()
					lastMove = time.Time{} // the pause is not the sender's silence
				}
			}
			if idle > 0 && (fr.Buffered() == 0 || now.Sub(lastMove) >= idle/8) {
				// A fresh time: now is that of the read, and storing the
				// messages since may have waited for a full queue.
				t := time.Now()
				_ = conn.SetReadDeadline(t.Add(idle))
				lastMove = t
			}
		}
		if err != nil {
			switch {
			case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
			case errors.Is(err, os.ErrDeadlineExceeded):
				if fr.Buffered() > 0 {
					// Part of a frame arrived, the rest did not.
					l.in.countError("frame_timeout")
				} else {
					l.in.countError("idle_timeout")
				}
			default:
				l.in.countError("read_error")
				l.log.Debug("connection ended", "remote", source, "err", err)
			}
			return
		}
	}
}

// readPause is how long a connection whose data arrives at least this
// often waits before its next read (see pacedReader).
const readPause = 2 * time.Millisecond

// pacedReader reads a busy plain TCP stream less often. A sender at a moderate rate
// writes every millisecond or more often (every message, for many), and
// each write would cost the relay a wakeup, a read(2) that takes a few
// hundred bytes and one more that finds the socket empty: at 50k msg/s
// most of the relay's CPU. When a read found less than it had room for
// and its data had arrived within readPause, the next read waits
// readPause first and so takes what arrived meanwhile in one call. A read
// that fills the buffer is followed at once (more is waiting); a sender
// slower than readPause is read as soon as it writes. The data waits in
// the kernel's socket buffer, as it would for a busy relay, for at most
// readPause: the queue's linger holds it as long again before it is on
// disk.
type pacedReader struct {
	r    io.Reader
	wait bool
}

func (p *pacedReader) Read(b []byte) (int, error) {
	if p.wait {
		time.Sleep(readPause)
	}
	start := time.Now()
	n, err := p.r.Read(b)
	p.wait = err == nil && n > 0 && n < len(b) && time.Since(start) < readPause
	return n, err
}

// pause waits d, or less when done is closed (the listener closes); it
// reports whether the listener is still open.
func pause(d time.Duration, done <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-done:
		return false
	}
}

// handshake runs the server side of a TLS handshake on c within
// handshakeTimeout. On failure it counts the reason, logs what went wrong
// and what to check, and returns nil.
func (l *tcpListener) handshake(c net.Conn, source string) *tls.Conn {
	return serverHandshake(c, source, l.tlsConfig, l.cfg.IdleTimeout.Duration, l.in, l.log, l.warn.warn)
}

// serverHandshake is the server side of a TLS handshake for any stream
// listener (tls, and relp with TLS), bounded by handshakeTimeout or the
// listener's idle timeout when shorter. A failure is counted under its
// reason and explained through warn; the result is nil then.
func serverHandshake(c net.Conn, source string, cfg *tls.Config, idle time.Duration, in *ingest, log *slog.Logger, warn func(msg string, args ...any)) *tls.Conn {
	timeout := handshakeLimit(idle)
	_ = c.SetDeadline(time.Now().Add(timeout))
	tc := tls.Server(c, cfg)
	if err := tc.Handshake(); err != nil {
		reason, problem, check := describeHandshakeError(err, timeout)
		in.countError(reason)
		args := []any{"remote", source, "reason", reason, "problem", problem}
		if check != "" {
			args = append(args, "check", check)
		}
		warn("TLS handshake failed", args...)
		return nil
	}
	_ = c.SetWriteDeadline(time.Time{})
	if log.Enabled(context.Background(), slog.LevelDebug) {
		cs := tc.ConnectionState()
		args := []any{"remote", source, "version", tls.VersionName(cs.Version), "cipher_suite", tls.CipherSuiteName(cs.CipherSuite)}
		if len(cs.PeerCertificates) > 0 {
			args = append(args, "client", cs.PeerCertificates[0].Subject.String())
		}
		log.Debug("TLS connection", args...)
	}
	return tc
}

// handshakeLimit is how long a TLS handshake may take on a listener with
// the given idle_timeout: handshakeTimeout, or idle_timeout if shorter.
func handshakeLimit(idle time.Duration) time.Duration {
	if idle > 0 && idle < handshakeTimeout {
		return idle
	}
	return handshakeTimeout
}

// peekFirst waits until c has something to read, or its read deadline
// passes, or it ends, and copies up to len(b) of the first bytes into b
// without consuming them. n == 0 with a nil error means the client closed
// the connection without sending anything.
func peekFirst(c net.Conn, b []byte) (n int, err error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, fmt.Errorf("%T cannot be peeked at", c)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return 0, err
	}
	var rerr error
	// RawConn.Read calls the function again each time the socket becomes
	// readable, and honours the read deadline and Close.
	err = raw.Read(func(fd uintptr) bool {
		n, _, rerr = syscall.Recvfrom(int(fd), b, syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return rerr != syscall.EAGAIN && rerr != syscall.EINTR
	})
	if err != nil {
		return 0, err
	}
	return n, rerr
}

// reloadCertificates re-reads the listener's TLS files (SIGHUP).
func (l *tcpListener) reloadCertificates() error {
	if l.tls == nil {
		return nil
	}
	return l.tls.Reload()
}

// close stops accepting and closes every open connection; serve returns
// once their handlers have ended.
func (l *tcpListener) close() error {
	err := l.ln.Close()
	if l.conns.closeAll(func(c net.Conn) { c.Close() }) {
		close(l.done)
	}
	return err
}

// contentCounters count messages whose content suggests a broken or
// hostile sender. Such messages are still forwarded byte for byte (the
// relay never drops content it cannot read); the counts tell the operator
// something is sending garbage. The checks cost a few nanoseconds for the
// PRI and the NUL search, and utf8.Valid runs eight ASCII bytes a step.
type contentCounters struct {
	noPRI, nul, invalidUTF8 prometheus.Counter
}

func newContentCounters(in *ingest) contentCounters {
	return contentCounters{
		noPRI:       in.errors.WithLabelValues("no_pri"),
		nul:         in.errors.WithLabelValues("nul_byte"),
		invalidUTF8: in.errors.WithLabelValues("invalid_utf8"),
	}
}

func (c contentCounters) count(msg []byte) {
	if _, _, ok := syslog.ReadPRI(msg); !ok {
		c.noPRI.Inc()
	}
	if bytes.IndexByte(msg, 0) >= 0 {
		c.nul.Inc()
	}
	if !utf8.Valid(msg) {
		c.invalidUTF8.Inc()
	}
}
