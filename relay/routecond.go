package relay

import (
	"bytes"
	"fmt"
	"net/netip"
	"path"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/relay-syslog/relay/internal/syslog"
)

// NameOrNumber is a config value that may be written as a name ("local0",
// "warning") or as its number (16, 4).
type NameOrNumber string

// UnmarshalTOML accepts a string or an integer.
func (n *NameOrNumber) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case string:
		*n = NameOrNumber(v)
	case int64:
		*n = NameOrNumber(strconv.FormatInt(v, 10))
	default:
		return fmt.Errorf("invalid value %v: use a name or a number", v)
	}
	return nil
}

// conditions is the compiled form of a route's match keys. Every condition
// that is set must hold; within a list, any entry may match.
type conditions struct {
	severities uint8  // bit s set: severity s passes
	facilities uint32 // bit f set: facility f passes
	listeners  []string
	hostnames  []string // globs
	appNames   []string // globs

	// nets holds the conditions on the sender's address, nil when none:
	// behind a pointer, so that routes without them stay small to scan.
	nets *netConditions

	// Conditions on the MSG part: any of msgContains is in it, none of
	// msgNotContains is, one of msgRegex matches it, none of msgNotRegex
	// does. Empty: not set.
	msgContains    [][]byte
	msgNotContains [][]byte
	msgRegex       []msgPattern
	msgNotRegex    []msgPattern
}

const (
	allSeverities = uint8(0xff)
	allFacilities = uint32(1<<24 - 1)
)

// compileConditions turns the keys of rc into conditions, adding a problem
// (key, message) for every bad value.
func compileConditions(rc RouteConfig, listeners map[string]bool, problem func(key, format string, args ...any)) conditions {
	c := conditions{severities: allSeverities, facilities: allFacilities}
	if rc.Severity != "" {
		if s, ok := syslog.LookupSeverity(string(rc.Severity)); ok {
			// "warning" means warning and everything more severe (lower
			// codes), as in rsyslog's *.warning and Cisco's logging trap.
			c.severities &= uint8(1<<(s+1) - 1)
		} else {
			problem("severity", "unknown severity %q: use emerg, alert, crit, err, warning, notice, info, debug or 0-7", rc.Severity)
		}
	}
	if len(rc.Severities) > 0 {
		c.severities &= severityMask(rc.Severities, "severities", problem)
	}
	if len(rc.NotSeverities) > 0 {
		c.severities &^= severityMask(rc.NotSeverities, "not_severities", problem)
	}
	if len(rc.Facilities) > 0 {
		c.facilities &= facilityMask(rc.Facilities, "facilities", problem)
	}
	if len(rc.NotFacilities) > 0 {
		c.facilities &^= facilityMask(rc.NotFacilities, "not_facilities", problem)
	}
	for _, l := range rc.Listeners {
		if !listeners[l] {
			problem("listeners", "names listener %q, which is not defined%s", l, didYouMean(l, listeners))
		}
	}
	c.listeners = rc.Listeners
	for _, g := range rc.Hostnames {
		if _, err := path.Match(g, ""); err != nil {
			problem("hostnames", "invalid glob %q: %v", g, err)
		}
		c.hostnames = append(c.hostnames, strings.ToLower(g))
	}
	for _, g := range rc.AppNames {
		if _, err := path.Match(g, ""); err != nil {
			problem("app_names", "invalid glob %q: %v", g, err)
		}
	}
	c.appNames = rc.AppNames
	if len(rc.Networks) > 0 || len(rc.NotNetworks) > 0 {
		c.nets = &netConditions{
			in:    newNetSet(networks(rc.Networks, "networks", problem)),
			notIn: newNetSet(networks(rc.NotNetworks, "not_networks", problem)),
		}
	}
	c.msgContains = substrings(rc.MessageContains, "message_contains", problem)
	c.msgNotContains = substrings(rc.MessageNotContains, "message_not_contains", problem)
	c.msgRegex = regexps(rc.MessageRegex, "message_regex", problem)
	c.msgNotRegex = regexps(rc.MessageNotRegex, "message_not_regex", problem)
	return c
}

