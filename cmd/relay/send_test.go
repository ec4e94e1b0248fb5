package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relay-syslog/relay/internal/relp"
	"github.com/relay-syslog/relay/internal/syslog"
	"github.com/relay-syslog/relay/internal/testpeer"
	"github.com/relay-syslog/relay/relay"
)

// sendRelay is a relay run in-process with every listener relay send
// speaks, writing what it receives to one file.
type sendRelay struct {
	srv    *relay.Server
	dir    string
	file   string
	cancel context.CancelFunc
	done   chan error
}

// sendRelayConfig listens on udp, tcp, relp and a unix socket in dir; extra
// is appended (more listeners).
func sendRelayConfig(dir, extra string) string {
	return fmt.Sprintf(`
data_dir = %[1]q

[[listener]]
name = "udp"
protocol = "udp"
address = "127.0.0.1:0"

[[listener]]
name = "tcp"
protocol = "tcp"
address = "127.0.0.1:0"

[[listener]]
name = "relp"
protocol = "relp"
address = "127.0.0.1:0"

[[listener]]
name = "unix"
protocol = "unix"
address = %[2]q
%[3]s
[[output]]
name = "file"
protocol = "file"
path = %[4]q

[[route]]
name = "all"
outputs = ["file"]
`, filepath.Join(dir, "data"), filepath.Join(dir, "log.sock"), extra, filepath.Join(dir, "messages.log"))
}

// startSendRelay starts a relay on sendRelayConfig; it stops when the test
// ends. It returns the error of relay.New instead of failing, so that a
// caller can tell a listener protocol that is not built yet.
func startSendRelay(t *testing.T, extra string) (*sendRelay, error) {
	t.Helper()
	dir := t.TempDir()
	cfg, err := relay.ParseConfig("send-test.toml", []byte(sendRelayConfig(dir, extra)))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := relay.New(cfg, relay.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &sendRelay{srv: srv, dir: dir, file: filepath.Join(dir, "messages.log"), cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		r.cancel()
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("relay Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("relay did not stop within 30s")
		}
	})
	return r, nil
}

func mustStartSendRelay(t *testing.T) *sendRelay {
	t.Helper()
	r, err := startSendRelay(t, "")
	if err != nil {
		t.Fatalf("relay.New: %v", err)
	}
	return r
}

func (r *sendRelay) addr(t *testing.T, listener string) string {
	t.Helper()
	if listener == "unix" {
		return filepath.Join(r.dir, "log.sock")
	}
	a := r.srv.ListenerAddr(listener)
	if a == "" {
		t.Fatalf("relay has no listener %q", listener)
	}
	return a
}

// waitLines polls the file output until it holds n lines containing token
// and returns them in file order.
func (r *sendRelay) waitLines(t *testing.T, token string, n int) []string {
	t.Helper()
	var got []string
	ok := testpeer.WaitFor(15*time.Second, func() bool {
		got = r.lines(t, token)
		return len(got) >= n
	})
	if !ok {
		t.Fatalf("file output has %d lines with %q, want %d:\n%s", len(got), token, n, strings.Join(got, "\n"))
	}
	if len(got) > n {
		t.Fatalf("file output has %d lines with %q, want %d:\n%s", len(got), token, n, strings.Join(got, "\n"))
	}
	return got
}

func (r *sendRelay) lines(t *testing.T, token string) []string {
	t.Helper()
	b, err := os.ReadFile(r.file)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatalf("read file output: %v", err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, token) {
			out = append(out, l)
		}
	}
	return out
}

// sendOK runs relay send with args and fails the test unless it exits 0
// with the summary line.
func sendOK(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := runSend(args, &out, &errOut); code != 0 {
		t.Fatalf("relay send %s: exit %d, stderr:\n%s", strings.Join(args, " "), code, errOut.String())
	}
	if !summaryRE.MatchString(errOut.String()) {
		t.Errorf("relay send %s: stderr = %q, want one summary line", strings.Join(args, " "), errOut.String())
	}
	if out.Len() != 0 {
		t.Errorf("relay send %s: stdout = %q, want nothing", strings.Join(args, " "), out.String())
	}
	return errOut.String()
}

