package tenants

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock for the in-process limits.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func limitCfg() *Config {
	return &Config{Tenants: []Tenant{
		{ID: "a", Limits: Limits{CallsPerSecond: 2, Burst: 2, MaxConcurrentCalls: 3, LLMTokensPerMinute: 600}},
		{ID: "b", Limits: Limits{CallsPerSecond: 100, Burst: 100, MaxConcurrentCalls: 1, LLMTokensPerMinute: 600}},
	}}
}

func TestLimiterRateAndConcurrency(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	l := NewLimiter(limitCfg(), WithClock(clk.now))
	ctx := context.Background()
	// A burst of 2, then the rate refuses with a retry hint.
	l1, err1 := l.AdmitCall(ctx, "a")
	l2, err2 := l.AdmitCall(ctx, "a")
	_, err3 := l.AdmitCall(ctx, "a")
	le, ok := errors.AsType[*LimitError](err3)
	if err1 != nil || err2 != nil || !ok || le.Reason != ReasonCallRate || le.RetryAfter <= 0 || le.RetryAfter > 500*time.Millisecond {
		t.Fatalf("burst: %v %v %v", err1, err2, err3)
	}
	// Half a second later one more token: the third concurrent call.
	clk.add(500 * time.Millisecond)
	l3, err := l.AdmitCall(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	// A fourth concurrent call is refused even with tokens available, and
	// the refusal does not use up the rate.
	clk.add(5 * time.Second)
	_, err = l.AdmitCall(ctx, "a")
	if le, ok := errors.AsType[*LimitError](err); !ok || le.Reason != ReasonConcurrentCalls || le.RetryAfter <= 0 {
		t.Fatalf("4th concurrent: %v", err)
	}
	l1.Release()
	l1.Release() // idempotent
	if _, err := l.AdmitCall(ctx, "a"); err != nil {
		t.Fatalf("after release: %v", err)
	}
	// Tenant b is unaffected by a's load.
	if _, err := l.AdmitCall(ctx, "b"); err != nil {
		t.Fatalf("tenant b: %v", err)
	}
	if got := l.Active("a"); got != 3 {
		t.Errorf("active a = %d, want 3", got)
	}
	l2.Release()
	l3.Release()
	if _, err := l.AdmitCall(ctx, "nobody"); !errors.Is(err, ErrUnknownTenant) {
		t.Errorf("unknown tenant: %v", err)
	}
	var nilLease *Lease
	nilLease.Release()
}

func TestLimiterLLMTokens(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	l := NewLimiter(limitCfg(), WithClock(clk.now))
	ctx := context.Background()
	if ok, _ := l.AllowLLMTokens(ctx, "a", 500); !ok {
		t.Fatal("500 of 600 refused")
	}
	ok, retry := l.AllowLLMTokens(ctx, "a", 300)
	// 200 short at 10 tokens/s: 20s.
	if ok || retry < 19*time.Second || retry > 21*time.Second {
		t.Fatalf("over budget: ok=%v retry=%s, want refused with ~20s", ok, retry)
	}
	if ok, _ := l.AllowLLMTokens(ctx, "b", 600); !ok {
		t.Error("tenant b is held back by a's spending")
	}
	clk.add(20 * time.Second)
	if ok, _ := l.AllowLLMTokens(ctx, "a", 300); !ok {
		t.Error("refused after the budget refilled")
	}
	// Larger than a minute's budget counts as the whole budget.
	clk.add(time.Minute)
	if ok, _ := l.AllowLLMTokens(ctx, "a", 10_000); !ok {
		t.Error("an oversized request is never admitted")
	}
	if ok, _ := l.AllowLLMTokens(ctx, "a", 1); ok {
		t.Error("an oversized request did not spend the budget")
	}
	if ok, _ := l.AllowLLMTokens(ctx, "nobody", 1); ok {
		t.Error("unknown tenant allowed")
	}
}

func TestLimiterMint(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	l := NewLimiter(limitCfg(), WithClock(clk.now))
	for i := range 2 {
		if _, ok := l.AllowMint("a"); !ok {
			t.Fatalf("mint %d refused", i)
		}
	}
	if retry, ok := l.AllowMint("a"); ok || retry <= 0 {
		t.Fatalf("third mint: ok=%v retry=%s", ok, retry)
	}
}

// TestLimiterConcurrent: many goroutines never admit more than the limit.
func TestLimiterConcurrent(t *testing.T) {
	l := NewLimiter(&Config{Tenants: []Tenant{{ID: "a", Limits: Limits{CallsPerSecond: 1e6, Burst: 1e6, MaxConcurrentCalls: 7, LLMTokensPerMinute: 1}}}})
	var (
		mu      sync.Mutex
		held    []*Lease
		wg      sync.WaitGroup
		ctx     = context.Background()
		refused int
	)
	for range 50 {
		wg.Go(func() {
			lease, err := l.AdmitCall(ctx, "a")
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				refused++
				return
			}
			held = append(held, lease)
		})
	}
	wg.Wait()
	if len(held) != 7 || refused != 43 || l.Active("a") != 7 {
		t.Fatalf("admitted %d, refused %d, active %d; want 7, 43, 7", len(held), refused, l.Active("a"))
	}
	for _, h := range held {
		h.Release()
	}
	if l.Active("a") != 0 {
		t.Errorf("active after release = %d", l.Active("a"))
	}
}

func BenchmarkAdmitCallLocal(b *testing.B) {
	l := NewLimiter(&Config{Tenants: []Tenant{{ID: "a", Limits: Limits{CallsPerSecond: 1e9, Burst: 1e9, MaxConcurrentCalls: 1 << 30, LLMTokensPerMinute: 1}}}})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		lease, err := l.AdmitCall(ctx, "a")
		if err != nil {
			b.Fatal(err)
		}
		lease.Release()
	}
}

func BenchmarkAdmitCallLocalParallel(b *testing.B) {
	cfg := &Config{}
	for _, id := range []string{"a", "b", "c", "d"} {
		cfg.Tenants = append(cfg.Tenants, Tenant{ID: id, Limits: Limits{CallsPerSecond: 1e9, Burst: 1e9, MaxConcurrentCalls: 1 << 30, LLMTokensPerMinute: 1}})
	}
	l := NewLimiter(cfg)
	ctx := context.Background()
	b.ReportAllocs()
	var n atomicCounter
	b.RunParallel(func(pb *testing.PB) {
		tenant := cfg.Tenants[n.next()%4].ID
		for pb.Next() {
			lease, err := l.AdmitCall(ctx, tenant)
			if err != nil {
				b.Error(err)
				return
			}
			lease.Release()
		}
	})
}

type atomicCounter struct {
	mu sync.Mutex
	n  int
}

func (c *atomicCounter) next() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	return c.n
}
