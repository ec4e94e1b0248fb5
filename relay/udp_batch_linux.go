package relay

import (
	"net"
	"net/netip"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsghdr is struct mmsghdr of <sys/socket.h>; Go pads it as C does.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// mmsgReader reads up to len(slots) UDP datagrams per recvmmsg(2) call
// into the slots it was made for.
type mmsgReader struct {
	raw   syscall.RawConn
	hdrs  []mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6 // large enough for IPv4 too
	zones zoneNames
}

// newDatagramReader returns a reader of conn and the slots it reads into:
// UDP datagrams many per recvmmsg call, Unix datagrams one at a time.
func newDatagramReader(conn net.PacketConn, maxSize int) (datagramReader, []readSlot, error) {
	udp, ok := conn.(*net.UDPConn)
	if !ok {
		return newRecvfromReader(conn, maxSize)
	}
	raw, err := udp.SyscallConn()
	if err != nil {
		return nil, nil, err
	}
	slots := newReadSlots(maxSize, readBatchMax)
	r := &mmsgReader{
		raw:   raw,
		hdrs:  make([]mmsghdr, len(slots)),
		iovs:  make([]unix.Iovec, len(slots)),
		names: make([]unix.RawSockaddrInet6, len(slots)),
	}
	for i := range slots {
		r.iovs[i].Base = &slots[i].buf[0]
		r.iovs[i].SetLen(len(slots[i].buf))
		r.hdrs[i].hdr.Iov = &r.iovs[i]
		r.hdrs[i].hdr.SetIovlen(1)
		r.hdrs[i].hdr.Name = (*byte)(unsafe.Pointer(&r.names[i]))
	}
	return r, slots, nil
}

func (r *mmsgReader) read(slots []readSlot, wait bool) (int, error) {
	for i := range r.hdrs {
		// The kernel writes back the length of each sender's address.
		r.hdrs[i].hdr.Namelen = unix.SizeofSockaddrInet6
	}
	n := 0
	var opErr error
	err := r.raw.Read(func(fd uintptr) bool {
		for {
			got, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])), uintptr(len(r.hdrs)), unix.MSG_DONTWAIT, 0, 0)
			switch e {
			case 0:
				n = int(got)
				return true
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return !wait
			default:
				opErr = e
				return true
			}
		}
	})
	if err != nil {
		return 0, err
	}
	if opErr != nil {
		return 0, os.NewSyscallError("recvmmsg", opErr)
	}
	for i := range n {
		s := &slots[i]
		s.n, s.addr, s.source = int(r.hdrs[i].n), r.sender(&r.names[i]), ""
	}
	return n, nil
}

// sender reads a sockaddr_in or sockaddr_in6 as the net package would.
func (r *mmsgReader) sender(sa *unix.RawSockaddrInet6) netip.AddrPort {
	switch sa.Family {
	case unix.AF_INET:
		a := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), netPort(a.Port))
	case unix.AF_INET6:
		return netip.AddrPortFrom(r.zones.addr(sa.Addr, sa.Scope_id), netPort(sa.Port))
	}
	return netip.AddrPort{}
}

// netPort reads a port stored in network byte order.
func netPort(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return uint16(b[0])<<8 | uint16(b[1])
}
