package outputs

import (
	"context"
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/relay-syslog/relay/internal/testpeer"
)

// relpTLSDest is a RELP destination over TLS with cfg.
func relpTLSDest(addr string, cfg *tls.Config) *RELP {
	return NewRELP(RELPOptions{
		Address: addr, Window: 8, ConnectTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second,
		TLS: func() (*tls.Config, error) { return cfg.Clone(), nil },
	})
}

// TestRELPTLSExplainsFailures: a RELP output over TLS says what is wrong
// with a session the upstream's certificate, or its demand for ours, ends,
// and which setting to check, as a TLS output does.
func TestRELPTLSExplainsFailures(t *testing.T) {
	ca := testpeer.NewTestCA(t, "up")
	other := testpeer.NewTestCA(t, "other")
	requireClient := serverTLS(t, ca, 0)
	requireClient.ClientAuth = tls.RequireAndVerifyClientCert
	requireClient.ClientCAs = ca.Pool()
	for _, c := range []struct {
		name   string
		server *tls.Config
		client *tls.Config
		want   []string // in the Connect error; nil means it must work
	}{
		{"unknown-ca", serverTLS(t, ca, 0), &tls.Config{RootCAs: other.Pool(), ServerName: "localhost"},
			[]string{"upstream certificate signed by unknown authority", "check tls.ca_file"}},
		{"wrong-name", serverTLS(t, ca, 0), &tls.Config{RootCAs: ca.Pool(), ServerName: "wrong.example"},
			[]string{`not valid for "wrong.example"`, "check tls.server_name"}},
		// TLS 1.3: the upstream refuses the missing client certificate
		// after the client's side of the handshake, while open waits
		// for its answer.
		{"client-cert-required", requireClient, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"},
			[]string{"tls.cert_file"}},
		{"client-cert-given", requireClient, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost",
			Certificates: []tls.Certificate{ca.Client("relay", "relay").KeyPair(t)}}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := newRELPServer(t, func(s *relpServer) { s.ln = tls.NewListener(s.ln, c.server) })
			d := relpTLSDest(srv.addr(), c.client)
			err := d.Connect(context.Background())
			if c.want == nil {
				if err != nil {
					t.Fatalf("Connect: %v", err)
				}
				if _, err := d.Write(context.Background(), entries("tls", 0, 20)); err != nil {
					t.Fatalf("Write: %v", err)
				}
				if !testpeer.WaitFor(10*time.Second, func() bool { n, _ := d.Settled(time.Now()); return n == 20 }) {
					n, err := d.Settled(time.Now())
					t.Fatalf("settled %d of 20 (%v)", n, err)
				}
				d.Close()
				if tally := testpeer.Check("tls", 20, srv.messages()); tally.Delivered() != 20 || tally.Duplicates > 0 {
					t.Errorf("%v", tally)
				}
				return
			}
			if err == nil {
				d.Close()
				t.Fatalf("Connect succeeded, want an error containing %q", c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Connect error %q, want it to contain %q", err, w)
				}
			}
			if d.Connected() {
				t.Error("Connected after a failed Connect")
			}
		})
	}
}
