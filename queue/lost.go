package queue

import (
	"os"
	"sync"
	"sync/atomic"
)

// Counting what damaged or missing queue files lost.
//
// Records: the queue counts the records written and not read (the depth,
// which go-diskqueue's metadata holds exactly after a clean stop; reader.go).
// When the reader reaches the end of the queue with the depth still above
// zero, the records it could not read are gone (checkTail). That count
// includes the records after a damaged record that the salvage (salvage.go)
// later finds intact and puts back, so the loss is the count minus what the
// salvage of this run's damaged files recovered, counted once both are
// known. A negative depth at the end means records were counted twice:
// duplicates, never a loss, and nothing is counted.
//
// Bytes: the bytes the salvage skipped as damaged, the bytes of records
// that failed their checksum, and, at Open, the part of the newest data
// file that its metadata says was written but the file no longer has (a
// file cut short). What an older data file lost at its end, or a data file
// that vanished, cannot be known in bytes; its records are still counted.

// syncFailedFormat is go-diskqueue's line for a failed sync, whose
// temporary metadata file the queue removes.
const syncFailedFormat = "DISKQUEUE(%s) failed to sync - %s"

type lossState struct {
	mu sync.Mutex
	// tail is the records the reader found missing at its tail and not
	// yet settled against salvage; salvaged is the records the salvage of
	// this run's read errors put back and not yet settled; jobs is the
	// number of those salvage jobs still pending.
	tail, salvaged int64
	jobs           int

	records atomic.Uint64
	bytes   atomic.Uint64
}

// tailLoss notes n records counted as written that the reader did not
// find when it reached the end of the queue.
func (q *Queue) tailLoss(n int64) {
	q.loss.mu.Lock()
	defer q.loss.mu.Unlock()
	q.loss.tail += n
	q.settleLossLocked()
}

// noteNegativeTail forgets salvage credit: a negative depth means the
// metadata was stale, so the records salvaged were not part of a loss.
func (q *Queue) noteNegativeTail() {
	q.loss.mu.Lock()
	defer q.loss.mu.Unlock()
	if q.loss.jobs == 0 {
		q.loss.salvaged = 0
	}
}

// readErrorJob notes a salvage job for a read error of this run.
func (q *Queue) readErrorJob() {
	q.loss.mu.Lock()
	defer q.loss.mu.Unlock()
	q.loss.jobs++
}

// salvageDone notes the end of a salvage job: the records it put back and
// the bytes it had to skip.
func (q *Queue) salvageDone(job salvageJob, recovered int, damaged int64) {
	q.loss.bytes.Add(uint64(damaged))
	if !job.readError {
		return
	}
	q.loss.mu.Lock()
	defer q.loss.mu.Unlock()
	q.loss.jobs--
	q.loss.salvaged += int64(recovered)
	q.settleLossLocked()
}

func (q *Queue) settleLossLocked() {
	if q.loss.jobs > 0 || q.loss.tail == 0 {
		return
	}
	lost := q.loss.tail - q.loss.salvaged
	q.loss.tail, q.loss.salvaged = 0, 0
	if lost > 0 {
		q.loss.records.Add(uint64(lost))
		q.logf("queue %q: %d records could not be read from the queue's files (damaged, cut short or removed) and are lost", q.name, lost)
	}
}

// noteCorruptRecord counts the bytes of a record that failed its checksum.
func (q *Queue) noteCorruptRecord(size int) { q.loss.bytes.Add(uint64(size) + 4) }

// countMissingAtOpen counts the bytes the newest data file lacks against
// its metadata.
func (q *Queue) countMissingAtOpen() {
	b, err := os.ReadFile(metaPath(q.dir, q.name))
	if err != nil {
		return
	}
	m, err := parseMeta(b)
	if err != nil {
		return
	}
	fi, err := os.Stat(dataPath(q.dir, q.name, m.writeNum))
	if err != nil {
		return
	}
	have := fi.Size()
	if m.readNum == m.writeNum {
		have = max(have, m.readPos)
	}
	if missing := m.writePos - have; missing > 0 {
		q.loss.bytes.Add(uint64(missing))
		q.logf("queue %q: %s is %d bytes shorter than its metadata records; what was there is lost",
			q.name, fi.Name(), missing)
	}
}

// LostRecords returns the number of records the queue's files were found
// to have lost (damaged, cut short or removed), after salvage. Their
// messages are lost.
func (q *Queue) LostRecords() uint64 { return q.loss.records.Load() }

// LostBytes returns the bytes of queue data found damaged or missing.
func (q *Queue) LostBytes() uint64 { return q.loss.bytes.Load() }
