package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"github.com/relay-syslog/relay/internal/relp"
)

// relpListener accepts RELP: every syslog frame is answered "200 OK" only
// once its message is accepted into every routed queue and written to disk
// (ingest.flush), so a sender that resends what was not acknowledged loses
// nothing when the relay dies. With tls.cert_file it runs over TLS.
type relpListener struct {
	connServer
	cfg ListenerConfig

	tls       *tlsReloader // RELP over TLS when tls.cert_file is set; nil otherwise
	tlsConfig *tls.Config

	// closing is set by close before it interrupts the connections' reads,
	// so a handler that moves its read deadline can see it and not wait.
	// A listener that takes over the socket at a reload shares it.
	closing *atomic.Bool
	done    chan struct{} // closed by close: ends rate-limit pauses
}

// relpCloseGrace bounds the final writes of a connection handler when the
// listener closes: the acknowledgements still owed and serverclose.
const relpCloseGrace = time.Second

// newRELPListener binds cfg.Address, or serves ln when it is not nil (a
// reload keeps the socket). Its frames may carry up to cfg.MaxMessageSize
// bytes of message; a longer message is truncated and counted, as on TCP.
func newRELPListener(cfg ListenerConfig, in *ingest, gauge interface{ Set(float64) }, log *slog.Logger, ln net.Listener) (*relpListener, error) {
	l := &relpListener{cfg: cfg, done: make(chan struct{}), closing: new(atomic.Bool)}
	err := l.init(cfg, in, gauge, log)
	if err != nil {
		return nil, err
	}
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Address); err != nil {
			return nil, err
		}
	}
	l.ln = ln
	if cfg.TLS.CertFile != "" {
		// RELP over TLS: the same settings, reloading and checks as a
		// "tls" listener.
		if l.tls, err = newListenerTLS(cfg, l.log); err != nil {
			ln.Close()
			return nil, err
		}
		l.tlsConfig = l.tls.serverTLSConfig()
	}
	args := []any{"protocol", "relp", "address", l.addr(), "window", l.window()}
	if l.tls != nil {
		args = append(args, "tls", true, "mutual_tls", cfg.TLS.ClientCAFile != "")
	}
	l.log.Info("listening", args...)
	return l, nil
}

func (l *relpListener) name() string { return l.cfg.Name }
func (l *relpListener) addr() string { return l.ln.Addr().String() }

func (l *relpListener) window() int {
	if l.cfg.Window < 1 {
		return DefaultRELPWindow
	}
	return l.cfg.Window
}

func (l *relpListener) serve(ctx context.Context) { l.connServer.serve(ctx, l.handle) }

// close stops accepting. Open connections are not cut: their reads are
// interrupted, and each handler acknowledges what it has stored, sends
// serverclose and closes, within relpCloseGrace. serve returns once they
// have all ended.
func (l *relpListener) close() error {
	if l.closing.Swap(true) {
		return nil // closed before
	}
	close(l.done)
	err := l.ln.Close()
	now := time.Now()
	l.conns.closeAll(func(c net.Conn) {
		_ = c.SetReadDeadline(now)
		_ = c.SetWriteDeadline(now.Add(relpCloseGrace))
	})
	return err
}

// relpConn is the state of one RELP connection.
type relpConn struct {
	l      *relpListener
	c      net.Conn
	source string
	idle   time.Duration
	out    []byte // answers being built, written with one write
	// pending holds the syslog frames read since the last acknowledgement,
	// in order: their answers wait until the burst is stored.
	pending []pendingFrame
}

type pendingFrame struct {
	txnr     int
	accepted bool
}

