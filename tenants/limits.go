package tenants

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// LimitError is an attempt over a tenant's limit.
type LimitError struct {
	Tenant     string
	Reason     string        // "call_rate", "concurrent_calls", "token_rate"
	RetryAfter time.Duration // when trying again may succeed
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("tenant %q over its %s limit; retry after %s", e.Tenant, e.Reason, e.RetryAfter)
}

// Limiter enforces each tenant's call-attempt rate (token bucket with
// burst), its concurrent calls, and its token-minting rate, in this
// process. Tenants are isolated: each has its own buckets and counters.
// It is safe for concurrent use.
type Limiter struct {
	now func() time.Time

	mu      sync.Mutex
	tenants map[string]*tenantLimits
}

type tenantLimits struct {
	calls  *rate.Limiter
	mints  *rate.Limiter
	max    int
	active int
}

// NewLimiter builds limits for every tenant of cfg.
func NewLimiter(cfg *Config) *Limiter {
	l := &Limiter{now: time.Now, tenants: map[string]*tenantLimits{}}
	for _, t := range cfg.Tenants {
		lim := t.Limits
		l.tenants[t.ID] = &tenantLimits{
			calls: rate.NewLimiter(rate.Limit(lim.CallsPerSecond), lim.Burst),
			mints: rate.NewLimiter(rate.Limit(lim.CallsPerSecond), lim.Burst),
			max:   lim.MaxConcurrentCalls,
		}
	}
	return l
}

// Lease is one admitted call; Release it when the call ends.
type Lease struct {
	once    sync.Once
	release func()
}

// Release frees the call's concurrency slot. It is safe to call twice.
func (l *Lease) Release() { l.once.Do(l.release) }

// AdmitCall admits a call attempt for tenant or returns a *LimitError.
func (l *Limiter) AdmitCall(_ context.Context, tenant string) (*Lease, error) {
	return l.admitCall(tenant, l.now())
}

func (l *Limiter) admitCall(tenant string, now time.Time) (*Lease, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.tenants[tenant]
	if t == nil {
		return nil, &LimitError{Tenant: tenant, Reason: "unknown_tenant", RetryAfter: time.Minute}
	}
	if t.active >= t.max {
		return nil, &LimitError{Tenant: tenant, Reason: "concurrent_calls", RetryAfter: time.Second}
	}
	r := t.calls.ReserveN(now, 1)
	if d := r.DelayFrom(now); !r.OK() || d > 0 {
		r.CancelAt(now)
		return nil, &LimitError{Tenant: tenant, Reason: "call_rate", RetryAfter: ceilMs(d)}
	}
	t.active++
	return &Lease{release: func() {
		l.mu.Lock()
		t.active--
		l.mu.Unlock()
	}}, nil
}

// AllowMint reports whether tenant may mint another call token now.
func (l *Limiter) AllowMint(tenant string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.tenants[tenant]
	if t == nil {
		return time.Minute, false
	}
	now := l.now()
	r := t.mints.ReserveN(now, 1)
	if d := r.DelayFrom(now); !r.OK() || d > 0 {
		r.CancelAt(now)
		return ceilMs(d), false
	}
	return 0, true
}

// Active is the tenant's calls in progress.
func (l *Limiter) Active(tenant string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t := l.tenants[tenant]; t != nil {
		return t.active
	}
	return 0
}

func ceilMs(d time.Duration) time.Duration {
	if d <= 0 {
		return time.Millisecond
	}
	return time.Duration(math.Ceil(float64(d)/float64(time.Millisecond))) * time.Millisecond
}
