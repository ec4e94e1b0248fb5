package outputs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relay-syslog/relay/internal/syslog"
	"github.com/relay-syslog/relay/metrics"
	"github.com/relay-syslog/relay/queue"
)

// DefaultMaxUnsettledBytes is WorkerOptions.MaxUnsettledBytes when it is 0.
const DefaultMaxUnsettledBytes = 16 << 20

// dropReasons are the reasons relay_output_messages_dropped_total counts
// for any output.
var dropReasons = []string{queue.ReasonQueueFull, queue.ReasonEvicted, queue.ReasonDiskFull, queue.ReasonDiskError, queue.ReasonTooLarge, queue.ReasonClosed, queue.ReasonLostAtStop}

// WorkerOptions configures a Worker.
type WorkerOptions struct {
	Name         string // output name, the metrics label
	RetryInitial time.Duration
	RetryMax     time.Duration
	// SettleTick is how often unconfirmed batches are checked while no new
	// batch arrives.
	SettleTick time.Duration
	// MaxUnsettledBytes bounds the memory held by batches written but not
	// yet confirmed; past it the Worker waits for confirmations. It is the
	// largest the unconfirmed window grows to (see Worker.window).
	MaxUnsettledBytes int
	// StallTimeout, when set, is how long messages written may wait with
	// nothing confirmed before the connection counts as failed, as a write
	// blocked that long does (an output's write_timeout). Without it an
	// upstream that accepts and never reads looks healthy until a write
	// blocks, and then for as long as the write's own timeout.
	StallTimeout time.Duration
	// Format is what the output writes; Normalize holds, per listener
	// name, how its messages are completed when they are converted.
	Format    Format
	Normalize map[string]Normalize
	// StampOrigin, when set (with Format RFC5424 or JSON), stamps every
	// message with the relay's sequence number under this origin id.
	StampOrigin string
	// Template, when set, lays out every message instead of Format.
	Template *Template
	// SummaryEvery is how often, at most, an output that keeps failing
	// logs that it still is (DefaultSummaryEvery when 0). The outage's
	// start and end are logged once each; single attempts only at debug
	// level.
	SummaryEvery time.Duration
}

// DefaultSummaryEvery is the default WorkerOptions.SummaryEvery.
const DefaultSummaryEvery = 5 * time.Minute

// Worker drains one queue into one Destination. Run is its only goroutine.
type Worker struct {
	opts    WorkerOptions
	q       Queue
	dest    Destination
	metrics *metrics.Metrics
	log     *slog.Logger

	retry  backoff
	format formatter
	// unsettled holds batches written on the current connection, in order,
	// with the destination offset at the end of each.
	unsettled      []sentBatch
	unsettledBytes int
	// resend holds batches to send again, in order, after a broken
	// connection; they go out before anything new is taken from the queue.
	resend []*queue.Batch
	// window is how many bytes may be written and not yet confirmed.
	// Whatever is unconfirmed when a connection breaks is sent again, so
	// the window bounds what a break costs. An upstream that resets every
	// session after a fixed number of bytes (a receiver or middlebox that
	// caps a session's length) resets it before anything written in one
	// burst larger than the cap is confirmed; a next connection sending the
	// same burst would never get further. So, much as TCP does with its
	// congestion window, the window halves at every connection that broke
	// with something unconfirmed when the connection before it broke so
	// too (a single break is an upstream restart, not a pattern), down to
	// minWindow; it doubles per window confirmed while it is below
	// growthStep, and above that grows by growthStep per window confirmed,
	// up to MaxUnsettledBytes. Against a session cap of N bytes it settles
	// near sqrt(N × growthStep), so a session mostly carries new messages.
	// Confirming what the peer's kernel acknowledged before a reset instead
	// would not be sound: the peer process may never have read it.
	window int
	// onConn is set while a connection is open, confirmedOnConn once a
	// batch written on it was confirmed; lossyBreak tells whether the last
	// connection broke with messages unconfirmed.
	onConn, confirmedOnConn, lossyBreak bool
	everConnected                       bool
	// confirmed lists the batches confirmed on the current connection,
	// oldest first, at most maxConfirmedSpans of them.
	confirmed []confirmedSpan
	// movedAt is when the oldest unconfirmed message was written or,
	// when later, when a batch was last confirmed: the start of a stall.
	movedAt time.Time
	// outage is the current run of failures; its start is zero while the
	// output delivers.
	outage outage
	// handover is cancelled by Handover.
	handover        context.Context
	requestHandover context.CancelFunc
}

