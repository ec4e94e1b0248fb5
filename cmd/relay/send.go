package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/relay-syslog/relay/internal/syslog"
	"github.com/relay-syslog/relay/outputs"
	"github.com/relay-syslog/relay/queue"
	"github.com/relay-syslog/relay/relay"
)

// sendUsage is printed, with the flags, by relay send -h.
const sendUsage = `Usage: relay send [flags] [MESSAGE...]

Send test syslog messages to a relay or any syslog server, over UDP, TCP
(RFC 6587, either framing), TLS (RFC 5425), RELP or a local Unix datagram
socket, in RFC 5424 or RFC 3164, or raw: with -format raw each message is
sent exactly as given, with no header added, so a line such as
"<13>Dec 31 23:59:59 host app: x" tests how the receiver reads it.

The message is the arguments joined by spaces. Without arguments, each line
read from standard input is one message, sent as it is read (so
"tail -f FILE | relay send -proto tcp" works); when standard input is a
terminal or /dev/null, the message is "test message from relay send".
With -count N, each message is sent N times.

A one-line summary goes to standard error; the exit status is 0 when every
message was sent (over RELP: acknowledged), 2 on a usage error (a bad flag or
argument), 1 otherwise.

Examples:
  relay send -address 127.0.0.1:5514 hello
  relay send -proto tcp -address 127.0.0.1:5514 -framing lf -count 1000 -rate 200 -seq load test
  relay send -proto tls -address logs.example.net:6514 -tls-ca ca.pem -severity err disk full
  relay send -proto relp -address 127.0.0.1:2514 -format rfc3164 -facility local7 link down
  relay send -proto unix -sd '[test@32473 run="7"]' -msgid TEST hello
  relay send -format raw '<13>Dec 31 23:59:59 host app: year and zone test'

Flags:
`

// sendDefaultMessage is sent when there are no arguments and standard input
// is a terminal.
const sendDefaultMessage = "test message from relay send"

// sendConfig is what the flags of relay send say.
type sendConfig struct {
	proto                        relay.ListenerProtocol
	address, format              string
	framing                      outputs.Framing
	pri                          int
	hostname, app, procid, msgid []byte
	sd                           []byte
	count                        int
	rate                         float64
	seq                          bool
	timeout                      time.Duration
	tls                          *tls.Config
}

// runSend is relay send: it parses args and sends. Standard input is read
// for messages when there are no arguments and it is not a terminal.
func runSend(args []string, stdout, stderr io.Writer) int {
	var stdin io.Reader
	if fi, err := os.Stdin.Stat(); err == nil && fi.Mode()&os.ModeCharDevice == 0 {
		stdin = os.Stdin
	}
	return sendCommand(args, stdin, stdout, stderr)
}

// sendCommand is runSend with standard input given: nil means "a terminal",
// and the default message is sent.
func sendCommand(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cfg, words, err := parseSendFlags(args, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "relay send: %v\n", err)
		// A bad flag or argument exits 2, as relay's own usage errors do.
		if errors.As(err, new(*usageError)) {
			return 2
		}
		return 1
	}
	var src messageSource
	switch {
	case len(words) > 0:
		text := strings.Join(words, " ")
		if cfg.framing == outputs.LF && (cfg.proto == relay.ProtocolTCP || cfg.proto == relay.ProtocolTLS) && strings.Contains(text, "\n") {
			fmt.Fprintln(stderr, "relay send: the message contains a line feed, which -framing lf would split: use -framing octet-counting")
			return 2
		}
		src = &repeatSource{text: text}
	case stdin != nil:
		src = &lineSource{r: bufio.NewReaderSize(stdin, 64<<10)}
	default:
		src = &repeatSource{text: sendDefaultMessage}
	}
	start := time.Now()
	n, err := send(cfg, src)
	elapsed := time.Since(start)
	if err != nil {
		if n > 0 {
			fmt.Fprintf(stderr, "relay send: %v (%s %s before the error)\n", err, plural(n, "message"), delivered(cfg.proto))
		} else {
			fmt.Fprintf(stderr, "relay send: %v\n", err)
		}
		return 1
	}
	fmt.Fprintf(stderr, "sent %s over %s to %s in %s\n", plural(n, "message"), cfg.proto, cfg.address, roundDuration(elapsed))
	return 0
}

