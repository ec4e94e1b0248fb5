package syslog

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the zone tests must not depend on the host's zoneinfo
)

// refTime is the receive time of the golden vectors: it fixes the year
// that RFC 3164 stamps get.
var refTime = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

// golden is one parse vector. ts is the expected Timestamp in RFC 3339 with
// nanoseconds, or "" when HasTimestamp must be false.
type golden struct {
	name    string
	in      string
	format  Format
	problem Problem
	pri     int // 0 with noPRI means DefaultPRI
	noPRI   bool
	ts      string
	host    string
	app     string
	procID  string
	msgID   string
	sd      string
	msg     string
	bom     bool
	seq     string
}

const bomStr = "\xEF\xBB\xBF"

var goldens = []golden{
	// RFC 5424 §6.5, written from the RFC's text (BOM spelled out).
	{
		name: "rfc5424 example 1", format: FormatRFC5424, pri: 34,
		in: "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - " + bomStr + "'su root' failed for lonvick on /dev/pts/8",
		ts: "2003-10-11T22:14:15.003Z", host: "mymachine.example.com", app: "su", msgID: "ID47",
		bom: true, msg: "'su root' failed for lonvick on /dev/pts/8",
	},
	{
		name: "rfc5424 example 2", format: FormatRFC5424, pri: 165,
		in: "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
		ts: "2003-08-24T05:14:15.000003-07:00", host: "192.0.2.1", app: "myproc", procID: "8710",
		msg: "%% It's time to make the do-nuts.",
	},
	{
		name: "rfc5424 example 3", format: FormatRFC5424, pri: 165,
		in: `<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] ` + bomStr + `An application event log entry...`,
		ts: "2003-10-11T22:14:15.003Z", host: "mymachine.example.com", app: "evntslog", msgID: "ID47",
		sd:  `[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"]`,
		bom: true, msg: "An application event log entry...",
	},
	{
		name: "rfc5424 example 4 (structured data only)", format: FormatRFC5424, pri: 165,
		in: `<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]`,
		ts: "2003-10-11T22:14:15.003Z", host: "mymachine.example.com", app: "evntslog", msgID: "ID47",
		sd: `[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]`,
	},
	// RFC 5424 §6.2.3.1 timestamp examples.
	{name: "rfc5424 stamp 1985 Z", format: FormatRFC5424, pri: 13, in: "<13>1 1985-04-12T23:20:50.52Z - - - - -", ts: "1985-04-12T23:20:50.52Z"},
	{name: "rfc5424 stamp 1985 offset", format: FormatRFC5424, pri: 13, in: "<13>1 1985-04-12T19:20:50.52-04:00 - - - - -", ts: "1985-04-12T19:20:50.52-04:00"},
	{
		// RFC 5424 calls nine fraction digits invalid; Go's RFC3339Nano
		// writes them, so the relay accepts them (documented in scanISO).
		name: "rfc5424 stamp nanoseconds accepted", format: FormatRFC5424, pri: 13,
		in: "<13>1 2003-08-24T05:14:15.000000003-07:00 - - - - -", ts: "2003-08-24T05:14:15.000000003-07:00",
	},
	{name: "rfc5424 all nil", format: FormatRFC5424, pri: 191, in: "<191>1 - - - - - -"},
	{name: "rfc5424 empty msg after SP", format: FormatRFC5424, pri: 0, in: "<0>1 - - - - - - "},
	{name: "rfc5424 BOM only", format: FormatRFC5424, pri: 0, in: "<0>1 - - - - - - " + bomStr, bom: true},
	{
		name: "rfc5424 escapes and several elements", format: FormatRFC5424, pri: 14,
		in: `<14>1 2024-03-01T12:00:00Z h a p m [x@1 q="a\"b\\c\]d" e="\n"][y@1] msg`,
		ts: "2024-03-01T12:00:00Z", host: "h", app: "a", procID: "p", msgID: "m",
		sd: `[x@1 q="a\"b\\c\]d" e="\n"][y@1]`, msg: "msg",
	},
	{
		name: "rfc5424 unescaped ] inside a value", format: FormatRFC5424, pri: 14,
		in: `<14>1 - h - - - [x@1 q="a]b"] m`, host: "h", sd: `[x@1 q="a]b"]`, msg: "m",
	},

	// RFC 3164 §5.4, written from the RFC's text.
	{
		name: "rfc3164 example 1", format: FormatRFC3164, pri: 34,
		in: "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
		ts: "2023-10-11T22:14:15Z", host: "mymachine", app: "su", msg: "'su root' failed for lonvick on /dev/pts/8",
	},
	{
		name: "rfc3164 example 2 as received", format: FormatUnknown, problem: ProblemNoPRI, noPRI: true,
		in: "Use the BFG!", msg: "Use the BFG!",
	},
	{
		name: "rfc3164 example 2 as relayed", format: FormatRFC3164, pri: 13,
		in: "<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!", ts: "2024-02-05T17:32:18Z", host: "10.0.0.99", msg: "Use the BFG!",
	},
	{
		// The RFC's relay would take "CST" for the hostname; reading it
		// as the zone and "1987" as the year, as date(1) prints them,
		// recovers the sender's real header.
		name: "rfc3164 example 3", format: FormatRFC3164, pri: 165,
		in: "<165>Aug 24 05:34:00 CST 1987 mymachine myproc[10]: %% It's time to make the do-nuts.  %%  Ingredients: Mix=OK, Jelly=OK # " +
			"Devices: Mixer=OK, Jelly_Injector=OK, Frier=OK # Transport: Conveyer1=OK, Conveyer2=OK # %%",
		ts: "1987-08-24T05:34:00-06:00", host: "mymachine", app: "myproc", procID: "10",
		msg: "%% It's time to make the do-nuts.  %%  Ingredients: Mix=OK, Jelly=OK # " +
			"Devices: Mixer=OK, Jelly_Injector=OK, Frier=OK # Transport: Conveyer1=OK, Conveyer2=OK # %%",
	},
	{
		// The RFC says this stamp is not valid and the relay must treat
		// everything after the PRI as content.
		name: "rfc3164 example 4", format: FormatUnknown, problem: ProblemNoHeader, pri: 0,
		in:  "<0>1990 Oct 22 10:52:01 TZ-6 scapegoat.dmz.example.org 10.1.2.3 sched[0]: That's All Folks!",
		msg: "1990 Oct 22 10:52:01 TZ-6 scapegoat.dmz.example.org 10.1.2.3 sched[0]: That's All Folks!",
	},
	{
		name: "rfc3164 example 5 (example 4 relayed)", format: FormatRFC3164, pri: 0,
		in: "<0>Oct 22 10:52:12 scapegoat 1990 Oct 22 10:52:01 TZ-6 scapegoat.dmz.example.org 10.1.2.3 sched[0]: That's All Folks!",
		ts: "2023-10-22T10:52:12Z", host: "scapegoat",
		msg: "1990 Oct 22 10:52:01 TZ-6 scapegoat.dmz.example.org 10.1.2.3 sched[0]: That's All Folks!",
	},

	// Linux.
	{
		name: "sshd", format: FormatRFC3164, pri: 38,
		in: "<38>Mar  1 08:00:00 web01 sshd[4321]: Accepted publickey for deploy from 192.0.2.10 port 51234 ssh2: ED25519 SHA256:Zm9vYmFy",
		ts: "2024-03-01T08:00:00Z", host: "web01", app: "sshd", procID: "4321",
		msg: "Accepted publickey for deploy from 192.0.2.10 port 51234 ssh2: ED25519 SHA256:Zm9vYmFy",
	},
	{
		name: "sshd on Feb 29", format: FormatRFC3164, pri: 86,
		in: "<86>Feb 29 23:59:59 web01 sshd[4321]: pam_unix(sshd:session): session closed for user deploy",
		ts: "2024-02-29T23:59:59Z", host: "web01", app: "sshd", procID: "4321",
		msg: "pam_unix(sshd:session): session closed for user deploy",
	},
	{
		name: "cron", format: FormatRFC3164, pri: 78,
		in: "<78>Mar  1 09:17:01 web01 CRON[12345]: (root) CMD (   cd / && run-parts --report /etc/cron.hourly)",
		ts: "2024-03-01T09:17:01Z", host: "web01", app: "CRON", procID: "12345",
		msg: "(root) CMD (   cd / && run-parts --report /etc/cron.hourly)",
	},
	{
		name: "kernel", format: FormatRFC3164, pri: 6,
		in: "<6>Mar  1 10:00:00 web01 kernel: [123456.789012] usb 1-1: new high-speed USB device number 2 using xhci_hcd",
		ts: "2024-03-01T10:00:00Z", host: "web01", app: "kernel",
		msg: "[123456.789012] usb 1-1: new high-speed USB device number 2 using xhci_hcd",
	},
	{
		name: "systemd", format: FormatRFC3164, pri: 30,
		in: "<30>Mar  1 11:00:00 web01 systemd[1]: Started Session 42 of User deploy.",
		ts: "2024-03-01T11:00:00Z", host: "web01", app: "systemd", procID: "1", msg: "Started Session 42 of User deploy.",
	},
	{
		name: "systemd-logind without hostname (local socket)", format: FormatRFC3164, pri: 38,
		in: "<38>Mar  1 11:00:00 systemd-logind[812]: New session 42 of user deploy.",
		ts: "2024-03-01T11:00:00Z", app: "systemd-logind", procID: "812", msg: "New session 42 of user deploy.",
	},
	{
		name: "kernel without hostname, single-digit day unpadded", format: FormatRFC3164, pri: 6,
		in: "<6>Mar 1 11:00:00 kernel: Linux version 6.1.0", ts: "2024-03-01T11:00:00Z", app: "kernel", msg: "Linux version 6.1.0",
	},
	{
		name: "sudo keeps the spaces of its content", format: FormatRFC3164, pri: 85,
		in: "<85>Mar  1 11:00:00 web01 sudo:   deploy : TTY=pts/0 ; PWD=/home/deploy ; USER=root ; COMMAND=/usr/bin/apt update",
		ts: "2024-03-01T11:00:00Z", host: "web01", app: "sudo",
		msg: "  deploy : TTY=pts/0 ; PWD=/home/deploy ; USER=root ; COMMAND=/usr/bin/apt update",
	},
	{
		name: "postfix tag with slash", format: FormatRFC3164, pri: 22,
		in: "<22>Mar  1 11:00:00 mail01 postfix/smtpd[2345]: connect from unknown[192.0.2.55]",
		ts: "2024-03-01T11:00:00Z", host: "mail01", app: "postfix/smtpd", procID: "2345", msg: "connect from unknown[192.0.2.55]",
	},
	{
		name: "rsyslog forward format (RFC 3339 stamp in 3164)", format: FormatRFC3164, pri: 86,
		in: "<86>2024-03-01T08:00:00.123456+01:00 web01 sshd[4321]: Connection closed by 192.0.2.10 port 51234 [preauth]",
		ts: "2024-03-01T08:00:00.123456+01:00", host: "web01", app: "sshd", procID: "4321",
		msg: "Connection closed by 192.0.2.10 port 51234 [preauth]",
	},
	{
		name: "logger --rfc5424", format: FormatRFC5424, pri: 13,
		in: `<13>1 2024-03-01T11:59:59.654321+01:00 web01 deploy - - [timeQuality tzKnown="1" isSynced="1" syncAccuracy="451000"] hello from logger`,
		ts: "2024-03-01T11:59:59.654321+01:00", host: "web01", app: "deploy",
		sd: `[timeQuality tzKnown="1" isSynced="1" syncAccuracy="451000"]`, msg: "hello from logger",
	},
	{
		name: "tag without colon before content is not a tag", format: FormatRFC3164, pri: 13,
		in: "<13>Mar  1 11:00:00 host see http://example.com/x", ts: "2024-03-01T11:00:00Z", host: "host", msg: "see http://example.com/x",
	},
	{
		name: "URL right after the hostname is not a tag", format: FormatRFC3164, pri: 13,
		in: "<13>Mar  1 11:00:00 host http://example.com/ is down", ts: "2024-03-01T11:00:00Z", host: "host", msg: "http://example.com/ is down",
	},
	{
		name: "tag with pid but no colon", format: FormatRFC3164, pri: 13,
		in: "<13>Mar  1 11:00:00 host app[7] text", ts: "2024-03-01T11:00:00Z", host: "host", app: "app", procID: "7", msg: "text",
	},
	{
		name: "lowercase month, stamp only", format: FormatRFC3164, pri: 13,
		in: "<13>mar  1 11:00:00", ts: "2024-03-01T11:00:00Z",
	},
	{
		name: "hostname only", format: FormatRFC3164, pri: 13,
		in: "<13>Mar  1 11:00:00 host", ts: "2024-03-01T11:00:00Z", host: "host",
	},

	// Cisco.
	{
		name: "cisco ios counter, star, msec, UTC", format: FormatRFC3164, pri: 189, seq: "123",
		in: "<189>123: *Mar  1 00:00:00.123 UTC: %SYS-5-CONFIG_I: Configured from console by vty0 (192.0.2.5)",
		ts: "2024-03-01T00:00:00.123Z", msg: "%SYS-5-CONFIG_I: Configured from console by vty0 (192.0.2.5)",
	},
	{
		name: "cisco ios hostname before the stamp", format: FormatRFC3164, pri: 189, seq: "123",
		in: "<189>123: router1: *Mar  1 00:00:00.123 UTC: %SYS-5-CONFIG_I: Configured from console by vty0",
		ts: "2024-03-01T00:00:00.123Z", host: "router1", msg: "%SYS-5-CONFIG_I: Configured from console by vty0",
	},
	{
		name: "cisco ios year and CET, no counter", format: FormatRFC3164, pri: 187,
		in: "<187>Mar  1 2024 10:15:30.456 CET: %LINK-3-UPDOWN: Interface GigabitEthernet0/1, changed state to down",
		ts: "2024-03-01T10:15:30.456+01:00", msg: "%LINK-3-UPDOWN: Interface GigabitEthernet0/1, changed state to down",
	},
	{
		name: "cisco ios dot marker, no zone", format: FormatRFC3164, pri: 189, seq: "45",
		in: "<189>45: .Mar  1 00:00:05: %LINEPROTO-5-UPDOWN: Line protocol on Interface Vlan1, changed state to up",
		ts: "2024-03-01T00:00:05Z", msg: "%LINEPROTO-5-UPDOWN: Line protocol on Interface Vlan1, changed state to up",
	},
	{
		name: "cisco ios message counter and zero-padded sequence number", format: FormatRFC3164, pri: 190, seq: "45",
		in: "<190>45: 000045: Mar  1 11:00:00.001 UTC: %SEC-6-IPACCESSLOGP: list 101 denied tcp 192.0.2.1(1234) -> 198.51.100.1(80), 1 packet",
		ts: "2024-03-01T11:00:00.001Z", msg: "%SEC-6-IPACCESSLOGP: list 101 denied tcp 192.0.2.1(1234) -> 198.51.100.1(80), 1 packet",
	},
	{
		name: "cisco ios administrator-named zone keeps the listener's zone", format: FormatRFC3164, problem: ProblemUnknownZone, pri: 189, seq: "7",
		in: "<189>7: Mar  1 11:00:00 HQT: %SYS-5-RESTART: System restarted", ts: "2024-03-01T11:00:00Z",
		msg: "%SYS-5-RESTART: System restarted",
	},
	{
		name: "cisco ios uptime stamp is no header", format: FormatUnknown, problem: ProblemNoHeader, pri: 189,
		in:  "<189>12: 00:00:46: %LINK-3-UPDOWN: Interface GigabitEthernet0/1, changed state to up",
		msg: "12: 00:00:46: %LINK-3-UPDOWN: Interface GigabitEthernet0/1, changed state to up",
	},
	{
		name: "cisco asa without hostname", format: FormatRFC3164, pri: 166,
		in:  "<166>Mar 01 2024 11:00:00: %ASA-6-302013: Built outbound TCP connection 123 for outside:192.0.2.1/443 (192.0.2.1/443) to inside:10.0.0.5/51234 (10.0.0.5/51234)",
		ts:  "2024-03-01T11:00:00Z",
		msg: "%ASA-6-302013: Built outbound TCP connection 123 for outside:192.0.2.1/443 (192.0.2.1/443) to inside:10.0.0.5/51234 (10.0.0.5/51234)",
	},
	{
		name: "cisco asa with hostname", format: FormatRFC3164, pri: 166,
		in: "<166>Mar 01 2024 11:00:00 asa-fw01 : %ASA-6-106015: Deny TCP (no connection) from 192.0.2.1/443 to 10.0.0.5/51234 flags RST",
		ts: "2024-03-01T11:00:00Z", host: "asa-fw01",
		msg: "%ASA-6-106015: Deny TCP (no connection) from 192.0.2.1/443 to 10.0.0.5/51234 flags RST",
	},
	{
		name: "cisco nx-os", format: FormatRFC3164, pri: 189,
		in: "<189>: 2024 Mar  1 00:00:00 UTC: %ETHPORT-5-IF_UP: Interface Ethernet1/1 is up in mode access",
		ts: "2024-03-01T00:00:00Z", msg: "%ETHPORT-5-IF_UP: Interface Ethernet1/1 is up in mode access",
	},

	// Juniper.
	{
		name: "junos mgd rfc5424", format: FormatRFC5424, pri: 165,
		in: `<165>1 2024-03-01T12:00:00.123+01:00 fw01 mgd 3046 UI_COMMIT [junos@2636.1.1.1.2.18 username="admin" comment="nightly \"safe\" change"] User 'admin' requested 'commit' operation`,
		ts: "2024-03-01T12:00:00.123+01:00", host: "fw01", app: "mgd", procID: "3046", msgID: "UI_COMMIT",
		sd: `[junos@2636.1.1.1.2.18 username="admin" comment="nightly \"safe\" change"]`, msg: "User 'admin' requested 'commit' operation",
	},
	{
		name: "junos srx RT_FLOW", format: FormatRFC5424, pri: 14,
		in: `<14>1 2024-03-01T11:00:00.000Z srx01 RT_FLOW - RT_FLOW_SESSION_CREATE [junos@2636.1.1.1.2.129 source-address="192.0.2.1" source-port="49152" destination-address="198.51.100.7" destination-port="443" service-name="junos-https" protocol-id="6" policy-name="allow-web" source-zone-name="trust" destination-zone-name="untrust" session-id-32="12345"] session created 192.0.2.1/49152->198.51.100.7/443`,
		ts: "2024-03-01T11:00:00Z", host: "srx01", app: "RT_FLOW", msgID: "RT_FLOW_SESSION_CREATE",
		sd:  `[junos@2636.1.1.1.2.129 source-address="192.0.2.1" source-port="49152" destination-address="198.51.100.7" destination-port="443" service-name="junos-https" protocol-id="6" policy-name="allow-web" source-zone-name="trust" destination-zone-name="untrust" session-id-32="12345"]`,
		msg: "session created 192.0.2.1/49152->198.51.100.7/443",
	},
	{
		name: "junos bsd format", format: FormatRFC3164, pri: 28,
		in: "<28>Mar  1 11:00:00 fw01 mgd[3046]: UI_COMMIT: User 'admin' requested 'commit' operation",
		ts: "2024-03-01T11:00:00Z", host: "fw01", app: "mgd", procID: "3046", msg: "UI_COMMIT: User 'admin' requested 'commit' operation",
	},

	// Firewalls.
	{
		name: "fortigate key=value has no header", format: FormatUnknown, problem: ProblemNoHeader, pri: 189,
		in:  `<189>date=2024-03-01 time=12:00:00 devname="FG100E" devid="FG100ETK00000000" logid="0000000013" type="traffic" subtype="forward" level="notice" vd="root" srcip=192.0.2.10 srcport=51234 dstip=198.51.100.20 dstport=443 action="accept"`,
		msg: `date=2024-03-01 time=12:00:00 devname="FG100E" devid="FG100ETK00000000" logid="0000000013" type="traffic" subtype="forward" level="notice" vd="root" srcip=192.0.2.10 srcport=51234 dstip=198.51.100.20 dstport=443 action="accept"`,
	},
	{
		name: "pfsense filterlog bsd", format: FormatRFC3164, pri: 134,
		in: "<134>Mar  1 11:00:00 filterlog[23456]: 5,,,1000000103,em0,match,block,in,4,0x0,,64,0,0,DF,6,tcp,60,192.0.2.1,198.51.100.2,51234,22,0,S,1234567890,,64240,,mss;sackOK;TS;nop;wscale",
		ts: "2024-03-01T11:00:00Z", app: "filterlog", procID: "23456",
		msg: "5,,,1000000103,em0,match,block,in,4,0x0,,64,0,0,DF,6,tcp,60,192.0.2.1,198.51.100.2,51234,22,0,S,1234567890,,64240,,mss;sackOK;TS;nop;wscale",
	},
	{
		name: "pfsense filterlog rfc5424", format: FormatRFC5424, pri: 134,
		in: "<134>1 2024-03-01T11:00:00.123456+00:00 pfsense.example.com filterlog 23456 - - 5,,,1000000103,em0,match,block,in,4,0x0,,64",
		ts: "2024-03-01T11:00:00.123456Z", host: "pfsense.example.com", app: "filterlog", procID: "23456",
		msg: "5,,,1000000103,em0,match,block,in,4,0x0,,64",
	},
	{
		name: "iptables kernel line", format: FormatRFC3164, pri: 4,
		in: "<4>Mar  1 11:00:00 gw01 kernel: [98765.432100] IN=eth0 OUT= MAC=00:11:22:33:44:55:66:77:88:99:aa:bb:08:00 SRC=192.0.2.1 DST=198.51.100.1 LEN=60 TOS=0x00 PREC=0x00 TTL=52 ID=54321 DF PROTO=TCP SPT=51234 DPT=22 WINDOW=64240 RES=0x00 SYN URGP=0",
		ts: "2024-03-01T11:00:00Z", host: "gw01", app: "kernel",
		msg: "[98765.432100] IN=eth0 OUT= MAC=00:11:22:33:44:55:66:77:88:99:aa:bb:08:00 SRC=192.0.2.1 DST=198.51.100.1 LEN=60 TOS=0x00 PREC=0x00 TTL=52 ID=54321 DF PROTO=TCP SPT=51234 DPT=22 WINDOW=64240 RES=0x00 SYN URGP=0",
	},
	{
		name: "palo alto csv after hostname", format: FormatRFC3164, pri: 14,
		in: "<14>Mar  1 11:00:00 PA-VM 1,2024/03/01 11:00:00,007200001234,TRAFFIC,end,2560,2024/03/01 11:00:00,192.0.2.1,198.51.100.1",
		ts: "2024-03-01T11:00:00Z", host: "PA-VM", msg: "1,2024/03/01 11:00:00,007200001234,TRAFFIC,end,2560,2024/03/01 11:00:00,192.0.2.1,198.51.100.1",
	},

	// Malformed: PRI.
	{name: "empty", format: FormatUnknown, problem: ProblemNoPRI, noPRI: true, in: ""},
	{name: "lone <", format: FormatUnknown, problem: ProblemBadPRI, noPRI: true, in: "<", msg: "<"},
	{name: "unterminated PRI", format: FormatUnknown, problem: ProblemBadPRI, noPRI: true, in: "<13", msg: "<13"},
	{name: "PRI only", format: FormatUnknown, problem: ProblemNoHeader, pri: 13, in: "<13>"},
	{name: "PRI out of range", format: FormatUnknown, problem: ProblemBadPRI, noPRI: true, in: "<192>test", msg: "test"},
	{
		name: "PRI with leading zero, header still read for routing", format: FormatRFC3164, problem: ProblemBadPRI, noPRI: true,
		in: "<01>Mar  1 00:00:00 host app: x", ts: "2024-03-01T00:00:00Z", host: "host", app: "app", msg: "x",
	},
	{
		name: "no PRI, header still read for routing", format: FormatRFC3164, problem: ProblemNoPRI, noPRI: true,
		in: "Mar  1 00:00:00 host app: x", ts: "2024-03-01T00:00:00Z", host: "host", app: "app", msg: "x",
	},
	{name: "PRI-looking 5424 with bad PRI", format: FormatRFC5424, problem: ProblemBadPRI, noPRI: true, in: "<200>1 - h - - - - m", host: "h", msg: "m"},

	// Malformed: RFC 5424 header.
	{name: "5424 version only", format: FormatRFC5424, problem: ProblemBadTimestamp, pri: 13, in: "<13>1 "},
	{name: "5424 ends after stamp", format: FormatRFC5424, problem: ProblemBadHeader, pri: 13, in: "<13>1 2024-03-01T00:00:00Z", ts: "2024-03-01T00:00:00Z"},
	{name: "5424 ends after msgid", format: FormatRFC5424, problem: ProblemBadHeader, pri: 13, in: "<13>1 - h a p m", host: "h", app: "a", procID: "p", msgID: "m"},
	{name: "5424 ends after msgid and SP", format: FormatRFC5424, problem: ProblemBadHeader, pri: 13, in: "<13>1 - h a p m ", host: "h", app: "a", procID: "p", msgID: "m"},
	{name: "5424 month 13", format: FormatRFC5424, problem: ProblemBadTimestamp, pri: 13, in: "<13>1 2024-13-01T00:00:00Z h a p m - x", host: "h", app: "a", procID: "p", msgID: "m", msg: "x"},
	{name: "5424 Feb 30", format: FormatRFC5424, problem: ProblemBadTimestamp, pri: 13, in: "<13>1 2024-02-30T00:00:00Z h - - - - x", host: "h", msg: "x"},
	{name: "5424 hour 25", format: FormatRFC5424, problem: ProblemBadTimestamp, pri: 13, in: "<13>1 2024-03-01T25:00:00Z h - - - - x", host: "h", msg: "x"},
	{name: "5424 stamp without offset", format: FormatRFC5424, problem: ProblemBadTimestamp, pri: 13, in: "<13>1 2024-03-01T00:00:00 h - - - - x", host: "h", msg: "x"},
	{name: "5424 stamp offset without colon", format: FormatRFC5424, problem: ProblemBadTimestamp, pri: 13, in: "<13>1 2024-03-01T00:00:00+0100 h - - - - x", host: "h", msg: "x"},
	{name: "5424 stamp ten fraction digits", format: FormatRFC5424, problem: ProblemBadTimestamp, pri: 13, in: "<13>1 2024-03-01T00:00:00.1234567890Z h - - - - x", host: "h", msg: "x"},
	{name: "5424 3164 stamp", format: FormatRFC5424, problem: ProblemBadTimestamp, pri: 13, in: "<13>1 Mar-01 h - - - - x", host: "h", msg: "x"},
	{
		name: "5424 hostname of 256", format: FormatRFC5424, problem: ProblemBadHeader, pri: 13,
		in: "<13>1 - " + strings.Repeat("h", 256) + " - - - - x", host: strings.Repeat("h", 256), msg: "x",
	},
	{name: "5424 app-name of 49", format: FormatRFC5424, problem: ProblemBadHeader, pri: 13, in: "<13>1 - h " + strings.Repeat("a", 49) + " - - - x", host: "h", app: strings.Repeat("a", 49), msg: "x"},
	{name: "5424 procid of 129", format: FormatRFC5424, problem: ProblemBadHeader, pri: 13, in: "<13>1 - h - " + strings.Repeat("p", 129) + " - - x", host: "h", procID: strings.Repeat("p", 129), msg: "x"},
	{name: "5424 msgid of 33", format: FormatRFC5424, problem: ProblemBadHeader, pri: 13, in: "<13>1 - h - - " + strings.Repeat("m", 33) + " - x", host: "h", msgID: strings.Repeat("m", 33), msg: "x"},
	{name: "5424 non-ASCII hostname", format: FormatRFC5424, problem: ProblemBadHeader, pri: 13, in: "<13>1 - h\xc3\xb4st - - - - x", host: "h\xc3\xb4st", msg: "x"},
	{name: "5424 empty field", format: FormatRFC5424, problem: ProblemBadHeader, pri: 13, in: "<13>1 - h  - - - x", host: "h", msg: "x"},
	{name: "5424 limits exactly", format: FormatRFC5424, pri: 13,
		in:   "<13>1 - " + strings.Repeat("h", 255) + " " + strings.Repeat("a", 48) + " " + strings.Repeat("p", 128) + " " + strings.Repeat("m", 32) + " - x",
		host: strings.Repeat("h", 255), app: strings.Repeat("a", 48), procID: strings.Repeat("p", 128), msgID: strings.Repeat("m", 32), msg: "x"},

	// Malformed: structured data.
	{name: "sd unclosed", format: FormatRFC5424, problem: ProblemBadStructuredData, pri: 13, in: "<13>1 - - - - - [", msg: "["},
	{name: "sd id only unclosed", format: FormatRFC5424, problem: ProblemBadStructuredData, pri: 13, in: "<13>1 - - - - - [a", msg: "[a"},
	{name: "sd empty element", format: FormatRFC5424, problem: ProblemBadStructuredData, pri: 13, in: "<13>1 - - - - - [] x", msg: "[] x"},
	{name: "sd param without value", format: FormatRFC5424, problem: ProblemBadStructuredData, pri: 13, in: "<13>1 - - - - - [a b] x", msg: "[a b] x"},
	{name: "sd param with empty unquoted value", format: FormatRFC5424, problem: ProblemBadStructuredData, pri: 13, in: "<13>1 - - - - - [a b=] x", msg: "[a b=] x"},
	{name: "sd unquoted value", format: FormatRFC5424, problem: ProblemBadStructuredData, pri: 13, in: "<13>1 - - - - - [a b=c] x", msg: "[a b=c] x"},
	{name: "sd value unterminated", format: FormatRFC5424, problem: ProblemBadStructuredData, pri: 13, in: `<13>1 - - - - - [a b="x] y`, msg: `[a b="x] y`},
	{name: "sd escaped closing quote", format: FormatRFC5424, problem: ProblemBadStructuredData, pri: 13, in: `<13>1 - - - - - [a b="x\"]`, msg: `[a b="x\"]`},
	{name: "sd trailing backslash", format: FormatRFC5424, problem: ProblemBadStructuredData, pri: 13, in: `<13>1 - - - - - [a b="x\`, msg: `[a b="x\`},
	{name: "sd space before ]", format: FormatRFC5424, problem: ProblemBadStructuredData, pri: 13, in: `<13>1 - - - - - [a b="c" ] x`, msg: `[a b="c" ] x`},
	{name: "sd junk after element", format: FormatRFC5424, problem: ProblemBadStructuredData, pri: 13, in: `<13>1 - - - - - [a b="c"]x`, msg: `[a b="c"]x`},
	{name: "sd junk after nil", format: FormatRFC5424, problem: ProblemBadStructuredData, pri: 13, in: "<13>1 - - - - - -x y", msg: "-x y"},
	{name: "sd not an element", format: FormatRFC5424, problem: ProblemBadStructuredData, pri: 13, in: "<13>1 - - - - - x y", msg: "x y"},
	{name: "sd id of 33", format: FormatRFC5424, problem: ProblemBadStructuredData, pri: 13, in: "<13>1 - - - - - [" + strings.Repeat("i", 33) + "]", msg: "[" + strings.Repeat("i", 33) + "]"},
	{name: "sd id with quote", format: FormatRFC5424, problem: ProblemBadStructuredData, pri: 13, in: `<13>1 - - - - - [a"b] x`, msg: `[a"b] x`},
	{
		name: "sd second element broken", format: FormatRFC5424, problem: ProblemBadStructuredData, pri: 13,
		in: `<13>1 - - - - - [a b="c"][d e="f] x`, msg: `[a b="c"][d e="f] x`,
	},
	{name: "sd SP between elements starts MSG", format: FormatRFC5424, pri: 13, in: `<13>1 - - - - - [a b="c"] [d]`, sd: `[a b="c"]`, msg: "[d]"},

	// Malformed: RFC 3164 header.
	{name: "3164 day 32", format: FormatRFC3164, problem: ProblemBadTimestamp, pri: 13, in: "<13>Mar 32 00:00:00 host app: x", host: "host", app: "app", msg: "x"},
	{name: "3164 Feb 30", format: FormatRFC3164, problem: ProblemBadTimestamp, pri: 13, in: "<13>Feb 30 00:00:00 host x", host: "host", msg: "x"},
	{name: "3164 hour 24", format: FormatRFC3164, problem: ProblemBadTimestamp, pri: 13, in: "<13>Mar  1 24:00:00 host x", host: "host", msg: "x"},
	{name: "3164 Feb 29 in a stated common year", format: FormatRFC3164, problem: ProblemBadTimestamp, pri: 13, in: "<13>Feb 29 2023 00:00:00: x", msg: "x"},
	{name: "3164 unknown month", format: FormatUnknown, problem: ProblemNoHeader, pri: 13, in: "<13>Foo  1 00:00:00 host x", msg: "Foo  1 00:00:00 host x"},
	{name: "3164 stamp glued to text", format: FormatUnknown, problem: ProblemNoHeader, pri: 13, in: "<13>Mar  1 00:00:00x", msg: "Mar  1 00:00:00x"},
	{name: "3164 stamp cut short", format: FormatUnknown, problem: ProblemNoHeader, pri: 13, in: "<13>Mar  1 00:00:0", msg: "Mar  1 00:00:0"},
	{name: "3164 dot without fraction", format: FormatUnknown, problem: ProblemNoHeader, pri: 13, in: "<13>Mar  1 00:00:00. x", msg: "Mar  1 00:00:00. x"},
	{name: "counter without stamp is content", format: FormatUnknown, problem: ProblemNoHeader, pri: 13, in: "<13>42: answer", msg: "42: answer"},
	{name: "3164 binary content kept", format: FormatRFC3164, pri: 13, in: "<13>Mar  1 00:00:00 host app: \x00\xff\xfe\n\r", ts: "2024-03-01T00:00:00Z", host: "host", app: "app", msg: "\x00\xff\xfe\n\r"},
	{
		name: "3164 tag of 49 is content", format: FormatRFC3164, pri: 13,
		in: "<13>Mar  1 00:00:00 host " + strings.Repeat("t", 49) + ": x", ts: "2024-03-01T00:00:00Z", host: "host", msg: strings.Repeat("t", 49) + ": x",
	},
	{name: "3164 pid not closed is content", format: FormatRFC3164, pri: 13, in: "<13>Mar  1 00:00:00 host app[12: x", ts: "2024-03-01T00:00:00Z", host: "host", msg: "app[12: x"},
	{name: "3164 empty pid is content", format: FormatRFC3164, pri: 13, in: "<13>Mar  1 00:00:00 host app[]: x", ts: "2024-03-01T00:00:00Z", host: "host", msg: "app[]: x"},
	{name: "3164 nil hostname", format: FormatRFC3164, pri: 13, in: "<13>Mar  1 00:00:00 - app: x", ts: "2024-03-01T00:00:00Z", app: "app", msg: "x"},
	{name: "3164 two spaces after stamp", format: FormatRFC3164, pri: 13, in: "<13>Mar  1 00:00:00  x", ts: "2024-03-01T00:00:00Z", msg: " x"},
}

func TestParseGolden(t *testing.T) {
	for _, g := range goldens {
		t.Run(g.name, func(t *testing.T) {
			b := []byte(g.in)
			var m Message
			Parse(b, ParseOptions{Location: time.UTC, Received: refTime}, &m)
			checkGolden(t, &g, &m)
			checkInvariants(t, b, &m)
		})
	}
}

func checkGolden(t *testing.T, g *golden, m *Message) {
	t.Helper()
	wantPRI, wantHasPRI := g.pri, true
	if g.noPRI {
		wantPRI, wantHasPRI = DefaultPRI, false
	}
	if m.Format != g.format || m.Problem != g.problem || m.PRI != wantPRI || m.HasPRI != wantHasPRI {
		t.Errorf("Parse(%q): format %v, problem %v, PRI %d/%v; want %v, %v, %d/%v",
			g.in, m.Format, m.Problem, m.PRI, m.HasPRI, g.format, g.problem, wantPRI, wantHasPRI)
	}
	if g.ts == "" {
		if m.HasTimestamp {
			t.Errorf("Parse(%q): timestamp %v, want none", g.in, m.Timestamp)
		} else if !m.Timestamp.Equal(refTime) {
			t.Errorf("Parse(%q): Timestamp without a stamp = %v, want the receive time %v", g.in, m.Timestamp, refTime)
		}
	} else if got := m.Timestamp.Format(time.RFC3339Nano); !m.HasTimestamp || got != g.ts {
		t.Errorf("Parse(%q): timestamp %s (has %v), want %s", g.in, got, m.HasTimestamp, g.ts)
	}
	for _, f := range []struct {
		name string
		got  []byte
		want string
	}{
		{"Hostname", m.Hostname, g.host},
		{"AppName", m.AppName, g.app},
		{"ProcID", m.ProcID, g.procID},
		{"MsgID", m.MsgID, g.msgID},
		{"StructuredData", m.StructuredData, g.sd},
		{"Msg", m.Msg, g.msg},
		{"Sequence", m.Sequence, g.seq},
	} {
		if string(f.got) != f.want {
			t.Errorf("Parse(%q): %s = %q, want %q", g.in, f.name, f.got, f.want)
		}
	}
	if m.HasBOM != g.bom {
		t.Errorf("Parse(%q): HasBOM = %v, want %v", g.in, m.HasBOM, g.bom)
	}
}

// subslice reports whether f is empty or a subslice of b sharing its
// memory (every slice Parse returns is b[i:j] of its input).
func subslice(b, f []byte) bool {
	if len(f) == 0 {
		return true
	}
	off := cap(b) - cap(f)
	return off >= 0 && off+len(f) <= len(b) && &b[off] == &f[0]
}

// checkInvariants checks what holds for every input: nothing is lost, every
// field aliases the input, and the PRI and problem agree.
func checkInvariants(t testing.TB, b []byte, m *Message) {
	t.Helper()
	if len(m.Raw) != len(b) || !subslice(b, m.Raw) {
		t.Fatalf("Parse(%q): Raw is not the input", b)
	}
	if !subslice(b, m.Msg) || (len(m.Msg) > 0 && cap(b)-cap(m.Msg)+len(m.Msg) != len(b)) {
		t.Fatalf("Parse(%q): Msg %q is not a suffix of the input", b, m.Msg)
	}
	for _, f := range [][]byte{m.Hostname, m.AppName, m.ProcID, m.MsgID, m.StructuredData, m.Sequence} {
		if !subslice(b, f) {
			t.Fatalf("Parse(%q): field %q does not alias the input", b, f)
		}
	}
	if m.PRI < 0 || m.PRI > MaxPRI {
		t.Fatalf("Parse(%q): PRI %d out of range", b, m.PRI)
	}
	if !m.HasPRI && (m.PRI != DefaultPRI || (m.Problem != ProblemNoPRI && m.Problem != ProblemBadPRI)) {
		t.Fatalf("Parse(%q): no PRI but PRI %d, problem %v", b, m.PRI, m.Problem)
	}
	if m.Problem == ProblemNone && m.Format == FormatUnknown {
		t.Fatalf("Parse(%q): no format and no problem", b)
	}
	if m.StructuredData != nil && !ValidSD(m.StructuredData) {
		t.Fatalf("Parse(%q): StructuredData %q is not valid", b, m.StructuredData)
	}
	if m.HasBOM && m.Format != FormatRFC5424 {
		t.Fatalf("Parse(%q): BOM outside RFC 5424", b)
	}
	if m.Problem >= numProblems {
		t.Fatalf("Parse(%q): problem %d out of range", b, m.Problem)
	}
	// The offsets AppendRFC5424 splices at point at what they stand for.
	if m.Problem == ProblemNone && m.Format == FormatRFC5424 {
		host := b[m.hostStart:m.hostEnd]
		if (m.Hostname == nil && string(host) != "-") || (m.Hostname != nil && !bytes.Equal(host, m.Hostname)) {
			t.Fatalf("Parse(%q): hostname offsets point at %q, hostname %q", b, host, m.Hostname)
		}
		sd := b[m.sdStart:m.sdEnd]
		if (m.StructuredData == nil && string(sd) != "-") || (m.StructuredData != nil && !bytes.Equal(sd, m.StructuredData)) {
			t.Fatalf("Parse(%q): SD offsets point at %q, structured data %q", b, sd, m.StructuredData)
		}
	}
}

func TestParseSDAccess(t *testing.T) {
	in := []byte(`<14>1 2024-03-01T12:00:00Z h a p m [x@1 q="a\"b\\c\]d" e="\n" e="second"][y@1][junos@2636.1.1.1.2.18 username="admin"] msg`)
	var m Message
	Parse(in, ParseOptions{Received: refTime}, &m)
	if m.Problem != ProblemNone {
		t.Fatalf("Parse: problem %v", m.Problem)
	}
	type param struct{ name, raw, value string }
	type elem struct {
		id     string
		params []param
	}
	want := []elem{
		{"x@1", []param{{"q", `a\"b\\c\]d`, `a"b\c]d`}, {"e", `\n`, `\n`}, {"e", "second", "second"}}},
		{"y@1", nil},
		{"junos@2636.1.1.1.2.18", []param{{"username", "admin", "admin"}}},
	}
	var got []elem
	it := NewSDIterator(m.StructuredData)
	for it.Next() {
		e := it.Element()
		ge := elem{id: string(e.ID)}
		pit := e.Params()
		for pit.Next() {
			p := pit.Param()
			ge.params = append(ge.params, param{string(p.Name), string(p.RawValue), p.Value()})
		}
		got = append(got, ge)
	}
	if len(got) != len(want) {
		t.Fatalf("elements = %v, want %v", got, want)
	}
	for i := range want {
		if got[i].id != want[i].id || len(got[i].params) != len(want[i].params) {
			t.Fatalf("element %d = %v, want %v", i, got[i], want[i])
		}
		for j := range want[i].params {
			if got[i].params[j] != want[i].params[j] {
				t.Errorf("element %d param %d = %+v, want %+v", i, j, got[i].params[j], want[i].params[j])
			}
		}
	}
	if p, ok := LookupSDParam(m.StructuredData, "junos@2636.1.1.1.2.18", "username"); !ok || p.Value() != "admin" {
		t.Errorf("LookupSDParam(junos, username) = %q, %v, want admin, true", p.RawValue, ok)
	}
	if p, ok := LookupSDParam(m.StructuredData, "x@1", "e"); !ok || p.Value() != `\n` {
		t.Errorf("LookupSDParam(x@1, e) = %q, %v, want the first e", p.RawValue, ok)
	}
	if _, ok := LookupSDParam(m.StructuredData, "x@1", "missing"); ok {
		t.Errorf("LookupSDParam(x@1, missing) found something")
	}
	if _, ok := LookupSDParam(m.StructuredData, "nope", "q"); ok {
		t.Errorf("LookupSDParam(nope, q) found something")
	}
	for _, sd := range []string{"", "-"} {
		it := NewSDIterator([]byte(sd))
		if it.Next() {
			t.Errorf("NewSDIterator(%q).Next() = true", sd)
		}
	}
	// The iterator stops at the first malformed element.
	it = NewSDIterator([]byte(`[a b="c"][d e=f][g]`))
	n := 0
	for it.Next() {
		n++
	}
	if n != 1 {
		t.Errorf("iterator over a broken second element gave %d elements, want 1", n)
	}
}

func TestValidSD(t *testing.T) {
	for _, tc := range []struct {
		sd   string
		want bool
	}{
		{`[a]`, true},
		{`[a b="c"]`, true},
		{`[a b="c" d=""][e@32473 f="\\"]`, true},
		{`[` + strings.Repeat("i", 32) + ` ` + strings.Repeat("n", 32) + `="v"]`, true},
		{`[a b="\x"]`, true}, // an invalid escape is two plain characters
		{`[a b="` + "\x00é" + `"]`, true},
		{`[a b="` + "\x00\xff" + `"]`, false}, // PARAM-VALUE is UTF-8
		{``, false},
		{`-`, false},
		{`[a] `, false},
		{`[a][`, false},
		{`[` + strings.Repeat("i", 33) + `]`, false},
		{`[a ` + strings.Repeat("n", 33) + `="v"]`, false},
		{`[a b="c"d="e"]`, false},
		{`[a  b="c"]`, false},
		{`[a b ="c"]`, false},
		{`[a b= "c"]`, false},
		{`[a=b]`, false},
		{`[a]b`, false},
		{` [a]`, false},
	} {
		if got := ValidSD([]byte(tc.sd)); got != tc.want {
			t.Errorf("ValidSD(%q) = %v, want %v", tc.sd, got, tc.want)
		}
	}
}

func TestSDValueEscapeRoundTrip(t *testing.T) {
	for _, v := range []string{"", "plain", `"`, `\`, `]`, `a"b\c]d`, `\\\"`, "\x00é", "\x00\xff", `end\`} {
		esc := AppendSDParamValue(nil, v)
		v = strings.ToValidUTF8(v, "\uFFFD") // what a PARAM-VALUE can hold
		sd := []byte(`[x k="` + string(esc) + `"]`)
		if !ValidSD(sd) {
			t.Errorf("AppendSDParamValue(%q) = %q, not valid in an element", v, esc)
			continue
		}
		p, ok := LookupSDParam(sd, "x", "k")
		if !ok || p.Value() != v || string(p.AppendValue([]byte("pre"))) != "pre"+v {
			t.Errorf("value %q escaped as %q reads back as %q", v, esc, p.Value())
		}
	}
}

// bsdStamp writes t as a BSD stamp, "Mmm dd hh:mm:ss" with the day padded
// by a space, independently of the package's own formatter.
func bsdStamp(t time.Time) string {
	return fmt.Sprintf("%s %2d %02d:%02d:%02d", t.Month().String()[:3], t.Day(), t.Hour(), t.Minute(), t.Second())
}

func TestYearInference(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	utc := func(y int, mo time.Month, d, h, mi, s int) time.Time {
		return time.Date(y, mo, d, h, mi, s, 0, time.UTC)
	}
	for _, tc := range []struct {
		name     string
		received time.Time
		loc      *time.Location
		stamp    string
		want     string
	}{
		{"Dec 31 received just after new year", utc(2024, 1, 1, 0, 0, 5), time.UTC, "Dec 31 23:59:58", "2023-12-31T23:59:58Z"},
		{"Dec 31 received at new year", utc(2027, 1, 1, 0, 0, 0), time.UTC, "Dec 31 23:59:00", "2026-12-31T23:59:00Z"},
		{"Jan 1 received just before new year", utc(2023, 12, 31, 23, 59, 58), time.UTC, "Jan  1 00:00:05", "2024-01-01T00:00:05Z"},
		{"Jan 1 received at Dec 31 23:59", utc(2026, 12, 31, 23, 59, 0), time.UTC, "Jan  1 00:00:30", "2027-01-01T00:00:30Z"},
		{"same day", utc(2024, 6, 15, 12, 0, 0), time.UTC, "Jun 15 11:00:00", "2024-06-15T11:00:00Z"},
		{"a few months back", utc(2024, 3, 1, 0, 0, 0), time.UTC, "Nov 20 00:00:00", "2023-11-20T00:00:00Z"},
		{"a few months ahead is last year's", utc(2024, 3, 1, 0, 0, 0), time.UTC, "Jun  1 00:00:00", "2023-06-01T00:00:00Z"},
		{"February stamp received in December", utc(2026, 12, 6, 16, 0, 0), time.UTC, "Feb  3 10:00:00", "2026-02-03T10:00:00Z"},
		{"January stamp received on Dec 1", utc(2026, 12, 1, 0, 0, 0), time.UTC, "Jan 31 00:00:00", "2026-01-31T00:00:00Z"},
		{"December stamp received in January", utc(2027, 1, 20, 0, 0, 0), time.UTC, "Dec 24 18:00:00", "2026-12-24T18:00:00Z"},
		// The margin: 27 hours ahead is kept, a second more is last year's.
		{"27 hours ahead", utc(2026, 6, 1, 0, 0, 0), time.UTC, "Jun  2 03:00:00", "2026-06-02T03:00:00Z"},
		{"27 hours and a second ahead", utc(2026, 6, 1, 0, 0, 0), time.UTC, "Jun  2 03:00:01", "2025-06-02T03:00:01Z"},
		// A sender at UTC+14 writes its new year while a listener in UTC
		// is still at Dec 31 10:30.
		{"new year from the farthest zone east", utc(2026, 12, 31, 10, 30, 0), time.UTC, "Jan  1 00:30:00", "2027-01-01T00:30:00Z"},
		// Feb 29 exists only in leap years: the latest one not ahead.
		{"Feb 29 received the next March", utc(2025, 3, 1, 0, 0, 0), time.UTC, "Feb 29 12:00:00", "2024-02-29T12:00:00Z"},
		{"Feb 29 received on Feb 28 of a common year", utc(2025, 2, 28, 23, 0, 0), time.UTC, "Feb 29 00:30:00", "2024-02-29T00:30:00Z"},
		{"Feb 29 received before the leap year's", utc(2027, 12, 1, 0, 0, 0), time.UTC, "Feb 29 12:00:00", "2024-02-29T12:00:00Z"},
		{"Feb 29 received on Feb 28 of a leap year", utc(2028, 2, 28, 23, 0, 0), time.UTC, "Feb 29 00:30:00", "2028-02-29T00:30:00Z"},
		{"Feb 29 received on Feb 29", utc(2028, 2, 29, 13, 0, 0), time.UTC, "Feb 29 12:00:00", "2028-02-29T12:00:00Z"},
		{"Feb 29 across a century that is not leap", utc(2101, 1, 1, 0, 0, 0), time.UTC, "Feb 29 12:00:00", "2096-02-29T12:00:00Z"},
		{"Feb 28 received in a common year", utc(2025, 3, 1, 0, 0, 0), time.UTC, "Feb 28 12:00:00", "2025-02-28T12:00:00Z"},
		// The receive time in UTC is still Dec 31, but in Berlin, the
		// zone the stamps are in, it is already Jan 1: the year follows
		// the listener's wall clock.
		{"new year in the listener's zone", utc(2023, 12, 31, 23, 0, 5), berlin, "Jan  1 00:00:01", "2024-01-01T00:00:01+01:00"},
		{"old year in the listener's zone", utc(2023, 12, 31, 23, 0, 5), berlin, "Dec 31 23:59:58", "2023-12-31T23:59:58+01:00"},
		// A zone in the stamp decides the wall clock for the year too.
		{"zone in the stamp", time.Date(2024, 1, 1, 0, 30, 0, 0, berlin), berlin, "Dec 31 23:40:00 UTC", "2023-12-31T23:40:00Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte("<13>" + tc.stamp + " host app: x")
			var m Message
			Parse(in, ParseOptions{Location: tc.loc, Received: tc.received}, &m)
			if got := m.Timestamp.Format(time.RFC3339Nano); got != tc.want || m.Problem != ProblemNone {
				t.Errorf("Parse(%q) received %v: timestamp %s, problem %v; want %s", in, tc.received, got, m.Problem, tc.want)
			}
		})
	}
}

