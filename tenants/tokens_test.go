package tenants

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const testKey = "ops-key-123"

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// idpKeys are an IdP's signing keys; their public halves go in keys_file.
type idpKeys struct {
	rsa  *rsa.PrivateKey
	ec   *ecdsa.PrivateKey
	ed   ed25519.PrivateKey
	file string
	pub  []byte // the RSA public key as PEM
}

func newIdPKeys(t *testing.T) *idpKeys {
	t.Helper()
	k := &idpKeys{}
	var err error
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	if _, k.ed, err = ed25519.GenerateKey(rand.Reader); err != nil {
		t.Fatal(err)
	}
	var buf []byte
	for _, pub := range []crypto.PublicKey{&k.rsa.PublicKey, &k.ec.PublicKey, k.ed.Public()} {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		block := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		if k.pub == nil {
			k.pub = block
		}
		buf = append(buf, block...)
	}
	k.file = filepath.Join(t.TempDir(), "idp.pem")
	if err := os.WriteFile(k.file, buf, 0o600); err != nil {
		t.Fatal(err)
	}
	return k
}

func testAuthority(t *testing.T, usOnly bool, idp *idpKeys) *Authority {
	t.Helper()
	t.Setenv("TOKKEY", strings.Repeat("s", 40))
	only := "false"
	if usOnly {
		only = "true"
	}
	idpYAML := ""
	if idp != nil {
		idpYAML = `, idp: {issuer: "https://idp.acme.example", audience: voicegw-acme, keys_file: "` + idp.file + `", algorithms: [RS256, ES256]}`
	}
	cfg, err := Parse("t.yaml", []byte(`
tokens: {signing_key: env:TOKKEY}
backends:
  - {name: a, role: asr, url: "http://127.0.0.1:1", region: r, impact_level: IL5}
  - {name: l, role: llm, url: "http://127.0.0.1:1", region: r, impact_level: IL5}
  - {name: s, role: tts, url: "http://127.0.0.1:1", region: r, impact_level: IL5}
tenants:
  - {id: acme, impact_level: IL5, regions: [r], asr: [a], llm: [l], tts: [s], us_person_only: `+only+`,
     api_keys: [{id: k, hash: "sha256:`+sha(testKey)+`"}], token_ttl: 5m`+idpYAML+`}
  - {id: beta, impact_level: IL2, regions: [r], asr: [a], llm: [l], tts: [s]}
`))
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewAuthority(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestMintAndAuthenticate(t *testing.T) {
	a := testAuthority(t, false, nil)
	tok, exp, err := a.Mint(testKey, MintRequest{Subject: "alice", USPerson: true, AttestedBy: "acme HR I-9"})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(exp); d < 4*time.Minute || d > 5*time.Minute {
		t.Errorf("expiry in %s, want the tenant's 5m", d)
	}
	p, err := a.Authenticate(tok)
	if err != nil || p != (Principal{Tenant: "acme", Subject: "alice", USPerson: true, AttestedBy: "acme HR I-9"}) {
		t.Fatalf("%+v %v", p, err)
	}
	_, exp, _ = a.Mint(testKey, MintRequest{Subject: "alice", TTL: time.Minute})
	if d := time.Until(exp); d > time.Minute {
		t.Errorf("a shorter TTL was not honoured: %s", d)
	}
	for name, req := range map[string]MintRequest{
		"no subject":                  {},
		"U.S. person without witness": {Subject: "x", USPerson: true},
		"control characters":          {Subject: "x\n{\"admin\":true}"},
		"huge subject":                {Subject: strings.Repeat("x", 300)},
	} {
		if _, _, err := a.Mint(testKey, req); !errors.Is(err, ErrUnauthorized) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, _, err := a.Mint("wrong-key", MintRequest{Subject: "x"}); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("wrong API key: %v", err)
	}
}

// TestRefusedTokens: expired, not yet valid, wrong audience or issuer, alg
// none, HS/RS confusion, tampered signature, and a foreign caller in
// U.S.-person-only mode are all refused; the reason is precise for the log
// and the error generic for the client.
func TestRefusedTokens(t *testing.T) {
	a := testAuthority(t, false, nil)
	good, _, _ := a.Mint(testKey, MintRequest{Subject: "bob"})
	base := callClaims{RegisteredClaims: jwt.RegisteredClaims{Issuer: "voicegw", Subject: "bob", Audience: jwt.ClaimStrings{tokenAudience},
		IssuedAt: jwt.NewNumericDate(time.Now()), ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Minute))}, Tenant: "acme"}
	sign := func(c callClaims, m jwt.SigningMethod, key any) string {
		s, err := jwt.NewWithClaims(m, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	with := func(f func(*callClaims)) string {
		c := base
		f(&c)
		return sign(c, jwt.SigningMethodHS256, a.key)
	}
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	pub, _ := x509.MarshalPKIXPublicKey(&rk.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})
	parts := strings.Split(good, ".")
	tamperedSig := parts[0] + "." + parts[1] + "." + strings.Map(func(r rune) rune {
		if r == 'A' {
			return 'B'
		}
		return 'A'
	}, parts[2][:4]) + parts[2][4:]
	cases := map[string]struct {
		tok    string
		reason string
	}{
		"expired":        {with(func(c *callClaims) { c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Minute)) }), "expired"},
		"not yet valid":  {with(func(c *callClaims) { c.NotBefore = jwt.NewNumericDate(time.Now().Add(time.Hour)) }), "not valid yet"},
		"no expiry":      {with(func(c *callClaims) { c.ExpiresAt = nil }), "exp claim is required"},
		"wrong audience": {with(func(c *callClaims) { c.Audience = jwt.ClaimStrings{"someone-else"} }), "audience"},
		"unknown tenant": {with(func(c *callClaims) { c.Tenant = "mallory" }), "unknown tenant"},
		// The tenant's token_ttl is 5m: a validly signed token cannot
		// live longer, nor be dated ahead to stretch its life.
		"no iat": {with(func(c *callClaims) { c.IssuedAt = nil }), "no iat"},
		"lives longer than token_ttl": {with(func(c *callClaims) {
			c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(time.Hour))
		}), "longer than the tenant's token_ttl 5m0s"},
		"issued in the future": {with(func(c *callClaims) {
			c.IssuedAt = jwt.NewNumericDate(time.Now().Add(2 * time.Minute))
			c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(3 * time.Minute))
		}), "in the future"},
		"unknown issuer":   {with(func(c *callClaims) { c.Issuer = "evil" }), "neither this gateway"},
		"forged US person": {with(func(c *callClaims) { c.USPerson = true }), "without attested_by"},
		"alg none":         {sign(base, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType), "signing method none is invalid"},
		// HS/RS confusion: an HS256 token whose HMAC key is the RSA public
		// key PEM, the bytes a careless RS256 verifier would hand HMAC.
		"HS256 keyed with an RSA public key": {sign(base, jwt.SigningMethodHS256, pubPEM), "signature is invalid"},
		"RS256":                              {sign(base, jwt.SigningMethodRS256, rk), "signing method RS256 is invalid"},
		"tampered claims":                    {parts[0] + "." + strings.TrimRight(parts[1], "=") + "x." + parts[2], "malformed"},
		"tampered signature":                 {tamperedSig, "signature is invalid"},
		"empty":                              {"", "no token"},
		"garbage":                            {"a.b.c", "malformed"},
		"huge":                               {strings.Repeat("a", 10000), "longer than"},
	}
	for name, c := range cases {
		_, err := a.Authenticate(c.tok)
		ae, ok := errors.AsType[*AuthError](err)
		if !errors.Is(err, ErrUnauthorized) || !ok || !strings.Contains(ae.Reason, c.reason) {
			t.Errorf("%s: %v, want ErrUnauthorized with reason containing %q", name, err, c.reason)
		}
	}
	us := testAuthority(t, true, nil)
	foreign, _, _ := us.Mint(testKey, MintRequest{Subject: "carol"})
	_, err := us.Authenticate(foreign)
	if ae, ok := errors.AsType[*AuthError](err); !errors.Is(err, ErrUSPersonRequired) || errors.Is(err, ErrUnauthorized) || !ok || !strings.Contains(ae.Reason, "carol") {
		t.Errorf("foreign caller in U.S.-person-only mode: %v", err)
	}
	attested, _, _ := us.Mint(testKey, MintRequest{Subject: "dave", USPerson: true, AttestedBy: "acme security office"})
	if _, err := us.Authenticate(attested); err != nil {
		t.Errorf("attested caller in U.S.-person-only mode: %v", err)
	}
}