// delivered says what the count of an error message means.
func delivered(proto relay.ListenerProtocol) string {
	if proto == relay.ProtocolRELP {
		return "acknowledged"
	}
	return "written"
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// roundDuration keeps a summary readable: "12ms", "1.52s".
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Microsecond)
}

// sendFlags are the flags of relay send, as given.
type sendFlags struct {
	fs                                    *flag.FlagSet
	proto, address, framing, format       string
	facility, severity                    string
	app, hostname, procid, msgid, sd      string
	count                                 int
	rate                                  float64
	seq                                   bool
	timeout                               time.Duration
	tlsCA, tlsCert, tlsKey, tlsServerName string
	tlsInsecure                           bool
	set                                   map[string]bool // the flags given
}

// parseSendFlags parses and checks every flag; the error names the flag.
func parseSendFlags(args []string, stdout io.Writer) (*sendConfig, []string, error) {
	f := defineSendFlags()
	if err := f.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			f.fs.SetOutput(stdout)
			fmt.Fprint(stdout, sendUsage)
			f.fs.PrintDefaults()
			return nil, nil, err
		}
		return nil, nil, &usageError{err.Error() + " (see relay send -h)"}
	}
	f.set = map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })

	cfg := &sendConfig{count: f.count, rate: f.rate, seq: f.seq, timeout: f.timeout}
	for _, check := range []func(*sendConfig) error{f.transport, f.header, f.limits, f.tlsFlags} {
		if err := check(cfg); err != nil {
			return nil, nil, &usageError{err.Error()}
		}
	}
	// The files the TLS flags name are read last: a file that cannot be
	// read is an error (exit 1), not a usage error.
	if err := f.tlsClient(cfg); err != nil {
		return nil, nil, err
	}
	return cfg, f.fs.Args(), nil
}

// defineSendFlags returns relay send's flags, ready to parse.
func defineSendFlags() *sendFlags {
	f := &sendFlags{fs: flag.NewFlagSet("relay send", flag.ContinueOnError)}
	fs := f.fs
	// Errors are reported once, by the caller, in one line; the usage is
	// printed only when asked for.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.StringVar(&f.proto, "proto", "udp", "transport: "+relay.ListenerProtocols.String())
	// The configuration calls it "protocol"; accept that spelling too.
	fs.StringVar(&f.proto, "protocol", "udp", "the same as -proto")
	fs.StringVar(&f.address, "address", "", "where to send: host:port (default 127.0.0.1:514, for tls 127.0.0.1:6514); for unix the socket path (default /dev/log)")
	fs.StringVar(&f.framing, "framing", "octet-counting", "tcp and tls: octet-counting (RFC 6587 \"LEN MSG\") or lf (a line feed after each message)")
	fs.StringVar(&f.format, "format", "rfc5424", "message format: rfc5424, rfc3164, or raw (each message sent as given, no header added)")
	fs.StringVar(&f.facility, "facility", "user", "facility: a name (kern, user, mail, daemon, auth, syslog, lpr, news, uucp, cron, authpriv, ftp, ntp, security, console, solaris-cron, local0-local7) or 0-23")
	fs.StringVar(&f.severity, "severity", "notice", "severity: a name (emerg, alert, crit, err, warning, notice, info, debug) or 0-7")
	fs.StringVar(&f.app, "app", "relay-send", "APP-NAME (RFC 3164: the TAG)")
	fs.StringVar(&f.hostname, "hostname", "", "HOSTNAME (default: this host's name)")
	fs.StringVar(&f.procid, "procid", "", "PROCID (default: the process id of relay send)")
	fs.StringVar(&f.msgid, "msgid", "", "MSGID (default none)")
	fs.StringVar(&f.sd, "sd", "", "RFC 5424 STRUCTURED-DATA, e.g. '[test@32473 run=\"1\"]'; RFC 3164 puts it in front of the text")
	fs.IntVar(&f.count, "count", 1, "how many times each message is sent")
	fs.Float64Var(&f.rate, "rate", 0, "messages per second (0: as fast as possible)")
	fs.BoolVar(&f.seq, "seq", false, "append \" seq=N\" (N = 1, 2, …) to every message, so a receiver can check order and loss")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "time allowed to connect, for a write, and for RELP acknowledgements")
	fs.StringVar(&f.tlsCA, "tls-ca", "", "tls: CA certificates (PEM) to verify the server (default: the system's roots)")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "tls: client certificate (PEM) for mutual TLS")
	fs.StringVar(&f.tlsKey, "tls-key", "", "tls: the client certificate's private key (PEM)")
	fs.StringVar(&f.tlsServerName, "tls-server-name", "", "tls: name expected in the server's certificate (default: the host part of -address)")
	fs.BoolVar(&f.tlsInsecure, "tls-insecure", false, "tls: do not verify the server's certificate (for tests only)")
	return f
}

