package syslog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// frame is one result of FrameReader.Next, in a form tests can compare.
type frame struct {
	msg       string
	truncated bool
	err       error
}

func (fr frame) String() string {
	return fmt.Sprintf("{%q trunc=%v err=%v}", fr.msg, fr.truncated, fr.err)
}

// oc frames msg with octet counting.
func oc(msg string) string { return fmt.Sprintf("%d %s", len(msg), msg) }

// readAll calls Next until io.EOF and returns everything else it got. It
// fails the test if the reader does not reach io.EOF in a bounded number of
// calls: every call that does not fail consumes at least one input byte.
func readAll(t testing.TB, f *FrameReader, inputLen int) []frame {
	t.Helper()
	var got []frame
	for range inputLen + 3 {
		msg, truncated, err := f.Next()
		if err == io.EOF {
			if msg != nil || truncated {
				t.Fatalf("Next() = %q, %v, io.EOF, want nil, false", msg, truncated)
			}
			return got
		}
		got = append(got, frame{string(msg), truncated, err})
	}
	t.Fatalf("no io.EOF after %d calls to Next; got %v", inputLen+3, got)
	return nil
}

// readers wraps the test input in readers that deliver it in different
// pieces: frames must come out the same however the stream is split.
var readers = []struct {
	name string
	wrap func(io.Reader) io.Reader
}{
	{"whole", func(r io.Reader) io.Reader { return r }},
	{"onebyte", iotest.OneByteReader},
	{"half", iotest.HalfReader},
	{"dataerr", iotest.DataErrReader},
	{"onebyte+dataerr", func(r io.Reader) io.Reader { return iotest.DataErrReader(iotest.OneByteReader(r)) }},
	{"chunk7", func(r io.Reader) io.Reader { return &chunkReader{r: r, n: 7} }},
}

// chunkReader returns at most n bytes per Read.
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

var long = strings.Repeat("x", 5000) // longer than the initial buffer