// TestYearInferenceMonthBoundaries crosses every month boundary of a
// common and a leap year, and the new year, both ways: a stamp from the
// end of a month received at the start of the next, and a stamp from the
// start of a month received (from a clock a little ahead) at the end of
// the one before. Each must come back as the instant it was written. A
// stamp more than the margin ahead must come back a year earlier.
func TestYearInferenceMonthBoundaries(t *testing.T) {
	for _, year := range []int{2023, 2024} {
		for mo := time.January; mo <= time.December; mo++ {
			start := time.Date(year, mo+1, 1, 0, 0, 0, 0, time.UTC) // first second of the next month
			for _, tc := range []struct {
				what     string
				written  time.Time
				received time.Time
				want     time.Time
			}{
				{"end of month received after the boundary", start.Add(-time.Second), start.Add(2 * time.Second), start.Add(-time.Second)},
				{"end of month received a day later", start.Add(-time.Hour), start.Add(23 * time.Hour), start.Add(-time.Hour)},
				{"start of month received before the boundary", start.Add(3 * time.Second), start.Add(-time.Second), start.Add(3 * time.Second)},
				{"start of month a day ahead", start.Add(20 * time.Hour), start.Add(-time.Hour), start.Add(20 * time.Hour)},
				{"start of month two days ahead", start.Add(47 * time.Hour), start.Add(-time.Hour), start.Add(47*time.Hour).AddDate(-1, 0, 0)},
			} {
				in := []byte("<13>" + bsdStamp(tc.written) + " host app: x")
				var m Message
				Parse(in, ParseOptions{Location: time.UTC, Received: tc.received}, &m)
				if !m.Timestamp.Equal(tc.want) || m.Problem != ProblemNone || !m.HasTimestamp {
					t.Errorf("%s: Parse(%q) received %v: timestamp %v, problem %v; want %v",
						tc.what, in, tc.received.Format(time.RFC3339), m.Timestamp.Format(time.RFC3339), m.Problem, tc.want.Format(time.RFC3339))
				}
			}
		}
	}
}

