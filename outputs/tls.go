package outputs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

// TLSNames names the settings of a TLS client in the words of whoever gave
// them: the configuration keys of an output, or the flags of relay send. The
// errors of TLSClient.Config and the explanations of failed sessions point
// at the setting to check by these names.
type TLSNames struct {
	CAFile, CertFile, KeyFile, ServerName, Address string
	// Versions names the settings of protocol versions and cipher suites;
	// "" when there are none.
	Versions string
	// ConnectTimeout names the time allowed for the dial and the handshake.
	ConnectTimeout string
	// Insecure, when set, is suggested next to CAFile for a test upstream.
	Insecure string
}

// ConfigTLSNames are the configuration keys of an output's TLS settings. A
// zero TLSNames in an option means these.
var ConfigTLSNames = TLSNames{
	CAFile:         "tls.ca_file",
	CertFile:       "tls.cert_file",
	KeyFile:        "tls.key_file",
	ServerName:     "tls.server_name",
	Address:        "address",
	Versions:       "tls.min_version and tls.cipher_suites",
	ConnectTimeout: "connect_timeout",
}

func (n TLSNames) orConfig() TLSNames {
	if n == (TLSNames{}) {
		return ConfigTLSNames
	}
	return n
}

// TLSClient is what a TLS client is configured with.
type TLSClient struct {
	// CAFile is a PEM bundle the upstream's certificate must chain to;
	// empty means the system's roots.
	CAFile string
	// CertFile and KeyFile are the client certificate and its key, for
	// mutual TLS: both or neither.
	CertFile, KeyFile string
	// ServerName is the name the upstream's certificate must carry; empty
	// means the host part of Address.
	ServerName, Address string
	InsecureSkipVerify  bool
	// MinVersion below TLS 1.2 (zero included) means TLS 1.2 (RFC 9325).
	MinVersion uint16
	// CipherSuites limits the TLS 1.2 suites; nil means Go's defaults.
	CipherSuites []uint16
	// Names are used in errors; zero means ConfigTLSNames.
	Names TLSNames
}

// Config reads the files and returns the client configuration. Errors name
// the setting at fault.
func (c TLSClient) Config() (*tls.Config, error) {
	names := c.Names.orConfig()
	tc := &tls.Config{
		ServerName:         c.ServerName,
		MinVersion:         max(c.MinVersion, tls.VersionTLS12),
		CipherSuites:       c.CipherSuites,
		InsecureSkipVerify: c.InsecureSkipVerify,
	}
	if tc.ServerName == "" {
		host, _, err := net.SplitHostPort(c.Address)
		if err != nil {
			return nil, fmt.Errorf("%s %q: %w", names.Address, c.Address, err)
		}
		tc.ServerName = host
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", names.CAFile, err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s %s: no PEM certificate found", names.CAFile, c.CAFile)
		}
	}
	switch {
	case c.CertFile != "" && c.KeyFile != "":
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%s %s and %s %s: %w", names.CertFile, c.CertFile, names.KeyFile, c.KeyFile, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	case c.CertFile != "":
		return nil, fmt.Errorf("%s needs %s", names.CertFile, names.KeyFile)
	case c.KeyFile != "":
		return nil, fmt.Errorf("%s needs %s", names.KeyFile, names.CertFile)
	}
	return tc, nil
}

// tlsHandshake runs the client side of a TLS handshake over conn with the
// configuration newConfig returns, and explains a failure.
func tlsHandshake(ctx context.Context, conn net.Conn, newConfig func() (*tls.Config, error), names TLSNames) (*tls.Conn, *tls.Config, error) {
	cfg, err := newConfig()
	if err != nil {
		return nil, nil, fmt.Errorf("tls configuration: %w", err)
	}
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, nil, describeTLSError(err, cfg, names, true, false)
	}
	return tc, cfg, nil
}

// isAlert reports whether err is a TLS alert the upstream sent.
func isAlert(err error) bool {
	var opErr *net.OpError
	return errors.As(err, &opErr) && opErr.Op == "remote error"
}

