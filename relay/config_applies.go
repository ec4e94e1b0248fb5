package relay

import (
	"fmt"
	"slices"
	"strings"
)

// Keys that only some protocols use. Set for another protocol, such a key
// would be ignored without a word, which hides a mistake (framing on a
// file output, confirm_delay on a RELP one): validation refuses it. A key
// ending in "." stands for every key of that table ("tls." is tls.*) that
// has no rule of its own.
var (
	listenerKeyProtocols = map[string][]ListenerProtocol{
		"read_buffer":     {ProtocolUDP, ProtocolUnix},
		"max_connections": {ProtocolTCP, ProtocolTLS, ProtocolRELP},
		"idle_timeout":    {ProtocolTCP, ProtocolTLS, ProtocolRELP},
		"socket_mode":     {ProtocolUnix},
		"window":          {ProtocolRELP},
		"tls.":            {ProtocolTLS, ProtocolRELP, ProtocolKafka},
		"brokers":         {ProtocolKafka},
		"topics":          {ProtocolKafka},
		"group":           {ProtocolKafka},
		"session_timeout": {ProtocolKafka},
		"sasl.":           {ProtocolKafka},
		// A kafka listener is a TLS client; the others are TLS servers.
		"tls.client_ca_file":       {ProtocolTLS, ProtocolRELP},
		"tls.allowed_names":        {ProtocolTLS, ProtocolRELP},
		"tls.enable":               {ProtocolKafka},
		"tls.ca_file":              {ProtocolKafka},
		"tls.server_name":          {ProtocolKafka},
		"tls.insecure_skip_verify": {ProtocolKafka},
	}
	outputKeyProtocols = map[string][]OutputProtocol{
		"framing":                   {ProtocolTCP, ProtocolTLS},
		"confirm_delay":             {ProtocolTCP, ProtocolTLS},
		"window":                    {ProtocolRELP},
		"connect_timeout":           {ProtocolTCP, ProtocolTLS, ProtocolUDP, ProtocolRELP, ProtocolKafka},
		"targets":                   {ProtocolTCP, ProtocolTLS, ProtocolUDP, ProtocolRELP},
		"mode":                      {ProtocolTCP, ProtocolTLS, ProtocolUDP, ProtocolRELP},
		"probe_interval":            {ProtocolTCP, ProtocolTLS, ProtocolUDP, ProtocolRELP},
		"tls.":                      {ProtocolTLS, ProtocolRELP, ProtocolKafka},
		"file_mode":                 {ProtocolFile},
		"dir_mode":                  {ProtocolFile},
		"max_open_files":            {ProtocolFile},
		"fsync":                     {ProtocolFile},
		"escape_control_characters": {ProtocolFile},
	}
)

// checkKeysApply reports every key set in table[index] that protocol does
// not use. An unknown or missing protocol is reported elsewhere.
func checkKeysApply[P ~string](p *problems, table string, index int, protocol P, uses map[string][]P, known []P) {
	if !slices.Contains(known, protocol) {
		return
	}
	prefix := keyPath(table, index, "")
	for _, path := range slices.Sorted(mapKeys(p.set)) {
		key, ok := strings.CutPrefix(path, prefix)
		if !ok {
			continue
		}
		rule := key
		if head, _, nested := strings.Cut(key, "."); nested {
			rule = head + "."
		}
		protocols, limited := uses[key]
		if !limited {
			protocols, limited = uses[rule]
		}
		if !limited || slices.Contains(protocols, protocol) {
			continue
		}
		p.in(table, index)(key, "%s", fmt.Sprintf("does not apply to protocol %q (only to %s)", protocol, joinProtocols(protocols)))
	}
}

func joinProtocols[P ~string](ps []P) string {
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = fmt.Sprintf("%q", p)
	}
	return strings.Join(names, ", ")
}

func mapKeys(m map[string]bool) func(yield func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
