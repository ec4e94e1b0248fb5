package testpeer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestCA is a certificate authority made for one test. Its certificate and
// every certificate it issues are written as PEM files under Dir, so they
// can be named in a relay or rsyslog configuration.
type TestCA struct {
	t      testing.TB
	Dir    string
	Name   string
	CAFile string // the CA certificate (PEM)

	cert *x509.Certificate
	key  crypto.Signer
}

// NewTestCA makes a CA called name with a fresh ECDSA P-256 key, valid from
// an hour ago for a year, and writes its certificate to Dir/<name>-ca.pem,
// Dir being a new temporary directory of the test.
func NewTestCA(t testing.TB, name string) *TestCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name + " test CA", Organization: []string{"relay tests"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &TestCA{t: t, Dir: t.TempDir(), Name: name, cert: cert, key: key}
	ca.CAFile = filepath.Join(ca.Dir, name+"-ca.pem")
	writePEM(t, ca.CAFile, "CERTIFICATE", der)
	return ca
}

// CertOptions describe a certificate a TestCA issues.
type CertOptions struct {
	CommonName string
	DNSNames   []string
	IPs        []net.IP
	// NotBefore and NotAfter default to an hour ago and 90 days from now.
	NotBefore, NotAfter time.Time
}

// Cert is an issued certificate: its files, and the parsed certificate.
type Cert struct {
	CertFile string
	KeyFile  string
	Leaf     *x509.Certificate
}

// Issue signs a leaf certificate usable both as a TLS server and as a TLS
// client certificate, writes it and its PKCS #8 key as <file>.pem and
// <file>-key.pem (under Dir unless file is absolute; existing files are
// replaced, which is how tests renew certificates), and returns it.
func (ca *TestCA) Issue(file string, o CertOptions) Cert {
	t := ca.t
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if o.NotBefore.IsZero() {
		o.NotBefore = now.Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = now.Add(90 * 24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: o.CommonName, Organization: []string{"relay tests"}},
		DNSNames:     o.DNSNames,
		IPAddresses:  o.IPs,
		NotBefore:    o.NotBefore,
		NotAfter:     o.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(file) {
		file = filepath.Join(ca.Dir, file)
	}
	c := Cert{
		CertFile: file + ".pem",
		KeyFile:  file + "-key.pem",
		Leaf:     leaf,
	}
	// Key first, then certificate, each replaced by a rename: a reader
	// never sees a half-written file.
	writePEM(t, c.KeyFile, "PRIVATE KEY", keyDER)
	writePEM(t, c.CertFile, "CERTIFICATE", der)
	return c
}

// Server issues a server certificate for localhost, 127.0.0.1 and ::1.
func (ca *TestCA) Server(file, commonName string) Cert {
	ca.t.Helper()
	return ca.Issue(file, CertOptions{
		CommonName: commonName,
		DNSNames:   []string{"localhost", commonName},
		IPs:        []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	})
}

// Client issues a client certificate with commonName as subject CN and as
// its only DNS SAN.
func (ca *TestCA) Client(file, commonName string) Cert {
	ca.t.Helper()
	return ca.Issue(file, CertOptions{CommonName: commonName, DNSNames: []string{commonName}})
}

// Pool returns a pool holding just this CA.
func (ca *TestCA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// KeyPair loads c as a tls.Certificate.
func (c Cert) KeyPair(t testing.TB) tls.Certificate {
	t.Helper()
	kp, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

func serial(t testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return n.Add(n, big.NewInt(1))
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// NewTLSReceiver is a Receiver that speaks TLS with cfg (RFC 5425).
// t.Cleanup closes it.
func NewTLSReceiver(t testing.TB, addr string, cfg *tls.Config) *Receiver {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("tls receiver: %v", err)
	}
	r := &Receiver{ln: tls.NewListener(ln, cfg), conns: map[net.Conn]struct{}{}, done: make(chan struct{})}
	r.wg.Add(1)
	go r.accept()
	t.Cleanup(r.Close)
	return r
}

// NeedRsyslogModule checks that rsyslog's loadable module name (such as
// "lmnsd_gtls", the GnuTLS network stream driver) is installed. Like Need,
// it skips the test outside CI and fails it with CI=true.
func NeedRsyslogModule(t testing.TB, name, pkg string) {
	t.Helper()
	for _, dir := range []string{"/usr/lib/x86_64-linux-gnu/rsyslog", "/usr/lib/aarch64-linux-gnu/rsyslog", "/usr/lib/rsyslog", "/usr/lib64/rsyslog"} {
		if _, err := os.Stat(filepath.Join(dir, name+".so")); err == nil {
			return
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("rsyslog module %s not found: CI must install the Debian package %q", name, pkg)
	}
	t.Skipf("rsyslog module %s not found: install the Debian package %q to run this test", name, pkg)
}
