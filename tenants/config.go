// Package tenants is voicegw's multi-tenancy: the one YAML config file
// (listeners, backends that declare their boundary, tenants that declare
// what boundary they need), the boundary-aware router, API keys and call
// tokens, U.S.-person admission, and per-tenant rate and concurrency limits
// in process or shared by every replica through Redis.
//
// Loading goes defaults → strict decode (unknown fields are errors) →
// secret references resolved → validation, and every problem names its
// field path and line:
//
//	voicegw.yaml:14: tenants[1].limits.max_concurrent_calls: must be > 0
package tenants

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/voicegw/voicegw/classifier"

	"go.yaml.in/yaml/v3"
)

// Config is the whole gateway configuration. Get one from Load or Parse:
// a Config built by hand has no resolved secrets and no loaded keys.
type Config struct {
	Listen   Listen    `yaml:"listen"`
	HTTP     HTTP      `yaml:"http"`
	Audit    Audit     `yaml:"audit"`
	Redis    *Redis    `yaml:"redis"`
	Tokens   Tokens    `yaml:"tokens"`
	Backends []Backend `yaml:"backends"`
	Tenants  []Tenant  `yaml:"tenants"`
	// Classifier selects the deemed-export classifier bundle.
	Classifier Classifier `yaml:"classifier"`
	// DrainTimeout is how long the calls in progress may go on after
	// SIGTERM or SIGINT (new calls are refused meanwhile) before the
	// gateway hangs them up and exits. At most 1h. Default 30s.
	DrainTimeout Duration `yaml:"drain_timeout"`
}

// Classifier selects the deemed-export classifier.
type Classifier struct {
	// Bundle is a classifier bundle directory (manifest.json pinning the
	// rule pack, the lexicon and the model by SHA-256) or a rule pack
	// YAML file. Default the bundle embedded in the binary. It is loaded
	// and checked with the config, so a bad bundle is a config error.
	Bundle string `yaml:"bundle"`

	engine *classifier.Engine
}

// Engine is the loaded bundle, or nil for the embedded one.
func (c Classifier) Engine() *classifier.Engine { return c.engine }

// Listen is where the gateway serves.
type Listen struct {
	// HTTP is the address of the softphone, signaling, /v1/tokens and
	// /metrics. Default "127.0.0.1:8080".
	HTTP string `yaml:"http"`
	// Media is the one UDP address of every WebRTC call. Default the HTTP
	// host with a random port.
	Media string `yaml:"media"`
	// NAT1To1IPs are public addresses advertised for Media behind 1:1 NAT.
	NAT1To1IPs []string `yaml:"nat_1to1_ips"`
	// TLSCert and TLSKey (PEM files) serve HTTPS; both or neither. They
	// are loaded at check time, so a bad pair is a config error.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// SIP, when set, serves SIP trunks (see Tenant.Trunks).
	SIP *SIP `yaml:"sip"`
}

// HTTP bounds the HTTP server's connections. A field left out takes the
// default given; a field given must be > 0.
type HTTP struct {
	// MaxConnections caps the connections open at once, signaling
	// WebSockets included; one past it is closed as soon as it is
	// accepted. Default 1024.
	MaxConnections int `yaml:"max_connections"`
	// ReadHeaderTimeout bounds reading a request's headers. Default 10s.
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	// ReadTimeout bounds reading a whole request (not an upgraded
	// WebSocket). Default 30s.
	ReadTimeout Duration `yaml:"read_timeout"`
	// IdleTimeout closes keep-alive connections idle this long.
	// Default 120s.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// MaxHeaderBytes bounds a request's headers. Default 16384.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// OfferTimeout closes a signaling WebSocket that has no call and has
	// sent no offer for this long. Default 10s.
	OfferTimeout Duration `yaml:"offer_timeout"`
}

// Audit configures the audit log.
type Audit struct {
	// Path is the JSON-lines audit file. Default standard error.
	Path string `yaml:"path"`
	// Salt keys the span hashes (a secret reference). Default a random
	// salt per process, which makes hashes incomparable across restarts.
	Salt Secret `yaml:"salt"`
}

// Redis shares limits among replicas. Without it each replica enforces
// every tenant's full limits on its own.
type Redis struct {
	// URL is redis://host:port/db or rediss:// (TLS). A password goes in
	// Password, never in the URL.
	URL string `yaml:"url"`
	// Password is a secret reference.
	Password Secret `yaml:"password"`
	// LocalShare is the fraction of a tenant's limits one replica enforces
	// alone while Redis is unreachable, in (0, 1]. Default 0.5.
	LocalShare float64 `yaml:"local_share"`
	// LeaseTTL is how long a concurrency lease outlives its last heartbeat,
	// so how long a crashed replica's calls hold their slots. At least 1s.
	// Default 15s.
	LeaseTTL Duration `yaml:"lease_ttl"`
}

