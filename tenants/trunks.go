package tenants

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// SIP is the SIP trunk ingress: where it listens and which RTP ports its
// calls use. Trunks belong to tenants.
type SIP struct {
	// UDP, TCP and TLS are listen addresses (host:port); at least one.
	UDP string `yaml:"udp"`
	TCP string `yaml:"tcp"`
	TLS string `yaml:"tls"`
	// TLSCert and TLSKey (PEM files) serve SIP over TLS.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// MediaIP is the address RTP binds to and SDP announces. Required when
	// the listen host is unspecified (0.0.0.0).
	MediaIP string `yaml:"media_ip"`
	// RTPPorts is the RTP port range "LOW-HIGH". Default 20000-29999.
	RTPPorts string `yaml:"rtp_ports"`
	// RTPTimeout ends a call whose caller sends no RTP for this long while
	// not on hold. Default 30s.
	RTPTimeout Duration `yaml:"rtp_timeout"`

	mediaIP netip.Addr
	rtpLo   int
	rtpHi   int
}

// MediaAddr is the parsed media IP (invalid when derived from the listen
// address).
func (s *SIP) MediaAddr() netip.Addr { return s.mediaIP }

// PortRange is the parsed RTP port range.
func (s *SIP) PortRange() (lo, hi int) { return s.rtpLo, s.rtpHi }

// Caller identity on a trunk (Trunk.Callers).
const (
	// CallersUnattested: no caller is attested; each takes the tenant's
	// default party.
	CallersUnattested = "unattested"
	// CallersAttested: the trunk's owner attests that every caller on it
	// is a U.S. person (its technology control plan), as AttestedBy.
	CallersAttested = "attested"
	// CallersAssertion: each call may carry a signed assertion (a JWT in
	// Assertion.Header) about its caller.
	CallersAssertion = "assertion"
)

// Trunk is a contractor call center's SIP trunk into its tenant.
type Trunk struct {
	// Name identifies the trunk in logs and metrics (unique across
	// tenants).
	Name string `yaml:"name"`
	// Sources are the networks (CIDR or single IPs) its signaling comes
	// from. No two trunks may overlap: the source names the trunk.
	Sources []string `yaml:"sources"`
	// Digest, when set, requires digest authentication.
	Digest *Digest `yaml:"digest"`
	// Numbers maps each number (Request-URI user) the trunk may call to
	// the agent answering it: "" or "default" for the tenant's own
	// pipeline, or a name from the tenant's agents. "*" matches any
	// number.
	Numbers map[string]string `yaml:"numbers"`
	// RequireSRTP refuses calls without SDES-keyed SRTP.
	RequireSRTP bool `yaml:"require_srtp"`
	// Codecs in order of preference: PCMU, PCMA, opus. Default all three.
	Codecs []string `yaml:"codecs"`
	// Callers says how callers are identified: unattested (default),
	// attested or assertion.
	Callers string `yaml:"callers"`
	// AttestedBy names the attestation (e.g. the plan's reference) for
	// callers: attested.
	AttestedBy string `yaml:"attested_by"`
	// Assertion verifies per-call assertions for callers: assertion.
	Assertion *Assertion `yaml:"assertion"`
	// AnswerDelay rings before answering, 0 to 10s.
	AnswerDelay Duration `yaml:"answer_delay"`

	sources []netip.Prefix
}

// Prefixes are the parsed sources.
func (t *Trunk) Prefixes() []netip.Prefix { return t.sources }

// Digest is a trunk's digest credentials.
type Digest struct {
	Username string `yaml:"username"`
	// Password is a secret reference.
	Password Secret `yaml:"password"`
	// Realm of the challenge. Default "voicegw".
	Realm string `yaml:"realm"`
	// Algorithms offered, most preferred first: SHA-256, MD5. Default
	// both, SHA-256 first.
	Algorithms []string `yaml:"algorithms"`
}

