package queue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/nsqio/go-diskqueue"
)

// The queue reads its records from go-diskqueue's data files itself;
// go-diskqueue only writes them. Reading through go-diskqueue's ReadChan
// cost, per record, a read into a new buffer (and the clearing and garbage
// collection of 100–200 KB), a channel hand-off and a wakeup of its single
// goroutine, which also writes, fsyncs and deletes files: an output waited
// whenever that goroutine was busy with the input's writes.
//
// go-diskqueue's goroutine reads ahead whenever its read position is behind
// its write position. The queue starts it with a read position that no
// write position reaches (readUnknown as both file number and offset), so
// it never reads, never opens a read file, and never renames or deletes a
// data file; it persists that position in its metadata file at each sync.
// The queue writes the real read position there when it closes
// go-diskqueue (Close, a relocation), and Open takes metadata holding
// readUnknown for a stop that was not clean: the read position is then the
// start of the first data file, and the records already taken there are
// skipped by their sequence numbers (skipTo), as after any crash.
//
// How far the reader may read: go-diskqueue writes each record with one
// write(2) before Put returns, so every record whose Put returned is whole
// in its file. The queue mirrors go-diskqueue's write position (writeEnd),
// updated after each Put under the producer lock with go-diskqueue's own
// rule: a record that would take the file past MaxBytesPerFile goes to the
// next file, unless the file is empty. A file before the write file is
// complete and is read up to its size.
//
// A data file the reader has passed, and that go-diskqueue no longer
// writes, is deleted. A damaged record (a length out of bounds, a record
// past the end of its file, a read error) sets the file aside as *.bad
// with the offset in a sidecar, as go-diskqueue did, and the salvage
// (salvage.go) recovers the intact records after it; if it is the file
// go-diskqueue writes, go-diskqueue is restarted on a new file first.

// readUnknown is the read position (file number and offset) the queue
// gives go-diskqueue: beyond any write position, so its reader stays idle.
const readUnknown = int64(1) << 62

// errNoReadPos is parseMeta's error for metadata go-diskqueue wrote while
// the queue ran: the relay did not stop cleanly.
var errNoReadPos = errors.New("no read position recorded (the relay did not stop cleanly)")

// dqReader is the read side; q.rmu guards it.
type dqReader struct {
	num, pos int64    // where the next record starts: data file number and offset
	f        *os.File // data file num, or nil
	end      int64    // f's size, once it is no longer the write file; -1 before
	free     [][]byte // record buffers given back, for the next records
	hdr      [4]byte
}

// writeEnd mirrors go-diskqueue's write position and counts the records
// between the read and the write position (go-diskqueue's depth); q.wmu
// guards it.
type writeEnd struct {
	num, pos int64
	depth    int64
}

// maxFreeRecords is how many record buffers the reader keeps: one per
// record in flight, which the TCP output keeps tens of.
const maxFreeRecords = 64

// put writes rec through go-diskqueue and moves the mirrored write
// position as go-diskqueue does. q.mu must be held.
func (q *Queue) put(rec []byte) error {
	if s, ok := q.diskq().(stoppedDQ); ok {
		if err := q.startDQAt(s.m, true); err != nil {
			return err
		}
	}
	err := q.diskq().Put(rec)
	n := int64(len(rec)) + 4
	q.wmu.Lock()
	// go-diskqueue refuses a size out of bounds, or a Put after it was
	// closed, before it changes anything; otherwise it moves to the next
	// file first, even if the write then fails.
	if len(rec) >= dqMinMsgSize && len(rec) <= maxRecordLen && (err == nil || err.Error() != "exiting") {
		if q.we.pos > 0 && q.we.pos+n > q.maxFile {
			q.we.num++
			q.we.pos = 0
		}
		if err == nil {
			q.we.pos += n
			q.we.depth++
		}
	}
	q.wmu.Unlock()
	if err == nil {
		select {
		case q.written <- struct{}{}:
		default:
		}
	}
	return err
}

// writeEndNow returns the mirrored write position and depth.
func (q *Queue) writeEndNow() writeEnd {
	q.wmu.Lock()
	defer q.wmu.Unlock()
	return q.we
}

