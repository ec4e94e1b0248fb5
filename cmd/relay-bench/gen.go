package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// clock is the harness's monotonic time base, shared by generator and sink.
type clock struct{ base time.Time }

func newClock() *clock { return &clock{base: time.Now()} }

// now is the time since the base; time.Since reads the monotonic clock.
func (c *clock) now() time.Duration { return time.Since(c.base) }

// framing is how messages are delimited on the wire.
type framing int

const (
	framingOctet framing = iota // RFC 6587 octet counting: "LEN MSG"
	framingLF                   // RFC 6587 non-transparent: "MSG\n"
	framingNone                 // one message per datagram
)

func (f framing) String() string {
	switch f {
	case framingOctet:
		return "octet-counting"
	case framingLF:
		return "lf"
	}
	return "datagram"
}

func parseFramingFlag(s string) (framing, error) {
	switch s {
	case "octet", "octet-counting":
		return framingOctet, nil
	case "lf":
		return framingLF, nil
	}
	return 0, fmt.Errorf("unknown framing %q: use octet or lf", s)
}

// loadSpec is what a generator sends. Sending stops at Count messages or
// after Duration, whichever comes first.
type loadSpec struct {
	Proto    string  // "tcp" or "udp"
	Framing  framing // for tcp
	Conns    int     // connections (tcp) or sockets (udp), each its own goroutine
	Rate     float64 // messages per second over all connections; 0 is as fast as possible
	Count    uint64  // messages at most, over all connections
	Duration time.Duration
	Size     int // bytes per message, framing excluded
}

// generator sends sequence-numbered load. Connection c of N sends the
// sequence numbers c, c+N, c+2N, …, so the numbers sent are known exactly
// from the per-connection counts.
type generator struct {
	spec  loadSpec
	tag   string
	clock *clock
	// sent counts, per connection, messages handed to the kernel (flushed).
	sent []atomic.Uint64
}

func newGenerator(spec loadSpec, run string, c *clock) (*generator, error) {
	if spec.Conns < 1 {
		return nil, errors.New("at least one connection is needed")
	}
	if spec.Duration <= 0 || spec.Count == 0 {
		return nil, errors.New("a load needs a count and a duration")
	}
	if _, err := newTemplate(run, spec.Size); err != nil {
		return nil, err
	}
	return &generator{spec: spec, tag: run, clock: c, sent: make([]atomic.Uint64, spec.Conns)}, nil
}

// totalSent is the number of messages handed to the kernel so far.
func (g *generator) totalSent() uint64 {
	var n uint64
	for i := range g.sent {
		n += g.sent[i].Load()
	}
	return n
}

// sentSet returns the sequence numbers sent so far.
func (g *generator) sentSet() seqSet {
	s := seqSet{conns: uint64(len(g.sent)), sent: make([]uint64, len(g.sent))}
	for i := range g.sent {
		s.sent[i] = g.sent[i].Load()
	}
	return s
}

// run sends to addr until the count or duration is reached or ctx ends,
// and returns the errors of its connections, joined.
func (g *generator) run(ctx context.Context, addr string) error {
	n := uint64(g.spec.Conns)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for c := range n {
		limit := (g.spec.Count + n - 1 - c) / n // how many of c, c+n, … are below Count
		rate := g.spec.Rate / float64(n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[c] = g.conn(ctx, addr, c, limit, rate)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// conn is one connection's send loop. At a fixed rate it sends whatever is
// due in bursts and flushes each burst, so a message waits in the
// generator for at most one burst; at full speed it flushes every burst of
// maxBurst messages. The duration is checked between bursts, so the count
// of messages sent stays exact; only a cancelled ctx interrupts a write.
func (g *generator) conn(ctx context.Context, addr string, c, limit uint64, rate float64) error {
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, g.spec.Proto, addr)
	if err != nil {
		return fmt.Errorf("connection %d: %w", c, err)
	}
	defer conn.Close()
	tmpl, _ := newTemplate(g.tag, g.spec.Size)
	n := uint64(g.spec.Conns)
	var burst func(k, count uint64) (sent uint64, err error)
	if g.spec.Proto == "udp" {
		burst, err = g.udpBurst(conn.(*net.UDPConn), tmpl, c)
		if err != nil {
			return err
		}
	} else {
		// A stop must not wait for a target that stopped reading.
		stop := context.AfterFunc(ctx, func() { _ = conn.SetWriteDeadline(time.Now()) })
		defer stop()
		w := bufio.NewWriterSize(conn, 64<<10)
		buf, off := tmpl.frame(g.spec.Framing)
		burst = func(k, count uint64) (uint64, error) {
			for i := range count {
				tmpl.stamp(buf, off, c+(k+i)*n, int64(g.clock.now()))
				_, _ = w.Write(buf) // an error sticks; Flush reports it
			}
			if err := w.Flush(); err != nil {
				return 0, err
			}
			return count, nil
		}
	}

	const maxBurst = 4096
	start := g.clock.now()
	end := start + g.spec.Duration
	var k uint64 // messages of this connection sent
	var firstErr error
	for now := start; k < limit && now < end && ctx.Err() == nil; now = g.clock.now() {
		due := limit
		if rate > 0 {
			due = min(limit, uint64((now-start).Seconds()*rate)+1)
			if due <= k {
				next := start + time.Duration(float64(k)/rate*1e9)
				sleep(ctx, min(max(next-now, 50*time.Microsecond), end-now))
				continue
			}
		}
		sent, err := burst(k, min(due-k, maxBurst))
		k += sent
		g.sent[c].Store(k)
		if err != nil {
			if ctx.Err() != nil {
				return nil // stopped while blocked on the target
			}
			if g.spec.Proto == "tcp" || sent == 0 && k == 0 {
				return fmt.Errorf("connection %d: %w", c, err)
			}
			// A refused datagram (an ICMP error from an earlier one) is
			// not sent; keep going and report the first such error.
			if firstErr == nil {
				firstErr = fmt.Errorf("connection %d: %w", c, err)
			}
		}
	}
	return firstErr
}

// udpBurst returns the burst function of a UDP socket: datagrams are
// stamped into a ring of buffers and sent udpBatch at a time.
func (g *generator) udpBurst(conn *net.UDPConn, tmpl *template, c uint64) (func(k, count uint64) (uint64, error), error) {
	const udpBatch = 64
	bufs := make([][]byte, udpBatch)
	var off int
	for i := range bufs {
		bufs[i], off = tmpl.frame(framingNone)
	}
	bs, err := newBatchSender(conn, bufs)
	if err != nil {
		return nil, err
	}
	n := uint64(g.spec.Conns)
	return func(k, count uint64) (uint64, error) {
		var sent uint64
		for sent < count {
			m := min(count-sent, udpBatch)
			now := int64(g.clock.now())
			for i := range m {
				tmpl.stamp(bufs[i], off, c+(k+sent+i)*n, now)
			}
			got, err := bs.send(int(m))
			sent += uint64(got)
			if err != nil {
				return sent, err
			}
		}
		return sent, nil
	}, nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// seqSet is the set of sequence numbers a generator sent: for connection c
// of conns, c, c+conns, … up to sent[c] of them.
type seqSet struct {
	conns uint64
	sent  []uint64
}

func (s seqSet) total() uint64 {
	var n uint64
	for _, v := range s.sent {
		n += v
	}
	return n
}

func (s seqSet) each(fn func(seq uint64)) {
	for c, n := range s.sent {
		for k := range n {
			fn(uint64(c) + k*s.conns)
		}
	}
}
