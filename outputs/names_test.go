package outputs

import (
	"encoding"
	"fmt"
	"strings"
	"testing"
)

// TestNamesRoundTrip: every value's word parses back to it, in
// UnmarshalText and in the Parse functions.
func TestNamesRoundTrip(t *testing.T) {
	type value interface {
		fmt.Stringer
		encoding.TextMarshaler
	}
	check := func(v value, parsed any, err error) {
		t.Helper()
		if err != nil || parsed != v {
			t.Errorf("%q parsed as %v, %v; want %v", v.String(), parsed, err, v)
		}
		if b, _ := v.MarshalText(); string(b) != v.String() {
			t.Errorf("MarshalText = %q, String = %q", b, v.String())
		}
	}
	for _, p := range []FsyncPolicy{FsyncNever, FsyncBatch} {
		var got FsyncPolicy
		err := got.UnmarshalText([]byte(p.String()))
		check(p, got, err)
	}
	for _, f := range []Format{Raw, RFC5424, RFC3164, JSON} {
		var got Format
		err := got.UnmarshalText([]byte(f.String()))
		check(f, got, err)
		p, err := ParseFormat(f.String())
		check(f, p, err)
	}
	for _, f := range []Framing{OctetCounting, LF} {
		var got Framing
		err := got.UnmarshalText([]byte(f.String()))
		check(f, got, err)
		p, err := ParseFraming(f.String())
		check(f, p, err)
	}
	for _, m := range []PoolMode{Failover, LoadBalance} {
		var got PoolMode
		err := got.UnmarshalText([]byte(m.String()))
		check(m, got, err)
		p, err := ParsePoolMode(m.String())
		check(m, p, err)
	}
}

func TestNamesRefuseUnknownWords(t *testing.T) {
	var f Format
	if err := f.UnmarshalText([]byte("xml")); err == nil || err.Error() != `unknown format "xml": use "raw", "rfc5424", "rfc3164" or "json"` {
		t.Errorf("format xml: %v", err)
	}
	var p FsyncPolicy
	if err := p.UnmarshalText([]byte("always")); err == nil || err.Error() != `unknown fsync "always": use "never" or "batch"` {
		t.Errorf("fsync always: %v", err)
	}
	var fr Framing
	if err := fr.UnmarshalText([]byte("LF")); err == nil || !strings.Contains(err.Error(), `use "octet-counting" or "lf"`) {
		t.Errorf("framing LF: %v", err)
	}
	m := LoadBalance
	if err := m.UnmarshalText(nil); err != nil || m != Failover {
		t.Errorf("empty mode = %v, %v; want the default, failover", m, err)
	}
}
