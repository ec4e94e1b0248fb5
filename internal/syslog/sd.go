package syslog

import (
	"bytes"
	"net/netip"
	"strings"
	"unicode/utf8"
)

// This file reads and writes RFC 5424 STRUCTURED-DATA (§6.3):
//
//	STRUCTURED-DATA = NILVALUE / 1*SD-ELEMENT
//	SD-ELEMENT      = "[" SD-ID *(SP SD-PARAM) "]"
//	SD-PARAM        = PARAM-NAME "=" %d34 PARAM-VALUE %d34
//	PARAM-VALUE     = UTF-8-STRING, with '"', '\' and ']' escaped
//	SD-ID, PARAM-NAME = 1*32 PRINTUSASCII except '=', SP, ']', '"'
//
// Values stay escaped in the message; they are unescaped only when a caller
// asks for one (SDParam.AppendValue), because a relay mostly forwards
// structured data and rarely looks inside it.

const maxSDName = 32

// sdNameLen returns the length of the SD-NAME at the start of b, or 0 if b
// does not start with a valid one (empty or longer than 32 characters).
func sdNameLen(b []byte) int {
	i := 0
	for i < len(b) && i <= maxSDName {
		c := b[i]
		if c <= ' ' || c > '~' || c == '=' || c == ']' || c == '"' {
			break
		}
		i++
	}
	if i > maxSDName {
		return 0
	}
	return i
}

// sdValueLen returns the length of the escaped PARAM-VALUE at the start of
// b, up to but not including its closing '"', or -1 if it is not closed.
//
// A '"' closes the value when an even number of backslashes precedes it.
// That is the same as reading left to right with a backslash hiding the
// next byte: before '"', '\' and ']' a backslash is an escape, and before
// anything else RFC 5424 §6.3.3 makes both bytes plain characters, which
// is the same thing for finding the end. Searching for '"' alone lets
// bytes.IndexByte do the scanning.
func sdValueLen(b []byte) int {
	i := 0
	for {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			return -1
		}
		i += j
		k := i
		for k > 0 && b[k-1] == '\\' {
			k--
		}
		if (i-k)%2 == 0 {
			return i
		}
		i++
	}
}

// sdElementLen returns the length of the SD-ELEMENT at the start of b, or
// 0 if b does not start with a valid one. loose reports a PARAM-VALUE that
// looseValue finds.
func sdElementLen(b []byte) (n int, loose bool) {
	if len(b) < 3 || b[0] != '[' {
		return 0, false
	}
	n = sdNameLen(b[1:])
	if n == 0 {
		return 0, false
	}
	i := 1 + n
	for i < len(b) {
		switch b[i] {
		case ']':
			return i + 1, loose
		case ' ':
			i++
			n := sdNameLen(b[i:])
			if n == 0 {
				return 0, false
			}
			i += n
			if i+1 >= len(b) || b[i] != '=' || b[i+1] != '"' {
				return 0, false
			}
			i += 2
			v := sdValueLen(b[i:])
			if v < 0 {
				return 0, false
			}
			// PARAM-VALUE is UTF-8 (RFC 5424 §6.3.3); a strict receiver
			// refuses anything else. Most values are plain ASCII without
			// ']' or '\\', which one loop tells.
			if val := b[i : i+v]; !plainValue(val) {
				if !utf8.Valid(val) {
					return 0, false
				}
				loose = loose || looseValue(val)
			}
			i += v + 1
		default:
			return 0, false
		}
	}
	return 0, false
}

// plainValue reports whether v is ASCII without ']' and '\\'.
func plainValue(v []byte) bool {
	for _, c := range v {
		if c >= utf8.RuneSelf || c == ']' || c == '\\' {
			return false
		}
	}
	return true
}

