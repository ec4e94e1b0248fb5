package relay

import (
	"fmt"
	"strings"
	"testing"

	"github.com/relay-syslog/relay/internal/testpeer"
)

// logLines returns the lines of logs that contain every one of parts.
func logLines(logs *logBuffer, parts ...string) []string {
	var out []string
	for _, line := range strings.Split(logs.String(), "\n") {
		match := line != ""
		for _, p := range parts {
			match = match && strings.Contains(line, p)
		}
		if match {
			out = append(out, line)
		}
	}
	return out
}

// TestListeningLinesNameOnlyWhatApplies: a listener's "listening" line
// mentions TLS only for a listener that speaks it.
func TestListeningLinesNameOnlyWhatApplies(t *testing.T) {
	dir := t.TempDir()
	ca := testpeer.NewTestCA(t, "log")
	srv := ca.Server("server", "localhost")
	_, logs := startRelayLogged(t, dir, fmt.Sprintf(`data_dir = "{{DATA}}/q"
[[listener]]
name = "plain-tcp"
protocol = "tcp"
address = "127.0.0.1:0"
[[listener]]
name = "mutual-tls"
protocol = "tls"
address = "127.0.0.1:0"
tls.cert_file = %[1]q
tls.key_file = %[2]q
tls.client_ca_file = %[3]q
[[listener]]
name = "server-tls"
protocol = "tls"
address = "127.0.0.1:0"
tls.cert_file = %[1]q
tls.key_file = %[2]q
[[listener]]
name = "plain-relp"
protocol = "relp"
address = "127.0.0.1:0"
[[listener]]
name = "relp-tls"
protocol = "relp"
address = "127.0.0.1:0"
tls.cert_file = %[1]q
tls.key_file = %[2]q
[[output]]
name = "file"
protocol = "file"
path = "{{DATA}}/out.log"
[[route]]
name = "all"
outputs = ["file"]
`, srv.CertFile, srv.KeyFile, ca.CAFile))
	for _, c := range []struct {
		listener string
		want     []string
		not      []string
	}{
		{"plain-tcp", nil, []string{"tls"}},
		{"plain-relp", nil, []string{"tls"}},
		{"mutual-tls", []string{"mutual_tls=true"}, nil},
		{"server-tls", []string{"mutual_tls=false"}, nil},
		{"relp-tls", []string{"tls=true", "mutual_tls=false"}, nil},
	} {
		lines := logLines(logs, `msg=listening`, "listener="+c.listener+" ")
		if len(lines) != 1 {
			t.Errorf("%s: %d listening lines, want 1:\n%s", c.listener, len(lines), logs.String())
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(lines[0], w) {
				t.Errorf("%s: %q lacks %s", c.listener, lines[0], w)
			}
		}
		for _, n := range c.not {
			if strings.Contains(lines[0], n) {
				t.Errorf("%s: %q mentions %s, which does not apply", c.listener, lines[0], n)
			}
		}
	}
}
