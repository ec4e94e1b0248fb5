package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/relay-syslog/relay/internal/relp"
	"github.com/relay-syslog/relay/internal/syslog"
)

// sendUsage is printed, with the flags, by relay send -h.
const sendUsage = `Usage: relay send [flags] [MESSAGE...]

Send test syslog messages to a relay or any syslog server, over UDP, TCP
(RFC 6587, either framing), TLS (RFC 5425), RELP or a local Unix datagram
socket, in RFC 5424 or RFC 3164.

The message is the arguments joined by spaces. Without arguments, each line
read from standard input is one message, sent as it is read (so
"tail -f FILE | relay send -proto tcp" works); when standard input is a
terminal or /dev/null, the message is "test message from relay send".
With -count N, each message is sent N times.

A one-line summary goes to standard error; the exit status is 0 when every
message was sent (over RELP: acknowledged), 1 otherwise.

Examples:
  relay send -address 127.0.0.1:5514 hello
  relay send -proto tcp -address 127.0.0.1:5514 -framing lf -count 1000 -rate 200 -seq load test
  relay send -proto tls -address logs.example.net:6514 -tls-ca ca.pem -severity err disk full
  relay send -proto relp -address 127.0.0.1:2514 -format rfc3164 -facility local7 link down
  relay send -proto unix -sd '[test@32473 run="7"]' -msgid TEST hello

Flags:
`

// sendDefaultMessage is sent when there are no arguments and standard input
// is a terminal.
const sendDefaultMessage = "test message from relay send"

// relpSendWindow is how many RELP messages may wait for their
// acknowledgement, as rsyslog's omrelp default.
const relpSendWindow = 128

