package queue

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func sameEntry(a, b Entry) bool {
	return a.Received.Equal(b.Received) && a.Listener == b.Listener &&
		a.Source == b.Source && bytes.Equal(a.Data, b.Data)
}

func TestRecordRoundTrip(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 1, 12, 34, 56, 789012345, time.UTC)
	tests := []struct {
		name    string
		entries []Entry
	}{
		{"one", []Entry{{Received: now, Listener: "udp", Source: "192.0.2.1:514", Data: []byte("<13>hello")}}},
		{"empty fields", []Entry{{}}},
		{"empty data", []Entry{{Received: now, Listener: "tcp", Data: []byte{}}}},
		{"binary data", []Entry{{Received: now, Data: []byte{0, 1, 2, 0xff, '\n', 0}}}},
		{"before 1970", []Entry{{Received: time.Date(1969, 7, 20, 20, 17, 0, 0, time.UTC), Data: []byte("x")}}},
		{"large data", []Entry{{Received: now, Listener: "tls", Data: bytes.Repeat([]byte("a"), 1<<20)}}},
		{"many", func() []Entry {
			var es []Entry
			for i := range 1000 {
				es = append(es, Entry{
					Received: now.Add(time.Duration(i)),
					Listener: []string{"udp", "tcp"}[i%2],
					Source:   fmt.Sprintf("198.51.100.%d:514", i%7),
					Data:     []byte(fmt.Sprintf("<%d>message %d", i%192, i)),
				})
			}
			return es
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := AppendRecord(nil, tt.entries)
			got, err := DecodeRecord(rec)
			if err != nil {
				t.Fatalf("DecodeRecord: %v", err)
			}
			if len(got) != len(tt.entries) {
				t.Fatalf("DecodeRecord returned %d entries, want %d", len(got), len(tt.entries))
			}
			for i := range got {
				if !sameEntry(got[i], tt.entries[i]) {
					t.Errorf("entry %d = %+v, want %+v", i, got[i], tt.entries[i])
				}
			}
		})
	}
}

func TestRecordDataCapacity(t *testing.T) {
	t.Parallel()
	rec := AppendRecord(nil, []Entry{{Data: []byte("ab")}, {Data: []byte("cd")}})
	got, err := DecodeRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	// Appending to one entry's data must not overwrite the next entry.
	_ = append(got[0].Data, 'X', 'X', 'X', 'X')
	if string(got[1].Data) != "cd" {
		t.Errorf("second entry data = %q after append to the first, want %q", got[1].Data, "cd")
	}
}

func TestRecordBuilderReuse(t *testing.T) {
	t.Parallel()
	var b RecordBuilder
	for round := range 3 {
		b.Reset()
		var want []Entry
		for i := range round*5 + 1 {
			e := Entry{Listener: "l", Data: []byte(fmt.Sprintf("round %d entry %d", round, i))}
			want = append(want, e)
			b.Add(e)
		}
		if b.Len() != len(want) {
			t.Fatalf("Len = %d, want %d", b.Len(), len(want))
		}
		got, err := DecodeRecord(b.Bytes())
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for i := range want {
			if !sameEntry(got[i], want[i]) {
				t.Errorf("round %d entry %d = %+v, want %+v", round, i, got[i], want[i])
			}
		}
	}
}

func TestTruncateName(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 300)
	// "é" is two bytes; with one leading "a" the limit falls inside a rune.
	accents := "a" + strings.Repeat("é", 200)
	tests := []struct {
		in   string
		want string
	}{
		{"udp", "udp"},
		{long, long[:MaxNameLen]},
		{accents, accents[:MaxNameLen]},
		{strings.Repeat("é", 200), strings.Repeat("é", 127)},
	}
	for _, tt := range tests {
		got := truncateName(tt.in)
		if got != tt.want {
			t.Errorf("truncateName(%d bytes) = %d bytes, want %d", len(tt.in), len(got), len(tt.want))
		}
		if !utf8.ValidString(got) {
			t.Errorf("truncateName(%d bytes) is not valid UTF-8", len(tt.in))
		}
		rec := AppendRecord(nil, []Entry{{Listener: tt.in, Source: tt.in}})
		es, err := DecodeRecord(rec)
		if err != nil {
			t.Fatal(err)
		}
		if es[0].Listener != tt.want || es[0].Source != tt.want {
			t.Errorf("round trip of a %d byte name kept %d and %d bytes, want %d", len(tt.in), len(es[0].Listener), len(es[0].Source), len(tt.want))
		}
	}
}

// withCRC makes a version 1 record (no epoch or sequence) of a hand-made
// body; version 1 records are still read.
func withCRC(body []byte) []byte {
	return withCRCVersion(1, body)
}

func withCRCVersion(version byte, body []byte) []byte {
	rec := make([]byte, 5, 5+len(body))
	rec[0] = version
	rec = append(rec, body...)
	binary.BigEndian.PutUint32(rec[1:], crc32.Checksum(body, castagnoli))
	return rec
}

