package outputs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/relay-syslog/relay/queue"
)

// FsyncPolicy says when a file output calls fsync.
type FsyncPolicy int

const (
	// FsyncNever leaves writing to disk to the kernel: a batch counts as
	// delivered once write(2) returned, which survives a crash of the relay
	// but not of the machine.
	FsyncNever FsyncPolicy = iota
	// FsyncBatch calls fsync on every file a batch wrote before the batch
	// counts as delivered.
	FsyncBatch
)

// FileOptions configures a file output.
type FileOptions struct {
	// Path is the file, or a path template naming fields (see
	// ParsePathTemplate): each message goes to the file its fields name.
	Path string
	// FileMode and DirMode are the permissions of files and directories
	// the output creates (before the umask); 0640 and 0750 when zero.
	FileMode, DirMode os.FileMode
	// MaxOpenFiles bounds the files a path template keeps open; the least
	// recently written is closed to open another. DefaultMaxOpenFiles when
	// zero.
	MaxOpenFiles int
	Fsync        FsyncPolicy
	// KeepControl writes control bytes other than the line feed as they
	// came. Without it every byte below 0x20 is written as '#' and
	// its three octal digits, as rsyslog writes them by default, so that a
	// sender cannot put terminal escapes into a file an administrator
	// reads with cat or tail.
	KeepControl bool
}

// DefaultMaxOpenFiles is the default FileOptions.MaxOpenFiles.
const DefaultMaxOpenFiles = 256

// File appends one message per line to a file, or with a path template to
// the file each message's fields name. A line feed inside a message is
// written as "#012", as rsyslog does, so that every line is one message;
// so are the other control bytes unless FileOptions.KeepControl is set.
// When a file is renamed or removed (log rotation), the next batch that
// writes to its path opens a new file there. Each batch is written with
// one write(2) per file it touches.
type File struct {
	opts  FileOptions
	tmpl  *Template // nil: one fixed path
	files map[string]*openFile
	// use counts batches, for choosing the least recently used file.
	use       uint64
	touched   []*openFile
	connected bool
	written   int64
	bytes     int64 // bytes appended, line ends and escapes included
	// rotateCheck is how often a path is compared with its open file.
	rotateCheck time.Duration
}

type openFile struct {
	path      string
	f         *os.File
	ino       uint64
	lastCheck time.Time
	lastUse   uint64
	pending   []byte // this batch's lines, not yet written
}

// NewFile returns a file destination writing to path, with the default
// options.
func NewFile(path string) *File {
	f, err := NewFileWith(FileOptions{Path: path})
	if err != nil {
		// Only a path with fields can fail to compile; treat it as fixed.
		f = &File{opts: FileOptions{Path: path}}
		f.setDefaults()
	}
	return f
}

// NewFileWith returns a file destination with opts. The error is a path
// template's (see ParsePathTemplate).
func NewFileWith(opts FileOptions) (*File, error) {
	f := &File{opts: opts}
	t, err := ParsePathTemplate(opts.Path)
	if err != nil {
		return nil, err
	}
	if t.HasFields() {
		f.tmpl = t
	} else {
		// "{{" and "}}" in a path without fields still mean one brace.
		f.opts.Path = t.literal()
	}
	f.setDefaults()
	return f, nil
}

func (f *File) setDefaults() {
	if f.opts.FileMode == 0 {
		f.opts.FileMode = 0o640
	}
	if f.opts.DirMode == 0 {
		f.opts.DirMode = 0o750
	}
	if f.opts.MaxOpenFiles <= 0 {
		f.opts.MaxOpenFiles = DefaultMaxOpenFiles
	}
	f.files = map[string]*openFile{}
	f.rotateCheck = time.Second
}

// PathTemplate returns the path template, or nil for a fixed path. The
// worker renders each message's path with it (WritePaths).
func (f *File) PathTemplate() *Template { return f.tmpl }

func (f *File) String() string { return "file://" + f.opts.Path }

// Connected reports whether the file is open (with a path template: whether
// the last batch was written).
func (f *File) Connected() bool { return f.connected }

// Connect opens (creating if needed) the file for appending. With a path
// template files are opened as messages name them.
func (f *File) Connect(context.Context) error {
	if f.tmpl == nil {
		if _, err := f.file(f.opts.Path); err != nil {
			return err
		}
	}
	f.connected = true
	return nil
}

// Write appends entries, one per line, and hands them to the kernel (and
// to the disk, with FsyncBatch) before it returns.
func (f *File) Write(_ context.Context, entries []queue.Entry) (int64, error) {
	if f.tmpl != nil {
		return 0, errors.New("a path template needs WritePaths")
	}
	return f.write(entries, nil)
}

// WritePaths is Write for a path template: entry i goes to paths[i].
func (f *File) WritePaths(_ context.Context, entries []queue.Entry, paths [][]byte) (int64, error) {
	if len(paths) != len(entries) {
		return 0, fmt.Errorf("%d paths for %d messages", len(paths), len(entries))
	}
	return f.write(entries, paths)
}

func (f *File) write(entries []queue.Entry, paths [][]byte) (int64, error) {
	if !f.connected {
		return 0, errors.New("not open")
	}
	f.use++
	f.touched = f.touched[:0]
	var cur *openFile
	var curPath []byte
	var n int64
	for i, e := range entries {
		var of *openFile
		switch {
		case paths == nil:
			of = cur
			if of == nil {
				of = f.files[f.opts.Path]
			}
		case cur != nil && bytes.Equal(paths[i], curPath):
			of = cur
		default:
			of = f.files[string(paths[i])]
		}
		if of == nil || of.f == nil {
			p := f.opts.Path
			if paths != nil {
				p = string(paths[i])
			}
			var err error
			if of, err = f.file(p); err != nil {
				f.discardPending()
				return 0, err
			}
		}
		if of.lastUse != f.use {
			if err := f.reopenIfRotated(of); err != nil {
				f.discardPending()
				return 0, err
			}
			of.lastUse = f.use
			f.touched = append(f.touched, of)
		}
		cur = of
		if paths != nil {
			curPath = paths[i]
		}
		n += of.appendLine(e.Data, f.opts.KeepControl)
	}
	for _, of := range f.touched {
		if err := f.flush(of); err != nil {
			f.discardPending()
			return 0, err
		}
	}
	f.written += int64(len(entries))
	f.bytes += n
	return f.written, nil
}

