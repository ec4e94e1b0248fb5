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
	var offs []int64
	for _, s := range []string{"one", "two", "three"} {
		off, err := j.append([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		offs = append(offs, off)
	}
	// Done out of order: "two" is marked, the others stay live.
	if err := j.done(offs[1], len("two")); err != nil {
		t.Fatal(err)
	}
	j.close()

	j, recovered, torn = mustOpenJournal(t, dir)
	if got, want := recs(recovered), "[one three]"; got != want || torn != 0 {
		t.Fatalf("recovered %s with %d torn bytes, want %s and none", got, torn, want)
	}
	// New entries follow the recovered ones, which stay in the file until
	// done, so a crash during recovery recovers them again.
	off, err := j.append([]byte("four"))
	if err != nil {
		t.Fatal(err)
	}
	if err := j.done(recovered[0].off, len(recovered[0].rec)); err != nil {
		t.Fatal(err)
	}
	j.close()

	j, recovered, _ = mustOpenJournal(t, dir)
	if got, want := recs(recovered), "[three four]"; got != want {
		t.Fatalf("recovered %s, want %s", got, want)
	}
	if recovered[1].off != off {
		t.Errorf("entry at %d, want %d", recovered[1].off, off)
	}
	for _, r := range recovered {
		if err := j.done(r.off, len(r.rec)); err != nil {
			t.Fatal(err)
		}
	}
	if size := journalSize(t, dir); size != 0 {
		t.Errorf("journal is %d bytes with nothing live, want 0", size)
	}
	// After the truncation, writing starts at offset 0 again.
	if off, err := j.append([]byte("five")); err != nil || off != 0 {
		t.Errorf("append after truncation = %d, %v; want 0, nil", off, err)
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
	if off, err := j.append([]byte("x")); err != nil || off != 0 {
		t.Errorf("append = %d, %v; want 0, nil", off, err)
	}
}
