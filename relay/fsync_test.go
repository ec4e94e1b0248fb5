package relay

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/relay-syslog/relay/internal/testpeer"
)

// TestRELPListenerFsyncAlways sends over RELP to an output whose queue
// fsyncs every record (queue.fsync = "always"), so every acknowledgement
// waits for an fsync: every message is acknowledged, accepted and
// delivered once and in order.
func TestRELPListenerFsyncAlways(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out := filepath.Join(dir, "messages.log")
	r := startRelay(t, dir, `data_dir = "{{DATA}}/q"`+relpListenerTOML("window = 16\n")+fmt.Sprintf(`
[[output]]
name = "file"
protocol = "file"
path = %q
queue.fsync = "always"

[[route]]
name = "all"
outputs = ["file"]
`, out))
	const n = 3000
	acked, err := testpeer.SendRELP(r.addr("relp"), "relp", 0, n, 64)
	if err != nil {
		t.Fatalf("after %d acknowledgements: %v", acked, err)
	}
	if got := r.metric("relay_messages_accepted_total", "listener", "relp"); got != n {
		t.Errorf("accepted %v messages when all %d were acknowledged", got, n)
	}
	if !testpeer.WaitFor(30*time.Second, func() bool { return len(testpeer.ReadLines(out)) >= n }) {
		t.Fatalf("file has %d lines, want %d", len(testpeer.ReadLines(out)), n)
	}
	lines := testpeer.ReadLines(out)
	if tally := testpeer.Check("relp", n, lines); len(tally.Missing) > 0 || tally.Duplicates > 0 {
		t.Errorf("%v", tally)
	}
	if o := testpeer.CheckOrder("relp", lines); !o.Ok() || o.Replays != 0 {
		t.Errorf("order: %v", o)
	}
}
