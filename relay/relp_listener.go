package relay

import (
	"errors"
	"log/slog"
)

// newRELPListener will accept RELP (issue: RELP in and out). Until it is
// built, a relp listener in the configuration is refused at start.
func newRELPListener(cfg ListenerConfig, _ *ingest, _ interface{ Set(float64) }, _ *slog.Logger) (listener, error) {
	return nil, errors.New("protocol relp is not implemented yet")
}
