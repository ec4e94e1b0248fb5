//go:build unix

package queue

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The crash test runs the test binary itself as a child process that fills
// a queue, takes batches and then kills itself with SIGKILL, so no deferred
// function, Close or flush runs. The parent reopens the queue on the same
// directory.
const (
	crashModeEnv = "RELAY_QUEUE_CRASH_MODE"
	crashDirEnv  = "RELAY_QUEUE_CRASH_DIR"

	crashEntries   = 1000
	crashPerRecord = 50 // so crashEntries make 20 records
	crashDone      = 5  // records the child delivers before the crash
)

func crashOptions(mode, dir string) Options {
	// Linger is long so records are cut by count alone, however slow the machine.
	opts := Options{Name: "out", Dir: dir, BatchMessages: crashPerRecord, Linger: time.Hour}
	if mode == "always" {
		opts.Fsync = FsyncAlways
	}
	if mode == "unsynced" || mode == "unsynced-all-done" || mode == "always" {
		// go-diskqueue never syncs before the kill: its read position and its
		// write position on disk stay those of the empty queue.
		opts.SyncEvery = 1 << 40
		opts.SyncInterval = time.Hour
	}
	return opts
}

// crashChild is the child's side. It reports failures on stderr with exit
// status 3, which the parent tells apart from death by SIGKILL.
func crashChild(mode, dir string) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		os.Exit(3)
	}
	q, err := Open(crashOptions(mode, dir))
	if err != nil {
		fail(err)
	}
	for i := range crashEntries {
		if err := q.Append(testEntry(i)); err != nil {
			fail(err)
		}
	}
	if err := q.Flush(); err != nil {
		fail(err)
	}
	ctx := context.Background()
	for range crashDone {
		b, err := q.Next(ctx)
		if err != nil {
			fail(err)
		}
		if err := q.Done(b); err != nil {
			fail(err)
		}
	}
	// Taken and never done: only the journal can bring it back.
	b, err := q.Next(ctx)
	if err != nil {
		fail(err)
	}
	if mode == "unsynced-all-done" {
		// The journal is left empty: only the marker of what was taken
		// tells the records delivered from those still to send.
		if err := q.Done(b); err != nil {
			fail(err)
		}
	}
	if mode == "synced" {
		// Make go-diskqueue persist a read position past the held record,
		// the case in which go-diskqueue alone would lose it.
		if err := q.diskq().Close(); err != nil {
			fail(err)
		}
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGKILL); err != nil {
		fail(err)
	}
	select {}
}

func TestCrashRecovery(t *testing.T) {
	if mode := os.Getenv(crashModeEnv); mode != "" {
		crashChild(mode, os.Getenv(crashDirEnv))
		return
	}
	tests := []struct {
		mode string
		// dups is the number of entries delivered twice, counting those
		// the child delivered: none, also when go-diskqueue never
		// persisted its read position ("unsynced") and offers every
		// record read before the crash again: the queue knows which
		// records were taken and skips them.
		dups int
		// held: the child's last record was taken and not done.
		held bool
	}{
		{"synced", 0, true},
		{"unsynced", 0, true},
		{"unsynced-all-done", 0, false},
		{"always", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^TestCrashRecovery$")
			cmd.Env = append(os.Environ(), crashModeEnv+"="+tt.mode, crashDirEnv+"="+dir)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("child did not crash: %v\n%s", err, out)
			}
			if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("child ended with %v, want SIGKILL\n%s", err, out)
			}

			q, logs := openQueue(t, dir, func(o *Options) {
				logf := o.Logf
				*o = crashOptions(tt.mode, dir)
				o.Logf = logf
			})
			// The child delivered the first crashDone records before it died
			// (and the one it held, if it did not hold it).
			delivered := crashDone * crashPerRecord
			if !tt.held {
				delivered += crashPerRecord
			}
			seen := make(map[int]int)
			for i := range delivered {
				seen[i] = 1
			}
			total := 0
			first := true
			for total < crashEntries-delivered+tt.dups {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				b, err := q.Next(ctx)
				cancel()
				if err != nil {
					t.Fatalf("Next after %d entries: %v; log:\n%s", total, err, logs)
				}
				for k, e := range b.Entries {
					i := entryIndex(t, e)
					// The held record comes back first, from the journal;
					// else the first the child did not take.
					if first && i != delivered+k {
						t.Fatalf("first entry after the crash is message %d, want %d", i, delivered+k)
					}
					seen[i]++
					total++
				}
				first = false
				if err := q.Done(b); err != nil {
					t.Fatal(err)
				}
			}
			for i := range crashEntries {
				if seen[i] == 0 {
					t.Errorf("message %d lost", i)
				}
			}
			dups := 0
			for _, n := range seen {
				dups += n - 1
			}
			t.Logf("%d entries delivered after the crash, %d duplicates in all; log:\n%s", total, dups, logs)
			if dups != tt.dups {
				t.Errorf("%d duplicates, want %d", dups, tt.dups)
			}
			// Nothing more may arrive.
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			if b, err := q.Next(ctx); err == nil {
				t.Errorf("unexpected extra batch of %d entries", len(b.Entries))
			}
		})
	}
}

