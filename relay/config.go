package relay

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Config is the root of the TOML configuration file. Every key is documented
// in config.toml.example; a test keeps the two in step.
type Config struct {
	DataDir         string           `toml:"data_dir"`
	RelayID         string           `toml:"relay_id"`     // origin id in sequence stamps; default the hostname
	DedupWindow     int              `toml:"dedup_window"` // sequence numbers remembered per origin relay
	ShutdownTimeout Duration         `toml:"shutdown_timeout"`
	MemoryLimit     *Size            `toml:"memory_limit"` // Go's soft memory limit; absent: sized from the outputs
	Metrics         MetricsConfig    `toml:"metrics"`
	Listeners       []ListenerConfig `toml:"listener"`
	Outputs         []OutputConfig   `toml:"output"`
	Routes          []RouteConfig    `toml:"route"`
}

// MetricsConfig is the [metrics] table.
type MetricsConfig struct {
	// Address is where /metrics, /healthz and /readyz are served; empty
	// disables the HTTP server.
	Address string `toml:"address"`
}

// ListenerConfig is one [[listener]] table.
type ListenerConfig struct {
	Name           string   `toml:"name"`
	Protocol       string   `toml:"protocol"` // udp, tcp, unix
	Address        string   `toml:"address"`  // host:port, or a socket path for unix
	MaxMessageSize Size     `toml:"max_message_size"`
	ReadBuffer     Size     `toml:"read_buffer"`     // udp, unix: SO_RCVBUF wanted
	MaxConnections int      `toml:"max_connections"` // tcp
	IdleTimeout    Duration `toml:"idle_timeout"`    // tcp
	SocketMode     string   `toml:"socket_mode"`     // unix: octal permission bits
	Window         int      `toml:"window"`          // relp: unacknowledged frames allowed per connection

	// How an output that converts formats completes this listener's messages.
	Timezone     string `toml:"timezone"`      // IANA zone for RFC 3164 stamps; default the host's
	FillHostname *bool  `toml:"fill_hostname"` // default true
	AddOrigin    *bool  `toml:"add_origin"`    // default true

	Dedup bool `toml:"dedup"` // drop second copies of messages stamped by another relay

	AllowedNetworks []string `toml:"allowed_networks"` // sender CIDRs; empty allows all
	RateLimit       float64  `toml:"rate_limit"`       // messages per second per sender; 0 = none
	RateBurst       int      `toml:"rate_burst"`

	TLS ListenerTLSConfig `toml:"tls"`
}

// ListenerTLSConfig is the tls table of a listener with protocol "tls"
// (RFC 5425).
type ListenerTLSConfig struct {
	CertFile     string   `toml:"cert_file"`
	KeyFile      string   `toml:"key_file"`
	ClientCAFile string   `toml:"client_ca_file"` // set: clients must present a certificate signed by it
	AllowedNames []string `toml:"allowed_names"`  // client certificate subject CN or SAN allow-list
	MinVersion   string   `toml:"min_version"`    // "1.2" (default) or "1.3"
	CipherSuites []string `toml:"cipher_suites"`  // TLS 1.2 suites by Go name; empty = Go's defaults
}

// OutputTLSConfig is the tls table of an output with protocol "tls".
type OutputTLSConfig struct {
	Enable             bool     `toml:"enable"`      // relp: run the session over TLS
	CAFile             string   `toml:"ca_file"`     // empty: the system roots
	ServerName         string   `toml:"server_name"` // empty: the host of address
	CertFile           string   `toml:"cert_file"`   // client certificate for mutual TLS
	KeyFile            string   `toml:"key_file"`
	InsecureSkipVerify bool     `toml:"insecure_skip_verify"`
	MinVersion         string   `toml:"min_version"`
	CipherSuites       []string `toml:"cipher_suites"`
}

