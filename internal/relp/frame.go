package relp

import (
	"errors"
	"io"
	"strconv"
)

// Limits of the frame header, from the RELP specification.
const (
	// MaxTxnr is the largest transaction number; the one after it is 1.
	MaxTxnr = 999_999_999
	// MaxDataLen is the largest DATALEN a header can state (nine digits).
	MaxDataLen = 999_999_999
	// MaxCommandLen is the longest command name.
	MaxCommandLen = 32

	maxNumberDigits = 9

	// HeaderAllowance is what a frame may hold besides its data: a TXNR of
	// nine digits, SP, a command of 32 letters, SP, a DATALEN of nine
	// digits, the SP before the data and the trailing LF. A Reader never
	// buffers more than its data limit plus this.
	HeaderAllowance = maxNumberDigits + 1 + MaxCommandLen + 1 + maxNumberDigits + 1 + 1

	// initialBufSize is the buffer a Reader starts with; it grows only when
	// a larger frame arrives, so an idle connection costs little.
	initialBufSize = 4 << 10

	// maxEmptyReads is how many (0, nil) reads in a row are tolerated
	// before io.ErrNoProgress is reported instead of spinning.
	maxEmptyReads = 100
)

// The commands this package knows.
const (
	CmdOpen        = "open"
	CmdSyslog      = "syslog"
	CmdClose       = "close"
	CmdRsp         = "rsp"
	CmdServerclose = "serverclose"
)

// Frame is one RELP frame.
type Frame struct {
	Txnr    int
	Command string
	// Data is the frame's data. A Reader returns it pointing into its
	// buffer: it is valid only until the next call of Next or TryNext.
	Data []byte
	// DataLen is the length the header announced. It differs from
	// len(Data) only when the frame was longer than the Reader's limit: then
	// Data holds the first bytes and Truncated is set.
	DataLen   int
	Truncated bool
}

// FrameError reports bytes that are not a RELP frame. The stream cannot be
// resynchronised after one: the connection must be closed.
type FrameError struct {
	Reason string
}

func (e *FrameError) Error() string { return "relp: invalid frame: " + e.Reason }

func frameError(reason string) error { return &FrameError{Reason: reason} }

// IsFrameError reports whether err is a *FrameError.
func IsFrameError(err error) bool {
	var fe *FrameError
	return errors.As(err, &fe)
}

// errInvalidRead means the io.Reader broke its contract by returning a count
// outside 0..len(p).
var errInvalidRead = errors.New("relp: reader returned invalid count")

// NextTxnr returns the transaction number that follows t.
func NextTxnr(t int) int {
	if t >= MaxTxnr {
		return 1
	}
	return t + 1
}

// Reader splits a byte stream into RELP frames. It buffers at most its
// data limit plus HeaderAllowance bytes whatever a peer announces: the data
// of a longer frame is cut at the limit (Frame.Truncated) and the rest is
// read and discarded, so the stream stays in step. After a FrameError or a
// read error every later call returns the same error. A Reader is not safe
// for concurrent use.
type Reader struct {
	rd      io.Reader
	maxData int
	limit   int

	buf  []byte
	r, w int // buf[r:w] holds bytes read but not yet consumed

	// skip counts the data bytes of a truncated frame still to discard;
	// trailer is set while its LF is still to be checked.
	skip    int
	trailer bool

	err error // sticky: a FrameError or the error that ended the stream
}

// NewReader returns a Reader of rd that accepts frames of up to maxData data
// bytes without truncation; maxData below 1 means 64 KiB.
func NewReader(rd io.Reader, maxData int) *Reader {
	if maxData < 1 {
		maxData = 64 << 10
	}
	maxData = min(maxData, MaxDataLen)
	limit := maxData + HeaderAllowance
	return &Reader{
		rd:      rd,
		maxData: maxData,
		limit:   limit,
		buf:     make([]byte, min(initialBufSize, limit)),
	}
}

