package relay

import (
	"net"
	"os"
	"path/filepath"
	"testing"
)

// TestListenerErrorNamedOnce: a listener that cannot bind is named once in
// New's error, whichever protocol.
func TestListenerErrorNamedOnce(t *testing.T) {
	dir := t.TempDir()
	notSocket := filepath.Join(dir, "dev-log")
	if err := os.WriteFile(notSocket, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	tcpTaken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcpTaken.Close()
	udpTaken, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udpTaken.Close()
	for _, c := range []struct{ name, protocol, address, want string }{
		{"dev", "unix", notSocket, `listener "dev": ` + notSocket + ` exists and is not a socket`},
		{"udp", "udp", udpTaken.LocalAddr().String(), `listener "udp": listen udp ` + udpTaken.LocalAddr().String() + `: bind: address already in use`},
		{"tcp", "tcp", tcpTaken.Addr().String(), `listener "tcp": listen tcp ` + tcpTaken.Addr().String() + `: bind: address already in use`},
	} {
		text := `data_dir = "` + dir + `"
[[listener]]
name = "` + c.name + `"
protocol = "` + c.protocol + `"
address = "` + c.address + `"
` + fileOutputTOML(filepath.Join(dir, "out.log"))
		cfg, err := ParseConfig("r.toml", []byte(text))
		if err != nil {
			t.Fatal(err)
		}
		srv, err := New(cfg, Options{Logger: testLogger(t)})
		if err == nil {
			srv.Close()
			t.Errorf("New with listener %q succeeded", c.name)
			continue
		}
		if err.Error() != c.want {
			t.Errorf("New: %q, want %q", err, c.want)
		}
	}
}
