package syslog

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// goldenIn returns the input of the golden vector called name.
func goldenIn(name string) string {
	for _, g := range goldens {
		if g.name == name {
			return g.in
		}
	}
	panic("no golden vector " + name)
}

func parseRef(in string) *Message {
	var m Message
	Parse([]byte(in), ParseOptions{Location: time.UTC, Received: refTime}, &m)
	return &m
}

const origin = `[origin ip="192.0.2.1"]`

func TestAppendRFC5424(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		in   string
		opts FormatOptions
		want string
	}{
		// A clean RFC 5424 message passes through byte for byte.
		{name: "5424 passthrough", in: goldenIn("rfc5424 example 1"), want: goldenIn("rfc5424 example 1")},
		{name: "5424 passthrough ignores Location", in: goldenIn("rfc5424 example 2"), opts: FormatOptions{Location: berlin}, want: goldenIn("rfc5424 example 2")},
		{name: "5424 passthrough keeps a present hostname", in: goldenIn("rfc5424 example 2"), opts: FormatOptions{Hostname: "10.9.9.9"}, want: goldenIn("rfc5424 example 2")},
		{
			name: "5424 nil hostname filled in",
			in:   "<13>1 2024-03-01T12:00:00Z - app - - - " + bomStr + "msg",
			opts: FormatOptions{Hostname: "192.0.2.1"},
			want: "<13>1 2024-03-01T12:00:00Z 192.0.2.1 app - - - " + bomStr + "msg",
		},
		{
			name: "5424 fallback hostname made valid",
			in:   "<13>1 - - - - - -",
			opts: FormatOptions{Hostname: "bad host\x00" + strings.Repeat("x", 300)},
			want: "<13>1 - bad_host_" + strings.Repeat("x", 255-9) + " - - - -",
		},
		{
			name: "5424 extra SD replaces nil SD",
			in:   "<13>1 - h a - - - msg",
			opts: FormatOptions{ExtraSD: []byte(origin)},
			want: "<13>1 - h a - - " + origin + " msg",
		},
		{
			name: "5424 extra SD appended, no MSG",
			in:   goldenIn("rfc5424 example 4 (structured data only)"),
			opts: FormatOptions{ExtraSD: []byte(origin)},
			want: goldenIn("rfc5424 example 4 (structured data only)") + origin,
		},
		{
			name: "5424 extra SD and hostname together",
			in:   `<13>1 - - a - - [x@1 k="v"] msg`,
			opts: FormatOptions{Hostname: "192.0.2.1", ExtraSD: []byte(origin)},
			want: `<13>1 - 192.0.2.1 a - - [x@1 k="v"]` + origin + ` msg`,
		},
		{
			name: "5424 existing origin is kept, the extra one dropped",
			in:   `<13>1 - h a - - [origin ip="198.51.100.1"] msg`,
			opts: FormatOptions{ExtraSD: []byte(origin + `[meta sequenceId="5"]`)},
			want: `<13>1 - h a - - [origin ip="198.51.100.1"][meta sequenceId="5"] msg`,
		},
		{
			name: "5424 extra SD repeated within itself and malformed tail dropped",
			in:   `<13>1 - h a - - - msg`,
			opts: FormatOptions{ExtraSD: []byte(origin + `[origin ip="1"][x y=z][ok]`)},
			want: `<13>1 - h a - - ` + origin + ` msg`,
		},

		// RFC 3164 is converted.
		{
			name: "3164 sshd",
			in:   "<38>Mar  1 08:00:00 web01 sshd[4321]: Accepted publickey for deploy",
			want: "<38>1 2024-03-01T08:00:00Z web01 sshd 4321 - - Accepted publickey for deploy",
		},
		{
			name: "3164 without hostname gets the fallback and origin",
			in:   "<38>Mar  1 11:00:00 systemd-logind[812]: New session 42 of user deploy.",
			opts: FormatOptions{Hostname: "192.0.2.1", ExtraSD: []byte(origin)},
			want: "<38>1 2024-03-01T11:00:00Z 192.0.2.1 systemd-logind 812 - " + origin + " New session 42 of user deploy.",
		},
		{
			name: "3164 written in another zone",
			in:   "<38>Mar  1 08:00:00.5 web01 sshd: x",
			opts: FormatOptions{Location: berlin},
			want: "<38>1 2024-03-01T09:00:00.5+01:00 web01 sshd - - - x",
		},
		{
			name: "3164 zone from the stamp kept",
			in:   "<165>Aug 24 05:34:00 CST 1987 mymachine myproc[10]: %% It's time",
			want: "<165>1 1987-08-24T05:34:00-06:00 mymachine myproc 10 - - %% It's time",
		},
		{
			name: "3164 without content",
			in:   "<13>Mar  1 11:00:00 host app:",
			want: "<13>1 2024-03-01T11:00:00Z host app - - -",
		},
		{
			name: "cisco counter becomes meta sequenceId",
			in:   "<189>123: router1: *Mar  1 00:00:00.123 UTC: %SYS-5-CONFIG_I: Configured from console by vty0",
			opts: FormatOptions{ExtraSD: []byte(origin)},
			want: `<189>1 2024-03-01T00:00:00.123Z router1 - - - ` + origin + `[meta sequenceId="123"] %SYS-5-CONFIG_I: Configured from console by vty0`,
		},
		{
			name: "cisco zero-padded counter",
			in:   "<189>000045: Mar  1 00:00:00 UTC: %X-1-Y: z",
			want: `<189>1 2024-03-01T00:00:00Z - - - - [meta sequenceId="45"] %X-1-Y: z`,
		},
		{
			name: "cisco counter 0 is not a sequenceId",
			in:   "<189>0: Mar  1 00:00:00 UTC: %X-1-Y: z",
			want: `<189>1 2024-03-01T00:00:00Z - - - - - %X-1-Y: z`,
		},
		{
			name: "cisco counter yields to a meta element from the relay",
			in:   "<189>7: Mar  1 00:00:00 UTC: %X-1-Y: z",
			opts: FormatOptions{ExtraSD: []byte(`[meta sequenceId="99"]`)},
			want: `<189>1 2024-03-01T00:00:00Z - - - - [meta sequenceId="99"] %X-1-Y: z`,
		},

		// Anything with a problem is wrapped, keeping every byte.
		{
			name: "no header",
			in:   "<13>hello",
			opts: FormatOptions{Hostname: "192.0.2.1"},
			want: "<13>1 2024-03-01T12:00:00Z 192.0.2.1 - - - - hello",
		},
		{
			name: "no PRI: the whole message",
			in:   "Use the BFG!",
			opts: FormatOptions{Hostname: "10.0.0.99", ExtraSD: []byte(origin)},
			want: "<13>1 2024-03-01T12:00:00Z 10.0.0.99 - - - " + origin + " Use the BFG!",
		},
		{
			name: "bad PRI: the whole message, header fields for routing",
			in:   "<999>Mar  1 00:00:00 host tag: x",
			want: "<13>1 2024-03-01T00:00:00Z host tag - - - <999>Mar  1 00:00:00 host tag: x",
		},
		{
			name: "empty",
			in:   "",
			want: "<13>1 2024-03-01T12:00:00Z - - - - -",
		},
		{
			name: "PRI only",
			in:   "<0>",
			want: "<0>1 2024-03-01T12:00:00Z - - - - -",
		},
		{
			name: "5424 bad SD",
			in:   `<13>1 2024-03-01T00:00:00Z h a - - [a b="x] y`,
			want: `<13>1 2024-03-01T00:00:00Z h a - - - 1 2024-03-01T00:00:00Z h a - - [a b="x] y`,
		},
		{
			name: "5424 bad timestamp",
			in:   `<13>1 2024-02-30T00:00:00Z h a - - - y`,
			want: `<13>1 2024-03-01T12:00:00Z h a - - - 1 2024-02-30T00:00:00Z h a - - - y`,
		},
		{
			name: "5424 overlong hostname cut in the wrapper",
			in:   "<13>1 - " + strings.Repeat("h", 300) + " a - - - y",
			want: "<13>1 2024-03-01T12:00:00Z " + strings.Repeat("h", 255) + " a - - - 1 - " + strings.Repeat("h", 300) + " a - - - y",
		},
		{
			name: "body starting with a BOM",
			in:   "<13>" + bomStr + "x",
			want: "<13>1 2024-03-01T12:00:00Z - - - - - " + bomStr + "x",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := parseRef(tc.in)
			got := AppendRFC5424([]byte("prefix"), m, tc.opts)
			if !bytes.HasPrefix(got, []byte("prefix")) {
				t.Fatalf("AppendRFC5424 did not append: %q", got)
			}
			got = got[len("prefix"):]
			if string(got) != tc.want {
				t.Errorf("AppendRFC5424(%q)\n got %q\nwant %q", tc.in, got, tc.want)
			}
			r := parseRef(string(got))
			if r.Format != FormatRFC5424 || r.Problem != ProblemNone {
				t.Errorf("AppendRFC5424(%q) = %q re-parses as %v, %v", tc.in, got, r.Format, r.Problem)
			}
		})
	}
}

