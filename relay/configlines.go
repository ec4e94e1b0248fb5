package relay

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"

	"github.com/BurntSushi/toml"
)

// keyLines remembers on which line each key of a configuration file stands,
// so validation errors can point the administrator at the line to fix. The
// TOML decoder reports lines only for syntax errors; this small scanner
// covers the plain "key = value" lines under [table] and [[array]] headers
// that relay configs consist of. A key it cannot place is reported without a
// line rather than with a wrong one.
type keyLines struct {
	byPath map[string]int // "listener[1].address" → line
	order  []keyLine
}

type keyLine struct {
	table string // "listener", "metrics", "" for the root
	index int    // index within an array of tables, -1 otherwise
	key   string // "address", "queue.sync_every"
	line  int
}

func indexKeyLines(data []byte) keyLines {
	kl := keyLines{byPath: map[string]int{}}
	counts := map[string]int{}
	table, prefix, index := "", "", -1
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#':
			continue
		case strings.HasPrefix(line, "[["):
			name := strings.TrimSpace(strings.Trim(strings.SplitN(line, "]]", 2)[0], "[ "))
			table, prefix, index = name, "", counts[name]
			counts[name]++
			continue
		case line[0] == '[':
			name := strings.TrimSpace(strings.Trim(strings.SplitN(line, "]", 2)[0], "[ "))
			// [output.queue] after [[output]] belongs to the last output.
			if parent, sub, ok := strings.Cut(name, "."); ok && counts[parent] > 0 {
				table, prefix, index = parent, sub+".", counts[parent]-1
			} else {
				table, prefix, index = name, "", -1
			}
			continue
		}
		eq := strings.IndexByte(line, '=')
		if eq <= 0 {
			continue
		}
		key := strings.TrimSpace(line[:eq])
		key = strings.ReplaceAll(strings.ReplaceAll(key, `"`, ""), " ", "")
		kl.add(keyLine{table: table, index: index, key: prefix + key, line: n})
	}
	return kl
}

func (kl *keyLines) add(k keyLine) {
	path := k.path()
	if _, seen := kl.byPath[path]; !seen {
		kl.byPath[path] = k.line
	}
	kl.order = append(kl.order, k)
}

func (k keyLine) path() string {
	return keyPath(k.table, k.index, k.key)
}

func keyPath(table string, index int, key string) string {
	switch {
	case table == "":
		return key
	case index < 0:
		return table + "." + key
	default:
		return fmt.Sprintf("%s[%d].%s", table, index, key)
	}
}

// atIndex formats a problem with key table[index].key.
func (kl keyLines) atIndex(table string, index int, key, msg string) string {
	path := keyPath(table, index, key)
	if line, ok := kl.byPath[path]; ok {
		return fmt.Sprintf("line %d: %s: %s", line, path, msg)
	}
	return fmt.Sprintf("%s: %s", path, msg)
}

// at formats a problem about a key the decoder reported. The decoder's key
// has no array index, so the first line with that table and key is used.
func (kl keyLines) at(k toml.Key, msg string) string {
	for _, c := range kl.order {
		full := c.key
		if c.table != "" {
			full = c.table + "." + c.key
		}
		if full == k.String() {
			return fmt.Sprintf("line %d: %s: %s", c.line, c.path(), msg)
		}
	}
	return fmt.Sprintf("%s: %s", k.String(), msg)
}
