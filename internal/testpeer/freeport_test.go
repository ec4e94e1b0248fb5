package testpeer

import (
	"fmt"
	"net"
	"testing"
)

// TestFreePortOutsideEphemeralRange: FreePort's ports are free for TCP and
// UDP and below the range the kernel gives outgoing connections, so that
// a relay restarted on one finds it still free.
func TestFreePortOutsideEphemeralRange(t *testing.T) {
	low, high := fixedPortRange()
	seen := map[int]bool{}
	for range 20 {
		port := FreePort(t)
		if port < low || port > high {
			t.Fatalf("FreePort = %d, outside %d-%d", port, low, high)
		}
		seen[port] = true
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Fatalf("port %d: %v", port, err)
		}
		l.Close()
	}
	// An outgoing connection gets a port from the ephemeral range, never
	// one of FreePort's.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if p := c.LocalAddr().(*net.TCPAddr).Port; p >= low && p <= high {
		t.Errorf("an outgoing connection got port %d, inside FreePort's range %d-%d", p, low, high)
	}
	if len(seen) < 2 {
		t.Errorf("20 calls gave %d distinct ports", len(seen))
	}
}
