package syslog

import "time"

// Format is the syslog format a message was recognized as.
type Format uint8

// The formats Parse tells apart.
const (
	// FormatUnknown: no header was recognized; the message is PRI (maybe)
	// and content.
	FormatUnknown Format = iota
	// FormatRFC3164: a BSD-style header, "<PRI>TIMESTAMP [HOSTNAME] [TAG:]",
	// including the variants Parse accepts (see Parse).
	FormatRFC3164
	// FormatRFC5424: "<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD".
	FormatRFC5424
)

// String returns "unknown", "rfc3164" or "rfc5424".
func (f Format) String() string {
	switch f {
	case FormatRFC3164:
		return "rfc3164"
	case FormatRFC5424:
		return "rfc5424"
	}
	return "unknown"
}

// Problem says why a message did not parse cleanly. The set is small and
// fixed so that its String form can be a Prometheus label, and a counter
// per listener and problem can be an array indexed by Problem.
type Problem uint8

// The problems Parse reports. A message has at most one: the first found,
// in the order its bytes are read.
const (
	// ProblemNone: the message parsed cleanly.
	ProblemNone Problem = iota
	// ProblemNoPRI: the message does not start with '<'. RFC 3164 §4.3.3:
	// the PRI is taken as 13 (user.notice) and the whole message is content.
	ProblemNoPRI
	// ProblemBadPRI: the message starts with '<' but not with a valid PRI
	// ("<192>", "<01>", "<13"); handled like ProblemNoPRI.
	ProblemBadPRI
	// ProblemNoHeader: a PRI but no recognizable header after it, e.g.
	// "<13>hello" or FortiGate's "<189>date=2024-03-01 time=…". RFC 3164
	// §4.3.2: everything after the PRI is content.
	ProblemNoHeader
	// ProblemBadTimestamp: the timestamp has the right shape but a value
	// out of range ("Feb 30", "25:00:00", an RFC 5424 stamp without an
	// offset). The rest of the header is still read.
	ProblemBadTimestamp
	// ProblemBadHeader: an RFC 5424 header field is empty, too long or not
	// printable US-ASCII, or the message ends inside the header.
	ProblemBadHeader
	// ProblemBadStructuredData: RFC 5424 STRUCTURED-DATA is malformed.
	ProblemBadStructuredData
	// ProblemUnknownZone: an RFC 3164 stamp names a zone the relay does
	// not know ("12:00:00 IST: …"); the stamp is read in the listener's
	// zone (ParseOptions.Location). Unlike the others, this problem leaves
	// the header read whole: HeaderRead is true, and formatting treats the
	// message as clean.
	ProblemUnknownZone

	numProblems
)

var problemNames = [numProblems]string{
	ProblemNone:              "none",
	ProblemNoPRI:             "no_pri",
	ProblemBadPRI:            "bad_pri",
	ProblemNoHeader:          "no_header",
	ProblemBadTimestamp:      "bad_timestamp",
	ProblemBadHeader:         "bad_header",
	ProblemBadStructuredData: "bad_structured_data",
	ProblemUnknownZone:       "unknown_zone",
}

// String returns the problem's label: "none", "no_pri", "bad_pri",
// "no_header", "bad_timestamp", "bad_header", "bad_structured_data" or
// "unknown_zone".
func (p Problem) String() string {
	if p < numProblems {
		return problemNames[p]
	}
	return "unknown"
}

// Problems returns every problem except ProblemNone, in order, so that a
// metrics package can create its label values up front.
func Problems() []Problem {
	ps := make([]Problem, 0, numProblems-1)
	for p := ProblemNone + 1; p < numProblems; p++ {
		ps = append(ps, p)
	}
	return ps
}

