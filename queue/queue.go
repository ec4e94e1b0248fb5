package queue

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nsqio/go-diskqueue"

	"github.com/relay-syslog/relay/internal/repeatlog"
)

// Entry is one syslog message with what the relay knows about its arrival.
type Entry struct {
	Received time.Time // receive time, stored as unix nanoseconds
	Epoch    uint32    // the relay run that received it (see Seq)
	Seq      uint64    // the relay's sequence number of the message within Epoch
	Listener string    // name of the listener it arrived on (at most MaxNameLen bytes kept)
	Source   string    // sender address, e.g. "192.0.2.1:514", or "" (at most MaxNameLen bytes kept)
	Data     []byte    // the message bytes exactly as received, framing removed
}

// Options configures a Queue. Zero values select the defaults.
type Options struct {
	Name            string        // output name; used in log lines and as the diskqueue name
	Dir             string        // directory of this queue, created with mode 0750 if missing
	MaxBytesPerFile int64         // diskqueue file roll size; default 64 MiB
	SyncEvery       int64         // diskqueue fsyncs after this many records read or written; default 1000
	SyncInterval    time.Duration // diskqueue fsyncs at least this often when busy; default 1s
	BatchMessages   int           // put a record when it holds this many entries; default 1024
	BatchBytes      int           // put a record when it holds this many encoded bytes; default 128 KiB, at most 16 MiB
	Linger          time.Duration // put a partial record this long after its first entry; default 2ms
	Fsync           FsyncMode     // when to fsync beyond go-diskqueue's own sync; default FsyncInterval

	// Logf receives warnings and errors; it may be nil.
	Logf func(format string, args ...any)
	// Infof receives notes on normal events an administrator may want to
	// see (records in flight at the last stop, sent again first); it may
	// be nil.
	Infof func(format string, args ...any)
	// Debugf receives notes on normal events an administrator need not see
	// (a fully read file set aside at a roll and removed); it may be nil.
	Debugf func(format string, args ...any)

	// MaxBytes caps the bytes waiting in the queue's data files (0: no cap
	// but the disk). What happens to a message that does not fit is
	// FullPolicy's choice.
	MaxBytes   int64
	FullPolicy FullPolicy
	// BlockTimeout is how long Append waits for room under FullPolicy
	// Block before it drops the message (0: default 2s).
	BlockTimeout time.Duration

	// OnDrop is told about entries lost outside an Append call: old
	// records evicted by DropOldest, and, at Close, messages that only
	// memory held because the disk refused them (ReasonLostAtStop). It
	// may be nil. Append and Flush report their own failures as a
	// *DropError.
	OnDrop func(count int, reason string, err error)

	// reclaimBytes is how many bytes a drained queue's files may hold
	// before they are emptied (0: reclaimThreshold); tests lower it.
	reclaimBytes int64
	// afterEmptied, if set, is called when emptying a drained queue has
	// deleted its data files and not yet started go-diskqueue again: a
	// test copies the files there, as a kill -9 would leave them.
	afterEmptied func()
}

// FullPolicy says what Append does when the queue is at MaxBytes.
type FullPolicy int

const (
	// Block makes Append wait for the output to free room, which stops the
	// listener's reading and so pushes back on TCP senders; after
	// BlockTimeout the message is dropped. From then on the queue is full
	// (Full): messages that do not fit are dropped at once, without
	// waiting, until one fits again. An output that stopped taking records
	// would otherwise hold every listener for BlockTimeout per message, and
	// with it every other output those listeners feed.
	Block FullPolicy = iota
	// DropNewest refuses the message being appended.
	DropNewest
	// DropOldest evicts the oldest waiting records to make room.
	DropOldest
)

// Drop reasons, used in DropError.Reason and OnDrop; they are metric labels.
const (
	ReasonQueueFull     = "queue_full"   // DropNewest, or Block after BlockTimeout
	ReasonEvicted       = "evicted"      // DropOldest made room for newer messages
	ReasonDiskFull      = "disk_full"    // ENOSPC or EDQUOT writing the queue
	ReasonDiskError     = "disk_error"   // any other write error
	ReasonTooLarge      = "too_large"    // a message larger than MaxDataLen
	ReasonClosed        = "closed"       // an Append that met the queue closed (the relay is stopping)
	ReasonLostAtStop    = "lost_at_stop" // accepted while the disk refused writes, only in memory, undelivered at Close
	defaultBlockTimeout = 2 * time.Second
)

// ErrFull is wrapped by the DropError of a message refused by a full queue.
var ErrFull = errors.New("queue full")

const (
	defaultMaxBytesPerFile = 64 << 20
	defaultSyncEvery       = 1000
	defaultSyncInterval    = time.Second
	defaultBatchMessages   = 1024
	defaultBatchBytes      = 128 << 10
	defaultLinger          = 2 * time.Millisecond
)

