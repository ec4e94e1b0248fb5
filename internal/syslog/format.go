package syslog

import (
	"strconv"
	"time"
)

// FormatOptions carry what a formatter adds to a message.
type FormatOptions struct {
	// Hostname is written when the message has none: the sender's address
	// is the usual choice (RFC 3164 §4.3.2 asks a relay to fill it in).
	// Empty means "-" (RFC 5424) or "-" as the HOSTNAME token (RFC 3164).
	Hostname string
	// ExtraSD holds SD-ELEMENTs to add to RFC 5424 output, such as
	// `[origin ip="192.0.2.1"]` from AppendOriginSD, with values escaped
	// as AppendSDParamValue does: they are written as given. An element
	// whose SD-ID the message already has is skipped (RFC 5424 §6.3.2
	// forbids the same SD-ID twice, and the first relay's origin is the
	// true one); so is everything from the first malformed element on.
	ExtraSD []byte
	// Location is the zone timestamps are written in; nil keeps the zone of
	// the message's Timestamp for RFC 5424 and means time.Local for
	// RFC 3164, whose stamps name no zone.
	Location *time.Location
}

// The length limits of RFC 5424 §6 are the constants in rfc3164.go; the
// formatters enforce them on output.

// nilValue is RFC 5424's NILVALUE.
const nilValue = '-'

// metaID is the SD-ID of RFC 5424 §7.3, which carries sequenceId.
var metaID = []byte("meta")

// AppendRFC5424 appends m as an RFC 5424 message to dst and returns the
// extended buffer. Which bytes it writes depends on what Parse found:
//
//   - A clean RFC 5424 message (Format RFC5424, Problem none, Raw set) is
//     copied byte for byte, BOM and all, with these exceptions: a NILVALUE
//     HOSTNAME becomes opts.Hostname when that is set; opts.ExtraSD is
//     added to the structured data; and what Parse accepts but RFC 5424
//     forbids is made valid without changing its meaning, so that a strict
//     receiver takes it: a TIMESTAMP with more than six fraction digits, a
//     leap second or a lower-case 't' or 'z' (§6.2.3) is written again from
//     the parsed time, cut to microseconds, and a PARAM-VALUE with a ']'
//     or a '\' that is not escaped (§6.3.3) is escaped again (same value).
//     The relay forwards what the sender wrote; changing fields of a parsed
//     Message does not change this output (set Raw to nil to format from
//     the fields).
//   - A clean RFC 3164 message is converted: its stamp becomes a full
//     RFC 3339 timestamp with the year and offset Parse gave it, its TAG
//     and PID become APP-NAME and PROCID, a Cisco counter becomes
//     `[meta sequenceId="N"]` (RFC 5424 §7.3.1, as Cisco's own RFC 5424
//     output writes it), and the content becomes MSG. No BOM is added:
//     the encoding of BSD content is unknown.
//   - A message with a Problem, other than ProblemUnknownZone (which
//     leaves the header read: see HeaderRead), is wrapped: a header from what Parse found
//     (its PRI or 13, its stamp or the receive time, hostname, app-name,
//     procid and msgid), only opts.ExtraSD as structured data, and as MSG
//     every byte after a valid PRI — the whole message when the PRI was
//     missing or invalid. Nothing the sender wrote is lost, and the result
//     is valid RFC 5424.
//   - A Message built by hand (Raw nil) is written from its fields. A
//     StructuredData that is not valid is moved to the front of MSG rather
//     than dropped; loose values are escaped again, as above.
//
// Header fields are made to fit RFC 5424 §6: HOSTNAME at most 255,
// APP-NAME 48, PROCID 128 and MSGID 32 characters of printable US-ASCII;
// other bytes become '_', longer values are cut, and empty ones become "-".
// AppendRFC5424 allocates only when dst must grow.
func AppendRFC5424(dst []byte, m *Message, opts FormatOptions) []byte {
	switch {
	case m.Raw != nil && m.HeaderRead() && m.Format == FormatRFC5424:
		return appendPassthrough5424(dst, m, &opts)
	case m.Raw != nil && !m.HeaderRead():
		dst = appendHeader5424(dst, m, &opts)
		dst = append(dst, ' ')
		dst = appendExtraSD(dst, nil, opts.ExtraSD, nil)
		if body := m.Raw[m.bodyStart():]; len(body) > 0 {
			dst = append(dst, ' ')
			dst = append(dst, body...)
		}
		return dst
	}
	dst = appendHeader5424(dst, m, &opts)
	dst = append(dst, ' ')
	sd := m.StructuredData
	if len(sd) == 1 && sd[0] == nilValue {
		sd = nil
	}
	n, ok, loose := sdLen(sd)
	badSD := len(sd) > 0 && (!ok || n != len(sd))
	switch {
	case badSD:
		sd = nil
	case loose:
		sd = appendStrictSD(nil, sd) // a rare allocation: values escaped again
	}
	dst = appendExtraSD(dst, sd, opts.ExtraSD, m.Sequence)
	if len(m.Msg) > 0 || m.HasBOM || badSD {
		dst = append(dst, ' ')
		if m.HasBOM {
			dst = append(dst, bom...)
		}
		if badSD {
			dst = append(dst, m.StructuredData...)
			dst = append(dst, ' ')
		}
		dst = append(dst, m.Msg...)
	}
	return dst
}