var summaryRE = regexp.MustCompile(`^sent \d+ messages? over (udp|tcp|tls|unix|relp) to \S+ in \S+\n$`)

// wantMsg is what a line of the file output must parse to.
type wantMsg struct {
	format   syslog.Format
	pri      int
	hostname string
	app      string
	procid   string
	msgid    string
	sd       string
	msg      string
}

func checkLine(t *testing.T, line string, w wantMsg) {
	t.Helper()
	var m syslog.Message
	syslog.Parse([]byte(line), syslog.ParseOptions{}, &m)
	var errs []string
	check := func(field, got, want string) {
		if got != want {
			errs = append(errs, fmt.Sprintf("%s = %q, want %q", field, got, want))
		}
	}
	if m.Problem != syslog.ProblemNone {
		errs = append(errs, "problem "+m.Problem.String())
	}
	check("format", m.Format.String(), w.format.String())
	check("PRI", strconv.Itoa(m.PRI), strconv.Itoa(w.pri))
	check("app", string(m.AppName), w.app)
	check("msgid", string(m.MsgID), w.msgid)
	check("sd", string(m.StructuredData), w.sd)
	check("msg", string(m.Msg), w.msg)
	if w.hostname != "" {
		check("hostname", string(m.Hostname), w.hostname)
	}
	if w.procid != "" {
		check("procid", string(m.ProcID), w.procid)
	}
	if !m.HasTimestamp || time.Since(m.Timestamp).Abs() > time.Minute {
		errs = append(errs, fmt.Sprintf("timestamp %v (has %v), want now", m.Timestamp, m.HasTimestamp))
	}
	if len(errs) > 0 {
		t.Errorf("Parse(%q):\n  %s", line, strings.Join(errs, "\n  "))
	}
}

// token returns a word that marks the messages of one test.
func token(t *testing.T) string {
	return "tok-" + strings.NewReplacer("/", "-", " ", "_").Replace(t.Name())
}

func TestSendTransportsAndFormats(t *testing.T) {
	r := mustStartSendRelay(t)
	pid := strconv.Itoa(os.Getpid())
	for _, tc := range []struct {
		name     string
		listener string
		args     []string
		want     wantMsg
	}{
		{
			name: "udp-rfc5424-defaults", listener: "udp",
			args: []string{"-proto", "udp"},
			want: wantMsg{format: syslog.FormatRFC5424, pri: 13, app: "relay-send", procid: pid},
		},
		{
			name: "udp-rfc3164", listener: "udp",
			args: []string{"-format", "rfc3164", "-facility", "local7", "-severity", "warning", "-hostname", "edge-1", "-app", "sshd", "-procid", "42"},
			want: wantMsg{format: syslog.FormatRFC3164, pri: 23*8 + 4, hostname: "edge-1", app: "sshd", procid: "42"},
		},
		{
			name: "tcp-octet-counting", listener: "tcp",
			args: []string{"-proto", "tcp", "-framing", "octet-counting", "-facility", "16", "-severity", "err", "-hostname", "h1.example.net"},
			want: wantMsg{format: syslog.FormatRFC5424, pri: 16*8 + 3, hostname: "h1.example.net", app: "relay-send"},
		},
		{
			name: "tcp-lf-rfc3164", listener: "tcp",
			args: []string{"-protocol", "tcp", "-framing", "lf", "-format", "rfc3164", "-facility", "auth", "-severity", "info", "-app", "su"},
			want: wantMsg{format: syslog.FormatRFC3164, pri: 4*8 + 6, app: "su"},
		},
		{
			name: "tcp-lf-rfc5424-sd", listener: "tcp",
			args: []string{"-proto", "tcp", "-framing", "lf", "-sd", `[test@32473 run="7" path="a\]b"][x@1 y="z"]`, "-msgid", "ID47"},
			want: wantMsg{format: syslog.FormatRFC5424, pri: 13, app: "relay-send", msgid: "ID47", sd: `[test@32473 run="7" path="a\]b"][x@1 y="z"]`},
		},
		{
			name: "unix-rfc5424", listener: "unix",
			args: []string{"-proto", "unix", "-facility", "daemon", "-severity", "debug", "-app", "cron"},
			want: wantMsg{format: syslog.FormatRFC5424, pri: 3*8 + 7, app: "cron"},
		},
		{
			name: "unix-rfc3164", listener: "unix",
			args: []string{"-proto", "unix", "-format", "rfc3164", "-severity", "crit"},
			want: wantMsg{format: syslog.FormatRFC3164, pri: 8 + 2, app: "relay-send"},
		},
		{
			name: "relp-rfc5424-sd", listener: "relp",
			args: []string{"-proto", "relp", "-sd", `[origin ip="192.0.2.1"]`, "-msgid", "RELP", "-facility", "local3", "-severity", "alert"},
			want: wantMsg{format: syslog.FormatRFC5424, pri: 19*8 + 1, app: "relay-send", msgid: "RELP", sd: `[origin ip="192.0.2.1"]`},
		},
		{
			name: "relp-rfc3164", listener: "relp",
			args: []string{"-proto", "relp", "-format", "rfc3164", "-facility", "mail", "-severity", "emerg"},
			want: wantMsg{format: syslog.FormatRFC3164, pri: 2*8 + 0, app: "relay-send"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := token(t)
			args := append(append([]string{}, tc.args...), "-address", r.addr(t, tc.listener), "hello", "from", tok)
			summary := sendOK(t, args...)
			proto := tc.listener
			if !strings.HasPrefix(summary, "sent 1 message over "+proto+" to "+r.addr(t, tc.listener)+" in ") {
				t.Errorf("summary = %q", summary)
			}
			line := r.waitLines(t, tok, 1)[0]
			tc.want.msg = "hello from " + tok
			checkLine(t, line, tc.want)
		})
	}
}

