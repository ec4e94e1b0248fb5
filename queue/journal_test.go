package queue

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func mustOpenJournal(t *testing.T, dir string) (*journal, []journalRecord, int64) {
	t.Helper()
	j, recovered, torn, err := openJournal(dir)
	if err != nil {
		t.Fatalf("openJournal: %v", err)
	}
	t.Cleanup(func() { j.close() })
	return j, recovered, torn
}

func recs(rs []journalRecord) string {
	var out []string
	for _, r := range rs {
		out = append(out, string(r.rec))
	}
	return fmt.Sprint(out)
}

func journalSize(t *testing.T, dir string) int64 {
	t.Helper()
	fi, err := os.Stat(filepath.Join(dir, journalName))
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func TestJournalDoneAndRecover(t *testing.T) {
	dir := t.TempDir()
	j, recovered, torn := mustOpenJournal(t, dir)
	if len(recovered) != 0 || torn != 0 {
		t.Fatalf("new journal recovered %d records, %d torn bytes", len(recovered), torn)
	}
	var es []*jentry
	for _, s := range []string{"one", "two", "three"} {
		e, err := j.append([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, e)
	}
	// Done out of order: "two" is marked, the others stay live.
	if err := j.done(es[1]); err != nil {
		t.Fatal(err)
	}
	j.close()

	j, recovered, torn = mustOpenJournal(t, dir)
	if got, want := recs(recovered), "[one three]"; got != want || torn != 0 {
		t.Fatalf("recovered %s with %d torn bytes, want %s and none", got, torn, want)
	}
	// New entries follow the recovered ones, which stay in the file until
	// done, so a crash during recovery recovers them again.
	e, err := j.append([]byte("four"))
	if err != nil {
		t.Fatal(err)
	}
	off := e.off
	if err := j.done(recovered[0].e); err != nil {
		t.Fatal(err)
	}
	j.close()

	j, recovered, _ = mustOpenJournal(t, dir)
	if got, want := recs(recovered), "[three four]"; got != want {
		t.Fatalf("recovered %s, want %s", got, want)
	}
	if recovered[1].e.off != off {
		t.Errorf("entry at %d, want %d", recovered[1].e.off, off)
	}
	for _, r := range recovered {
		if err := j.done(r.e); err != nil {
			t.Fatal(err)
		}
	}
	if size := journalSize(t, dir); size != 0 {
		t.Errorf("journal is %d bytes with nothing live, want 0", size)
	}
	// After the truncation, writing starts at offset 0 again.
	if e, err := j.append([]byte("five")); err != nil || e.off != 0 {
		t.Errorf("append after truncation = %v, %v; want offset 0, nil", e, err)
	}
}

func TestJournalTornTail(t *testing.T) {
	tests := []struct {
		name string
		tail []byte
	}{
		{"short header", []byte{0, 0, 0}},
		{"zero length", make([]byte, 12)},
		{"length past end", []byte{0, 0, 0, 9, 0, 0, 0, 0, 'a'}},
		{"huge length", []byte{0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0}},
		{"bad checksum", []byte{0, 0, 0, 1, 1, 2, 3, 4, 'a'}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			j, _, _ := mustOpenJournal(t, dir)
			if _, err := j.append([]byte("good")); err != nil {
				t.Fatal(err)
			}
			j.close()
			good := journalSize(t, dir)
			f, err := os.OpenFile(filepath.Join(dir, journalName), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write(tt.tail)
			f.Close()

			j, recovered, torn := mustOpenJournal(t, dir)
			if got := recs(recovered); got != "[good]" {
				t.Errorf("recovered %s, want [good]", got)
			}
			if torn != int64(len(tt.tail)) {
				t.Errorf("torn = %d, want %d", torn, len(tt.tail))
			}
			// The tail is cut off so that new entries are reachable.
			if size := journalSize(t, dir); size != good {
				t.Errorf("journal is %d bytes after recovery, want %d", size, good)
			}
			if _, err := j.append([]byte("next")); err != nil {
				t.Fatal(err)
			}
			j.close()
			_, recovered, torn = mustOpenJournal(t, dir)
			if got := recs(recovered); got != "[good next]" || torn != 0 {
				t.Errorf("second recovery: %s with %d torn bytes, want [good next] and none", got, torn)
			}
		})
	}
}

func TestJournalOnlyTorn(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, journalName), []byte("garbage!garbage!"), 0o600); err != nil {
		t.Fatal(err)
	}
	j, recovered, torn := mustOpenJournal(t, dir)
	if len(recovered) != 0 || torn != 16 {
		t.Errorf("recovered %d records and %d torn bytes, want 0 and 16", len(recovered), torn)
	}
	if size := journalSize(t, dir); size != 0 {
		t.Errorf("journal is %d bytes, want 0", size)
	}
	if e, err := j.append([]byte("x")); err != nil || e.off != 0 {
		t.Errorf("append = %v, %v; want offset 0, nil", e, err)
	}
}

// liveList returns the records of j's live entries, read back from the
// file at the offsets their handles hold.
func liveList(t *testing.T, j *journal) []string {
	t.Helper()
	var out []string
	for e := j.root.next; e != &j.root; e = e.next {
		buf := make([]byte, journalHeaderLen+e.size)
		if _, err := j.f.ReadAt(buf, e.off); err != nil {
			t.Fatalf("read entry at %d: %v", e.off, err)
		}
		out = append(out, string(buf[journalHeaderLen:]))
	}
	return out
}