// OutputConfig is one [[output]] table.
type OutputConfig struct {
	Name           string          `toml:"name"`
	Protocol       string          `toml:"protocol"` // tcp, udp, file
	Address        string          `toml:"address"`  // tcp, udp, relp
	Targets        []string        `toml:"targets"`  // several upstreams instead of address
	Mode           string          `toml:"mode"`     // with targets: failover or loadbalance
	ProbeInterval  Duration        `toml:"probe_interval"`
	Path           string          `toml:"path"`    // file
	Framing        string          `toml:"framing"` // tcp: octet-counting or lf
	Format         string          `toml:"format"`  // raw, rfc5424 or rfc3164
	StampSequence  bool            `toml:"stamp_sequence"`
	ConnectTimeout Duration        `toml:"connect_timeout"`
	WriteTimeout   Duration        `toml:"write_timeout"`
	ConfirmDelay   Duration        `toml:"confirm_delay"` // tcp
	Window         int             `toml:"window"`        // relp: frames sent ahead of their acknowledgements
	TLS            OutputTLSConfig `toml:"tls"`
	RetryInitial   Duration        `toml:"retry_initial"`
	RetryMax       Duration        `toml:"retry_max"`
	Queue          QueueConfig     `toml:"queue"`
}

// QueueConfig is the queue table inside an [[output]].
type QueueConfig struct {
	MaxFileSize   Size     `toml:"max_file_size"`
	SyncEvery     int64    `toml:"sync_every"`
	SyncInterval  Duration `toml:"sync_interval"`
	BatchMessages int      `toml:"batch_messages"`
	BatchBytes    Size     `toml:"batch_bytes"`
	Linger        Duration `toml:"linger"`
	MaxBytes      Size     `toml:"max_bytes"`
	FullPolicy    string   `toml:"full_policy"`
	BlockTimeout  Duration `toml:"block_timeout"`
}

// RouteConfig is one [[route]] table. Every condition that is set must
// hold; a route without conditions matches every message.
type RouteConfig struct {
	Name          string         `toml:"name"`
	Outputs       []string       `toml:"outputs"`
	Severity      NameOrNumber   `toml:"severity"`       // this severity and more severe
	Severities    []NameOrNumber `toml:"severities"`     // exactly these
	NotSeverities []NameOrNumber `toml:"not_severities"` // all but these
	Facilities    []NameOrNumber `toml:"facilities"`
	NotFacilities []NameOrNumber `toml:"not_facilities"`
	Listeners     []string       `toml:"listeners"`
	Hostnames     []string       `toml:"hostnames"` // globs, case-insensitive
	AppNames      []string       `toml:"app_names"` // globs
	Final         bool           `toml:"final"`     // stop evaluating routes after this one matched
	Fallback      bool           `toml:"fallback"`  // only for messages no other route matched
}

// Defaults applied by LoadConfig where a key is absent.
const (
	DefaultMaxMessageSize  = 64 << 10
	DefaultReadBuffer      = 4 << 20
	DefaultMaxConnections  = 1024
	DefaultIdleTimeout     = 10 * time.Minute
	DefaultShutdownTimeout = 5 * time.Second
	DefaultConnectTimeout  = 5 * time.Second
	DefaultWriteTimeout    = 30 * time.Second
	DefaultConfirmDelay    = 50 * time.Millisecond
	DefaultRetryInitial    = 100 * time.Millisecond
	DefaultRetryMax        = 5 * time.Second
	DefaultRELPWindow      = 128
	DefaultProbeInterval   = 30 * time.Second
	DefaultBlockTimeout    = 2 * time.Second
	DefaultConfirmWindow   = 16 << 20 // bytes an output holds unconfirmed (outputs.WorkerOptions.MaxUnsettledBytes)
)

// Duration is a time.Duration written as a Go duration string ("5s", "1m30s").
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q (use a number with a unit, e.g. \"5s\" or \"250ms\")", b)
	}
	if v < 0 {
		return fmt.Errorf("invalid duration %q: must not be negative", b)
	}
	d.Duration = v
	return nil
}

// Size is a byte count written as an integer or as a string with a unit:
// "64KiB", "4MiB", "1GiB" (powers of 1024) or "64KB", "4MB" (powers of 1000).
type Size int64

