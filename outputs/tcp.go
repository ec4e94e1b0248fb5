package outputs

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/relay-syslog/relay/queue"
)

// Framing selects how messages are delimited on a stream (RFC 6587).
type Framing int

const (
	// OctetCounting prefixes each message with its length and a space.
	OctetCounting Framing = iota
	// LF ends each message with a line feed.
	LF
)

// ParseFraming maps the config words to a Framing.
func ParseFraming(s string) (Framing, error) {
	switch s {
	case "", "octet-counting":
		return OctetCounting, nil
	case "lf":
		return LF, nil
	}
	return 0, fmt.Errorf("unknown framing %q", s)
}

// TCPOptions configures a TCP destination.
type TCPOptions struct {
	Address        string
	Framing        Framing
	ConnectTimeout time.Duration
	WriteTimeout   time.Duration
	// ConfirmDelay is how long a written batch stays unconfirmed after the
	// peer's kernel acknowledged it. Plain TCP has no application-level
	// acknowledgement: bytes the peer's kernel has acknowledged can still
	// sit unread in its socket buffer and vanish if the upstream process
	// stops. Keeping them a little longer, and resending them if the
	// connection is then found broken, closes most of that gap.
	ConfirmDelay time.Duration
	// TLS, when set, makes the destination speak TLS (RFC 5425): Connect
	// dials TCP, then completes the handshake within ConnectTimeout (the
	// dial and the handshake share it). It is called for every connection,
	// so certificates renewed on disk apply to the next one.
	TLS func() (*tls.Config, error)
	// TLSNames names the TLS settings in errors; zero means ConfigTLSNames.
	TLSNames TLSNames
}

// TCP sends syslog over TCP with RFC 6587 framing, or over TLS.
//
// Under TLS the confirmation logic still works on the TCP socket: offsets
// count the bytes of TLS records on the wire (handshake included), which
// is what SIOCOUTQ measures. A reader goroutine per connection consumes
// what the upstream sends (TLS 1.3 session tickets, key updates, a
// close_notify or an alert) so that records left unread can never hide a
// FIN or a reset from the MSG_PEEK in connState, and so that closing the
// socket sends a FIN, not the reset an unread receive buffer would cause.
type TCP struct {
	opts    TCPOptions
	raw     *net.TCPConn // the socket, for connState
	conn    net.Conn     // what is written to: raw, or a *tls.Conn over it
	tls     *tls.Conn
	tlsCfg  *tls.Config   // the configuration tls was made with
	wire    *countingConn // under TLS: counts the bytes on the socket
	reader  chan struct{} // under TLS: closed when the reader goroutine ends
	readErr error         // under TLS: why it ended, valid once reader is closed
	readAt  time.Time     // and when
	// connectedAt is when the handshake completed; tls13 tells whether it
	// was TLS 1.3, handshakeRead how many bytes it had read from the
	// socket. See tlsAcceptPending.
	connectedAt   time.Time
	tls13         bool
	handshakeRead int64
	w             *bufio.Writer
	written       int64 // bytes handed to the kernel on this connection
	msgBytes      int64 // framed message bytes written, for BytesWritten
	// marks remembers when each offset was written, oldest first, so that
	// Settled can apply ConfirmDelay; one entry per batch.
	marks   []offsetMark
	settled int64
	// closedAt is the offset the peer's kernel had acknowledged when its
	// receive window was found closed, -1 while it is open; maxWindow the
	// largest window it advertised on this connection. See peerReading.
	closedAt  int64
	maxWindow int64
	// acked is the offset the peer's kernel had acknowledged at the last
	// check; see UnreadFrom.
	acked  int64
	numBuf []byte
}

type offsetMark struct {
	end int64
	at  time.Time
}

// NewTCP returns a TCP destination; it connects on first use.
func NewTCP(opts TCPOptions) *TCP {
	return &TCP{opts: opts, numBuf: make([]byte, 0, 20)}
}

func (t *TCP) String() string {
	if t.opts.TLS != nil {
		return "tls://" + t.opts.Address
	}
	return "tcp://" + t.opts.Address
}

// Connected reports whether a connection is open.
func (t *TCP) Connected() bool { return t.conn != nil }