// Assertion is how a trunk's per-call caller assertions are checked: a
// JWT in Header, signed with one of the keys in KeysFile by one of the
// pinned Algorithms, from Issuer to Audience, with a boolean USPersonClaim
// and an attested_by claim.
type Assertion struct {
	// Header is the SIP header carrying the JWT. Default
	// X-Voicegw-Caller-Assertion.
	Header        string   `yaml:"header"`
	Issuer        string   `yaml:"issuer"`
	Audience      string   `yaml:"audience"`
	KeysFile      string   `yaml:"keys_file"`
	Algorithms    []string `yaml:"algorithms"`
	USPersonClaim string   `yaml:"us_person_claim"`
	// MaxAge is how old (now − iat) an assertion may be when its INVITE
	// arrives, 1s to 10m: the PBX signs one per call just before sending
	// it, so an old assertion is a replay. Assertions must carry iat.
	// Default 60s.
	MaxAge Duration `yaml:"max_age"`

	signer *IdP
}

// Agent is a named variant of a tenant's pipeline that trunk numbers
// route to.
type Agent struct {
	SystemPrompt string `yaml:"system_prompt"`
	Greeting     string `yaml:"greeting"`
}

var sipCodecs = []string{"PCMU", "PCMA", "opus"}

// defaultAssertionMaxAge is Assertion.MaxAge when it is not set.
const defaultAssertionMaxAge = 60 * time.Second

func (c *Config) setSIPDefaults() {
	if s := c.Listen.SIP; s != nil {
		if s.RTPPorts == "" {
			s.RTPPorts = "20000-29999"
		}
		if s.RTPTimeout == 0 {
			s.RTPTimeout = Duration(30 * time.Second)
		}
	}
	for i := range c.Tenants {
		for j := range c.Tenants[i].Trunks {
			tr := &c.Tenants[i].Trunks[j]
			if tr.Callers == "" {
				tr.Callers = CallersUnattested
			}
			if d := tr.Digest; d != nil {
				if d.Realm == "" {
					d.Realm = "voicegw"
				}
				if len(d.Algorithms) == 0 {
					d.Algorithms = []string{"SHA-256", "MD5"}
				}
			}
			if a := tr.Assertion; a != nil {
				if a.Header == "" {
					a.Header = "X-Voicegw-Caller-Assertion"
				}
				if a.USPersonClaim == "" {
					a.USPersonClaim = "us_person"
				}
				if a.MaxAge == 0 {
					a.MaxAge = Duration(defaultAssertionMaxAge)
				}
			}
		}
	}
}

func (c *Config) validateSIP(ps *problems) {
	s := c.Listen.SIP
	if s == nil {
		for i, t := range c.Tenants {
			if len(t.Trunks) > 0 {
				ps.add(fmt.Sprintf("tenants[%d].trunks", i), "trunks need listen.sip")
			}
		}
		return
	}
	if s.UDP == "" && s.TCP == "" && s.TLS == "" {
		ps.add("listen.sip", "give at least one of udp, tcp, tls")
	}
	var host string
	for _, f := range []struct{ name, addr string }{{"udp", s.UDP}, {"tcp", s.TCP}, {"tls", s.TLS}} {
		if f.addr == "" {
			continue
		}
		h, _, err := net.SplitHostPort(f.addr)
		if err != nil {
			ps.add("listen.sip."+f.name, "%q is not a host:port address", f.addr)
			continue
		}
		if host == "" {
			host = h
		}
	}
	switch {
	case s.TLS != "" && (s.TLSCert == "" || s.TLSKey == ""):
		ps.add("listen.sip.tls_cert", "SIP over TLS needs tls_cert and tls_key")
	case s.TLS == "" && (s.TLSCert != "" || s.TLSKey != ""):
		ps.add("listen.sip.tls", "tls_cert and tls_key are given but no tls listen address")
	case s.TLS != "":
		if _, err := loadKeyPair(s.TLSCert, s.TLSKey); err != nil {
			ps.add("listen.sip.tls_cert", "cannot load the certificate and key: %v", err)
		}
	}
	if s.MediaIP != "" {
		ip, err := netip.ParseAddr(s.MediaIP)
		if err != nil || ip.IsUnspecified() {
			ps.add("listen.sip.media_ip", "%q is not a specific IP address", s.MediaIP)
		}
		s.mediaIP = ip
	} else if ip, err := netip.ParseAddr(host); host != "" && (err != nil || ip.IsUnspecified()) {
		ps.add("listen.sip.media_ip", "required: the SIP listen host %q is not a specific IP address, so RTP needs one", host)
	}
	lo, hi, ok := strings.Cut(s.RTPPorts, "-")
	l, err1 := strconv.Atoi(strings.TrimSpace(lo))
	h, err2 := strconv.Atoi(strings.TrimSpace(hi))
	if !ok || err1 != nil || err2 != nil || l < 1024 || h > 65535 || h-l < 1 {
		ps.add("listen.sip.rtp_ports", "must be LOW-HIGH within 1024-65535 with at least two ports, got %q", s.RTPPorts)
	} else {
		s.rtpLo, s.rtpHi = l, h
	}
	if d := time.Duration(s.RTPTimeout); d < time.Second || d > 10*time.Minute {
		ps.add("listen.sip.rtp_timeout", "must be between 1s and 10m, got %s", d)
	}
}