// isBroken reports whether err says the connection ended or was reset.
func isBroken(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// explainTLSSession explains err, a failure after the handshake, when the
// upstream's side of the TLS session caused it: an alert, or the session
// ending within a second of the handshake (an upstream may refuse a client
// certificate by closing without one). Other errors, such as a refusal in
// the protocol carried over TLS, come back as they are.
func explainTLSSession(err error, cfg *tls.Config, names TLSNames, sinceHandshake time.Duration) error {
	soon := sinceHandshake < time.Second
	if isAlert(err) || soon && isBroken(err) {
		return describeTLSError(err, cfg, names, false, soon)
	}
	return err
}

// describeTLSError says what went wrong in a TLS session with the upstream
// and what to check, keeping the original error (wrapped) at the end. cfg
// is the client configuration; names name its settings; handshake says
// whether the handshake failed or the session ended later, and soon that it
// ended right after it.
func describeTLSError(err error, cfg *tls.Config, names TLSNames, handshake, soon bool) error {
	names = names.orConfig()
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		header    tls.RecordHeaderError
		opErr     *net.OpError
	)
	clientCert := names.CertFile + " and " + names.KeyFile
	var what string
	switch {
	case errors.As(err, &unknownCA):
		issuer := ""
		if unknownCA.Cert != nil {
			issuer = unknownCA.Cert.Issuer.String()
		}
		what = fmt.Sprintf("upstream certificate signed by unknown authority (issuer %q): check %s", issuer, names.CAFile)
		if names.Insecure != "" {
			what += ", or use " + names.Insecure + " for a test upstream"
		}
	case errors.As(err, &hostname):
		var certNames []string
		if c := hostname.Certificate; c != nil {
			certNames = append(certNames, c.DNSNames...)
			for _, ip := range c.IPAddresses {
				certNames = append(certNames, ip.String())
			}
			if len(certNames) == 0 && c.Subject.CommonName != "" {
				certNames = append(certNames, c.Subject.CommonName+" (common name only; names belong in SANs)")
			}
		}
		what = fmt.Sprintf("upstream certificate is not valid for %q (it names %s): check %s and %s", hostname.Host, strings.Join(certNames, ", "), names.ServerName, names.Address)
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		what = "upstream certificate " + invalid.Detail + ": renew it, or check the clocks"
	case errors.As(err, &invalid):
		what = "upstream certificate not usable (" + invalid.Error() + ")"
	case errors.As(err, &header):
		what = "upstream does not speak TLS: check the address, and that the upstream listens for TLS there"
	case errors.As(err, &opErr) && opErr.Op == "remote error":
		alert := strings.TrimPrefix(opErr.Err.Error(), "tls: ")
		switch {
		case strings.Contains(alert, "protocol version"), strings.Contains(alert, "handshake failure"), strings.Contains(alert, "insufficient security"):
			what = "upstream refused the handshake (alert " + alert + "): no TLS version or cipher suite in common"
			if names.Versions != "" {
				what += ": check " + names.Versions
			}
		case len(cfg.Certificates) == 0:
			what = "upstream refused the session (alert " + alert + "): it may require a client certificate: set " + clientCert
		default:
			what = "upstream refused the session (alert " + alert + "): check that " + names.CertFile + " is signed by a CA the upstream trusts and has a name it allows"
		}
	case handshake && errors.Is(err, context.DeadlineExceeded):
		what = "TLS handshake did not complete within " + names.ConnectTimeout
	case handshake && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)):
		what = "upstream closed the connection during the TLS handshake: it may not speak TLS on this port, or it refused the client (look at its log)"
	case handshake:
		what = "TLS handshake with upstream failed"
	case soon:
		// rsyslog, for one, refuses a client certificate it does not
		// like by closing the connection, without an alert.
		what = "upstream ended the TLS session right after the handshake: if this repeats, it may refuse the client certificate " +
			"(" + names.CertFile + ", or the name it allows) or need one: look at its log"
	default:
		what = "TLS session with upstream ended"
	}
	return fmt.Errorf("%s: %w", what, err)
}