// TestClockMark: Cisco's '*' and '.' before a stamp keep the stamp valid,
// its year follows the same rule, and the mark is reported.
func TestClockMark(t *testing.T) {
	for _, tc := range []struct {
		in       string
		received time.Time
		mark     byte
		want     string
		msg      string
	}{
		{"<189>123: *Mar  1 00:00:12.345: %SYS-5-RESTART: System restarted", time.Date(2026, 12, 6, 16, 0, 0, 0, time.UTC), '*', "2026-03-01T00:00:12.345Z", "%SYS-5-RESTART: System restarted"},
		{"<189>123: *Mar  1 00:00:12.345: %SYS-5-RESTART: System restarted", time.Date(2026, 2, 26, 0, 0, 0, 0, time.UTC), '*', "2025-03-01T00:00:12.345Z", "%SYS-5-RESTART: System restarted"},
		{"<189>123: *Mar  1 00:00:12.345: %SYS-5-RESTART: System restarted", time.Date(2026, 2, 28, 23, 0, 0, 0, time.UTC), '*', "2026-03-01T00:00:12.345Z", "%SYS-5-RESTART: System restarted"},
		{"<189>*Mar  1 00:00:12.345: %SYS-5-RESTART: System restarted", time.Date(2026, 12, 6, 16, 0, 0, 0, time.UTC), '*', "2026-03-01T00:00:12.345Z", "%SYS-5-RESTART: System restarted"},
		{"<189>45: router1: *Mar  1 00:00:12.345 UTC: %LINK-3-UPDOWN: x", time.Date(2026, 12, 6, 16, 0, 0, 0, time.UTC), '*', "2026-03-01T00:00:12.345Z", "%LINK-3-UPDOWN: x"},
		{"<189>46: .Dec  5 10:00:00.001 UTC: %SYS-6-CLOCKUPDATE: y", time.Date(2026, 12, 6, 16, 0, 0, 0, time.UTC), '.', "2026-12-05T10:00:00.001Z", "%SYS-6-CLOCKUPDATE: y"},
		{"<189>47: Dec  5 10:00:00.001 UTC: %SYS-6-CLOCKUPDATE: z", time.Date(2026, 12, 6, 16, 0, 0, 0, time.UTC), 0, "2026-12-05T10:00:00.001Z", "%SYS-6-CLOCKUPDATE: z"},
		{"<13>*Feb 29 00:00:01 host app: leap", time.Date(2026, 12, 6, 16, 0, 0, 0, time.UTC), '*', "2024-02-29T00:00:01Z", "leap"},
	} {
		var m Message
		Parse([]byte(tc.in), ParseOptions{Location: time.UTC, Received: tc.received}, &m)
		got := m.Timestamp.Format(time.RFC3339Nano)
		if m.Problem != ProblemNone || !m.HasTimestamp || m.ClockMark != tc.mark || got != tc.want || string(m.Msg) != tc.msg {
			t.Errorf("Parse(%q) received %v: problem %v, stamp %v %s, mark %q, msg %q; want none, %s, %q, %q",
				tc.in, tc.received.Format(time.RFC3339), m.Problem, m.HasTimestamp, got, m.ClockMark, m.Msg, tc.want, tc.mark, tc.msg)
		}
		// Routing parses without building the time; the mark is found all the same.
		var lite Message
		Parse([]byte(tc.in), ParseOptions{Location: time.UTC, Received: tc.received, SkipTimestamp: true}, &lite)
		if lite.ClockMark != tc.mark || lite.Problem != ProblemNone {
			t.Errorf("Parse(%q) with SkipTimestamp: mark %q, problem %v; want %q, none", tc.in, lite.ClockMark, lite.Problem, tc.mark)
		}
	}
}