// handle runs one RELP session. Frames are read in bursts: as long as the
// bytes already received hold complete frames, each message is routed to
// the queues, and its answer is held back. When the next frame needs a read
// from the socket, or the window of unanswered frames is full, the queues
// are flushed to disk once and the whole burst is answered in order. One
// flush per burst, not per message, keeps disk writes few while the sender
// streams; reading nothing more until the burst is answered enforces the
// window. Over rate_limit, the burst read so far is stored and answered and
// then nothing is read from the sender until its bucket has the tokens: its
// window fills and it waits, losing nothing.
func (l *relpListener) handle(c net.Conn, addr netip.Addr, slot *connSlot) {
	if l.tls != nil {
		tc := l.handshake(c)
		if tc == nil {
			return
		}
		slot.active(time.Now()) // the client spoke: a handshake
		c = tc
	}
	rc := &relpConn{
		l:      l,
		c:      c,
		source: c.RemoteAddr().String(),
		idle:   l.cfg.IdleTimeout.Duration,
	}
	rd := relp.NewReader(c, int(l.cfg.MaxMessageSize))
	var sess relp.ServerSession
	window := l.window()
	var limiter *rateLimiter
	if l.acl != nil {
		limiter = l.acl.limiter
	}
	for {
		f, ok, err := rd.TryNext()
		if !ok && err == nil {
			// The end of a burst: store and answer it before waiting.
			if err := rc.acknowledge(); err != nil {
				rc.writeFailed(err)
				return
			}
			rc.armReadDeadline()
			f, err = rd.Next()
		}
		if err != nil {
			rc.readFailed(err)
			return
		}
		now := time.Now()
		slot.active(now)
		kind, rsp, perr := sess.Receive(f)
		switch kind {
		case relp.KindSyslog:
			if f.Truncated {
				l.in.countError("truncated")
			}
			accepted := l.in.handle(f.Data, rc.source, now)
			rc.pending = append(rc.pending, pendingFrame{txnr: f.Txnr, accepted: accepted})
			var wait time.Duration
			if limiter != nil {
				wait = limiter.reserve(addr, now)
			}
			if len(rc.pending) >= window || wait >= minRatePause {
				if err := rc.acknowledge(); err != nil {
					rc.writeFailed(err)
					return
				}
			}
			if wait >= minRatePause {
				l.in.countError("rate_limited")
				if !pause(wait, l.done) {
					// The listener closes. What was read so far is
					// answered; frames still unread are resent by the
					// sender, which has no answer for them.
					rc.out = relp.AppendServerclose(rc.out[:0])
					_ = rc.send()
					return
				}
			}
			continue
		case relp.KindReply, relp.KindClose:
			// Answers go out in the order the commands came.
			if err := rc.acknowledge(); err != nil {
				rc.writeFailed(err)
				return
			}
			rc.out = relp.AppendResponse(rc.out[:0], f.Txnr, rsp.Code, rsp.Text, rsp.Data)
			if kind == relp.KindClose {
				rc.out = relp.AppendServerclose(rc.out)
			}
			if err := rc.send(); err != nil {
				rc.writeFailed(err)
				return
			}
			if kind == relp.KindClose {
				return
			}
		}
		if perr != nil {
			l.in.countError("protocol_error")
			l.log.Debug("relp protocol error; closing the connection", "remote", rc.source, "err", perr)
			// What came before the violation is stored and answered.
			_ = rc.acknowledge()
			return
		}
	}
}

// armReadDeadline sets the idle deadline before a read from the socket.
// close sets closing before it moves the deadline to now, so checking the
// flag after setting the deadline cannot miss a close.
func (rc *relpConn) armReadDeadline() {
	if rc.idle > 0 {
		_ = rc.c.SetReadDeadline(time.Now().Add(rc.idle))
	}
	if rc.l.closing.Load() {
		_ = rc.c.SetReadDeadline(time.Now())
	}
}

// errNotStored means a burst could not be written to the queues.
var errNotStored = errors.New("messages not stored")

