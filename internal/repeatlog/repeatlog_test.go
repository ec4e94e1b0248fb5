package repeatlog

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

type line struct {
	n       int
	summary bool
	text    string
}

type recorder struct {
	mu    sync.Mutex
	lines []line
}

func (r *recorder) emit(text string) func(int, bool) {
	return func(n int, summary bool) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.lines = append(r.lines, line{n, summary, text})
	}
}

func (r *recorder) get() []line {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]line(nil), r.lines...)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestFirstAtOnceThenCounted: 10,000 occurrences of a key within the
// interval make one line at once; the rest is one summary with their sum
// and the latest occurrence's text. Another key is independent.
func TestFirstAtOnceThenCounted(t *testing.T) {
	l := New(time.Hour)
	var r recorder
	for i := 0; i < 10000; i++ {
		l.Log("disk", 2, r.emit(fmt.Sprint("occurrence ", i)))
	}
	l.Log("other", 1, r.emit("other"))
	got := r.get()
	if len(got) != 2 || got[0] != (line{2, false, "occurrence 0"}) || got[1] != (line{1, false, "other"}) {
		t.Fatalf("lines at once = %v, want the first of each key", got)
	}
	l.Stop()
	got = r.get()
	if len(got) != 3 || got[2] != (line{2 * 9999, true, "occurrence 9999"}) {
		t.Errorf("lines after Stop = %v, want a summary of %d with the latest text", got, 2*9999)
	}
}

// TestSummaryWhenIntervalEnds: the count is logged when the interval ends
// without a further occurrence; nothing is lost or counted twice, and a key
// never gets more than one line per interval.
func TestSummaryWhenIntervalEnds(t *testing.T) {
	const interval = 20 * time.Millisecond
	l := New(interval)
	var r recorder
	began := time.Now()
	total := 0
	for i := 0; i < 200; i++ {
		l.Log("k", i, r.emit("x"))
		total += i
		if i%20 == 0 {
			time.Sleep(3 * time.Millisecond)
		}
	}
	sum := func() int {
		n := 0
		for _, ln := range r.get() {
			n += ln.n
		}
		return n
	}
	waitFor(t, "every occurrence to be logged", func() bool { return sum() == total })
	elapsed := time.Since(began)
	if lines, most := len(r.get()), int(elapsed/interval)+2; lines > most {
		t.Errorf("%d lines in %v, want at most one per %v (%d)", lines, elapsed, interval, most)
	}
	l.Stop()
	if sum() != total {
		t.Errorf("logged %d after Stop, want %d", sum(), total)
	}
}

// TestStopFlushesAndSilences: Stop logs what is pending, and nothing is
// logged after it.
func TestStopFlushesAndSilences(t *testing.T) {
	l := New(time.Hour)
	var r recorder
	l.Log("k", 1, r.emit("first"))
	l.Log("k", 5, r.emit("more"))
	l.Stop()
	l.Log("k", 1, r.emit("after stop"))
	l.Stop()
	got := r.get()
	if len(got) != 2 || got[1] != (line{5, true, "more"}) {
		t.Fatalf("lines = %v, want the first and a summary of 5", got)
	}
}
