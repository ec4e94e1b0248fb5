package relay

import (
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/relay-syslog/relay/outputs"
	"github.com/relay-syslog/relay/queue"
)

// problems collects what is wrong with a configuration file, each problem
// with its key and line, from decoding and from validation alike.
type problems struct {
	lines keyLines
	list  []problem
	// badValues holds the keys whose value did not decode. Such a key keeps
	// its zero value, and validation must not report that as well.
	badValues map[string]bool
	// set holds every key the file sets ("output[0].tls.ca_file").
	set map[string]bool
}

type problem struct {
	line int // 0: the file has no line for it
	text string
}

// problemFunc reports a problem with key in one table; compileConditions
// and the section validators take one.
type problemFunc func(key, format string, args ...any)

// badValue reports a value that did not decode, or an unknown key.
func (p *problems) badValue(table string, index int, key, msg string) {
	path := keyPath(table, index, key)
	p.badValues[path] = true
	p.add(p.lines.line(table, index, key), path, msg)
}

// in returns the problemFunc of table[index] (index -1: not an array; table
// "": the root).
func (p *problems) in(table string, index int) problemFunc {
	return func(key, format string, args ...any) {
		path := keyPath(table, index, key)
		if p.badValues[path] {
			return
		}
		p.add(p.lines.line(table, index, key), path, fmt.Sprintf(format, args...))
	}
}

func (p *problems) add(line int, path, msg string) {
	text := path + ": " + msg
	if line > 0 {
		text = fmt.Sprintf("line %d: %s", line, text)
	}
	p.list = append(p.list, problem{line: line, text: text})
}

// sorted returns the problems in the order of the file; those without a
// line come last.
func (p *problems) sorted() []string {
	slices.SortStableFunc(p.list, func(a, b problem) int {
		if (a.line == 0) != (b.line == 0) {
			return cmp.Compare(b.line, a.line) // the one with a line first
		}
		return cmp.Compare(a.line, b.line)
	})
	out := make([]string, len(p.list))
	for i, pr := range p.list {
		out[i] = pr.text
	}
	return out
}

// validate reports every semantic problem of c, section by section.
func (c *Config) validate(p *problems) {
	c.validateRoot(p.in("", -1))
	if c.Metrics.Address != "" {
		if err := checkHostPort(c.Metrics.Address); err != nil {
			p.in("metrics", -1)("address", "%v", err)
		}
	}
	listeners := map[string]bool{}
	for i, l := range c.Listeners {
		l.validate(p.in("listener", i), listeners)
		checkKeysApply(p, "listener", i, l.Protocol, listenerKeyProtocols, configListenerProtocols)
	}
	outputNames := map[string]bool{}
	for i, o := range c.Outputs {
		o.validate(p.in("output", i), outputNames)
		checkKeysApply(p, "output", i, o.Protocol, outputKeyProtocols, OutputProtocols)
	}
	routes := map[string]bool{}
	for i, r := range c.Routes {
		r.validate(p.in("route", i), routes, listeners, outputNames)
	}
	c.validateSockets(p)
}

func (c *Config) validateRoot(problem problemFunc) {
	if strings.TrimSpace(c.DataDir) == "" {
		problem("data_dir", "must not be empty")
	}
	// A head relay checks stamps for duplicates only under an origin it
	// can keep and name in its metrics (dedup.go's maxOriginLen).
	if len(c.RelayID) > maxOriginLen || !utf8.ValidString(c.RelayID) {
		problem("relay_id", "must be UTF-8 of at most %d bytes (a head's dedup passes longer stamps on unchecked)", maxOriginLen)
	}
	if c.DedupWindow < 64 || c.DedupWindow > 1<<24 {
		problem("dedup_window", "%d is out of range: use 64 to 16777216", c.DedupWindow)
	}
	if len(c.Listeners) == 0 {
		problem("listener", "at least one [[listener]] is required")
	}
	if len(c.Outputs) == 0 {
		problem("output", "at least one [[output]] is required")
	}
	if len(c.Routes) == 0 {
		problem("route", "at least one [[route]] is required: without one every message is unrouted")
	}
}

