package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// The perhost scenario: a head server writing one file per sending host.
// The same messages from perhostHosts hosts go over TCP (LF framing) into
// the relay, with a file output whose path names {hostname}, and into
// rsyslog, with omfile and a dynaFile template; both write
// rsyslog's RSYSLOG_TraditionalFileFormat lines, so the bytes each must
// write are known in advance and the run ends when the files hold them
// all. No sink is involved.

const perhostHosts = 50

// perhostMessages returns the messages of the load and the bytes their
// lines take in the files: "<134>" is dropped and a line feed added.
func perhostMessages(n uint64, size int) ([][]byte, int64) {
	msgs := make([][]byte, n)
	var total int64
	for i := range n {
		head := fmt.Sprintf("<134>Dec  6 12:34:56 host%02d app[%d]: perhost %d ", i%perhostHosts, 100+i%7, i)
		m := []byte(head)
		for len(m) < size {
			m = append(m, 'x')
		}
		msgs[i] = m
		total += int64(len(m) - len("<134>") + 1)
	}
	return msgs, total
}

// perhostTarget is how one target runs the scenario.
type perhostTarget struct {
	name  string
	start func(dir, out string) (*process, string, error)
}

func (h *harness) perhostTargetFor(t target) (perhostTarget, bool) {
	switch t := t.(type) {
	case *relayTarget:
		return perhostTarget{name: "relay", start: func(dir, out string) (*process, string, error) {
			port, err := freePort()
			if err != nil {
				return nil, "", err
			}
			addr := fmt.Sprintf("127.0.0.1:%d", port)
			conf := fmt.Sprintf(`data_dir = %q
[[listener]]
name = "tcp"
protocol = "tcp"
address = %q

[[output]]
name = "hosts"
protocol = "file"
path = "%s/{hostname}.log"
template = "{timestamp_bsd} {hostname} {tag} {message}"

[[route]]
name = "all"
outputs = ["hosts"]
`, filepath.Join(dir, "data"), addr, out)
			path := filepath.Join(dir, "relay.toml")
			if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
				return nil, "", err
			}
			p, err := startProcess(filepath.Join(dir, "relay.log"), t.bin, "-config", path)
			if err != nil {
				return nil, "", err
			}
			return p, addr, p.waitReady(15*time.Second, tcpReady(addr))
		}}, true
	case *rsyslogTarget:
		// The queue setups of the forwarding scenarios do not apply; one
		// rsyslog run is enough.
		if t.queue != "da" {
			return perhostTarget{}, false
		}
		return perhostTarget{name: "rsyslog", start: func(dir, out string) (*process, string, error) {
			port, err := freePort()
			if err != nil {
				return nil, "", err
			}
			addr := fmt.Sprintf("127.0.0.1:%d", port)
			conf := fmt.Sprintf(`global(workDirectory=%q maxMessageSize="64k")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="%d")
template(name="perhost" type="string" string="%s/%%HOSTNAME%%.log")
*.* action(type="omfile" dynaFile="perhost" template="RSYSLOG_TraditionalFileFormat" dynaFileCacheSize="100")
`, dir, port, out)
			path := filepath.Join(dir, "rsyslog.conf")
			if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
				return nil, "", err
			}
			p, err := startProcess(filepath.Join(dir, "rsyslogd.log"), t.bin, "-n", "-f", path, "-i", filepath.Join(dir, "rsyslogd.pid"))
			if err != nil {
				return nil, "", err
			}
			return p, addr, p.waitReady(15*time.Second, tcpReady(addr))
		}}, true
	}
	return perhostTarget{}, false
}

// perhost runs the scenario through t: every message is sent as fast as
// the target reads, and the clock stops when the files hold every byte.
func (h *harness) perhost(ctx context.Context, t target) result {
	o := h.o
	pt, _ := h.perhostTargetFor(t)
	res := result{Scenario: "perhost", Target: pt.name, Proto: "tcp", Framing: framingLF.String(),
		Conns: o.conns, Size: o.size, Destinations: 1, Notes: []string{fmt.Sprintf("%d files, one per host", perhostHosts)}}
	if note := h.waitQuiet(ctx); note != "" {
		res.Notes = append(res.Notes, note)
	}
	h.runs++
	dir := filepath.Join(h.tmp, fmt.Sprintf("%02d-perhost-%s", h.runs, pt.name))
	out := filepath.Join(dir, "hosts")
	if err := os.MkdirAll(out, 0o755); err != nil {
		res.Error = err.Error()
		return res
	}
	msgs, want := perhostMessages(o.perhostCount, o.size)
	p, addr, err := pt.start(dir, out)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer func() {
		if err := p.stop(20 * time.Second); err != nil && res.Error == "" {
			res.Error = err.Error()
		}
	}()
	pid := p.cmd.Process.Pid
	cpu0, _ := procCPU(pid)
	self0, _ := procCPU(os.Getpid())
	mach0, _ := machineCPU()
	start := time.Now()
	if err := sendPerhost(ctx, addr, msgs, o.conns); err != nil {
		res.Error = err.Error()
		return res
	}
	res.SendSeconds = time.Since(start).Seconds()
	res.Sent = uint64(len(msgs))
	res.InputRate = float64(res.Sent) / res.SendSeconds
	var got int64
	deadline := time.Now().Add(o.drainTimeout)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		if got = dirBytes(out); got >= want {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	elapsed := time.Since(start)
	cpu1, _ := procCPU(pid)
	self1, _ := procCPU(os.Getpid())
	mach1, _ := machineCPU()
	if got != want {
		res.Error = fmt.Sprintf("the files hold %d bytes after %s, want %d", got, o.drainTimeout, want)
		return res
	}
	if files, _ := filepath.Glob(filepath.Join(out, "*.log")); len(files) != perhostHosts {
		res.Error = fmt.Sprintf("%d files, want %d", len(files), perhostHosts)
		return res
	}
	res.Delivered = res.Sent
	res.Throughput = float64(res.Sent) / elapsed.Seconds()
	res.CPUSeconds = (cpu1 - cpu0).Seconds()
	res.CPUPerMillion = res.CPUSeconds / float64(res.Sent) * 1e6
	res.HarnessCores = (self1 - self0).Seconds() / elapsed.Seconds()
	res.OtherLoadCores = max(0, ((mach1-mach0)-(cpu1-cpu0)-(self1-self0)).Seconds()/elapsed.Seconds())
	return res
}

// sendPerhost sends msgs LF-framed over conns connections, message i on
// connection i%conns.
func sendPerhost(ctx context.Context, addr string, msgs [][]byte, conns int) error {
	var wg sync.WaitGroup
	errs := make([]error, conns)
	for c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var d net.Dialer
			conn, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				errs[c] = err
				return
			}
			defer conn.Close()
			w := bufio.NewWriterSize(conn, 64<<10)
			for i := c; i < len(msgs); i += conns {
				w.Write(msgs[i])
				if err := w.WriteByte('\n'); err != nil {
					errs[c] = err
					return
				}
			}
			errs[c] = w.Flush()
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// dirBytes is the size of the files in dir.
func dirBytes(dir string) int64 {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var n int64
	for _, e := range ents {
		if info, err := e.Info(); err == nil {
			n += info.Size()
		}
	}
	return n
}