// transport checks -proto, -address and -framing.
func (f *sendFlags) transport(cfg *sendConfig) error {
	proto, err := relay.ListenerProtocols.Parse(f.proto)
	if err != nil {
		return fmt.Errorf("-proto %q: use %s", f.proto, relay.ListenerProtocols)
	}
	cfg.proto = proto
	switch cfg.proto {
	case relay.ProtocolUDP, relay.ProtocolTCP, relay.ProtocolRELP:
		cfg.address = "127.0.0.1:514"
	case relay.ProtocolTLS:
		cfg.address = "127.0.0.1:6514" // RFC 5425 §4.1
	case relay.ProtocolUnix:
		cfg.address = "/dev/log"
	}
	if f.set["address"] {
		cfg.address = f.address
	}
	if cfg.proto == relay.ProtocolUnix {
		if cfg.address == "" {
			return errors.New("-address: empty: give the path of the socket")
		}
	} else if _, port, err := net.SplitHostPort(cfg.address); err != nil || port == "" {
		return fmt.Errorf("-address %q: use host:port, e.g. 127.0.0.1:5514", cfg.address)
	}
	switch f.framing {
	case "octet-counting":
		cfg.framing = outputs.OctetCounting
	case "lf":
		cfg.framing = outputs.LF
	default:
		return fmt.Errorf("-framing %q: use octet-counting or lf", f.framing)
	}
	if f.set["framing"] && cfg.proto != relay.ProtocolTCP && cfg.proto != relay.ProtocolTLS {
		return fmt.Errorf("-framing is for -proto tcp and tls; %s has its own", cfg.proto)
	}
	return nil
}

// header checks -format and the flags that make up each message's header.
func (f *sendFlags) header(cfg *sendConfig) error {
	switch f.format {
	case "rfc5424", "rfc3164":
		cfg.format = f.format
	case "raw":
		cfg.format = f.format
		// A raw message carries its own header: a header flag would be
		// silently ignored.
		for _, name := range []string{"facility", "severity", "app", "hostname", "procid", "msgid", "sd"} {
			if f.set[name] {
				return fmt.Errorf("-%s is not used with -format raw: the message is sent as given, header included", name)
			}
		}
		return nil
	default:
		return fmt.Errorf("-format %q: use rfc5424, rfc3164 or raw", f.format)
	}
	fac, ok := syslog.LookupFacility(f.facility)
	if !ok {
		return fmt.Errorf("-facility %q: unknown facility: use kern, user, mail, daemon, auth, syslog, lpr, news, uucp, cron, authpriv, ftp, ntp, security, console, solaris-cron, local0-local7, or 0-23", f.facility)
	}
	sev, ok := syslog.LookupSeverity(f.severity)
	if !ok {
		return fmt.Errorf("-severity %q: unknown severity: use emerg, alert, crit, err, warning, notice, info, debug, or 0-7", f.severity)
	}
	cfg.pri = fac*8 + sev

	hostname, procid := f.hostname, f.procid
	if !f.set["hostname"] {
		if h, err := os.Hostname(); err == nil {
			hostname = h
		}
	}
	if !f.set["procid"] {
		procid = strconv.Itoa(os.Getpid())
	}
	// RFC 5424 §6 limits. The formatter would cut or mend a bad value;
	// a test tool should say so instead of sending something else.
	tag := ""
	if cfg.format == "rfc3164" {
		tag = ":[]" // they would end the TAG
	}
	for _, h := range []struct {
		dst       *[]byte
		flag, v   string
		max       int
		forbidden string
	}{
		{&cfg.hostname, "hostname", hostname, 255, ""},
		{&cfg.app, "app", f.app, 48, tag},
		{&cfg.procid, "procid", procid, 128, tag},
		{&cfg.msgid, "msgid", f.msgid, 32, ""},
	} {
		var err error
		if *h.dst, err = headerField(h.flag, h.v, h.max, h.forbidden); err != nil {
			return err
		}
	}
	if f.sd != "" && f.sd != "-" {
		if !syslog.ValidSD([]byte(f.sd)) {
			return fmt.Errorf("-sd %q: not valid RFC 5424 STRUCTURED-DATA: use one or more [ID name=\"value\" …] elements, with \\\" \\\\ \\] escaped in values", f.sd)
		}
		cfg.sd = []byte(f.sd)
	}
	return nil
}

