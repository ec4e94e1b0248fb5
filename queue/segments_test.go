package queue

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// bigDataLen makes a one-entry record of a little over 4 KiB.
const bigDataLen = 4000

// bigEntry is testEntry(i) padded to bigDataLen bytes of data.
func bigEntry(i int) Entry {
	e := testEntry(i)
	e.Data = append(e.Data, ' ')
	e.Data = append(e.Data, bytes.Repeat([]byte{'x'}, bigDataLen-len(e.Data))...)
	return e
}

// bigIndex returns i for an entry made by bigEntry(i) and checks it.
func bigIndex(t testing.TB, e Entry) int {
	t.Helper()
	num, _, _ := strings.Cut(strings.TrimPrefix(string(e.Data), testPrefix), " ")
	i, err := strconv.Atoi(num)
	if err != nil {
		t.Fatalf("unexpected entry data %.40q", e.Data)
	}
	if want := bigEntry(i); !sameEntry(e, want) {
		t.Fatalf("entry %d is not bigEntry(%d)", i, i)
	}
	return i
}

// oneEntryRecords makes every Append put a record of its own.
func oneEntryRecords(o *Options) { o.BatchMessages = 1 }

// batchIndexes returns the bigIndex of every entry of the batches.
func batchIndexes(t testing.TB, bs []*Batch) []int {
	t.Helper()
	var out []int
	for _, b := range bs {
		for _, e := range b.Entries {
			out = append(out, bigIndex(t, e))
		}
	}
	return out
}

// TestSegmentsBoundJournal drains a queue the way the TCP output does,
// never letting the in-flight set become empty, so the journal is never
// truncated and only deleting emptied segments keeps it small.
func TestSegmentsBoundJournal(t *testing.T) {
	t.Parallel()
	const (
		records = 5000 // about 20 MiB of journal appends
		// Two segments and the spare.
		maxFile = 3*segmentBytes + 64<<10
	)
	dir := t.TempDir()
	q, logs := openQueue(t, dir, oneEntryRecords)
	produced := make(chan error, 1)
	go func() {
		for i := range records {
			if err := q.Append(bigEntry(i)); err != nil {
				produced <- fmt.Errorf("Append(%d): %w", i, err)
				return
			}
		}
		produced <- nil
	}()

	var inflight []*Batch
	done := func(k int) {
		t.Helper()
		b := inflight[k]
		inflight = append(inflight[:k], inflight[k+1:]...)
		if err := q.Done(b); err != nil {
			t.Fatalf("Done: %v", err)
		}
		if size := journalSize(t, dir); size >= maxFile {
			t.Fatalf("journal is %d bytes with %d batches in flight, want less than %d", size, len(inflight), maxFile)
		}
	}
	var taken int
	for i := 0; taken < records; i++ {
		b := next(t, q)
		if got := bigIndex(t, b.Entries[0]); got != taken {
			t.Fatalf("batch %d holds message %d, want %d", i, got, taken)
		}
		taken += len(b.Entries)
		inflight = append(inflight, b)
		if size := journalSize(t, dir); size >= maxFile {
			t.Fatalf("journal is %d bytes with %d batches in flight, want less than %d", size, len(inflight), maxFile)
		}
		// Between one and three batches stay in flight. Now and then one
		// that is not the oldest is done first.
		keep := 1 + i%3
		if i%7 == 0 && len(inflight) > keep && len(inflight) >= 2 {
			done(1)
		}
		for len(inflight) > keep {
			done(0)
		}
		if len(inflight) == 0 {
			t.Fatal("in-flight set became empty")
		}
	}
	if err := <-produced; err != nil {
		t.Fatal(err)
	}
	if q.j.rotations < 3 || q.j.deletions < 3 {
		t.Errorf("%d segments started and %d deleted for %d records of %d bytes, want at least 3 each", q.j.rotations, q.j.deletions, records, bigDataLen)
	}
	t.Logf("%d segments started, %d deleted", q.j.rotations, q.j.deletions)
	for len(inflight) > 0 {
		done(0)
	}
	if size := journalSize(t, dir); size != 0 || q.j.live != 0 || len(journalFiles(t, dir)) != 1 {
		t.Errorf("journal is %d bytes in %v (%d live) with nothing in flight, want one empty file", size, journalFiles(t, dir), q.j.live)
	}
	if s := logs.String(); s != "" {
		t.Errorf("unexpected log lines:\n%s", s)
	}
}

