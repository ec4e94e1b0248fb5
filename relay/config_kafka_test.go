package relay

import (
	"errors"
	"strings"
	"testing"

	"github.com/relay-syslog/relay/outputs"
)

// kafkaBase is a valid configuration with one kafka output; its keys start
// on line 9.
const kafkaBase = `
data_dir = "/tmp/x"
[[listener]]
name = "udp"
protocol = "udp"
address = "127.0.0.1:5514"
[[output]]
name = "k"
protocol = "kafka"
brokers = ["127.0.0.1:9092", "[::1]:9093"]
topic = "syslog"
[[route]]
name = "all"
outputs = ["k"]
`

func TestConfigKafkaOutputDefaults(t *testing.T) {
	cfg, err := ParseConfig("test.toml", []byte(kafkaBase))
	if err != nil {
		t.Fatal(err)
	}
	o := cfg.Outputs[0]
	if o.Key != outputs.KeyHostname || o.Compression != outputs.DefaultKafkaCompression {
		t.Errorf("defaults: key %q, compression %q", o.Key, o.Compression)
	}
}

// TestConfigKafkaOutputErrors: each bad kafka setting is reported with its
// key and line, and kafka keys on other outputs are refused.
func TestConfigKafkaOutputErrors(t *testing.T) {
	set := func(old, new string) string { return strings.Replace(kafkaBase, old, new, 1) }
	cases := []struct {
		name, text string
		want       []string
	}{
		{"no brokers", set(`brokers = ["127.0.0.1:9092", "[::1]:9093"]`, ``),
			[]string{`line 7: output[0].brokers: is required for protocol "kafka"`}},
		{"bad broker", set(`"[::1]:9093"`, `"kafka-2"`),
			[]string{`line 10: output[0].brokers: invalid address "kafka-2"`}},
		{"no topic", set(`topic = "syslog"`, ``),
			[]string{`line 7: output[0].topic: is required for protocol "kafka"`}},
		{"bad topic", set(`topic = "syslog"`, `topic = "sys log"`),
			[]string{`line 11: output[0].topic: invalid topic "sys log"`}},
		{"bad key", set(`topic = "syslog"`, "topic = \"syslog\"\nkey = \"facility\""),
			[]string{`line 12: output[0].key: unknown key "facility": use hostname, relay_id or none`}},
		{"bad compression", set(`topic = "syslog"`, "topic = \"syslog\"\ncompression = \"brotli\""),
			[]string{`line 12: output[0].compression: unknown compression "brotli": use none, gzip, snappy, lz4, zstd`}},
		{"address", set(`topic = "syslog"`, "topic = \"syslog\"\naddress = \"127.0.0.1:9092\""),
			[]string{`line 12: output[0].address: is not used by protocol "kafka": use brokers`}},
		{"sasl without password file", set(`topic = "syslog"`, "topic = \"syslog\"\nsasl.mechanism = \"SCRAM-SHA-512\"\nsasl.username = \"u\""),
			[]string{`output[0].sasl.password_file: is required with sasl.mechanism`}},
		{"bad sasl mechanism", set(`topic = "syslog"`, "topic = \"syslog\"\n[output.sasl]\nmechanism = \"GSSAPI\"\nusername = \"u\"\npassword_file = \"/p\""),
			[]string{`line 13: output[0].sasl.mechanism: unknown mechanism "GSSAPI"`}},
		{"tls keys without tls.enable", set(`topic = "syslog"`, "topic = \"syslog\"\ntls.ca_file = \"/etc/ca.pem\""),
			[]string{`line 12: output[0].tls.ca_file: needs tls.enable = true: without it the brokers are reached in plain text`}},
		{"kafka key on a file output", strings.Replace(validBase, `path = "/tmp/x/out.log"`, "path = \"/tmp/x/out.log\"\ntopic = \"t\"", 1),
			[]string{`line 11: output[0].topic: is only for protocol "kafka"`}},
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