// networks reads the networks of a networks or not_networks key.
func networks(list []string, key string, problem func(key, format string, args ...any)) []netip.Prefix {
	var nets []netip.Prefix
	for _, n := range list {
		p, err := parseNetwork(n)
		if err != nil {
			problem(key, "%v", err)
			continue
		}
		nets = append(nets, p)
	}
	return nets
}

// substrings checks the substrings of a message_contains key. An empty one
// is refused: it is in every message, so the route would match everything
// (or, negated, nothing), which no one writes on purpose.
func substrings(list []string, key string, problem func(key, format string, args ...any)) [][]byte {
	var out [][]byte
	for _, s := range list {
		if s == "" {
			problem(key, "an empty string is in every message: remove it")
			continue
		}
		out = append(out, []byte(s))
	}
	return out
}

// msgPattern is one compiled message_regex entry.
type msgPattern struct {
	re *regexp.Regexp
	// fold is set when the pattern is an ASCII literal without regard to
	// case ("(?i)panic"), lower-cased: such a pattern has no literal
	// prefix for the regexp package to skip ahead with, and its engine
	// then costs tens of ns per byte, where containsFold costs one or two.
	fold []byte
}

func (p *msgPattern) match(b []byte) bool {
	if p.fold != nil {
		return containsFold(b, p.fold)
	}
	return p.re.Match(b)
}

// regexps compiles the RE2 patterns of a message_regex key. They are kept
// apart rather than joined into one alternation: Go's regexp skips ahead
// with the literal prefix of a pattern ("state to (up|down)"), which an
// alternation of different prefixes loses; measured on a 200-byte message,
// three patterns tried one by one cost a tenth of their alternation.
func regexps(patterns []string, key string, problem func(key, format string, args ...any)) []msgPattern {
	var out []msgPattern
	for _, p := range patterns {
		if p == "" {
			problem(key, "an empty pattern matches every message: remove it")
			continue
		}
		re, err := regexp.Compile(p)
		if err != nil {
			problem(key, "invalid regular expression %q: %v", p, err)
			continue
		}
		out = append(out, msgPattern{re: re, fold: foldedLiteral(p)})
	}
	return out
}

// foldedLiteral returns the lower-cased text of a pattern that is an ASCII
// literal matched without regard to case, or nil. Letters whose case
// folding reaches beyond ASCII are left to the regexp ("(?i)k" matches the
// Kelvin sign U+212A, "(?i)s" the long s U+017F). For the rest, a byte
// search is exact: an ASCII byte in the message is always that character,
// never part of a multi-byte or invalid sequence.
func foldedLiteral(p string) []byte {
	re, err := syntax.Parse(p, syntax.Perl)
	if err != nil {
		return nil
	}
	re = re.Simplify()
	if re.Op != syntax.OpLiteral || re.Flags&syntax.FoldCase == 0 || len(re.Rune) == 0 {
		return nil
	}
	out := make([]byte, 0, len(re.Rune))
	for _, r := range re.Rune {
		if r >= utf8.RuneSelf {
			return nil
		}
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f >= utf8.RuneSelf {
				return nil
			}
		}
		out = append(out, lowerASCII(byte(r)))
	}
	return out
}

