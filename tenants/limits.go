package tenants

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Option configures a Limiter or a SharedLimiter.
type Option func(*options)

type options struct {
	now     func() time.Time
	log     *slog.Logger
	onState func(shared bool)
}

func buildOptions(opts []Option) options {
	o := options{now: time.Now, log: slog.New(slog.NewTextHandler(io.Discard, nil)), onState: func(bool) {}}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// WithClock sets the clock of the in-process limits (default time.Now).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithLogger sets the logger (default none).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithStateHook is called with true when a SharedLimiter's limits become
// shared through Redis again and false when they fall back to local (for a
// metric). Default none.
func WithStateHook(f func(shared bool)) Option { return func(o *options) { o.onState = f } }

// Limiter enforces each tenant's limits in this process: call attempts per
// second with a burst and token-minting at the same rate (token buckets),
// concurrent calls (a counter), and LLM tokens per minute (a token bucket
// holding one minute's worth). Tenants are isolated: each has its own
// buckets, counter and lock. It is safe for concurrent use.
type Limiter struct {
	now     func() time.Time
	tenants map[string]*tenantLimits // read-only after NewLimiter
}

type tenantLimits struct {
	id    string
	calls *rate.Limiter
	mints *rate.Limiter
	llm   *rate.Limiter

	mu     sync.Mutex
	max    int
	active int // calls in progress on this replica, admitted here or through Redis
}

// NewLimiter builds in-process limits for every tenant of cfg.
func NewLimiter(cfg *Config, opts ...Option) *Limiter {
	o := buildOptions(opts)
	l := &Limiter{now: o.now, tenants: make(map[string]*tenantLimits, len(cfg.Tenants))}
	for _, t := range cfg.Tenants {
		lim := t.Limits
		l.tenants[t.ID] = &tenantLimits{
			id:    t.ID,
			calls: rate.NewLimiter(rate.Limit(lim.CallsPerSecond), lim.Burst),
			mints: rate.NewLimiter(rate.Limit(lim.CallsPerSecond), lim.Burst),
			llm:   rate.NewLimiter(rate.Limit(float64(lim.LLMTokensPerMinute)/60), lim.LLMTokensPerMinute),
			max:   lim.MaxConcurrentCalls,
		}
	}
	return l
}

// scaled returns cfg's tenants with every limit multiplied by share
// (rounded up, at least 1): one replica's part while Redis is unreachable.
func scaled(cfg *Config, share float64) *Config {
	out := &Config{}
	up := func(n int) int { return max(1, int(math.Ceil(float64(n)*share))) }
	for _, t := range cfg.Tenants {
		t.Limits.CallsPerSecond *= share
		t.Limits.Burst = up(t.Limits.Burst)
		t.Limits.MaxConcurrentCalls = up(t.Limits.MaxConcurrentCalls)
		t.Limits.LLMTokensPerMinute = up(t.Limits.LLMTokensPerMinute)
		out.Tenants = append(out.Tenants, t)
	}
	return out
}

// Lease is one admitted call. Release it when the call ends.
type Lease struct {
	once    sync.Once
	release func()
}

// Release frees the call's concurrency slot. It is safe to call more than
// once and on a nil Lease.
func (l *Lease) Release() {
	if l != nil {
		l.once.Do(l.release)
	}
}

func unknownTenant(tenant string) error {
	return fmt.Errorf("%w %q", ErrUnknownTenant, tenant)
}

// AdmitCall admits a call attempt for tenant and returns its lease, or a
// *LimitError (ReasonConcurrentCalls or ReasonCallRate) when it is over a
// limit. A refused attempt does not use up the rate.
func (l *Limiter) AdmitCall(_ context.Context, tenant string) (*Lease, error) {
	t := l.tenants[tenant]
	if t == nil {
		return nil, unknownTenant(tenant)
	}
	if err := t.admit(l.now()); err != nil {
		return nil, err
	}
	return &Lease{release: t.done}, nil
}

func (t *tenantLimits) admit(now time.Time) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.active >= t.max {
		return &LimitError{Tenant: t.id, Reason: ReasonConcurrentCalls, RetryAfter: time.Second}
	}
	if d, ok := take(t.calls, now, 1); !ok {
		return &LimitError{Tenant: t.id, Reason: ReasonCallRate, RetryAfter: d}
	}
	t.active++
	return nil
}

// track counts a call admitted elsewhere (through Redis), so the local
// fallback knows what this replica already carries.
func (t *tenantLimits) track() {
	t.mu.Lock()
	t.active++
	t.mu.Unlock()
}

func (t *tenantLimits) done() {
	t.mu.Lock()
	t.active--
	t.mu.Unlock()
}

// take takes n tokens from b at now, or reports how long until it could.
func take(b *rate.Limiter, now time.Time, n int) (time.Duration, bool) {
	r := b.ReserveN(now, n)
	if !r.OK() {
		return time.Minute, false
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return ceilMs(d), false
	}
	return 0, true
}

// AllowLLMTokens reports whether tenant may spend n more LLM tokens now
// and, if not, when it may. Ask before each LLM request with its
// max_tokens; on false, do not send it. A request larger than a whole
// minute's budget is counted as the whole budget.
func (l *Limiter) AllowLLMTokens(_ context.Context, tenant string, n int) (bool, time.Duration) {
	t := l.tenants[tenant]
	if t == nil {
		return false, time.Minute
	}
	d, ok := take(t.llm, l.now(), min(max(n, 1), t.llm.Burst()))
	return ok, d
}

// AllowMint reports whether tenant may mint another call token now and, if
// not, how long until it may.
func (l *Limiter) AllowMint(tenant string) (time.Duration, bool) {
	t := l.tenants[tenant]
	if t == nil {
		return time.Minute, false
	}
	return take(t.mints, l.now(), 1)
}

// Active is the tenant's calls in progress on this replica.
func (l *Limiter) Active(tenant string) int {
	t := l.tenants[tenant]
	if t == nil {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.active
}

// Healthy is always true: in-process limits have nothing to lose.
func (l *Limiter) Healthy() bool { return true }

// Detail describes the limits for /readyz.
func (l *Limiter) Detail() string { return "in process (this replica only)" }

// Close does nothing; it is here so both limiters close alike.
func (l *Limiter) Close() error { return nil }

func ceilMs(d time.Duration) time.Duration {
	if d <= 0 {
		return time.Millisecond
	}
	return time.Duration(math.Ceil(float64(d)/float64(time.Millisecond))) * time.Millisecond
}
