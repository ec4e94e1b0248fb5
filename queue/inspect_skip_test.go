package queue

import (
	"os"
	"testing"
)

// TestInspectCleanStopAfterCrash: a relay killed after delivering part of a
// backlog, restarted and stopped cleanly before its reader passed the
// records delivered before the kill, leaves metadata with a read position
// in front of them. Open skips them by their sequence numbers; Inspect
// (relay queue stat, verify, dump) must leave them out too, or it counts
// and dumps records the relay will never send again.
func TestInspectCleanStopAfterCrash(t *testing.T) {
	t.Parallel()
	const n, delivered = 30, 10
	dir := t.TempDir()
	q, _ := openQueue(t, dir, readerOptions)
	appendRange(t, q, 0, n)
	checkSequence(t, drain(t, q, delivered), 0, delivered)
	snap := copyFiles(t, dir) // the kill -9

	q2, _ := openQueue(t, snap, readerOptions)
	if err := q2.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(metaPath(snap, "out"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parseMeta(b); err != nil {
		t.Fatalf("metadata after a clean stop %q: %v", b, err)
	}

	rep, err := Inspect(snap, "out", InspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != n-delivered || rep.Messages != n-delivered {
		t.Errorf("Inspect counts %d records, %d messages; want %d, the ones the relay will deliver", rep.Records, rep.Messages, n-delivered)
	}
	q3, logs := openQueue(t, snap, readerOptions)
	checkSequence(t, drain(t, q3, n-delivered), delivered, n)
	if _, ok, _ := q3.TryNext(); ok {
		t.Error("a record delivered twice")
	}
	if q3.LostRecords() != 0 {
		t.Errorf("%d records counted lost; log:\n%s", q3.LostRecords(), logs)
	}
}
