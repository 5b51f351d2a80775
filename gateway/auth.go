package gateway

import (
	"context"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/voicegw/voicegw/tenants"
)

// Caller is who a signaling token says is calling.
type Caller struct {
	Tenant  string
	Subject string
	// USPerson is the tenant's attestation that the caller is a U.S. person
	// (22 CFR 120.62); false means foreign or unknown.
	USPerson bool
	// AttestedBy names who vouched for USPerson.
	AttestedBy string
	// Party is the classifier party of a caller not attested as a U.S.
	// person: "unknown" (the default) or "foreign" (the tenant's
	// pipeline.default_party). It never makes a caller a U.S. person.
	Party string
}

// Authenticator checks a signaling token. Implemented by StaticTokens (dev
// mode) and by the tenants package.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (Caller, error)
}

// StaticTokens is a fixed token → caller table, for dev mode and tests.
// Tokens are compared in constant time.
type StaticTokens map[string]Caller

// Authenticate implements Authenticator.
func (s StaticTokens) Authenticate(_ context.Context, token string) (Caller, error) {
	if token == "" {
		return Caller{}, errUnauthorized
	}
	for k, c := range s {
		if subtle.ConstantTimeCompare([]byte(k), []byte(token)) == 1 {
			return c, nil
		}
	}
	return Caller{}, errUnauthorized
}

// tokenFrom takes the call token from the "token" query parameter or an
// "Authorization: Bearer" header.
func tokenFrom(r *http.Request) string {
	if t := r.URL.Query().Get("token"); t != "" {
		return t
	}
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

var _ Authenticator = StaticTokens(nil)

// TokenAuth checks call tokens minted by a tenants.Authority (POST
// /v1/tokens).
type TokenAuth struct {
	Authority *tenants.Authority
}

// Authenticate implements Authenticator.
func (a TokenAuth) Authenticate(_ context.Context, token string) (Caller, error) {
	p, err := a.Authority.Authenticate(token)
	if err != nil {
		return Caller{}, err
	}
	return Caller{Tenant: p.Tenant, Subject: p.Subject, USPerson: p.USPerson, AttestedBy: p.AttestedBy, Party: a.Authority.Party(p)}, nil
}

var _ Authenticator = TokenAuth{}
