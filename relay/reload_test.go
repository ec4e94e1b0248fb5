package relay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relay-syslog/relay/internal/testfixture"
	"github.com/relay-syslog/relay/internal/testpeer"
	"github.com/relay-syslog/relay/metrics"
	"github.com/relay-syslog/relay/queue"
)

// TestReloadKeepsQueuedData: with the upstream down and a backlog queued,
// a reload changes the output (new retry settings), adds a listener, a
// second output and a route. The backlog survives the change of worker and
// arrives exactly once when the upstream appears; the new parts work.
func TestReloadKeepsQueuedData(t *testing.T) {
	dir := t.TempDir()
	port := testpeer.FreePort(t)
	upstream := fmt.Sprintf("127.0.0.1:%d", port)
	extraFile := filepath.Join(dir, "extra.log")
	base := `data_dir = "{{DATA}}"
[[listener]]
name = "tcp"
protocol = "tcp"
address = "127.0.0.1:0"
` + tcpOutputTOML("head", upstream) + `
[[route]]
name = "all"
outputs = ["head"]
`
	r := startRelay(t, dir, base)
	const n = 5000
	if err := testpeer.SendTCP(r.addr("tcp"), "before", 0, n, true); err != nil {
		t.Fatal(err)
	}
	// The worker has taken batches and keeps failing: they are in flight.
	if !testpeer.WaitFor(10*time.Second, func() bool { return r.metric("relay_output_send_errors_total") >= 2 }) {
		t.Fatal("no send errors while the upstream is down")
	}
	tcpAddr := r.addr("tcp")
	next := strings.ReplaceAll(base, `retry_max = "500ms"`, `retry_max = "300ms"`)
	next = strings.ReplaceAll(next, "name = \"all\"\n", "name = \"all\"\nlisteners = [\"tcp\"]\n") + fmt.Sprintf(`
[[listener]]
name = "udp"
protocol = "udp"
address = "127.0.0.1:0"

[[output]]
name = "extra"
protocol = "file"
path = %q

[[route]]
name = "udp-extra"
listeners = ["udp"]
outputs = ["extra"]
`, extraFile)
	cfg, err := ParseConfig("reload.toml", []byte(strings.ReplaceAll(next, "{{DATA}}", dir)))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.srv.Reload(cfg); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if got := r.addr("tcp"); got != tcpAddr {
		t.Errorf("unchanged tcp listener moved from %s to %s", tcpAddr, got)
	}
	if got := r.metric("relay_config_last_reload_successful"); got != 1 {
		t.Errorf("relay_config_last_reload_successful = %v", got)
	}
	if err := testpeer.SendUDP(r.addr("udp"), "newlistener", 0, 50); err != nil {
		t.Fatal(err)
	}
	if !testpeer.WaitFor(10*time.Second, func() bool { return len(testpeer.ReadLines(extraFile)) >= 50 }) {
		t.Fatalf("new output has %d lines, want 50", len(testpeer.ReadLines(extraFile)))
	}
	recv := testpeer.NewReceiver(t, upstream)
	if !testpeer.WaitFor(20*time.Second, func() bool { return recv.Count() >= n }) {
		t.Fatalf("backlog after reload: %v", testpeer.Check("before", n, recv.Messages()))
	}
	testpeer.WaitFor(2*time.Second, func() bool { return r.metric("relay_queue_depth_records", "output", "head") == 0 })
	if tally := testpeer.Check("before", n, recv.Messages()); len(tally.Missing) > 0 || tally.Duplicates > 0 {
		t.Errorf("backlog: %v", tally)
	}
	if c := testpeer.Check("newlistener", 50, recv.Messages()).Delivered(); c != 0 {
		t.Errorf("udp messages reached head: the route change did not apply (%d)", c)
	}
}

