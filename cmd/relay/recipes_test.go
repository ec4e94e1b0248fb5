package main

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/relay-syslog/relay/internal/kafkatest"
	"github.com/relay-syslog/relay/internal/testpeer"
)

// tryBlock is one shell block of the "Try a recipe on one host" section of
// docs/recipes.md.
type tryBlock []string

// tryBlocks returns the section's ```sh blocks, each as its logical lines
// (continuations joined).
func tryBlocks(t *testing.T) []tryBlock {
	t.Helper()
	b, err := os.ReadFile("../../docs/recipes.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Try a recipe on one host\n")
	if !ok {
		t.Fatal("docs/recipes.md has no section \"Try a recipe on one host\"")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var blocks []tryBlock
	for _, m := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(section, -1) {
		text := strings.ReplaceAll(m[1], "\\\n", "")
		var lines tryBlock
		for _, l := range strings.Split(text, "\n") {
			if l = strings.TrimSpace(l); l != "" {
				lines = append(lines, l)
			}
		}
		blocks = append(blocks, lines)
	}
	if len(blocks) < 4 {
		t.Fatalf("the try section has only %d sh blocks", len(blocks))
	}
	return blocks
}

var (
	tryScriptRE = regexp.MustCompile(`^docs/recipes/try-local\.sh (docs/recipes/[a-z0-9-]+\.toml) ([0-9.]+) > ([a-z0-9.-]+)$`)
	tryRunRE    = regexp.MustCompile(`^bin/relay -config ([a-z0-9.-]+)$`)
)

// tryLoopback is the loopback address a documentation address becomes
// under TRY_NET=net.
func tryLoopback(addr string, net int) string {
	for doc, lo := range map[string]string{"192.0.2.": "2.", "198.51.100.": "100.", "203.0.113.": "113."} {
		if rest, ok := strings.CutPrefix(addr, doc); ok {
			return fmt.Sprintf("127.%d.%s%s", net, lo, rest)
		}
	}
	return ""
}

// pickTryNet finds an N for TRY_NET whose addresses and ports are free
// now, so that this test does not collide with another run of itself (or
// someone's own try, which uses 0).
func pickTryNet(t *testing.T) int {
	t.Helper()
	hosts := []string{"192.0.2.10", "192.0.2.11", "192.0.2.20", "192.0.2.21", "192.0.2.22", "192.0.2.23", "192.0.2.24",
		"198.51.100.10", "198.51.100.30", "198.51.100.31", "198.51.100.32", "203.0.113.50"}
	ports := []int{5514, 2514, 6514, 9514, 9092}
	for range 20 {
		n := 1 + rand.IntN(254)
		free := true
		for _, h := range hosts {
			for _, p := range ports {
				addr := fmt.Sprintf("%s:%d", tryLoopback(h, n), p)
				l, err := net.Listen("tcp", addr)
				if err != nil {
					free = false
					break
				}
				l.Close()
				u, err := net.ListenPacket("udp", addr)
				if err != nil {
					free = false
					break
				}
				u.Close()
			}
		}
		if free {
			return n
		}
	}
	t.Fatal("no free 127.N.0.0/16 found in 20 tries")
	return 0
}

// tryRelay is a relay started as the try section says.
type tryRelay struct {
	recipe, metrics string
	cmd             *exec.Cmd
	logs            *syncBuffer
}

// TestRecipesOnOneHost does what docs/recipes.md's "Try a recipe on one
// host" says, block by block, in a scratch directory standing in for the
// repository: generate each config with try-local.sh, start the relays
// (bin/relay is the test's binary), make the certificates with the
// openssl commands, send with the logger lines, and check what the
// section says the tail and curl lines show. Every recipe must be tried.
// The only change is TRY_NET: the section's addresses are 127.0.*, the
// test's 127.N.* for a free N, and the address in the commands is adjusted
// to match.
func TestRecipesOnOneHost(t *testing.T) {
	logger := testpeer.Need(t, "logger", "bsdutils")
	testpeer.Need(t, "openssl", "openssl")
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	n := pickTryNet(t)
	local := func(s string) string { return strings.ReplaceAll(s, "127.0.", fmt.Sprintf("127.%d.", n)) }

	recipes, err := filepath.Glob(filepath.Join(repo, "docs", "recipes", "*.toml"))
	if err != nil {
		t.Fatal(err)
	}
	tried := map[string]bool{}
	var stage []*tryRelay
	var work string
	var kafka *kafkatest.Cluster // the one the section says to start, once
	sentLogger := false
	newStage := func() {
		if len(stage) > 0 {
			checkTryStage(t, stage, work, n)
		}
		stopTry(t, stage)
		stage, work, sentLogger = nil, t.TempDir(), false
	}
	newStage()
	for _, block := range tryBlocks(t) {
		starts := tryScriptRE.MatchString(block[0]) || strings.Contains(block[0], "mkdir -p try-tls")
		if starts && sentLogger {
			newStage()
		}
		if strings.Contains(block[0], "openssl") || strings.Contains(block[0], "mkdir -p try-tls") {
			cmd := exec.Command("bash", "-euc", local(strings.Join(block, "\n")))
			cmd.Dir = work
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("the certificate block failed: %v\n%s", err, out)
			}
			continue
		}
		for _, line := range block {
			switch {
			case tryScriptRE.MatchString(line):
				m := tryScriptRE.FindStringSubmatch(line)
				cmd := exec.Command("sh", "docs/recipes/try-local.sh", m[1], m[2])
				cmd.Dir = repo
				cmd.Env = append(os.Environ(), fmt.Sprintf("TRY_NET=%d", n))
				out, err := cmd.Output()
				if err != nil {
					t.Fatalf("%s: %v", line, err)
				}
				if err := os.WriteFile(filepath.Join(work, m[3]), out, 0o644); err != nil {
					t.Fatal(err)
				}
				tried[filepath.Base(m[1])] = true
				if kafka == nil && strings.Contains(string(out), `protocol = "kafka"`) {
					kafka = startTryKafka(t, string(out))
				}
				stage = append(stage, &tryRelay{recipe: filepath.Base(m[1]), metrics: tryLoopback(m[2], n) + ":9514"})
			case tryRunRE.MatchString(line):
				cfg := tryRunRE.FindStringSubmatch(line)[1]
				r := tryRelayFor(t, stage, work, cfg)
				r.cmd = exec.Command(relayBin, "-config", cfg)
				r.cmd.Dir = work
				r.logs = new(syncBuffer)
				r.cmd.Stderr = r.logs
				if err := r.cmd.Start(); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { stopTry(t, []*tryRelay{r}) })
				url := "http://" + r.metrics + "/metrics"
				if !testpeer.WaitFor(20*time.Second, func() bool { return testpeer.HTTPGet(url) != "" }) {
					t.Fatalf("%s (%s) did not start:\n%s", line, r.recipe, r.logs.String())
				}
			case strings.HasPrefix(line, "logger "):
				cmd := exec.Command("sh", "-c", logger+strings.TrimPrefix(local(line), "logger"))
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("%s: %v\n%s", line, err, out)
				}
				sentLogger = true
			case strings.HasPrefix(line, "bin/relay send "):
				cmd := exec.Command("sh", "-c", relayBin+strings.TrimPrefix(local(line), "bin/relay"))
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("%s: %v\n%s", line, err, out)
				}
				sentLogger = true
			case strings.HasPrefix(line, "tail ") || strings.HasPrefix(line, "curl "):
				// What these show is checked by checkTryStage.
			default:
				t.Fatalf("the try section has a line this test does not know how to run: %q", line)
			}
		}
	}
	newStage()
	for _, r := range recipes {
		if !tried[filepath.Base(r)] {
			t.Errorf("docs/recipes.md does not say how to try %s on one host", filepath.Base(r))
		}
	}
}