// validateTrunks checks every tenant's trunks and agents: names unique
// across tenants, sources parse and overlap no other trunk's, credentials
// and assertions complete, numbers route to agents that exist.
func (c *Config) validateTrunks(ps *problems) {
	type owner struct {
		path   string
		prefix netip.Prefix
	}
	var seenSources []owner
	names := map[string]string{}
	issuers := map[string]string{}
	for i := range c.Tenants {
		t := &c.Tenants[i]
		tp := fmt.Sprintf("tenants[%d]", i)
		for _, name := range slices.Sorted(maps.Keys(t.Agents)) {
			if !namePattern.MatchString(name) || name == "default" {
				ps.add(tp+".agents."+name, "agent names use letters, digits, '.', '_' and '-' (and are not \"default\")")
			}
		}
		for j := range t.Trunks {
			tr := &t.Trunks[j]
			p := fmt.Sprintf("%s.trunks[%d]", tp, j)
			switch {
			case tr.Name == "":
				ps.add(p+".name", "required")
			case !namePattern.MatchString(tr.Name):
				ps.add(p+".name", "%q: use letters, digits, '.', '_' and '-' (at most 64)", tr.Name)
			default:
				if other, dup := names[tr.Name]; dup {
					ps.add(p+".name", "trunk name %q is also %s", tr.Name, other)
				}
				names[tr.Name] = p
			}
			if len(tr.Sources) == 0 {
				ps.add(p+".sources", "at least one source network is required")
			}
			tr.sources = tr.sources[:0]
			for k, src := range tr.Sources {
				sp := fmt.Sprintf("%s.sources[%d]", p, k)
				pre, err := parseSource(src)
				if err != nil {
					ps.add(sp, "%q is not an IP address or CIDR network", src)
					continue
				}
				for _, o := range seenSources {
					if o.prefix.Overlaps(pre) {
						ps.add(sp, "%s overlaps %s (%s): a call's source must name one trunk", pre, o.path, o.prefix)
					}
				}
				seenSources = append(seenSources, owner{sp, pre})
				tr.sources = append(tr.sources, pre)
			}
			if d := tr.Digest; d != nil {
				if d.Username == "" {
					ps.add(p+".digest.username", "required")
				}
				if !d.Password.IsSet() {
					ps.add(p+".digest.password", "required (a secret reference: env:NAME or file:/path)")
				} else if err := d.Password.resolve(); err != nil {
					ps.add(p+".digest.password", "%v", err)
				}
				for k, a := range d.Algorithms {
					if a != "SHA-256" && a != "MD5" {
						ps.add(fmt.Sprintf("%s.digest.algorithms[%d]", p, k), "must be SHA-256 or MD5, got %q", a)
					}
				}
			}
			if len(tr.Numbers) == 0 {
				ps.add(p+".numbers", "at least one number is required (\"*\" for any)")
			}
			for _, num := range slices.Sorted(maps.Keys(tr.Numbers)) {
				agent := tr.Numbers[num]
				if num == "" || len(num) > 64 || strings.ContainsAny(num, " \t\r\n@;:") {
					ps.add(p+".numbers", "%q is not a number or user part", num)
				}
				if agent != "" && agent != "default" {
					if _, ok := t.Agents[agent]; !ok {
						ps.add(p+".numbers."+num, "no agent %q in tenant %q's agents", agent, t.ID)
					}
				}
			}
			for k, codec := range tr.Codecs {
				if !slices.Contains(sipCodecs, codec) {
					ps.add(fmt.Sprintf("%s.codecs[%d]", p, k), "must be PCMU, PCMA or opus, got %q", codec)
				}
			}
			switch tr.Callers {
			case CallersUnattested:
				if t.USPersonOnly {
					ps.add(p+".callers", "tenant %q is U.S.-person-only, so a trunk whose callers are unattested could place no call", t.ID)
				}
			case CallersAttested:
				if strings.TrimSpace(tr.AttestedBy) == "" {
					ps.add(p+".attested_by", "required with callers: attested (who attests, e.g. the technology control plan's reference)")
				}
			case CallersAssertion:
				if tr.Assertion == nil {
					ps.add(p+".assertion", "required with callers: assertion")
				}
			default:
				ps.add(p+".callers", "must be unattested, attested or assertion, got %q", tr.Callers)
			}
			if a := tr.Assertion; a != nil {
				if tr.Callers != CallersAssertion {
					ps.add(p+".assertion", "only with callers: assertion")
				}
				a.signer = &IdP{Issuer: a.Issuer, Audience: a.Audience, KeysFile: a.KeysFile, Algorithms: a.Algorithms, USPersonClaim: a.USPersonClaim}
				c.validateSigner(ps, p+".assertion", a.signer, issuers)
				if age := time.Duration(a.MaxAge); age < time.Second || age > 10*time.Minute {
					ps.add(p+".assertion.max_age", "must be between 1s and 10m, got %s", age)
				}
				if !strings.HasPrefix(strings.ToLower(a.Header), "x-") || strings.ContainsAny(a.Header, " :\t") {
					ps.add(p+".assertion.header", "must be an extension header name starting with X-, got %q", a.Header)
				}
			}
			if d := time.Duration(tr.AnswerDelay); d < 0 || d > 10*time.Second {
				ps.add(p+".answer_delay", "must be between 0 and 10s, got %s", d)
			}
		}
	}
}