// looseValue reports whether the escaped PARAM-VALUE v has a ']' or a '\'
// that is not escaped as RFC 5424 §6.3.3 asks. Parse accepts both: the
// closing '"' is found all the same, and a '\' before another character
// is, by the RFC, a literal backslash; a strict receiver may refuse them.
func looseValue(v []byte) bool {
	if bytes.IndexByte(v, '\\') < 0 {
		return bytes.IndexByte(v, ']') >= 0
	}
	for k := 0; k < len(v); k++ {
		switch v[k] {
		case ']':
			return true
		case '\\':
			if k+1 == len(v) || (v[k+1] != '"' && v[k+1] != '\\' && v[k+1] != ']') {
				return true
			}
			k++
		}
	}
	return false
}

// sdLen returns the length of the run of valid SD-ELEMENTs at the start of
// b and whether it stopped at something other than a '[' (the end of b or
// another byte the caller must judge). ok is false when an element is
// malformed; loose reports a value looseValue finds in b[:n].
func sdLen(b []byte) (n int, ok, loose bool) {
	for n < len(b) && b[n] == '[' {
		e, l := sdElementLen(b[n:])
		if e == 0 {
			return n, false, loose // loose speaks of b[:n]
		}
		n += e
		loose = loose || l
	}
	return n, n > 0, loose
}

// ValidSD reports whether sd is valid STRUCTURED-DATA other than the
// NILVALUE: one or more SD-ELEMENTs and nothing else.
func ValidSD(sd []byte) bool {
	n, ok, _ := sdLen(sd)
	return ok && n == len(sd)
}

// SDIterator walks the SD-ELEMENTs of STRUCTURED-DATA. Use it like a
// bufio.Scanner:
//
//	it := syslog.NewSDIterator(m.StructuredData)
//	for it.Next() {
//		e := it.Element()
//		…
//	}
//
// It stops at the end or at the first malformed element. It does not
// allocate, and the elements it returns alias the data it was given.
type SDIterator struct {
	rest []byte
	elem SDElement
}

// NewSDIterator returns an iterator over the SD-ELEMENTs in sd, which may
// be Message.StructuredData, nil, or "-".
func NewSDIterator(sd []byte) SDIterator {
	return SDIterator{rest: sd}
}

// Next advances to the next element and reports whether there is one.
func (it *SDIterator) Next() bool {
	n, _ := sdElementLen(it.rest)
	if n == 0 {
		it.rest, it.elem = nil, SDElement{}
		return false
	}
	e := it.rest[:n]
	id := sdNameLen(e[1:])
	it.elem = SDElement{ID: e[1 : 1+id], Raw: e, params: e[1+id : n-1]}
	it.rest = it.rest[n:]
	return true
}

// Element returns the element Next moved to.
func (it *SDIterator) Element() SDElement { return it.elem }

// SDElement is one SD-ELEMENT.
type SDElement struct {
	// ID is the SD-ID, e.g. "timeQuality" or "junos@2636.1.1.1.2.18".
	ID []byte
	// Raw is the whole element as received, brackets included.
	Raw []byte

	params []byte // " name=\"value\"…", as received
}

// Params returns an iterator over the element's SD-PARAMs.
func (e SDElement) Params() SDParamIterator {
	return SDParamIterator{rest: e.params}
}

// Param returns the first parameter called name.
func (e SDElement) Param(name string) (SDParam, bool) {
	it := e.Params()
	for it.Next() {
		if p := it.Param(); string(p.Name) == name {
			return p, true
		}
	}
	return SDParam{}, false
}

// SDParamIterator walks the SD-PARAMs of an element, like SDIterator.
type SDParamIterator struct {
	rest  []byte
	param SDParam
}

// Next advances to the next parameter and reports whether there is one.
func (it *SDParamIterator) Next() bool {
	b := it.rest
	// Elements come from sdElementLen, so b is a valid run of
	// SP name="value"; the checks only guard hand-made SDElements.
	if len(b) < 4 || b[0] != ' ' {
		it.rest, it.param = nil, SDParam{}
		return false
	}
	n := sdNameLen(b[1:])
	i := 1 + n
	if n == 0 || i+1 >= len(b) || b[i] != '=' || b[i+1] != '"' {
		it.rest, it.param = nil, SDParam{}
		return false
	}
	v := sdValueLen(b[i+2:])
	if v < 0 {
		it.rest, it.param = nil, SDParam{}
		return false
	}
	it.param = SDParam{Name: b[1:i], RawValue: b[i+2 : i+2+v]}
	it.rest = b[i+2+v+1:]
	return true
}

