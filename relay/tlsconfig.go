package relay

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/relay-syslog/relay/outputs"
)

// certCheckInterval is how often, at most, a TLS listener looks at its
// certificate, key and CA files during handshakes to see whether they
// changed. A stat of three files is cheap, but a handshake flood should not
// turn into a stat flood.
var certCheckInterval = 5 * time.Second

// tlsReloader holds a *tls.Config built from files on disk and builds it
// again when they change: when Reload is called (SIGHUP), and when a look at
// the files' size, modification time and inode, taken at most every
// interval as the config is used, finds them different. A build that fails
// (a half-written file, a key that does not match its certificate) keeps
// the previous configuration and is logged, so a botched renewal never
// takes a working listener down; connections already open keep the
// configuration they were made with.
type tlsReloader struct {
	what     string // names the owner in log lines
	files    []string
	build    func() (*tls.Config, error)
	log      *slog.Logger
	interval time.Duration // 0: look at every use

	cur       atomic.Pointer[tls.Config]
	nextCheck atomic.Int64 // unix nanoseconds

	mu     sync.Mutex // serializes builds; guards stamps
	stamps []fileStamp
}

// fileStamp identifies one version of a file well enough to notice that it
// was rewritten or replaced.
type fileStamp struct {
	size  int64
	mtime time.Time
	ino   uint64
}

func stampFiles(paths []string) []fileStamp {
	s := make([]fileStamp, len(paths))
	for i, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			continue // a missing file is a stamp of its own: the zero one
		}
		s[i] = fileStamp{size: st.Size(), mtime: st.ModTime()}
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			s[i].ino = sys.Ino
		}
	}
	return s
}

// newTLSReloader builds the first configuration; its error is the caller's
// to report, since a relay must not start without its certificate.
func newTLSReloader(what string, files []string, interval time.Duration, build func() (*tls.Config, error), log *slog.Logger) (*tlsReloader, error) {
	r := &tlsReloader{what: what, files: files, build: build, log: log, interval: interval}
	stamps := stampFiles(files)
	cfg, err := build()
	if err != nil {
		return nil, err
	}
	r.cur.Store(cfg)
	r.stamps = stamps
	r.nextCheck.Store(time.Now().Add(interval).UnixNano())
	return r, nil
}

// Reload reads the files again now. On failure the previous configuration
// stays in use and the error is logged and returned.
func (r *tlsReloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reloadLocked(stampFiles(r.files), "reload requested")
}

// config returns the configuration to use for a new connection, first
// building it again if the files changed.
func (r *tlsReloader) config() *tls.Config {
	now := time.Now().UnixNano()
	if next := r.nextCheck.Load(); now >= next && r.nextCheck.CompareAndSwap(next, now+int64(r.interval)) {
		r.reloadIfChanged()
	}
	return r.cur.Load()
}

func (r *tlsReloader) reloadIfChanged() {
	r.mu.Lock()
	defer r.mu.Unlock()
	stamps := stampFiles(r.files)
	if slices.Equal(stamps, r.stamps) {
		return
	}
	_ = r.reloadLocked(stamps, "files changed")
}

