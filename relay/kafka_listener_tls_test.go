package relay

import (
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/relay-syslog/relay/internal/kafkatest"
	"github.com/relay-syslog/relay/internal/testpeer"
)

// securedKafka is a one-broker cluster that speaks only TLS, with a
// certificate from ca; with mech, it requires SASL user "relay" with
// password "s3cret" over mech; with mutual, it also requires a client
// certificate from ca. Its ClientOpts let the test's franz-go producer in;
// its KcatArgs let kcat in, when mech is "" (librdkafka 2.0 and kfake do not
// agree on the SASL handshake).
func securedKafka(t *testing.T, ca *testpeer.TestCA, mech string, mutual bool) *kafkatest.Cluster {
	t.Helper()
	server := &tls.Config{Certificates: []tls.Certificate{ca.Server("broker", "broker.test").KeyPair(t)}, MinVersion: tls.VersionTLS12}
	client := &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}
	kcat := []string{"-X", "security.protocol=SSL", "-X", "ssl.ca.location=" + ca.CAFile}
	if mutual {
		server.ClientCAs = ca.Pool()
		server.ClientAuth = tls.RequireAndVerifyClientCert
		cert := ca.Client("producer", "producer.test")
		client.Certificates = []tls.Certificate{cert.KeyPair(t)}
		kcat = append(kcat, "-X", "ssl.certificate.location="+cert.CertFile, "-X", "ssl.key.location="+cert.KeyFile)
	}
	opts := []kfake.Opt{kafkatest.ShortSessions, kfake.TLS(server)}
	clientOpts := []kgo.Opt{kgo.DialTLSConfig(client)}
	if mech != "" {
		opts = append(opts, kfake.EnableSASL(), kfake.Superuser(mech, "relay", "s3cret"))
		switch mech {
		case "PLAIN":
			clientOpts = append(clientOpts, kgo.SASL(plain.Auth{User: "relay", Pass: "s3cret"}.AsMechanism()))
		case "SCRAM-SHA-256":
			clientOpts = append(clientOpts, kgo.SASL(scram.Auth{User: "relay", Pass: "s3cret"}.AsSha256Mechanism()))
		default:
			clientOpts = append(clientOpts, kgo.SASL(scram.Auth{User: "relay", Pass: "s3cret"}.AsSha512Mechanism()))
		}
		kcat = nil
	}
	c := kafkatest.Start(t, 1, kafkaTopic, 3, opts...)
	c.ClientOpts, c.KcatArgs = clientOpts, kcat
	return c
}