func (o Options) withDefaults() (Options, error) {
	if err := CheckName(o.Name); err != nil {
		return o, fmt.Errorf("queue: %w", err)
	}
	if o.Dir == "" {
		return o, fmt.Errorf("queue %q: no directory", o.Name)
	}
	// go-diskqueue builds its file names with fmt.Sprintf(path.Join(dir, ...)),
	// so a '%' in the directory would garble every file name.
	if strings.Contains(o.Dir, "%") {
		return o, fmt.Errorf("queue %q: directory %q must not contain '%%'", o.Name, o.Dir)
	}
	if o.MaxBytesPerFile < 0 || o.SyncEvery < 0 || o.SyncInterval < 0 ||
		o.BatchMessages < 0 || o.BatchBytes < 0 || o.Linger < 0 {
		return o, fmt.Errorf("queue %q: negative size, count or duration", o.Name)
	}
	if o.BatchBytes > maxBatchBytes {
		return o, fmt.Errorf("queue %q: batch bytes %d exceeds %d", o.Name, o.BatchBytes, maxBatchBytes)
	}
	if o.MaxBytesPerFile == 0 {
		o.MaxBytesPerFile = defaultMaxBytesPerFile
	}
	if o.SyncEvery == 0 {
		o.SyncEvery = defaultSyncEvery
	}
	if o.SyncInterval == 0 {
		o.SyncInterval = defaultSyncInterval
	}
	if o.BatchMessages == 0 {
		o.BatchMessages = defaultBatchMessages
	}
	if o.BatchBytes == 0 {
		o.BatchBytes = defaultBatchBytes
	}
	if o.Linger == 0 {
		o.Linger = defaultLinger
	}
	if o.BlockTimeout == 0 {
		o.BlockTimeout = defaultBlockTimeout
	}
	if o.MaxBytes < 0 || o.BlockTimeout < 0 {
		return o, fmt.Errorf("queue %q: negative size or duration", o.Name)
	}
	if o.Fsync < FsyncInterval || o.Fsync > FsyncAlways {
		return o, fmt.Errorf("queue %q: unknown fsync mode %d", o.Name, o.Fsync)
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.Infof == nil {
		o.Infof = func(string, ...any) {}
	}
	if o.Debugf == nil {
		o.Debugf = func(string, ...any) {}
	}
	return o, nil
}

// ErrClosed is returned by operations on a closed Queue.
var ErrClosed = errors.New("queue closed")

// ErrTooLarge is wrapped by the DropError Append returns for a message longer
// than MaxDataLen.
var ErrTooLarge = errors.New("message too large")

// DropError reports entries that were accepted by Append but are lost,
// because the record holding them could not be put. Count includes the entry
// of the Append call that returned the error.
type DropError struct {
	Count  int
	Reason string // one of the Reason constants
	Err    error
}

func (e *DropError) Error() string {
	return fmt.Sprintf("%d entries dropped: %v", e.Count, e.Err)
}

func (e *DropError) Unwrap() error { return e.Err }

// Batch is the decoded content of one record.
type Batch struct {
	// Entries are the messages of the record, in the order they were
	// appended. Their Data slices point into the record buffer. Both are
	// valid until Done, which sets Entries to nil: the queue decodes a
	// later record into the same slice.
	Entries []Entry

	q    *Queue
	je   *jentry // the record's journal entry, or nil if it has none
	rec  []byte  // the record's buffer from the reader, given back at Done
	done bool
}

// Queue is the persistent queue of one output. See the package comment.
type Queue struct {
	name   string
	dir    string
	logf   func(format string, args ...any)
	infof  func(format string, args ...any)
	debugf func(format string, args ...any)
	onDrop func(count int, reason string, err error)

	maxQueued    int64
	policy       FullPolicy
	blockTimeout time.Duration
	// queued counts the bytes of records put and not yet taken from
	// go-diskqueue (the length prefix included): what MaxBytes caps. It is
	// kept by hand because reading file sizes per Append would cost a
	// syscall per message.
	queued atomic.Int64
	// room is signalled (without blocking) whenever the consumer takes a
	// record, waking an Append blocked on a full queue.
	room chan struct{}
	// full is set when a message did not fit under MaxBytes without a
	// drop (under Block: after waiting BlockTimeout) and cleared when one
	// fits again; while set, Block drops without waiting. Written under mu.
	full atomic.Bool
	// putErr holds why the disk refuses writes (a failed Put or journal
	// write, or no room at Open) until a Put succeeds or the disk has room
	// again (diskfull.go); it makes the relay unready meanwhile.
	putErr atomic.Pointer[error]
	// retained is set while the record in rb could not be written; it is
	// kept for a retry, or for the consumer to take from memory
	// (diskfull.go). q.mu guards it.
	retained bool
	// sinceEmpty counts bytes put since the queue's files were last
	// emptied. go-diskqueue frees disk space only by deleting a data file
	// once it has read past it, so a queue that is read as fast as it is
	// written keeps one growing file up to MaxBytesPerFile. When everything
	// put has been read, the files hold nothing of value and are emptied.
	// q.mu guards it.
	sinceEmpty int64
	reclaimAt  int64 // sinceEmpty that makes a drained queue's files emptied
	// afterEmptied is Options.afterEmptied.
	afterEmptied func()
	// sv holds the *.bad files waiting to be salvaged (see salvage.go).
	sv       salvager
	maxMsgs  int
	maxBytes int
	linger   time.Duration
	keepBuf  int // the packing buffer is dropped when it grows beyond this
	fsync    FsyncMode
	dsync    dataSync // FsyncAlways: the data file to sync (fsync.go)

	// dq is go-diskqueue, which only writes (reader.go); a relocation
	// (dirgone.go) and a restart on a new file (restartDQ) replace it,
	// holding q.mu, so it is read through diskq.
	dq           atomic.Pointer[dqRef]
	maxFile      int64 // go-diskqueue's MaxBytesPerFile
	syncEvery    int64
	syncInterval time.Duration

	// rmu guards the reader (rd), which reads the records from
	// go-diskqueue's files (reader.go). Lock order: q.cmu, q.mu, q.rmu,
	// q.wmu.
	rmu sync.Mutex
	rd  dqReader
	// wmu guards we, the mirrored write position and the count of
	// records not yet read.
	wmu sync.Mutex
	we  writeEnd
	// written is signalled (without blocking) after every record put,
	// waking a Next waiting for one.
	written chan struct{}

	rl   *repeatlog.Limiter // repeating log lines
	ds   diskState          // a disk that refuses writes (diskfull.go)
	loss lossState          // damaged and missing files (lost.go)
	dw   dirWatch           // a removed directory (dirgone.go)
	age  ageState           // the oldest record in flight (age.go)

	// mu guards the producer side. It is held while a record is encoded and
	// while it is Put; go-diskqueue serialises Puts anyway.
	mu     sync.Mutex
	closed bool
	rb     RecordBuilder
	gen    uint64      // counts records put, so a stale Linger timer does nothing
	timer  *time.Timer // Linger timer of the current record, nil when empty

	// closing is closed by Close; it wakes a Next blocked on an empty queue.
	closing chan struct{}

	// cmu guards the consumer side: the journal, with the handles of the
	// live entries that Batches and recovered records refer to, and the
	// recovered records.
	// Next holds it even while it waits, so that Close, which takes it before
	// closing go-diskqueue, can never close the journal between Next's
	// receive of a record and its journal write.
	cmu       sync.Mutex
	j         *journal
	recovered []journalRecord
	jclosed   bool

	// recSeq is the sequence number of the last record put (or tried);
	// q.mu guards it. skipTo is the highest one taken before the queue was
	// opened, set by Open and only read after: Next skips records up to it
	// that go-diskqueue reads again after a crash (see journal.go), and
	// evictOldest does not count them as dropped. skipped counts the
	// records Next skipped; q.cmu guards it.
	recSeq  uint64
	skipTo  uint64
	skipped int

	// spareEntries holds the Entries slices of batches done, cleared, for
	// decoding the next records into: a record of 200 messages needs 20 KB
	// of entries, and allocating them per record was about a third of the
	// decoding's time, with the page faults and GC work it caused. q.cmu
	// guards it.
	spareEntries [][]Entry

	recoveredAtOpen int           // records found in flight in the journal at Open
	inflight        atomic.Int64  // records returned (or to be returned) by Next and not Done
	corrupt         atomic.Uint64 // records skipped as corrupt
}

// Open opens the queue in opts.Dir, creating it if needed, and reads its
// in-flight journal.
func Open(opts Options) (*Queue, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("queue %q: %w", opts.Name, err)
	}
	if err := checkRegularFiles(opts.Dir, opts.Name); err != nil {
		return nil, fmt.Errorf("queue %q: %w", opts.Name, err)
	}
	added, err := repairMetadata(opts.Dir, opts.Name)
	if err != nil {
		return nil, fmt.Errorf("queue %q: %w", opts.Name, err)
	}
	maxSeq, err := countRecords(opts.Dir, opts.Name)
	if err != nil {
		return nil, fmt.Errorf("queue %q: count records: %w", opts.Name, err)
	}
	j, recovered, torn, err := openJournal(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("queue %q: %w", opts.Name, err)
	}

	q := &Queue{
		name:         opts.Name,
		dir:          opts.Dir,
		logf:         opts.Logf,
		infof:        opts.Infof,
		debugf:       opts.Debugf,
		onDrop:       opts.OnDrop,
		maxMsgs:      opts.BatchMessages,
		maxBytes:     opts.BatchBytes,
		linger:       opts.Linger,
		fsync:        opts.Fsync,
		reclaimAt:    cmp.Or(opts.reclaimBytes, reclaimThreshold),
		afterEmptied: opts.afterEmptied,
		keepBuf:      4*(opts.BatchBytes+headerRoom) + keepBufLen,
		closing:      make(chan struct{}),
		written:      make(chan struct{}, 1),

		maxFile:      opts.MaxBytesPerFile,
		syncEvery:    opts.SyncEvery,
		syncInterval: opts.SyncInterval,

		maxQueued:    opts.MaxBytes,
		policy:       opts.FullPolicy,
		blockTimeout: opts.BlockTimeout,
		room:         make(chan struct{}, 1),
		j:            j,
		recovered:    recovered,
		// New records are numbered above every record go-diskqueue may
		// still offer and every record taken, so the marker keeps rising.
		recSeq: max(maxSeq, j.taken),
		skipTo: j.taken,
	}
	q.inflight.Store(int64(len(recovered)))
	q.recoveredAtOpen = len(recovered)
	if q.fsync == FsyncAlways {
		// The journal's files may have just been created.
		j.syncDirs = true
		if err := syncDir(opts.Dir); err != nil {
			_ = j.close()
			return nil, fmt.Errorf("queue %q: %w", opts.Name, err)
		}
	}
	if torn > 0 {
		q.corrupt.Add(1)
		q.logf("queue %q: ignored %d bytes of torn or corrupt in-flight journal", q.name, torn)
	}
	if len(recovered) > 0 {
		msgs := 0
		for _, r := range recovered {
			msgs += recordCount(r.rec)
		}
		// Normal after any stop with records unconfirmed (an upstream
		// down at a clean stop, too): a note, not a warning.
		q.infof("queue %q: %s", q.name, inFlightNote(len(recovered), msgs))
	}
	if added > 0 {
		q.debugf("queue %q: %d records on disk that go-diskqueue's metadata did not count (the relay did not stop cleanly) are counted now", q.name, added)
	}
	q.queued.Store(unreadBytes(opts.Dir, opts.Name))
	q.rl = repeatlog.New(repeatInterval)
	q.initDiskState(opts.BatchBytes)
	// Files that were there at the last stop may hold nothing unread:
	// reclaimIfDrained may empty them once the output has caught up.
	q.sinceEmpty = dataFilesSize(opts.Dir, opts.Name)
	q.removeMetaTmps()
	q.countMissingAtOpen()
	q.findBadFiles()
	if err := q.startReader(); err != nil {
		_ = j.close()
		return nil, fmt.Errorf("queue %q: %w", opts.Name, err)
	}
	salvage := len(q.sv.jobs) > 0
	if salvage {
		q.runSalvage()
	}
	q.checkRoomAtOpen()
	if err := q.watchDir(); err != nil {
		_ = q.Close()
		return nil, fmt.Errorf("queue %q: %w", opts.Name, err)
	}
	return q, nil
}

