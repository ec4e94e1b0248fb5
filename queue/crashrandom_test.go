package queue

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestCrashRandomOps runs a queue with data files of a few records and a
// low threshold for emptying drained files through random puts, takes and
// confirmations, and stops it at random moments, by a kill -9 (a copy of
// its files while it runs) or cleanly, four times in a row. At each stop a
// copy of the files must deliver every message not confirmed, each once
// and none confirmed before, and Inspect must count what it delivers;
// under DropOldest, exactly the messages reported evicted are missing: an
// evicted record must not come back after a kill -9 either, though the
// reader's position is not persisted while the queue runs.
func TestCrashRandomOps(t *testing.T) {
	t.Parallel()
	for _, evict := range []bool{false, true} {
		for seed := int64(1); seed <= 8; seed++ {
			crashRandomOps(t, seed, evict)
		}
	}
}

func crashRandomOps(t *testing.T, seed int64, evict bool) {
	rng := rand.New(rand.NewSource(seed))
	var evicted atomic.Int64
	batch, fileSize, reclaim := 1+rng.Intn(4), int64(200+rng.Intn(600)), int64(300+rng.Intn(3000))
	syncEvery, maxBytes := int64(1+rng.Intn(20)), int64(500+rng.Intn(4000))
	mod := func(o *Options) {
		o.BatchMessages = batch
		o.MaxBytesPerFile = fileSize
		o.Linger = time.Hour
		o.reclaimBytes = reclaim
		o.SyncEvery = syncEvery
		o.SyncInterval = 10 * time.Millisecond
		if evict {
			o.MaxBytes = maxBytes
			o.FullPolicy = DropOldest
			o.OnDrop = func(n int, reason string, _ error) {
				if reason == ReasonEvicted {
					evicted.Add(int64(n))
				}
			}
		}
	}
	dir := t.TempDir()
	q, _ := openQueue(t, dir, mod)
	pending := map[int]bool{} // put and flushed, not confirmed
	var inflight []*Batch
	next := 0
	for stop := range 4 {
		for range 20 + rng.Intn(80) {
			switch op := rng.Intn(10); {
			case op < 4:
				k := 1 + rng.Intn(8)
				appendRange(t, q, next, next+k)
				if err := q.Flush(); err != nil {
					t.Fatal(err)
				}
				for i := next; i < next+k; i++ {
					pending[i] = true
				}
				next += k
			case op < 8:
				b, ok, err := q.TryNext()
				if err != nil {
					t.Fatal(err)
				}
				if ok {
					inflight = append(inflight, b)
				}
			case len(inflight) > 0:
				i := rng.Intn(len(inflight))
				b := inflight[i]
				inflight = append(inflight[:i], inflight[i+1:]...)
				for _, e := range b.Entries {
					delete(pending, entryIndex(t, e))
				}
				if err := q.Done(b); err != nil {
					t.Fatal(err)
				}
			}
		}
		if rng.Intn(3) == 0 {
			// Let go-diskqueue's goroutine sync its metadata meanwhile.
			time.Sleep(time.Duration(rng.Intn(30)) * time.Millisecond)
		}
		inflight = nil
		if rng.Intn(3) == 0 {
			if err := q.Close(); err != nil {
				t.Fatal(err)
			}
			pending = checkStopped(t, seed, stop, copyFiles(t, dir), mod, pending, evicted.Swap(0))
		} else {
			crashed := copyFiles(t, dir)
			pending = checkStopped(t, seed, stop, copyFiles(t, crashed), mod, pending, evicted.Swap(0))
			q.Close()
			evicted.Store(0) // what the stopped queue does after the kill does not count
			dir = crashed
		}
		q, _ = openQueue(t, dir, mod)
	}
	q.Close()
}

// copyFiles copies the queue's files in dir as a kill -9 leaves them; a
// file go-diskqueue renames meanwhile (its metadata's temporary file) is
// left out.
func copyFiles(t *testing.T, dir string) string {
	t.Helper()
	snap := t.TempDir()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		if !de.Type().IsRegular() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, de.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(snap, de.Name()), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return snap
}

