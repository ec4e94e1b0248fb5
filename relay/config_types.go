package relay

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The protocols, as the configuration and relay send name them. They are
// untyped so that both a ListenerProtocol and an OutputProtocol compare
// with them.
const (
	ProtocolUDP  = "udp"
	ProtocolTCP  = "tcp"
	ProtocolTLS  = "tls"
	ProtocolRELP = "relp"
	ProtocolUnix = "unix"
	ProtocolFile = "file"
	// ProtocolKafka is an output that produces to a Kafka topic, and a
	// listener that consumes Kafka topics as a member of a consumer group.
	ProtocolKafka = "kafka"
)

// ListenerProtocol is the protocol of a [[listener]], one of
// ListenerProtocols.
type ListenerProtocol string

// OutputProtocol is the protocol of an [[output]], one of OutputProtocols.
type OutputProtocol string

// ProtocolList is the protocols one side of the relay speaks, in the order
// messages and documentation list them.
type ProtocolList[P ~string] []P

// ListenerProtocols are the protocols a listener receives with, and so the
// ones relay send sends with.
var ListenerProtocols = ProtocolList[ListenerProtocol]{ProtocolUDP, ProtocolTCP, ProtocolTLS, ProtocolRELP, ProtocolUnix}

// configListenerProtocols are the protocols a [[listener]] may name: those
// of ListenerProtocols and kafka, which relay send does not speak.
var configListenerProtocols = append(ListenerProtocols[:len(ListenerProtocols):len(ListenerProtocols)], ProtocolKafka)

// OutputProtocols are the protocols an output sends with.
var OutputProtocols = ProtocolList[OutputProtocol]{ProtocolTCP, ProtocolTLS, ProtocolUDP, ProtocolRELP, ProtocolFile, ProtocolKafka}

// Parse returns the protocol named s, in any letter case, or an error that
// lists the protocols of l.
func (l ProtocolList[P]) Parse(s string) (P, error) {
	if p := P(strings.ToLower(s)); slices.Contains(l, p) {
		return p, nil
	}
	return "", fmt.Errorf("unknown protocol %q: use %s", s, l)
}

// String lists the protocols for a message: "udp, tcp, tls, relp or unix".
func (l ProtocolList[P]) String() string {
	var b strings.Builder
	for i, p := range l {
		switch {
		case i == 0:
		case i == len(l)-1:
			b.WriteString(" or ")
		default:
			b.WriteString(", ")
		}
		b.WriteString(string(p))
	}
	return b.String()
}

// UnmarshalText parses one of configListenerProtocols.
func (p *ListenerProtocol) UnmarshalText(b []byte) (err error) {
	*p, err = configListenerProtocols.Parse(string(b))
	return err
}

// UnmarshalText parses one of OutputProtocols.
func (p *OutputProtocol) UnmarshalText(b []byte) (err error) {
	*p, err = OutputProtocols.Parse(string(b))
	return err
}

// FileMode is permission bits written as an octal string, such as "0660".
type FileMode os.FileMode

// UnmarshalTOML accepts a string of octal digits up to 0777. An integer is
// refused rather than read: TOML's 0o660 and 660 are different numbers, and
// only one of them means what its writer meant.
func (m *FileMode) UnmarshalTOML(v any) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("must be a string of octal digits such as \"0660\", not %s", tomlTypeName(v))
	}
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 0o777 {
		return fmt.Errorf("invalid mode %q: use octal permission bits such as \"0660\"", s)
	}
	*m = FileMode(n)
	return nil
}

func (m FileMode) String() string { return fmt.Sprintf("%04o", uint32(m)) }

// Timezone is an IANA time zone ("Europe/Berlin", "UTC"). The zero Timezone
// is the host's zone.
type Timezone struct {
	name string
	loc  *time.Location
}

// UnmarshalText loads the zone named by b; empty text is the host's zone.
func (z *Timezone) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*z = Timezone{}
		return nil
	}
	loc, err := loadZone(string(b))
	if err != nil {
		return fmt.Errorf("unknown time zone %q: use an IANA name such as \"Europe/Berlin\" or \"UTC\"", b)
	}
	*z = Timezone{name: string(b), loc: loc}
	return nil
}

// MarshalText returns the zone's name, empty for the host's zone.
func (z Timezone) MarshalText() ([]byte, error) { return []byte(z.name), nil }

func (z Timezone) String() string { return z.name }

// Location returns the zone, time.Local for the zero Timezone.
func (z Timezone) Location() *time.Location {
	if z.loc == nil {
		return time.Local
	}
	return z.loc
}

// zones holds one *time.Location per zone name. A reload compares the old
// and new configurations with reflect.DeepEqual, and two loads of one zone
// can differ in the cache time.Location keeps of the current offset.
var zones sync.Map // name → *time.Location

func loadZone(name string) (*time.Location, error) {
	if loc, ok := zones.Load(name); ok {
		return loc.(*time.Location), nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	actual, _ := zones.LoadOrStore(name, loc)
	return actual.(*time.Location), nil
}
