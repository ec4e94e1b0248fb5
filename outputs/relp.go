package outputs

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/relay-syslog/relay/internal/relp"
	"github.com/relay-syslog/relay/queue"
)

// RELPOptions configures a RELP destination.
type RELPOptions struct {
	// TLS, when set, makes the session run over TLS; it is called at each
	// connection so that renewed certificate files apply.
	TLS func() (*tls.Config, error)
	// TLSNames names the TLS settings in errors; zero means ConfigTLSNames.
	TLSNames TLSNames
	Address  string
	// Window is how many messages may be sent ahead of their
	// acknowledgements (default 128, as rsyslog's omrelp).
	Window         int
	ConnectTimeout time.Duration
	// WriteTimeout bounds a write to the socket and a wait for an
	// acknowledgement that would free room in a full window; past it the
	// connection counts as broken.
	WriteTimeout time.Duration
	// CloseTimeout bounds the wait for the answer to close on a clean
	// shutdown (default 500ms). Messages are settled by then anyway: the
	// wait only spares the upstream a reset.
	CloseTimeout time.Duration
}

// DefaultRELPWindow is the window used when RELPOptions.Window is 0.
const DefaultRELPWindow = 128

// RELP sends syslog over RELP, which acknowledges every message: a message
// is settled only when the upstream answered "200 OK" for it (and for every
// message before it), so a broken connection loses nothing that Settled
// reported. Over TLS, failures the upstream's side of the session causes
// (a certificate refused either way, an alert) are explained as for a TLS
// output.
//
// The offsets Write and Settled return count messages written on the
// current connection. A reader goroutine, started by Connect and ended by
// Close, takes the answers off the socket, so a full window frees as soon as
// answers arrive, whatever the Worker is doing.
type RELP struct {
	opts RELPOptions

	// Owned by the Worker's goroutine.
	conn    net.Conn
	cl      *relp.Client
	broken  bool  // a write failed: Close must not attempt a clean close
	bytes   int64 // syslog frame bytes written, for BytesWritten
	readers sync.WaitGroup
	// Under TLS: the configuration of the session and when its handshake
	// completed, to explain failures. Set by Connect, read by the reader.
	tlsCfg      *tls.Config
	connectedAt time.Time

	// ack wakes a Write waiting for room in the window; it carries no
	// data, so a missed send only means the next one is seen.
	ack chan struct{}

	mu sync.Mutex
	// written counts the messages written on this connection; settled is
	// the length of the prefix of them answered 200. Message k carries TXNR
	// txnrOf(k): base is the TXNR of message settled, and acked[i] records
	// an answer received out of order for message settled+i (kept in a
	// ring indexed by message number modulo the window).
	written, settled int64
	base             int
	acked            []bool
	closeTxnr        int   // TXNR of the close command, 0 before Close sends it
	closeAnswered    bool  // the answer to close arrived
	err              error // why the connection is unusable, set once
}

// NewRELP returns a RELP destination; it connects on first use.
func NewRELP(opts RELPOptions) *RELP {
	if opts.Window < 1 {
		opts.Window = DefaultRELPWindow
	}
	if opts.CloseTimeout <= 0 {
		opts.CloseTimeout = 500 * time.Millisecond
	}
	return &RELP{opts: opts, acked: make([]bool, opts.Window), ack: make(chan struct{}, 1)}
}

func (r *RELP) String() string { return "relp://" + r.opts.Address }

// Connected reports whether a session is open. It stays true after the
// session broke until Close, so that the Worker learns of the break from
// Settled or Write, with the offset of what was acknowledged before.
func (r *RELP) Connected() bool { return r.conn != nil }