// outage is a run of failed attempts, logged as one event rather than one
// line per attempt: an upstream that is down for an hour is one problem.
type outage struct {
	since       time.Time
	attempts    int   // failed attempts since
	peak        int64 // the most records seen waiting in the queue
	lastSummary time.Time
}

type sentBatch struct {
	batch *queue.Batch
	end   int64
	bytes int
}

// unreadReporter is a destination whose confirmation rests on the peer's
// kernel, not its process: TCP and TLS. See TCP.UnreadFrom.
type unreadReporter interface {
	UnreadFrom(err error) int64
}

// confirmedSpan is a batch confirmed on the current connection: where it
// ended and how many messages it held.
type confirmedSpan struct {
	end      int64
	messages int
}

// maxConfirmedSpans bounds what a worker remembers of the batches confirmed
// on its connection, for counting possibly lost messages at a reset. A
// peer's socket buffer is a few MiB; at one message per batch (a slow
// trickle) this still covers several MiB of 200-byte messages.
const maxConfirmedSpans = 1 << 16

// NewWorker returns a Worker for dest fed by q.
func NewWorker(opts WorkerOptions, q Queue, dest Destination, m *metrics.Metrics, log *slog.Logger) *Worker {
	if opts.SettleTick == 0 {
		opts.SettleTick = 20 * time.Millisecond
	}
	if opts.MaxUnsettledBytes == 0 {
		opts.MaxUnsettledBytes = DefaultMaxUnsettledBytes
	}
	if opts.SummaryEvery == 0 {
		opts.SummaryEvery = DefaultSummaryEvery
	}
	exportZeros(opts, m)
	w := &Worker{
		opts:    opts,
		window:  opts.MaxUnsettledBytes,
		q:       q,
		dest:    dest,
		metrics: m,
		log:     log.With("output", opts.Name, "destination", dest.String()),
		retry:   backoff{initial: opts.RetryInitial, max: opts.RetryMax},
		format: formatter{
			format:      opts.Format,
			normalize:   opts.Normalize,
			stampOrigin: opts.StampOrigin,
			template:    opts.Template,
			problems:    m.ParseProblems.MustCurryWith(prometheus.Labels{"output": opts.Name}),
		},
	}
	if pw, ok := dest.(pathWriter); ok {
		w.format.path = pw.PathTemplate()
	}
	w.handover, w.requestHandover = context.WithCancel(context.Background())
	return w
}

// pathWriter is a destination that writes each message to a path rendered
// from its fields (a file output with a path template): the worker's
// formatter renders the paths, since it parses the messages anyway.
type pathWriter interface {
	PathTemplate() *Template
	WritePaths(ctx context.Context, entries []queue.Entry, paths [][]byte) (int64, error)
}