// containsFold reports whether b contains needle (lower-case ASCII) with
// ASCII letters compared without regard to case.
func containsFold(b, needle []byte) bool {
	first, rest := needle[0], needle[1:]
	for i := 0; i+len(needle) <= len(b); i++ {
		if lowerASCII(b[i]) != first {
			continue
		}
		j := 0
		for j < len(rest) && lowerASCII(b[i+1+j]) == rest[j] {
			j++
		}
		if j == len(rest) {
			return true
		}
	}
	return false
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// matchAnyRegexp reports whether one of ps matches b.
func matchAnyRegexp(ps []msgPattern, b []byte) bool {
	for i := range ps {
		if ps[i].match(b) {
			return true
		}
	}
	return false
}

func severityMask(names []NameOrNumber, key string, problem func(key, format string, args ...any)) uint8 {
	var m uint8
	for _, n := range names {
		s, ok := syslog.LookupSeverity(string(n))
		if !ok {
			problem(key, "unknown severity %q: use emerg, alert, crit, err, warning, notice, info, debug or 0-7", n)
			continue
		}
		m |= 1 << s
	}
	return m
}

func facilityMask(names []NameOrNumber, key string, problem func(key, format string, args ...any)) uint32 {
	var m uint32
	for _, n := range names {
		f, ok := syslog.LookupFacility(string(n))
		if !ok {
			problem(key, "unknown facility %q: use a name such as kern, user, mail, daemon, auth, local0-local7, or 0-23", n)
			continue
		}
		m |= 1 << f
	}
	return m
}

// needsHeader reports whether matching must look past the PRI.
func (c *conditions) needsHeader() bool {
	return len(c.hostnames) > 0 || len(c.appNames) > 0 || c.needsMessage()
}

// needsMessage reports whether a condition looks at the MSG part.
func (c *conditions) needsMessage() bool {
	return len(c.msgContains) > 0 || len(c.msgNotContains) > 0 || len(c.msgRegex) > 0 || len(c.msgNotRegex) > 0
}

// matchPRI checks the conditions that only need the PRI and the listener.
func (c *conditions) matchPRI(pri int, listener string) bool {
	if c.severities&(1<<(pri&7)) == 0 || c.facilities&(1<<(pri>>3)) == 0 {
		return false
	}
	if len(c.listeners) > 0 {
		found := false
		for _, l := range c.listeners {
			if l == listener {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// netConditions: the sender's address is in one of in (empty: not set),
// and in none of notIn.
type netConditions struct {
	in, notIn netSet
}

// netSet is a list of networks. A short list is tried prefix by prefix; a
// long one (a blocklist, every site's subnet) is kept as sorted, disjoint
// address ranges for a binary search: trying 10,000 prefixes in turn cost
// 80 µs a message.
type netSet struct {
	few    []netip.Prefix // up to maxLinearNets, else nil
	ranges []addrRange    // when few is nil
}

// maxLinearNets is the longest list tried prefix by prefix, where a
// prefix's Contains costs less than the two comparisons of a range.
const maxLinearNets = 8

// addrRange is the addresses from lo to hi, both included, of one family.
type addrRange struct {
	lo, hi netip.Addr
}

// newNetSet makes the ranges of prefixes (masked, without zone, as
// parseNetwork returns them), merging those that overlap, nest or adjoin.
func newNetSet(prefixes []netip.Prefix) netSet {
	if len(prefixes) <= maxLinearNets {
		return netSet{few: prefixes}
	}
	ranges := make([]addrRange, 0, len(prefixes))
	for _, p := range prefixes {
		ranges = append(ranges, addrRange{lo: p.Addr(), hi: lastAddr(p)})
	}
	slices.SortFunc(ranges, func(a, b addrRange) int { return a.lo.Compare(b.lo) })
	merged := ranges[:0]
	for _, r := range ranges {
		// IPv4 addresses sort before IPv6 ones, and a range never spans
		// the two families, so ranges of different families never merge.
		if n := len(merged); n > 0 && (r.lo.Compare(merged[n-1].hi) <= 0 || r.lo == merged[n-1].hi.Next()) {
			if r.hi.Compare(merged[n-1].hi) > 0 {
				merged[n-1].hi = r.hi
			}
			continue
		}
		merged = append(merged, r)
	}
	return netSet{ranges: merged}
}

// lastAddr returns the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr()
	if a.Is4() {
		b := a.As4()
		setHostBits(b[:], p.Bits())
		return netip.AddrFrom4(b)
	}
	b := a.As16()
	setHostBits(b[:], p.Bits())
	return netip.AddrFrom16(b)
}

// setHostBits sets every bit of b past the first bits.
func setHostBits(b []byte, bits int) {
	for i := range b {
		switch n := bits - 8*i; {
		case n <= 0:
			b[i] = 0xff
		case n < 8:
			b[i] |= 0xff >> n
		}
	}
}

func (s netSet) empty() bool { return len(s.few) == 0 && len(s.ranges) == 0 }

// contains reports whether addr (without zone) is in one of the networks.
func (s netSet) contains(addr netip.Addr) bool {
	if s.ranges == nil {
		return inAny(s.few, addr)
	}
	// Find the last range starting at or before addr: the only one that
	// can hold it.
	lo, hi := 0, len(s.ranges)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s.ranges[m].lo.Compare(addr) <= 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo > 0 && addr.Compare(s.ranges[lo-1].hi) <= 0
}

// needsSender reports whether a condition looks at the sender's address.
func (c *conditions) needsSender() bool { return c.nets != nil }

// matchSender checks the conditions on the sender's address. A message
// without one (from a unix socket or Kafka) is in no network.
func (c *conditions) matchSender(s *sender) bool {
	if c.nets == nil {
		return true
	}
	addr, ok := s.address()
	if !c.nets.in.empty() && (!ok || !c.nets.in.contains(addr)) {
		return false
	}
	return !ok || !c.nets.notIn.contains(addr)
}

// sender is a message's sender address, parsed from the entry's Source
// ("192.0.2.7:514", "[2001:db8::1]:6514") at most once per message and
// only when a route asks for it.
type sender struct {
	source string
	addr   netip.Addr
	ok     bool
	parsed bool
}

func (s *sender) address() (netip.Addr, bool) {
	if !s.parsed {
		s.parsed = true
		if ap, err := netip.ParseAddrPort(s.source); err == nil {
			s.addr, s.ok = senderKey(ap.Addr()), true
		}
	}
	return s.addr, s.ok
}

// matchHeader checks the hostname globs (hostnames compare without regard to
// case, as DNS names do), the app-name globs and the conditions on the
// message text, cheapest first.
func (c *conditions) matchHeader(h *header) bool {
	if len(c.hostnames) > 0 && !matchAny(c.hostnames, h.lowerHostname()) {
		return false
	}
	if len(c.appNames) > 0 && !matchAny(c.appNames, h.appName()) {
		return false
	}
	if c.needsMessage() {
		return c.matchMessage(h.message())
	}
	return true
}

// matchMessage checks the conditions on the MSG part. Case matters in the
// substrings, as in rsyslog's contains; a pattern can ask for (?i). Bytes
// that are not UTF-8 are compared as they are (substrings) or read as
// U+FFFD (regexps), and both take time linear in the message's length
// (RE2 semantics: no backtracking).
func (c *conditions) matchMessage(msg []byte) bool {
	if len(c.msgContains) > 0 {
		found := false
		for _, s := range c.msgContains {
			if bytes.Contains(msg, s) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	for _, s := range c.msgNotContains {
		if bytes.Contains(msg, s) {
			return false
		}
	}
	if len(c.msgRegex) > 0 && !matchAnyRegexp(c.msgRegex, msg) {
		return false
	}
	return !matchAnyRegexp(c.msgNotRegex, msg)
}

// header is the part of a message past the PRI that routing may need,
// parsed at most once per message and only when a route asks for it. The
// hostname and app-name strings are made only when a glob asks for them.
type header struct {
	data     []byte
	parsed   bool
	msg      syslog.Message
	host     string
	app      string
	hostDone bool
	appDone  bool
}

func (h *header) parse() {
	if h.parsed {
		return
	}
	h.parsed = true
	syslog.Parse(h.data, syslog.ParseOptions{SkipTimestamp: true}, &h.msg)
}

func (h *header) lowerHostname() string {
	if !h.hostDone {
		h.parse()
		h.host, h.hostDone = strings.ToLower(string(h.msg.Hostname)), true
	}
	return h.host
}

func (h *header) appName() string {
	if !h.appDone {
		h.parse()
		h.app, h.appDone = string(h.msg.AppName), true
	}
	return h.app
}

// message returns the MSG part: after the header of an RFC 5424 or 3164
// message (without a BOM), everything after the PRI when no header parsed.
func (h *header) message() []byte { h.parse(); return h.msg.Msg }

func matchAny(globs []string, s string) bool {
	if len(globs) == 0 {
		return true
	}
	for _, g := range globs {
		if ok, _ := path.Match(g, s); ok {
			return true
		}
	}
	return false
}
