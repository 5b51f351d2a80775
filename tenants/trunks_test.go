package tenants

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestTrunkAssertion: a trunk's per-call caller assertion is accepted only
// when signed by a configured key with a pinned algorithm, for the
// configured issuer and audience, unexpired, and with attested_by when it
// attests a U.S. person.
func TestTrunkAssertion(t *testing.T) {
	keys := newIdPKeys(t)
	cfg, err := Parse("t.yaml", []byte(`
listen: {sip: {udp: "127.0.0.1:5060"}}
backends:
  - {name: a, role: asr, url: "http://127.0.0.1:1", region: r, impact_level: IL5}
  - {name: l, role: llm, url: "http://127.0.0.1:1", region: r, impact_level: IL5}
  - {name: s, role: tts, url: "http://127.0.0.1:1", region: r, impact_level: IL5}
tenants:
  - id: acme
    impact_level: IL5
    regions: [r]
    asr: [a]
    llm: [l]
    tts: [s]
    trunks:
      - name: pbx
        sources: [127.0.0.1]
        numbers: {"*": default}
        callers: assertion
        assertion: {issuer: "https://pbx.acme.example", audience: voicegw, keys_file: "`+keys.file+`", algorithms: [ES256]}
      - name: plain
        sources: [127.0.0.2]
        numbers: {"*": default}
`))
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewAuthority(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if a.TrunkAssertion("acme", "plain") != nil || a.TrunkAssertion("nobody", "pbx") != nil {
		t.Error("a verifier for a trunk without assertions")
	}
	verify := a.TrunkAssertion("acme", "pbx")
	if verify == nil {
		t.Fatal("no verifier")
	}
	sign := func(m jwt.SigningMethod, key any, claims jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(m, claims).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := func() jwt.MapClaims {
		return jwt.MapClaims{"iss": "https://pbx.acme.example", "aud": "voicegw", "exp": time.Now().Add(time.Minute).Unix(),
			"iat": time.Now().Unix(), "sub": "agent-17", "us_person": true, "attested_by": "ACME badge office"}
	}
	us, by, err := verify(sign(jwt.SigningMethodES256, keys.ec, good()))
	if err != nil || !us || by != "ACME badge office" {
		t.Fatalf("valid assertion: %v %q %v", us, by, err)
	}
	notUS := good()
	notUS["us_person"] = false
	if us, _, err := verify(sign(jwt.SigningMethodES256, keys.ec, notUS)); err != nil || us {
		t.Errorf("assertion of a non-U.S. person: %v %v", us, err)
	}
	expired, aud, iss, noBy := good(), good(), good(), good()
	expired["exp"] = time.Now().Add(-time.Hour).Unix()
	aud["aud"] = "other"
	iss["iss"] = "https://evil.example"
	delete(noBy, "attested_by")
	// An assertion is signed per call just before the INVITE: older than
	// max_age (default 60s) is a replay, and it must be dated.
	old, future, noIat := good(), good(), good()
	old["iat"], old["exp"] = time.Now().Add(-2*time.Minute).Unix(), time.Now().Add(time.Hour).Unix()
	future["iat"] = time.Now().Add(5 * time.Minute).Unix()
	delete(noIat, "iat")
	tampered := sign(jwt.SigningMethodES256, keys.ec, good())
	tampered = tampered[:len(tampered)-4] + "AAAA"
	for name, tok := range map[string]string{
		"expired":               sign(jwt.SigningMethodES256, keys.ec, expired),
		"wrong audience":        sign(jwt.SigningMethodES256, keys.ec, aud),
		"wrong issuer":          sign(jwt.SigningMethodES256, keys.ec, iss),
		"no attested_by":        sign(jwt.SigningMethodES256, keys.ec, noBy),
		"older than max_age":    sign(jwt.SigningMethodES256, keys.ec, old),
		"issued in the future":  sign(jwt.SigningMethodES256, keys.ec, future),
		"no iat":                sign(jwt.SigningMethodES256, keys.ec, noIat),
		"RS256 (not pinned)":    sign(jwt.SigningMethodRS256, keys.rsa, good()),
		"HS256 with public key": sign(jwt.SigningMethodHS256, keys.pub, good()),
		"none":                  sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, good()),
		"tampered":              tampered,
		"garbage":               "not.a.jwt",
		"huge":                  strings.Repeat("a", 20000),
	} {
		us, _, err := verify(tok)
		if us || !errors.Is(err, ErrUnauthorized) {
			t.Errorf("%s: us_person=%v err=%v, want refused", name, us, err)
		}
	}
}