// Buffered returns how many bytes are read from the stream but not yet
// consumed.
func (r *Reader) Buffered() int { return r.w - r.r }

// BufferCap returns the size of the buffer, which never exceeds the data
// limit plus HeaderAllowance.
func (r *Reader) BufferCap() int { return len(r.buf) }

// TryNext returns the next frame if the bytes already buffered hold all of
// it, without reading from the stream. ok is false, with a nil error, when
// a read is needed first. A server uses it to find the end of a burst of
// frames: that is the moment to acknowledge them.
func (r *Reader) TryNext() (f Frame, ok bool, err error) {
	if r.err != nil {
		return Frame{}, false, r.err
	}
	f, ok, err = r.parse()
	if err != nil {
		r.err = err
		return Frame{}, false, err
	}
	return f, ok, nil
}

// Next returns the next frame, reading from the stream as needed. At the
// end of the stream it returns io.EOF when no bytes of a frame were
// pending and io.ErrUnexpectedEOF otherwise.
func (r *Reader) Next() (Frame, error) {
	for {
		f, ok, err := r.TryNext()
		if ok || err != nil {
			return f, err
		}
		if err := r.fill(); err != nil {
			if errors.Is(err, io.EOF) && (r.w > r.r || r.skip > 0 || r.trailer) {
				err = io.ErrUnexpectedEOF
			}
			r.err = err
			return Frame{}, err
		}
	}
}

