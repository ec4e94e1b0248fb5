package outputs

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relay-syslog/relay/internal/syslog"
	"github.com/relay-syslog/relay/queue"
)

// Format is what an output writes: the bytes as received, or the message
// converted to one of the syslog formats.
type Format int

const (
	// Raw forwards every message byte for byte.
	Raw Format = iota
	// RFC5424 converts RFC 3164 messages to RFC 5424 with a full timestamp,
	// passes RFC 5424 through, and wraps what does not parse.
	RFC5424
	// RFC3164 rewrites every message as a BSD syslog line, for legacy
	// receivers.
	RFC3164
	// JSON writes one JSON object per message with its parsed fields.
	JSON
)

// ParseFormat maps the config words to a Format (see UnmarshalText).
func ParseFormat(s string) (Format, error) {
	var f Format
	err := f.UnmarshalText([]byte(s))
	return f, err
}

// Normalize is what a listener's settings say about the messages it
// received, used when an output converts them.
type Normalize struct {
	// Location is the zone assumed for RFC 3164 timestamps without one.
	Location *time.Location
	// FillHostname writes the sender's address as HOSTNAME when the
	// message has none.
	FillHostname bool
	// AddOrigin adds [origin ip="…"] with the sender's address to RFC 5424
	// output (RFC 5424 §7.2), keeping where the message came from.
	AddOrigin bool
}

// DefaultNormalize applies to messages whose listener is no longer
// configured.
var DefaultNormalize = Normalize{Location: time.Local, FillHostname: true, AddOrigin: true}

// StampSDID is the SD-ID of the stamp an output with stamping adds to
// RFC 5424 output: [relay@32473 origin="…" epoch="…" seq="…"]. 32473 is the
// enterprise number RFC 5612 reserves for documentation and examples, which
// keeps the element clearly private.
const StampSDID = "relay@32473"

// appendStamp appends the standard [meta sequenceId] of RFC 5424 §7.3.1
// (1 to 2147483647, wrapping) and the relay's own stamp to dst. The stamp
// carries the origin relay's id and epoch (one run of it) so that a
// receiving relay can tell copies of one message apart from another
// relay's, or another run's, messages.
func appendStamp(dst []byte, origin string, epoch uint32, seq uint64) []byte {
	dst = append(dst, "[meta sequenceId=\""...)
	dst = strconv.AppendUint(dst, (seq-1)%2147483647+1, 10)
	dst = append(dst, "\"]["+StampSDID+" origin=\""...)
	dst = syslog.AppendSDParamValue(dst, origin)
	dst = append(dst, "\" epoch=\""...)
	dst = strconv.AppendUint(dst, uint64(epoch), 10)
	dst = append(dst, "\" seq=\""...)
	dst = strconv.AppendUint(dst, seq, 10)
	return append(dst, "\"]"...)
}

// formatter converts batches for one output. Only the output's worker uses
// it; its buffers are reused from batch to batch.
type formatter struct {
	format    Format
	normalize map[string]Normalize
	problems  *prometheus.CounterVec // by listener and reason
	// stampOrigin, when set, stamps RFC 5424 output with the message's
	// epoch and sequence number under this origin id.
	stampOrigin string

	// template, when set, lays out every message (the format is Raw then).
	template *Template
	// path, when set, is the file output's path template: apply renders
	// each message's path into paths.
	path  *Template
	json  jsonWriter
	paths [][]byte
	pbuf  []byte
	pends []int

	msg     syslog.Message
	buf     []byte
	sd      []byte
	out     []queue.Entry
	ends    []int
	lastSrc string
	lastIP  netip.Addr
}

// apply returns entries converted to the output's format or template,
// and renders their paths when the output has a path template. The result
// is valid until the next call.
func (f *formatter) apply(entries []queue.Entry) []queue.Entry {
	if f.format == Raw && f.template == nil && f.path == nil {
		return entries
	}
	f.buf, f.out, f.ends = f.buf[:0], f.out[:0], f.ends[:0]
	f.pbuf, f.pends = f.pbuf[:0], f.pends[:0]
	for i := range entries {
		e := &entries[i]
		n, ok := f.normalize[e.Listener]
		if !ok {
			n = DefaultNormalize
		}
		syslog.Parse(e.Data, syslog.ParseOptions{Location: n.Location, Received: e.Received}, &f.msg)
		if p := f.msg.Problem; p != syslog.ProblemNone && f.problems != nil {
			f.problems.WithLabelValues(e.Listener, p.String()).Inc()
		}
		ip := f.sourceIP(e.Source)
		v := fieldValues{msg: &f.msg, entry: e, ip: ip, loc: n.Location}
		if v.loc == nil {
			v.loc = time.Local
		}
		if n.FillHostname && ip.IsValid() {
			v.hostname = ip.String()
		}
		switch {
		case f.template != nil:
			f.buf = f.template.appendLine(f.buf, &v)
		case f.format == JSON:
			var st *jsonStamp
			if f.stampOrigin != "" && e.Seq != 0 {
				st = &jsonStamp{origin: f.stampOrigin, epoch: e.Epoch, seq: e.Seq}
			}
			f.buf = f.json.appendJSON(f.buf, &v, st)
		case f.format == RFC5424 || f.format == RFC3164:
			f.buf = f.appendSyslog(f.buf, e, n, ip)
		default:
			f.buf = append(f.buf, e.Data...)
		}
		f.ends = append(f.ends, len(f.buf))
		f.out = append(f.out, *e)
		if f.path != nil {
			f.pbuf = f.path.appendPath(f.pbuf, &v)
			f.pends = append(f.pends, len(f.pbuf))
		}
	}
	// The buffers may have moved while they grew, so the slices are taken
	// only now.
	start := 0
	for i, end := range f.ends {
		f.out[i].Data = f.buf[start:end:end]
		start = end
	}
	f.paths = f.paths[:0]
	start = 0
	for _, end := range f.pends {
		f.paths = append(f.paths, f.pbuf[start:end:end])
		start = end
	}
	return f.out
}

// appendSyslog appends the parsed message as RFC 5424 or RFC 3164.
func (f *formatter) appendSyslog(dst []byte, e *queue.Entry, n Normalize, ip netip.Addr) []byte {
	opts := syslog.FormatOptions{Location: n.Location}
	if n.FillHostname && ip.IsValid() {
		opts.Hostname = ip.String()
	}
	f.sd = f.sd[:0]
	if n.AddOrigin && ip.IsValid() {
		f.sd = syslog.AppendOriginSD(f.sd, ip)
	}
	if f.stampOrigin != "" && f.format == RFC5424 && e.Seq != 0 {
		f.sd = appendStamp(f.sd, f.stampOrigin, e.Epoch, e.Seq)
	}
	opts.ExtraSD = f.sd
	if f.format == RFC3164 {
		return syslog.AppendRFC3164(dst, &f.msg, opts)
	}
	return syslog.AppendRFC5424(dst, &f.msg, opts)
}

// sourceIP parses a sender address ("192.0.2.1:514"), remembering the last
// one because a batch usually comes from few senders.
func (f *formatter) sourceIP(src string) netip.Addr {
	if src == f.lastSrc {
		return f.lastIP
	}
	f.lastSrc = src
	f.lastIP = netip.Addr{}
	if ap, err := netip.ParseAddrPort(src); err == nil {
		f.lastIP = ap.Addr().Unmap()
	} else if a, err := netip.ParseAddr(src); err == nil {
		f.lastIP = a.Unmap()
	}
	return f.lastIP
}
