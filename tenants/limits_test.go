package tenants

import (
	"errors"
	"testing"
	"time"
)

func limitCfg() *Config {
	return &Config{Tenants: []Tenant{
		{ID: "a", Limits: Limits{CallsPerSecond: 2, Burst: 2, MaxConcurrentCalls: 3}},
		{ID: "b", Limits: Limits{CallsPerSecond: 100, Burst: 100, MaxConcurrentCalls: 1}},
	}}
}

func TestLimiterRateAndConcurrency(t *testing.T) {
	l := NewLimiter(limitCfg())
	now := time.Unix(1000, 0)
	// Burst of 2, then the rate refuses with a retry hint.
	l1, err1 := l.admitCall("a", now)
	l2, err2 := l.admitCall("a", now)
	_, err3 := l.admitCall("a", now)
	var le *LimitError
	if err1 != nil || err2 != nil || !errors.As(err3, &le) || le.Reason != "call_rate" || le.RetryAfter <= 0 || le.RetryAfter > 500*time.Millisecond {
		t.Fatalf("burst: %v %v %v", err1, err2, err3)
	}
	// Half a second later one more token; the third concurrent call is fine.
	l3, err := l.admitCall("a", now.Add(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	// A fourth concurrent call is refused even with tokens available.
	_, err = l.admitCall("a", now.Add(5*time.Second))
	if !errors.As(err, &le) || le.Reason != "concurrent_calls" {
		t.Fatalf("4th concurrent: %v", err)
	}
	l1.Release()
	l1.Release() // idempotent
	if _, err := l.admitCall("a", now.Add(6*time.Second)); err != nil {
		t.Fatalf("after release: %v", err)
	}
	_, _ = l2, l3
	// Tenant b is unaffected by a's load.
	if _, err := l.admitCall("b", now); err != nil {
		t.Fatalf("tenant b: %v", err)
	}
	if got := l.Active("a"); got != 3 {
		t.Errorf("active a = %d, want 3", got)
	}
}

func BenchmarkAdmitCallLocal(b *testing.B) {
	l := NewLimiter(&Config{Tenants: []Tenant{{ID: "a", Limits: Limits{CallsPerSecond: 1e9, Burst: 1e9, MaxConcurrentCalls: 1 << 30}}}})
	b.ReportAllocs()
	for b.Loop() {
		lease, err := l.AdmitCall(b.Context(), "a")
		if err != nil {
			b.Fatal(err)
		}
		lease.Release()
	}
}