// UnmarshalTOML accepts an integer or a string with a unit.
func (s *Size) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case int64:
		if v < 0 {
			return fmt.Errorf("invalid size %d: must not be negative", v)
		}
		*s = Size(v)
		return nil
	case string:
		n, err := parseSize(v)
		if err != nil {
			return err
		}
		*s = Size(n)
		return nil
	default:
		return fmt.Errorf("invalid size %v: use an integer number of bytes or a string such as \"64KiB\"", v)
	}
}

var sizeUnits = []struct {
	suffix string
	factor int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30},
	{"B", 1},
}

func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	factor := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(t, u.suffix) {
			t = strings.TrimSpace(strings.TrimSuffix(t, u.suffix))
			factor = u.factor
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/factor {
		return 0, fmt.Errorf("invalid size %q: use an integer number of bytes or a string such as \"64KiB\"", s)
	}
	return n * factor, nil
}

// ConfigError lists every problem found in a configuration file.
type ConfigError struct {
	File     string
	Problems []string
}

func (e *ConfigError) Error() string {
	if len(e.Problems) == 1 {
		return fmt.Sprintf("config %s: %s", e.File, e.Problems[0])
	}
	return fmt.Sprintf("config %s: %d problems:\n  %s", e.File, len(e.Problems), strings.Join(e.Problems, "\n  "))
}

// LoadConfig reads, decodes, defaults and validates the file at path. A
// *ConfigError reports every problem, each naming its key and, where it can
// be found, its line.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return ParseConfig(path, data)
}

// ParseConfig is LoadConfig on bytes already read; name is used in errors
// and relative paths are kept as they are.
func ParseConfig(name string, data []byte) (*Config, error) {
	var cfg Config
	md, err := toml.Decode(string(data), &cfg)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, &ConfigError{File: name, Problems: []string{describeParseError(pe)}}
		}
		return nil, &ConfigError{File: name, Problems: []string{err.Error()}}
	}
	lines := indexKeyLines(data)
	var problems []string
	for _, k := range md.Undecoded() {
		problems = append(problems, lines.at(k, "unknown key "+strconv.Quote(k.String())))
	}
	cfg.applyDefaults()
	problems = append(problems, cfg.validate(lines)...)
	if len(problems) > 0 {
		return nil, &ConfigError{File: name, Problems: problems}
	}
	return &cfg, nil
}

func describeParseError(pe toml.ParseError) string {
	if pe.LastKey != "" {
		return fmt.Sprintf("line %d: %s: %s", pe.Position.Line, pe.LastKey, pe.Message)
	}
	return fmt.Sprintf("line %d: %s", pe.Position.Line, pe.Message)
}

