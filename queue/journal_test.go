package queue

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"syscall"
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

// journalSize returns the bytes of every journal segment in dir.
func journalSize(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	for _, name := range journalFiles(t, dir) {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		n += fi.Size()
	}
	return n
}

// journalFiles returns the names of the journal segments in dir.
func journalFiles(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, de := range des {
		if _, ok := segmentSeq(de.Name()); ok {
			out = append(out, de.Name())
		}
	}
	return out
}

func TestJournalDoneAndRecover(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
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
// liveList reads the live entries at their handles, in the order given.
func liveList(t *testing.T, es []*jentry) []string {
	t.Helper()
	var out []string
	for _, e := range es {
		buf := make([]byte, journalHeaderLen+e.size)
		if _, err := e.seg.f.ReadAt(buf, e.off); err != nil {
			t.Fatalf("read entry at %d of segment %d: %v", e.off, e.seg.seq, err)
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
	for _, name := range journalFiles(t, dir) {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(snap, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return snap
}

// TestJournalSegments keeps one entry live throughout and a few more in
// flight: appends move on to new segments, emptied ones are deleted, and a
// crash at any step recovers exactly the entries live at that moment.
func TestJournalSegments(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	j, _, _ := mustOpenJournal(t, dir)
	j.segmentMax = 100
	rec := func(i int) []byte { return fmt.Appendf(nil, "record %03d", i) }

	var live []*jentry // in append order
	var crashes []string
	var liveAtCrash [][]string
	j.testHook = func(step string) {
		crashes = append(crashes, snapshotDir(t, dir))
		liveAtCrash = append(liveAtCrash, liveList(t, live))
	}
	pinned, err := j.append(rec(0))
	if err != nil {
		t.Fatal(err)
	}
	live = append(live, pinned)
	for i := 1; i <= 40; i++ {
		e, err := j.append(rec(i))
		if err != nil {
			t.Fatal(err)
		}
		live = append(live, e)
		if len(live) > 3 {
			// The oldest in flight after the pinned one is done.
			done := live[1]
			live = append(live[:1], live[2:]...)
			if err := j.done(done); err != nil {
				t.Fatal(err)
			}
		}
		// The pinned segment, the one the in-flight entries began in, and
		// the one being appended to, and a retired one kept for reuse.
		spare := 0
		if j.spare != nil {
			spare = 1
		}
		if n := len(journalFiles(t, dir)); n > 4 || n != len(j.segs)+spare {
			t.Fatalf("after entry %d: %d segment files, %d segments open and %d spare; want the same, at most 4", i, n, len(j.segs), spare)
		}
	}
	if j.rotations < 5 || j.deletions < 3 {
		t.Fatalf("%d rotations, %d deletions, want at least 5 and 3", j.rotations, j.deletions)
	}
	want := fmt.Sprint([]string{string(rec(0)), string(rec(39)), string(rec(40))})
	if got := fmt.Sprint(liveList(t, live)); got != want {
		t.Errorf("live entries read at their handles: %s, want %s", got, want)
	}
	if pinned.seg.seq != 0 || pinned.off != 0 {
		t.Errorf("pinned entry at %d of segment %d, want 0 of 0", pinned.off, pinned.seg.seq)
	}
	j.close()

	_, recovered, torn := mustOpenJournal(t, dir)
	if got := recs(recovered); got != want || torn != 0 {
		t.Errorf("recovered %s with %d torn bytes, want %s and none", got, torn, want)
	}
	if len(crashes) != j.rotations+j.deletions {
		t.Fatalf("%d crash points for %d rotations and %d deletions", len(crashes), j.rotations, j.deletions)
	}
	for k, snap := range crashes {
		_, recovered, torn := mustOpenJournal(t, snap)
		if got, want := recs(recovered), fmt.Sprint(liveAtCrash[k]); got != want || torn != 0 {
			t.Errorf("crash point %d: recovered %s with %d torn bytes, want %s and none", k, got, torn, want)
		}
	}
}

// TestJournalSegmentsDrain checks that once nothing is live, one empty
// segment file is left, and that a leftover of an earlier version's
// compaction is removed at open.
func TestJournalSegmentsDrain(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, journalTmpName), []byte("leftover"), 0o600); err != nil {
		t.Fatal(err)
	}
	j, _, _ := mustOpenJournal(t, dir)
	if _, err := os.Stat(filepath.Join(dir, journalTmpName)); !os.IsNotExist(err) {
		t.Errorf("%s not removed at open: %v", journalTmpName, err)
	}
	j.segmentMax = 100
	var es []*jentry
	for i := range 30 {
		e, err := j.append(fmt.Appendf(nil, "record %03d", i))
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, e)
	}
	if len(j.segs) < 3 {
		t.Fatalf("%d segments for 30 entries of 18 bytes at 100 bytes each, want at least 3", len(j.segs))
	}
	for _, e := range es {
		if err := j.done(e); err != nil {
			t.Fatal(err)
		}
	}
	if files := journalFiles(t, dir); len(files) != 1 || journalSize(t, dir) != 0 || j.live != 0 {
		t.Errorf("with nothing live: files %v of %d bytes, %d live; want one empty file", files, journalSize(t, dir), j.live)
	}
}

// TestJournalOpenFailure: when a segment cannot be opened (here: out of
// file descriptors), openJournal returns an error, closes what it opened,
// and does not panic.
func TestJournalOpenFailure(t *testing.T) {
	dir := t.TempDir()
	for seq := range uint64(40) {
		if err := os.WriteFile(filepath.Join(dir, segmentName(seq)), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	low := lim
	setRlimit(&low.Cur, uint64(len(fds)+10))
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	_, _, _, err = openJournal(dir)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if err == nil {
		t.Fatalf("openJournal of 40 segments with %d descriptors: no error", low.Cur)
	}
	after, _ := os.ReadDir("/proc/self/fd")
	if len(after) > len(fds)+1 {
		t.Errorf("%d descriptors open after the failed open, %d before", len(after), len(fds))
	}
}

// setRlimit sets a field of syscall.Rlimit: a uint64 on Linux and macOS,
// an int64 on FreeBSD.
func setRlimit[T ~int64 | ~uint64](field *T, v uint64) { *field = T(v) }

// TestJournalSegmentFailure: when the next segment cannot be created, the
// current one grows instead, and appends move on once it can.
func TestJournalSegmentFailure(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	j, _, _ := mustOpenJournal(t, dir)
	j.segmentMax = 100
	// A directory in the way makes creating segment 1 fail.
	blocker := filepath.Join(dir, segmentName(1))
	if err := os.Mkdir(blocker, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := j.append([]byte("pinned")); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := j.append(fmt.Appendf(nil, "record %03d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if len(j.segs) != 1 || j.segs[0].end <= 2*j.segmentMax {
		t.Fatalf("with segment 1 blocked: %d segments, first %d bytes; want 1, past %d", len(j.segs), j.segs[0].end, 2*j.segmentMax)
	}
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	if _, err := j.append([]byte("after")); err != nil {
		t.Fatal(err)
	}
	if len(j.segs) != 2 {
		t.Errorf("after the blocker is gone: %d segments, want 2", len(j.segs))
	}
	j.close()
	_, recovered, _ := mustOpenJournal(t, dir)
	if len(recovered) != 22 || string(recovered[0].rec) != "pinned" || string(recovered[21].rec) != "after" {
		t.Errorf("recovered %s, want pinned, 20 records, after", recs(recovered))
	}
}

// TestJournalChecksums: an entry's checksum covers every byte of its record,
// the first five too, and entries a journal wrote with the CRC32C of the
// record in order are recovered as well.
func TestJournalChecksums(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	j, _, _ := mustOpenJournal(t, dir)
	for _, s := range []string{"first record", "second record"} {
		if _, err := j.append([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	j.close()
	path := filepath.Join(dir, journalName)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// A third entry as an earlier release wrote it.
	old := []byte("third record")
	entry := binary.BigEndian.AppendUint32(nil, uint32(len(old)))
	entry = binary.BigEndian.AppendUint32(entry, crc32.Checksum(old, castagnoli))
	if err := os.WriteFile(path, append(append(data, entry...), old...), 0o600); err != nil {
		t.Fatal(err)
	}
	j, recovered, torn := mustOpenJournal(t, dir)
	if got, want := recs(recovered), "[first record second record third record]"; got != want || torn != 0 {
		t.Fatalf("recovered %s with %d torn bytes, want %s and none", got, torn, want)
	}
	j.close()

	// A byte of the second record's first five changed: it and what
	// follows are a torn tail.
	data, err = os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[journalHeaderLen+len("first record")+journalHeaderLen+2] ^= 1
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	j, recovered, torn = mustOpenJournal(t, dir)
	defer j.close()
	if got, want := recs(recovered), "[first record]"; got != want || torn == 0 {
		t.Fatalf("recovered %s with %d torn bytes, want %s and the rest torn", got, torn, want)
	}
}

// TestJournalReusedSegment checks that a retired segment is reused for the
// next one and that its older content, longer than the new and holding an
// entry never marked done, is neither recovered nor counted as torn, at
// rest and by the inspector.
func TestJournalReusedSegment(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	j, _, _ := mustOpenJournal(t, dir)
	j.segmentMax = 100
	record := func(msg string) []byte { return AppendRecord(nil, []Entry{{Data: []byte(msg)}}) }
	long := func(i int) []byte { return record(fmt.Sprintf("a long old record number %03d, done long ago", i)) }
	var old []*jentry
	for i := range 3 {
		e, err := j.append(long(i))
		if err != nil {
			t.Fatal(err)
		}
		old = append(old, e)
	}
	if len(j.segs) != 2 || old[2].seg.seq != 1 {
		t.Fatalf("%d segments, last entry in segment %d; want 2 and 1", len(j.segs), old[2].seg.seq)
	}
	for _, e := range old[:2] { // segment 0 drains: it becomes the spare
		if err := j.done(e); err != nil {
			t.Fatal(err)
		}
	}
	if j.spare == nil || j.spare.seq != 0 {
		t.Fatalf("spare %v, want segment 0", j.spare)
	}
	if _, err := j.append(long(3)); err != nil { // fills segment 1
		t.Fatal(err)
	}
	fresh, err := j.append(record("new")) // segment 2 reuses the spare
	if err != nil {
		t.Fatal(err)
	}
	if fresh.seg.seq != 2 || j.spare != nil || j.rotations != 2 {
		t.Fatalf("new entry in segment %d, spare %v, %d rotations; want 2, none, 2", fresh.seg.seq, j.spare, j.rotations)
	}
	if files := journalFiles(t, dir); fmt.Sprint(files) != fmt.Sprint([]string{segmentName(1), segmentName(2)}) {
		t.Fatalf("journal files %v, want %s and %s", files, segmentName(1), segmentName(2))
	}
	if fi, err := os.Stat(filepath.Join(dir, segmentName(2))); err != nil || fi.Size() <= fresh.seg.end {
		t.Fatalf("reused segment: %v, %v; want older content past the new entry", fi, err)
	}
	want := fmt.Sprint([]string{string(long(2)), string(long(3)), string(record("new"))})
	r, err := Inspect(dir, "out", InspectOptions{})
	if err != nil || r.InFlightRecords != 3 || len(r.Damage) != 0 {
		t.Errorf("inspect: %d records in flight, damage %v, %v; want 3, none", r.InFlightRecords, r.Damage, err)
	}
	j.close()
	_, recovered, torn := mustOpenJournal(t, dir)
	if got := recs(recovered); got != want || torn != 0 {
		t.Errorf("recovered %s with %d torn bytes, want %s and none", got, torn, want)
	}
}
