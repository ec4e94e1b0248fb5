package relp

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Limits of offers, from the RELP specification; ParseOffers also caps their
// number, since a server parses them from a peer it does not trust.
const (
	MaxOfferName  = 32
	MaxOfferValue = 255
	maxOffers     = 64
	maxValues     = 64
)

// Version is the RELP protocol version this package speaks. rsyslog
// (librelp) announces and accepts version 0, the only one in use.
const Version = 0

// Software is what this package announces in the relp_software offer.
const Software = "relay"

// Offer is one feature announced in an open command or its response, such
// as relp_version=0 or commands=syslog.
type Offer struct {
	Name   string
	Values []string
}

// ParseOffers reads offers: one per line, "name" or "name=v1,v2". Empty
// lines are skipped, so the leading LF of the specification's grammar and a
// trailing LF are both accepted.
func ParseOffers(data []byte) ([]Offer, error) {
	var offers []Offer
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if len(line) == 0 {
			continue
		}
		if len(offers) == maxOffers {
			return nil, fmt.Errorf("relp: more than %d offers", maxOffers)
		}
		name, values, hasValues := bytes.Cut(line, []byte("="))
		if len(name) == 0 || len(name) > MaxOfferName {
			return nil, fmt.Errorf("relp: offer name %q: want 1 to %d bytes", truncate(name, 40), MaxOfferName)
		}
		o := Offer{Name: string(name)}
		if hasValues {
			for v := range bytes.SplitSeq(values, []byte(",")) {
				if len(v) > MaxOfferValue {
					return nil, fmt.Errorf("relp: offer %s: value of %d bytes, limit %d", o.Name, len(v), MaxOfferValue)
				}
				if len(o.Values) == maxValues {
					return nil, fmt.Errorf("relp: offer %s: more than %d values", o.Name, maxValues)
				}
				if len(v) > 0 {
					o.Values = append(o.Values, string(v))
				}
			}
		}
		offers = append(offers, o)
	}
	return offers, nil
}

// AppendOffers appends offers in the form ParseOffers reads, one per line
// with no LF after the last. An offer without values is written as
// "name=", the form librelp reads back correctly.
func AppendOffers(dst []byte, offers []Offer) []byte {
	for i, o := range offers {
		if i > 0 {
			dst = append(dst, '\n')
		}
		dst = append(dst, o.Name...)
		dst = append(dst, '=')
		for j, v := range o.Values {
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, v...)
		}
	}
	return dst
}

// FindOffer returns the first offer called name.
func FindOffer(offers []Offer, name string) (Offer, bool) {
	for _, o := range offers {
		if o.Name == name {
			return o, true
		}
	}
	return Offer{}, false
}

// ClientOffers are the offers a client sends with open: protocol version 0,
// this software, and the syslog command.
func ClientOffers() []Offer {
	return []Offer{
		{Name: "relp_version", Values: []string{strconv.Itoa(Version)}},
		{Name: "relp_software", Values: []string{Software}},
		{Name: "commands", Values: []string{CmdSyslog}},
	}
}

// ErrNoSyslog means the peer does not offer the syslog command.
var ErrNoSyslog = errors.New("relp: peer does not offer the syslog command")

// AnswerOpen negotiates a session from a client's open offers and returns
// the offers a server answers with. The client must state a numeric
// relp_version and offer the syslog command; the session uses the lower of
// the two versions, which is always Version here.
func AnswerOpen(client []Offer) ([]Offer, error) {
	if _, err := offeredVersion(client); err != nil {
		return nil, err
	}
	if !offersCommand(client, CmdSyslog) {
		return nil, ErrNoSyslog
	}
	return ClientOffers(), nil
}

// CheckOpenAnswer checks the offers a server answered open with: it must
// state a version no higher than Version and offer the syslog command.
func CheckOpenAnswer(server []Offer) error {
	v, err := offeredVersion(server)
	if err != nil {
		return err
	}
	if v > Version {
		return fmt.Errorf("relp: peer wants protocol version %d; this side speaks %d", v, Version)
	}
	if !offersCommand(server, CmdSyslog) {
		return ErrNoSyslog
	}
	return nil
}

func offeredVersion(offers []Offer) (int, error) {
	o, ok := FindOffer(offers, "relp_version")
	if !ok || len(o.Values) == 0 {
		return 0, errors.New("relp: no relp_version offer")
	}
	v, err := strconv.Atoi(o.Values[0])
	if err != nil || v < 0 {
		return 0, fmt.Errorf("relp: relp_version %q is not a version number", o.Values[0])
	}
	return v, nil
}

func offersCommand(offers []Offer, cmd string) bool {
	for _, o := range offers {
		if o.Name == "commands" {
			for _, v := range o.Values {
				if v == cmd {
					return true
				}
			}
		}
	}
	return false
}

// Response is the data of an rsp frame: a three-digit status (200 is OK,
// anything else an error), a human-readable text and, after the first LF,
// data that depends on the command answered (the offers for open).
type Response struct {
	Code int
	Text string
	Data []byte
}

// OK reports whether the response is positive.
func (r Response) OK() bool { return r.Code == 200 }

// Response codes.
const (
	CodeOK    = 200
	CodeError = 500
)

// ParseResponse reads the data of an rsp frame. Data points into data.
func ParseResponse(data []byte) (Response, error) {
	if len(data) < 3 || !isDigit(data[0]) || !isDigit(data[1]) || !isDigit(data[2]) {
		return Response{}, fmt.Errorf("relp: response %q does not start with a three-digit code", truncate(data, 40))
	}
	r := Response{Code: int(data[0]-'0')*100 + int(data[1]-'0')*10 + int(data[2]-'0')}
	rest := data[3:]
	if len(rest) == 0 {
		return r, nil
	}
	switch rest[0] {
	case ' ':
		rest = rest[1:]
	case '\n':
	default:
		return Response{}, fmt.Errorf("relp: response %q: code not followed by SP", truncate(data, 40))
	}
	text, after, found := bytes.Cut(rest, []byte("\n"))
	r.Text = string(text)
	if found {
		r.Data = after
	}
	return r, nil
}

// AppendResponse appends an rsp frame answering txnr: "CODE SP TEXT", then
// LF and data when data is not empty. The text must not contain LF; it is
// cut at the first one. A code that is not three digits is sent as 500.
func AppendResponse(dst []byte, txnr int, code int, text string, data []byte) []byte {
	if code < 100 || code > 999 {
		code = CodeError
	}
	if i := strings.IndexByte(text, '\n'); i >= 0 {
		text = text[:i]
	}
	n := 4 + len(text)
	if len(data) > 0 {
		n += 1 + len(data)
	}
	dst = strconv.AppendInt(dst, int64(txnr), 10)
	dst = append(dst, " rsp "...)
	dst = strconv.AppendInt(dst, int64(n), 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(code), 10)
	dst = append(dst, ' ')
	dst = append(dst, text...)
	if len(data) > 0 {
		dst = append(dst, '\n')
		dst = append(dst, data...)
	}
	return append(dst, '\n')
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
