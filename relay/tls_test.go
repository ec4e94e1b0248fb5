package relay

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relay-syslog/relay/internal/testpeer"
)

// logBuffer collects a relay's log for tests that check what it says.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// lineWith returns the first log line that contains every one of parts.
func (l *logBuffer) lineWith(parts ...string) string {
	for _, line := range strings.Split(l.String(), "\n") {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if ok {
			return line
		}
	}
	return ""
}

// startRelayLogged is startRelay with the relay's log kept for the test.
func startRelayLogged(t testing.TB, dataDir, cfgText string) (*testRelay, *logBuffer) {
	t.Helper()
	cfgText = strings.ReplaceAll(cfgText, "{{DATA}}", dataDir)
	cfg, err := ParseConfig("test.toml", []byte(cfgText))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	buf := &logBuffer{}
	var w io.Writer = buf
	if testing.Verbose() {
		w = io.MultiWriter(buf, tWriter{t})
	}
	reg := prometheus.NewRegistry()
	srv, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})), Registry: reg})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &testRelay{t: t, srv: srv, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- srv.Run(ctx) }()
	t.Cleanup(func() { r.stop() })
	waitRunning(t, srv)
	return r, buf
}

// sendTLS sends messages from..to-1 of run over one TLS connection with
// octet counting (RFC 5425), then sends close_notify and waits for the
// relay to close. It returns the first error, including an alert that
// refused the client after a TLS 1.3 handshake had completed on its side.
func sendTLS(addr string, cfg *tls.Config, run string, from, to int) error {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	w := bufio.NewWriterSize(c, 64<<10)
	for i := from; i < to; i++ {
		m := testpeer.SeqMessage(run, i)
		fmt.Fprintf(w, "%d %s", len(m), m)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := c.CloseWrite(); err != nil {
		return err
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// peerName connects to addr and returns the common name of the
// certificate the relay presents.
func peerName(addr string, cfg *tls.Config) (string, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName, nil
}

func fileOutTOML(path string) string {
	return fmt.Sprintf(`
[[output]]
name = "file"
protocol = "file"
path = %q

[[route]]
name = "all"
outputs = ["file"]
`, path)
}

// TestTLSListener: messages arrive over TLS with octet counting and with LF
// framing; clients below min_version or without a common cipher suite,
// and clients that refuse the relay's certificate, are counted and logged
// with what to check.
func TestTLSListener(t *testing.T) {
	t.Parallel()
	ca := testpeer.NewTestCA(t, "relay")
	srv := ca.Server("relay", "relay.test")
	dir := t.TempDir()
	out := filepath.Join(dir, "out.log")
	r, logs := startRelayLogged(t, dir, fmt.Sprintf(`data_dir = "{{DATA}}/q"
[[listener]]
name = "tls"
protocol = "tls"
address = "127.0.0.1:0"
tls.cert_file = %[1]q
tls.key_file = %[2]q

[[listener]]
name = "tls13"
protocol = "tls"
address = "127.0.0.1:0"
tls.cert_file = %[1]q
tls.key_file = %[2]q
tls.min_version = "1.3"

[[listener]]
name = "suites"
protocol = "tls"
address = "127.0.0.1:0"
tls.cert_file = %[1]q
tls.key_file = %[2]q
tls.cipher_suites = ["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"]
`, srv.CertFile, srv.KeyFile)+fileOutTOML(out))
	client := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}

	if err := sendTLS(r.addr("tls"), client, "tls", 0, 1000); err != nil {
		t.Fatal(err)
	}
	if err := sendTLS(r.addr("tls13"), client, "tls13", 0, 100); err != nil {
		t.Fatal(err)
	}
	tls12 := client.Clone()
	tls12.MaxVersion = tls.VersionTLS12
	tls12.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}
	if err := sendTLS(r.addr("suites"), tls12, "suites", 0, 100); err != nil {
		t.Fatal(err)
	}
	// LF framing over TLS, as rsyslog's omfwd sends by default.
	c, err := tls.Dial("tcp", r.addr("tls"), client)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		fmt.Fprintf(c, "%s\n", testpeer.SeqMessage("tls-lf", i))
	}
	c.Close()
	for _, run := range []struct {
		name string
		n    int
	}{{"tls", 1000}, {"tls13", 100}, {"suites", 100}, {"tls-lf", 100}} {
		if !testpeer.WaitFor(30*time.Second, func() bool { return testpeer.Check(run.name, run.n, testpeer.ReadLines(out)).Delivered() == run.n }) {
			t.Errorf("%s: %v", run.name, testpeer.Check(run.name, run.n, testpeer.ReadLines(out)))
		}
	}

	refused := []struct {
		name, listener string
		cfg            func(*tls.Config)
		reason, check  string
	}{
		{"below-min-version", "tls13", func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 }, "tls_version_or_cipher", "tls.min_version"},
		{"tls1.1", "tls", func(c *tls.Config) { c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS11 }, "tls_version_or_cipher", "tls.min_version"},
		{"no-common-suite", "suites", func(c *tls.Config) {
			c.MaxVersion = tls.VersionTLS12
			c.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305}
		}, "tls_version_or_cipher", "tls.cipher_suites"},
		{"client-distrusts-relay", "tls", func(c *tls.Config) { c.RootCAs = testpeer.NewTestCA(t, "other").Pool() }, "tls_rejected_by_client", "its CA file must hold the CA that signed tls.cert_file"},
	}
	for _, rc := range refused {
		t.Run(rc.name, func(t *testing.T) {
			cfg := client.Clone()
			rc.cfg(cfg)
			if err := sendTLS(r.addr(rc.listener), cfg, rc.name, 0, 10); err == nil {
				t.Fatal("the handshake succeeded")
			}
			if !testpeer.WaitFor(30*time.Second, func() bool {
				return r.metric("relay_listener_errors_total", "listener", rc.listener, "reason", rc.reason) > 0
			}) {
				t.Fatalf("no relay_listener_errors_total{listener=%q,reason=%q}", rc.listener, rc.reason)
			}
			// The count comes before the log line: wait for the line too.
			var line string
			testpeer.WaitFor(30*time.Second, func() bool {
				line = logs.lineWith("TLS handshake failed", "listener="+rc.listener+" ", "reason="+rc.reason)
				return line != ""
			})
			if !strings.Contains(line, "remote=127.0.0.1:") || !strings.Contains(line, rc.check) {
				t.Errorf("log line %q does not name the peer and %q", line, rc.check)
			}
			t.Logf("%s", line)
		})
	}
}