// Tokens configures the call tokens minted at POST /v1/tokens.
//
// Call tokens are HS256 JWTs. Every party that signs or verifies them is a
// gateway replica holding the same key, so an asymmetric scheme would add a
// key pair to distribute without removing the shared secret; the algorithm
// is pinned on verification, so a token cannot pick its own.
type Tokens struct {
	// SigningKey is an HMAC-SHA-256 key of at least 32 bytes (a secret
	// reference), the same on every replica. Required when any tenant has
	// API keys.
	SigningKey Secret `yaml:"signing_key"`
	// Issuer is the tokens' "iss". Default "voicegw".
	Issuer string `yaml:"issuer"`
}

// Backend roles.
const (
	RoleASR = "asr"
	RoleLLM = "llm"
	RoleTTS = "tts"
)

// Backend is one ASR, LLM or TTS engine and the boundary it runs in.
type Backend struct {
	// Name is how tenants refer to it ([A-Za-z0-9._-], at most 64).
	Name string `yaml:"name"`
	// Role is asr, llm or tts.
	Role string `yaml:"role"`
	// URL is the engine's base URL: https or wss, or http/ws on loopback.
	URL    string `yaml:"url"`
	Model  string `yaml:"model"`
	APIKey Secret `yaml:"api_key"`
	// Region is where the engine runs (e.g. us-gov-west-1).
	Region string `yaml:"region"`
	// ImpactLevel is the highest DoD impact level it is authorised for:
	// IL2, IL4, IL5 or IL6.
	ImpactLevel string `yaml:"impact_level"`
	// Mode is for asr: realtime (default, streaming WebSocket) or batch.
	Mode string `yaml:"mode"`
	// Voice is for tts.
	Voice string `yaml:"voice"`
	// Timeout bounds one request. Default the client's.
	Timeout Duration `yaml:"timeout"`
	// CAFile (PEM) replaces the system roots for this backend.
	CAFile string `yaml:"ca_file"`
	// ClientCert and ClientKey (PEM) authenticate the gateway (mTLS).
	ClientCert string `yaml:"client_cert"`
	ClientKey  string `yaml:"client_key"`
	// Proxy is an http://, https:// or socks5:// proxy (host:port, no
	// credentials) for this backend's connections. Default none: the
	// gateway connects directly and never uses HTTP_PROXY or the other
	// proxy variables of the environment.
	Proxy string `yaml:"proxy"`

	tlsConf *tls.Config // built from the files above at load
}

// ProxyURL is the parsed Proxy, or nil when none is set (or it is
// invalid, which validation refuses).
func (b Backend) ProxyURL() *url.URL {
	if b.Proxy == "" {
		return nil
	}
	u, err := parseProxy(b.Proxy)
	if err != nil {
		return nil
	}
	return u
}

// TLSConfig is the client TLS configuration for this backend: TLS 1.2 or
// later, CAFile as the roots when set, the client certificate when set. It
// returns nil, nil when the backend sets none of them (system defaults).
func (b Backend) TLSConfig() (*tls.Config, error) {
	if b.tlsConf != nil {
		return b.tlsConf.Clone(), nil
	}
	return b.buildTLS()
}

// Tenant is one organisation using the gateway.
type Tenant struct {
	// ID names the tenant in tokens, logs, metrics and Redis keys
	// ([A-Za-z0-9._-], at most 64).
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
	// ImpactLevel is the level its data requires: every backend it uses
	// must be authorised for this level or higher.
	ImpactLevel string `yaml:"impact_level"`
	// Regions are where its data may go.
	Regions []string `yaml:"regions"`
	// ASR, LLM and TTS name its backends in order of preference; the
	// first serves and the rest are failover, all inside the boundary.
	ASR []string `yaml:"asr"`
	LLM []string `yaml:"llm"`
	TTS []string `yaml:"tts"`
	// APIKeys are the hashes of the keys its servers present at
	// POST /v1/tokens.
	APIKeys []APIKey `yaml:"api_keys"`
	// TokenTTL is the longest life of a call token, 10s to 24h.
	// Default 5m.
	TokenTTL Duration `yaml:"token_ttl"`
	// USPersonOnly refuses every caller not attested as a U.S. person.
	USPersonOnly bool `yaml:"us_person_only"`
	// IdP, when set, makes the tenant's own identity provider's JWTs
	// valid call tokens.
	IdP *IdP `yaml:"idp"`
	// Limits are the tenant's rate and concurrency limits.
	Limits Limits `yaml:"limits"`
	// Pipeline overrides the turn pipeline's defaults.
	Pipeline Pipeline `yaml:"pipeline"`
	// Trunks are the tenant's SIP trunks (needs listen.sip).
	Trunks []Trunk `yaml:"trunks"`
	// Agents are named pipeline variants that trunk numbers route to.
	Agents map[string]Agent `yaml:"agents"`
}

