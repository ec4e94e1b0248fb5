package relay

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
)

// Datagrams the kernel drops because a socket's receive buffer is full
// never reach the relay, so the relay cannot count them itself. The kernel
// counts them per socket in the last column ("drops") of /proc/net/udp and
// /proc/net/udp6; this file reads that column for the relay's own UDP
// sockets, found by their inode, which is exact even when another process
// has a socket on the same port (SO_REUSEPORT) or the listener is bound to
// a wildcard address.

// udpProcFiles are the socket tables read, IPv4 and IPv6. /proc/net is the
// reading process's network namespace, which is the one the relay's
// sockets live in.
var udpProcFiles = []string{"/proc/net/udp", "/proc/net/udp6"}

// udpSocket is one UDP socket of the relay, as the drops collector sees it.
type udpSocket struct {
	listener string       // listener name, the metric label
	conn     syscall.Conn // the bound socket (*net.UDPConn)
}

// udpDropsCollector exports relay_listener_kernel_drops_total{listener}:
// the kernel's drop counter of each UDP listener socket, read on every
// scrape. It is a counter of the socket's lifetime; a restart of the relay
// starts it again at zero, which Prometheus's rate() handles as a reset.
type udpDropsCollector struct {
	desc    *prometheus.Desc
	sockets func() []udpSocket
	files   []string
}

// newUDPDropsCollector returns a collector for the sockets that sockets
// returns at scrape time; a socket that has been closed is skipped.
func newUDPDropsCollector(sockets func() []udpSocket) *udpDropsCollector {
	return &udpDropsCollector{
		desc: prometheus.NewDesc("relay_listener_kernel_drops_total",
			"Datagrams the kernel dropped before the relay could read them, because the listener socket's "+
				"receive buffer was full (the drops column of /proc/net/udp and /proc/net/udp6). "+
				"Raise read_buffer (and net.core.rmem_max) when this grows.",
			[]string{"listener"}, nil),
		sockets: sockets,
		files:   udpProcFiles,
	}
}

// Describe implements prometheus.Collector.
func (c *udpDropsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *udpDropsCollector) Collect(ch chan<- prometheus.Metric) {
	socks := c.sockets()
	if len(socks) == 0 {
		return
	}
	drops, err := readUDPDrops(c.files...)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for _, s := range socks {
		ino, err := socketInode(s.conn)
		if err != nil {
			continue // closed while the scrape ran
		}
		if n, ok := drops[ino]; ok {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(n), s.listener)
		}
	}
}

// udpSocketDrops returns the kernel's drop counter of one UDP socket.
func udpSocketDrops(conn syscall.Conn) (uint64, error) {
	ino, err := socketInode(conn)
	if err != nil {
		return 0, err
	}
	drops, err := readUDPDrops(udpProcFiles...)
	if err != nil {
		return 0, err
	}
	n, ok := drops[ino]
	if !ok {
		return 0, fmt.Errorf("socket inode %d not found in %s", ino, strings.Join(udpProcFiles, ", "))
	}
	return n, nil
}

// socketInode returns the inode number of a socket, the key of its line in
// /proc/net/udp.
func socketInode(conn syscall.Conn) (uint64, error) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return 0, err
	}
	var st syscall.Stat_t
	var statErr error
	if err := raw.Control(func(fd uintptr) { statErr = syscall.Fstat(int(fd), &st) }); err != nil {
		return 0, err
	}
	if statErr != nil {
		return 0, fmt.Errorf("fstat socket: %w", statErr)
	}
	return st.Ino, nil
}

// readUDPDrops reads the drop counters of every socket in files, by inode.
// A file that does not exist (IPv6 disabled) is skipped.
func readUDPDrops(files ...string) (map[uint64]uint64, error) {
	drops := map[uint64]uint64{}
	for _, name := range files {
		f, err := os.Open(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		err = parseUDPDrops(f, drops)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	return drops, nil
}

// parseUDPDrops adds the inode → drops pairs of one /proc/net/udp{,6}
// table to drops. After the header, each line is
//
//	sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ref pointer drops
//
// (the header names tx_queue/rx_queue and tr/tm->when as separate columns
// although the values are joined by colons, so fields are counted on the
// data lines).
func parseUDPDrops(r io.Reader, drops map[uint64]uint64) error {
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		if line == 1 {
			continue // header
		}
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) < 13 {
			return fmt.Errorf("line %d: %d fields, want 13", line, len(f))
		}
		ino, err := strconv.ParseUint(f[9], 10, 64)
		if err != nil {
			return fmt.Errorf("line %d: inode %q: %w", line, f[9], err)
		}
		n, err := strconv.ParseUint(f[12], 10, 64)
		if err != nil {
			return fmt.Errorf("line %d: drops %q: %w", line, f[12], err)
		}
		drops[ino] = n
	}
	return sc.Err()
}