// TestMutualTLS: a listener with client_ca_file and allowed_names takes
// clients whose certificate is signed by that CA and names an allowed
// subject (common name, DNS SAN or IP SAN), and refuses every other one
// with a reason and a log line that says which peer, what is wrong with its
// certificate, and what to check.
func TestMutualTLS(t *testing.T) {
	t.Parallel()
	ca := testpeer.NewTestCA(t, "clients")
	other := testpeer.NewTestCA(t, "other")
	srvCA := testpeer.NewTestCA(t, "relay")
	srv := srvCA.Server("relay", "relay.test")
	dir := t.TempDir()
	out := filepath.Join(dir, "out.log")
	r, logs := startRelayLogged(t, dir, fmt.Sprintf(`data_dir = "{{DATA}}/q"
[[listener]]
name = "mtls"
protocol = "tls"
address = "127.0.0.1:0"
tls.cert_file = %q
tls.key_file = %q
tls.client_ca_file = %q
tls.allowed_names = ["sender-a", "Sender-C.example", "192.0.2.7"]
`, srv.CertFile, srv.KeyFile, ca.CAFile)+fileOutTOML(out))

	// The client presents its certificate whatever CAs the relay asks for
	// (a Go client, like some others, sends none when its certificate is
	// not from one of them).
	client := func(certs ...testpeer.Cert) *tls.Config {
		c := &tls.Config{RootCAs: srvCA.Pool(), ServerName: "localhost"}
		kp := &tls.Certificate{}
		if len(certs) > 0 {
			*kp = certs[0].KeyPair(t)
		}
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return kp, nil }
		return c
	}
	ipCert := ca.Issue("by-ip", testpeer.CertOptions{CommonName: "device", IPs: []net.IP{net.ParseIP("192.0.2.7")}})
	sanCert := ca.Issue("by-san", testpeer.CertOptions{CommonName: "not-listed", DNSNames: []string{"sender-c.example"}})
	accepted := []struct {
		name string
		cfg  *tls.Config
	}{
		{"common-name", client(ca.Client("a", "sender-a"))},
		{"dns-san-any-case", client(sanCert)},
		{"ip-san", client(ipCert)},
	}
	for _, c := range accepted {
		if err := sendTLS(r.addr("mtls"), c.cfg, c.name, 0, 100); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}

	expired := ca.Issue("expired", testpeer.CertOptions{CommonName: "sender-a",
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	refused := []struct {
		name   string
		cfg    *tls.Config
		reason string
		log    []string
	}{
		{"unknown-ca", client(other.Client("x", "sender-a")), "tls_unknown_ca",
			[]string{"client certificate signed by unknown authority", "check tls.client_ca_file", `issuer \"CN=other test CA`}},
		{"name-not-allowed", client(ca.Client("b", "sender-b")), "tls_name_not_allowed",
			[]string{`client certificate names \"sender-b\"`, "tls.allowed_names"}},
		{"no-certificate", client(), "tls_no_client_cert",
			[]string{"the client sent no certificate", "give the sender a client certificate"}},
		{"expired", client(expired), "tls_cert_expired",
			[]string{"client certificate expired or not yet valid", "renew the sender's certificate"}},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			err := sendTLS(r.addr("mtls"), c.cfg, c.name, 0, 100)
			if err == nil {
				t.Fatal("the relay took the connection")
			}
			t.Logf("client saw: %v", err)
			if !testpeer.WaitFor(30*time.Second, func() bool {
				return r.metric("relay_listener_errors_total", "listener", "mtls", "reason", c.reason) == 1
			}) {
				t.Fatalf("relay_listener_errors_total{reason=%q} = %v, want 1", c.reason,
					r.metric("relay_listener_errors_total", "listener", "mtls", "reason", c.reason))
			}
			// The count comes before the log line: wait for the line too.
			var line string
			if !testpeer.WaitFor(30*time.Second, func() bool {
				line = logs.lineWith(append([]string{"TLS handshake failed", "remote=127.0.0.1:", "reason=" + c.reason}, c.log...)...)
				return line != ""
			}) {
				t.Errorf("no log line with %q; log:\n%s", c.log, logs.lineWith("reason="+c.reason))
			}
			t.Logf("%s", line)
		})
	}
	for _, c := range accepted {
		if !testpeer.WaitFor(30*time.Second, func() bool { return testpeer.Check(c.name, 100, testpeer.ReadLines(out)).Delivered() == 100 }) {
			t.Errorf("%s: %v", c.name, testpeer.Check(c.name, 100, testpeer.ReadLines(out)))
		}
	}
	lines := testpeer.ReadLines(out)
	for _, c := range refused {
		if n := testpeer.Check(c.name, 100, lines).Delivered(); n != 0 {
			t.Errorf("%s: %d messages of a refused client were accepted", c.name, n)
		}
	}
}

