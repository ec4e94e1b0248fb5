package syslog

import (
	"fmt"
	"testing"
	"time"

	"github.com/leodido/go-syslog/v4/rfc5424"
)

// An independent RFC 5424 parser as an oracle: leodido/go-syslog's
// rfc5424 machine is generated from the RFC's ABNF (Ragel). Two checks:
// on every input both parsers call valid RFC 5424, every header field and
// every structured-data parameter must come out the same; and whatever
// AppendRFC5424 writes (the relay's format = "rfc5424"), go-syslog must
// accept, so a strict head server takes it.
//
// Known, deliberate differences, left out of the comparison:
//   - go-syslog takes a message without a valid PRI only with an option;
//     this package reads the rest of such a message as RFC 3164 §4.3.3
//     asks. Only inputs with a valid PRI are compared.
//   - RFC 5424 defines VERSION 1 only; go-syslog takes any 1 to 999, this
//     package reads another version as an unknown header and forwards the
//     message as it came. Only version 1 is compared.
//   - this package is lenient by design and accepts headers go-syslog
//     refuses (it reports them as problems instead), so validity is
//     compared one way only: what go-syslog accepts, this package must
//     accept cleanly.
//   - the same SD-ID twice (RFC 5424 §6.3.2 forbids it) is passed on as it
//     came: merging or dropping elements would change the data. Such
//     input is left out of the output check.

// oracleInputs are RFC 5424 messages beyond the golden vectors: the
// corners of the grammar the two parsers could read differently.
var oracleInputs = []string{
	`<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed for lonvick on /dev/pts/8`,
	`<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.`,
	`<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] ` + bomStr + `An application event log entry...`,
	`<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]`,
	`<0>1 - - - - - -`,
	`<191>999 - - - - - -`,
	`<13>1 2024-02-29T23:59:60Z h a p m -`,
	`<13>1 2024-03-01T12:00:00.123456+05:45 h a p m [a b="\"\\\]"] x`,
	`<13>1 2024-03-01T12:00:00Z h a p m [a b="c\d"] x`,
	`<13>1 2024-03-01T12:00:00Z h a p m [a b=""][a c="d"] x`,
	`<13>1 2024-03-01T12:00:00Z h a p m [a@1 b="1" b="2"]`,
	`<13>1 2024-03-01T12:00:00Z h a p m [a]`,
	`<13>1 2024-03-01T12:00:00Z h a p m [a b="]"]`,
	`<13>1 2024-03-01T12:00:00Z h a p m [a b="c"]x`,
	`<13>1 2024-03-01T12:00:00Z h a p m `,
	`<13>1 2024-03-01T12:00:00Z h a p m - `,
	`<13>1 2024-03-01T12:00:00.1234567Z h a p m - x`,
	`<13>1 2024-13-01T12:00:00Z h a p m - x`,
	`<13>1 2024-03-01T12:00:00 h a p m - x`,
	`<13>1 2024-03-01t12:00:00z h a p m - x`,
	`<13>01 - - - - - -`,
	`<13>1 - ` + "\x7f" + ` - - - -`,
	`<13>1 - h ` + "appappappappappappappappappappappappappappappappa" + ` - - -`,
}

func FuzzParse5424Oracle(f *testing.F) {
	for _, g := range goldens {
		f.Add([]byte(g.in))
	}
	for _, in := range oracleInputs {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		compareWithOracle(t, data)
		checkOracleTakesOutput(t, data)
	})
}

// TestParse5424Oracle runs the comparison on the seeds alone, so that it
// is part of every test run and not only of fuzzing.
func TestParse5424Oracle(t *testing.T) {
	compared := 0
	for _, in := range append(goldenInputs(), oracleInputs...) {
		if compareWithOracle(t, []byte(in)) {
			compared++
		}
		checkOracleTakesOutput(t, []byte(in))
	}
	// Most RFC 5424 vectors are valid to both; if none were, the test
	// would compare nothing.
	if compared < 15 {
		t.Errorf("only %d inputs valid to both parsers", compared)
	}
	t.Logf("%d inputs valid RFC 5424 to both parsers, field by field equal", compared)
}

func goldenInputs() []string {
	var out []string
	for _, g := range goldens {
		out = append(out, g.in)
	}
	return out
}

