package relay

import (
	"errors"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
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
	if len(parts) >= 2 && (parts[len(parts)-2] == "queue" || parts[len(parts)-2] == "tls") {
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
		if ft.Kind() == reflect.Struct && ft != reflect.TypeOf(Duration{}) {
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
		{"unknown protocol", strings.Replace(validBase, `protocol = "file"`, `protocol = "smtp"`, 1),
			[]string{`line 9: output[0].protocol: unknown protocol "smtp"`}},
		{"file output without path", strings.Replace(validBase, `path = "/tmp/x/out.log"`, ``, 1),
			[]string{`output[0].path: is required for protocol "file"`}},
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
