package relay

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

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
//
// A stream read through a kafka listener is read in part: its numbers are
// spread over the topic's partitions, which the group shares among its
// members, and partitions are read in no common order. A number this relay
// never sees is then no evidence of a loss (another member read it, or
// its partition is behind), so such a stream counts duplicates and late
// numbers but no gaps, and shows no holes.
//
// What a restart would forget is kept in data_dir/dedup.json: per stream,
// the highest number seen and the holes left in the window. It is written
// at most every dedupSaveInterval while messages arrive, and when the relay
// stops. At start the holes are counted as gaps (a copy that had not
// arrived by the stop will not), and each stream goes on after its highest
// number, so the numbers lost while the relay was down are holes, then
// gaps, as if it had not stopped.
type dedup struct {
	window uint64 // sequence numbers per stream window, a multiple of 64
	path   string // the state file; "" keeps nothing across restarts
	log    *slog.Logger

	mu      sync.Mutex
	streams map[streamKey]*stream
	dirty   bool      // changed since the last save
	savedAt time.Time // when the last periodic save was begun

	// saveMu serialises the writes of the state file, in the order of the
	// snapshots, and guards saveFailed.
	saveMu     sync.Mutex
	saveFailed bool

	duplicates *prometheus.CounterVec // by origin
	gaps       *prometheus.CounterVec
	late       *prometheus.CounterVec
	badStamps  prometheus.Counter
}

// dedupSaveInterval bounds how stale data_dir/dedup.json is while messages
// arrive: after a kill -9, up to this much of the numbers seen before the
// crash are taken for holes.
const dedupSaveInterval = time.Second

// dedupStateFile is the name of the state file in data_dir.
const dedupStateFile = "dedup.json"

type streamKey struct {
	origin string
	epoch  uint64
}

type stream struct {
	base     uint64   // first sequence number of the window
	highest  uint64   // base-1 for a stream restored from the state file
	seen     uint64   // bits set
	bits     []uint64 // bit (seq - base) % window set when seen
	lastUsed time.Time
	// partial: some of the stream came through a kafka listener; its
	// holes are not counted (see dedup).
	partial bool
}

// missing is the count of numbers from base to highest not seen, 0 for a
// stream read in part.
func (s *stream) missing() uint64 {
	if s.highest < s.base || s.partial {
		return 0
	}
	return s.highest - s.base + 1 - s.seen
}

// maxStreams bounds the origin/epoch pairs tracked; the least recently used
// is forgotten first.
const maxStreams = 1024

// maxOriginLen bounds an origin's length in bytes. An origin comes from
// the network and is a label of every dedup series: a longer one, or one
// that is not UTF-8 (which the metrics library refuses with a panic), is
// not checked.
const maxOriginLen = 256

func validOrigin(origin string) bool {
	return len(origin) <= maxOriginLen && utf8.ValidString(origin)
}

var (
	dedupMissingDesc = prometheus.NewDesc("relay_dedup_window_missing",
		"Sequence numbers below the highest one seen that have not arrived yet, per origin relay: gaps unless a late copy arrives.",
		[]string{"origin"}, nil)
)

// newDedup returns the dedup table, with the streams a previous run kept
// in dataDir ("": none, and nothing is kept).
func newDedup(window int, reg prometheus.Registerer, dataDir string, log *slog.Logger) (*dedup, error) {
	w := uint64(window+63) / 64 * 64
	d := &dedup{
		window:  w,
		log:     log,
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
		badStamps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "relay_dedup_invalid_stamps_total",
			Help: "Stamped messages whose origin is not UTF-8 or is longer than 256 bytes; passed on without a duplicate check.",
		}),
	}
	for _, c := range []prometheus.Collector{d.duplicates, d.gaps, d.late, d.badStamps, d} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	if dataDir != "" {
		d.path = filepath.Join(dataDir, dedupStateFile)
		d.restore()
	}
	return d, nil
}

// check reports whether the message stamped (origin, epoch, seq) is a
// duplicate.
func (d *dedup) check(origin string, epoch, seq uint64, now time.Time) (duplicate bool) {
	return d.checkFrom(origin, epoch, seq, now, false)
}

// checkFrom is check; partial says the message came through a listener
// that reads only part of its stream (a kafka listener): the stream's
// holes are then not gaps.
func (d *dedup) checkFrom(origin string, epoch, seq uint64, now time.Time, partial bool) (duplicate bool) {
	if !validOrigin(origin) {
		d.badStamps.Inc()
		return false
	}
	d.mu.Lock()
	duplicate = d.checkLocked(origin, epoch, seq, now, partial)
	d.dirty = true
	var snap []savedStream
	// One caller saves per interval; one that finds a save still being
	// written leaves it to the next interval rather than wait.
	if d.path != "" && now.Sub(d.savedAt) >= dedupSaveInterval && d.saveMu.TryLock() {
		d.savedAt = now
		snap = d.snapshotLocked()
	}
	d.mu.Unlock()
	if snap != nil {
		d.writeLocked(snap, false)
		d.saveMu.Unlock()
	}
	return duplicate
}

func (d *dedup) checkLocked(origin string, epoch, seq uint64, now time.Time, partial bool) (duplicate bool) {
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
		s = &stream{base: seq, highest: seq}
		d.streams[key] = s
	}
	s.lastUsed = now
	s.partial = s.partial || partial
	if s.bits == nil { // new, or restored from the state file
		s.bits = make([]uint64, d.window/64)
	}
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
	s.seen++
	s.highest = max(s.highest, seq)
	return false
}

