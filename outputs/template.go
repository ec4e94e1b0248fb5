package outputs

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/relay-syslog/relay/internal/syslog"
	"github.com/relay-syslog/relay/queue"
)

// A Template lays out a line, or a file path, from the fields of a parsed
// message: literal text with field names in braces, such as
// "{timestamp} {hostname} {app_name}: {message}". "{{" and "}}" stand for
// literal braces. A Template is compiled once, when the configuration is
// loaded, so that an unknown field is a configuration error and rendering
// is a walk over a slice.
type Template struct {
	src  string
	segs []segment
}

type segment struct {
	field field // fieldLiteral: lit is the text
	lit   string
}

type field uint8

const (
	fieldLiteral field = iota
	fieldTimestamp
	fieldTimestampBSD
	fieldReceived
	fieldHostname
	fieldAppName
	fieldProcID
	fieldMsgID
	fieldTag
	fieldPRI
	fieldFacility
	fieldFacilityCode
	fieldSeverity
	fieldSeverityCode
	fieldStructuredData
	fieldMessage
	fieldRaw
	fieldSource
	fieldListener
	fieldDate
	fieldYear
	fieldMonth
	fieldDay
	fieldHour
	fieldMinute
	fieldMsgDate
	fieldMsgYear
	fieldMsgMonth
	fieldMsgDay
	fieldMsgHour
	fieldMsgMinute
	numFields
)

// fieldNames are the names a template may use, indexed by field; their
// meaning is documented in docs/configuration.md (Templates).
var fieldNames = [numFields]string{
	fieldTimestamp:      "timestamp",
	fieldTimestampBSD:   "timestamp_bsd",
	fieldReceived:       "received",
	fieldHostname:       "hostname",
	fieldAppName:        "app_name",
	fieldProcID:         "procid",
	fieldMsgID:          "msgid",
	fieldTag:            "tag",
	fieldPRI:            "pri",
	fieldFacility:       "facility",
	fieldFacilityCode:   "facility_code",
	fieldSeverity:       "severity",
	fieldSeverityCode:   "severity_code",
	fieldStructuredData: "structured_data",
	fieldMessage:        "message",
	fieldRaw:            "raw",
	fieldSource:         "source",
	fieldListener:       "listener",
	fieldDate:           "date",
	fieldYear:           "year",
	fieldMonth:          "month",
	fieldDay:            "day",
	fieldHour:           "hour",
	fieldMinute:         "minute",
	fieldMsgDate:        "msg_date",
	fieldMsgYear:        "msg_year",
	fieldMsgMonth:       "msg_month",
	fieldMsgDay:         "msg_day",
	fieldMsgHour:        "msg_hour",
	fieldMsgMinute:      "msg_minute",
}

// TemplateFields returns the field names a template may use, in the order
// the documentation lists them.
func TemplateFields() []string { return append([]string(nil), fieldNames[1:]...) }