var frameTests = []struct {
	name    string
	in      string
	maxSize int
	want    []frame
}{
	{"empty stream", "", 100, nil},
	{"octet", oc("<13>hello"), 100, []frame{{"<13>hello", false, nil}}},
	{"octet several", oc("a") + oc("bc") + oc("<34>1 - - - - - -"), 100,
		[]frame{{"a", false, nil}, {"bc", false, nil}, {"<34>1 - - - - - -", false, nil}}},
	{"octet keeps LF CR NUL", oc("a\nb\r\n\x00c\n"), 100, []frame{{"a\nb\r\n\x00c\n", false, nil}}},
	{"octet exactly maxSize", oc("abcde") + oc("f"), 5, []frame{{"abcde", false, nil}, {"f", false, nil}}},
	{"octet long grows buffer", oc(long) + oc("next"), 10000, []frame{{long, false, nil}, {"next", false, nil}}},
	{"octet ten digits", "0000000001 a\n", 100, []frame{{"0000000001 a", false, nil}}},
	{"LF", "a\nbc\n<13>msg\n", 100, []frame{{"a", false, nil}, {"bc", false, nil}, {"<13>msg", false, nil}}},
	{"CRLF", "a\r\nbc\r\n", 100, []frame{{"a", false, nil}, {"bc", false, nil}}},
	{"only one CR removed", "a\r\r\n", 100, []frame{{"a\r", false, nil}}},
	{"inner CR kept", "a\rb\n", 100, []frame{{"a\rb", false, nil}}},
	{"empty lines skipped", "\n\n\r\na\n\n\r\n\nb\n\n", 100, []frame{{"a", false, nil}, {"b", false, nil}}},
	{"LF long grows buffer", long + "\nnext\n", 10000, []frame{{long, false, nil}, {"next", false, nil}}},
	{"mixed framings", oc("one") + "two\n" + oc("three\n") + "four\r\n" + oc("five") + "six", 100,
		[]frame{{"one", false, nil}, {"two", false, nil}, {"three\n", false, nil},
			{"four", false, nil}, {"five", false, nil}, {"six", false, nil}}},
	{"LF after octet frames", oc("a") + "\n" + oc("b") + "\r\n" + oc("c") + "\n", 100,
		[]frame{{"a", false, nil}, {"b", false, nil}, {"c", false, nil}}},

	// Digit runs that are not an octet-counting header.
	{"digits without SP", "123abc\n", 100, []frame{{"123abc", false, nil}}},
	{"digits then LF", "123\n", 100, []frame{{"123", false, nil}}},
	{"leading zero", "0 x\n05 abcde\n", 100, []frame{{"0 x", false, nil}, {"05 abcde", false, nil}}},
	{"negative count", "-5 xyz\n", 100, []frame{{"-5 xyz", false, nil}}},
	{"plus sign", "+5 xyz\n", 100, []frame{{"+5 xyz", false, nil}}},
	{"eleven digits", "12345678901 x\n", 100, []frame{{"12345678901 x", false, nil}}},
	{"many digits", "99999999999999999999999999 x\n", 100, []frame{{"99999999999999999999999999 x", false, nil}}},
	{"digits at EOF", "123", 100, []frame{{"123", false, nil}}},
	{"space before count", " 5 abcde\n", 100, []frame{{" 5 abcde", false, nil}}},

	// Frames longer than maxSize; the frame after each must come out intact.
	{"octet over maxSize", oc("abcdefgh") + oc("ok"), 5, []frame{{"abcde", true, nil}, {"ok", false, nil}}},
	{"octet over maxSize by one", oc("abcdef") + "ok\n", 5, []frame{{"abcde", true, nil}, {"ok", false, nil}}},
	{"octet far over maxSize", oc(long) + oc("ok"), 10, []frame{{long[:10], true, nil}, {"ok", false, nil}}},
	{"LF over maxSize", "abcdefgh\nok\n", 5, []frame{{"abcde", true, nil}, {"ok", false, nil}}},
	{"LF far over maxSize", long + "\r\nok\r\n", 10, []frame{{long[:10], true, nil}, {"ok", false, nil}}},
	{"CRLF exactly maxSize", "abcde\r\nok\n", 5, []frame{{"abcde", false, nil}, {"ok", false, nil}}},
	{"CRLF maxSize plus one", "abcdef\r\nok\n", 5, []frame{{"abcde", true, nil}, {"ok", false, nil}}},
	{"LF over maxSize at EOF", "abcdefgh", 5, []frame{{"abcde", true, nil}}},
	{"LF maxSize plus one at EOF", "abcdef", 5, []frame{{"abcde", true, nil}}},
	{"LF exactly maxSize at EOF", "abcde\r", 5, []frame{{"abcde", false, nil}}},
	{"maxSize of one", "ab\n" + oc("cd") + "e\n", 1,
		[]frame{{"a", true, nil}, {"c", true, nil}, {"e", false, nil}}},
	{"hostile count", "9999999999 " + long, 100, []frame{{long[:100], true, nil}}},

	// End of stream.
	{"final LF message without LF", "a\nb", 100, []frame{{"a", false, nil}, {"b", false, nil}}},
	{"final CR removed", "a\r", 100, []frame{{"a", false, nil}}},
	{"final CR only", "a\n\r", 100, []frame{{"a", false, nil}}},
	{"octet cut short", oc("a") + "10 abc", 100,
		[]frame{{"a", false, nil}, {"abc", false, io.ErrUnexpectedEOF}}},
	{"octet header only", "5 ", 100, []frame{{"", false, io.ErrUnexpectedEOF}}},
	{"octet over maxSize cut short", "20 abc", 5, []frame{{"abc", false, io.ErrUnexpectedEOF}}},
	{"EOF while discarding octets", "20 abcdefgh", 5, []frame{{"abcde", true, nil}}},
	{"EOF while discarding line", "abcdefgh\r", 5, []frame{{"abcde", true, nil}}},

	// Lying counts: the stream resynchronises at the next frame start.
	{"count too long swallows next frame", "5 ab\n3 xyz\n", 100,
		[]frame{{"ab\n3 ", false, nil}, {"xyz", false, nil}}},
	{"count too short leaves a LF line", "2 abcd\n" + oc("ok"), 100,
		[]frame{{"ab", false, nil}, {"cd", false, nil}, {"ok", false, nil}}},

	// Bytes pass through exactly, whatever they are.
	{"NUL and invalid UTF-8 octet", oc("<13>\x00\xff\xfe\xc3\x28 end\x00"), 100,
		[]frame{{"<13>\x00\xff\xfe\xc3\x28 end\x00", false, nil}}},
	{"NUL and invalid UTF-8 LF", "<13>\x00\xff\xfe\xc3\x28\x00\nok\n", 100,
		[]frame{{"<13>\x00\xff\xfe\xc3\x28\x00", false, nil}, {"ok", false, nil}}},
	{"NUL only line", "\x00\n", 100, []frame{{"\x00", false, nil}}},
}

