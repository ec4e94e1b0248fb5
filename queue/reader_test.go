package queue

import (
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"testing"
)

// readerOptions makes records of one message each and data files of a few
// records, so that a few dozen messages roll over many files.
func readerOptions(o *Options) {
	o.BatchMessages = 1
	o.MaxBytesPerFile = 400
}

// TestReaderRollover: records written in bursts and read in between are
// read in order across many files, each data file is deleted once the
// reader has passed it, and go-diskqueue never reads (no *.bad file, no
// file but the one it writes left at the end).
func TestReaderRollover(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q, logs := openQueue(t, dir, readerOptions)
	var got []int
	n := 0
	for round := range 20 {
		appendRange(t, q, n, n+round%7+1)
		n += round%7 + 1
		got = append(got, drain(t, q, n-len(got))...)
		nums, err := dataFileNums(dir, "out")
		if err != nil {
			t.Fatal(err)
		}
		if w := q.writeEndNow(); len(nums) != 1 || nums[0] != w.num {
			t.Fatalf("round %d: data files %v with everything read, want only %d, the write file", round, nums, w.num)
		}
	}
	checkSequence(t, got, 0, n)
	if w := q.writeEndNow(); w.num < 10 {
		t.Errorf("only %d files written; the test shows no rollover", w.num+1)
	}
	if bad := badFiles(t, dir); len(bad) > 0 {
		t.Errorf("files set aside: %v", bad)
	}
	if logs.String() != "" {
		t.Errorf("logged:\n%s", logs)
	}
}

// TestReaderDeletesPassedFiles: with a backlog over several files, each file
// goes as soon as the reader has read its last record, and not before.
func TestReaderDeletesPassedFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q, _ := openQueue(t, dir, readerOptions)
	const n = 40
	appendRange(t, q, 0, n)
	first, err := dataFileNums(dir, "out")
	if err != nil {
		t.Fatal(err)
	}
	if len(first) < 5 {
		t.Fatalf("backlog in %d files, want several", len(first))
	}
	for i := range n {
		b := next(t, q)
		if got := entryIndexes(t, b); len(got) != 1 || got[0] != i {
			t.Fatalf("record %d holds %v", i, got)
		}
		q.Done(b)
		nums, err := dataFileNums(dir, "out")
		if err != nil {
			t.Fatal(err)
		}
		// The reader's file and every later one are there; earlier ones
		// are gone once the next read found the end of the file.
		if nums[0] > q.rd.num || nums[0] < q.rd.num-1 || nums[len(nums)-1] != first[len(first)-1] {
			t.Fatalf("after record %d (reader in file %d at %d): data files %v", i, q.rd.num, q.rd.pos, nums)
		}
	}
	if _, ok, _ := q.TryNext(); ok {
		t.Fatal("a record after the last")
	}
	if nums, _ := dataFileNums(dir, "out"); len(nums) != 1 {
		t.Errorf("data files %v after reading everything, want the write file only", nums)
	}
}

// TestReaderRestartAtEveryPosition: a clean stop after any number of
// records taken (and done) resumes exactly after them, with the unread tail
// intact, whether it starts at a file boundary or inside a file.
func TestReaderRestartAtEveryPosition(t *testing.T) {
	t.Parallel()
	const n = 30
	for k := 0; k <= n; k++ {
		dir := t.TempDir()
		q, _ := openQueue(t, dir, readerOptions)
		appendRange(t, q, 0, n)
		got := drain(t, q, k)
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(metaPath(dir, "out"))
		if err != nil {
			t.Fatal(err)
		}
		m, err := parseMeta(b)
		if err != nil {
			t.Fatalf("after %d taken: metadata %q: %v", k, b, err)
		}
		if m.depth != int64(n-k) {
			t.Errorf("after %d taken: metadata depth %d, want %d", k, m.depth, n-k)
		}
		q2, logs := openQueue(t, dir, readerOptions)
		if d := q2.Depth(); d != int64(n-k) {
			t.Errorf("after %d taken: Depth %d at reopen, want %d", k, d, n-k)
		}
		got = append(got, drain(t, q2, n-k)...)
		appendRange(t, q2, n, n+3)
		got = append(got, drain(t, q2, 3)...)
		checkSequence(t, got, 0, n+3)
		if _, ok, _ := q2.TryNext(); ok {
			t.Fatalf("after %d taken: a record delivered twice", k)
		}
		if q2.LostRecords() != 0 || logs.String() != "" {
			t.Errorf("after %d taken: %d lost records, log:\n%s", k, q2.LostRecords(), logs)
		}
		q2.Close()
	}
}

