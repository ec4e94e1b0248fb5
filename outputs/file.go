package outputs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/relay-syslog/relay/queue"
)

// File appends one message per line to a file. A line feed inside a message
// is written as "#012", as rsyslog does, so that every line is one message.
// When the file is renamed or removed (log rotation), the next batch opens a
// new file at the configured path.
type File struct {
	path      string
	f         *os.File
	w         *bufio.Writer
	ino       uint64
	written   int64
	bytes     int64 // bytes appended, line ends and escapes included
	lastCheck time.Time
	// rotateCheck is how often the path is compared with the open file.
	rotateCheck time.Duration
}

// NewFile returns a file destination writing to path.
func NewFile(path string) *File { return &File{path: path, rotateCheck: time.Second} }

func (f *File) String() string { return "file://" + f.path }

// Connected reports whether the file is open.
func (f *File) Connected() bool { return f.f != nil }

// Connect opens (creating if needed) the file for appending.
func (f *File) Connect(context.Context) error {
	if err := os.MkdirAll(filepath.Dir(f.path), 0o750); err != nil {
		return err
	}
	fh, err := os.OpenFile(f.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		return err
	}
	f.f = fh
	f.ino = inode(st)
	f.lastCheck = time.Now()
	if f.w == nil {
		f.w = bufio.NewWriterSize(fh, 64<<10)
	} else {
		f.w.Reset(fh)
	}
	return nil
}

var escapedLF = []byte("#012")

// Write appends entries, one per line, and flushes them to the kernel.
func (f *File) Write(_ context.Context, entries []queue.Entry) (int64, error) {
	if f.f == nil {
		return 0, errors.New("not open")
	}
	if err := f.reopenIfRotated(); err != nil {
		return 0, err
	}
	var n int64
	for _, e := range entries {
		data := e.Data
		for {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				break
			}
			f.w.Write(data[:i])
			f.w.Write(escapedLF)
			n += int64(i + len(escapedLF))
			data = data[i+1:]
		}
		f.w.Write(data)
		f.w.WriteByte('\n')
		n += int64(len(data) + 1)
	}
	if err := f.w.Flush(); err != nil {
		return 0, fmt.Errorf("write %s: %w", f.path, err)
	}
	f.written += int64(len(entries))
	f.bytes += n
	return f.written, nil
}

// reopenIfRotated checks, at most every rotateCheck, whether the path still
// names the open file.
func (f *File) reopenIfRotated() error {
	now := time.Now()
	if now.Sub(f.lastCheck) < f.rotateCheck {
		return nil
	}
	f.lastCheck = now
	st, err := os.Stat(f.path)
	if err == nil && inode(st) == f.ino {
		return nil
	}
	if err := f.Close(); err != nil {
		return err
	}
	return f.Connect(context.Background())
}

// BytesWritten returns the bytes appended to the file.
func (f *File) BytesWritten() int64 { return f.bytes }

// Settled reports everything written as settled: the kernel has the bytes,
// and they survive a crash of the relay.
func (f *File) Settled(time.Time) (int64, error) { return f.written, nil }

// Close flushes and closes the file.
func (f *File) Close() error {
	if f.f == nil {
		return nil
	}
	ferr := f.w.Flush()
	err := f.f.Close()
	f.f = nil
	return errors.Join(ferr, err)
}

func inode(st os.FileInfo) uint64 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return s.Ino
	}
	return 0
}
