package syslog

import (
	"sync/atomic"
	"time"
)

// stamp holds the fields of a timestamp as read from a message, before
// they become a time.Time. Reading and building are separate so that a
// caller that only routes (ParseOptions.SkipTimestamp) pays for the syntax
// check but not for time.Date, the zone lookup and the year inference.
type stamp struct {
	year, month, day     int
	hour, minute, second int
	nsec                 int
	fracDigits           int  // digits of the fraction as written, 0 without one
	zulu                 bool // the offset was written "Z"
	offset               int  // seconds east of UTC, when hasOffset
	hasYear              bool // false for BSD stamps: the year is inferred
	hasOffset            bool // false: the zone is ParseOptions.Location
	mark                 byte // Cisco's '*' or '.' before a BSD stamp, or 0
	unknownZone          bool // a zone name not in zoneOffset's table: the stamp is in ParseOptions.Location
}

// maxOffsetMinutes bounds the UTC offsets a stamp may carry: RFC 3339
// allows two-digit hours and minutes, so anything up to ±23:59.
const maxOffsetMinutes = 24*60 - 1

// offsetZones caches one *time.Location per whole-minute UTC offset.
// time.FixedZone allocates, and an RFC 5424 stream from one sender repeats
// the same offset in every message; without the cache every parse of a
// stamp that is not in UTC would cost an allocation.
var offsetZones [2*maxOffsetMinutes + 1]atomic.Pointer[time.Location]

// zoneForOffset returns a fixed zone for an offset in seconds east of UTC.
func zoneForOffset(sec int) *time.Location {
	if sec == 0 {
		return time.UTC
	}
	if sec%60 != 0 || sec < -maxOffsetMinutes*60 || sec > maxOffsetMinutes*60 {
		return time.FixedZone("", sec)
	}
	slot := &offsetZones[sec/60+maxOffsetMinutes]
	if loc := slot.Load(); loc != nil {
		return loc
	}
	// Two goroutines may both build the zone; either result is equivalent.
	loc := time.FixedZone("", sec)
	slot.Store(loc)
	return loc
}

