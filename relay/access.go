package relay

import (
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// maxRateSenders caps how many senders a listener's rate limiter keeps a
// bucket for. A bucket costs about 100 bytes with its map entry, so the cap
// holds the limiter under 7 MiB however many (spoofed) source addresses a
// flood uses. Past the cap the least recently seen sender's bucket is
// dropped; it was usually full anyway (see rateLimiter).
const maxRateSenders = 65536

// accessControl is what one listener checks about a sender before it
// reads from it: whether its address is allowed, and its rate.
type accessControl struct {
	allowed []netip.Prefix // empty: every sender
	limiter *rateLimiter   // nil: no rate limit
}

// newAccessControl returns nil when the listener restricts nothing, so the
// per-message path pays one nil check.
func newAccessControl(cfg ListenerConfig) (*accessControl, error) {
	a := &accessControl{}
	for _, n := range cfg.AllowedNetworks {
		p, err := parseNetwork(n)
		if err != nil {
			return nil, fmt.Errorf("allowed_networks: %w", err)
		}
		a.allowed = append(a.allowed, p)
	}
	if cfg.RateLimit > 0 {
		a.limiter = newRateLimiter(cfg.RateLimit, cfg.RateBurst, maxRateSenders)
	}
	if len(a.allowed) == 0 && a.limiter == nil {
		return nil, nil
	}
	return a, nil
}

// parseNetwork reads a network as a configuration writes it: a CIDR prefix
// ("10.1.0.0/16", "2001:db8::/32") or one address. An IPv4 network written
// in IPv6 form (::ffff:10.0.0.0/104) is the IPv4 network, as senders are
// compared as IPv4 (senderKey).
func parseNetwork(n string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(n)
	if err != nil {
		// A '/' here is a prefix ParsePrefix refused: ParseAddr would take
		// "fe80::1%eth0/64" for one address with the zone "eth0/64" and
		// the network would shrink silently to fe80::1.
		addr, aerr := netip.ParseAddr(n)
		if aerr != nil || strings.Contains(n, "/") {
			return netip.Prefix{}, fmt.Errorf("invalid network %q: write an address or a CIDR prefix such as 10.1.0.0/16", n)
		}
		p = netip.PrefixFrom(addr, addr.BitLen())
	}
	p = p.Masked()
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p, nil
}

// inAny reports whether addr is in one of nets.
func inAny(nets []netip.Prefix, addr netip.Addr) bool {
	for _, p := range nets {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// allows reports whether addr may send. IPv4 senders on a dual-stack socket
// arrive as ::ffff:a.b.c.d and match IPv4 networks.
func (a *accessControl) allows(addr netip.Addr) bool {
	if a == nil || len(a.allowed) == 0 {
		return true
	}
	return inAny(a.allowed, senderKey(addr))
}

// senderKey is how a sender address is compared: IPv4 senders on a
// dual-stack socket arrive as ::ffff:a.b.c.d and are IPv4 senders, and the
// zone of a link-local address is not part of it (a zoned address never
// matches a prefix).
func senderKey(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }

// rateLimiter is a token bucket per sender address: each sender may send
// rate messages per second on average and burst at once.
//
// Its memory is bounded: buckets live in a map capped at maxSenders
// entries and kept in least-recently-used order, and the oldest is dropped
// to make room. Dropping a bucket forgets a sender's debt, so a sender
// evicted while over its limit starts again with a full burst; but a bucket
// untouched for burst/rate seconds has refilled completely and is identical
// to a new one, so under any load with fewer than maxSenders senders active
// within that time eviction changes nothing.
type rateLimiter struct {
	rate       float64 // tokens per second
	burst      float64
	maxSenders int
	epoch      time.Time // bucket times are offsets from it (monotonic)

	mu      sync.Mutex
	buckets map[netip.Addr]*bucket
	lru     bucket // sentinel of a ring: lru.next is the most recently used
}

type bucket struct {
	addr       netip.Addr
	tokens     float64
	last       time.Duration // since epoch, when tokens was computed
	prev, next *bucket
}

func newRateLimiter(rate float64, burst, maxSenders int) *rateLimiter {
	b := float64(burst)
	if burst <= 0 {
		b = math.Ceil(rate) // one second's worth
	}
	if b < 1 {
		b = 1
	}
	l := &rateLimiter{rate: rate, burst: b, maxSenders: maxSenders, epoch: time.Now(),
		buckets: make(map[netip.Addr]*bucket)}
	l.lru.next, l.lru.prev = &l.lru, &l.lru
	return l
}

// allow takes one token from addr's bucket if it has one (UDP: a datagram
// without a token is dropped).
func (l *rateLimiter) allow(addr netip.Addr, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.refill(addr, now)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// reserve takes one token from addr's bucket even if it has none and
// returns how long the caller must wait before the token is really there
// (TCP: the connection stops reading for that long). The debt is what
// keeps several connections of one sender to one rate between them; each
// connection owes at most the token of the message it just read, so the
// debt is bounded by the sender's connections.
func (l *rateLimiter) reserve(addr netip.Addr, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.refill(addr, now)
	b.tokens--
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / l.rate * float64(time.Second))
}

// refill returns addr's bucket, brought up to date and made the most
// recently used, creating it (full) if needed.
func (l *rateLimiter) refill(addr netip.Addr, now time.Time) *bucket {
	addr = senderKey(addr)
	t := now.Sub(l.epoch)
	b := l.buckets[addr]
	if b == nil {
		if len(l.buckets) >= l.maxSenders {
			old := l.lru.prev
			l.unlink(old)
			delete(l.buckets, old.addr)
			// Reuse the evicted bucket: a flood of new addresses then
			// allocates nothing once the cap is reached.
			*old = bucket{}
			b = old
		} else {
			b = &bucket{}
		}
		b.addr, b.tokens, b.last = addr, l.burst, t
		l.buckets[addr] = b
	} else {
		l.unlink(b)
		if dt := t - b.last; dt > 0 {
			b.tokens = min(l.burst, b.tokens+dt.Seconds()*l.rate)
			b.last = t
		}
	}
	// Link at the front.
	b.prev, b.next = &l.lru, l.lru.next
	l.lru.next.prev = b
	l.lru.next = b
	return b
}

func (l *rateLimiter) unlink(b *bucket) {
	b.prev.next = b.next
	b.next.prev = b.prev
	b.prev, b.next = nil, nil
}

// senders returns how many buckets the limiter holds (tests).
func (l *rateLimiter) senders() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// logLimiter lets through at most a burst of log lines and then about one
// per interval, so a hostile client cannot fill the relay's log: every
// refused connection and failed handshake is still counted in the
// metrics, and a line that gets through says how many were left out.
type logLimiter struct {
	log      *slog.Logger
	interval time.Duration
	burst    int

	mu         sync.Mutex
	tokens     int
	last       time.Time
	suppressed int
}

func newLogLimiter(log *slog.Logger) *logLimiter {
	return &logLimiter{log: log, interval: time.Second, burst: 10, tokens: 10, last: time.Now()}
}

// warn logs msg at warning level unless too many lines went out lately.
func (l *logLimiter) warn(msg string, args ...any) {
	l.mu.Lock()
	now := time.Now()
	if n := int(now.Sub(l.last) / l.interval); n > 0 {
		l.tokens = min(l.burst, l.tokens+n)
		l.last = l.last.Add(time.Duration(n) * l.interval)
	}
	if l.tokens == 0 {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	l.tokens--
	suppressed := l.suppressed
	l.suppressed = 0
	l.mu.Unlock()
	if suppressed > 0 {
		args = append(args, "similar_lines_suppressed", suppressed)
	}
	l.log.Warn(msg, args...)
}