func (c *Config) applyDefaults() {
	if c.DataDir == "" {
		c.DataDir = "./data"
	}
	if c.RelayID == "" {
		c.RelayID, _ = os.Hostname()
	}
	if c.DedupWindow == 0 {
		c.DedupWindow = 65536
	}
	if c.MemoryLimit == nil {
		// What the relay holds scales with its outputs (each keeps up to
		// 16 MiB of batches waiting for confirmation); a soft limit a
		// little above that keeps the Go heap from growing to twice the
		// live data, as it would by default.
		c.MemoryLimit = ptr(Size(32<<20 + DefaultConfirmWindow*len(c.Outputs)))
	}
	if c.ShutdownTimeout.Duration == 0 {
		c.ShutdownTimeout.Duration = DefaultShutdownTimeout
	}
	for i := range c.Listeners {
		l := &c.Listeners[i]
		l.Protocol = strings.ToLower(l.Protocol)
		if l.MaxMessageSize == 0 {
			l.MaxMessageSize = DefaultMaxMessageSize
		}
		if l.ReadBuffer == 0 {
			l.ReadBuffer = DefaultReadBuffer
		}
		if l.MaxConnections == 0 {
			l.MaxConnections = DefaultMaxConnections
		}
		if l.IdleTimeout.Duration == 0 {
			l.IdleTimeout.Duration = DefaultIdleTimeout
		}
		if l.SocketMode == "" {
			l.SocketMode = "0666"
		}
		if l.Window == 0 {
			l.Window = DefaultRELPWindow
		}
		if l.FillHostname == nil {
			l.FillHostname = ptr(true)
		}
		if l.AddOrigin == nil {
			l.AddOrigin = ptr(true)
		}
	}
	for i := range c.Outputs {
		o := &c.Outputs[i]
		o.Protocol = strings.ToLower(o.Protocol)
		if o.Framing == "" {
			o.Framing = "octet-counting"
		}
		if o.ConnectTimeout.Duration == 0 {
			o.ConnectTimeout.Duration = DefaultConnectTimeout
		}
		if o.WriteTimeout.Duration == 0 {
			o.WriteTimeout.Duration = DefaultWriteTimeout
		}
		if o.ConfirmDelay.Duration == 0 {
			o.ConfirmDelay.Duration = DefaultConfirmDelay
		}
		if o.RetryInitial.Duration == 0 {
			o.RetryInitial.Duration = DefaultRetryInitial
		}
		if o.RetryMax.Duration == 0 {
			o.RetryMax.Duration = DefaultRetryMax
		}
		if o.Window == 0 {
			o.Window = DefaultRELPWindow
		}
		if o.Mode == "" {
			o.Mode = "failover"
		}
		if o.Format == "" {
			o.Format = "raw"
		}
		if o.Queue.FullPolicy == "" {
			o.Queue.FullPolicy = "block"
		}
		if o.Queue.BlockTimeout.Duration == 0 {
			o.Queue.BlockTimeout.Duration = DefaultBlockTimeout
		}
		if o.ProbeInterval.Duration == 0 {
			o.ProbeInterval.Duration = DefaultProbeInterval
		}
	}
}