// appendHeader5424 writes "<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID".
func appendHeader5424(dst []byte, m *Message, opts *FormatOptions) []byte {
	dst = appendPRI(dst, m)
	dst = append(dst, '1', ' ')
	if t := m.Timestamp; t.IsZero() {
		dst = append(dst, nilValue)
	} else {
		if opts.Location != nil {
			t = t.In(opts.Location)
		}
		dst = appendRFC3339(dst, t)
	}
	dst = append(dst, ' ')
	dst = appendHostname(dst, m.Hostname, opts.Hostname)
	dst = append(dst, ' ')
	dst = appendField(dst, m.AppName, maxAppName, nil)
	dst = append(dst, ' ')
	dst = appendField(dst, m.ProcID, maxProcID, nil)
	dst = append(dst, ' ')
	return appendField(dst, m.MsgID, maxMsgID, nil)
}

// appendPassthrough5424 copies a clean RFC 5424 message, splicing in a
// rewritten timestamp, the fallback hostname and the structured data when
// they must change.
func appendPassthrough5424(dst []byte, m *Message, opts *FormatOptions) []byte {
	raw := m.Raw
	newStamp := m.HasTimestamp && !strictStamp(raw[m.tsStart:m.tsEnd])
	newHost := m.Hostname == nil && opts.Hostname != ""
	newSD := len(opts.ExtraSD) > 0 || m.sdLoose
	if !newStamp && !newHost && !newSD {
		return append(dst, raw...)
	}
	if newStamp {
		dst = append(dst, raw[:m.tsStart]...)
		dst = appendRFC3339(dst, m.Timestamp.Truncate(time.Microsecond))
	} else {
		dst = append(dst, raw[:m.tsEnd]...)
	}
	if newHost {
		dst = append(dst, raw[m.tsEnd:m.hostStart]...)
		dst = appendHostname(dst, nil, opts.Hostname)
	} else {
		dst = append(dst, raw[m.tsEnd:m.hostEnd]...)
	}
	if !newSD {
		return append(dst, raw[m.hostEnd:]...)
	}
	dst = append(dst, raw[m.hostEnd:m.sdStart]...)
	sd := m.StructuredData
	if m.sdLoose {
		sd = appendStrictSD(nil, sd)
	}
	dst = appendExtraSD(dst, sd, opts.ExtraSD, nil)
	return append(dst, raw[m.sdEnd:]...)
}

