package outputs

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/relay-syslog/relay/internal/syslog"
	"github.com/relay-syslog/relay/queue"
)

var templateReceived = time.Date(2026, 12, 6, 23, 30, 0, 0, time.UTC)

// formatOne runs one message through a formatter with format or template
// and returns the line and, with a path template, the path.
func formatOne(t testing.TB, f *formatter, data, source string) (line, path string) {
	t.Helper()
	if f.normalize == nil {
		f.normalize = map[string]Normalize{"in": {Location: time.UTC, FillHostname: true}}
	}
	out := f.apply([]queue.Entry{{Received: templateReceived, Listener: "in", Source: source, Data: []byte(data)}})
	if len(out) != 1 {
		t.Fatalf("%d entries out of 1", len(out))
	}
	if f.path != nil {
		path = string(f.paths[0])
	}
	return string(out[0].Data), path
}

func mustTemplate(t testing.TB, s string) *Template {
	t.Helper()
	tm, err := ParseTemplate(s)
	if err != nil {
		t.Fatalf("ParseTemplate(%q): %v", s, err)
	}
	return tm
}

func TestTemplateLayouts(t *testing.T) {
	const bsd = "<134>Dec  6 23:29:58 web01 nginx[812]: GET / 200"
	const r5424 = `<165>1 2026-12-06T23:29:58.123+01:00 db01 postgres 77 Q1 [x@1 k="v"] slow query`
	cases := []struct{ tmpl, msg, want string }{
		// rsyslog's RSYSLOG_TraditionalFileFormat
		{"{timestamp_bsd} {hostname} {tag} {message}", bsd, "Dec  6 23:29:58 web01 nginx[812]: GET / 200"},
		// rsyslog's RSYSLOG_FileFormat
		{"{timestamp} {hostname} {tag} {message}", bsd, "2026-12-06T23:29:58+00:00 web01 nginx[812]: GET / 200"},
		// An offset of 0 as the sender wrote it, "Z" or digits.
		{"{timestamp}", "<13>1 2026-12-06T23:29:58.5Z h a - - - x", "2026-12-06T23:29:58.5Z"},
		{"{timestamp}", "<13>1 2026-12-06T23:29:58.5+00:00 h a - - - x", "2026-12-06T23:29:58.5+00:00"},
		// The fraction with the digits the sender wrote; the receive time
		// with six, as rsyslog writes both.
		{"{timestamp}", "<189>12: *Dec  6 23:29:58.340: %SYS-5-CONFIG_I: x", "2026-12-06T23:29:58.340+00:00"},
		{"{timestamp}", "<13>1 2026-12-06T23:29:58.1200000+01:00 h a - - - x", "2026-12-06T23:29:58.120000+01:00"},
		{"{timestamp}", "<13>no header", "2026-12-06T23:30:00.000000+00:00"},
		{"{timestamp} {hostname} {tag} {message}", r5424, "2026-12-06T23:29:58.123+01:00 db01 postgres[77] slow query"},
		// RSYSLOG_SyslogProtocol23Format's fields
		{"<{pri}>1 {timestamp} {hostname} {app_name} {procid} {msgid} {structured_data} {message}", r5424,
			`<165>1 2026-12-06T23:29:58.123+01:00 db01 postgres 77 Q1 [x@1 k="v"] slow query`},
		{"{facility}.{severity} {facility_code}/{severity_code} {listener} {source}", bsd, "local0.info 16/6 in 192.0.2.9"},
		{"{date} {year}{month}{day}T{hour}{minute} {msg_date} {msg_hour}", r5424, "2026-12-06 20261206T2330 2026-12-06 23"},
		{"{{literal}} {app_name}", bsd, "{literal} nginx"},
		{"{hostname}|{tag}|{message}", "<13>no header here", "192.0.2.9||no header here"},
		{"{raw}", bsd, bsd},
	}
	for _, c := range cases {
		f := &formatter{template: mustTemplate(t, c.tmpl)}
		if got, _ := formatOne(t, f, c.msg, "192.0.2.9:514"); got != c.want {
			t.Errorf("%q on %q:\n got %q\nwant %q", c.tmpl, c.msg, got, c.want)
		}
	}
}

func TestTemplateErrors(t *testing.T) {
	for tmpl, want := range map[string]string{
		"{hostname} {bogus}": "unknown field {bogus}: use {timestamp}",
		"{hostname":          "unclosed {",
		"a } b":              "unmatched }",
		"":                   "is empty",
	} {
		_, err := ParseTemplate(tmpl)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseTemplate(%q) = %v, want an error with %q", tmpl, err, want)
		}
	}
	for _, p := range []string{"/var/log/../{hostname}", "logs/./{hostname}.log"} {
		if _, err := ParsePathTemplate(p); err == nil {
			t.Errorf("ParsePathTemplate(%q) accepted a dot element", p)
		}
	}
	if _, err := ParsePathTemplate("../fixed.log"); err != nil {
		t.Errorf("a fixed path is the administrator's: %v", err)
	}
}