// exportZeros creates every series of the output at 0, so that the first
// scrape shows them and increase() sees the first event of each.
func exportZeros(opts WorkerOptions, m *metrics.Metrics) {
	name := opts.Name
	for _, v := range []*prometheus.CounterVec{m.OutputSent, m.OutputBytes, m.OutputErrors, m.OutputRetries, m.OutputResent, m.OutputPossiblyLost} {
		v.WithLabelValues(name)
	}
	m.OutputUp.WithLabelValues(name)
	m.OutputLastDelivery.WithLabelValues(name)
	m.OutputWindow.WithLabelValues(name).Set(float64(opts.MaxUnsettledBytes))
	for _, r := range dropReasons {
		m.OutputDropped.WithLabelValues(name, r)
	}
	if opts.Format == Raw {
		return // nothing is parsed
	}
	for listener := range opts.Normalize {
		for _, p := range syslog.Problems() {
			m.ParseProblems.WithLabelValues(name, listener, p.String())
		}
	}
}

// Run sends until ctx is cancelled. Batches not yet confirmed stay in the
// queue's in-flight journal, so a stop at any point loses nothing: the next
// start sends them again. Run never waits for an upstream after ctx ends.
func (w *Worker) Run(ctx context.Context) {
	defer w.dest.Close()
	// Connect at once, so that relay_output_up tells the truth about an
	// output that has had nothing to send yet.
	if !w.dest.Connected() {
		if err := w.dest.Connect(ctx); err != nil {
			w.metrics.OutputUp.WithLabelValues(w.opts.Name).Set(0)
			w.metrics.OutputErrors.WithLabelValues(w.opts.Name).Inc()
			if ctx.Err() == nil {
				w.failed(fmt.Errorf("connect: %w", err), 0)
			}
		} else {
			w.connected()
			w.metrics.OutputUp.WithLabelValues(w.opts.Name).Set(1)
			w.log.Info("connected")
		}
	}
	defer w.requeueOnHandover()
	// A handover ends the wait for the queue and the backoff after a failure
	// (the successor sends those batches); it does not interrupt a write.
	next, stopNext := context.WithCancel(ctx)
	defer stopNext()
	defer context.AfterFunc(w.handover, stopNext)()
	for ctx.Err() == nil {
		if err := w.settle(); err != nil {
			w.fail(next, fmt.Errorf("connection check: %w", err), nil)
			continue
		}
		if w.handover.Err() != nil {
			if len(w.unsettled) == 0 {
				return
			}
			w.sleep(ctx, w.opts.SettleTick)
			continue
		}
		if err := w.stalled(time.Now()); err != nil {
			w.fail(next, err, nil)
			continue
		}
		b, err := w.nextBatch(next)
		if err != nil {
			if next.Err() == nil {
				w.log.Error("read queue", "err", err)
				w.sleep(ctx, w.retry.Next())
			}
			continue
		}
		if b == nil {
			continue // nothing new; settle again
		}
		if err := w.send(ctx, b); err != nil {
			w.fail(next, err, b)
		}
	}
	w.settleAtStop()
}

// stopSettleMax bounds how long a stopping worker waits for the upstream to
// confirm what it wrote.
const stopSettleMax = 2 * time.Second

// settleAtStop gives the destination a last chance, up to stopSettleMax, to
// confirm what was written: a batch left unconfirmed at a clean stop stays
// in the queue's journal and goes out again after the restart, a duplicate
// (a file output confirms at once; a TCP upstream after confirm_delay).
// Nothing new is sent meanwhile.
func (w *Worker) settleAtStop() {
	if w.handover.Err() != nil {
		return // the successor sends what is unsettled
	}
	deadline := time.Now().Add(stopSettleMax)
	for len(w.unsettled) > 0 && w.dest.Connected() {
		if err := w.settle(); err != nil || len(w.unsettled) == 0 {
			return
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			return
		}
		time.Sleep(min(w.opts.SettleTick, wait))
	}
}

// Pending returns, after Run has returned, the batches this worker took from
// the queue and did not settle, in order: a worker that replaces this one on
// the same queue (a reload) must send them first, since the queue hands out
// each batch once per run.
func (w *Worker) Pending() []*queue.Batch {
	p := make([]*queue.Batch, 0, len(w.unsettled)+len(w.resend))
	for _, s := range w.unsettled {
		p = append(p, s.batch)
	}
	return append(p, w.resend...)
}

