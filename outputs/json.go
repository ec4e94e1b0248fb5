package outputs

import (
	"strconv"
	"unicode/utf8"

	"github.com/relay-syslog/relay/internal/syslog"
)

// jsonWriter writes messages as JSON objects for format = "json". Its maps
// and slices group structured data and are reused from message to message.
type jsonWriter struct {
	params  []sdParam
	ids     map[string]int // SD-ID -> index in order
	order   []sdGroup
	scratch []byte
}

type sdParam struct {
	id, name, value []byte
}

type sdGroup struct {
	id     []byte
	params []int // indexes into params, in order of appearance
}

// appendJSON appends one JSON object for the message v holds, without a
// line end. Every string is valid UTF-8 in the output: bytes that are not
// are written as U+FFFD, so any input gives valid JSON. The keys are
// documented in docs/configuration.md (format = "json").
func (j *jsonWriter) appendJSON(dst []byte, v *fieldValues, stamp *jsonStamp) []byte {
	m := v.msg
	dst = append(dst, `{"timestamp":"`...)
	// Not {timestamp}, which writes a stamp as rsyslog's templates do:
	// here UTC is "Z", as in "received".
	dst = v.msgTime().AppendFormat(dst, timestampLayout)
	dst = append(dst, `","received":"`...)
	dst = v.appendField(dst, fieldReceived)
	dst = append(dst, '"')
	dst = j.appendStringField(dst, "hostname", v, fieldHostname)
	dst = j.appendOptional(dst, "app_name", m.AppName)
	dst = j.appendOptional(dst, "procid", m.ProcID)
	dst = j.appendOptional(dst, "msgid", m.MsgID)
	dst = append(dst, `,"facility":"`...)
	dst = append(dst, FacilityName(m.Facility())...)
	dst = append(dst, `","facility_code":`...)
	dst = strconv.AppendInt(dst, int64(m.Facility()), 10)
	dst = append(dst, `,"severity":"`...)
	dst = append(dst, SeverityName(m.Severity())...)
	dst = append(dst, `","severity_code":`...)
	dst = strconv.AppendInt(dst, int64(m.Severity()), 10)
	if m.HeaderRead() && len(m.StructuredData) > 0 {
		dst = j.appendSD(dst, m.StructuredData)
	}
	dst = append(dst, `,"message":`...)
	if !m.HeaderRead() {
		dst = appendJSONString(dst, m.Raw[bodyStart(m):])
		dst = append(dst, `,"problem":"`...)
		dst = append(dst, m.Problem.String()...)
		dst = append(dst, `","raw":`...)
		dst = appendJSONString(dst, m.Raw)
	} else {
		dst = appendJSONString(dst, m.Msg)
	}
	dst = j.appendStringField(dst, "source", v, fieldSource)
	dst = j.appendStringField(dst, "listener", v, fieldListener)
	if stamp != nil {
		dst = append(dst, `,"relay":{"origin":`...)
		dst = appendJSONString(dst, []byte(stamp.origin))
		dst = append(dst, `,"epoch":`...)
		dst = strconv.AppendUint(dst, uint64(stamp.epoch), 10)
		dst = append(dst, `,"seq":`...)
		dst = strconv.AppendUint(dst, stamp.seq, 10)
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

// jsonStamp is the relay's stamp of a message, written as "relay".
type jsonStamp struct {
	origin string
	epoch  uint32
	seq    uint64
}

func (j *jsonWriter) appendStringField(dst []byte, key string, v *fieldValues, f field) []byte {
	j.scratch = v.appendField(j.scratch[:0], f)
	if len(j.scratch) == 0 {
		return dst
	}
	dst = append(dst, ',', '"')
	dst = append(dst, key...)
	dst = append(dst, '"', ':')
	return appendJSONString(dst, j.scratch)
}

func (j *jsonWriter) appendOptional(dst []byte, key string, val []byte) []byte {
	if len(val) == 0 {
		return dst
	}
	dst = append(dst, ',', '"')
	dst = append(dst, key...)
	dst = append(dst, '"', ':')
	return appendJSONString(dst, val)
}

// appendSD writes "structured_data": an object of SD-IDs, each an object
// of parameter names and unescaped values. RFC 5424 allows a parameter to
// repeat within an element (and a sender may repeat an SD-ID); the values
// of a name are then an array, in order, so that none is lost and no key
// repeats.
func (j *jsonWriter) appendSD(dst []byte, sd []byte) []byte {
	if j.ids == nil {
		j.ids = map[string]int{}
	}
	clear(j.ids)
	j.params, j.order = j.params[:0], j.order[:0]
	it := syslog.NewSDIterator(sd)
	for it.Next() {
		e := it.Element()
		g, ok := j.ids[string(e.ID)]
		if !ok {
			g = len(j.order)
			j.ids[string(e.ID)] = g
			if g < cap(j.order) {
				// Reuse the group and its index slice from an earlier message.
				j.order = j.order[:g+1]
				j.order[g].id, j.order[g].params = e.ID, j.order[g].params[:0]
			} else {
				j.order = append(j.order, sdGroup{id: e.ID})
			}
		}
		pit := e.Params()
		for pit.Next() {
			p := pit.Param()
			j.order[g].params = append(j.order[g].params, len(j.params))
			j.params = append(j.params, sdParam{id: e.ID, name: p.Name, value: p.RawValue})
		}
	}
	if len(j.order) == 0 {
		return dst
	}
	dst = append(dst, `,"structured_data":{`...)
	for gi, g := range j.order {
		if gi > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, g.id)
		dst = append(dst, ':', '{')
		first := true
		for pi, idx := range g.params {
			name := j.params[idx].name
			if seenBefore(j.params, g.params[:pi], name) {
				continue
			}
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = appendJSONString(dst, name)
			dst = append(dst, ':')
			n := 0
			for _, k := range g.params[pi:] {
				if string(j.params[k].name) == string(name) {
					n++
				}
			}
			if n > 1 {
				dst = append(dst, '[')
			}
			c := 0
			for _, k := range g.params[pi:] {
				if string(j.params[k].name) != string(name) {
					continue
				}
				if c > 0 {
					dst = append(dst, ',')
				}
				c++
				j.scratch = syslog.SDParam{Name: name, RawValue: j.params[k].value}.AppendValue(j.scratch[:0])
				dst = appendJSONString(dst, j.scratch)
			}
			if n > 1 {
				dst = append(dst, ']')
			}
		}
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

func seenBefore(params []sdParam, earlier []int, name []byte) bool {
	for _, k := range earlier {
		if string(params[k].name) == string(name) {
			return true
		}
	}
	return false
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string. Control characters are
// escaped, and bytes that are not UTF-8 become U+FFFD, so the result is
// valid JSON and valid UTF-8 whatever s holds.
func appendJSONString(dst []byte, s []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, "\ufffd"...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