// Message is a parsed syslog message.
//
// The byte slices alias the input given to Parse: they are valid as long as
// those bytes are, and change if they change. A listener that parses a
// frame from a FrameReader must be done with the Message before the next
// call to Next, or copy what it keeps. Aliasing is what lets Parse work
// without allocating. A nil slice means the field is absent or was the
// NILVALUE "-".
//
// A Message may also be filled in by hand (leave Raw nil) to be formatted.
type Message struct {
	// Raw is the whole message as given to Parse.
	Raw []byte

	// PRI is the priority, 0–191; DefaultPRI (13) when HasPRI is false.
	PRI    int
	HasPRI bool

	Format Format

	// Timestamp is the sender's timestamp when HasTimestamp is true. When
	// it is false (RFC 5424 NILVALUE, no header, a bad stamp) Parse sets
	// Timestamp to ParseOptions.Received, the time RFC 3164 §4.3.2 tells a
	// relay to use instead; with ParseOptions.SkipTimestamp it stays zero.
	Timestamp    time.Time
	HasTimestamp bool
	// StampFraction is how many digits of a second the sender's stamp
	// had (0: none), and StampZulu says it wrote its UTC offset as "Z"
	// rather than in digits: what Timestamp cannot tell, and what a stamp
	// written again as the sender wrote it (rsyslog's date-rfc3339) keeps.
	StampFraction int
	StampZulu     bool

	Hostname []byte
	// AppName is the RFC 5424 APP-NAME or the RFC 3164 TAG.
	AppName []byte
	// ProcID is the RFC 5424 PROCID or the PID in an RFC 3164 "TAG[PID]:".
	ProcID []byte
	// MsgID is the RFC 5424 MSGID; RFC 3164 has none.
	MsgID []byte

	// StructuredData is the RFC 5424 STRUCTURED-DATA exactly as received
	// (one or more SD-ELEMENTs, validated, values still escaped); nil for
	// the NILVALUE and for other formats. Read it with NewSDIterator.
	StructuredData []byte

	// Msg is the MSG part (RFC 5424) or the CONTENT after the TAG
	// (RFC 3164), without the BOM when HasBOM is set. It is always a suffix
	// of Raw. When Problem is set it holds what was left where parsing
	// stopped: everything after the PRI for no_header, the malformed
	// structured data and what follows it for bad_structured_data.
	Msg []byte
	// HasBOM says the RFC 5424 MSG started with a UTF-8 BOM, which is not
	// part of Msg.
	HasBOM bool

	// Sequence is the message counter a Cisco device writes before its
	// timestamp ("<189>123: *Mar  1 …"), digits as received.
	Sequence []byte
	// ClockMark is the '*' or '.' a Cisco device writes right before an
	// RFC 3164 stamp, 0 when there is none. '*' says the device's clock is
	// not authoritative (never set, or not synchronized: "*Mar  1 00:00:12"
	// is then time since boot), '.' that it was set but has lost
	// synchronization. The mark does not make the stamp invalid: Timestamp
	// holds the stamp as written, with its year chosen like any other's,
	// and the mark stays in Raw for outputs that forward it.
	ClockMark byte

	// Problem is ProblemNone when the message parsed cleanly.
	Problem Problem

	// Offsets into Raw of the RFC 5424 TIMESTAMP, HOSTNAME and
	// STRUCTURED-DATA, so that AppendRFC5424 can rewrite a timestamp, fill
	// in a missing hostname or add elements while copying everything else
	// byte for byte.
	tsStart, tsEnd     int
	hostStart, hostEnd int
	sdStart, sdEnd     int
	// sdLoose is set when a PARAM-VALUE has a ']' or '\\' RFC 5424 wants
	// escaped (see looseValue).
	sdLoose bool
}

// Facility returns the facility code of the message's PRI.
func (m *Message) Facility() int { return Facility(m.PRI) }

// Severity returns the severity code of the message's PRI.
func (m *Message) Severity() int { return Severity(m.PRI) }

// HeaderRead reports whether Parse read the message's header whole, so
// that its fields stand for it: no problem, or only ProblemUnknownZone.
// A message without it is formatted wrapped, every byte kept.
func (m *Message) HeaderRead() bool {
	return m.Problem == ProblemNone || m.Problem == ProblemUnknownZone
}

// setProblem records p unless an earlier problem was found.
func (m *Message) setProblem(p Problem) {
	if m.Problem == ProblemNone {
		m.Problem = p
	}
}

