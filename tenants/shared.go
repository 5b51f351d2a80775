package tenants

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// admitScript admits one call for a tenant across every replica, atomically:
// expired concurrency leases are dropped, the concurrency limit is checked,
// then the call-attempt rate (GCRA: a theoretical arrival time advanced by
// one emission interval per call, with the burst as tolerance), and only
// then is the lease added. Times are Redis's own clock, in milliseconds.
//
// KEYS[1] rate key, KEYS[2] lease sorted set.
// ARGV: emission interval ms, burst tolerance ms, max concurrent, lease ttl ms, lease id.
// Returns {1, 0} when admitted, {0, retry_ms, reason} when not.
var admitScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local maxc = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= maxc then
  return {0, 1000, 'concurrent_calls'}
end
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
if tat - now > tolerance then
  return {0, tat - now - tolerance, 'call_rate'}
end
redis.call('SET', KEYS[1], tat + interval, 'PX', math.ceil(tat + interval - now + tolerance + 1000))
redis.call('ZADD', KEYS[2], now + ttl, ARGV[5])
redis.call('PEXPIRE', KEYS[2], ttl * 2)
return {1, 0, ''}
`)

// refreshScript extends leases by the TTL from Redis's own clock.
// KEYS[1] lease sorted set; ARGV[1] ttl ms, ARGV[2…] lease ids.
var refreshScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[i])
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]) * 2)
return 1
`)

// SharedLimiter enforces each tenant's call rate and concurrency across all
// replicas through Redis. While Redis is unreachable it falls back to
// per-replica limits (a configured share of each tenant's limits), logs the
// change once, reports it through Healthy and the state hook, and returns
// to shared limits as soon as Redis answers again. Concurrency leases are
// refreshed by a heartbeat, so a crashed replica's calls free their slots
// within the lease TTL.
type SharedLimiter struct {
	cfg     *Config
	rdb     *redis.Client
	local   *Limiter
	ttl     time.Duration
	log     *slog.Logger
	onState func(shared bool)

	healthy atomic.Bool
	mu      sync.Mutex
	leases  map[string]string // lease id → tenant, for the heartbeat
	stop    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
}

// NewSharedLimiter connects to cfg.Redis. onState (optional) is called with
// true when limits are shared and false when they fall back to local.
func NewSharedLimiter(cfg *Config, log *slog.Logger, onState func(shared bool)) (*SharedLimiter, error) {
	if cfg.Redis == nil {
		return nil, fmt.Errorf("redis is not configured")
	}
	opt, err := redis.ParseURL(cfg.Redis.URL)
	if err != nil {
		return nil, fmt.Errorf("redis.url: %w", err)
	}
	if p := cfg.Redis.Password.Value(); p != "" {
		opt.Password = p
	}
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = time.Second, 500*time.Millisecond, 500*time.Millisecond
	opt.MaxRetries = 0
	share := cfg.Redis.LocalShare
	localCfg := &Config{}
	for _, t := range cfg.Tenants {
		t.Limits.CallsPerSecond *= share
		t.Limits.Burst = max(1, int(math.Ceil(float64(t.Limits.Burst)*share)))
		t.Limits.MaxConcurrentCalls = max(1, int(math.Ceil(float64(t.Limits.MaxConcurrentCalls)*share)))
		localCfg.Tenants = append(localCfg.Tenants, t)
	}
	if onState == nil {
		onState = func(bool) {}
	}
	s := &SharedLimiter{
		cfg: cfg, rdb: redis.NewClient(opt), local: NewLimiter(localCfg), ttl: time.Duration(cfg.Redis.LeaseTTL),
		log: log, onState: onState, leases: map[string]string{}, stop: make(chan struct{}),
	}
	s.healthy.Store(true)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.loop()
	}()
	return s, nil
}

func leaseID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// AdmitCall admits a call for tenant or returns a *LimitError.
func (s *SharedLimiter) AdmitCall(ctx context.Context, tenant string) (*Lease, error) {
	t := s.cfg.Tenant(tenant)
	if t == nil {
		return nil, &LimitError{Tenant: tenant, Reason: "unknown_tenant", RetryAfter: time.Minute}
	}
	if !s.healthy.Load() {
		return s.local.AdmitCall(ctx, tenant)
	}
	interval := 1000 / t.Limits.CallsPerSecond
	tolerance := interval * float64(t.Limits.Burst-1)
	id := leaseID()
	rctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	res, err := admitScript.Run(rctx, s.rdb, []string{"voicegw:rate:" + tenant, "voicegw:calls:" + tenant},
		int64(math.Ceil(interval)), int64(tolerance), t.Limits.MaxConcurrentCalls, s.ttl.Milliseconds(), id).Slice()
	if err != nil {
		s.setHealthy(false, err)
		return s.local.AdmitCall(ctx, tenant)
	}
	if ok, _ := res[0].(int64); ok != 1 {
		retry, _ := res[1].(int64)
		reason, _ := res[2].(string)
		return nil, &LimitError{Tenant: tenant, Reason: reason, RetryAfter: time.Duration(max(retry, 1)) * time.Millisecond}
	}
	s.mu.Lock()
	s.leases[id] = tenant
	s.mu.Unlock()
	return &Lease{release: func() {
		s.mu.Lock()
		delete(s.leases, id)
		s.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := s.rdb.ZRem(ctx, "voicegw:calls:"+tenant, id).Err(); err != nil {
			s.setHealthy(false, err) // the lease expires on its own
		}
	}}, nil
}

// Healthy reports whether limits are shared through Redis.
func (s *SharedLimiter) Healthy() bool { return s.healthy.Load() }

// Detail describes the limiter's state for /readyz.
func (s *SharedLimiter) Detail() string {
	if s.healthy.Load() {
		return "shared (redis)"
	}
	return fmt.Sprintf("local (redis unreachable; each replica enforces %.0f%% of every tenant's limits)", s.cfg.Redis.LocalShare*100)
}

func (s *SharedLimiter) setHealthy(ok bool, err error) {
	if s.healthy.Swap(ok) == ok {
		return
	}
	if ok {
		s.log.Info("redis is reachable again; tenant limits are shared across replicas")
	} else {
		s.log.Warn("redis unreachable; enforcing per-replica limits", "share", s.cfg.Redis.LocalShare, "err", err)
	}
	s.onState(ok)
}

// loop refreshes this replica's leases and probes Redis while it is down.
func (s *SharedLimiter) loop() {
	beat := time.NewTicker(max(s.ttl/3, 100*time.Millisecond))
	defer beat.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-beat.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if !s.healthy.Load() {
			if err := s.rdb.Ping(ctx).Err(); err == nil {
				s.setHealthy(true, nil)
			}
			cancel()
			continue
		}
		byTenant := map[string][]any{}
		s.mu.Lock()
		for id, tenant := range s.leases {
			byTenant[tenant] = append(byTenant[tenant], id)
		}
		s.mu.Unlock()
		for tenant, ids := range byTenant {
			args := append([]any{s.ttl.Milliseconds()}, ids...)
			if err := refreshScript.Run(ctx, s.rdb, []string{"voicegw:calls:" + tenant}, args...).Err(); err != nil {
				s.setHealthy(false, err)
				break
			}
		}
		cancel()
	}
}

// Close stops the heartbeat and closes the Redis client. Leases not
// released expire within the lease TTL.
func (s *SharedLimiter) Close() error {
	var err error
	s.once.Do(func() {
		close(s.stop)
		s.wg.Wait()
		err = s.rdb.Close()
	})
	return err
}
