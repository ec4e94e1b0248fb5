package outputs

import (
	"context"
	"errors"
	"net"
	"syscall"
	"time"

	"github.com/relay-syslog/relay/queue"
)

// UDP sends one message per datagram (RFC 5426). UDP has no confirmation:
// a batch is settled once every datagram was handed to the kernel.
type UDP struct {
	address        string
	connectTimeout time.Duration
	conn           net.Conn
	written        int64
	// OnTooLarge is called for a message the network refuses as too large
	// for one datagram; it is dropped, since sending it again cannot succeed.
	OnTooLarge func()
	// OnUnreachable is called when the first write of a batch reports an
	// ICMP port or host unreachable: it came back for a datagram of an
	// earlier batch, already settled, so at least that one is lost. (An
	// error later in a batch may concern the batch itself, which is sent
	// again whole.)
	OnUnreachable func()
}

// NewUDP returns a UDP destination.
func NewUDP(address string, connectTimeout time.Duration) *UDP {
	return &UDP{address: address, connectTimeout: connectTimeout}
}

func (u *UDP) String() string { return "udp://" + u.address }

// Connected reports whether the socket is open.
func (u *UDP) Connected() bool { return u.conn != nil }

// Connect resolves the address and opens a connected UDP socket, so that an
// ICMP port-unreachable from the upstream shows up as an error on a later
// write rather than passing unnoticed.
func (u *UDP) Connect(ctx context.Context) error {
	d := net.Dialer{Timeout: u.connectTimeout}
	c, err := d.DialContext(ctx, "udp", u.address)
	if err != nil {
		return err
	}
	if uc, ok := c.(*net.UDPConn); ok {
		_ = uc.SetWriteBuffer(4 << 20)
	}
	u.conn = c
	return nil
}

// Write sends each entry as its own datagram.
func (u *UDP) Write(_ context.Context, entries []queue.Entry) (int64, error) {
	if u.conn == nil {
		return 0, errors.New("not connected")
	}
	for i, e := range entries {
		if _, err := u.conn.Write(e.Data); err != nil {
			if errors.Is(err, syscall.EMSGSIZE) {
				if u.OnTooLarge != nil {
					u.OnTooLarge()
				}
				continue
			}
			if i == 0 && u.OnUnreachable != nil && (errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH)) {
				u.OnUnreachable()
			}
			return 0, err
		}
		u.written++
	}
	return u.written, nil
}

// Settled reports everything written as settled.
func (u *UDP) Settled(time.Time) (int64, error) { return u.written, nil }

// Close closes the socket.
func (u *UDP) Close() error {
	if u.conn == nil {
		return nil
	}
	err := u.conn.Close()
	u.conn = nil
	return err
}
