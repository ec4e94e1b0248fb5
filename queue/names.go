package queue

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// CheckName returns an error unless name can name a queue. The name is the
// queue's directory under the data dir and the prefix of its files, so it
// must be a single file name: a slash would put the queue elsewhere, and
// "." or ".." would make it share a directory.
func CheckName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") {
		return fmt.Errorf("invalid name %q: must be a non-empty file name (no slash, not . or ..) because it names the queue's directory", name)
	}
	return nil
}

// checkRegularFiles returns an error naming the first of the queue's files
// in dir that is not a regular file (a symbolic link is followed). Opening
// a FIFO under such a name blocks until a writer comes, which hung the
// relay at start (deaf to SIGTERM) and the queue tools; a directory or
// device is no queue file either.
func checkRegularFiles(dir, name string) error {
	des, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, de := range des {
		n := de.Name()
		// Only names the queue opens: a directory such as a backup named
		// after the queue is none of its business.
		dq := strings.HasPrefix(n, name+".diskqueue.") &&
			(strings.HasSuffix(n, ".dat") || strings.HasSuffix(n, ".dat.bad") || strings.HasSuffix(n, ".dat.bad.pos"))
		if !dq && !strings.HasPrefix(n, journalName) && n != takenName {
			continue
		}
		fi, err := os.Stat(filepath.Join(dir, n))
		if err != nil {
			continue // gone meanwhile, or a dangling link: what reads it says so
		}
		if !fi.Mode().IsRegular() {
			what := "a device or socket"
			switch {
			case fi.IsDir():
				what = "a directory"
			case fi.Mode()&os.ModeNamedPipe != 0:
				what = "a named pipe"
			}
			return fmt.Errorf("%s is not a regular file but %s: move it out of the queue directory", n, what)
		}
	}
	return nil
}

// fullPolicyNames are the configuration's words for the policies.
var fullPolicyNames = []string{Block: "block", DropNewest: "drop_newest", DropOldest: "drop_oldest"}

// String returns the configuration's word for p.
func (p FullPolicy) String() string {
	if p >= 0 && int(p) < len(fullPolicyNames) {
		return fullPolicyNames[p]
	}
	return "FullPolicy(" + strconv.Itoa(int(p)) + ")"
}

// MarshalText returns the configuration's word for p.
func (p FullPolicy) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText parses "block", "drop_newest" or "drop_oldest"; empty text
// is the default, Block.
func (p *FullPolicy) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*p = Block
		return nil
	}
	for v, name := range fullPolicyNames {
		if string(b) == name {
			*p = FullPolicy(v)
			return nil
		}
	}
	return fmt.Errorf("unknown policy %q: use %q, %q or %q", b, fullPolicyNames[Block], fullPolicyNames[DropNewest], fullPolicyNames[DropOldest])
}

// fsyncNames are the configuration's words for the fsync modes.
var fsyncNames = []string{FsyncInterval: "interval", FsyncAlways: "always"}

// String returns the configuration's word for m.
func (m FsyncMode) String() string {
	if m >= 0 && int(m) < len(fsyncNames) {
		return fsyncNames[m]
	}
	return "FsyncMode(" + strconv.Itoa(int(m)) + ")"
}

// MarshalText returns the configuration's word for m.
func (m FsyncMode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText parses "interval" or "always"; empty text is the default,
// FsyncInterval.
func (m *FsyncMode) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*m = FsyncInterval
		return nil
	}
	for v, name := range fsyncNames {
		if string(b) == name {
			*m = FsyncMode(v)
			return nil
		}
	}
	return fmt.Errorf("unknown fsync mode %q: use %q or %q", b, fsyncNames[FsyncInterval], fsyncNames[FsyncAlways])
}
