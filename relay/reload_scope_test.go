package relay

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relay-syslog/relay/internal/testpeer"
)

// acceptCounter is an upstream that reads lines and counts the
// connections it accepted.
type acceptCounter struct {
	ln      net.Listener
	accepts atomic.Int64
	lines   atomic.Int64
}

func newAcceptCounter(t *testing.T) *acceptCounter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &acceptCounter{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			a.accepts.Add(1)
			go func() {
				defer c.Close()
				s := bufio.NewScanner(c)
				for s.Scan() {
					a.lines.Add(1)
				}
			}()
		}
	}()
	return a
}

// TestReloadScope: a reload changes what it must and no more. A change of
// a listener's conversion settings replaces the workers of the outputs that
// convert (format other than raw), not those that forward raw bytes (their
// connection stays); the parse-problem series of a removed listener go;
// settings that need a restart are all named at once; and a reload that
// took effect except for one part says so instead of claiming the old
// configuration stayed.
func TestReloadScope(t *testing.T) {
	dir := t.TempDir()
	up := newAcceptCounter(t)
	file := filepath.Join(dir, "conv.log")
	config := func(timezone string, withUDP bool) string {
		listeners := listenersTOML()
		if !withUDP {
			listeners = strings.Replace(listeners, "[[listener]]\nname = \"udp\"\nprotocol = \"udp\"\naddress = \"127.0.0.1:0\"\n", "", 1)
		}
		listeners = strings.Replace(listeners, "name = \"tcp\"\n", fmt.Sprintf("name = \"tcp\"\ntimezone = %q\n", timezone), 1)
		return `data_dir = "{{DATA}}"` + listeners + tcpOutputTOML("raw", up.ln.Addr().String()) + fmt.Sprintf(`framing = "lf"

[[output]]
name = "conv"
protocol = "file"
path = %q
format = "rfc5424"

[[route]]
name = "all"
outputs = ["raw", "conv"]
`, file)
	}
	r := startRelay(t, dir, config("UTC", true))
	if err := testpeer.SendTCP(r.addr("tcp"), "a", 0, 100, true); err != nil {
		t.Fatal(err)
	}
	if !testpeer.WaitFor(20*time.Second, func() bool { return up.lines.Load() >= 100 && len(testpeer.ReadLines(file)) >= 100 }) {
		t.Fatalf("before the reload: upstream %d lines, file %d", up.lines.Load(), len(testpeer.ReadLines(file)))
	}
	if len(seriesWith(t, r.reg, "listener", "udp")) == 0 {
		t.Fatal("no series of listener udp before the reload")
	}
	reload := func(text string) error {
		cfg, err := ParseConfig("r.toml", []byte(strings.ReplaceAll(text, "{{DATA}}", dir)))
		if err != nil {
			t.Fatal(err)
		}
		return r.srv.Reload(cfg)
	}
	if err := reload(config("Europe/Berlin", false)); err != nil {
		t.Fatal(err)
	}
	if err := testpeer.SendTCP(r.addr("tcp"), "b", 0, 100, true); err != nil {
		t.Fatal(err)
	}
	if !testpeer.WaitFor(20*time.Second, func() bool { return up.lines.Load() >= 200 && len(testpeer.ReadLines(file)) >= 200 }) {
		t.Fatalf("after the reload: upstream %d lines, file %d", up.lines.Load(), len(testpeer.ReadLines(file)))
	}
	if n := up.accepts.Load(); n != 1 {
		t.Errorf("the raw output connected %d times: a timezone change restarted a worker that does not convert", n)
	}
	if s := seriesWith(t, r.reg, "listener", "udp"); len(s) != 0 {
		t.Errorf("series of the removed listener udp remain: %v", s)
	}

	// Both restart-only settings named at once.
	moved := strings.Replace(config("Europe/Berlin", false), `data_dir = "{{DATA}}"`, `data_dir = "{{DATA}}/elsewhere"
[metrics]
address = "127.0.0.1:1"
`, 1)
	err := reload(moved)
	if err == nil || !strings.Contains(err.Error(), "data_dir") || !strings.Contains(err.Error(), "metrics.address") {
		t.Errorf("a reload changing data_dir and metrics.address: %v", err)
	}

	// A listener that cannot bind its new address: the rest is applied.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	rebind := strings.Replace(config("Europe/Berlin", false), "[[listener]]\nname = \"tcp\"", "[[listener]]\nname = \"tcp2\"\nprotocol = \"tcp\"\naddress = \""+busy.Addr().String()+"\"\n\n[[listener]]\nname = \"tcp\"", 1)
	err = reload(rebind)
	var partial partlyApplied
	if !errors.As(err, &partial) || !strings.Contains(err.Error(), busy.Addr().String()) {
		t.Errorf("a reload whose new listener cannot bind: %v (want it reported as applied in part, naming the address)", err)
	}
}