// Param returns the parameter Next moved to.
func (it *SDParamIterator) Param() SDParam { return it.param }

// SDParam is one SD-PARAM.
type SDParam struct {
	Name []byte
	// RawValue is the PARAM-VALUE as received, still escaped.
	RawValue []byte
}

// AppendValue appends the unescaped value: `\"`, `\\` and `\]` become the
// character they escape; any other backslash stays as it is, as RFC 5424
// §6.3.3 requires.
func (p SDParam) AppendValue(dst []byte) []byte {
	v := p.RawValue
	for {
		i := bytes.IndexByte(v, '\\')
		if i < 0 || i+1 >= len(v) {
			return append(dst, v...)
		}
		switch c := v[i+1]; c {
		case '"', '\\', ']':
			dst = append(dst, v[:i]...)
			dst = append(dst, c)
		default:
			dst = append(dst, v[:i+2]...)
		}
		v = v[i+2:]
	}
}

// Value returns the unescaped value as a string. It allocates; hot paths
// use AppendValue with a reused buffer.
func (p SDParam) Value() string {
	if bytes.IndexByte(p.RawValue, '\\') < 0 {
		return string(p.RawValue)
	}
	return string(p.AppendValue(nil))
}

// LookupSDParam finds parameter name of the first element with SD-ID id in
// sd.
func LookupSDParam(sd []byte, id, name string) (SDParam, bool) {
	it := NewSDIterator(sd)
	for it.Next() {
		if e := it.Element(); string(e.ID) == id {
			return e.Param(name)
		}
	}
	return SDParam{}, false
}

// hasSDID reports whether the STRUCTURED-DATA sd has an element with the
// given SD-ID. Most messages do not carry the ID asked about (a relay asks
// whether an origin element is already there), so a substring search rules
// that out before the elements are walked.
func hasSDID(sd, id []byte) bool {
	if !bytes.Contains(sd, id) {
		return false
	}
	it := NewSDIterator(sd)
	for it.Next() {
		if bytes.Equal(it.Element().ID, id) {
			return true
		}
	}
	return false
}

// AppendSDParamValue appends v escaped as a PARAM-VALUE: '"', '\' and ']'
// get a backslash in front (RFC 5424 §6.3.3), and a byte that is not UTF-8
// becomes U+FFFD, since a PARAM-VALUE is UTF-8. The quotes around the value
// are the caller's.
func AppendSDParamValue(dst []byte, v string) []byte {
	if !utf8.ValidString(v) {
		v = strings.ToValidUTF8(v, "\uFFFD")
	}
	for {
		i := indexSDSpecial(v)
		if i < 0 {
			return append(dst, v...)
		}
		dst = append(dst, v[:i]...)
		dst = append(dst, '\\', v[i])
		v = v[i+1:]
	}
}

func indexSDSpecial(v string) int {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == '"' || c == '\\' || c == ']' {
			return i
		}
	}
	return -1
}

// AppendOriginSD appends the SD-ELEMENT `[origin ip="…"]` that RFC 5424
// §7.2 defines for the address of the originator: a relay adds it so that
// the sender's address survives the hop. An IPv4 address mapped into IPv6
// (as a dual-stack socket reports it) is written as IPv4. An invalid
// address appends nothing.
func AppendOriginSD(dst []byte, ip netip.Addr) []byte {
	if !ip.IsValid() {
		return dst
	}
	dst = append(dst, `[origin ip="`...)
	// An address has no character that needs escaping; a zone might
	// ("fe80::1%eth0" is fine, but a zone is arbitrary text), so drop it.
	dst = ip.Unmap().WithZone("").AppendTo(dst)
	return append(dst, `"]`...)
}
