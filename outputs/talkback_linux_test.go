package outputs

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/relay-syslog/relay/internal/testpeer"
	"github.com/relay-syslog/relay/queue"
)

// TestTCPResetBehindUpstreamData: a plain TCP upstream that sends bytes
// back (a banner, an echo, a misdirected protocol) and later dies with
// messages unread in its buffer resets the connection. The bytes it sent
// sit unread in the relay's socket buffer, ahead of the reset; a peek at
// the socket sees them, not the reset, so the messages its kernel
// acknowledged and its process never read must still not count as
// delivered.
func TestTCPResetBehindUpstreamData(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	first := []queue.Entry{{Data: []byte("<13>read by the upstream")}}
	second := []queue.Entry{{Data: []byte("<13>held unread when the upstream dies")}}
	firstLen := len(first[0].Data) + 1

	accepted := make(chan *net.TCPConn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		accepted <- c.(*net.TCPConn)
	}()
	d := NewTCP(TCPOptions{Address: ln.Addr().String(), Framing: LF, ConnectTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, ConfirmDelay: 50 * time.Millisecond})
	ctx := context.Background()
	if err := d.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	up := <-accepted
	if _, err := up.Write([]byte("220 hello from a chatty upstream\r\n")); err != nil {
		t.Fatal(err)
	}
	off1, err := d.Write(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(up, make([]byte, firstLen)); err != nil {
		t.Fatal(err)
	}
	// The clock is the test's: a time far ahead confirms whatever the
	// upstream's kernel acknowledged, so only the connection's state
	// decides.
	later := func() time.Time { return time.Now().Add(time.Hour) }
	if !testpeer.WaitFor(30*time.Second, func() bool {
		s, err := d.Settled(later())
		return err == nil && s == off1
	}) {
		t.Fatal("the first message, read by the upstream, was not confirmed")
	}

	if _, err := d.Write(ctx, second); err != nil {
		t.Fatal(err)
	}
	// The second message reaches the upstream's kernel; its process dies
	// without reading it, so its kernel resets the connection.
	if !testpeer.WaitFor(30*time.Second, func() bool { return unreadBytes(t, up) > 0 }) {
		t.Fatal("the second message never reached the upstream's socket")
	}
	up.Close()
	if !testpeer.WaitFor(30*time.Second, func() bool { return tcpState(t, d.raw) == tcpClosed }) {
		t.Fatal("the reset never reached the relay's socket")
	}

	settled, err := d.Settled(later())
	if settled != off1 {
		t.Errorf("settled offset %d after the reset, want %d: the message the upstream never read counts as delivered", settled, off1)
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("Settled after the reset: err %v, want a connection reset", err)
	}
}

// unreadBytes is what c's socket holds unread (SIOCINQ).
func unreadBytes(t *testing.T, c *net.TCPConn) int {
	t.Helper()
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var ioErr error
	if err := raw.Control(func(fd uintptr) { n, ioErr = unix.IoctlGetInt(int(fd), unix.SIOCINQ) }); err != nil {
		t.Fatal(err)
	}
	if ioErr != nil {
		t.Fatal(ioErr)
	}
	return n
}

// tcpClosed is TCP_CLOSE of the kernel's tcp_states.h, the state a
// socket is in once it took a reset.
const tcpClosed = 7

// tcpState is the kernel's TCP state of c (TCP_INFO).
func tcpState(t *testing.T, c *net.TCPConn) uint8 {
	t.Helper()
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var info *unix.TCPInfo
	var soErr error
	if err := raw.Control(func(fd uintptr) { info, soErr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) }); err != nil {
		t.Fatal(err)
	}
	if soErr != nil {
		t.Fatal(soErr)
	}
	return info.State
}
