package tenants

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const testKey = "ops-key-123"

func testAuthority(t *testing.T, usOnly bool) *Authority {
	t.Helper()
	t.Setenv("TOKKEY", strings.Repeat("s", 40))
	only := "false"
	if usOnly {
		only = "true"
	}
	cfg, err := Parse("t.yaml", []byte(`
tokens: {signing_key: env:TOKKEY}
backends:
  - {name: a, role: asr, url: "http://127.0.0.1:1", region: r, impact_level: IL5}
  - {name: l, role: llm, url: "http://127.0.0.1:1", region: r, impact_level: IL5}
  - {name: s, role: tts, url: "http://127.0.0.1:1", region: r, impact_level: IL5}
tenants:
  - {id: acme, impact_level: IL5, regions: [r], asr: [a], llm: [l], tts: [s], us_person_only: `+only+`,
     api_keys: [{id: k, hash: "sha256:`+sha(testKey)+`"}], token_ttl: 5m}
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

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestMintAndAuthenticate(t *testing.T) {
	a := testAuthority(t, false)
	tok, exp, err := a.Mint(testKey, MintRequest{Subject: "alice", USPerson: true, AttestedBy: "acme HR I-9"})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(exp); d < 4*time.Minute || d > 5*time.Minute {
		t.Errorf("expiry in %s, want the tenant's 5m", d)
	}
	p, err := a.Authenticate(tok)
	if err != nil || p.Tenant != "acme" || p.Subject != "alice" || !p.USPerson || p.AttestedBy != "acme HR I-9" {
		t.Fatalf("%+v %v", p, err)
	}
	if _, _, err := a.Mint("wrong-key", MintRequest{Subject: "x"}); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("wrong API key: %v", err)
	}
}

// TestRefusedTokens: expired, wrong audience, alg none, HS/RS confusion,
// tampered signature, and a foreign caller in U.S.-person-only mode.
func TestRefusedTokens(t *testing.T) {
	a := testAuthority(t, false)
	good, _, _ := a.Mint(testKey, MintRequest{Subject: "bob"})
	base := callClaims{RegisteredClaims: jwt.RegisteredClaims{Issuer: "voicegw", Subject: "bob", Audience: jwt.ClaimStrings{tokenAudience},
		ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Minute))}, Tenant: "acme"}
	sign := func(c callClaims, m jwt.SigningMethod, key any) string {
		s, err := jwt.NewWithClaims(m, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	expired := base
	expired.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Minute))
	wrongAud := base
	wrongAud.Audience = jwt.ClaimStrings{"someone-else"}
	none := sign(base, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType)
	// HS/RS confusion: an RS256-expecting verifier fed an HS256 token signed
	// with the public key bytes; ours pins HS256, and the RS-signed token is
	// refused for its algorithm.
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	pub, _ := x509.MarshalPKIXPublicKey(&rk.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})
	hsWithPub := sign(base, jwt.SigningMethodHS256, pubPEM)
	rs := sign(base, jwt.SigningMethodRS256, rk)
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + strings.TrimRight(parts[1], "=") + "x." + parts[2]
	for name, tok := range map[string]string{
		"expired": sign(expired, jwt.SigningMethodHS256, a.key), "wrong audience": sign(wrongAud, jwt.SigningMethodHS256, a.key),
		"alg none": none, "HS256 with the RSA public key": hsWithPub, "RS256": rs, "tampered": tampered, "empty": "", "garbage": "a.b.c",
	} {
		if _, err := a.Authenticate(tok); !errors.Is(err, ErrUnauthorized) {
			t.Errorf("%s: %v, want ErrUnauthorized", name, err)
		}
	}
	us := testAuthority(t, true)
	foreign, _, _ := us.Mint(testKey, MintRequest{Subject: "carol"})
	var ae *AuthError
	if _, err := us.Authenticate(foreign); !errors.Is(err, ErrUSPersonRequired) || !errors.As(err, &ae) || !strings.Contains(ae.Reason, "carol") {
		t.Errorf("foreign caller in U.S.-person-only mode: %v", err)
	}
}
