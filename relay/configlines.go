package relay

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
)

// keyLines remembers on which line each key of a configuration file stands,
// so validation errors can point the administrator at the line to fix. The
// TOML decoder reports lines only for syntax errors; this small scanner
// covers the plain "key = value" lines under [table] and [[array]] headers
// that relay configs consist of. A key it cannot place is reported without a
// line rather than with a wrong one.
type keyLines struct {
	// byPath maps "listener[1].address" to its line, and a table
	// ("listener[1]", "output[0].queue", "metrics") to its header's line.
	byPath map[string]int
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
			kl.byPath[tablePath(table, index)] = n
			continue
		case line[0] == '[':
			name := strings.TrimSpace(strings.Trim(strings.SplitN(line, "]", 2)[0], "[ "))
			// [output.queue] after [[output]] belongs to the last output.
			if parent, sub, ok := strings.Cut(name, "."); ok && counts[parent] > 0 {
				table, prefix, index = parent, sub+".", counts[parent]-1
				kl.byPath[keyPath(table, index, sub)] = n
			} else {
				table, prefix, index = name, "", -1
				kl.byPath[name] = n
			}
			continue
		}
		eq := strings.IndexByte(line, '=')
		if eq <= 0 {
			continue
		}
		key := strings.TrimSpace(line[:eq])
		key = strings.ReplaceAll(strings.ReplaceAll(key, `"`, ""), " ", "")
		kl.byPath[keyPath(table, index, prefix+key)] = n
	}
	return kl
}

func keyPath(table string, index int, key string) string {
	if table == "" {
		return key
	}
	return tablePath(table, index) + "." + key
}

func tablePath(table string, index int) string {
	if index < 0 {
		return table
	}
	return fmt.Sprintf("%s[%d]", table, index)
}

// line returns the line of table[index].key or, for a key the file does not
// have, of the header of the table that should hold it. It returns 0 when
// neither is in the file.
func (kl keyLines) line(table string, index int, key string) int {
	if n := kl.byPath[keyPath(table, index, key)]; n > 0 {
		return n
	}
	// "tls.cert_file" missing: the [listener.tls] header, if written so.
	for k := key; strings.Contains(k, "."); {
		k = k[:strings.LastIndexByte(k, '.')]
		if n := kl.byPath[keyPath(table, index, k)]; n > 0 {
			return n
		}
	}
	if table == "" {
		return 0
	}
	return kl.byPath[tablePath(table, index)]
}
