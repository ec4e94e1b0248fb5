package testpeer

import (
	"errors"
	"net"
	"sync"
	"testing"
)

// LossyUDP is a UDP forwarder on loopback that stands for a lossy link: it
// passes every datagram to target except those drop selects.
type LossyUDP struct {
	in   *net.UDPConn
	out  net.Conn
	wg   sync.WaitGroup
	drop func([]byte) bool
}

// NewLossyUDP listens on a free loopback port and forwards to target;
// t.Cleanup stops it.
func NewLossyUDP(t testing.TB, target string, drop func([]byte) bool) *LossyUDP {
	t.Helper()
	in, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	_ = in.SetReadBuffer(8 << 20)
	out, err := net.Dial("udp", target)
	if err != nil {
		t.Fatal(err)
	}
	l := &LossyUDP{in: in, out: out, drop: drop}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		buf := make([]byte, 65536)
		for {
			n, _, err := in.ReadFromUDP(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			if !l.drop(buf[:n]) {
				_, _ = out.Write(buf[:n])
			}
		}
	}()
	t.Cleanup(func() { in.Close(); l.wg.Wait(); out.Close() })
	return l
}

// Addr is where to send.
func (l *LossyUDP) Addr() string { return l.in.LocalAddr().String() }
