package outputs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/relay-syslog/relay/queue"
)

// UDP sends one message per datagram (RFC 5426), or over a local datagram
// socket such as /dev/log. It has no confirmation: a batch is settled once
// every datagram was handed to the kernel.
type UDP struct {
	network, address string
	connectTimeout   time.Duration
	writeTimeout     time.Duration
	conn             net.Conn
	written          int64
	bytes            int64 // datagram payload bytes sent, for BytesWritten
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
	return NewDatagram("udp", address, connectTimeout, 0)
}

// NewDatagram returns a destination that sends one message per datagram on
// network: "udp", or "unixgram" with the path of a socket as address.
// writeTimeout, when positive, bounds each datagram's write: a local socket
// blocks while its reader lags.
func NewDatagram(network, address string, connectTimeout, writeTimeout time.Duration) *UDP {
	return &UDP{network: network, address: address, connectTimeout: connectTimeout, writeTimeout: writeTimeout}
}

func (u *UDP) String() string { return u.network + "://" + u.address }

// Connected reports whether the socket is open.
func (u *UDP) Connected() bool { return u.conn != nil }

// Connect resolves the address and opens a connected socket, so that an
// ICMP port-unreachable from the upstream shows up as an error on a later
// write rather than passing unnoticed.
func (u *UDP) Connect(ctx context.Context) error {
	d := net.Dialer{Timeout: u.connectTimeout}
	c, err := d.DialContext(ctx, u.network, u.address)
	if errors.Is(err, syscall.EPROTOTYPE) {
		return fmt.Errorf("%w: it is not a datagram socket like /dev/log", err)
	}
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
		if u.writeTimeout > 0 {
			_ = u.conn.SetWriteDeadline(time.Now().Add(u.writeTimeout))
		}
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
			if errors.Is(err, syscall.ECONNREFUSED) {
				return 0, fmt.Errorf("%w (nothing is listening there)", err)
			}
			return 0, err
		}
		u.written++
		u.bytes += int64(len(e.Data))
	}
	return u.written, nil
}

// BytesWritten returns the payload bytes of the datagrams sent.
func (u *UDP) BytesWritten() int64 { return u.bytes }

// SettlesOnWrite reports that a datagram counts as delivered once the
// kernel took it: the worker keeps no unconfirmed window for it.
func (u *UDP) SettlesOnWrite() bool { return true }

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