// APIKey is one stored key hash.
//
// Keys are random secrets of at least 128 bits issued by the operator, not
// passwords, so a fast hash is enough: guessing a key is infeasible however
// fast the hash, and SHA-256 keeps the check cheap and the graph free of a
// password-hashing module. The config never holds the key itself.
type APIKey struct {
	// ID names the key in logs (so a key can be rotated by id).
	ID string `yaml:"id"`
	// Hash is "sha256:" and the lowercase hex SHA-256 of the key:
	// printf %s "$KEY" | sha256sum.
	Hash string `yaml:"hash"`
}

// Limits are per tenant. A field left out takes the default given; a field
// given must be > 0.
type Limits struct {
	// CallsPerSecond is the call-attempt rate. Default 5.
	CallsPerSecond float64 `yaml:"calls_per_second"`
	// Burst is how many attempts may come at once. Default 10.
	Burst int `yaml:"burst"`
	// MaxConcurrentCalls caps calls in progress. Default 20.
	MaxConcurrentCalls int `yaml:"max_concurrent_calls"`
	// LLMTokensPerMinute caps LLM tokens: each request is charged its
	// max_tokens plus its prompt (estimated) before it is sent. Default 60000.
	LLMTokensPerMinute int `yaml:"llm_tokens_per_minute"`
}

// Parties a caller may be in the classifier's eyes.
const (
	PartyUSPerson = "us-person"
	PartyForeign  = "foreign"
	PartyUnknown  = "unknown"
)

// Pipeline overrides per tenant. Zero values keep the gateway's defaults.
type Pipeline struct {
	SystemPrompt string `yaml:"system_prompt"`
	// Greeting is spoken as soon as the call connects.
	Greeting string `yaml:"greeting"`
	// Hangover is the silence that ends a caller's turn, 100ms to 5s.
	Hangover Duration `yaml:"hangover"`
	// FirstTokenBudget is the budget from final transcript to the first
	// LLM token.
	FirstTokenBudget Duration `yaml:"first_token_budget"`
	// FirstAudioBudget is the budget from the caller's end of speech to
	// the first reply audio.
	FirstAudioBudget Duration `yaml:"first_audio_budget"`
	// HedgeFraction: when the first LLM token has not come after this
	// fraction of first_token_budget, the request also goes to the next
	// compliant LLM and the first answer wins. Default 0.5; negative: off.
	HedgeFraction float64 `yaml:"hedge_fraction"`
	// TTSHedgeAfter: the same for a sentence's first TTS audio. Default
	// 300ms; negative: off.
	TTSHedgeAfter Duration `yaml:"tts_hedge_after"`
	// FirstChunkWords lets the reply's first piece go to TTS at its first
	// clause mark once it has this many words. Default 2; negative: whole
	// sentences only.
	FirstChunkWords int `yaml:"first_chunk_words"`
	// Filler is a short phrase played when the reply's audio has not
	// started by filler_at (default 80% of first_audio_budget).
	Filler   string   `yaml:"filler"`
	FillerAt Duration `yaml:"filler_at"`
	// DefaultParty is the party of a caller whose credential carries no
	// U.S.-person attestation: unknown (the default) or foreign; both are
	// treated as foreign by the classifier. It cannot be us-person: that
	// status comes only from an attestation about the caller.
	DefaultParty string `yaml:"default_party"`
}

// Party is the classifier party of p on tenant t: us-person when attested,
// else the tenant's default party.
func (t *Tenant) Party(p Principal) string {
	switch {
	case p.USPerson:
		return PartyUSPerson
	case t.Pipeline.DefaultParty != "":
		return t.Pipeline.DefaultParty
	}
	return PartyUnknown
}

// Duration is a time.Duration written as "500ms", "15s".
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: must be a duration such as 500ms or 15s", n.Line)}}
	}
	*d = Duration(v)
	return nil
}