// TestReloadInvalidKeepsOldConfig: a broken file is refused, the relay
// keeps running on the old configuration and says so in its metrics.
func TestReloadInvalidKeepsOldConfig(t *testing.T) {
	dir := t.TempDir()
	recv := testpeer.NewReceiver(t, "127.0.0.1:0")
	r := startRelay(t, dir, `data_dir = "{{DATA}}"`+listenersTOML()+tcpOutputTOML("head", recv.Addr())+`
[[route]]
name = "all"
outputs = ["head"]
`)
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("[[route]]\nname = \"x\"\noutputs = [\"nowhere\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := r.srv.ReloadFile(bad)
	if err == nil || !strings.Contains(err.Error(), "nowhere") {
		t.Fatalf("ReloadFile(bad) = %v, want the validation error", err)
	}
	if got := r.metric("relay_config_last_reload_successful"); got != 0 {
		t.Errorf("relay_config_last_reload_successful = %v, want 0", got)
	}
	if got := r.metric("relay_config_reloads_total", "result", "failure"); got != 1 {
		t.Errorf("failed reloads = %v, want 1", got)
	}
	// A change that cannot apply in place is refused too.
	moved := strings.ReplaceAll(`data_dir = "{{DATA}}/elsewhere"`+listenersTOML()+tcpOutputTOML("head", recv.Addr())+`
[[route]]
name = "all"
outputs = ["head"]
`, "{{DATA}}", dir)
	cfg, err := ParseConfig("moved.toml", []byte(moved))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.srv.Reload(cfg); err == nil || !strings.Contains(err.Error(), "data_dir cannot change") {
		t.Errorf("Reload with another data_dir = %v", err)
	}
	// The old configuration still works.
	if err := testpeer.SendTCP(r.addr("tcp"), "still", 0, 100, true); err != nil {
		t.Fatal(err)
	}
	if !testpeer.WaitFor(10*time.Second, func() bool { return recv.Count() >= 100 }) {
		t.Fatalf("after a failed reload: %d of 100", recv.Count())
	}
}

// TestReloadRemoveAndRestoreOutput: an output removed by a reload keeps its
// queue on disk; when a later reload brings it back, its backlog goes out.
func TestReloadRemoveAndRestoreOutput(t *testing.T) {
	dir := t.TempDir()
	port := testpeer.FreePort(t)
	upstream := fmt.Sprintf("127.0.0.1:%d", port)
	file := filepath.Join(dir, "file.log")
	with := `data_dir = "{{DATA}}"` + listenersTOML() + tcpOutputTOML("head", upstream) + fmt.Sprintf(`
[[output]]
name = "file"
protocol = "file"
path = %q
[[route]]
name = "all"
outputs = ["head", "file"]
`, file)
	without := `data_dir = "{{DATA}}"` + listenersTOML() + fmt.Sprintf(`
[[output]]
name = "file"
protocol = "file"
path = %q
[[route]]
name = "all"
outputs = ["file"]
`, file)
	parse := func(text string) *Config {
		cfg, err := ParseConfig("r.toml", []byte(strings.ReplaceAll(text, "{{DATA}}", dir)))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	r := startRelay(t, dir, with)
	if err := testpeer.SendTCP(r.addr("tcp"), "kept", 0, 2000, true); err != nil {
		t.Fatal(err)
	}
	if !testpeer.WaitFor(10*time.Second, func() bool { return len(testpeer.ReadLines(file)) >= 2000 }) {
		t.Fatal("file output did not get the messages")
	}
	if err := r.srv.Reload(parse(without)); err != nil {
		t.Fatal(err)
	}
	if got := r.metric("relay_queue_depth_records", "output", "head"); got != 0 {
		t.Errorf("removed output still exported (depth %v)", got)
	}
	if err := testpeer.SendTCP(r.addr("tcp"), "while-removed", 0, 100, true); err != nil {
		t.Fatal(err)
	}
	recv := testpeer.NewReceiver(t, upstream)
	if err := r.srv.Reload(parse(with)); err != nil {
		t.Fatal(err)
	}
	if !testpeer.WaitFor(20*time.Second, func() bool { return testpeer.Check("kept", 2000, recv.Messages()).Delivered() == 2000 }) {
		t.Fatalf("backlog of the restored output: %v", testpeer.Check("kept", 2000, recv.Messages()))
	}
	if c := testpeer.Check("while-removed", 100, recv.Messages()).Delivered(); c != 0 {
		t.Errorf("the removed output received %d messages sent while it was removed", c)
	}
}

// TestReloadRaisesQueueCap: with the upstream down, a queue at its
// max_bytes drops new messages (drop_newest); a reload that raises the cap
// takes effect on the running queue, without a restart and without losing
// what was queued: every message accepted before and after it arrives once
// the upstream appears.
func TestReloadRaisesQueueCap(t *testing.T) {
	dir := t.TempDir()
	upstream := fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t))
	base := `data_dir = "{{DATA}}"
[[listener]]
name = "tcp"
protocol = "tcp"
address = "127.0.0.1:0"
` + tcpOutputTOML("head", upstream) + `queue.max_bytes = "64KiB"
queue.full_policy = "drop_newest"

[[route]]
name = "all"
outputs = ["head"]
`
	r := startRelay(t, dir, base)
	const n = 2000 // about 200 KiB of records: more than the cap
	if err := testpeer.SendTCP(r.addr("tcp"), "before", 0, n, true); err != nil {
		t.Fatal(err)
	}
	if !testpeer.WaitFor(10*time.Second, func() bool {
		return r.metric("relay_messages_accepted_total")+r.metric("relay_output_messages_dropped_total", "reason", "queue_full") == n
	}) {
		t.Fatalf("accepted %v + dropped %v, want %d", r.metric("relay_messages_accepted_total"),
			r.metric("relay_output_messages_dropped_total", "reason", "queue_full"), n)
	}
	droppedBefore := r.metric("relay_output_messages_dropped_total", "reason", "queue_full")
	acceptedBefore := r.metric("relay_messages_accepted_total")
	if droppedBefore == 0 {
		t.Fatal("nothing dropped at a 64 KiB cap")
	}

	worker := r.srv.outputs["head"].worker
	// The cap is raised, and a file setting changed: that one waits for a
	// restart. Neither replaces the worker, however often it is reloaded.
	next := strings.Replace(base, `queue.max_bytes = "64KiB"`, `queue.max_bytes = "16MiB"`+"\nqueue.linger = \"7ms\"", 1)
	for range 3 {
		cfg, err := ParseConfig("reload.toml", []byte(strings.ReplaceAll(next, "{{DATA}}", dir)))
		if err != nil {
			t.Fatal(err)
		}
		if err := r.srv.Reload(cfg); err != nil {
			t.Fatalf("Reload: %v", err)
		}
	}
	if o := r.srv.outputs["head"]; o.worker != worker || o.cfg.Queue.MaxBytes != 16<<20 || o.cfg.Queue.Linger.Duration == 7*time.Millisecond {
		t.Errorf("after the reloads: worker replaced %v, max_bytes %d, linger %v; want the same worker, 16 MiB, the old linger",
			o.worker != worker, o.cfg.Queue.MaxBytes, o.cfg.Queue.Linger.Duration)
	}
	if err := testpeer.SendTCP(r.addr("tcp"), "after", 0, n, true); err != nil {
		t.Fatal(err)
	}
	if !testpeer.WaitFor(10*time.Second, func() bool { return r.metric("relay_messages_accepted_total") == acceptedBefore+n }) {
		t.Fatalf("after raising the cap: accepted %v of %d more, dropped %v more", r.metric("relay_messages_accepted_total")-acceptedBefore,
			n, r.metric("relay_output_messages_dropped_total", "reason", "queue_full")-droppedBefore)
	}
	recv := testpeer.NewReceiver(t, upstream)
	want := int(acceptedBefore) + n
	if !testpeer.WaitFor(30*time.Second, func() bool { return recv.Count() >= want }) {
		t.Fatalf("upstream got %d of %d accepted", recv.Count(), want)
	}
	if tally := testpeer.Check("after", n, recv.Messages()); len(tally.Missing) > 0 || tally.Duplicates > 0 {
		t.Errorf("after the reload: %v", tally)
	}
	if tally := testpeer.Check("before", n, recv.Messages()); tally.Delivered() != int(acceptedBefore) || tally.Duplicates > 0 {
		t.Errorf("before the reload: %v, want the %v accepted, once each", tally, acceptedBefore)
	}
}