// Handover makes Run stop taking batches from the queue and return once the
// destination has confirmed everything written (or ctx ends, or the
// connection breaks), so that a worker replacing this one (a reload) sends
// again only what stayed unconfirmed. Those batches are counted as resent
// and returned by Pending.
func (w *Worker) Handover() { w.requestHandover() }

// requeueOnHandover moves, after a handover, the batches written and not
// confirmed to the ones to send again, counted as resent: the successor
// writes them a second time.
func (w *Worker) requeueOnHandover() {
	if w.handover.Err() == nil || len(w.unsettled) == 0 {
		return
	}
	resend := make([]*queue.Batch, 0, len(w.unsettled)+len(w.resend))
	for _, s := range w.unsettled {
		resend = append(resend, s.batch)
		w.metrics.OutputResent.WithLabelValues(w.opts.Name).Add(float64(len(s.batch.Entries)))
	}
	w.resend = append(resend, w.resend...)
	clear(w.unsettled)
	w.unsettled, w.unsettledBytes = w.unsettled[:0], 0
}

// Resume makes the worker send batches first, before Run takes new ones.
// Call it before Run.
func (w *Worker) Resume(batches []*queue.Batch) {
	w.resend = append(batches, w.resend...)
}

// nextBatch returns the next batch to send: first any to resend, then new
// ones from the queue. It returns nil without error when it only waited for
// confirmations.
func (w *Worker) nextBatch(ctx context.Context) (*queue.Batch, error) {
	if len(w.unsettled) > 0 && w.unsettledBytes >= w.window {
		w.sleep(ctx, w.settleWait())
		return nil, nil
	}
	if len(w.resend) > 0 {
		b := w.resend[0]
		w.resend = w.resend[1:]
		return b, nil
	}
	if len(w.unsettled) == 0 {
		return w.q.Next(ctx)
	}
	if b, ok, err := w.q.TryNext(); ok || err != nil {
		return b, err
	}
	// Wait for a new batch, but come back in time to settle the ones out.
	tctx, cancel := context.WithTimeout(ctx, w.opts.SettleTick)
	defer cancel()
	b, err := w.q.Next(tctx)
	if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		return nil, nil
	}
	return b, err
}

// confirmTimer is a Destination that can tell when its oldest written
// batch will be old enough to confirm (TCP's confirm_delay).
type confirmTimer interface {
	// NextConfirm returns when the oldest batch written and not yet
	// confirmed may be confirmed, if the peer has acknowledged it by
	// then; zero when none waits.
	NextConfirm() time.Time
}

// minSettleWait keeps a worker whose window is full from checking its
// connection more than once a millisecond.
const minSettleWait = time.Millisecond

// settleWait is how long a worker whose unconfirmed window is full waits
// before it checks for confirmations again: until its oldest batch may be
// confirmed, so that the window reopens as soon as the confirmation rule
// allows, and never longer than SettleTick. Waiting a whole SettleTick
// past that time held the window shut for up to 40% of each round (20 ms
// of 50), which capped one connection's output below its input. Once that
// time has passed, what holds the batch is the peer's acknowledgement (a
// long round trip, a busy or stalled peer): the wait grows with the time
// past it, so a late acknowledgement is seen about as late again, and a
// stalled peer is checked once per SettleTick, not once per millisecond.
func (w *Worker) settleWait() time.Duration {
	d := w.opts.SettleTick
	if ct, ok := w.dest.(confirmTimer); ok {
		if at := ct.NextConfirm(); !at.IsZero() {
			wait := time.Until(at)
			if wait <= 0 {
				wait = -wait // how long the batch has been due
			}
			d = min(d, max(wait, minSettleWait))
		}
	}
	return d
}

// connected notes a new connection.
func (w *Worker) connected() {
	w.onConn, w.confirmedOnConn, w.everConnected = true, false, true
	w.confirmed = w.confirmed[:0]
}

