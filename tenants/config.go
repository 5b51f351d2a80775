// Package tenants holds voicegw's multi-tenant configuration: one YAML file
// with listeners, backends that declare their boundary (region and impact
// level), and tenants that declare what boundary they need. Loading goes
// defaults → strict decode (unknown fields are errors) → secret references
// resolved → validation, and every problem names its field path and line.
package tenants

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the whole gateway configuration.
type Config struct {
	Listen   Listen    `yaml:"listen"`
	Audit    Audit     `yaml:"audit"`
	Redis    *Redis    `yaml:"redis"`
	Tokens   Tokens    `yaml:"tokens"`
	Backends []Backend `yaml:"backends"`
	Tenants  []Tenant  `yaml:"tenants"`
}

// Listen is where the gateway serves.
type Listen struct {
	// HTTP is the address of the softphone, signaling and /metrics.
	// Default "127.0.0.1:8080".
	HTTP string `yaml:"http"`
	// Media is the one UDP address of every WebRTC call. Default the HTTP
	// host with a random port.
	Media string `yaml:"media"`
	// NAT1To1IPs are public addresses advertised for Media behind 1:1 NAT.
	NAT1To1IPs []string `yaml:"nat_1to1_ips"`
	// TLS serves HTTPS when both files are set.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
}

// Audit configures the audit log.
type Audit struct {
	// Path is the JSON-lines audit file. Default standard error.
	Path string `yaml:"path"`
	// Salt keys the span hashes (a secret reference). Default a random
	// salt per process.
	Salt Secret `yaml:"salt"`
}

// Redis shares limits among replicas.
type Redis struct {
	URL string `yaml:"url"`
	// Password is a secret reference.
	Password Secret `yaml:"password"`
	// LocalShare is the fraction of a tenant's limits one replica enforces
	// alone while Redis is unreachable. Default 0.5.
	LocalShare float64 `yaml:"local_share"`
	// LeaseTTL is how long a concurrency lease lives without a heartbeat.
	// Default 15s.
	LeaseTTL Duration `yaml:"lease_ttl"`
}

// Tokens configures the call tokens minted at POST /v1/tokens.
type Tokens struct {
	// SigningKey is an HMAC-SHA-256 key of at least 32 bytes (a secret
	// reference). Required when any tenant has API keys.
	SigningKey Secret `yaml:"signing_key"`
	// Issuer is the tokens' "iss". Default "voicegw".
	Issuer string `yaml:"issuer"`
}

// Backend is one ASR, LLM or TTS engine and the boundary it runs in.
type Backend struct {
	Name        string   `yaml:"name"`
	Role        string   `yaml:"role"` // asr | llm | tts
	URL         string   `yaml:"url"`
	Model       string   `yaml:"model"`
	APIKey      Secret   `yaml:"api_key"`
	Region      string   `yaml:"region"`
	ImpactLevel string   `yaml:"impact_level"` // IL2 | IL4 | IL5 | IL6
	Mode        string   `yaml:"mode"`         // asr: realtime (default) | batch
	Voice       string   `yaml:"voice"`        // tts
	Timeout     Duration `yaml:"timeout"`
	CAFile      string   `yaml:"ca_file"`
	ClientCert  string   `yaml:"client_cert"`
	ClientKey   string   `yaml:"client_key"`
}

// Tenant is one organisation using the gateway.
type Tenant struct {
	ID          string   `yaml:"id"`
	Name        string   `yaml:"name"`
	ImpactLevel string   `yaml:"impact_level"` // the level its data requires
	Regions     []string `yaml:"regions"`      // where its data may go
	ASR         []string `yaml:"asr"`          // backend names, in order of preference
	LLM         []string `yaml:"llm"`
	TTS         []string `yaml:"tts"`
	// APIKeys are SHA-256 hashes ("sha256:<hex>") of the tenant's keys.
	APIKeys      []APIKey `yaml:"api_keys"`
	TokenTTL     Duration `yaml:"token_ttl"`
	USPersonOnly bool     `yaml:"us_person_only"`
	Limits       Limits   `yaml:"limits"`
	Pipeline     Pipeline `yaml:"pipeline"`
}

