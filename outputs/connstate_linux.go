package outputs

import (
	"errors"
	"fmt"
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// connState checks a TCP connection without blocking and returns how many
// written bytes the peer has not acknowledged yet (SIOCOUTQ), the state of
// the peer's receive window (TCP_INFO), and whether the peer closed the
// connection cleanly (FIN). A reset is an error.
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
//
// With discard (plain TCP, which has no reader goroutine), what the peer
// sent is read and thrown away first, at most maxDiscardReads reads a
// call: a syslog upstream sends nothing, and bytes one does send (a
// banner, an echo, another protocol) would otherwise stay in front of its
// FIN or reset for good, and a reset hidden so would let Settled confirm
// what the dead peer's kernel acknowledged and its process never read.
//
// A closed window means the peer's socket buffer is full: its process has
// not read what its kernel acknowledged (see TCP.peerReading).
func connState(c *net.TCPConn, discard bool) (unacked int, win peerWindow, peerClosed bool, err error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, win, false, err
	}
	var opErr error
	ctrlErr := raw.Control(func(fd uintptr) {
		var b [4096]byte
		for i := 0; ; i++ {
			buf, flags := b[:1], syscall.MSG_PEEK|syscall.MSG_DONTWAIT
			if discard && i < maxDiscardReads {
				buf, flags = b[:], syscall.MSG_DONTWAIT
			}
			n, _, rerr := syscall.Recvfrom(int(fd), buf, flags)
			switch {
			case rerr == syscall.EAGAIN:
			case rerr != nil:
				opErr = fmt.Errorf("peer: %w", rerr)
				return
			case n == 0:
				peerClosed = true
			case flags&syscall.MSG_PEEK == 0:
				continue
			}
			break
		}
		var q int32
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCOUTQ, uintptr(unsafe.Pointer(&q))); e != 0 {
			opErr = fmt.Errorf("SIOCOUTQ: %w", e)
			return
		}
		unacked = int(q)
		win = readPeerWindow(fd, unacked)
	})
	if ctrlErr != nil {
		return 0, win, false, ctrlErr
	}
	if opErr != nil {
		return 0, win, false, opErr
	}
	if unacked < 0 {
		return 0, win, false, errors.New("SIOCOUTQ: negative queue length")
	}
	return unacked, win, peerClosed, nil
}

// maxDiscardReads bounds what one connState call discards (4 KiB a read):
// an upstream sending without end costs a bounded read per check, and a
// dead one's leftover bytes are gone within a few checks.
const maxDiscardReads = 256

// readPeerWindow reads the peer's receive window; outq is SIOCOUTQ. The
// window is tcpi_snd_wnd (Linux 5.4 and later); an older kernel returns a
// shorter tcp_info without it, and the window then counts as open.
func readPeerWindow(fd uintptr, outq int) peerWindow {
	var ti unix.TCPInfo
	n := uint32(unsafe.Sizeof(ti))
	_, _, e := syscall.Syscall6(syscall.SYS_GETSOCKOPT, fd, syscall.IPPROTO_TCP, syscall.TCP_INFO,
		uintptr(unsafe.Pointer(&ti)), uintptr(unsafe.Pointer(&n)), 0)
	if e != 0 || uintptr(n) < unsafe.Offsetof(ti.Snd_wnd)+unsafe.Sizeof(ti.Snd_wnd) {
		return peerWindow{}
	}
	size := int64(ti.Snd_wnd)
	notSent := int64(ti.Notsent_bytes)
	inFlight := int64(outq) - notSent
	return peerWindow{size: size, closed: size == 0 || notSent > 0 && size-inFlight < int64(ti.Snd_mss)}
}
