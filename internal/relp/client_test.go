package relp

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// scriptedServer accepts one connection on 127.0.0.1, reads frames and
// answers each with answer(frame); a nil answer sends nothing. It records
// the frames it read and returns them when the client closes.
func scriptedServer(t *testing.T, answer func(Frame) []byte) (addr string, frames <-chan []Frame) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan []Frame, 1)
	go func() {
		defer ln.Close()
		c, err := ln.Accept()
		if err != nil {
			out <- nil
			return
		}
		defer c.Close()
		rd := NewReader(c, 1<<20)
		var got []Frame
		for {
			f, err := rd.Next()
			if err != nil {
				out <- got
				return
			}
			f.Data = bytes.Clone(f.Data)
			got = append(got, f)
			if b := answer(f); b != nil {
				if _, err := c.Write(b); err != nil {
					out <- got
					return
				}
			}
		}
	}()
	return ln.Addr().String(), out
}

// sessionAnswer answers like a RELP server built from ServerSession.
func sessionAnswer() func(Frame) []byte {
	var s ServerSession
	return func(f Frame) []byte {
		kind, rsp, _ := s.Receive(f)
		switch kind {
		case KindSyslog:
			return AppendResponse(nil, f.Txnr, CodeOK, "OK", nil)
		case KindReply, KindClose:
			return AppendResponse(nil, f.Txnr, rsp.Code, rsp.Text, rsp.Data)
		}
		return nil
	}
}

func dial(t *testing.T, addr string) (*Client, net.Conn) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return NewClient(c, c, 0), c
}

func TestClientSession(t *testing.T) {
	addr, frames := scriptedServer(t, sessionAnswer())
	cl, conn := dial(t, addr)
	offers, err := cl.Open()
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if o, ok := FindOffer(offers, "commands"); !ok || o.Values[0] != "syslog" {
		t.Errorf("server offers %v lack commands=syslog", offers)
	}
	msgs := []string{"<13>one", "", "<13>three\nwith LF"}
	for i, m := range msgs {
		txnr, err := cl.Syslog([]byte(m))
		if err != nil || txnr != i+2 {
			t.Fatalf("Syslog = %d, %v; want TXNR %d", txnr, err, i+2)
		}
	}
	if cl.Buffered() == 0 {
		t.Errorf("Syslog wrote through instead of buffering")
	}
	if err := cl.Flush(); err != nil {
		t.Fatal(err)
	}
	for i := range msgs {
		f, err := cl.Receive()
		if err != nil || f.Command != CmdRsp || f.Txnr != i+2 || string(f.Data) != "200 OK" {
			t.Fatalf("Receive = %+v, %v; want rsp %d 200 OK", f, err, i+2)
		}
	}
	closeTxnr, err := cl.SendClose()
	if err != nil || closeTxnr != 5 {
		t.Fatalf("SendClose = %d, %v", closeTxnr, err)
	}
	if f, err := cl.Receive(); err != nil || f.Txnr != closeTxnr {
		t.Fatalf("answer to close = %+v, %v", f, err)
	}
	conn.Close()
	got := <-frames
	var cmds []string
	for _, f := range got {
		cmds = append(cmds, f.Command)
	}
	if strings.Join(cmds, " ") != "open syslog syslog syslog close" {
		t.Errorf("server read %v", cmds)
	}
	if string(got[3].Data) != msgs[2] {
		t.Errorf("message arrived as %q, want %q", got[3].Data, msgs[2])
	}
	if want := "relp_version=0\nrelp_software=relay\ncommands=syslog"; string(got[0].Data) != want {
		t.Errorf("open offers = %q, want %q", got[0].Data, want)
	}
}

func TestClientOpenFailures(t *testing.T) {
	rsp := func(code int, text, data string) string {
		return string(AppendResponse(nil, 1, code, text, []byte(data)))
	}
	tests := []struct {
		name   string
		answer string // bytes the server sends after reading open
		err    string
	}{
		{"refused", rsp(500, "not welcome", ""), "refused open: 500 not welcome"},
		{"no syslog", rsp(200, "OK", "relp_version=0\ncommands="), ErrNoSyslog.Error()},
		{"newer version", rsp(200, "OK", "relp_version=7\ncommands=syslog"), "version 7"},
		{"serverclose", "0 serverclose 0\n", ErrServerclose.Error()},
		{"wrong txnr", "9 rsp 6 200 OK\n", "TXNR 9"},
		{"garbage", "HTTP/1.1 400 Bad Request\r\n", "invalid frame"},
		{"bad response", "1 rsp 2 OK\n", "three-digit code"},
		{"closed", "", "EOF"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				if _, err := NewReader(c, 1024).Next(); err != nil {
					return
				}
				_, _ = io.WriteString(c, tc.answer)
			}()
			cl, _ := dial(t, ln.Addr().String())
			_, err = cl.Open()
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("Open = %v, want an error containing %q", err, tc.err)
			}
		})
	}
}

// TestClientHintBeforeAnswer: an unknown hint before the answer to open is
// skipped.
func TestClientHintBeforeAnswer(t *testing.T) {
	addr, _ := scriptedServer(t, func(f Frame) []byte {
		if f.Command != CmdOpen {
			return nil
		}
		b := AppendFrame(nil, 0, "news", []byte("x"))
		return AppendResponse(b, 1, 200, "OK", AppendOffers(nil, ClientOffers()))
	})
	cl, _ := dial(t, addr)
	if _, err := cl.Open(); err != nil {
		t.Fatalf("Open: %v", err)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

func TestClientWriteError(t *testing.T) {
	cl := NewClient(strings.NewReader(""), failWriter{}, 16)
	// The frame does not fit the 16-byte buffer, so the write is attempted.
	if _, err := cl.Syslog([]byte(strings.Repeat("x", 64))); err == nil {
		t.Fatal("Syslog on a broken connection returned no error")
	}
}