func parseSource(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(ip, ip.BitLen()), nil
}

// TrunkAssertion returns the verifier of the per-call caller assertions of
// tenant's trunk, or nil when the trunk takes none. The verifier returns
// the attestation of a valid assertion; a refused one is an *AuthError
// (log it; the caller is then unattested).
func (a *Authority) TrunkAssertion(tenant, trunk string) func(token string) (usPerson bool, attestedBy string, err error) {
	t := a.cfg.Tenant(tenant)
	if t == nil {
		return nil
	}
	var as *Assertion
	for i := range t.Trunks {
		if t.Trunks[i].Name == trunk {
			as = t.Trunks[i].Assertion
		}
	}
	if as == nil || as.signer == nil {
		return nil
	}
	d := as.signer
	return func(token string) (bool, string, error) {
		if len(token) > maxTokenBytes {
			return false, "", refuse("assertion longer than %d bytes", maxTokenBytes)
		}
		claims, err := d.verify(token, a.now)
		if err != nil {
			return false, "", refuse("caller assertion on trunk %q: %v", trunk, err)
		}
		if err := assertionAge(claims, a.now(), time.Duration(as.MaxAge)); err != nil {
			return false, "", refuse("caller assertion on trunk %q: %v", trunk, err)
		}
		us, _ := claims[d.USPersonClaim].(bool)
		by, _ := claims["attested_by"].(string)
		if !us {
			return false, "", nil
		}
		if err := claimText("attested_by", by, true); err != nil {
			return false, "", refuse("caller assertion on trunk %q: %v", trunk, err)
		}
		return true, by, nil
	}
}

// assertionAge requires an assertion's iat, no more than maxClockSkew
// ahead of now and no more than maxAge behind it.
func assertionAge(claims jwt.MapClaims, now time.Time, maxAge time.Duration) error {
	iat, err := claims.GetIssuedAt()
	switch {
	case err != nil:
		return fmt.Errorf("iat: %w", err)
	case iat == nil:
		return errors.New("no iat (issued at) claim: the assertion's age cannot be checked")
	case iat.After(now.Add(maxClockSkew)):
		return fmt.Errorf("issued %s in the future, beyond the %s clock skew allowed", iat.Sub(now).Round(time.Second), maxClockSkew)
	case now.Sub(iat.Time) > maxAge:
		return fmt.Errorf("issued %s ago, older than max_age %s", now.Sub(iat.Time).Round(time.Second), maxAge)
	}
	return nil
}