// TestReaderDamageInWriteFile: a damaged length prefix in the file
// go-diskqueue is writing sets the file aside for the salvage and moves
// go-diskqueue to a new file: the records before and after the damage are
// delivered (the salvage puts the latter back), the damaged one is
// counted lost, and later records are written and read normally.
func TestReaderDamageInWriteFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q, logs := openQueue(t, dir, func(o *Options) { o.BatchMessages = 1 })
	appendRange(t, q, 0, 5)
	w := q.writeEndNow()
	path := dataPath(dir, "out", w.num)
	offs := recordOffsets(t, path)
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	var huge [4]byte
	binary.BigEndian.PutUint32(huge[:], 1<<30)
	if _, err := f.WriteAt(huge[:], offs[2]); err != nil {
		t.Fatal(err)
	}
	f.Close()
	got := drain(t, q, 2)
	checkSequence(t, got, 0, 2)
	// The salvage puts records 3 and 4 back; the damaged record 2 is lost.
	got = drain(t, q, 2)
	if len(got) != 2 || got[0] != 3 || got[1] != 4 {
		t.Fatalf("after the damage: %v, want [3 4]", got)
	}
	if nw := q.writeEndNow(); nw.num <= w.num {
		t.Errorf("go-diskqueue still writes file %d", nw.num)
	}
	appendRange(t, q, 5, 8)
	checkSequence(t, drain(t, q, 3), 5, 8)
	eventually(t, "the damaged file to be salvaged and removed", func() bool { return len(badFiles(t, dir)) == 0 })
	eventually(t, "the damaged record to be counted lost", func() bool { return q.LostRecords() == 1 })
	if !strings.Contains(logs.String(), "is damaged") {
		t.Errorf("no log line says the file is damaged:\n%s", logs)
	}
}

// TestReaderStopWithUnreadTail: records written but never read before a
// clean stop survive it with their count, across a stop that happens in
// the middle of a file and the first read after a reopen.
func TestReaderStopWithUnreadTail(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q, _ := openQueue(t, dir, readerOptions)
	appendRange(t, q, 0, 7)
	got := drain(t, q, 3)
	appendRange(t, q, 7, 12)
	q.Close()
	q, _ = openQueue(t, dir, readerOptions)
	appendRange(t, q, 12, 15)
	if d := q.Depth(); d != 12 {
		t.Errorf("Depth %d after reopen and 3 appends, want 12", d)
	}
	q.Close()
	q, _ = openQueue(t, dir, readerOptions)
	got = append(got, drain(t, q, 12)...)
	checkSequence(t, got, 0, 15)
}

// TestReaderCrashAtEveryPosition: after a kill -9 at any point of reading a
// backlog over several files (the metadata then holds no read position),
// the queue delivers exactly the records not taken, the one in flight
// first, skipping those taken before the crash, and counts nothing lost.
func TestReaderCrashAtEveryPosition(t *testing.T) {
	t.Parallel()
	const n = 30
	dir := t.TempDir()
	q, _ := openQueue(t, dir, readerOptions)
	appendRange(t, q, 0, n)
	for k := 0; k < n; k++ {
		// Record k is taken and in flight at the crash.
		b := next(t, q)
		if got := entryIndexes(t, b); len(got) != 1 || got[0] != k {
			t.Fatalf("record %d holds %v", k, got)
		}
		snap := copyFiles(t, dir)
		b2, err := os.ReadFile(metaPath(snap, "out"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := parseMeta(b2); !errors.Is(err, errNoReadPos) {
			t.Fatalf("metadata of a running queue %q: %v, want no read position", b2, err)
		}
		// The inspector counts what Open will deliver.
		rep, err := Inspect(snap, "out", InspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Records != int64(n-k) || rep.InFlightRecords != 1 || len(rep.Damage) > 0 {
			t.Errorf("crash at %d: Inspect counts %d records, %d in flight, damage %v; want %d, 1, none", k, rep.Records, rep.InFlightRecords, rep.Damage, n-k)
		}
		q2, logs := openQueue(t, snap, readerOptions)
		checkSequence(t, drain(t, q2, n-k), k, n)
		if _, ok, _ := q2.TryNext(); ok {
			t.Fatalf("crash at %d: a record delivered twice", k)
		}
		if q2.LostRecords() != 0 || q2.LostBytes() != 0 {
			t.Errorf("crash at %d: %d records, %d bytes counted lost; log:\n%s", k, q2.LostRecords(), q2.LostBytes(), logs)
		}
		q2.Close()
		q.Done(b)
	}
}
