package testpeer

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/relay-syslog/relay/internal/relp"
)

// RsyslogModuleDir is where Debian installs rsyslog's modules.
const RsyslogModuleDir = "/usr/lib/x86_64-linux-gnu/rsyslog"

// NeedRELP returns the path of rsyslogd after checking that its RELP
// modules (omrelp, imrelp: Debian package rsyslog-relp) are installed. As
// with Need, a missing piece skips the test outside CI and fails it with
// CI=true.
func NeedRELP(t testing.TB) string {
	t.Helper()
	bin := Need(t, "rsyslogd", "rsyslog")
	for _, mod := range []string{"omrelp.so", "imrelp.so"} {
		path := filepath.Join(RsyslogModuleDir, mod)
		if _, err := os.Stat(path); err == nil {
			continue
		}
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found: CI must install the Debian package %q", path, "rsyslog-relp")
		}
		t.Skipf("%s not found: install the Debian package %q to run this test", path, "rsyslog-relp")
	}
	return bin
}

// RELPUpstreamConf is an rsyslog configuration that receives RELP on port
// (imrelp) and appends each raw message as a line to {{DIR}}/out.log. imrelp
// acknowledges a message once it is in rsyslog's in-memory main queue, so
// the queue is given time to drain into the file when rsyslog is stopped:
// the tests measure the relay, not rsyslog's shutdown.
func RELPUpstreamConf(port int) string {
	return fmt.Sprintf(`main_queue(queue.timeoutShutdown="20000")
module(load="imrelp")
input(type="imrelp" port="%d" address="127.0.0.1")
template(name="raw" type="string" string="%%rawmsg%%\n")
*.* action(type="omfile" file="{{DIR}}/out.log" template="raw")
`, port)
}

// RELPSenderConf is an rsyslog configuration that receives syslog over TCP
// on inPort (imtcp) and forwards every message unchanged (%rawmsg%) to
// target with omrelp. Its queues are large enough for a test's whole load,
// and it retries forever, every second, so it rides out a relay that is
// killed and restarted.
func RELPSenderConf(inPort int, targetHost, targetPort string) string {
	return fmt.Sprintf(`main_queue(queue.size="500000")
module(load="imtcp")
module(load="omrelp")
input(type="imtcp" port="%d" address="127.0.0.1")
template(name="raw" type="string" string="%%rawmsg%%")
*.* action(type="omrelp" target=%q port=%q template="raw"
           queue.type="LinkedList" queue.size="500000"
           action.resumeRetryCount="-1" action.resumeInterval="1")
`, inPort, targetHost, targetPort)
}

// SendRELP sends messages from..to-1 of run to a RELP server at addr over
// one session, keeping at most window messages unacknowledged, and closes
// the session once every message is answered. It returns how many were
// answered 200; any other answer is an error.
func SendRELP(addr, run string, from, to, window int) (acked int, err error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	cl := relp.NewClient(c, c, 0)
	if _, err := cl.Open(); err != nil {
		return 0, err
	}
	outstanding := 0
	receive := func() error {
		f, err := cl.Receive()
		if err != nil {
			return err
		}
		if f.Command != relp.CmdRsp {
			return fmt.Errorf("got %q while waiting for answers", f.Command)
		}
		rsp, err := relp.ParseResponse(f.Data)
		if err != nil {
			return err
		}
		if !rsp.OK() {
			return fmt.Errorf("message with TXNR %d refused: %d %s", f.Txnr, rsp.Code, rsp.Text)
		}
		outstanding--
		acked++
		return nil
	}
	for i := from; i < to; i++ {
		for outstanding >= window {
			if err := cl.Flush(); err != nil {
				return acked, err
			}
			if err := receive(); err != nil {
				return acked, err
			}
		}
		if _, err := cl.Syslog([]byte(SeqMessage(run, i))); err != nil {
			return acked, err
		}
		outstanding++
	}
	if err := cl.Flush(); err != nil {
		return acked, err
	}
	for outstanding > 0 {
		if err := receive(); err != nil {
			return acked, err
		}
	}
	txnr, err := cl.SendClose()
	if err != nil {
		return acked, err
	}
	f, err := cl.Receive()
	if err != nil {
		return acked, err
	}
	if f.Txnr != txnr {
		return acked, errors.New("close not answered")
	}
	return acked, nil
}
