package queue

import (
	"crypto/sha256"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// backlog fills a queue in dir with n messages in records of 10, spread
// over several data files, takes one record without marking it done (it
// stays in the journal) and closes the queue.
func backlog(t *testing.T, dir string, n int) {
	t.Helper()
	q, _ := openQueue(t, dir, func(o *Options) { o.BatchMessages = 10; o.MaxBytesPerFile = 2000; o.Linger = time.Minute })
	appendRange(t, q, 0, n)
	if err := q.Flush(); err != nil {
		t.Fatal(err)
	}
	next(t, q)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
}

// snapshot returns the names and content hashes of the files in dir.
func snapshot(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][32]byte{}
	for _, de := range des {
		b, err := os.ReadFile(filepath.Join(dir, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m[de.Name()] = sha256.Sum256(b)
	}
	return m
}

// recordOffsets returns the offsets of the records of a data file.
func recordOffsets(t *testing.T, path string) []int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var offs []int64
	for off := 0; off+4 <= len(b); off += 4 + int(binary.BigEndian.Uint32(b[off:])) {
		offs = append(offs, int64(off))
	}
	return offs
}

func inspect(t *testing.T, dir string, entries *[]int) *Report {
	t.Helper()
	var opts InspectOptions
	if entries != nil {
		opts.Entry = func(e Entry) bool {
			*entries = append(*entries, entryIndex(t, e))
			return true
		}
	}
	r, err := Inspect(dir, "out", opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestInspectBacklog(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	backlog(t, dir, 200)
	before := snapshot(t, dir)
	var got []int
	r := inspect(t, dir, &got)
	if len(r.Damage) != 0 || len(r.Notes) != 0 {
		t.Fatalf("damage %v, notes %q", r.Damage, r.Notes)
	}
	checkSequence(t, got, 0, 200)
	if r.Records != 20 || r.Messages != 200 || r.InFlightRecords != 1 || r.InFlightMessages != 10 {
		t.Errorf("records %d, messages %d, in flight %d records %d messages; want 20, 200, 1, 10",
			r.Records, r.Messages, r.InFlightRecords, r.InFlightMessages)
	}
	if !r.Oldest.Equal(testEntry(0).Received) || !r.Newest.Equal(testEntry(199).Received) {
		t.Errorf("oldest %v, newest %v", r.Oldest, r.Newest)
	}
	if r.DataFiles < 2 || r.Bytes <= r.DataBytes || r.DiskBytes < r.Bytes {
		t.Errorf("data files %d, bytes %d, data bytes %d, disk bytes %d", r.DataFiles, r.Bytes, r.DataBytes, r.DiskBytes)
	}
	if after := snapshot(t, dir); !mapsEqual(before, after) {
		t.Errorf("inspection changed the directory")
	}

	// A dump of the first N stops early.
	n := 0
	r, err := Inspect(dir, "out", InspectOptions{Entry: func(Entry) bool { n++; return n < 15 }})
	if err != nil || !r.Stopped || n != 15 {
		t.Fatalf("stopped %v after %d entries, err %v", r.Stopped, n, err)
	}
}

func mapsEqual(a, b map[string][32]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestInspectDamage flips a byte in one record and cuts another data file
// inside its last record; Inspect reports exactly those two regions, with
// their files, offsets and message counts, and reads everything else.
func TestInspectDamage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	backlog(t, dir, 200)
	files := dataFiles(t, dir)
	if len(files) < 3 {
		t.Fatalf("only %d data files", len(files))
	}
	flipped, cut := files[1], files[0]
	flipOffs := recordOffsets(t, filepath.Join(dir, flipped))
	flipInRecord(t, filepath.Join(dir, flipped), 1)
	cutOffs := recordOffsets(t, filepath.Join(dir, cut))
	lastOff := cutOffs[len(cutOffs)-1]
	if err := os.Truncate(filepath.Join(dir, cut), lastOff+4+20); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)

	var got []int
	r := inspect(t, dir, &got)
	want := []Damage{
		{File: cut, Offset: lastOff, Messages: 10},
		{File: flipped, Offset: flipOffs[1], Messages: 10},
	}
	if len(r.Damage) != len(want) {
		t.Fatalf("damage %v, want %v", r.Damage, want)
	}
	for i, d := range r.Damage {
		if d.File != want[i].File || d.Offset != want[i].Offset || d.Messages != want[i].Messages {
			t.Errorf("damage %d: %v, want %s at %d with %d messages", i, d, want[i].File, want[i].Offset, want[i].Messages)
		}
	}
	if n, unknown := r.DamagedMessages(); n != 20 || unknown {
		t.Errorf("DamagedMessages = %d, %v", n, unknown)
	}
	if r.Messages != 180 || len(got) != 180 {
		t.Errorf("read %d messages (%d dumped), want 180", r.Messages, len(got))
	}
	if after := snapshot(t, dir); !mapsEqual(before, after) {
		t.Errorf("inspection changed the directory")
	}
}

// TestInspectBadLength: a damaged length prefix hides where the records
// after it start; the region up to the next intact record is reported in
// bytes, and the records after it are read.
func TestInspectBadLength(t *testing.T) {
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
	binary.BigEndian.PutUint32(b[offs[0]:], 0x7fffffff)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	r := inspect(t, dir, nil)
	if len(r.Damage) != 1 {
		t.Fatalf("damage %v", r.Damage)
	}
	d := r.Damage[0]
	if d.File != file || d.Offset != offs[0] || d.Bytes != offs[1]-offs[0] || d.Messages != -1 {
		t.Errorf("damage %v, want %s at %d, %d bytes, count unknown", d, file, offs[0], offs[1]-offs[0])
	}
	if r.Messages != 190 {
		t.Errorf("read %d messages, want 190", r.Messages)
	}
}

func dataFiles(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, de := range des {
		if n := de.Name(); strings.HasPrefix(n, "out.diskqueue.") && strings.HasSuffix(n, ".dat") && !strings.Contains(n, "meta") {
			if fi, err := de.Info(); err == nil && fi.Size() > 0 {
				files = append(files, n)
			}
		}
	}
	slices.Sort(files)
	return files
}

func TestPurge(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	backlog(t, dir, 200)
	if err := os.WriteFile(filepath.Join(dir, "unrelated"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := Purge(dir, "out")
	if err != nil || res.Files < 3 || res.Bytes == 0 {
		t.Fatalf("Purge = %+v, %v", res, err)
	}
	if left := snapshot(t, dir); len(left) != 1 {
		t.Errorf("left after purge: %v", left)
	}
	if r := inspect(t, dir, nil); r.Records != 0 || len(r.Damage) != 0 {
		t.Errorf("after purge: %+v", r)
	}
	q, _ := openQueue(t, dir, nil)
	appendRange(t, q, 0, 5)
	checkSequence(t, drain(t, q, 5), 0, 5)
}

// TestInspectLive inspects a queue that is being written and read: no
// damage is reported, and nothing is changed under the queue.
func TestInspectLive(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q, logs := openQueue(t, dir, func(o *Options) { o.BatchMessages = 10; o.MaxBytesPerFile = 4000 })
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 3000 {
			if err := q.Append(testEntry(i)); err != nil {
				t.Errorf("Append: %v", err)
				return
			}
		}
	}()
	var got []int
	for inspections := 0; len(got) < 3000; {
		if inspections < 50 {
			inspections++
			r, err := Inspect(dir, "out", InspectOptions{Live: true})
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Damage) != 0 {
				t.Fatalf("live inspection reports damage: %v", r.Damage)
			}
		}
		b := next(t, q)
		for _, e := range b.Entries {
			got = append(got, entryIndex(t, e))
		}
		if err := q.Done(b); err != nil {
			t.Fatal(err)
		}
	}
	<-done
	checkSequence(t, got, 0, 3000)
	if q.Corrupt() != 0 || q.LostRecords() != 0 {
		t.Errorf("corrupt %d, lost %d:\n%s", q.Corrupt(), q.LostRecords(), logs)
	}
}

// TestInspectJournalAndMetadata: a torn journal tail is damage at rest and
// a write in progress while a relay runs; a data file cut at a record
// boundary shows only against the metadata's count; without metadata every
// record not yet taken counts, with a note.
func TestInspectJournalAndMetadata(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	backlog(t, dir, 200)
	journal := filepath.Join(dir, journalName)
	fi, err := os.Stat(journal)
	if err != nil || fi.Size() == 0 {
		t.Fatalf("journal: %v, %v", fi, err)
	}
	f, err := os.OpenFile(journal, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte{0, 0, 1, 0, 1, 2}); err != nil { // a header cut short
		t.Fatal(err)
	}
	f.Close()
	r := inspect(t, dir, nil)
	if len(r.Damage) != 1 || r.Damage[0].File != journalName || r.Damage[0].Offset != fi.Size() || r.Damage[0].Bytes != 6 {
		t.Errorf("torn journal at rest: damage %v", r.Damage)
	}
	if r, err := Inspect(dir, "out", InspectOptions{Live: true}); err != nil || len(r.Damage) != 0 {
		t.Errorf("torn journal while live: damage %v, %v", r.Damage, err)
	}
	if err := os.Truncate(journal, fi.Size()); err != nil {
		t.Fatal(err)
	}

	// Cut the second data file after its first record.
	file := dataFiles(t, dir)[1]
	offs := recordOffsets(t, filepath.Join(dir, file))
	if err := os.Truncate(filepath.Join(dir, file), offs[1]); err != nil {
		t.Fatal(err)
	}
	r = inspect(t, dir, nil)
	missing := int64(len(offs) - 1)
	if len(r.Damage) != 1 || r.Damage[0].File != "out.diskqueue.meta.dat" || r.Damage[0].Messages != -1 ||
		!strings.Contains(r.Damage[0].Problem, strconv.FormatInt(missing, 10)+" records") {
		t.Errorf("file cut at a record boundary: damage %v, want %d records missing", r.Damage, missing)
	}

	if err := os.Remove(filepath.Join(dir, "out.diskqueue.meta.dat")); err != nil {
		t.Fatal(err)
	}
	r = inspect(t, dir, nil)
	if len(r.Damage) != 0 || len(r.Notes) != 1 || !strings.Contains(r.Notes[0], "no metadata") {
		t.Errorf("no metadata: damage %v, notes %q", r.Damage, r.Notes)
	}
	// The first data file's records count again, but for the one in
	// flight (counted once, from the journal): the relay skips it there by
	// its sequence number.
	if want := 200 - 10*missing; r.Messages != want {
		t.Errorf("no metadata: %d messages, want %d", r.Messages, want)
	}
	q, _ := openQueue(t, dir, nil)
	if got := len(drainAll(t, q)); int64(got) != r.Messages {
		t.Errorf("no metadata: the relay delivers %d messages, Inspect counts %d", got, r.Messages)
	}
}
