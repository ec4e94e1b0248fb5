//go:build unix

package queue

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The depth crash test kills a child that wrote records after
// go-diskqueue's last metadata sync, so that the metadata on disk counts
// fewer records than the data files hold. The parent then reopens the queue
// and runs it as an output worker does while new messages keep coming, which
// makes the queue empty its files whenever go-diskqueue says nothing is
// left: every record must still arrive.
const (
	depthFileBytes = 4 << 20 // about 1000 records of bigEntry per data file
	depthFirst     = 300     // records put before the child reads
	depthDone      = 20      // records the child delivers before the crash
	depthAfterSync = 600     // records the child writes after the last sync
	depthNewBase   = 100_000 // index of the first record the parent appends
)

func depthOptions(dir string) Options {
	return Options{
		Name: "out", Dir: dir, MaxBytesPerFile: depthFileBytes, BatchMessages: 1, Linger: time.Hour,
		// Only a file roll, or an Empty that deletes the metadata, makes
		// go-diskqueue's state on disk change before the kill.
		SyncEvery: 1 << 40, SyncInterval: time.Hour,
		reclaimBytes: 1 << 20,
	}
}

// depthChild fills the queue so that, at the kill, depthAfterSync records lie
// beyond what go-diskqueue's metadata describes:
//
//   - "rolled": records follow the write position that go-diskqueue synced
//     when it started a new data file;
//   - "emptied": the queue had been drained and its files emptied, which
//     leaves go-diskqueue's metadata without a read position, and records
//     were written after.
//
// It delivers depthDone records and takes one more without Done.
func depthChild(mode, dir string) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		os.Exit(3)
	}
	q, err := Open(depthOptions(dir))
	if err != nil {
		fail(err)
	}
	put := func(i int) {
		if err := q.Append(bigEntry(i)); err != nil {
			fail(err)
		}
	}
	i := 0
	for ; i < depthFirst; i++ {
		put(i)
	}
	ctx := context.Background()
	take := func(n int) {
		for range n {
			b, err := q.Next(ctx)
			if err != nil {
				fail(err)
			}
			if err := q.Done(b); err != nil {
				fail(err)
			}
		}
	}
	switch mode {
	case "rolled":
		take(depthDone)
		if _, err := q.Next(ctx); err != nil { // held: only the journal has it
			fail(err)
		}
		// Write until go-diskqueue starts data file 1, which syncs its
		// metadata: write position (1, 0).
		for ; ; i++ {
			if _, err := os.Stat(dataPath(dir, "out", 1)); err == nil {
				break
			}
			put(i)
		}
	case "emptied":
		// Everything put is read: the next put empties the files first.
		take(depthFirst)
		if q.sinceEmpty < q.reclaimAt {
			fail(fmt.Errorf("only %d bytes put, the files would not be emptied", q.sinceEmpty))
		}
	default:
		fail(fmt.Errorf("unknown mode %q", mode))
	}
	for end := i + depthAfterSync; i < end; i++ {
		put(i)
	}
	if mode == "emptied" {
		b, err := os.ReadFile(metaPath(dir, "out"))
		if _, perr := parseMeta(b); err != nil || !errors.Is(perr, errNoReadPos) {
			fail(fmt.Errorf("go-diskqueue metadata %q (%v), want it without a read position", b, err))
		}
	}
	// Tell the parent how many records there are.
	if err := os.WriteFile(filepath.Join(dir, "written"), fmt.Append(nil, i), 0o600); err != nil {
		fail(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGKILL); err != nil {
		fail(err)
	}
	select {}
}