// countPossiblyLost counts the messages confirmed on a connection that
// ended with err which its upstream's process may never have read, and
// says so once per connection. Plain TCP cannot tell which they were;
// RELP can, and never gets here.
func (w *Worker) countPossiblyLost(err error) {
	r, ok := w.dest.(unreadReporter)
	if !ok || !w.onConn || len(w.confirmed) == 0 {
		return
	}
	from := r.UnreadFrom(err)
	if from < 0 {
		return
	}
	n := 0
	for _, c := range w.confirmed {
		if c.end > from {
			n += c.messages
		}
	}
	w.confirmed = w.confirmed[:0]
	if n == 0 {
		return
	}
	w.metrics.OutputPossiblyLost.WithLabelValues(w.opts.Name).Add(float64(n))
	w.log.Warn("the upstream reset the connection; messages it had acknowledged shortly before may not have been read by it (use RELP to know)",
		"possibly_lost_messages", n)
}

func (w *Worker) send(ctx context.Context, b *queue.Batch) error {
	if !w.dest.Connected() {
		if err := w.dest.Connect(ctx); err != nil {
			return fmt.Errorf("connect: %w", err)
		}
		// The first connection is news; later ones end an outage, which
		// "resumed" reports once a batch is confirmed, or an interruption.
		if w.everConnected || !w.outage.since.IsZero() {
			w.log.Debug("connected")
		} else {
			w.log.Info("connected")
		}
		w.connected()
	}
	if len(w.unsettled) == 0 {
		w.movedAt = time.Now()
	}
	before := w.dest.BytesWritten()
	var end int64
	var err error
	if pw, ok := w.dest.(pathWriter); ok && w.format.path != nil {
		entries := w.format.apply(b.Entries)
		end, err = pw.WritePaths(ctx, entries, w.format.paths)
	} else {
		end, err = w.dest.Write(ctx, w.format.apply(b.Entries))
	}
	if err != nil {
		return fmt.Errorf("write: %w", err)
	}
	n := batchBytes(b)
	w.unsettled = append(w.unsettled, sentBatch{batch: b, end: end, bytes: n})
	w.unsettledBytes += n
	w.metrics.OutputSent.WithLabelValues(w.opts.Name).Add(float64(len(b.Entries)))
	w.metrics.OutputBytes.WithLabelValues(w.opts.Name).Add(float64(w.dest.BytesWritten() - before))
	if w.outage.since.IsZero() {
		w.metrics.OutputUp.WithLabelValues(w.opts.Name).Set(1)
	}
	return nil
}

// stalled returns an error when messages were written and nothing was
// confirmed for StallTimeout: an upstream that accepted a connection and
// stopped reading, or a path that stopped carrying anything.
func (w *Worker) stalled(now time.Time) error {
	if w.opts.StallTimeout <= 0 || len(w.unsettled) == 0 || now.Sub(w.movedAt) < w.opts.StallTimeout {
		return nil
	}
	n := 0
	for _, s := range w.unsettled {
		n += len(s.batch.Entries)
	}
	return fmt.Errorf("%w for %s with %d messages written", errStalled, w.opts.StallTimeout, n)
}

var errStalled = errors.New("nothing confirmed")

// isStall reports whether err says the upstream stopped taking data, as
// opposed to breaking the connection.
func isStall(err error) bool {
	var ne net.Error
	return errors.Is(err, errStalled) || errors.As(err, &ne) && ne.Timeout()
}

