package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relay-syslog/relay/internal/testfixture"
	"github.com/relay-syslog/relay/metrics"
	"github.com/relay-syslog/relay/queue"
)

// benchRouter builds the router of a configuration (outputs and routes
// only; "{{DATA}}" is replaced by a temporary directory) with real queues
// at their default settings, each drained by a goroutine the way an output
// worker takes and confirms records, so that the queues stay small and the
// benchmark measures the listener's side of a running relay.
func benchRouter(b *testing.B, outputsAndRoutes string) *router {
	b.Helper()
	dir := b.TempDir()
	text := fmt.Sprintf("data_dir = %q\n", dir) + `
[[listener]]
name = "udp"
protocol = "udp"
address = "127.0.0.1:0"

[[listener]]
name = "tcp"
protocol = "tcp"
address = "127.0.0.1:0"
` + strings.ReplaceAll(outputsAndRoutes, "{{DATA}}", dir)
	cfg, err := ParseConfig("bench.toml", []byte(text))
	if err != nil {
		b.Fatal(err)
	}
	m, err := metrics.New(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	queues := map[string]*queue.Queue{}
	b.Cleanup(func() {
		cancel()
		for _, q := range queues {
			if err := q.Close(); err != nil {
				b.Error(err)
			}
		}
		wg.Wait()
	})
	for _, oc := range cfg.Outputs {
		q, err := queue.Open(queue.Options{Name: oc.Name, Dir: filepath.Join(dir, oc.Name)})
		if err != nil {
			b.Fatal(err)
		}
		queues[oc.Name] = q
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				batch, err := q.Next(ctx)
				if err != nil {
					return
				}
				// Cleanup may close the queue between Next and Done.
				if err := q.Done(batch); err != nil {
					if !errors.Is(err, queue.ErrClosed) {
						b.Error(err)
					}
					return
				}
			}
		}()
	}
	return newRouter(cfg, queues, m, slog.New(slog.DiscardHandler))
}

// fileOutputs returns n [[output]] tables (file outputs, never started:
// only their queues are used) and one route to all of them.
func fileOutputs(n int) string {
	var b strings.Builder
	var names []string
	for i := range n {
		fmt.Fprintf(&b, "[[output]]\nname = \"out%d\"\nprotocol = \"file\"\npath = \"{{DATA}}/out%d.log\"\n\n", i, i)
		names = append(names, fmt.Sprintf("%q", fmt.Sprintf("out%d", i)))
	}
	fmt.Fprintf(&b, "[[route]]\nname = \"all\"\noutputs = [%s]\n", strings.Join(names, ", "))
	return b.String()
}