// TestReloadForgetsRemovedSeries: a reload that removes an output, a target
// of a pool, a listener and a route takes their series out of the scrape;
// what stays keeps its series and its counts.
func TestReloadForgetsRemovedSeries(t *testing.T) {
	dir := t.TempDir()
	recv := testpeer.NewReceiver(t, "127.0.0.1:0")
	down := fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t))
	file := filepath.Join(dir, "a.log")
	outputs := fmt.Sprintf(`
[[output]]
name = "a"
protocol = "file"
path = %q

[[output]]
name = "pool"
protocol = "tcp"
targets = [%q, %q]
retry_initial = "20ms"
retry_max = "500ms"
`, file, recv.Addr(), down)
	with := `data_dir = "{{DATA}}"` + listenersTOML() + outputs + tcpOutputTOML("b", down) + `
[[route]]
name = "to-b"
listeners = ["udp"]
outputs = ["b"]

[[route]]
name = "all"
outputs = ["a", "pool", "b"]
`
	r := startRelay(t, dir, with)
	if err := testpeer.SendTCP(r.addr("tcp"), "m", 0, 100, true); err != nil {
		t.Fatal(err)
	}
	if err := testpeer.SendUDP(r.addr("udp"), "u", 0, 10); err != nil {
		t.Fatal(err)
	}
	if !testpeer.WaitFor(20*time.Second, func() bool {
		return len(testpeer.ReadLines(file)) >= 100 && r.metric("relay_route_messages_matched_total", "route", "to-b") > 0 &&
			r.metric("relay_output_send_errors_total", "output", "b") > 0
	}) {
		t.Fatalf("file has %d lines, route to-b matched %v, output b errors %v", len(testpeer.ReadLines(file)),
			r.metric("relay_route_messages_matched_total", "route", "to-b"), r.metric("relay_output_send_errors_total", "output", "b"))
	}
	gone := [][2]string{{"output", "b"}, {"target", down}, {"listener", "udp"}, {"route", "to-b"}}
	for _, l := range gone {
		if len(seriesWith(t, r.reg, l[0], l[1])) == 0 {
			t.Fatalf("before the reload no series has %s=%q", l[0], l[1])
		}
	}

	without := strings.Replace(`data_dir = "{{DATA}}"`+listenersTOML()+outputs+`
[[route]]
name = "all"
outputs = ["a", "pool"]
`, fmt.Sprintf("targets = [%q, %q]", recv.Addr(), down), fmt.Sprintf("targets = [%q]", recv.Addr()), 1)
	without = strings.Replace(without, "[[listener]]\nname = \"udp\"\nprotocol = \"udp\"\naddress = \"127.0.0.1:0\"\n", "", 1)
	cfg, err := ParseConfig("r.toml", []byte(strings.ReplaceAll(without, "{{DATA}}", dir)))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.srv.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	for _, l := range gone {
		if s := seriesWith(t, r.reg, l[0], l[1]); len(s) > 0 {
			t.Errorf("after the reload, series with %s=%q are still exported: %s", l[0], l[1], strings.Join(s, ", "))
		}
	}
	for _, kept := range [][2]string{{"output", "a"}, {"output", "pool"}, {"target", recv.Addr()}, {"listener", "tcp"}, {"route", "all"}} {
		if len(seriesWith(t, r.reg, kept[0], kept[1])) == 0 {
			t.Errorf("after the reload, no series has %s=%q", kept[0], kept[1])
		}
	}
	if got := r.metric("relay_listener_messages_received_total", "listener", "tcp"); got != 100 {
		t.Errorf("tcp listener count after the reload = %v, want 100", got)
	}
}