// unread returns the number of records written and not yet read, at least
// 0.
func (q *Queue) unread() int64 { return max(q.writeEndNow().depth, 0) }

// readDamage describes a record the reader could not read.
type readDamage struct {
	num, pos int64
	err      error
}

// readRecord returns the next record, in a buffer that is the caller's
// until it gives it back (giveBack), or nil when every record written has
// been read. It returns damage instead when the record at the read
// position cannot be read; handleDamage deals with it. q.rmu must be held.
func (q *Queue) readRecord() ([]byte, *readDamage) {
	r := &q.rd
	for {
		w := q.writeEndNow()
		if r.num > w.num || (r.num == w.num && r.pos >= w.pos) {
			q.checkTail()
			return nil, nil
		}
		if r.f == nil {
			f, err := os.Open(dataPath(q.dir, q.name, r.num))
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) && r.num == w.num {
					// The directory was removed: nothing can be read until
					// the queue has moved into a new one (dirgone.go).
					return nil, nil
				}
				if errors.Is(err, fs.ErrNotExist) && r.num < w.num {
					// Its records are counted as lost when the reader
					// reaches the end with the depth still above zero.
					file := filepath.Base(dataPath(q.dir, q.name, r.num))
					q.logRepeat("missing", 1, func(n int, summary bool) {
						q.logf("queue %q: data file %s is missing; its records are lost (relay_queue_lost_records_total)%s", q.name, file, q.repeatSuffix(summary))
					})
					r.num, r.pos = r.num+1, 0
					continue
				}
				return nil, &readDamage{r.num, r.pos, err}
			}
			r.f, r.end = f, -1
		}
		end := w.pos
		if r.num < w.num {
			if r.end < 0 {
				fi, err := r.f.Stat()
				if err != nil {
					return nil, &readDamage{r.num, r.pos, err}
				}
				r.end = fi.Size()
			}
			end = r.end
			if r.pos >= end {
				q.finishFile()
				continue
			}
		}
		if err := readFull(r.f, r.hdr[:], r.pos); err != nil {
			return nil, &readDamage{r.num, r.pos, err}
		}
		l := int64(binary.BigEndian.Uint32(r.hdr[:]))
		if l < dqMinMsgSize || l > maxRecordLen || r.pos+4+l > end {
			return nil, &readDamage{r.num, r.pos, fmt.Errorf("invalid message read size (%d)", l)}
		}
		rec := q.takeRecordBuf(int(l))
		if err := readFull(r.f, rec, r.pos+4); err != nil {
			q.giveBack(rec)
			return nil, &readDamage{r.num, r.pos, err}
		}
		r.pos += 4 + l
		q.wmu.Lock()
		q.we.depth--
		q.wmu.Unlock()
		return rec, nil
	}
}

// readFull reads len(b) bytes of f at off; a short read is an error.
func readFull(f *os.File, b []byte, off int64) error {
	n, err := f.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// finishFile deletes the data file the reader has read to its end, which
// go-diskqueue no longer writes, and moves on to the next. q.rmu must be
// held.
func (q *Queue) finishFile() {
	r := &q.rd
	r.f.Close()
	r.f = nil
	path := dataPath(q.dir, q.name, r.num)
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		q.logRepeat("remove", 1, func(_ int, summary bool) {
			q.logf("queue %q: remove data file read to its end: %v%s", q.name, err, q.repeatSuffix(summary))
		})
	}
	r.num, r.pos = r.num+1, 0
}

// checkTail settles the count of records written and not read when the
// reader has read everything: records counted and never found were in
// damaged, cut short or missing files; a negative count follows a crash
// (records counted twice), which is no loss. q.rmu must be held.
func (q *Queue) checkTail() {
	q.wmu.Lock()
	d := q.we.depth
	if d == 0 || q.rd.num < q.we.num || (q.rd.num == q.we.num && q.rd.pos < q.we.pos) {
		q.wmu.Unlock()
		return
	}
	q.we.depth = 0
	q.wmu.Unlock()
	if d > 0 {
		q.tailLoss(d)
	} else {
		q.noteNegativeTail()
	}
}

