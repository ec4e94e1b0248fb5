package syslog

import "bytes"

// bom is the UTF-8 byte order mark that RFC 5424 §6.4 puts in front of a
// MSG to say it is UTF-8.
var bom = []byte{0xEF, 0xBB, 0xBF}

// parse5424 reads an RFC 5424 message whose "VERSION SP" starts at b[p:]
// (RFC 5424 §6):
//
//	HEADER SP STRUCTURED-DATA [SP MSG]
//	HEADER = PRI VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID
//
// It goes on after a bad field, so that routing still gets the hostname of
// a message with a malformed timestamp, and stops only where the structure
// itself breaks: a missing field or malformed structured data. Whatever is
// left from there is Msg, so Msg is always a suffix of b.
func parse5424(m *Message, b []byte, p int, opts *ParseOptions) {
	m.Format = FormatRFC5424
	p += 2 // "1 "

	// TIMESTAMP
	tok, next := token(b, p)
	m.tsStart, m.tsEnd = p, p+len(tok)
	switch {
	case len(tok) == 1 && tok[0] == '-':
	default:
		st, n, valid := scanISO(tok, true)
		if n != len(tok) {
			valid = false
		}
		m.setStamp(&st, valid, opts)
	}
	if next < 0 {
		m.truncated5424(b)
		return
	}
	p = next

	// HOSTNAME, APP-NAME, PROCID, MSGID
	m.hostStart = p
	tok, next = token(b, p)
	m.Hostname = m.field(tok, maxHostname)
	m.hostEnd = p + len(tok)
	for _, f := range [...]struct {
		dst *[]byte
		max int
	}{{&m.AppName, maxAppName}, {&m.ProcID, maxProcID}, {&m.MsgID, maxMsgID}} {
		if next < 0 {
			m.truncated5424(b)
			return
		}
		p = next
		tok, next = token(b, p)
		*f.dst = m.field(tok, f.max)
	}
	if next < 0 || next == len(b) {
		m.truncated5424(b)
		return
	}
	p = next

	// STRUCTURED-DATA
	m.sdStart = p
	switch {
	case b[p] == '-':
		p++
	case b[p] == '[':
		n, ok, loose := sdLen(b[p:])
		if !ok {
			m.setProblem(ProblemBadStructuredData)
			m.Msg = b[p:]
			return
		}
		m.StructuredData = b[p : p+n]
		m.sdLoose = loose
		p += n
	default:
		m.setProblem(ProblemBadStructuredData)
		m.Msg = b[p:]
		return
	}
	m.sdEnd = p

	// [SP MSG]
	switch {
	case p == len(b):
	case b[p] == ' ':
		p++
		if bytes.HasPrefix(b[p:], bom) {
			m.HasBOM = true
			p += len(bom)
		}
	default:
		// "-x" or "[a]x": the structured data does not end where it should.
		m.setProblem(ProblemBadStructuredData)
		m.StructuredData = nil
		p = m.sdStart
	}
	m.Msg = b[p:]
}

// token returns the bytes from b[p] to the next SP and the index after
// that SP, or -1 as next when no SP follows.
func token(b []byte, p int) (tok []byte, next int) {
	i := bytes.IndexByte(b[p:], ' ')
	if i < 0 {
		return b[p:], -1
	}
	return b[p : p+i], p + i + 1
}

// field checks one RFC 5424 header field: 1 to max PRINTUSASCII
// characters, where "-" (NILVALUE) means none. A field that breaks the rule
// is kept as received, for routing, and marks the message bad_header.
func (m *Message) field(tok []byte, max int) []byte {
	if len(tok) == 1 && tok[0] == '-' {
		return nil
	}
	if len(tok) == 0 || len(tok) > max || !printASCII(tok) {
		m.setProblem(ProblemBadHeader)
	}
	if len(tok) == 0 {
		return nil
	}
	return tok
}

// truncated5424 handles a message that ends inside the header.
func (m *Message) truncated5424(b []byte) {
	m.setProblem(ProblemBadHeader)
	m.Msg = b[len(b):]
}

// printASCII reports whether every byte of b is PRINTUSASCII (33–126).
func printASCII(b []byte) bool {
	for _, c := range b {
		if c < '!' || c > '~' {
			return false
		}
	}
	return true
}
