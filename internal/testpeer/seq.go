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

// Order is what CheckOrder found in the arrivals of one run.
type Order struct {
	Replays    int      // steps back to a number delivered before
	Violations []string // each break of the order, described; at most 10
	broken     int
}

// Ok reports whether the arrivals kept the order.
func (o Order) Ok() bool { return o.broken == 0 }

func (o Order) String() string {
	return fmt.Sprintf("%d replays, %d order violations %v", o.Replays, o.broken, o.Violations)
}

func (o *Order) violate(format string, args ...any) {
	o.broken++
	if len(o.Violations) < 10 {
		o.Violations = append(o.Violations, fmt.Sprintf(format, args...))
	}
}

// CheckOrder checks that the sequence numbers of run arrived in order, as
// a relay that replays unconfirmed messages after a failure delivers them:
//
//   - a number that arrives for the first time is higher than every number
//     that arrived before it (numbers may be missing: a sender's messages
//     lost before the relay accepted them);
//   - a number that arrives again, at or below the one before it, starts a
//     replay: from there the arrivals repeat, in increasing order, every
//     number that had arrived above it, a whole suffix, before any new
//     number comes (a replay may itself be cut short by another one).
func CheckOrder(run string, msgs []string) Order {
	var o Order
	var order []int // first arrivals, increasing while the order holds
	seen := map[int]bool{}
	prev, next := -1, -1 // next: index in order that a replay expects, -1 outside one
	for _, m := range msgs {
		sub := seqRE.FindStringSubmatch(m)
		if sub == nil || sub[1] != run {
			continue
		}
		n, err := strconv.Atoi(sub[2])
		if err != nil {
			continue
		}
		switch {
		case !seen[n]:
			if len(order) > 0 && n < order[len(order)-1] {
				o.violate("%d arrived for the first time after %d", n, order[len(order)-1])
			}
			if next >= 0 && next < len(order) {
				o.violate("new %d arrived in a replay before %d was repeated", n, order[next])
			}
			seen[n] = true
			order = append(order, n)
			next = -1
		case n <= prev:
			o.Replays++
			next = sort.SearchInts(order, n) + 1
		case next >= 0 && next < len(order) && order[next] == n:
			next++
		default:
			want := "a step back"
			if next >= 0 && next < len(order) {
				want = strconv.Itoa(order[next])
			}
			o.violate("%d arrived again where %s was due", n, want)
		}
		prev = n
	}
	return o
}
