package tenants

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Redis keys, per tenant. The {tenant} hash tag keeps a tenant's keys in
// one cluster slot, so one script may touch them all.
func rateKey(tenant string) string  { return "voicegw:{" + tenant + "}:rate" }
func callsKey(tenant string) string { return "voicegw:{" + tenant + "}:calls" }
func llmKey(tenant string) string   { return "voicegw:{" + tenant + "}:llm" }

// gcra is the generic cell rate algorithm over a theoretical arrival time
// (TAT) kept at KEYS[1], in microseconds of Redis's own clock (so replica
// clocks do not matter). A request of n cells at an emission interval of
// T µs is allowed while TAT + n·T − now ≤ burst·T; otherwise the caller may
// retry after the excess. Lua numbers are doubles: µs since 1970 fit
// exactly, and every number sent back to Redis is formatted with %.0f,
// since Redis would otherwise print it with 14 significant digits.
const gcra = `
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function fmt(x) return string.format('%.0f', x) end
-- returns 0 when allowed (and records it), else µs until it would be
local function gcra(key, now, interval, burst, n)
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  local new = tat + n * interval
  local over = new - now - burst * interval
  if over > 0 then return over end
  redis.call('SET', key, fmt(new), 'PX', fmt(math.ceil((new - now) / 1000) + 1000))
  return 0
end
`

// admitScript admits one call for a tenant across every replica,
// atomically: expired leases are dropped, the concurrency limit is checked,
// then the call rate, and only then is the lease added, scored with its
// expiry. A refusal uses up nothing.
//
// KEYS: rate, calls. ARGV: interval µs, burst, max concurrent, lease ttl µs,
// lease id. Returns {1, 0, ”} or {0, retry µs, reason}.
var admitScript = redis.NewScript(gcra + `
local now = now_us()
local maxc = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', fmt(now))
if redis.call('ZCARD', KEYS[2]) >= maxc then
  return {0, 1000000, 'concurrent_calls'}
end
local over = gcra(KEYS[1], now, tonumber(ARGV[1]), tonumber(ARGV[2]), 1)
if over > 0 then return {0, math.ceil(over), 'call_rate'} end
redis.call('ZADD', KEYS[2], fmt(now + ttl), ARGV[5])
redis.call('PEXPIRE', KEYS[2], fmt(math.ceil(ttl / 1000) * 2))
return {1, 0, ''}
`)

// llmScript spends n LLM tokens of a tenant's per-minute budget.
// KEYS: llm. ARGV: interval µs per token, burst (tokens per minute), n.
// Returns 0 or µs until allowed.
var llmScript = redis.NewScript(gcra + `
local over = gcra(KEYS[1], now_us(), tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))
return math.ceil(over)
`)

// heartbeatScript (re)registers a replica's leases with a fresh expiry.
// Adding rather than only refreshing re-creates leases Redis lost (a
// restart) and adopts calls admitted locally during an outage.
// KEYS: calls. ARGV: ttl µs, lease ids.
var heartbeatScript = redis.NewScript(gcra + `
local now = now_us()
local ttl = tonumber(ARGV[1])
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], fmt(now + ttl), ARGV[i])
end
redis.call('PEXPIRE', KEYS[1], fmt(math.ceil(ttl / 1000) * 2))
return 1
`)

