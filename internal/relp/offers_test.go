package relp

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestParseOffers(t *testing.T) {
	tests := []struct {
		in      string
		want    string // fmt of the offers, or "error"
		wantErr bool
	}{
		{in: "relp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog",
			want: "[{relp_version [0]} {relp_software [librelp 1.11.0 http://librelp.adiscon.com]} {commands [syslog]}]"},
		{in: "\nrelp_version=0\n\ncommands=syslog,eventlog\n", want: "[{relp_version [0]} {commands [syslog eventlog]}]"},
		{in: "flag\nempty=\nsparse=a,,b", want: "[{flag []} {empty []} {sparse [a b]}]"},
		{in: "", want: "[]"},
		{in: "=x", wantErr: true},
		{in: strings.Repeat("n", 33) + "=1", wantErr: true},
		{in: "n=" + strings.Repeat("v", 256), wantErr: true},
		{in: strings.Repeat("a=1\n", 65), wantErr: true},
		{in: "a=" + strings.Repeat("v,", 65), wantErr: true},
	}
	for _, tc := range tests {
		got, err := ParseOffers([]byte(tc.in))
		if tc.wantErr {
			if err == nil {
				t.Errorf("ParseOffers(%q) = %v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseOffers(%q): %v", tc.in, err)
			continue
		}
		if s := fmt.Sprint(got); s != tc.want && !(tc.want == "[]" && got == nil) {
			t.Errorf("ParseOffers(%q) = %s, want %s", tc.in, s, tc.want)
		}
	}
}

func TestAppendOffersRoundTrip(t *testing.T) {
	offers := ClientOffers()
	b := AppendOffers(nil, offers)
	if want := "relp_version=0\nrelp_software=relay\ncommands=syslog"; string(b) != want {
		t.Fatalf("AppendOffers = %q, want %q", b, want)
	}
	back, err := ParseOffers(b)
	if err != nil || fmt.Sprint(back) != fmt.Sprint(offers) {
		t.Fatalf("ParseOffers(AppendOffers) = %v, %v; want %v", back, err, offers)
	}
	if got := AppendOffers(nil, []Offer{{Name: "flag"}}); string(got) != "flag=" {
		t.Errorf("offer without values = %q, want %q", got, "flag=")
	}
}

func TestAnswerOpen(t *testing.T) {
	tests := []struct {
		offers string
		err    string // substring, "" for success
	}{
		{offers: "relp_version=0\nrelp_software=librelp,1.11.0\ncommands=syslog"},
		{offers: "relp_version=1\ncommands=eventlog,syslog"}, // a newer client gets version 0
		{offers: "commands=syslog", err: "no relp_version"},
		{offers: "relp_version=\ncommands=syslog", err: "no relp_version"},
		{offers: "relp_version=x\ncommands=syslog", err: "not a version number"},
		{offers: "relp_version=0", err: "syslog"},
		{offers: "relp_version=0\ncommands=eventlog", err: "syslog"},
	}
	for _, tc := range tests {
		offers, err := ParseOffers([]byte(tc.offers))
		if err != nil {
			t.Fatal(err)
		}
		answer, err := AnswerOpen(offers)
		if tc.err == "" {
			if err != nil {
				t.Errorf("AnswerOpen(%q): %v", tc.offers, err)
			} else if err := CheckOpenAnswer(answer); err != nil {
				t.Errorf("AnswerOpen(%q) = %v, which the client refuses: %v", tc.offers, answer, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("AnswerOpen(%q) error = %v, want one containing %q", tc.offers, err, tc.err)
		}
	}
	if _, err := AnswerOpen([]Offer{{Name: "relp_version", Values: []string{"0"}}}); !errors.Is(err, ErrNoSyslog) {
		t.Errorf("AnswerOpen without commands = %v, want ErrNoSyslog", err)
	}
}

func TestCheckOpenAnswer(t *testing.T) {
	for in, wantErr := range map[string]bool{
		"200 OK\nrelp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog": false,
		"relp_version=1\ncommands=syslog": true,
		"relp_version=0":                  true,
		"commands=syslog":                 true,
	} {
		data := in
		if strings.HasPrefix(in, "200") {
			rsp, err := ParseResponse([]byte(in))
			if err != nil {
				t.Fatal(err)
			}
			data = string(rsp.Data)
		}
		offers, err := ParseOffers([]byte(data))
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckOpenAnswer(offers); (err != nil) != wantErr {
			t.Errorf("CheckOpenAnswer(%q) = %v, want error %v", data, err, wantErr)
		}
	}
}

func TestParseResponse(t *testing.T) {
	tests := []struct {
		in   string
		want Response
		err  bool
	}{
		{in: "200 OK", want: Response{Code: 200, Text: "OK"}},
		{in: "500 queue full", want: Response{Code: 500, Text: "queue full"}},
		{in: "200 OK\nrelp_version=0", want: Response{Code: 200, Text: "OK", Data: []byte("relp_version=0")}},
		{in: "200", want: Response{Code: 200}},
		{in: "200\nx", want: Response{Code: 200, Data: []byte("x")}},
		{in: "200 ", want: Response{Code: 200}},
		{in: "", err: true},
		{in: "20", err: true},
		{in: "OK 200", err: true},
		{in: "2000 OK", err: true},
	}
	for _, tc := range tests {
		got, err := ParseResponse([]byte(tc.in))
		if tc.err {
			if err == nil {
				t.Errorf("ParseResponse(%q) = %+v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got.Code != tc.want.Code || got.Text != tc.want.Text || string(got.Data) != string(tc.want.Data) {
			t.Errorf("ParseResponse(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestAppendResponse(t *testing.T) {
	for _, tc := range []struct {
		txnr int
		code int
		text string
		data string
		want string
	}{
		{2, 200, "OK", "", "2 rsp 6 200 OK\n"},
		{3, 500, "queue full", "", "3 rsp 14 500 queue full\n"},
		{1, 200, "OK", "relp_version=0", "1 rsp 21 200 OK\nrelp_version=0\n"},
		{4, 200, "", "", "4 rsp 4 200 \n"},
		{5, 500, "two\nlines", "", "5 rsp 7 500 two\n"},
		{6, 42, "odd", "", "6 rsp 7 500 odd\n"},
	} {
		if got := string(AppendResponse(nil, tc.txnr, tc.code, tc.text, []byte(tc.data))); got != tc.want {
			t.Errorf("AppendResponse(%d, %d, %q, %q) = %q, want %q", tc.txnr, tc.code, tc.text, tc.data, got, tc.want)
		}
	}
}
