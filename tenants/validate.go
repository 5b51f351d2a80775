package tenants

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/voicegw/voicegw/classifier"
)

// namePattern is what tenant ids and backend names may be: they go into
// logs, metric labels and Redis keys.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// problems collects validation problems.
type problems []Problem

func (ps *problems) add(path, format string, a ...any) {
	*ps = append(*ps, Problem{Path: path, Msg: fmt.Sprintf(format, a...)})
}

func (c *Config) validate() []Problem {
	var ps problems
	c.validateListen(&ps)
	if err := c.Audit.Salt.resolve(); err != nil {
		ps.add("audit.salt", "%v", err)
	}
	c.validateRedis(&ps)
	if d := time.Duration(c.DrainTimeout); d < 0 || d > time.Hour {
		ps.add("drain_timeout", "must be between 0s and 1h, got %s", d)
	}
	if c.Classifier.Bundle != "" {
		eng, err := classifier.Load(c.Classifier.Bundle)
		if err != nil {
			ps.add("classifier.bundle", "%v", err)
		}
		c.Classifier.engine = eng
	}
	if err := c.Tokens.SigningKey.resolve(); err != nil {
		ps.add("tokens.signing_key", "%v", err)
	} else if n := len(c.Tokens.SigningKey.Value()); n > 0 && n < 32 {
		ps.add("tokens.signing_key", "must be at least 32 bytes, got %d", n)
	}
	names := map[string]int{}
	for i := range c.Backends {
		c.validateBackend(&ps, i, names)
	}
	if len(c.Tenants) == 0 {
		ps.add("tenants", "at least one tenant is required")
	}
	ids := map[string]int{}
	keys := map[string]string{}
	issuers := map[string]string{}
	anyKeys := false
	for i := range c.Tenants {
		t := &c.Tenants[i]
		p := fmt.Sprintf("tenants[%d]", i)
		switch {
		case t.ID == "":
			ps.add(p+".id", "required")
		case !namePattern.MatchString(t.ID):
			ps.add(p+".id", "%q: use letters, digits, '.', '_' and '-' (at most 64)", t.ID)
		default:
			if j, dup := ids[t.ID]; dup {
				ps.add(p+".id", "tenant id %q is also tenants[%d]", t.ID, j)
			}
			ids[t.ID] = i
		}
		if _, ok := impactLevels[t.ImpactLevel]; !ok {
			ps.add(p+".impact_level", "%s", levelMsg(t.ImpactLevel))
		}
		if len(t.Regions) == 0 {
			ps.add(p+".regions", "at least one region is required")
		}
		for j, r := range t.Regions {
			if strings.TrimSpace(r) == "" {
				ps.add(fmt.Sprintf("%s.regions[%d]", p, j), "empty region")
			}
		}
		for _, role := range []string{RoleASR, RoleLLM, RoleTTS} {
			c.validateRoute(&ps, p, t, role)
		}
		for j, k := range t.APIKeys {
			anyKeys = true
			kp := fmt.Sprintf("%s.api_keys[%d]", p, j)
			if k.ID == "" {
				ps.add(kp+".id", "required")
			}
			h, ok := strings.CutPrefix(k.Hash, "sha256:")
			switch {
			case isPlaceholder(k.Hash):
				ps.add(kp+".hash", "%q is a placeholder: issue a random key of at least %d characters (openssl rand -hex 32) and store sha256:<its hex SHA-256>", k.Hash, minAPIKeyChars)
				continue
			case !ok || len(h) != 64 || strings.Trim(h, "0123456789abcdef") != "":
				ps.add(kp+".hash", "must be sha256:<64 lowercase hex> (store the key's hash, never the key)")
				continue
			case weakKeyHashes[h]:
				ps.add(kp+".hash", "is the hash of a well-known weak key: issue a random key of at least %d characters (openssl rand -hex 32)", minAPIKeyChars)
				continue
			}
			if other, dup := keys[k.Hash]; dup {
				ps.add(kp+".hash", "the same key as %s", other)
			}
			keys[k.Hash] = kp
		}
		if ttl := time.Duration(t.TokenTTL); ttl < 10*time.Second || ttl > 24*time.Hour {
			ps.add(p+".token_ttl", "must be between 10s and 24h, got %s", ttl)
		}
		if t.IdP != nil {
			c.validateIdP(&ps, p+".idp", t, issuers)
		}
		validatePipeline(&ps, p+".pipeline", &t.Pipeline)
	}
	c.validateSIP(&ps)
	c.validateTrunks(&ps)
	if anyKeys && c.Tokens.SigningKey.Value() == "" && c.Tokens.SigningKey.Ref == "" {
		ps.add("tokens.signing_key", "required: tenants have API keys, and their call tokens are signed with it")
	}
	return ps
}