// fill reads at least one byte into the buffer, making room first.
func (r *Reader) fill() error {
	if r.r == r.w {
		r.r, r.w = 0, 0
	} else if r.r > 0 {
		// Only a partial frame is kept, so the copy is small but for frames
		// near the limit, which are rare.
		r.w = copy(r.buf, r.buf[r.r:r.w])
		r.r = 0
	}
	if r.w == len(r.buf) {
		if len(r.buf) >= r.limit {
			// parse asks for at most limit bytes, so this is a bug.
			return errors.New("relp: frame buffer full")
		}
		nb := make([]byte, min(2*len(r.buf), r.limit))
		copy(nb, r.buf[:r.w])
		r.buf = nb
	}
	for range maxEmptyReads {
		n, err := r.rd.Read(r.buf[r.w:])
		if n < 0 || n > len(r.buf)-r.w {
			return errInvalidRead
		}
		r.w += n
		if n > 0 {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return io.ErrNoProgress
}

// parse consumes one frame from buf[r:w] if it is complete. It returns
// ok == false and no error when more bytes are needed, and a FrameError as
// soon as the bytes seen cannot start a valid frame.
func (r *Reader) parse() (Frame, bool, error) {
	if r.skip > 0 {
		n := min(r.skip, r.w-r.r)
		r.r += n
		r.skip -= n
		if r.skip > 0 {
			return Frame{}, false, nil
		}
	}
	if r.trailer {
		if r.r == r.w {
			return Frame{}, false, nil
		}
		if r.buf[r.r] != '\n' {
			return Frame{}, false, frameError("no LF after the data of a truncated frame")
		}
		r.r++
		r.trailer = false
	}
	b := r.buf[r.r:r.w]
	if len(b) == 0 {
		return Frame{}, false, nil
	}

	txnr, i, err := parseNumber(b, "TXNR")
	if err != nil || i == 0 {
		return Frame{}, false, err
	}
	if i == len(b) {
		return Frame{}, false, nil
	}
	if b[i] != ' ' {
		return Frame{}, false, frameError("TXNR not followed by SP")
	}
	i++

	cmdStart := i
	for i < len(b) && isAlpha(b[i]) {
		if i-cmdStart == MaxCommandLen {
			return Frame{}, false, frameError("command longer than 32 letters")
		}
		i++
	}
	if i == len(b) {
		return Frame{}, false, nil
	}
	if i == cmdStart {
		return Frame{}, false, frameError("empty or non-alphabetic command")
	}
	if b[i] != ' ' {
		return Frame{}, false, frameError("command not followed by SP")
	}
	cmd := b[cmdStart:i]
	i++

	dataLen, n, err := parseNumber(b[i:], "DATALEN")
	if err != nil || n == 0 {
		return Frame{}, false, err
	}
	i += n
	if i == len(b) {
		return Frame{}, false, nil
	}
	f := Frame{Txnr: txnr, Command: internCommand(cmd), DataLen: dataLen}
	if dataLen == 0 {
		if b[i] != '\n' {
			return Frame{}, false, frameError("DATALEN 0 not followed by LF")
		}
		r.r += i + 1
		return f, true, nil
	}
	if b[i] != ' ' {
		return Frame{}, false, frameError("DATALEN not followed by SP")
	}
	i++
	if dataLen > r.maxData {
		// Hand out the first maxData bytes; the rest is discarded as it
		// arrives and the trailer checked after it.
		if len(b)-i < r.maxData {
			return Frame{}, false, nil
		}
		f.Data = b[i : i+r.maxData : i+r.maxData]
		f.Truncated = true
		r.r += i + r.maxData
		r.skip = dataLen - r.maxData
		r.trailer = true
		return f, true, nil
	}
	if len(b)-i < dataLen+1 {
		return Frame{}, false, nil
	}
	if b[i+dataLen] != '\n' {
		return Frame{}, false, frameError("data not followed by LF")
	}
	f.Data = b[i : i+dataLen : i+dataLen]
	r.r += i + dataLen + 1
	return f, true, nil
}

// parseNumber reads the 1 to 9 digits at the start of b. n is 0 without an
// error when b ends within the digits.
func parseNumber(b []byte, what string) (v, n int, err error) {
	for n < len(b) && isDigit(b[n]) {
		if n == maxNumberDigits {
			return 0, 0, frameError(what + " longer than 9 digits")
		}
		v = v*10 + int(b[n]-'0')
		n++
	}
	if n == len(b) {
		return 0, 0, nil
	}
	if n == 0 {
		return 0, 0, frameError(what + " is not a number")
	}
	return v, n, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// internCommand returns the known commands without allocating.
func internCommand(b []byte) string {
	switch string(b) {
	case CmdSyslog:
		return CmdSyslog
	case CmdRsp:
		return CmdRsp
	case CmdOpen:
		return CmdOpen
	case CmdClose:
		return CmdClose
	case CmdServerclose:
		return CmdServerclose
	}
	return string(b)
}

// AppendFrame appends a frame to dst. txnr must be 0 to MaxTxnr and cmd 1
// to 32 ASCII letters; ValidCommand checks a name that comes from outside.
func AppendFrame(dst []byte, txnr int, cmd string, data []byte) []byte {
	dst = strconv.AppendInt(dst, int64(txnr), 10)
	dst = append(dst, ' ')
	dst = append(dst, cmd...)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(len(data)), 10)
	if len(data) > 0 {
		dst = append(dst, ' ')
		dst = append(dst, data...)
	}
	return append(dst, '\n')
}

// FrameLen returns the length of the frame AppendFrame makes for txnr, cmd
// and data of dataLen bytes: what the frame costs on the wire.
func FrameLen(txnr int, cmd string, dataLen int) int {
	n := decimalLen(txnr) + 1 + len(cmd) + 1 + decimalLen(dataLen) + 1
	if dataLen > 0 {
		n += 1 + dataLen
	}
	return n
}

func decimalLen(v int) int {
	n := 1
	for ; v >= 10; v /= 10 {
		n++
	}
	return n
}

// ValidCommand reports whether cmd can be sent as a command name.
func ValidCommand(cmd string) bool {
	if len(cmd) == 0 || len(cmd) > MaxCommandLen {
		return false
	}
	for i := 0; i < len(cmd); i++ {
		if !isAlpha(cmd[i]) {
			return false
		}
	}
	return true
}