// settle gives back to the queue every batch the destination has confirmed.
func (w *Worker) settle() error {
	if len(w.unsettled) == 0 || !w.dest.Connected() {
		return nil
	}
	upTo, err := w.dest.Settled(time.Now())
	i, confirmed := 0, 0
	for ; i < len(w.unsettled) && w.unsettled[i].end <= upTo; i++ {
		s := w.unsettled[i]
		w.unsettledBytes -= s.bytes
		confirmed += s.bytes
		if len(w.confirmed) == maxConfirmedSpans {
			w.confirmed = append(w.confirmed[:0], w.confirmed[maxConfirmedSpans/2:]...)
		}
		w.confirmed = append(w.confirmed, confirmedSpan{end: s.end, messages: len(s.batch.Entries)})
		if err := w.q.Done(s.batch); err != nil {
			// The journal could not record delivery: the batch will be
			// sent again after a restart, which is a duplicate, not a loss.
			w.log.Warn("mark batch delivered", "err", err)
		}
	}
	if i > 0 {
		clear(w.unsettled[:i])
		w.unsettled = w.unsettled[i:]
		now := time.Now()
		w.movedAt = now
		w.confirmedOnConn = true
		w.grow(confirmed)
		w.metrics.OutputLastDelivery.WithLabelValues(w.opts.Name).Set(float64(now.UnixNano()) / 1e9)
		// Only a confirmed batch proves the upstream works: an upstream that
		// accepts writes and then drops the session must keep backing off.
		w.retry.Reset()
		w.resumed()
	}
	return err
}

// growthStep is how much the unconfirmed window grows per window confirmed
// once it is past its fast-growth phase: a queue record's worth.
const growthStep = 128 << 10

// minWindow is the smallest the unconfirmed window gets: a queue record's
// worth, so a whole record always goes out, and a session that breaks
// after fewer bytes (an upstream that crashes on whatever it reads)
// breaks before anything of it is confirmed, as it would at full size.
const minWindow = 128 << 10

// grow widens the window after confirmed bytes were confirmed.
func (w *Worker) grow(confirmed int) {
	if w.window >= growthStep {
		confirmed = int(int64(confirmed) * growthStep / int64(w.window))
	}
	w.setWindow(min(w.window+max(confirmed, 1), w.opts.MaxUnsettledBytes))
}

// setWindow changes the unconfirmed window, logging when it leaves or
// regains its full size.
func (w *Worker) setWindow(n int) {
	if n == w.window {
		return
	}
	full := w.opts.MaxUnsettledBytes
	switch {
	case w.window == full:
		w.log.Info("a write or connection failed with messages unconfirmed; sending less at a time until more is confirmed",
			"unconfirmed_limit_bytes", n)
	case n == full:
		w.log.Info("sending at the full unconfirmed window again", "unconfirmed_limit_bytes", n)
	default:
		w.log.Debug("unconfirmed window", "unconfirmed_limit_bytes", n)
	}
	w.window = n
	w.metrics.OutputWindow.WithLabelValues(w.opts.Name).Set(float64(n))
}