// TestTLSOutput: a TLS output verifies its upstream against tls.ca_file
// and the host of its address (an IP SAN here); a wrong tls.server_name is
// refused, logged with what to check, and retried; insecure_skip_verify
// sends anyway, after a loud warning.
func TestTLSOutput(t *testing.T) {
	t.Parallel()
	ca := testpeer.NewTestCA(t, "up")
	other := testpeer.NewTestCA(t, "other")
	good := testpeer.NewTLSReceiver(t, "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{ca.Server("up", "upstream.test").KeyPair(t)}})
	rogue := testpeer.NewTLSReceiver(t, "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{other.Server("rogue", "rogue.test").KeyPair(t)}})
	wrong := testpeer.NewTLSReceiver(t, "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{ca.Server("up2", "upstream.test").KeyPair(t)}})

	dir := t.TempDir()
	r, logs := startRelayLogged(t, dir, fmt.Sprintf(`data_dir = "{{DATA}}/q"
[[listener]]
name = "tcp"
protocol = "tcp"
address = "127.0.0.1:0"

[[output]]
name = "verified"
protocol = "tls"
address = %q
tls.ca_file = %q
retry_initial = "20ms"
retry_max = "100ms"

[[output]]
name = "wrongname"
protocol = "tls"
address = %q
tls.ca_file = %q
tls.server_name = "somebody-else.test"
retry_initial = "20ms"
retry_max = "100ms"

[[output]]
name = "insecure"
protocol = "tls"
address = %q
tls.insecure_skip_verify = true
retry_initial = "20ms"
retry_max = "100ms"

[[route]]
name = "all"
outputs = ["verified", "wrongname", "insecure"]
`, good.Addr(), ca.CAFile, wrong.Addr(), ca.CAFile, rogue.Addr()))
	if err := testpeer.SendTCP(r.addr("tcp"), "out", 0, 1000, true); err != nil {
		t.Fatal(err)
	}
	for _, recv := range []struct {
		name string
		r    *testpeer.Receiver
	}{{"verified", good}, {"insecure", rogue}} {
		if !testpeer.WaitFor(30*time.Second, func() bool { return testpeer.Check("out", 1000, recv.r.Messages()).Delivered() == 1000 }) {
			t.Errorf("%s: %v", recv.name, testpeer.Check("out", 1000, recv.r.Messages()))
		}
	}
	if !testpeer.WaitFor(30*time.Second, func() bool { return r.metric("relay_output_send_errors_total", "output", "wrongname") >= 3 }) {
		t.Errorf("wrong server name: %v send errors, want >= 3 retries", r.metric("relay_output_send_errors_total", "output", "wrongname"))
	}
	if n := wrong.Count(); n != 0 {
		t.Errorf("an upstream with the wrong name received %d messages", n)
	}
	if line := logs.lineWith("stopped delivering", "output=wrongname", `not valid for \"somebody-else.test\"`, "check tls.server_name"); line == "" {
		t.Errorf("no log line explains the name mismatch; log:\n%s", logs.lineWith("output=wrongname"))
	} else {
		t.Logf("%s", line)
	}
	if line := logs.lineWith("level=WARN", "INSECURE", "insecure_skip_verify", "output=insecure"); line == "" {
		t.Errorf("no warning about insecure_skip_verify in the relay's log")
	} else {
		t.Logf("%s", line)
	}
}

// TestTLSCertificateReload: the listener's certificate is replaced on
// ReloadCertificates (SIGHUP) and by itself when its files change; files
// that do not load keep the previous certificate; an output's client
// certificate renewed on disk is used from its next connection. Messages
// queued while the upstream refuses the relay are all delivered once it
// accepts the renewed certificate.
func TestTLSCertificateReload(t *testing.T) {
	prevInterval := certCheckInterval
	certCheckInterval = 100 * time.Millisecond
	t.Cleanup(func() { certCheckInterval = prevInterval })

	ca := testpeer.NewTestCA(t, "relay")
	ca.Server("relay", "relay-v1")
	certFile := filepath.Join(ca.Dir, "relay.pem")
	keyFile := filepath.Join(ca.Dir, "relay-key.pem")
	clients := testpeer.NewTestCA(t, "clients")
	rogue := testpeer.NewTestCA(t, "rogue")
	// The output starts with a client certificate the upstream does not
	// trust; the same files are renewed later.
	outCert := rogue.Client("out", "relay-out")
	upCA := testpeer.NewTestCA(t, "up")
	upstream := testpeer.NewTLSReceiver(t, "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{upCA.Server("up", "upstream.test").KeyPair(t)},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    clients.Pool(),
	})

	dir := t.TempDir()
	r, logs := startRelayLogged(t, dir, fmt.Sprintf(`data_dir = "{{DATA}}/q"
[[listener]]
name = "tls"
protocol = "tls"
address = "127.0.0.1:0"
tls.cert_file = %q
tls.key_file = %q

[[output]]
name = "up"
protocol = "tls"
address = %q
tls.ca_file = %q
tls.cert_file = %q
tls.key_file = %q
retry_initial = "20ms"
retry_max = "200ms"

[[route]]
name = "all"
outputs = ["up"]
`, certFile, keyFile, upstream.Addr(), upCA.CAFile, outCert.CertFile, outCert.KeyFile))
	client := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}
	expectName := func(want string) {
		t.Helper()
		if name, err := peerName(r.addr("tls"), client); err != nil || name != want {
			t.Fatalf("relay presents %q (%v), want %q", name, err, want)
		}
	}
	expectName("relay-v1")
	if err := sendTLS(r.addr("tls"), client, "reload", 0, 500); err != nil {
		t.Fatal(err)
	}

	// SIGHUP.
	ca.Server("relay", "relay-v2")
	if err := r.srv.ReloadCertificates(); err != nil {
		t.Fatalf("ReloadCertificates: %v", err)
	}
	expectName("relay-v2")
	if err := sendTLS(r.addr("tls"), client, "reload", 500, 1000); err != nil {
		t.Fatal(err)
	}

	// Changed files, no signal.
	ca.Server("relay", "relay-v3")
	if !testpeer.WaitFor(30*time.Second, func() bool {
		name, err := peerName(r.addr("tls"), client)
		return err == nil && name == "relay-v3"
	}) {
		t.Fatal("the relay did not pick up the changed certificate files")
	}
	if err := sendTLS(r.addr("tls"), client, "reload", 1000, 1500); err != nil {
		t.Fatal(err)
	}

	// A broken certificate file keeps the working certificate.
	if err := os.WriteFile(certFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.srv.ReloadCertificates(); err == nil {
		t.Error("ReloadCertificates of a broken file returned no error")
	}
	expectName("relay-v3")
	if logs.lineWith("level=ERROR", "previous certificate stays in use", "tls.cert_file") == "" {
		t.Error("the failed reload was not logged")
	}

	// Everything so far is queued: the upstream refuses the rogue client
	// certificate. Renew it on disk; the next connection presents it.
	if !testpeer.WaitFor(30*time.Second, func() bool { return r.metric("relay_output_send_errors_total", "output", "up") >= 2 }) {
		t.Fatal("the upstream did not refuse the rogue client certificate")
	}
	if n := upstream.Count(); n != 0 {
		t.Fatalf("upstream accepted %d messages from an untrusted client", n)
	}
	clients.Issue(strings.TrimSuffix(outCert.CertFile, ".pem"), testpeer.CertOptions{CommonName: "relay-out", DNSNames: []string{"relay-out"}})
	if !testpeer.WaitFor(60*time.Second, func() bool { return testpeer.Check("reload", 1500, upstream.Messages()).Delivered() == 1500 }) {
		t.Fatalf("after renewal: %v", testpeer.Check("reload", 1500, upstream.Messages()))
	}
	tally := testpeer.Check("reload", 1500, upstream.Messages())
	t.Logf("after renewal: %v; resent %v", tally, r.metric("relay_output_messages_resent_total"))
	if got := r.metric("relay_messages_accepted_total"); got != 1500 {
		t.Errorf("accepted %v, want 1500", got)
	}
}

// rsyslogTLSDrivers are rsyslog's TLS network stream drivers and the Debian
// packages that ship them.
var rsyslogTLSDrivers = []struct{ driver, module, pkg string }{
	{"gtls", "lmnsd_gtls", "rsyslog-gnutls"},
	{"ossl", "lmnsd_ossl", "rsyslog-openssl"},
}

// TestTLSRsyslogSender: rsyslog's omfwd sends to the relay's TLS listener
// with each TLS driver, verifying the relay's certificate and name
// (x509/name) and presenting a client certificate the relay checks
// against client_ca_file and allowed_names (mutual TLS).
func TestTLSRsyslogSender(t *testing.T) {
	needLong(t)
	for _, d := range rsyslogTLSDrivers {
		t.Run(d.driver, func(t *testing.T) {
			testpeer.Need(t, "rsyslogd", "rsyslog")
			testpeer.NeedRsyslogModule(t, d.module, d.pkg)
			ca := testpeer.NewTestCA(t, "site")
			srv := ca.Server("relay", "relay.test")
			cli := ca.Client("rsyslog", "rsyslog-sender")
			dir := t.TempDir()
			out := filepath.Join(dir, "out.log")
			r, logs := startRelayLogged(t, dir, fmt.Sprintf(`data_dir = "{{DATA}}/q"
[[listener]]
name = "tls"
protocol = "tls"
address = "127.0.0.1:0"
tls.cert_file = %q
tls.key_file = %q
tls.client_ca_file = %q
tls.allowed_names = ["rsyslog-sender"]
`, srv.CertFile, srv.KeyFile, ca.CAFile)+fileOutTOML(out))
			relayHost, relayPort, _ := strings.Cut(r.addr("tls"), ":")
			inAddr := fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t))
			_, inPort, _ := strings.Cut(inAddr, ":")
			rs := testpeer.StartRsyslog(t, fmt.Sprintf(`global(DefaultNetstreamDriverCAFile=%q
       DefaultNetstreamDriverCertFile=%q
       DefaultNetstreamDriverKeyFile=%q)
module(load="imtcp")
input(type="imtcp" port=%q address="127.0.0.1")
*.* action(type="omfwd" target=%q port=%q protocol="tcp" TCP_Framing="octet-counted"
           StreamDriver=%q StreamDriverMode="1" StreamDriverAuthMode="x509/name"
           StreamDriverPermittedPeers="localhost"
           queue.type="LinkedList" action.resumeRetryCount="-1")
`, ca.CAFile, cli.CertFile, cli.KeyFile, inPort, relayHost, relayPort, d.driver), testpeer.TCPReady(inAddr))
			const n = 10000
			for i := 0; i < n; i += 1000 {
				if err := testpeer.SendTCP(inAddr, d.driver, i, i+1000, true); err != nil {
					t.Fatal(err)
				}
			}
			if !testpeer.WaitFor(30*time.Second, func() bool { return testpeer.Check(d.driver, n, testpeer.ReadLines(out)).Delivered() == n }) {
				t.Fatalf("%v\nrsyslog:\n%s\nrelay:\n%s", testpeer.Check(d.driver, n, testpeer.ReadLines(out)), rs.Output(), logs.String())
			}
			if tally := testpeer.Check(d.driver, n, testpeer.ReadLines(out)); tally.Duplicates > 0 {
				t.Errorf("%v", tally)
			}
			if line := logs.lineWith("TLS handshake failed"); line != "" {
				t.Errorf("a handshake failed: %s", line)
			}
		})
	}
}

