package syslog

// DefaultPRI is the priority a relay assumes for a message that carries no
// PRI part: RFC 3164 §4.3.3 says to treat it as user.notice, which is 13.
const DefaultPRI = 13

// MaxPRI is the largest valid priority value: facility 23 (local7) times 8
// plus severity 7 (debug).
const MaxPRI = 191

// ReadPRI reads the "<N>" prefix of a syslog message.
//
// The PRI is valid when N is 0 to 191 written with one to three digits and
// no leading zero (only "<0>" may start with 0), as RFC 5424 §6.2.1 requires.
// ReadPRI returns the value, the number of bytes the PRI took (the index of
// the first byte after '>'), and ok=true. When the PRI is absent or invalid
// it returns 0, 0, false, so the caller keeps the whole message as content
// and falls back to DefaultPRI.
//
// ReadPRI does not allocate: it runs for every received message.
func ReadPRI(msg []byte) (pri int, n int, ok bool) {
	// The shortest PRI is "<0>".
	if len(msg) < 3 || msg[0] != '<' {
		return 0, 0, false
	}
	v := 0
	// Positions 1 to 3 may hold digits; position 4 at the latest must be '>'.
	for i := 1; i < len(msg) && i <= 4; i++ {
		c := msg[i]
		if c == '>' {
			if i == 1 || v > MaxPRI {
				return 0, 0, false
			}
			return v, i + 1, true
		}
		if c < '0' || c > '9' || i == 4 {
			return 0, 0, false
		}
		// A second digit after a leading zero ("<01>") is not canonical.
		if i == 2 && msg[1] == '0' {
			return 0, 0, false
		}
		v = v*10 + int(c-'0')
	}
	return 0, 0, false
}

// Facility returns the facility code (0 kern to 23 local7) of a priority.
func Facility(pri int) int { return pri / 8 }

// Severity returns the severity code (0 emerg to 7 debug) of a priority.
func Severity(pri int) int { return pri % 8 }

// TrimDatagram removes the transport padding that some senders append to a
// UDP or unix datagram: trailing NUL bytes and a trailing LF or CRLF, in any
// combination ("msg\n", "msg\r\n", "msg\x00", "msg\n\x00", "msg\x00\n").
// These bytes are an artefact of how the sender wrote the datagram, not part
// of the message, and leaving them in would put them into every line an
// output writes.
//
// A lone trailing CR (not followed by LF) is kept: it is not padding any
// known sender adds, so it may be content. TrimDatagram returns a subslice of
// b and does not allocate.
func TrimDatagram(b []byte) []byte {
	for len(b) > 0 {
		switch b[len(b)-1] {
		case 0:
			b = b[:len(b)-1]
		case '\n':
			b = b[:len(b)-1]
			if len(b) > 0 && b[len(b)-1] == '\r' {
				b = b[:len(b)-1]
			}
		default:
			return b
		}
	}
	return b
}
