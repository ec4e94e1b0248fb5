package relay

import (
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestUDPSocketDrops overflows the receive buffer of a real loopback
// socket, made tiny and never read, and checks that the kernel's drop
// counter read for it rises, directly and through the collector.
func TestUDPSocketDrops(t *testing.T) {
	for _, network := range []struct{ name, addr string }{{"udp4", "127.0.0.1:0"}, {"udp6", "[::1]:0"}} {
		t.Run(network.name, func(t *testing.T) {
			rc, err := net.ListenPacket(network.name, network.addr)
			if err != nil {
				skipOrFail(t, "no %s loopback: %v", network.name, err)
			}
			defer rc.Close()
			conn := rc.(*net.UDPConn)
			// The kernel raises a tiny SO_RCVBUF to its minimum, a few KiB:
			// room for a handful of datagrams.
			setKernelRcvbuf(t, conn, 1)

			before, err := udpSocketDrops(conn)
			if err != nil {
				t.Fatalf("udpSocketDrops before: %v", err)
			}
			if before != 0 {
				t.Fatalf("drops of a new socket = %d, want 0", before)
			}

			sc, err := net.Dial(network.name, rc.LocalAddr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer sc.Close()
			payload := make([]byte, 1000)
			const sent = 200
			for range sent {
				if _, err := sc.Write(payload); err != nil {
					t.Fatal(err)
				}
			}

			// Loopback delivers (or drops) within the send call; poll a
			// little anyway rather than assume it.
			var after uint64
			deadline := time.Now().Add(5 * time.Second)
			for time.Now().Before(deadline) {
				if after, err = udpSocketDrops(conn); err != nil {
					t.Fatalf("udpSocketDrops after: %v", err)
				}
				if after > before {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if after <= before || after > sent {
				t.Fatalf("drops went from %d to %d after %d datagrams into a full buffer, want a rise of at most %d", before, after, sent, sent)
			}

			reg := prometheus.NewRegistry()
			reg.MustRegister(newUDPDropsCollector(func() []udpSocket {
				return []udpSocket{{listener: "syslog-udp", conn: conn}}
			}))
			got := kernelDropsSample(t, reg, "relay_listener_kernel_drops_total", "syslog-udp")
			if got != float64(after) {
				t.Errorf("relay_listener_kernel_drops_total{listener=\"syslog-udp\"} = %v, want %d", got, after)
			}

			// A closed socket disappears from the metric instead of
			// failing the scrape.
			rc.Close()
			if n := kernelDropsSamples(t, reg, "relay_listener_kernel_drops_total"); n != 0 {
				t.Errorf("%d samples after the socket closed, want 0", n)
			}
		})
	}
}

func setKernelRcvbuf(t *testing.T, c *net.UDPConn, size int) {
	t.Helper()
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, size)
	}); err != nil {
		t.Fatal(err)
	}
	if serr != nil {
		t.Fatal(serr)
	}
}

func kernelDropsSample(t *testing.T, reg *prometheus.Registry, name, listener string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "listener" && l.GetValue() == listener {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no sample %s{listener=%q}", name, listener)
	return 0
}

func kernelDropsSamples(t *testing.T, reg *prometheus.Registry, name string) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return len(mf.GetMetric())
		}
	}
	return 0
}

func TestParseUDPDrops(t *testing.T) {
	t.Parallel()
	const table = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops             
  123: 0100007F:14BA 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4242 2 0000000000000000 17        
  456: 00000000:0202 00000000:0000 07 00000000:00001200 00:00000000 00000000   104        0 99 2 0000000000000000 0         
`
	const table6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  789: 00000000000000000000000001000000:14BA 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 5151 2 0000000000000000 18446744073709551615
`
	drops := map[uint64]uint64{}
	for _, text := range []string{table, table6} {
		if err := parseUDPDrops(strings.NewReader(text), drops); err != nil {
			t.Fatalf("parseUDPDrops: %v", err)
		}
	}
	want := map[uint64]uint64{4242: 17, 99: 0, 5151: 18446744073709551615}
	if len(drops) != len(want) {
		t.Errorf("parsed %v, want %v", drops, want)
	}
	for ino, n := range want {
		if drops[ino] != n {
			t.Errorf("drops[%d] = %d, want %d", ino, drops[ino], n)
		}
	}

	for _, bad := range []string{
		"header\n  1: 0100007F:14BA 00000000:0000 07\n",
		"header\n  1: 0100007F:14BA 00000000:0000 07 00000000:00000000 00:00000000 00000000 0 0 x 2 0 5\n",
		"header\n  1: 0100007F:14BA 00000000:0000 07 00000000:00000000 00:00000000 00000000 0 0 7 2 0 -1\n",
	} {
		if err := parseUDPDrops(strings.NewReader(bad), map[uint64]uint64{}); err == nil {
			t.Errorf("parseUDPDrops(%q) = nil error, want one", bad)
		}
	}
}