// dqRef holds go-diskqueue for an atomic pointer.
type dqRef struct{ diskqueue.Interface }

func (q *Queue) diskq() diskqueue.Interface { return q.dq.Load().Interface }

func (q *Queue) setDQ(d diskqueue.Interface) { q.dq.Store(&dqRef{d}) }

// diskqueueLog passes go-diskqueue's warnings and errors on; its DEBUG and
// INFO lines (every file it opens) are chatter. A read error and the
// setting aside of the file that follows it are not passed on: they also
// happen at a normal file roll, and the salvage of the file says what, if
// anything, was wrong (see salvage.go). A line that repeats (a failing sync
// on a full disk, once per attempt) is logged once per interval with a
// count.
func (q *Queue) diskqueueLog(lvl diskqueue.LogLevel, format string, args ...any) {
	if lvl < diskqueue.WARN {
		return
	}
	// go-diskqueue never reads (reader.go), so its lines about read
	// errors, bad files and its tail cannot come; the queue's reader says
	// those itself.
	if format == syncFailedFormat {
		q.removeFailedMetaTmp(args)
	}
	q.logRepeat(format, 1, func(n int, summary bool) {
		line := fmt.Sprintf("queue %q: go-diskqueue %s: "+format, append([]any{q.name, lvl}, args...)...)
		if summary {
			line += fmt.Sprintf(" (%d times%s)", n, q.repeatSuffix(true))
		}
		q.logf("%s", line)
	})
}

