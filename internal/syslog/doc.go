// Package syslog is the relay's message package: it reads syslog messages
// off the wire without losing a byte of them, and writes them in the format
// an output asks for.
//
// Reading:
//   - ReadPRI reads only the "<N>" prefix, which is all that routing on
//     facility and severity needs, for a few nanoseconds and no allocation.
//   - Parse reads a whole message of either format, detected per message:
//     RFC 5424, RFC 3164, and the RFC 3164 variants devices really send
//     (Cisco counters and '*' stamps, ISO stamps, stamps with year, zone or
//     milliseconds, no hostname). It is lenient: it never fails, the
//     Message keeps every byte (Raw, and Msg is a suffix of it), and a
//     Problem value, usable as a metrics label, says what was off.
//     ParseOptions.SkipTimestamp gives routing the hostname and app-name
//     without the cost of building the time.
//   - NewSDIterator and LookupSDParam walk RFC 5424 structured data and
//     unescape values on demand.
//   - TrimDatagram removes the padding senders add to datagrams, and
//     FrameReader splits TCP streams into messages with RFC 6587 framing.
//
// Writing:
//   - AppendRFC5424 passes clean RFC 5424 through byte for byte, converts
//     RFC 3164 with a full timestamp, and wraps what did not parse into
//     valid RFC 5424 with the original bytes as MSG.
//   - AppendRFC3164 writes BSD lines for legacy receivers.
//   - AppendOriginSD and AppendSDParamValue build structured data.
//
// The package is a leaf: it imports only the standard library, so that the
// listeners, the router and the outputs can all depend on it without cycles.
//
// Everything here sits on the hot path of a relay that takes bytes from
// untrusted senders, so two rules hold throughout. First, reading never
// allocates per message in the steady state; returned slices alias internal
// or caller buffers and are documented as such, and formatting appends to a
// caller's buffer. Second, malformed input is never an error that drops
// content: a bad PRI just reports ok=false, a message that does not parse
// keeps all its bytes and says why, and a frame that breaks the rules is
// passed on (possibly truncated, never rewritten) so the relay can still
// deliver what the sender wrote.
package syslog
