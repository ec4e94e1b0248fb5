//go:build !linux

package relay

import "net"

// newDatagramReader returns a reader of conn and the slots it reads into:
// one, since recvmmsg is Linux's.
func newDatagramReader(conn net.PacketConn, maxSize int) (datagramReader, []readSlot, error) {
	return newRecvfromReader(conn, maxSize)
}
