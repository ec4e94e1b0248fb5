package relay

import (
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// acceptQueueLen returns how many connections wait in ln's backlog to be
// accepted. For a listening socket Linux reports it in tcpi_unacked.
func acceptQueueLen(ln net.Listener) (int, error) {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return 0, nil
	}
	raw, err := tl.SyscallConn()
	if err != nil {
		return 0, err
	}
	var info *unix.TCPInfo
	var ierr error
	if err := raw.Control(func(fd uintptr) {
		info, ierr = unix.GetsockoptTCPInfo(int(fd), unix.SOL_TCP, unix.TCP_INFO)
	}); err != nil {
		return 0, err
	}
	if ierr != nil {
		return 0, ierr
	}
	return int(info.Unacked), nil
}

// connQuiet reports whether c has nothing waiting to be read (SIOCINQ) and
// has received no data for at least quiet (tcpi_last_data_recv). A
// connection whose reader is behind has bytes waiting; one whose sender is
// still writing keeps receiving.
func connQuiet(c net.Conn, quiet time.Duration) bool {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return true
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return true
	}
	var queued int
	var info *unix.TCPInfo
	var qerr, ierr error
	if err := raw.Control(func(fd uintptr) {
		queued, qerr = unix.IoctlGetInt(int(fd), unix.SIOCINQ)
		info, ierr = unix.GetsockoptTCPInfo(int(fd), unix.SOL_TCP, unix.TCP_INFO)
	}); err != nil || qerr != nil || ierr != nil {
		return true // closed, or the kernel does not tell: nothing to wait for
	}
	return queued == 0 && time.Duration(info.Last_data_recv)*time.Millisecond >= quiet
}
