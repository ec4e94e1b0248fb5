package syslog

import (
	"bytes"
	"testing"
	"time"
)

// FuzzParse feeds arbitrary bytes to Parse and checks what must hold for
// any input a sender can produce:
//   - Parse does not panic, and its result keeps every byte: Raw is the
//     input, Msg is a suffix of it, every field aliases it (checkInvariants);
//   - SkipTimestamp changes nothing but the Timestamp;
//   - AppendRFC5424 output re-parses as RFC 5424 with no problem, with the
//     same PRI, and keeps the content: byte for byte for clean RFC 5424,
//     the fields and content for RFC 3164, every byte after the PRI for
//     anything with a problem (checkConvert);
//   - AppendRFC3164 output re-parses as RFC 3164 with the same PRI and ends
//     with the content (check3164).
//
// The flags choose the listener's zone (UTC or one with DST) and whether
// the formatter adds a fallback hostname and an origin element.
func FuzzParse(f *testing.F) {
	for _, g := range goldens {
		f.Add([]byte(g.in), uint8(0))
		f.Add([]byte(g.in), uint8(3))
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte, flags uint8) {
		loc := time.UTC
		if flags&1 != 0 {
			loc = berlin
		}
		popts := ParseOptions{Location: loc, Received: refTime}
		var m Message
		Parse(data, popts, &m)
		checkInvariants(t, data, &m)

		var lite Message
		popts.SkipTimestamp = true
		Parse(data, popts, &lite)
		lite.Timestamp = m.Timestamp
		if !equalMessages(&m, &lite) {
			t.Fatalf("Parse(%q) with SkipTimestamp = %+v, want %+v", data, lite, m)
		}

		var fopts FormatOptions
		if flags&2 != 0 {
			fopts = FormatOptions{Hostname: "fallback host", ExtraSD: []byte(origin)}
		}
		checkConvert(t, data, &m, fopts)
		check3164(t, &m)
	})
}

