package syslog

// This file reads RFC 3164 (BSD) headers and the variants devices send in
// practice. RFC 3164 §4.1.2 only describes "Mmm dd hh:mm:ss HOSTNAME", and
// §4.3.2 tells a relay to treat a message with any other stamp as having
// no header; the variants below are recognized because they are common
// enough that doing so would hide the sender's own timestamp and hostname
// from routing and from RFC 5424 conversion.

// Limits on the tokens the BSD parser accepts as header fields. A token
// that breaks them is left in the content instead, so recognizing a header
// never loses information that RFC 5424 formatting would have to cut.
const (
	maxHostname = 255 // RFC 5424 §6.2.4
	maxAppName  = 48  // RFC 5424 §6.2.5; RFC 3164 §4.1.3 allows only 32 for a TAG, but longer tags are common
	maxProcID   = 128 // RFC 5424 §6.2.6
	maxMsgID    = 32  // RFC 5424 §6.2.7
	maxCounter  = 10  // digits of a Cisco message counter
)

// parse3164 reads a BSD header from b[p:], where p is the index after the
// PRI (0 when there is none), and fills m. It never fails: without a
// recognizable timestamp the whole of b[p:] is content and m.Problem says
// no_header.
func parse3164(m *Message, b []byte, p int, opts *ParseOptions) {
	st, end, valid, ok := findBSDStamp(b, p, m)
	if !ok {
		m.setProblem(ProblemNoHeader)
		m.Msg = b[p:]
		return
	}
	m.Format = FormatRFC3164
	m.ClockMark = st.mark
	m.setStamp(&st, valid, opts)

	switch {
	case end == len(b):
		m.Msg = b[end:]
		return
	case b[end] == ':':
		// Cisco style: the stamp ends with ':' and no hostname follows
		// (it came before the stamp, if at all). The "%FAC-SEV-MNEMONIC:"
		// that follows is kept in the content, as Cisco's own RFC 5424
		// output does, rather than taken for a TAG.
		end++
		if end < len(b) && b[end] == ' ' {
			end++
		}
		m.Msg = b[end:]
		return
	}

	// b[end] is SP: HOSTNAME, unless the first token already looks like a
	// TAG ("sshd[42]:", "kernel:"), which is how senders that write to a
	// local socket leave the hostname out.
	i := end + 1
	tokEnd := i
	for tokEnd < len(b) && b[tokEnd] != ' ' {
		tokEnd++
	}
	if tok := b[i:tokEnd]; isHostToken(tok) {
		m.Hostname = notNil(tok)
		i = tokEnd
		if i < len(b) {
			i++
		}
	}
	if app, pid, after, ok := scanTag(b, i); ok {
		m.AppName, m.ProcID = app, pid
		i = after
	}
	m.Msg = b[i:]
}

// findBSDStamp looks for a BSD timestamp at b[p:], first directly and then
// after the prefixes Cisco devices put in front of it: NX-OS's ": ", one or
// two message counters ("123: ", "000045: "), and a hostname followed by
// ": " ("router1: "). A prefix is only taken when a timestamp follows it, so
// "<13>42: answer" stays content. On success it records the counter and
// hostname in m and returns the stamp, the index just after it (len(b),
// SP or ':'), and whether its values are in range.
func findBSDStamp(b []byte, p int, m *Message) (st stamp, end int, valid, ok bool) {
	if st, n, valid := scanBSDStamp(b[p:]); n > 0 {
		return st, p + n, valid, true
	}
	q := p
	if q+1 < len(b) && b[q] == ':' && b[q+1] == ' ' {
		q += 2
	}
	var counter []byte
	for range 2 {
		n := 0
		for q+n < len(b) && n <= maxCounter && isDigit(b[q+n]) {
			n++
		}
		if n == 0 || n > maxCounter || q+n+1 >= len(b) || b[q+n] != ':' || b[q+n+1] != ' ' {
			break
		}
		if counter == nil {
			counter = b[q : q+n]
		}
		q += n + 2
	}
	if st, n, valid := scanBSDStamp(b[q:]); n > 0 {
		m.Sequence = counter
		return st, q + n, valid, true
	}
	// A hostname and ": " between the counter and the stamp, as IOS writes
	// it with "logging origin-id hostname".
	h := q
	for h < len(b) && h-q <= maxHostname && b[h] > ' ' && b[h] <= '~' && b[h] != ':' {
		h++
	}
	if h == q || h-q > maxHostname || h+1 >= len(b) || b[h] != ':' || b[h+1] != ' ' {
		return st, 0, false, false
	}
	if st, n, valid := scanBSDStamp(b[h+2:]); n > 0 {
		m.Sequence = counter
		m.Hostname = notNil(b[q:h])
		return st, h + 2 + n, valid, true
	}
	return st, 0, false, false
}