// ParseTemplate compiles s. An unknown field name, an unclosed brace or a
// template without any text is an error.
func ParseTemplate(s string) (*Template, error) {
	if s == "" {
		return nil, errors.New("is empty")
	}
	t := &Template{src: s}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.segs = append(t.segs, segment{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '{' && i+1 < len(s) && s[i+1] == '{', c == '}' && i+1 < len(s) && s[i+1] == '}':
			lit.WriteByte(c)
			i++
		case c == '{':
			end := strings.IndexByte(s[i+1:], '}')
			if end < 0 {
				return nil, fmt.Errorf("unclosed { at byte %d: write {{ for a literal brace", i)
			}
			name := s[i+1 : i+1+end]
			f := lookupField(name)
			if f == fieldLiteral {
				return nil, fmt.Errorf("unknown field {%s}: use %s", name, fieldList())
			}
			flush()
			t.segs = append(t.segs, segment{field: f})
			i += end + 1
		case c == '}':
			return nil, fmt.Errorf("unmatched } at byte %d: write }} for a literal brace", i)
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	return t, nil
}

func lookupField(name string) field {
	for f := fieldLiteral + 1; f < numFields; f++ {
		if fieldNames[f] == name {
			return f
		}
	}
	return fieldLiteral
}

func fieldList() string {
	names := make([]string, 0, numFields-1)
	for _, n := range fieldNames[1:] {
		names = append(names, "{"+n+"}")
	}
	return strings.Join(names, " ")
}

// String returns the template as written.
func (t *Template) String() string { return t.src }

// HasFields reports whether the template names any field; a path without
// fields is one fixed file.
func (t *Template) HasFields() bool {
	for _, s := range t.segs {
		if s.field != fieldLiteral {
			return true
		}
	}
	return false
}

// literal returns the text of a template without fields.
func (t *Template) literal() string {
	var b strings.Builder
	for _, s := range t.segs {
		b.WriteString(s.lit)
	}
	return b.String()
}

// fieldValues is what a template is rendered from: one parsed message and
// its queue entry.
type fieldValues struct {
	msg   *syslog.Message
	entry *queue.Entry
	// ip is the sender's address (invalid when unknown).
	ip netip.Addr
	// hostname is written for {hostname} when the message has none
	// (the sender's address, when the listener fills hostnames in).
	hostname string
	// loc is the zone of a message's timestamp when it names none.
	loc *time.Location
}

// timestampLayout is RFC 3339 with the fraction the message has, up to
// microseconds.
const timestampLayout = "2006-01-02T15:04:05.999999Z07:00"

// stampLayouts are the layouts of {timestamp}, as rsyslog's date-rfc3339
// writes a stamp: with as many digits of a second as the sender wrote, up
// to six, and the offset in digits ("+00:00" in UTC) unless the sender
// wrote "Z" (index 1). The receive time, when the message has no stamp,
// has six digits, as rsyslog's own stamps do.
var stampLayouts = func() (l [2][7]string) {
	for z, offset := range []string{"-07:00", "Z07:00"} {
		for d := range l[z] {
			frac := ""
			if d > 0 {
				frac = "." + strings.Repeat("0", d)
			}
			l[z][d] = "2006-01-02T15:04:05" + frac + offset
		}
	}
	return l
}()

// appendField appends the value of f. A value the message does not have is
// empty, except where the documentation says otherwise ("-" for
// structured data, as RFC 5424 writes it).
func (v *fieldValues) appendField(dst []byte, f field) []byte {
	m := v.msg
	switch f {
	case fieldTimestamp:
		if !v.msg.HasTimestamp {
			return v.msgTime().AppendFormat(dst, stampLayouts[0][6])
		}
		zulu := 0
		if v.msg.StampZulu {
			zulu = 1
		}
		return v.msgTime().AppendFormat(dst, stampLayouts[zulu][min(v.msg.StampFraction, 6)])
	case fieldTimestampBSD:
		return v.msgTime().AppendFormat(dst, time.Stamp)
	case fieldReceived:
		return v.entry.Received.AppendFormat(dst, timestampLayout)
	case fieldHostname:
		if len(m.Hostname) > 0 {
			return append(dst, m.Hostname...)
		}
		return append(dst, v.hostname...)
	case fieldAppName:
		return append(dst, m.AppName...)
	case fieldProcID:
		return append(dst, m.ProcID...)
	case fieldMsgID:
		return append(dst, m.MsgID...)
	case fieldTag:
		if len(m.AppName) == 0 && len(m.ProcID) == 0 {
			return dst
		}
		dst = append(dst, m.AppName...)
		if len(m.ProcID) > 0 {
			dst = append(dst, '[')
			dst = append(dst, m.ProcID...)
			dst = append(dst, ']')
		}
		// As rsyslog's %syslogtag%: an RFC 5424 message has no TAG, and
		// the one made of its fields has no colon.
		if m.Format == syslog.FormatRFC5424 {
			return dst
		}
		return append(dst, ':')
	case fieldPRI:
		return strconv.AppendInt(dst, int64(m.PRI), 10)
	case fieldFacility:
		return append(dst, FacilityName(m.Facility())...)
	case fieldFacilityCode:
		return strconv.AppendInt(dst, int64(m.Facility()), 10)
	case fieldSeverity:
		return append(dst, SeverityName(m.Severity())...)
	case fieldSeverityCode:
		return strconv.AppendInt(dst, int64(m.Severity()), 10)
	case fieldStructuredData:
		if len(m.StructuredData) == 0 {
			return append(dst, '-')
		}
		return append(dst, m.StructuredData...)
	case fieldMessage:
		if !m.HeaderRead() {
			return append(dst, m.Raw[bodyStart(m):]...)
		}
		return append(dst, m.Msg...)
	case fieldRaw:
		return append(dst, m.Raw...)
	case fieldSource:
		if v.ip.IsValid() {
			return v.ip.AppendTo(dst)
		}
		return append(dst, v.entry.Source...)
	case fieldListener:
		return append(dst, v.entry.Listener...)
	case fieldDate, fieldYear, fieldMonth, fieldDay, fieldHour, fieldMinute:
		return appendDatePart(dst, v.entry.Received.In(time.Local), f-fieldDate)
	case fieldMsgDate, fieldMsgYear, fieldMsgMonth, fieldMsgDay, fieldMsgHour, fieldMsgMinute:
		return appendDatePart(dst, v.msgTime(), f-fieldMsgDate)
	}
	return dst
}

// msgTime is the message's timestamp (the receive time when it has none) in
// its own zone.
func (v *fieldValues) msgTime() time.Time {
	t := v.msg.Timestamp
	if t.IsZero() {
		t = v.entry.Received.In(v.loc)
	}
	return t
}

// appendDatePart appends part (0 date, 1 year, 2 month, 3 day, 4 hour,
// 5 minute) of t, zero-padded.
func appendDatePart(dst []byte, t time.Time, part field) []byte {
	switch part {
	case 0:
		return t.AppendFormat(dst, "2006-01-02")
	case 1:
		return t.AppendFormat(dst, "2006")
	case 2:
		return t.AppendFormat(dst, "01")
	case 3:
		return t.AppendFormat(dst, "02")
	case 4:
		return t.AppendFormat(dst, "15")
	}
	return t.AppendFormat(dst, "04")
}

// bodyStart is where the content of a message that did not parse starts:
// after a valid PRI, or at its first byte.
func bodyStart(m *syslog.Message) int {
	if !m.HasPRI {
		return 0
	}
	_, n, _ := syslog.ReadPRI(m.Raw)
	return n
}

// appendLine renders the template as a line (or a message, for a network
// output): field values as they are.
func (t *Template) appendLine(dst []byte, v *fieldValues) []byte {
	for _, s := range t.segs {
		if s.field == fieldLiteral {
			dst = append(dst, s.lit...)
		} else {
			dst = v.appendField(dst, s.field)
		}
	}
	return dst
}

// MaxPathElement is the longest a path element made from fields may be, in
// bytes: NAME_MAX of Linux and most file systems.
const MaxPathElement = 255

// appendPath renders the template as a file path, making what the fields
// put in it safe: a field cannot add a '/', a control byte or NUL (each
// becomes '_'), an empty value becomes "_", an element that a field made
// "." or ".." has its dots replaced by '_', and an element is cut to
// MaxPathElement bytes. The literal parts are the administrator's and kept
// as written (ParsePathTemplate refuses "." and ".." elements in them), so
// a rendered path always stays inside the directory its literal prefix
// names.
func (t *Template) appendPath(dst []byte, v *fieldValues) []byte {
	start := len(dst)
	for _, s := range t.segs {
		if s.field == fieldLiteral {
			dst = append(dst, s.lit...)
			continue
		}
		from := len(dst)
		dst = v.appendField(dst, s.field)
		if len(dst) == from {
			dst = append(dst, '_')
			continue
		}
		for i := from; i < len(dst); i++ {
			if c := dst[i]; c == '/' || c < 0x20 || c == 0x7f {
				dst[i] = '_'
			}
		}
	}
	return fixPathElements(dst, start)
}

// fixPathElements replaces the dots of "." and ".." elements of
// dst[start:] and cuts elements longer than MaxPathElement.
func fixPathElements(dst []byte, start int) []byte {
	out := start
	i := start
	for i <= len(dst) {
		j := i
		for j < len(dst) && dst[j] != '/' {
			j++
		}
		elem := dst[i:j]
		if string(elem) == "." || string(elem) == ".." {
			for k := range elem {
				elem[k] = '_'
			}
		}
		n := min(len(elem), MaxPathElement)
		out += copy(dst[out:], elem[:n])
		if j < len(dst) {
			dst[out] = '/'
			out++
		}
		i = j + 1
	}
	return dst[:out]
}

// ParsePathTemplate compiles a file output's path. Besides what
// ParseTemplate checks, no literal element may be "." or "..", so that the
// directory a path names does not depend on the fields.
func ParsePathTemplate(s string) (*Template, error) {
	t, err := ParseTemplate(s)
	if err != nil {
		return nil, err
	}
	if !t.HasFields() {
		return t, nil
	}
	for _, s := range t.segs {
		if s.field != fieldLiteral {
			continue
		}
		for _, e := range strings.Split(s.lit, "/") {
			if e == "." || e == ".." {
				return nil, fmt.Errorf("has a %q element: name the directory without it", e)
			}
		}
	}
	return t, nil
}

// facilityNames and severityNames are the names RFC 5424 §6.2.1 and
// rsyslog give the codes, as {facility} and {severity} and the JSON format
// write them.
var (
	facilityNames = [24]string{"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
		"uucp", "cron", "authpriv", "ftp", "ntp", "security", "console", "solaris-cron",
		"local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"}
	severityNames = [8]string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}
)

// FacilityName returns the name of facility code f.
func FacilityName(f int) string {
	if f >= 0 && f < len(facilityNames) {
		return facilityNames[f]
	}
	return strconv.Itoa(f)
}

// SeverityName returns the name of severity code s.
func SeverityName(s int) string {
	if s >= 0 && s < len(severityNames) {
		return severityNames[s]
	}
	return strconv.Itoa(s)
}