func TestDecodeRecordErrors(t *testing.T) {
	t.Parallel()
	good := AppendRecord(nil, []Entry{{Listener: "udp", Data: []byte("hello")}})
	flipped := bytes.Clone(good)
	flipped[len(flipped)-1] ^= 1
	badVersion := bytes.Clone(good)
	badVersion[0] = RecordVersion + 1
	tests := []struct {
		name string
		rec  []byte
		want string
	}{
		{"empty", nil, "too short"},
		{"header only", good[:5], "checksum"},
		{"bad version", badVersion, fmt.Sprintf("unknown version %d", RecordVersion+1)},
		{"flipped bit", flipped, "checksum"},
		{"truncated", good[:len(good)-1], "checksum"},
		{"no entries", withCRC([]byte{0}), "no entries"},
		{"bad count", withCRC([]byte{0x80}), "bad entry count"},
		{"count too big", withCRC([]byte{200, 1, 0, 0, 0, 0}), "cannot fit"},
		{"listener overrun", withCRC([]byte{1, 0, 9, 'a', 'b', 'c', 'd'}), "listener overruns"},
		{"source overrun", withCRC([]byte{1, 0, 0, 9, 'a', 'b', 'c'}), "source overruns"},
		{"data overrun", withCRC([]byte{1, 0, 0, 0, 9, 'a', 'b'}), "data length 9 overruns"},
		{"bad data length", withCRC([]byte{1, 0, 0, 0, 0x80, 0x80}), "bad data length"},
		{"trailing", withCRC([]byte{1, 0, 0, 0, 1, 'a', 'b'}), "1 trailing bytes"},
		{"v2 bad epoch", withCRCVersion(2, []byte{1, 0, 0x80, 0x80, 0x80, 0x80, 0x10, 0, 0, 0, 0}), "bad epoch"},
		{"v2 bad sequence", withCRCVersion(2, []byte{1, 0, 1, 0x80, 0x80}), "bad sequence"},
		{"v2 trailing", withCRCVersion(2, []byte{1, 0, 1, 2, 0, 0, 1, 'a', 'b'}), "1 trailing bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeRecord(tt.rec)
			if err == nil {
				t.Fatalf("DecodeRecord(%q) succeeded, want error containing %q", tt.rec, tt.want)
			}
			if !errors.Is(err, ErrCorruptRecord) {
				t.Errorf("DecodeRecord(%q) = %v, does not wrap ErrCorruptRecord", tt.rec, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("DecodeRecord(%q) = %v, want error containing %q", tt.rec, err, tt.want)
			}
		})
	}
}

// FuzzDecodeRecord checks that no input makes DecodeRecord panic and that
// whatever it accepts survives another encode and decode unchanged. Random
// mutations almost never keep the checksum right, so each input is also
// decoded with its checksum repaired, which lets the fuzzer reach the entry
// parser.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(AppendRecord(nil, []Entry{{Received: time.Unix(1700000000, 5), Listener: "udp", Source: "192.0.2.1:514", Data: []byte("<13>hi")}}))
	f.Add(AppendRecord(nil, []Entry{{}, {Data: []byte("x")}}))
	f.Add(withCRC([]byte{1, 0, 0, 0, 9, 'a', 'b'}))
	f.Fuzz(func(t *testing.T, rec []byte) {
		checkDecode(t, rec)
		if len(rec) >= 5 {
			checkDecode(t, withCRC(rec[5:]))
		}
	})
}

func checkDecode(t *testing.T, rec []byte) {
	entries, err := DecodeRecord(rec)
	if err != nil {
		if !errors.Is(err, ErrCorruptRecord) {
			t.Fatalf("DecodeRecord error %v does not wrap ErrCorruptRecord", err)
		}
		return
	}
	if len(entries) == 0 {
		t.Fatal("DecodeRecord accepted a record without entries")
	}
	again, err := DecodeRecord(AppendRecord(nil, entries))
	if err != nil {
		t.Fatalf("decoding a re-encoded record: %v", err)
	}
	if len(again) != len(entries) {
		t.Fatalf("re-encoded record has %d entries, want %d", len(again), len(entries))
	}
	for i := range entries {
		if !sameEntry(again[i], entries[i]) {
			t.Fatalf("entry %d = %+v after re-encoding, want %+v", i, again[i], entries[i])
		}
	}
}

// TestRecordSeq checks that the record sequence number round-trips, that
// restamp changes it and keeps the entries valid, and that records of older
// versions have none.
func TestRecordSeq(t *testing.T) {
	t.Parallel()
	var b RecordBuilder
	want := []Entry{{Listener: "l", Data: []byte("one")}, {Source: "s", Data: []byte("two")}}
	for _, e := range want {
		b.Add(e)
	}
	for _, seq := range []uint64{0, 1, 300, 1 << 40} {
		b.SetSeq(seq)
		rec := b.Bytes()
		if got := RecordSeq(rec); got != seq {
			t.Errorf("RecordSeq = %d, want %d", got, seq)
		}
		for _, to := range []uint64{1, 1 << 20, 1<<64 - 1} {
			re := restamp(bytes.Clone(rec), to)
			if got := RecordSeq(re); got != to {
				t.Errorf("restamped %d to %d: RecordSeq = %d", seq, to, got)
			}
			got, err := DecodeRecord(re)
			if err != nil {
				t.Fatalf("restamped %d to %d: %v", seq, to, err)
			}
			if len(got) != 2 || !sameEntry(got[0], want[0]) || !sameEntry(got[1], want[1]) {
				t.Errorf("restamped %d to %d: entries %+v", seq, to, got)
			}
			if n := recordCount(re); n != 2 {
				t.Errorf("recordCount = %d, want 2", n)
			}
		}
	}
	v2 := withCRCVersion(2, []byte{1, 0, 0, 0, 0, 0, 1, 'x'})
	if _, err := DecodeRecord(v2); err != nil {
		t.Fatalf("version 2 record: %v", err)
	}
	if got := RecordSeq(v2); got != 0 {
		t.Errorf("version 2 RecordSeq = %d, want 0", got)
	}
	if got := restamp(v2, 7); !bytes.Equal(got, v2) {
		t.Errorf("restamp changed a version 2 record")
	}
}