// String formats like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// Problem is one configuration error.
type Problem struct {
	Path string // e.g. tenants[1].limits.max_concurrent_calls; "" for the file
	Line int    // 0 when unknown
	Msg  string
}

// String is "path: msg".
func (p Problem) String() string {
	if p.Path == "" {
		return p.Msg
	}
	return p.Path + ": " + p.Msg
}

// ConfigError holds every problem found in a file.
type ConfigError struct {
	File     string
	Problems []Problem
}

// Error is one line per problem, "file:line: path: msg" (no file:line
// when the line is unknown).
func (e *ConfigError) Error() string {
	var sb strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			sb.WriteByte('\n')
		}
		if p.Line > 0 {
			fmt.Fprintf(&sb, "%s:%d: ", e.File, p.Line)
		}
		sb.WriteString(p.String())
	}
	return sb.String()
}

// maxConfigBytes bounds a config file.
const maxConfigBytes = 4 << 20

// Load reads, resolves and validates a config file. Every refusal is a
// *ConfigError listing all problems found.
func Load(path string) (*Config, error) {
	b, err := readLimited(path, maxConfigBytes)
	if err != nil {
		return nil, &ConfigError{File: path, Problems: []Problem{{Msg: err.Error()}}}
	}
	return Parse(path, b)
}

// Check loads path and returns the config, or its problems.
func Check(path string) (*Config, []Problem) {
	c, err := Load(path)
	if ce, ok := errors.AsType[*ConfigError](err); ok {
		return nil, ce.Problems
	}
	return c, nil
}

// Parse decodes, resolves and validates config data; name labels errors.
func Parse(name string, data []byte) (*Config, error) {
	fail := func(ps []Problem) error {
		sortProblems(ps)
		return &ConfigError{File: name, Problems: ps}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fail([]Problem{yamlProblem(err)})
	}
	if root.Kind == 0 {
		return nil, fail([]Problem{{Msg: "the file is empty"}})
	}
	var c Config
	if ps := checkShape(&root, &c); len(ps) > 0 {
		return nil, fail(ps)
	}
	// The shape check found nothing; the strict decoder is the backstop.
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, fail([]Problem{yamlProblem(err)})
	}
	ps := explicitLimits(&root, &c)
	ps = append(ps, explicitHTTP(&root, &c)...)
	c.setDefaults()
	ps = append(ps, c.validate()...)
	for i := range ps {
		if ps[i].Line == 0 {
			ps[i].Line = lineOf(&root, ps[i].Path)
		}
	}
	if len(ps) > 0 {
		return nil, fail(ps)
	}
	return &c, nil
}

// sortProblems orders problems by line; those without one go last.
func sortProblems(ps []Problem) {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		switch {
		case a.Line == b.Line:
			return 0
		case a.Line == 0:
			return 1
		case b.Line == 0:
			return -1
		}
		return a.Line - b.Line
	})
}

// explicitLimits refuses limits written as zero or less (left out, they
// take the default).
func explicitLimits(root *yaml.Node, c *Config) []Problem {
	var ps []Problem
	for i := range c.Tenants {
		l := c.Tenants[i].Limits
		for _, f := range []struct {
			name string
			v    float64
		}{
			{"calls_per_second", l.CallsPerSecond}, {"burst", float64(l.Burst)},
			{"max_concurrent_calls", float64(l.MaxConcurrentCalls)}, {"llm_tokens_per_minute", float64(l.LLMTokensPerMinute)},
		} {
			path := fmt.Sprintf("tenants[%d].limits.%s", i, f.name)
			if n := nodeAt(root, path); n != nil && f.v <= 0 {
				ps = append(ps, Problem{Path: path, Line: n.Line, Msg: "must be > 0"})
			}
		}
	}
	return ps
}

// explicitHTTP refuses http limits written as zero or less (left out,
// they take the default).
func explicitHTTP(root *yaml.Node, c *Config) []Problem {
	h := c.HTTP
	var ps []Problem
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"max_connections", int64(h.MaxConnections)}, {"read_header_timeout", int64(h.ReadHeaderTimeout)},
		{"read_timeout", int64(h.ReadTimeout)}, {"idle_timeout", int64(h.IdleTimeout)},
		{"max_header_bytes", int64(h.MaxHeaderBytes)}, {"offer_timeout", int64(h.OfferTimeout)},
	} {
		path := "http." + f.name
		if n := nodeAt(root, path); n != nil && f.v <= 0 {
			ps = append(ps, Problem{Path: path, Line: n.Line, Msg: "must be > 0"})
		}
	}
	return ps
}

