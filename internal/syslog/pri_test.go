package syslog

import (
	"bytes"
	"strconv"
	"testing"
)

func TestReadPRIAllValid(t *testing.T) {
	for v := 0; v <= MaxPRI; v++ {
		prefix := "<" + strconv.Itoa(v) + ">"
		msg := []byte(prefix + "1 2024-01-01T00:00:00Z host app - - - hi")
		pri, n, ok := ReadPRI(msg)
		if !ok || pri != v || n != len(prefix) {
			t.Errorf("ReadPRI(%q) = %d, %d, %v, want %d, %d, true", msg, pri, n, ok, v, len(prefix))
		}
		// The PRI alone, with nothing after it, is valid too.
		if pri, n, ok := ReadPRI([]byte(prefix)); !ok || pri != v || n != len(prefix) {
			t.Errorf("ReadPRI(%q) = %d, %d, %v, want %d, %d, true", prefix, pri, n, ok, v, len(prefix))
		}
		if got := Facility(v)*8 + Severity(v); got != v {
			t.Errorf("Facility(%d)*8+Severity(%d) = %d, want %d", v, v, got, v)
		}
	}
}

func TestReadPRIInvalid(t *testing.T) {
	for _, in := range []string{
		"",
		"<",
		"<>",
		"<>msg",
		"<1",
		"<13",
		"<191",
		"<a>",
		"<1a>",
		"< 1>",
		"<-1>",
		"<+1>",
		"<192>",
		"<999>",
		"<1000>",
		"<0191>",
		"<01>",
		"<00>",
		"<000>",
		"<013>",
		"13>",
		" <13>",
		"13",
		"Jan  1 00:00:00 host msg",
		"<13 >",
		"\x00<13>",
	} {
		if pri, n, ok := ReadPRI([]byte(in)); ok || pri != 0 || n != 0 {
			t.Errorf("ReadPRI(%q) = %d, %d, %v, want 0, 0, false", in, pri, n, ok)
		}
	}
}

func TestFacilitySeverity(t *testing.T) {
	for _, tc := range []struct{ pri, fac, sev int }{
		{0, 0, 0},
		{DefaultPRI, 1, 5}, // user.notice
		{34, 4, 2},         // auth.crit, the RFC 5424 example
		{165, 20, 5},       // local4.notice
		{MaxPRI, 23, 7},    // local7.debug
	} {
		if f, s := Facility(tc.pri), Severity(tc.pri); f != tc.fac || s != tc.sev {
			t.Errorf("Facility, Severity(%d) = %d, %d, want %d, %d", tc.pri, f, s, tc.fac, tc.sev)
		}
	}
}

func TestTrimDatagram(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"msg", "msg"},
		{"msg\n", "msg"},
		{"msg\r\n", "msg"},
		{"msg\x00", "msg"},
		{"msg\x00\x00\x00", "msg"},
		{"msg\n\x00", "msg"},
		{"msg\r\n\x00", "msg"},
		{"msg\x00\n", "msg"},
		{"msg\n\n", "msg"},
		{"\n", ""},
		{"\r\n", ""},
		{"\x00", ""},
		{"msg\r", "msg\r"},     // a lone CR may be content
		{"msg\r\r", "msg\r\r"}, // likewise
		{"a\nb", "a\nb"},       // only trailing bytes go
		{"a\x00b", "a\x00b"},
		{"\x00msg", "\x00msg"},
		{"\xff\xfe\n", "\xff\xfe"}, // not UTF-8, kept byte-exact
	} {
		in := []byte(tc.in)
		got := TrimDatagram(in)
		if string(got) != tc.want {
			t.Errorf("TrimDatagram(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if len(got) > 0 && &got[0] != &in[0] {
			t.Errorf("TrimDatagram(%q) did not return a subslice of its input", tc.in)
		}
	}
}

func TestReadPRIAndTrimDatagramDoNotAllocate(t *testing.T) {
	msg := []byte("<165>1 2024-01-01T00:00:00Z host app - - - hi\r\n\x00")
	allocs := testing.AllocsPerRun(100, func() {
		ReadPRI(msg)
		TrimDatagram(msg)
	})
	if allocs != 0 {
		t.Errorf("ReadPRI and TrimDatagram allocate %v times per run, want 0", allocs)
	}
}

// FuzzReadPRI checks ReadPRI against a slow reading of the same rule built
// from strconv: ok exactly when the input starts with "<N>" where N is the
// canonical decimal form of a value 0..191.
func FuzzReadPRI(f *testing.F) {
	for _, s := range []string{"<13>msg", "<0>", "<191>", "<192>", "<01>", "<>", "<1000>", "", "<"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		pri, n, ok := ReadPRI(msg)

		wantOK := false
		wantPRI, wantN := 0, 0
		if len(msg) > 0 && msg[0] == '<' {
			if end := bytes.IndexByte(msg, '>'); end > 1 && end <= 4 {
				digits := string(msg[1:end])
				v, err := strconv.Atoi(digits)
				if err == nil && v >= 0 && v <= MaxPRI && strconv.Itoa(v) == digits {
					wantOK, wantPRI, wantN = true, v, end+1
				}
			}
		}
		if pri != wantPRI || n != wantN || ok != wantOK {
			t.Fatalf("ReadPRI(%q) = %d, %d, %v, want %d, %d, %v", msg, pri, n, ok, wantPRI, wantN, wantOK)
		}
	})
}

func BenchmarkReadPRI(b *testing.B) {
	msg := []byte("<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 - An application event")
	b.ReportAllocs()
	for b.Loop() {
		ReadPRI(msg)
	}
}
