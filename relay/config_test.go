package relay

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/relay-syslog/relay/outputs"
	"github.com/relay-syslog/relay/queue"
)

// TestExampleConfigLoads keeps the shipped example valid.
func TestExampleConfigLoads(t *testing.T) {
	cfg, err := LoadConfig("../config.toml.example")
	if err != nil {
		t.Fatalf("config.toml.example: %v", err)
	}
	if cfg.Metrics.Address == "" || len(cfg.Listeners) != 2 || len(cfg.Outputs) != 1 || len(cfg.Routes) != 1 {
		t.Errorf("unexpected example config: %+v", cfg)
	}
}

// TestExampleConfigDocumentsEveryKey checks that every key of the config
// structs appears in config.toml.example, so the documentation cannot fall
// behind the code.
func TestExampleConfigDocumentsEveryKey(t *testing.T) {
	b, err := os.ReadFile("../config.toml.example")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, key := range tomlKeys(reflect.TypeOf(Config{}), "") {
		re := regexp.MustCompile(`(?m)^#?\s*` + regexp.QuoteMeta(displayKey(key)) + `\b`)
		if !re.MatchString(doc) {
			t.Errorf("config.toml.example does not document key %q", key)
		}
	}
}

// displayKey is how a key is written in the example: queue and tls keys
// with their table, others by their last part.
func displayKey(key string) string {
	parts := strings.Split(key, ".")
	if len(parts) >= 2 && (parts[len(parts)-2] == "queue" || parts[len(parts)-2] == "tls" || parts[len(parts)-2] == "sasl") {
		return parts[len(parts)-2] + "." + parts[len(parts)-1]
	}
	return parts[len(parts)-1]
}

func tomlKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("toml")
		if tag == "" || tag == "-" {
			continue
		}
		ft := f.Type
		if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
			ft = ft.Elem()
		}
		if isConfigTable(ft) {
			keys = append(keys, tomlKeys(ft, prefix+tag+".")...)
			continue
		}
		keys = append(keys, prefix+tag)
	}
	return keys
}

const validBase = `
data_dir = "/tmp/x"
[[listener]]
name = "udp"
protocol = "udp"
address = "127.0.0.1:5514"
[[output]]
name = "file"
protocol = "file"
path = "/tmp/x/out.log"
[[route]]
name = "all"
outputs = ["file"]
`

