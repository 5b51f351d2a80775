package tenants

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The test binary doubles as a replica that holds leases until it is
// killed (see TestKilledReplicaSlotsExpire).
const holderEnv = "VOICEGW_TENANTS_TEST_HOLDER"

func TestMain(m *testing.M) {
	if spec := os.Getenv(holderEnv); spec != "" {
		os.Exit(holdLeases(spec))
	}
	os.Exit(m.Run())
}

// holdLeases is the child replica: spec is "port,calls,ttl"; it admits
// calls for tenant acme, says so, and waits to be killed.
func holdLeases(spec string) int {
	parts := strings.Split(spec, ",")
	port, _ := strconv.Atoi(parts[0])
	calls, _ := strconv.Atoi(parts[1])
	ttl, _ := time.ParseDuration(parts[2])
	l, err := NewSharedLimiter(sharedCfg(port, calls, ttl), nil, nil)
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	for range calls {
		if _, err := l.AdmitCall(context.Background(), "acme"); err != nil {
			fmt.Println("error:", err)
			return 1
		}
	}
	fmt.Println("held")
	select {}
}

// redisServer is a real redis-server on a free loopback port.
type redisServer struct {
	port int
	cmd  *exec.Cmd
}

// startRedis starts redis-server on port (0: a free one) and stops it at
// the end of the test. Without redis-server the test is skipped, except
// under CI, where it fails.
func startRedis(tb testing.TB, port int) *redisServer {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatal("redis-server is required under CI: ", err)
		}
		tb.Skip("redis-server not installed")
	}
	if port == 0 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		port = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	r := &redisServer{port: port}
	r.cmd = exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", tb.TempDir())
	if err := r.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(r.stop)
	deadline := time.Now().Add(10 * time.Second)
	for {
		// A quiet TCP probe first: the client logs every failed dial.
		if conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			conn.Close()
			c := r.client()
			err := c.Ping(context.Background()).Err()
			c.Close()
			if err == nil {
				return r
			}
		}
		if time.Now().After(deadline) {
			tb.Fatal("redis-server did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *redisServer) client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", r.port), MaxRetries: -1, DialerRetries: 1})
}

func (r *redisServer) stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}

func sharedCfg(port int, maxCalls int, ttl time.Duration) *Config {
	return &Config{
		Redis: &Redis{URL: fmt.Sprintf("redis://127.0.0.1:%d/0", port), LocalShare: 0.5, LeaseTTL: Duration(ttl)},
		Tenants: []Tenant{
			{ID: "acme", Limits: Limits{CallsPerSecond: 100, Burst: 100, MaxConcurrentCalls: maxCalls, LLMTokensPerMinute: 600}},
			{ID: "other", Limits: Limits{CallsPerSecond: 100, Burst: 100, MaxConcurrentCalls: maxCalls, LLMTokensPerMinute: 600}},
		},
	}
}

