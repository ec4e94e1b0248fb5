package outputs

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
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
}

// TCP sends syslog over TCP with RFC 6587 framing.
type TCP struct {
	opts    TCPOptions
	conn    *net.TCPConn
	w       *bufio.Writer
	written int64 // bytes handed to the kernel on this connection
	// marks remembers when each offset was written, oldest first, so that
	// Settled can apply ConfirmDelay; one entry per batch.
	marks   []offsetMark
	settled int64
	numBuf  []byte
}

type offsetMark struct {
	end int64
	at  time.Time
}

// NewTCP returns a TCP destination; it connects on first use.
func NewTCP(opts TCPOptions) *TCP {
	return &TCP{opts: opts, numBuf: make([]byte, 0, 20)}
}

func (t *TCP) String() string { return "tcp://" + t.opts.Address }

// Connected reports whether a connection is open.
func (t *TCP) Connected() bool { return t.conn != nil }

// Connect dials the upstream.
func (t *TCP) Connect(ctx context.Context) error {
	d := net.Dialer{Timeout: t.opts.ConnectTimeout}
	c, err := d.DialContext(ctx, "tcp", t.opts.Address)
	if err != nil {
		return err
	}
	t.conn = c.(*net.TCPConn)
	_ = t.conn.SetKeepAlive(true)
	_ = t.conn.SetKeepAlivePeriod(30 * time.Second)
	if t.w == nil {
		t.w = bufio.NewWriterSize(t.conn, 64<<10)
	} else {
		t.w.Reset(t.conn)
	}
	t.written, t.settled = 0, 0
	t.marks = t.marks[:0]
	return nil
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
	}
	if err := t.w.Flush(); err != nil {
		return 0, err
	}
	t.marks = append(t.marks, offsetMark{end: t.written, at: time.Now()})
	return t.written, nil
}

// Settled returns the offset the peer's kernel acknowledged at least
// ConfirmDelay ago, after checking that the connection is still open. When
// the peer has closed the connection cleanly, everything it acknowledged is
// settled at once (it was read: see connState) and errPeerClosed tells the
// caller to resend the rest on a new connection. A reset is an error with
// nothing new settled.
func (t *TCP) Settled(now time.Time) (int64, error) {
	if t.conn == nil {
		return t.settled, errors.New("not connected")
	}
	unacked, peerClosed, err := connState(t.conn)
	if err != nil {
		return t.settled, err
	}
	acked := t.written - int64(unacked)
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

var errPeerClosed = errors.New("upstream closed the connection")

// Close drops the connection.
func (t *TCP) Close() error {
	if t.conn == nil {
		return nil
	}
	err := t.conn.Close()
	t.conn = nil
	t.marks = t.marks[:0]
	return err
}
