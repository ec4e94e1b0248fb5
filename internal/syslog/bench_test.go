package syslog

import (
	"testing"
	"time"
)

// bench5424 is a 200-byte RFC 5424 message with structured data, the size
// the performance goal names.
const bench5424 = `<165>1 2024-03-01T12:00:00.123456+01:00 host01.example.com myapp 4321 ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] An application event log entry for the benchmark, 200 B.`

// bench3164 is a typical sshd line.
const bench3164 = "<38>Mar  1 08:00:00 web01 sshd[4321]: Accepted publickey for deploy from 192.0.2.10 port 51234 ssh2: ED25519 SHA256:Zm9vYmFyYmF6cXV4"

// benchCisco is a Cisco IOS line with counter, hostname, '*', msec and zone.
const benchCisco = "<189>123: router1: *Mar  1 00:00:00.123 UTC: %SYS-5-CONFIG_I: Configured from console by vty0 (192.0.2.5)"

func TestBenchMessageSize(t *testing.T) {
	if len(bench5424) != 200 {
		t.Errorf("bench5424 is %d bytes, want 200", len(bench5424))
	}
}

func benchmarkParse(b *testing.B, in string, opts ParseOptions) {
	msg := []byte(in)
	var m Message
	Parse(msg, opts, &m)
	if m.Problem != ProblemNone {
		b.Fatalf("Parse(%q): problem %v", in, m.Problem)
	}
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		Parse(msg, opts, &m)
	}
}

func BenchmarkParse5424(b *testing.B) {
	benchmarkParse(b, bench5424, ParseOptions{Received: refTime})
}

func BenchmarkParse5424SkipTimestamp(b *testing.B) {
	benchmarkParse(b, bench5424, ParseOptions{Received: refTime, SkipTimestamp: true})
}

func BenchmarkParse3164(b *testing.B) {
	benchmarkParse(b, bench3164, ParseOptions{Location: time.UTC, Received: refTime})
}

// BenchmarkParse3164Local uses the host's zone, the default, which costs
// a zone lookup for the year inference and for time.Date.
func BenchmarkParse3164Local(b *testing.B) {
	benchmarkParse(b, bench3164, ParseOptions{Received: refTime})
}

func BenchmarkParse3164SkipTimestamp(b *testing.B) {
	benchmarkParse(b, bench3164, ParseOptions{Location: time.UTC, Received: refTime, SkipTimestamp: true})
}

func BenchmarkParseCisco(b *testing.B) {
	benchmarkParse(b, benchCisco, ParseOptions{Location: time.UTC, Received: refTime})
}

func BenchmarkConvert3164To5424(b *testing.B) {
	msg := []byte(bench3164)
	opts := ParseOptions{Location: time.UTC, Received: refTime}
	fopts := FormatOptions{Hostname: "192.0.2.1", ExtraSD: []byte(`[origin ip="192.0.2.1"]`)}
	var m Message
	dst := make([]byte, 0, 512)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		Parse(msg, opts, &m)
		dst = AppendRFC5424(dst[:0], &m, fopts)
	}
}

func BenchmarkPassthrough5424(b *testing.B) {
	msg := []byte(bench5424)
	opts := ParseOptions{Received: refTime}
	fopts := FormatOptions{Hostname: "192.0.2.1", ExtraSD: []byte(`[origin ip="192.0.2.1"]`)}
	var m Message
	dst := make([]byte, 0, 512)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		Parse(msg, opts, &m)
		dst = AppendRFC5424(dst[:0], &m, fopts)
	}
}

func BenchmarkConvert5424To3164(b *testing.B) {
	msg := []byte(bench5424)
	opts := ParseOptions{Received: refTime}
	fopts := FormatOptions{Location: time.UTC}
	var m Message
	dst := make([]byte, 0, 512)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		Parse(msg, opts, &m)
		dst = AppendRFC3164(dst[:0], &m, fopts)
	}
}
