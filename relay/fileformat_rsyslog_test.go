package relay

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/relay-syslog/relay/internal/testpeer"
)

// TestFileFormatsMatchRsyslog: the templates docs/configuration.md gives
// for rsyslog's RSYSLOG_FileFormat and RSYSLOG_TraditionalFileFormat write
// the lines rsyslog writes, RFC 3339 offsets included ("+00:00" and "Z"
// as the sender wrote them), for RFC 3164 and RFC 5424 messages, and
// escape control bytes as rsyslog does.
func TestFileFormatsMatchRsyslog(t *testing.T) {
	needLong(t)
	// RFC 3164 stamps of now, so that rsyslog (the receive year) and the
	// relay (the latest year not in the future) read the same year.
	now := time.Now().Truncate(time.Second)
	msgs := []string{
		"<134>" + now.Format(time.Stamp) + " web01 nginx[812]: GET / 200",
		"<13>" + now.Format(time.Stamp) + " web01 kernel: eth0 link up",
		"<13>" + now.Format("Jan _2 15:04:05.000") + " web02 app9[1]: a stamp with a fraction",
		"<189>" + now.Format(time.Stamp) + ".340 rtr1 12: %SYS-5-CONFIG_I: Configured from console",
		"<165>1 2026-12-06T08:09:10.123456+01:00 db01 postgres 77 - - slow query",
		"<165>1 2026-12-06T08:09:10Z db01 postgres - - - zulu",
		"<165>1 2026-12-06T08:09:10.5+00:00 db01 postgres - - - digits",
		// Control bytes: both escape them as '#' and octal digits.
		"<13>" + now.Format(time.Stamp) + " web01 app: tab\there esc\x1b[1mbold bell\x07 del\x7f end",
	}

	port := testpeer.FreePort(t)
	rsAddr := fmt.Sprintf("127.0.0.1:%d", port)
	rs := testpeer.StartRsyslog(t, fmt.Sprintf(`module(load="imtcp")
input(type="imtcp" port="%d" address="127.0.0.1")
*.* action(type="omfile" file="{{DIR}}/file.log" template="RSYSLOG_FileFormat")
*.* action(type="omfile" file="{{DIR}}/traditional.log" template="RSYSLOG_TraditionalFileFormat")
`, port), testpeer.TCPReady(rsAddr))

	dir := t.TempDir()
	r := startRelay(t, t.TempDir(), `data_dir = "{{DATA}}"
[[listener]]
name = "tcp"
protocol = "tcp"
address = "127.0.0.1:0"

[[output]]
name = "file"
protocol = "file"
path = "`+dir+`/file.log"
template = "{timestamp} {hostname} {tag} {message}"

[[output]]
name = "traditional"
protocol = "file"
path = "`+dir+`/traditional.log"
template = "{timestamp_bsd} {hostname} {tag} {message}"

[[route]]
name = "all"
outputs = ["file", "traditional"]
`)
	if err := sendLines(rsAddr, msgs, 1); err != nil {
		t.Fatal(err)
	}
	if err := sendLines(r.addr("tcp"), msgs, 1); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"file.log", "traditional.log"} {
		relayFile, rsFile := filepath.Join(dir, name), filepath.Join(rs.Dir, name)
		if !testpeer.WaitFor(60*time.Second, func() bool { return len(testpeer.ReadLines(relayFile)) >= len(msgs) }) {
			t.Fatalf("relay %s: %d lines, want %d", name, len(testpeer.ReadLines(relayFile)), len(msgs))
		}
		if !testpeer.WaitFor(60*time.Second, func() bool { return len(testpeer.ReadLines(rsFile)) >= len(msgs) }) {
			rs.Stop() // flushes what rsyslog buffers
		}
		got, want := testpeer.ReadLines(relayFile), testpeer.ReadLines(rsFile)
		if len(got) != len(msgs) || len(want) != len(msgs) {
			t.Fatalf("%s: relay wrote %q, rsyslog %q", name, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s, %q:\nrelay   %q\nrsyslog %q", name, msgs[i], got[i], want[i])
			}
		}
	}
}