func TestFrameReader(t *testing.T) {
	for _, tc := range frameTests {
		// The reference splitter must agree with the table, so the
		// fuzz test can trust it for inputs no table lists.
		if got := refFrames([]byte(tc.in), tc.maxSize); !equalFrames(got, tc.want) {
			t.Errorf("%s: refFrames(%q) = %v, want %v", tc.name, tc.in, got, tc.want)
		}
		for _, rd := range readers {
			t.Run(tc.name+"/"+rd.name, func(t *testing.T) {
				f := NewFrameReader(rd.wrap(strings.NewReader(tc.in)), tc.maxSize)
				got := readAll(t, f, len(tc.in))
				if !equalFrames(got, tc.want) {
					t.Errorf("frames of %q (maxSize %d) = %v, want %v", tc.in, tc.maxSize, got, tc.want)
				}
				if cap(f.buf) > tc.maxSize+maxHeaderLen {
					t.Errorf("buffer grew to %d bytes, want at most %d", cap(f.buf), tc.maxSize+maxHeaderLen)
				}
				// io.EOF is sticky.
				if msg, tr, err := f.Next(); msg != nil || tr || err != io.EOF {
					t.Errorf("Next() after EOF = %q, %v, %v, want nil, false, io.EOF", msg, tr, err)
				}
			})
		}
	}
}

func equalFrames(a, b []frame) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].msg != b[i].msg || a[i].truncated != b[i].truncated || !errors.Is(a[i].err, b[i].err) {
			return false
		}
	}
	return true
}

// refFrames is a deliberately simple, non-streaming statement of the framing
// rules FrameReader documents, written over the whole input at once. The
// tests compare the two, so a bug in FrameReader's buffering (which this
// function does not have) shows as a difference.
func refFrames(data []byte, maxSize int) []frame {
	var out []frame
	for len(data) > 0 {
		// An octet-counting header: 1-10 digits, no leading zero, SP.
		if h := bytes.IndexByte(data, ' '); h >= 1 && h <= 10 && data[0] != '0' && allDigits(data[:h]) {
			var count int64
			fmt.Sscan(string(data[:h]), &count)
			body := data[h+1:]
			want := min(count, int64(maxSize))
			if int64(len(body)) < want {
				return append(out, frame{string(body), false, io.ErrUnexpectedEOF})
			}
			out = append(out, frame{string(body[:want]), count > int64(maxSize), nil})
			data = body[min(count, int64(len(body))):]
			continue
		}
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) > maxSize {
			out = append(out, frame{string(line[:maxSize]), true, nil})
		} else if len(line) > 0 {
			out = append(out, frame{string(line), false, nil})
		}
	}
	return out
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func TestFrameReaderDefaultMaxSize(t *testing.T) {
	for _, maxSize := range []int{0, -1} {
		f := NewFrameReader(strings.NewReader(""), maxSize)
		if f.maxSize != DefaultMaxSize {
			t.Errorf("NewFrameReader(r, %d) uses maxSize %d, want DefaultMaxSize %d", maxSize, f.maxSize, DefaultMaxSize)
		}
	}
}

func TestFrameReaderBufferStaysSmall(t *testing.T) {
	const maxSize = 1 << 20
	// Nothing is allocated before the first read.
	f := NewFrameReader(strings.NewReader(""), maxSize)
	if f.buf != nil {
		t.Errorf("NewFrameReader allocated a %d-byte buffer before reading", cap(f.buf))
	}
	// Hostile counts and long truncated frames do not make the buffer
	// grow: only bytes actually received and needed for one frame do.
	in := "9999999999 " + strings.Repeat("a", 100_000) + "\n" + oc("ok") + "short\n"
	f = NewFrameReader(strings.NewReader(in), maxSize)
	msg, _, err := f.Next()
	if err != io.ErrUnexpectedEOF || len(msg) != 100_000+1+len(oc("ok"))+len("short\n") {
		t.Fatalf("Next() = %d bytes, %v; want all the rest of the input as one cut frame", len(msg), err)
	}
	if cap(f.buf) > initialBufSize*64 {
		t.Errorf("buffer is %d bytes after a 100 kB frame, want at most %d", cap(f.buf), initialBufSize*64)
	}

	f = NewFrameReader(strings.NewReader("9999999999 abc\n"+oc("x")), maxSize)
	readAll(t, f, 20)
	if cap(f.buf) > initialBufSize {
		t.Errorf("buffer is %d bytes after a hostile count, want at most %d", cap(f.buf), initialBufSize)
	}

	// A long LF line over maxSize is cut at maxSize, so the buffer stops at
	// maxSize+header even if the sender never sends a LF.
	f = NewFrameReader(&chunkReader{r: strings.NewReader(strings.Repeat("b", 3*maxSize)), n: 10000}, maxSize)
	got := readAll(t, f, 3*maxSize)
	if len(got) != 1 || len(got[0].msg) != maxSize || !got[0].truncated {
		t.Errorf("endless line: got %d frames, want one truncated %d-byte frame", len(got), maxSize)
	}
	if cap(f.buf) > maxSize+maxHeaderLen {
		t.Errorf("buffer is %d bytes, want at most %d", cap(f.buf), maxSize+maxHeaderLen)
	}
}