func TestTimezoneOption(t *testing.T) {
	newYork, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	recv := time.Date(2024, 3, 15, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		loc  *time.Location
		want string
	}{
		// US daylight saving time began on 2024-03-10.
		{"<13>Mar  9 12:00:00 host app: x", newYork, "2024-03-09T12:00:00-05:00"},
		{"<13>Mar 10 12:00:00 host app: x", newYork, "2024-03-10T12:00:00-04:00"},
		{"<13>Mar  9 12:00:00 host app: x", berlin, "2024-03-09T12:00:00+01:00"},
		{"<13>Mar  9 12:00:00 host app: x", nil, time.Date(2024, 3, 9, 12, 0, 0, 0, time.Local).Format(time.RFC3339Nano)},
		// ISO stamps without an offset are in the listener's zone too.
		{"<13>2024-03-09T12:00:00 host app: x", berlin, "2024-03-09T12:00:00+01:00"},
		{"<13>2024-03-09 12:00:00.5 host app: x", berlin, "2024-03-09T12:00:00.5+01:00"},
		{"<13>2024-03-09T12:00:00+0530 host app: x", berlin, "2024-03-09T12:00:00+05:30"},
		{"<13>2024-03-09T12:00:00-03 host app: x", berlin, "2024-03-09T12:00:00-03:00"},
		// A stamp that names its zone ignores the option.
		{"<189>1: Mar  9 12:00:00 EST: %X-1-Y: z", berlin, "2024-03-09T12:00:00-05:00"},
		{"<189>1: Mar  9 12:00:00.250 AEDT: %X-1-Y: z", berlin, "2024-03-09T12:00:00.25+11:00"},
		{"<189>1: Mar  9 12:00:00 UTC: %X-1-Y: z", newYork, "2024-03-09T12:00:00Z"},
		{"<13>Mar  9 12:00:00 CET host app: x", newYork, "2024-03-09T12:00:00+01:00"},
		// A name the table does not know keeps the listener's zone.
		{"<189>1: Mar  9 12:00:00 HQT: %X-1-Y: z", berlin, "2024-03-09T12:00:00+01:00"},
		{"<189>1: Mar  9 12:00:00 MEZ: %X-1-Y: z", newYork, "2024-03-09T12:00:00+01:00"},
		// RFC 5424 stamps always carry their offset.
		{"<13>1 2024-03-09T12:00:00Z host app - - - x", berlin, "2024-03-09T12:00:00Z"},
	} {
		var m Message
		Parse([]byte(tc.in), ParseOptions{Location: tc.loc, Received: recv}, &m)
		wantProblem := ProblemNone
		if strings.Contains(tc.in, " HQT: ") {
			wantProblem = ProblemUnknownZone
		}
		if got := m.Timestamp.Format(time.RFC3339Nano); got != tc.want || m.Problem != wantProblem {
			t.Errorf("Parse(%q) in %v: timestamp %s, problem %v; want %s, %v", tc.in, tc.loc, got, m.Problem, tc.want, wantProblem)
		}
	}
}