// TestConfigErrors maps each bad configuration to the problems it must
// report: each names its key, and its line where the file has one.
func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name string
		text string
		want []string
	}{
		{"syntax", "data_dir = \n", []string{"line 1"}},
		{"unknown top-level key", "colour = 1\n" + validBase, []string{`line 1: colour: unknown key "colour"`}},
		{"unknown listener key", strings.Replace(validBase, `address = "127.0.0.1:5514"`, "address = \"127.0.0.1:5514\"\nport = 5", 1),
			[]string{`line 7: listener[0].port: unknown key "listener.port"`}},
		{"misspelt listener key", strings.Replace(validBase, `address = "127.0.0.1:5514"`, "address = \"127.0.0.1:5514\"\nmax_conections = 5", 1),
			[]string{`line 7: listener[0].max_conections: unknown key "listener.max_conections" (did you mean "max_connections"?)`}},
		{"relay_id too long", "relay_id = \"" + strings.Repeat("r", 257) + "\"\n" + validBase,
			[]string{`line 1: relay_id: must be UTF-8 of at most 256 bytes`}},
		{"output port 0", strings.Replace(validBase, "[[route]]", "[[output]]\nname = \"up\"\nprotocol = \"tcp\"\naddress = \"127.0.0.1:0\"\n[[route]]", 1),
			[]string{`output[1].address: invalid address "127.0.0.1:0": port 0 can be listened on, not connected to`}},
		{"misspelt output name", strings.Replace(validBase, `outputs = ["file"]`, `outputs = ["fiel"]`, 1),
			[]string{`line 13: route[0].outputs: names output "fiel", which is not defined (did you mean "file"?)`}},
		{"output name in the wrong case", strings.Replace(validBase, `outputs = ["file"]`, `outputs = ["FILE"]`, 1),
			[]string{`line 13: route[0].outputs: names output "FILE", which is not defined (did you mean "file"?)`}},
		{"listener name in the wrong case", strings.Replace(validBase, `outputs = ["file"]`, "outputs = [\"file\"]\nlisteners = [\"UDP\"]", 1),
			[]string{`line 14: route[0].listeners: names listener "UDP", which is not defined (did you mean "udp"?)`}},
		{"duplicate listener name", validBase + "[[listener]]\nname = \"udp\"\nprotocol = \"tcp\"\naddress = \"127.0.0.1:1\"\n",
			[]string{`line 15: listener[1].name: duplicate listener name "udp"`}},
		{"route to missing output", strings.Replace(validBase, `outputs = ["file"]`, `outputs = ["file", "nope"]`, 1),
			[]string{`line 13: route[0].outputs: names output "nope", which is not defined`}},
		{"bad address", strings.Replace(validBase, `"127.0.0.1:5514"`, `"127.0.0.1"`, 1),
			[]string{`line 6: listener[0].address: invalid address "127.0.0.1"`}},
		{"bad port", strings.Replace(validBase, `"127.0.0.1:5514"`, `"127.0.0.1:99999"`, 1),
			[]string{`listener[0].address: invalid address "127.0.0.1:99999": port`}},
		{"bad duration", "shutdown_timeout = \"5 parsecs\"\n" + validBase, []string{`line 1`, `shutdown_timeout`, `invalid duration "5 parsecs"`}},
		{"bad size", strings.Replace(validBase, `protocol = "udp"`, "protocol = \"udp\"\nmax_message_size = \"lots\"", 1),
			[]string{`max_message_size`, `invalid size "lots"`}},
		{"output named after a data_dir file", strings.NewReplacer(`name = "file"`, `name = "epoch"`, `["file"]`, `["epoch"]`).Replace(validBase),
			[]string{`output[0].name: "epoch" is taken: data_dir holds epoch, relay.lock, dedup.json`}},
		{"unknown protocol", strings.Replace(validBase, `protocol = "file"`, `protocol = "smtp"`, 1),
			[]string{`line 9: output[0].protocol: unknown protocol "smtp"`}},
		{"file output without path", strings.Replace(validBase, `path = "/tmp/x/out.log"`, ``, 1),
			// A missing key is placed at the header of its table.
			[]string{`line 7: output[0].path: is required for protocol "file"`}},
		{"output protocol on a listener", strings.Replace(validBase, `protocol = "udp"`, `protocol = "file"`, 1),
			[]string{`line 5: listener[0].protocol: unknown protocol "file": use udp, tcp, tls, relp, unix or kafka`}},
		{"listener protocol on an output", strings.Replace(validBase, `protocol = "file"`, `protocol = "unix"`, 1),
			[]string{`line 9: output[0].protocol: unknown protocol "unix": use tcp, tls, udp, relp, file or kafka`}},
		{"bad format", withOutputKey(`format = "xml"`),
			[]string{`line 11: output[0].format: unknown format "xml": use "raw", "rfc5424", "rfc3164" or "json"`}},
		{"unknown template field", withOutputKey(`template = "{timestamp} {host}: {message}"`),
			[]string{`line 11: output[0].template: unknown field {host}: use {timestamp}`}},
		{"template without fields", withOutputKey(`template = "%TIMESTAMP% %HOSTNAME% %msg%"`),
			[]string{`line 11: output[0].template: names no field, so every message would be written as this same text`}},
		{"file template ending in a line feed", withOutputKey(`template = "{hostname} {message}\n"`),
			[]string{`line 11: output[0].template: ends with a line feed: a file output ends each line itself`}},
		{"template and format", withOutputKey("template = \"{message}\"\nformat = \"rfc5424\""),
			[]string{`line 11: output[0].template: replaces format: set one of them`}},
		{"unknown path field", strings.Replace(validBase, `path = "/tmp/x/out.log"`, `path = "/tmp/x/{hostnme}.log"`, 1),
			[]string{`line 10: output[0].path: unknown field {hostnme}`}},
		{"dot element in a path template", strings.Replace(validBase, `path = "/tmp/x/out.log"`, `path = "/tmp/x/../{hostname}.log"`, 1),
			[]string{`line 10: output[0].path: has a ".." element`}},
		{"bad fsync", withOutputKey(`fsync = "always"`),
			[]string{`line 11: output[0].fsync: unknown fsync "always": use "never" or "batch"`}},
		{"max_open_files out of range", withOutputKey(`max_open_files = -1`),
			[]string{`line 11: output[0].max_open_files: -1 is out of range`}},
		{"bad framing", withOutputKey(`framing = "cr"`),
			[]string{`line 11: output[0].framing: unknown framing "cr": use "octet-counting" or "lf"`}},
		{"bad mode", withOutputKey(`mode = "random"`),
			[]string{`line 11: output[0].mode: unknown mode "random": use "failover" or "loadbalance"`}},
		{"bad full_policy", withOutputKey(`queue.full_policy = "drop_everything"`),
			[]string{`line 11: output[0].queue.full_policy: unknown policy "drop_everything": use "block", "drop_newest" or "drop_oldest"`}},
		{"bad fsync", withOutputKey(`queue.fsync = "sometimes"`),
			[]string{`line 11: output[0].queue.fsync: unknown fsync mode "sometimes": use "interval" or "always"`}},
		{"bad full_policy in a sub-table", withOutputKey("[output.queue]\nfull_policy = \"Block\""),
			[]string{`line 12: output[0].queue.full_policy: unknown policy "Block"`}},
		{"bad socket_mode", withUnixListenerKey(`socket_mode = "0999"`),
			[]string{`line 7: listener[0].socket_mode: invalid mode "0999": use octal permission bits such as "0660"`}},
		{"empty socket_mode", withUnixListenerKey(`socket_mode = ""`),
			[]string{`line 7: listener[0].socket_mode: invalid mode ""`}},
		{"socket_mode as a number", withUnixListenerKey(`socket_mode = 0o660`),
			[]string{`line 7: listener[0].socket_mode: must be a string of octal digits such as "0660", not an integer`}},
		{"bad timezone", withUnixListenerKey(`timezone = "Mars/Olympus_Mons"`),
			[]string{`line 7: listener[0].timezone: unknown time zone "Mars/Olympus_Mons"`}},
		{"wrong type", withUnixListenerKey(`max_connections = "many"`),
			[]string{`line 7: listener[0].max_connections: must be an integer, not a string ("many")`}},
		{"value for a table", "metrics = 5\n" + validBase,
			[]string{`line 1: metrics: must be a table, not an integer`}},
		{"value for an array of tables", "listener = \"udp\"\n" + strings.Replace(validBase, "[[listener]]", "[[extra]]", 1),
			[]string{`line 1: listener: must be tables written [[listener]], not a string`}},
		{"access keys on a unix listener", `
[[listener]]
name = "devlog"
protocol = "unix"
address = "/run/relay/log"
allowed_networks = ["10.0.0.0/8"]
rate_limit = 100
[[output]]
name = "o"
protocol = "file"
path = "/tmp/x/out.log"
`, []string{
			`line 6: listener[0].allowed_networks: does not apply to unix listeners`,
			`line 7: listener[0].rate_limit: does not apply to unix listeners`,
		}},
		{"every problem at once", `
[[listener]]
name = "a"
protocol = "udp"
address = "nope"
[[listener]]
name = "a"
protocol = "carrier-pigeon"
[[output]]
name = "o"
protocol = "tcp"
framing = "smoke-signals"
address = "127.0.0.1:514"
[[route]]
name = "r"
outputs = ["missing"]
`, []string{
			`line 5: listener[0].address: invalid address "nope"`,
			`line 7: listener[1].name: duplicate listener name "a"`,
			`line 8: listener[1].protocol: unknown protocol "carrier-pigeon"`,
			`line 12: output[0].framing: unknown framing "smoke-signals"`,
			`line 16: route[0].outputs: names output "missing", which is not defined`,
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseConfig("test.toml", []byte(c.text))
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("ParseConfig = %v, want a *ConfigError", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}
}

// withOutputKey returns validBase with line added as line 11, in the output.
func withOutputKey(line string) string {
	return strings.Replace(validBase, `path = "/tmp/x/out.log"`, "path = \"/tmp/x/out.log\"\n"+line, 1)
}

// withUnixListenerKey returns validBase with a unix listener instead of the
// udp one, and line added as line 7, in the listener.
func withUnixListenerKey(line string) string {
	return strings.Replace(validBase, "protocol = \"udp\"\naddress = \"127.0.0.1:5514\"",
		"protocol = \"unix\"\naddress = \"relay.sock\"\n"+line, 1)
}

// TestConfigReportsEveryProblemAtOnce: a file with ten mistakes of every
// kind, values that do not decode among them, gets all ten reported in one
// run, in the order of the file, each with its key and line, and nothing
// else (a value that did not decode is not reported again as missing).
func TestConfigReportsEveryProblemAtOnce(t *testing.T) {
	text := `data_dir = "x"
shutdown_timeout = "5 parsecs"
[[listener]]
name = "udp"
protocol = "udp"
address = "127.0.0.1:5514"
max_message_size = "lots"
port = 5514
timezone = "Mars/Olympus_Mons"
[[listener]]
name = "devlog"
protocol = "unix"
socket_mode = "0999"
[[output]]
name = "head"
protocol = "smtp"
address = "192.0.2.10:514"
queue.full_policy = "drop_everything"
[[output]]
name = "file"
protocol = "file"
path = "out.log"
format = "xml"
window = "wide"
[[route]]
name = "all"
outputs = ["head", "file"]
`
	want := []string{
		`line 2: shutdown_timeout: invalid duration "5 parsecs"`,
		`line 7: listener[0].max_message_size: invalid size "lots"`,
		`line 8: listener[0].port: unknown key "listener.port"`,
		`line 9: listener[0].timezone: unknown time zone "Mars/Olympus_Mons"`,
		`line 10: listener[1].address: is required: the path of the socket to create`,
		`line 13: listener[1].socket_mode: invalid mode "0999"`,
		`line 16: output[0].protocol: unknown protocol "smtp": use tcp, tls, udp, relp, file or kafka`,
		`line 18: output[0].queue.full_policy: unknown policy "drop_everything"`,
		`line 23: output[1].format: unknown format "xml"`,
		`line 24: output[1].window: must be an integer, not a string ("wide")`,
	}
	_, err := ParseConfig("test.toml", []byte(text))
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("ParseConfig = %v, want a *ConfigError", err)
	}
	if len(ce.Problems) != len(want) {
		t.Errorf("%d problems, want %d:\n%v", len(ce.Problems), len(want), err)
	}
	for i, w := range want {
		if i >= len(ce.Problems) || !strings.HasPrefix(ce.Problems[i], w) {
			t.Errorf("problem %d does not start with %q:\n%v", i, w, err)
		}
	}
}

// TestConfigSyntaxErrorLine: a syntax error found at the end of a line is
// reported on that line, not the next.
func TestConfigSyntaxErrorLine(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{"data_dir = \"x\"\n[[listener\nname = \"a\"\n", "line 2: "},
		{"data_dir = \"x\"\n[metrics\naddress = \"127.0.0.1:9514\"\n", "line 2: "},
		{"data_dir = \"x\"\n[metrics]\naddress = \"127.0.0.1:9514\n", "line 3: "},
		{"data_dir = \n", "line 1: "},
		{"[[listener]]\nname = \"a\"\nprotocol = [\n", "line 3: "},
	} {
		_, err := ParseConfig("test.toml", []byte(c.text))
		var ce *ConfigError
		if !errors.As(err, &ce) || len(ce.Problems) != 1 || !strings.HasPrefix(ce.Problems[0], c.want) {
			t.Errorf("ParseConfig(%q) = %v, want one problem starting %q", c.text, err, c.want)
		}
	}
}