// APIKey is one stored key hash.
type APIKey struct {
	ID   string `yaml:"id"`
	Hash string `yaml:"hash"`
}

// Limits are per tenant. Zero means the default given.
type Limits struct {
	// CallsPerSecond is the call-attempt rate. Default 5.
	CallsPerSecond float64 `yaml:"calls_per_second"`
	// Burst is the call-attempt burst. Default 10.
	Burst int `yaml:"burst"`
	// MaxConcurrentCalls caps calls in progress. Default 20.
	MaxConcurrentCalls int `yaml:"max_concurrent_calls"`
	// LLMTokensPerMinute caps model output. Default 60000.
	LLMTokensPerMinute int `yaml:"llm_tokens_per_minute"`
}

// Pipeline overrides per tenant.
type Pipeline struct {
	SystemPrompt     string   `yaml:"system_prompt"`
	Greeting         string   `yaml:"greeting"`
	Hangover         Duration `yaml:"hangover"`
	FirstTokenBudget Duration `yaml:"first_token_budget"`
	FirstAudioBudget Duration `yaml:"first_audio_budget"`
}

// Duration is a time.Duration written as "500ms", "15s".
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (e.g. 500ms, 15s)", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// Secret is a value given as "env:NAME" or "file:/path" (or, discouraged,
// inline). It never prints its value.
type Secret struct {
	Ref   string
	value string
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (s *Secret) UnmarshalYAML(n *yaml.Node) error {
	s.Ref = n.Value
	return nil
}

// Value is the resolved secret.
func (s Secret) Value() string { return s.value }

// String never reveals the value.
func (s Secret) String() string {
	if s.Ref == "" {
		return ""
	}
	return "[secret " + refKind(s.Ref) + "]"
}

// MarshalYAML keeps the reference, never the value.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

func refKind(ref string) string {
	switch {
	case strings.HasPrefix(ref, "env:"):
		return "env:" + strings.TrimPrefix(ref, "env:")
	case strings.HasPrefix(ref, "file:"):
		return "file:" + strings.TrimPrefix(ref, "file:")
	}
	return "inline"
}

func (s *Secret) resolve() error {
	switch {
	case s.Ref == "":
		return nil
	case strings.HasPrefix(s.Ref, "env:"):
		name := strings.TrimPrefix(s.Ref, "env:")
		v, ok := os.LookupEnv(name)
		if !ok || v == "" {
			return fmt.Errorf("environment variable %s is not set", name)
		}
		s.value = v
	case strings.HasPrefix(s.Ref, "file:"):
		b, err := os.ReadFile(strings.TrimPrefix(s.Ref, "file:"))
		if err != nil {
			return fmt.Errorf("cannot read secret file: %v", err)
		}
		s.value = strings.TrimSpace(string(b))
		if s.value == "" {
			return errors.New("secret file is empty")
		}
	default:
		s.value = s.Ref
	}
	return nil
}

// Problem is one configuration error.
type Problem struct {
	Path string // e.g. tenants[1].limits.max_concurrent_calls
	Line int    // 0 when unknown
	Msg  string
}

func (p Problem) String() string { return p.Path + ": " + p.Msg }

// ConfigError holds every problem found in a file.
type ConfigError struct {
	File     string
	Problems []Problem
}

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

// Impact levels, ordered.
var impactLevels = map[string]int{"IL2": 2, "IL4": 4, "IL5": 5, "IL6": 6}

// Load reads, resolves and validates a config file.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &ConfigError{File: path, Problems: []Problem{{Path: "(file)", Msg: err.Error()}}}
	}
	return Parse(path, b)
}

