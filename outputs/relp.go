package outputs

import (
	"context"
	"errors"
	"time"

	"github.com/relay-syslog/relay/queue"
)

// RELPOptions configures a RELP destination.
type RELPOptions struct {
	Address        string
	Window         int
	ConnectTimeout time.Duration
	WriteTimeout   time.Duration
}

// RELP is not built yet: every connection attempt fails, so batches wait in
// the queue.
type RELP struct{ opts RELPOptions }

// NewRELP returns a RELP destination.
func NewRELP(opts RELPOptions) *RELP { return &RELP{opts: opts} }

func (r *RELP) String() string { return "relp://" + r.opts.Address }

// Connected is always false.
func (r *RELP) Connected() bool { return false }

// Connect fails: RELP is not implemented yet.
func (r *RELP) Connect(context.Context) error { return errors.New("relp output not implemented yet") }

// Write fails.
func (r *RELP) Write(context.Context, []queue.Entry) (int64, error) {
	return 0, errors.New("not connected")
}

// Settled reports nothing settled.
func (r *RELP) Settled(time.Time) (int64, error) { return 0, nil }

// Close does nothing.
func (r *RELP) Close() error { return nil }
