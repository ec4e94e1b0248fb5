package relay

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relay-syslog/relay/internal/relp"
	"github.com/relay-syslog/relay/internal/testpeer"
)

// reloadText parses text ("{{DATA}}" replaced by dir) and applies it.
func reloadText(t *testing.T, r *testRelay, dir, text string) {
	t.Helper()
	cfg, err := ParseConfig("reload.toml", []byte(strings.ReplaceAll(text, "{{DATA}}", dir)))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.srv.Reload(cfg); err != nil {
		t.Fatalf("Reload: %v", err)
	}
}

// writeSeq writes messages from..to-1 of run on c, octet-counted.
func writeSeq(t *testing.T, c net.Conn, run string, from, to int) {
	t.Helper()
	var b strings.Builder
	for i := from; i < to; i++ {
		m := testpeer.SeqMessage(run, i)
		fmt.Fprintf(&b, "%d %s", len(m), m)
	}
	if _, err := io.WriteString(c, b.String()); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// TestReloadListenerInPlace: reloads that change a listener's settings but
// not its protocol or address keep its socket and its connections. The TCP
// listener on port 0 keeps its port; a connection opened before the
// reloads goes on delivering; new connections get the new settings (here
// allowed_networks, which then refuses them). The UDP listener applies its
// new allowed_networks at once, on the same socket; the unix listener takes
// its new socket_mode and keeps its socket file.
func TestReloadListenerInPlace(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "log.sock")
	out := filepath.Join(dir, "out.log")
	base := `data_dir = "{{DATA}}"` + listenersTOML() + fmt.Sprintf(`max_connections = 10
idle_timeout = "60s"

[[listener]]
name = "unix"
protocol = "unix"
address = %q
socket_mode = "0666"
`, sock) + fileOutputTOML(out)
	r := startRelay(t, dir, base)
	tcpAddr, udpAddr := r.addr("tcp"), r.addr("udp")
	c, err := net.Dial("tcp", tcpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	writeSeq(t, c, "kept", 0, 100)

	const reloads = 10
	for i := range reloads {
		next := strings.Replace(base, "max_connections = 10", fmt.Sprintf("max_connections = %d", 11+i), 1)
		next = strings.Replace(next, `idle_timeout = "60s"`, fmt.Sprintf(`idle_timeout = "%ds"`, 61+i), 1)
		reloadText(t, r, dir, next)
		writeSeq(t, c, "kept", 100*(i+1), 100*(i+2))
	}
	closed := strings.Replace(base, "max_connections = 10", "max_connections = 10\nallowed_networks = [\"192.0.2.0/24\"]", 1)
	closed = strings.Replace(closed, "protocol = \"udp\"\naddress = \"127.0.0.1:0\"\n", "protocol = \"udp\"\naddress = \"127.0.0.1:0\"\nallowed_networks = [\"192.0.2.0/24\"]\n", 1)
	closed = strings.Replace(closed, `socket_mode = "0666"`, `socket_mode = "0600"`, 1)
	reloadText(t, r, dir, closed)
	const kept = 100 * (reloads + 2)
	writeSeq(t, c, "kept", 100*(reloads+1), kept)

	if got := r.addr("tcp"); got != tcpAddr {
		t.Errorf("tcp listener moved from %s to %s", tcpAddr, got)
	}
	if got := r.addr("udp"); got != udpAddr {
		t.Errorf("udp listener moved from %s to %s", udpAddr, got)
	}
	if !testpeer.WaitFor(20*time.Second, func() bool { return len(testpeer.ReadLines(out)) >= kept }) {
		t.Fatalf("output has %d lines, want %d", len(testpeer.ReadLines(out)), kept)
	}
	if tally := testpeer.Check("kept", kept, testpeer.ReadLines(out)); len(tally.Missing) > 0 || tally.Duplicates > 0 {
		t.Errorf("the connection kept through the reloads: %v", tally)
	}
	_ = testpeer.SendTCP(tcpAddr, "new", 0, 1, true) // refused: reset
	if !testpeer.WaitFor(10*time.Second, func() bool {
		return r.metric("relay_listener_errors_total", "listener", "tcp", "reason", "denied") >= 1
	}) {
		t.Error("a new tcp connection from outside the new allowed_networks was not refused")
	}
	if err := testpeer.SendUDP(udpAddr, "udp", 0, 1); err != nil {
		t.Fatal(err)
	}
	if !testpeer.WaitFor(10*time.Second, func() bool {
		return r.metric("relay_listener_errors_total", "listener", "udp", "reason", "denied") >= 1
	}) {
		t.Error("a datagram from outside the new allowed_networks was not refused")
	}
	st, err := os.Stat(sock)
	if err != nil {
		t.Fatalf("the unix socket file is gone after the reloads: %v", err)
	}
	if mode := st.Mode().Perm(); mode != 0o600 {
		t.Errorf("socket mode %o, want 600", mode)
	}
	if err := testpeer.SendUnixgram(sock, "unix", 0, 10); err != nil {
		t.Fatal(err)
	}
	if !testpeer.WaitFor(10*time.Second, func() bool { return testpeer.Check("unix", 10, testpeer.ReadLines(out)).Delivered() == 10 }) {
		t.Errorf("unix listener after the reloads: %v", testpeer.Check("unix", 10, testpeer.ReadLines(out)))
	}
	if got := r.metric("relay_listener_connections", "listener", "tcp"); got != 1 {
		t.Errorf("relay_listener_connections = %v, want 1 (the kept connection)", got)
	}
}

// stalledListenerTOML is a relay whose only output is down and whose queue
// blocks its listeners once 64 KiB wait: what senders send beyond that
// stays in the kernel's socket buffers.
func stalledListenerTOML(listener, upstream string) string {
	return `data_dir = "{{DATA}}"` + listener + tcpOutputTOML("head", upstream) + `queue.max_bytes = "64KiB"
queue.full_policy = "block"
queue.block_timeout = "60s"
[[route]]
name = "all"
outputs = ["head"]
`
}

// TestReloadRebindReadsTCPDry: a reload moves a TCP listener to another
// port while a sender's connection holds thousands of messages the kernel
// accepted and the relay has not read (its queue blocks). The old socket
// is read dry before it closes: every message is accepted and delivered,
// then the connection is closed. The new port serves.
func TestReloadRebindReadsTCPDry(t *testing.T) {
	dir := t.TempDir()
	upstream := fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t))
	listener := fmt.Sprintf("\n[[listener]]\nname = \"tcp\"\nprotocol = \"tcp\"\naddress = \"127.0.0.1:%d\"\n", testpeer.FreePort(t))
	base := stalledListenerTOML(listener, upstream)
	r := startRelay(t, dir, base)
	c, err := net.Dial("tcp", r.addr("tcp"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 4000 // about 520 KiB: far more than the queue takes
	writeSeq(t, c, "dry", 0, n)
	if !testpeer.WaitFor(20*time.Second, func() bool { return r.metric("relay_listener_messages_received_total") > 0 }) {
		t.Fatal("nothing received")
	}

	moved := strings.Replace(base, listener, "\n[[listener]]\nname = \"tcp\"\nprotocol = \"tcp\"\naddress = \"127.0.0.1:0\"\n", 1)
	moved = strings.Replace(moved, `queue.max_bytes = "64KiB"`, `queue.max_bytes = "64MiB"`, 1)
	reloadText(t, r, dir, moved)
	if got := r.metric("relay_messages_accepted_total"); got != n {
		t.Errorf("accepted %v of the %d messages the kernel held", got, n)
	}
	// The old connection was read to its end and closed by the relay.
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("read on the drained connection = %v, want EOF", err)
	}
	if err := testpeer.SendTCP(r.addr("tcp"), "after", 0, 100, true); err != nil {
		t.Fatalf("the new address: %v", err)
	}
	recv := testpeer.NewReceiver(t, upstream)
	if !testpeer.WaitFor(30*time.Second, func() bool { return recv.Count() >= n+100 }) {
		t.Fatalf("upstream got %d of %d", recv.Count(), n+100)
	}
	if tally := testpeer.Check("dry", n, recv.Messages()); len(tally.Missing) > 0 {
		t.Errorf("%v", tally)
	}
}