// BenchmarkRouterDispatch stores one message per op into the queue of
// each of 1, 2 and 4 outputs: the router's work plus every queue append
// (record packing, and a diskqueue Put per full record).
func BenchmarkRouterDispatch(b *testing.B) {
	for _, n := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("outputs=%d", n), func(b *testing.B) {
			r := benchRouter(b, fileOutputs(n))
			e := testfixture.BenchEntry()
			b.SetBytes(int64(len(e.Data)))
			b.ReportAllocs()
			for b.Loop() {
				if routed, accepted := r.dispatch(e); !routed || !accepted {
					b.Fatalf("dispatch = %v, %v", routed, accepted)
				}
			}
			if err := r.flush(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// BenchmarkRouterDispatchParallel is BenchmarkRouterDispatch with one
// output and GOMAXPROCS listeners dispatching at once, which contend for
// the queue's producer lock.
func BenchmarkRouterDispatchParallel(b *testing.B) {
	r := benchRouter(b, fileOutputs(1))
	b.SetBytes(200)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		e := testfixture.BenchEntry()
		for pb.Next() {
			if routed, accepted := r.dispatch(e); !routed || !accepted {
				b.Errorf("dispatch = %v, %v", routed, accepted)
				return
			}
		}
	})
	if err := r.flush(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// discardAppender stands in for a queue when only route matching is
// measured.
type discardAppender struct{}

func (discardAppender) Append(queue.Entry) error          { return nil }
func (discardAppender) AppendEncoded(queue.Encoded) error { return nil }
func (discardAppender) Flush() error                      { return nil }

// BenchmarkRouteMatch measures finding the routes of a message (PRI read,
// conditions, de-duplication of outputs) without storing it.
func BenchmarkRouteMatch(b *testing.B) {
	outputs := "[[output]]\nname = \"a\"\nprotocol = \"file\"\npath = \"{{DATA}}/a.log\"\n\n" +
		"[[output]]\nname = \"b\"\nprotocol = \"file\"\npath = \"{{DATA}}/b.log\"\n\n"
	cases := []struct {
		name   string
		routes string
	}{
		{"one-route", `
[[route]]
name = "all"
outputs = ["a"]
`},
		// Seven routes that do not match a local4.info message from the
		// udp listener, then one that does, and a fallback never tried.
		{"eight-routes-last-matches", `
[[route]]
name = "crit"
severity = "crit"
outputs = ["a"]
[[route]]
name = "mail"
facilities = ["mail"]
outputs = ["a"]
[[route]]
name = "tcp-only"
listeners = ["tcp"]
outputs = ["b"]
[[route]]
name = "exact-debug"
severities = ["debug"]
outputs = ["b"]
[[route]]
name = "not-info"
not_severities = ["info"]
outputs = ["a"]
[[route]]
name = "not-local4"
not_facilities = ["local4"]
outputs = ["b"]
[[route]]
name = "kern-auth"
facilities = ["kern", "auth", "authpriv"]
outputs = ["a"]
[[route]]
name = "network"
listeners = ["udp"]
facilities = ["local4", "local7"]
severity = "info"
outputs = ["a", "b"]
[[route]]
name = "rest"
fallback = true
outputs = ["b"]
`},
		// The sender (192.0.2.1) is in none of three networks, then in
		// the fourth route's.
		{"networks", `
[[route]]
name = "lan"
networks = ["10.0.0.0/8", "172.16.0.0/12"]
outputs = ["a"]
[[route]]
name = "not-docs"
not_networks = ["192.0.2.0/24"]
outputs = ["a"]
[[route]]
name = "v6"
networks = ["2001:db8::/32"]
outputs = ["a"]
[[route]]
name = "docs"
networks = ["192.0.2.0/24"]
outputs = ["b"]
`},
		{"overlapping-routes", `
[[route]]
name = "all-a"
outputs = ["a", "b"]
[[route]]
name = "all-b"
outputs = ["b", "a"]
`},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			r := benchRouter(b, outputs+c.routes)
			for i := range r.outputs {
				r.outputs[i].queue = discardAppender{}
			}
			e := testfixture.BenchEntry()
			b.ReportAllocs()
			for b.Loop() {
				if routed, _ := r.dispatch(e); !routed {
					b.Fatal("not routed")
				}
			}
		})
	}
}

// BenchmarkRouteMessage measures what conditions on the message text add
// to matching one route (as BenchmarkRouteMatch, without storing): the
// header parse past the PRI, then the substring search or the regexp over
// the MSG part of testfixture.BenchMessage (a 200-byte RFC 3164 line). The
// "none" case is the baseline; "hostname-glob" is the parse with a glob,
// for comparison. The MSG is the text after "%LINK-3-UPDOWN:", which the
// parser takes as the tag; patterns that do not match scan all of it.
func BenchmarkRouteMessage(b *testing.B) {
	outputs := "[[output]]\nname = \"a\"\nprotocol = \"file\"\npath = \"{{DATA}}/a.log\"\n\n"
	cases := []struct {
		name string
		keys string
	}{
		{"none", ""},
		{"hostname-glob", `hostnames = ["edge-*"]`},
		{"contains-match", `message_contains = ["changed state"]`},
		{"contains-nomatch", `message_contains = ["nothing like it"]`},
		{"contains-3-nomatch", `message_contains = ["panic", "segfault", "out of memory"]`},
		{"not-contains", `message_not_contains = ["nothing like it"]`},
		{"regex-match", `message_regex = ['state to (up|down)']`},
		{"regex-nomatch", `message_regex = ['state to (admin|err)']`},
		{"regex-anchored-nomatch", `message_regex = ['^Link \d+ down']`},
		{"regex-caseless-nomatch", `message_regex = ['(?i)panic']`},
		{"regex-noprefix-nomatch", `message_regex = ['[Pp]anic']`},
		{"regex-3-nomatch", `message_regex = ['kernel panic', 'segfault at [0-9a-f]+', 'out of (memory|space)']`},
		{"not-regex", `message_not_regex = ['state to (admin|err)']`},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			// A fallback takes what the route under test does not, so
			// every message is routed either way.
			r := benchRouter(b, outputs+"[[route]]\nname = \"r\"\noutputs = [\"a\"]\n"+c.keys+
				"\n[[route]]\nname = \"rest\"\nfallback = true\noutputs = [\"a\"]\n")
			for i := range r.outputs {
				r.outputs[i].queue = discardAppender{}
			}
			e := testfixture.BenchEntry()
			b.SetBytes(int64(len(e.Data)))
			b.ReportAllocs()
			for b.Loop() {
				if routed, _ := r.dispatch(e); !routed {
					b.Fatal("not routed")
				}
			}
		})
	}
}