// TestUnknownZone checks that a zone name the table does not know is
// reported, so that an administrator sees senders whose stamps the relay
// reads in the listener's zone, while the header is still read whole.
func TestUnknownZone(t *testing.T) {
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Fatal(err)
	}
	recv := time.Date(2024, 3, 9, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in       string
		problem  Problem
		ts, host string
		msg      string
	}{
		// IST is not in the table (India, Ireland and Israel all use it).
		{"<189>7: Mar  9 12:00:00 IST: %SYS-5-CONFIG_I: Configured", ProblemUnknownZone, "2024-03-09T12:00:00+05:30", "", "%SYS-5-CONFIG_I: Configured"},
		{"<189>7: Mar  9 12:00:00.250 HQT: %SYS-5-CONFIG_I: Configured", ProblemUnknownZone, "2024-03-09T12:00:00.25+05:30", "", "%SYS-5-CONFIG_I: Configured"},
		// A known name is no problem.
		{"<189>7: Mar  9 12:00:00 UTC: %SYS-5-CONFIG_I: Configured", ProblemNone, "2024-03-09T12:00:00Z", "", "%SYS-5-CONFIG_I: Configured"},
		// Without ':' the capitals are a hostname, not a zone.
		{"<13>Mar  9 12:00:00 IST app: x", ProblemNone, "2024-03-09T12:00:00+05:30", "IST", "x"},
		// A stamp out of range is the first problem found.
		{"<189>7: Feb 30 12:00:00 IST: %SYS-5-CONFIG_I: Configured", ProblemBadTimestamp, "", "", ""},
	} {
		var m Message
		Parse([]byte(tc.in), ParseOptions{Location: kolkata, Received: recv}, &m)
		if m.Problem != tc.problem {
			t.Errorf("Parse(%q): problem %v, want %v", tc.in, m.Problem, tc.problem)
			continue
		}
		if tc.problem == ProblemBadTimestamp {
			if m.HeaderRead() {
				t.Errorf("Parse(%q): HeaderRead true with %v", tc.in, m.Problem)
			}
			continue
		}
		if !m.HeaderRead() {
			t.Errorf("Parse(%q): HeaderRead false, want true with %v", tc.in, m.Problem)
		}
		if got := m.Timestamp.Format(time.RFC3339Nano); got != tc.ts || string(m.Hostname) != tc.host || string(m.Msg) != tc.msg {
			t.Errorf("Parse(%q): timestamp %s, hostname %q, MSG %q; want %s, %q, %q", tc.in, got, m.Hostname, m.Msg, tc.ts, tc.host, tc.msg)
		}
		// Converted as a clean message, not wrapped.
		out := AppendRFC5424(nil, &m, FormatOptions{})
		if want := "<" + fmt.Sprint(m.PRI) + ">1 " + tc.ts + " "; !bytes.HasPrefix(out, []byte(want)) || !bytes.HasSuffix(out, []byte(" "+tc.msg)) || bytes.Contains(out, []byte(" IST: ")) || bytes.Contains(out, []byte(" HQT: ")) {
			t.Errorf("AppendRFC5424(Parse(%q)) = %q, want it converted: %q … %q", tc.in, out, want, tc.msg)
		}
	}
}

