package queue

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestFsyncAlwaysSyncsTheFileWritten checks, under FsyncAlways, that every
// Flush leaves nothing unsynced and that the file synced is the data file
// that holds the last record, across file rolls and the emptying of drained
// files, and that what was flushed reads back after a restart.
func TestFsyncAlwaysSyncsTheFileWritten(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	opts := func(o *Options) {
		o.Fsync = FsyncAlways
		o.MaxBytesPerFile = 1 << 10 // a few small records per file
		o.BatchMessages = 1000
		o.Linger = time.Hour
		o.reclaimBytes = 1 << 20
	}
	q, logs := openQueue(t, dir, opts)
	check := func(what string) {
		t.Helper()
		q.mu.Lock()
		defer q.mu.Unlock()
		if q.dsync.dirty || q.dsync.f == nil {
			t.Fatalf("%s: dirty %v, file %v; log:\n%s", what, q.dsync.dirty, q.dsync.f, logs)
		}
		_, last, _, _, err := dataFileRange(dir, "out")
		if err != nil {
			t.Fatal(err)
		}
		cur, err := os.Stat(dataPath(dir, "out", last))
		if err != nil {
			t.Fatal(err)
		}
		fi, err := q.dsync.f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		if q.dsync.num != last || !os.SameFile(cur, fi) {
			t.Fatalf("%s: synced file %d (%s), want the newest, %d", what, q.dsync.num, filepath.Base(q.dsync.f.Name()), last)
		}
	}
	for i := 0; i < 200; i += 5 {
		appendRange(t, q, i, i+5)
		if err := q.Flush(); err != nil {
			t.Fatal(err)
		}
		check("after a flush")
	}
	_, last, _, _, _ := dataFileRange(dir, "out")
	if last < 3 {
		t.Fatalf("the data files did not roll: newest is %d", last)
	}
	// More than the queue empties drained files at (reclaimBytes);
	// once drained, the next put empties them and goes to a new file.
	appendRange(t, q, 200, 30200)
	check("after records of 1000 messages")
	checkSequence(t, drain(t, q, 30200), 0, 30200)
	appendRange(t, q, 30200, 30205)
	if err := q.Flush(); err != nil {
		t.Fatal(err)
	}
	q.mu.Lock()
	since := q.sinceEmpty
	q.mu.Unlock()
	if since > 1<<10 {
		t.Fatalf("the drained files were not emptied: %d bytes put since", since)
	}
	check("after the drained files were emptied")
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	q2, _ := openQueue(t, dir, opts)
	checkSequence(t, drain(t, q2, 5), 30200, 30205)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if b, err := q2.Next(ctx); err == nil {
		t.Errorf("unexpected extra batch of %d entries", len(b.Entries))
	}
}
