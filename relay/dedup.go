package relay

import (
	"math/bits"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relay-syslog/relay/internal/syslog"
	"github.com/relay-syslog/relay/outputs"
)

// readStamp finds the stamp of the relay that sent msg, if any.
func readStamp(m *syslog.Message) (origin string, epoch, seq uint64, ok bool) {
	if len(m.StructuredData) == 0 {
		return "", 0, 0, false
	}
	o, ok1 := syslog.LookupSDParam(m.StructuredData, outputs.StampSDID, "origin")
	e, ok2 := syslog.LookupSDParam(m.StructuredData, outputs.StampSDID, "epoch")
	q, ok3 := syslog.LookupSDParam(m.StructuredData, outputs.StampSDID, "seq")
	if !ok1 || !ok2 || !ok3 {
		return "", 0, 0, false
	}
	epoch, err1 := strconv.ParseUint(e.Value(), 10, 32)
	seq, err2 := strconv.ParseUint(q.Value(), 10, 64)
	if err1 != nil || err2 != nil || seq == 0 {
		return "", 0, 0, false
	}
	return o.Value(), epoch, seq, true
}

// dedup drops the second copy of a message that reached this relay over
// two paths, recognised by the stamp of the relay that sent it. It keeps,
// per origin relay and epoch (one run of that relay), a sliding window of
// the sequence numbers seen; everything is bounded: the window size and the
// number of streams tracked.
//
// Counting: a sequence number seen twice is a duplicate (dropped); one that
// leaves the window without having been seen is a gap (lost on every path);
// one older than the window is late (passed on, since it cannot be judged).
// Holes still inside the window are exported as a gauge, so gaps at the end
// of a stream are visible before the window moves past them.
type dedup struct {
	window uint64 // sequence numbers per stream window, a multiple of 64

	mu      sync.Mutex
	streams map[streamKey]*stream

	duplicates *prometheus.CounterVec // by origin
	gaps       *prometheus.CounterVec
	late       *prometheus.CounterVec
}

type streamKey struct {
	origin string
	epoch  uint64
}

type stream struct {
	base     uint64 // first sequence number of the window
	highest  uint64
	bits     []uint64 // bit (seq - base) % window set when seen
	lastUsed time.Time
}

// maxStreams bounds the origin/epoch pairs tracked; the least recently used
// is forgotten first.
const maxStreams = 1024

var (
	dedupMissingDesc = prometheus.NewDesc("relay_dedup_window_missing",
		"Sequence numbers below the highest one seen that have not arrived yet, per origin relay: gaps unless a late copy arrives.",
		[]string{"origin"}, nil)
)

func newDedup(window int, reg prometheus.Registerer) (*dedup, error) {
	w := uint64(window+63) / 64 * 64
	d := &dedup{
		window:  w,
		streams: map[streamKey]*stream{},
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_dedup_duplicates_total",
			Help: "Messages dropped because the same origin relay's sequence number had already arrived (the second copy of a dual-path message), per origin.",
		}, []string{"origin"}),
		gaps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_dedup_gaps_total",
			Help: "Sequence numbers of an origin relay that never arrived on any path before the window moved past them, per origin.",
		}, []string{"origin"}),
		late: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_dedup_late_total",
			Help: "Stamped messages older than the dedup window; passed on without a duplicate check, per origin.",
		}, []string{"origin"}),
	}
	for _, c := range []prometheus.Collector{d.duplicates, d.gaps, d.late, d} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// check reports whether the message stamped (origin, epoch, seq) is a
// duplicate.
func (d *dedup) check(origin string, epoch, seq uint64, now time.Time) (duplicate bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	key := streamKey{origin, epoch}
	s := d.streams[key]
	if s == nil {
		if len(d.streams) >= maxStreams {
			d.evictOldest()
		}
		// An origin's series exist from its first stamped message, so that
		// increase() sees its first gap.
		for _, v := range []*prometheus.CounterVec{d.duplicates, d.gaps, d.late} {
			v.WithLabelValues(origin)
		}
		s = &stream{base: seq, highest: seq, bits: make([]uint64, d.window/64)}
		d.streams[key] = s
	}
	s.lastUsed = now
	switch {
	case seq < s.base:
		d.late.WithLabelValues(origin).Inc()
		return false
	case seq >= s.base+d.window:
		d.slide(s, origin, seq-d.window+1)
	}
	i := seq % d.window
	word, bit := i/64, uint64(1)<<(i%64)
	if s.bits[word]&bit != 0 {
		d.duplicates.WithLabelValues(origin).Inc()
		return true
	}
	s.bits[word] |= bit
	s.highest = max(s.highest, seq)
	return false
}

// slide moves s's window to start at newBase, counting the numbers that
// leave it unseen as gaps. Bits are indexed by seq modulo the window, so
// only the numbers that leave are touched.
func (d *dedup) slide(s *stream, origin string, newBase uint64) {
	var gaps uint64
	end := min(newBase, s.base+d.window)
	for seq := s.base; seq < end; seq++ {
		i := seq % d.window
		word, bit := i/64, uint64(1)<<(i%64)
		if s.bits[word]&bit == 0 {
			gaps++
		}
		s.bits[word] &^= bit
	}
	if newBase > end {
		gaps += newBase - end // a jump past a whole window: all unseen
	}
	s.base = newBase
	if gaps > 0 {
		d.gaps.WithLabelValues(origin).Add(float64(gaps))
	}
}

func (d *dedup) evictOldest() {
	var oldest streamKey
	var t time.Time
	first := true
	for k, s := range d.streams {
		if first || s.lastUsed.Before(t) {
			oldest, t, first = k, s.lastUsed, false
		}
	}
	delete(d.streams, oldest)
}

// Describe and Collect export the holes inside each stream's window.
func (d *dedup) Describe(ch chan<- *prometheus.Desc) { ch <- dedupMissingDesc }

func (d *dedup) Collect(ch chan<- prometheus.Metric) {
	d.mu.Lock()
	missing := map[string]float64{}
	for k, s := range d.streams {
		n := s.highest - s.base + 1
		seen := 0
		for _, w := range s.bits {
			seen += bits.OnesCount64(w)
		}
		missing[k.origin] += float64(n) - float64(seen)
	}
	d.mu.Unlock()
	for origin, v := range missing {
		ch <- prometheus.MustNewConstMetric(dedupMissingDesc, prometheus.GaugeValue, v, origin)
	}
}