func TestParseSkipTimestamp(t *testing.T) {
	for _, g := range goldens {
		b := []byte(g.in)
		var full, lite Message
		Parse(b, ParseOptions{Location: time.UTC, Received: refTime}, &full)
		Parse(b, ParseOptions{Location: time.UTC, Received: refTime, SkipTimestamp: true}, &lite)
		if !lite.Timestamp.IsZero() {
			t.Errorf("Parse(%q) with SkipTimestamp: Timestamp %v, want zero", g.in, lite.Timestamp)
		}
		lite.Timestamp = full.Timestamp
		if !equalMessages(&full, &lite) {
			t.Errorf("Parse(%q) with SkipTimestamp = %+v, want %+v", g.in, lite, full)
		}
	}
}

func equalMessages(a, b *Message) bool {
	return bytes.Equal(a.Raw, b.Raw) && a.PRI == b.PRI && a.HasPRI == b.HasPRI && a.Format == b.Format &&
		a.Timestamp.Equal(b.Timestamp) && a.HasTimestamp == b.HasTimestamp &&
		bytes.Equal(a.Hostname, b.Hostname) && bytes.Equal(a.AppName, b.AppName) &&
		bytes.Equal(a.ProcID, b.ProcID) && bytes.Equal(a.MsgID, b.MsgID) &&
		bytes.Equal(a.StructuredData, b.StructuredData) && bytes.Equal(a.Msg, b.Msg) &&
		a.HasBOM == b.HasBOM && bytes.Equal(a.Sequence, b.Sequence) && a.Problem == b.Problem
}