func TestSendRFC3164KeepsMSGIDAndSDInContent(t *testing.T) {
	r := mustStartSendRelay(t)
	tok := token(t)
	sendOK(t, "-proto", "tcp", "-address", r.addr(t, "tcp"), "-format", "rfc3164", "-msgid", "M1", "-sd", `[a@1 b="c"]`, tok)
	line := r.waitLines(t, tok, 1)[0]
	checkLine(t, line, wantMsg{format: syslog.FormatRFC3164, pri: 13, app: "relay-send", msg: `M1: [a@1 b="c"] ` + tok})
}

// TestSendRaw sends lines with their own header, as given: the relay's
// file output keeps a message as received, so each line must come back
// byte for byte.
func TestSendRaw(t *testing.T) {
	r := mustStartSendRelay(t)
	for _, tc := range []struct {
		name     string
		listener string
		args     []string
	}{
		{"udp", "udp", []string{"-proto", "udp"}},
		{"tcp-lf", "tcp", []string{"-proto", "tcp", "-framing", "lf"}},
		{"tcp-octet-counting", "tcp", []string{"-proto", "tcp"}},
		{"relp", "relp", []string{"-proto", "relp"}},
		{"unix", "unix", []string{"-proto", "unix"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := token(t)
			text := "<13>Dec 31 23:59:59 host app: year test " + tok
			args := append(append([]string{}, tc.args...), "-format", "raw", "-address", r.addr(t, tc.listener), text)
			sendOK(t, args...)
			if got := r.waitLines(t, tok, 1)[0]; got != text {
				t.Errorf("received %q, want %q as sent", got, text)
			}
		})
	}
	t.Run("stdin", func(t *testing.T) {
		tok := token(t)
		in := fmt.Sprintf("<165>1 2026-12-31T23:59:59Z h a - - - one %[1]s\nno header at all %[1]s\n", tok)
		var out, errOut bytes.Buffer
		if code := sendCommand([]string{"-proto", "tcp", "-address", r.addr(t, "tcp"), "-format", "raw"}, strings.NewReader(in), &out, &errOut); code != 0 {
			t.Fatalf("exit %d, stderr:\n%s", code, errOut.String())
		}
		got := r.waitLines(t, tok, 2)
		want := strings.Split(strings.TrimSuffix(in, "\n"), "\n")
		if !slices.Equal(got, want) {
			t.Errorf("received %q, want %q", got, want)
		}
	})
}

