package queue

import (
	"strings"
	"testing"
)

func TestCheckName(t *testing.T) {
	for _, name := range []string{"head", "file-1", "a.b", "..a"} {
		if err := CheckName(name); err != nil {
			t.Errorf("CheckName(%q) = %v, want nil", name, err)
		}
	}
	for _, name := range []string{"", ".", "..", "a/b", "/a", `a\b`, "a\x00b"} {
		if err := CheckName(name); err == nil {
			t.Errorf("CheckName(%q) = nil, want an error", name)
		}
	}
}

func TestFullPolicyText(t *testing.T) {
	for _, p := range []FullPolicy{Block, DropNewest, DropOldest} {
		var got FullPolicy = -1
		if err := got.UnmarshalText([]byte(p.String())); err != nil || got != p {
			t.Errorf("UnmarshalText(%q) = %v, %v; want %v", p.String(), got, err, p)
		}
	}
	var p FullPolicy = DropOldest
	if err := p.UnmarshalText(nil); err != nil || p != Block {
		t.Errorf("empty text = %v, %v; want the default, block", p, err)
	}
	err := p.UnmarshalText([]byte("drop"))
	if err == nil || !strings.Contains(err.Error(), `use "block", "drop_newest" or "drop_oldest"`) {
		t.Errorf("UnmarshalText(drop) = %v, want an error listing the policies", err)
	}
}

func TestFsyncModeText(t *testing.T) {
	for _, m := range []FsyncMode{FsyncInterval, FsyncAlways} {
		var got FsyncMode = -1
		if err := got.UnmarshalText([]byte(m.String())); err != nil || got != m {
			t.Errorf("UnmarshalText(%q) = %v, %v; want %v", m.String(), got, err, m)
		}
	}
	m := FsyncAlways
	if err := m.UnmarshalText(nil); err != nil || m != FsyncInterval {
		t.Errorf("empty text = %v, %v; want the default, interval", m, err)
	}
	err := m.UnmarshalText([]byte("never"))
	if err == nil || !strings.Contains(err.Error(), `use "interval" or "always"`) {
		t.Errorf("UnmarshalText(never) = %v, want an error listing the modes", err)
	}
}