// TestFrameReaderBusyGrowth: a stream that fills every read grows the
// buffer to busyBufSize, so a busy sender is read in large reads, while one
// that trickles keeps the small buffer; the frames are the same either way.
func TestFrameReaderBusyGrowth(t *testing.T) {
	var stream strings.Builder
	const n = 5000
	for i := range n {
		stream.WriteString(oc(fmt.Sprintf("<13>message %06d %s", i, strings.Repeat("x", 180))))
	}
	busy := NewFrameReader(strings.NewReader(stream.String()), 0)
	got := readAll(t, busy, n+1)
	if len(got) != n || got[n-1].msg != fmt.Sprintf("<13>message %06d %s", n-1, strings.Repeat("x", 180)) {
		t.Fatalf("busy stream: %d frames, want %d, the last intact", len(got), n)
	}
	if cap(busy.buf) != busyBufSize {
		t.Errorf("busy stream: buffer is %d bytes, want %d", cap(busy.buf), busyBufSize)
	}
	// 4, 8, 16 and 32 KiB, then 64 KiB reads.
	if want := uint64(len(stream.String())/busyBufSize + 6); busy.Reads() > want {
		t.Errorf("busy stream of %d bytes read in %d reads, want at most %d", stream.Len(), busy.Reads(), want)
	}

	slow := NewFrameReader(&chunkReader{r: strings.NewReader(stream.String()), n: 1000}, 0)
	if got := readAll(t, slow, n+1); len(got) != n {
		t.Fatalf("trickled stream: %d frames, want %d", len(got), n)
	}
	if cap(slow.buf) != initialBufSize {
		t.Errorf("trickled stream: buffer is %d bytes, want %d", cap(slow.buf), initialBufSize)
	}
}

// scriptReader returns the given results, one per Read, then io.EOF.
type scriptReader []struct {
	data string
	err  error
}

func (s *scriptReader) Read(p []byte) (int, error) {
	if len(*s) == 0 {
		return 0, io.EOF
	}
	step := (*s)[0]
	*s = (*s)[1:]
	return copy(p, step.data), step.err
}

func TestFrameReaderReadErrors(t *testing.T) {
	errBoom := errors.New("boom")

	t.Run("error with data is held back", func(t *testing.T) {
		f := NewFrameReader(&scriptReader{{"abc\nde", errBoom}, {"f\n", nil}}, 100)
		want := []frame{{"abc", false, nil}, {"", false, errBoom}, {"def", false, nil}}
		if got := readAll(t, f, 10); !equalFrames(got, want) {
			t.Errorf("frames = %v, want %v", got, want)
		}
	})

	// A timeout in the middle of an octet-counted frame, as a read deadline
	// on a net.Conn gives, keeps the partial frame for the next call.
	t.Run("timeout then retry", func(t *testing.T) {
		in := oc("hello") + "world\n"
		f := NewFrameReader(iotest.TimeoutReader(iotest.OneByteReader(strings.NewReader(in))), 100)
		want := []frame{{"", false, iotest.ErrTimeout}, {"hello", false, nil}, {"world", false, nil}}
		if got := readAll(t, f, len(in)); !equalFrames(got, want) {
			t.Errorf("frames = %v, want %v", got, want)
		}
	})

	t.Run("no progress", func(t *testing.T) {
		f := NewFrameReader(iotest.ErrReader(nil), 100) // (0, nil) forever
		if _, _, err := f.Next(); err != io.ErrNoProgress {
			t.Errorf("Next() on a reader that returns (0, nil) forever: err = %v, want io.ErrNoProgress", err)
		}
	})

	t.Run("invalid count", func(t *testing.T) {
		f := NewFrameReader(badReader{}, 100)
		if _, _, err := f.Next(); err != errInvalidRead {
			t.Errorf("Next() on a reader that returns -1: err = %v, want %v", err, errInvalidRead)
		}
	})
}

type badReader struct{}

func (badReader) Read([]byte) (int, error) { return -1, nil }

