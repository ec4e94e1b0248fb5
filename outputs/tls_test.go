package outputs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relay-syslog/relay/internal/testfixture"
	"github.com/relay-syslog/relay/internal/testpeer"
	"github.com/relay-syslog/relay/queue"
)

// tlsDest is a TLS destination that verifies the upstream against roots.
func tlsDest(addr string, cfg *tls.Config) *TCP {
	return NewTCP(TCPOptions{
		Address: addr, ConnectTimeout: 2 * time.Second, WriteTimeout: 5 * time.Second,
		ConfirmDelay: 50 * time.Millisecond,
		TLS:          func() (*tls.Config, error) { return cfg.Clone(), nil },
	})
}

func serverTLS(t *testing.T, ca *testpeer.TestCA, maxVersion uint16) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{ca.Server("upstream", "upstream.test").KeyPair(t)}, MaxVersion: maxVersion}
}

// TestTLSDestinationDelivers: every message arrives once over TLS 1.3 (the
// Go upstream sends session tickets after the handshake, which the
// destination must take off the socket) and TLS 1.2, and every batch is
// confirmed.
func TestTLSDestinationDelivers(t *testing.T) {
	t.Parallel()
	for _, v := range []struct {
		name string
		max  uint16
	}{{"TLS1.3", tls.VersionTLS13}, {"TLS1.2", tls.VersionTLS12}} {
		t.Run(v.name, func(t *testing.T) {
			ca := testpeer.NewTestCA(t, "up")
			recv := testpeer.NewTLSReceiver(t, "127.0.0.1:0", serverTLS(t, ca, v.max))
			q := &doneCounter{Queue: newTestQueue(t)}
			fill(t, q.Queue, "tls", 20000)
			runWorker(t, q, tlsDest(recv.Addr(), &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}))
			if !testpeer.WaitFor(30*time.Second, func() bool { return recv.Count() >= 20000 }) {
				t.Fatalf("%v", testpeer.Check("tls", 20000, recv.Messages()))
			}
			if tally := testpeer.Check("tls", 20000, recv.Messages()); tally.Delivered() != 20000 || tally.Duplicates > 0 {
				t.Errorf("%v", tally)
			}
			// Every batch is confirmed and given back to the queue.
			if !testpeer.WaitFor(30*time.Second, func() bool { return q.done.Load() == 20000 }) {
				t.Errorf("%d of 20000 messages confirmed", q.done.Load())
			}
		})
	}
}

// doneCounter counts the messages the worker gives back as delivered.
type doneCounter struct {
	*queue.Queue
	done atomic.Int64
}

func (q *doneCounter) Done(b *queue.Batch) error {
	q.done.Add(int64(len(b.Entries)))
	return q.Queue.Done(b)
}