// minAPIKeyChars is the shortest API key the docs and errors ask for. The
// config holds only hashes, so length cannot be checked there; weak keys
// that are well known are refused by their hash (weakKeyHashes).
const minAPIKeyChars = 16

// isPlaceholder reports whether an API key hash is an example's
// placeholder (CHANGE-ME, changeme, REPLACE…, <…>, xxxx).
func isPlaceholder(v string) bool {
	u := strings.ToUpper(strings.TrimPrefix(v, "sha256:"))
	for _, p := range []string{"CHANGE-ME", "CHANGEME", "CHANGE_ME", "REPLACE", "PLACEHOLDER", "<", "XXXX", "TODO"} {
		if strings.Contains(u, p) {
			return true
		}
	}
	return false
}

// weakKeyHashes are the SHA-256 hex digests of keys that turn up in
// examples, tutorials and guessing lists, each of them shorter than
// minAPIKeyChars: a config that stores one is refused.
var weakKeyHashes = func() map[string]bool {
	m := map[string]bool{}
	for _, k := range []string{
		"1234", "12345", "123456", "1234567", "12345678", "123456789", "1234567890", "0000", "000000",
		"password", "Password", "password1", "passw0rd", "secret", "changeme", "change-me", "test", "testing",
		"admin", "letmein", "qwerty", "abc123", "apikey", "api-key", "key", "default", "voicegw", "example",
	} {
		sum := sha256.Sum256([]byte(k))
		m[hex.EncodeToString(sum[:])] = true
	}
	return m
}()

func levelMsg(got string) string {
	return fmt.Sprintf("must be IL2, IL4, IL5 or IL6, got %q", got)
}

func (c *Config) validateListen(ps *problems) {
	if _, _, err := net.SplitHostPort(c.Listen.HTTP); err != nil {
		ps.add("listen.http", "%q is not a host:port address", c.Listen.HTTP)
	}
	if c.Listen.Media != "" {
		if _, _, err := net.SplitHostPort(c.Listen.Media); err != nil {
			ps.add("listen.media", "%q is not a host:port address", c.Listen.Media)
		}
	}
	for i, ip := range c.Listen.NAT1To1IPs {
		if net.ParseIP(ip) == nil {
			ps.add(fmt.Sprintf("listen.nat_1to1_ips[%d]", i), "%q is not an IP address", ip)
		}
	}
	switch {
	case (c.Listen.TLSCert == "") != (c.Listen.TLSKey == ""):
		ps.add("listen.tls_cert", "tls_cert and tls_key go together")
	case c.Listen.TLSCert != "":
		if _, err := loadKeyPair(c.Listen.TLSCert, c.Listen.TLSKey); err != nil {
			ps.add("listen.tls_cert", "cannot load the certificate and key: %v", err)
		}
	}
}

func (c *Config) validateRedis(ps *problems) {
	r := c.Redis
	if r == nil {
		return
	}
	u, err := url.Parse(r.URL)
	switch {
	case err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "":
		ps.add("redis.url", "must be redis://host:port/db or rediss://host:port/db")
	case u.User != nil:
		ps.add("redis.url", "must not hold credentials: give the password as redis.password (a secret reference)")
	case u.Scheme == "redis" && r.Password.IsSet() && !isLoopback(u.Hostname()):
		ps.add("redis.url", "a password must not cross the network in clear: use rediss:// (or a loopback address)")
	}
	if err := r.Password.resolve(); err != nil {
		ps.add("redis.password", "%v", err)
	}
	if r.LocalShare <= 0 || r.LocalShare > 1 {
		ps.add("redis.local_share", "must be in (0, 1], got %g", r.LocalShare)
	}
	if ttl := time.Duration(r.LeaseTTL); ttl < time.Second || ttl > 10*time.Minute {
		ps.add("redis.lease_ttl", "must be between 1s and 10m, got %s", ttl)
	}
}

