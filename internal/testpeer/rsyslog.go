package testpeer

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Need returns the path of a program the test needs. Outside CI a missing
// program skips the test with a clear message; with CI=true it fails it,
// because CI must install everything the tests use.
func Need(t testing.TB, program string, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(program)
	if err == nil {
		return path
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin"} {
		p := filepath.Join(dir, program)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s not found: CI must install the Debian package %q", program, pkg)
	}
	t.Skipf("%s not found: install the Debian package %q to run this test", program, pkg)
	return ""
}

// FreePort returns a TCP and UDP port free on 127.0.0.1 at the time of the
// call, for peers such as rsyslogd that cannot report the port they bound,
// and for relays restarted on the same address. The port is below the
// kernel's range of ephemeral ports: a port from that range can be given
// to another test's outgoing connection between a relay's kill and its
// restart, which then fails with "address already in use".
func FreePort(t testing.TB) int {
	t.Helper()
	low, high := fixedPortRange()
	span := high - low + 1
	start := int(time.Now().UnixNano()%int64(span)) + os.Getpid()%span
	for i := range 200 {
		port := low + (start+i*7919)%span
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		return port
	}
	t.Fatal("no free port")
	return 0
}

// fixedPortRange returns the ports FreePort chooses from: the 8,192 below
// the kernel's ephemeral range (ip_local_port_range, 32768 by default),
// and at least 10000.
func fixedPortRange() (low, high int) {
	ephemeralLow := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		var lo, hi int
		if n, _ := fmt.Sscan(string(b), &lo, &hi); n == 2 && lo > 10000+1024 {
			ephemeralLow = lo
		}
	}
	high = ephemeralLow - 1
	return max(10000, high-8191), high
}

// Rsyslog is a real rsyslogd run in the foreground with its own config,
// pid file and work directory, so it never touches the system's instance.
type Rsyslog struct {
	t    testing.TB
	bin  string
	Dir  string
	conf string
	cmd  *exec.Cmd
	out  bytes.Buffer
}

// StartRsyslog writes conf (in which {{DIR}} is replaced by a private
// directory) and starts rsyslogd on it. ready is called until it reports
// true, e.g. a port accepting connections. t.Cleanup stops it.
func StartRsyslog(t testing.TB, conf string, ready func() bool) *Rsyslog {
	t.Helper()
	r := &Rsyslog{t: t, bin: Need(t, "rsyslogd", "rsyslog"), Dir: t.TempDir()}
	r.conf = filepath.Join(r.Dir, "rsyslog.conf")
	conf = strings.ReplaceAll(conf, "{{DIR}}", r.Dir)
	conf = fmt.Sprintf("global(workDirectory=%q)\n", r.Dir) + conf
	if err := os.WriteFile(r.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	r.Start(ready)
	t.Cleanup(r.Stop)
	return r
}

// Start (re)starts rsyslogd on the same config and directory.
func (r *Rsyslog) Start(ready func() bool) {
	r.t.Helper()
	r.out.Reset()
	r.cmd = exec.Command(r.bin, "-n", "-f", r.conf, "-i", filepath.Join(r.Dir, "rsyslogd.pid"))
	r.cmd.Stdout = &r.out
	r.cmd.Stderr = &r.out
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("start rsyslogd: %v", err)
	}
	if ready != nil && !WaitFor(15*time.Second, ready) {
		r.Stop()
		r.t.Fatalf("rsyslogd did not become ready; its output:\n%s", r.out.String())
	}
}

// Stop ends rsyslogd with SIGTERM, as a service manager would, and waits.
func (r *Rsyslog) Stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = r.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = r.cmd.Process.Kill()
		<-done
	}
	r.cmd = nil
}

// Output is what rsyslogd printed.
func (r *Rsyslog) Output() string { return r.out.String() }

// TCPReady reports whether something accepts TCP connections on addr.
func TCPReady(addr string) func() bool {
	return func() bool {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
}

// FileReady reports whether path exists.
func FileReady(path string) func() bool {
	return func() bool {
		_, err := os.Stat(path)
		return err == nil
	}
}

// ReadLines returns the lines of path, or nil when it does not exist yet.
func ReadLines(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	s := strings.TrimSuffix(string(b), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// UpstreamConf is an rsyslog configuration that receives syslog over TCP on
// port (RFC 6587, both framings) and appends each raw message as a line to
// {{DIR}}/out.log. At a stop (SIGTERM), rsyslog discards what its main
// queue still holds after queue.timeoutShutdown (1.5 s by default), which a
// loaded machine can exceed; a long one makes a stopped upstream write
// everything it read, so a test counts only the relay's losses.
func UpstreamConf(port int) string {
	return fmt.Sprintf(`main_queue(queue.timeoutShutdown="30000" queue.timeoutActionCompletion="30000")
module(load="imtcp")
input(type="imtcp" port="%d" address="127.0.0.1")
template(name="raw" type="string" string="%%rawmsg%%\n")
*.* action(type="omfile" file="{{DIR}}/out.log" template="raw")
`, port)
}
