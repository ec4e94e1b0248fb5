package queue

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func badFiles(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var bad []string
	for _, de := range des {
		if strings.Contains(de.Name(), ".bad") {
			bad = append(bad, de.Name())
		}
	}
	return bad
}

// TestDamagedLengthPrefixBetweenRuns damages the length prefix of one record
// in a data file while the relay is stopped. go-diskqueue gives up on the
// file; the salvage delivers every other record, counts the damage and
// removes the file.
func TestDamagedLengthPrefixBetweenRuns(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q, _ := openQueue(t, dir, func(o *Options) { o.BatchMessages = 1 })
	appendRange(t, q, 0, 100)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "out.diskqueue.000000.dat")
	b, err := os.ReadFile(data)
	if err != nil {
		t.Fatal(err)
	}
	// Walk to record 10 and make its length absurd.
	pos := 0
	for range 10 {
		pos += 4 + int(binary.BigEndian.Uint32(b[pos:]))
	}
	binary.BigEndian.PutUint32(b[pos:], 0x7fffffff)
	if err := os.WriteFile(data, b, 0o600); err != nil {
		t.Fatal(err)
	}

	q2, logs := openQueue(t, dir, func(o *Options) { o.BatchMessages = 1 })
	got := map[int]int{}
	eventually(t, "99 records", func() bool {
		for {
			b, ok, err := q2.TryNext()
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			for _, e := range b.Entries {
				got[entryIndex(t, e)]++
			}
			q2.Done(b)
		}
		return len(got) >= 99
	})
	for i := range 100 {
		if i != 10 && got[i] != 1 {
			t.Errorf("record %d delivered %d times", i, got[i])
		}
	}
	if got[10] != 0 {
		t.Errorf("damaged record 10 delivered")
	}
	// go-diskqueue found 90 records missing at its tail; the salvage put
	// 89 back: one record is lost, and its bytes.
	eventually(t, "the lost record to be counted", func() bool { return q2.LostRecords() == 1 })
	if q2.LostBytes() == 0 || q2.Corrupt() != 0 {
		t.Errorf("LostBytes = %d, Corrupt = %d; want the damaged bytes counted as lost, no corrupt record", q2.LostBytes(), q2.Corrupt())
	}
	eventually(t, "the .bad file to be removed", func() bool { return len(badFiles(t, dir)) == 0 })
	if !strings.Contains(logs.String(), "is damaged") || !strings.Contains(logs.String(), "lost") {
		t.Errorf("no log line says the file was damaged and messages lost:\n%s", logs.String())
	}
}

// TestCaughtUpReaderAtFileRollLeavesNoBadFiles: a reader that has caught up
// with the writer when it starts a new file (where go-diskqueue's own reader
// read past the end and set the file aside as *.bad) moves on to the new
// file and deletes the old one: no *.bad file, no file left behind, nothing
// delivered twice and nothing logged.
func TestCaughtUpReaderAtFileRollLeavesNoBadFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	debug := &logSink{}
	q, logs := openQueue(t, dir, func(o *Options) {
		o.BatchMessages = 1
		o.MaxBytesPerFile = 1024
		o.Debugf = debug.logf
	})
	const n = 300
	seen := map[int]int{}
	for i := range n {
		appendRange(t, q, i, i+1)
		b := next(t, q)
		for _, e := range b.Entries {
			seen[entryIndex(t, e)]++
		}
		q.Done(b)
	}
	for i := range n {
		if seen[i] != 1 {
			t.Fatalf("entry %d delivered %d times", i, seen[i])
		}
	}
	if bad := badFiles(t, dir); len(bad) > 0 {
		t.Errorf("files set aside: %v", bad)
	}
	nums, err := dataFileNums(dir, "out")
	if err != nil {
		t.Fatal(err)
	}
	if len(nums) != 1 || nums[0] < 10 {
		t.Errorf("data files %v, want only the one written, after many rolls", nums)
	}
	// Nothing was wrong, so nothing alarming was said.
	if logs.String() != "" {
		t.Errorf("a normal file roll logged warnings:\n%s", logs.String())
	}
	// Nothing comes back from the salvage of fully read files.
	if b, ok, _ := q.TryNext(); ok {
		t.Errorf("salvage delivered %d entries again", len(b.Entries))
	}
}

// TestCrashAfterEmptyingDrainedFiles: emptying a drained queue makes
// go-diskqueue delete its metadata until its next sync. A crash in that
// window must not lose what was written since: Open finds the data files.
func TestCrashAfterEmptyingDrainedFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	slow := func(o *Options) {
		o.SyncEvery = 1 << 30
		o.SyncInterval = time.Hour
		o.BatchMessages = 100
		o.reclaimBytes = 1 << 20
	}
	q, _ := openQueue(t, dir, slow)
	// Put and drain more than reclaimBytes, so the next Put empties
	// the files first.
	const n = 40000 // ~50 bytes each with record overhead: > 1 MiB
	appendRange(t, q, 0, n)
	if err := q.Flush(); err != nil {
		t.Fatal(err)
	}
	drain(t, q, n)
	appendRange(t, q, n, n+5)
	if err := q.Flush(); err != nil {
		t.Fatal(err)
	}
	if q.sinceEmpty == 0 || q.sinceEmpty > 1000 {
		t.Fatalf("the files were not emptied before the last Put (sinceEmpty %d)", q.sinceEmpty)
	}
	// "Crash": open the directory again without closing q.
	q2, _ := openQueue(t, dir, slow)
	got := drain(t, q2, 5)
	checkSequence(t, got, n, n+5)
}

// TestSalvagedRecordsAreNotTakenForDelivered: records in a file go-diskqueue
// gave up on were never taken, whatever their old sequence numbers, which
// may lie below what was taken from later files before a crash. The marker
// here claims every record was taken; the records before the damage are
// skipped as delivered, and the salvaged ones after it are delivered.
func TestSalvagedRecordsAreNotTakenForDelivered(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q, _ := openQueue(t, dir, func(o *Options) { o.BatchMessages = 1 })
	appendRange(t, q, 0, 100)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "out.diskqueue.000000.dat")
	b, err := os.ReadFile(data)
	if err != nil {
		t.Fatal(err)
	}
	pos := 0
	for range 10 {
		pos += 4 + int(binary.BigEndian.Uint32(b[pos:]))
	}
	binary.BigEndian.PutUint32(b[pos:], 0x7fffffff)
	if err := os.WriteFile(data, b, 0o600); err != nil {
		t.Fatal(err)
	}
	j := &journal{dir: dir, taken: 1000}
	if err := j.openTaken(); err != nil {
		t.Fatal(err)
	}
	j.taken = 1000 // openTaken read the real marker, 0: nothing was taken
	if err := j.writeTaken(); err != nil {
		t.Fatal(err)
	}
	j.close()

	q2, logs := openQueue(t, dir, func(o *Options) { o.BatchMessages = 1 })
	got := map[int]int{}
	eventually(t, "the 89 records after the damage", func() bool {
		for {
			b, ok, err := q2.TryNext()
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			for _, e := range b.Entries {
				got[entryIndex(t, e)]++
			}
			q2.Done(b)
		}
		return len(got) >= 89
	})
	for i := range 100 {
		if want := btoi(i > 10); got[i] != want {
			t.Errorf("record %d delivered %d times, want %d; log:\n%s", i, got[i], want, logs)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