// seqs returns the seq=N numbers of lines, in order.
func seqs(t *testing.T, lines []string) []int {
	t.Helper()
	var out []int
	for _, l := range lines {
		i := strings.LastIndex(l, " seq=")
		if i < 0 {
			t.Fatalf("line without seq=: %q", l)
		}
		n, err := strconv.Atoi(l[i+len(" seq="):])
		if err != nil {
			t.Fatalf("line %q: seq: %v", l, err)
		}
		out = append(out, n)
	}
	return out
}

func TestSendCountRateSeq(t *testing.T) {
	r := mustStartSendRelay(t)
	for _, tc := range []struct {
		name, proto string
		args        []string
		count       int
		rate        float64
		inOrder     bool
	}{
		// UDP may reorder in principle; on loopback it does not lose at
		// this rate, and the test checks every number arrived once.
		{name: "udp-rate", proto: "udp", count: 200, rate: 2000},
		{name: "unix-rate", proto: "unix", count: 200, rate: 2000},
		{name: "tcp-octet-burst", proto: "tcp", count: 1000, inOrder: true},
		{name: "tcp-lf-rate", proto: "tcp", args: []string{"-framing", "lf"}, count: 200, rate: 2000, inOrder: true},
		// More than the RELP window, so the sender waits for answers.
		{name: "relp-burst", proto: "relp", count: 1000, inOrder: true},
		{name: "relp-rate", proto: "relp", count: 200, rate: 2000, inOrder: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := token(t)
			args := append([]string{"-proto", tc.proto, "-address", r.addr(t, tc.proto), "-count", strconv.Itoa(tc.count), "-seq"}, tc.args...)
			if tc.rate > 0 {
				args = append(args, "-rate", strconv.FormatFloat(tc.rate, 'f', -1, 64))
			}
			args = append(args, "load", tok)
			start := time.Now()
			summary := sendOK(t, args...)
			elapsed := time.Since(start)
			if want := fmt.Sprintf("sent %d messages over %s", tc.count, tc.proto); !strings.HasPrefix(summary, want) {
				t.Errorf("summary = %q, want it to start with %q", summary, want)
			}
			if tc.rate > 0 {
				// The first message goes at once, then one every 1/rate.
				min := time.Duration(float64(tc.count-1) / tc.rate * float64(time.Second))
				if elapsed < min {
					t.Errorf("%d messages at %v/s took %v, want at least %v", tc.count, tc.rate, elapsed, min)
				}
			}
			lines := r.waitLines(t, tok, tc.count)
			got := seqs(t, lines)
			seen := make(map[int]bool, len(got))
			for i, n := range got {
				if seen[n] || n < 1 || n > tc.count {
					t.Fatalf("seq=%d duplicated or out of range 1..%d", n, tc.count)
				}
				seen[n] = true
				if tc.inOrder && n != i+1 {
					t.Fatalf("line %d has seq=%d, want %d (order lost)", i, n, i+1)
				}
			}
			checkLine(t, lines[0], wantMsg{format: syslog.FormatRFC5424, pri: 13, app: "relay-send", msg: "load " + tok + " seq=" + strconv.Itoa(got[0])})
		})
	}
}

func TestSendStdinLines(t *testing.T) {
	r := mustStartSendRelay(t)
	tok := token(t)
	in := fmt.Sprintf("first %[1]s\r\nsecond %[1]s\n\nthird %[1]s", tok)
	var out, errOut bytes.Buffer
	code := sendCommand([]string{"-proto", "tcp", "-address", r.addr(t, "tcp"), "-count", "2"}, strings.NewReader(in), &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut.String())
	}
	if !strings.HasPrefix(errOut.String(), "sent 6 messages over tcp") {
		t.Errorf("summary = %q", errOut.String())
	}
	lines := r.waitLines(t, tok, 6)
	for i, want := range []string{"first", "first", "second", "second", "third", "third"} {
		checkLine(t, lines[i], wantMsg{format: syslog.FormatRFC5424, pri: 13, app: "relay-send", msg: want + " " + tok})
	}
}