// Parse decodes, resolves and validates config data; name labels errors.
func Parse(name string, data []byte) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, &ConfigError{File: name, Problems: []Problem{{Path: "(yaml)", Msg: err.Error()}}}
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		var te *yaml.TypeError
		var probs []Problem
		if errors.As(err, &te) {
			for _, m := range te.Errors {
				p := decodeProblem(m)
				if p.Line > 0 && p.Msg == "unknown field" {
					if full := pathAtLine(&root, p.Line, p.Path); full != "" {
						p.Path = full
					}
				}
				probs = append(probs, p)
			}
		} else {
			probs = append(probs, Problem{Path: "(yaml)", Msg: err.Error()})
		}
		return nil, &ConfigError{File: name, Problems: probs}
	}
	// Limits given explicitly must be positive (zero means "default" only
	// when the field is absent).
	var probs []Problem
	for i := range c.Tenants {
		for _, f := range []string{"calls_per_second", "burst", "max_concurrent_calls", "llm_tokens_per_minute"} {
			path := fmt.Sprintf("tenants[%d].limits.%s", i, f)
			if n := nodeAt(&root, path); n != nil {
				if v, err := strconv.ParseFloat(n.Value, 64); err == nil && v <= 0 {
					probs = append(probs, Problem{Path: path, Msg: "must be > 0"})
				}
			}
		}
	}
	c.setDefaults()
	probs = append(probs, c.validate()...)
	for i := range probs {
		probs[i].Line = lineOf(&root, probs[i].Path)
	}
	if len(probs) > 0 {
		return nil, &ConfigError{File: name, Problems: probs}
	}
	return &c, nil
}

// decodeProblem turns a yaml decoder message ("line 7: field foo not found
// in type tenants.Limits") into a Problem.
func decodeProblem(m string) Problem {
	p := Problem{Path: "(yaml)", Msg: m}
	if rest, ok := strings.CutPrefix(m, "line "); ok {
		if num, msg, ok := strings.Cut(rest, ": "); ok {
			if n, err := strconv.Atoi(num); err == nil {
				p.Line = n
				p.Msg = msg
			}
		}
	}
	if f, ok := strings.CutPrefix(p.Msg, "field "); ok {
		if name, _, ok := strings.Cut(f, " not found"); ok {
			p.Path = name
			p.Msg = "unknown field"
		}
	}
	return p
}

