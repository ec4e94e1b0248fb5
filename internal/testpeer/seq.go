package testpeer

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"time"
)

// SeqMessage returns an RFC 3164 message carrying run and sequence number i,
// so a checker can tell which messages arrived and how often.
func SeqMessage(run string, i int) string {
	return fmt.Sprintf("<134>Nov 23 10:00:00 testhost seqgen[42]: run=%s seq=%08d payload=the-quick-brown-fox-jumps-over-the-lazy-dog", run, i)
}

var seqRE = regexp.MustCompile(`run=(\S+) seq=(\d+)`)

// Tally counts, for one run, how often each sequence number arrived.
type Tally struct {
	Expected   int
	Seen       map[int]int
	Missing    []int
	Duplicates int // arrivals beyond the first, summed
	Foreign    int // messages of other runs or without a sequence number
}

// Check tallies msgs against sequence numbers 0..n-1 of run.
func Check(run string, n int, msgs []string) Tally {
	t := Tally{Expected: n, Seen: make(map[int]int, n)}
	for _, m := range msgs {
		sub := seqRE.FindStringSubmatch(m)
		if sub == nil || sub[1] != run {
			t.Foreign++
			continue
		}
		i, err := strconv.Atoi(sub[2])
		if err != nil || i < 0 || i >= n {
			t.Foreign++
			continue
		}
		t.Seen[i]++
	}
	for i := 0; i < n; i++ {
		c := t.Seen[i]
		if c == 0 {
			t.Missing = append(t.Missing, i)
		} else {
			t.Duplicates += c - 1
		}
	}
	sort.Ints(t.Missing)
	return t
}

// Delivered is how many distinct sequence numbers arrived.
func (t Tally) Delivered() int { return t.Expected - len(t.Missing) }

func (t Tally) String() string {
	miss := t.Missing
	if len(miss) > 10 {
		miss = miss[:10]
	}
	return fmt.Sprintf("expected %d, delivered %d, missing %d (first %v), duplicates %d, foreign %d",
		t.Expected, t.Delivered(), len(t.Missing), miss, t.Duplicates, t.Foreign)
}

// SendTCP sends messages from..to-1 of run over one TCP connection, with
// octet counting when octet is true and LF framing otherwise.
func SendTCP(addr, run string, from, to int, octet bool) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	w := bufio.NewWriterSize(c, 64<<10)
	for i := from; i < to; i++ {
		m := SeqMessage(run, i)
		if octet {
			fmt.Fprintf(w, "%d %s", len(m), m)
		} else {
			w.WriteString(m)
			w.WriteByte('\n')
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return closeAndWait(c)
}

// closeAndWait closes the write side of c and waits for the server to close
// its side, so every byte is known to have been read when it returns nil.
func closeAndWait(c net.Conn) error {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	if err := tc.CloseWrite(); err != nil {
		return err
	}
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	var b [1]byte
	if _, err := c.Read(b[:]); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("server did not close cleanly: %w", err)
	}
	return nil
}

// SendUDP sends messages from..to-1 of run as datagrams, pausing briefly
// every burst so the test measures the relay, not the loopback's queues.
func SendUDP(addr, run string, from, to int) error {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	for i := from; i < to; i++ {
		if _, err := c.Write([]byte(SeqMessage(run, i))); err != nil {
			return err
		}
		if i%500 == 499 {
			time.Sleep(time.Millisecond)
		}
	}
	return nil
}

// SendRaw writes s as is on one TCP connection and waits until the server
// has read it all and closed.
func SendRaw(addr, s string) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Write([]byte(s)); err != nil {
		return err
	}
	return closeAndWait(c)
}

// SendUnixgram sends messages from..to-1 of run to a Unix datagram socket.
func SendUnixgram(path, run string, from, to int) error {
	c, err := net.Dial("unixgram", path)
	if err != nil {
		return err
	}
	defer c.Close()
	for i := from; i < to; i++ {
		if _, err := c.Write([]byte(SeqMessage(run, i))); err != nil {
			return err
		}
	}
	return nil
}

// HTTPGet returns the body at url, or "" on any error.
func HTTPGet(url string) string {
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