func TestSendDefaultMessage(t *testing.T) {
	r := mustStartSendRelay(t)
	// A -hostname unique to this test marks the line, as the text is fixed.
	host := fmt.Sprintf("default-msg-%d", time.Now().UnixNano())
	var out, errOut bytes.Buffer
	if code := sendCommand([]string{"-proto", "tcp", "-address", r.addr(t, "tcp"), "-hostname", host}, nil, &out, &errOut); code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut.String())
	}
	line := r.waitLines(t, host, 1)[0]
	checkLine(t, line, wantMsg{format: syslog.FormatRFC5424, pri: 13, hostname: host, app: "relay-send", msg: "test message from relay send"})
}

// TestSendThroughRun checks that "relay send" is dispatched by run, the
// entry point of the binary.
func TestSendThroughRun(t *testing.T) {
	r := mustStartSendRelay(t)
	tok := token(t)
	var out, errOut bytes.Buffer
	if code := run([]string{"send", "-proto", "tcp", "-address", r.addr(t, "tcp"), tok}, &out, &errOut); code != 0 {
		t.Fatalf("run send: exit %d, stderr:\n%s", code, errOut.String())
	}
	r.waitLines(t, tok, 1)
}

func TestSendBadFlags(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string // in stderr
		code int    // exit status: 2 for a usage error
	}{
		{[]string{"-facility", "bogus"}, `-facility "bogus": unknown facility`, 2},
		{[]string{"-facility", "24"}, `-facility "24"`, 2},
		{[]string{"-severity", "8"}, `-severity "8": unknown severity`, 2},
		{[]string{"-severity", "loud"}, `-severity "loud"`, 2},
		{[]string{"-proto", "sctp"}, `-proto "sctp"`, 2},
		{[]string{"-format", "json"}, `-format "json"`, 2},
		{[]string{"-proto", "tcp", "-framing", "nul"}, `-framing "nul"`, 2},
		{[]string{"-proto", "udp", "-framing", "lf"}, `-framing is for -proto tcp and tls`, 2},
		{[]string{"-proto", "tcp", "-framing", "lf", "two\nlines"}, `line feed, which -framing lf would split`, 2},
		{[]string{"-address", "127.0.0.1"}, `-address "127.0.0.1": use host:port`, 2},
		{[]string{"-proto", "unix", "-address", ""}, `-address: empty`, 2},
		{[]string{"-sd", `[bad`}, `-sd "[bad": not valid`, 2},
		{[]string{"-sd", `x="y"`}, `-sd`, 2},
		{[]string{"-count", "0"}, `-count 0`, 2},
		{[]string{"-rate", "-1"}, `-rate -1`, 2},
		{[]string{"-timeout", "0s"}, `-timeout`, 2},
		{[]string{"-app", "has space"}, `-app "has space"`, 2},
		{[]string{"-format", "rfc3164", "-app", "a:b"}, `-app "a:b"`, 2},
		{[]string{"-msgid", strings.Repeat("m", 33)}, `-msgid`, 2},
		{[]string{"-hostname", strings.Repeat("h", 256)}, `-hostname`, 2},
		{[]string{"-procid", "ü"}, `-procid`, 2},
		{[]string{"-tls-ca", "ca.pem"}, `-tls-ca is for -proto tls`, 2},
		{[]string{"-proto", "tls", "-tls-cert", "c.pem"}, `-tls-cert needs -tls-key`, 2},
		{[]string{"-proto", "tls", "-tls-key", "k.pem"}, `-tls-key needs -tls-cert`, 2},
		{[]string{"-format", "raw", "-severity", "err"}, `-severity is not used with -format raw`, 2},
		{[]string{"-format", "raw", "-hostname", "h"}, `-hostname is not used with -format raw`, 2},
		{[]string{"-format", "raw", "-sd", `[a@1 b="c"]`}, `-sd is not used with -format raw`, 2},
		// A file that cannot be read is an error, not a usage error.
		{[]string{"-proto", "tls", "-tls-ca", filepath.Join(dir, "missing.pem")}, `-tls-ca: open`, 1},
		{[]string{"-proto", "tls", "-tls-ca", writeFile(t, dir, "empty.pem", "not pem")}, `-tls-ca ` + filepath.Join(dir, "empty.pem") + `: no PEM certificate`, 1},
		{[]string{"-bogus"}, `flag provided but not defined: -bogus`, 2},
		{[]string{"-count", "many"}, `invalid value "many" for flag -count`, 2},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := runSend(append(tc.args, "msg"), &out, &errOut)
			if code != tc.code {
				t.Errorf("exit %d, want %d", code, tc.code)
			}
			if !strings.Contains(errOut.String(), tc.want) {
				t.Errorf("stderr = %q, want it to contain %q", errOut.String(), tc.want)
			}
			if n := strings.Count(errOut.String(), "\n"); n != 1 || !strings.HasPrefix(errOut.String(), "relay send: ") {
				t.Errorf("stderr = %q, want one line starting \"relay send: \"", errOut.String())
			}
		})
	}
}

