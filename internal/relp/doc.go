// Package relp speaks RELP, the Reliable Event Logging Protocol that
// rsyslog's omrelp and imrelp use: syslog over TCP where the receiver
// acknowledges every message at the application level.
//
// Every exchange is a frame
//
//	TXNR SP COMMAND SP DATALEN [SP DATA] LF
//
// where TXNR is the transaction number (1 to 999,999,999, then 1 again; 0
// for hints, which get no answer), COMMAND is 1 to 32 ASCII letters and
// DATALEN the number of DATA octets (no SP and no DATA when it is 0). A
// client opens a session with "open" and its offers, sends each message as
// a "syslog" command and ends with "close"; the server answers every
// command with an "rsp" frame carrying the same TXNR, in the order the
// commands arrived, whose data is a status code ("200 OK", "500 reason"),
// and for "open" the offers it accepts. A server that goes away may first
// send the hint "serverclose".
//
// The package is a leaf: a streaming frame Reader with bounded memory,
// functions that append frames, responses and offers to a buffer, the
// negotiation rules of "open", a ServerSession that checks the commands of
// one server-side connection, and a Client for the sending side. It uses
// the standard library only and knows nothing of the relay's queues.
//
// The protocol is implemented from its specification and from observing
// rsyslog (librelp) on the wire; no code of librelp is used.
package relp