// TestPathTemplateHostileValues: whatever a sender puts in its hostname or
// tag, the path stays inside the directory the template names, and every
// element is a usable file name.
func TestPathTemplateHostileValues(t *testing.T) {
	dir := "/var/log/remote"
	f := &formatter{path: mustPathTemplate(t, dir+"/{hostname}/{app_name}.log")}
	long := strings.Repeat("h", 300)
	cases := []struct{ host, app string }{
		{"../../etc", "passwd"},
		{"..", ".."},
		{".", "x"},
		{"a/b", "c/../../d"},
		{"nul\x00byte", "ctl\x01\x1f\x7f"},
		{long, strings.Repeat("a", 48)},
		{"", ""},
	}
	for _, c := range cases {
		// The hostname goes in RFC 5424 only when printable; an RFC 3164
		// header keeps any byte but a space.
		msg := "<13>Dec  6 23:29:58 " + c.host + " " + c.app + ": hi"
		if c.host == "" {
			msg = "<13>1 2026-12-06T23:29:58Z - - - - - hi"
		}
		_, p := formatOne(t, f, msg, "")
		checkInside(t, dir, p)
		// A parser may refuse some of these as a hostname; the message's
		// fields can still hold any bytes (RFC 3164 hostnames, a future
		// parser), so the same values are rendered as fields directly.
		m := syslog.Message{Raw: []byte(msg), Hostname: []byte(c.host), AppName: []byte(c.app)}
		v := fieldValues{msg: &m, entry: &queue.Entry{Received: templateReceived}, loc: time.UTC}
		p = string(f.path.appendPath(nil, &v))
		checkInside(t, dir, p)
		if want := strings.Repeat("h", MaxPathElement); c.host == long && !strings.HasPrefix(p, dir+"/"+want+"/") {
			t.Errorf("300-byte hostname gave %q, want it cut to %d bytes", p, MaxPathElement)
		}
	}
	// Fields written into one element together are cut as one element.
	f = &formatter{path: mustPathTemplate(t, dir+"/{hostname}/{message}-{message}.log")}
	_, p := formatOne(t, f, "<13>Dec  6 23:29:58 host app: "+long, "")
	checkInside(t, dir, p)
	if e := filepath.Base(p); len(e) != MaxPathElement {
		t.Errorf("element of %d bytes, want it cut to %d", len(e), MaxPathElement)
	}
}

