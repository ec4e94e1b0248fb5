package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// sink is the counting TCP server at the end of the pipeline. It accepts
// RFC 6587 frames in either framing (detected per frame, as the relay
// does), reads the fields of each load message, and keeps a bitmap of the
// sequence numbers seen, so that loss and duplicates are exact, and a
// histogram of latencies (arrival minus the send time in the payload).
//
// It can be stopped and started again on the same address to simulate an
// upstream outage; its counts survive that.
type sink struct {
	addr  string
	run   string
	clock *clock

	mu       sync.Mutex
	ln       net.Listener
	conns    map[net.Conn]struct{}
	seen     []uint64 // bitmap of sequence numbers
	capacity uint64
	unique   uint64
	dups     uint64
	foreign  uint64 // messages without our fields, of another run, or out of range
	badFrame uint64 // connections ended by a framing error
	first    time.Duration
	last     time.Duration
	hist     histogram
	// mark, when set, records the first arrival after it: see markNext.
	markSet   bool
	markAt    time.Duration
	markCount uint64

	wg sync.WaitGroup // accept loop and connection handlers
}

// newSink listens on addr ("127.0.0.1:0" for any port) for messages of run
// with sequence numbers below capacity.
func newSink(addr, run string, capacity uint64, c *clock) (*sink, error) {
	s := &sink{
		run:      run,
		clock:    c,
		conns:    map[net.Conn]struct{}{},
		seen:     make([]uint64, (capacity+63)/64),
		capacity: capacity,
	}
	if err := s.listen(addr); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *sink) listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("sink: %w", err)
	}
	s.mu.Lock()
	s.ln = ln
	s.addr = ln.Addr().String()
	s.mu.Unlock()
	s.wg.Add(1)
	go s.accept(ln)
	return nil
}

func (s *sink) accept(ln net.Listener) {
	defer s.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return // closed by stop
		}
		s.mu.Lock()
		if s.ln != ln {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serve(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
		}()
	}
}

// stop closes the listener and every connection and waits for their
// goroutines, like an upstream that goes down. Unread data makes the
// kernel reset those connections, as it would for a crashed server.
func (s *sink) stop() {
	s.mu.Lock()
	if s.ln != nil {
		s.ln.Close()
		s.ln = nil
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// restart listens again on the same address after stop.
func (s *sink) restart() error { return s.listen(s.addr) }

// arrival is one parsed message waiting to be counted.
type arrival struct {
	seq  uint64
	sent int64
	ok   bool
}

// serve reads frames from one connection until it ends. Every read is
// parsed to its last complete frame and counted at once, under one lock
// and one clock reading: the arrival time of a message is when the read
// that completed it returned. A partial frame waits in the buffer for the
// next read, so nothing read is ever left uncounted while the sender
// pauses.
func (s *sink) serve(c net.Conn) {
	buf := make([]byte, sinkBufSize)
	batch := make([]arrival, 0, 4096)
	run := []byte(s.run)
	start, end := 0, 0
	for {
		if start > 0 && end > len(buf)/2 {
			end = copy(buf, buf[start:end])
			start = 0
		}
		n, rerr := c.Read(buf[end:])
		end += n
		for {
			msg, used, err := nextFrame(buf[start:end])
			if err != nil {
				s.count(batch)
				s.mu.Lock()
				s.badFrame++
				s.mu.Unlock()
				return
			}
			if used == 0 {
				break // incomplete: read more
			}
			start += used
			if msg == nil {
				continue // stray line end
			}
			tag, seq, sent, perr := parseFields(msg)
			batch = append(batch, arrival{seq: seq, sent: sent, ok: perr == nil && string(tag) == string(run)})
		}
		s.count(batch)
		batch = batch[:0]
		if rerr != nil {
			if !errors.Is(rerr, io.EOF) && !isNetError(rerr) {
				s.mu.Lock()
				s.badFrame++
				s.mu.Unlock()
			}
			return
		}
	}
}

// sinkBufSize is the read buffer of a sink connection; a frame longer than
// half of it is a framing error.
const sinkBufSize = 1 << 20

// isNetError reports a socket error (a reset, a closed connection), as
// opposed to bad framing.
func isNetError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) || errors.Is(err, net.ErrClosed)
}

