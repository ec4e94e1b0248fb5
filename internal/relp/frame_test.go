package relp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// chunkReader returns at most n bytes per Read, to reach every refill path.
type chunkReader struct {
	r io.Reader
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(p) > c.n {
		p = p[:c.n]
	}
	return c.r.Read(p)
}

// result is one outcome of Reader.Next in a test: a frame or an error.
type result struct {
	txnr      int
	cmd       string
	data      string
	dataLen   int
	truncated bool
	err       string // "" for a frame; "eof", "unexpected-eof" or "invalid"
}

func (r result) String() string {
	if r.err != "" {
		return "<" + r.err + ">"
	}
	t := ""
	if r.truncated {
		t = fmt.Sprintf(" (truncated from %d)", r.dataLen)
	}
	return fmt.Sprintf("%d %s %q%s", r.txnr, r.cmd, r.data, t)
}

func classify(err error) string {
	switch {
	case errors.Is(err, io.EOF):
		return "eof"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected-eof"
	case IsFrameError(err):
		return "invalid"
	}
	return "other: " + err.Error()
}

// readAll reads frames until an error; bound stops a reader that would not
// end.
func readAll(t *testing.T, rd *Reader, bound int) []result {
	t.Helper()
	var out []result
	for range bound + 2 {
		f, err := rd.Next()
		if err != nil {
			return append(out, result{err: classify(err)})
		}
		out = append(out, result{txnr: f.Txnr, cmd: f.Command, data: string(f.Data), dataLen: f.DataLen, truncated: f.Truncated})
	}
	t.Fatalf("Next did not end within %d calls", bound+2)
	return nil
}

func fr(txnr int, cmd, data string) result {
	return result{txnr: txnr, cmd: cmd, data: data, dataLen: len(data)}
}

var eof = result{err: "eof"}
var unexpectedEOF = result{err: "unexpected-eof"}
var invalid = result{err: "invalid"}

var frameTests = []struct {
	name    string
	in      string
	maxData int
	want    []result
}{
	{"empty", "", 100, []result{eof}},
	{"open", "1 open 86 relp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog\n", 100,
		[]result{fr(1, "open", "relp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog"), eof}},
	{"syslog", "2 syslog 5 hello\n3 syslog 3 a\nb\n", 100,
		[]result{fr(2, "syslog", "hello"), fr(3, "syslog", "a\nb"), eof}},
	{"no data", "4 close 0\n0 serverclose 0\n", 100,
		[]result{fr(4, "close", ""), fr(0, "serverclose", ""), eof}},
	{"rsp", "2 rsp 6 200 OK\n", 100, []result{fr(2, "rsp", "200 OK"), eof}},
	{"data with LF and NUL", "7 syslog 4 \n\x00\n \n", 100, []result{fr(7, "syslog", "\n\x00\n "), eof}},
	{"max numbers", "999999999 syslog 1 x\n", 100, []result{fr(999999999, "syslog", "x"), eof}},
	{"leading zeros", "0007 syslog 002 ab\n", 100, []result{fr(7, "syslog", "ab"), eof}},
	{"32-letter command", "1 " + strings.Repeat("a", 32) + " 0\n", 100, []result{fr(1, strings.Repeat("a", 32), ""), eof}},
	{"upper case command", "1 SysLog 1 x\n", 100, []result{fr(1, "SysLog", "x"), eof}},

	{"truncated at limit", "1 syslog 10 0123456789\n2 syslog 2 ok\n", 4,
		[]result{{txnr: 1, cmd: "syslog", data: "0123", dataLen: 10, truncated: true}, fr(2, "syslog", "ok"), eof}},
	{"exactly at limit", "1 syslog 4 0123\n", 4, []result{fr(1, "syslog", "0123"), eof}},
	{"truncated then bad trailer", "1 syslog 6 abcdefX", 3,
		[]result{{txnr: 1, cmd: "syslog", data: "abc", dataLen: 6, truncated: true}, invalid}},
	{"truncated then EOF", "1 syslog 6 abcd", 3,
		[]result{{txnr: 1, cmd: "syslog", data: "abc", dataLen: 6, truncated: true}, unexpectedEOF}},

	{"ten-digit txnr", "1234567890 syslog 1 x\n", 100, []result{invalid}},
	{"ten-digit datalen", "1 syslog 1234567890 x\n", 100, []result{invalid}},
	{"33-letter command", "1 " + strings.Repeat("a", 33) + " 0\n", 100, []result{invalid}},
	{"no txnr", " syslog 1 x\n", 100, []result{invalid}},
	{"letters in txnr", "1a syslog 1 x\n", 100, []result{invalid}},
	{"digit in command", "1 sys1og 1 x\n", 100, []result{invalid}},
	{"empty command", "1  1 x\n", 100, []result{invalid}},
	{"negative datalen", "1 syslog -1 x\n", 100, []result{invalid}},
	{"datalen too short", "1 syslog 1 xy\n", 100, []result{invalid}},
	{"datalen too long", "1 syslog 3 xy\n2 syslog 1 z\n", 100, []result{invalid}},
	{"zero datalen with SP", "1 close 0 \n", 100, []result{invalid}},
	{"data without SP", "1 syslog 1\nx\n", 100, []result{invalid}},
	{"CRLF trailer", "1 syslog 1 x\r\n", 100, []result{invalid}},
	{"tab separator", "1\tsyslog 1 x\n", 100, []result{invalid}},
	{"frame then garbage", "1 syslog 1 x\nGET / HTTP/1.1\r\n", 100, []result{fr(1, "syslog", "x"), invalid}},
	{"octet-counted syslog", "12 <13>hello wo\n", 100, []result{invalid}},
	{"cut in header", "1 sysl", 100, []result{unexpectedEOF}},
	{"cut in data", "1 syslog 5 he", 100, []result{unexpectedEOF}},
	{"cut before trailer", "1 syslog 5 hello", 100, []result{unexpectedEOF}},
}