func TestAppendRFC5424FromFields(t *testing.T) {
	lmt, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2024, 3, 1, 12, 0, 0, 123456789, time.FixedZone("", -(3*3600+30*60)))
	for _, tc := range []struct {
		name string
		m    Message
		opts FormatOptions
		want string
	}{
		{
			name: "all fields",
			m: Message{PRI: 165, Timestamp: ts, Hostname: []byte("h"), AppName: []byte("a"), ProcID: []byte("p"), MsgID: []byte("m"),
				StructuredData: []byte(`[x@1 k="v"]`), Msg: []byte("msg"), HasBOM: true},
			want: `<165>1 2024-03-01T12:00:00.123456-03:30 h a p m [x@1 k="v"] ` + bomStr + `msg`,
		},
		{
			name: "nothing",
			m:    Message{PRI: 0},
			want: "<0>1 - - - - - -",
		},
		{
			name: "PRI out of range and limits",
			m: Message{PRI: 192, Hostname: []byte(strings.Repeat("h", 256)), AppName: []byte(strings.Repeat("a", 49)),
				ProcID: []byte(strings.Repeat("p", 129)), MsgID: []byte(strings.Repeat("m", 33))},
			want: "<13>1 - " + strings.Repeat("h", 255) + " " + strings.Repeat("a", 48) + " " + strings.Repeat("p", 128) + " " + strings.Repeat("m", 32) + " -",
		},
		{
			name: "non-printable bytes",
			m:    Message{PRI: 13, Hostname: []byte("h\xc3\xb4st name"), AppName: []byte("a\tb"), ProcID: []byte("\x00"), MsgID: []byte("\x7f")},
			want: "<13>1 - h__st_name a_b _ _ -",
		},
		{
			name: "NILVALUE structured data",
			m:    Message{PRI: 13, StructuredData: []byte("-"), Msg: []byte("x")},
			want: "<13>1 - - - - - - x",
		},
		{
			name: "invalid structured data moves into MSG",
			m:    Message{PRI: 13, StructuredData: []byte(`[a b=c]`), Msg: []byte("x")},
			opts: FormatOptions{ExtraSD: []byte(origin)},
			want: `<13>1 - - - - - ` + origin + ` [a b=c] x`,
		},
		{
			name: "local mean time offset written in UTC",
			m:    Message{PRI: 13, Timestamp: time.Date(1900, 1, 1, 0, 0, 0, 0, lmt)},
			want: "<13>1 1899-12-31T23:40:28Z - - - - -",
		},
		{
			name: "year beyond 9999",
			m:    Message{PRI: 13, Timestamp: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
			want: "<13>1 - - - - - -",
		},
		{
			name: "Location converts",
			m:    Message{PRI: 13, Timestamp: time.Date(2024, 7, 1, 0, 0, 0, 1000, time.UTC)},
			opts: FormatOptions{Location: lmt},
			want: "<13>1 2024-07-01T02:00:00.000001+02:00 - - - - -",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := AppendRFC5424(nil, &tc.m, tc.opts)
			if string(got) != tc.want {
				t.Errorf("AppendRFC5424\n got %q\nwant %q", got, tc.want)
			}
			if r := parseRef(string(got)); r.Format != FormatRFC5424 || r.Problem != ProblemNone {
				t.Errorf("%q re-parses as %v, %v", got, r.Format, r.Problem)
			}
		})
	}
}