// Connect dials the upstream and, with TLS, completes the handshake.
func (t *TCP) Connect(ctx context.Context) error {
	if t.opts.ConnectTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.opts.ConnectTimeout)
		defer cancel()
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", t.opts.Address)
	if err != nil {
		return err
	}
	raw := c.(*net.TCPConn)
	_ = raw.SetKeepAlive(true)
	_ = raw.SetKeepAlivePeriod(30 * time.Second)
	t.raw, t.conn = raw, raw
	if t.opts.TLS != nil {
		if err := t.handshake(ctx, raw); err != nil {
			raw.Close()
			t.raw, t.conn = nil, nil
			return err
		}
	}
	if t.w == nil {
		t.w = bufio.NewWriterSize(t.conn, 64<<10)
	} else {
		t.w.Reset(t.conn)
	}
	t.written, t.settled = 0, 0
	if t.wire != nil {
		// The handshake's bytes are on the wire too.
		t.written = t.wire.n.Load()
		t.settled = t.written
	}
	t.closedAt, t.maxWindow, t.acked = -1, 0, t.settled
	t.marks = t.marks[:0]
	return nil
}

// handshake runs the client side of TLS over raw and starts the reader.
func (t *TCP) handshake(ctx context.Context, raw *net.TCPConn) error {
	wire := &countingConn{TCPConn: raw}
	tc, cfg, err := tlsHandshake(ctx, wire, t.opts.TLS, t.opts.TLSNames)
	if err != nil {
		return err
	}
	t.tls, t.wire, t.conn, t.tlsCfg = tc, wire, tc, cfg
	t.tls13 = tc.ConnectionState().Version == tls.VersionTLS13
	t.handshakeRead = wire.read.Load()
	t.reader = make(chan struct{})
	t.readErr = nil
	t.connectedAt = time.Now()
	go t.readUpstream(tc, t.reader)
	return nil
}

// readUpstream reads and discards what the upstream sends until the
// connection ends; crypto/tls handles the post-handshake messages as it
// reads them. A syslog upstream sends no application data.
func (t *TCP) readUpstream(tc *tls.Conn, done chan struct{}) {
	defer close(done)
	var buf [512]byte
	for {
		if _, err := tc.Read(buf[:]); err != nil {
			t.readErr, t.readAt = err, time.Now()
			return
		}
	}
}

// wireBytes is the connection's running count of bytes written to the
// socket: under TLS the counter below crypto/tls, else what Write counted.
func (t *TCP) wireBytes() int64 {
	if t.wire != nil {
		return t.wire.n.Load()
	}
	return t.written
}

