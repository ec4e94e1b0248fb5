package relay

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relay-syslog/relay/internal/testpeer"
)

// TestRELPOverTLS chains two relays over RELP with mutual TLS: the edge's
// RELP output presents a client certificate; the head's RELP listener
// verifies it against its client CA and allowed names. A client the head
// does not allow is refused, and its messages stay queued.
func TestRELPOverTLS(t *testing.T) {
	t.Parallel()
	ca := testpeer.NewTestCA(t, "relp")
	server := ca.Server("head", "head.test")
	edgeCert := ca.Client("edge", "edge-1.test")
	strangerCert := ca.Client("stranger", "stranger.test")
	dir := t.TempDir()
	out := filepath.Join(dir, "head.log")
	head := startRelay(t, dir+"/head", fmt.Sprintf(`data_dir = "{{DATA}}"
[[listener]]
name = "relp-tls"
protocol = "relp"
address = "127.0.0.1:0"
tls.cert_file = %q
tls.key_file = %q
tls.client_ca_file = %q
tls.allowed_names = ["edge-1.test"]
[[output]]
name = "file"
protocol = "file"
path = %q
[[route]]
name = "all"
outputs = ["file"]
`, server.CertFile, server.KeyFile, ca.CAFile, out))

	edge := func(name string, cert testpeer.Cert) *testRelay {
		return startRelay(t, dir+"/"+name, fmt.Sprintf(`data_dir = "{{DATA}}"
[[listener]]
name = "tcp"
protocol = "tcp"
address = "127.0.0.1:0"
[[output]]
name = "head"
protocol = "relp"
address = %q
tls.enable = true
tls.ca_file = %q
tls.server_name = "head.test"
tls.cert_file = %q
tls.key_file = %q
retry_initial = "20ms"
retry_max = "200ms"
[[route]]
name = "all"
outputs = ["head"]
`, head.addr("relp-tls"), ca.CAFile, cert.CertFile, cert.KeyFile))
	}
	good := edge("edge", edgeCert)
	const n = 5000
	if err := testpeer.SendTCP(good.addr("tcp"), "relptls", 0, n, true); err != nil {
		t.Fatal(err)
	}
	if !testpeer.WaitFor(30*time.Second, func() bool { return testpeer.Check("relptls", n, testpeer.ReadLines(out)).Delivered() == n }) {
		t.Fatalf("over RELP/TLS: %v", testpeer.Check("relptls", n, testpeer.ReadLines(out)))
	}

	bad := edge("stranger", strangerCert)
	if err := testpeer.SendTCP(bad.addr("tcp"), "refused", 0, 100, true); err != nil {
		t.Fatal(err)
	}
	if !testpeer.WaitFor(30*time.Second, func() bool { return bad.metric("relay_output_send_errors_total") >= 2 }) {
		t.Fatalf("a client outside allowed_names was not refused")
	}
	if c := testpeer.Check("refused", 100, testpeer.ReadLines(out)).Delivered(); c != 0 {
		t.Errorf("the head accepted %d messages from a client outside allowed_names", c)
	}
	if d := bad.metric("relay_queue_depth_records", "output", "head"); d == 0 {
		t.Errorf("the refused client's messages are not waiting in its queue")
	}
	t.Logf("RELP over mutual TLS: %d of %d delivered; stranger refused (%v send errors, head counted %v handshake failures)",
		testpeer.Check("relptls", n, testpeer.ReadLines(out)).Delivered(), n,
		bad.metric("relay_output_send_errors_total"), head.metric("relay_listener_errors_total"))
}

// TestRELPOverTLSInteropRsyslog: rsyslog's omrelp with tls="on" sends to the
// relay's RELP/TLS listener (mutual TLS), and the relay's RELP/TLS output
// sends to rsyslog's imrelp with tls="on" (mutual TLS, name checked).
func TestRELPOverTLSInteropRsyslog(t *testing.T) {
	needLong(t)
	testpeer.NeedRELP(t)
	ca := testpeer.NewTestCA(t, "relptls")
	relayCert := ca.Server("relay", "relay.test")
	rsyslogCert := ca.Server("rsyslog", "rsyslog.test")

	upPort := testpeer.FreePort(t)
	upAddr := fmt.Sprintf("127.0.0.1:%d", upPort)
	up := testpeer.StartRsyslog(t, fmt.Sprintf(`module(load="imrelp")
input(type="imrelp" port="%d" address="127.0.0.1" tls="on"
      tls.caCert=%q tls.myCert=%q tls.myPrivKey=%q
      tls.authMode="name" tls.permittedPeer=["relay.test"])
template(name="raw" type="string" string="%%rawmsg%%\n")
*.* action(type="omfile" file="{{DIR}}/out.log" template="raw")
`, upPort, ca.CAFile, rsyslogCert.CertFile, rsyslogCert.KeyFile), testpeer.TCPReady(upAddr))
	out := filepath.Join(up.Dir, "out.log")

	r := startRelay(t, t.TempDir(), fmt.Sprintf(`data_dir = "{{DATA}}"
[[listener]]
name = "relp"
protocol = "relp"
address = "127.0.0.1:0"
tls.cert_file = %q
tls.key_file = %q
tls.client_ca_file = %q
tls.allowed_names = ["rsyslog.test"]
[[output]]
name = "head"
protocol = "relp"
address = %q
tls.enable = true
tls.ca_file = %q
tls.server_name = "rsyslog.test"
tls.cert_file = %q
tls.key_file = %q
retry_initial = "20ms"
retry_max = "500ms"
[[route]]
name = "all"
outputs = ["head"]
`, relayCert.CertFile, relayCert.KeyFile, ca.CAFile, upAddr, ca.CAFile, relayCert.CertFile, relayCert.KeyFile))

	host, port, _ := strings.Cut(r.addr("relp"), ":")
	inPort := testpeer.FreePort(t)
	inAddr := fmt.Sprintf("127.0.0.1:%d", inPort)
	testpeer.StartRsyslog(t, fmt.Sprintf(`module(load="imtcp")
module(load="omrelp")
input(type="imtcp" port="%d" address="127.0.0.1")
template(name="raw" type="string" string="%%rawmsg%%")
*.* action(type="omrelp" target=%q port=%q template="raw" tls="on"
           tls.caCert=%q tls.myCert=%q tls.myPrivKey=%q
           tls.authMode="name" tls.permittedPeer=["relay.test"]
           queue.type="LinkedList" action.resumeRetryCount="-1" action.resumeInterval="1")
`, inPort, host, port, ca.CAFile, rsyslogCert.CertFile, rsyslogCert.KeyFile), testpeer.TCPReady(inAddr))

	const n = 10000
	for i := 0; i < n; i += 1000 {
		if err := testpeer.SendTCP(inAddr, "relptlsinterop", i, i+1000, true); err != nil {
			t.Fatal(err)
		}
	}
	if !testpeer.WaitFor(60*time.Second, func() bool {
		return testpeer.Check("relptlsinterop", n, testpeer.ReadLines(out)).Delivered() == n
	}) {
		t.Fatalf("rsyslog → relay → rsyslog over RELP/TLS: %v (listener errors %v, send errors %v)",
			testpeer.Check("relptlsinterop", n, testpeer.ReadLines(out)),
			r.metric("relay_listener_errors_total"), r.metric("relay_output_send_errors_total"))
	}
	t.Logf("rsyslog omrelp tls → relay → rsyslog imrelp tls: %v", testpeer.Check("relptlsinterop", n, testpeer.ReadLines(out)))
}