// validate checks one listener; names collects the listener names seen.
func (l *ListenerConfig) validate(problem problemFunc, names map[string]bool) {
	checkName(problem, "listener", l.Name, names)
	switch l.Protocol {
	case ProtocolUDP, ProtocolTCP, ProtocolTLS, ProtocolRELP:
		if err := checkHostPort(l.Address); err != nil {
			problem("address", "%v", err)
		}
	case ProtocolUnix:
		if l.Address == "" {
			problem("address", "is required: the path of the socket to create")
		}
	case ProtocolKafka:
		l.validateKafka(problem)
	case "":
		problem("protocol", "is required: use %s", configListenerProtocols)
	}
	if l.MaxMessageSize < 480 || l.MaxMessageSize > 16<<20 {
		problem("max_message_size", "%d is out of range: use 480 bytes to 16MiB", l.MaxMessageSize)
	}
	if l.MaxConnections < 0 {
		problem("max_connections", "must not be negative")
	}
	if l.Window < 0 || l.Window > 65536 {
		problem("window", "%d is out of range: use 1 to 65536", l.Window)
	}
	l.validateAccess(problem)
	l.validateTLS(problem)
}

// validateAccess checks allowed_networks, rate_limit and rate_burst.
func (l *ListenerConfig) validateAccess(problem problemFunc) {
	for _, n := range l.AllowedNetworks {
		if _, err := netip.ParsePrefix(n); err != nil {
			if _, err := netip.ParseAddr(n); err != nil {
				problem("allowed_networks", "invalid network %q: use CIDR notation such as \"192.0.2.0/24\" or an address", n)
			}
		}
	}
	if l.RateLimit < 0 {
		problem("rate_limit", "must not be negative")
	}
	if l.RateBurst < 0 {
		problem("rate_burst", "must not be negative")
	}
	if l.Protocol != ProtocolUnix {
		return
	}
	// A Unix socket's senders have no network address: the keys could
	// only be ignored, which would hide a mistake.
	if len(l.AllowedNetworks) > 0 {
		problem("allowed_networks", "does not apply to unix listeners (senders have no network address): limit who may write with socket_mode")
	}
	if l.RateLimit > 0 || l.RateBurst > 0 {
		key := "rate_limit"
		if l.RateLimit == 0 {
			key = "rate_burst"
		}
		problem(key, "does not apply to unix listeners (senders have no address to limit)")
	}
}

func (l *ListenerConfig) validateTLS(problem problemFunc) {
	if l.Protocol == ProtocolRELP && (l.TLS.CertFile == "") != (l.TLS.KeyFile == "") {
		problem("tls.cert_file", "RELP over TLS needs both tls.cert_file and tls.key_file")
	}
	if l.Protocol == ProtocolTLS {
		if l.TLS.CertFile == "" {
			problem("tls.cert_file", "is required for protocol \"tls\"")
		}
		if l.TLS.KeyFile == "" {
			problem("tls.key_file", "is required for protocol \"tls\"")
		}
	}
	if len(l.TLS.AllowedNames) > 0 && l.TLS.ClientCAFile == "" {
		problem("tls.allowed_names", "needs tls.client_ca_file: names are checked on verified client certificates")
	}
	checkTLSVersionAndSuites(l.TLS.MinVersion, l.TLS.CipherSuites, problem)
}

// reservedDataDirNames are the files the relay keeps in data_dir beside
// the queue directories, which are named after the outputs; an output of
// one of these names could not open its queue (and .tmp names are the
// relay's files being replaced).
var reservedDataDirNames = []string{epochFileName, lockFileName, dedupStateFile}

