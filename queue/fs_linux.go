package queue

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// stRdonly is ST_RDONLY of statfs(2)'s f_flags.
const stRdonly = 0x1

// freeSpace returns the bytes an unprivileged process may still write on
// the file system of dir (0 when it has no free inode left) and whether it
// is mounted read-only.
func freeSpace(dir string) (free int64, readOnly bool, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, false, &os.PathError{Op: "statfs", Path: dir, Err: err}
	}
	free = int64(st.Bavail) * int64(st.Bsize)
	if st.Files > 0 && st.Ffree == 0 {
		free = 0
	}
	return free, st.Flags&stRdonly != 0, nil
}

// dirID identifies a directory, so that one removed and created again under
// the same name is told apart.
type dirID struct{ dev, ino uint64 }

func statDirID(dir string) (dirID, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return dirID{}, &os.PathError{Op: "stat", Path: dir, Err: err}
	}
	return dirID{uint64(st.Dev), st.Ino}, nil
}

// deletedOpenFiles maps the names of the files in dir that this process
// still holds open although they were deleted to a path that opens them
// (/proc/self/fd/N), for the names keep accepts.
func deletedOpenFiles(dir string, keep func(name string) bool) map[string]string {
	des, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil
	}
	const deleted = " (deleted)"
	files := map[string]string{}
	for _, de := range des {
		fd := filepath.Join("/proc/self/fd", de.Name())
		target, err := os.Readlink(fd)
		if err != nil || !strings.HasSuffix(target, deleted) {
			continue
		}
		target = strings.TrimSuffix(target, deleted)
		if filepath.Dir(target) != dir || !keep(filepath.Base(target)) {
			continue
		}
		if _, dup := files[filepath.Base(target)]; !dup {
			files[filepath.Base(target)] = fd
		}
	}
	return files
}

// fdatasync makes f's data durable, with the metadata needed to read it
// back (its size), but not its times.
func fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			if err != nil {
				return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
			}
			return nil
		}
	}
}