// ParseOptions tell Parse what a message cannot: RFC 3164 stamps carry no
// year and usually no zone.
type ParseOptions struct {
	// Location is the zone of RFC 3164 stamps that name none; nil means
	// time.Local.
	Location *time.Location
	// Received is when the message arrived. It chooses the year of an RFC
	// 3164 stamp (the latest that puts the stamp at most 27 hours after
	// Received, see inferYear) and is the
	// Timestamp of a message that has none. Zero means time.Now().
	Received time.Time
	// SkipTimestamp makes Parse check the timestamp's syntax, which it
	// needs to find the fields after it, but not build a time.Time:
	// Timestamp stays zero. Routing on hostname or app-name needs no more.
	// Building the time (time.Date, the zone lookup, the year inference)
	// is more than half the cost of parsing an RFC 3164 message; for RFC
	// 5424 it is a smaller share, most of which is checking the
	// structured data.
	SkipTimestamp bool
}

func (o *ParseOptions) received() time.Time {
	if o.Received.IsZero() {
		return time.Now()
	}
	return o.Received
}

func (o *ParseOptions) location() *time.Location {
	if o.Location == nil {
		return time.Local
	}
	return o.Location
}

// setStamp records a timestamp the parser found; valid says whether its
// values are in range.
func (m *Message) setStamp(st *stamp, valid bool, opts *ParseOptions) {
	if !valid {
		m.setProblem(ProblemBadTimestamp)
		return
	}
	if st.unknownZone {
		m.setProblem(ProblemUnknownZone)
	}
	m.HasTimestamp = true
	m.StampFraction, m.StampZulu = st.fracDigits, st.zulu
	if !opts.SkipTimestamp {
		m.Timestamp = st.build(opts)
	}
}

// Parse reads the syslog message b into m, detecting its format from the
// message itself: after the PRI, "1 " starts RFC 5424; anything else is
// read as RFC 3164 and the variants seen in practice:
//
//	<34>Oct 11 22:14:15 mymachine su: 'su root' failed …    RFC 3164
//	<13>Mar  1 08:00:00 sshd[42]: …                         no hostname
//	<86>2024-03-01T08:00:00.123+01:00 web01 sshd[42]: …     RFC 3339 stamp (rsyslog)
//	<189>123: *Mar  1 00:00:00.123 UTC: %SYS-5-CONFIG_I: …  Cisco IOS counter, '*', msec, zone
//	<189>123: router1: *Mar  1 00:00:00.123 UTC: %SYS-…     … with the hostname before the stamp
//	<166>Jan 01 2024 12:00:00 asa : %ASA-6-302013: …        year in the stamp (Cisco ASA)
//	<189>: 2024 Mar  1 00:00:00 UTC: %ETHPORT-5-IF_UP: …    NX-OS
//	<165>Aug 24 05:34:00 CST 1987 mymachine myproc[10]: …   zone and year after the time
//
// Parse never fails and never drops a byte: m.Raw is b, m.Msg is a suffix
// of b, and when something is off m.Problem says what, while the fields
// before the fault are still filled in. Formatting uses Problem to decide
// whether to trust the fields (see AppendRFC5424).
//
// Parse does not allocate, and is safe for concurrent use with different
// Messages. The fields of m alias b; see Message.
func Parse(b []byte, opts ParseOptions, m *Message) {
	*m = Message{Raw: b, PRI: DefaultPRI}
	p := 0
	if pri, n, ok := ReadPRI(b); ok {
		m.PRI, m.HasPRI, p = pri, true, n
	} else if len(b) > 0 && b[0] == '<' {
		m.Problem = ProblemBadPRI
		p = badPRILen(b)
	} else {
		m.Problem = ProblemNoPRI
	}
	if p > 0 && len(b) >= p+2 && b[p] == '1' && b[p+1] == ' ' {
		parse5424(m, b, p, &opts)
	} else {
		parse3164(m, b, p, &opts)
	}
	if !m.HasTimestamp && !opts.SkipTimestamp {
		m.Timestamp = opts.received()
	}
}

// badPRILen returns the length of an invalid but PRI-shaped prefix ("<192>",
// "<0013>"), so that the header after it can still be read for routing, or
// 0 when the message does not start with one.
func badPRILen(b []byte) int {
	for i := 1; i < len(b) && i <= 7; i++ {
		switch {
		case b[i] == '>':
			return i + 1
		case !isDigit(b[i]):
			return 0
		}
	}
	return 0
}

// bodyStart returns the index in Raw where the content starts when the
// fields are not trusted: after a valid PRI, or 0.
func (m *Message) bodyStart() int {
	if !m.HasPRI {
		return 0
	}
	_, n, _ := ReadPRI(m.Raw)
	return n
}
