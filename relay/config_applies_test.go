package relay

import (
	"errors"
	"strings"
	"testing"
)

// TestConfigKeysThatDoNotApply: a key that the table's protocol does not
// use is refused with its line, every one in one pass; the same keys are
// accepted where they apply.
func TestConfigKeysThatDoNotApply(t *testing.T) {
	t.Parallel()
	text := `data_dir = "/var/lib/relay"
[[listener]]
name = "u"
protocol = "udp"
address = "127.0.0.1:5514"
max_connections = 10
tls.cert_file = "c.pem"

[[listener]]
name = "r"
protocol = "relp"
address = "127.0.0.1:2514"
window = 64
read_buffer = "1MiB"

[[output]]
name = "f"
protocol = "file"
path = "/var/log/x.log"
framing = "lf"
confirm_delay = "1s"

[[output]]
name = "t"
protocol = "tcp"
address = "127.0.0.1:514"
framing = "lf"
confirm_delay = "1s"
window = 8

[[route]]
name = "all"
outputs = ["f", "t"]
`
	_, err := ParseConfig("k.toml", []byte(text))
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("want a ConfigError, got %v", err)
	}
	want := []string{
		`line 6: listener[0].max_connections: does not apply to protocol "udp"`,
		`line 7: listener[0].tls.cert_file: does not apply to protocol "udp"`,
		`line 14: listener[1].read_buffer: does not apply to protocol "relp"`,
		`line 20: output[0].framing: does not apply to protocol "file"`,
		`line 21: output[0].confirm_delay: does not apply to protocol "file"`,
		`line 29: output[1].window: does not apply to protocol "tcp"`,
	}
	if len(ce.Problems) != len(want) {
		t.Errorf("%d problems, want %d:\n%s", len(ce.Problems), len(want), strings.Join(ce.Problems, "\n"))
	}
	for _, w := range want {
		found := false
		for _, p := range ce.Problems {
			found = found || strings.HasPrefix(p, w)
		}
		if !found {
			t.Errorf("no problem %q in:\n%s", w, strings.Join(ce.Problems, "\n"))
		}
	}
}
