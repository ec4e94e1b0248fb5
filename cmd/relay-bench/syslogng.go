package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// syslogNG is where syslog-ng and its load generator loggen are. Debian's
// syslog-ng package conflicts with rsyslog, which the tests need, so it is
// usually unpacked without installing (tools/get-syslog-ng.sh DIR) and run
// with its libraries and plugins found through the environment.
type syslogNG struct {
	daemon  string   // "" when only loggen was found
	loggen  string   // "" when only the daemon was found
	env     []string // added to the environment of both
	version string
}

// findSyslogNG looks in dir (an unpack directory: DIR/usr/sbin/syslog-ng,
// DIR/usr/bin/loggen) or, with dir empty, on PATH and in /usr/sbin.
func findSyslogNG(dir string) (*syslogNG, error) {
	s := &syslogNG{}
	if dir != "" {
		s.daemon = filepath.Join(dir, "usr", "sbin", "syslog-ng")
		s.loggen = filepath.Join(dir, "usr", "bin", "loggen")
		var libs []string
		for _, pattern := range []string{"lib/*-linux-gnu*", "usr/lib/*-linux-gnu*", "usr/lib/syslog-ng"} {
			m, _ := filepath.Glob(filepath.Join(dir, pattern))
			libs = append(libs, m...)
		}
		if old := os.Getenv("LD_LIBRARY_PATH"); old != "" {
			libs = append(libs, old)
		}
		s.env = []string{"SYSLOGNG_PREFIX=" + filepath.Join(dir, "usr"), "LD_LIBRARY_PATH=" + strings.Join(libs, ":")}
		for _, p := range []*string{&s.daemon, &s.loggen} {
			if _, err := os.Stat(*p); err != nil {
				*p = ""
			}
		}
	} else {
		s.daemon = lookPath("syslog-ng", "/usr/sbin", "/sbin")
		s.loggen = lookPath("loggen", "/usr/bin", "/usr/sbin")
	}
	if s.daemon == "" && s.loggen == "" {
		where := "on PATH"
		if dir != "" {
			where = "in " + dir
		}
		return nil, fmt.Errorf("neither syslog-ng nor loggen found %s (tools/get-syslog-ng.sh DIR unpacks them; then -syslog-ng DIR or RELAY_BENCH_SYSLOG_NG=DIR)", where)
	}
	if s.daemon != "" {
		cmd := exec.Command(s.daemon, "--version")
		cmd.Env = append(os.Environ(), s.env...)
		if out, err := cmd.Output(); err == nil {
			line, _, _ := strings.Cut(string(out), "\n")
			s.version = strings.TrimSpace(line)
		}
	}
	return s, nil
}

// lookPath finds name on PATH or in one of dirs.
func lookPath(name string, dirs ...string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range dirs {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// syslogNGTarget runs syslog-ng with a TCP and a UDP network() source and
// one network() TCP destination per sink, forwarding each message as
// received (flags(no-parse), template "$MSG\n"), with flow control, so
// that TCP senders are slowed rather than messages dropped. Its queue is
// either the reliable disk buffer (every message on disk before it is
// taken) or the memory queue (log-fifo-size).
type syslogNGTarget struct {
	ng     *syslogNG
	mode   string // "reliable" or "mem"
	rcvbuf int    // UDP receive buffer, bytes
	// framed makes the TCP source read RFC 6587 octet counting rather than
	// lines: a network() source reads one framing only, so the harness sets
	// it to the load's before each Start.
	framed bool
	p      *process
	tcp    string
}

func (s *syslogNGTarget) Name() string    { return "syslog-ng-" + s.mode }
func (s *syslogNGTarget) TCPAddr() string { return s.tcp }
func (s *syslogNGTarget) UDPAddr() string { return s.tcp }
func (s *syslogNGTarget) Pid() int        { return s.p.cmd.Process.Pid }

// syslogNGConfig is the configuration of mode "reliable" or "mem", its TCP
// source framed (octet counting) or reading lines. so-rcvbuf is SO_RCVBUF,
// capped by net.core.rmem_max.
func syslogNGConfig(dir, mode string, port, rcvbuf int, framed bool, sinks []string) string {
	var b strings.Builder
	b.WriteString("@version: 3.38\n")
	b.WriteString("options { threaded(yes); use-dns(no); dns-cache(no); use-fqdn(no); keep-hostname(yes); stats-freq(0); };\n")
	b.WriteString("source s_net {\n")
	transport := "tcp"
	if framed {
		transport = "framed"
	}
	fmt.Fprintf(&b, "  network(ip(\"127.0.0.1\") port(%d) transport(%q) flags(no-parse) log-iw-size(100000) max-connections(100));\n", port, transport)
	fmt.Fprintf(&b, "  network(ip(\"127.0.0.1\") port(%d) transport(\"udp\") flags(no-parse) so-rcvbuf(%d));\n", port, rcvbuf)
	b.WriteString("};\n")
	var dests []string
	for i, sk := range sinks {
		host, sport, _ := net.SplitHostPort(sk)
		name := fmt.Sprintf("d%d", i)
		dests = append(dests, fmt.Sprintf("destination(%s);", name))
		fmt.Fprintf(&b, "destination %s { network(%q port(%s) transport(\"tcp\") template(\"$MSG\\n\")", name, host, sport)
		if mode == "reliable" {
			fmt.Fprintf(&b, "\n  disk-buffer(reliable(yes) disk-buf-size(4294967296) mem-buf-size(16777216) dir(%q))", dir)
		} else {
			b.WriteString(" log-fifo-size(1000000)")
		}
		b.WriteString("); };\n")
	}
	fmt.Fprintf(&b, "log { source(s_net); %s flags(flow-control); };\n", strings.Join(dests, " "))
	return b.String()
}

func (s *syslogNGTarget) Start(_ context.Context, dir string, sinks []string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	conf := filepath.Join(dir, "syslog-ng.conf")
	if err := os.WriteFile(conf, []byte(syslogNGConfig(dir, s.mode, port, s.rcvbuf, s.framed, sinks)), 0o644); err != nil {
		return err
	}
	s.tcp = fmt.Sprintf("127.0.0.1:%d", port)
	s.p, err = startProcessEnv(filepath.Join(dir, "syslog-ng.log"), s.ng.env, s.ng.daemon, "-F", "-f", conf,
		"-R", filepath.Join(dir, "syslog-ng.persist"), "-p", filepath.Join(dir, "syslog-ng.pid"), "-c", filepath.Join(dir, "syslog-ng.ctl"))
	if err != nil {
		return err
	}
	return s.p.waitReady(15*time.Second, tcpReady(s.tcp))
}

func (s *syslogNGTarget) Extra() map[string]float64 { return nil }
func (s *syslogNGTarget) Stop() error               { return s.p.stop(20 * time.Second) }

// loggenSent reads how many messages loggen sent from its closing line,
// "average rate = R msg/sec, count=N, time=…".
func loggenSent(out string) (uint64, error) {
	for _, line := range strings.Split(out, "\n") {
		if !strings.Contains(line, "average rate") {
			continue
		}
		_, rest, ok := strings.Cut(line, "count=")
		if !ok {
			break
		}
		var n uint64
		if _, err := fmt.Sscanf(rest, "%d", &n); err != nil {
			return 0, fmt.Errorf("loggen: count in %q: %w", line, err)
		}
		return n, nil
	}
	return 0, errors.New("loggen printed no closing count")
}