// Connect dials the upstream, opens a RELP session and checks that the
// upstream accepts syslog commands.
func (r *RELP) Connect(ctx context.Context) error {
	if r.conn != nil {
		_ = r.Close()
	}
	d := net.Dialer{Timeout: r.opts.ConnectTimeout, KeepAlive: 30 * time.Second}
	c, err := d.DialContext(ctx, "tcp", r.opts.Address)
	if err != nil {
		return err
	}
	if r.opts.ConnectTimeout > 0 {
		_ = c.SetDeadline(time.Now().Add(r.opts.ConnectTimeout))
	}
	r.tlsCfg = nil
	if r.opts.TLS != nil {
		// RELP over TLS, as rsyslog's omrelp/imrelp tls="on" speak it:
		// the TLS session starts right after connecting.
		tc, cfg, err := tlsHandshake(ctx, c, r.opts.TLS, r.opts.TLSNames)
		if err != nil {
			c.Close()
			return err
		}
		c, r.tlsCfg, r.connectedAt = tc, cfg, time.Now()
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
	cl := relp.NewClient(c, c, 64<<10)
	_, err = cl.Open()
	stopped := stop()
	if err == nil && !stopped {
		err = ctx.Err()
	}
	if err != nil {
		c.Close()
		// Over TLS 1.3 the upstream checks the client certificate after
		// the client's side of the handshake is done: a refusal shows here.
		return r.explain(fmt.Errorf("open relp session: %w", err))
	}
	_ = c.SetDeadline(time.Time{})

	r.conn, r.cl, r.broken = c, cl, false
	r.mu.Lock()
	r.written, r.settled = 0, 0
	r.base = cl.NextTxnr()
	clear(r.acked)
	r.closeTxnr, r.closeAnswered, r.err = 0, false, nil
	r.mu.Unlock()
	select {
	case <-r.ack:
	default:
	}
	r.readers.Add(1)
	go func() {
		defer r.readers.Done()
		r.readAnswers(cl)
	}()
	return nil
}

// Write sends one syslog command per entry. It waits while the window is
// full, until answers free room, ctx is cancelled, WriteTimeout passes
// without an answer, or the session breaks. It returns the number of
// messages written on this connection.
func (r *RELP) Write(ctx context.Context, entries []queue.Entry) (int64, error) {
	if r.conn == nil {
		return 0, errors.New("not connected")
	}
	conn := r.conn
	stop := context.AfterFunc(ctx, func() {
		_ = conn.SetWriteDeadline(time.Now())
		r.wake()
	})
	defer stop()
	r.armWriteDeadline(ctx)
	for _, e := range entries {
		if err := r.waitForRoom(ctx); err != nil {
			r.broken = true
			return 0, err
		}
		txnr, err := r.cl.Syslog(e.Data)
		if err != nil {
			r.broken = true
			return 0, r.explain(err)
		}
		r.bytes += int64(relp.FrameLen(txnr, relp.CmdSyslog, len(e.Data)))
		r.mu.Lock()
		r.written++
		r.mu.Unlock()
	}
	if err := r.cl.Flush(); err != nil {
		r.broken = true
		return 0, r.explain(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.written, nil
}

// armWriteDeadline gives the next socket write WriteTimeout, unless ctx is
// already done: then the deadline set by the AfterFunc must stay.
func (r *RELP) armWriteDeadline(ctx context.Context) {
	if r.opts.WriteTimeout > 0 {
		_ = r.conn.SetWriteDeadline(time.Now().Add(r.opts.WriteTimeout))
	}
	if ctx.Err() != nil {
		_ = r.conn.SetWriteDeadline(time.Now())
	}
}

// waitForRoom returns when one more message fits in the window. Before it
// waits it writes out what is buffered: the answers it waits for may be
// those of the buffered messages.
func (r *RELP) waitForRoom(ctx context.Context) error {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	waited := false
	for {
		r.mu.Lock()
		room := r.written-r.settled < int64(r.opts.Window)
		err := r.err
		r.mu.Unlock()
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if room {
			if waited {
				r.armWriteDeadline(ctx)
			}
			return nil
		}
		if !waited {
			waited = true
			if err := r.cl.Flush(); err != nil {
				return r.explain(err)
			}
			if r.opts.WriteTimeout > 0 {
				timer = time.NewTimer(r.opts.WriteTimeout)
			}
		}
		var expired <-chan time.Time
		if timer != nil {
			expired = timer.C
		}
		select {
		case <-r.ack:
			// Progress: the wait for the next answer starts afresh.
			if timer != nil {
				timer.Reset(r.opts.WriteTimeout)
			}
		case <-ctx.Done():
		case <-expired:
			return fmt.Errorf("no acknowledgement from the upstream for %s with %d messages outstanding", r.opts.WriteTimeout, r.opts.Window)
		}
	}
}

func (r *RELP) wake() {
	select {
	case r.ack <- struct{}{}:
	default:
	}
}

// BytesWritten returns the bytes of the syslog frames written (the open
// and close commands of a session are not messages and are not counted).
func (r *RELP) BytesWritten() int64 { return r.bytes }

// Settled returns the number of messages, counted from the start of the
// connection, that the upstream acknowledged without a gap. An error means
// the session broke (a refused message, serverclose, a reset); everything
// after the offset must be sent again.
func (r *RELP) Settled(time.Time) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conn == nil {
		return r.settled, errors.New("not connected")
	}
	return r.settled, r.err
}

// Close ends the session. On a healthy one it sends close (unless Finish
// did) and waits up to CloseTimeout for the answer, so the upstream sees a
// clean end; then it closes the socket and waits for the reader goroutine.
func (r *RELP) Close() error {
	if r.conn == nil {
		return nil
	}
	r.mu.Lock()
	healthy := r.err == nil && !r.broken && r.closeTxnr == 0
	r.mu.Unlock()
	if healthy {
		_ = r.conn.SetWriteDeadline(time.Now().Add(r.opts.CloseTimeout))
		r.mu.Lock()
		r.closeTxnr = r.cl.NextTxnr()
		r.mu.Unlock()
		if _, err := r.cl.SendClose(); err == nil {
			r.waitClosed()
		}
	}
	err := r.conn.Close()
	r.readers.Wait()
	r.conn, r.cl = nil, nil
	r.mu.Lock()
	if r.err == nil {
		r.err = errors.New("connection closed")
	}
	r.mu.Unlock()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// Finish waits, up to timeout, until every message written on this
// session is acknowledged, then sends close and waits for its answer, which
// the upstream gives once it has answered everything before it. An error
// says why the session could not end so; Settled still tells how far it
// got. Close must still be called. relay send ends with it.
func (r *RELP) Finish(timeout time.Duration) error {
	if r.conn == nil {
		return errors.New("not connected")
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		r.mu.Lock()
		outstanding, err := r.written-r.settled, r.err
		r.mu.Unlock()
		if err != nil {
			return err
		}
		if outstanding == 0 {
			break
		}
		select {
		case <-r.ack:
			// Progress: the wait for the next answer starts afresh.
			t.Reset(timeout)
		case <-t.C:
			return fmt.Errorf("no acknowledgement from the upstream for %s with %d messages outstanding", timeout, outstanding)
		}
	}
	t.Reset(timeout)
	_ = r.conn.SetWriteDeadline(time.Now().Add(timeout))
	r.mu.Lock()
	r.closeTxnr = r.cl.NextTxnr()
	r.mu.Unlock()
	if _, err := r.cl.SendClose(); err != nil {
		r.broken = true
		return r.explain(err)
	}
	for {
		r.mu.Lock()
		answered, err := r.closeAnswered, r.err
		r.mu.Unlock()
		switch {
		case answered:
			return nil
		case err != nil:
			return fmt.Errorf("no answer to close: %w", err)
		}
		select {
		case <-r.ack:
		case <-t.C:
			return fmt.Errorf("no answer to close within %s", timeout)
		}
	}
}

// explain explains an error of a session over TLS that the upstream's
// side of the TLS session caused; other errors come back as they are.
func (r *RELP) explain(err error) error {
	if r.tlsCfg == nil {
		return err
	}
	return explainTLSSession(err, r.tlsCfg, r.opts.TLSNames, time.Since(r.connectedAt))
}

// waitClosed waits until the reader saw the answer to close or ended, or
// CloseTimeout passed.
func (r *RELP) waitClosed() {
	t := time.NewTimer(r.opts.CloseTimeout)
	defer t.Stop()
	for {
		r.mu.Lock()
		done := r.closeAnswered || r.err != nil
		r.mu.Unlock()
		if done {
			return
		}
		select {
		case <-r.ack:
		case <-t.C:
			return
		}
	}
}

// readAnswers takes frames off the connection until it fails, recording
// acknowledgements. It is the only reader of cl.
func (r *RELP) readAnswers(cl *relp.Client) {
	for {
		f, err := cl.Receive()
		if err == nil {
			err = r.answer(f)
		}
		if err != nil {
			r.mu.Lock()
			if r.err == nil {
				if r.closeTxnr != 0 {
					err = errors.New("connection closed")
				}
				r.err = r.explain(err)
			}
			r.mu.Unlock()
			r.wake()
			return
		}
		r.wake()
	}
}

// answer records one frame from the upstream. An error ends the session.
func (r *RELP) answer(f relp.Frame) error {
	if f.Txnr == 0 {
		if f.Command == relp.CmdServerclose {
			return relp.ErrServerclose
		}
		return nil // other hints are advisory
	}
	if f.Command != relp.CmdRsp {
		return fmt.Errorf("upstream sent command %q", f.Command)
	}
	if f.Truncated {
		// Only the first bytes of it arrived: a "200" there is not yet
		// an answer, and no real answer is this long.
		return fmt.Errorf("upstream sent an answer of %d bytes (TXNR %d), longer than any RELP answer (%d)", f.DataLen, f.Txnr, relp.MaxResponseLen)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closeTxnr != 0 && f.Txnr == r.closeTxnr {
		r.closeAnswered = true
		return nil
	}
	// The position of the answered message after the first unsettled one,
	// in the cyclic TXNR space 1..MaxTxnr.
	d := int64((f.Txnr - r.base + relp.MaxTxnr) % relp.MaxTxnr)
	if d >= r.written-r.settled {
		return fmt.Errorf("upstream answered TXNR %d, which is not outstanding", f.Txnr)
	}
	rsp, err := relp.ParseResponse(f.Data)
	if err != nil {
		return err
	}
	if !rsp.OK() {
		return fmt.Errorf("upstream refused message (TXNR %d): %d %s", f.Txnr, rsp.Code, rsp.Text)
	}
	w := int64(len(r.acked))
	r.acked[(r.settled+d)%w] = true
	for r.settled < r.written && r.acked[r.settled%w] {
		r.acked[r.settled%w] = false
		r.settled++
		r.base = relp.NextTxnr(r.base)
	}
	return nil
}