func TestFrameReaderBuffered(t *testing.T) {
	// 16 bytes: the whole buffer a FrameReader with maxSize 5 may use.
	in := oc("a") + "b\n" + "7 abcdefg" + "c\n"
	f := NewFrameReader(strings.NewReader(in), 5)
	if n := f.Buffered(); n != 0 {
		t.Errorf("Buffered() before reading = %d, want 0", n)
	}
	f.Next() // "a"
	if want := len(in) - len(oc("a")); f.Buffered() != want {
		t.Errorf("Buffered() after the first frame = %d, want %d", f.Buffered(), want)
	}
	f.Next() // "b"
	f.Next() // "abcde", truncated: two octets remain to be discarded
	if want := len("c\n"); f.Buffered() != want {
		t.Errorf("Buffered() after a truncated frame = %d, want %d", f.Buffered(), want)
	}
	f.Next() // "c"
	if f.Buffered() != 0 {
		t.Errorf("Buffered() after the last frame = %d, want 0", f.Buffered())
	}
}

// loopReader serves the same stream over and over without allocating.
type loopReader struct {
	data []byte
	off  int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := copy(p, l.data[l.off:])
	l.off = (l.off + n) % len(l.data)
	return n, nil
}

// benchMessage is a 200-byte RFC 5424 message.
var benchMessage = func() string {
	m := "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 1234 ID47 " +
		`[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] `
	return m + strings.Repeat("x", 200-len(m))
}()

// loopFrameReader returns a FrameReader over an endless stream of frame.
func loopFrameReader(frame string) *FrameReader {
	// Several frames per stream, so that frames also straddle reads.
	stream := []byte(strings.Repeat(frame, 37))
	return NewFrameReader(&loopReader{data: stream}, 64<<10)
}

func TestFrameReaderDoesNotAllocatePerMessage(t *testing.T) {
	for _, frame := range []string{oc(benchMessage), benchMessage + "\n", benchMessage + "\r\n"} {
		f := loopFrameReader(frame)
		f.Next() // allocates the buffer
		allocs := testing.AllocsPerRun(1000, func() {
			msg, _, err := f.Next()
			if err != nil || len(msg) != len(benchMessage) {
				t.Fatalf("Next() = %d bytes, %v, want %d bytes", len(msg), err, len(benchMessage))
			}
		})
		if allocs != 0 {
			t.Errorf("Next() allocates %v times per message of %q..., want 0", allocs, frame[:10])
		}
	}
}

func benchmarkFrameReader(b *testing.B, frame string) {
	f := loopFrameReader(frame)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if msg, _, err := f.Next(); err != nil || len(msg) != len(benchMessage) {
			b.Fatalf("Next() = %d bytes, %v, want %d bytes", len(msg), err, len(benchMessage))
		}
	}
}

func BenchmarkFrameReaderOctet(b *testing.B) { benchmarkFrameReader(b, oc(benchMessage)) }
func BenchmarkFrameReaderLF(b *testing.B)    { benchmarkFrameReader(b, benchMessage+"\n") }

// FuzzFrameReader feeds arbitrary streams, split into reads of a fuzzed
// size, to FrameReader with a fuzzed size limit. It checks that Next never
// panics and always ends, that no message is longer than the limit, that
// no more bytes come out than went in, that the buffer stays within its
// bound, and that the frames equal those of the non-streaming reference.
func FuzzFrameReader(f *testing.F) {
	for _, tc := range frameTests {
		f.Add([]byte(tc.in), uint16(tc.maxSize), uint8(1))
	}
	f.Fuzz(func(t *testing.T, data []byte, sizeSeed uint16, chunk uint8) {
		// Small limits and reads reach the truncation and refill paths.
		maxSize := max(int(sizeSeed%512), 1)
		var r io.Reader = &chunkReader{r: bytes.NewReader(data), n: max(int(chunk%64), 1)}
		if chunk >= 128 {
			r = iotest.DataErrReader(r)
		}
		fr := NewFrameReader(r, maxSize)
		got := readAll(t, fr, len(data))
		total := 0
		for _, g := range got {
			if len(g.msg) > maxSize {
				t.Fatalf("message of %d bytes, limit %d", len(g.msg), maxSize)
			}
			if g.err != nil && g.err != io.ErrUnexpectedEOF {
				t.Fatalf("unexpected error %v", g.err)
			}
			total += len(g.msg)
		}
		if total > len(data) {
			t.Fatalf("%d bytes returned from %d bytes of input", total, len(data))
		}
		if cap(fr.buf) > maxSize+maxHeaderLen {
			t.Fatalf("buffer grew to %d bytes, limit %d", cap(fr.buf), maxSize+maxHeaderLen)
		}
		if want := refFrames(data, maxSize); !equalFrames(got, want) {
			t.Fatalf("frames of %q (maxSize %d, chunk %d) = %v, want %v", data, maxSize, chunk, got, want)
		}
	})
}
