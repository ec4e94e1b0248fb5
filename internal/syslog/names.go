package syslog

import (
	"strconv"
	"strings"
)

// severityNames maps every spelling an rsyslog or Cisco user may write to a
// severity code (RFC 5424 §6.2.1).
var severityNames = map[string]int{
	"emerg": 0, "emergency": 0, "panic": 0,
	"alert": 1,
	"crit":  2, "critical": 2,
	"err": 3, "error": 3, "errors": 3,
	"warning": 4, "warn": 4, "warnings": 4,
	"notice": 5, "notification": 5, "notifications": 5,
	"info": 6, "informational": 6,
	"debug": 7, "debugging": 7,
}

// facilityNames maps facility names, as rsyslog and RFC 5424 §6.2.1 name
// them, to codes.
var facilityNames = map[string]int{
	"kern": 0, "kernel": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4,
	"syslog": 5, "lpr": 6, "news": 7, "uucp": 8, "cron": 9, "authpriv": 10,
	"ftp": 11, "ntp": 12, "security": 13, "audit": 13, "console": 14, "alert": 14,
	"solaris-cron": 15, "clock": 15,
	"local0": 16, "local1": 17, "local2": 18, "local3": 19,
	"local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

// LookupSeverity returns the severity code for a name ("warning", "err",
// Cisco's "warnings") or a number 0-7, without regard to case.
func LookupSeverity(s string) (int, bool) { return lookupCode(s, severityNames, 7) }

// LookupFacility returns the facility code for a name ("local7", "auth")
// or a number 0-23, without regard to case.
func LookupFacility(s string) (int, bool) { return lookupCode(s, facilityNames, 23) }

func lookupCode(s string, names map[string]int, max int) (int, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	if n, err := strconv.Atoi(s); err == nil {
		return n, n >= 0 && n <= max
	}
	n, ok := names[s]
	return n, ok
}
