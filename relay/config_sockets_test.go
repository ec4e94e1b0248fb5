package relay

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigSocketConflicts: listeners that could not all bind are refused
// with the key and line of the later one, naming the earlier; sockets that
// can coexist are accepted.
func TestConfigSocketConflicts(t *testing.T) {
	// listeners builds a config whose listener i stands on lines 5+4i..8+4i
	// (its address on line 8+4i), after a metrics table on lines 2-3.
	listeners := func(ls ...[2]string) string {
		var b strings.Builder
		b.WriteString("data_dir = \"x\"\n[metrics]\naddress = \"127.0.0.1:9514\"\n")
		for i, l := range ls {
			fmt.Fprintf(&b, "\n[[listener]]\nname = \"l%d\"\nprotocol = %q\naddress = %q", i, l[0], l[1])
		}
		return b.String() + "\n[[output]]\nname = \"o\"\nprotocol = \"file\"\npath = \"out.log\"\n[[route]]\nname = \"r\"\noutputs = [\"o\"]\n"
	}
	refused := []struct {
		name string
		ls   [][2]string
		want string
	}{
		{"two tcp listeners on one address", [][2]string{{"tcp", "127.0.0.1:514"}, {"tcp", "127.0.0.1:514"}},
			`line 12: listener[1].address: "127.0.0.1:514" overlaps the tcp address of listener[0].address on line 8`},
		{"tcp and relp share a port", [][2]string{{"udp", "127.0.0.1:514"}, {"relp", "127.0.0.1:2514"}, {"tcp", "127.0.0.1:2514"}},
			`line 16: listener[2].address: "127.0.0.1:2514" overlaps the tcp address of listener[1].address on line 12`},
		{"udp wildcard and a specific udp address", [][2]string{{"udp", "0.0.0.0:514"}, {"udp", "127.0.0.1:514"}},
			`line 12: listener[1].address: "127.0.0.1:514" overlaps the udp address of listener[0].address on line 8`},
		{"specific tcp address and a later wildcard", [][2]string{{"tcp", "127.0.0.1:514"}, {"tcp", "0.0.0.0:514"}},
			`line 12: listener[1].address:`},
		{"dual-stack wildcard covers IPv4", [][2]string{{"tcp", "[::]:514"}, {"relp", "127.0.0.1:514"}},
			`line 12: listener[1].address:`},
		{"empty host covers IPv6", [][2]string{{"udp", ":514"}, {"udp", "[::1]:514"}},
			`line 12: listener[1].address:`},
		{"localhost is 127.0.0.1", [][2]string{{"tcp", "127.0.0.1:514"}, {"tcp", "localhost:514"}},
			`line 12: listener[1].address:`},
		{"same host name", [][2]string{{"tcp", "relay.example:514"}, {"tcp", "RELAY.example:514"}},
			`line 12: listener[1].address:`},
		{"tcp listener on the metrics address", [][2]string{{"tcp", "127.0.0.1:9514"}},
			`line 8: listener[0].address: "127.0.0.1:9514" overlaps the metrics address (metrics.address on line 3)`},
		{"relp listener on the metrics port of every address", [][2]string{{"relp", "0.0.0.0:9514"}},
			`line 8: listener[0].address: "0.0.0.0:9514" overlaps the metrics address`},
		{"two unix listeners on one path", [][2]string{{"unix", "/run/relay/log"}, {"unix", "/run/relay/../relay/log"}},
			`line 12: listener[1].address: socket path "/run/relay/../relay/log" is also used by listener[0].address on line 8`},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseConfig("test.toml", []byte(listeners(c.ls...)))
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("ParseConfig = %v, want a *ConfigError", err)
			}
			if len(ce.Problems) != 1 || !strings.HasPrefix(ce.Problems[0], c.want) {
				t.Errorf("problems %q, want one starting %q", ce.Problems, c.want)
			}
		})
	}
	accepted := []struct {
		name string
		ls   [][2]string
	}{
		{"udp and tcp on one address", [][2]string{{"udp", "127.0.0.1:514"}, {"tcp", "127.0.0.1:514"}}},
		{"udp on the metrics address", [][2]string{{"udp", "127.0.0.1:9514"}}},
		{"different ports", [][2]string{{"tcp", "0.0.0.0:514"}, {"tcp", "0.0.0.0:601"}}},
		{"IPv4 and IPv6 loopback", [][2]string{{"tcp", "127.0.0.1:514"}, {"tcp", "[::1]:514"}}},
		{"IPv4 wildcard and IPv6 loopback", [][2]string{{"tcp", "0.0.0.0:514"}, {"tcp", "[::1]:514"}}},
		{"two loopback addresses", [][2]string{{"udp", "127.0.0.1:514"}, {"udp", "127.0.0.2:514"}}},
		{"port 0 is picked by the kernel", [][2]string{{"tcp", "127.0.0.1:0"}, {"tcp", "127.0.0.1:0"}, {"relp", "0.0.0.0:0"}}},
		{"two unix paths", [][2]string{{"unix", "/run/relay/a"}, {"unix", "/run/relay/b"}}},
	}
	for _, c := range accepted {
		t.Run(c.name, func(t *testing.T) {
			if _, err := ParseConfig("test.toml", []byte(listeners(c.ls...))); err != nil {
				t.Errorf("ParseConfig: %v", err)
			}
		})
	}
}

// TestConfigUnixSocketSameFile: two unix listener paths that name one file,
// one relative to the working directory and one absolute, or through a
// symbolic link to its directory, are refused as the same path is: both
// listeners started and the first silently received nothing.
func TestConfigUnixSocketSameFile(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Symlink(dir, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	for _, c := range [][2]string{
		{"relay-test.sock", filepath.Join(wd, "relay-test.sock")},
		{filepath.Join(dir, "log"), filepath.Join(dir, "link", "log")},
	} {
		cfg := "data_dir = \"x\"\n"
		for i, path := range c {
			cfg += fmt.Sprintf("[[listener]]\nname = \"l%d\"\nprotocol = \"unix\"\naddress = %q\n", i, path)
		}
		cfg += "[[output]]\nname = \"o\"\nprotocol = \"file\"\npath = \"out.log\"\n[[route]]\nname = \"r\"\noutputs = [\"o\"]\n"
		_, err := ParseConfig("test.toml", []byte(cfg))
		var ce *ConfigError
		if !errors.As(err, &ce) || len(ce.Problems) != 1 || !strings.Contains(ce.Problems[0], "listener[1].address: socket path") {
			t.Errorf("%q and %q: ParseConfig = %v, want the second refused as the first's socket path", c[0], c[1], err)
		}
	}
}
