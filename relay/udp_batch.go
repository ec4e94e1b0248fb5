package relay

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"time"
)

// A datagram listener runs two goroutines: a reader that takes datagrams off
// the socket, many per system call where the system has recvmmsg, and a
// handler that checks, routes and appends them to the queues. A handler that
// waits for a queue append or for a CPU then does not keep the socket
// unread: the reader goes on emptying the kernel's receive buffer, which at
// 200k datagrams/s holds only tens of milliseconds. The reader copies the
// datagrams it reads into chunks, packed, so that a small datagram costs its
// own length and not a buffer of max_message_size; the chunks go to the
// handler through a channel and come back through another. When every chunk
// is waiting for the handler the reader waits for one too (backpressure: the
// kernel's buffer fills and what it drops shows in RcvbufErrors), so nothing
// read is ever dropped inside the relay.
const (
	// chunkBytes is the packed size of one chunk, chunkDatagrams the most
	// datagrams it holds: 256 KiB is 1,280 datagrams of 200 bytes.
	chunkBytes     = 256 << 10
	chunkDatagrams = 1024
	// chunksPerListener bounds what is read and not yet handled: 2 MiB.
	chunksPerListener = 8
	// readBatchBytes bounds the buffers of one batch read, each of
	// max_message_size + 1 bytes, up to readBatchMax of them.
	readBatchBytes = 1 << 20
	readBatchMax   = 64
)

// readSlot is the buffer of one datagram of a batch read, and what the read
// put in it.
type readSlot struct {
	buf    []byte // max_message_size + 1: a longer datagram fills it
	n      int
	addr   netip.AddrPort // UDP senders
	source string         // Unix datagram senders that have a name
}

// newReadSlots returns the buffers of one batch read for datagrams of at
// most maxSize bytes: as many as readBatchBytes holds, from 1 to most.
func newReadSlots(maxSize, most int) []readSlot {
	size := maxSize + 1
	n := min(most, max(1, readBatchBytes/size))
	mem := make([]byte, n*size)
	slots := make([]readSlot, n)
	for i := range slots {
		slots[i].buf = mem[i*size : (i+1)*size : (i+1)*size]
	}
	return slots
}

// datagramReader reads datagrams into the slots it was made with (see
// newDatagramReader). With wait false it returns 0, nil instead of waiting
// when nothing is there.
type datagramReader interface {
	read(slots []readSlot, wait bool) (int, error)
}

// receivedDatagram is one datagram in a chunk: data[off:off+n].
type receivedDatagram struct {
	off, n    int32
	truncated bool
	addr      netip.AddrPort
	source    string
	at        time.Time
}

// datagramChunk is datagrams read and not yet handled, packed in data.
type datagramChunk struct {
	data  []byte
	grams []receivedDatagram
}

func newDatagramChunk() *datagramChunk {
	return &datagramChunk{data: make([]byte, 0, chunkBytes), grams: make([]receivedDatagram, 0, chunkDatagrams)}
}

// fits reports whether a datagram of n bytes fits; an empty chunk takes any
// datagram, growing for one larger than chunkBytes.
func (c *datagramChunk) fits(n int) bool {
	return len(c.grams) == 0 || (len(c.grams) < chunkDatagrams && len(c.data)+n <= cap(c.data))
}

func (c *datagramChunk) add(data []byte, truncated bool, s *readSlot, at time.Time) {
	c.grams = append(c.grams, receivedDatagram{
		off: int32(len(c.data)), n: int32(len(data)), truncated: truncated,
		addr: s.addr, source: s.source, at: at,
	})
	c.data = append(c.data, data...)
}

func (c *datagramChunk) reset() {
	if cap(c.data) > 2*chunkBytes {
		c.data = make([]byte, 0, chunkBytes) // grown by a large datagram: do not keep it
	}
	clear(c.grams) // drop the source strings
	c.data, c.grams = c.data[:0], c.grams[:0]
}

// recvfromReader reads one datagram per system call, where there is no
// recvmmsg and on Unix datagram sockets, whose senders are rare and slow.
type recvfromReader struct {
	raw   syscall.RawConn
	zones zoneNames
}

// newRecvfromReader returns a reader of conn and its one slot.
func newRecvfromReader(conn net.PacketConn, maxSize int) (*recvfromReader, []readSlot, error) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil, nil, errors.New("socket does not expose its descriptor")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil, nil, err
	}
	return &recvfromReader{raw: raw}, newReadSlots(maxSize, 1), nil
}

func (r *recvfromReader) read(slots []readSlot, wait bool) (int, error) {
	s := &slots[0]
	var n int
	var from syscall.Sockaddr
	var opErr error
	got := false
	err := r.raw.Read(func(fd uintptr) bool {
		for {
			n, from, opErr = syscall.Recvfrom(int(fd), s.buf, syscall.MSG_DONTWAIT)
			switch {
			case opErr == syscall.EINTR:
				continue
			case opErr == syscall.EAGAIN:
				opErr = nil
				return !wait
			}
			got = opErr == nil
			return true
		}
	})
	if err != nil {
		return 0, err
	}
	if opErr != nil {
		return 0, os.NewSyscallError("recvfrom", opErr)
	}
	if !got {
		return 0, nil
	}
	s.n, s.addr, s.source = n, netip.AddrPort{}, ""
	switch a := from.(type) {
	case *syscall.SockaddrInet4:
		s.addr = netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *syscall.SockaddrInet6:
		s.addr = netip.AddrPortFrom(r.zones.addr(a.Addr, a.ZoneId), uint16(a.Port))
	case *syscall.SockaddrUnix:
		s.source = a.Name
	}
	return 1, nil
}

// zoneNames names IPv6 zones by interface, as the net package does.
type zoneNames map[uint32]string

func (z *zoneNames) addr(a [16]byte, zone uint32) netip.Addr {
	ip := netip.AddrFrom16(a)
	if zone == 0 {
		return ip
	}
	name, ok := (*z)[zone]
	if !ok {
		name = strconv.FormatUint(uint64(zone), 10)
		if ifi, err := net.InterfaceByIndex(int(zone)); err == nil {
			name = ifi.Name
		}
		if *z == nil {
			*z = zoneNames{}
		}
		(*z)[zone] = name
	}
	return ip.WithZone(name)
}
