package relay

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// CheckQueueDirs checks that the relay could open every output's queue:
// each queue directory (data_dir/<output name>) exists as a directory the
// relay may write in, with files it may write, or can be created. name and
// data are the configuration file's name and content, for the lines of
// the problems; cfg is what ParseConfig made of them. The check uses the
// permissions of the user that runs it (access(2)), so run it as the
// relay's user.
func CheckQueueDirs(name string, data []byte, cfg *Config) error {
	p := &problems{lines: indexKeyLines(data), badValues: map[string]bool{}}
	root := p.in("", -1)
	if msg := dirProblem(cfg.DataDir); msg != "" {
		root("data_dir", "%s %s", cfg.DataDir, msg)
	} else {
		for _, o := range cfg.Outputs {
			dir := filepath.Join(cfg.DataDir, o.Name)
			if msg := dirProblem(dir); msg != "" {
				root("data_dir", "queue directory %s of output %q %s", dir, o.Name, msg)
			}
		}
		if err := sharedQueueDir(cfg.DataDir, cfg.Outputs); err != nil {
			root("data_dir", "%v", err)
		}
	}
	if len(p.list) > 0 {
		return &ConfigError{File: name, Problems: p.sorted()}
	}
	return nil
}

// sharedQueueDir returns an error if two of the outputs' queue directories
// are one directory (a symbolic link to another output's): the queues
// would share the in-flight journal and the record of what was taken, and
// one would skip the other's records as taken. A directory not there yet
// is created by the relay, and so is no other's.
func sharedQueueDir(dataDir string, outs []OutputConfig) error {
	type seen struct {
		name string
		fi   os.FileInfo
	}
	var dirs []seen
	for _, o := range outs {
		fi, err := os.Stat(filepath.Join(dataDir, o.Name))
		if err != nil || !fi.IsDir() {
			continue // opening the queue reports what is wrong
		}
		for _, d := range dirs {
			if os.SameFile(d.fi, fi) {
				return fmt.Errorf("the queue directory of output %q is that of output %q (a symbolic link?): two outputs cannot share one queue", o.Name, d.name)
			}
		}
		dirs = append(dirs, seen{o.Name, fi})
	}
	return nil
}

// dirProblem says why the relay could not use dir as a directory to write
// in, or returns "": writableDirProblem, and then, for a directory that
// exists, a file in it the relay could not write (a queue's own files).
func dirProblem(dir string) string {
	if msg := writableDirProblem(dir); msg != "" {
		return msg
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return "" // it does not exist yet, and can be created
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Sprintf("cannot be read: %v", err)
	}
	for _, de := range des {
		if !de.Type().IsRegular() {
			continue
		}
		if err := unix.Access(filepath.Join(dir, de.Name()), unix.W_OK); err != nil {
			return fmt.Sprintf("holds %s, which is not writable (%v): a relay run as another user created it?", de.Name(), err)
		}
	}
	return ""
}

// LockDataDir takes data_dir's lock, as a starting relay does, for a tool
// that must not work beside a running relay; release gives it back. The
// error names the process of a relay that holds it. tool names the
// command, which a relay refused start by the lock names in its error.
func LockDataDir(dataDir, tool string) (release func(), err error) {
	f, err := lockDataDir(dataDir)
	if err != nil {
		return nil, err
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt(fmt.Appendf(nil, "%d %s\n", os.Getpid(), tool), 0)
	return func() {
		_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		_ = f.Close()
	}, nil
}