// Append adds e to the current record and puts the record when it is full.
// e.Data is copied. The first entry of a record arms a timer that puts the
// record Linger later if it has not filled by then.
//
// Append refuses e with a *DropError when the queue is full under
// DropNewest (or Block after BlockTimeout), when e is too large, or while an
// earlier record that could not be written (for example ENOSPC) still waits
// in memory for a retry. A nil return means e is accepted: in the record
// being packed, on disk within Linger.
func (q *Queue) Append(e Entry) error {
	return q.append(&e, Encoded{})
}

// AppendEncoded is Append of an entry EncodeEntry encoded: a message that
// goes to several outputs is encoded once, and each queue copies the bytes.
// enc is copied.
func (q *Queue) AppendEncoded(enc Encoded) error {
	return q.append(nil, enc)
}

// append adds *e, or enc if e is nil.
func (q *Queue) append(e *Entry, enc Encoded) error {
	dataLen, size := enc.dataLen, int64(len(enc.b))
	if e != nil {
		dataLen, size = len(e.Data), entrySize(*e)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return ErrClosed
	}
	if dataLen > MaxDataLen {
		return &DropError{Count: 1, Reason: ReasonTooLarge, Err: fmt.Errorf("queue %q: message of %d bytes: %w", q.name, dataLen, ErrTooLarge)}
	}
	if q.maxQueued > 0 || q.full.Load() {
		if err := q.makeRoom(size); err != nil {
			return err
		}
	}
	if q.retained {
		// The record before could not be written: it waits in memory,
		// and a new message is refused until it is on disk or taken by
		// the output. The recovery timer tries the disk (diskfull.go).
		return dropError(1, q.Err())
	}
	if e != nil {
		q.rb.Add(*e)
	} else {
		q.rb.addEncoded(enc.b)
	}
	if q.rb.Len() >= q.maxMsgs || q.rb.Size() >= q.maxBytes {
		// A failed write keeps the record, e included, for a retry: e was
		// accepted, and only a stop before the disk takes it again can
		// lose it (counted; see Close).
		_ = q.flushLocked()
		return nil
	}
	if q.rb.Len() == 1 {
		// A timer per record, rather than one long-lived goroutine, costs
		// nothing while the queue is idle; the generation tells a timer that
		// fires after its record was put by size that it has nothing to do.
		gen := q.gen
		q.timer = time.AfterFunc(q.linger, func() { q.lingerFlush(gen) })
	}
	return nil
}