// seriesWith lists the series on g that carry the label name=value.
func seriesWith(t *testing.T, g prometheus.Gatherer, name, value string) []string {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if testfixture.HasLabels(m, name, value) {
				out = append(out, fmt.Sprintf("%s%v", mf.GetName(), m.GetLabel()))
			}
		}
	}
	return out
}

// TestReloadRemovesOutputUnderTraffic: RELP senders stream to two outputs
// while reloads remove and restore one of them. A message is routed by the
// router of its moment; one that was routed to the output just before a
// reload removed it is still stored there, so no message is refused or
// dropped, every answer is 200, and the output that stays gets everything.
func TestReloadRemovesOutputUnderTraffic(t *testing.T) {
	dir := t.TempDir()
	fileA, fileB := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	outputs := func(names ...string) string {
		var b strings.Builder
		for _, n := range names {
			fmt.Fprintf(&b, "\n[[output]]\nname = %q\nprotocol = \"file\"\npath = %q\n", n, map[string]string{"a": fileA, "b": fileB}[n])
		}
		fmt.Fprintf(&b, "\n[[route]]\nname = \"all\"\noutputs = [\"%s\"]\n", strings.Join(names, `", "`))
		return b.String()
	}
	both := `data_dir = "{{DATA}}"` + relpListenerTOML("") + outputs("a", "b")
	onlyA := `data_dir = "{{DATA}}"` + relpListenerTOML("") + outputs("a")
	parse := func(text string) *Config {
		cfg, err := ParseConfig("r.toml", []byte(strings.ReplaceAll(text, "{{DATA}}", dir)))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	r := startRelay(t, dir, both)
	addr := r.addr("relp")

	const senders, chunk, maxChunks, reloads = 4, 500, 200, 40
	stop := make(chan struct{})
	sent := make([]int, senders)
	errs := make(chan error, senders)
	var wg sync.WaitGroup
	for i := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := 0; c < maxChunks; c++ {
				select {
				case <-stop:
					return
				default:
				}
				acked, err := testpeer.SendRELP(addr, fmt.Sprintf("s%d", i), c*chunk, (c+1)*chunk, 64)
				sent[i] += acked
				if err != nil {
					errs <- fmt.Errorf("sender %d: %w", i, err)
					return
				}
			}
		}()
	}
	// Reloads run while the senders are busy; each waits for some traffic
	// so that messages are in flight when the output goes.
	for i := range reloads {
		before := r.metric("relay_messages_accepted_total")
		if !testpeer.WaitFor(20*time.Second, func() bool { return r.metric("relay_messages_accepted_total") > before+50 }) {
			t.Errorf("reload %d: no traffic", i)
			break
		}
		next := onlyA
		if i%2 == 1 {
			next = both
		}
		if err := r.srv.Reload(parse(next)); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	total := 0
	for _, n := range sent {
		total += n
	}
	if d := r.metric("relay_output_messages_dropped_total"); d != 0 {
		t.Errorf("%v messages dropped during the reloads (closed %v, disk_error %v)", d,
			r.metric("relay_output_messages_dropped_total", "reason", "closed"),
			r.metric("relay_output_messages_dropped_total", "reason", "disk_error"))
	}
	if e := r.metric("relay_listener_errors_total", "reason", "store_failed"); e != 0 {
		t.Errorf("store_failed = %v", e)
	}
	if !testpeer.WaitFor(30*time.Second, func() bool { return len(testpeer.ReadLines(fileA)) >= total }) {
		t.Fatalf("output a has %d lines, want %d", len(testpeer.ReadLines(fileA)), total)
	}
	lines := testpeer.ReadLines(fileA)
	for i := range senders {
		if tally := testpeer.Check(fmt.Sprintf("s%d", i), sent[i], lines); len(tally.Missing) > 0 || tally.Duplicates > 0 {
			t.Errorf("sender %d in output a: %v", i, tally)
		}
	}
}