func (s *sink) count(batch []arrival) {
	if len(batch) == 0 {
		return
	}
	now := s.clock.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.markSet {
		s.markSet = false
		s.markAt, s.markCount = now, s.unique
	}
	if s.first == 0 {
		s.first = now
	}
	s.last = now
	for _, a := range batch {
		if !a.ok || a.seq >= s.capacity {
			s.foreign++
			continue
		}
		w, bit := a.seq/64, uint64(1)<<(a.seq%64)
		if s.seen[w]&bit != 0 {
			s.dups++
			continue
		}
		s.seen[w] |= bit
		s.unique++
		s.hist.add(time.Duration(int64(now) - a.sent))
	}
}

var errFraming = errors.New("bad framing")

// nextFrame splits the first frame off b, in either framing (RFC 6587,
// detected per frame). It returns the message and the bytes used; used is
// 0 when b holds no complete frame yet; a lone CR or LF between frames is
// used with a nil message.
func nextFrame(b []byte) (msg []byte, used int, err error) {
	if len(b) == 0 {
		return nil, 0, nil
	}
	if b[0] == '\n' || b[0] == '\r' {
		return nil, 1, nil
	}
	if b[0] >= '1' && b[0] <= '9' {
		sp := bytes.IndexByte(b[:min(len(b), 11)], ' ')
		if sp < 0 {
			if len(b) >= 11 {
				return nil, 0, fmt.Errorf("%w: octet count %q", errFraming, b[:11])
			}
			return nil, 0, nil
		}
		n, ok := readDigits(b[:sp])
		if !ok || n > sinkBufSize/2 {
			return nil, 0, fmt.Errorf("%w: octet count %q", errFraming, b[:sp])
		}
		if uint64(len(b)-sp-1) < n {
			return nil, 0, nil
		}
		return b[sp+1 : sp+1+int(n)], sp + 1 + int(n), nil
	}
	lf := bytes.IndexByte(b, '\n')
	if lf < 0 {
		if len(b) > sinkBufSize/2 {
			return nil, 0, fmt.Errorf("%w: line longer than %d bytes", errFraming, sinkBufSize/2)
		}
		return nil, 0, nil
	}
	return b[:lf], lf + 1, nil
}

// sinkStats is a snapshot of a sink's counts.
type sinkStats struct {
	Unique, Dups, Foreign, BadFrames uint64
	First, Last                      time.Duration
	P50, P99, Max                    time.Duration
}

func (s *sink) stats() sinkStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sinkStats{
		Unique: s.unique, Dups: s.dups, Foreign: s.foreign, BadFrames: s.badFrame,
		First: s.first, Last: s.last,
		P50: s.hist.quantile(0.50), P99: s.hist.quantile(0.99), Max: s.hist.max,
	}
}

// uniqueCount is the number of distinct sequence numbers received so far.
func (s *sink) uniqueCount() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unique
}

// markNext arranges for the time of the next arrival, and the unique count
// before it, to be recorded; mark returns them once it happened.
func (s *sink) markNext() {
	s.mu.Lock()
	s.markSet, s.markAt = true, 0
	s.mu.Unlock()
}

func (s *sink) mark() (at time.Duration, uniqueBefore uint64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.markAt, s.markCount, !s.markSet && s.markAt != 0
}

// missing counts the sequence numbers in sent that never arrived.
func (s *sink) missing(sent seqSet) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n uint64
	sent.each(func(seq uint64) {
		if seq >= s.capacity || s.seen[seq/64]&(1<<(seq%64)) == 0 {
			n++
		}
	})
	return n
}