// validate checks one output; names collects the output names seen.
func (o *OutputConfig) validate(problem problemFunc, names map[string]bool) {
	if checkName(problem, "output", o.Name, names) {
		if err := queue.CheckName(o.Name); err != nil {
			problem("name", "%v", err)
		} else if slices.Contains(reservedDataDirNames, o.Name) || strings.HasSuffix(o.Name, ".tmp") {
			problem("name", "%q is taken: data_dir holds %s beside the output queues; choose another name",
				o.Name, strings.Join(reservedDataDirNames, ", "))
		}
	}
	switch o.Protocol {
	case ProtocolTCP, ProtocolTLS, ProtocolUDP, ProtocolRELP:
		o.validateUpstream(problem)
	case ProtocolFile:
		if o.Path == "" {
			problem("path", "is required for protocol \"file\"")
		}
		if o.Address != "" || len(o.Targets) > 0 {
			problem("address", "is not used by protocol \"file\": use path")
		}
		if o.Path != "" {
			if _, err := outputs.ParsePathTemplate(o.Path); err != nil {
				problem("path", "%v", err)
			}
		}
		if o.MaxOpenFiles < 0 || o.MaxOpenFiles > 65536 {
			problem("max_open_files", "%d is out of range: use 1 to 65536", o.MaxOpenFiles)
		}
	case ProtocolKafka:
		o.validateKafka(problem)
	case "":
		problem("protocol", "is required: use %s", OutputProtocols)
	}
	if o.Protocol != ProtocolKafka {
		o.refuseKafkaKeys(problem)
	}
	if o.StampSequence && o.Format != outputs.RFC5424 && o.Format != outputs.JSON {
		problem("stamp_sequence", "needs format = \"rfc5424\" or \"json\": other formats have no place for the stamp")
	}
	if o.Template != "" {
		if t, err := outputs.ParseTemplate(o.Template); err != nil {
			problem("template", "%v", err)
		} else if !t.HasFields() {
			// A template copied from rsyslog (%HOSTNAME% %msg%) parses as
			// plain text and would write that text for every message.
			problem("template", "names no field, so every message would be written as this same text: "+
				"fields are written in braces, e.g. \"{timestamp} {hostname} {tag} {message}\" (rsyslog's %%HOSTNAME%% is {hostname})")
		}
		if o.Protocol == ProtocolFile && strings.HasSuffix(o.Template, "\n") {
			// rsyslog's file templates end in \n; here the output ends each
			// line itself and writes a line feed inside one as #012.
			problem("template", "ends with a line feed: a file output ends each line itself (and would write this one as #012): remove it")
		}
		if o.Format != outputs.Raw {
			problem("template", "replaces format: set one of them")
		}
		if o.StampSequence {
			problem("stamp_sequence", "has no place in a template")
		}
	}
	if o.RetryMax.Duration < o.RetryInitial.Duration {
		problem("retry_max", "%s is shorter than retry_initial %s", o.RetryMax.Duration, o.RetryInitial.Duration)
	}
	if (o.TLS.CertFile == "") != (o.TLS.KeyFile == "") {
		problem("tls.cert_file", "tls.cert_file and tls.key_file go together")
	}
	checkTLSVersionAndSuites(o.TLS.MinVersion, o.TLS.CipherSuites, problem)
	if o.Window < 0 || o.Window > 65536 {
		problem("window", "%d is out of range: use 1 to 65536", o.Window)
	}
	o.Queue.validate(problem)
}

// validateUpstream checks where a network output sends to.
func (o *OutputConfig) validateUpstream(problem problemFunc) {
	switch {
	case o.Address != "" && len(o.Targets) > 0:
		problem("targets", "set either address or targets, not both")
	case len(o.Targets) > 0:
		for _, t := range o.Targets {
			if err := checkDialAddr(t); err != nil {
				problem("targets", "%v", err)
			}
		}
	default:
		if err := checkDialAddr(o.Address); err != nil {
			problem("address", "%v", err)
		}
	}
	if o.Path != "" {
		problem("path", "is only for protocol \"file\"")
	}
	fileOnly := []struct {
		key string
		set bool
	}{{"file_mode", o.FileMode != nil}, {"dir_mode", o.DirMode != nil},
		{"max_open_files", o.MaxOpenFiles != 0}, {"fsync", o.Fsync != outputs.FsyncNever},
		{"escape_control_characters", o.EscapeControl != nil}}
	for _, k := range fileOnly {
		if k.set {
			problem(k.key, "is only for protocol \"file\"")
		}
	}
}

