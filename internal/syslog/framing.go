package syslog

import (
	"bytes"
	"errors"
	"io"
	"math"
)

// DefaultMaxSize is the message size limit NewFrameReader uses when it is
// given a limit of zero or less. 64 KiB is what syslog-ng accepts by default
// and well above the 8 KiB that RFC 5425 §4.3.1 asks receivers to support.
const DefaultMaxSize = 64 << 10

const (
	// maxCountDigits is the longest MSG-LEN FrameReader accepts. Ten digits
	// allow any length a sender could mean (up to 9,999,999,999) and still
	// fit an int64; a longer digit run cannot be a real octet count.
	maxCountDigits = 10

	// maxHeaderLen is the longest octet-counting header: ten digits and SP.
	maxHeaderLen = maxCountDigits + 1

	// initialBufSize is the buffer a FrameReader starts with. An edge relay
	// may hold thousands of mostly idle TCP connections, so a connection
	// only pays for a large buffer when a big frame arrives or its sender
	// keeps it busy (busyBufSize).
	initialBufSize = 4 << 10

	// busyBufSize is what the buffer of a busy connection grows to: when a
	// read fills the buffer, more is waiting in the socket, and a larger
	// buffer takes it in fewer system calls. At 1M msg/s over one
	// connection, 4 KiB reads made the read(2) calls 14% of the relay's
	// CPU time (pprof).
	busyBufSize = 64 << 10

	// maxEmptyReads is how many (0, nil) reads in a row FrameReader
	// tolerates before it reports io.ErrNoProgress instead of spinning.
	maxEmptyReads = 100
)

var (
	// errBufferFull means the frame logic asked for more bytes than the
	// buffer limit allows. The limit is sized so that this cannot happen;
	// the error exists so that a bug shows as an error, not a huge buffer.
	errBufferFull = errors.New("syslog: frame buffer full")

	// errInvalidRead means the io.Reader broke its contract by returning a
	// count outside 0..len(p).
	errInvalidRead = errors.New("syslog: reader returned invalid count")
)

// FrameReader splits a TCP (or TLS, or unix stream) byte stream into syslog
// messages as RFC 6587 describes. The framing is detected anew for every
// frame, because senders exist that mix them and because a receiver cannot
// know a sender's configuration:
//
//   - Octet counting: a frame that starts with MSG-LEN SP, where MSG-LEN is
//     1 to 10 digits with no leading zero (RFC 6587 §3.4.1 requires a
//     NONZERO-DIGIT first), is followed by exactly MSG-LEN octets of message.
//     Those octets are returned as they are, LF, NUL and all.
//   - Non-transparent framing: anything else is a message terminated by LF
//     (§3.4.2). One CR right before the LF is removed too, and empty lines
//     are skipped, so CRLF senders and stray LFs after octet-counted frames
//     (some senders add them) cause no empty messages.
//
// A digit run that is not followed by SP ("12345abc", "0 x", an eleven-digit
// run, "-5 x") does not start an octet-counted frame; it is the start of an
// LF-terminated message. Messages without a PRI may start with digits, and a
// relay must pass them on rather than reject them. The reverse ambiguity
// cannot be avoided: an LF-framed message without PRI that starts with
// digits and a space ("2024 started") is read as an octet-counted frame;
// any receiver that detects the framing per frame must read it so.
//
// A FrameReader never buffers more than maxSize plus a few header bytes,
// whatever the sender claims, and it allocates nothing per message once its
// buffer has grown to fit the traffic. The buffer is not shrunk after a
// large frame: giving it back would cost an allocation for every large
// frame of a sender that sends many. It is not safe for concurrent use.
type FrameReader struct {
	rd      io.Reader
	maxSize int // the message size limit
	limit   int // the largest buffer any frame can need: maxSize + maxHeaderLen

	buf  []byte
	r, w int // buf[r:w] holds the bytes read but not yet returned

	// scanned counts the bytes after r already known to hold no LF, so that
	// a long line arriving in small reads is not scanned again from its
	// start after every read.
	scanned int

	// skip is how many octets of a truncated octet-counted frame are still
	// to be discarded, and skipLF says the rest of a truncated LF-framed
	// message is to be discarded up to and including the next LF. Both keep
	// the stream in sync after a frame longer than maxSize.
	skip   int64
	skipLF bool

	// eof is sticky: once the reader has reported io.EOF it is not read
	// again. err holds any other read error until the complete frames
	// buffered before it are returned; it is reported once and then
	// cleared, so a caller may call Next again after, for example, a read
	// deadline expired.
	eof bool
	err error

	// filled says the last read returned all it asked for, most of the
	// buffer; reads counts the reads that returned data.
	filled bool
	reads  uint64
}