// takeRecordBuf returns a buffer of n bytes for a record. q.rmu must be
// held.
func (q *Queue) takeRecordBuf(n int) []byte {
	free := q.rd.free
	for i := len(free) - 1; i >= 0; i-- {
		if cap(free[i]) >= n {
			b := free[i][:n]
			free[i] = free[len(free)-1]
			free[len(free)-1] = nil
			q.rd.free = free[:len(free)-1]
			return b
		}
	}
	return make([]byte, n)
}

// giveBack keeps rec, a buffer from readRecord no longer used, for a later
// record. q.rmu must be held.
func (q *Queue) giveBack(rec []byte) {
	if rec == nil || cap(rec) > q.keepBuf || len(q.rd.free) >= maxFreeRecords {
		return
	}
	q.rd.free = append(q.rd.free, rec[:0])
}

// handleDamage sets the damaged file aside for the salvage and moves the
// reader to the next file. When the file is the one go-diskqueue writes,
// go-diskqueue is restarted on a new file first, which needs q.mu: with
// haveMu unset, handleDamage takes it (releasing q.rmu meanwhile, as the
// lock order is q.mu before q.rmu), and the reader then tries again. q.rmu
// must be held.
func (q *Queue) handleDamage(d *readDamage, haveMu bool) {
	r := &q.rd
	if d.num == q.writeEndNow().num {
		if !haveMu {
			q.rmu.Unlock()
			q.mu.Lock()
			q.rmu.Lock()
			defer q.mu.Unlock()
			if r.num != d.num || r.pos != d.pos || q.closed {
				return // a relocation or reclaim moved on meanwhile
			}
			if d.num != q.writeEndNow().num {
				// go-diskqueue has moved on by itself: read again, to the
				// end of the file as it is now.
				return
			}
		}
		if err := q.restartDQ(false); err != nil {
			q.logf("queue %q: move go-diskqueue past damaged data file %s: %v", q.name, filepath.Base(dataPath(q.dir, q.name, d.num)), err)
			return
		}
	}
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
	file := dataPath(q.dir, q.name, d.num)
	q.setAside(file, d.pos, d.err.Error())
	r.num, r.pos = d.num+1, 0
}

// setAside renames a damaged data file to *.bad, with the offset of the
// damage in a sidecar written first (a crash between the two leaves a
// position that is still right), and queues it for salvage.
func (q *Queue) setAside(file string, pos int64, cause string) {
	_ = os.WriteFile(file+".bad.pos", []byte(fmt.Sprint(pos)), 0o640)
	if err := os.Rename(file, file+".bad"); err != nil {
		q.logf("queue %q: set aside damaged data file %s: %v", q.name, filepath.Base(file), err)
	}
	q.sv.mu.Lock()
	defer q.sv.mu.Unlock()
	q.readErrorJob()
	q.sv.jobs = append(q.sv.jobs, salvageJob{file: file, pos: pos, cause: cause, readError: true})
	if !q.isClosed() {
		q.armSalvageLocked()
	}
}

// startDQ starts go-diskqueue at the write position in its metadata file,
// after writing the metadata with readUnknown as the read position, and
// mirrors that write position. q.mu must be held, or the queue not yet
// shared.
func (q *Queue) startDQ(durable bool) error {
	b, err := os.ReadFile(metaPath(q.dir, q.name))
	if err != nil {
		return fmt.Errorf("read metadata: %w", err)
	}
	m, err := parseMeta(b)
	if err != nil && !errors.Is(err, errNoReadPos) {
		return err
	}
	return q.startDQAt(m, durable)
}

// startDQAt is startDQ with the metadata m.
func (q *Queue) startDQAt(m dqMeta, durable bool) error {
	meta := metaPath(q.dir, q.name)
	// go-diskqueue moves to a new file when its write file is longer than
	// its metadata says; the queue does it here, so that the mirror knows.
	if fi, err := os.Stat(dataPath(q.dir, q.name, m.writeNum)); err == nil && fi.Size() > m.writePos {
		m.writeNum, m.writePos = m.writeNum+1, 0
	}
	m.readNum, m.readPos = readUnknown, readUnknown
	if err := writeMetaMode(q.dir, meta, m, durable); err != nil {
		return err
	}
	q.wmu.Lock()
	q.we.num, q.we.pos = m.writeNum, m.writePos
	q.wmu.Unlock()
	var d diskqueue.Interface = diskqueue.New(q.name, q.dir, q.maxFile, dqMinMsgSize, maxRecordLen,
		q.syncEvery, q.syncInterval, q.diskqueueLog)
	if old := q.dq.Load(); old != nil {
		if w, ok := old.Interface.(dqWrapper); ok {
			d = w.rewrap(d)
		}
	}
	q.setDQ(d)
	return nil
}