// validate returns every semantic problem, each naming its key.
func (c *Config) validate(lines keyLines) []string {
	var p []string
	add := func(table string, idx int, key, format string, args ...any) {
		p = append(p, lines.atIndex(table, idx, key, fmt.Sprintf(format, args...)))
	}

	if strings.TrimSpace(c.DataDir) == "" {
		add("", -1, "data_dir", "must not be empty")
	}
	if c.DedupWindow < 64 || c.DedupWindow > 1<<24 {
		add("", -1, "dedup_window", "%d is out of range: use 64 to 16777216", c.DedupWindow)
	}
	if c.Metrics.Address != "" {
		if err := checkHostPort(c.Metrics.Address); err != nil {
			add("metrics", -1, "address", "%v", err)
		}
	}

	listenerNames := map[string]bool{}
	for i, l := range c.Listeners {
		if l.Name == "" {
			add("listener", i, "name", "is required")
		} else if listenerNames[l.Name] {
			add("listener", i, "name", "duplicate listener name %q", l.Name)
		}
		listenerNames[l.Name] = true
		switch l.Protocol {
		case "udp", "tcp", "relp", "tls":
			if err := checkHostPort(l.Address); err != nil {
				add("listener", i, "address", "%v", err)
			}
		case "unix":
			if l.Address == "" {
				add("listener", i, "address", "is required: the path of the socket to create")
			}
			if m, err := strconv.ParseUint(l.SocketMode, 8, 32); err != nil || m > 0o777 {
				add("listener", i, "socket_mode", "invalid mode %q: use octal permission bits such as \"0666\"", l.SocketMode)
			}
		case "":
			add("listener", i, "protocol", "is required: one of udp, tcp, tls, relp, unix")
		default:
			add("listener", i, "protocol", "unknown protocol %q: use udp, tcp, tls, relp or unix", l.Protocol)
		}
		if l.MaxMessageSize < 480 || l.MaxMessageSize > 16<<20 {
			add("listener", i, "max_message_size", "%d is out of range: use 480 bytes to 16MiB", l.MaxMessageSize)
		}
		if l.MaxConnections < 0 {
			add("listener", i, "max_connections", "must not be negative")
		}
		if l.Window < 0 || l.Window > 65536 {
			add("listener", i, "window", "%d is out of range: use 1 to 65536", l.Window)
		}
		if l.Timezone != "" {
			if _, err := time.LoadLocation(l.Timezone); err != nil {
				add("listener", i, "timezone", "unknown time zone %q: use an IANA name such as \"Europe/Berlin\" or \"UTC\"", l.Timezone)
			}
		}
		for _, n := range l.AllowedNetworks {
			if _, err := netip.ParsePrefix(n); err != nil {
				if _, err := netip.ParseAddr(n); err != nil {
					add("listener", i, "allowed_networks", "invalid network %q: use CIDR notation such as \"192.0.2.0/24\" or an address", n)
				}
			}
		}
		if l.RateLimit < 0 {
			add("listener", i, "rate_limit", "must not be negative")
		}
		if l.RateBurst < 0 {
			add("listener", i, "rate_burst", "must not be negative")
		}
		if l.Protocol == "unix" {
			// A Unix socket's senders have no network address: the keys
			// could only be ignored, which would hide a mistake.
			if len(l.AllowedNetworks) > 0 {
				add("listener", i, "allowed_networks", "does not apply to unix listeners (senders have no network address): limit who may write with socket_mode")
			}
			if l.RateLimit > 0 || l.RateBurst > 0 {
				key := "rate_limit"
				if l.RateLimit == 0 {
					key = "rate_burst"
				}
				add("listener", i, key, "does not apply to unix listeners (senders have no address to limit)")
			}
		}
		if l.Protocol == "relp" && (l.TLS.CertFile == "") != (l.TLS.KeyFile == "") {
			add("listener", i, "tls.cert_file", "RELP over TLS needs both tls.cert_file and tls.key_file")
		}
		if l.Protocol == "tls" {
			if l.TLS.CertFile == "" {
				add("listener", i, "tls.cert_file", "is required for protocol \"tls\"")
			}
			if l.TLS.KeyFile == "" {
				add("listener", i, "tls.key_file", "is required for protocol \"tls\"")
			}
		}
		if len(l.TLS.AllowedNames) > 0 && l.TLS.ClientCAFile == "" {
			add("listener", i, "tls.allowed_names", "needs tls.client_ca_file: names are checked on verified client certificates")
		}
		checkTLSVersionAndSuites(l.TLS.MinVersion, l.TLS.CipherSuites, func(key, format string, args ...any) {
			add("listener", i, "tls."+key, format, args...)
		})
	}

	outputNames := map[string]bool{}
	for i, o := range c.Outputs {
		if o.Name == "" {
			add("output", i, "name", "is required")
		} else if outputNames[o.Name] {
			add("output", i, "name", "duplicate output name %q", o.Name)
		} else if err := checkQueueName(o.Name); err != nil {
			add("output", i, "name", "%v", err)
		}
		outputNames[o.Name] = true
		switch o.Protocol {
		case "tcp", "udp", "relp", "tls":
			switch {
			case o.Address != "" && len(o.Targets) > 0:
				add("output", i, "targets", "set either address or targets, not both")
			case len(o.Targets) > 0:
				for _, t := range o.Targets {
					if err := checkHostPort(t); err != nil {
						add("output", i, "targets", "%v", err)
					}
				}
			default:
				if err := checkHostPort(o.Address); err != nil {
					add("output", i, "address", "%v", err)
				}
			}
			switch o.Mode {
			case "failover", "loadbalance":
			default:
				add("output", i, "mode", "unknown mode %q: use \"failover\" or \"loadbalance\"", o.Mode)
			}
			if o.Path != "" {
				add("output", i, "path", "is only for protocol \"file\"")
			}
		case "file":
			if o.Path == "" {
				add("output", i, "path", "is required for protocol \"file\"")
			}
			if o.Address != "" || len(o.Targets) > 0 {
				add("output", i, "address", "is not used by protocol \"file\": use path")
			}
		case "":
			add("output", i, "protocol", "is required: one of tcp, tls, udp, relp, file")
		default:
			add("output", i, "protocol", "unknown protocol %q: use tcp, tls, udp, relp or file", o.Protocol)
		}
		switch o.Format {
		case "raw", "rfc5424", "rfc3164":
		default:
			add("output", i, "format", "unknown format %q: use \"raw\", \"rfc5424\" or \"rfc3164\"", o.Format)
		}
		if o.StampSequence && o.Format != "rfc5424" {
			add("output", i, "stamp_sequence", "needs format = \"rfc5424\": the stamp is structured data")
		}
		switch o.Framing {
		case "octet-counting", "lf":
		default:
			add("output", i, "framing", "unknown framing %q: use \"octet-counting\" or \"lf\"", o.Framing)
		}
		if o.RetryMax.Duration < o.RetryInitial.Duration {
			add("output", i, "retry_max", "%s is shorter than retry_initial %s", o.RetryMax.Duration, o.RetryInitial.Duration)
		}
		if (o.TLS.CertFile == "") != (o.TLS.KeyFile == "") {
			add("output", i, "tls.cert_file", "tls.cert_file and tls.key_file go together")
		}
		checkTLSVersionAndSuites(o.TLS.MinVersion, o.TLS.CipherSuites, func(key, format string, args ...any) {
			add("output", i, "tls."+key, format, args...)
		})
		if o.Window < 0 || o.Window > 65536 {
			add("output", i, "window", "%d is out of range: use 1 to 65536", o.Window)
		}
		if o.Queue.SyncEvery < 0 {
			add("output", i, "queue.sync_every", "must not be negative")
		}
		switch o.Queue.FullPolicy {
		case "block", "drop_newest", "drop_oldest":
		default:
			add("output", i, "queue.full_policy", "unknown policy %q: use \"block\", \"drop_newest\" or \"drop_oldest\"", o.Queue.FullPolicy)
		}
		if o.Queue.BatchMessages < 0 {
			add("output", i, "queue.batch_messages", "must not be negative")
		}
	}

	routeNames := map[string]bool{}
	for i, r := range c.Routes {
		if r.Name == "" {
			add("route", i, "name", "is required")
		} else if routeNames[r.Name] {
			add("route", i, "name", "duplicate route name %q", r.Name)
		}
		routeNames[r.Name] = true
		if len(r.Outputs) == 0 {
			add("route", i, "outputs", "must name at least one output")
		}
		compileConditions(r, listenerNames, func(key, format string, args ...any) {
			add("route", i, key, format, args...)
		})
		for _, name := range r.Outputs {
			if !outputNames[name] {
				add("route", i, "outputs", "names output %q, which is not defined", name)
			}
		}
	}
	if len(c.Listeners) == 0 {
		add("", -1, "listener", "at least one [[listener]] is required")
	}
	if len(c.Outputs) == 0 {
		add("", -1, "output", "at least one [[output]] is required")
	}
	if len(c.Routes) == 0 {
		add("", -1, "route", "at least one [[route]] is required: without one every message is unrouted")
	}
	return p
}

func ptr[T any](v T) *T { return &v }

// checkTLSVersionAndSuites validates min_version and cipher_suites.
func checkTLSVersionAndSuites(minVersion string, suites []string, problem func(key, format string, args ...any)) {
	switch minVersion {
	case "", "1.2", "1.3":
	default:
		problem("min_version", "unsupported version %q: use \"1.2\" or \"1.3\"", minVersion)
	}
	known := map[string]bool{}
	for _, cs := range tls.CipherSuites() {
		known[cs.Name] = true
	}
	for _, name := range suites {
		if !known[name] {
			problem("cipher_suites", "unknown or insecure cipher suite %q (use Go's names, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)", name)
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

// checkQueueName keeps output names usable as directory names under data_dir.
func checkQueueName(name string) error {
	if name == "." || name == ".." || strings.ContainsAny(name, `/\`+"\x00") || filepath.Base(name) != name {
		return fmt.Errorf("invalid name %q: it names the queue directory, so it cannot contain a slash or be . or ..", name)
	}
	return nil
}
