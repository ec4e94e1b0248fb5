package relay

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// lockFileName is the file in data_dir a running relay holds locked (flock)
// and writes its process id to.
const lockFileName = "relay.lock"

// DataDirHolder reports whether a running relay holds the lock of dataDir,
// and its process id when the lock file names one (0 otherwise). It never
// creates the directory or the lock file, and holds the lock only for the
// moment of the test.
func DataDirHolder(dataDir string) (pid int, held bool, err error) {
	path := filepath.Join(dataDir, lockFileName)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("data_dir lock %s: %w", path, err)
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	switch {
	case err == nil:
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return 0, false, nil
	case errors.Is(err, syscall.EWOULDBLOCK):
		return lockHolder(path), true, nil
	}
	return 0, false, fmt.Errorf("data_dir lock %s: %w", path, err)
}

// DataDirTool returns the command that wrote itself into dataDir's lock
// file after its process id (a relay queue command such as "relay queue
// purge"), or "" when a relay wrote it or there is none. Whether the lock
// is held is DataDirHolder's answer.
func DataDirTool(dataDir string) string {
	_, what := lockHolderOf(filepath.Join(dataDir, lockFileName))
	return what
}

// lockHolder returns the process id written in the lock file at path, or 0.
func lockHolder(path string) int {
	pid, _ := lockHolderOf(path)
	return pid
}

// lockHolderOf returns the process id written in the lock file at path (0
// when there is none) and what holds it: "" for a relay, else the command
// named after the process id (a relay queue command).
func lockHolderOf(path string) (pid int, what string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, ""
	}
	pidText, what, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
	pid, err = strconv.Atoi(pidText)
	if err != nil || pid <= 0 {
		return 0, ""
	}
	return pid, strings.TrimSpace(what)
}

// inUseError says which process holds dataDir's lock.
func inUseError(dataDir, path string) error {
	pid, what := lockHolderOf(path)
	switch {
	case pid > 0 && what != "":
		// Not a relay: a tool that must not work beside one, perhaps
		// waiting for its user's confirmation.
		return fmt.Errorf("data_dir %s is in use by %q, process %d (it holds %s): let it finish, or stop it", dataDir, what, pid, path)
	case pid > 0:
		return fmt.Errorf("data_dir %s is in use by another relay, process %d (it holds %s): stop it, or give this relay its own data_dir", dataDir, pid, path)
	}
	return fmt.Errorf("data_dir %s is in use by another relay (lock %s held)", dataDir, path)
}
