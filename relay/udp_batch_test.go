package relay

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relay-syslog/relay/internal/testpeer"
)

// datagramText is datagram i of sender s: size bytes, with a line feed
// inside, so that a boundary that moved shows as a changed message.
func datagramText(s, i, size int) string {
	head := fmt.Sprintf("<13>s%d n%d\nx", s, i)
	if size <= len(head) {
		return head
	}
	return head + strings.Repeat(string(rune('a'+i%26)), size-len(head))
}

// sendWindows sends msgs over conns in turn, in windows small enough for
// the smallest receive buffer a system grants, and waits after each window
// until the relay has read it: a burst that cannot overflow the socket, so
// every datagram must arrive.
func sendWindows(t *testing.T, r *testRelay, listener string, conns []net.Conn, msgs [][]string) {
	t.Helper()
	const window = 48
	sent := 0
	for i := 0; ; i++ {
		more := false
		for s, c := range conns {
			if i < len(msgs[s]) {
				more = true
				if _, err := c.Write([]byte(msgs[s][i])); err != nil {
					t.Fatal(err)
				}
				sent++
			}
		}
		if sent%window < len(conns) || !more {
			want := float64(sent)
			if !testpeer.WaitFor(30*time.Second, func() bool {
				return r.metric("relay_listener_messages_received_total", "listener", listener) >= want
			}) {
				t.Fatalf("the relay read %v of %d datagrams sent",
					r.metric("relay_listener_messages_received_total", "listener", listener), sent)
			}
		}
		if !more {
			return
		}
	}
}