func (c *Config) validateBackend(ps *problems, i int, names map[string]int) {
	b := &c.Backends[i]
	p := fmt.Sprintf("backends[%d]", i)
	switch {
	case b.Name == "":
		ps.add(p+".name", "required")
	case !namePattern.MatchString(b.Name):
		ps.add(p+".name", "%q: use letters, digits, '.', '_' and '-' (at most 64)", b.Name)
	default:
		if j, dup := names[b.Name]; dup {
			ps.add(p+".name", "backend name %q is also backends[%d]", b.Name, j)
		}
		names[b.Name] = i
	}
	if b.Role != RoleASR && b.Role != RoleLLM && b.Role != RoleTTS {
		ps.add(p+".role", "must be asr, llm or tts, got %q", b.Role)
	}
	if err := checkBackendURL(b.URL); err != nil {
		ps.add(p+".url", "%v", err)
	}
	if strings.TrimSpace(b.Region) == "" {
		ps.add(p+".region", "required (the region the engine runs in)")
	}
	if _, ok := impactLevels[b.ImpactLevel]; !ok {
		ps.add(p+".impact_level", "%s", levelMsg(b.ImpactLevel))
	}
	switch {
	case b.Mode != "" && b.Role != RoleASR:
		ps.add(p+".mode", "only asr backends have a mode")
	case b.Mode != "" && b.Mode != "realtime" && b.Mode != "batch":
		ps.add(p+".mode", "must be realtime or batch, got %q", b.Mode)
	}
	if b.Voice != "" && b.Role != RoleTTS {
		ps.add(p+".voice", "only tts backends have a voice")
	}
	if b.Timeout < 0 {
		ps.add(p+".timeout", "must be ≥ 0, got %s", b.Timeout)
	}
	if (b.ClientCert == "") != (b.ClientKey == "") {
		ps.add(p+".client_cert", "client_cert and client_key go together")
	} else if conf, err := b.buildTLS(); err != nil {
		ps.add(p+errPath(err), "%v", err)
	} else {
		b.tlsConf = conf
	}
	if err := b.APIKey.resolve(); err != nil {
		ps.add(p+".api_key", "%v", err)
	}
	if b.Proxy != "" {
		if _, err := parseProxy(b.Proxy); err != nil {
			ps.add(p+".proxy", "%v", err)
		}
	}
}

// parseProxy parses a backend's proxy URL: http, https or socks5, a host
// and port, nothing else.
func parseProxy(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || u.Port() == "":
		return nil, fmt.Errorf("%q is not a proxy URL (http://host:port, https://host:port or socks5://host:port)", raw)
	case u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "socks5":
		return nil, fmt.Errorf("scheme %q: want http, https or socks5", u.Scheme)
	case u.User != nil:
		return nil, errors.New("must not hold credentials (a proxy inside the boundary authenticates the gateway by its address or mTLS)")
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("%q: a proxy URL has no path, query or fragment", raw)
	}
	return u, nil
}

// tlsFileError names the backend field whose file failed.
type tlsFileError struct {
	field string
	err   error
}

func (e *tlsFileError) Error() string { return e.err.Error() }
func (e *tlsFileError) Unwrap() error { return e.err }

func errPath(err error) string {
	if fe, ok := errors.AsType[*tlsFileError](err); ok {
		return "." + fe.field
	}
	return ""
}