// sendConfig is what the flags of relay send say.
type sendConfig struct {
	proto, address, framing, format string
	pri                             int
	hostname, app, procid, msgid    []byte
	sd                              []byte
	count                           int
	rate                            float64
	seq                             bool
	timeout                         time.Duration
	tls                             *tls.Config
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
		return 1
	}
	var src messageSource
	switch {
	case len(words) > 0:
		text := strings.Join(words, " ")
		if cfg.framing == "lf" && (cfg.proto == "tcp" || cfg.proto == "tls") && strings.Contains(text, "\n") {
			fmt.Fprintln(stderr, "relay send: the message contains a line feed, which -framing lf would split: use -framing octet-counting")
			return 1
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
func delivered(proto string) string {
	if proto == "relp" {
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

// parseSendFlags parses and checks every flag; the error names the flag.
func parseSendFlags(args []string, stdout io.Writer) (*sendConfig, []string, error) {
	fs := flag.NewFlagSet("relay send", flag.ContinueOnError)
	// Errors are reported once, by the caller, in one line; the usage is
	// printed only when asked for.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	proto := fs.String("proto", "udp", "transport: udp, tcp, tls, unix or relp")
	// The configuration calls it "protocol"; accept that spelling too.
	fs.StringVar(proto, "protocol", "udp", "the same as -proto")
	address := fs.String("address", "", "where to send: host:port (default 127.0.0.1:514, for tls 127.0.0.1:6514); for unix the socket path (default /dev/log)")
	framing := fs.String("framing", "octet-counting", "tcp and tls: octet-counting (RFC 6587 \"LEN MSG\") or lf (a line feed after each message)")
	format := fs.String("format", "rfc5424", "message format: rfc5424 or rfc3164")
	facility := fs.String("facility", "user", "facility: a name (kern, user, mail, daemon, auth, syslog, lpr, news, uucp, cron, authpriv, ftp, ntp, security, console, solaris-cron, local0-local7) or 0-23")
	severity := fs.String("severity", "notice", "severity: a name (emerg, alert, crit, err, warning, notice, info, debug) or 0-7")
	app := fs.String("app", "relay-send", "APP-NAME (RFC 3164: the TAG)")
	hostname := fs.String("hostname", "", "HOSTNAME (default: this host's name)")
	procid := fs.String("procid", "", "PROCID (default: the process id of relay send)")
	msgid := fs.String("msgid", "", "MSGID (default none)")
	sd := fs.String("sd", "", "RFC 5424 STRUCTURED-DATA, e.g. '[test@32473 run=\"1\"]'; RFC 3164 puts it in front of the text")
	count := fs.Int("count", 1, "how many times each message is sent")
	rate := fs.Float64("rate", 0, "messages per second (0: as fast as possible)")
	seq := fs.Bool("seq", false, "append \" seq=N\" (N = 1, 2, …) to every message, so a receiver can check order and loss")
	timeout := fs.Duration("timeout", 10*time.Second, "time allowed to connect, for a write, and for RELP acknowledgements")
	tlsCA := fs.String("tls-ca", "", "tls: CA certificates (PEM) to verify the server (default: the system's roots)")
	tlsCert := fs.String("tls-cert", "", "tls: client certificate (PEM) for mutual TLS")
	tlsKey := fs.String("tls-key", "", "tls: the client certificate's private key (PEM)")
	tlsServerName := fs.String("tls-server-name", "", "tls: name expected in the server's certificate (default: the host part of -address)")
	tlsInsecure := fs.Bool("tls-insecure", false, "tls: do not verify the server's certificate (for tests only)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fmt.Fprint(stdout, sendUsage)
			fs.PrintDefaults()
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("%w (see relay send -h)", err)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	cfg := &sendConfig{
		proto: *proto, framing: *framing, format: *format,
		count: *count, rate: *rate, seq: *seq, timeout: *timeout,
	}
	switch cfg.proto {
	case "udp", "tcp", "relp":
		cfg.address = "127.0.0.1:514"
	case "tls":
		cfg.address = "127.0.0.1:6514" // RFC 5425 §4.1
	case "unix":
		cfg.address = "/dev/log"
	default:
		return nil, nil, fmt.Errorf("-proto %q: use udp, tcp, tls, unix or relp", cfg.proto)
	}
	if set["address"] {
		cfg.address = *address
	}
	if cfg.proto == "unix" {
		if cfg.address == "" {
			return nil, nil, errors.New("-address: empty: give the path of the socket")
		}
	} else if _, port, err := net.SplitHostPort(cfg.address); err != nil || port == "" {
		return nil, nil, fmt.Errorf("-address %q: use host:port, e.g. 127.0.0.1:5514", cfg.address)
	}
	switch cfg.framing {
	case "octet-counting", "lf":
	default:
		return nil, nil, fmt.Errorf("-framing %q: use octet-counting or lf", cfg.framing)
	}
	if set["framing"] && cfg.proto != "tcp" && cfg.proto != "tls" {
		return nil, nil, fmt.Errorf("-framing is for -proto tcp and tls; %s has its own", cfg.proto)
	}
	switch cfg.format {
	case "rfc5424", "rfc3164":
	default:
		return nil, nil, fmt.Errorf("-format %q: use rfc5424 or rfc3164", cfg.format)
	}
	fac, ok := syslog.LookupFacility(*facility)
	if !ok {
		return nil, nil, fmt.Errorf("-facility %q: unknown facility: use kern, user, mail, daemon, auth, syslog, lpr, news, uucp, cron, authpriv, ftp, ntp, security, console, solaris-cron, local0-local7, or 0-23", *facility)
	}
	sev, ok := syslog.LookupSeverity(*severity)
	if !ok {
		return nil, nil, fmt.Errorf("-severity %q: unknown severity: use emerg, alert, crit, err, warning, notice, info, debug, or 0-7", *severity)
	}
	cfg.pri = fac*8 + sev

	if !set["hostname"] {
		if h, err := os.Hostname(); err == nil {
			*hostname = h
		}
	}
	if !set["procid"] {
		*procid = strconv.Itoa(os.Getpid())
	}
	// RFC 5424 §6 limits. The formatter would cut or mend a bad value;
	// a test tool should say so instead of sending something else.
	var err error
	if cfg.hostname, err = headerField("hostname", *hostname, 255, ""); err != nil {
		return nil, nil, err
	}
	also := ""
	if cfg.format == "rfc3164" {
		also = ":[]" // they would end the TAG
	}
	if cfg.app, err = headerField("app", *app, 48, also); err != nil {
		return nil, nil, err
	}
	if cfg.procid, err = headerField("procid", *procid, 128, also); err != nil {
		return nil, nil, err
	}
	if cfg.msgid, err = headerField("msgid", *msgid, 32, ""); err != nil {
		return nil, nil, err
	}
	if *sd != "" && *sd != "-" {
		if !syslog.ValidSD([]byte(*sd)) {
			return nil, nil, fmt.Errorf("-sd %q: not valid RFC 5424 STRUCTURED-DATA: use one or more [ID name=\"value\" …] elements, with \\\" \\\\ \\] escaped in values", *sd)
		}
		cfg.sd = []byte(*sd)
	}
	if cfg.count < 1 {
		return nil, nil, fmt.Errorf("-count %d: must be at least 1", cfg.count)
	}
	if cfg.rate < 0 || cfg.rate != cfg.rate {
		return nil, nil, fmt.Errorf("-rate %v: must be 0 (as fast as possible) or more", cfg.rate)
	}
	if cfg.timeout <= 0 {
		return nil, nil, fmt.Errorf("-timeout %v: must be positive", cfg.timeout)
	}

	tlsSet := ""
	for _, name := range []string{"tls-ca", "tls-cert", "tls-key", "tls-server-name", "tls-insecure"} {
		if set[name] {
			tlsSet = name
		}
	}
	if cfg.proto != "tls" {
		if tlsSet != "" {
			return nil, nil, fmt.Errorf("-%s is for -proto tls, not %s", tlsSet, cfg.proto)
		}
		return cfg, fs.Args(), nil
	}
	cfg.tls, err = sendTLSConfig(cfg.address, *tlsCA, *tlsCert, *tlsKey, *tlsServerName, *tlsInsecure)
	if err != nil {
		return nil, nil, err
	}
	return cfg, fs.Args(), nil
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

func sendTLSConfig(address, caFile, certFile, keyFile, serverName string, insecure bool) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: insecure}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("-tls-ca: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("-tls-ca %s: no PEM certificate found", caFile)
		}
	}
	switch {
	case certFile != "" && keyFile != "":
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("-tls-cert %s, -tls-key %s: %w", certFile, keyFile, err)
		}
		c.Certificates = []tls.Certificate{cert}
	case certFile != "":
		return nil, errors.New("-tls-cert needs -tls-key")
	case keyFile != "":
		return nil, errors.New("-tls-key needs -tls-cert")
	}
	c.ServerName = serverName
	if c.ServerName == "" {
		c.ServerName, _, _ = net.SplitHostPort(address)
	}
	return c, nil
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

// sender is one connection of a transport.
type sender interface {
	send(msg []byte) error
	// flush writes out buffered messages.
	flush() error
	// close flushes, ends the session cleanly and closes the connection.
	// It returns how many of the messages given to send are known to be
	// delivered (written, or over RELP acknowledged).
	close(sent int) (int, error)
}

// send connects, sends every message of src -count times at -rate, and
// returns how many were sent.
func send(cfg *sendConfig, src messageSource) (int, error) {
	s, err := dial(cfg)
	if err != nil {
		return 0, err
	}
	var interval time.Duration
	if cfg.rate > 0 {
		interval = time.Duration(float64(time.Second) / cfg.rate)
	}
	var (
		buf  []byte
		m    syslog.Message
		sent int
		next = time.Now()
	)
	for {
		if src.idle() {
			if err := s.flush(); err != nil {
				n, _ := s.close(sent)
				return n, err
			}
		}
		text, ok, err := src.next()
		if err != nil || !ok {
			n, cerr := s.close(sent)
			return n, errors.Join(err, cerr)
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
			buf = cfg.format1(buf[:0], &m, msgText)
			if err := s.send(buf); err != nil {
				n, _ := s.close(sent)
				return n, err
			}
			sent++
			if interval > 0 {
				if err := s.flush(); err != nil {
					n, _ := s.close(sent)
					return n, err
				}
			}
		}
	}
}

// format1 appends one message with text to dst, built from the header the
// flags gave, stamped now.
func (cfg *sendConfig) format1(dst []byte, m *syslog.Message, text string) []byte {
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

// dial opens the connection -proto names.
func dial(cfg *sendConfig) (sender, error) {
	d := net.Dialer{Timeout: cfg.timeout}
	switch cfg.proto {
	case "udp":
		c, err := d.Dial("udp", cfg.address)
		if err != nil {
			return nil, fmt.Errorf("udp %s: %w", cfg.address, err)
		}
		return &datagramSender{c: c, what: "udp " + cfg.address, timeout: cfg.timeout}, nil
	case "unix":
		c, err := d.Dial("unixgram", cfg.address)
		if errors.Is(err, syscall.EPROTOTYPE) {
			return nil, fmt.Errorf("unix %s: %w: it is not a datagram socket like /dev/log", cfg.address, err)
		}
		if err != nil {
			return nil, fmt.Errorf("unix %s: %w", cfg.address, err)
		}
		return &datagramSender{c: c, what: "unix " + cfg.address, timeout: cfg.timeout}, nil
	case "tcp", "tls", "relp":
		c, err := d.Dial("tcp", cfg.address)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", cfg.proto, cfg.address, err)
		}
		if cfg.proto == "relp" {
			return openRELP(c, cfg)
		}
		if cfg.proto == "tls" {
			tc := tls.Client(c, cfg.tls)
			_ = tc.SetDeadline(time.Now().Add(cfg.timeout))
			if err := tc.Handshake(); err != nil {
				c.Close()
				return nil, fmt.Errorf("tls %s: handshake: %w%s", cfg.address, err, tlsHint(err))
			}
			_ = tc.SetDeadline(time.Time{})
			c = tc
		}
		return &streamSender{
			c: c, w: bufio.NewWriterSize(c, 64<<10), what: cfg.proto + " " + cfg.address,
			octet: cfg.framing == "octet-counting", timeout: cfg.timeout,
			clientCert: cfg.tls != nil && len(cfg.tls.Certificates) > 0,
		}, nil
	}
	return nil, fmt.Errorf("-proto %q: use udp, tcp, tls, unix or relp", cfg.proto)
}

// tlsHint suggests the flag that fixes a certificate problem.
func tlsHint(err error) string {
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var verify *tls.CertificateVerificationError
	switch {
	case errors.As(err, &unknown):
		return " (give the server's CA with -tls-ca, or -tls-insecure for a test server)"
	case errors.As(err, &host):
		return " (set the name in the certificate with -tls-server-name)"
	case errors.As(err, &verify):
		return " (check -tls-ca and -tls-server-name)"
	}
	return ""
}

// datagramSender sends one message per datagram (RFC 5426, and /dev/log).
type datagramSender struct {
	c       net.Conn
	what    string
	timeout time.Duration
}

func (s *datagramSender) send(msg []byte) error {
	_ = s.c.SetWriteDeadline(time.Now().Add(s.timeout))
	if _, err := s.c.Write(msg); err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("%s: %w (nothing is listening there)", s.what, err)
		}
		return fmt.Errorf("%s: %w", s.what, err)
	}
	return nil
}

func (s *datagramSender) flush() error { return nil }

func (s *datagramSender) close(sent int) (int, error) {
	if err := s.c.Close(); err != nil {
		return sent, fmt.Errorf("%s: %w", s.what, err)
	}
	return sent, nil
}

// streamSender writes RFC 6587 frames to TCP, or RFC 5425 frames to TLS.
type streamSender struct {
	c          net.Conn
	w          *bufio.Writer
	what       string
	octet      bool
	timeout    time.Duration
	clientCert bool // tls: a client certificate was given
	num        [20]byte
}

// fail describes a failed write or close. Over TLS 1.3 the server checks
// the client's certificate after the client's handshake is done, so a
// refusal shows up as a broken write; the server's alert, if it is still
// to be read, says why.
func (s *streamSender) fail(err error) error {
	tc, ok := s.c.(*tls.Conn)
	if !ok {
		return fmt.Errorf("%s: %w", s.what, err)
	}
	_ = tc.SetReadDeadline(time.Now().Add(time.Second))
	var one [1]byte
	_, rerr := tc.Read(one[:])
	var oe *net.OpError
	if errors.As(rerr, &oe) && oe.Op == "remote error" {
		err = rerr
	}
	if !s.clientCert {
		return fmt.Errorf("%s: %w (if the server requires mutual TLS, give a client certificate with -tls-cert and -tls-key)", s.what, err)
	}
	return fmt.Errorf("%s: %w", s.what, err)
}

func (s *streamSender) send(msg []byte) error {
	_ = s.c.SetWriteDeadline(time.Now().Add(s.timeout))
	// bufio.Writer keeps its first error, so the last write reports any.
	var err error
	if s.octet {
		s.w.Write(strconv.AppendInt(s.num[:0], int64(len(msg)), 10))
		s.w.WriteByte(' ')
		_, err = s.w.Write(msg)
	} else {
		s.w.Write(msg)
		err = s.w.WriteByte('\n')
	}
	if err != nil {
		return s.fail(err)
	}
	return nil
}

func (s *streamSender) flush() error {
	_ = s.c.SetWriteDeadline(time.Now().Add(s.timeout))
	if err := s.w.Flush(); err != nil {
		return s.fail(err)
	}
	return nil
}

// close flushes, shuts down the sending side and waits (up to the
// timeout) for the server to close its side. TCP has no acknowledgements,
// but a server that reads to the end of the stream before it closes has at
// least read every message, and one that reset the connection is reported.
func (s *streamSender) close(sent int) (int, error) {
	defer s.c.Close()
	if err := s.flush(); err != nil {
		return sent, err
	}
	if cw, ok := s.c.(interface{ CloseWrite() error }); ok {
		if err := cw.CloseWrite(); err != nil {
			return sent, s.fail(err)
		}
		_ = s.c.SetReadDeadline(time.Now().Add(s.timeout))
		_, err := io.Copy(io.Discard, s.c)
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			// The server keeps the connection open: it has not said
			// anything is wrong.
		case err != nil:
			return sent, fmt.Errorf("%w; the server may not have read every message", s.fail(err))
		}
	}
	return sent, nil
}