// fail handles a broken connection: everything written on it that is not yet
// confirmed goes out again, in order, after a backoff. current is the batch
// whose write failed, if any.
func (w *Worker) fail(ctx context.Context, err error, current *queue.Batch) {
	w.countPossiblyLost(err)
	_ = w.dest.Close()
	w.metrics.OutputUp.WithLabelValues(w.opts.Name).Set(0)
	w.metrics.OutputErrors.WithLabelValues(w.opts.Name).Inc()
	lost := w.unsettledBytes
	resend := make([]*queue.Batch, 0, len(w.unsettled)+1+len(w.resend))
	for _, s := range w.unsettled {
		resend = append(resend, s.batch)
		w.metrics.OutputResent.WithLabelValues(w.opts.Name).Add(float64(len(s.batch.Entries)))
	}
	if current != nil {
		resend = append(resend, current)
		w.metrics.OutputRetries.WithLabelValues(w.opts.Name).Inc()
		if w.onConn {
			// The write may have got part of the way: the upstream may
			// have read some of it.
			lost += batchBytes(current)
			w.metrics.OutputResent.WithLabelValues(w.opts.Name).Add(float64(len(current.Entries)))
		}
	}
	w.resend = append(resend, w.resend...)
	clear(w.unsettled)
	w.unsettled = w.unsettled[:0]
	w.unsettledBytes = 0
	// A stall is no reason to send less: the next connection would then
	// fit into the socket buffer of an upstream that does not read, and
	// look healthy.
	// A connection that delivered and then broke is an interruption, not
	// an outage: an upstream that cuts every session short would otherwise
	// log two lines per session. The resent counter and the window show
	// it; an outage starts if the next connection does not deliver.
	interrupted := w.onConn && w.confirmedOnConn && !isStall(err)
	if w.onConn && !settlesOnWrite(w.dest) {
		lossy := lost > 0 && !isStall(err)
		if lossy && w.lossyBreak {
			w.setWindow(max(min(w.window, lost)/2, minWindow))
		}
		w.lossyBreak = lossy
	}
	w.onConn = false
	wait := w.retry.Next()
	switch {
	case ctx.Err() != nil:
	case interrupted && w.outage.since.IsZero():
		w.log.Debug("connection broke after delivering; sending what it had not confirmed again",
			"err", err, "unconfirmed_bytes", lost, "in", wait.Round(time.Millisecond))
	default:
		w.failed(err, wait)
	}
	w.sleep(ctx, wait)
}

// settlesOnWrite reports whether d settles what it wrote at once (udp):
// such a destination has no unconfirmed window to shrink.
func settlesOnWrite(d Destination) bool {
	s, ok := d.(interface{ SettlesOnWrite() bool })
	return ok && s.SettlesOnWrite()
}

// failed logs a failed attempt. The first of an outage is logged with its
// error; later ones only at debug level, and in their place at most one
// summary per SummaryEvery.
func (w *Worker) failed(err error, wait time.Duration) {
	now := time.Now()
	o := &w.outage
	depth := w.depth()
	if o.since.IsZero() {
		*o = outage{since: now, attempts: 1, peak: depth, lastSummary: now}
		msg := "output stopped delivering; messages wait in the queue and it keeps retrying"
		if depth == 0 && len(w.unsettled) == 0 && len(w.resend) == 0 {
			// At start, or for a route that is quiet: nothing waits yet.
			msg = "output stopped delivering; it keeps retrying, and messages routed to it wait in the queue meanwhile"
		}
		w.log.Warn(msg, "err", err, "queued_records", depth, "retry_max", w.opts.RetryMax)
		return
	}
	o.attempts++
	o.peak = max(o.peak, depth)
	w.log.Debug("send failed; retrying", "err", err, "in", wait.Round(time.Millisecond), "attempts", o.attempts)
	if now.Sub(o.lastSummary) >= w.opts.SummaryEvery {
		o.lastSummary = now
		w.log.Warn("output still not delivering", "for", now.Sub(o.since).Round(time.Second),
			"failed_attempts", o.attempts, "err", err, "queued_records", depth)
	}
}

// resumed ends an outage once a batch is confirmed again, with one line
// saying how long it lasted and how much waited meanwhile.
func (w *Worker) resumed() {
	o := w.outage
	if o.since.IsZero() {
		return
	}
	w.outage = outage{}
	w.metrics.OutputUp.WithLabelValues(w.opts.Name).Set(1)
	w.log.Info("output resumed delivering", "down_for", time.Since(o.since).Round(time.Millisecond),
		"failed_attempts", o.attempts, "waited_records", o.peak, "queued_records", w.depth())
}

// depth returns the records waiting in the queue, or 0 when the queue
// cannot tell.
func (w *Worker) depth() int64 {
	if q, ok := w.q.(interface{ Depth() int64 }); ok {
		return q.Depth()
	}
	return 0
}

func (w *Worker) sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func batchBytes(b *queue.Batch) int {
	n := 0
	for _, e := range b.Entries {
		n += len(e.Data)
	}
	return n
}