// rsyslogTLSUpstream starts rsyslog with imtcp over TLS (driver, a
// certificate of ca) that permits only the client name permitted and
// writes what it gets to out.log, and a relay that forwards to it over TLS
// with the client certificate "relay-client".
func rsyslogTLSUpstream(t *testing.T, driver, permitted string) (*testpeer.Rsyslog, *testRelay, *logBuffer) {
	t.Helper()
	ca := testpeer.NewTestCA(t, "site")
	up := ca.Server("upstream", "upstream.test")
	cli := ca.Client("relay-client", "relay-client")
	upAddr := fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t))
	_, upPort, _ := strings.Cut(upAddr, ":")
	rs := testpeer.StartRsyslog(t, fmt.Sprintf(`global(DefaultNetstreamDriverCAFile=%q
       DefaultNetstreamDriverCertFile=%q
       DefaultNetstreamDriverKeyFile=%q)
module(load="imtcp" StreamDriver.Name=%q StreamDriver.Mode="1" StreamDriver.AuthMode="x509/name"
       PermittedPeer=[%q])
input(type="imtcp" port=%q address="127.0.0.1")
template(name="raw" type="string" string="%%rawmsg%%\n")
*.* action(type="omfile" file="{{DIR}}/out.log" template="raw")
`, ca.CAFile, up.CertFile, up.KeyFile, driver, permitted, upPort), testpeer.TCPReady(upAddr))
	r, logs := startRelayLogged(t, t.TempDir(), fmt.Sprintf(`data_dir = "{{DATA}}/q"
[[listener]]
name = "tcp"
protocol = "tcp"
address = "127.0.0.1:0"

[[output]]
name = "head"
protocol = "tls"
address = %q
tls.ca_file = %q
tls.cert_file = %q
tls.key_file = %q
retry_initial = "50ms"
retry_max = "500ms"

[[route]]
name = "all"
outputs = ["head"]
`, upAddr, ca.CAFile, cli.CertFile, cli.KeyFile))
	return rs, r, logs
}