// strictStamp reports whether an RFC 3339 TIMESTAMP that Parse accepted is
// also one RFC 5424 §6.2.3 allows: upper-case 'T' and 'Z', at most six
// fraction digits, no leap second. "-" is.
func strictStamp(ts []byte) bool {
	if len(ts) < 20 {
		return true // "-"; Parse took nothing shorter as a stamp
	}
	if ts[10] != 'T' || ts[17] == '6' {
		return false
	}
	i := 19
	if ts[i] == '.' {
		j := i + 1
		for j < len(ts) && isDigit(ts[j]) {
			j++
		}
		if j-i-1 > 6 {
			return false
		}
		i = j
	}
	return i < len(ts) && ts[i] != 'z'
}

// appendStrictSD writes the valid structured data sd with every
// PARAM-VALUE escaped as RFC 5424 §6.3.3 asks; the values stay the same.
func appendStrictSD(dst, sd []byte) []byte {
	it := NewSDIterator(sd)
	var val []byte
	for it.Next() {
		e := it.Element()
		dst = append(dst, '[')
		dst = append(dst, e.ID...)
		pit := e.Params()
		for pit.Next() {
			p := pit.Param()
			dst = append(dst, ' ')
			dst = append(dst, p.Name...)
			dst = append(dst, '=', '"')
			val = p.AppendValue(val[:0])
			for _, c := range val {
				if c == '"' || c == '\\' || c == ']' {
					dst = append(dst, '\\')
				}
				dst = append(dst, c)
			}
			dst = append(dst, '"')
		}
		dst = append(dst, ']')
	}
	return dst
}

// appendExtraSD writes the STRUCTURED-DATA made of sd (valid, or nil), the
// elements of extra whose SD-ID is new, and a meta element for a Cisco
// counter when nothing else brings one; "-" when that is nothing.
func appendExtraSD(dst, sd, extra, counter []byte) []byte {
	start := len(dst)
	dst = append(dst, sd...)
	it := NewSDIterator(extra)
	for it.Next() {
		e := it.Element()
		// The written part holds sd and the extras taken so far, so this
		// also drops an SD-ID that extra repeats.
		if !hasSDID(dst[start:], e.ID) {
			dst = append(dst, e.Raw...)
		}
	}
	if seq, ok := sequenceID(counter); ok && !hasSDID(dst[start:], metaID) {
		dst = append(dst, `[meta sequenceId="`...)
		dst = strconv.AppendInt(dst, seq, 10)
		dst = append(dst, `"]`...)
	}
	if len(dst) == start {
		dst = append(dst, nilValue)
	}
	return dst
}