func TestSendHelp(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := runSend([]string{"-h"}, &out, &errOut); code != 0 {
		t.Fatalf("relay send -h: exit %d", code)
	}
	for _, want := range []string{"Usage: relay send [flags] [MESSAGE...]", "-proto", "-tls-server-name", "-seq"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("usage on stdout lacks %q:\n%s", want, out.String())
		}
	}
	if errOut.Len() != 0 {
		t.Errorf("stderr = %q, want nothing", errOut.String())
	}
}

func TestSendTransportErrors(t *testing.T) {
	// A port nothing listens on: bind one and close it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	// A stream socket where relay send expects a datagram one.
	streamSock := filepath.Join(dir, "stream.sock")
	sl, err := net.Listen("unix", streamSock)
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Close()
	// A RELP "server" that refuses the session.
	refuser := serveOnce(t, func(c net.Conn) {
		buf := make([]byte, 4096)
		c.Read(buf)
		io.WriteString(c, "1 rsp 16 500 not accepted\n")
	})

	// A RELP server that opens the session and refuses the third message.
	refuseThird := serveOnce(t, func(c net.Conn) {
		rd := relp.NewReader(c, 64<<10)
		for n := 0; ; n++ {
			f, err := rd.Next()
			if err != nil {
				return
			}
			var out []byte
			switch {
			case f.Command == relp.CmdOpen:
				out = relp.AppendResponse(nil, f.Txnr, 200, "OK", relp.AppendOffers(nil, relp.ClientOffers()))
			case n == 3:
				out = relp.AppendResponse(nil, f.Txnr, 500, "queue full", nil)
			default:
				out = relp.AppendResponse(nil, f.Txnr, 200, "OK", nil)
			}
			if _, err := c.Write(out); err != nil {
				return
			}
		}
	})

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"relp-message-refused", []string{"-proto", "relp", "-address", refuseThird, "-count", "5", "-rate", "1000"}, "upstream refused message (TXNR 4): 500 queue full (2 messages acknowledged before the error)"},
		{"tcp-refused", []string{"-proto", "tcp", "-address", closedPort}, "tcp " + closedPort + ": dial tcp " + closedPort},
		{"relp-refused", []string{"-proto", "relp", "-address", closedPort}, "connection refused"},
		{"tls-refused", []string{"-proto", "tls", "-address", closedPort, "-tls-insecure"}, "connection refused"},
		{"unix-missing", []string{"-proto", "unix", "-address", filepath.Join(dir, "none.sock")}, "no such file"},
		{"unix-stream-socket", []string{"-proto", "unix", "-address", streamSock}, "not a datagram socket"},
		{"relp-open-refused", []string{"-proto", "relp", "-address", refuser}, "refused open: 500"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := runSend(append(tc.args, "msg"), &out, &errOut)
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			if !strings.HasPrefix(errOut.String(), "relay send: ") || !strings.Contains(errOut.String(), tc.want) {
				t.Errorf("stderr = %q, want it to contain %q", errOut.String(), tc.want)
			}
		})
	}
}

// serveOnce accepts one TCP connection on a loopback port and hands it to
// handle; it returns the address.
func serveOnce(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		handle(c)
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return ln.Addr().String()
}