// scanBSDStamp reads a timestamp at the start of b in one of the forms
// seen in BSD-style messages:
//
//	Mmm dd hh:mm:ss            RFC 3164; the day may be " 1", "01" or "1"
//	Mmm dd YYYY hh:mm:ss       Cisco ASA, IOS with "service timestamps … year"
//	YYYY Mmm dd hh:mm:ss       NX-OS; only when a ':' follows, see below
//	YYYY-MM-DDThh:mm:ss…       RFC 3339 / ISO 8601, e.g. rsyslog's forward format
//
// optionally preceded by Cisco's '*' (clock not authoritative: never set,
// or not synchronized; the stamp may count from boot) or '.' (clock set but
// synchronization lost), which is returned in st.mark and changes nothing
// else: the stamp is read, checked and given a year like any other. And,
// except for ISO stamps, followed by a
// fraction (".123") and a zone name ("UTC", "CET"), which may itself be
// followed by a year ("CST 1987", as date(1) prints and RFC 3164 §5.4
// example 3 shows).
//
// n is 0 unless b starts with one of these shapes followed by the end of
// b, SP or ':'. valid is false when the shape is there but a value is out
// of range; the caller reports bad_timestamp but still reads the header.
func scanBSDStamp(b []byte) (st stamp, n int, valid bool) {
	i := 0
	var mark byte
	if len(b) > 0 && (b[0] == '*' || b[0] == '.') {
		i, mark = 1, b[0]
	}
	c := b[i:]
	if len(c) < 14 {
		return st, 0, false
	}
	var j int
	yearFirst := false
	switch {
	case isDigit(c[0]):
		if iso, m, ok := scanISO(c, false); m > 0 {
			st, j, valid = iso, m, ok
			break
		}
		// "YYYY Mmm dd hh:mm:ss"
		y, ok := digits4(c, 0)
		if !ok || c[4] != ' ' {
			return st, 0, false
		}
		m, d, k, ok := scanMonthDay(c, 5)
		if !ok {
			return st, 0, false
		}
		st.year, st.hasYear, st.month, st.day = y, true, m, d
		if j, ok = scanClock(c, k, &st); !ok {
			return st, 0, false
		}
		yearFirst = true
		valid = true
	default:
		m, d, k, ok := scanMonthDay(c, 0)
		if !ok {
			return st, 0, false
		}
		st.month, st.day = m, d
		// An optional year between day and time: four digits and SP
		// cannot be the start of "hh:mm:ss".
		if y, ok := digits4(c, k); ok && k+4 < len(c) && c[k+4] == ' ' {
			st.year, st.hasYear = y, true
			k += 5
		}
		if j, ok = scanClock(c, k, &st); !ok {
			return st, 0, false
		}
		valid = true
	}
	if !st.hasOffset {
		j = scanZoneName(c, j, &st)
	}
	if j < len(c) && c[j] != ' ' && c[j] != ':' {
		return st, 0, false
	}
	if yearFirst && (j >= len(c) || c[j] != ':') {
		// RFC 3164 §5.4 example 4 ("1990 Oct 22 10:52:01 TZ-6 …") is a
		// message a relay must not read as having a timestamp; only NX-OS,
		// whose stamp ends with ':', uses the year-first form.
		return st, 0, false
	}
	if st.day < 1 || st.day > daysIn(st.month, 2000) || !st.validClock() {
		valid = false
	}
	if st.hasYear && st.day > daysIn(st.month, st.year) {
		valid = false
	}
	st.mark = mark
	return st, i + j, valid
}

// scanMonthDay reads "Mmm dd " at c[i:] with the day as " d", "dd" or "d".
// The month name is matched without regard to case. It returns the month,
// the day, and the index after the SP that follows the day.
func scanMonthDay(c []byte, i int) (month, day, end int, ok bool) {
	if i+6 > len(c) || c[i+3] != ' ' {
		return 0, 0, 0, false
	}
	month = lookupMonth(c[i], c[i+1], c[i+2])
	if month == 0 {
		return 0, 0, 0, false
	}
	k := i + 4
	switch {
	case c[k] == ' ' && isDigit(c[k+1]):
		day, k = int(c[k+1]-'0'), k+2
	case isDigit(c[k]) && k+1 < len(c) && isDigit(c[k+1]):
		day, k = int(c[k]-'0')*10+int(c[k+1]-'0'), k+2
	case isDigit(c[k]):
		day, k = int(c[k]-'0'), k+1
	default:
		return 0, 0, 0, false
	}
	if k >= len(c) || c[k] != ' ' {
		return 0, 0, 0, false
	}
	return month, day, k + 1, true
}

