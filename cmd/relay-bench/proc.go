package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of the times in /proc/<pid>/stat and
// /proc/stat. It is 100 on every Linux architecture Go supports.
const clockTicks = 100

// procCPU returns the user plus system CPU time of process pid (all its
// threads) from /proc/<pid>/stat.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(b)
}

// parseStatCPU reads utime and stime (fields 14 and 15) of a
// /proc/<pid>/stat line. The command name (field 2) is in parentheses and
// may hold spaces, so fields are counted from the last ')'.
func parseStatCPU(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("stat: no command name in %q", b)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("stat: %d fields after the command name", len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("stat: bad utime %q or stime %q", f[11], f[12])
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// procMemory returns VmHWM (peak resident set) and VmRSS of process pid, in
// bytes, from /proc/<pid>/status.
func procMemory(pid int) (hwm, rss uint64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	return parseStatusMemory(b)
}

func parseStatusMemory(b []byte) (hwm, rss uint64, err error) {
	for line := range strings.Lines(string(b)) {
		key, val, ok := strings.Cut(line, ":")
		if !ok || (key != "VmHWM" && key != "VmRSS") {
			continue
		}
		f := strings.Fields(val)
		if len(f) != 2 || f[1] != "kB" {
			return 0, 0, fmt.Errorf("status: %s: unexpected %q", key, val)
		}
		kb, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("status: %s: %w", key, err)
		}
		if key == "VmHWM" {
			hwm = kb << 10
		} else {
			rss = kb << 10
		}
	}
	if hwm == 0 && rss == 0 {
		return 0, 0, fmt.Errorf("status: no VmHWM or VmRSS")
	}
	return hwm, rss, nil
}

// loadAvg returns the 1-minute load average.
func loadAvg() (float64, error) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return 0, fmt.Errorf("loadavg: empty")
	}
	return strconv.ParseFloat(f[0], 64)
}

// udpCounters returns the Udp RcvbufErrors and InErrors counters of
// /proc/net/snmp: datagrams the kernel dropped because a socket's receive
// buffer was full, and all receive errors.
func udpCounters() (rcvbuf, inErrors uint64, err error) {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return 0, 0, err
	}
	return parseSNMPUDP(b)
}

// parseSNMPUDP reads the Udp table of /proc/net/snmp: a header line of
// names and a line of values.
func parseSNMPUDP(b []byte) (rcvbuf, inErrors uint64, err error) {
	var names []string
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		found := 0
		for i := 1; i < len(f) && i < len(names); i++ {
			v, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				return 0, 0, fmt.Errorf("snmp: Udp %s: %w", names[i], err)
			}
			switch names[i] {
			case "RcvbufErrors":
				rcvbuf, found = v, found+1
			case "InErrors":
				inErrors, found = v, found+1
			}
		}
		if found != 2 {
			return 0, 0, fmt.Errorf("snmp: no Udp RcvbufErrors or InErrors")
		}
		return rcvbuf, inErrors, nil
	}
	return 0, 0, fmt.Errorf("snmp: no Udp table")
}

// machineCPU returns the CPU time processes used on the whole machine,
// summed over all CPUs, from the first line of /proc/stat: user, nice,
// system and steal (time another guest of the hypervisor took). Idle and
// iowait are not use; irq and softirq are left out because loopback
// networking is done in softirq context and is charged to no process, so
// the harness's own traffic would otherwise look like other load.
func machineCPU() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	return parseMachineCPU(b)
}

func parseMachineCPU(b []byte) (time.Duration, error) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 5 || f[0] != "cpu" {
		return 0, fmt.Errorf("stat: first line is %q", line)
	}
	var busy uint64
	// user nice system idle iowait irq softirq steal [guest guest_nice],
	// where guest time is already part of user time.
	for i, s := range f[1:min(len(f), 9)] {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("stat: %w", err)
		}
		if i != 3 && i != 4 && i != 5 && i != 6 {
			busy += v
		}
	}
	return time.Duration(busy) * time.Second / clockTicks, nil
}

// udpPortDrops sums the drops column of /proc/net/udp and /proc/net/udp6
// over the sockets bound to local port port: the datagrams the kernel
// dropped for the target's own socket, unlike RcvbufErrors, which counts
// every socket of the machine.
func udpPortDrops(port int) (uint64, error) {
	var total uint64
	found := false
	for _, name := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		b, err := os.ReadFile(name)
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			return 0, err
		}
		n, ok, err := parseUDPPortDrops(b, port)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		total += n
		found = found || ok
	}
	if !found {
		return 0, fmt.Errorf("no UDP socket on port %d", port)
	}
	return total, nil
}

// parseUDPPortDrops reads one /proc/net/udp table: after a header line,
// "sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout
// inode ref pointer drops", with the local address as HEX_IP:HEX_PORT.
func parseUDPPortDrops(b []byte, port int) (drops uint64, found bool, err error) {
	want := fmt.Sprintf(":%04X", port)
	first := true
	for line := range strings.Lines(string(b)) {
		if first {
			first = false
			continue
		}
		f := strings.Fields(line)
		if len(f) < 13 || !strings.HasSuffix(f[1], want) {
			continue
		}
		n, err := strconv.ParseUint(f[12], 10, 64)
		if err != nil {
			return 0, false, fmt.Errorf("drops %q: %w", f[12], err)
		}
		drops += n
		found = true
	}
	return drops, found, nil
}