// SetLimits changes MaxBytes, FullPolicy and BlockTimeout (zero: the
// default) of the open queue, as a configuration reload does: an operator
// may raise the cap while an upstream is down and the queue is full. An
// Append waiting for room under Block checks the new cap at once; further
// waiting ones do when the output takes a record or their timeout passes.
func (q *Queue) SetLimits(maxBytes int64, policy FullPolicy, blockTimeout time.Duration) error {
	if maxBytes < 0 || blockTimeout < 0 {
		return fmt.Errorf("queue %q: negative size or duration", q.name)
	}
	if policy < Block || policy > DropOldest {
		return fmt.Errorf("queue %q: unknown full policy %d", q.name, policy)
	}
	if blockTimeout == 0 {
		blockTimeout = defaultBlockTimeout
	}
	q.mu.Lock()
	q.maxQueued, q.policy, q.blockTimeout = maxBytes, policy, blockTimeout
	q.mu.Unlock()
	select {
	case q.room <- struct{}{}:
	default:
	}
	return nil
}

// entrySize is an upper bound of what e adds to a record.
func entrySize(e Entry) int64 {
	return int64(len(e.Data) + min(len(e.Listener), MaxNameLen) + min(len(e.Source), MaxNameLen) + 2*binary.MaxVarintLen64 + 2)
}

// makeRoom applies the full-queue policy until an entry of size bytes fits
// under MaxBytes together with the record being packed. q.mu must be held;
// Block releases it while it waits.
func (q *Queue) makeRoom(size int64) error {
	var deadline *time.Timer
	defer func() {
		if deadline != nil {
			deadline.Stop()
		}
	}()
	// maxQueued is checked on every turn: SetLimits may change it, to 0
	// (no cap) too, while Append waits.
	for q.maxQueued > 0 && q.queued.Load()+int64(q.rb.Size())+size+4 > q.maxQueued {
		switch q.policy {
		case DropNewest:
			q.setFull(true)
			return &DropError{Count: 1, Reason: ReasonQueueFull, Err: fmt.Errorf("queue %q: %w", q.name, ErrFull)}
		case DropOldest:
			if !q.evictOldest() {
				// Nothing waits on disk to evict: what fills the cap is the
				// record being packed, so this message does not fit.
				q.setFull(true)
				return &DropError{Count: 1, Reason: ReasonQueueFull, Err: fmt.Errorf("queue %q: %w", q.name, ErrFull)}
			}
		default: // Block
			if q.full.Load() {
				// An earlier message waited BlockTimeout in vain: the
				// output is not taking records, and waiting again would
				// only hold up the listeners.
				return &DropError{Count: 1, Reason: ReasonQueueFull, Err: fmt.Errorf("queue %q: %w (no room since a message waited %s)", q.name, ErrFull, q.blockTimeout)}
			}
			if deadline == nil {
				deadline = time.NewTimer(q.blockTimeout)
			}
			q.mu.Unlock()
			var timedOut bool
			select {
			case <-q.room:
			case <-q.closing:
			case <-deadline.C:
				timedOut = true
			}
			q.mu.Lock()
			if q.closed {
				return ErrClosed
			}
			if timedOut && q.maxQueued > 0 && q.queued.Load()+int64(q.rb.Size())+size+4 > q.maxQueued {
				q.setFull(true)
				return &DropError{Count: 1, Reason: ReasonQueueFull, Err: fmt.Errorf("queue %q: %w after waiting %s for room", q.name, ErrFull, q.blockTimeout)}
			}
		}
	}
	q.setFull(false)
	return nil
}

// setFull records whether the queue is at its cap. Under Block the changes
// are logged: they start and end a time in which the output's messages are
// dropped without holding up the listeners (the drops themselves are only
// counted: a line per message would flood the log). Under the drop
// policies a busy queue at its cap changes with every record taken, so
// only the metric tells. q.mu must be held.
func (q *Queue) setFull(full bool) {
	if q.full.Load() == full {
		return
	}
	q.full.Store(full)
	if q.policy != Block {
		return
	}
	if full {
		q.logf("queue %q: full (queue.max_bytes %d); new messages for this output are dropped as %s until it has room", q.name, q.maxQueued, ReasonQueueFull)
	} else {
		q.logf("queue %q: has room again; new messages are stored", q.name)
	}
}

// Full reports whether the queue is at its cap: a message did not fit
// without a drop (under Block, after waiting BlockTimeout) and none has
// fitted since.
func (q *Queue) Full() bool { return q.full.Load() }

// evictOldest reads the oldest record waiting in the files and drops it,
// reporting it through OnDrop. It returns false when no record is waiting.
// q.mu must be held.
func (q *Queue) evictOldest() bool {
	if q.queued.Load() <= 0 {
		return false
	}
	q.rmu.Lock()
	defer q.rmu.Unlock()
	for {
		rec, dmg := q.readRecord()
		if dmg != nil {
			q.handleDamage(dmg, true)
			continue
		}
		if rec == nil {
			return false
		}
		q.queued.Add(-int64(len(rec) + 4))
		if seq := RecordSeq(rec); seq == 0 || seq > q.skipTo {
			// A record taken before a crash was delivered: nothing is lost.
			if seq != 0 {
				if err := q.j.markTaken(seq); err != nil {
					// Only costs the evicted record's delivery after a crash.
					q.logRepeat("taken", 1, func(_ int, summary bool) {
						q.logf("queue %q: %v%s", q.name, err, q.repeatSuffix(summary))
					})
				}
			}
			n := recordCount(rec)
			if q.onDrop != nil {
				q.onDrop(n, ReasonEvicted, fmt.Errorf("queue %q: %w: oldest record evicted", q.name, ErrFull))
			}
		}
		q.giveBack(rec)
		return true
	}
}