func (c *Config) setDefaults() {
	if c.Listen.HTTP == "" {
		c.Listen.HTTP = "127.0.0.1:8080"
	}
	if c.Tokens.Issuer == "" {
		c.Tokens.Issuer = "voicegw"
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = Duration(30 * time.Second)
	}
	h := &c.HTTP
	if h.MaxConnections == 0 {
		h.MaxConnections = 1024
	}
	if h.ReadHeaderTimeout == 0 {
		h.ReadHeaderTimeout = Duration(10 * time.Second)
	}
	if h.ReadTimeout == 0 {
		h.ReadTimeout = Duration(30 * time.Second)
	}
	if h.IdleTimeout == 0 {
		h.IdleTimeout = Duration(120 * time.Second)
	}
	if h.MaxHeaderBytes == 0 {
		h.MaxHeaderBytes = 16 << 10
	}
	if h.OfferTimeout == 0 {
		h.OfferTimeout = Duration(10 * time.Second)
	}
	c.setSIPDefaults()
	if c.Redis != nil {
		if c.Redis.LocalShare == 0 {
			c.Redis.LocalShare = 0.5
		}
		if c.Redis.LeaseTTL == 0 {
			c.Redis.LeaseTTL = Duration(15 * time.Second)
		}
	}
	for i := range c.Tenants {
		t := &c.Tenants[i]
		if t.TokenTTL == 0 {
			t.TokenTTL = Duration(5 * time.Minute)
		}
		if t.IdP != nil && t.IdP.USPersonClaim == "" {
			t.IdP.USPersonClaim = "us_person"
		}
		l := &t.Limits
		if l.CallsPerSecond == 0 {
			l.CallsPerSecond = 5
		}
		if l.Burst == 0 {
			l.Burst = 10
		}
		if l.MaxConcurrentCalls == 0 {
			l.MaxConcurrentCalls = 20
		}
		if l.LLMTokensPerMinute == 0 {
			l.LLMTokensPerMinute = 60000
		}
	}
}

// Tenant returns the tenant with id, or nil.
func (c *Config) Tenant(id string) *Tenant {
	for i := range c.Tenants {
		if c.Tenants[i].ID == id {
			return &c.Tenants[i]
		}
	}
	return nil
}

// Backend returns the backend named name, or nil.
func (c *Config) Backend(name string) *Backend {
	for i := range c.Backends {
		if c.Backends[i].Name == name {
			return &c.Backends[i]
		}
	}
	return nil
}

// Compliant reports whether backend b may carry tenant t's data: its
// impact level is at least the tenant's and its region is one of the
// tenant's.
func Compliant(t *Tenant, b *Backend) bool {
	need, ok := impactLevels[t.ImpactLevel]
	have, ok2 := impactLevels[b.ImpactLevel]
	return ok && ok2 && have >= need && slices.Contains(t.Regions, b.Region)
}

// Route returns the backends tenant tenantID may use for role (RoleASR,
// RoleLLM, RoleTTS) in its order of preference, keeping only those inside
// the tenant's boundary (see Compliant). The first serves; failover walks
// the rest and never leaves the list. Validation already refuses a config
// that lists a non-compliant backend; this is the router's second line of
// defence. It returns nil for an unknown tenant or role.
func (c *Config) Route(tenantID, role string) []Backend {
	t := c.Tenant(tenantID)
	if t == nil {
		return nil
	}
	var out []Backend
	for _, n := range t.backendNames(role) {
		if b := c.Backend(n); b != nil && b.Role == role && Compliant(t, b) {
			out = append(out, *b)
		}
	}
	return out
}

func (t *Tenant) backendNames(role string) []string {
	switch role {
	case RoleASR:
		return t.ASR
	case RoleLLM:
		return t.LLM
	case RoleTTS:
		return t.TTS
	}
	return nil
}

// impactLevels orders the DoD cloud impact levels.
var impactLevels = map[string]int{"IL2": 2, "IL4": 4, "IL5": 5, "IL6": 6}

// readLimited reads at most limit bytes of path.
func readLimited(path string, limit int64) ([]byte, error) {
	return readFile(path, limit, false)
}

// readRegular is readLimited for a regular file only, so a path to a
// device or a pipe cannot block a check.
func readRegular(path string, limit int64) ([]byte, error) {
	return readFile(path, limit, true)
}

func readFile(path string, limit int64, regular bool) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if regular {
		if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
			return nil, fmt.Errorf("%s is not a regular file", path)
		}
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, limit)
	}
	return b, nil
}
