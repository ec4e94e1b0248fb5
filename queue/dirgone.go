package queue

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A queue directory removed while the relay runs (an operator cleaning up,
// a tmpfiles rule, a script with the wrong path) does not take the queue
// with it at once: go-diskqueue and the journal keep their open files,
// which the kernel keeps until they are closed. Left alone, go-diskqueue
// fails as soon as it needs a new file or writes its metadata, every later
// message is refused, and the backlog vanishes at the next stop.
//
// So the queue checks its directory every second. When it is gone or was
// replaced, the queue stops both its producer and its consumer, creates
// the directory again, copies back every data file go-diskqueue still holds
// open (through /proc/self/fd), writes the journal segments again from
// their open files, and reopens go-diskqueue, whose Close has just written
// its positions into the new directory. Data files it did not hold open are
// gone; go-diskqueue skips them and their records are counted as lost
// (lost.go). A write that fails for want of the directory creates it at
// once, so that messages are not refused until the next check.

const dirCheckInterval = time.Second

type dirWatch struct {
	abs   string // the queue's directory as /proc shows it: absolute, links resolved
	id    dirID  // the directory's identity when last checked
	timer *time.Timer
	// turn and kick make a Next that waits on go-diskqueue give up the
	// consumer lock to a relocation (see yieldConsumer).
	turn sync.Mutex
	kick chan struct{}
}

// watchDir starts checking the directory.
func (q *Queue) watchDir() error {
	abs, err := filepath.Abs(q.dir)
	if err != nil {
		return err
	}
	// /proc shows the path with symbolic links resolved.
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	id, err := statDirID(q.dir)
	if err != nil {
		return err
	}
	q.dw.abs, q.dw.id, q.dw.kick = abs, id, make(chan struct{}, 1)
	q.mu.Lock()
	q.dw.timer = time.AfterFunc(dirCheckInterval, q.checkDir)
	q.mu.Unlock()
	return nil
}

func (q *Queue) checkDir() {
	id, err := statDirID(q.dir)
	if err == nil && id == q.dw.id {
		q.rearmDirCheck()
		return
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		q.logRepeat("dircheck", 1, func(n int, summary bool) {
			q.logf("queue %q: check directory: %v%s", q.name, err, q.repeatSuffix(summary))
		})
		q.rearmDirCheck()
		return
	}
	q.relocate()
	q.rearmDirCheck()
}

func (q *Queue) rearmDirCheck() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.dw.timer = time.AfterFunc(dirCheckInterval, q.checkDir)
	}
}

// recreateDir creates the queue's directory again when a write failed
// because it is gone, so that the write can be retried at once instead of
// refusing messages until the next check moves the queue into it. It
// reports whether it did. q.mu must be held.
func (q *Queue) recreateDir(err error) bool {
	if !errors.Is(err, fs.ErrNotExist) {
		return false
	}
	if _, serr := os.Stat(q.dir); !errors.Is(serr, fs.ErrNotExist) {
		return false
	}
	return os.MkdirAll(q.dir, 0o750) == nil
}

// yieldConsumer lets a relocation that kicked a waiting Next take the
// consumer lock; it returns holding the lock again. q.cmu must be held.
func (q *Queue) yieldConsumer() {
	q.cmu.Unlock()
	q.dw.turn.Lock() // held by the relocation until it has the consumer lock
	q.dw.turn.Unlock()
	q.cmu.Lock()
}