// acknowledge stores the pending messages (one flush of the queues) and
// answers each: 200 when it was accepted, 500 when the relay refused it (no
// route took it, or a queue dropped it by its full-queue policy: a
// deliberate, counted refusal). When the flush itself fails, nothing is
// answered and errNotStored tells the caller to drop the connection: the
// sender then keeps those messages and sends them again, whereas a 500
// would make rsyslog's omrelp discard them.
func (rc *relpConn) acknowledge() error {
	if len(rc.pending) == 0 {
		return nil
	}
	for _, p := range rc.pending {
		if p.accepted {
			if err := rc.l.in.flush(); err != nil {
				rc.l.in.countError("store_failed")
				rc.l.log.Error("store messages; closing the connection unanswered so that the sender resends them",
					"remote", rc.source, "messages", len(rc.pending), "err", err)
				rc.pending = rc.pending[:0]
				return errNotStored
			}
			break
		}
	}
	out := rc.out[:0]
	for _, p := range rc.pending {
		if p.accepted {
			out = relp.AppendResponse(out, p.txnr, relp.CodeOK, "OK", nil)
		} else {
			out = relp.AppendResponse(out, p.txnr, relp.CodeError, "message not accepted", nil)
		}
	}
	rc.out = out
	rc.pending = rc.pending[:0]
	return rc.send()
}

// send writes the answers in out. A sender that stops reading them is given
// the idle timeout, or relpCloseGrace once the listener closes.
func (rc *relpConn) send() error {
	if rc.idle > 0 {
		_ = rc.c.SetWriteDeadline(time.Now().Add(rc.idle))
	}
	if rc.l.closing.Load() {
		_ = rc.c.SetWriteDeadline(time.Now().Add(relpCloseGrace))
	}
	_, err := rc.c.Write(rc.out)
	return err
}

// readFailed ends a session whose next frame could not be read. What was
// read before is still stored and answered when the connection allows it:
// after a half-close by the sender, or when the listener closes, the answers
// save the sender from resending messages already stored.
func (rc *relpConn) readFailed(err error) {
	closing := rc.l.closing.Load() && errors.Is(err, os.ErrDeadlineExceeded)
	switch {
	case closing:
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
	case errors.Is(err, io.ErrUnexpectedEOF):
		rc.l.in.countError("incomplete_frame")
	case errors.Is(err, os.ErrDeadlineExceeded):
		rc.l.in.countError("idle_timeout")
	case relp.IsFrameError(err):
		rc.l.in.countError("invalid_frame")
		rc.l.log.Debug("invalid relp frame; closing the connection", "remote", rc.source, "err", err)
	default:
		rc.l.in.countError("read_error")
		rc.l.log.Debug("connection ended", "remote", rc.source, "err", err)
	}
	if rc.acknowledge() != nil {
		return
	}
	if closing || errors.Is(err, os.ErrDeadlineExceeded) {
		// A hint, so the sender reconnects at once rather than finding the
		// connection dead at its next write.
		rc.out = relp.AppendServerclose(rc.out[:0])
		_ = rc.send()
	}
}

// writeFailed ends a session whose answers could not be written or stored;
// the sender will resend what it has no answer for.
func (rc *relpConn) writeFailed(err error) {
	if rc.l.closing.Load() || errors.Is(err, net.ErrClosed) || errors.Is(err, errNotStored) {
		return
	}
	rc.l.in.countError("write_error")
	rc.l.log.Debug("writing relp answers", "remote", rc.source, "err", err)
}

// handshake runs the server side of a TLS handshake on c, as the TLS
// listener does; it returns nil on failure.
func (l *relpListener) handshake(c net.Conn) *tls.Conn {
	tc := serverHandshake(c, c.RemoteAddr().String(), l.tlsConfig, l.cfg.IdleTimeout.Duration, l.in, l.log, l.log.Warn)
	if tc != nil {
		_ = c.SetDeadline(time.Time{})
	}
	return tc
}

// reloadCertificates re-reads the listener's TLS files (SIGHUP).
func (l *relpListener) reloadCertificates() error {
	if l.tls == nil {
		return nil
	}
	return l.tls.Reload()
}