func TestAppendRFC3164(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		opts FormatOptions
		want string
	}{
		{
			name: "canonical 3164 comes out as it went in",
			in:   "<38>Mar  1 08:00:00 web01 sshd[4321]: Accepted publickey for deploy",
			want: "<38>Mar  1 08:00:00 web01 sshd[4321]: Accepted publickey for deploy",
		},
		{
			name: "rfc 3164 example 1",
			in:   goldenIn("rfc3164 example 1"),
			want: goldenIn("rfc3164 example 1"),
		},
		{
			name: "5424 with msgid and SD keeps both in the content",
			in:   `<165>1 2024-03-01T12:00:00.123+01:00 fw01 mgd 3046 UI_COMMIT [junos@2636.1.1.1.2.18 username="admin"] User 'admin' requested 'commit' operation`,
			want: `<165>Mar  1 11:00:00 fw01 mgd[3046]: UI_COMMIT: [junos@2636.1.1.1.2.18 username="admin"] User 'admin' requested 'commit' operation`,
		},
		{
			name: "5424 with BOM and nothing else",
			in:   "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - " + bomStr + "'su root' failed",
			want: "<34>Oct 11 22:14:15 mymachine.example.com su: ID47: 'su root' failed",
		},
		{
			name: "5424 with SD only",
			in:   `<13>1 2024-03-01T12:00:00Z h - - - [a b="c"]`,
			want: `<13>Mar  1 12:00:00 h [a b="c"]`,
		},
		{
			name: "5424 procid without app-name",
			in:   "<13>1 2024-03-01T12:00:00Z h - 42 - - x",
			want: "<13>Mar  1 12:00:00 h -[42]: x",
		},
		{
			name: "tag characters that would end a tag",
			in:   "<13>1 2024-03-01T12:00:00Z h a:b[c] p]q - - x",
			want: "<13>Mar  1 12:00:00 h a_b_c_[p_q]: x",
		},
		{
			name: "cisco normalized",
			in:   "<189>123: router1: *Mar  1 00:00:00.123 UTC: %SYS-5-CONFIG_I: Configured from console by vty0",
			want: "<189>Mar  1 00:00:00 router1 %SYS-5-CONFIG_I: Configured from console by vty0",
		},
		{
			name: "missing hostname from the fallback",
			in:   "<38>Mar  1 11:00:00 systemd-logind[812]: New session",
			opts: FormatOptions{Hostname: "192.0.2.1"},
			want: "<38>Mar  1 11:00:00 192.0.2.1 systemd-logind[812]: New session",
		},
		{
			name: "missing hostname without fallback",
			in:   "<38>Mar  1 11:00:00 systemd-logind[812]: New session",
			want: "<38>Mar  1 11:00:00 - systemd-logind[812]: New session",
		},
		{
			name: "problem keeps every byte after the PRI",
			in:   "<13>hello world",
			opts: FormatOptions{Hostname: "192.0.2.1"},
			want: "<13>Mar  1 12:00:00 192.0.2.1 hello world",
		},
		{
			name: "problem without PRI keeps the whole message",
			in:   "<999>x",
			want: "<13>Mar  1 12:00:00 - <999>x",
		},
		{
			name: "tag only",
			in:   "<13>Mar  1 11:00:00 host app:",
			want: "<13>Mar  1 11:00:00 host app:",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.opts.Location == nil {
				tc.opts.Location = time.UTC
			}
			m := parseRef(tc.in)
			got := AppendRFC3164(nil, m, tc.opts)
			if string(got) != tc.want {
				t.Errorf("AppendRFC3164(%q)\n got %q\nwant %q", tc.in, got, tc.want)
			}
			if r := parseRef(string(got)); r.Format != FormatRFC3164 || r.PRI != m.PRI {
				t.Errorf("%q re-parses as %v, PRI %d", got, r.Format, r.PRI)
			}
		})
	}
}

