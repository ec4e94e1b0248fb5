// Package syslog is the relay's message package: it reads syslog messages
// off the wire without losing a byte of them.
//
// It holds the pieces every listener and output shares: reading the PRI
// field (ReadPRI), cleaning transport padding off datagrams (TrimDatagram)
// and splitting TCP streams into messages with RFC 6587 framing
// (FrameReader). RFC 3164 and RFC 5424 header parsing will live here too.
//
// The package is a leaf: it imports only the standard library, so that the
// listeners, the router and the outputs can all depend on it without cycles.
//
// Everything here sits on the hot path of a relay that takes bytes from
// untrusted senders, so two rules hold throughout. First, reading never
// allocates per message in the steady state; returned slices alias internal
// or caller buffers and are documented as such. Second, malformed input is
// never an error that drops content: a bad PRI just reports ok=false, and a
// frame that breaks the rules is passed on (possibly truncated, never
// rewritten) so the relay can still deliver what the sender wrote.
package syslog