// countingConn counts the bytes written to the socket under a tls.Conn,
// which is what SIOCOUTQ compares with. It is written to by Write, by the
// handshake, and by crypto/tls answering a key update from the reader
// goroutine, hence the atomic.
type countingConn struct {
	*net.TCPConn
	n    atomic.Int64
	read atomic.Int64 // bytes read from the socket, by the handshake and the reader
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.TCPConn.Write(p)
	c.n.Add(int64(n))
	return n, err
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.TCPConn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

// tlsAcceptHold is how long after a TLS 1.3 handshake nothing counts as
// confirmed unless the server has sent something since. In TLS 1.3 the
// client's side of the handshake is over before the server has checked the
// client's certificate: the first records go out at once, the server's
// kernel acknowledges them, and a refusal comes as an alert when the server
// gets round to the check, which on a busy server can be later than
// confirm_delay. Anything the server sends after the handshake (a session
// ticket, which most servers send at once) shows it accepted us.
const tlsAcceptHold = time.Second

// tlsAcceptPending reports whether a TLS 1.3 server may still refuse this
// connection: it has sent nothing since the handshake, which ended less
// than tlsAcceptHold ago.
func (t *TCP) tlsAcceptPending(now time.Time) bool {
	return t.tls != nil && t.tls13 && t.wire.read.Load() == t.handshakeRead && now.Sub(t.connectedAt) < tlsAcceptHold
}

// Write frames and writes entries, then flushes.
func (t *TCP) Write(ctx context.Context, entries []queue.Entry) (int64, error) {
	if t.conn == nil {
		return 0, errors.New("not connected")
	}
	if t.opts.WriteTimeout > 0 {
		_ = t.conn.SetWriteDeadline(time.Now().Add(t.opts.WriteTimeout))
	}
	// A stop must not wait for an upstream that stopped reading.
	conn := t.conn
	stop := context.AfterFunc(ctx, func() { _ = conn.SetWriteDeadline(time.Now()) })
	defer stop()
	for _, e := range entries {
		var n int
		switch t.opts.Framing {
		case OctetCounting:
			t.numBuf = strconv.AppendInt(t.numBuf[:0], int64(len(e.Data)), 10)
			t.numBuf = append(t.numBuf, ' ')
			t.w.Write(t.numBuf)
			t.w.Write(e.Data)
			n = len(t.numBuf) + len(e.Data)
		case LF:
			t.w.Write(e.Data)
			t.w.WriteByte('\n')
			n = len(e.Data) + 1
		}
		t.written += int64(n)
		t.msgBytes += int64(n)
	}
	if err := t.w.Flush(); err != nil {
		if t.tls != nil {
			return 0, t.tlsWriteError(err)
		}
		return 0, err
	}
	if t.wire != nil {
		t.written = t.wire.n.Load()
	}
	t.marks = append(t.marks, offsetMark{end: t.written, at: time.Now()})
	return t.written, nil
}

// BytesWritten returns the framed message bytes written, TLS excluded.
func (t *TCP) BytesWritten() int64 { return t.msgBytes }

// Settled returns the offset the peer's kernel acknowledged at least
// ConfirmDelay ago, after checking that the connection is still open. When
// the peer has closed the connection cleanly, everything it acknowledged is
// settled at once (it was read: see connState) and errPeerClosed tells the
// caller to resend the rest on a new connection. A reset is an error with
// nothing new settled.
//
// Nothing is settled while the peer's process is not reading (see
// peerReading): what its kernel holds may never be read. Without this, an
// upstream that accepts connections and never reads would take a socket
// buffer of messages into the void at every reconnect and look healthy
// each time.
func (t *TCP) Settled(now time.Time) (int64, error) {
	if t.conn == nil {
		return t.settled, errors.New("not connected")
	}
	// The count is read before the socket is asked: bytes crypto/tls
	// writes in between make the acknowledged offset look lower, never
	// higher.
	written := t.wireBytes()
	unacked, win, peerClosed, err := connState(t.raw, t.tls == nil)
	if t.tls != nil {
		peerClosed, err = t.tlsState(peerClosed, err)
	}
	if err != nil {
		return t.settled, err
	}
	acked := written - int64(unacked)
	t.acked = acked
	if !t.peerReading(acked, win) && !peerClosed || t.tlsAcceptPending(now) {
		return t.settled, nil
	}
	i := 0
	for ; i < len(t.marks); i++ {
		m := t.marks[i]
		if m.end > acked || (!peerClosed && now.Sub(m.at) < t.opts.ConfirmDelay) {
			break
		}
		t.settled = m.end
	}
	t.marks = append(t.marks[:0], t.marks[i:]...)
	if peerClosed {
		return t.settled, errPeerClosed
	}
	return t.settled, nil
}

// NextConfirm returns when the oldest unconfirmed batch has waited, or
// will have waited, ConfirmDelay; zero when no batch waits.
func (t *TCP) NextConfirm() time.Time {
	if len(t.marks) == 0 {
		return time.Time{}
	}
	return t.marks[0].at.Add(t.opts.ConfirmDelay)
}

var errPeerClosed = errors.New("upstream closed the connection")

// UnreadFrom tells, for a connection that ended with err, from which offset
// on the bytes the peer's kernel acknowledged may never have been read by
// the peer's process; -1 when they all were.
//
// Only a reset says so: a peer process that closes its socket with data
// unread makes its kernel send a reset (a crash does too), while after a
// FIN everything acknowledged was read. What it held unread fits in its
// socket buffer, which is less than twice the largest window it advertised
// (see peerReading), behind the last offset seen acknowledged. Bytes
// confirmed in that span may be lost; plain TCP cannot tell which, so the
// caller counts them as possibly lost. Call it before Close.
func (t *TCP) UnreadFrom(err error) int64 {
	if !errors.Is(err, syscall.ECONNRESET) {
		return -1
	}
	return max(t.acked-2*t.maxWindow, 0)
}

// peerReading tells, from its receive window, whether the peer's process
// reads what its kernel acknowledges. An open window says so. A closed one
// says its socket buffer is full; it may be reading slowly (each read
// reopens the window, and we fill it again) or not at all. The two differ
// in how much the peer acknowledges while the window is closed: a process
// that reads nothing leaves room for at most its socket buffer, which is
// less than twice the largest window it advertised (Linux advertises about
// half its buffer or more for the full segments a backlog goes out in),
// while one that reads acknowledges without end.
// So with the window closed, each further twice that largest window
// acknowledged counts as proof of reading.
func (t *TCP) peerReading(acked int64, w peerWindow) bool {
	t.maxWindow = max(t.maxWindow, w.size)
	switch {
	case !w.closed:
		t.closedAt = -1
		return true
	case t.closedAt < 0:
		t.closedAt = acked
		return false
	case acked-t.closedAt > 2*t.maxWindow:
		t.closedAt = acked
		return true
	}
	return false
}

// tlsState combines what the socket shows with what the reader goroutine
// saw. The reader may have taken a FIN or a reset off the socket already
// (after a reset the socket then reads as a clean end), so when either
// says the connection ended, the reader's account decides: a close_notify
// or a clean end of the stream is a close; an alert (such as the upstream
// refusing our client certificate after a TLS 1.3 handshake, then
// resetting) is the error to report, because it says why; and a reset is
// an error.
func (t *TCP) tlsState(sockClosed bool, sockErr error) (peerClosed bool, err error) {
	if sockClosed || sockErr != nil {
		// The socket is at its end, so the reader's Read returns at once.
		select {
		case <-t.reader:
		case <-time.After(time.Second):
			return sockClosed, sockErr
		}
	}
	select {
	case <-t.reader:
	default:
		return false, nil
	}
	switch {
	case isAlert(t.readErr):
		return false, t.describeReadError()
	case sockErr != nil:
		return false, sockErr
	case errors.Is(t.readErr, io.EOF):
		return true, nil
	}
	return false, t.describeReadError()
}

// describeReadError explains why the reader goroutine ended; call it once
// t.reader is closed.
func (t *TCP) describeReadError() error {
	return describeTLSError(t.readErr, t.tlsCfg, t.opts.TLSNames, false, t.readAt.Sub(t.connectedAt) < time.Second)
}

// tlsWriteError explains a write that failed on a TLS session like a read
// that does: an upstream that refuses our client certificate closes right
// after the handshake, and which side notices first is a matter of timing.
// When the connection is broken the reader ends at once, and an alert it
// read says why better than the write's error.
func (t *TCP) tlsWriteError(err error) error {
	wait := time.Duration(0)
	if isBroken(err) {
		wait = time.Second
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-t.reader:
		if isAlert(t.readErr) {
			return t.describeReadError()
		}
	case <-timer.C:
	}
	return describeTLSError(err, t.tlsCfg, t.opts.TLSNames, false, time.Since(t.connectedAt) < time.Second)
}

// Finish ends the stream and waits, up to timeout, until the upstream
// closes its side too, reporting a reset or, under TLS, an alert. TCP has
// no acknowledgements, but an upstream that reads to the end of the stream
// before it closes has read everything; one that keeps the connection open
// past timeout has said nothing is wrong. Close must still be called.
// relay send ends with it.
func (t *TCP) Finish(timeout time.Duration) error {
	if t.conn == nil {
		return errors.New("not connected")
	}
	_ = t.conn.SetWriteDeadline(time.Now().Add(timeout))
	if t.tls == nil {
		// A reset that came first makes the shutdown fail as "not
		// connected"; the read then says what happened.
		werr := t.raw.CloseWrite()
		_ = t.raw.SetReadDeadline(time.Now().Add(timeout))
		_, err := io.Copy(io.Discard, t.raw)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			err = nil
		}
		if err != nil {
			return err
		}
		return werr
	}
	// close_notify, then the FIN: nothing may follow either. The reader
	// goroutine sees the upstream's end.
	werr := t.tls.CloseWrite()
	if werr == nil {
		werr = t.raw.CloseWrite()
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-t.reader:
		if isAlert(t.readErr) || werr == nil && !errors.Is(t.readErr, io.EOF) {
			return t.describeReadError()
		}
	case <-timer.C:
	}
	if werr != nil {
		return t.tlsWriteError(werr)
	}
	return nil
}

// closeNotifyTimeout bounds the close_notify alert Close sends: an
// upstream that stopped reading must not hold up a reconnect or a stop.
const closeNotifyTimeout = 100 * time.Millisecond

// Close drops the connection; under TLS it first sends close_notify
// (RFC 5425 §4.4) unless the socket does not take it at once.
func (t *TCP) Close() error {
	if t.conn == nil {
		return nil
	}
	var err error
	if t.tls != nil {
		raw := t.raw
		stuck := time.AfterFunc(closeNotifyTimeout, func() { raw.Close() })
		err = t.tls.Close()
		stuck.Stop()
		raw.Close()
		<-t.reader
		t.tls, t.wire, t.reader, t.tlsCfg = nil, nil, nil, nil
	} else {
		err = t.conn.Close()
	}
	t.conn, t.raw = nil, nil
	t.marks = t.marks[:0]
	return err
}