func TestReader(t *testing.T) {
	for _, tc := range frameTests {
		for _, chunk := range []int{1, 2, 3, 7, 4096} {
			t.Run(fmt.Sprintf("%s/chunk%d", tc.name, chunk), func(t *testing.T) {
				rd := NewReader(&chunkReader{r: strings.NewReader(tc.in), n: chunk}, tc.maxData)
				got := readAll(t, rd, len(tc.in))
				if fmt.Sprint(got) != fmt.Sprint(tc.want) {
					t.Errorf("frames of %q = %v, want %v", tc.in, got, tc.want)
				}
				if rd.BufferCap() > tc.maxData+HeaderAllowance {
					t.Errorf("buffer grew to %d, limit %d", rd.BufferCap(), tc.maxData+HeaderAllowance)
				}
				// The error is sticky.
				if _, err := rd.Next(); err == nil {
					t.Errorf("Next after the end returned no error")
				}
			})
		}
	}
}

// TestReaderTryNext: TryNext returns only what is buffered and never reads.
func TestReaderTryNext(t *testing.T) {
	// One Read delivers two frames and half of a third.
	in := "1 syslog 1 a\n2 syslog 1 b\n3 sys"
	rd := NewReader(&chunkReader{r: strings.NewReader(in + "log 1 c\n"), n: len(in)}, 100)
	if _, ok, err := rd.TryNext(); ok || err != nil {
		t.Fatalf("TryNext on an empty buffer = %v, %v; want no frame, no error", ok, err)
	}
	f, err := rd.Next()
	if err != nil || f.Txnr != 1 {
		t.Fatalf("Next = %+v, %v", f, err)
	}
	f, ok, err := rd.TryNext()
	if !ok || err != nil || f.Txnr != 2 || string(f.Data) != "b" {
		t.Fatalf("TryNext = %+v, %v, %v; want frame 2", f, ok, err)
	}
	if _, ok, err := rd.TryNext(); ok || err != nil {
		t.Fatalf("TryNext on a partial frame = %v, %v; want no frame, no error", ok, err)
	}
	if rd.Buffered() != len("3 sys") {
		t.Errorf("Buffered = %d, want %d", rd.Buffered(), len("3 sys"))
	}
	f, err = rd.Next()
	if err != nil || f.Txnr != 3 || string(f.Data) != "c" {
		t.Fatalf("Next = %+v, %v; want frame 3", f, err)
	}
	// An invalid frame is reported by TryNext without a read.
	rd = NewReader(strings.NewReader("x"), 100)
	if _, err := rd.Next(); !IsFrameError(err) {
		t.Fatalf("Next on garbage = %v, want a FrameError", err)
	}
}