// sequenceID turns a Cisco counter into an RFC 5424 §7.3.1 sequenceId,
// which must be 1 to 2147483647. Cisco pads counters with zeros
// ("000045"); a counter outside the range is not written.
func sequenceID(counter []byte) (int64, bool) {
	if len(counter) == 0 || len(counter) > maxCounter {
		return 0, false
	}
	var v int64
	for _, c := range counter {
		if !isDigit(c) {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, v >= 1 && v <= 2147483647
}

// appendPRI writes "<PRI>", with DefaultPRI for a value out of range.
func appendPRI(dst []byte, m *Message) []byte {
	pri := m.PRI
	if pri < 0 || pri > MaxPRI {
		pri = DefaultPRI
	}
	dst = append(dst, '<')
	dst = strconv.AppendInt(dst, int64(pri), 10)
	return append(dst, '>')
}

// appendHostname writes the hostname, the fallback when there is none, or
// "-".
func appendHostname(dst, host []byte, fallback string) []byte {
	if len(host) == 0 {
		return appendFieldString(dst, fallback, maxHostname)
	}
	return appendField(dst, host, maxHostname, nil)
}

// appendField writes v as a header field of at most max characters:
// printable US-ASCII, with any other byte and any byte in also replaced by
// '_', and "-" when v is empty.
func appendField(dst, v []byte, max int, also []byte) []byte {
	if len(v) == 0 {
		return append(dst, nilValue)
	}
	if len(v) > max {
		v = v[:max]
	}
	start := len(dst)
	dst = append(dst, v...)
	for i := start; i < len(dst); i++ {
		if c := dst[i]; c < '!' || c > '~' || contains(also, c) {
			dst[i] = '_'
		}
	}
	return dst
}

// appendFieldString is appendField for a string, without converting it.
func appendFieldString(dst []byte, v string, max int) []byte {
	if len(v) == 0 {
		return append(dst, nilValue)
	}
	if len(v) > max {
		v = v[:max]
	}
	start := len(dst)
	dst = append(dst, v...)
	for i := start; i < len(dst); i++ {
		if c := dst[i]; c < '!' || c > '~' {
			dst[i] = '_'
		}
	}
	return dst
}

func contains(set []byte, c byte) bool {
	for _, s := range set {
		if s == c {
			return true
		}
	}
	return false
}

// tagSpecials are the bytes a TAG cannot hold because they end it.
var tagSpecials = []byte{':', '[', ']'}

// pidSpecials are the bytes a PID cannot hold because they end it.
var pidSpecials = []byte{']'}

// AppendRFC3164 appends m as a BSD syslog line for legacy receivers:
//
//	<PRI>Mmm dd hh:mm:ss HOSTNAME TAG[PID]: [MSGID: ][STRUCTURED-DATA ]MSG
//
// The stamp is written in opts.Location (time.Local when nil) because a BSD
// stamp names no zone; a message without a timestamp gets the current time.
// HOSTNAME is the message's, opts.Hostname, or "-". TAG is the APP-NAME
// (48 characters at most; ':', '[', ']' and non-printable bytes become
// '_'), and PROCID goes in brackets. RFC 3164 has no place for MSGID and
// structured data, so they go in front of the content, as Junos does with
// its own MSGIDs, rather than being lost. The BOM and a Cisco counter are
// not written.
//
// A message with a Problem (HeaderRead false) keeps all its bytes: every byte after a valid
// PRI (the whole message otherwise) follows the hostname. AppendRFC3164
// allocates only when dst must grow.
func AppendRFC3164(dst []byte, m *Message, opts FormatOptions) []byte {
	dst = appendPRI(dst, m)
	t := m.Timestamp
	if t.IsZero() {
		t = time.Now()
	}
	loc := opts.Location
	if loc == nil {
		loc = time.Local
	}
	dst = appendBSDStamp(dst, t.In(loc))
	dst = append(dst, ' ')
	dst = appendHostname(dst, m.Hostname, opts.Hostname)
	dst = append(dst, ' ')
	afterHost := len(dst)
	dst = append3164Content(dst, m)
	if len(dst) == afterHost {
		dst = dst[:afterHost-1] // no content: no SP after the hostname
	}
	return dst
}

// append3164Content writes what follows the HOSTNAME in AppendRFC3164.
func append3164Content(dst []byte, m *Message) []byte {
	if m.Raw != nil && !m.HeaderRead() {
		return append(dst, m.Raw[m.bodyStart():]...)
	}
	tagged := len(m.AppName) > 0 || len(m.ProcID) > 0
	if tagged {
		dst = appendField(dst, m.AppName, maxAppName, tagSpecials)
		if len(m.ProcID) > 0 {
			dst = append(dst, '[')
			dst = appendField(dst, m.ProcID, maxProcID, pidSpecials)
			dst = append(dst, ']')
		}
		dst = append(dst, ':')
	}
	sd := m.StructuredData
	if len(sd) == 1 && sd[0] == nilValue {
		sd = nil
	}
	if len(m.MsgID) == 0 && len(sd) == 0 && len(m.Msg) == 0 {
		return dst
	}
	if tagged {
		dst = append(dst, ' ')
	}
	if len(m.MsgID) > 0 {
		dst = append(dst, m.MsgID...)
		dst = append(dst, ':')
		if len(sd) > 0 || len(m.Msg) > 0 {
			dst = append(dst, ' ')
		}
	}
	if len(sd) > 0 {
		dst = append(dst, sd...)
		if len(m.Msg) > 0 {
			dst = append(dst, ' ')
		}
	}
	return append(dst, m.Msg...)
}