// Flush puts the current partial record now. If the write fails the record
// stays in memory for a retry and the error is returned: its messages are
// not on disk yet, so a listener that acknowledges to its sender (RELP) must
// not acknowledge them. While a record is retained Flush returns the last
// write error without trying the disk again.
func (q *Queue) Flush() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return ErrClosed
	}
	if q.retained {
		return q.Err()
	}
	return q.flushLocked()
}

func (q *Queue) lingerFlush(gen uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || q.gen != gen {
		return
	}
	_ = q.flushLocked() // a failure keeps the record and schedules a retry
}

// flushLocked puts the current record, if any. q.mu must be held. When the
// write fails (a full disk, say) the record stays in memory, retained, and
// the recovery timer tries again; the error is returned, and logged once
// per outage.
func (q *Queue) flushLocked() error {
	n := q.rb.Len()
	if n == 0 {
		if q.dsync.dirty {
			return q.syncPut()
		}
		return nil
	}
	if q.timer != nil {
		q.timer.Stop()
		q.timer = nil
	}
	q.gen++
	q.reclaimIfDrained(false)
	// Put copies the record before it returns, so the buffer can be reused.
	// A record put again after a failure gets a new number, so the numbers
	// rise in the order records enter go-diskqueue, salvaged ones included.
	q.recSeq++
	q.rb.SetSeq(q.recSeq)
	rec := q.rb.Bytes()
	err := q.put(rec)
	if err != nil {
		// A removed directory is created again first: emptying a drained
		// queue's files (for a full disk) cannot help without it, and
		// when it succeeds the directory must not be left missing.
		recreated := q.recreateDir(err)
		if q.reclaimIfDrained(true) || recreated {
			err = q.put(rec)
		}
	}
	if err != nil {
		err = fmt.Errorf("queue %q: put record: %w", q.name, err)
		if !q.retained {
			q.logRepeat("put", 1, func(_ int, summary bool) {
				q.logf("%v; %d messages wait in memory and new ones are refused until it can be written or the output takes it%s", err, n, q.repeatSuffix(summary))
			})
		}
		q.retained = true
		q.diskRefused(err)
		return err
	}
	size := int64(len(rec) + 4)
	q.rb.Reset()
	if cap(q.rb.buf) > q.keepBuf {
		q.rb.buf = nil
	}
	q.retained = false
	q.queued.Add(size)
	q.sinceEmpty += size
	q.diskWorks()
	return q.syncPut()
}

// dropError describes count messages lost to the write error err.
func dropError(count int, err error) *DropError {
	reason := ReasonDiskError
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		reason = ReasonDiskFull
	}
	return &DropError{Count: count, Reason: reason, Err: err}
}

// reclaimThreshold is how many bytes a drained queue's files may hold before
// they are emptied. Emptying deletes and creates files and rewrites
// go-diskqueue's metadata, and an output that keeps up finds the queue
// drained nearly always: at 1 MiB that was tens of times a second at
// 150k msg/s, a tenth of the relay's CPU. A drained queue never holds more
// than this (or one MaxBytesPerFile file, which go-diskqueue deletes once
// read past), and a full disk empties the files at once whatever their size.
const reclaimThreshold = 16 << 20

// reclaimIfDrained empties go-diskqueue's files when every record put has
// been read (the consumer's journal keeps what is in flight), so a full disk
// frees up as soon as the output has caught up. Unless force is set, it
// does so only when the files have grown past reclaimThreshold. q.mu must be
// held, which keeps Puts out; it reports whether it emptied the files.
func (q *Queue) reclaimIfDrained(force bool) bool {
	if q.sinceEmpty == 0 || (!force && q.sinceEmpty < q.reclaimAt) {
		return false
	}
	// Only the reader's position says whether everything written has
	// been read: queued could drift if a damaged file was skipped.
	q.rmu.Lock()
	defer q.rmu.Unlock()
	w := q.writeEndNow()
	if q.rd.num < w.num || (q.rd.num == w.num && q.rd.pos < w.pos) {
		return false
	}
	q.checkTail()
	if err := q.restartDQ(true); err != nil {
		q.logRepeat("empty", 1, func(_ int, summary bool) {
			q.logf("queue %q: empty drained queue files: %v%s", q.name, err, q.repeatSuffix(summary))
		})
		return false
	}
	q.sinceEmpty = 0
	q.queued.Store(0)
	return true
}