// FuzzFormat builds Messages from arbitrary fields, as a caller that fills
// one in by hand would, and checks that AppendRFC5424 always writes clean
// RFC 5424 that reads back as the fields made valid (cut to the RFC 5424
// limits, non-printable bytes replaced), that no byte of the content is
// lost, and that AppendRFC3164 writes a line that reads back as RFC 3164
// with the same PRI and content.
func FuzzFormat(f *testing.F) {
	f.Add(165, []byte("host"), []byte("app"), []byte("42"), []byte("ID47"), []byte(`[x@1 k="v\"]"]`), []byte("msg"), true,
		[]byte(origin), "192.0.2.1", int64(1709294400), uint32(123456789), int16(60))
	f.Add(-1, []byte(""), []byte("a b"), []byte("\x00"), []byte("-"), []byte("-"), []byte(""), false,
		[]byte(`[bad`), "", int64(-62135596800), uint32(0), int16(0))
	f.Add(191, []byte("h\xff"), []byte("a:b[c]"), []byte("p]"), []byte("m"), []byte("[a b=c]"), []byte(bomStr+"x"), false,
		[]byte(`[meta sequenceId="1"][origin ip="1"]`), "fall back", int64(253402300799), uint32(999999999), int16(-1439))
	f.Fuzz(func(t *testing.T, pri int, host, app, procID, msgID, sd, msg []byte, hasBOM bool,
		extra []byte, fallback string, sec int64, nsec uint32, offMin int16) {
		ts := time.Unix(sec, int64(nsec%1e9)).In(time.FixedZone("", int(offMin)%1440*60))
		m := Message{PRI: pri, Timestamp: ts, Hostname: host, AppName: app, ProcID: procID, MsgID: msgID,
			StructuredData: sd, Msg: msg, HasBOM: hasBOM}
		// Extras come escaped as AppendSDParamValue writes them.
		if n, _, loose := sdLen(extra); loose {
			extra = appendStrictSD(nil, extra[:n])
		}
		opts := FormatOptions{Hostname: fallback, ExtraSD: extra}

		out := AppendRFC5424(nil, &m, opts)
		var r Message
		Parse(out, ParseOptions{Location: time.UTC, Received: refTime}, &r)
		if r.Format != FormatRFC5424 || r.Problem != ProblemNone {
			t.Fatalf("AppendRFC5424 = %q, re-parsed as %v with problem %v", out, r.Format, r.Problem)
		}
		wantPRI := pri
		if pri < 0 || pri > MaxPRI {
			wantPRI = DefaultPRI
		}
		if r.PRI != wantPRI {
			t.Fatalf("AppendRFC5424 = %q: PRI %d, want %d", out, r.PRI, wantPRI)
		}
		wantHost := validField(host, maxHostname)
		if len(host) == 0 {
			wantHost = validField([]byte(fallback), maxHostname)
		}
		for _, f := range []struct {
			name      string
			got, want []byte
		}{
			{"HOSTNAME", r.Hostname, wantHost},
			{"APP-NAME", r.AppName, validField(app, maxAppName)},
			{"PROCID", r.ProcID, validField(procID, maxProcID)},
			{"MSGID", r.MsgID, validField(msgID, maxMsgID)},
		} {
			if !bytes.Equal(f.got, f.want) {
				t.Fatalf("AppendRFC5424 = %q: %s %q, want %q", out, f.name, f.got, f.want)
			}
		}
		if ts.IsZero() || !wallYearOK(ts) {
			if r.HasTimestamp {
				t.Fatalf("AppendRFC5424 = %q: timestamp %v, want none", out, r.Timestamp)
			}
		} else if !r.HasTimestamp || r.Timestamp.Unix() != ts.Unix() || r.Timestamp.Nanosecond() != ts.Nanosecond()/1000*1000 {
			t.Fatalf("AppendRFC5424 = %q: timestamp %v, want %v", out, r.Timestamp, ts)
		}

		// Structured data: the valid input first, then the new extras.
		// Loose values come out escaped again, with the same meaning.
		validSD := len(sd) > 0 && !(len(sd) == 1 && sd[0] == '-') && ValidSD(sd)
		wantSD := sd
		if _, _, loose := sdLen(sd); validSD && loose {
			wantSD = appendStrictSD(nil, sd)
			if sdValues(wantSD) != sdValues(sd) {
				t.Fatalf("structured data %q escaped again as %q: values changed", sd, wantSD)
			}
		}
		if validSD && !bytes.HasPrefix(r.StructuredData, wantSD) {
			t.Fatalf("AppendRFC5424 = %q: structured data %q does not start with %q", out, r.StructuredData, wantSD)
		}
		if r.sdLoose {
			t.Fatalf("AppendRFC5424 = %q: structured data not escaped as RFC 5424 asks", out)
		}
		for it := NewSDIterator(extra); it.Next(); {
			if !hasSDID(r.StructuredData, it.Element().ID) {
				t.Fatalf("AppendRFC5424 = %q: extra element %q missing", out, it.Element().ID)
			}
		}

		// Content: nothing lost. Invalid structured data goes in front.
		var want []byte
		if hasBOM {
			want = append(want, bom...)
		}
		if len(sd) > 0 && !(len(sd) == 1 && sd[0] == '-') && !validSD {
			want = append(append(want, sd...), ' ')
		}
		want = append(want, msg...)
		got := r.Msg
		if r.HasBOM {
			got = append(append([]byte{}, bom...), r.Msg...)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("AppendRFC5424 = %q: content %q, want %q", out, got, want)
		}

		out = AppendRFC3164(nil, &m, FormatOptions{Hostname: fallback, Location: time.UTC})
		Parse(out, ParseOptions{Location: time.UTC, Received: refTime}, &r)
		// A hostname of capital letters ending in ':' ("A:") reads back as
		// a zone name the relay does not know: reported, header still read.
		if r.Format != FormatRFC3164 || r.PRI != wantPRI || !r.HeaderRead() {
			t.Fatalf("AppendRFC3164 = %q, re-parsed as %v, PRI %d, problem %v", out, r.Format, r.PRI, r.Problem)
		}
		if !bytes.HasSuffix(out, msg) {
			t.Fatalf("AppendRFC3164 = %q, does not end with %q", out, msg)
		}
	})
}

// validField is what a header field becomes in RFC 5424 output and reads
// back as: cut to max, non-printable bytes as '_', nil for empty and "-".
func validField(v []byte, max int) []byte {
	if len(v) > max {
		v = v[:max]
	}
	out := make([]byte, len(v))
	for i, c := range v {
		if c < '!' || c > '~' {
			c = '_'
		}
		out[i] = c
	}
	if len(out) == 0 || (len(out) == 1 && out[0] == '-') {
		return nil
	}
	return out
}
