package outputs

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"unsafe"
)

// connState checks a TCP connection without blocking and returns how many
// written bytes the peer has not acknowledged yet (SIOCOUTQ). A peer that
// closed (FIN) or reset the connection is reported as an error: a peer that
// closes with our data unread in its buffer answers with a reset, and one
// that closed cleanly will read nothing more, so in both cases whatever is
// not settled must go out again on a new connection.
func connState(c *net.TCPConn) (unacked int, err error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
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
			opErr = fmt.Errorf("peer closed the connection: %w", io.EOF)
			return
		}
		var q int32
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCOUTQ, uintptr(unsafe.Pointer(&q))); e != 0 {
			opErr = fmt.Errorf("SIOCOUTQ: %w", e)
			return
		}
		unacked = int(q)
	})
	if ctrlErr != nil {
		return 0, ctrlErr
	}
	if opErr != nil {
		return 0, opErr
	}
	if unacked < 0 {
		return 0, errors.New("SIOCOUTQ: negative queue length")
	}
	return unacked, nil
}