// checkStopped inspects and drains the stopped queue in dir and checks
// that it delivers every message of pending but for at most evicted of
// them, each once and no other; it returns the messages delivered.
func checkStopped(t *testing.T, seed int64, stop int, dir string, mod func(*Options), pending map[int]bool, evicted int64) map[int]bool {
	t.Helper()
	rep, err := Inspect(dir, "out", InspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	q, logs := openQueue(t, dir, mod)
	defer q.Close()
	got := map[int]int{}
	records := takeAll(t, q, func(b *Batch) {
		for _, e := range b.Entries {
			got[entryIndex(t, e)]++
		}
	})
	missing := 0
	for i := range pending {
		if got[i] == 0 {
			missing++
		}
	}
	if int64(missing) != evicted {
		t.Errorf("seed %d, stop %d: %d messages not delivered, %d evicted; log:\n%s", seed, stop, missing, evicted, logs)
	}
	for i, n := range got {
		if !pending[i] {
			t.Errorf("seed %d, stop %d: message %d delivered again after it was confirmed", seed, stop, i)
		} else if n > 1 {
			t.Errorf("seed %d, stop %d: message %d delivered %d times", seed, stop, i, n)
		}
	}
	if rep.Records != int64(records) || rep.Messages != int64(len(got)) {
		t.Errorf("seed %d, stop %d: Inspect counts %d records, %d messages; the queue delivers %d, %d", seed, stop, rep.Records, rep.Messages, records, len(got))
	}
	if q.LostRecords() != 0 {
		t.Errorf("seed %d, stop %d: %d records counted lost; log:\n%s", seed, stop, q.LostRecords(), logs)
	}
	if t.Failed() {
		t.FailNow()
	}
	delivered := map[int]bool{}
	for i := range got {
		delivered[i] = true
	}
	return delivered
}

// TestCrashWhileEmptyingDrainedFiles stops a queue by a kill -9 (a copy of
// its files) while it empties its drained files: the data files are
// deleted and go-diskqueue not started again yet. Everything was delivered,
// so the copy must deliver nothing and report nothing lost.
func TestCrashWhileEmptyingDrainedFiles(t *testing.T) {
	t.Parallel()
	for _, stale := range []bool{false, true} {
		t.Run(fmt.Sprintf("stale-metadata=%v", stale), func(t *testing.T) {
			t.Parallel()
			crashWhileEmptying(t, stale)
		})
	}
}

// crashWhileEmptying is TestCrashWhileEmptyingDrainedFiles; with stale,
// go-diskqueue's metadata is not synced while the queue goes through
// several data files, so what it holds at the kill is older than them.
func crashWhileEmptying(t *testing.T, stale bool) {
	dir := t.TempDir()
	var crashed string
	q, _ := openQueue(t, dir, func(o *Options) {
		o.BatchMessages = 10
		o.Linger = time.Hour
		o.reclaimBytes = 1
		if stale {
			o.MaxBytesPerFile = 300
			o.reclaimBytes = 4000
			o.SyncEvery = 1 << 20
			o.SyncInterval = time.Hour
		}
		o.afterEmptied = func() {
			if crashed == "" {
				crashed = copyFiles(t, dir)
			}
		}
	})
	for i := range 30 {
		appendRange(t, q, i*10, i*10+10)
		if err := q.Flush(); err != nil {
			t.Fatal(err)
		}
		takeAll(t, q, nil)
	}
	if crashed == "" {
		t.Fatal("the queue never emptied its drained files")
	}
	rep, err := Inspect(crashed, "out", InspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Messages != 0 || len(rep.Damage) != 0 {
		t.Errorf("relay queue stat of the copy: %d messages waiting, damage %v; want none", rep.Messages, rep.Damage)
	}
	q2, logs := openQueue(t, crashed, nil)
	if b, ok, err := q2.TryNext(); err != nil || ok {
		t.Errorf("the copy delivers %v (err %v); everything was delivered before the kill", b, err)
	}
	if q2.LostRecords() != 0 || q2.LostBytes() != 0 {
		t.Errorf("the copy counts %d records, %d bytes lost; nothing was", q2.LostRecords(), q2.LostBytes())
	}
	if s := logs.String(); strings.Contains(s, "lost") || strings.Contains(s, "missing") {
		t.Errorf("the copy's log reports a loss that did not happen:\n%s", s)
	}
}

// takeAll takes every record the queue has ready, hands each to seen (if
// not nil) and confirms it; it returns how many it took.
func takeAll(t *testing.T, q *Queue, seen func(*Batch)) int {
	t.Helper()
	n := 0
	for {
		b, ok, err := q.TryNext()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return n
		}
		n++
		if seen != nil {
			seen(b)
		}
		if err := q.Done(b); err != nil {
			t.Fatal(err)
		}
	}
}
