package relp

import (
	"errors"
	"fmt"
)

// Kind says what a server must do with a frame ServerSession.Receive
// accepted.
type Kind int

const (
	// KindHint is a hint (TXNR 0): it gets no answer.
	KindHint Kind = iota
	// KindSyslog is a message: process it, then answer 200 or 500 with
	// AppendResponse, after any answer still owed to earlier frames.
	KindSyslog
	// KindReply is answered at once with the returned Response, after any
	// answer still owed to earlier frames.
	KindReply
	// KindClose ends the session: send the returned Response, then the
	// serverclose hint, then close the connection.
	KindClose
)

func (k Kind) String() string {
	switch k {
	case KindHint:
		return "hint"
	case KindSyslog:
		return "syslog"
	case KindReply:
		return "reply"
	case KindClose:
		return "close"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// ErrTxnr means a command did not carry the transaction number that
// follows the previous one.
var ErrTxnr = errors.New("relp: transaction number out of sequence")

// ServerSession checks the commands of one server-side connection: their
// transaction numbers, that open comes first, and the offers of open. Its
// zero value is a session waiting for open. It is not safe for concurrent
// use.
type ServerSession struct {
	last int // TXNR of the last command; 0 before the first
	open bool
}

// Open reports whether open has been answered positively.
func (s *ServerSession) Open() bool { return s.open }

// Receive checks f and says what to do with it. For KindReply and
// KindClose, rsp is the answer to send with AppendResponse(dst, f.Txnr,
// rsp.Code, rsp.Text, rsp.Data). A non-nil error is a protocol violation:
// send rsp when kind is KindReply, then close the connection.
func (s *ServerSession) Receive(f Frame) (kind Kind, rsp Response, err error) {
	if f.Txnr == 0 {
		if f.Command == CmdSyslog {
			// No answer can carry TXNR 0, so the sender could never
			// learn whether the message was stored.
			return KindHint, Response{}, errors.New("relp: syslog with TXNR 0")
		}
		// Hints are advisory; none is defined from client to server.
		return KindHint, Response{}, nil
	}
	if f.Txnr != NextTxnr(s.last) {
		return KindHint, Response{}, fmt.Errorf("got TXNR %d, want %d: %w", f.Txnr, NextTxnr(s.last), ErrTxnr)
	}
	s.last = f.Txnr
	switch f.Command {
	case CmdOpen:
		if s.open {
			// librelp is known to repeat open inside a session; it is
			// harmless, so it is answered as before.
			return KindReply, Response{Code: CodeOK, Text: "OK", Data: AppendOffers(nil, ClientOffers())}, nil
		}
		if f.Truncated {
			return KindReply, Response{Code: CodeError, Text: "offers too long"}, errors.New("relp: open: offers too long")
		}
		offers, err := ParseOffers(f.Data)
		if err == nil {
			offers, err = AnswerOpen(offers)
		}
		if err != nil {
			return KindReply, Response{Code: CodeError, Text: "cannot open session: " + err.Error()}, fmt.Errorf("open: %w", err)
		}
		s.open = true
		return KindReply, Response{Code: CodeOK, Text: "OK", Data: AppendOffers(nil, offers)}, nil
	case CmdClose:
		return KindClose, Response{Code: CodeOK, Text: "OK"}, nil
	case CmdSyslog:
		if !s.open {
			return KindReply, Response{Code: CodeError, Text: "session not open"}, errors.New("relp: syslog before open")
		}
		return KindSyslog, Response{}, nil
	}
	// Unknown commands, and client-sent rsp or serverclose, are refused but
	// do not end the session: the frame was well formed.
	return KindReply, Response{Code: CodeError, Text: "command not supported"}, nil
}

// AppendServerclose appends the serverclose hint a server sends before it
// closes a connection.
func AppendServerclose(dst []byte) []byte { return AppendFrame(dst, 0, CmdServerclose, nil) }