func TestAppendRFC3164DefaultZoneAndTime(t *testing.T) {
	m := Message{PRI: 13, Timestamp: time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)}
	want := "<13>" + time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC).In(time.Local).Format(time.Stamp) + " -"
	if got := AppendRFC3164(nil, &m, FormatOptions{}); string(got) != want {
		t.Errorf("AppendRFC3164 in time.Local = %q, want %q", got, want)
	}
	// No timestamp at all: the current time.
	m.Timestamp = time.Time{}
	before := time.Now()
	got := AppendRFC3164(nil, &m, FormatOptions{Location: time.UTC})
	r := parseRef(string(got))
	if !r.HasTimestamp || r.Timestamp.Before(before.Add(-2*time.Second)) && r.Timestamp.Year() == before.Year() {
		t.Errorf("AppendRFC3164 without timestamp = %q", got)
	}
}

// TestRoundTrips runs every golden vector through both formatters and back.
func TestRoundTrips(t *testing.T) {
	for _, g := range goldens {
		t.Run(g.name, func(t *testing.T) {
			b := []byte(g.in)
			var m Message
			Parse(b, ParseOptions{Location: time.UTC, Received: refTime}, &m)
			for _, opts := range []FormatOptions{{}, {Hostname: "192.0.2.1", ExtraSD: []byte(origin)}} {
				checkConvert(t, b, &m, opts)
			}
			check3164(t, &m)
		})
	}
}

