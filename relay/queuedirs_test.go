package relay

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestQueueDirSharedByTwoOutputs: a queue directory that is a symbolic
// link to another output's queue directory made the two queues share the
// in-flight journal and the record of what was taken, so that after a
// restart one output skipped its whole backlog as already taken (20,000
// messages gone, no metric moved). The relay refuses to start, a reload
// refuses to add such an output, and -check-config reports it.
func TestQueueDirSharedByTwoOutputs(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(filepath.Join(data, "a"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a", filepath.Join(data, "b")); err != nil {
		t.Fatal(err)
	}
	outputs := func(names ...string) string {
		text := fmt.Sprintf("data_dir = %q\n", data) + listenersTOML()
		for _, n := range names {
			text += fmt.Sprintf("[[output]]\nname = %q\nprotocol = \"file\"\npath = %q\n", n, filepath.Join(dir, n+".log"))
		}
		return text + fmt.Sprintf("[[route]]\nname = \"all\"\noutputs = [%q]\n", names[0])
	}
	const want = `queue directory of output "b"`
	both := outputs("a", "b")
	cfg, err := ParseConfig("r.toml", []byte(both))
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckQueueDirs("r.toml", []byte(both), cfg); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), `output "a"`) {
		t.Errorf("CheckQueueDirs = %v, want it to name outputs b and a", err)
	}
	if srv, err := New(cfg, Options{Logger: testLogger(t)}); err == nil {
		srv.Close()
		t.Errorf("New started two outputs on one queue directory")
	} else if !strings.Contains(err.Error(), want) {
		t.Errorf("New = %v, want %q", err, want)
	}

	r := startRelay(t, data, outputs("a"))
	cfg2, err := ParseConfig("r.toml", []byte(both))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.srv.Reload(cfg2); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Reload adding output b = %v, want %q", err, want)
	}
}

// TestDataDirLockedByTool: a relay started while relay queue purge holds
// the data dir (waiting for its user's answer, perhaps) said the data dir
// was in use by another relay. It names the tool; what asks who holds the
// lock still gets the tool's process id.
func TestDataDirLockedByTool(t *testing.T) {
	dir := t.TempDir()
	release, err := LockDataDir(dir, "relay queue purge")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { release() }()
	text := fmt.Sprintf("data_dir = %q\n", dir) + listenersTOML() + fileOutputTOML(filepath.Join(dir, "out.log"))
	cfg, err := ParseConfig("r.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`in use by "relay queue purge", process %d`, os.Getpid())
	if srv, err := New(cfg, Options{Logger: testLogger(t)}); err == nil {
		srv.Close()
		t.Fatal("New started while the data dir is locked")
	} else if !strings.Contains(err.Error(), want) {
		t.Errorf("New = %v, want %q", err, want)
	}
	if pid, held, err := DataDirHolder(dir); err != nil || !held || pid != os.Getpid() {
		t.Errorf("DataDirHolder = %d, %v, %v; want %d, true, nil", pid, held, err, os.Getpid())
	}
	if tool := DataDirTool(dir); tool != "relay queue purge" {
		t.Errorf("DataDirTool = %q, want the purge", tool)
	}
	release()
	release = func() {}
	releaseRelay, err := LockDataDir(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	defer releaseRelay()
	if tool := DataDirTool(dir); tool != "" {
		t.Errorf("DataDirTool of a relay's lock = %q, want none", tool)
	}
}