func TestCrashDepth(t *testing.T) {
	if mode := os.Getenv(crashModeEnv); mode != "" {
		depthChild(mode, os.Getenv(crashDirEnv))
		return
	}
	for _, mode := range []string{"rolled", "emptied"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^TestCrashDepth$")
			cmd.Env = append(os.Environ(), crashModeEnv+"="+mode, crashDirEnv+"="+dir)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("child did not crash: %v\n%s", err, out)
			}
			if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("child ended with %v, want SIGKILL\n%s", err, out)
			}
			var written int
			if b, err := os.ReadFile(dir + "/written"); err != nil {
				t.Fatal(err)
			} else if _, err := fmt.Sscan(string(b), &written); err != nil {
				t.Fatalf("child reported %q records: %v", b, err)
			}

			q, logs := openQueue(t, dir, func(o *Options) {
				logf := o.Logf
				*o = depthOptions(dir)
				o.Logf = logf
			})
			// want holds every record not delivered before the crash: the
			// child's and those appended below.
			want := make(map[int]bool)
			from := depthDone
			if mode == "emptied" {
				from = depthFirst
			}
			for i := from; i < written; i++ {
				want[i] = true
			}
			seen := make(map[int]int)
			take := func() {
				t.Helper()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				b, err := q.Next(ctx)
				cancel()
				if err != nil {
					var missing []int
					for i := range want {
						if seen[i] == 0 {
							missing = append(missing, i)
						}
					}
					t.Fatalf("Next: %v; %d records never arrived; log:\n%s", err, len(missing), logs)
				}
				seen[bigIndex(t, b.Entries[0])]++
				if err := q.Done(b); err != nil {
					t.Fatal(err)
				}
			}
			// Like an output worker that is catching up while messages
			// keep arriving: one new record, two taken, until the backlog
			// is gone. The queue empties its files when it believes
			// everything put has been read.
			backlog := len(want)
			for k := 0; k < backlog; k++ {
				i := depthNewBase + k
				if err := q.Append(bigEntry(i)); err != nil {
					t.Fatal(err)
				}
				want[i] = true
				take()
				take()
			}
			for k := 0; k < 2*backlog && len(seen) < len(want); k++ {
				take()
			}
			dups := 0
			for i, n := range seen {
				if !want[i] {
					t.Errorf("record %d arrived, but it was delivered before the crash", i)
				}
				dups += n - 1
			}
			lost := 0
			for i := range want {
				if seen[i] == 0 {
					lost++
				}
			}
			t.Logf("%d records written before the crash, %d after; %d lost, %d duplicates", written, backlog, lost, dups)
			if lost > 0 {
				t.Errorf("%d records lost; log:\n%s", lost, logs)
			}
			// The records written after the sync were never read, so
			// nothing comes twice.
			if dups > 0 {
				t.Errorf("%d duplicates, want none", dups)
			}
			if s := logs.String(); strings.Contains(s, "depth at tail") {
				t.Errorf("go-diskqueue's depth was off after the crash:\n%s", s)
			}
		})
	}
}

// The twice crash test kills two children in a row on one queue. The first
// writes records and dies before any metadata sync. The second delivers every
// one of them and dies shortly after, before a sync by count or interval.
// Its reader persists its position when it moves on from the recovered
// records, so the parent gets none of them a third time: duplicates after a
// crash are bounded by the sync window of the run that crashed, not
// accumulated over crashes in a row.
const twiceRecords = 300

func twiceChild(mode, dir string) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		os.Exit(3)
	}
	q, err := Open(depthOptions(dir))
	if err != nil {
		fail(err)
	}
	switch mode {
	case "write":
		for i := range twiceRecords {
			if err := q.Append(bigEntry(i)); err != nil {
				fail(err)
			}
		}
	case "deliver":
		ctx := context.Background()
		for range twiceRecords {
			b, err := q.Next(ctx)
			if err != nil {
				fail(err)
			}
			if err := q.Done(b); err != nil {
				fail(err)
			}
		}
		// Every record is in data file 0. go-diskqueue writes its metadata
		// from its own goroutine, so give it time to record a read position
		// past that file, and let the parent judge what it found.
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			b, err := os.ReadFile(metaPath(dir, "out"))
			if m, perr := parseMeta(b); err == nil && perr == nil && m.readNum > 0 && m.readNum == m.writeNum && m.readPos == m.writePos {
				break
			}
			time.Sleep(time.Millisecond)
		}
	default:
		fail(fmt.Errorf("unknown mode %q", mode))
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGKILL); err != nil {
		fail(err)
	}
	select {}
}

func TestCrashTwiceDuplicates(t *testing.T) {
	if mode := os.Getenv(crashModeEnv); mode != "" {
		twiceChild(mode, os.Getenv(crashDirEnv))
		return
	}
	dir := t.TempDir()
	for _, mode := range []string{"write", "deliver"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashTwiceDuplicates$")
		cmd.Env = append(os.Environ(), crashModeEnv+"="+mode, crashDirEnv+"="+dir)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("%s child did not crash: %v\n%s", mode, err, out)
		}
		if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("%s child ended with %v, want SIGKILL\n%s", mode, err, out)
		}
	}
	q, logs := openQueue(t, dir, func(o *Options) {
		logf := o.Logf
		*o = depthOptions(dir)
		o.Logf = logf
	})
	again := 0
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		b, err := q.Next(ctx)
		cancel()
		if err != nil {
			break
		}
		again++
		if err := q.Done(b); err != nil {
			t.Fatal(err)
		}
	}
	if again > 0 {
		t.Errorf("%d of the %d records delivered before the second crash came again; log:\n%s", again, twiceRecords, logs)
	}
}
