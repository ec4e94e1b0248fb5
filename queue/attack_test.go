package queue

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A length prefix damaged into a value that is plausible (not above
// maxRecordLen) but runs past the end of a data file that is not the
// newest is the same damage as an absurd one: go-diskqueue fails to read
// there, the relay salvages the records after it (all of them recovered
// here, as a running relay does), so only the one record is lost.
func TestAttackInspectPlausibleBadLength(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	backlog(t, dir, 200)
	file := dataFiles(t, dir)[1]
	path := filepath.Join(dir, file)
	offs := recordOffsets(t, path)
	if len(offs) < 3 {
		t.Fatalf("%s has %d records", file, len(offs))
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// One flipped bit in the top byte: 1 MiB and some, far past the end
	// of this 2000-byte file, yet below maxRecordLen.
	b[offs[0]+1] ^= 0x10
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	r := inspect(t, dir, nil)
	if r.Messages != 190 {
		t.Errorf("read %d messages, want 190 (the records after the damaged one are salvaged by the relay)", r.Messages)
	}
	if len(r.Damage) != 1 {
		t.Fatalf("damage %v, want one region in %s", r.Damage, file)
	}
	if d := r.Damage[0]; d.File != file || d.Offset != offs[0] {
		t.Errorf("damage %v, want %s at %d", d, file, offs[0])
	}
}

// Looking for the next record after a bad length must not cost a read and
// a checksum of up to maxRecordLen bytes at every offset: a damaged file
// of a few MiB then takes hours to verify. The file here repeats a
// 5-byte pattern that looks like a record header (1 MiB long, version 2)
// and never is one.
func TestAttackInspectResyncBounded(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	backlog(t, dir, 200)
	file := dataFiles(t, dir)[1]
	pattern := []byte{0x00, 0x10, 0x00, 0x00, RecordVersion}
	b := append([]byte{0xff, 0xff, 0xff, 0xff}, bytes.Repeat(pattern, (2<<20)/len(pattern))...)
	if err := os.WriteFile(filepath.Join(dir, file), b, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan *Report, 1)
	go func() {
		r, err := Inspect(dir, "out", InspectOptions{})
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	select {
	case r := <-done:
		if r != nil && len(r.Damage) == 0 {
			t.Errorf("no damage reported in %s", file)
		}
	case <-time.After(90 * time.Second):
		// A linear scan of 2 MiB takes milliseconds.
		t.Fatalf("Inspect of a 2 MiB damaged data file still running after 90 s")
	}
}

// attackQueueDir writes go-diskqueue metadata meta and empty data files
// with the given numbers into a new queue directory for the queue "out".
func attackQueueDir(t *testing.T, meta string, nums ...int64) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(metaPath(dir, "out"), []byte(meta), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, n := range nums {
		if err := os.WriteFile(dataPath(dir, "out", n), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// within runs f and fails the test if it has not returned after a minute
// (it returns in milliseconds when the work is bounded by the files).
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatalf("%s still running after 60 s", what)
	}
}

// One stray data file with a large number (a copy, a typo, a file from
// another tool) makes the walk from the read position to the newest file
// step through every number in between: a trillion os.Open calls, and a
// Damage entry for each missing one (the verify command grew by 400 MB in
// 15 s).
func TestAttackInspectStrayDataFileNumber(t *testing.T) {
	t.Parallel()
	dir := attackQueueDir(t, "0\n0,0\n0,0\n", 0, 999999999999)
	within(t, "Inspect", func() {
		if _, err := Inspect(dir, "out", InspectOptions{}); err != nil {
			t.Error(err)
		}
	})
}

// Metadata whose read file number is absurdly negative is as unbounded.
func TestAttackInspectNegativeReadNum(t *testing.T) {
	t.Parallel()
	dir := attackQueueDir(t, "5\n-9000000000000000000,0\n0,0\n", 0)
	within(t, "Inspect", func() {
		if _, err := Inspect(dir, "out", InspectOptions{}); err != nil {
			t.Error(err)
		}
	})
}

// The relay's own start (Open, in depth.go's walk over the data files)
// takes the same path: it never comes up, burns a CPU and ignores SIGTERM.
func TestAttackOpenStrayDataFileNumber(t *testing.T) {
	t.Parallel()
	dir := attackQueueDir(t, "0\n0,0\n0,0\n", 0, 999999999999)
	within(t, "Open", func() {
		q, err := Open(Options{Name: "out", Dir: dir, Logf: func(string, ...any) {}})
		if err == nil {
			q.Close()
		}
	})
}

// A gap in the data file numbers is reported once, however many numbers
// it spans, and damaged metadata is reported as such.
func TestAttackInspectReportsBounded(t *testing.T) {
	t.Parallel()
	r := inspect(t, attackQueueDir(t, "0\n0,0\n0,0\n", 0, 999999999999), nil)
	if len(r.Damage) != 1 || !strings.Contains(r.Damage[0].Problem, "999999999998 data files missing") {
		t.Errorf("stray data file: damage %v, want one gap", r.Damage)
	}
	r = inspect(t, attackQueueDir(t, "5\n-9000000000000000000,0\n0,0\n", 0), nil)
	if len(r.Damage) != 1 || !strings.Contains(r.Damage[0].Problem, "damaged metadata") {
		t.Errorf("negative read number: damage %v, want damaged metadata", r.Damage)
	}
}

// randomFile writes size pseudo-random bytes to path.
func randomFile(t *testing.T, path string, size int) {
	t.Helper()
	b := make([]byte, size)
	rand.New(rand.NewSource(1)).Read(b)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// Random bytes hold a plausible length prefix every few MiB; finding that
// none is a record must not cost a read per offset or a checksum of the
// rest of the file per candidate (the scan took seconds per MiB).
func TestAttackInspectRandomFile(t *testing.T) {
	t.Parallel()
	dir := attackQueueDir(t, "0\n0,0\n1,0\n", 1)
	randomFile(t, dataPath(dir, "out", 0), 16<<20)
	within(t, "Inspect", func() {
		if r := inspect(t, dir, nil); len(r.Damage) != 1 || r.Damage[0].Bytes != 16<<20 {
			t.Errorf("damage %v, want the whole file", r.Damage)
		}
	})
}

// The salvage at Open takes the same scan.
func TestAttackSalvageRandomFile(t *testing.T) {
	t.Parallel()
	dir := attackQueueDir(t, "0\n1,0\n1,0\n", 1)
	bad := dataPath(dir, "out", 0) + ".bad"
	randomFile(t, bad, 16<<20)
	q, logs := openQueue(t, dir, nil)
	within(t, "salvage", func() {
		for {
			if _, err := os.Stat(bad); errors.Is(err, fs.ErrNotExist) {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	if !strings.Contains(logs.String(), "16777216 bytes") {
		t.Errorf("log %q does not name the bytes skipped", logs.String())
	}
	if _, ok, err := q.TryNext(); ok || err != nil {
		t.Errorf("a record salvaged from random bytes (err %v)", err)
	}
}

// recordsFile writes n records of one message each (0 to n-1), with
// go-diskqueue's length prefixes, to path.
func recordsFile(t *testing.T, path string, n int) {
	t.Helper()
	var b []byte
	for i := range n {
		rec := AppendRecord(nil, []Entry{testEntry(i)})
		b = binary.BigEndian.AppendUint32(b, uint32(len(rec)))
		b = append(b, rec...)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// A negative salvage position is damage the relay survives by salvaging
// the file from its start: verify reports it instead of failing on a
// negative read offset, and the relay delivers every record.
func TestNegativeSalvagePosition(t *testing.T) {
	t.Parallel()
	dir := attackQueueDir(t, "0\n1,0\n1,0\n", 1)
	bad := dataPath(dir, "out", 0) + ".bad"
	recordsFile(t, bad, 20)
	if err := os.WriteFile(bad+".pos", []byte("-5"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := inspect(t, dir, nil)
	if r.Messages != 20 || len(r.Damage) != 1 || r.Damage[0].File != filepath.Base(bad)+".pos" || !strings.Contains(r.Damage[0].Problem, "negative offset -5") {
		t.Errorf("%d messages, damage %v; want 20 and the damaged position", r.Messages, r.Damage)
	}
	q, _ := openQueue(t, dir, nil)
	checkSequence(t, drain(t, q, 20), 0, 20)
}

// A negative read position in go-diskqueue's metadata is damaged metadata:
// verify says so instead of failing on a negative read offset, and Open
// sets it aside and delivers every record.
func TestNegativeReadPosition(t *testing.T) {
	t.Parallel()
	dir := attackQueueDir(t, "20\n0,-1\n0,0\n")
	recordsFile(t, dataPath(dir, "out", 0), 20)
	r := inspect(t, dir, nil)
	if r.Messages != 20 || len(r.Damage) != 1 || !strings.Contains(r.Damage[0].Problem, "damaged metadata") {
		t.Errorf("%d messages, damage %v; want 20 and damaged metadata", r.Messages, r.Damage)
	}
	q, _ := openQueue(t, dir, nil)
	checkSequence(t, drain(t, q, 20), 0, 20)
	if _, err := os.Stat(metaPath(dir, "out") + ".corrupt"); err != nil {
		t.Errorf("damaged metadata not set aside: %v", err)
	}
}

// A stray data file that holds records, or a write position far past
// every file, would keep go-diskqueue's reader stepping through the
// numbers in between for ever: Open sets the stray file aside for the
// salvage, and takes such metadata for damaged, and the records arrive.
func TestAttackOpenFarFileNumbers(t *testing.T) {
	t.Parallel()
	dir := attackQueueDir(t, "0\n0,0\n0,0\n", 0)
	recordsFile(t, dataPath(dir, "out", 999999999999), 3)
	within(t, "Open and a drain", func() {
		q, _ := openQueue(t, dir, nil)
		checkSequence(t, drain(t, q, 3), 0, 3)
	})
	dir = attackQueueDir(t, "3\n0,0\n999999999999,0\n")
	recordsFile(t, dataPath(dir, "out", 0), 3)
	if r := inspect(t, dir, nil); len(r.Damage) != 1 || !strings.Contains(r.Damage[0].Problem, "damaged metadata") {
		t.Errorf("damage %v, want damaged metadata", r.Damage)
	}
	within(t, "Open and a drain", func() {
		q, _ := openQueue(t, dir, nil)
		checkSequence(t, drain(t, q, 3), 0, 3)
	})
}

// A FIFO (or device) under a queue file's name would block every open of
// it for good: the relay hung at start without a log line and ignored
// SIGTERM, and relay queue stat, verify and dump hung too. Open and
// Inspect refuse it with an error naming the file instead.
func TestAttackFifoInQueueDir(t *testing.T) {
	t.Parallel()
	for _, file := range []string{"out.diskqueue.000099.dat", "out.diskqueue.meta.dat", journalName, takenName} {
		t.Run(file, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			backlog(t, dir, 50)
			path := filepath.Join(dir, file)
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				t.Fatal(err)
			}
			if err := syscall.Mkfifo(path, 0o600); err != nil {
				t.Fatal(err)
			}
			// A stuck open is released by a writer opening the FIFO, so
			// that a failing test ends instead of hanging.
			defer func() {
				if f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
					f.Close()
				}
			}()
			check := func(what string, f func() error) {
				done := make(chan error, 1)
				go func() { done <- f() }()
				select {
				case err := <-done:
					if err == nil || !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), "not a regular file") {
						t.Errorf("%s: %v, want an error naming %s as not a regular file", what, err, file)
					}
				case <-time.After(30 * time.Second):
					t.Errorf("%s still blocked after 30 s on a FIFO named %s", what, file)
				}
			}
			check("Inspect", func() error {
				_, err := Inspect(dir, "out", InspectOptions{})
				return err
			})
			check("Open", func() error {
				q, err := Open(Options{Name: "out", Dir: dir})
				if err == nil {
					q.Close()
				}
				return err
			})
		})
	}
}

// A directory whose name only starts like the queue's files (a backup an
// administrator made beside them) does not stop the queue from opening.
func TestAttackForeignDirInQueueDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	backlog(t, dir, 50)
	if err := os.Mkdir(filepath.Join(dir, "out.diskqueue.backup"), 0o750); err != nil {
		t.Fatal(err)
	}
	if _, err := Inspect(dir, "out", InspectOptions{}); err != nil {
		t.Errorf("Inspect: %v", err)
	}
	q, err := Open(Options{Name: "out", Dir: dir})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	q.Close()
}