// dqWrapper is a go-diskqueue wrapped to fail (the tests' disk faults); a
// restart wraps the new instance the same way.
type dqWrapper interface {
	rewrap(diskqueue.Interface) diskqueue.Interface
}

// saveMeta writes the queue's read position, depth and write position
// into go-diskqueue's metadata file, which go-diskqueue, just closed, left
// with readUnknown. q.rmu must be held.
func (q *Queue) saveMeta() error {
	w := q.writeEndNow()
	m := dqMeta{depth: w.depth, readNum: q.rd.num, readPos: q.rd.pos, writeNum: w.num, writePos: w.pos}
	if m.readNum > m.writeNum || (m.readNum == m.writeNum && m.readPos > m.writePos) {
		m.readNum, m.readPos = m.writeNum, m.writePos
	}
	return writeMeta(q.dir, metaPath(q.dir, q.name), m)
}

// restartDQ closes go-diskqueue and starts it again on the next data file.
// With drained set the reader has read everything: every data file is
// deleted and the reader moves to the new one. q.mu and q.rmu must be held.
func (q *Queue) restartDQ(drained bool) error {
	// Delete only stops go-diskqueue (it deletes nothing); without
	// drained, Close syncs the file the reader found damaged, whose intact
	// records the salvage puts back.
	var err error
	if drained {
		err = q.diskq().Delete()
	} else {
		err = q.diskq().Close()
	}
	if err != nil {
		return fmt.Errorf("close diskqueue: %w", err)
	}
	w := q.writeEndNow()
	if drained {
		if q.rd.f != nil {
			q.rd.f.Close()
			q.rd.f = nil
		}
		nums, _ := dataFileNums(q.dir, q.name)
		for _, num := range nums {
			if num > w.num {
				break
			}
			if err := os.Remove(dataPath(q.dir, q.name, num)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				q.logf("queue %q: remove drained data file: %v", q.name, err)
			}
		}
		if q.afterEmptied != nil {
			q.afterEmptied()
		}
	}
	m := dqMeta{depth: max(w.depth, 0), writeNum: w.num + 1}
	q.wmu.Lock()
	q.we.num, q.we.pos = m.writeNum, 0
	if drained {
		q.we.depth = 0
	}
	q.wmu.Unlock()
	if drained {
		q.rd.num, q.rd.pos = m.writeNum, 0
	}
	if err := q.startDQAt(m, !drained); err != nil {
		// The next Put tries again; go-diskqueue must not start at the
		// old position, which the metadata on disk may still hold.
		q.setDQ(stoppedDQ{m: m, err: err})
		return err
	}
	return nil
}

// stoppedDQ stands in for go-diskqueue when it could not be started again
// on a new file (restartDQ); put starts it at m first.
type stoppedDQ struct {
	m   dqMeta
	err error
}

func (s stoppedDQ) Put([]byte) error        { return s.err }
func (s stoppedDQ) ReadChan() <-chan []byte { return nil }
func (s stoppedDQ) Close() error            { return nil }
func (s stoppedDQ) Delete() error           { return nil }
func (s stoppedDQ) Depth() int64            { return 0 }
func (s stoppedDQ) Empty() error            { return s.err }

// startReader sets the reader at the read position of the metadata file,
// which Open has repaired, and starts go-diskqueue.
func (q *Queue) startReader() error {
	b, err := os.ReadFile(metaPath(q.dir, q.name))
	if err != nil {
		return fmt.Errorf("read metadata: %w", err)
	}
	m, err := parseMeta(b)
	if err != nil {
		return err
	}
	q.rd.num, q.rd.pos, q.rd.end = m.readNum, m.readPos, -1
	q.we.depth = m.depth
	return q.startDQAt(m, true)
}