func newShared(t *testing.T, cfg *Config, onState func(bool)) *SharedLimiter {
	t.Helper()
	l, err := NewSharedLimiter(cfg, slog.New(slog.DiscardHandler), onState)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func admit(t *testing.T, l *SharedLimiter, tenant string) *Lease {
	t.Helper()
	lease, err := l.AdmitCall(context.Background(), tenant)
	if err != nil {
		t.Fatalf("admit %s: %v", tenant, err)
	}
	return lease
}

// TestSharedConcurrencyAcrossReplicas: two replicas share one Redis; a
// tenant with max_concurrent_calls 3 gets exactly 3 calls across both; the
// 4th is refused with a retry hint; a released slot admits a new call;
// another tenant is unaffected.
func TestSharedConcurrencyAcrossReplicas(t *testing.T) {
	r := startRedis(t, 0)
	a := newShared(t, sharedCfg(r.port, 3, 5*time.Second), nil)
	b := newShared(t, sharedCfg(r.port, 3, 5*time.Second), nil)
	var leases []*Lease
	for _, l := range []*SharedLimiter{a, b, a} {
		leases = append(leases, admit(t, l, "acme"))
	}
	for _, l := range []*SharedLimiter{a, b} {
		_, err := l.AdmitCall(context.Background(), "acme")
		if le, ok := errors.AsType[*LimitError](err); !ok || le.Reason != ReasonConcurrentCalls || le.RetryAfter <= 0 {
			t.Fatalf("4th call across replicas: %v, want concurrent_calls with a retry hint", err)
		}
	}
	admit(t, a, "other")
	leases[1].Release()
	leases[1].Release()
	admit(t, a, "acme")
	if _, err := b.AdmitCall(context.Background(), "acme"); err == nil {
		t.Error("a 4th call after release and re-admission")
	}
	if !a.Healthy() || !b.Healthy() || !strings.Contains(a.Detail(), "shared") {
		t.Errorf("state: %v %v %q", a.Healthy(), b.Healthy(), a.Detail())
	}
	if a.Active("acme") != 3 || b.Active("acme") != 0 {
		t.Errorf("active: a %d (want 3), b %d (want 0)", a.Active("acme"), b.Active("acme"))
	}
}

// TestSharedCallRate: the call-attempt rate (GCRA) is one budget across
// replicas, and a refusal carries the time to the next slot.
func TestSharedCallRate(t *testing.T) {
	r := startRedis(t, 0)
	cfg := sharedCfg(r.port, 100, 5*time.Second)
	cfg.Tenants[0].Limits.CallsPerSecond, cfg.Tenants[0].Limits.Burst = 1, 3
	a, b := newShared(t, cfg, nil), newShared(t, cfg, nil)
	admit(t, a, "acme")
	admit(t, b, "acme")
	admit(t, a, "acme")
	_, err := b.AdmitCall(context.Background(), "acme")
	le, ok := errors.AsType[*LimitError](err)
	if !ok || le.Reason != ReasonCallRate || le.RetryAfter <= 0 || le.RetryAfter > time.Second {
		t.Fatalf("4th attempt in the burst: %v, want call_rate within 1s", err)
	}
	time.Sleep(le.RetryAfter)
	admit(t, b, "acme")
}

// TestSharedLLMTokens: the per-minute LLM token budget is shared.
func TestSharedLLMTokens(t *testing.T) {
	r := startRedis(t, 0)
	a := newShared(t, sharedCfg(r.port, 3, 5*time.Second), nil)
	b := newShared(t, sharedCfg(r.port, 3, 5*time.Second), nil)
	ctx := context.Background()
	if ok, _ := a.AllowLLMTokens(ctx, "acme", 400); !ok {
		t.Fatal("400 of 600 refused")
	}
	ok, retry := b.AllowLLMTokens(ctx, "acme", 400)
	if ok || retry < 19*time.Second || retry > 21*time.Second {
		t.Fatalf("second replica: ok=%v retry=%s, want refused for ~20s", ok, retry)
	}
	if ok, _ := b.AllowLLMTokens(ctx, "acme", 200); !ok {
		t.Error("the remaining 200 were refused")
	}
	if ok, _ := b.AllowLLMTokens(ctx, "other", 600); !ok {
		t.Error("another tenant's budget was spent")
	}
}

// TestKilledReplicaSlotsExpire: a replica process killed with SIGKILL
// while holding every slot frees them within the lease TTL, while a live
// replica's heartbeat keeps its own leases past it.
func TestKilledReplicaSlotsExpire(t *testing.T) {
	r := startRedis(t, 0)
	ttl := time.Second
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), fmt.Sprintf("%s=%d,2,%s", holderEnv, r.port, ttl))
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = child.Process.Kill(); _ = child.Wait() })
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "held" {
		t.Fatalf("child replica: %q", line)
	}
	live := newShared(t, sharedCfg(r.port, 2, ttl), nil)
	// The child's heartbeat keeps its slots past the TTL.
	time.Sleep(2 * ttl)
	if _, err := live.AdmitCall(context.Background(), "acme"); err == nil {
		t.Fatal("a slot was free while the child replica held both")
	}
	if err := child.Process.Signal(os.Kill); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	var held []*Lease
	for len(held) < 2 && time.Since(killed) < ttl+2*time.Second {
		if l, err := live.AdmitCall(context.Background(), "acme"); err == nil {
			held = append(held, l)
			continue
		}
		time.Sleep(25 * time.Millisecond)
	}
	if len(held) < 2 {
		t.Fatalf("%d of 2 slots came back within %s of the kill", len(held), time.Since(killed))
	}
	if d := time.Since(killed); d > ttl+time.Second {
		t.Errorf("slots came back after %s, more than the lease TTL %s allows", d, ttl)
	}
	t.Logf("slots back %s after SIGKILL (lease TTL %s)", time.Since(killed).Round(time.Millisecond), ttl)
}