// checkConvert checks that AppendRFC5424 output is clean RFC 5424 that
// keeps what the message said.
func checkConvert(t testing.TB, b []byte, m *Message, opts FormatOptions) {
	t.Helper()
	out := AppendRFC5424(nil, m, opts)
	var r Message
	Parse(out, ParseOptions{Location: time.UTC, Received: refTime}, &r)
	if r.Format != FormatRFC5424 || r.Problem != ProblemNone {
		t.Fatalf("AppendRFC5424(Parse(%q)) = %q, re-parsed as %v with problem %v", b, out, r.Format, r.Problem)
	}
	if r.PRI != m.PRI {
		t.Fatalf("AppendRFC5424(Parse(%q)) = %q: PRI %d, want %d", b, out, r.PRI, m.PRI)
	}
	for it := NewSDIterator(opts.ExtraSD); it.Next(); {
		if !hasSDID(r.StructuredData, it.Element().ID) {
			t.Fatalf("AppendRFC5424(Parse(%q)) = %q: extra element %q missing", b, out, it.Element().ID)
		}
	}
	content := r.Msg
	if r.HasBOM {
		content = append(append([]byte{}, bom...), r.Msg...)
	}
	switch {
	case !m.HeaderRead():
		if want := b[m.bodyStart():]; !bytes.Equal(content, want) {
			t.Fatalf("AppendRFC5424(Parse(%q)) = %q: MSG %q, want the original %q", b, out, content, want)
		}
	case m.Format == FormatRFC5424:
		strictTS := !m.HasTimestamp || strictStamp(b[m.tsStart:m.tsEnd])
		strictSD := !m.sdLoose
		if len(opts.ExtraSD) == 0 && (m.Hostname != nil || opts.Hostname == "") && strictTS && strictSD && !bytes.Equal(out, b) {
			t.Fatalf("AppendRFC5424(Parse(%q)) = %q, want the input unchanged", b, out)
		}
		wantTS := m.Timestamp
		if !strictTS {
			wantTS = wantTS.Truncate(time.Microsecond)
		}
		if !bytes.Equal(r.AppName, m.AppName) || !bytes.Equal(r.ProcID, m.ProcID) || !bytes.Equal(r.MsgID, m.MsgID) ||
			!bytes.Equal(r.Msg, m.Msg) || r.HasBOM != m.HasBOM || sdValues(r.StructuredData) != sdValues(m.StructuredData) ||
			r.HasTimestamp != m.HasTimestamp || !r.Timestamp.Equal(wantTS) && m.HasTimestamp {
			t.Fatalf("AppendRFC5424(Parse(%q)) = %q: fields changed", b, out)
		}
		if r.sdLoose || r.HasTimestamp && !strictStamp(out[r.tsStart:r.tsEnd]) {
			t.Fatalf("AppendRFC5424(Parse(%q)) = %q: not strict RFC 5424", b, out)
		}
	case m.Format == FormatRFC3164:
		wantContent := m.Msg
		if !bytes.Equal(content, wantContent) {
			t.Fatalf("AppendRFC5424(Parse(%q)) = %q: MSG %q, want %q", b, out, content, wantContent)
		}
		if !bytes.Equal(r.AppName, m.AppName) || !bytes.Equal(r.ProcID, m.ProcID) {
			t.Fatalf("AppendRFC5424(Parse(%q)) = %q: tag %q[%q], want %q[%q]", b, out, r.AppName, r.ProcID, m.AppName, m.ProcID)
		}
		wantHost := m.Hostname
		if wantHost == nil {
			wantHost = validField([]byte(opts.Hostname), maxHostname)
		}
		if !bytes.Equal(r.Hostname, wantHost) {
			t.Fatalf("AppendRFC5424(Parse(%q)) = %q: hostname %q, want %q", b, out, r.Hostname, wantHost)
		}
		if wantTS := m.Timestamp; !wantTS.IsZero() && wallYearOK(wantTS) {
			if !r.HasTimestamp || r.Timestamp.Unix() != wantTS.Unix() || r.Timestamp.Nanosecond() != wantTS.Nanosecond()/1000*1000 {
				t.Fatalf("AppendRFC5424(Parse(%q)) = %q: timestamp %v, want %v", b, out, r.Timestamp, wantTS)
			}
		}
		if seq, ok := sequenceID(m.Sequence); ok && !hasSDID(opts.ExtraSD, metaID) {
			p, found := LookupSDParam(r.StructuredData, "meta", "sequenceId")
			if !found || p.Value() != itoa(seq) {
				t.Fatalf("AppendRFC5424(Parse(%q)) = %q: no sequenceId %d", b, out, seq)
			}
		}
	}
}

