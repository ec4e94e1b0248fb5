package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// target is a system the load passes through on its way to the sinks: the
// relay, rsyslog in one of its queue setups, or nothing (the baseline).
type target interface {
	Name() string
	// Start runs the target, forwarding everything to each of sinks, and
	// returns once its inputs accept connections.
	Start(ctx context.Context, dir string, sinks []string) error
	TCPAddr() string
	UDPAddr() string // "" when the target has no UDP input
	Pid() int        // 0 when there is no process to measure
	// Stop ends the target and waits for it; the result reports a failure
	// that happened while it ran (a non-zero exit, say).
	Stop() error
	// Extra returns target-specific observations gathered just before Stop.
	Extra() map[string]float64
}

// freePort returns a port free for both TCP and UDP on 127.0.0.1 at the
// time of the call, for programs that cannot report the port they bound.
func freePort() (int, error) {
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		u.Close()
		return port, nil
	}
	return 0, errors.New("no free port")
}

// process is a child program run in the foreground with its output in a
// log file.
type process struct {
	cmd  *exec.Cmd
	log  string
	done chan error
}

func startProcess(log string, name string, args ...string) (*process, error) {
	return startProcessEnv(log, nil, name, args...)
}

// startProcessEnv is startProcess with env added to the environment.
func startProcessEnv(log string, env []string, name string, args ...string) (*process, error) {
	f, err := os.Create(log)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(name, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", filepath.Base(name), err)
	}
	p := &process{cmd: cmd, log: log, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	return p, nil
}

// waitReady polls ready until it reports true, the process exits, or the
// timeout passes.
func (p *process) waitReady(timeout time.Duration, ready func() bool) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.done:
			p.done <- err
			return fmt.Errorf("%s exited during start (%v); its log:\n%s", filepath.Base(p.cmd.Path), err, p.tail())
		default:
		}
		if ready() {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.stop(5 * time.Second)
	return fmt.Errorf("%s not ready after %s; its log:\n%s", filepath.Base(p.cmd.Path), timeout, p.tail())
}

// stop sends SIGTERM, as a service manager would, and SIGKILL after grace.
func (p *process) stop(grace time.Duration) error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			return fmt.Errorf("%s: %w; its log:\n%s", filepath.Base(p.cmd.Path), err, p.tail())
		}
		return nil
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop within %s and was killed", filepath.Base(p.cmd.Path), grace)
	}
}

// tail returns the last lines of the process's log.
func (p *process) tail() string {
	b, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}

func tcpReady(addr string) func() bool {
	return func() bool {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
}

// relayTarget runs the relay binary on a generated configuration: a TCP and
// a UDP listener, one TCP output per sink with its own disk queue, and
// default queue and sync settings.
type relayTarget struct {
	bin        string
	outputOpts string // TOML lines added to every [[output]]
	udpOpts    string // TOML lines added to the UDP [[listener]]
	p          *process
	tcp        string
	udp        string
	metrics    string
	extra      map[string]float64
}

func (r *relayTarget) Name() string    { return "relay" }
func (r *relayTarget) TCPAddr() string { return r.tcp }
func (r *relayTarget) UDPAddr() string { return r.udp }
func (r *relayTarget) Pid() int        { return r.p.cmd.Process.Pid }

// relayConfig is the TOML the relay runs on in the harness.
func relayConfig(dataDir string, port, metricsPort int, sinks []string, outputOpts, udpOpts string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "data_dir = %q\n\n[metrics]\naddress = \"127.0.0.1:%d\"\n\n", dataDir, metricsPort)
	fmt.Fprintf(&b, "[[listener]]\nname = \"tcp\"\nprotocol = \"tcp\"\naddress = \"127.0.0.1:%d\"\n\n", port)
	fmt.Fprintf(&b, "[[listener]]\nname = \"udp\"\nprotocol = \"udp\"\naddress = \"127.0.0.1:%d\"\n", port)
	if udpOpts != "" {
		b.WriteString(strings.TrimSpace(udpOpts) + "\n")
	} else {
		b.WriteString("read_buffer = \"4MiB\"\n")
	}
	b.WriteString("\n")
	var names []string
	for i, s := range sinks {
		name := fmt.Sprintf("sink%d", i)
		names = append(names, strconv.Quote(name))
		fmt.Fprintf(&b, "[[output]]\nname = %q\nprotocol = \"tcp\"\naddress = %q\nframing = \"octet-counting\"\n", name, s)
		if outputOpts != "" {
			b.WriteString(strings.TrimSpace(outputOpts) + "\n")
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "[[route]]\nname = \"all\"\noutputs = [%s]\n", strings.Join(names, ", "))
	return b.String()
}

func (r *relayTarget) Start(_ context.Context, dir string, sinks []string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	mport, err := freePort()
	if err != nil {
		return err
	}
	conf := filepath.Join(dir, "relay.toml")
	if err := os.WriteFile(conf, []byte(relayConfig(filepath.Join(dir, "data"), port, mport, sinks, r.outputOpts, r.udpOpts)), 0o644); err != nil {
		return err
	}
	r.tcp = fmt.Sprintf("127.0.0.1:%d", port)
	r.udp = r.tcp
	r.metrics = fmt.Sprintf("127.0.0.1:%d", mport)
	r.extra = nil
	if r.p, err = startProcess(filepath.Join(dir, "relay.log"), r.bin, "-config", conf); err != nil {
		return err
	}
	return r.p.waitReady(15*time.Second, tcpReady(r.tcp))
}

// Extra scrapes the relay's own counters, which tell where messages went
// when the sinks' counts disagree with what was sent.
func (r *relayTarget) Extra() map[string]float64 {
	if r.extra != nil {
		return r.extra
	}
	m, err := scrapeMetrics("http://" + r.metrics + "/metrics")
	if err != nil {
		return map[string]float64{}
	}
	r.extra = m
	return m
}

func (r *relayTarget) Stop() error {
	r.Extra()
	return r.p.stop(20 * time.Second)
}

// scrapeMetrics reads the relay's counters and gauges from Prometheus text:
// every relay_* sample, keyed by name and labels as written.
func scrapeMetrics(url string) (map[string]float64, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "relay_") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[line[:i]] = v
	}
	return m, sc.Err()
}