// TestUDPBatchedReadsKeepEveryDatagram sends a bounded burst from two
// senders, sizes from a few bytes to past max_message_size: every datagram
// arrives once, whole or truncated at max_message_size (and counted), in
// its sender's order.
func TestUDPBatchedReadsKeepEveryDatagram(t *testing.T) {
	t.Parallel()
	const maxSize, perSender = 1500, 1500
	recv := testpeer.NewReceiver(t, "127.0.0.1:0")
	r := startRelay(t, t.TempDir(), fmt.Sprintf(`data_dir = "{{DATA}}"
[[listener]]
name = "udp"
protocol = "udp"
address = "127.0.0.1:0"
max_message_size = %d
`, maxSize)+tcpOutputTOML("head", recv.Addr())+`
[[route]]
name = "all"
outputs = ["head"]
`)
	var conns []net.Conn
	msgs := make([][]string, 2)
	want := map[string][]string{}
	truncated := 0
	for s := range msgs {
		c, err := net.Dial("udp", r.addr("udp"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
		for i := range perSender {
			size := 1 + (i*97+s*13)%(maxSize+300)
			m := datagramText(s, i, size)
			msgs[s] = append(msgs[s], m)
			if len(m) > maxSize {
				m = m[:maxSize]
				truncated++
			}
			key := fmt.Sprintf("<13>s%d ", s)
			want[key] = append(want[key], m)
		}
	}
	sendWindows(t, r, "udp", conns, msgs)
	total := 2 * perSender
	if !testpeer.WaitFor(30*time.Second, func() bool { return recv.Count() >= total }) {
		t.Fatalf("delivered %d messages, want %d", recv.Count(), total)
	}
	got := map[string][]string{}
	for _, m := range recv.Messages() {
		key, _, _ := strings.Cut(m, "n")
		got[key] = append(got[key], m)
	}
	for key, w := range want {
		g := got[key]
		if len(g) != len(w) {
			t.Errorf("sender %q: %d messages, want %d", key, len(g), len(w))
			continue
		}
		for i := range w {
			if g[i] != w[i] {
				t.Errorf("sender %q message %d = %.30q… (%d bytes), want %.30q… (%d bytes)", key, i, g[i], len(g[i]), w[i], len(w[i]))
				break
			}
		}
	}
	if n := r.metric("relay_listener_errors_total", "listener", "udp", "reason", "truncated"); n != float64(truncated) {
		t.Errorf("truncated count = %v, want %d", n, truncated)
	}
}

// TestUnixDatagramListenerReadsEveryDatagram: a Unix datagram listener
// (read one datagram per call) gets every datagram of a burst, whole.
func TestUnixDatagramListenerReadsEveryDatagram(t *testing.T) {
	t.Parallel()
	recv := testpeer.NewReceiver(t, "127.0.0.1:0")
	path := filepath.Join(t.TempDir(), "log.sock")
	r := startRelay(t, t.TempDir(), `data_dir = "{{DATA}}"
[[listener]]
name = "dev-log"
protocol = "unix"
address = "`+path+`"
`+tcpOutputTOML("head", recv.Addr())+`
[[route]]
name = "all"
outputs = ["head"]
`)
	c, err := net.Dial("unixgram", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var msgs []string
	for i := range 500 {
		msgs = append(msgs, datagramText(0, i, 1+i*7%900))
	}
	sendWindows(t, r, "dev-log", []net.Conn{c}, [][]string{msgs})
	if !testpeer.WaitFor(30*time.Second, func() bool { return recv.Count() >= len(msgs) }) {
		t.Fatalf("delivered %d messages, want %d", recv.Count(), len(msgs))
	}
	for i, m := range recv.Messages() {
		if m != msgs[i] {
			t.Fatalf("message %d = %.30q… (%d bytes), want %.30q… (%d bytes)", i, m, len(m), msgs[i], len(msgs[i]))
		}
	}
}

// TestReadChunksSplitsBatches fills a socket before its reader starts, so
// that one batch read returns many datagrams, and hands the reader chunks
// too small for them: each datagram lands whole in one chunk, with its
// sender, and one longer than max_message_size is cut there and marked.
func TestReadChunksSplitsBatches(t *testing.T) {
	t.Parallel()
	const maxSize = 1000
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sender, err := net.Dial("udp", conn.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer sender.Close()
	var sent []string
	for i := range 40 {
		size := 1 + i*53%(maxSize+200)
		if i == 7 {
			size = maxSize
		}
		m := datagramText(0, i, size)
		if _, err := sender.Write([]byte(m)); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, m)
	}
	waitQueued(t, conn)

	l := &datagramListener{cfg: ListenerConfig{Name: "t", Protocol: ProtocolUDP, MaxMessageSize: maxSize}, done: make(chan struct{})}
	reader, slots, err := newDatagramReader(conn, maxSize)
	if err != nil {
		t.Fatal(err)
	}
	const chunkSize = 2048
	full := make(chan *datagramChunk, 3)
	free := make(chan *datagramChunk, 3)
	for range 3 {
		free <- &datagramChunk{data: make([]byte, 0, chunkSize)}
	}
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		l.readChunks(reader, slots, full, free)
	}()

	var got []receivedDatagram
	var data []string
	chunks := 0
	deadline := time.After(30 * time.Second)
	for len(got) < len(sent) {
		select {
		case c := <-full:
			chunks++
			if len(c.grams) > 1 && len(c.data) > chunkSize {
				t.Errorf("a chunk of %d bytes holds %d bytes in %d datagrams", chunkSize, len(c.data), len(c.grams))
			}
			for _, g := range c.grams {
				got = append(got, g)
				data = append(data, string(c.data[g.off:g.off+g.n]))
			}
			c.reset()
			free <- c
		case <-deadline:
			t.Fatalf("read %d of %d datagrams in 30 s", len(got), len(sent))
		}
	}
	conn.Close()
	<-readerDone
	if chunks < 2 {
		t.Errorf("%d datagrams came in %d chunk of 2 KiB", len(sent), chunks)
	}
	for i, m := range sent {
		want, trunc := m, false
		if len(m) > maxSize {
			want, trunc = m[:maxSize], true
		}
		if data[i] != want || got[i].truncated != trunc {
			t.Errorf("datagram %d: %d bytes, truncated %v; want %d bytes, truncated %v", i, len(data[i]), got[i].truncated, len(want), trunc)
		}
		if got[i].addr.String() != sender.LocalAddr().String() {
			t.Errorf("datagram %d from %v, want %v", i, got[i].addr, sender.LocalAddr())
		}
	}
}

// waitQueued waits until the kernel holds a datagram for conn: loopback
// may deliver after the sender's write returned.
func waitQueued(t *testing.T, conn net.PacketConn) {
	t.Helper()
	raw, err := conn.(*net.UDPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var b [1]byte
	if !testpeer.WaitFor(30*time.Second, func() bool {
		queued := false
		_ = raw.Control(func(fd uintptr) {
			n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			queued = err == nil && n > 0
		})
		return queued
	}) {
		t.Fatal("nothing queued on the socket")
	}
}
