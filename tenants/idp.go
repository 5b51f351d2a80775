package tenants

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// IdP is a tenant's own identity provider: its JWTs are accepted as call
// tokens for that tenant. Only public-key algorithms are allowed, each
// pinned in Algorithms, and the keys come from a PEM file, so a token can
// neither choose "none" nor pass off a public key as an HMAC secret.
type IdP struct {
	// Issuer is the tokens' "iss"; it must differ from tokens.issuer.
	Issuer string `yaml:"issuer"`
	// Audience must be among the tokens' "aud".
	Audience string `yaml:"audience"`
	// KeysFile is a PEM file of the IdP's public keys: PUBLIC KEY (RSA,
	// ECDSA or Ed25519), RSA PUBLIC KEY, or CERTIFICATE blocks.
	KeysFile string `yaml:"keys_file"`
	// Algorithms are the accepted "alg" values: RS256, RS384, RS512,
	// PS256, PS384, PS512, ES256, ES384, ES512, EdDSA. Required.
	Algorithms []string `yaml:"algorithms"`
	// USPersonClaim is the boolean claim by which the IdP attests a
	// U.S. person. Default "us_person".
	USPersonClaim string `yaml:"us_person_claim"`

	keys []crypto.PublicKey
}

// idpAlgorithms maps each accepted algorithm to the keys that verify it.
var idpAlgorithms = map[string]struct {
	fits func(crypto.PublicKey) bool
	want string
}{
	"RS256": {isRSA, "an RSA key of at least 2048 bits"},
	"RS384": {isRSA, "an RSA key of at least 2048 bits"},
	"RS512": {isRSA, "an RSA key of at least 2048 bits"},
	"PS256": {isRSA, "an RSA key of at least 2048 bits"},
	"PS384": {isRSA, "an RSA key of at least 2048 bits"},
	"PS512": {isRSA, "an RSA key of at least 2048 bits"},
	"ES256": {isCurve(elliptic.P256()), "an ECDSA P-256 key"},
	"ES384": {isCurve(elliptic.P384()), "an ECDSA P-384 key"},
	"ES512": {isCurve(elliptic.P521()), "an ECDSA P-521 key"},
	"EdDSA": {isEd25519, "an Ed25519 key"},
}

func isRSA(k crypto.PublicKey) bool {
	r, ok := k.(*rsa.PublicKey)
	return ok && r.N.BitLen() >= 2048
}

func isCurve(c elliptic.Curve) func(crypto.PublicKey) bool {
	return func(k crypto.PublicKey) bool {
		e, ok := k.(*ecdsa.PublicKey)
		return ok && e.Curve == c
	}
}

func isEd25519(k crypto.PublicKey) bool {
	_, ok := k.(ed25519.PublicKey)
	return ok
}

// verify checks a JWT signed by d: one of its pinned algorithms with one
// of its keys, its issuer and audience, and an expiry (with idpLeeway), at
// now. It returns the token's claims.
func (d *IdP) verify(token string, now func() time.Time) (jwt.MapClaims, error) {
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(token, claims, func(tok *jwt.Token) (any, error) {
		keys := d.keysFor(tok.Method.Alg())
		if len(keys) == 0 {
			return nil, fmt.Errorf("no key for algorithm %s", tok.Method.Alg())
		}
		set := jwt.VerificationKeySet{Keys: make([]jwt.VerificationKey, len(keys))}
		for i, k := range keys {
			set.Keys[i] = k
		}
		return set, nil
	},
		jwt.WithValidMethods(d.Algorithms),
		jwt.WithAudience(d.Audience),
		jwt.WithIssuer(d.Issuer),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(idpLeeway),
		jwt.WithTimeFunc(now),
	)
	return claims, err
}

// keysFor returns the keys that may verify alg.
func (d *IdP) keysFor(alg string) []crypto.PublicKey {
	a, ok := idpAlgorithms[alg]
	if !ok || !slices.Contains(d.Algorithms, alg) {
		return nil
	}
	var out []crypto.PublicKey
	for _, k := range d.keys {
		if a.fits(k) {
			out = append(out, k)
		}
	}
	return out
}

func (c *Config) validateIdP(ps *problems, p string, t *Tenant, issuers map[string]string) {
	c.validateSigner(ps, p, t.IdP, issuers)
}

// validateSigner checks an issuer of JWTs verified with public keys (a
// tenant's IdP, a trunk's caller assertions) and loads its keys.
func (c *Config) validateSigner(ps *problems, p string, d *IdP, issuers map[string]string) {
	switch {
	case d.Issuer == "":
		ps.add(p+".issuer", "required")
	case d.Issuer == c.Tokens.Issuer:
		ps.add(p+".issuer", "%q is the gateway's own token issuer", d.Issuer)
	}
	if d.Audience == "" {
		ps.add(p+".audience", "required")
	}
	if d.Issuer != "" && d.Audience != "" {
		k := d.Issuer + "\x00" + d.Audience
		if other, dup := issuers[k]; dup {
			ps.add(p+".audience", "the same issuer and audience as %s: tokens could not tell the tenants apart", other)
		}
		issuers[k] = p
	}
	if len(d.Algorithms) == 0 {
		ps.add(p+".algorithms", "required: list the algorithms the IdP signs with (e.g. [RS256])")
	}
	for i, alg := range d.Algorithms {
		ap := fmt.Sprintf("%s.algorithms[%d]", p, i)
		switch {
		case strings.EqualFold(alg, "none"):
			ps.add(ap, "none is never accepted")
		case strings.HasPrefix(strings.ToUpper(alg), "HS"):
			ps.add(ap, "%s is a shared-secret algorithm; an IdP's tokens are verified with its public keys (RS, PS, ES or EdDSA)", alg)
		default:
			if _, ok := idpAlgorithms[alg]; !ok {
				ps.add(ap, "unknown algorithm %q (RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA)", alg)
			}
		}
	}
	if d.KeysFile == "" {
		ps.add(p+".keys_file", "required (a PEM file of the IdP's public keys)")
		return
	}
	keys, err := loadPublicKeys(d.KeysFile)
	if err != nil {
		ps.add(p+".keys_file", "%v", err)
		return
	}
	d.keys = keys
	for i, alg := range d.Algorithms {
		if a, ok := idpAlgorithms[alg]; ok && len(d.keysFor(alg)) == 0 {
			ps.add(fmt.Sprintf("%s.algorithms[%d]", p, i), "%s needs %s in keys_file, and there is none", alg, a.want)
		}
	}
}

// loadPublicKeys reads the public keys of a PEM file.
func loadPublicKeys(path string) ([]crypto.PublicKey, error) {
	data, err := readRegular(path, maxConfigBytes)
	if err != nil {
		return nil, fmt.Errorf("cannot read: %w", err)
	}
	var keys []crypto.PublicKey
	for n := 1; ; n++ {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		var k crypto.PublicKey
		switch b.Type {
		case "PUBLIC KEY":
			k, err = x509.ParsePKIXPublicKey(b.Bytes)
		case "RSA PUBLIC KEY":
			k, err = x509.ParsePKCS1PublicKey(b.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(b.Bytes); err == nil {
				k = cert.PublicKey
			}
		default:
			if strings.Contains(b.Type, "PRIVATE") {
				return nil, fmt.Errorf("%s: block %d is a private key; give only the IdP's public keys", path, n)
			}
			return nil, fmt.Errorf("%s: block %d is a %q, not a public key or certificate", path, n, b.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: block %d: %w", path, n, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New(path + ": no PEM public key or certificate")
	}
	return keys, nil
}
