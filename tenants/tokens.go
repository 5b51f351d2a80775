package tenants

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/golang-jwt/jwt/v5"
)

// Principal is who a call token says is calling.
type Principal struct {
	Tenant  string
	Subject string
	// USPerson is the attestation that the caller is a U.S. person
	// (22 CFR 120.62), vouched for by AttestedBy; false means foreign or
	// not attested.
	USPerson   bool
	AttestedBy string
}

// callClaims are the claims of a call token.
type callClaims struct {
	jwt.RegisteredClaims
	Tenant     string `json:"tenant"`
	USPerson   bool   `json:"us_person"`
	AttestedBy string `json:"attested_by,omitempty"`
}

// Call-token parameters.
const (
	// tokenAudience is the "aud" of call tokens: good for signaling only.
	tokenAudience = "voicegw/calls"
	// maxTokenBytes bounds a presented token.
	maxTokenBytes = 8 << 10
	// maxClaimBytes bounds subject and attested_by.
	maxClaimBytes = 256
	// idpLeeway is the clock skew allowed on an IdP's exp and nbf.
	idpLeeway = 30 * time.Second
	// maxClockSkew is how far in the future a token's iat may be: the
	// issuer's clock may run that much ahead of ours, no more.
	maxClockSkew = 30 * time.Second
)

// checkLifetime bounds a token's life by its tenant's token_ttl: exp − iat
// (exp − now when there is no iat and it is not required) must not exceed
// ttl, and iat must not be more than maxClockSkew ahead of now. A token
// minted with a longer life, or dated ahead to stretch it, is refused
// however it was signed.
func checkLifetime(now time.Time, ttl time.Duration, iat, exp *jwt.NumericDate, iatRequired bool) error {
	start := now
	switch {
	case iat == nil && iatRequired:
		return errors.New("no iat (issued at) claim")
	case iat != nil && iat.After(now.Add(maxClockSkew)):
		return fmt.Errorf("issued %s in the future (iat %s), beyond the %s clock skew allowed",
			iat.Sub(now).Round(time.Second), iat.UTC().Format(time.RFC3339), maxClockSkew)
	case iat != nil:
		start = iat.Time
	}
	if exp == nil {
		return errors.New("no exp claim")
	}
	if life := exp.Sub(start); life > ttl {
		return fmt.Errorf("lives %s (exp − iat), longer than the tenant's token_ttl %s", life.Round(time.Second), ttl)
	}
	return nil
}

// Authority mints and checks call tokens for the tenants of a config.
//
// Its own call tokens are HS256 JWTs signed with tokens.signing_key
// (audience "voicegw/calls", issuer tokens.issuer); a tenant with an idp
// section also accepts its IdP's JWTs, verified with the IdP's public keys
// and algorithms. Either way the algorithm is pinned before the signature
// is checked, expiry is required, and not-before, issuer and audience are
// checked. It is safe for concurrent use.
type Authority struct {
	cfg  *Config
	key  []byte
	now  func() time.Time
	idps map[string][]*Tenant // IdP issuer → tenants trusting it
}

// NewAuthority returns the token authority for cfg (from Load or Parse).
// It fails with ErrNoSigningKey when tenants have API keys but
// tokens.signing_key is missing or shorter than 32 bytes.
func NewAuthority(cfg *Config) (*Authority, error) {
	key := []byte(cfg.Tokens.SigningKey.Value())
	needKey := slices.ContainsFunc(cfg.Tenants, func(t Tenant) bool { return len(t.APIKeys) > 0 })
	if len(key) > 0 && len(key) < 32 || len(key) == 0 && needKey {
		return nil, ErrNoSigningKey
	}
	a := &Authority{cfg: cfg, key: key, now: time.Now, idps: map[string][]*Tenant{}}
	for i := range cfg.Tenants {
		if d := cfg.Tenants[i].IdP; d != nil {
			a.idps[d.Issuer] = append(a.idps[d.Issuer], &cfg.Tenants[i])
		}
	}
	return a, nil
}

// Party is the classifier party of an authenticated principal: us-person
// when attested, else its tenant's default party.
func (a *Authority) Party(p Principal) string {
	if t := a.cfg.Tenant(p.Tenant); t != nil {
		return t.Party(p)
	}
	if p.USPerson {
		return PartyUSPerson
	}
	return PartyUnknown
}

// MintRequest is what an API-key holder asks a token for.
type MintRequest struct {
	// Subject identifies the caller to the tenant (required, ≤ 256 bytes).
	Subject string
	// USPerson is the tenant's attestation that the caller is a U.S.
	// person; it requires AttestedBy (who vouches: a person, a system,
	// a record).
	USPerson   bool
	AttestedBy string
	// TTL shortens the token's life below the tenant's token_ttl.
	TTL time.Duration
}

// TenantForKey finds the tenant owning apiKey. Every stored hash is
// compared in constant time, so timing does not tell which tenant or key
// came close.
func (a *Authority) TenantForKey(apiKey string) (*Tenant, error) {
	if apiKey == "" {
		return nil, refuse("no API key")
	}
	sum := sha256.Sum256([]byte(apiKey))
	var want [7 + 64]byte
	copy(want[:], "sha256:")
	hex.Encode(want[7:], sum[:])
	var found *Tenant
	for i := range a.cfg.Tenants {
		for _, k := range a.cfg.Tenants[i].APIKeys {
			if subtle.ConstantTimeCompare([]byte(k.Hash), want[:]) == 1 && found == nil {
				found = &a.cfg.Tenants[i]
			}
		}
	}
	if found == nil {
		return nil, refuse("API key matches no tenant")
	}
	return found, nil
}

