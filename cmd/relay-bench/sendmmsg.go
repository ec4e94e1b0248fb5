package main

import (
	"errors"
	"net"
	"runtime"
	"syscall"
	"unsafe"
)

// The UDP load is sent with sendmmsg(2), many datagrams per system call,
// because on a 2-core machine every cycle the generator spends is taken
// from the target it measures. The syscall package has no sendmmsg, so it
// is called by number on the architectures where that number is known;
// elsewhere batchSender falls back to one write per datagram.
var sysSendmmsg = map[string]uintptr{"amd64": 307, "arm64": 269}[runtime.GOARCH]

// mmsghdr is struct mmsghdr of <sys/socket.h> on 64-bit Linux.
type mmsghdr struct {
	hdr syscall.Msghdr
	len uint32
	_   [4]byte
}

// batchSender sends up to len(bufs) datagrams per call on a connected UDP
// socket.
type batchSender struct {
	conn *net.UDPConn
	raw  syscall.RawConn
	bufs [][]byte
	iovs []syscall.Iovec
	hdrs []mmsghdr
}

func newBatchSender(conn *net.UDPConn, bufs [][]byte) (*batchSender, error) {
	s := &batchSender{conn: conn, bufs: bufs}
	if sysSendmmsg == 0 {
		return s, nil
	}
	raw, err := conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	s.raw = raw
	s.iovs = make([]syscall.Iovec, len(bufs))
	s.hdrs = make([]mmsghdr, len(bufs))
	for i, b := range bufs {
		s.iovs[i].Base = &b[0]
		s.iovs[i].SetLen(len(b))
		s.hdrs[i].hdr.Iov = &s.iovs[i]
		s.hdrs[i].hdr.Iovlen = 1
	}
	return s, nil
}

// send sends bufs[:n] and returns how many datagrams the kernel took. A
// datagram refused because of an earlier ICMP error is not retried: it
// counts as not sent, and the error is returned.
func (s *batchSender) send(n int) (int, error) {
	if s.raw == nil {
		for i := range n {
			if _, err := s.conn.Write(s.bufs[i]); err != nil {
				return i, err
			}
		}
		return n, nil
	}
	sent := 0
	var opErr error
	err := s.raw.Write(func(fd uintptr) bool {
		for sent < n {
			r, _, e := syscall.Syscall6(sysSendmmsg, fd, uintptr(unsafe.Pointer(&s.hdrs[sent])), uintptr(n-sent), 0, 0, 0)
			switch {
			case e == syscall.EAGAIN:
				return false // wait until the socket is writable
			case e == syscall.EINTR:
				continue
			case e != 0:
				opErr = e
				return true
			}
			sent += int(r)
		}
		return true
	})
	return sent, errors.Join(err, opErr)
}