var (
	tryBrokersRE = regexp.MustCompile(`(?m)^brokers = \[(.*)\]$`)
	tryTopicRE   = regexp.MustCompile(`(?m)^topics? = \[?"([^"]+)"`)
)

// startTryKafka starts, in place of the Kafka cluster the try section
// asks for, a kfake cluster with a broker at each address of the brokers
// line of config (a recipe run through try-local.sh) and its topic of 6
// partitions.
func startTryKafka(t *testing.T, config string) *kafkatest.Cluster {
	t.Helper()
	m, topic := tryBrokersRE.FindStringSubmatch(config), tryTopicRE.FindStringSubmatch(config)
	if m == nil || topic == nil {
		t.Fatalf("a kafka recipe without a brokers or topic line:\n%s", config)
	}
	var addrs []string
	for _, a := range strings.Split(m[1], ",") {
		addrs = append(addrs, strings.Trim(strings.TrimSpace(a), `"`))
	}
	ports := make([]int, len(addrs))
	for i, a := range addrs {
		_, port, err := net.SplitHostPort(a)
		if err == nil {
			ports[i], err = strconv.Atoi(port)
		}
		if err != nil {
			t.Fatalf("broker %q: %v", a, err)
		}
	}
	// kfake listens on 127.0.0.1; each broker binds its own address here.
	var next atomic.Int32
	listen := func(network, _ string) (net.Listener, error) {
		i := int(next.Add(1)) - 1
		if i >= len(addrs) {
			return nil, fmt.Errorf("only %d broker addresses", len(addrs))
		}
		return net.Listen(network, addrs[i])
	}
	return kafkatest.Start(t, len(addrs), topic[1], 6, kfake.Ports(ports...), kfake.ListenFn(listen))
}

