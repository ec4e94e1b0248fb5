package relay

import (
	"fmt"
	"slices"
)

// UnroutedOutputs returns a note for every output no route names: it gets
// no new message. The file is valid (an output left without routes still
// sends the backlog in its queue, a way to drain it), but an output added
// and never routed is a common slip, and the relay would run silently
// without it. data is the configuration's text, for the lines.
func UnroutedOutputs(data []byte, cfg *Config) []string {
	kl := indexKeyLines(data)
	var notes []string
	for i, o := range cfg.Outputs {
		if slices.ContainsFunc(cfg.Routes, func(r RouteConfig) bool { return slices.Contains(r.Outputs, o.Name) }) {
			continue
		}
		at := ""
		if n := kl.line("output", i, "name"); n > 0 {
			at = fmt.Sprintf("line %d: ", n)
		}
		notes = append(notes, fmt.Sprintf("%soutput %q is named by no route: it gets no new messages (what waits in its queue is still sent); add it to a route's outputs", at, o.Name))
	}
	return notes
}
