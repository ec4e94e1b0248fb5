//go:build !linux

package relay

import "net"

// newDatagramReader reads one datagram per system call: recvmmsg is
// Linux's.
func newDatagramReader(conn net.PacketConn, _ []readSlot) (datagramReader, error) {
	return newRecvfromReader(conn)
}