// daysIn returns the number of days of a month; a year of 0 or less than
// zero follows the proleptic Gregorian rules like time.Date does.
func daysIn(month, year int) int {
	switch month {
	case 2:
		if isLeap(year) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

func isLeap(year int) bool {
	return year%4 == 0 && (year%100 != 0 || year%400 == 0)
}

// daysFromCivil returns the number of days from 1970-01-01 to the given
// proleptic Gregorian date (Howard Hinnant's algorithm). Year inference
// compares up to nine candidate dates with it, which is much cheaper than
// building nine time.Time values with zone lookups.
func daysFromCivil(y, m, d int) int {
	if m <= 2 {
		y--
	}
	era := y
	if era < 0 {
		era -= 399
	}
	era /= 400
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

// wallSeconds counts the seconds of a wall clock reading from the epoch,
// ignoring zones. Only differences between readings in the same zone are
// meaningful.
func wallSeconds(y, mo, d, h, mi, s int) int64 {
	return int64(daysFromCivil(y, mo, d))*86400 + int64(h*3600+mi*60+s)
}

// futureMargin is how far ahead of the receive time an RFC 3164 stamp
// without a year may land. Any stamp is written in some year; inferYear
// takes the latest year that keeps the stamp no more than this ahead, so a
// stamp lands in the past or within this margin, never months ahead.
//
// 27 hours: the stamp is read in the listener's zone, and a sender in
// another zone writes its own wall clock. The farthest apart two zones in
// use are, UTC−12 and UTC+14, is 26 hours, so a stamp written at the
// moment it was sent is never more than 26 hours ahead because of its
// zone; the 27th hour covers clock skew and a daylight-saving shift. A
// smaller margin would move a "Jan  1" stamp from a sender east of the
// listener, received on Dec 31, a whole year back.
const futureMargin = 27 * time.Hour

// inferYear picks the year for a BSD stamp that has none: the latest year
// in which the stamp, read on the same wall clock as ref, is at most
// futureMargin after ref. So "Dec 31 23:59:58" received at 00:00:05 on
// Jan 1 is last year's, "Jan  1 00:00:01" received a few seconds before
// midnight on Dec 31 (a sender whose clock runs ahead) is next year's, and
// a "Feb  3" stamp received in December, or a Cisco uptime stamp
// "*Mar  1 00:00:12", is this year's, in the past. Feb 29 is in the most
// recent leap year that satisfies the rule: a message written on Feb 29
// and delivered in a common year (held in a queue through an outage) was
// written then.
//
// syslog-ng takes the receive year except across the new year (a December
// stamp in January is last year's, a January stamp in December next
// year's), which still puts a Jan 31 stamp received on Dec 1 two months
// ahead; rsyslog always takes the receive year, which puts a Dec 31 stamp
// received on Jan 1 a year ahead. This rule bounds the error both ways.
func inferYear(st *stamp, ref time.Time) int {
	ry, rmo, rd := ref.Date()
	rh, rmi, rs := ref.Clock()
	limit := wallSeconds(ry, int(rmo), rd, rh, rmi, rs) + int64(futureMargin/time.Second)
	// Only next year's stamp can be within the margin ahead, and last
	// year's always is not ahead; Feb 29 looks back to the previous leap
	// year, at most eight years back (2096 to 2104).
	for y := ry + 1; y >= ry-8; y-- {
		if st.day > daysIn(st.month, y) {
			continue
		}
		if wallSeconds(y, st.month, st.day, st.hour, st.minute, st.second) <= limit {
			return y
		}
	}
	return ry
}

// build turns a stamp into a time.Time: opts.Location is the zone of a
// stamp without an offset, and opts.Received chooses the year of a stamp
// without one. The receive time is only looked at when it is needed,
// because when the caller left it zero it costs a clock read.
func (st *stamp) build(opts *ParseOptions) time.Time {
	var loc *time.Location
	if st.hasOffset {
		loc = zoneForOffset(st.offset)
	} else {
		loc = opts.location()
	}
	year := st.year
	if !st.hasYear {
		year = inferYear(st, opts.received().In(loc))
	}
	return time.Date(year, time.Month(st.month), st.day, st.hour, st.minute, st.second, st.nsec, loc)
}

// digits2 reads two ASCII digits at b[i:i+2].
func digits2(b []byte, i int) (int, bool) {
	if i+2 > len(b) {
		return 0, false
	}
	c0, c1 := b[i]-'0', b[i+1]-'0'
	if c0 > 9 || c1 > 9 {
		return 0, false
	}
	return int(c0)*10 + int(c1), true
}

// digits4 reads four ASCII digits at b[i:i+4].
func digits4(b []byte, i int) (int, bool) {
	hi, ok1 := digits2(b, i)
	lo, ok2 := digits2(b, i+2)
	return hi*100 + lo, ok1 && ok2
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// scanFraction reads ".d…" at b[i:]. It returns the nanoseconds, the index
// after the digits, and ok=false when there is a dot without digits or
// more than nine digits (finer than a time.Time can hold; no sender is
// known to send that, so it is more likely garbage than precision). With
// no dot it returns 0, i, true.
func scanFraction(b []byte, i int) (nsec, end int, ok bool) {
	if i >= len(b) || b[i] != '.' {
		return 0, i, true
	}
	j := i + 1
	scale := 100000000
	for j < len(b) && isDigit(b[j]) {
		if j-i > 9 {
			return 0, j, false
		}
		nsec += int(b[j]-'0') * scale
		scale /= 10
		j++
	}
	return nsec, j, j > i+1
}

// validClock reports whether the time of day is in range. Second 60 is
// accepted: RFC 5424 forbids senders to use leap seconds, but a relay that
// rejected one would only lose a message over it; time.Date carries it
// into the next minute.
func (st *stamp) validClock() bool {
	return st.hour <= 23 && st.minute <= 59 && st.second <= 60
}

// scanISO reads an RFC 3339 / ISO 8601 date-time at the start of b:
//
//	YYYY-MM-DD ('T' | 't' | SP) hh:mm:ss [.frac] [ 'Z' | 'z' | ±hh:mm | ±hhmm | ±hh ]
//
// With strict (RFC 5424 §6.2.3) the separator must be 'T' or 't' and the
// offset must be 'Z' or ±hh:mm; the fraction may still have up to nine
// digits, although RFC 5424 allows six: Go programs that log with
// time.RFC3339Nano send nine, and a relay must not refuse them.
//
// n is the number of bytes read, 0 when b does not start with the shape of
// a date-time at all. valid is false when the shape is there but a value is
// out of range or a required part is missing.
func scanISO(b []byte, strict bool) (st stamp, n int, valid bool) {
	if len(b) < 19 || b[4] != '-' || b[7] != '-' || b[13] != ':' || b[16] != ':' {
		return st, 0, false
	}
	switch b[10] {
	case 'T', 't':
	case ' ':
		if strict {
			return st, 0, false
		}
	default:
		return st, 0, false
	}
	var ok [6]bool
	st.year, ok[0] = digits4(b, 0)
	st.month, ok[1] = digits2(b, 5)
	st.day, ok[2] = digits2(b, 8)
	st.hour, ok[3] = digits2(b, 11)
	st.minute, ok[4] = digits2(b, 14)
	st.second, ok[5] = digits2(b, 17)
	if ok != [6]bool{true, true, true, true, true, true} {
		return st, 0, false
	}
	st.hasYear = true
	valid = st.month >= 1 && st.month <= 12 && st.day >= 1 && st.day <= daysIn(st.month, st.year) && st.validClock()

	nsec, i, fracOK := scanFraction(b, 19)
	st.nsec, st.fracDigits = nsec, max(0, i-20)
	valid = valid && fracOK
	if i >= len(b) {
		return st, i, valid && !strict
	}
	switch c := b[i]; c {
	case 'Z', 'z':
		st.hasOffset, st.zulu = true, true
		return st, i + 1, valid
	case '+', '-':
		h, okh := digits2(b, i+1)
		if !okh {
			return st, i, false
		}
		m, end := 0, i+3
		switch {
		case end < len(b) && b[end] == ':':
			var okm bool
			m, okm = digits2(b, end+1)
			if !okm {
				return st, end, false
			}
			end += 3
		case strict:
			return st, end, false
		case end+1 < len(b) && isDigit(b[end]) && isDigit(b[end+1]):
			m, _ = digits2(b, end)
			end += 2
		}
		if h > 23 || m > 59 {
			valid = false
		}
		st.hasOffset = true
		st.offset = (h*60 + m) * 60
		if c == '-' {
			st.offset = -st.offset
		}
		return st, end, valid
	}
	return st, i, valid && !strict
}

// appendRFC3339 appends t as an RFC 5424 TIMESTAMP: RFC 3339 with at most
// six fraction digits (trailing zeros dropped) and a numeric offset, 'Z'
// for UTC. An offset with seconds (historic local mean time) cannot be
// written, so such a time is written in UTC. A year outside 0000–9999
// cannot be written either, and comes out as the NILVALUE.
//
// It does its own digit work because time.AppendFormat costs several
// times as much for this one fixed layout.
func appendRFC3339(dst []byte, t time.Time) []byte {
	_, off := t.Zone()
	if off%60 != 0 {
		off = 0
	}
	wall := t.UTC().Add(time.Duration(off) * time.Second)
	y, mo, d := wall.Date()
	h, mi, s := wall.Clock()
	if y < 0 || y > 9999 {
		return append(dst, '-')
	}
	dst = appendInt(dst, y, 4)
	dst = append(dst, '-')
	dst = appendInt(dst, int(mo), 2)
	dst = append(dst, '-')
	dst = appendInt(dst, d, 2)
	dst = append(dst, 'T')
	dst = appendInt(dst, h, 2)
	dst = append(dst, ':')
	dst = appendInt(dst, mi, 2)
	dst = append(dst, ':')
	dst = appendInt(dst, s, 2)
	if us := wall.Nanosecond() / 1000; us != 0 {
		digits := 6
		for us%10 == 0 {
			us /= 10
			digits--
		}
		dst = append(dst, '.')
		dst = appendInt(dst, us, digits)
	}
	if off == 0 {
		return append(dst, 'Z')
	}
	sign := byte('+')
	if off < 0 {
		sign, off = '-', -off
	}
	dst = append(dst, sign)
	dst = appendInt(dst, off/3600, 2)
	dst = append(dst, ':')
	return appendInt(dst, off/60%60, 2)
}

// monthNames are the BSD month abbreviations, indexed by month - 1.
var monthNames = [12]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

// appendBSDStamp appends t as an RFC 3164 TIMESTAMP, "Mmm dd hh:mm:ss"
// with the day padded by a space (§4.1.2).
func appendBSDStamp(dst []byte, t time.Time) []byte {
	_, mo, d := t.Date()
	h, mi, s := t.Clock()
	dst = append(dst, monthNames[mo-1]...)
	dst = append(dst, ' ')
	if d < 10 {
		dst = append(dst, ' ')
		dst = appendInt(dst, d, 1)
	} else {
		dst = appendInt(dst, d, 2)
	}
	dst = append(dst, ' ')
	dst = appendInt(dst, h, 2)
	dst = append(dst, ':')
	dst = appendInt(dst, mi, 2)
	dst = append(dst, ':')
	return appendInt(dst, s, 2)
}

// appendInt appends a non-negative v with at least width digits, padded
// with zeros.
func appendInt(dst []byte, v, width int) []byte {
	var buf [20]byte
	i := len(buf)
	for v >= 10 || width > 1 {
		i--
		buf[i] = byte('0' + v%10)
		v /= 10
		width--
	}
	i--
	buf[i] = byte('0' + v)
	return append(dst, buf[i:]...)
}