// TestRedisOutageFallsBackAndRecovers: with Redis stopped, calls are still
// admitted under the local share (counting the calls this replica already
// carries) and nothing fails; when Redis returns, limits are shared again
// and the calls admitted meanwhile are registered in Redis.
func TestRedisOutageFallsBackAndRecovers(t *testing.T) {
	r := startRedis(t, 0)
	var (
		mu     sync.Mutex
		states []bool
	)
	changed := make(chan struct{}, 8)
	l := newShared(t, sharedCfg(r.port, 4, time.Second), func(shared bool) {
		mu.Lock()
		states = append(states, shared)
		mu.Unlock()
		changed <- struct{}{}
	})
	first := admit(t, l, "acme")
	r.stop()
	// Local share: half of 4 is 2, one of which this replica carries.
	var during []*Lease
	for range 4 {
		if lease, err := l.AdmitCall(context.Background(), "acme"); err == nil {
			during = append(during, lease)
		} else if _, ok := errors.AsType[*LimitError](err); !ok {
			t.Fatalf("during the outage: %v, want admission or a LimitError", err)
		}
	}
	if len(during) != 1 || l.Healthy() || !strings.Contains(l.Detail(), "local") {
		t.Fatalf("during the outage: %d admitted (want 1), healthy=%v, detail %q", len(during), l.Healthy(), l.Detail())
	}
	if ok, _ := l.AllowLLMTokens(context.Background(), "acme", 100); !ok {
		t.Error("LLM tokens refused under the local share")
	}
	admit(t, l, "other").Release() // another tenant, and a release, while down
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("no state change reported")
	}
	r2 := startRedis(t, r.port)
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("shared limits did not resume after Redis came back")
	}
	mu.Lock()
	if fmt.Sprint(states) != "[false true]" {
		t.Errorf("state changes %v, want [false true]", states)
	}
	mu.Unlock()
	// Both calls in progress are registered in the new Redis…
	c := r2.client()
	defer c.Close()
	deadline := time.Now().Add(3 * time.Second)
	for {
		n, err := c.ZCard(context.Background(), callsKey("acme")).Result()
		if err == nil && n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("leases in redis after recovery: %d (%v), want 2", n, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// …so another replica gets exactly the remaining 2 of 4.
	other := newShared(t, sharedCfg(r.port, 4, time.Second), nil)
	admit(t, other, "acme")
	admit(t, other, "acme")
	if _, err := other.AdmitCall(context.Background(), "acme"); err == nil {
		t.Error("a 5th call across replicas after recovery")
	}
	first.Release()
	during[0].Release()
	admit(t, other, "acme")
}

// TestRedisDownAtStart: a replica whose Redis never answers serves under
// local limits from its first call.
func TestRedisDownAtStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	l := newShared(t, sharedCfg(port, 4, time.Second), nil)
	admit(t, l, "acme")
	admit(t, l, "acme")
	if _, err := l.AdmitCall(context.Background(), "acme"); err == nil {
		t.Error("admitted beyond the local share")
	}
	if l.Healthy() {
		t.Error("healthy without Redis")
	}
}

// TestCloseReleasesLeases: a replica shutting down gives its slots back at
// once instead of waiting for the TTL.
func TestCloseReleasesLeases(t *testing.T) {
	r := startRedis(t, 0)
	a, err := NewSharedLimiter(sharedCfg(r.port, 1, time.Minute), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = a.AdmitCall(context.Background(), "acme")
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
	b := newShared(t, sharedCfg(r.port, 1, time.Minute), nil)
	admit(t, b, "acme")
}

func TestSharedLimiterNeedsRedis(t *testing.T) {
	if _, err := NewSharedLimiter(&Config{}, nil, nil); !errors.Is(err, ErrNoRedis) {
		t.Errorf("got %v, want ErrNoRedis", err)
	}
}

func BenchmarkAdmitCallRedis(b *testing.B) {
	r := startRedis(b, 0)
	cfg := sharedCfg(r.port, 1<<30, time.Minute)
	cfg.Tenants[0].Limits.CallsPerSecond, cfg.Tenants[0].Limits.Burst = 1e6, 1e6
	l, err := NewSharedLimiter(cfg, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		lease, err := l.AdmitCall(ctx, "acme")
		if err != nil {
			b.Fatal(err)
		}
		lease.Release()
	}
}

func BenchmarkAllowLLMTokensRedis(b *testing.B) {
	r := startRedis(b, 0)
	cfg := sharedCfg(r.port, 1, time.Minute)
	cfg.Tenants[0].Limits.LLMTokensPerMinute = 1 << 30
	l, err := NewSharedLimiter(cfg, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if ok, _ := l.AllowLLMTokens(ctx, "acme", 1); !ok {
			b.Fatal("refused")
		}
	}
}