// TestReaderBoundedMemory: a peer that announces a huge frame never makes
// the reader buffer more than its limit.
func TestReaderBoundedMemory(t *testing.T) {
	const maxData = 1000
	huge := 50 * maxData
	in := fmt.Sprintf("1 syslog %d %s\n2 syslog 2 ok\n", huge, strings.Repeat("x", huge))
	rd := NewReader(&chunkReader{r: strings.NewReader(in), n: 777}, maxData)
	got := readAll(t, rd, 10)
	want := []result{{txnr: 1, cmd: "syslog", data: strings.Repeat("x", maxData), dataLen: huge, truncated: true}, fr(2, "syslog", "ok"), eof}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if rd.BufferCap() > maxData+HeaderAllowance {
		t.Errorf("buffer grew to %d, limit %d", rd.BufferCap(), maxData+HeaderAllowance)
	}
}

func TestReaderReadErrors(t *testing.T) {
	boom := errors.New("boom")
	rd := NewReader(io.MultiReader(strings.NewReader("1 syslog 1 x\n2 sys"), iotest.ErrReader(boom)), 100)
	if f, err := rd.Next(); err != nil || f.Txnr != 1 {
		t.Fatalf("Next = %+v, %v", f, err)
	}
	if _, err := rd.Next(); !errors.Is(err, boom) {
		t.Fatalf("Next = %v, want %v", err, boom)
	}
	// A reader that never returns anything is reported, not spun on.
	rd = NewReader(zeroReader{}, 100)
	if _, err := rd.Next(); !errors.Is(err, io.ErrNoProgress) {
		t.Fatalf("Next on a (0, nil) reader = %v, want io.ErrNoProgress", err)
	}
	rd = NewReader(badReader{}, 100)
	if _, err := rd.Next(); !errors.Is(err, errInvalidRead) {
		t.Fatalf("Next on a lying reader = %v, want errInvalidRead", err)
	}
}

type zeroReader struct{}

func (zeroReader) Read([]byte) (int, error) { return 0, nil }

type badReader struct{}

func (badReader) Read(p []byte) (int, error) { return len(p) + 1, nil }

func TestAppendFrameRoundTrip(t *testing.T) {
	frames := []Frame{
		{Txnr: 1, Command: "open", Data: []byte("relp_version=0")},
		{Txnr: 0, Command: "serverclose"},
		{Txnr: MaxTxnr, Command: "syslog", Data: []byte("<13>a\nb")},
	}
	var b []byte
	for _, f := range frames {
		b = AppendFrame(b, f.Txnr, f.Command, f.Data)
	}
	if want := "1 open 14 relp_version=0\n0 serverclose 0\n999999999 syslog 7 <13>a\nb\n"; string(b) != want {
		t.Fatalf("AppendFrame = %q, want %q", b, want)
	}
	rd := NewReader(bytes.NewReader(b), 100)
	for _, want := range frames {
		f, err := rd.Next()
		if err != nil || f.Txnr != want.Txnr || f.Command != want.Command || !bytes.Equal(f.Data, want.Data) {
			t.Fatalf("Next = %+v, %v; want %+v", f, err, want)
		}
	}
}

func TestNextTxnr(t *testing.T) {
	for _, c := range [][2]int{{0, 1}, {1, 2}, {MaxTxnr - 1, MaxTxnr}, {MaxTxnr, 1}} {
		if got := NextTxnr(c[0]); got != c[1] {
			t.Errorf("NextTxnr(%d) = %d, want %d", c[0], got, c[1])
		}
	}
}

func TestValidCommand(t *testing.T) {
	for cmd, want := range map[string]bool{
		"syslog": true, "A": true, strings.Repeat("x", 32): true,
		"": false, strings.Repeat("x", 33): false, "a b": false, "a1": false, "ä": false,
	} {
		if got := ValidCommand(cmd); got != want {
			t.Errorf("ValidCommand(%q) = %v, want %v", cmd, got, want)
		}
	}
}

const benchMessage = "<134>Nov 23 10:00:00 testhost seqgen[42]: run=bench seq=00000042 payload=the-quick-brown-fox-jumps-over-the-lazy-dog"

// loopReader repeats one frame forever.
type loopReader struct {
	frame []byte
	off   int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], l.frame[l.off:])
		n += c
		l.off = (l.off + c) % len(l.frame)
	}
	return n, nil
}

func BenchmarkReader(b *testing.B) {
	frame := AppendFrame(nil, 42, CmdSyslog, []byte(benchMessage))
	rd := NewReader(&loopReader{frame: frame}, 64<<10)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		// The loop reader repeats one TXNR; only the framing is measured.
		if f, err := rd.Next(); err != nil || len(f.Data) != len(benchMessage) {
			b.Fatalf("Next = %d bytes, %v", len(f.Data), err)
		}
	}
}
