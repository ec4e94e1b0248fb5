package relay

import "syscall"

// setSocketReadBuffer sets fd's receive buffer, past net.core.rmem_max when
// the process has CAP_NET_ADMIN, and returns the usable size granted.
func setSocketReadBuffer(fd, size int) (int, error) {
	var opErr error
	if e := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, size); e != nil {
		opErr = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF, size)
	}
	v, e := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF)
	if e != nil && opErr == nil {
		opErr = e
	}
	// Linux reports twice the usable size (it counts its bookkeeping).
	return v / 2, opErr
}