// validateKafka checks a kafka output.
func (o *OutputConfig) validateKafka(problem problemFunc) {
	if len(o.Brokers) == 0 {
		problem("brokers", "is required for protocol \"kafka\": a list of host:port")
	}
	for _, b := range o.Brokers {
		if err := checkDialAddr(b); err != nil {
			problem("brokers", "%v", err)
		}
	}
	if err := checkKafkaTopic(o.Topic); err != nil {
		problem("topic", "%v", err)
	}
	if !slices.Contains(outputs.KafkaKeys, o.Key) {
		problem("key", "unknown key %q: use hostname, relay_id or none", o.Key)
	}
	if !slices.Contains(outputs.KafkaCompressions, o.Compression) {
		problem("compression", "unknown compression %q: use %s", o.Compression, strings.Join(outputs.KafkaCompressions, ", "))
	}
	if o.Address != "" {
		problem("address", "is not used by protocol \"kafka\": use brokers")
	}
	if len(o.Targets) > 0 {
		problem("targets", "is not used by protocol \"kafka\": use brokers")
	}
	if o.Path != "" {
		problem("path", "is only for protocol \"file\"")
	}
	checkKafkaSASL(o.SASL, problem)
	checkKafkaTLS(o.TLS, problem)
}

// checkKafkaSASL checks the sasl table of a kafka output or listener.
func checkKafkaSASL(s KafkaSASLConfig, problem problemFunc) {
	switch {
	case s.Mechanism == "":
		if s.Username != "" || s.PasswordFile != "" {
			problem("sasl.mechanism", "is required with sasl.username and sasl.password_file: use %s",
				strings.Join(outputs.KafkaSASLMechanisms, ", "))
		}
	case !slices.Contains(outputs.KafkaSASLMechanisms, s.Mechanism):
		problem("sasl.mechanism", "unknown mechanism %q: use %s", s.Mechanism, strings.Join(outputs.KafkaSASLMechanisms, ", "))
	default:
		if s.Username == "" {
			problem("sasl.username", "is required with sasl.mechanism")
		}
		if s.PasswordFile == "" {
			problem("sasl.password_file", "is required with sasl.mechanism: a file holding the password")
		}
	}
}

// checkKafkaTLS refuses the tls keys of a kafka output or listener
// without tls.enable: the client would reach the brokers in plain text,
// which the keys suggest it does not.
func checkKafkaTLS(c OutputTLSConfig, problem problemFunc) {
	if c.Enable {
		return
	}
	for _, k := range []struct {
		key string
		set bool
	}{{"tls.ca_file", c.CAFile != ""}, {"tls.server_name", c.ServerName != ""}, {"tls.cert_file", c.CertFile != ""},
		{"tls.key_file", c.KeyFile != ""}, {"tls.insecure_skip_verify", c.InsecureSkipVerify},
		{"tls.min_version", c.MinVersion != ""}, {"tls.cipher_suites", len(c.CipherSuites) > 0}} {
		if k.set {
			problem(k.key, "needs tls.enable = true: without it the brokers are reached in plain text")
		}
	}
}

// refuseKafkaKeys reports the kafka keys set on an output of another
// protocol.
func (o *OutputConfig) refuseKafkaKeys(problem problemFunc) {
	set := map[string]bool{
		"brokers": len(o.Brokers) > 0, "topic": o.Topic != "", "key": o.Key != "", "compression": o.Compression != "",
		"sasl.mechanism": o.SASL.Mechanism != "", "sasl.username": o.SASL.Username != "", "sasl.password_file": o.SASL.PasswordFile != "",
	}
	for _, k := range []string{"brokers", "topic", "key", "compression", "sasl.mechanism", "sasl.username", "sasl.password_file"} {
		if set[k] {
			problem(k, "is only for protocol \"kafka\"")
		}
	}
}

// checkKafkaTopic checks a topic name as Kafka does: 1 to 249 of
// [a-zA-Z0-9._-], and neither "." nor "..".
func checkKafkaTopic(t string) error {
	switch {
	case t == "":
		return errors.New("is required for protocol \"kafka\"")
	case len(t) > 249 || t == "." || t == "..":
		return fmt.Errorf("invalid topic %q: Kafka takes 1 to 249 characters, not \".\" or \"..\"", t)
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("invalid topic %q: Kafka topic names use only letters, digits, '.', '_' and '-'", t)
		}
	}
	return nil
}