// NewFrameReader returns a FrameReader that reads frames from r and returns
// messages of at most maxSize bytes (see Next for longer frames). A maxSize
// of zero or less means DefaultMaxSize.
//
// The buffer starts at 4 KiB (or less, for a small maxSize) and is allocated
// on the first read; it grows as frames need it and, up to 64 KiB, while
// reads keep filling it, never past maxSize+11 bytes, and a hostile octet
// count never makes it grow further.
func NewFrameReader(r io.Reader, maxSize int) *FrameReader {
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	// Keep maxSize+maxHeaderLen from overflowing; no buffer gets near this.
	if maxSize > math.MaxInt-maxHeaderLen {
		maxSize = math.MaxInt - maxHeaderLen
	}
	return &FrameReader{rd: r, maxSize: maxSize, limit: maxSize + maxHeaderLen}
}

// Next returns the next message without its framing: the MSG-LEN SP header
// of an octet-counted frame, or the LF (and a CR before it) of a
// non-transparently framed one. The returned slice points into the reader's
// buffer and is valid only until the next call to Next; the caller must copy
// what it keeps.
//
// A frame longer than maxSize bytes is not an error: Next returns its first
// maxSize bytes with truncated=true, and the next call discards the rest of
// that frame before reading the next one, so the stream stays in sync. For
// an octet-counted frame exactly MSG-LEN-maxSize further octets are
// discarded; for an LF-framed message everything up to and including the
// next LF is. An octet count larger than maxSize is handled the same way, so
// a sender that lies about a length costs a truncated message and the bytes
// it claimed, never a big buffer.
//
// At the end of the stream:
//   - A final LF-framed message without its LF is returned as if the LF had
//     been there (so a trailing CR is removed), with err=nil; the following
//     call returns io.EOF.
//   - An octet-counted frame cut short returns the bytes of it that arrived
//     (possibly none) with err=io.ErrUnexpectedEOF, so the caller can count
//     the cut frame and still keep its content; the following call returns
//     io.EOF.
//   - If the stream ends while the rest of a truncated frame is being
//     discarded, Next returns io.EOF: the frame was already returned.
//
// Any other read error is returned once complete buffered frames have been
// returned, with msg=nil. Bytes of an incomplete frame stay buffered, so
// Next can be called again after a temporary error such as a read timeout.
func (f *FrameReader) Next() (msg []byte, truncated bool, err error) {
	for {
		if f.skip > 0 {
			if err := f.discardOctets(); err != nil {
				return nil, false, err
			}
		}
		if f.skipLF {
			if err := f.discardLine(); err != nil {
				return nil, false, err
			}
		}
		if f.r == f.w {
			if err := f.more(); err != nil {
				return nil, false, err
			}
			continue
		}
		if b := f.buf[f.r:f.w]; b[0] >= '1' && b[0] <= '9' {
			count, hlen, complete := octetHeader(b)
			if hlen > 0 {
				return f.octetFrame(count, hlen)
			}
			if !complete {
				// Too few bytes to tell yet. At EOF the digits are
				// the start of a final LF-framed message.
				err := f.more()
				if err == nil {
					continue
				}
				if err != io.EOF {
					return nil, false, err
				}
			}
		}
		msg, truncated, ok, err := f.lineFrame()
		if ok || err != nil {
			return msg, truncated, err
		}
		// The line was empty; look for the next frame.
	}
}

// Reads returns how many reads from the underlying reader returned data.
// Messages returned between two changes of it arrived together, so a caller
// can take the time of arrival once per read rather than once per message.
func (f *FrameReader) Reads() uint64 { return f.reads }

// Buffered returns how many bytes have been read from the underlying reader
// but not yet returned by Next (nor discarded as the rest of a truncated
// octet-counted frame). Callers use it to batch work: a nonzero value means
// the next Next may not have to wait for the network, though it does not
// promise that a complete frame is buffered.
func (f *FrameReader) Buffered() int {
	n := f.w - f.r
	if f.skip > 0 {
		n -= int(min(f.skip, int64(n)))
	}
	return n
}

// octetHeader reports whether b starts with an octet-counting header
// "MSG-LEN SP", given that b[0] is a nonzero digit. It returns the count and
// the header length when it does. When it does not, hlen is 0 and complete
// says whether b held enough bytes to decide; complete=false means more
// bytes are needed.
func octetHeader(b []byte) (count int64, hlen int, complete bool) {
	for i, c := range b {
		if c == ' ' {
			return count, i + 1, true
		}
		if c < '0' || c > '9' || i == maxCountDigits {
			return 0, 0, true
		}
		count = count*10 + int64(c-'0')
	}
	return 0, 0, false
}

// octetFrame returns the octet-counted frame at f.r, whose header is hlen
// bytes long and announces count octets.
func (f *FrameReader) octetFrame(count int64, hlen int) ([]byte, bool, error) {
	want, truncated := f.maxSize, true
	if count <= int64(f.maxSize) {
		want, truncated = int(count), false
	}
	// hlen+want <= maxHeaderLen+maxSize = limit, so the buffer can hold it.
	for f.w-f.r < hlen+want {
		if err := f.more(); err != nil {
			if err != io.EOF {
				return nil, false, err
			}
			msg := f.buf[f.r+hlen : f.w]
			f.consume(f.w - f.r)
			return msg, false, io.ErrUnexpectedEOF
		}
	}
	msg := f.buf[f.r+hlen : f.r+hlen+want]
	f.consume(hlen + want)
	if truncated {
		f.skip = count - int64(f.maxSize)
	}
	return msg, truncated, nil
}