// relpSender sends over RELP and counts the acknowledgements; at most
// relpSendWindow messages are outstanding. A reader goroutine takes the
// answers off the connection while send writes; close ends it.
type relpSender struct {
	c       net.Conn
	cl      *relp.Client
	what    string
	timeout time.Duration
	slots   chan struct{} // one token per outstanding message
	done    chan struct{} // closed when the reader ends

	mu        sync.Mutex
	acked     int
	closeTxnr int // TXNR of the close command, once sent
	closed    bool
	err       error // why the session failed, set once by the reader
}

func openRELP(c net.Conn, cfg *sendConfig) (sender, error) {
	what := "relp " + cfg.address
	cl := relp.NewClient(c, c, 64<<10)
	_ = c.SetDeadline(time.Now().Add(cfg.timeout))
	if _, err := cl.Open(); err != nil {
		c.Close()
		return nil, fmt.Errorf("%s: open session: %w", what, err)
	}
	_ = c.SetDeadline(time.Time{})
	s := &relpSender{
		c: c, cl: cl, what: what, timeout: cfg.timeout,
		slots: make(chan struct{}, relpSendWindow),
		done:  make(chan struct{}),
	}
	go s.readAnswers()
	return s, nil
}

// readAnswers records the server's answers until the answer to close, an
// error, or the connection closes.
func (s *relpSender) readAnswers() {
	defer close(s.done)
	for {
		f, err := s.cl.Receive()
		end := true
		if err == nil {
			end, err = s.answer(f)
		}
		if err != nil {
			s.mu.Lock()
			if s.err == nil {
				s.err = err
			}
			s.mu.Unlock()
		}
		if end {
			return
		}
	}
}