// lookupMonth returns 1–12 for a three-letter English month abbreviation
// in any case, 0 for anything else. OR-ing 0x20 lowers ASCII letters and
// cannot turn any other byte into a lowercase letter.
func lookupMonth(a, b, c byte) int {
	key := uint32(a|0x20)<<16 | uint32(b|0x20)<<8 | uint32(c|0x20)
	switch key {
	case 'j'<<16 | 'a'<<8 | 'n':
		return 1
	case 'f'<<16 | 'e'<<8 | 'b':
		return 2
	case 'm'<<16 | 'a'<<8 | 'r':
		return 3
	case 'a'<<16 | 'p'<<8 | 'r':
		return 4
	case 'm'<<16 | 'a'<<8 | 'y':
		return 5
	case 'j'<<16 | 'u'<<8 | 'n':
		return 6
	case 'j'<<16 | 'u'<<8 | 'l':
		return 7
	case 'a'<<16 | 'u'<<8 | 'g':
		return 8
	case 's'<<16 | 'e'<<8 | 'p':
		return 9
	case 'o'<<16 | 'c'<<8 | 't':
		return 10
	case 'n'<<16 | 'o'<<8 | 'v':
		return 11
	case 'd'<<16 | 'e'<<8 | 'c':
		return 12
	}
	return 0
}

// scanClock reads "hh:mm:ss[.frac]" at c[i:] into st.
func scanClock(c []byte, i int, st *stamp) (end int, ok bool) {
	if i+8 > len(c) || c[i+2] != ':' || c[i+5] != ':' {
		return 0, false
	}
	var ok1, ok2, ok3 bool
	st.hour, ok1 = digits2(c, i)
	st.minute, ok2 = digits2(c, i+3)
	st.second, ok3 = digits2(c, i+6)
	if !ok1 || !ok2 || !ok3 {
		return 0, false
	}
	nsec, end, ok := scanFraction(c, i+8)
	if !ok {
		return 0, false
	}
	st.nsec, st.fracDigits = nsec, max(0, end-(i+9))
	return end, true
}

// scanZoneName reads an optional " ZONE" after a BSD stamp at c[j:] and
// returns the index after it.
//
// A name from the zoneOffset table gives the stamp its offset, and may be
// followed by " YYYY". An unknown name of capital letters is taken as a
// zone only when ':' follows it, as in Cisco's "… 00:00:00.123 MEZ: %SYS…":
// IOS lets the administrator name the zone anything, and the ':' makes it
// certain the token is not a hostname. Such a stamp keeps the listener's
// zone (ParseOptions.Location), which is the zone the operator said that
// listener's senders use, and the message reports ProblemUnknownZone, so
// that a sender whose zone the relay does not know is counted.
//
// The risk the table takes: a host literally named "UTC" or "EST" after a
// stamp is read as a zone.
func scanZoneName(c []byte, j int, st *stamp) int {
	const maxZoneName = 6
	if j+1 >= len(c) || c[j] != ' ' {
		return j
	}
	start := j + 1
	k := start
	for k < len(c) && k-start <= maxZoneName && c[k] >= 'A' && c[k] <= 'Z' {
		k++
	}
	if k == start || k-start > maxZoneName {
		return j
	}
	off, known := zoneOffset(c[start:k])
	if !known {
		if k < len(c) && c[k] == ':' {
			st.unknownZone = true
			return k
		}
		return j
	}
	if k < len(c) && c[k] != ' ' && c[k] != ':' {
		return j
	}
	st.offset, st.hasOffset = off, true
	if !st.hasYear && k+5 <= len(c) && c[k] == ' ' {
		if y, ok := digits4(c, k+1); ok && (k+5 == len(c) || c[k+5] == ' ' || c[k+5] == ':') {
			st.year, st.hasYear = y, true
			k += 5
		}
	}
	return k
}

