//go:build !linux

package queue

import (
	"math"
	"os"
	"syscall"
)

// freeSpace reports the space as unlimited where statfs(2) differs from
// Linux's: a queue on a full disk then finds out by writing, and is ready
// again once a write succeeds.
func freeSpace(string) (free int64, readOnly bool, err error) {
	return math.MaxInt64, false, nil
}

// dirID identifies a directory, so that one removed and created again under
// the same name is told apart.
type dirID struct{ dev, ino uint64 }

func statDirID(dir string) (dirID, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return dirID{}, &os.PathError{Op: "stat", Path: dir, Err: err}
	}
	return dirID{uint64(st.Dev), uint64(st.Ino)}, nil
}

// deletedOpenFiles finds nothing without Linux's /proc/self/fd: the data
// of a removed queue directory that is still open cannot be read back.
func deletedOpenFiles(string, func(string) bool) map[string]string { return nil }

// fdatasync makes f's data durable.
func fdatasync(f *os.File) error { return f.Sync() }