// TestConfigTypedValues checks that each enumerated key is decoded into
// the value its consumer takes, with no later parsing.
func TestConfigTypedValues(t *testing.T) {
	cfg, err := ParseConfig("test.toml", []byte(`data_dir = "x"
[[listener]]
name = "dev"
protocol = "UNIX"
address = "relay.sock"
socket_mode = "0640"
timezone = "America/New_York"
[[listener]]
name = "tcp"
protocol = "tcp"
address = "127.0.0.1:5514"
[[output]]
name = "head"
protocol = "TLS"
targets = ["127.0.0.1:6514", "127.0.0.1:6515"]
mode = "loadbalance"
framing = "lf"
format = "rfc3164"
queue.full_policy = "drop_oldest"
[[output]]
name = "file"
protocol = "file"
path = "out.log"
[[route]]
name = "all"
outputs = ["head", "file"]
`))
	if err != nil {
		t.Fatal(err)
	}
	dev, tcp := cfg.Listeners[0], cfg.Listeners[1]
	if dev.Protocol != ProtocolUnix || *dev.SocketMode != 0o640 || dev.Timezone.Location().String() != "America/New_York" {
		t.Errorf("unix listener: protocol %q, socket_mode %v, timezone %v", dev.Protocol, dev.SocketMode, dev.Timezone.Location())
	}
	if *tcp.SocketMode != 0o666 || tcp.Timezone.Location() != time.Local {
		t.Errorf("defaults: socket_mode %v, timezone %v; want 0666 and the host's", tcp.SocketMode, tcp.Timezone.Location())
	}
	head, file := cfg.Outputs[0], cfg.Outputs[1]
	if head.Protocol != ProtocolTLS || head.Mode != outputs.LoadBalance || head.Framing != outputs.LF ||
		head.Format != outputs.RFC3164 || head.Queue.FullPolicy != queue.DropOldest {
		t.Errorf("head output: %q %v %v %v %v", head.Protocol, head.Mode, head.Framing, head.Format, head.Queue.FullPolicy)
	}
	if file.Mode != outputs.Failover || file.Framing != outputs.OctetCounting || file.Format != outputs.Raw || file.Queue.FullPolicy != queue.Block {
		t.Errorf("defaults: %v %v %v %v", file.Mode, file.Framing, file.Format, file.Queue.FullPolicy)
	}
}