func TestIdPTokens(t *testing.T) {
	k := newIdPKeys(t)
	a := testAuthority(t, true, k)
	now := time.Now()
	claims := func(f func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"iss": "https://idp.acme.example", "aud": []string{"voicegw-acme"}, "sub": "erin@acme.example",
			"exp": now.Add(time.Minute).Unix(), "us_person": true}
		if f != nil {
			f(c)
		}
		return c
	}
	sign := func(m jwt.SigningMethod, key any, c jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(m, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for name, tok := range map[string]string{
		"RS256": sign(jwt.SigningMethodRS256, k.rsa, claims(nil)),
		"ES256": sign(jwt.SigningMethodES256, k.ec, claims(nil)),
		"iat within the clock skew": sign(jwt.SigningMethodRS256, k.rsa, claims(func(c jwt.MapClaims) {
			c["iat"], c["exp"] = now.Add(10*time.Second).Unix(), now.Add(time.Minute).Unix()
		})),
	} {
		p, err := a.Authenticate(tok)
		if err != nil || p != (Principal{Tenant: "acme", Subject: "erin@acme.example", USPerson: true, AttestedBy: "idp:https://idp.acme.example"}) {
			t.Errorf("%s: %+v %v", name, p, err)
		}
	}
	otherRSA, _ := rsa.GenerateKey(rand.Reader, 2048)
	refused := map[string]string{
		"EdDSA, not in the tenant's algorithms":         sign(jwt.SigningMethodEdDSA, k.ed, claims(nil)),
		"HS256 keyed with the IdP's RSA public key PEM": sign(jwt.SigningMethodHS256, k.pub, claims(nil)),
		"alg none":       sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil)),
		"another key":    sign(jwt.SigningMethodRS256, otherRSA, claims(nil)),
		"expired":        sign(jwt.SigningMethodRS256, k.rsa, claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() })),
		"no expiry":      sign(jwt.SigningMethodRS256, k.rsa, claims(func(c jwt.MapClaims) { delete(c, "exp") })),
		"wrong audience": sign(jwt.SigningMethodRS256, k.rsa, claims(func(c jwt.MapClaims) { c["aud"] = "voicegw-beta" })),
		"no subject":     sign(jwt.SigningMethodRS256, k.rsa, claims(func(c jwt.MapClaims) { delete(c, "sub") })),
		// The tenant's token_ttl (5m) caps an IdP token's life too.
		"lives longer than token_ttl": sign(jwt.SigningMethodRS256, k.rsa, claims(func(c jwt.MapClaims) {
			c["iat"], c["exp"] = now.Unix(), now.Add(time.Hour).Unix()
		})),
		"no iat, expires after token_ttl": sign(jwt.SigningMethodRS256, k.rsa, claims(func(c jwt.MapClaims) { c["exp"] = now.Add(time.Hour).Unix() })),
		"issued in the future": sign(jwt.SigningMethodRS256, k.rsa, claims(func(c jwt.MapClaims) {
			c["iat"], c["exp"] = now.Add(2*time.Minute).Unix(), now.Add(3*time.Minute).Unix()
		})),
	}
	for name, tok := range refused {
		if _, err := a.Authenticate(tok); !errors.Is(err, ErrUnauthorized) {
			t.Errorf("%s: %v, want ErrUnauthorized", name, err)
		}
	}
	// Not attested by the IdP: refused on this U.S.-person-only tenant.
	for _, v := range []any{false, "true", nil} {
		tok := sign(jwt.SigningMethodRS256, k.rsa, claims(func(c jwt.MapClaims) { c["us_person"] = v }))
		if _, err := a.Authenticate(tok); !errors.Is(err, ErrUSPersonRequired) {
			t.Errorf("us_person %v: %v, want ErrUSPersonRequired", v, err)
		}
	}
	// Claims naming the other tenant do not move the caller there.
	tok := sign(jwt.SigningMethodRS256, k.rsa, claims(func(c jwt.MapClaims) { c["tenant"] = "beta" }))
	if p, err := a.Authenticate(tok); err != nil || p.Tenant != "acme" {
		t.Errorf("tenant claim: %+v %v", p, err)
	}
}