func TestParseReusesMessage(t *testing.T) {
	var m Message
	Parse([]byte(`<165>1 2003-10-11T22:14:15.003Z h a p m [x@1 k="v"] `+bomStr+`msg`), ParseOptions{Received: refTime}, &m)
	Parse([]byte("<13>hello"), ParseOptions{Received: refTime}, &m)
	var fresh Message
	Parse([]byte("<13>hello"), ParseOptions{Received: refTime}, &fresh)
	if !equalMessages(&m, &fresh) || m.hostStart != 0 || m.sdEnd != 0 {
		t.Errorf("reused Message = %+v, want %+v", m, fresh)
	}
}

func TestProblemStrings(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range append([]Problem{ProblemNone}, Problems()...) {
		s := p.String()
		if s == "" || s == "unknown" || seen[s] || strings.ToLower(s) != s || strings.ContainsAny(s, " -") {
			t.Errorf("Problem(%d).String() = %q: not a unique snake_case label", p, s)
		}
		seen[s] = true
	}
	if len(Problems()) != int(numProblems)-1 {
		t.Errorf("Problems() has %d entries, want %d", len(Problems()), numProblems-1)
	}
	if s := Problem(200).String(); s != "unknown" {
		t.Errorf("Problem(200).String() = %q", s)
	}
	for f, want := range map[Format]string{FormatUnknown: "unknown", FormatRFC3164: "rfc3164", FormatRFC5424: "rfc5424"} {
		if f.String() != want {
			t.Errorf("Format(%d).String() = %q, want %q", f, f.String(), want)
		}
	}
}