// limits checks -count, -rate and -timeout.
func (f *sendFlags) limits(cfg *sendConfig) error {
	if cfg.count < 1 {
		return fmt.Errorf("-count %d: must be at least 1", cfg.count)
	}
	if cfg.rate < 0 || cfg.rate != cfg.rate {
		return fmt.Errorf("-rate %v: must be 0 (as fast as possible) or more", cfg.rate)
	}
	if cfg.timeout <= 0 {
		return fmt.Errorf("-timeout %v: must be positive", cfg.timeout)
	}
	return nil
}

// sendTLSNames are the flags of relay send's TLS settings, for errors.
var sendTLSNames = outputs.TLSNames{
	CAFile:         "-tls-ca",
	CertFile:       "-tls-cert",
	KeyFile:        "-tls-key",
	ServerName:     "-tls-server-name",
	Address:        "-address",
	ConnectTimeout: "-timeout",
	Insecure:       "-tls-insecure",
}

// tlsFlags checks that the -tls-* flags go together.
func (f *sendFlags) tlsFlags(cfg *sendConfig) error {
	tlsSet := ""
	for _, name := range []string{"tls-ca", "tls-cert", "tls-key", "tls-server-name", "tls-insecure"} {
		if f.set[name] {
			tlsSet = name
		}
	}
	if cfg.proto != relay.ProtocolTLS {
		if tlsSet != "" {
			return fmt.Errorf("-%s is for -proto tls, not %s", tlsSet, cfg.proto)
		}
		return nil
	}
	switch {
	case f.tlsCert != "" && f.tlsKey == "":
		return fmt.Errorf("%s needs %s", sendTLSNames.CertFile, sendTLSNames.KeyFile)
	case f.tlsKey != "" && f.tlsCert == "":
		return fmt.Errorf("%s needs %s", sendTLSNames.KeyFile, sendTLSNames.CertFile)
	}
	return nil
}

// tlsClient reads, for -proto tls, the files the -tls-* flags name.
func (f *sendFlags) tlsClient(cfg *sendConfig) error {
	if cfg.proto != relay.ProtocolTLS {
		return nil
	}
	var err error
	cfg.tls, err = outputs.TLSClient{
		CAFile:             f.tlsCA,
		CertFile:           f.tlsCert,
		KeyFile:            f.tlsKey,
		ServerName:         f.tlsServerName,
		Address:            cfg.address,
		InsecureSkipVerify: f.tlsInsecure,
		Names:              sendTLSNames,
	}.Config()
	return err
}

// headerField checks an RFC 5424 header field given by flag: printable
// US-ASCII without space, at most max characters, none of also. "" and "-"
// mean the NILVALUE (nil).
func headerField(flagName, v string, max int, also string) ([]byte, error) {
	if v == "" || v == "-" {
		return nil, nil
	}
	if len(v) > max {
		return nil, fmt.Errorf("-%s %q: %d characters; RFC 5424 allows at most %d", flagName, v, len(v), max)
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < '!' || c > '~' || strings.IndexByte(also, c) >= 0 {
			return nil, fmt.Errorf("-%s %q: character %q not allowed: use printable US-ASCII without spaces%s", flagName, v, c, alsoText(also))
		}
	}
	return []byte(v), nil
}