// SharedLimiter enforces each tenant's call rate (GCRA), concurrent calls
// (leases) and LLM tokens per minute (GCRA) across all replicas through
// Redis, each decision one atomic script on Redis's clock.
//
// Concurrency leases live in a sorted set per tenant, scored by expiry; a
// heartbeat re-adds this replica's leases every min(lease_ttl/3, 1s), so
// the slots of a crashed replica come back within lease_ttl.
//
// When Redis does not answer, it falls back to per-replica limits
// (local_share of each tenant's limits, counting the calls this replica
// already carries), logs the change once, reports it through Healthy,
// Detail and the state hook, probes Redis at the heartbeat interval, and
// returns to shared limits when Redis answers; calls admitted meanwhile
// are then registered in Redis. It is safe for concurrent use.
type SharedLimiter struct {
	cfg     *Config
	rdb     *redis.Client
	local   *Limiter // the fallback, and this replica's call counts
	ttl     time.Duration
	every   time.Duration
	log     *slog.Logger
	onState func(shared bool)

	healthy atomic.Bool

	mu     sync.Mutex
	leases map[string]string // lease id → tenant, for the heartbeat

	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// NewSharedLimiter returns limits shared through cfg.Redis (ErrNoRedis
// without it). It does not wait for Redis: an unreachable Redis means
// local limits until it answers. log may be nil; onState, when set, is
// called on every change between shared (true) and local (false).
// Options may add a clock for the fallback (WithClock).
func NewSharedLimiter(cfg *Config, log *slog.Logger, onState func(shared bool), opts ...Option) (*SharedLimiter, error) {
	if cfg.Redis == nil {
		return nil, ErrNoRedis
	}
	opt, err := redis.ParseURL(cfg.Redis.URL)
	if err != nil {
		return nil, fmt.Errorf("redis.url: %w", err)
	}
	if p := cfg.Redis.Password.Value(); p != "" {
		opt.Password = p
	}
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = time.Second, 500*time.Millisecond, 500*time.Millisecond
	// One attempt per decision: a retry would only delay the fallback.
	opt.MaxRetries, opt.DialerRetries = -1, 1
	opt.ContextTimeoutEnabled = true
	opt.DisableIdentity = true
	opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	if log != nil {
		opts = append(opts, WithLogger(log))
	}
	if onState != nil {
		opts = append(opts, WithStateHook(onState))
	}
	o := buildOptions(opts)
	ttl := time.Duration(cfg.Redis.LeaseTTL)
	if ttl <= 0 {
		ttl = 15 * time.Second
	}
	share := cfg.Redis.LocalShare
	if share <= 0 || share > 1 {
		share = 0.5
	}
	s := &SharedLimiter{
		cfg:     cfg,
		rdb:     redis.NewClient(opt),
		local:   NewLimiter(scaled(cfg, share), WithClock(o.now)),
		ttl:     ttl,
		every:   min(ttl/3, time.Second),
		log:     o.log,
		onState: o.onState,
		leases:  map[string]string{},
		stop:    make(chan struct{}),
	}
	s.healthy.Store(true)
	s.wg.Go(s.loop)
	return s, nil
}

func newLeaseID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func us(d time.Duration) int64 { return d.Microseconds() }

// AdmitCall admits a call for tenant across every replica and returns its
// lease, or a *LimitError (ReasonConcurrentCalls or ReasonCallRate) when
// the tenant is over a limit. While Redis is unreachable it admits under
// local limits instead; it fails otherwise only for an unknown tenant or a
// done ctx.
func (s *SharedLimiter) AdmitCall(ctx context.Context, tenant string) (*Lease, error) {
	t := s.cfg.Tenant(tenant)
	lt := s.local.tenants[tenant]
	if t == nil || lt == nil {
		return nil, unknownTenant(tenant)
	}
	id := newLeaseID()
	if s.healthy.Load() {
		interval := time.Duration(float64(time.Second) / t.Limits.CallsPerSecond)
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		res, err := admitScript.Run(rctx, s.rdb, []string{rateKey(tenant), callsKey(tenant)},
			max(us(interval), 1), t.Limits.Burst, t.Limits.MaxConcurrentCalls, us(s.ttl), id).Slice()
		cancel()
		switch {
		case err == nil:
			if admitted, _ := res[0].(int64); admitted != 1 {
				retry, _ := res[1].(int64)
				reason, _ := res[2].(string)
				return nil, &LimitError{Tenant: tenant, Reason: reason, RetryAfter: ceilMs(time.Duration(retry) * time.Microsecond)}
			}
			lt.track()
			return s.lease(id, tenant, lt), nil
		case ctx.Err() != nil:
			return nil, ctx.Err()
		default:
			s.setHealthy(false, err)
		}
	}
	if err := lt.admit(s.local.now()); err != nil {
		return nil, err
	}
	return s.lease(id, tenant, lt), nil
}

// lease records an admitted call for the heartbeat and returns its lease.
func (s *SharedLimiter) lease(id, tenant string, lt *tenantLimits) *Lease {
	s.mu.Lock()
	s.leases[id] = tenant
	s.mu.Unlock()
	return &Lease{release: func() {
		s.mu.Lock()
		delete(s.leases, id)
		s.mu.Unlock()
		lt.done()
		if !s.healthy.Load() {
			return // not refreshed any more, it expires on its own
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := s.rdb.ZRem(ctx, callsKey(tenant), id).Err(); err != nil {
			s.setHealthy(false, err)
		}
	}}
}

// AllowLLMTokens reports whether tenant may spend n more LLM tokens now,
// counted across every replica, and if not when it may (see
// Limiter.AllowLLMTokens). While Redis is unreachable it uses the local
// share.
func (s *SharedLimiter) AllowLLMTokens(ctx context.Context, tenant string, n int) (bool, time.Duration) {
	t := s.cfg.Tenant(tenant)
	if t == nil {
		return false, time.Minute
	}
	if s.healthy.Load() {
		perMin := t.Limits.LLMTokensPerMinute
		interval := max(us(time.Minute)/int64(perMin), 1)
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		retry, err := llmScript.Run(rctx, s.rdb, []string{llmKey(tenant)}, interval, perMin, min(max(n, 1), perMin)).Int64()
		cancel()
		switch {
		case err == nil:
			if retry > 0 {
				return false, ceilMs(time.Duration(retry) * time.Microsecond)
			}
			return true, 0
		case ctx.Err() != nil:
			return false, time.Second
		default:
			s.setHealthy(false, err)
		}
	}
	return s.local.AllowLLMTokens(ctx, tenant, n)
}

// Active is the tenant's calls in progress on this replica.
func (s *SharedLimiter) Active(tenant string) int { return s.local.Active(tenant) }

// Healthy reports whether limits are shared through Redis (false: this
// replica is enforcing its local share).
func (s *SharedLimiter) Healthy() bool { return s.healthy.Load() }

// Detail describes the limits for /readyz.
func (s *SharedLimiter) Detail() string {
	if s.healthy.Load() {
		return "shared across replicas (redis)"
	}
	return fmt.Sprintf("local: redis unreachable, this replica enforces %.0f%% of each tenant's limits", s.cfg.Redis.LocalShare*100)
}

func (s *SharedLimiter) setHealthy(ok bool, err error) {
	if s.healthy.Swap(ok) == ok {
		return
	}
	if ok {
		s.log.Info("redis answers again; tenant limits are shared across replicas")
	} else {
		s.log.Warn("redis unreachable; enforcing per-replica limits", "local_share", s.cfg.Redis.LocalShare, "err", err)
	}
	s.onState(ok)
}

// loop probes Redis, and heartbeats this replica's leases, until Close.
func (s *SharedLimiter) loop() {
	tick := time.NewTicker(s.every)
	defer tick.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	if !s.reachable(ctx) {
		s.setHealthy(false, errUnreachable)
	}
	cancel()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if !s.healthy.Load() && s.reachable(ctx) {
			if err := s.rdb.Ping(ctx).Err(); err == nil {
				s.setHealthy(true, nil)
			}
		}
		if s.healthy.Load() {
			if err := s.heartbeat(ctx); err != nil {
				s.setHealthy(false, err)
			}
		}
		cancel()
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
	}
}

// reachable dials Redis's address before the client does, so an outage
// is probed quietly (the client logs every failed dial).
func (s *SharedLimiter) reachable(ctx context.Context) bool {
	o := s.rdb.Options()
	c, err := (&net.Dialer{}).DialContext(ctx, o.Network, o.Addr)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// heartbeat re-adds every lease this replica holds with a fresh expiry.
// A lease released while its heartbeat was in flight is removed again, so
// the heartbeat never resurrects a finished call.
func (s *SharedLimiter) heartbeat(ctx context.Context) error {
	byTenant := map[string][]any{}
	s.mu.Lock()
	for id, tenant := range s.leases {
		byTenant[tenant] = append(byTenant[tenant], id)
	}
	s.mu.Unlock()
	var errs []error
	for tenant, ids := range byTenant {
		args := append([]any{us(s.ttl)}, ids...)
		if err := heartbeatScript.Run(ctx, s.rdb, []string{callsKey(tenant)}, args...).Err(); err != nil {
			return err
		}
		var gone []any
		s.mu.Lock()
		for _, id := range ids {
			if _, ok := s.leases[id.(string)]; !ok {
				gone = append(gone, id)
			}
		}
		s.mu.Unlock()
		if len(gone) > 0 {
			errs = append(errs, s.rdb.ZRem(ctx, callsKey(tenant), gone...).Err())
		}
	}
	return errors.Join(errs...)
}

// Close stops the heartbeat, removes the leases this replica still holds
// from Redis (best effort), and closes the Redis client. Calls after the
// first return net.ErrClosed.
func (s *SharedLimiter) Close() error {
	err := net.ErrClosed
	s.once.Do(func() {
		close(s.stop)
		s.wg.Wait()
		if s.healthy.Load() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			s.mu.Lock()
			for id, tenant := range s.leases {
				_ = s.rdb.ZRem(ctx, callsKey(tenant), id).Err()
			}
			s.mu.Unlock()
			cancel()
		}
		err = s.rdb.Close()
	})
	return err
}