func (c *Config) setDefaults() {
	if c.Listen.HTTP == "" {
		c.Listen.HTTP = "127.0.0.1:8080"
	}
	if c.Tokens.Issuer == "" {
		c.Tokens.Issuer = "voicegw"
	}
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

func (c *Config) validate() []Problem {
	var ps []Problem
	bad := func(path, f string, a ...any) { ps = append(ps, Problem{Path: path, Msg: fmt.Sprintf(f, a...)}) }
	if _, _, err := net.SplitHostPort(c.Listen.HTTP); err != nil {
		bad("listen.http", "not a host:port address: %v", err)
	}
	if (c.Listen.TLSCert == "") != (c.Listen.TLSKey == "") {
		bad("listen.tls_cert", "tls_cert and tls_key go together")
	}
	for i, ip := range c.Listen.NAT1To1IPs {
		if net.ParseIP(ip) == nil {
			bad(fmt.Sprintf("listen.nat_1to1_ips[%d]", i), "%q is not an IP address", ip)
		}
	}
	if err := c.Audit.Salt.resolve(); err != nil {
		bad("audit.salt", "%v", err)
	}
	if c.Redis != nil {
		if u, err := url.Parse(c.Redis.URL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
			bad("redis.url", "must be redis:// or rediss://")
		}
		if err := c.Redis.Password.resolve(); err != nil {
			bad("redis.password", "%v", err)
		}
		if c.Redis.LocalShare <= 0 || c.Redis.LocalShare > 1 {
			bad("redis.local_share", "must be in (0, 1], got %g", c.Redis.LocalShare)
		}
	}
	if err := c.Tokens.SigningKey.resolve(); err != nil {
		bad("tokens.signing_key", "%v", err)
	}
	names := map[string]*Backend{}
	for i := range c.Backends {
		b := &c.Backends[i]
		p := fmt.Sprintf("backends[%d]", i)
		switch {
		case b.Name == "":
			bad(p+".name", "required")
		case names[b.Name] != nil:
			bad(p+".name", "duplicate backend name %q", b.Name)
		default:
			names[b.Name] = b
		}
		if b.Role != "asr" && b.Role != "llm" && b.Role != "tts" {
			bad(p+".role", "must be asr, llm or tts, got %q", b.Role)
		}
		if err := checkBackendURL(b.URL); err != nil {
			bad(p+".url", "%v", err)
		}
		if b.Region == "" {
			bad(p+".region", "required (the region the engine runs in)")
		}
		if _, ok := impactLevels[b.ImpactLevel]; !ok {
			bad(p+".impact_level", "must be IL2, IL4, IL5 or IL6, got %q", b.ImpactLevel)
		}
		if b.Role == "asr" && b.Mode != "" && b.Mode != "realtime" && b.Mode != "batch" {
			bad(p+".mode", "must be realtime or batch, got %q", b.Mode)
		}
		if (b.ClientCert == "") != (b.ClientKey == "") {
			bad(p+".client_cert", "client_cert and client_key go together")
		}
		if err := b.APIKey.resolve(); err != nil {
			bad(p+".api_key", "%v", err)
		}
	}
	if len(c.Tenants) == 0 {
		bad("tenants", "at least one tenant is required")
	}
	ids := map[string]bool{}
	anyKeys := false
	for i := range c.Tenants {
		t := &c.Tenants[i]
		p := fmt.Sprintf("tenants[%d]", i)
		switch {
		case t.ID == "":
			bad(p+".id", "required")
		case ids[t.ID]:
			bad(p+".id", "duplicate tenant id %q", t.ID)
		}
		ids[t.ID] = true
		need, ok := impactLevels[t.ImpactLevel]
		if !ok {
			bad(p+".impact_level", "must be IL2, IL4, IL5 or IL6, got %q", t.ImpactLevel)
		}
		if len(t.Regions) == 0 {
			bad(p+".regions", "at least one region is required")
		}
		for _, role := range []struct {
			name string
			list []string
		}{{"asr", t.ASR}, {"llm", t.LLM}, {"tts", t.TTS}} {
			if len(role.list) == 0 {
				bad(p+"."+role.name, "at least one %s backend is required", role.name)
				continue
			}
			for j, n := range role.list {
				b := names[n]
				bp := fmt.Sprintf("%s.%s[%d]", p, role.name, j)
				switch {
				case b == nil:
					bad(bp, "no backend named %q", n)
				case b.Role != role.name:
					bad(bp, "backend %q has role %s, not %s", n, b.Role, role.name)
				case ok && impactLevels[b.ImpactLevel] < need:
					bad(bp, "backend %q is %s; tenant %q requires %s", n, b.ImpactLevel, t.ID, t.ImpactLevel)
				case !contains(t.Regions, b.Region):
					bad(bp, "backend %q is in region %s, outside tenant %q's regions %v", n, b.Region, t.ID, t.Regions)
				}
			}
		}
		for j, k := range t.APIKeys {
			anyKeys = true
			kp := fmt.Sprintf("%s.api_keys[%d]", p, j)
			if k.ID == "" {
				bad(kp+".id", "required")
			}
			if h, ok := strings.CutPrefix(k.Hash, "sha256:"); !ok || len(h) != 64 || strings.Trim(h, "0123456789abcdef") != "" {
				bad(kp+".hash", "must be sha256:<64 lowercase hex> (store the key's hash, never the key)")
			}
		}
		if h := time.Duration(t.Pipeline.Hangover); h != 0 && (h < 100*time.Millisecond || h > 5*time.Second) {
			bad(p+".pipeline.hangover", "must be between 100ms and 5s, got %s", h)
		}
	}
	if anyKeys && len(c.Tokens.SigningKey.Value()) < 32 {
		bad("tokens.signing_key", "tenants have API keys, so a signing key of at least 32 bytes is required")
	}
	return ps
}

// checkBackendURL requires https/wss except on loopback.
func checkBackendURL(raw string) error {
	if raw == "" {
		return errors.New("required")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL", raw)
	}
	switch u.Scheme {
	case "https", "wss":
		return nil
	case "http", "ws":
		host := u.Hostname()
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() || host == "localhost" {
			return nil
		}
		return fmt.Errorf("%q is not encrypted: use https (plain http only on loopback)", raw)
	}
	return fmt.Errorf("scheme %q is not http(s) or ws(s)", u.Scheme)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// pathAtLine returns the field path of the mapping key named key on line.
func pathAtLine(n *yaml.Node, line int, key string) string {
	var find func(n *yaml.Node, prefix string) string
	find = func(n *yaml.Node, prefix string) string {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				if p := find(c, prefix); p != "" {
					return p
				}
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i]
				p := k.Value
				if prefix != "" {
					p = prefix + "." + k.Value
				}
				if k.Line == line && k.Value == key {
					return p
				}
				if r := find(n.Content[i+1], p); r != "" {
					return r
				}
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				if r := find(c, fmt.Sprintf("%s[%d]", prefix, i)); r != "" {
					return r
				}
			}
		}
		return ""
	}
	return find(n, "")
}

