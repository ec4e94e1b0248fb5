package outputs

import (
	"fmt"
	"strconv"
	"strings"
)

// The configuration's words for Format, Framing and PoolMode, indexed by
// value. The empty word is each type's zero value, its default.
var (
	formatNames   = []string{Raw: "raw", RFC5424: "rfc5424", RFC3164: "rfc3164", JSON: "json"}
	framingNames  = []string{OctetCounting: "octet-counting", LF: "lf"}
	poolModeNames = []string{Failover: "failover", LoadBalance: "loadbalance"}
	fsyncNames    = []string{FsyncNever: "never", FsyncBatch: "batch"}
)

// String returns the configuration's word for f.
func (f Format) String() string { return nameOf(formatNames, "Format", int(f)) }

// MarshalText returns the configuration's word for f.
func (f Format) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// UnmarshalText parses "raw", "rfc5424", "rfc3164" or "json".
func (f *Format) UnmarshalText(b []byte) error { return parseName(formatNames, "format", string(b), f) }

// String returns the configuration's word for f.
func (f Framing) String() string { return nameOf(framingNames, "Framing", int(f)) }

// MarshalText returns the configuration's word for f.
func (f Framing) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// UnmarshalText parses "octet-counting" or "lf".
func (f *Framing) UnmarshalText(b []byte) error {
	return parseName(framingNames, "framing", string(b), f)
}

// String returns the configuration's word for m.
func (m PoolMode) String() string { return nameOf(poolModeNames, "PoolMode", int(m)) }

// MarshalText returns the configuration's word for m.
func (m PoolMode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText parses "failover" or "loadbalance".
func (m *PoolMode) UnmarshalText(b []byte) error {
	return parseName(poolModeNames, "mode", string(b), m)
}

// String returns the configuration's word for p.
func (p FsyncPolicy) String() string { return nameOf(fsyncNames, "FsyncPolicy", int(p)) }

// MarshalText returns the configuration's word for p.
func (p FsyncPolicy) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText parses "never" or "batch".
func (p *FsyncPolicy) UnmarshalText(b []byte) error {
	return parseName(fsyncNames, "fsync", string(b), p)
}

func nameOf(names []string, typ string, v int) string {
	if v >= 0 && v < len(names) {
		return names[v]
	}
	return typ + "(" + strconv.Itoa(v) + ")"
}

// parseName sets *v to the value names gives word, or to the zero value
// for an empty word; otherwise its error lists the words.
func parseName[T ~int](names []string, what, word string, v *T) error {
	if word == "" {
		*v = 0
		return nil
	}
	for i, name := range names {
		if word == name {
			*v = T(i)
			return nil
		}
	}
	quoted := make([]string, len(names))
	for i, name := range names {
		quoted[i] = strconv.Quote(name)
	}
	choices := quoted[len(quoted)-1]
	if len(quoted) > 1 {
		choices = strings.Join(quoted[:len(quoted)-1], ", ") + " or " + choices
	}
	return fmt.Errorf("unknown %s %q: use %s", what, word, choices)
}