func TestNewAuthorityKeys(t *testing.T) {
	if _, err := NewAuthority(&Config{Tenants: []Tenant{{ID: "a", APIKeys: []APIKey{{ID: "k"}}}}}); !errors.Is(err, ErrNoSigningKey) {
		t.Errorf("API keys without a signing key: %v", err)
	}
	a, err := NewAuthority(&Config{Tenants: []Tenant{{ID: "a"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.mintFor(&Tenant{ID: "a", TokenTTL: Duration(time.Minute)}, MintRequest{Subject: "x"}); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("minting without a key: %v", err)
	}
}

func BenchmarkAuthenticate(b *testing.B) {
	b.Setenv("TOKKEY", strings.Repeat("s", 40))
	cfg, err := Parse("b.yaml", []byte(minimal+"tokens: {signing_key: env:TOKKEY}\n"))
	if err != nil {
		b.Fatal(err)
	}
	a, _ := NewAuthority(cfg)
	tok, _, err := a.mintFor(&cfg.Tenants[0], MintRequest{Subject: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Authenticate(tok); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDefaultParty: a caller without an attestation takes the tenant's
// default party; an attestation always wins; nothing else makes a U.S.
// person.
func TestDefaultParty(t *testing.T) {
	t.Setenv("TOKKEY", strings.Repeat("s", 40))
	cfg, err := Parse("t.yaml", []byte(`
tokens: {signing_key: env:TOKKEY}
backends:
  - {name: a, role: asr, url: "http://127.0.0.1:1", region: r, impact_level: IL5}
  - {name: l, role: llm, url: "http://127.0.0.1:1", region: r, impact_level: IL5}
  - {name: s, role: tts, url: "http://127.0.0.1:1", region: r, impact_level: IL5}
tenants:
  - {id: acme, impact_level: IL5, regions: [r], asr: [a], llm: [l], tts: [s]}
  - {id: beta, impact_level: IL5, regions: [r], asr: [a], llm: [l], tts: [s], pipeline: {default_party: foreign}}
`))
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewAuthority(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		p    Principal
		want string
	}{
		{Principal{Tenant: "acme"}, PartyUnknown},
		{Principal{Tenant: "beta"}, PartyForeign},
		{Principal{Tenant: "beta", USPerson: true, AttestedBy: "FSO"}, PartyUSPerson},
		{Principal{Tenant: "gone"}, PartyUnknown},
	} {
		if got := a.Party(c.p); got != c.want {
			t.Errorf("Party(%+v) = %s, want %s", c.p, got, c.want)
		}
	}
}