// rsyslogTarget runs rsyslogd with imtcp and imudp in and one omfwd TCP
// action per sink, forwarding the raw message with octet counting, with
// its action queue either a pure Disk queue or a disk-assisted memory
// queue (LinkedList with a file name). The main queue is rsyslog's
// default in-memory queue in both.
type rsyslogTarget struct {
	bin       string
	queue     string // "disk" or "da"
	rcvbufMiB int    // imudp receive buffer
	p         *process
	tcp       string
}

func (r *rsyslogTarget) Name() string    { return "rsyslog-" + r.queue }
func (r *rsyslogTarget) TCPAddr() string { return r.tcp }
func (r *rsyslogTarget) UDPAddr() string { return r.tcp }
func (r *rsyslogTarget) Pid() int        { return r.p.cmd.Process.Pid }

// rsyslogConfig is the rsyslog configuration for queue "disk" or "da".
// Every action retries forever, as a relay must (the default, zero retries,
// discards messages on the first failure), and resumes after 1 s (the
// default 30 s would make the outage scenario measure rsyslog's timer).
// imudp gets the same receive buffer as the relay.
func rsyslogConfig(dir, queue string, port, rcvbufMiB int, sinks []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "global(workDirectory=%q maxMessageSize=\"64k\")\n", dir)
	b.WriteString("module(load=\"imtcp\")\nmodule(load=\"imudp\")\n")
	fmt.Fprintf(&b, "input(type=\"imtcp\" address=\"127.0.0.1\" port=\"%d\")\n", port)
	fmt.Fprintf(&b, "input(type=\"imudp\" address=\"127.0.0.1\" port=\"%d\" rcvbufSize=\"%dm\")\n", port, rcvbufMiB)
	b.WriteString("template(name=\"raw\" type=\"string\" string=\"%rawmsg%\")\n")
	qtype := "Disk"
	if queue == "da" {
		qtype = "LinkedList"
	}
	for i, s := range sinks {
		host, sport, _ := net.SplitHostPort(s)
		fmt.Fprintf(&b, "action(type=\"omfwd\" target=%q port=%q protocol=\"tcp\" tcp_framing=\"octet-counted\" template=\"raw\"\n", host, sport)
		b.WriteString("  action.resumeRetryCount=\"-1\" action.resumeInterval=\"1\"\n")
		fmt.Fprintf(&b, "  queue.type=%q queue.filename=\"fwd%d\" queue.saveOnShutdown=\"on\")\n", qtype, i)
	}
	return b.String()
}

func (r *rsyslogTarget) Start(_ context.Context, dir string, sinks []string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	conf := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(conf, []byte(rsyslogConfig(dir, r.queue, port, r.rcvbufMiB, sinks)), 0o644); err != nil {
		return err
	}
	r.tcp = fmt.Sprintf("127.0.0.1:%d", port)
	if r.p, err = startProcess(filepath.Join(dir, "rsyslogd.log"), r.bin, "-n", "-f", conf, "-i", filepath.Join(dir, "rsyslogd.pid")); err != nil {
		return err
	}
	return r.p.waitReady(15*time.Second, tcpReady(r.tcp))
}

func (r *rsyslogTarget) Extra() map[string]float64 { return nil }
func (r *rsyslogTarget) Stop() error               { return r.p.stop(20 * time.Second) }

// directTarget is no target at all: the generator sends straight to the
// sink. It measures what the harness itself can do on this machine.
type directTarget struct{ sink string }

func (d *directTarget) Name() string { return "direct" }
func (d *directTarget) Start(_ context.Context, _ string, sinks []string) error {
	d.sink = sinks[0]
	return nil
}
func (d *directTarget) TCPAddr() string           { return d.sink }
func (d *directTarget) UDPAddr() string           { return "" }
func (d *directTarget) Pid() int                  { return 0 }
func (d *directTarget) Stop() error               { return nil }
func (d *directTarget) Extra() map[string]float64 { return nil }

// findRsyslogd returns the path of rsyslogd, or "" when it is not
// installed; it is usually in /usr/sbin, which is not always on PATH.
func findRsyslogd() string {
	if p, err := exec.LookPath("rsyslogd"); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(dir, "rsyslogd")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// rsyslogVersion returns the first line of rsyslogd -v.
func rsyslogVersion(bin string) string {
	out, err := exec.Command(bin, "-v").Output()
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(string(out), "\n")
	line, _, _ = strings.Cut(line, "compiled with")
	return strings.Join(strings.Fields(line), " ")
}