// sdValues renders the elements of sd with their decoded values, leaving
// out the origin elements the tests add as opts.ExtraSD.
func sdValues(sd []byte) string {
	var out []string
	for it := NewSDIterator(sd); it.Next(); {
		e := it.Element()
		if string(e.ID) == "origin" {
			continue
		}
		el := string(e.ID)
		for pit := e.Params(); pit.Next(); {
			p := pit.Param()
			el += " " + string(p.Name) + "=" + string(p.AppendValue(nil))
		}
		out = append(out, el)
	}
	return strings.Join(out, "|")
}

// check3164 checks that AppendRFC3164 output re-parses as RFC 3164 with
// the same PRI and ends with the content.
func check3164(t testing.TB, m *Message) {
	t.Helper()
	out := AppendRFC3164(nil, m, FormatOptions{Location: time.UTC})
	var r Message
	Parse(out, ParseOptions{Location: time.UTC, Received: refTime}, &r)
	if r.Format != FormatRFC3164 || r.PRI != m.PRI || r.Problem == ProblemBadTimestamp {
		t.Fatalf("AppendRFC3164 = %q, re-parsed as %v, PRI %d, problem %v; want rfc3164, PRI %d", out, r.Format, r.PRI, r.Problem, m.PRI)
	}
	want := m.Msg
	if !m.HeaderRead() {
		want = m.Raw[m.bodyStart():]
	}
	if !bytes.HasSuffix(out, want) {
		t.Fatalf("AppendRFC3164 = %q, does not end with %q", out, want)
	}
}

