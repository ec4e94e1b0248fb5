package relp

import (
	"errors"
	"testing"
)

func TestServerSession(t *testing.T) {
	const offers = "relp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog"
	type step struct {
		f       Frame
		kind    Kind
		code    int
		wantErr bool
	}
	frame := func(txnr int, cmd, data string) Frame {
		return Frame{Txnr: txnr, Command: cmd, Data: []byte(data), DataLen: len(data)}
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"librelp session", []step{
			{f: frame(1, "open", offers), kind: KindReply, code: 200},
			{f: frame(2, "syslog", "<13>hello"), kind: KindSyslog},
			{f: frame(3, "syslog", ""), kind: KindSyslog},
			{f: frame(0, "serverclose", ""), kind: KindHint},
			{f: frame(4, "close", ""), kind: KindClose, code: 200},
		}},
		{"syslog before open", []step{
			{f: frame(1, "syslog", "x"), kind: KindReply, code: 500, wantErr: true},
		}},
		{"open without syslog", []step{
			{f: frame(1, "open", "relp_version=0\ncommands=eventlog"), kind: KindReply, code: 500, wantErr: true},
		}},
		{"open with garbage offers", []step{
			{f: frame(1, "open", "=\n"), kind: KindReply, code: 500, wantErr: true},
		}},
		{"truncated open", []step{
			{f: Frame{Txnr: 1, Command: "open", Data: []byte("relp_"), DataLen: 9000, Truncated: true}, kind: KindReply, code: 500, wantErr: true},
		}},
		{"unknown commands are refused, not fatal", []step{
			{f: frame(1, "open", offers), kind: KindReply, code: 200},
			{f: frame(2, "starttls", ""), kind: KindReply, code: 500},
			{f: frame(3, "rsp", "200 OK"), kind: KindReply, code: 500},
			{f: frame(4, "syslog", "x"), kind: KindSyslog},
		}},
		{"repeated open", []step{
			{f: frame(1, "open", offers), kind: KindReply, code: 200},
			{f: frame(2, "open", offers), kind: KindReply, code: 200},
		}},
		{"syslog with txnr 0", []step{
			{f: frame(1, "open", offers), kind: KindReply, code: 200},
			{f: frame(0, "syslog", "x"), kind: KindHint, wantErr: true},
		}},
		{"txnr must start at 1", []step{
			{f: frame(2, "open", offers), kind: KindHint, wantErr: true},
		}},
		{"txnr gap", []step{
			{f: frame(1, "open", offers), kind: KindReply, code: 200},
			{f: frame(3, "syslog", "x"), kind: KindHint, wantErr: true},
		}},
		{"close before open", []step{
			{f: frame(1, "close", ""), kind: KindClose, code: 200},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s ServerSession
			for i, st := range tc.steps {
				kind, rsp, err := s.Receive(st.f)
				if kind != st.kind || rsp.Code != st.code || (err != nil) != st.wantErr {
					t.Fatalf("step %d: Receive(%d %s) = %v, %d %q, %v; want %v, %d, error %v",
						i, st.f.Txnr, st.f.Command, kind, rsp.Code, rsp.Text, err, st.kind, st.code, st.wantErr)
				}
				if st.f.Command == "open" && rsp.Code == 200 {
					answer, err := ParseOffers(rsp.Data)
					if err != nil {
						t.Fatal(err)
					}
					if err := CheckOpenAnswer(answer); err != nil {
						t.Fatalf("open answered with %q, which a client refuses: %v", rsp.Data, err)
					}
				}
			}
		})
	}
}

// TestServerSessionTxnrWrap: after 999,999,999 comes 1.
func TestServerSessionTxnrWrap(t *testing.T) {
	s := ServerSession{last: MaxTxnr - 1, open: true}
	for _, txnr := range []int{MaxTxnr, 1, 2} {
		if kind, _, err := s.Receive(Frame{Txnr: txnr, Command: "syslog"}); kind != KindSyslog || err != nil {
			t.Fatalf("Receive(TXNR %d) = %v, %v", txnr, kind, err)
		}
	}
	if _, _, err := s.Receive(Frame{Txnr: 2, Command: "syslog"}); !errors.Is(err, ErrTxnr) {
		t.Fatalf("repeated TXNR: %v, want ErrTxnr", err)
	}
}