func alsoText(also string) string {
	if also == "" {
		return ""
	}
	return " and none of " + also + " (RFC 3164 TAG)"
}

// messageSource yields the texts to send.
type messageSource interface {
	// next returns the next text; ok is false at the end. idle says that
	// the next call may block waiting for input, so buffered messages
	// should be written out first.
	next() (text string, ok bool, err error)
	idle() bool
}

// repeatSource yields one text, -count times (the loop repeats it).
type repeatSource struct {
	text string
	done bool
}

func (s *repeatSource) next() (string, bool, error) {
	if s.done {
		return "", false, nil
	}
	s.done = true
	return s.text, true, nil
}

func (s *repeatSource) idle() bool { return false }

// lineSource yields the non-empty lines of a reader.
type lineSource struct{ r *bufio.Reader }

func (s *lineSource) next() (string, bool, error) {
	for {
		line, err := s.r.ReadString('\n')
		line = strings.TrimRight(line, "\r\n")
		if line != "" {
			return line, true, nil
		}
		if err == io.EOF {
			return "", false, nil
		}
		if err != nil {
			return "", false, fmt.Errorf("read standard input: %w", err)
		}
	}
}

func (s *lineSource) idle() bool { return s.r.Buffered() == 0 }

// send connects, sends every message of src -count times at -rate, and
// returns how many were delivered.
func send(cfg *sendConfig, src messageSource) (int, error) {
	c, err := connect(cfg)
	if err != nil {
		return 0, err
	}
	var interval time.Duration
	if cfg.rate > 0 {
		interval = time.Duration(float64(time.Second) / cfg.rate)
	}
	var (
		m    syslog.Message
		sent int
		next = time.Now()
	)
	for {
		if src.idle() {
			if err := c.flush(); err != nil {
				return c.close(err)
			}
		}
		text, ok, err := src.next()
		if err != nil || !ok {
			n, ferr := c.finish()
			return n, errors.Join(err, ferr)
		}
		for range cfg.count {
			if interval > 0 {
				if d := time.Until(next); d > 0 {
					time.Sleep(d)
				}
				next = next.Add(interval)
			}
			msgText := text
			if cfg.seq {
				msgText += " seq=" + strconv.Itoa(sent+1)
			}
			if err := c.add(func(dst []byte) []byte { return cfg.format1(dst, &m, msgText) }); err != nil {
				return c.close(err)
			}
			sent++
			if interval > 0 {
				if err := c.flush(); err != nil {
					return c.close(err)
				}
			}
		}
	}
}

// format1 appends one message with text to dst, built from the header the
// flags gave, stamped now; under -format raw, text alone.
func (cfg *sendConfig) format1(dst []byte, m *syslog.Message, text string) []byte {
	if cfg.format == "raw" {
		return append(dst, text...)
	}
	*m = syslog.Message{
		PRI: cfg.pri, HasPRI: true,
		Timestamp: time.Now(), HasTimestamp: true,
		Hostname: cfg.hostname, AppName: cfg.app, ProcID: cfg.procid, MsgID: cfg.msgid,
		StructuredData: cfg.sd,
		Msg:            []byte(text),
	}
	if cfg.format == "rfc3164" {
		return syslog.AppendRFC3164(dst, m, syslog.FormatOptions{})
	}
	return syslog.AppendRFC5424(dst, m, syslog.FormatOptions{})
}

// sendBatch is how many messages relay send hands to its destination at
// once, at most, when nothing makes it write them sooner.
const sendBatch = 256

// errTooLarge is reported for a message the network refuses as too large
// for one datagram.
var errTooLarge = errors.New("message too long for one datagram")

// sendConn sends relay send's messages through the destination an output of
// the same protocol uses, in batches.
type sendConn struct {
	dest    outputs.Destination
	what    string // "tcp 127.0.0.1:514": the start of every error
	proto   relay.ListenerProtocol
	timeout time.Duration
	// buf holds the messages of the next batch one after another; ends
	// says where each ends.
	buf     []byte
	ends    []int
	entries []queue.Entry
	// written counts the messages of the batches written; tooLarge those
	// a datagram socket dropped.
	written, tooLarge int
}