// relocate recreates the removed directory and moves the queue into it.
func (q *Queue) relocate() {
	q.dw.turn.Lock()
	select {
	case q.dw.kick <- struct{}{}:
	default:
	}
	q.cmu.Lock()
	q.dw.turn.Unlock()
	defer q.cmu.Unlock()
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	if err := os.MkdirAll(q.dir, 0o750); err != nil {
		q.logRepeat("mkdir", 1, func(n int, summary bool) {
			q.logf("queue %q: its directory was removed and cannot be created again: %v%s", q.name, err, q.repeatSuffix(summary))
		})
		return
	}
	var errs []error
	prefix := q.name + ".diskqueue."
	open := deletedOpenFiles(q.dw.abs, func(name string) bool { return isDataFileName(prefix, name) })
	restored := 0
	for name, fd := range open {
		if err := copyFile(fd, filepath.Join(q.dir, name)); err != nil {
			errs = append(errs, err)
			continue
		}
		restored++
	}
	segs, err := q.j.rewrite()
	if err != nil {
		errs = append(errs, err)
	}
	// Closing go-diskqueue writes its positions into the new directory;
	// the new instance continues from them in the restored files.
	if err := q.diskq().Close(); err != nil {
		errs = append(errs, fmt.Errorf("close diskqueue: %w", err))
	}
	q.rmu.Lock()
	defer q.rmu.Unlock()
	if err := q.saveMeta(); err != nil {
		errs = append(errs, err)
	}
	// The reader's file is the removed one; it reopens the restored copy,
	// which go-diskqueue may write to.
	if q.rd.f != nil {
		q.rd.f.Close()
		q.rd.f = nil
	}
	if err := q.repairWritePosition(); err != nil {
		errs = append(errs, err)
	}
	if err := q.startDQ(true); err != nil {
		errs = append(errs, err)
	}
	if id, err := statDirID(q.dir); err == nil {
		q.dw.id = id
	}
	q.logf("queue %q: its directory %s was removed while in use; created it again with the %d data files and %d journal segments still open%s",
		q.name, q.dir, restored, segs, problems(errs))
}

func problems(errs []error) string {
	if err := errors.Join(errs...); err != nil {
		return "; problems: " + err.Error()
	}
	return ""
}

// repairWritePosition points go-diskqueue's writer at a new file when the
// metadata names a data file that was not restored, so that it does not
// write into a hole past the end of a new empty file; with no metadata at
// all (go-diskqueue could not write it), it describes the restored files.
func (q *Queue) repairWritePosition() error {
	meta := metaPath(q.dir, q.name)
	b, err := os.ReadFile(meta)
	if errors.Is(err, fs.ErrNotExist) {
		_, err := repairMetadata(q.dir, q.name)
		return err
	}
	if err != nil {
		return err
	}
	m, err := parseMeta(b)
	if err != nil {
		return err
	}
	if _, err := os.Stat(dataPath(q.dir, q.name, m.writeNum)); err == nil || m.writePos == 0 {
		return nil
	}
	m.writeNum, m.writePos = m.writeNum+1, 0
	tmp := meta + ".repair.tmp"
	if err := writeFileSync(tmp, m.format()); err != nil {
		return fmt.Errorf("write metadata: %w", err)
	}
	if err := os.Rename(tmp, meta); err != nil {
		return fmt.Errorf("write metadata: %w", err)
	}
	return nil
}

// isDataFileName reports whether name is one of go-diskqueue's numbered data
// files (prefix, six or more digits, ".dat").
func isDataFileName(prefix, name string) bool {
	digits, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return false
	}
	digits, ok = strings.CutSuffix(digits, ".dat")
	if !ok || len(digits) < 6 {
		return false
	}
	_, err := strconv.ParseUint(digits, 10, 64)
	return err == nil
}

// copyFile copies src to dst, which must not exist, and syncs it.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("restore %s: %w", filepath.Base(dst), err)
	}
	return nil
}

// rewrite writes every segment again under its name in j.dir from its open
// file, and continues in the new files. The offsets of the live entries do
// not change.
func (j *journal) rewrite() (int, error) {
	// The spare's file went with the directory.
	if j.spare != nil {
		j.spare.f.Close()
		j.spare = nil
	}
	for i, s := range j.segs {
		data := make([]byte, s.end)
		if _, err := s.f.ReadAt(data, 0); err != nil && !errors.Is(err, io.EOF) {
			return i, fmt.Errorf("rewrite journal: %w", err)
		}
		f, err := os.OpenFile(filepath.Join(j.dir, segmentName(s.seq)), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return i, fmt.Errorf("rewrite journal: %w", err)
		}
		if _, err := f.Write(data); err != nil {
			f.Close()
			return i, fmt.Errorf("rewrite journal: %w", err)
		}
		s.f.Close()
		s.f = f
	}
	f, err := os.OpenFile(filepath.Join(j.dir, takenName), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return len(j.segs), fmt.Errorf("rewrite journal: %w", err)
	}
	j.takenF.Close()
	j.takenF = f
	if err := j.writeTaken(); err != nil {
		return len(j.segs), fmt.Errorf("rewrite journal: %w", err)
	}
	return len(j.segs), nil
}