func (s *relpSender) answer(f relp.Frame) (end bool, err error) {
	if f.Txnr == 0 {
		if f.Command == relp.CmdServerclose {
			return true, relp.ErrServerclose
		}
		return false, nil // other hints are advisory
	}
	if f.Command != relp.CmdRsp {
		return true, fmt.Errorf("server sent command %q", f.Command)
	}
	rsp, err := relp.ParseResponse(f.Data)
	if err != nil {
		return true, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closeTxnr != 0 && f.Txnr == s.closeTxnr {
		s.closed = true
		return true, nil
	}
	if !rsp.OK() {
		return true, fmt.Errorf("server refused message (TXNR %d): %d %s", f.Txnr, rsp.Code, rsp.Text)
	}
	s.acked++
	<-s.slots // cannot block: every answered message holds a token
	return false, nil
}

func (s *relpSender) failure() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return fmt.Errorf("%s: %w", s.what, s.err)
	}
	return nil
}

func (s *relpSender) send(msg []byte) error {
	select {
	case s.slots <- struct{}{}:
	default:
		// The window is full: the answers awaited may be for buffered
		// messages.
		if err := s.flush(); err != nil {
			return err
		}
		t := time.NewTimer(s.timeout)
		defer t.Stop()
		select {
		case s.slots <- struct{}{}:
		case <-s.done:
			if err := s.failure(); err != nil {
				return err
			}
			return fmt.Errorf("%s: connection closed", s.what)
		case <-t.C:
			return fmt.Errorf("%s: no acknowledgement for %s with %d messages outstanding", s.what, s.timeout, relpSendWindow)
		}
	}
	if err := s.failure(); err != nil {
		return err
	}
	_ = s.c.SetWriteDeadline(time.Now().Add(s.timeout))
	if _, err := s.cl.Syslog(msg); err != nil {
		return fmt.Errorf("%s: %w", s.what, err)
	}
	return nil
}