// TestTLSDestinationConfirms: the confirmation offsets count TLS records on
// the wire, so a batch settles once the upstream's kernel acknowledged it
// and ConfirmDelay passed, as over plain TCP.
func TestTLSDestinationConfirms(t *testing.T) {
	t.Parallel()
	ca := testpeer.NewTestCA(t, "up")
	recv := testpeer.NewTLSReceiver(t, "127.0.0.1:0", serverTLS(t, ca, 0))
	d := tlsDest(recv.Addr(), &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"})
	ctx := context.Background()
	if err := d.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	// Every batch is written after start, so none can settle before
	// ConfirmDelay has passed since start.
	start := time.Now()
	var end int64
	for i := range 5 {
		var err error
		end, err = d.Write(ctx, []queue.Entry{{Data: []byte(testpeer.SeqMessage("c", i))}})
		if err != nil {
			t.Fatal(err)
		}
	}
	var settled int64
	if !testpeer.WaitFor(30*time.Second, func() bool {
		var err error
		settled, err = d.Settled(time.Now())
		if err != nil {
			t.Fatalf("Settled: %v", err)
		}
		return settled == end
	}) {
		t.Fatalf("settled %d, want %d", settled, end)
	}
	if time.Since(start) < 40*time.Millisecond {
		t.Errorf("settled after %v, before ConfirmDelay", time.Since(start))
	}
	// Acknowledged by the receiver's kernel is not yet read by it.
	if !testpeer.WaitFor(30*time.Second, func() bool { return recv.Count() == 5 }) {
		t.Errorf("receiver got %d messages, want 5", recv.Count())
	}
}

// TestTLSDestinationRefusesUpstream: an upstream whose certificate is for
// another name, or signed by a CA the output does not trust, is refused
// with an error that says what to check, and the worker keeps retrying
// without delivering anything; with insecure skip-verify it is accepted.
func TestTLSDestinationRefusesUpstream(t *testing.T) {
	t.Parallel()
	ca := testpeer.NewTestCA(t, "up")
	other := testpeer.NewTestCA(t, "other")
	for _, c := range []struct {
		name string
		cfg  *tls.Config
		want string // in the Connect error; "" means it must work
	}{
		{"wrong-name", &tls.Config{RootCAs: ca.Pool(), ServerName: "wrong.example"}, `not valid for "wrong.example"`},
		{"unknown-ca", &tls.Config{RootCAs: other.Pool(), ServerName: "localhost"}, "check tls.ca_file"},
		{"skip-verify", &tls.Config{RootCAs: other.Pool(), ServerName: "wrong.example", InsecureSkipVerify: true}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			recv := testpeer.NewTLSReceiver(t, "127.0.0.1:0", serverTLS(t, ca, 0))
			d := tlsDest(recv.Addr(), c.cfg)
			err := d.Connect(context.Background())
			if c.want == "" {
				if err != nil {
					t.Fatalf("Connect: %v", err)
				}
				d.Close()
			} else if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Connect error %v, want one containing %q", err, c.want)
			} else {
				t.Logf("refused: %v", err)
			}

			q := newTestQueue(t)
			fill(t, q, "v", 100)
			m := runWorker(t, q, tlsDest(recv.Addr(), c.cfg))
			if c.want == "" {
				if !testpeer.WaitFor(30*time.Second, func() bool { return recv.Count() >= 100 }) {
					t.Fatalf("%v", testpeer.Check("v", 100, recv.Messages()))
				}
				return
			}
			// Refused and retried: several failed attempts, nothing sent.
			if !testpeer.WaitFor(30*time.Second, func() bool { return testfixture.CollectorSum(t, m.OutputErrors) >= 3 }) {
				t.Fatalf("send errors = %v, want >= 3 (retries)", testfixture.CollectorSum(t, m.OutputErrors))
			}
			if n := recv.Count(); n != 0 {
				t.Errorf("an unverified upstream received %d messages", n)
			}
		})
	}
}

// TestTLSDestinationClientCertRefused: a TLS 1.3 upstream that wants a
// client certificate refuses it only after the client's side of the
// handshake is complete. The refusal (an alert read by the reader
// goroutine) must break the session before anything is confirmed.
func TestTLSDestinationClientCertRefused(t *testing.T) {
	t.Parallel()
	ca := testpeer.NewTestCA(t, "up")
	cfg := serverTLS(t, ca, 0)
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	cfg.ClientCAs = ca.Pool()
	recv := testpeer.NewTLSReceiver(t, "127.0.0.1:0", cfg)
	d := tlsDest(recv.Addr(), &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"})
	ctx := context.Background()
	if err := d.Connect(ctx); err != nil {
		t.Fatalf("Connect: %v (TLS 1.3 completes the client side before the server checks)", err)
	}
	defer d.Close()
	end, err := d.Write(ctx, []queue.Entry{{Data: []byte("<13>refused")}})
	if err != nil {
		t.Logf("Write: %v", err)
	}
	var serr error
	testpeer.WaitFor(5*time.Second, func() bool {
		var settled int64
		settled, serr = d.Settled(time.Now())
		if settled >= end {
			t.Fatalf("the write was confirmed (offset %d of %d) on a refused session", settled, end)
		}
		return serr != nil
	})
	if serr == nil || !strings.Contains(serr.Error(), "tls.cert_file") {
		t.Fatalf("Settled error %v, want one that points at tls.cert_file", serr)
	}
	t.Logf("refused: %v", serr)

	// With a client certificate it works.
	good := tlsDest(recv.Addr(), &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost",
		Certificates: []tls.Certificate{ca.Client("relay", "relay").KeyPair(t)}})
	q := newTestQueue(t)
	fill(t, q, "m", 100)
	runWorker(t, q, good)
	if !testpeer.WaitFor(30*time.Second, func() bool { return recv.Count() >= 100 }) {
		t.Fatalf("%v", testpeer.Check("m", 100, recv.Messages()))
	}
}