// TestReloadRebindReadsUDPDry: the same for a UDP listener: datagrams wait
// in the old socket while the relay's queue blocks, and the reload that
// moves the listener waits for them to be read before it closes the
// socket. They are read once the upstream appears, during the reload, and
// its worker makes room in the queue.
func TestReloadRebindReadsUDPDry(t *testing.T) {
	dir := t.TempDir()
	upstream := fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t))
	listener := fmt.Sprintf("\n[[listener]]\nname = \"udp\"\nprotocol = \"udp\"\naddress = \"127.0.0.1:%d\"\n", testpeer.FreePort(t))
	base := stalledListenerTOML(listener, upstream)
	r := startRelay(t, dir, base)
	// 3000 datagrams of about 130 bytes: the queue takes a few hundred,
	// the rest waits in the socket's receive buffer.
	const n = 3000
	if err := testpeer.SendUDP(r.addr("udp"), "dry", 0, n); err != nil {
		t.Fatal(err)
	}
	if !testpeer.WaitFor(20*time.Second, func() bool { return r.metric("relay_listener_messages_received_total") > 0 }) {
		t.Fatal("nothing received")
	}
	drops := r.metric("relay_listener_kernel_drops_total")
	moved := strings.Replace(base, listener, "\n[[listener]]\nname = \"udp\"\nprotocol = \"udp\"\naddress = \"127.0.0.1:0\"\n", 1)
	recv := make(chan *testpeer.Receiver, 1)
	go func() {
		time.Sleep(300 * time.Millisecond) // the fault's moment: within the reload
		rc, err := testpeer.ListenReceiver(upstream, false)
		if err != nil {
			t.Error(err)
		}
		recv <- rc
	}()
	reloadText(t, r, dir, moved)
	up := <-recv
	if up == nil {
		t.FailNow()
	}
	defer up.Close()
	if got := r.metric("relay_messages_accepted_total"); got+drops != n {
		t.Errorf("accepted %v and the kernel dropped %v of the %d datagrams sent", got, drops, n)
	}
	if drops > 0 {
		t.Logf("the kernel dropped %v datagrams before the reload", drops)
	}
	if err := testpeer.SendUDP(r.addr("udp"), "after", 0, 10); err != nil {
		t.Fatal(err)
	}
	if !testpeer.WaitFor(20*time.Second, func() bool { return up.Count() >= n-int(drops)+10 }) {
		t.Errorf("upstream got %d of %d", up.Count(), n-int(drops)+10)
	}
}