func TestMessageFacilitySeverity(t *testing.T) {
	var m Message
	Parse([]byte("<165>1 - - - - - -"), ParseOptions{}, &m)
	if m.Facility() != 20 || m.Severity() != 5 {
		t.Errorf("Facility, Severity = %d, %d, want 20, 5", m.Facility(), m.Severity())
	}
}

func TestParseDoesNotAllocate(t *testing.T) {
	for _, in := range []string{
		bench5424,
		bench3164,
		benchCisco,
		"<13>1 2024-03-01T12:00:00.123+05:30 h a p m - x", // a cached fixed zone
		"<13>hello",
		"",
	} {
		b := []byte(in)
		var m Message
		opts := ParseOptions{Location: time.UTC, Received: refTime}
		Parse(b, opts, &m) // fills the zone cache
		if allocs := testing.AllocsPerRun(100, func() { Parse(b, opts, &m) }); allocs != 0 {
			t.Errorf("Parse(%q) allocates %v times, want 0", in, allocs)
		}
	}
}

func TestSDIteratorDoesNotAllocate(t *testing.T) {
	sd := []byte(`[x@1 q="a\"b" e="\n"][y@1][z@1 k="v"]`)
	buf := make([]byte, 0, 64)
	allocs := testing.AllocsPerRun(100, func() {
		it := NewSDIterator(sd)
		for it.Next() {
			pit := it.Element().Params()
			for pit.Next() {
				buf = pit.Param().AppendValue(buf[:0])
			}
		}
		LookupSDParam(sd, "z@1", "k")
	})
	if allocs != 0 {
		t.Errorf("walking structured data allocates %v times, want 0", allocs)
	}
}

func TestParseNilHostnameBeforeCiscoStamp(t *testing.T) {
	m := parseRef("<189>1: -: Mar  1 00:00:00 UTC: %X-1-Y: z")
	if m.Problem != ProblemNone || m.Hostname != nil || string(m.Sequence) != "1" {
		t.Errorf("hostname %q, sequence %q, problem %v; want none, 1, none", m.Hostname, m.Sequence, m.Problem)
	}
}

func TestParseNilTag(t *testing.T) {
	for _, tc := range []struct{ in, procID, msg string }{
		{"<13>Mar  1 00:00:00 host -: x", "", "x"},
		{"<13>Mar  1 00:00:00 host -[42]: x", "42", "x"},
		{"<13>Mar  1 00:00:00 host -[-]: x", "", "x"},
	} {
		m := parseRef(tc.in)
		if m.Problem != ProblemNone || m.AppName != nil || string(m.ProcID) != tc.procID || string(m.Msg) != tc.msg {
			t.Errorf("Parse(%q): app %q, procid %q, msg %q, problem %v; want no app, %q, %q",
				tc.in, m.AppName, m.ProcID, m.Msg, m.Problem, tc.procID, tc.msg)
		}
	}
}

func TestMonthNames(t *testing.T) {
	for i, name := range monthNames {
		for _, spelled := range []string{name, strings.ToUpper(name), strings.ToLower(name)} {
			m := parseRef("<13>" + spelled + " 15 10:00:00 host app: x")
			if m.Problem != ProblemNone || m.Timestamp.Month() != time.Month(i+1) || m.Timestamp.Day() != 15 {
				t.Errorf("month %q: timestamp %v, problem %v", spelled, m.Timestamp, m.Problem)
			}
		}
	}
	for _, bad := range []string{"Jn ", "Ja1", "J@n", "Sept"} {
		if m := parseRef("<13>" + bad + " 15 10:00:00 host app: x"); m.Format != FormatUnknown {
			t.Errorf("month %q accepted: %v", bad, m.Timestamp)
		}
	}
}

func TestZoneNames(t *testing.T) {
	want := map[string]string{"UTC": "Z", "GMT": "Z", "CET": "+01:00", "CEST": "+02:00", "EST": "-05:00",
		"PDT": "-07:00", "JST": "+09:00", "ACST": "+09:30", "NST": "-03:30", "NZDT": "+13:00"}
	for _, zone := range []string{"UTC", "UT", "GMT", "Z", "WET", "CET", "MET", "MEZ", "WEST", "BST", "CEST", "MEST",
		"MESZ", "EET", "SAST", "EEST", "MSK", "WIB", "HKT", "SGT", "AWST", "JST", "KST", "ACST", "AEST", "ACDT", "AEDT",
		"NZST", "NZDT", "NDT", "ADT", "NST", "AST", "EDT", "EST", "CDT", "CST", "MDT", "MST", "PDT", "PST", "AKDT",
		"AKST", "HST"} {
		m := parseRef("<13>Mar  1 10:00:00 " + zone + " host app: x")
		_, off := m.Timestamp.Zone()
		if m.Problem != ProblemNone || string(m.Hostname) != "host" || off%1800 != 0 || off < -12*3600 || off > 14*3600 {
			t.Errorf("zone %s: timestamp %v, hostname %q, problem %v", zone, m.Timestamp, m.Hostname, m.Problem)
		}
		if w, ok := want[zone]; ok && m.Timestamp.Format("Z07:00") != w {
			t.Errorf("zone %s: offset %s, want %s", zone, m.Timestamp.Format("Z07:00"), w)
		}
	}
	// A capitalized hostname that is not a zone stays the hostname.
	if m := parseRef("<13>Mar  1 10:00:00 FW app: x"); string(m.Hostname) != "FW" || m.Timestamp.Location() != time.UTC {
		t.Errorf("host FW: hostname %q, zone %v", m.Hostname, m.Timestamp.Location())
	}
}