// TestRouterCountsClosedQueue: a message that meets a closed queue is
// counted under its own reason, not as a disk error, and the other outputs
// still store it.
func TestRouterCountsClosedQueue(t *testing.T) {
	dir := t.TempDir()
	cfg, err := ParseConfig("r.toml", []byte(strings.ReplaceAll(`data_dir = "{{DATA}}"`+listenersTOML()+`
[[output]]
name = "open"
protocol = "file"
path = "{{DATA}}/open.log"
[[output]]
name = "closed"
protocol = "file"
path = "{{DATA}}/closed.log"
[[route]]
name = "all"
outputs = ["open", "closed"]
`, "{{DATA}}", dir)))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	log := testLogger(t)
	queues := map[string]*queue.Queue{}
	for _, oc := range cfg.Outputs {
		q, err := openQueue(dir, oc, log, m)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { q.Close() })
		queues[oc.Name] = q
	}
	if err := queues["closed"].Close(); err != nil {
		t.Fatal(err)
	}
	r := newRouter(cfg, queues, m, log)
	routed, accepted := r.dispatch(queue.Entry{Listener: "udp", Data: []byte("<13>hello")})
	if !routed || accepted {
		t.Errorf("dispatch = routed %v, accepted %v; want routed, not accepted", routed, accepted)
	}
	if got := testfixture.MetricValue(t, reg, "relay_output_messages_dropped_total", "output", "closed", "reason", "closed"); got != 1 {
		t.Errorf("dropped{reason=closed} = %v, want 1", got)
	}
	if got := testfixture.MetricValue(t, reg, "relay_output_messages_dropped_total", "reason", "disk_error"); got != 0 {
		t.Errorf("dropped{reason=disk_error} = %v, want 0", got)
	}
	if err := queues["open"].Flush(); err != nil {
		t.Fatal(err)
	}
	if got := queues["open"].Depth(); got != 1 {
		t.Errorf("the open output holds %d records, want 1", got)
	}
}