// validate checks an output's queue table.
func (q *QueueConfig) validate(problem problemFunc) {
	if q.SyncEvery < 0 {
		problem("queue.sync_every", "must not be negative")
	}
	if q.BatchMessages < 0 {
		problem("queue.batch_messages", "must not be negative")
	}
}

// validate checks one route; names collects the route names seen.
func (r *RouteConfig) validate(problem problemFunc, names, listeners, outputNames map[string]bool) {
	checkName(problem, "route", r.Name, names)
	if len(r.Outputs) == 0 {
		problem("outputs", "must name at least one output")
	}
	compileConditions(*r, listeners, problem)
	for _, name := range r.Outputs {
		if !outputNames[name] {
			problem("outputs", "names output %q, which is not defined%s", name, didYouMean(name, outputNames))
		}
	}
}

// checkName checks that a listener's, output's or route's name is set and
// not taken, and records it in seen. It reports whether the name is new.
func checkName(problem problemFunc, what, name string, seen map[string]bool) bool {
	switch {
	case name == "":
		problem("name", "is required")
		return false
	case seen[name]:
		problem("name", "duplicate %s name %q", what, name)
		return false
	}
	seen[name] = true
	return true
}

// checkTLSVersionAndSuites validates tls.min_version and tls.cipher_suites.
func checkTLSVersionAndSuites(minVersion string, suites []string, problem problemFunc) {
	switch minVersion {
	case "", "1.2", "1.3":
	default:
		problem("tls.min_version", "unsupported version %q: use \"1.2\" or \"1.3\"", minVersion)
	}
	known := map[string]bool{}
	for _, cs := range tls.CipherSuites() {
		known[cs.Name] = true
	}
	for _, name := range suites {
		if !known[name] {
			problem("tls.cipher_suites", "unknown or insecure cipher suite %q (use Go's names, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)", name)
		}
	}
}

func checkHostPort(addr string) error {
	if addr == "" {
		return errors.New("is required (host:port)")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("invalid address %q: want host:port, e.g. \"127.0.0.1:514\" or \"[::1]:514\"", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("invalid address %q: port %q is not a number from 0 to 65535", addr, port)
	}
	if strings.ContainsAny(host, " /") {
		return fmt.Errorf("invalid address %q: bad host %q", addr, host)
	}
	return nil
}

// checkDialAddr checks an address the relay connects to: host:port as
// checkHostPort, and a port other than 0, which only a listener can ask
// for (any free port).
func checkDialAddr(addr string) error {
	if err := checkHostPort(addr); err != nil {
		return err
	}
	if _, port, _ := net.SplitHostPort(addr); port == "0" {
		return fmt.Errorf("invalid address %q: port 0 can be listened on, not connected to", addr)
	}
	return nil
}

// socketAddr is where one listener, or the metrics server, binds: what two
// sockets cannot share.
type socketAddr struct {
	kind string // "tcp" (tcp, tls, relp and metrics), "udp" or "unix"
	// host is the IP to bind, or the zero Addr for a wildcard; name holds
	// a host name instead, compared as written.
	host     netip.Addr
	name     string
	wildcard hostWildcard
	port     int
	path     string // unix
	key      string // the configuration key, e.g. listener[2].address
	line     int
}

type hostWildcard int

const (
	notWildcard  hostWildcard = iota
	wildcardIPv4              // 0.0.0.0: every IPv4 address
	wildcardAll               // "" or [::]: Go binds these dual-stack, every address of both families
)

// validateSockets reports listeners that could not all be bound at once:
// two on one address of the same transport, a wildcard address and a
// specific one on the same port (0.0.0.0:514 and 127.0.0.1:514), a stream
// listener on the metrics address, and two unix listeners on one path (the
// second would replace the first one's socket file, and the first would
// silently receive nothing). UDP and TCP on the same host and port do not
// conflict, nor does port 0, for which the kernel picks a free port.
// Problems are reported on the later listener's address, naming the other.
func (c *Config) validateSockets(p *problems) {
	var seen []socketAddr
	if c.Metrics.Address != "" {
		if a, ok := parseSocketAddr("tcp", c.Metrics.Address); ok {
			a.key, a.line = "metrics.address", p.lines.line("metrics", -1, "address")
			seen = append(seen, a)
		}
	}
	for i, l := range c.Listeners {
		a, ok := listenerSocket(l)
		if !ok {
			continue // a bad address is reported by the listener's own checks
		}
		a.key, a.line = keyPath("listener", i, "address"), p.lines.line("listener", i, "address")
		for _, other := range seen {
			if a.overlaps(other) {
				p.in("listener", i)("address", "%s", a.conflict(l.Address, other))
				break
			}
		}
		seen = append(seen, a)
	}
}

// listenerSocket returns where l binds; ok is false when that is not known
// before binding (port 0) or the address is malformed.
func listenerSocket(l ListenerConfig) (a socketAddr, ok bool) {
	switch l.Protocol {
	case ProtocolTCP, ProtocolTLS, ProtocolRELP:
		return parseSocketAddr("tcp", l.Address)
	case ProtocolUDP:
		return parseSocketAddr("udp", l.Address)
	case ProtocolUnix:
		return socketAddr{kind: "unix", path: socketFile(l.Address)}, l.Address != ""
	}
	return socketAddr{}, false
}

// socketFile returns the file a unix socket path names, so that a path
// relative to the working directory (where the relay binds it) and an
// absolute one, or one through a symbolic link to its directory, compare
// equal. A directory that does not exist yet is compared by its name.
func socketFile(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return filepath.Clean(path)
	}
	if dir, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		return filepath.Join(dir, filepath.Base(abs))
	}
	return abs
}

