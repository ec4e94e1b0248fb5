//go:build !linux

package relay

import "syscall"

// setSocketReadBuffer sets fd's receive buffer and returns the size granted.
// Without Linux's SO_RCVBUFFORCE the system's cap (kern.ipc.maxsockbuf on
// the BSDs and macOS) applies to every process.
func setSocketReadBuffer(fd, size int) (int, error) {
	opErr := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF, size)
	v, e := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF)
	if e != nil && opErr == nil {
		opErr = e
	}
	return v, opErr
}
