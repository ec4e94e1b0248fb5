package main

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// A load message is an RFC 3164 line whose body carries the run tag, the
// sequence number and the send time, in fixed-width decimal fields so that
// the generator rewrites digits in place and the sink reads them without
// allocating:
//
//	<134>Jan  2 15:04:05 benchhost relay-bench[1]: R=ab12 S=0000000042 T=0000001234567890 xxxx…
//
// The send time is nanoseconds since the harness's monotonic base, so
// generator and sink (one process) share a clock that cannot jump.
const (
	msgPrefix = "<134>Jan  2 15:04:05 benchhost relay-bench[1]:"
	runLen    = 4
	seqLen    = 10
	timeLen   = 16
)

// fieldsMarker starts the fields; the sink finds it with bytes.Index.
var fieldsMarker = []byte(" R=")

// fieldsLen is the length of " R=tag S=seq T=time".
const fieldsLen = 3 + runLen + 3 + seqLen + 3 + timeLen

// minMessageSize is the shortest message that holds every field.
const minMessageSize = len(msgPrefix) + fieldsLen

// template is one message of a given size with room for its fields, and the
// offsets at which the sequence number and time digits are written.
type template struct {
	msg     []byte
	seqAt   int
	timeAt  int
	fieldAt int
}

// newTemplate builds a message of exactly size bytes for run (runLen
// characters), padded with 'x'.
func newTemplate(run string, size int) (*template, error) {
	if len(run) != runLen {
		return nil, fmt.Errorf("run tag %q: want %d characters", run, runLen)
	}
	if size < minMessageSize {
		return nil, fmt.Errorf("message size %d: at least %d bytes are needed for the fields", size, minMessageSize)
	}
	var b bytes.Buffer
	b.WriteString(msgPrefix)
	fieldAt := b.Len()
	b.WriteString(" R=" + run + " S=")
	seqAt := b.Len()
	b.Write(bytes.Repeat([]byte{'0'}, seqLen))
	b.WriteString(" T=")
	timeAt := b.Len()
	b.Write(bytes.Repeat([]byte{'0'}, timeLen))
	if b.Len() < size {
		b.WriteByte(' ')
	}
	for b.Len() < size {
		b.WriteByte('x')
	}
	return &template{msg: b.Bytes(), seqAt: seqAt, timeAt: timeAt, fieldAt: fieldAt}, nil
}

// frame returns a copy of the message framed for the transport, and the
// offset of the message inside it: octet counting prepends "LEN ", LF
// appends a line feed, and a datagram is the bare message.
func (t *template) frame(f framing) (buf []byte, off int) {
	switch f {
	case framingOctet:
		p := strconv.Itoa(len(t.msg)) + " "
		return append([]byte(p), t.msg...), len(p)
	case framingLF:
		return append(append([]byte{}, t.msg...), '\n'), 0
	}
	return append([]byte{}, t.msg...), 0
}

// putDigits writes v as exactly len(dst) decimal digits, keeping the lowest
// ones if v is larger.
func putDigits(dst []byte, v uint64) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = byte('0' + v%10)
		v /= 10
	}
}

// stamp writes the sequence number and send time into a framed message
// whose message part starts at off.
func (t *template) stamp(buf []byte, off int, seq uint64, sentNanos int64) {
	putDigits(buf[off+t.seqAt:off+t.seqAt+seqLen], seq)
	putDigits(buf[off+t.timeAt:off+t.timeAt+timeLen], uint64(sentNanos))
}

var errNoFields = errors.New("no load fields")

// parseFields reads the run tag, sequence number and send time from a
// received message. The tag is returned as a slice into msg.
func parseFields(msg []byte) (run []byte, seq uint64, sentNanos int64, err error) {
	i := bytes.Index(msg, fieldsMarker)
	if i < 0 || len(msg)-i < fieldsLen {
		return nil, 0, 0, errNoFields
	}
	f := msg[i+3 : i+fieldsLen]
	run = f[:runLen]
	f = f[runLen:]
	if string(f[:3]) != " S=" {
		return nil, 0, 0, errNoFields
	}
	seq, ok := readDigits(f[3 : 3+seqLen])
	if !ok {
		return nil, 0, 0, errNoFields
	}
	f = f[3+seqLen:]
	if string(f[:3]) != " T=" {
		return nil, 0, 0, errNoFields
	}
	t, ok := readDigits(f[3 : 3+timeLen])
	if !ok {
		return nil, 0, 0, errNoFields
	}
	return run, seq, int64(t), nil
}

func readDigits(b []byte) (uint64, bool) {
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, true
}