// sameSocketAddr reports whether listeners a and b cannot be bound at once.
func sameSocketAddr(a, b ListenerConfig) bool {
	sa, ok := listenerSocket(a)
	sb, ok2 := listenerSocket(b)
	return ok && ok2 && sa.overlaps(sb)
}

// parseSocketAddr reads a host:port already checked by checkHostPort; ok is
// false for an address the kernel chooses (port 0) or that is malformed.
func parseSocketAddr(kind, address string) (socketAddr, bool) {
	host, portText, err := net.SplitHostPort(address)
	if err != nil {
		return socketAddr{}, false
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port == 0 {
		return socketAddr{}, false
	}
	a := socketAddr{kind: kind, port: port}
	if strings.EqualFold(host, "localhost") {
		host = "127.0.0.1" // what the relay's listen resolves it to
	}
	switch ip, err := netip.ParseAddr(host); {
	case host == "":
		a.wildcard = wildcardAll
	case err != nil:
		a.name = strings.ToLower(host)
	case ip.Unmap().IsUnspecified() && ip.Is4():
		a.wildcard = wildcardIPv4
	case ip.IsUnspecified():
		a.wildcard = wildcardAll
	default:
		a.host = ip.Unmap()
	}
	return a, true
}

// overlaps reports whether a and b cannot both be bound.
func (a socketAddr) overlaps(b socketAddr) bool {
	if a.kind != b.kind {
		return false
	}
	if a.kind == "unix" {
		return a.path == b.path
	}
	if a.port != b.port {
		return false
	}
	if a.wildcard == wildcardAll || b.wildcard == wildcardAll {
		return true
	}
	if a.name != "" || b.name != "" {
		// A name's address is not known without asking a resolver; only
		// the same name is a certain conflict.
		return a.name == b.name
	}
	if a.wildcard == wildcardIPv4 || b.wildcard == wildcardIPv4 {
		other := b
		if b.wildcard == wildcardIPv4 {
			other = a
		}
		return other.wildcard == wildcardIPv4 || other.host.Is4()
	}
	return a.host == b.host
}

// conflict says why the listener at address cannot bind beside other.
func (a socketAddr) conflict(address string, other socketAddr) string {
	where := other.key
	if other.line > 0 {
		where += " on line " + strconv.Itoa(other.line)
	}
	switch {
	case a.kind == "unix":
		return "socket path " + strconv.Quote(address) + " is also used by " + where +
			": the second listener would replace the first one's socket, which would then receive nothing"
	case other.key == "metrics.address":
		return strconv.Quote(address) + " overlaps the metrics address (" + where + "): they cannot both bind"
	}
	return strconv.Quote(address) + " overlaps the " + a.kind + " address of " + where +
		": two " + a.kind + " sockets cannot bind one port on overlapping addresses (a wildcard such as 0.0.0.0 covers every specific address)"
}
