package relp

import (
	"bytes"
	"fmt"
	"io"
	"testing"
	"testing/iotest"
)

// FuzzFrame feeds arbitrary bytes, split into reads of a fuzzed size, to a
// Reader with a fuzzed data limit, and every frame it returns to a
// ServerSession, as the RELP listener does. It checks that nothing panics
// and every loop ends; that the buffer and each frame's data stay within
// the limit; that the frames equal those of a non-streaming reference
// parser; and that every frame gets either a well-formed answer (200 or
// 500), the instruction to process it as a message, or an error that closes
// the connection.
func FuzzFrame(f *testing.F) {
	for _, tc := range frameTests {
		f.Add([]byte(tc.in), uint16(tc.maxData), uint8(3))
	}
	f.Fuzz(func(t *testing.T, data []byte, limitSeed uint16, chunk uint8) {
		maxData := max(int(limitSeed%300), 1)
		var r io.Reader = &chunkReader{r: bytes.NewReader(data), n: max(int(chunk%64), 1)}
		if chunk >= 128 {
			r = iotest.DataErrReader(r)
		}
		rd := NewReader(r, maxData)
		var got []result
		var sess ServerSession
		ended := false
		for range len(data) + 2 {
			fr, err := rd.Next()
			if err != nil {
				got = append(got, result{err: classify(err)})
				ended = true
				break
			}
			if len(fr.Data) > maxData || fr.Truncated != (fr.DataLen > maxData) {
				t.Fatalf("frame with %d data bytes of %d, truncated %v, limit %d", len(fr.Data), fr.DataLen, fr.Truncated, maxData)
			}
			got = append(got, result{txnr: fr.Txnr, cmd: fr.Command, data: string(fr.Data), dataLen: fr.DataLen, truncated: fr.Truncated})
			checkServerAnswer(t, &sess, fr)
			// The data parsers see every frame too.
			_, _ = ParseOffers(fr.Data)
			_, _ = ParseResponse(fr.Data)
		}
		if !ended {
			t.Fatalf("Reader did not end within %d frames", len(data)+2)
		}
		if rd.BufferCap() > maxData+HeaderAllowance {
			t.Fatalf("buffer grew to %d bytes, limit %d", rd.BufferCap(), maxData+HeaderAllowance)
		}
		if want := refFrames(data, maxData); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("frames of %q (limit %d, chunk %d) = %v, want %v", data, maxData, chunk, got, want)
		}
	})
}

// checkServerAnswer runs fr through sess and checks that the answer, if any,
// is a valid rsp frame with the right TXNR and a 200 or 500 code.
func checkServerAnswer(t *testing.T, sess *ServerSession, fr Frame) {
	t.Helper()
	kind, rsp, err := sess.Receive(fr)
	switch kind {
	case KindHint, KindSyslog:
		if rsp.Code != 0 {
			t.Fatalf("Receive(%d %s) = %v with an answer %+v", fr.Txnr, fr.Command, kind, rsp)
		}
		if kind == KindSyslog && (err != nil || fr.Command != CmdSyslog) {
			t.Fatalf("Receive(%d %s) = syslog, %v", fr.Txnr, fr.Command, err)
		}
		return
	case KindReply, KindClose:
	default:
		t.Fatalf("Receive(%d %s) = unknown kind %v", fr.Txnr, fr.Command, kind)
	}
	if rsp.Code != CodeOK && rsp.Code != CodeError {
		t.Fatalf("Receive(%d %s) answers %d", fr.Txnr, fr.Command, rsp.Code)
	}
	if err != nil && rsp.Code == CodeOK {
		t.Fatalf("Receive(%d %s) = 200 with error %v", fr.Txnr, fr.Command, err)
	}
	b := AppendResponse(nil, fr.Txnr, rsp.Code, rsp.Text, rsp.Data)
	back, err := NewReader(bytes.NewReader(b), len(b)).Next()
	if err != nil || back.Txnr != fr.Txnr || back.Command != CmdRsp {
		t.Fatalf("answer %q does not read back: %+v, %v", b, back, err)
	}
	parsed, err := ParseResponse(back.Data)
	if err != nil || parsed.Code != rsp.Code {
		t.Fatalf("answer %q parses as %+v, %v", b, parsed, err)
	}
}

// refFrames is the reference for Reader: the same grammar checked in the
// same order, on the whole input at once.
func refFrames(data []byte, maxData int) []result {
	var out []result
	i := 0
	// number reads 1 to 9 digits at i; ok is false with res set when the
	// input is invalid or ends.
	number := func() (v int, res result, ok bool) {
		n := 0
		for i < len(data) && isDigit(data[i]) {
			if n == 9 {
				return 0, invalid, false
			}
			v = v*10 + int(data[i]-'0')
			i++
			n++
		}
		if i == len(data) {
			return 0, unexpectedEOF, false
		}
		if n == 0 {
			return 0, invalid, false
		}
		return v, result{}, true
	}
	expect := func(c byte) (result, bool) {
		if i == len(data) {
			return unexpectedEOF, false
		}
		if data[i] != c {
			return invalid, false
		}
		i++
		return result{}, true
	}
	for {
		if i == len(data) {
			return append(out, eof)
		}
		txnr, res, ok := number()
		if !ok {
			return append(out, res)
		}
		if res, ok := expect(' '); !ok {
			return append(out, res)
		}
		start := i
		for i < len(data) && isAlpha(data[i]) {
			if i-start == 32 {
				return append(out, invalid)
			}
			i++
		}
		if i == len(data) {
			return append(out, unexpectedEOF)
		}
		if i == start || data[i] != ' ' {
			return append(out, invalid)
		}
		cmd := string(data[start:i])
		i++
		dataLen, res, ok := number()
		if !ok {
			return append(out, res)
		}
		if dataLen == 0 {
			if res, ok := expect('\n'); !ok {
				return append(out, res)
			}
			out = append(out, result{txnr: txnr, cmd: cmd})
			continue
		}
		if res, ok := expect(' '); !ok {
			return append(out, res)
		}
		if dataLen > maxData {
			if len(data)-i < maxData {
				return append(out, unexpectedEOF)
			}
			out = append(out, result{txnr: txnr, cmd: cmd, data: string(data[i : i+maxData]), dataLen: dataLen, truncated: true})
			if len(data)-i < dataLen {
				return append(out, unexpectedEOF)
			}
			i += dataLen
			if res, ok := expect('\n'); !ok {
				return append(out, res)
			}
			continue
		}
		if len(data)-i < dataLen+1 {
			return append(out, unexpectedEOF)
		}
		if data[i+dataLen] != '\n' {
			return append(out, invalid)
		}
		out = append(out, result{txnr: txnr, cmd: cmd, data: string(data[i : i+dataLen]), dataLen: dataLen})
		i += dataLen + 1
	}
}
