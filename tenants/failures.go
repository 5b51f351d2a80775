package tenants

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// Failed API-key attempts at POST /v1/tokens, per source.
const (
	// authFailureLimit is how many failed attempts a source may make
	// within authFailureWindow before it is refused outright.
	authFailureLimit = 10
	// authFailureWindow is how long a source's failures count, from its
	// first.
	authFailureWindow = time.Minute
	// authFailureSources bounds the sources tracked; past it the oldest
	// window is dropped.
	authFailureSources = 4096
)

// failureLimiter counts failed authentications per source address and
// refuses a source that made limit of them within window, until that
// window ends. Successes are never counted. It holds at most size sources:
// expired windows go first, then the oldest. It is safe for concurrent use.
type failureLimiter struct {
	limit  int
	window time.Duration
	size   int
	now    func() time.Time

	mu      sync.Mutex
	sources map[netip.Prefix]*failures
}

// failures is one source's window.
type failures struct {
	start time.Time
	n     int
}

func newFailureLimiter(limit int, window time.Duration, size int, now func() time.Time) *failureLimiter {
	if now == nil {
		now = time.Now
	}
	return &failureLimiter{limit: limit, window: window, size: size, now: now, sources: map[netip.Prefix]*failures{}}
}

// sourceOf is the source a request's remote address counts as: the IPv4
// address, or the IPv6 /64 (one host's usual share). An unparsable
// address counts as one shared source.
func sourceOf(remoteAddr string) netip.Prefix {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Prefix{}
	}
	ip = ip.Unmap()
	if ip.Is4() {
		return netip.PrefixFrom(ip, 32)
	}
	p, _ := ip.WithZone("").Prefix(64)
	return p
}

// blocked reports whether src is refused now and, if so, for how long.
func (l *failureLimiter) blocked(src netip.Prefix) (time.Duration, bool) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.sources[src]
	if f == nil {
		return 0, false
	}
	end := f.start.Add(l.window)
	if !now.Before(end) {
		delete(l.sources, src)
		return 0, false
	}
	if f.n < l.limit {
		return 0, false
	}
	return end.Sub(now), true
}

// fail records a failed attempt from src.
func (l *failureLimiter) fail(src netip.Prefix) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.sources[src]
	if f != nil && !now.Before(f.start.Add(l.window)) {
		f = nil
	}
	if f == nil {
		if len(l.sources) >= l.size {
			l.evictLocked(now)
		}
		f = &failures{start: now}
		l.sources[src] = f
	}
	f.n++
}

// evictLocked makes room for one source: every expired window goes, and
// if none had, the oldest.
func (l *failureLimiter) evictLocked(now time.Time) {
	var oldest netip.Prefix
	var oldestStart time.Time
	freed := false
	for k, f := range l.sources {
		if !now.Before(f.start.Add(l.window)) {
			delete(l.sources, k)
			freed = true
			continue
		}
		if oldestStart.IsZero() || f.start.Before(oldestStart) {
			oldest, oldestStart = k, f.start
		}
	}
	if !freed {
		delete(l.sources, oldest)
	}
}

// len is the number of sources tracked.
func (l *failureLimiter) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.sources)
}
