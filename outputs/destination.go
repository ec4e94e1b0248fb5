// Package outputs forwards queued messages to their destinations: a syslog
// server over TCP, TLS, UDP or RELP, or a file. A Worker drains one output's
// queue in order, sends each batch through a Destination, and gives the
// batch back to the queue as delivered only when the destination has
// confirmed it. On any error it reconnects and sends the same batches again
// with exponential backoff and jitter, without a retry limit: the backlog
// waits on disk. relay send uses the same destinations.
package outputs

import (
	"context"
	"time"

	"github.com/relay-syslog/relay/queue"
)

// Queue is what a Worker needs from an output's queue.
type Queue interface {
	Next(ctx context.Context) (*queue.Batch, error)
	TryNext() (*queue.Batch, bool, error)
	Done(b *queue.Batch) error
}

// Destination is one upstream. A Worker is its only user, so implementations
// need no locking.
type Destination interface {
	// Connect opens the connection or file; it is called before Write when
	// the destination is not connected.
	Connect(ctx context.Context) error
	// Connected reports whether Connect succeeded and nothing broke since.
	Connected() bool
	// Write sends entries and flushes them to the operating system. It
	// returns the destination's running byte offset after the batch, which
	// Settled compares against. An error means the connection is unusable;
	// the Worker calls Close and sends the batch again.
	// Cancelling ctx aborts a write that is blocked on a slow upstream.
	Write(ctx context.Context, entries []queue.Entry) (offset int64, err error)
	// Settled returns the offset up to which the upstream has confirmed what
	// was written: for a file and UDP that is everything written; for TCP
	// it is what the peer's kernel acknowledged on a connection still found
	// healthy. An error means the connection broke and everything not
	// settled must be sent again; the offset is still valid then.
	Settled(now time.Time) (offset int64, err error)
	// BytesWritten returns how many bytes of messages the destination has
	// handed to the operating system since it was made, across
	// connections: each message as written (after format conversion) with
	// its framing (the octet count or line feed, the RELP frame around it,
	// a file's line end and #012 escapes), before any TLS encryption. It
	// counts what a receiver reads, not what the queue holds.
	BytesWritten() int64
	// Close drops the connection; the next Write needs a Connect.
	Close() error
	// String names the destination in log lines.
	String() string
}
