package tenants

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Principal is who a call token says is calling.
type Principal struct {
	Tenant     string
	Subject    string
	USPerson   bool
	AttestedBy string
}

// Errors from authentication. The gateway tells callers only "unauthorized"
// (or "us_person_required"); AuthError.Reason is for the log.
var (
	ErrUnauthorized     = errors.New("unauthorized")
	ErrUSPersonRequired = errors.New("tenant accepts only callers attested as U.S. persons")
)

// AuthError is a refused credential with the precise reason for the log.
type AuthError struct {
	Reason string
	Err    error // ErrUnauthorized or ErrUSPersonRequired
}

func (e *AuthError) Error() string { return e.Err.Error() + ": " + e.Reason }
func (e *AuthError) Unwrap() error { return e.Err }

func refuse(reason string, a ...any) error {
	return &AuthError{Reason: fmt.Sprintf(reason, a...), Err: ErrUnauthorized}
}

// callClaims are the claims of a call token.
type callClaims struct {
	jwt.RegisteredClaims
	Tenant     string `json:"tenant"`
	USPerson   bool   `json:"us_person"`
	AttestedBy string `json:"attested_by,omitempty"`
}

// tokenAudience is the "aud" of call tokens: they are good for signaling only.
const tokenAudience = "voicegw/calls"

// Authority mints and checks call tokens for the tenants of a config. Call
// tokens are HS256 JWTs signed with tokens.signing_key; the algorithm is
// pinned, and expiry, not-before, issuer and audience are checked.
type Authority struct {
	cfg *Config
	key []byte
	now func() time.Time
}

// NewAuthority returns the token authority for cfg.
func NewAuthority(cfg *Config) (*Authority, error) {
	key := []byte(cfg.Tokens.SigningKey.Value())
	if len(key) < 32 {
		return nil, errors.New("tokens.signing_key: at least 32 bytes are required")
	}
	return &Authority{cfg: cfg, key: key, now: time.Now}, nil
}

// MintRequest is what an API-key holder asks a token for.
type MintRequest struct {
	Subject    string
	USPerson   bool
	AttestedBy string
	TTL        time.Duration // capped by the tenant's token_ttl
}

// TenantForKey finds the tenant whose API key this is (constant-time
// comparison of SHA-256 hashes).
func (a *Authority) TenantForKey(apiKey string) (*Tenant, error) {
	if apiKey == "" {
		return nil, refuse("no API key")
	}
	sum := sha256.Sum256([]byte(apiKey))
	got := "sha256:" + hex.EncodeToString(sum[:])
	var found *Tenant
	for i := range a.cfg.Tenants {
		for _, k := range a.cfg.Tenants[i].APIKeys {
			if subtle.ConstantTimeCompare([]byte(k.Hash), []byte(got)) == 1 && found == nil {
				found = &a.cfg.Tenants[i]
			}
		}
	}
	if found == nil {
		return nil, refuse("API key matches no tenant")
	}
	return found, nil
}

// Mint issues a call token for the tenant owning apiKey.
func (a *Authority) Mint(apiKey string, req MintRequest) (string, time.Time, error) {
	t, err := a.TenantForKey(apiKey)
	if err != nil {
		return "", time.Time{}, err
	}
	if strings.TrimSpace(req.Subject) == "" {
		return "", time.Time{}, refuse("token request has no subject")
	}
	if req.USPerson && strings.TrimSpace(req.AttestedBy) == "" {
		return "", time.Time{}, refuse("a U.S.-person attestation needs attested_by")
	}
	ttl := time.Duration(t.TokenTTL)
	if req.TTL > 0 && req.TTL < ttl {
		ttl = req.TTL
	}
	now := a.now()
	exp := now.Add(ttl)
	claims := callClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    a.cfg.Tokens.Issuer,
			Subject:   req.Subject,
			Audience:  jwt.ClaimStrings{tokenAudience},
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now.Add(-5 * time.Second)),
			ExpiresAt: jwt.NewNumericDate(exp),
		},
		Tenant:     t.ID,
		USPerson:   req.USPerson,
		AttestedBy: req.AttestedBy,
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(a.key)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign call token: %w", err)
	}
	return s, exp, nil
}

// Authenticate checks a call token and the tenant's admission rules.
func (a *Authority) Authenticate(token string) (Principal, error) {
	if token == "" {
		return Principal{}, refuse("no token")
	}
	var c callClaims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return a.key, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithAudience(tokenAudience),
		jwt.WithIssuer(a.cfg.Tokens.Issuer),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(a.now),
	)
	if err != nil {
		return Principal{}, refuse("call token: %v", err)
	}
	t := a.cfg.Tenant(c.Tenant)
	if t == nil {
		return Principal{}, refuse("token names unknown tenant %q", c.Tenant)
	}
	p := Principal{Tenant: t.ID, Subject: c.Subject, USPerson: c.USPerson, AttestedBy: c.AttestedBy}
	if t.USPersonOnly && !p.USPerson {
		return Principal{}, &AuthError{Reason: fmt.Sprintf("tenant %q is U.S.-person-only and subject %q is not attested", t.ID, p.Subject), Err: ErrUSPersonRequired}
	}
	return p, nil
}
