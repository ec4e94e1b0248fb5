package outputs

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/relay-syslog/relay/internal/relp"
	"github.com/relay-syslog/relay/internal/testpeer"
)

// TestRELPAnswerThatNeverEnds: an upstream that answers a message with an
// rsp frame announcing more data than any answer holds, and never sends
// the rest, has not answered: the frame is cut at the answer limit, and
// its first bytes ("200 OK") must not settle the message.
func TestRELPAnswerThatNeverEnds(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	hold := make(chan struct{})
	t.Cleanup(func() { close(hold) })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		rd := relp.NewReader(c, 1<<20)
		var sess relp.ServerSession
		for {
			f, err := rd.Next()
			if err != nil {
				return
			}
			kind, rsp, _ := sess.Receive(f)
			switch kind {
			case relp.KindReply:
				if _, err := c.Write(relp.AppendResponse(nil, f.Txnr, rsp.Code, rsp.Text, rsp.Data)); err != nil {
					return
				}
			case relp.KindSyslog:
				// More than the answer limit of "200 OK..." out of the
				// announced 999,999,999 bytes, then nothing.
				b := fmt.Appendf(nil, "%d rsp 999999999 200 OK ", f.Txnr)
				b = append(b, bytes.Repeat([]byte("x"), relp.MaxResponseLen+1024)...)
				if _, err := c.Write(b); err != nil {
					return
				}
				<-hold
				return
			}
		}
	}()

	d := relpDest(ln.Addr().String(), 8)
	if err := d.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if _, err := d.Write(context.Background(), entries("nev", 0, 1)); err != nil {
		t.Fatal(err)
	}
	var settled int64
	if !testpeer.WaitFor(30*time.Second, func() bool {
		settled, err = d.Settled(time.Now())
		return settled > 0 || err != nil
	}) {
		t.Fatal("the session neither settled the message nor failed")
	}
	if settled != 0 {
		t.Errorf("settled %d: the start of an answer that never ended counted as 200 OK", settled)
	}
	if err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("Settled error %v, want one about the overlong answer", err)
	}
}
