package relay

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// decodeConfig decodes a parsed file into cfg one key at a time, rather than
// in one toml.Decode that stops at the first value it cannot decode: every
// bad value and unknown key is reported, and the keys that did decode are
// still there for validation. A key whose value did not decode keeps its
// zero value and is marked in p, so validation does not report it again.
func decodeConfig(md *toml.MetaData, top map[string]toml.Primitive, cfg *Config, p *problems) {
	d := configDecoder{md: md, p: p}
	d.table(top, reflect.ValueOf(cfg).Elem(), keyAt{index: -1})
}

type configDecoder struct {
	md *toml.MetaData
	p  *problems
}

// keyAt places a table's keys: in the root (table ""), in a top-level
// table, or in element index of an array of tables, under prefix
// ("tls.", "queue.") when the table is nested in one of those.
type keyAt struct {
	table  string
	index  int
	prefix string
}

func (at keyAt) key(name string) string { return at.prefix + name }

// dotted is how the file spells the key, without array indexes:
// "listener.tls.cert_file".
func (at keyAt) dotted(name string) string {
	if at.table == "" {
		return at.key(name)
	}
	return at.table + "." + at.key(name)
}

// nested returns the place of the keys of the table named name in at.
func (at keyAt) nested(name string) keyAt {
	if at.table == "" {
		return keyAt{table: name, index: -1}
	}
	return keyAt{table: at.table, index: at.index, prefix: at.key(name) + "."}
}

func (d *configDecoder) table(m map[string]toml.Primitive, rv reflect.Value, at keyAt) {
	rt := rv.Type()
	known := map[string]bool{}
	for i := range rt.NumField() {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("toml"), ",")
		if name == "" || name == "-" {
			continue
		}
		known[name] = true
		prim, ok := m[name]
		if !ok {
			continue
		}
		field := rv.Field(i)
		// The decoder checks the TOML type of a value, except that it
		// decodes any value into a map without complaint: tables are
		// checked here, on the value as parsed. Decoding into an empty
		// interface cannot fail.
		var raw any
		_ = d.md.PrimitiveDecode(prim, &raw)
		switch {
		case isConfigTable(field.Type()):
			var sub map[string]toml.Primitive
			if _, ok := raw.(map[string]any); !ok || d.md.PrimitiveDecode(prim, &sub) != nil {
				d.p.badValue(at.table, at.index, at.key(name), "must be a table, not "+tomlTypeName(raw))
				continue
			}
			d.table(sub, field, at.nested(name))
		case at.table == "" && field.Kind() == reflect.Slice && isConfigTable(field.Type().Elem()):
			var elems []map[string]toml.Primitive
			if !isArrayOfTables(raw) || d.md.PrimitiveDecode(prim, &elems) != nil {
				d.p.badValue(at.table, at.index, at.key(name), "must be tables written [["+name+"]], not "+tomlTypeName(raw))
				continue
			}
			field.Set(reflect.MakeSlice(field.Type(), len(elems), len(elems)))
			for j, elem := range elems {
				d.table(elem, field.Index(j), keyAt{table: name, index: j})
			}
		default:
			d.p.set[keyPath(at.table, at.index, at.key(name))] = true
			if err := d.md.PrimitiveDecode(prim, field.Addr().Interface()); err != nil {
				d.p.badValue(at.table, at.index, at.key(name), decodeMessage(err, raw, field.Type()))
			}
		}
	}
	var unknown []string
	for name := range m {
		if !known[name] {
			unknown = append(unknown, name)
		}
	}
	slices.Sort(unknown)
	for _, name := range unknown {
		msg := "unknown key " + strconv.Quote(at.dotted(name))
		if guess := closestName(name, known); guess != "" {
			msg += " (did you mean " + strconv.Quote(at.key(guess)) + "?)"
		}
		d.p.badValue(at.table, at.index, at.key(name), msg)
	}
}

// didYouMean is " (did you mean "x"?)" for the name in known that name
// most likely misspells, or "".
func didYouMean(name string, known map[string]bool) string {
	if guess := closestName(name, known); guess != "" {
		return " (did you mean " + strconv.Quote(guess) + "?)"
	}
	return ""
}

// closestName returns the known name a misspelt one most likely meant: the
// only one that differs from it in case alone ("UDP" for a listener named
// "udp", which is too many edits away for a short name), or else the
// nearest by edit distance, when it is within a third of the name's length
// (at least one edit), and the only one that near. Otherwise "".
func closestName(name string, known map[string]bool) string {
	folded := ""
	for k := range known {
		if strings.EqualFold(k, name) {
			if folded != "" {
				folded = ""
				break
			}
			folded = k
		}
	}
	if folded != "" {
		return folded
	}
	best, bestDist, ties := "", max(1, len(name)/3)+1, 0
	for k := range known {
		switch d := editDistance(name, k); {
		case d < bestDist:
			best, bestDist, ties = k, d, 0
		case d == bestDist:
			ties++
		}
	}
	if ties > 0 {
		return ""
	}
	return best
}

// editDistance counts the insertions, deletions, substitutions and swaps
// of neighbours that turn a into b (optimal string alignment, in bytes):
// the usual typing errors, each one edit.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

var (
	tomlUnmarshaler = reflect.TypeFor[toml.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// isConfigTable reports whether t is written as a TOML table: a struct that
// does not decode itself from a value (as Duration and Timezone do).
func isConfigTable(t reflect.Type) bool {
	if t.Kind() != reflect.Struct {
		return false
	}
	pt := reflect.PointerTo(t)
	return !pt.Implements(tomlUnmarshaler) && !pt.Implements(textUnmarshaler)
}

func isArrayOfTables(v any) bool {
	switch v := v.(type) {
	case []map[string]any:
		return true
	case []any:
		for _, e := range v {
			if _, ok := e.(map[string]any); !ok {
				return false
			}
		}
		return true
	}
	return false
}

// tomlTypeName names the TOML type of a decoded value.
func tomlTypeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case map[string]any:
		return "a table"
	case []any, []map[string]any:
		return "an array"
	}
	return "a date or time"
}

// goTypeName names what a value of type t is written as.
func goTypeName(t reflect.Type) string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "an integer"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return "a number"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() == reflect.Slice:
		return "an array"
	}
	return ""
}

// tomlErrorPrefix is what the decoder puts before its own messages; the
// problem's line and key say the same.
var tomlErrorPrefix = regexp.MustCompile(`^toml: (line \d+ )?(\(last key "[^"]*"\): )?`)

// decodeMessage says what is wrong with raw, which did not decode into a
// value of type t: the error of the type's own UnmarshalText or
// UnmarshalTOML, or that raw has the wrong TOML type.
func decodeMessage(err error, raw any, t reflect.Type) string {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return pe.Message
	}
	if want, got := goTypeName(t), tomlTypeName(raw); raw != nil && want != "" && want != got {
		if s, ok := raw.(string); ok {
			return fmt.Sprintf("must be %s, not a string (%q)", want, s)
		}
		return fmt.Sprintf("must be %s, not %s", want, got)
	}
	return tomlErrorPrefix.ReplaceAllString(err.Error(), "")
}
