package tenants

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// redisServer is a real redis-server on a free loopback port.
type redisServer struct {
	t    *testing.T
	port int
	cmd  *exec.Cmd
}

func startRedis(t *testing.T, port int) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server is required under CI")
		}
		t.Skip("redis-server not installed")
	}
	if port == 0 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	r := &redisServer{t: t, port: port}
	r.cmd = exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server did not start: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(r.stop)
	return r
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
			{ID: "acme", Limits: Limits{CallsPerSecond: 100, Burst: 100, MaxConcurrentCalls: maxCalls}},
			{ID: "other", Limits: Limits{CallsPerSecond: 100, Burst: 100, MaxConcurrentCalls: maxCalls}},
		},
	}
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestSharedConcurrencyAcrossReplicas: two replicas share one Redis; a
// tenant with max_concurrent_calls 3 gets exactly 3 calls across both; a
// released slot admits a new call; another tenant is unaffected.
func TestSharedConcurrencyAcrossReplicas(t *testing.T) {
	r := startRedis(t, 0)
	a, err := NewSharedLimiter(sharedCfg(r.port, 3, 5*time.Second), quietLog(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, _ := NewSharedLimiter(sharedCfg(r.port, 3, 5*time.Second), quietLog(), nil)
	defer b.Close()
	ctx := context.Background()
	var leases []*Lease
	for i, l := range []*SharedLimiter{a, b, a} {
		lease, err := l.AdmitCall(ctx, "acme")
		if err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
		leases = append(leases, lease)
	}
	var le *LimitError
	if _, err := b.AdmitCall(ctx, "acme"); !errors.As(err, &le) || le.Reason != "concurrent_calls" || le.RetryAfter <= 0 {
		t.Fatalf("4th call across replicas: %v, want concurrent_calls", err)
	}
	if _, err := a.AdmitCall(ctx, "other"); err != nil {
		t.Errorf("another tenant: %v", err)
	}
	leases[1].Release()
	if _, err := a.AdmitCall(ctx, "acme"); err != nil {
		t.Errorf("after a release: %v", err)
	}
	if !a.Healthy() || !b.Healthy() {
		t.Error("limiters report Redis unhealthy")
	}
}

// TestCrashedReplicaSlotsExpire: a replica that dies holding leases (no
// release, no heartbeat) frees its slots within the lease TTL.
func TestCrashedReplicaSlotsExpire(t *testing.T) {
	r := startRedis(t, 0)
	ttl := 600 * time.Millisecond
	crashed, _ := NewSharedLimiter(sharedCfg(r.port, 2, ttl), quietLog(), nil)
	for range 2 {
		if _, err := crashed.AdmitCall(context.Background(), "acme"); err != nil {
			t.Fatal(err)
		}
	}
	crashed.Close() // the heartbeat stops; the leases are never released
	live, _ := NewSharedLimiter(sharedCfg(r.port, 2, ttl), quietLog(), nil)
	defer live.Close()
	if _, err := live.AdmitCall(context.Background(), "acme"); err == nil {
		t.Fatal("slots were free before the lease TTL")
	}
	// A live replica's heartbeat keeps its own leases alive past the TTL.
	deadline := time.Now().Add(5 * ttl)
	var held *Lease
	for time.Now().Before(deadline) {
		l, err := live.AdmitCall(context.Background(), "acme")
		if err == nil {
			held = l
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if held == nil {
		t.Fatal("the crashed replica's slots never came back")
	}
	time.Sleep(3 * ttl) // heartbeats refresh held
	if _, err := live.AdmitCall(context.Background(), "acme"); err != nil {
		t.Fatalf("second slot: %v", err)
	}
	if _, err := live.AdmitCall(context.Background(), "acme"); err == nil {
		t.Error("a third call was admitted: the held lease expired despite its heartbeat")
	}
}

// TestRedisOutageFallsBackAndRecovers: with Redis stopped, calls are still
// admitted under local limits and nothing fails; when Redis returns,
// shared limits resume.
func TestRedisOutageFallsBackAndRecovers(t *testing.T) {
	r := startRedis(t, 0)
	states := make(chan bool, 4)
	l, _ := NewSharedLimiter(sharedCfg(r.port, 4, 500*time.Millisecond), quietLog(), func(shared bool) { states <- shared })
	defer l.Close()
	if _, err := l.AdmitCall(context.Background(), "acme"); err != nil {
		t.Fatal(err)
	}
	r.stop()
	// Local limits: half of 4.
	admitted := 0
	for range 4 {
		if _, err := l.AdmitCall(context.Background(), "acme"); err == nil {
			admitted++
		}
	}
	if admitted != 2 || l.Healthy() || <-states != false {
		t.Fatalf("during the outage: %d admitted (want the local share, 2), healthy=%v", admitted, l.Healthy())
	}
	r2 := startRedis(t, r.port)
	_ = r2
	select {
	case s := <-states:
		if !s {
			t.Fatal("state went down again")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("shared limits did not resume after Redis came back")
	}
	if _, err := l.AdmitCall(context.Background(), "acme"); err != nil || !l.Healthy() {
		t.Fatalf("after recovery: %v healthy=%v", err, l.Healthy())
	}
}

func BenchmarkAdmitCallRedis(b *testing.B) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		b.Skip("redis-server not installed")
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", b.TempDir())
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	time.Sleep(200 * time.Millisecond)
	cfg := sharedCfg(port, 1<<30, time.Minute)
	cfg.Tenants[0].Limits.CallsPerSecond, cfg.Tenants[0].Limits.Burst = 1e6, 1e6
	l, _ := NewSharedLimiter(cfg, quietLog(), nil)
	defer l.Close()
	b.ReportAllocs()
	for b.Loop() {
		lease, err := l.AdmitCall(context.Background(), "acme")
		if err != nil {
			b.Fatal(err)
		}
		lease.Release()
	}
}