// Mint issues a call token for the tenant owning apiKey. Refusals are
// *AuthError wrapping ErrUnauthorized.
func (a *Authority) Mint(apiKey string, req MintRequest) (token string, expires time.Time, err error) {
	t, err := a.TenantForKey(apiKey)
	if err != nil {
		return "", time.Time{}, err
	}
	return a.mintFor(t, req)
}

func (a *Authority) mintFor(t *Tenant, req MintRequest) (string, time.Time, error) {
	if len(a.key) == 0 {
		return "", time.Time{}, refuse("call tokens are not enabled (no tokens.signing_key)")
	}
	if err := claimText("subject", req.Subject, true); err != nil {
		return "", time.Time{}, err
	}
	if err := claimText("attested_by", req.AttestedBy, req.USPerson); err != nil {
		return "", time.Time{}, err
	}
	ttl := time.Duration(t.TokenTTL)
	if req.TTL > 0 && req.TTL < ttl {
		ttl = req.TTL
	}
	now := a.now()
	exp := now.Add(ttl).Truncate(time.Second)
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

// claimText checks a free-text claim: present when required, bounded, and
// printable.
func claimText(name, v string, required bool) error {
	switch {
	case strings.TrimSpace(v) == "":
		if required {
			if name == "attested_by" {
				return refuse("a U.S.-person attestation needs attested_by")
			}
			return refuse("%s is required", name)
		}
	case len(v) > maxClaimBytes:
		return refuse("%s is longer than %d bytes", name, maxClaimBytes)
	case strings.ContainsFunc(v, unicode.IsControl):
		return refuse("%s holds control characters", name)
	}
	return nil
}

// Authenticate checks a call token (ours, or a tenant IdP's JWT) and the
// tenant's admission rules. A refused token is an *AuthError wrapping
// ErrUnauthorized; a caller not attested as a U.S. person on a
// U.S.-person-only tenant is an *AuthError wrapping ErrUSPersonRequired.
// Tell the client only which of the two; log the error.
func (a *Authority) Authenticate(token string) (Principal, error) {
	switch {
	case token == "":
		return Principal{}, refuse("no token")
	case len(token) > maxTokenBytes:
		return Principal{}, refuse("token longer than %d bytes", maxTokenBytes)
	}
	// The issuer only picks which verifier runs; nothing is trusted before
	// that verifier checks the signature with its pinned algorithms.
	var peek jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(token, &peek); err != nil {
		return Principal{}, refuse("malformed token: %v", err)
	}
	var (
		p   Principal
		t   *Tenant
		err error
	)
	switch ts := a.idps[peek.Issuer]; {
	case peek.Issuer == a.cfg.Tokens.Issuer:
		p, t, err = a.callToken(token)
	case len(ts) > 0:
		p, t, err = a.idpToken(token, peek, ts)
	default:
		return Principal{}, refuse("issuer %q is neither this gateway nor a tenant's IdP", peek.Issuer)
	}
	if err != nil {
		return Principal{}, err
	}
	return p, a.admit(t, p)
}

// admit applies the tenant's admission rules to an authenticated caller.
func (a *Authority) admit(t *Tenant, p Principal) error {
	if t.USPersonOnly && !p.USPerson {
		return &AuthError{Reason: fmt.Sprintf("tenant %q is U.S.-person-only and subject %q is not attested", t.ID, p.Subject), Err: ErrUSPersonRequired}
	}
	return nil
}

func (a *Authority) callToken(token string) (Principal, *Tenant, error) {
	if len(a.key) == 0 {
		return Principal{}, nil, refuse("call tokens are not enabled (no tokens.signing_key)")
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
		return Principal{}, nil, refuse("call token: %v", err)
	}
	t := a.cfg.Tenant(c.Tenant)
	if t == nil {
		return Principal{}, nil, refuse("call token names unknown tenant %q", c.Tenant)
	}
	if err := checkLifetime(a.now(), time.Duration(t.TokenTTL), c.IssuedAt, c.ExpiresAt, true); err != nil {
		return Principal{}, nil, refuse("call token: %v", err)
	}
	if c.USPerson && c.AttestedBy == "" {
		return Principal{}, nil, refuse("call token attests a U.S. person without attested_by")
	}
	return Principal{Tenant: t.ID, Subject: c.Subject, USPerson: c.USPerson, AttestedBy: c.AttestedBy}, t, nil
}

// idpToken verifies a tenant IdP's JWT. Of the tenants trusting the
// issuer, the one whose audience the token names is chosen; its keys
// verify only the algorithms it lists.
func (a *Authority) idpToken(token string, peek jwt.RegisteredClaims, ts []*Tenant) (Principal, *Tenant, error) {
	var t *Tenant
	for _, c := range ts {
		if slices.Contains(peek.Audience, c.IdP.Audience) {
			t = c
			break
		}
	}
	if t == nil {
		return Principal{}, nil, refuse("IdP token from %q names no audience a tenant expects", peek.Issuer)
	}
	d := t.IdP
	claims, err := d.verify(token, a.now)
	if err != nil {
		return Principal{}, nil, refuse("IdP token for tenant %q: %v", t.ID, err)
	}
	iat, _ := claims.GetIssuedAt()
	exp, _ := claims.GetExpirationTime()
	if err := checkLifetime(a.now(), time.Duration(t.TokenTTL), iat, exp, false); err != nil {
		return Principal{}, nil, refuse("IdP token for tenant %q: %v", t.ID, err)
	}
	sub, _ := claims.GetSubject()
	if err := claimText("subject", sub, true); err != nil {
		return Principal{}, nil, refuse("IdP token for tenant %q: %v", t.ID, err)
	}
	p := Principal{Tenant: t.ID, Subject: sub}
	if v, ok := claims[d.USPersonClaim].(bool); ok && v {
		p.USPerson, p.AttestedBy = true, "idp:"+d.Issuer
	}
	return p, t, nil
}
