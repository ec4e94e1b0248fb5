package outputs

import (
	"errors"
	"fmt"
	"net"
	"syscall"
	"unsafe"
)

// connState checks a TCP connection without blocking and returns how many
// written bytes the peer has not acknowledged yet (SIOCOUTQ), and whether the
// peer closed the connection cleanly (FIN). A reset is an error.
//
// The difference matters for what must be sent again. A peer process that
// closes its socket with our data unread in its buffer makes its kernel
// answer with a reset, never a FIN; so after a clean FIN every byte the peer
// acknowledged was read by the peer process, and only the unacknowledged
// rest needs resending. After a reset nothing unconfirmed can be trusted.
//
// Under TLS, c is the socket below the tls.Conn and the peek sees TLS
// records (a session ticket, a close_notify alert): readable data of any
// kind means "not closed"; only the end of the stream or a reset count.
// The TLS destination's reader goroutine drains those records so that
// they cannot hide a FIN or a reset behind them, and TCP.tlsState weighs
// what it saw (see there).
func connState(c *net.TCPConn) (unacked int, peerClosed bool, err error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, false, err
	}
	var opErr error
	ctrlErr := raw.Control(func(fd uintptr) {
		var b [1]byte
		n, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case rerr == syscall.EAGAIN:
		case rerr != nil:
			opErr = fmt.Errorf("peer: %w", rerr)
			return
		case n == 0:
			peerClosed = true
		}
		var q int32
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCOUTQ, uintptr(unsafe.Pointer(&q))); e != 0 {
			opErr = fmt.Errorf("SIOCOUTQ: %w", e)
			return
		}
		unacked = int(q)
	})
	if ctrlErr != nil {
		return 0, false, ctrlErr
	}
	if opErr != nil {
		return 0, false, opErr
	}
	if unacked < 0 {
		return 0, false, errors.New("SIOCOUTQ: negative queue length")
	}
	return unacked, peerClosed, nil
}
