package tenants

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Match them with errors.Is; the typed errors below wrap
// them and carry the detail.
var (
	// ErrUnauthorized is every refused credential: a missing, malformed,
	// expired or forged token, or an unknown API key. Callers are told
	// only this; AuthError.Reason holds the precise cause for the log.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrUSPersonRequired refuses a caller who is not attested as a U.S.
	// person on a U.S.-person-only tenant. The gateway maps it to the
	// signaling error code "us_person_required".
	ErrUSPersonRequired = errors.New("tenant accepts only callers attested as U.S. persons")
	// ErrUnknownTenant is a tenant id that is not in the config.
	ErrUnknownTenant = errors.New("unknown tenant")
	// ErrNoRedis is NewSharedLimiter on a config without a redis section.
	ErrNoRedis = errors.New("redis is not configured")
	// ErrNoSigningKey is a token authority without a usable signing key.
	ErrNoSigningKey = errors.New("tokens.signing_key: at least 32 bytes are required")
	// errUnreachable is a Redis address that does not accept connections.
	errUnreachable = errors.New("redis does not accept connections")
	// errSecretRef is a secret written inline instead of as a reference.
	errSecretRef = errors.New("must be a reference, env:NAME or file:/path (the value itself never goes in the config)")
)

// AuthError is a refused credential with the precise reason for the log.
// Its Error text includes the reason, so log it; send the client only the
// generic code (errors.Is(err, ErrUnauthorized) or ErrUSPersonRequired).
type AuthError struct {
	Reason string
	Err    error // ErrUnauthorized or ErrUSPersonRequired
}

func (e *AuthError) Error() string { return e.Err.Error() + ": " + e.Reason }

// Unwrap returns ErrUnauthorized or ErrUSPersonRequired.
func (e *AuthError) Unwrap() error { return e.Err }

func refuse(reason string, a ...any) error {
	return &AuthError{Reason: fmt.Sprintf(reason, a...), Err: ErrUnauthorized}
}

// Reasons a LimitError gives.
const (
	ReasonCallRate        = "call_rate"
	ReasonConcurrentCalls = "concurrent_calls"
	ReasonTokenRate       = "token_rate"
	ReasonLLMTokens       = "llm_tokens"
)

// LimitError is an attempt over one of a tenant's limits. The gateway
// answers it with code "rate_limited" and RetryAfter (or HTTP 429 with
// Retry-After).
type LimitError struct {
	Tenant     string
	Reason     string        // ReasonCallRate, ReasonConcurrentCalls, …
	RetryAfter time.Duration // when trying again may succeed; always > 0
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("tenant %q over its %s limit; retry after %s", e.Tenant, e.Reason, e.RetryAfter)
}