// lineFrame returns the LF-terminated message at f.r. ok=false with a nil
// error means the line was empty and has been skipped.
func (f *FrameReader) lineFrame() (msg []byte, truncated, ok bool, err error) {
	for {
		b := f.buf[f.r:f.w]
		if i := bytes.IndexByte(b[f.scanned:], '\n'); i >= 0 {
			line := b[:f.scanned+i]
			f.consume(len(line) + 1)
			msg, truncated, ok = f.finishLine(line)
			return msg, truncated, ok, nil
		}
		f.scanned = len(b)
		// With maxSize+2 bytes and no LF the message is longer than
		// maxSize even if the last byte is the CR of a CRLF, so it can be
		// cut now instead of buffering an unbounded line.
		if len(b) >= f.maxSize+2 {
			f.consume(f.maxSize)
			f.skipLF = true
			return b[:f.maxSize], true, true, nil
		}
		if err := f.more(); err != nil {
			if err != io.EOF || f.r == f.w {
				return nil, false, false, err
			}
			// A final line without LF is treated as if it had one.
			line := f.buf[f.r:f.w]
			f.consume(len(line))
			msg, truncated, ok = f.finishLine(line)
			return msg, truncated, ok, nil
		}
	}
}

// finishLine removes the CR of a CRLF from line and applies the size limit.
// ok=false means the line is empty and is to be skipped.
func (f *FrameReader) finishLine(line []byte) (msg []byte, truncated, ok bool) {
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if len(line) == 0 {
		return nil, false, false
	}
	if len(line) > f.maxSize {
		return line[:f.maxSize], true, true
	}
	return line, false, true
}

// discardOctets drops the f.skip remaining octets of a truncated
// octet-counted frame.
func (f *FrameReader) discardOctets() error {
	for {
		n := f.w - f.r
		if int64(n) > f.skip {
			n = int(f.skip)
		}
		f.consume(n)
		f.skip -= int64(n)
		if f.skip == 0 {
			return nil
		}
		if err := f.more(); err != nil {
			return err
		}
	}
}

// discardLine drops the rest of a truncated LF-framed message, up to and
// including its LF.
func (f *FrameReader) discardLine() error {
	for {
		b := f.buf[f.r:f.w]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			f.consume(i + 1)
			f.skipLF = false
			return nil
		}
		f.consume(len(b))
		if err := f.more(); err != nil {
			return err
		}
	}
}

// consume marks n buffered bytes as used.
func (f *FrameReader) consume(n int) {
	f.r += n
	f.scanned = 0
}

// more reads at least one byte into the buffer, making room first by
// moving the unread bytes to its front or, when it is full of them, by
// growing it. It returns an error only when no byte was read; an error that
// comes with data is held back for the next call.
func (f *FrameReader) more() error {
	if f.err != nil {
		err := f.err
		f.err = nil
		return err
	}
	if f.eof {
		return io.EOF
	}
	if f.r == f.w {
		f.r, f.w = 0, 0
	}
	if f.buf == nil {
		f.buf = make([]byte, min(initialBufSize, f.limit))
	}
	if busy := min(busyBufSize, f.limit); f.filled && len(f.buf) < busy {
		nb := make([]byte, min(2*len(f.buf), busy))
		f.w = copy(nb, f.buf[f.r:f.w])
		f.r = 0
		f.buf = nb
	}
	if f.w == len(f.buf) {
		switch {
		case f.r > 0:
			f.w = copy(f.buf, f.buf[f.r:f.w])
			f.r = 0
		case len(f.buf) < f.limit:
			// Doubling keeps the number of copies per grown frame
			// logarithmic; the limit caps what a sender can make us hold.
			nb := make([]byte, min(2*len(f.buf), f.limit))
			copy(nb, f.buf[:f.w])
			f.buf = nb
		default:
			return errBufferFull
		}
	}
	for range maxEmptyReads {
		want := len(f.buf) - f.w
		n, err := f.rd.Read(f.buf[f.w:])
		if n < 0 || n > want {
			return errInvalidRead
		}
		f.w += n
		if n > 0 {
			f.reads++
			// All that was asked, and that was most of the buffer: more
			// is probably waiting.
			f.filled = n == want && 2*want >= len(f.buf)
		}
		if err == io.EOF {
			f.eof = true
		} else if err != nil {
			if n > 0 {
				f.err = err
				return nil
			}
			return err
		}
		if n > 0 {
			return nil
		}
		if f.eof {
			return io.EOF
		}
	}
	return io.ErrNoProgress
}
