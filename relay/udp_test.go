package relay

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/relay-syslog/relay/internal/testpeer"
)

// TestUDPOverlongDatagrams checks the documented rule over UDP: a datagram
// longer than max_message_size is truncated to it and counted, and the
// datagrams around it arrive intact.
func TestUDPOverlongDatagrams(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	recv := testpeer.NewReceiver(t, "127.0.0.1:0")
	r := startRelay(t, dir, `data_dir = "{{DATA}}"
[[listener]]
name = "udp"
protocol = "udp"
address = "127.0.0.1:0"
max_message_size = 1000
`+tcpOutputTOML("head", recv.Addr())+`
[[route]]
name = "all"
outputs = ["head"]
`)
	long := "<13>" + strings.Repeat("a", 5000)
	c, err := net.Dial("udp", r.addr("udp"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, m := range []string{"<13>before", long, "<13>after"} {
		if _, err := c.Write([]byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	if !testpeer.WaitFor(30*time.Second, func() bool { return recv.Count() >= 3 }) {
		t.Fatalf("got %d messages, want 3: %q", recv.Count(), recv.Messages())
	}
	got := recv.Messages()
	want := []string{"<13>before", long[:1000], "<13>after"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("message %d = %.40q… (%d bytes), want %.40q… (%d bytes)", i, got[i], len(got[i]), want[i], len(want[i]))
		}
	}
	if n := r.metric("relay_listener_errors_total", "reason", "truncated"); n != 1 {
		t.Errorf("truncated count = %v, want 1", n)
	}
}
