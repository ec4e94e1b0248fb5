package relay

import (
	"fmt"
	"path"
	"strconv"
	"strings"

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
			problem("listeners", "names listener %q, which is not defined", l)
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
	return c
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
func (c *conditions) needsHeader() bool { return len(c.hostnames) > 0 || len(c.appNames) > 0 }

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

// matchHeader checks the hostname globs (hostnames compare without regard to
// case, as DNS names do) and the app-name globs.
func (c *conditions) matchHeader(h *header) bool {
	return matchAny(c.hostnames, h.lowerHostname()) && matchAny(c.appNames, h.appName())
}

// header is the part of a message past the PRI that routing may need,
// parsed at most once per message and only when a route asks for it.
type header struct {
	data   []byte
	parsed bool
	msg    syslog.Message
	host   string
	app    string
}

func (h *header) parse() {
	if h.parsed {
		return
	}
	h.parsed = true
	syslog.Parse(h.data, syslog.ParseOptions{SkipTimestamp: true}, &h.msg)
	h.host = strings.ToLower(string(h.msg.Hostname))
	h.app = string(h.msg.AppName)
}

func (h *header) lowerHostname() string { h.parse(); return h.host }
func (h *header) appName() string       { h.parse(); return h.app }

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