// zoneOffset maps the zone abbreviations that devices print after their
// stamps to offsets in seconds. Ambiguous names take their most common
// meaning among network devices: CST and CDT are US Central, IST is not
// listed (India, Ireland and Israel all use it).
func zoneOffset(name []byte) (int, bool) {
	const h = 3600
	switch string(name) {
	case "UTC", "UT", "GMT", "Z", "WET":
		return 0, true
	case "CET", "MET", "MEZ", "WEST", "BST":
		return 1 * h, true
	case "CEST", "MEST", "MESZ", "EET", "SAST":
		return 2 * h, true
	case "EEST", "MSK":
		return 3 * h, true
	case "WIB":
		return 7 * h, true
	case "HKT", "SGT", "AWST":
		return 8 * h, true
	case "JST", "KST":
		return 9 * h, true
	case "ACST":
		return 9*h + 30*60, true
	case "AEST":
		return 10 * h, true
	case "ACDT":
		return 10*h + 30*60, true
	case "AEDT":
		return 11 * h, true
	case "NZST":
		return 12 * h, true
	case "NZDT":
		return 13 * h, true
	case "NDT":
		return -2*h - 30*60, true
	case "ADT":
		return -3 * h, true
	case "NST":
		return -3*h - 30*60, true
	case "AST", "EDT":
		return -4 * h, true
	case "EST", "CDT":
		return -5 * h, true
	case "CST", "MDT":
		return -6 * h, true
	case "MST", "PDT":
		return -7 * h, true
	case "PST", "AKDT":
		return -8 * h, true
	case "AKST":
		return -9 * h, true
	case "HST":
		return -10 * h, true
	}
	return 0, false
}

// notNil returns tok, or nil when it is empty or "-". A BSD header field
// of "-" carries nothing, and as an RFC 5424 field it would read back as
// the NILVALUE, so Parse reports it as absent, like RFC 5424's own.
func notNil(tok []byte) []byte {
	if len(tok) == 0 || (len(tok) == 1 && tok[0] == '-') {
		return nil
	}
	return tok
}

// isHostToken reports whether the first token after a BSD stamp is a
// HOSTNAME: 1–255 printable US-ASCII characters that do not look like a
// TAG (no '[', no ':' at the end). IPv6 addresses contain ':' but do not
// end with one, except "::"-terminated ones, which are rare enough to risk.
func isHostToken(tok []byte) bool {
	if len(tok) == 0 || len(tok) > maxHostname || tok[len(tok)-1] == ':' {
		return false
	}
	for _, c := range tok {
		if c < '!' || c > '~' || c == '[' {
			return false
		}
	}
	return true
}

// scanTag reads a TAG at b[i:]: "name:", "name[pid]:" or "name[pid]"
// followed by SP or the end, where name is 1–48 printable characters other
// than ':', '[' and ']', and pid 1–128 printable characters other than
// ']'. A lone ": " (Cisco ASA's "host : %ASA-…") is consumed with no tag,
// and so is the name "-".
// It returns the index where the content starts: after the ':' and one SP.
//
// A word followed by ':' and something other than SP ("http://…") is not a
// tag, so a URL or a clock time at the start of the content stays there.
func scanTag(b []byte, i int) (app, pid []byte, after int, ok bool) {
	j := i
	for j < len(b) && j-i <= maxAppName {
		c := b[j]
		if c < '!' || c > '~' || c == ':' || c == '[' || c == ']' {
			break
		}
		j++
	}
	if j-i > maxAppName || j >= len(b) {
		return nil, nil, 0, false
	}
	// "-" is no name: it is what a NILVALUE APP-NAME becomes in BSD
	// output ("-[42]: …"), and as an RFC 5424 APP-NAME it would read back
	// as absent.
	app = notNil(b[i:j])
	switch b[j] {
	case ':':
		if j+1 < len(b) && b[j+1] != ' ' {
			return nil, nil, 0, false
		}
	case '[':
		if j == i {
			return nil, nil, 0, false
		}
		k := j + 1
		for k < len(b) && k-j <= maxProcID && b[k] != ']' && b[k] >= '!' && b[k] <= '~' {
			k++
		}
		if k == j+1 || k-j > maxProcID || k >= len(b) || b[k] != ']' {
			return nil, nil, 0, false
		}
		pid = notNil(b[j+1 : k])
		j = k + 1
		if j < len(b) && b[j] != ':' && b[j] != ' ' {
			return nil, nil, 0, false
		}
		if j < len(b) && b[j] == ':' && j+1 < len(b) && b[j+1] != ' ' {
			return nil, nil, 0, false
		}
	default:
		return nil, nil, 0, false
	}
	// b[j] is ':', SP or the end.
	if j < len(b) && b[j] == ':' {
		j++
	}
	if j < len(b) && b[j] == ' ' {
		j++
	}
	return app, pid, j, true
}