func (r *tlsReloader) reloadLocked(stamps []fileStamp, why string) error {
	// The stamps are taken before the read, and kept even when the build
	// fails: a failed build is tried again when the files change again
	// (the second half of a renewal landing), not at every look.
	r.stamps = stamps
	cfg, err := r.build()
	if err != nil {
		r.log.Error("TLS files could not be loaded; the previous certificate stays in use", "owner", r.what, "why", why, "err", err)
		return fmt.Errorf("%s: %w", r.what, err)
	}
	r.cur.Store(cfg)
	args := []any{"owner", r.what, "why", why}
	if len(cfg.Certificates) > 0 && cfg.Certificates[0].Leaf != nil {
		leaf := cfg.Certificates[0].Leaf
		args = append(args, "subject", leaf.Subject.String(), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	r.log.Info("TLS files reloaded", args...)
	return nil
}

// tlsMinVersion maps min_version to the crypto/tls constant. TLS 1.2 is the
// floor whatever the configuration says (RFC 9325).
func tlsMinVersion(s string) uint16 {
	if s == "1.3" {
		return tls.VersionTLS13
	}
	return tls.VersionTLS12
}

// tlsCipherSuites maps Go suite names to their IDs; names were validated
// with the configuration. nil means Go's defaults.
func tlsCipherSuites(names []string) []uint16 {
	if len(names) == 0 {
		return nil
	}
	ids := map[string]uint16{}
	for _, cs := range tls.CipherSuites() {
		ids[cs.Name] = cs.ID
	}
	var out []uint16
	for _, n := range names {
		if id, ok := ids[n]; ok {
			out = append(out, id)
		}
	}
	return out
}

// loadKeyPair reads a certificate and its key, saying which key the files
// came from when they are wrong.
func loadKeyPair(certKey, certFile, keyKey, keyFile string) (tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%s %s and %s %s: %w", certKey, certFile, keyKey, keyFile, err)
	}
	return cert, nil
}

// loadCAPool reads a PEM bundle of CA certificates.
func loadCAPool(key, path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s %s: no PEM certificate found", key, path)
	}
	return pool, nil
}

// newListenerTLS returns the reloader behind a TLS listener. Every
// handshake asks it for the whole server configuration (through
// GetConfigForClient), so a reload replaces the certificate and the client
// CA pool together.
func newListenerTLS(cfg ListenerConfig, log *slog.Logger) (*tlsReloader, error) {
	c := cfg.TLS
	files := []string{c.CertFile, c.KeyFile}
	if c.ClientCAFile != "" {
		files = append(files, c.ClientCAFile)
	}
	var verifyNames func(tls.ConnectionState) error
	if len(c.AllowedNames) > 0 {
		verifyNames = allowedNamesCheck(c.AllowedNames)
	}
	build := func() (*tls.Config, error) {
		cert, err := loadKeyPair("tls.cert_file", c.CertFile, "tls.key_file", c.KeyFile)
		if err != nil {
			return nil, err
		}
		tc := &tls.Config{
			Certificates: []tls.Certificate{cert},
			MinVersion:   tlsMinVersion(c.MinVersion),
			CipherSuites: tlsCipherSuites(c.CipherSuites),
			// Syslog connections live long; resumption saves nothing worth
			// a ticket key, and without it a reloaded client CA applies to
			// every new connection.
			SessionTicketsDisabled: true,
		}
		if c.ClientCAFile != "" {
			pool, err := loadCAPool("tls.client_ca_file", c.ClientCAFile)
			if err != nil {
				return nil, err
			}
			tc.ClientCAs = pool
			tc.ClientAuth = tls.RequireAndVerifyClientCert
			tc.VerifyConnection = verifyNames
		}
		return tc, nil
	}
	r, err := newTLSReloader(fmt.Sprintf("listener %q", cfg.Name), files, certCheckInterval, build, log)
	if err != nil {
		return nil, err
	}
	if leaf := r.cur.Load().Certificates[0].Leaf; leaf != nil {
		warnValidity(log, "tls.cert_file", leaf)
	}
	return r, nil
}

// serverTLSConfig is the configuration a TLS listener hands to tls.Server.
func (r *tlsReloader) serverTLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return r.config(), nil
		},
	}
}