// TestReloadRELPListenerInPlace: a RELP session open across reloads that
// change its listener's settings goes on being answered; when the relay
// stops, the listener that accepted it (retired by the reloads) ends it
// cleanly with serverclose, and the relay stops promptly.
func TestReloadRELPListenerInPlace(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.log")
	base := `data_dir = "{{DATA}}"` + relpListenerTOML("idle_timeout = \"60s\"\n") + fileOutputTOML(out)
	r := startRelay(t, dir, base)
	addr := r.addr("relp")
	cl, _ := dialRELP(t, addr)
	if _, err := cl.Open(); err != nil {
		t.Fatal(err)
	}
	send := func(i int) {
		t.Helper()
		txnr, err := cl.Syslog([]byte(testpeer.SeqMessage("relp", i)))
		if err == nil {
			err = cl.Flush()
		}
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		f, err := cl.Receive()
		if err != nil || f.Txnr != txnr || !strings.HasPrefix(string(f.Data), "200") {
			t.Fatalf("message %d: answer %d %q, %v; want %d 200", i, f.Txnr, f.Data, err, txnr)
		}
	}
	const reloads = 5
	for i := range reloads {
		send(i)
		reloadText(t, r, dir, strings.Replace(base, `idle_timeout = "60s"`, fmt.Sprintf(`idle_timeout = "%ds"`, 61+i), 1))
	}
	send(reloads)
	if got := r.addr("relp"); got != addr {
		t.Errorf("relp listener moved from %s to %s", addr, got)
	}
	if !testpeer.WaitFor(20*time.Second, func() bool { return len(testpeer.ReadLines(out)) >= reloads+1 }) {
		t.Errorf("output has %d lines, want %d", len(testpeer.ReadLines(out)), reloads+1)
	}
	if took := r.stop(); took > 10*time.Second {
		t.Errorf("stop took %v", took)
	}
	var last relp.Frame
	for {
		f, err := cl.Receive()
		if err != nil {
			break
		}
		last = f
	}
	if string(last.Command) != "serverclose" {
		t.Errorf("last frame from the relay at stop: %q, want serverclose", last.Command)
	}
	if tally := testpeer.Check("relp", reloads+1, testpeer.ReadLines(out)); len(tally.Missing) > 0 || tally.Duplicates > 0 {
		t.Errorf("%v", tally)
	}
}
