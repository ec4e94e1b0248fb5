package queue

import (
	"os"
	"strings"
	"testing"
)

// writtenRecords returns the data file of a queue, in a directory of its
// own, that holds entries from..to-1, one record each: go-diskqueue's bytes
// for those records, length prefixes included.
func writtenRecords(t *testing.T, from, to int) []byte {
	t.Helper()
	dir := t.TempDir()
	q, _ := openQueue(t, dir, oneEntryRecords)
	appendRange(t, q, from, to)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(dataPath(dir, "out", 0))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func appendFile(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestRepairRecordsPastWritePos: records appended to the data file after
// go-diskqueue's metadata was written, as a kill -9 leaves them, are counted
// at Open, and every one is delivered. A torn last record (a write the kill
// cut short) is skipped and reported.
func TestRepairRecordsPastWritePos(t *testing.T) {
	for _, torn := range []bool{false, true} {
		name := "whole"
		if torn {
			name = "torn"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			q, _ := openQueue(t, dir, oneEntryRecords)
			appendRange(t, q, 0, 10)
			if err := q.Close(); err != nil {
				t.Fatal(err)
			}
			extra := writtenRecords(t, 10, 15)
			if torn {
				half := writtenRecords(t, 15, 16)
				extra = append(extra, half[:len(half)/2]...)
			}
			appendFile(t, dataPath(dir, "out", 0), extra)

			q2, logs := openQueue(t, dir, oneEntryRecords)
			if d := q2.Depth(); d != 15 {
				t.Errorf("Depth after Open = %d, want 15", d)
			}
			appendRange(t, q2, 15, 20)
			checkSequence(t, drain(t, q2, 20), 0, 20)
			if d := q2.Depth(); d != 0 {
				t.Errorf("Depth after draining = %d, want 0", d)
			}
			if torn {
				eventually(t, "the torn file to be removed", func() bool { return len(badFiles(t, dir)) == 0 })
				// The salvage removes the file before it adds the damaged
				// bytes to the loss counters.
				eventually(t, "the torn record to be counted", func() bool { return q2.LostBytes() > 0 })
				// The salvage reports the torn record as damage: the
				// message in it was accepted and is lost.
				if s := logs.String(); !strings.Contains(s, "out.diskqueue.000000.dat is damaged") || q2.LostBytes() == 0 {
					t.Errorf("the torn record is not reported (lost bytes %d):\n%s", q2.LostBytes(), s)
				}
			} else if logs.String() != "" {
				t.Errorf("unexpected log:\n%s", logs)
			}
			if s := logs.String(); strings.Contains(s, "depth") || strings.Contains(s, "skipping to new file") {
				t.Errorf("go-diskqueue found its metadata wrong:\n%s", s)
			}
		})
	}
}

// TestRepairNegativeDepth: a negative depth in the metadata is a count gone
// wrong; Open counts the unread records again.
func TestRepairNegativeDepth(t *testing.T) {
	dir := t.TempDir()
	q, _ := openQueue(t, dir, oneEntryRecords)
	appendRange(t, q, 0, 10)
	checkSequence(t, drain(t, q, 3), 0, 3)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(metaPath(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := parseMeta(b)
	if err != nil {
		t.Fatal(err)
	}
	m.depth = -4
	if err := os.WriteFile(metaPath(dir, "out"), m.format(), 0o600); err != nil {
		t.Fatal(err)
	}

	q2, logs := openQueue(t, dir, oneEntryRecords)
	if d := q2.Depth(); d != 7 {
		t.Errorf("Depth after Open = %d, want 7", d)
	}
	checkSequence(t, drain(t, q2, 7), 3, 10)
	if logs.String() != "" {
		t.Errorf("unexpected log:\n%s", logs)
	}
}

// TestRepairMissingMetadata: without metadata (go-diskqueue's Empty deletes
// it until its next sync) every record in the data files is counted.
func TestRepairMissingMetadata(t *testing.T) {
	dir := t.TempDir()
	q, _ := openQueue(t, dir, func(o *Options) {
		oneEntryRecords(o)
		o.MaxBytesPerFile = 1024 // several files
	})
	appendRange(t, q, 0, 100)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dataPath(dir, "out", 2)); err != nil {
		t.Fatalf("fewer than three data files: %v", err)
	}
	if err := os.Remove(metaPath(dir, "out")); err != nil {
		t.Fatal(err)
	}
	q2, logs := openQueue(t, dir, oneEntryRecords)
	if d := q2.Depth(); d != 100 {
		t.Errorf("Depth after Open = %d, want 100", d)
	}
	checkSequence(t, drain(t, q2, 100), 0, 100)
	if logs.String() != "" {
		t.Errorf("unexpected log:\n%s", logs)
	}
}