// forget unmarks seq of (origin, epoch): its message was refused by a
// queue and will be read again, and must not then be taken for a copy.
func (d *dedup) forget(origin string, epoch, seq uint64) {
	if !validOrigin(origin) {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.streams[streamKey{origin, epoch}]
	if s == nil || s.bits == nil || seq < s.base || seq-s.base >= d.window {
		return
	}
	i := seq % d.window
	word, bit := i/64, uint64(1)<<(i%64)
	if s.bits[word]&bit != 0 {
		s.bits[word] &^= bit
		s.seen--
	}
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
		} else {
			s.seen--
		}
		s.bits[word] &^= bit
	}
	if newBase > end {
		gaps += newBase - end // a jump past a whole window: all unseen
	}
	s.base = newBase
	if gaps > 0 && !s.partial {
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
	// Forged origins without end must not leave series without end: an
	// origin's series go with its last stream.
	for k := range d.streams {
		if k.origin == oldest.origin {
			return
		}
	}
	for _, v := range []*prometheus.CounterVec{d.duplicates, d.gaps, d.late} {
		v.DeleteLabelValues(oldest.origin)
	}
}

// Describe and Collect export the holes inside each stream's window.
func (d *dedup) Describe(ch chan<- *prometheus.Desc) { ch <- dedupMissingDesc }

func (d *dedup) Collect(ch chan<- prometheus.Metric) {
	d.mu.Lock()
	missing := map[string]float64{}
	for k, s := range d.streams {
		missing[k.origin] += float64(s.missing())
	}
	d.mu.Unlock()
	for origin, v := range missing {
		ch <- prometheus.MustNewConstMetric(dedupMissingDesc, prometheus.GaugeValue, v, origin)
	}
}

// savedStream is one stream in the state file.
type savedStream struct {
	Origin   string `json:"origin"`
	Epoch    uint64 `json:"epoch"`
	Highest  uint64 `json:"highest"`
	Missing  uint64 `json:"missing"`   // holes in the window when saved
	LastUsed int64  `json:"last_used"` // Unix seconds
	Partial  bool   `json:"partial,omitempty"`
}

type savedDedup struct {
	Streams []savedStream `json:"streams"`
}

// snapshotLocked returns what the state file keeps. d.mu must be held.
func (d *dedup) snapshotLocked() []savedStream {
	d.dirty = false
	out := make([]savedStream, 0, len(d.streams))
	for k, s := range d.streams {
		out = append(out, savedStream{Origin: k.origin, Epoch: k.epoch, Highest: s.highest,
			Missing: s.missing(), LastUsed: s.lastUsed.Unix(), Partial: s.partial})
	}
	return out
}

// save writes the state file if anything changed since the last write;
// the relay calls it when it stops, after its listeners have ended.
func (d *dedup) save() {
	if d.path == "" {
		return
	}
	d.saveMu.Lock()
	defer d.saveMu.Unlock()
	d.mu.Lock()
	if !d.dirty {
		d.mu.Unlock()
		return
	}
	snap := d.snapshotLocked()
	d.mu.Unlock()
	d.writeLocked(snap, true)
}

// writeLocked replaces the state file with streams; sync makes it durable
// (at stop). A failure is logged once until a write succeeds again: the
// relay runs on, and a restart then forgets what the file missed. d.saveMu
// must be held.
func (d *dedup) writeLocked(streams []savedStream, sync bool) {
	err := writeFileAtomic(d.path, savedDedup{Streams: streams}, sync)
	switch {
	case err != nil && !d.saveFailed:
		d.saveFailed = true
		d.log.Warn("dedup: cannot keep the streams' state for a restart; a restart will not count the numbers lost meanwhile as gaps", "err", err)
	case err == nil && d.saveFailed:
		d.saveFailed = false
		d.log.Info("dedup: keeping the streams' state again", "file", d.path)
	}
}

// writeFileAtomic writes v as JSON to a temporary file renamed over path,
// so a crash leaves the old file or the new one, never a torn one.
func writeFileAtomic(path string, v any, sync bool) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp) // a full disk must not keep a half-written file
	}
	return err
}

// restore loads the streams a previous run kept, counts the holes they
// had as gaps, and sets each to go on after its highest number. A missing
// file is a first run; an unreadable one is logged and ignored.
func (d *dedup) restore() {
	b, err := os.ReadFile(d.path)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	var saved savedDedup
	if err == nil {
		err = json.Unmarshal(b, &saved)
	}
	if err != nil {
		d.log.Warn("dedup: ignoring the state of the last run; numbers lost while the relay was down are not counted as gaps",
			"err", fmt.Errorf("read %s: %w", d.path, err))
		return
	}
	// The most recently used first, as many as the table holds.
	sort.Slice(saved.Streams, func(i, j int) bool { return saved.Streams[i].LastUsed > saved.Streams[j].LastUsed })
	var gaps uint64
	for _, ss := range saved.Streams {
		if len(d.streams) >= maxStreams {
			break
		}
		key := streamKey{ss.Origin, ss.Epoch}
		if _, dup := d.streams[key]; dup || ss.Highest == 0 || !validOrigin(ss.Origin) {
			continue
		}
		// The window is allocated when the stream is next heard from: a
		// stream that never comes back costs no window.
		d.streams[key] = &stream{base: ss.Highest + 1, highest: ss.Highest, lastUsed: time.Unix(ss.LastUsed, 0), partial: ss.Partial}
		if ss.Missing > 0 && !ss.Partial {
			d.gaps.WithLabelValues(ss.Origin).Add(float64(ss.Missing))
			gaps += ss.Missing
		}
	}
	d.log.Info("dedup: streams restored from the last run", "streams", len(d.streams), "gaps_at_stop", gaps)
}