func mustPathTemplate(t testing.TB, s string) *Template {
	t.Helper()
	tm, err := ParsePathTemplate(s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func checkInside(t *testing.T, dir, p string) {
	t.Helper()
	if !strings.HasPrefix(p, dir+"/") || filepath.Clean(p) != p {
		t.Errorf("path %q leaves %s or is not clean", p, dir)
	}
	for _, e := range strings.Split(strings.TrimPrefix(p, dir+"/"), "/") {
		if e == "" || e == "." || e == ".." || len(e) > MaxPathElement || strings.ContainsFunc(e, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			t.Errorf("path %q has a bad element %q", p, e)
		}
	}
	if n := strings.Count(strings.TrimPrefix(p, dir+"/"), "/"); n != 1 {
		t.Errorf("path %q has %d levels below %s, want 1", p, n+1, dir)
	}
}

// jsonLine is what format = "json" writes; the strict decoder refuses any
// other key.
type jsonLine struct {
	Timestamp      string                                `json:"timestamp"`
	Received       string                                `json:"received"`
	Hostname       string                                `json:"hostname"`
	AppName        string                                `json:"app_name"`
	ProcID         string                                `json:"procid"`
	MsgID          string                                `json:"msgid"`
	Facility       string                                `json:"facility"`
	FacilityCode   *int                                  `json:"facility_code"`
	Severity       string                                `json:"severity"`
	SeverityCode   *int                                  `json:"severity_code"`
	StructuredData map[string]map[string]json.RawMessage `json:"structured_data"`
	Message        *string                               `json:"message"`
	Problem        string                                `json:"problem"`
	Raw            *string                               `json:"raw"`
	Source         string                                `json:"source"`
	Listener       string                                `json:"listener"`
	Relay          *struct {
		Origin string `json:"origin"`
		Epoch  uint32 `json:"epoch"`
		Seq    uint64 `json:"seq"`
	} `json:"relay"`
}

// decodeJSONLine decodes line strictly: valid UTF-8, one object, known keys
// only, the mandatory ones present, timestamps in RFC 3339 and every
// structured-data value a string or an array of strings.
func decodeJSONLine(t testing.TB, line []byte) jsonLine {
	t.Helper()
	if !utf8.Valid(line) {
		t.Fatalf("not UTF-8: %q", line)
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	var v jsonLine
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%v in %s", err, line)
	}
	if dec.More() {
		t.Fatalf("more than one value in %s", line)
	}
	if v.FacilityCode == nil || v.SeverityCode == nil || v.Message == nil || v.Facility == "" || v.Severity == "" {
		t.Fatalf("a mandatory key is missing in %s", line)
	}
	if v.Problem != "" && v.Raw == nil {
		t.Fatalf("a message with a problem has no raw in %s", line)
	}
	for _, ts := range []string{v.Timestamp, v.Received} {
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
			t.Fatalf("timestamp: %v in %s", err, line)
		}
	}
	for id, params := range v.StructuredData {
		for name, raw := range params {
			var s string
			var list []string
			if json.Unmarshal(raw, &s) != nil && (json.Unmarshal(raw, &list) != nil || len(list) < 2) {
				t.Fatalf("structured_data %s %s is %s", id, name, raw)
			}
		}
	}
	return v
}

func TestJSONFormat(t *testing.T) {
	f := &formatter{format: JSON, stampOrigin: "edge1"}
	f.normalize = map[string]Normalize{"in": {Location: time.UTC, FillHostname: true}}
	out := f.apply([]queue.Entry{
		{Received: templateReceived, Listener: "in", Source: "192.0.2.9:514", Epoch: 3, Seq: 42,
			Data: []byte(`<165>1 2026-12-06T23:29:58.123+01:00 db01 postgres 77 Q1 [x@1 k="a\"b" k="c" n="\]"][y@2 z="1"] slow` + "\xff query")},
		{Received: templateReceived, Listener: "in", Source: "192.0.2.9:514", Data: []byte("\x00no pri\n\x1b[31m \xc3")},
	})
	v := decodeJSONLine(t, out[0].Data)
	if v.Timestamp != "2026-12-06T23:29:58.123+01:00" || v.Hostname != "db01" || v.AppName != "postgres" ||
		v.ProcID != "77" || v.MsgID != "Q1" || v.Facility != "local4" || *v.FacilityCode != 20 ||
		v.Severity != "notice" || *v.SeverityCode != 5 || *v.Message != "slow\ufffd query" ||
		v.Source != "192.0.2.9" || v.Listener != "in" || v.Relay == nil || v.Relay.Origin != "edge1" || v.Relay.Seq != 42 || v.Relay.Epoch != 3 {
		t.Errorf("decoded %+v from %s", v, out[0].Data)
	}
	if got := string(v.StructuredData["x@1"]["k"]); got != `["a\"b","c"]` {
		t.Errorf("repeated parameter: %s", got)
	}
	if got := string(v.StructuredData["x@1"]["n"]); got != `"]"` {
		t.Errorf("escaped value: %s", got)
	}
	v = decodeJSONLine(t, out[1].Data)
	if v.Timestamp != "2026-12-06T23:30:00Z" || v.Problem != "no_pri" || *v.Raw != "\x00no pri\n\x1b[31m \ufffd" || v.Hostname != "192.0.2.9" || v.Relay != nil {
		t.Errorf("decoded %+v from %s", v, out[1].Data)
	}
}

// FuzzJSON: whatever bytes arrive, format = "json" writes one valid JSON
// object per message that a strict decoder takes.
func FuzzJSON(f *testing.F) {
	f.Add([]byte(`<165>1 2026-12-06T23:29:58.123+01:00 db01 postgres 77 Q1 [x@1 k="a\"b" k="c"] msg`), "in", "192.0.2.9:514")
	f.Add([]byte("<13>Dec  6 23:29:58 web01 nginx[812]: GET / 200"), "in", "")
	f.Add([]byte("\xff\xfe<999>\x00"), "\xff", "not an address\x00")
	f.Add([]byte(`<14>1 - - - - - [a b="\\" b="\]"][a c="1"]`), "x", "[::1]:5")
	f.Fuzz(func(t *testing.T, data []byte, listener, source string) {
		fm := &formatter{format: JSON, stampOrigin: "o\xff\""}
		fm.normalize = map[string]Normalize{listener: {Location: time.UTC, FillHostname: true}}
		out := fm.apply([]queue.Entry{{Received: templateReceived, Listener: listener, Source: source, Seq: 1, Data: data}})
		decodeJSONLine(t, out[0].Data)
	})
}