// Err returns the error of the last failed write to the queue's files, or
// nil once a write has succeeded since. A relay with a queue that cannot
// write is not ready.
func (q *Queue) Err() error {
	if p := q.putErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Next blocks until a record is available or ctx is done and returns it
// decoded. Records recovered from the in-flight journal at Open come first.
// The record stays in the journal until Done. Next returns ErrClosed once
// Close has been called.
func (q *Queue) Next(ctx context.Context) (*Batch, error) {
	q.cmu.Lock()
	defer q.cmu.Unlock()
	return q.next(ctx, true)
}

// TryNext is Next without waiting: ok is false when no record is ready.
func (q *Queue) TryNext() (b *Batch, ok bool, err error) {
	q.cmu.Lock()
	defer q.cmu.Unlock()
	b, err = q.next(context.Background(), false)
	return b, b != nil, err
}

// next returns the next record, waiting for one if wait is set. q.cmu must
// be held.
func (q *Queue) next(ctx context.Context, wait bool) (*Batch, error) {
	for {
		select {
		case <-q.closing:
			return nil, ErrClosed
		default:
		}
		for len(q.recovered) > 0 {
			r := q.recovered[0]
			q.recovered[0] = journalRecord{} // let the buffer go once all are done
			q.recovered = q.recovered[1:]
			if b := q.batch(r.rec, r.e); b != nil {
				return b, nil
			}
		}
		if b := q.takeRetained(); b != nil {
			return b, nil
		}

		q.rmu.Lock()
		rec, dmg := q.readRecord()
		if dmg != nil {
			q.handleDamage(dmg, false)
			q.rmu.Unlock()
			continue
		}
		q.rmu.Unlock()
		if rec == nil {
			if !wait {
				return nil, nil
			}
			select {
			case <-q.written:
				continue
			case <-q.ds.memReady:
				continue // a record the disk refused may be ready
			case <-q.dw.kick:
				q.yieldConsumer()
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-q.closing:
				return nil, ErrClosed
			}
		}

		if seq := RecordSeq(rec); seq != 0 && seq <= q.skipTo {
			// Taken before a crash: delivered, or recovered from the
			// journal (see journal.go).
			q.queued.Add(-int64(len(rec) + 4))
			q.skipped++
			if q.skipped == 1 {
				// Logged once, at the first: the count only grows until
				// the reader passes the old read position.
				q.debugf("queue %q: skipping records go-diskqueue offers again after a crash that were taken before it", q.name)
			}
			select {
			case q.room <- struct{}{}:
			default:
			}
			q.rmu.Lock()
			q.giveBack(rec)
			q.rmu.Unlock()
			continue
		}

		// From here the reader has moved past rec, so the journal write
		// comes first, before even decoding, to keep the window in which a
		// crash could lose it as short as possible (see journal.go).
		q.inflight.Add(1)
		body := bodySum(rec)
		je, err := q.j.appendSum(rec, journalSum(rec, body))
		q.queued.Add(-int64(len(rec) + 4))
		select {
		case q.room <- struct{}{}:
		default:
		}
		if err != nil {
			je = nil
			q.journalFailed(err)
		} else if err := q.syncEntry(je); err != nil {
			q.logRepeat("fsync-journal", 1, func(_ int, summary bool) {
				q.logf("queue %q: %v; the record is delivered, and a power loss may lose it%s", q.name, err, q.repeatSuffix(summary))
			})
		} else if err := q.j.markTaken(RecordSeq(rec)); err != nil {
			// Only costs duplicates after a crash: the journal entry counts.
			q.logRepeat("taken", 1, func(_ int, summary bool) {
				q.logf("queue %q: %v%s", q.name, err, q.repeatSuffix(summary))
			})
		}
		if b := q.batchSum(rec, body, je); b != nil {
			if je == nil {
				q.ds.inMemory[b] = false
			}
			b.rec = rec
			return b, nil
		}
		q.rmu.Lock()
		q.giveBack(rec)
		q.rmu.Unlock()
	}
}

// batch decodes rec, whose journal entry is je (or nil). A corrupt record is
// counted, logged and taken out of the journal, and batch returns nil.
func (q *Queue) batch(rec []byte, je *jentry) *Batch {
	return q.batchSum(rec, bodySum(rec), je)
}

// batchSum is batch with bodySum(rec) already computed.
func (q *Queue) batchSum(rec []byte, body uint32, je *jentry) *Batch {
	entries, err := decodeRecord(rec, body, q.takeEntries())
	if err == nil {
		b := &Batch{Entries: entries, q: q, je: je}
		q.ageTaken(b)
		return b
	}
	q.corrupt.Add(1)
	q.noteCorruptRecord(len(rec))
	q.logRepeat("corrupt", 1, func(n int, summary bool) {
		q.logf("queue %q: skipped %d corrupt records, the last of %d bytes: %v%s", q.name, n, len(rec), err, q.repeatSuffix(summary))
	})
	q.inflight.Add(-1)
	if je != nil {
		if err := q.j.done(je); err != nil {
			q.logf("queue %q: %v", q.name, err)
		}
	}
	return nil
}

// Done marks b delivered and takes it out of the in-flight journal. Done of
// a batch already done is a no-op. After Close, Done returns ErrClosed and b
// is delivered again when the queue is reopened.
func (q *Queue) Done(b *Batch) error {
	if b == nil || b.q != q {
		return fmt.Errorf("queue %q: done: batch is not from this queue", q.name)
	}
	q.cmu.Lock()
	defer q.cmu.Unlock()
	if b.done {
		return nil
	}
	if q.jclosed {
		return ErrClosed
	}
	b.done = true
	q.inflight.Add(-1)
	q.ageDone()
	if b.rec != nil {
		q.rmu.Lock()
		q.giveBack(b.rec)
		q.rmu.Unlock()
		b.rec = nil
	}
	if b.je == nil {
		q.doneInMemory(b)
		q.recycleEntries(b)
		return nil
	}
	q.recycleEntries(b)
	if err := q.j.done(b.je); err != nil {
		return fmt.Errorf("queue %q: %w", q.name, err)
	}
	return nil
}

// maxSpareEntries is how many Entries slices of done batches the queue
// keeps: batches are done about as fast as records are taken, so a few
// cover a worker that keeps many in flight.
const maxSpareEntries = 8

// takeEntries returns a slice of entries kept by recycleEntries, or nil.
// q.cmu must be held.
func (q *Queue) takeEntries() []Entry {
	n := len(q.spareEntries)
	if n == 0 {
		return nil
	}
	s := q.spareEntries[n-1]
	q.spareEntries[n-1] = nil
	q.spareEntries = q.spareEntries[:n-1]
	return s
}

// recycleEntries takes the entries of b, which is done, to decode later
// records into. They are cleared, so that they keep no record alive; what
// lies past their length was cleared when they were kept before, or never
// used. q.cmu must be held.
func (q *Queue) recycleEntries(b *Batch) {
	s := b.Entries
	b.Entries = nil
	if len(q.spareEntries) >= maxSpareEntries || cap(s) > max(q.maxMsgs, defaultBatchMessages) {
		return
	}
	clear(s)
	q.spareEntries = append(q.spareEntries, s[:0])
}

// Depth returns the number of records waiting in the queue's files plus
// those taken by Next (or recovered at Open) and not yet Done. Entries in
// the partial record are not counted.
func (q *Queue) Depth() int64 {
	return q.unread() + q.inflight.Load()
}

// DiskBytes returns the size of this queue's files: data files, metadata and
// every journal segment, including data files go-diskqueue set aside as
// *.bad.
func (q *Queue) DiskBytes() int64 {
	des, err := os.ReadDir(q.dir)
	if err != nil {
		return 0
	}
	prefix := q.name + ".diskqueue."
	var n int64
	for _, de := range des {
		name := de.Name()
		if !de.Type().IsRegular() || !(strings.HasPrefix(name, prefix) || strings.HasPrefix(name, journalName)) {
			continue
		}
		// A file can disappear between ReadDir and Info when go-diskqueue
		// removes a file it has read to the end.
		if fi, err := de.Info(); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// Recovered returns how many records were in flight when the queue was last
// closed or the relay died, and are delivered again: the upstream may have
// received some of them already.
func (q *Queue) Recovered() int { return q.recoveredAtOpen }

// Unwritten returns how many appended entries are not yet written to the
// queue's files: the record being packed, one retained after a failed
// write, and retained records the consumer took from memory and has not
// marked done. A kill -9 would lose these; everything else survives it.
func (q *Queue) Unwritten() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.rb.Len() + int(q.ds.unwritten.Load())
}

// Corrupt returns the number of records skipped because their checksum or
// encoding was bad, including a torn in-flight journal found at Open.
func (q *Queue) Corrupt() uint64 { return q.corrupt.Load() }

// Close puts the partial record, closes go-diskqueue (which fsyncs and
// writes its metadata) and closes the journal. Batches taken by Next and not
// Done stay in the journal and are returned again after the next Open.
// Close is idempotent; afterwards Append returns ErrClosed.
func (q *Queue) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	for _, t := range []*time.Timer{q.ds.timer, q.dw.timer} {
		if t != nil {
			t.Stop()
		}
	}
	flushErr := q.flushLocked()
	if flushErr != nil {
		// One of the two places a message accepted by Append is lost: the
		// disk still refuses the record when the queue closes.
		de := &DropError{Count: q.rb.Len(), Reason: ReasonLostAtStop, Err: flushErr}
		if q.onDrop != nil {
			q.onDrop(de.Count, de.Reason, de.Err)
		}
		q.rb.Reset()
		flushErr = de
	}
	q.mu.Unlock()

	close(q.closing)
	q.sv.mu.Lock()
	if q.sv.timer != nil {
		q.sv.timer.Stop()
	}
	q.sv.mu.Unlock()
	// Next holds cmu while it waits; closing has woken it, so this returns
	// once any record it received is in the journal.
	q.cmu.Lock()
	defer q.cmu.Unlock()
	errs := []error{flushErr}
	// The other: batches the output took from memory, or whose journal
	// write failed, and has not delivered. No file holds them.
	if n := q.inMemoryMessages(); n > 0 {
		de := &DropError{Count: n, Reason: ReasonLostAtStop, Err: fmt.Errorf("queue %q: %d messages the disk refused were not delivered before the stop", q.name, n)}
		if q.onDrop != nil {
			q.onDrop(de.Count, de.Reason, de.Err)
		}
		errs = append(errs, de)
	}
	q.mu.Lock()
	if err := q.diskq().Close(); err != nil {
		errs = append(errs, fmt.Errorf("queue %q: close diskqueue: %w", q.name, err))
	}
	// go-diskqueue's Close left readUnknown in its metadata.
	q.rmu.Lock()
	if err := q.saveMeta(); err != nil {
		errs = append(errs, fmt.Errorf("queue %q: %w", q.name, err))
	}
	if q.rd.f != nil {
		q.rd.f.Close()
		q.rd.f = nil
	}
	q.rmu.Unlock()
	if q.dsync.f != nil {
		q.dsync.f.Close()
		q.dsync.f = nil
	}
	q.mu.Unlock()
	q.removeMetaTmps()
	q.jclosed = true
	if err := q.j.close(); err != nil {
		errs = append(errs, fmt.Errorf("queue %q: %w", q.name, err))
	}
	q.rl.Stop()
	return errors.Join(errs...)
}

// inFlightNote says, in words, that records messages were in flight at the
// last stop (taken, not confirmed delivered) and are sent first.
func inFlightNote(records, msgs int) string {
	ms := "messages"
	if msgs == 1 {
		ms = "message"
	}
	if records == 1 {
		return fmt.Sprintf("1 record (%d %s) was in flight at the last stop, not confirmed delivered; it is sent again first", msgs, ms)
	}
	return fmt.Sprintf("%d records (%d %s) were in flight at the last stop, not confirmed delivered; they are sent again first", records, msgs, ms)
}
