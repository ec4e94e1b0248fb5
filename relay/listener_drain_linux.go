package relay

import (
	"net"
	"syscall"
	"unsafe"
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
	var info syscall.TCPInfo
	var errno syscall.Errno
	err = raw.Control(func(fd uintptr) {
		size := uint32(unsafe.Sizeof(info))
		_, _, errno = syscall.Syscall6(syscall.SYS_GETSOCKOPT, fd, syscall.SOL_TCP, syscall.TCP_INFO,
			uintptr(unsafe.Pointer(&info)), uintptr(unsafe.Pointer(&size)), 0)
	})
	if err != nil {
		return 0, err
	}
	if errno != 0 {
		return 0, errno
	}
	return int(info.Unacked), nil
}