func wallYearOK(t time.Time) bool {
	_, off := t.Zone()
	if off%60 != 0 {
		t = t.UTC()
	}
	return t.Year() >= 0 && t.Year() <= 9999
}

func itoa(v int64) string { return string(appendInt(nil, int(v), 1)) }

func TestAppendOriginSD(t *testing.T) {
	for _, tc := range []struct {
		ip   netip.Addr
		want string
	}{
		{netip.MustParseAddr("192.0.2.1"), `[origin ip="192.0.2.1"]`},
		{netip.MustParseAddr("2001:db8::1"), `[origin ip="2001:db8::1"]`},
		{netip.MustParseAddr("::ffff:192.0.2.1"), `[origin ip="192.0.2.1"]`},
		{netip.MustParseAddr("fe80::1%eth0"), `[origin ip="fe80::1"]`},
		{netip.Addr{}, ``},
	} {
		got := AppendOriginSD([]byte("x"), tc.ip)
		if string(got) != "x"+tc.want {
			t.Errorf("AppendOriginSD(%v) = %q, want %q", tc.ip, got[1:], tc.want)
		}
		if tc.want != "" && !ValidSD(got[1:]) {
			t.Errorf("AppendOriginSD(%v) = %q is not valid structured data", tc.ip, got[1:])
		}
	}
}

func TestAppendRFC3339(t *testing.T) {
	for _, ts := range []time.Time{
		time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC),
		time.Date(2024, 3, 1, 12, 0, 0, 1000, time.UTC),
		time.Date(2024, 3, 1, 12, 0, 0, 999999999, time.UTC),
		time.Date(2024, 3, 1, 12, 0, 0, 120000000, time.FixedZone("", 5*3600+45*60)),
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(0, 1, 1, 0, 0, 0, 0, time.FixedZone("", -60)),
		time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.FixedZone("", 23*3600+59*60)),
	} {
		want := ts.Truncate(0).Format("2006-01-02T15:04:05.999999Z07:00")
		if got := string(appendRFC3339(nil, ts)); got != want {
			t.Errorf("appendRFC3339(%v) = %q, want %q", ts, got, want)
		}
	}
}

func TestFormatDoesNotAllocate(t *testing.T) {
	fopts := FormatOptions{Hostname: "192.0.2.1", ExtraSD: []byte(origin)}
	dst := make([]byte, 0, 1024)
	for _, in := range []string{bench5424, bench3164, benchCisco, "<13>hello", "<13>1 - - a - - - x"} {
		m := parseRef(in)
		allocs := testing.AllocsPerRun(100, func() {
			dst = AppendRFC5424(dst[:0], m, fopts)
			dst = AppendRFC3164(dst[:0], m, FormatOptions{Location: time.UTC})
			dst = AppendOriginSD(dst[:0], netip.AddrFrom4([4]byte{192, 0, 2, 1}))
		})
		if allocs != 0 {
			t.Errorf("formatting %q allocates %v times, want 0", in, allocs)
		}
	}
}