// securedListenerTOML is a kafka listener of cluster c with TLS checked
// against ca, SASL over mech with password pass (written to the file it
// returns, with a trailing line feed as editors leave it), and, with
// mutual, a client certificate.
func securedListenerTOML(t *testing.T, c *kafkatest.Cluster, ca *testpeer.TestCA, mech, pass string, mutual bool) (string, string) {
	t.Helper()
	pwFile := filepath.Join(t.TempDir(), "kafka-password")
	if err := os.WriteFile(pwFile, []byte(pass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	extra := fmt.Sprintf("tls.enable = true\ntls.ca_file = %q\ntls.min_version = \"1.2\"\n", ca.CAFile)
	if mech != "" {
		extra += fmt.Sprintf("sasl.mechanism = %q\nsasl.username = \"relay\"\nsasl.password_file = %q\n", mech, pwFile)
	}
	if mutual {
		cert := ca.Client("head", "head.test")
		extra += fmt.Sprintf("tls.cert_file = %q\ntls.key_file = %q\n", cert.CertFile, cert.KeyFile)
	}
	return kafkatest.ListenerTOML("kafka", c.Addrs, kafkaTopic, "heads", extra), pwFile
}

// kafkaFileConfig is a relay config with listeners (TOML) all going to one
// file output in dir; it returns the config and the file's path.
func kafkaFileConfig(dir, listeners string) (string, string) {
	out := filepath.Join(dir, "messages.log")
	return `data_dir = "{{DATA}}/q"` + listeners + fmt.Sprintf(`
[[output]]
name = "file"
protocol = "file"
path = %q

[[route]]
name = "all"
outputs = ["file"]
`, out), out
}

// TestKafkaListenerTLSAndSASL: a kafka listener reads a cluster that
// speaks only TLS and requires SASL, with each mechanism; with mutual TLS
// it presents its client certificate. Without SASL, what it reads was
// written by kcat (librdkafka, with TLS code of its own).
func TestKafkaListenerTLSAndSASL(t *testing.T) {
	needLong(t)
	t.Parallel()
	for _, tc := range []struct {
		mech   string
		mutual bool
	}{{"PLAIN", false}, {"SCRAM-SHA-256", false}, {"SCRAM-SHA-512", true}, {"", true}} {
		name := tc.mech
		if name == "" {
			name = "no SASL"
		}
		t.Run(fmt.Sprintf("%s/mutual=%v", name, tc.mutual), func(t *testing.T) {
			t.Parallel()
			ca := testpeer.NewTestCA(t, "kafka")
			c := securedKafka(t, ca, tc.mech, tc.mutual)
			dir := t.TempDir()
			listener, _ := securedListenerTOML(t, c, ca, tc.mech, "s3cret", tc.mutual)
			cfg, out := kafkaFileConfig(dir, listener)
			r := startRelay(t, dir, cfg)
			const n = 300
			run := "ks" + strings.ToLower(strings.ReplaceAll(tc.mech, "-", ""))
			if tc.mech == "" {
				c.Produce(t, kafkaTopic, "", seqMessages(run, 0, n))
			} else {
				c.ProduceKgo(t, kafkaTopic, seqMessages(run, 0, n))
			}
			tally := waitAll(t, run, n, out)
			if tally.Duplicates != 0 || tally.Foreign != 0 {
				t.Errorf("one relay, no fault: %v", tally)
			}
			if !testpeer.WaitFor(60*time.Second, func() bool { return c.Committed("heads", kafkaTopic) == n }) {
				t.Errorf("group committed %d records, want %d", c.Committed("heads", kafkaTopic), n)
			}
			if got := r.metric("relay_listener_errors_total", "listener", "kafka", "reason", "auth_failed"); got != 0 {
				t.Errorf("auth_failed = %v with the right password", got)
			}
		})
	}
}

// TestKafkaListenerAuthFailure: a wrong password, or a broker certificate
// the listener does not trust, is not a silent stall: it is counted as a
// listener error with its own reason and logged with what to check, and
// nothing is committed. Once the file is put right the listener connects
// at its next attempt, without a restart, and reads what waited.
func TestKafkaListenerAuthFailure(t *testing.T) {
	needLong(t)
	t.Parallel()
	for _, tc := range []struct {
		name, pass, reason, log string
		otherCA                 bool
	}{
		{"wrong password", "wrong", "auth_failed", "sasl.password_file", false},
		{"unknown CA", "s3cret", "tls_failed", "tls.ca_file", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ca := testpeer.NewTestCA(t, "kafka")
			c := securedKafka(t, ca, "SCRAM-SHA-256", false)
			trusted := ca
			if tc.otherCA {
				trusted = testpeer.NewTestCA(t, "other")
			}
			dir := t.TempDir()
			listener, pwFile := securedListenerTOML(t, c, trusted, "SCRAM-SHA-256", tc.pass, false)
			cfg, out := kafkaFileConfig(dir, listener)
			r, logs := startRelayLogged(t, dir, cfg)
			c.ProduceKgo(t, kafkaTopic, seqMessages("kf", 0, 10))
			if !testpeer.WaitFor(60*time.Second, func() bool {
				return r.metric("relay_listener_errors_total", "listener", "kafka", "reason", tc.reason) > 0
			}) {
				t.Fatalf("%s: relay_listener_errors_total{reason=%q} stayed 0\n%s", tc.name, tc.reason, logs.String())
			}
			if !testpeer.WaitFor(30*time.Second, func() bool { return logs.lineWith("level=ERROR", "listener=kafka", tc.log) != "" }) {
				t.Fatalf("%s: no error line naming %s\n%s", tc.name, tc.log, logs.String())
			}
			if got := c.Committed("heads", kafkaTopic); got != 0 {
				t.Errorf("committed %d records without being let in", got)
			}
			if tc.otherCA {
				pem, err := os.ReadFile(ca.CAFile)
				if err != nil {
					t.Fatal(err)
				}
				writeReplacing(t, trusted.CAFile, pem)
			} else {
				writeReplacing(t, pwFile, []byte("s3cret\n"))
			}
			waitAll(t, "kf", 10, out)
			if !testpeer.WaitFor(30*time.Second, func() bool { return logs.lineWith("level=INFO", "listener=kafka", "connected again") != "" }) {
				t.Errorf("%s: no line says the listener connected again\n%s", tc.name, logs.String())
			}
		})
	}
}

// writeReplacing replaces the file at path with data, through a rename as
// a careful operator (or systemd) does.
func writeReplacing(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
