package relay

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/relay-syslog/relay/outputs"
	"github.com/relay-syslog/relay/queue"
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
	Name           string           `toml:"name"`
	Protocol       ListenerProtocol `toml:"protocol"`
	Address        string           `toml:"address"` // host:port, or a socket path for unix
	MaxMessageSize Size             `toml:"max_message_size"`
	ReadBuffer     Size             `toml:"read_buffer"`     // udp, unix: SO_RCVBUF wanted
	MaxConnections int              `toml:"max_connections"` // tcp, tls, relp
	IdleTimeout    Duration         `toml:"idle_timeout"`    // tcp, tls, relp
	SocketMode     *FileMode        `toml:"socket_mode"`     // unix; default 0666
	Window         int              `toml:"window"`          // relp: unacknowledged frames allowed per connection

	// kafka: the cluster, the topics consumed and the consumer group whose
	// members share their partitions.
	Brokers        []string `toml:"brokers"`
	Topics         []string `toml:"topics"`
	Group          string   `toml:"group"`
	SessionTimeout Duration `toml:"session_timeout"` // how long the group waits for a silent member

	SASL KafkaSASLConfig `toml:"sasl"` // kafka: as an output's

	// How an output that converts formats completes this listener's messages.
	Timezone     Timezone `toml:"timezone"`      // for RFC 3164 stamps; default the host's
	FillHostname *bool    `toml:"fill_hostname"` // default true
	AddOrigin    *bool    `toml:"add_origin"`    // default true

	Dedup bool `toml:"dedup"` // drop second copies of messages stamped by another relay

	AllowedNetworks []string `toml:"allowed_networks"` // sender CIDRs; empty allows all
	RateLimit       float64  `toml:"rate_limit"`       // messages per second per sender; 0 = none
	RateBurst       int      `toml:"rate_burst"`

	TLS ListenerTLSConfig `toml:"tls"`
}

// ListenerTLSConfig is the tls table of a listener with protocol "tls"
// (RFC 5425) or "relp", the server side; of a kafka listener, the client
// side, with the keys and meaning of an output's.
type ListenerTLSConfig struct {
	CertFile     string   `toml:"cert_file"`
	KeyFile      string   `toml:"key_file"`
	ClientCAFile string   `toml:"client_ca_file"` // set: clients must present a certificate signed by it
	AllowedNames []string `toml:"allowed_names"`  // client certificate subject CN or SAN allow-list
	MinVersion   string   `toml:"min_version"`    // "1.2" (default) or "1.3"
	CipherSuites []string `toml:"cipher_suites"`  // TLS 1.2 suites by Go name; empty = Go's defaults

	// kafka: the brokers' side is checked as an output checks its upstream.
	Enable             bool   `toml:"enable"`
	CAFile             string `toml:"ca_file"`     // empty: the system roots
	ServerName         string `toml:"server_name"` // empty: each broker's host
	InsecureSkipVerify bool   `toml:"insecure_skip_verify"`
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
	Name           string           `toml:"name"`
	Protocol       OutputProtocol   `toml:"protocol"`
	Address        string           `toml:"address"` // tcp, tls, udp, relp
	Targets        []string         `toml:"targets"` // several upstreams instead of address
	Mode           outputs.PoolMode `toml:"mode"`    // with targets
	ProbeInterval  Duration         `toml:"probe_interval"`
	Path           string           `toml:"path"`    // file
	Framing        outputs.Framing  `toml:"framing"` // tcp, tls
	Format         outputs.Format   `toml:"format"`
	Template       string           `toml:"template"` // line layout instead of format
	StampSequence  bool             `toml:"stamp_sequence"`
	ConnectTimeout Duration         `toml:"connect_timeout"`
	WriteTimeout   Duration         `toml:"write_timeout"`
	ConfirmDelay   Duration         `toml:"confirm_delay"` // tcp
	Window         int              `toml:"window"`        // relp: frames sent ahead of their acknowledgements
	TLS            OutputTLSConfig  `toml:"tls"`
	RetryInitial   Duration         `toml:"retry_initial"`
	RetryMax       Duration         `toml:"retry_max"`
	Queue          QueueConfig      `toml:"queue"`
	Brokers        []string         `toml:"brokers"`     // kafka: seed brokers, host:port
	Topic          string           `toml:"topic"`       // kafka
	Key            outputs.KafkaKey `toml:"key"`         // kafka: hostname, relay_id or none
	Compression    string           `toml:"compression"` // kafka: none, gzip, snappy, lz4 or zstd
	SASL           KafkaSASLConfig  `toml:"sasl"`        // kafka

	// file
	FileMode     *FileMode           `toml:"file_mode"` // default 0640
	DirMode      *FileMode           `toml:"dir_mode"`  // default 0750
	MaxOpenFiles int                 `toml:"max_open_files"`
	Fsync        outputs.FsyncPolicy `toml:"fsync"`
	// EscapeControl: control bytes written as #ooo (default true).
	EscapeControl *bool `toml:"escape_control_characters"`
}