// nodeAt finds the value node at a field path like tenants[1].limits.burst.
func nodeAt(root *yaml.Node, path string) *yaml.Node {
	n, _, ok := walk(root, path)
	if !ok {
		return nil
	}
	return n
}

// lineOf finds the line of a field path, or of its nearest parent.
func lineOf(root *yaml.Node, path string) int {
	_, line, _ := walk(root, path)
	return line
}

func walk(root *yaml.Node, path string) (*yaml.Node, int, bool) {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, part := range strings.Split(path, ".") {
		key, idx := part, -1
		if i := strings.IndexByte(part, '['); i >= 0 && strings.HasSuffix(part, "]") {
			key = part[:i]
			if v, err := strconv.Atoi(part[i+1 : len(part)-1]); err == nil {
				idx = v
			}
		}
		if n.Kind != yaml.MappingNode {
			return nil, line, false
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				line = n.Content[i].Line
				next = n.Content[i+1]
				break
			}
		}
		if next == nil {
			return nil, line, false
		}
		n = next
		if idx >= 0 {
			if n.Kind != yaml.SequenceNode || idx >= len(n.Content) {
				return nil, line, false
			}
			n = n.Content[idx]
			line = n.Line
		}
	}
	return n, line, true
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

// Route returns the backends a tenant may use for role ("asr", "llm",
// "tts"), in its order of preference, keeping only those inside the
// tenant's boundary (impact level at least the tenant's, region among its
// regions). Validation already refuses a config that lists a
// non-compliant backend; this is the router's second line of defence.
func (c *Config) Route(tenantID, role string) []Backend {
	t := c.Tenant(tenantID)
	if t == nil {
		return nil
	}
	var names []string
	switch role {
	case "asr":
		names = t.ASR
	case "llm":
		names = t.LLM
	case "tts":
		names = t.TTS
	}
	need := impactLevels[t.ImpactLevel]
	var out []Backend
	for _, n := range names {
		for _, b := range c.Backends {
			if b.Name == n && b.Role == role && impactLevels[b.ImpactLevel] >= need && contains(t.Regions, b.Region) {
				out = append(out, b)
			}
		}
	}
	return out
}

// Check loads path and returns its problems (none when it is valid).
func Check(path string) (*Config, []Problem) {
	c, err := Load(path)
	var ce *ConfigError
	if errors.As(err, &ce) {
		return nil, ce.Problems
	}
	return c, nil
}