// The segment crash test kills the child around the start and the deletion
// of journal segments. The child takes one-entry records of about 4 KiB and
// keeps three in flight, so that the journal is never truncated, and writes
// the index of the first one it holds to crashHeldFile just before it dies.
const (
	crashBigRecords = 3000
	crashHeld       = 3
	crashHeldFile   = "held"
)

func crashSegmentChild(mode, dir string) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		os.Exit(3)
	}
	q, err := Open(Options{Name: "out", Dir: dir, BatchMessages: 1})
	if err != nil {
		fail(err)
	}
	for i := range crashBigRecords {
		if err := q.Append(bigEntry(i)); err != nil {
			fail(err)
		}
	}
	var inflight []*Batch
	die := func() {
		held := fmt.Sprint(bigIndexChild(inflight[0].Entries[0]))
		if err := os.WriteFile(filepath.Join(dir, crashHeldFile), []byte(held), 0o600); err != nil {
			fail(err)
		}
		if err := syscall.Kill(os.Getpid(), syscall.SIGKILL); err != nil {
			fail(err)
		}
		select {}
	}
	// In the "segment-*" modes the child dies at that step of the journal:
	// right after a new segment was created (inside Next) or an emptied one
	// deleted (inside Done; the batch being done is already out of
	// inflight).
	if step, ok := strings.CutPrefix(mode, "segment-"); ok {
		q.j.testHook = func(s string) {
			if s == step {
				die()
			}
		}
	}
	ctx := context.Background()
	for range crashBigRecords {
		b, err := q.Next(ctx)
		if err != nil {
			fail(err)
		}
		inflight = append(inflight, b)
		if len(inflight) > crashHeld {
			old := inflight[0]
			inflight = inflight[1:]
			if err := q.Done(old); err != nil {
				fail(err)
			}
		}
		// In "segmented" mode the child dies well after its first
		// segment was deleted, with entries live in two segments.
		// go-diskqueue persists its read position first, so the held
		// records can come back only from the journal.
		if mode == "segmented" && q.j.deletions > 0 && len(q.j.segs) == 2 {
			if err := q.diskq().Close(); err != nil {
				fail(err)
			}
			die()
		}
	}
	fail(fmt.Errorf("took all %d records without dying, after %d segments", crashBigRecords, q.j.rotations))
}

// bigIndexChild is bigIndex for the child, which has no testing.TB.
func bigIndexChild(e Entry) int {
	num, _, _ := strings.Cut(strings.TrimPrefix(string(e.Data), testPrefix), " ")
	i, err := strconv.Atoi(num)
	if err != nil {
		return -1
	}
	return i
}

func TestCrashRecoverySegments(t *testing.T) {
	if mode := os.Getenv(crashModeEnv); mode != "" {
		crashSegmentChild(mode, os.Getenv(crashDirEnv))
		return
	}
	tests := []struct {
		mode string
		// exact is whether no record may arrive twice: go-diskqueue
		// persisted its read position just before the kill.
		exact bool
	}{
		{"segment-rotated", false},
		{"segment-deleted", false},
		{"segmented", true},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^TestCrashRecoverySegments$")
			cmd.Env = append(os.Environ(), crashModeEnv+"="+tt.mode, crashDirEnv+"="+dir)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("child did not crash: %v\n%s", err, out)
			}
			if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("child ended with %v, want SIGKILL\n%s", err, out)
			}
			heldText, err := os.ReadFile(filepath.Join(dir, crashHeldFile))
			if err != nil {
				t.Fatal(err)
			}
			held, err := strconv.Atoi(string(heldText))
			if err != nil || held < 0 {
				t.Fatalf("child reported held record %q", heldText)
			}

			q, logs := openQueue(t, dir, oneEntryRecords)
			if !strings.Contains(logs.String(), inFlightNote(crashHeld, crashHeld)) {
				t.Errorf("log does not report %d recovered records:\n%s", crashHeld, logs)
			}
			// The child delivered every record before the held ones.
			seen := make(map[int]int)
			for i := range held {
				seen[i] = 1
			}
			for k := 0; ; k++ {
				// Until every record not delivered before the crash is
				// back, Next may skip many that were, which takes long on
				// a busy machine; after that, a short wait finds nothing.
				wait := 200 * time.Millisecond
				if k < crashBigRecords-held {
					wait = 30 * time.Second
				}
				ctx, cancel := context.WithTimeout(context.Background(), wait)
				b, err := q.Next(ctx)
				cancel()
				if err != nil {
					if k < crashBigRecords-held {
						t.Fatalf("Next after %d batches: %v; log:\n%s", k, err, logs)
					}
					break
				}
				i := bigIndex(t, b.Entries[0])
				// The held records come back first, in order, from the
				// journal.
				if k < crashHeld && i != held+k {
					t.Fatalf("batch %d after the crash holds message %d, want %d", k, i, held+k)
				}
				seen[i]++
				if err := q.Done(b); err != nil {
					t.Fatal(err)
				}
			}
			dups := 0
			for i := range crashBigRecords {
				switch {
				case seen[i] == 0:
					t.Errorf("message %d lost", i)
				case seen[i] > 1 && (tt.exact || i >= held+crashHeld):
					// Records never taken before the crash come once.
					t.Errorf("message %d delivered %d times", i, seen[i])
				}
				dups += max(seen[i]-1, 0)
			}
			t.Logf("held %d..%d at the crash; %d duplicates", held, held+crashHeld-1, dups)
		})
	}
}