// KafkaSASLConfig is the sasl table of a kafka [[output]] or [[listener]].
type KafkaSASLConfig struct {
	Mechanism    string `toml:"mechanism"` // PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
	Username     string `toml:"username"`
	PasswordFile string `toml:"password_file"` // read at each new client
}

// QueueConfig is the queue table inside an [[output]].
type QueueConfig struct {
	MaxFileSize   Size             `toml:"max_file_size"`
	SyncEvery     int64            `toml:"sync_every"`
	SyncInterval  Duration         `toml:"sync_interval"`
	BatchMessages int              `toml:"batch_messages"`
	BatchBytes    Size             `toml:"batch_bytes"`
	Linger        Duration         `toml:"linger"`
	Fsync         queue.FsyncMode  `toml:"fsync"`
	MaxBytes      Size             `toml:"max_bytes"`
	FullPolicy    queue.FullPolicy `toml:"full_policy"`
	BlockTimeout  Duration         `toml:"block_timeout"`
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
	// The sender's address: in one of these networks, in none of them.
	Networks    []string `toml:"networks"`
	NotNetworks []string `toml:"not_networks"`
	// Conditions on the MSG part: any of these substrings (case matters),
	// none of them, any of these RE2 patterns, none of them.
	MessageContains    []string `toml:"message_contains"`
	MessageNotContains []string `toml:"message_not_contains"`
	MessageRegex       []string `toml:"message_regex"`
	MessageNotRegex    []string `toml:"message_not_regex"`
	Final              bool     `toml:"final"`    // stop evaluating routes after this one matched
	Fallback           bool     `toml:"fallback"` // only for messages no other route matched
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
	DefaultSessionTimeout  = 45 * time.Second
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
	// The file is parsed first, as one: after a syntax error nothing of
	// it can be trusted. Its values are then decoded key by key, so that
	// one bad value does not hide the problems of the others.
	var top map[string]toml.Primitive
	md, err := toml.Decode(string(data), &top)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, &ConfigError{File: name, Problems: []string{describeParseError(pe, data)}}
		}
		return nil, &ConfigError{File: name, Problems: []string{err.Error()}}
	}
	var cfg Config
	p := &problems{lines: indexKeyLines(data), badValues: map[string]bool{}, set: map[string]bool{}}
	decodeConfig(&md, top, &cfg, p)
	cfg.applyDefaults()
	cfg.validate(p)
	if len(p.list) > 0 {
		return nil, &ConfigError{File: name, Problems: p.sorted()}
	}
	return &cfg, nil
}

// describeParseError says where the syntax error is. The line is counted
// from the error's byte offset: the parser's own line number is one too
// far for an error found at the end of a line (a table header missing its
// "]" was reported on the line below it).
func describeParseError(pe toml.ParseError, data []byte) string {
	line := pe.Position.Line
	if start := pe.Position.Start; start >= 0 && start <= len(data) {
		line = 1 + bytes.Count(data[:start], []byte("\n"))
	}
	if pe.LastKey != "" {
		return fmt.Sprintf("line %d: %s: %s", line, pe.LastKey, pe.Message)
	}
	return fmt.Sprintf("line %d: %s", line, pe.Message)
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
		if l.SocketMode == nil {
			l.SocketMode = ptr(FileMode(0o666))
		}
		if l.Window == 0 {
			l.Window = DefaultRELPWindow
		}
		if l.SessionTimeout.Duration == 0 {
			l.SessionTimeout.Duration = DefaultSessionTimeout
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
		if o.Queue.BlockTimeout.Duration == 0 {
			o.Queue.BlockTimeout.Duration = DefaultBlockTimeout
		}
		if o.ProbeInterval.Duration == 0 {
			o.ProbeInterval.Duration = DefaultProbeInterval
		}
		if o.Protocol == ProtocolKafka {
			if o.Key == "" {
				o.Key = outputs.KeyHostname
			}
			if o.Compression == "" {
				o.Compression = outputs.DefaultKafkaCompression
			}
		}
	}
}

func ptr[T any](v T) *T { return &v }