// TestTLSDestinationResendsAfterReset: an upstream that reads part of the
// stream and resets the connection (a crash) loses nothing over TLS either.
func TestTLSDestinationResendsAfterReset(t *testing.T) {
	ca := testpeer.NewTestCA(t, "up")
	cfg := serverTLS(t, ca, 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		tc := tls.Server(c, cfg)
		_, _ = io.ReadFull(tc, make([]byte, 50000))
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
		ln.Close()
	}()
	q := newTestQueue(t)
	fill(t, q, "r", 20000)
	m := runWorker(t, q, tlsDest(addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}))
	<-done
	recv := testpeer.NewTLSReceiver(t, addr, cfg)
	if !testpeer.WaitFor(20*time.Second, func() bool { return testpeer.Check("r", 20000, recv.Messages()).Delivered() == 20000 }) {
		t.Fatalf("after reset: %v", testpeer.Check("r", 20000, recv.Messages()))
	}
	if errs := testfixture.CollectorSum(t, m.OutputErrors); errs < 1 {
		t.Errorf("send errors = %v, want >= 1", errs)
	}
	t.Logf("resent %v messages after the reset", testfixture.CollectorSum(t, m.OutputResent))
}

// TestTLSDestinationStopsQuickly: closing a session whose upstream stopped
// reading (a full socket buffer) does not wait for the close_notify alert.
func TestTLSDestinationStopsQuickly(t *testing.T) {
	ca := testpeer.NewTestCA(t, "up")
	cfg := serverTLS(t, ca, 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	hold := make(chan struct{})
	defer close(hold)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		tc := tls.Server(c, cfg)
		_ = tc.Handshake()
		<-hold // and never read
	}()
	d := NewTCP(TCPOptions{Address: ln.Addr().String(), ConnectTimeout: 2 * time.Second, WriteTimeout: 300 * time.Millisecond,
		TLS: func() (*tls.Config, error) { return &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}, nil }})
	ctx := context.Background()
	if err := d.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	big := make([]queue.Entry, 64)
	for i := range big {
		big[i].Data = []byte(strings.Repeat("x", 64<<10))
	}
	for range 100 {
		if _, err := d.Write(ctx, big); err != nil {
			break // the socket buffers are full
		}
	}
	start := time.Now()
	d.Close()
	if took := time.Since(start); took > time.Second {
		t.Errorf("Close took %v with a stuck upstream", took)
	}
}

// TestTLSDestinationSlowCertificateCheck: a TLS 1.3 server checks the
// client's certificate after the client has finished its side of the
// handshake and sent its first records, which the server's kernel
// acknowledges. A server slow to refuse (here 300 ms, longer than
// confirm_delay) must not make those records count as confirmed: they go
// out again on the next connection, which the server accepts.
func TestTLSDestinationSlowCertificateCheck(t *testing.T) {
	t.Parallel()
	ca := testpeer.NewTestCA(t, "up")
	cfg := serverTLS(t, ca, 0)
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	cfg.ClientCAs = ca.Pool()
	cfg.SessionTicketsDisabled = true // nothing after the handshake speaks for the server
	var checks atomic.Int32
	cfg.VerifyPeerCertificate = func([][]byte, [][]*x509.Certificate) error {
		if checks.Add(1) == 1 {
			time.Sleep(300 * time.Millisecond)
			return errors.New("first session refused")
		}
		return nil
	}
	recv := testpeer.NewTLSReceiver(t, "127.0.0.1:0", cfg)
	d := tlsDest(recv.Addr(), &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost",
		Certificates: []tls.Certificate{ca.Client("relay", "relay").KeyPair(t)}})
	q := newTestQueue(t)
	fill(t, q, "slow", 100)
	runWorker(t, q, d)
	if !testpeer.WaitFor(30*time.Second, func() bool { return testpeer.Check("slow", 100, recv.Messages()).Delivered() == 100 }) {
		t.Fatalf("%v after %d certificate checks", testpeer.Check("slow", 100, recv.Messages()), checks.Load())
	}
	if n := checks.Load(); n < 2 {
		t.Errorf("%d certificate checks: the first session was not refused", n)
	}
}