// compareWithOracle parses data with both parsers and fails t on a
// difference. It reports whether go-syslog found the input valid (and so
// whether fields were compared).
func compareWithOracle(t *testing.T, data []byte) bool {
	t.Helper()
	if _, _, ok := ReadPRI(data); !ok {
		return false
	}
	res, err := rfc5424.NewMachine().Parse(data)
	if err != nil || res == nil {
		return false
	}
	theirs, ok := res.(*rfc5424.SyslogMessage)
	if !ok || !theirs.Valid() || theirs.Priority == nil || theirs.Version != 1 {
		return false
	}
	var ours Message
	Parse(data, ParseOptions{Location: time.UTC, Received: refTime}, &ours)
	if ours.Format != FormatRFC5424 || ours.Problem != ProblemNone {
		t.Fatalf("%q: go-syslog reads valid RFC 5424, Parse reads format %v, problem %v", data, ours.Format, ours.Problem)
	}
	want := fmt.Sprintf("pri=%d host=%s app=%s procid=%s msgid=%s",
		*theirs.Priority, str(theirs.Hostname), str(theirs.Appname), str(theirs.ProcID), str(theirs.MsgID))
	got := fmt.Sprintf("pri=%d host=%s app=%s procid=%s msgid=%s",
		ours.PRI, nilable(ours.Hostname), nilable(ours.AppName), nilable(ours.ProcID), nilable(ours.MsgID))
	if got != want {
		t.Fatalf("%q:\n Parse    %s\n go-syslog %s", data, got, want)
	}
	switch {
	case theirs.Timestamp == nil && ours.HasTimestamp:
		t.Fatalf("%q: Parse found timestamp %v, go-syslog none", data, ours.Timestamp)
	case theirs.Timestamp != nil && !ours.HasTimestamp:
		t.Fatalf("%q: go-syslog found timestamp %v, Parse none", data, *theirs.Timestamp)
	case theirs.Timestamp != nil && !theirs.Timestamp.Equal(ours.Timestamp):
		t.Fatalf("%q: timestamp %v, go-syslog %v", data, ours.Timestamp, *theirs.Timestamp)
	}
	if got, want := sdString(ours.StructuredData), oracleSD(theirs.StructuredData); got != want {
		t.Fatalf("%q: structured data\n Parse    %s\n go-syslog %s", data, got, want)
	}
	return true
}

func str(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

func nilable(b []byte) string {
	if b == nil {
		return "<nil>"
	}
	return string(b)
}

// sdString renders structured data as go-syslog's map holds it: every
// element by ID, each parameter once (the last value of a repeated one),
// values unescaped, in sorted order (fmt sorts maps).
func sdString(sd []byte) string {
	if sd == nil {
		return "<nil>"
	}
	m := map[string]map[string]string{}
	it := NewSDIterator(sd)
	for it.Next() {
		e := it.Element()
		params := m[string(e.ID)]
		if params == nil {
			params = map[string]string{}
			m[string(e.ID)] = params
		}
		pit := e.Params()
		for pit.Next() {
			p := pit.Param()
			params[string(p.Name)] = string(p.AppendValue(nil))
		}
	}
	return fmt.Sprint(m)
}

func oracleSD(sd *map[string]map[string]string) string {
	if sd == nil {
		return "<nil>"
	}
	return fmt.Sprint(*sd)
}

// checkOracleTakesOutput converts data to RFC 5424 as the relay's
// format = "rfc5424" does and checks that go-syslog accepts the result.
func checkOracleTakesOutput(t *testing.T, data []byte) {
	t.Helper()
	var m Message
	Parse(data, ParseOptions{Location: time.UTC, Received: refTime}, &m)
	if m.Format == FormatRFC5424 && m.Problem == ProblemNone && repeatsSDID(m.StructuredData) {
		return
	}
	out := AppendRFC5424(nil, &m, FormatOptions{Hostname: "192.0.2.1", ExtraSD: []byte(`[origin ip="192.0.2.1"]`)})
	res, err := rfc5424.NewMachine().Parse(out)
	if err != nil || res == nil || !res.Valid() {
		t.Fatalf("AppendRFC5424(Parse(%q)) = %q: go-syslog refuses it: %v", data, out, err)
	}
}

func repeatsSDID(sd []byte) bool {
	seen := map[string]bool{}
	for it := NewSDIterator(sd); it.Next(); {
		id := string(it.Element().ID)
		if seen[id] {
			return true
		}
		seen[id] = true
	}
	return false
}