// TestServerNeverRun: a Server built by New and never run refuses a reload
// at once, and Close releases its data dir lock and its sockets, so a
// second relay can take both; Close is idempotent, and Run after it fails.
func TestServerNeverRun(t *testing.T) {
	dir := t.TempDir()
	text := strings.ReplaceAll(`data_dir = "{{DATA}}"`+listenersTOML()+fileOutputTOML(filepath.Join(dir, "out.log")), "{{DATA}}", dir)
	cfg, err := ParseConfig("r.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(cfg, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	tcpAddr := srv.ListenerAddr("tcp")

	reloaded := make(chan error, 1)
	go func() { reloaded <- srv.Reload(cfg) }()
	select {
	case err := <-reloaded:
		if !errors.Is(err, ErrNotRunning) {
			t.Errorf("Reload before Run = %v, want ErrNotRunning", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Reload before Run blocks")
	}
	if got := testfixture.MetricValue(t, srv.Registry(), "relay_config_reloads_total", "result", "failure"); got != 1 {
		t.Errorf("failed reloads = %v, want 1", got)
	}

	if _, err := New(cfg, Options{Logger: testLogger(t)}); err == nil || !strings.Contains(err.Error(), "in use by another relay") {
		t.Fatalf("second New while the first holds the data dir = %v, want the lock error", err)
	}
	// A reloader that waits for the relay to serve (cmd/relay's SIGHUP
	// handler) learns from Stopped that it never will.
	select {
	case <-srv.Serving():
		t.Error("Serving closed before Run")
	default:
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case <-srv.Stopped():
	default:
		t.Error("Stopped still open after Close before Run")
	}
	if err := srv.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := srv.Reload(cfg); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Reload after Close = %v, want ErrNotRunning", err)
	}
	if err := srv.Run(context.Background()); err == nil {
		t.Error("Run after Close succeeded")
	}
	ln, err := net.Listen("tcp", tcpAddr)
	if err != nil {
		t.Fatalf("the closed Server's tcp address %s is still taken: %v", tcpAddr, err)
	}
	ln.Close()
	again, err := New(cfg, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("New after Close: %v", err)
	}
	if err := again.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestServerCloseStopsRun: Close while Run serves ends Run; after Run has
// returned, Close does nothing.
func TestServerCloseStopsRun(t *testing.T) {
	dir := t.TempDir()
	r := startRelay(t, dir, `data_dir = "{{DATA}}"`+listenersTOML()+fileOutputTOML(filepath.Join(dir, "out.log")))
	if err := testpeer.SendTCP(r.addr("tcp"), "m", 0, 10, true); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- r.srv.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close while running: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close while running did not return")
	}
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		r.cancel() // Run has returned: the cleanup has nothing to stop
		r.cancel = nil
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after Close")
	}
	if err := r.srv.Close(); err != nil {
		t.Errorf("Close after Run: %v", err)
	}
	if err := r.srv.Reload(r.srv.cfg); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Reload after Run = %v, want ErrNotRunning", err)
	}
}

// TestReloadLogNamesChanges: the line a reload logs names what it added,
// changed and removed, and says when nothing changed.
func TestReloadLogNamesChanges(t *testing.T) {
	base := `data_dir = "d"` + listenersTOML() + tcpOutputTOML("head", "127.0.0.1:1") + tcpOutputTOML("gone", "127.0.0.1:2") + `
[[route]]
name = "all"
outputs = ["head", "gone"]
`
	next := `data_dir = "d"` + listenersTOML() + strings.Replace(tcpOutputTOML("head", "127.0.0.1:1"), `name = "head"`, "name = \"head\"\nconfirm_delay = \"10ms\"", 1) +
		tcpOutputTOML("new", "127.0.0.1:3") + `
[[route]]
name = "all"
outputs = ["head", "new"]
`
	parse := func(text string) *Config {
		cfg, err := ParseConfig("test.toml", []byte(text))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	old, cfg := parse(base), parse(next)
	got := fmt.Sprint(configChanges(old, cfg))
	want := "[outputs_added [new] outputs_changed [head] outputs_removed [gone] routes_changed [all]]"
	if got != want {
		t.Errorf("changes = %s, want %s", got, want)
	}
	if got := fmt.Sprint(configChanges(old, parse(base))); got != "[changes none]" {
		t.Errorf("changes of the same file = %s, want [changes none]", got)
	}
}
