package testfixture

import (
	"testing"
	"time"

	"github.com/relay-syslog/relay/internal/testpeer"
	"github.com/relay-syslog/relay/queue"
)

// BenchMessage is a typical 200-byte RFC 3164 message (local4.info).
var BenchMessage = []byte("<166>Nov 23 10:00:00 edge-sw-01 %LINK-3-UPDOWN: Interface GigabitEthernet0/1, changed state to up; " +
	"the quick brown fox jumps over the lazy dog, the quick brown fox jumps over the lazy dog, padded to 200")[:200]

// BenchEntry returns a queue entry of BenchMessage as a UDP listener
// receives it.
func BenchEntry() queue.Entry {
	return queue.Entry{
		Received: time.Unix(1700000000, 0),
		Listener: "udp",
		Source:   "192.0.2.1:514",
		Data:     BenchMessage,
	}
}

// AppendSeq appends testpeer.SeqMessage(run, i) for i in [from, to) to q
// and flushes it, so that a reader sees them all.
func AppendSeq(t testing.TB, q *queue.Queue, run string, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := q.Append(queue.Entry{Received: time.Now(), Listener: "l", Data: []byte(testpeer.SeqMessage(run, i))}); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	if err := q.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
}