func (s *relpSender) flush() error {
	_ = s.c.SetWriteDeadline(time.Now().Add(s.timeout))
	if err := s.cl.Flush(); err != nil {
		return fmt.Errorf("%s: %w", s.what, err)
	}
	return nil
}

// close sends close, waits for the answer (which the server sends after
// answering every message) and returns how many messages were
// acknowledged.
func (s *relpSender) close(sent int) (int, error) {
	err := s.failure()
	if err == nil {
		_ = s.c.SetWriteDeadline(time.Now().Add(s.timeout))
		s.mu.Lock()
		s.closeTxnr = s.cl.NextTxnr()
		s.mu.Unlock()
		if _, werr := s.cl.SendClose(); werr != nil {
			err = fmt.Errorf("%s: %w", s.what, werr)
		}
	}
	if err == nil {
		t := time.NewTimer(s.timeout)
		select {
		case <-s.done:
		case <-t.C:
			err = fmt.Errorf("%s: no answer to close within %s", s.what, s.timeout)
		}
		t.Stop()
	}
	s.c.Close()
	<-s.done
	s.mu.Lock()
	acked, closed := s.acked, s.closed
	s.mu.Unlock()
	if err == nil {
		err = s.failure()
	}
	if err == nil && !closed {
		err = fmt.Errorf("%s: connection closed before the answer to close", s.what)
	}
	if err == nil && acked != sent {
		err = fmt.Errorf("%s: %d of %d messages acknowledged", s.what, acked, sent)
	}
	return acked, err
}
