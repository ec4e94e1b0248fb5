package relay

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// UnroutedOutputs returns a note for every output no route names: it gets
// no new message. The file is valid (an output left without routes still
// sends the backlog in its queue, a way to drain it), but an output added
// and never routed is a common slip, and the relay would run silently
// without it. data is the configuration's text, for the lines.
func UnroutedOutputs(data []byte, cfg *Config) []string {
	kl := indexKeyLines(data)
	var notes []string
	for i, o := range cfg.Outputs {
		if slices.ContainsFunc(cfg.Routes, func(r RouteConfig) bool { return slices.Contains(r.Outputs, o.Name) }) {
			continue
		}
		at := ""
		if n := kl.line("output", i, "name"); n > 0 {
			at = fmt.Sprintf("line %d: ", n)
		}
		notes = append(notes, fmt.Sprintf("%soutput %q is named by no route: it gets no new messages (what waits in its queue is still sent); add it to a route's outputs", at, o.Name))
	}
	return notes
}

// FileOutputNotes returns a note for every file output whose directory
// the relay could not create or write in, or whose file it could not write,
// as the user running the check (access(2)): such an output retries until
// it can, while its messages wait in its queue. For a path with fields, the
// directory is the part before the first field. It is a note, not a
// problem: the directory may be a mount that is not there yet, and the
// relay runs meanwhile.
func FileOutputNotes(data []byte, cfg *Config) []string {
	kl := indexKeyLines(data)
	var notes []string
	for i, o := range cfg.Outputs {
		if o.Protocol != ProtocolFile || o.Path == "" {
			continue
		}
		msg := ""
		if j := strings.IndexByte(o.Path, '{'); j >= 0 {
			dir := filepath.Dir(o.Path[:j] + "x")
			if p := writableDirProblem(dir); p != "" {
				msg = fmt.Sprintf("directory %s %s", dir, p)
			}
		} else if fi, err := os.Stat(o.Path); err == nil {
			if fi.IsDir() {
				msg = fmt.Sprintf("%s is a directory", o.Path)
			} else if err := unix.Access(o.Path, unix.W_OK); err != nil {
				msg = fmt.Sprintf("%s is not writable: %v", o.Path, err)
			}
		} else if p := writableDirProblem(filepath.Dir(o.Path)); p != "" {
			msg = fmt.Sprintf("directory %s %s", filepath.Dir(o.Path), p)
		}
		if msg == "" {
			continue
		}
		at := ""
		if n := kl.line("output", i, "path"); n > 0 {
			at = fmt.Sprintf("line %d: ", n)
		}
		notes = append(notes, fmt.Sprintf("%soutput %q: path: %s; the output would retry until it can write, its messages waiting in its queue", at, o.Name, msg))
	}
	return notes
}

// writableDirProblem says why the relay could not create a file in dir
// (creating dir first if it does not exist), or returns "". The files
// already in dir are not looked at: a file output's directory holds other
// programs' files (dirProblem checks a queue directory's).
func writableDirProblem(dir string) string {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
		parent := filepath.Dir(dir)
		for parent != filepath.Dir(parent) {
			if _, err := os.Lstat(parent); err == nil {
				break
			}
			parent = filepath.Dir(parent)
		}
		if msg := writableDirProblem(parent); msg != "" {
			return fmt.Sprintf("does not exist and cannot be created: %s %s", parent, msg)
		}
		return ""
	}
	if err != nil {
		return fmt.Sprintf("cannot be used: %v", err)
	}
	if !fi.IsDir() {
		return "is not a directory"
	}
	if err := unix.Access(dir, unix.W_OK|unix.X_OK); err != nil {
		return fmt.Sprintf("is not writable: %v", err)
	}
	return ""
}