// testPKI is a CA with a server certificate for 127.0.0.1 and localhost
// and a client certificate, written as PEM files.
type testPKI struct {
	ca, serverCert, serverKey, clientCert, clientKey string
	otherCA                                          string // a CA that signed nothing here
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	ca := testpeer.NewTestCA(t, "send")
	server := ca.Server("server", "server")
	client := ca.Client("client", "client")
	return testPKI{
		ca:         ca.CAFile,
		serverCert: server.CertFile, serverKey: server.KeyFile,
		clientCert: client.CertFile, clientKey: client.KeyFile,
		otherCA: testpeer.NewTestCA(t, "unrelated").CAFile,
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSendTLS(t *testing.T) {
	pki := newTestPKI(t)
	// The relay's own RFC 5425 listener, requiring a client certificate.
	r, err := startSendRelay(t, fmt.Sprintf(`
[[listener]]
name = "tls"
protocol = "tls"
address = "127.0.0.1:0"
tls.cert_file = %q
tls.key_file = %q
tls.client_ca_file = %q
`, pki.serverCert, pki.serverKey, pki.ca))
	if err != nil {
		t.Fatalf("relay.New: %v", err)
	}
	addr := r.addr(t, "tls")
	client := []string{"-proto", "tls", "-address", addr, "-tls-cert", pki.clientCert, "-tls-key", pki.clientKey}

	for _, tc := range []struct {
		name string
		args []string
		want wantMsg
	}{
		{"octet-counting", []string{"-tls-ca", pki.ca}, wantMsg{format: syslog.FormatRFC5424, pri: 13, app: "relay-send"}},
		{"lf-rfc3164", []string{"-tls-ca", pki.ca, "-framing", "lf", "-format", "rfc3164", "-severity", "err"}, wantMsg{format: syslog.FormatRFC3164, pri: 11, app: "relay-send"}},
		{"server-name", []string{"-tls-ca", pki.ca, "-tls-server-name", "localhost", "-sd", `[t@1 a="b"]`}, wantMsg{format: syslog.FormatRFC5424, pri: 13, app: "relay-send", sd: `[t@1 a="b"]`}},
		{"insecure", []string{"-tls-insecure"}, wantMsg{format: syslog.FormatRFC5424, pri: 13, app: "relay-send"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := token(t)
			args := append(append(append([]string{}, client...), tc.args...), "-count", "3", "hello", tok)
			summary := sendOK(t, args...)
			if !strings.HasPrefix(summary, "sent 3 messages over tls to "+addr) {
				t.Errorf("summary = %q", summary)
			}
			lines := r.waitLines(t, tok, 3)
			tc.want.msg = "hello " + tok
			checkLine(t, lines[0], tc.want)
		})
	}

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown-ca", append(append([]string{}, client...), "-tls-ca", pki.otherCA), "-tls-ca"},
		{"system-roots", client, "-tls-ca"},
		{"wrong-name", append(append([]string{}, client...), "-tls-ca", pki.ca, "-tls-server-name", "relay.example.net"), "-tls-server-name"},
		{"no-client-cert", []string{"-proto", "tls", "-address", addr, "-tls-ca", pki.ca}, "certificate required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := runSend(append(tc.args, "msg"), &out, &errOut); code != 1 {
				t.Errorf("exit %d, want 1; stderr: %s", code, errOut.String())
			}
			if !strings.Contains(errOut.String(), tc.want) {
				t.Errorf("stderr = %q, want it to contain %q", errOut.String(), tc.want)
			}
		})
	}
}

// TestSendBinaryStdin runs the built binary, so that standard input is a
// real pipe or /dev/null as an administrator's shell would give it.
func TestSendBinaryStdin(t *testing.T) {
	r := mustStartSendRelay(t)
	tok := token(t)

	cmd := exec.Command(relayBin, "send", "-proto", "relp", "-address", r.addr(t, "relp"), "-app", "piped")
	cmd.Stdin = strings.NewReader(fmt.Sprintf("one %[1]s\ntwo %[1]s\n", tok))
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("relay send < pipe: %v, stderr:\n%s", err, errOut.String())
	}
	if !strings.HasPrefix(errOut.String(), "sent 2 messages over relp") {
		t.Errorf("summary = %q", errOut.String())
	}
	lines := r.waitLines(t, tok, 2)
	checkLine(t, lines[0], wantMsg{format: syslog.FormatRFC5424, pri: 13, app: "piped", msg: "one " + tok})
	checkLine(t, lines[1], wantMsg{format: syslog.FormatRFC5424, pri: 13, app: "piped", msg: "two " + tok})

	// Standard input from /dev/null (a character device, like a terminal):
	// the default message, not an empty run.
	host := "devnull-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	cmd = exec.Command(relayBin, "send", "-proto", "tcp", "-address", r.addr(t, "tcp"), "-hostname", host)
	errOut.Reset()
	cmd.Stderr = &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("relay send < /dev/null: %v, stderr:\n%s", err, errOut.String())
	}
	checkLine(t, r.waitLines(t, host, 1)[0], wantMsg{format: syslog.FormatRFC5424, pri: 13, hostname: host, app: "relay-send", msg: sendDefaultMessage})
}

