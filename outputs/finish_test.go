package outputs

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/relay-syslog/relay/internal/testpeer"
)

// TestTCPFinish: Finish returns once the upstream has read to the end of
// the stream and closed, over TCP and TLS; a reset, or a TLS upstream that
// refuses the session, is an error that says why.
func TestTCPFinish(t *testing.T) {
	ca := testpeer.NewTestCA(t, "up")
	clientTLS := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}
	requireClient := serverTLS(t, ca, 0)
	requireClient.ClientAuth = tls.RequireAndVerifyClientCert
	requireClient.ClientCAs = ca.Pool()
	for _, c := range []struct {
		name string
		tls  bool
		recv func(t *testing.T) (addr string, count func() int)
		want string // in Finish's error; "" means none
	}{
		{"tcp", false, func(t *testing.T) (string, func() int) {
			r := testpeer.NewReceiver(t, "127.0.0.1:0")
			return r.Addr(), r.Count
		}, ""},
		{"tls", true, func(t *testing.T) (string, func() int) {
			r := testpeer.NewTLSReceiver(t, "127.0.0.1:0", serverTLS(t, ca, 0))
			return r.Addr(), r.Count
		}, ""},
		{"tcp-reset", false, func(t *testing.T) (string, func() int) {
			// It reads one byte of the message and resets.
			addr := fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t))
			testpeer.NewResetter(t, addr, 1, 1)
			return addr, nil
		}, "reset"},
		{"tls-client-cert-refused", true, func(t *testing.T) (string, func() int) {
			r := testpeer.NewTLSReceiver(t, "127.0.0.1:0", requireClient)
			return r.Addr(), r.Count
		}, "tls.cert_file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			addr, count := c.recv(t)
			opts := TCPOptions{Address: addr, Framing: LF, ConnectTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}
			if c.tls {
				opts.TLS = func() (*tls.Config, error) { return clientTLS.Clone(), nil }
			}
			d := NewTCP(opts)
			if err := d.Connect(context.Background()); err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			n := 1
			if count != nil {
				n = 100
			}
			_, err := d.Write(context.Background(), entries("f", 0, n))
			if err == nil {
				err = d.Finish(20 * time.Second)
			} else if c.want == "" {
				t.Fatalf("Write: %v", err)
			}
			// A refusal shows on the write or at the end, as it happens.
			if c.want != "" {
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("Write or Finish = %v, want an error containing %q", err, c.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("Finish: %v", err)
			}
			// The receiver closed its side after reading everything.
			if got := count(); got != n {
				t.Errorf("the upstream has %d messages when Finish returned, want %d", got, n)
			}
		})
	}
}

// TestRELPFinish: Finish waits for every answer, in whatever order they
// come, then ends the session with close; a refusal, or an upstream that
// stops answering, is an error, and Settled still says how far it got.
func TestRELPFinish(t *testing.T) {
	for _, c := range []struct {
		name      string
		configure func(*relpServer)
		want      string // in Finish's error; "" means none
		settled   int64
	}{
		{"reverse-answers", func(s *relpServer) { s.reverse = true }, "", 50},
		{"refused", func(s *relpServer) { s.refuse = func(n int) bool { return n == 30 } }, "refused message", 30},
		{"silent", func(s *relpServer) { s.silent = true }, "no acknowledgement", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := newRELPServer(t, c.configure)
			d := relpDest(srv.addr(), 64)
			if err := d.Connect(context.Background()); err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if _, err := d.Write(context.Background(), entries("f", 0, 50)); err != nil {
				t.Fatalf("Write: %v", err)
			}
			timeout := 20 * time.Second
			if c.name == "silent" {
				timeout = 200 * time.Millisecond
			}
			err := d.Finish(timeout)
			if settled, _ := d.Settled(time.Now()); settled != c.settled {
				t.Errorf("settled %d, want %d", settled, c.settled)
			}
			if c.want != "" {
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("Finish = %v, want an error containing %q", err, c.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("Finish: %v", err)
			}
			d.Close()
			_, _, cmds := srv.stats()
			if last := cmds[len(cmds)-1]; last != "close" || strings.Count(strings.Join(cmds, " "), "close") != 1 {
				t.Errorf("upstream saw %q, want one close at the end", strings.Join(cmds, " "))
			}
		})
	}
}