// TestTLSRsyslogUpstream: the relay's TLS output forwards to rsyslog's
// imtcp with each TLS driver. The relay verifies rsyslog's certificate
// against tls.ca_file and the address's host (an IP SAN); rsyslog verifies
// the relay's client certificate by name (x509/name, PermittedPeer).
func TestTLSRsyslogUpstream(t *testing.T) {
	needLong(t)
	for _, d := range rsyslogTLSDrivers {
		t.Run(d.driver, func(t *testing.T) {
			testpeer.Need(t, "rsyslogd", "rsyslog")
			testpeer.NeedRsyslogModule(t, d.module, d.pkg)
			rs, r, logs := rsyslogTLSUpstream(t, d.driver, "relay-client")
			out := filepath.Join(rs.Dir, "out.log")
			const n = 20000
			if err := testpeer.SendTCP(r.addr("tcp"), d.driver, 0, n, true); err != nil {
				t.Fatal(err)
			}
			if !testpeer.WaitFor(30*time.Second, func() bool { return testpeer.Check(d.driver, n, testpeer.ReadLines(out)).Delivered() == n }) {
				t.Fatalf("%v\nrsyslog:\n%s\nrelay:\n%s", testpeer.Check(d.driver, n, testpeer.ReadLines(out)), rs.Output(), logs.String())
			}
			tally := testpeer.Check(d.driver, n, testpeer.ReadLines(out))
			if tally.Duplicates > 0 || r.metric("relay_output_send_errors_total") > 0 {
				t.Errorf("%v; send errors %v\nrelay:\n%s", tally, r.metric("relay_output_send_errors_total"), logs.String())
			}
			// The bytes arrive unchanged.
			if want := testpeer.SeqMessage(d.driver, 42); !contains(testpeer.ReadLines(out), want) {
				t.Errorf("rsyslog output lacks the byte-exact line %q", want)
			}
		})
	}
}