// TestConfigLoadsCompareEqual: a reload compares configurations with
// reflect.DeepEqual, so two loads of one file must be equal, time zones
// included.
func TestConfigLoadsCompareEqual(t *testing.T) {
	text := strings.Replace(validBase, `protocol = "udp"`, "protocol = \"udp\"\ntimezone = \"Europe/Berlin\"", 1)
	a, err := ParseConfig("a.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseConfig("b.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if a.Listeners[0].Timezone.Location() != b.Listeners[0].Timezone.Location() {
		t.Errorf("two loads of one zone give two *time.Location")
	}
	if !reflect.DeepEqual(a.Listeners, b.Listeners) || !reflect.DeepEqual(a.Outputs, b.Outputs) {
		t.Errorf("two loads of one file differ:\n%+v\n%+v", a, b)
	}
}

func TestProtocolLists(t *testing.T) {
	if got := ListenerProtocols.String(); got != "udp, tcp, tls, relp or unix" {
		t.Errorf("ListenerProtocols = %q", got)
	}
	if got := OutputProtocols.String(); got != "tcp, tls, udp, relp, file or kafka" {
		t.Errorf("OutputProtocols = %q", got)
	}
	if p, err := ListenerProtocols.Parse("RELP"); err != nil || p != ProtocolRELP {
		t.Errorf("Parse(RELP) = %q, %v", p, err)
	}
	if _, err := ListenerProtocols.Parse("file"); err == nil || err.Error() != `unknown protocol "file": use udp, tcp, tls, relp or unix` {
		t.Errorf("Parse(file) = %v", err)
	}
}

// TestConfigDefaults checks the documented defaults.
func TestConfigDefaults(t *testing.T) {
	cfg, err := ParseConfig("test.toml", []byte(validBase))
	if err != nil {
		t.Fatal(err)
	}
	l := cfg.Listeners[0]
	if l.MaxMessageSize != 64<<10 || l.ReadBuffer != 4<<20 || l.IdleTimeout.Duration != 10*time.Minute {
		t.Errorf("listener defaults: %+v", l)
	}
	if cfg.ShutdownTimeout.Duration != 5*time.Second {
		t.Errorf("shutdown_timeout default = %v", cfg.ShutdownTimeout)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"64KiB": 65536, "4MiB": 4 << 20, "1GB": 1e9, "100": 100, "2 KiB": 2048, "8K": 8192} {
		got, err := parseSize(in)
		if err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "KiB", "-1", "1.5MiB", "99999999999GiB"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) succeeded, want an error", in)
		}
	}
}

// TestSocketModeApplied: socket_mode reaches the socket file as written,
// and its default is 0666.
func TestSocketModeApplied(t *testing.T) {
	dir := t.TempDir()
	r := startRelay(t, dir, fmt.Sprintf(`data_dir = "{{DATA}}/q"
[[listener]]
name = "restricted"
protocol = "unix"
address = %q
socket_mode = "0640"
[[listener]]
name = "open"
protocol = "unix"
address = %q
[[output]]
name = "file"
protocol = "file"
path = %q
[[route]]
name = "all"
outputs = ["file"]
`, filepath.Join(dir, "restricted.sock"), filepath.Join(dir, "open.sock"), filepath.Join(dir, "out.log")))
	for name, want := range map[string]os.FileMode{"restricted": 0o640, "open": 0o666} {
		fi, err := os.Stat(r.addr(name))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("listener %s: socket mode %04o, want %04o", name, got, want)
		}
	}
}
