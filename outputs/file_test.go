package outputs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relay-syslog/relay/internal/testpeer"
	"github.com/relay-syslog/relay/queue"
)

// TestFilePerHost: a path template writes each host's messages to its own
// file, in order, through a worker; at most max_open_files are open; a
// rotated file is reopened at its path; directories and files get the
// configured modes.
func TestFilePerHost(t *testing.T) {
	t.Parallel()
	old := syscall.Umask(0)
	syscall.Umask(old)
	if old&0o027 != old {
		t.Skipf("umask %04o hides the modes under test", old) // not CI's 022
	}
	dir := t.TempDir()
	f, err := NewFileWith(FileOptions{Path: dir + "/{hostname}/{app_name}.log", MaxOpenFiles: 3,
		FileMode: 0o600, DirMode: 0o700, Fsync: FsyncBatch})
	if err != nil {
		t.Fatal(err)
	}
	f.rotateCheck = 0
	q := newTestQueue(t)
	const hosts, per = 7, 50
	for i := range per {
		for h := range hosts {
			msg := fmt.Sprintf("<13>Dec  6 23:29:58 host%d app%d: line %d", h, h%2, i)
			if err := q.Append(queue.Entry{Received: time.Now(), Listener: "in", Data: []byte(msg)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := q.Flush(); err != nil {
		t.Fatal(err)
	}
	runWorker(t, q, f)
	pathOf := func(h int) string { return fmt.Sprintf("%s/host%d/app%d.log", dir, h, h%2) }
	for h := range hosts {
		p := pathOf(h)
		if !testpeer.WaitFor(30*time.Second, func() bool { return len(testpeer.ReadLines(p)) == per }) {
			t.Fatalf("%s has %d lines, want %d", p, len(testpeer.ReadLines(p)), per)
		}
		for i, l := range testpeer.ReadLines(p) {
			if want := fmt.Sprintf("host%d app%d: line %d", h, h%2, i); !strings.HasSuffix(l, want) {
				t.Fatalf("%s line %d is %q, want it to end in %q", p, i, l, want)
			}
		}
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		dst, err := os.Stat(filepath.Dir(p))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 || dst.Mode().Perm() != 0o700 {
			t.Errorf("modes %v and %v, want 0600 and 0700", st.Mode().Perm(), dst.Mode().Perm())
		}
	}
	// The worker's goroutine owns f; its open files are counted in /proc.
	if n := openFilesUnder(t, dir); n > 3 {
		t.Errorf("%d files open under the directory, want at most max_open_files 3", n)
	}
	// Rotation of one host's file: its next messages go to a new file.
	if err := os.Rename(pathOf(0), pathOf(0)+".1"); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		msg := fmt.Sprintf("<13>Dec  6 23:29:58 host0 app0: after %d", i)
		if err := q.Append(queue.Entry{Received: time.Now(), Listener: "in", Data: []byte(msg)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Flush(); err != nil {
		t.Fatal(err)
	}
	if !testpeer.WaitFor(30*time.Second, func() bool { return len(testpeer.ReadLines(pathOf(0))) == 5 }) {
		t.Fatalf("after rotation %s has %d lines, want 5", pathOf(0), len(testpeer.ReadLines(pathOf(0))))
	}
	if n := len(testpeer.ReadLines(pathOf(0) + ".1")); n != per {
		t.Errorf("the rotated file has %d lines, want %d", n, per)
	}
}

// openFilesUnder counts this process's descriptors open on files below dir.
func openFilesUnder(t *testing.T, dir string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(target, dir+"/") {
			n++
		}
	}
	return n
}

// TestFileLRU: with more paths in one batch than max_open_files, the least
// recently used files are written and closed, and nothing is lost.
func TestFileLRU(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	f, err := NewFileWith(FileOptions{Path: dir + "/{hostname}.log", MaxOpenFiles: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var entries []queue.Entry
	var paths [][]byte
	for i := range 20 {
		h := fmt.Sprintf("h%d", i%5)
		entries = append(entries, queue.Entry{Data: []byte(fmt.Sprintf("%s %d", h, i))})
		paths = append(paths, []byte(dir+"/"+h+".log"))
	}
	if _, err := f.WritePaths(context.Background(), entries, paths); err != nil {
		t.Fatal(err)
	}
	if f.OpenFiles() > 2 {
		t.Errorf("%d files open, want at most 2", f.OpenFiles())
	}
	for h := range 5 {
		lines := testpeer.ReadLines(fmt.Sprintf("%s/h%d.log", dir, h))
		if len(lines) != 4 {
			t.Fatalf("h%d has %d lines, want 4", h, len(lines))
		}
		for k, l := range lines {
			if want := fmt.Sprintf("h%d %d", h, h+5*k); l != want {
				t.Errorf("h%d line %d is %q, want %q (order kept)", h, k, l, want)
			}
		}
	}
}

// TestFileWriteErrorNotDelivered: a batch whose file cannot be written is
// not counted as written, so the worker sends it again.
func TestFileWriteErrorNotDelivered(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	f, err := NewFileWith(FileOptions{Path: dir + "/{hostname}/x.log"})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// A regular file where the host's directory would go.
	if err := os.WriteFile(dir+"/blocked", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	entries := []queue.Entry{{Data: []byte("a")}, {Data: []byte("b")}}
	paths := [][]byte{[]byte(dir + "/ok/x.log"), []byte(dir + "/blocked/x.log")}
	if _, err := f.WritePaths(context.Background(), entries, paths); err == nil {
		t.Fatal("a batch with an unwritable path reported written")
	}
	if s, _ := f.Settled(time.Now()); s != 0 {
		t.Errorf("settled %d after a failed batch", s)
	}
	if _, err := os.Stat(dir + "/ok/x.log"); err == nil && len(testpeer.ReadLines(dir+"/ok/x.log")) != 0 {
		t.Errorf("part of the failed batch was written")
	} else if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
}

// TestFileFixedPathBraces: a path without fields is one file, with "{{"
// and "}}" written as single braces, as in a template.
func TestFileFixedPathBraces(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	f, err := NewFileWith(FileOptions{Path: dir + "/a{{b}}.log"})
	if err != nil {
		t.Fatal(err)
	}
	if f.PathTemplate() != nil {
		t.Fatal("a path without fields has a template")
	}
	if err := f.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(context.Background(), []queue.Entry{{Data: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	if lines := testpeer.ReadLines(dir + "/a{b}.log"); len(lines) != 1 || lines[0] != "x" {
		t.Errorf("a{b}.log holds %q", lines)
	}
}

// TestFileEscapesControlBytes: control bytes in a message are written as
// '#' and three octal digits, as rsyslog writes them, so that a sender
// cannot put terminal escapes into a file; with KeepControl only the line
// feed is (every line stays one message). DEL and UTF-8 are never
// escaped, as rsyslog leaves them.
func TestFileEscapesControlBytes(t *testing.T) {
	t.Parallel()
	msg := "<13>a\tb\x1b[31mred\x00\x07\x7f\nnext é"
	for _, tc := range []struct {
		keep bool
		want string
	}{
		{false, "<13>a#011b#033[31mred#000#007\x7f#012next é"},
		{true, "<13>a\tb\x1b[31mred\x00\x07\x7f#012next é"},
	} {
		path := filepath.Join(t.TempDir(), "out.log")
		f, err := NewFileWith(FileOptions{Path: path, KeepControl: tc.keep})
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Connect(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(context.Background(), []queue.Entry{{Data: []byte(msg)}, {Data: []byte("plain")}}); err != nil {
			t.Fatal(err)
		}
		_ = f.Close()
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if want := tc.want + "\nplain\n"; string(data) != want {
			t.Errorf("KeepControl %v: file holds %q, want %q", tc.keep, data, want)
		}
	}
}