func warnValidity(log *slog.Logger, key string, leaf *x509.Certificate) {
	now := time.Now()
	switch {
	case now.After(leaf.NotAfter):
		log.Warn("certificate has expired: peers will refuse it", "key", key, "subject", leaf.Subject.String(), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		log.Warn("certificate is not valid yet: peers will refuse it (check the clock)", "key", key, "subject", leaf.Subject.String(), "not_before", leaf.NotBefore.UTC().Format(time.RFC3339))
	case leaf.NotAfter.Sub(now) < 14*24*time.Hour:
		log.Warn("certificate expires soon", "key", key, "subject", leaf.Subject.String(), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
}

// nameNotAllowedError is a verified client certificate none of whose names
// is in tls.allowed_names.
type nameNotAllowedError struct{ names []string }

func (e *nameNotAllowedError) Error() string {
	if len(e.names) == 0 {
		return "client certificate has no subject common name or DNS/IP SAN, so none is in tls.allowed_names"
	}
	return fmt.Sprintf("client certificate names %s; none is in tls.allowed_names", strings.Join(e.names, ", "))
}

// allowedNamesCheck returns a VerifyConnection function that accepts a
// client whose verified certificate has a subject common name, DNS SAN or
// IP SAN in allowed. DNS names and the common name compare without regard
// to case; IP addresses compare as addresses ("::ffff:192.0.2.1" matches
// "192.0.2.1"). Only the leaf is looked at, after crypto/tls verified its
// chain against tls.client_ca_file.
func allowedNamesCheck(allowed []string) func(tls.ConnectionState) error {
	names := map[string]bool{}
	ips := map[netip.Addr]bool{}
	for _, n := range allowed {
		if a, err := netip.ParseAddr(n); err == nil {
			ips[a.Unmap()] = true
		}
		names[strings.ToLower(n)] = true
	}
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return &nameNotAllowedError{}
		}
		leaf := cs.PeerCertificates[0]
		var seen []string
		for _, n := range append([]string{leaf.Subject.CommonName}, leaf.DNSNames...) {
			if n == "" {
				continue
			}
			if names[strings.ToLower(n)] {
				return nil
			}
			if q := fmt.Sprintf("%q", n); !slices.Contains(seen, q) {
				seen = append(seen, q)
			}
		}
		for _, ip := range leaf.IPAddresses {
			if a, ok := netip.AddrFromSlice(ip); ok && ips[a.Unmap()] {
				return nil
			}
			seen = append(seen, ip.String())
		}
		return &nameNotAllowedError{names: seen}
	}
}

// newOutputTLS returns the function an output's TCP destination calls for
// each new connection. The files (CA bundle, client certificate and key)
// are looked at on every call, which happens only when the output
// (re)connects, and read again when they changed, so a renewed client
// certificate or CA applies from the next connection without a restart.
func newOutputTLS(oc OutputConfig, address string, log *slog.Logger) (func() (*tls.Config, error), error) {
	return newClientTLS(fmt.Sprintf("output %q target %s", oc.Name, address), oc.TLS, address, log.With("output", oc.Name))
}

// newClientTLS is newOutputTLS for any TLS client of the relay (an output,
// a kafka listener); what names it in log lines.
func newClientTLS(what string, c OutputTLSConfig, address string, log *slog.Logger) (func() (*tls.Config, error), error) {
	var files []string
	for _, f := range []string{c.CAFile, c.CertFile, c.KeyFile} {
		if f != "" {
			files = append(files, f)
		}
	}
	build := outputs.TLSClient{
		CAFile:             c.CAFile,
		CertFile:           c.CertFile,
		KeyFile:            c.KeyFile,
		ServerName:         c.ServerName,
		Address:            address,
		InsecureSkipVerify: c.InsecureSkipVerify,
		MinVersion:         tlsMinVersion(c.MinVersion),
		CipherSuites:       tlsCipherSuites(c.CipherSuites),
	}.Config
	r, err := newTLSReloader(what, files, 0, build, log)
	if err != nil {
		return nil, err
	}
	if certs := r.cur.Load().Certificates; len(certs) > 0 && certs[0].Leaf != nil {
		warnValidity(log, "tls.cert_file", certs[0].Leaf)
	}
	if c.InsecureSkipVerify {
		log.Warn("INSECURE: tls.insecure_skip_verify is set: the upstream's certificate and name are NOT checked, "+
			"so anyone on the path can pose as the upstream and read every message. Use it for tests only; set tls.ca_file instead.",
			"address", address)
	}
	return func() (*tls.Config, error) { return r.config(), nil }, nil
}

// ReloadCertificates reads the certificate, key and client CA files of
// every TLS listener again (call it on SIGHUP). A listener whose files fail
// to load keeps its previous certificate; the error names it. Listeners
// also notice changed files by themselves within a few seconds, and TLS
// outputs read changed files at their next connection.
func (s *Server) ReloadCertificates() error {
	s.mu.Lock()
	var rs []*tlsReloader
	for _, ls := range s.listeners {
		switch l := ls.l.(type) {
		case *tcpListener:
			if l.tls != nil {
				rs = append(rs, l.tls)
			}
		case *relpListener:
			if l.tls != nil {
				rs = append(rs, l.tls)
			}
		}
	}
	s.mu.Unlock()
	var errs []error
	for _, r := range rs {
		errs = append(errs, r.Reload())
	}
	return errors.Join(errs...)
}

// describeHandshakeError turns a failed server-side handshake into a
// metric reason, the problem in words, and what the operator should check.
func describeHandshakeError(err error, timeout time.Duration) (reason, problem, check string) {
	var (
		unknownCA  x509.UnknownAuthorityError
		invalid    x509.CertificateInvalidError
		hostname   x509.HostnameError
		notAllowed *nameNotAllowedError
		header     tls.RecordHeaderError
		opErr      *net.OpError
	)
	msg := err.Error()
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "tls_handshake_timeout", fmt.Sprintf("the client did not complete the TLS handshake within %s", timeout),
			"a sender that connects but does not speak TLS, or a very slow link"
	case errors.As(err, &header):
		return "plaintext_on_tls_port", "the client does not speak TLS",
			"configure the sender for TLS (RFC 5425), or point it at a plain TCP listener"
	case errors.As(err, &notAllowed):
		return "tls_name_not_allowed", notAllowed.Error(),
			"add one of the names to tls.allowed_names if this sender is trusted"
	case errors.As(err, &unknownCA):
		issuer := ""
		if unknownCA.Cert != nil {
			issuer = unknownCA.Cert.Issuer.String()
		}
		return "tls_unknown_ca", fmt.Sprintf("client certificate signed by unknown authority (issuer %q)", issuer),
			"check tls.client_ca_file: it must hold the CA that signed the sender's certificate"
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return "tls_cert_expired", "client certificate expired or not yet valid (" + invalid.Detail + ")",
			"renew the sender's certificate, or fix the clock of the sender or of this host"
	case errors.As(err, &invalid):
		return "tls_bad_cert", "client certificate not usable: " + invalid.Error(),
			"the sender's certificate must allow client authentication (extended key usage clientAuth)"
	case errors.As(err, &hostname):
		return "tls_bad_cert", hostname.Error(), "check the sender's certificate"
	case strings.Contains(msg, "didn't provide a certificate"), strings.Contains(msg, "certificate required"):
		return "tls_no_client_cert", "the client sent no certificate",
			"this listener requires mutual TLS (tls.client_ca_file is set): give the sender a client certificate signed by that CA (some clients send none when theirs is from another CA)"
	case strings.Contains(msg, "unsupported versions"), strings.Contains(msg, "no cipher suite"),
		strings.Contains(msg, "protocol version"), strings.Contains(msg, "handshake failure"):
		return "tls_version_or_cipher", msg,
			"no TLS version or cipher suite in common: compare tls.min_version and tls.cipher_suites with the sender's settings"
	case errors.As(err, &opErr) && opErr.Op == "remote error":
		return "tls_rejected_by_client", "the client aborted the handshake with alert " + strings.TrimPrefix(opErr.Err.Error(), "tls: "),
			"the sender does not trust the relay's certificate: its CA file must hold the CA that signed tls.cert_file, and the name it expects must be in the certificate"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "tls_handshake_aborted", "the client closed the connection during the TLS handshake",
			"the sender may have refused the relay's certificate without saying why: look at its log"
	}
	return "tls_handshake_error", msg, ""
}
