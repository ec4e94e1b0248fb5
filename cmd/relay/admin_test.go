package main

import (
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/relay-syslog/relay/internal/testpeer"
)

// TestBuildInfoAndStartupLine: the first log line and relay_build_info
// name the version, and they agree with relay -version.
func TestBuildInfoAndStartupLine(t *testing.T) {
	out, _, code := runRelay(t, "-version")
	if code != 0 {
		t.Fatalf("relay -version: exit %d", code)
	}
	var ver, rev, gover string
	if _, err := fmt.Sscanf(out, "relay %s (revision %s %s", &ver, &rev, &gover); err != nil {
		t.Fatalf("relay -version printed %q: %v", out, err)
	}
	rev, gover = strings.TrimSuffix(rev, ","), strings.TrimSuffix(gover, ")")
	if gover != runtime.Version() {
		t.Errorf("relay -version says Go %q, want %q", gover, runtime.Version())
	}

	s := newSetup(t, fmt.Sprintf(`[[output]]
name = "file"
protocol = "file"
path = %q
[[route]]
name = "all"
outputs = ["file"]
`, filepath.Join(t.TempDir(), "out.log")))
	p := s.start(t, relayBin)
	defer p.stop()
	want := fmt.Sprintf(`relay_build_info{goversion=%q,revision=%q,version=%q} 1`, gover, rev, ver)
	if body := testpeer.HTTPGet(s.metricsURL); !strings.Contains(body, want) {
		t.Errorf("/metrics lacks %s:\n%s", want, body)
	}
	first, _, _ := strings.Cut(p.logs.String(), "\n")
	for _, field := range []string{`msg="relay starting"`, "version=" + ver, "revision=" + rev, "go=" + gover} {
		if !strings.Contains(first, field) {
			t.Errorf("first log line %q lacks %s", first, field)
		}
	}
}