// connect opens the connection -proto names.
func connect(cfg *sendConfig) (*sendConn, error) {
	c := &sendConn{what: string(cfg.proto) + " " + cfg.address, proto: cfg.proto, timeout: cfg.timeout}
	switch cfg.proto {
	case relay.ProtocolUDP, relay.ProtocolUnix:
		network := "udp"
		if cfg.proto == relay.ProtocolUnix {
			network = "unixgram"
		}
		d := outputs.NewDatagram(network, cfg.address, cfg.timeout, cfg.timeout)
		d.OnTooLarge = func() { c.tooLarge++ }
		c.dest = d
	case relay.ProtocolTCP, relay.ProtocolTLS:
		opts := outputs.TCPOptions{
			Address:        cfg.address,
			Framing:        cfg.framing,
			ConnectTimeout: cfg.timeout,
			WriteTimeout:   cfg.timeout,
		}
		if cfg.proto == relay.ProtocolTLS {
			opts.TLS = func() (*tls.Config, error) { return cfg.tls, nil }
			opts.TLSNames = sendTLSNames
		}
		c.dest = outputs.NewTCP(opts)
	case relay.ProtocolRELP:
		c.dest = outputs.NewRELP(outputs.RELPOptions{
			Address:        cfg.address,
			ConnectTimeout: cfg.timeout,
			WriteTimeout:   cfg.timeout,
			CloseTimeout:   cfg.timeout,
		})
	default:
		return nil, fmt.Errorf("-proto %q: no sender for it", cfg.proto)
	}
	if err := c.dest.Connect(context.Background()); err != nil {
		return nil, fmt.Errorf("%s: %w", c.what, err)
	}
	return c, nil
}

// add appends one message to the batch with appendMsg and writes the batch
// out once it is full.
func (c *sendConn) add(appendMsg func(dst []byte) []byte) error {
	c.buf = appendMsg(c.buf)
	c.ends = append(c.ends, len(c.buf))
	if len(c.ends) >= sendBatch || len(c.buf) >= 64<<10 {
		return c.flush()
	}
	return nil
}

// flush writes out the batch and checks that the session is still sound
// (over RELP: that no message was refused; over TCP: that the connection
// is open).
func (c *sendConn) flush() error {
	if err := c.write(); err != nil {
		return err
	}
	_, err := c.dest.Settled(time.Now())
	return err
}

// write writes out the batch.
func (c *sendConn) write() error {
	if len(c.ends) == 0 {
		return nil
	}
	c.entries = c.entries[:0]
	start := 0
	for _, end := range c.ends {
		c.entries = append(c.entries, queue.Entry{Data: c.buf[start:end]})
		start = end
	}
	dropped := c.tooLarge
	_, err := c.dest.Write(context.Background(), c.entries)
	if err == nil {
		c.written += len(c.ends)
		if c.tooLarge > dropped {
			err = errTooLarge
		}
	}
	c.buf, c.ends = c.buf[:0], c.ends[:0]
	return err
}

// finish writes out the batch and ends the session where the protocol
// lets relay send learn that the server has everything: over RELP every
// message is acknowledged, then close; over TCP and TLS the server closes
// its side after reading to the end (a server that closed first has read
// everything too). It returns how many messages are known to be delivered.
func (c *sendConn) finish() (int, error) {
	err := c.write()
	if f, ok := c.dest.(interface{ Finish(time.Duration) error }); ok && err == nil {
		err = f.Finish(c.timeout)
		if err != nil && c.proto != relay.ProtocolRELP {
			err = fmt.Errorf("%w; the server may not have read every message", err)
		}
	}
	return c.close(err)
}

// close closes the connection after err, or after finish, and returns how
// many messages are known to be delivered: over TCP and TLS written, over
// RELP acknowledged, as datagrams sent (what the destination counts in its
// offsets, except on a stream, where they count bytes).
func (c *sendConn) close(err error) (int, error) {
	n := c.written
	if c.proto != relay.ProtocolTCP && c.proto != relay.ProtocolTLS {
		settled, _ := c.dest.Settled(time.Now())
		n = int(settled)
	}
	if cerr := c.dest.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("%s: %w", c.what, err)
	}
	return n, nil
}
