package relay

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/relay-syslog/relay/outputs"
)

// CheckFiles reads what the relay reads at start besides its
// configuration: the certificates, keys and CA bundles of TLS listeners and
// outputs, and SASL password files. relay -check-config runs it, as
// systemd's ExecStartPre and ExecReload do, so that a missing, unreadable
// or broken file is reported with its key and line before a restart, not
// by a relay that then fails to start. The files are loaded exactly as the
// relay loads them, and nothing else is done with them.
func CheckFiles(name string, data []byte, cfg *Config) error {
	p := &problems{lines: indexKeyLines(data), badValues: map[string]bool{}}
	quiet := slog.New(slog.DiscardHandler)
	for i, l := range cfg.Listeners {
		problem := p.in("listener", i)
		switch {
		case l.Protocol == ProtocolTLS || l.Protocol == ProtocolRELP && l.TLS.CertFile != "":
			if _, err := newListenerTLS(l, quiet); err != nil {
				fileProblem(problem, "tls.cert_file", err)
			}
		case l.Protocol == ProtocolKafka:
			checkKafkaFiles(problem, fmt.Sprintf("listener %q", l.Name), l.TLS.client(), l.SASL, l.Brokers)
		}
	}
	for i, o := range cfg.Outputs {
		problem := p.in("output", i)
		address := o.Address
		if len(o.Targets) > 0 {
			address = o.Targets[0]
		}
		switch {
		case o.Protocol == ProtocolTLS || o.Protocol == ProtocolRELP && o.TLS.Enable:
			if _, err := newOutputTLS(o, address, quiet); err != nil {
				fileProblem(problem, "tls.ca_file", err)
			}
		case o.Protocol == ProtocolKafka:
			checkKafkaFiles(problem, fmt.Sprintf("output %q", o.Name), o.TLS, o.SASL, o.Brokers)
		}
	}
	if len(p.list) > 0 {
		return &ConfigError{File: name, Problems: p.sorted()}
	}
	return nil
}

// checkKafkaFiles loads a kafka client's TLS files and SASL password as
// the relay does when the client starts.
func checkKafkaFiles(problem problemFunc, what string, tc OutputTLSConfig, sc KafkaSASLConfig, brokers []string) {
	if tc.Enable && len(brokers) > 0 {
		if _, err := newKafkaTLS(what, tc, brokers, slog.New(slog.DiscardHandler)); err != nil {
			fileProblem(problem, "tls.ca_file", err)
		}
	}
	if sc.Mechanism != "" {
		if _, err := outputs.KafkaSASL(sc.Mechanism, sc.Username, sc.PasswordFile); err != nil {
			fileProblem(problem, "sasl.password_file", err)
		}
	}
}

// fileProblem reports err under the key it starts with ("tls.key_file:
// ..." or "tls.cert_file /path and ..."), so the problem gets that key's
// line, or under fallback.
func fileProblem(problem problemFunc, fallback string, err error) {
	msg := err.Error()
	first, _, _ := strings.Cut(msg, " ")
	key := strings.TrimSuffix(first, ":")
	if !strings.HasPrefix(key, "tls.") && !strings.HasPrefix(key, "sasl.") {
		problem(fallback, "%s", msg)
		return
	}
	if rest, ok := strings.CutPrefix(msg, key+": "); ok {
		msg = rest
	}
	problem(key, "%s", msg)
}