// TestSegmentsReopen keeps batch 0 in flight while the journal moves on to
// later segments, reopens, and checks that the live batches come back in
// order, that doing the first one deletes its segment, and that what was
// taken again but not done comes back once more.
func TestSegmentsReopen(t *testing.T) {
	t.Parallel()
	const records = 3000 // several segments of journal
	dir := t.TempDir()
	q, _ := openQueue(t, dir, oneEntryRecords)
	for i := range records {
		if err := q.Append(bigEntry(i)); err != nil {
			t.Fatal(err)
		}
	}
	pinned := next(t, q)
	var inflight []*Batch
	for q.j.rotations < 2 {
		inflight = append(inflight, next(t, q))
		if len(inflight) > 2 {
			if err := q.Done(inflight[0]); err != nil {
				t.Fatal(err)
			}
			inflight = inflight[1:]
		}
	}
	live := append([]*Batch{pinned}, inflight...)
	want := fmt.Sprint(batchIndexes(t, live))
	taken := batchIndexes(t, inflight[len(inflight)-1:])[0] + 1
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	filesBefore := journalFiles(t, dir)

	q, logs := openQueue(t, dir, oneEntryRecords)
	if d := q.Depth(); d != int64(len(live)+records-taken) {
		t.Errorf("Depth after reopen = %d, want %d", d, len(live)+records-taken)
	}
	if !strings.Contains(logs.String(), inFlightNote(len(live), len(live))) {
		t.Errorf("log does not report %d recovered records:\n%s", len(live), logs)
	}
	first := next(t, q)
	if got := batchIndexes(t, []*Batch{first})[0]; got != 0 {
		t.Fatalf("first batch after reopen holds message %d, want 0", got)
	}
	if err := q.Done(first); err != nil {
		t.Fatal(err)
	}
	// Batch 0 was all that was live in the first segment: it is retired,
	// kept as the spare.
	if files := journalFiles(t, dir); len(files) != len(filesBefore) || len(q.j.segs) != len(filesBefore)-1 ||
		q.j.spare == nil || q.j.spare.seq != 0 {
		t.Errorf("segments %v (%d open) after doing batch 0, were %v; want %s retired as the spare", files, len(q.j.segs), filesBefore, journalName)
	}
	var rest []*Batch
	for range len(live) - 1 {
		rest = append(rest, next(t, q))
	}
	if got := fmt.Sprint(append([]int{0}, batchIndexes(t, rest)...)); got != want {
		t.Fatalf("after reopen got %s, want %s", got, want)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}

	// Taken again but never done: the journal brings them back.
	q, _ = openQueue(t, dir, oneEntryRecords)
	var again []*Batch
	for range len(live) - 1 {
		again = append(again, next(t, q))
	}
	if got, want := fmt.Sprint(batchIndexes(t, again)), fmt.Sprint(batchIndexes(t, rest)); got != want {
		t.Fatalf("after second reopen got %s, want %s", got, want)
	}
	for _, b := range again {
		if err := q.Done(b); err != nil {
			t.Fatal(err)
		}
	}
	// Nothing else was live: the rest comes from go-diskqueue, in order.
	b := next(t, q)
	if got := bigIndex(t, b.Entries[0]); got != taken {
		t.Errorf("first batch from go-diskqueue holds message %d, want %d", got, taken)
	}
	if err := q.Done(b); err != nil {
		t.Fatal(err)
	}
	if size := journalSize(t, dir); size != 0 {
		t.Errorf("journal is %d bytes with nothing in flight, want 0", size)
	}
}