// relpPeer serves one RELP session: it answers open, then hands each burst
// of frames (those already read when the next needs a read from the
// socket) to answer, which returns the bytes to send back. It returns the
// address.
func relpPeer(t *testing.T, answer func(burst []relp.Frame) []byte) string {
	return serveOnce(t, func(c net.Conn) {
		rd := relp.NewReader(c, 64<<10)
		var burst []relp.Frame
		for {
			f, ok, err := rd.TryNext()
			if !ok && err == nil {
				if len(burst) > 0 {
					if _, err := c.Write(answer(burst)); err != nil {
						return
					}
					burst = burst[:0]
				}
				f, err = rd.Next()
			}
			if err != nil {
				return
			}
			f.Data = bytes.Clone(f.Data)
			burst = append(burst, f)
		}
	})
}

// answerRELP answers a burst in order: open with 200 and the offers, every
// other command with 200; extra (may be nil) is sent right after the answer
// to open.
func answerRELP(burst []relp.Frame, extra []byte) []byte {
	var out []byte
	for _, f := range burst {
		if f.Command == relp.CmdOpen {
			out = relp.AppendResponse(out, f.Txnr, 200, "OK", relp.AppendOffers(nil, relp.ClientOffers()))
			out = append(out, extra...)
			continue
		}
		out = relp.AppendResponse(out, f.Txnr, 200, "OK", nil)
	}
	return out
}

// TestSendRELPAnswersOutOfTurn: a RELP server that sends an answer for a
// command never sent, or answers one twice, breaks the session with an
// error that names the answer, instead of leaving relay send waiting for
// ever; answers in another order than the commands are fine. The built
// binary runs, so that a hang is killed at the deadline.
func TestSendRELPAnswersOutOfTurn(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer func(burst []relp.Frame) []byte
		want   string // in stderr; "" means exit 0
	}{
		{"unsolicited-rsp", func(burst []relp.Frame) []byte {
			return answerRELP(burst, relp.AppendResponse(nil, 99, 200, "OK", nil))
		}, "TXNR 99"},
		{"answered-twice", func(burst []relp.Frame) []byte {
			out := answerRELP(burst, nil)
			for _, f := range burst {
				if f.Command == relp.CmdSyslog {
					out = relp.AppendResponse(out, f.Txnr, 200, "OK", nil)
				}
			}
			return out
		}, "not outstanding"},
		{"reverse-order", func(burst []relp.Frame) []byte {
			// The messages of a burst are answered last first; a close,
			// which ends a burst, after them.
			n := len(burst)
			if burst[n-1].Command == relp.CmdClose {
				n--
			}
			slices.Reverse(burst[:n])
			return answerRELP(burst, nil)
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := relpPeer(t, tc.answer)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, relayBin, "send", "-proto", "relp", "-address", addr, "-count", "300", "-timeout", "20s", "msg")
			var errOut bytes.Buffer
			cmd.Stderr = &errOut
			err := cmd.Run()
			if ctx.Err() != nil {
				t.Fatalf("relay send did not end within 30s (killed); stderr:\n%s", errOut.String())
			}
			if tc.want == "" {
				if err != nil || !strings.HasPrefix(errOut.String(), "sent 300 messages over relp") {
					t.Fatalf("relay send: %v, stderr:\n%s", err, errOut.String())
				}
				return
			}
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Errorf("relay send: %v, want exit status 1", err)
			}
			if !strings.HasPrefix(errOut.String(), "relay send: ") || !strings.Contains(errOut.String(), tc.want) {
				t.Errorf("stderr = %q, want it to contain %q", errOut.String(), tc.want)
			}
		})
	}
}