// snapshotDir copies the journal files of dir into a new directory, which
// is what a kill -9 at that moment would leave on disk.
func snapshotDir(t *testing.T, dir string) string {
	t.Helper()
	snap := t.TempDir()
	for _, name := range []string{journalName, journalTmpName} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(snap, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return snap
}

func TestJournalCompact(t *testing.T) {
	dir := t.TempDir()
	j, _, _ := mustOpenJournal(t, dir)
	j.compactMin = 100
	rec := func(i int) []byte { return fmt.Appendf(nil, "record %03d", i) }
	entryLen := int64(journalHeaderLen + len(rec(0)))

	// A crash at any step of a compaction must leave a journal that
	// recovers exactly the entries live at that moment.
	var crashes []string
	var liveAtCrash [][]string
	j.testHook = func(step string) {
		crashes = append(crashes, snapshotDir(t, dir))
		liveAtCrash = append(liveAtCrash, liveList(t, j))
		if step == "written" {
			if _, err := os.Stat(filepath.Join(dir, journalTmpName)); err != nil {
				t.Errorf("at step %q: %v", step, err)
			}
		}
	}

	// Record 0 stays live throughout, and two more are in flight.
	pinned, err := j.append(rec(0))
	if err != nil {
		t.Fatal(err)
	}
	var inflight []*jentry
	for i := 1; i <= 40; i++ {
		e, err := j.append(rec(i))
		if err != nil {
			t.Fatal(err)
		}
		inflight = append(inflight, e)
		if len(inflight) > 2 {
			if err := j.done(inflight[0]); err != nil {
				t.Fatal(err)
			}
			inflight = inflight[1:]
			if err := j.maybeCompact(); err != nil {
				t.Fatal(err)
			}
		}
		if size := journalSize(t, dir); size != j.end {
			t.Fatalf("file is %d bytes, journal end is %d", size, j.end)
		}
		if want := int64(j.live) * entryLen; j.liveBytes != want {
			t.Fatalf("live bytes %d, want %d", j.liveBytes, want)
		}
		if j.end > 2*j.compactMin {
			t.Fatalf("journal end %d after entry %d, compaction threshold %d", j.end, i, j.compactMin)
		}
	}
	if j.compactions == 0 || len(crashes) != 2*j.compactions {
		t.Fatalf("%d compactions, %d crash points", j.compactions, len(crashes))
	}
	want := fmt.Sprint([]string{string(rec(0)), string(rec(39)), string(rec(40))})
	if got := fmt.Sprint(liveList(t, j)); got != want {
		t.Errorf("live entries read at their handles' offsets: %s, want %s", got, want)
	}
	if pinned.off != 0 {
		t.Errorf("pinned entry at %d after compaction, want 0", pinned.off)
	}
	j.close()

	_, recovered, torn := mustOpenJournal(t, dir)
	if got := recs(recovered); got != want || torn != 0 {
		t.Errorf("recovered %s with %d torn bytes, want %s and none", got, torn, want)
	}
	for k, snap := range crashes {
		_, recovered, torn := mustOpenJournal(t, snap)
		if got, want := recs(recovered), fmt.Sprint(liveAtCrash[k]); got != want || torn != 0 {
			t.Errorf("crash point %d: recovered %s with %d torn bytes, want %s and none", k, got, torn, want)
		}
		if _, err := os.Stat(filepath.Join(snap, journalTmpName)); !os.IsNotExist(err) {
			t.Errorf("crash point %d: leftover %s not removed at open: %v", k, journalTmpName, err)
		}
	}
}

func TestJournalCompactFailure(t *testing.T) {
	dir := t.TempDir()
	j, _, _ := mustOpenJournal(t, dir)
	j.compactMin = 100
	// A directory in the way makes creating the new file fail.
	blocker := filepath.Join(dir, journalTmpName)
	if err := os.Mkdir(blocker, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := j.append([]byte("pinned")); err != nil {
		t.Fatal(err)
	}
	var failedAt []int64 // journal end at each failed compaction
	for i := 0; j.compactions == 0; i++ {
		if i == 100 {
			t.Fatalf("no compaction after %d entries; failures at %v", i, failedAt)
		}
		if i == 30 {
			if err := os.Remove(blocker); err != nil {
				t.Fatal(err)
			}
		}
		e, err := j.append(fmt.Appendf(nil, "record %03d", i))
		if err != nil {
			t.Fatal(err)
		}
		if err := j.done(e); err != nil {
			t.Fatal(err)
		}
		if err := j.maybeCompact(); err != nil {
			failedAt = append(failedAt, j.end)
		}
	}
	if len(failedAt) == 0 {
		t.Fatal("compaction did not fail with its file blocked")
	}
	// A failure is retried only after another compactMin bytes, not on
	// every done.
	for k := 1; k < len(failedAt); k++ {
		if failedAt[k]-failedAt[k-1] < j.compactMin {
			t.Errorf("compaction retried at %d after failing at %d; want at least %d bytes later", failedAt[k], failedAt[k-1], j.compactMin)
		}
	}
	j.close()
	_, recovered, _ := mustOpenJournal(t, dir)
	if got := recs(recovered); got != "[pinned]" {
		t.Errorf("recovered %s, want [pinned]", got)
	}
}