// appendLine adds data as one line to the batch's pending bytes and
// returns how many bytes that is.
func (of *openFile) appendLine(data []byte, keepControl bool) int64 {
	before := len(of.pending)
	of.pending = AppendLine(of.pending, data, keepControl)
	return int64(len(of.pending) - before)
}

// AppendLine appends data to dst as one line of a log file, as rsyslog
// writes one: a line feed in data becomes "#012", and unless keepControl
// is set every other byte below 0x20 becomes '#' and its three octal
// digits too; then a line feed ends the line.
func AppendLine(dst, data []byte, keepControl bool) []byte {
	for {
		i := nextEscaped(data, keepControl)
		if i < 0 {
			break
		}
		c := data[i]
		dst = append(dst, data[:i]...)
		dst = append(dst, '#', '0'+c>>6, '0'+(c>>3)&7, '0'+c&7)
		data = data[i+1:]
	}
	dst = append(dst, data...)
	return append(dst, '\n')
}

// nextEscaped returns the index of the first byte of data that a file
// line escapes, or -1.
func nextEscaped(data []byte, keepControl bool) int {
	if keepControl {
		return bytes.IndexByte(data, '\n')
	}
	for i, c := range data {
		if c < 0x20 {
			return i
		}
	}
	return -1
}

// flush writes a file's pending lines, and syncs them under FsyncBatch.
func (f *File) flush(of *openFile) error {
	if len(of.pending) == 0 {
		return nil
	}
	if _, err := of.f.Write(of.pending); err != nil {
		return fmt.Errorf("write %s: %w", of.path, err)
	}
	if f.opts.Fsync == FsyncBatch {
		if err := of.f.Sync(); err != nil {
			return fmt.Errorf("fsync %s: %w", of.path, err)
		}
	}
	if cap(of.pending) > 1<<20 {
		of.pending = nil // a burst to one file need not stay allocated
	} else {
		of.pending = of.pending[:0]
	}
	return nil
}

// discardPending drops what a failed batch had not written: the worker
// sends the whole batch again.
func (f *File) discardPending() {
	for _, of := range f.files {
		of.pending = of.pending[:0]
	}
}

// file returns the open file for path, opening it (and its directory)
// when needed, after closing the least recently used file if
// MaxOpenFiles are open. An open file is reopened when its path no longer
// names it (rotation), checked at most every rotateCheck.
func (f *File) file(path string) (*openFile, error) {
	of := f.files[path]
	if of != nil && of.f != nil {
		return of, f.reopenIfRotated(of)
	}
	if len(f.files) >= f.opts.MaxOpenFiles {
		if err := f.closeLRU(); err != nil {
			return nil, err
		}
	}
	of = &openFile{path: path}
	if err := f.open(of); err != nil {
		return nil, err
	}
	f.files[path] = of
	return of, nil
}

func (f *File) open(of *openFile) error {
	fh, err := os.OpenFile(of.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, f.opts.FileMode)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(of.path), f.opts.DirMode); err != nil {
			return err
		}
		fh, err = os.OpenFile(of.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, f.opts.FileMode)
	}
	if err != nil {
		return err
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		return err
	}
	of.f, of.ino, of.lastCheck = fh, inode(st), time.Now()
	return nil
}

// closeLRU writes and closes the file least recently used.
func (f *File) closeLRU() error {
	var victim *openFile
	for _, of := range f.files {
		if victim == nil || of.lastUse < victim.lastUse {
			victim = of
		}
	}
	if victim == nil {
		return nil
	}
	delete(f.files, victim.path)
	ferr := f.flush(victim)
	return errors.Join(ferr, victim.f.Close())
}

// reopenIfRotated checks, at most every rotateCheck, whether the path still
// names the open file. Lines pending for the old file are written there
// first: they belong to what was rotated.
func (f *File) reopenIfRotated(of *openFile) error {
	now := time.Now()
	if now.Sub(of.lastCheck) < f.rotateCheck {
		return nil
	}
	of.lastCheck = now
	st, err := os.Stat(of.path)
	if err == nil && inode(st) == of.ino {
		return nil
	}
	ferr := f.flush(of)
	cerr := of.f.Close()
	of.f = nil
	if err := errors.Join(ferr, cerr); err != nil {
		delete(f.files, of.path)
		return err
	}
	return f.open(of)
}

// BytesWritten returns the bytes appended to the files.
func (f *File) BytesWritten() int64 { return f.bytes }

// Settled reports everything written as settled: Write returns only after
// the kernel has the bytes (and the disk, with FsyncBatch).
func (f *File) Settled(time.Time) (int64, error) { return f.written, nil }

// OpenFiles returns how many files are open.
func (f *File) OpenFiles() int { return len(f.files) }

// Close closes every file. Lines of a batch that failed are dropped: the
// batch is sent again.
func (f *File) Close() error {
	var errs []error
	for path, of := range f.files {
		if of.f != nil {
			errs = append(errs, of.f.Close())
		}
		delete(f.files, path)
	}
	f.connected = false
	return errors.Join(errs...)
}

func inode(st os.FileInfo) uint64 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return s.Ino
	}
	return 0
}