func (b Backend) buildTLS() (*tls.Config, error) {
	if b.CAFile == "" && b.ClientCert == "" {
		return nil, nil
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if b.CAFile != "" {
		pem, err := readRegular(b.CAFile, maxConfigBytes)
		if err != nil {
			return nil, &tlsFileError{"ca_file", fmt.Errorf("cannot read: %w", err)}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &tlsFileError{"ca_file", fmt.Errorf("%s holds no PEM certificate", b.CAFile)}
		}
		conf.RootCAs = pool
	}
	if b.ClientCert != "" {
		cert, err := loadKeyPair(b.ClientCert, b.ClientKey)
		if err != nil {
			return nil, &tlsFileError{"client_cert", fmt.Errorf("cannot load the client certificate and key: %w", err)}
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	return conf, nil
}

// loadKeyPair is tls.LoadX509KeyPair over regular files of bounded size.
func loadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	cert, err := readRegular(certFile, maxConfigBytes)
	if err != nil {
		return tls.Certificate{}, err
	}
	key, err := readRegular(keyFile, maxConfigBytes)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(cert, key)
}

// validateRoute checks a tenant's backends for role: each named one exists,
// has the role and is inside the tenant's boundary, and at least one is.
func (c *Config) validateRoute(ps *problems, p string, t *Tenant, role string) {
	list := t.backendNames(role)
	compliant := 0
	for j, n := range list {
		bp := fmt.Sprintf("%s.%s[%d]", p, role, j)
		b := c.Backend(n)
		if b == nil {
			ps.add(bp, "no backend named %q", n)
			continue
		}
		if b.Role != role {
			ps.add(bp, "backend %q has role %s, not %s", n, b.Role, role)
			continue
		}
		ok := true
		if have, need := impactLevels[b.ImpactLevel], impactLevels[t.ImpactLevel]; have < need || have == 0 {
			ok = false
			if have != 0 {
				ps.add(bp, "backend %q is %s; tenant %q requires %s", n, b.ImpactLevel, t.ID, t.ImpactLevel)
			}
		}
		if !slices.Contains(t.Regions, b.Region) {
			ok = false
		}
		if !ok && b.Region != "" && !slices.Contains(t.Regions, b.Region) {
			ps.add(bp, "backend %q is in region %s, outside tenant %q's regions [%s]", n, b.Region, t.ID, strings.Join(t.Regions, ", "))
		}
		if ok {
			compliant++
		}
	}
	if compliant == 0 && impactLevels[t.ImpactLevel] != 0 {
		ps.add(p+"."+role, "tenant %q has no compliant %s backend (one at %s or higher in region %s)",
			t.ID, role, t.ImpactLevel, strings.Join(t.Regions, " or "))
	}
}

func validatePipeline(ps *problems, p string, pl *Pipeline) {
	if h := time.Duration(pl.Hangover); h != 0 && (h < 100*time.Millisecond || h > 5*time.Second) {
		ps.add(p+".hangover", "must be between 100ms and 5s, got %s", h)
	}
	if pl.FirstTokenBudget < 0 {
		ps.add(p+".first_token_budget", "must be ≥ 0, got %s", pl.FirstTokenBudget)
	}
	if pl.FirstAudioBudget < 0 {
		ps.add(p+".first_audio_budget", "must be ≥ 0, got %s", pl.FirstAudioBudget)
	}
	if pl.HedgeFraction > 1 {
		ps.add(p+".hedge_fraction", "must be at most 1 (a fraction of first_token_budget; negative turns hedging off), got %g", pl.HedgeFraction)
	}
	if pl.FillerAt < 0 {
		ps.add(p+".filler_at", "must be ≥ 0, got %s", pl.FillerAt)
	}
	if len(pl.Filler) > 200 {
		ps.add(p+".filler", "must be a short phrase (at most 200 bytes)")
	}
	switch pl.DefaultParty {
	case "", PartyUnknown, PartyForeign:
	case PartyUSPerson:
		ps.add(p+".default_party", "cannot be us-person: a caller is a U.S. person only by an attestation in their token")
	default:
		ps.add(p+".default_party", "must be unknown or foreign, got %q", pl.DefaultParty)
	}
}

// checkBackendURL requires https or wss except on loopback.
func checkBackendURL(raw string) error {
	if raw == "" {
		return errors.New("required")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return errors.New("not an absolute URL (scheme://host[:port]/path)")
	}
	if u.User != nil {
		return errors.New("must not hold credentials: give them as api_key (a secret reference)")
	}
	switch u.Scheme {
	case "https", "wss":
		return nil
	case "http", "ws":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%s://%s is not encrypted: use https or wss (plain http and ws only on loopback)", u.Scheme, u.Host)
	}
	return fmt.Errorf("scheme %q is not https or wss", u.Scheme)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