// tryRelayFor returns the relay of the stage whose config file is cfg.
func tryRelayFor(t *testing.T, stage []*tryRelay, work, cfg string) *tryRelay {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(work, cfg))
	if err != nil {
		t.Fatalf("bin/relay -config %s: %v", cfg, err)
	}
	for _, r := range stage {
		if strings.Contains(string(b), `address = "`+r.metrics+`"`) && r.cmd == nil {
			return r
		}
	}
	t.Fatalf("bin/relay -config %s: no config generated for it in this step", cfg)
	return nil
}

func stopTry(t *testing.T, relays []*tryRelay) {
	for _, r := range relays {
		if r.cmd == nil || r.cmd.Process == nil || r.cmd.ProcessState != nil {
			continue
		}
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		_ = r.cmd.Wait()
	}
}

// checkTryStage checks what the try section says the stage's tail and curl
// lines show.
func checkTryStage(t *testing.T, stage []*tryRelay, work string, n int) {
	t.Helper()
	has := map[string]bool{}
	for _, r := range stage {
		has[r.recipe] = true
	}
	head := filepath.Join(work, "try-"+tryLoopback("192.0.2.10", n))
	wantLines := func(file string, want ...string) {
		t.Helper()
		path := filepath.Join(head, "log", file)
		ok := testpeer.WaitFor(20*time.Second, func() bool {
			text := strings.Join(testpeer.ReadLines(path), "\n")
			for _, w := range want {
				if strings.Count(text, w) != 1 {
					return false
				}
			}
			return true
		})
		if !ok {
			t.Errorf("%s: want each of %q once; it holds:\n%s", file, want, strings.Join(testpeer.ReadLines(path), "\n"))
		}
	}
	headMetric := func(name, label string) func() (float64, bool) {
		return func() (float64, bool) {
			return (&proc{metricsURL: "http://" + tryLoopback("192.0.2.10", n) + ":9514/metrics"}).metric(name, label)
		}
	}
	switch {
	case has["head.toml"]:
		wantLines("archive.log", "a warning via the edge", "a notice via the pool")
		// The SIEM is not there: its messages wait, and go out once
		// something listens at its address.
		depth := headMetric("relay_queue_depth_records", `output="siem"`)
		if !testpeer.WaitFor(20*time.Second, func() bool { v, _ := depth(); return v > 0 }) {
			t.Errorf("the head's siem queue is empty while the SIEM is missing")
		}
		siem := testpeer.NewReceiver(t, tryLoopback("203.0.113.50", n)+":5514")
		if !testpeer.WaitFor(30*time.Second, func() bool { return siem.Count() >= 2 }) {
			t.Errorf("the SIEM got %d of 2 messages once it listened", siem.Count())
		}
	case has["dual-path-head.toml"]:
		wantLines("edges.log", "sent over two paths")
		dups := headMetric("relay_dedup_duplicates_total", `origin="edge-bldg2"`)
		if !testpeer.WaitFor(20*time.Second, func() bool { v, _ := dups(); return v >= 1 }) {
			t.Errorf("the dual-path head counted no second copy")
		}
	case has["tls-head.toml"]:
		wantLines("archive.log", "over TLS")
	case has["head-per-host.toml"]:
		wantLines("remote/sw1/links.log", "changed state to down")
		wantLines("remote/sw1/errors.log", "ERROR disk quota exceeded")
		wantLines("remote/sw2/messages.log", "rx 0 errors")
		for _, f := range []string{"remote/sw1/messages.log", "remote/sw2/errors.log", "remote/sw2/links.log"} {
			if _, err := os.Stat(filepath.Join(head, "log", f)); err == nil {
				t.Errorf("%s exists: a message went to the wrong file", f)
			}
		}
	case has["kafka-head.toml"]:
		// In one of the heads' files, once; a head reports the lag of
		// the partition it read it from.
		heads := []string{tryLoopback("192.0.2.10", n), tryLoopback("192.0.2.11", n)}
		count := func() int {
			c := 0
			for _, h := range heads {
				c += strings.Count(strings.Join(testpeer.ReadLines(filepath.Join(work, "try-"+h, "log", "kafka.log")), "\n"), "through Kafka")
			}
			return c
		}
		if !testpeer.WaitFor(60*time.Second, func() bool { return count() >= 1 }) || count() != 1 {
			t.Errorf("the heads' kafka.log files hold %d copies of the message sent to the edge, want 1", count())
		}
		lag := func() bool {
			for _, h := range heads {
				if strings.Contains(testpeer.HTTPGet("http://"+h+":9514/metrics"), "relay_kafka_consumer_lag{") {
					return true
				}
			}
			return false
		}
		if !testpeer.WaitFor(20*time.Second, lag) {
			t.Errorf("no head exports relay_kafka_consumer_lag")
		}
	default:
		t.Errorf("no check for a stage of %v", has)
	}
	t.Logf("tried %v on 127.%d.*", has, n)
	for _, r := range stage {
		if strings.Contains(r.logs.String(), "level=ERROR") {
			t.Errorf("%s logged errors:\n%s", r.recipe, r.logs.String())
		}
	}
}