// TestTLSRsyslogUpstreamRefusesRelay: an rsyslog upstream that does not
// permit the relay's certificate name gets nothing, the relay keeps the
// messages queued and retrying, and its log says what to look at.
func TestTLSRsyslogUpstreamRefusesRelay(t *testing.T) {
	needLong(t)
	testpeer.Need(t, "rsyslogd", "rsyslog")
	testpeer.NeedRsyslogModule(t, "lmnsd_gtls", "rsyslog-gnutls")
	rs, r, logs := rsyslogTLSUpstream(t, "gtls", "someone-else")
	if err := testpeer.SendTCP(r.addr("tcp"), "refused", 0, 100, true); err != nil {
		t.Fatal(err)
	}
	if !testpeer.WaitFor(30*time.Second, func() bool { return r.metric("relay_output_send_errors_total", "output", "head") >= 3 }) {
		t.Fatalf("send errors %v, want >= 3", r.metric("relay_output_send_errors_total", "output", "head"))
	}
	if lines := testpeer.ReadLines(filepath.Join(rs.Dir, "out.log")); len(lines) > 0 {
		t.Errorf("rsyslog wrote %d lines from a peer it does not permit", len(lines))
	}
	line := logs.lineWith("stopped delivering", "output=head", "client certificate")
	if line == "" {
		t.Errorf("no log line points at the client certificate:\n%s", logs.String())
	}
	t.Logf("%s", line)
}
