package tenants

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// secretsInFixtures are values the broken fixtures hold where a secret
// would go; no output may echo them.
var secretsInFixtures = []string{"plaintext", "hunter2", "sk-live", ":pw@"}

// TestBrokenConfigs: each file under testdata/broken is refused with the
// lines in its .golden file (one subtest per file).
func TestBrokenConfigs(t *testing.T) {
	t.Setenv("VOICEGW_TEST_UNSET_SECRET_9F2", "")
	t.Setenv("VOICEGW_TEST_TOKEN_KEY", strings.Repeat("k", 40))
	files, _ := filepath.Glob("testdata/broken/*.yaml")
	if len(files) < 5 {
		t.Fatalf("%d fixtures", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := Load(f)
			ce, ok := errors.AsType[*ConfigError](err)
			if !ok {
				t.Fatalf("got %v, want a *ConfigError", err)
			}
			got := ce.Error() + "\n"
			golden := strings.TrimSuffix(f, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
			for _, s := range secretsInFixtures {
				if strings.Contains(got, s) {
					t.Errorf("a secret-looking value (%q) was echoed", s)
				}
			}
			_, ps := Check(f)
			if len(ps) != len(ce.Problems) {
				t.Errorf("Check found %d problems, Load %d", len(ps), len(ce.Problems))
			}
		})
	}
}

func exampleEnv(t *testing.T) {
	t.Setenv("VOICEGW_AUDIT_SALT", "salt")
	t.Setenv("VOICEGW_TOKEN_KEY", strings.Repeat("k", 32))
	t.Setenv("VLLM_KEY", "vllm-secret-value")
	t.Setenv("ACME_SIP_PASSWORD", "sip-secret-value")
}

// exampleKeys replace the example's API-key placeholders.
var exampleKeys = strings.NewReplacer(
	"sha256:CHANGE-ME-ops-2026", "sha256:"+sha("example-ops-key-0123456789abcdef"),
	"sha256:CHANGE-ME-lab-1", "sha256:"+sha("example-lab-key-0123456789abcdef"))

// exampleData is the example config with real API-key hashes in place of
// its placeholders.
func exampleData(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("../examples/voicegw.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out := exampleKeys.Replace(string(b))
	if strings.Contains(out, "CHANGE-ME") {
		t.Fatal("the example has a placeholder exampleKeys does not replace")
	}
	return []byte(out)
}

// exampleFile is exampleData written to a file.
func exampleFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "voicegw.yaml")
	if err := os.WriteFile(p, exampleData(t), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestExamplePlaceholders: the example as shipped fails validation on its
// API-key placeholders, naming each field; so do the hashes of well-known
// weak keys.
func TestExamplePlaceholders(t *testing.T) {
	exampleEnv(t)
	_, err := Load("../examples/voicegw.yaml")
	ce, ok := errors.AsType[*ConfigError](err)
	if !ok || len(ce.Problems) != 2 {
		t.Fatalf("got %v, want the two placeholders refused", err)
	}
	for i, want := range []string{"tenants[0].api_keys[0].hash", "tenants[1].api_keys[0].hash"} {
		if p := ce.Problems[i]; p.Path != want || !strings.Contains(p.Msg, "is a placeholder") || p.Line == 0 {
			t.Errorf("problem %d: %+v, want %s: … is a placeholder", i, p, want)
		}
	}
	for _, weak := range []string{"123456", "12345", "password", "changeme"} {
		data := strings.Replace(minimal, "asr: [a], llm: [l], tts: [s]}", `asr: [a], llm: [l], tts: [s], api_keys: [{id: k, hash: "sha256:`+sha(weak)+`"}]}`, 1) +
			"tokens: {signing_key: env:VOICEGW_TOKEN_KEY}\n"
		_, err := Parse("t.yaml", []byte(data))
		if err == nil || !strings.Contains(err.Error(), "tenants[0].api_keys[0].hash: is the hash of a well-known weak key") {
			t.Errorf("key %q: %v", weak, err)
		}
	}
	for _, ph := range []string{"sha256:changeme", "<sha256 of your key>", "sha256:REPLACE_WITH_HASH"} {
		data := strings.Replace(minimal, "asr: [a], llm: [l], tts: [s]}", `asr: [a], llm: [l], tts: [s], api_keys: [{id: k, hash: "`+ph+`"}]}`, 1) +
			"tokens: {signing_key: env:VOICEGW_TOKEN_KEY}\n"
		if _, err := Parse("t.yaml", []byte(data)); err == nil || !strings.Contains(err.Error(), "tenants[0].api_keys[0].hash: ") || !strings.Contains(err.Error(), "is a placeholder") {
			t.Errorf("placeholder %q: %v", ph, err)
		}
	}
}

func TestExampleConfig(t *testing.T) {
	exampleEnv(t)
	c, err := Load(exampleFile(t))
	if err != nil {
		t.Fatal(err)
	}
	llms := c.Route("acme-defense", RoleLLM)
	if len(llms) != 2 || llms[0].Name != "vllm-gov" || llms[1].Name != "vllm-gov-east" || llms[0].APIKey.Value() != "vllm-secret-value" {
		t.Errorf("llm backends %v", llms)
	}
	if got := c.Route("acme-defense", RoleASR); len(got) != 1 || got[0].Name != "whisper-gov" {
		t.Errorf("asr backends %v", got)
	}
	if got := c.Route("acme-defense", RoleTTS); len(got) != 1 {
		t.Errorf("tts backends %v", got)
	}
	if got := c.Route("lab", RoleLLM); len(got) != 2 || got[0].Name != "vllm-il4" {
		t.Errorf("lab llm backends %v", got)
	}
	acme := c.Tenant("acme-defense")
	if acme.Limits.MaxConcurrentCalls != 50 || acme.TokenTTL != Duration(5*time.Minute) || !acme.USPersonOnly {
		t.Errorf("tenant %+v", acme)
	}
	if c.Tenant("nobody") != nil || c.Route("nobody", RoleLLM) != nil || c.Route("lab", "video") != nil {
		t.Error("unknown tenant or role routed")
	}
	sip := c.Listen.SIP
	if lo, hi := sip.PortRange(); sip == nil || lo != 20000 || hi != 29999 || time.Duration(sip.RTPTimeout) != 30*time.Second {
		t.Errorf("listen.sip %+v", sip)
	}
	if len(acme.Trunks) != 1 {
		t.Fatalf("trunks %+v", acme.Trunks)
	}
	tr := acme.Trunks[0]
	if tr.Digest.Password.Value() != "sip-secret-value" || tr.Callers != CallersAttested || tr.Numbers["18005550199"] != "export-desk" ||
		len(tr.Prefixes()) != 1 || tr.Prefixes()[0].String() != "127.0.0.0/8" || tr.Digest.Algorithms[0] != "SHA-256" {
		t.Errorf("trunk %+v", tr)
	}
	if acme.Agents["export-desk"].Greeting == "" {
		t.Errorf("agents %+v", acme.Agents)
	}
}

// TestRouteKeepsOnlyCompliant: the router filters a hand-built config that
// validation would refuse, keeping the tenant's order.
func TestRouteKeepsOnlyCompliant(t *testing.T) {
	c := &Config{
		Backends: []Backend{
			{Name: "il4", Role: RoleLLM, Region: "gov-west", ImpactLevel: "IL4"},
			{Name: "east", Role: RoleLLM, Region: "east", ImpactLevel: "IL6"},
			{Name: "b", Role: RoleLLM, Region: "gov-west", ImpactLevel: "IL6"},
			{Name: "a", Role: RoleLLM, Region: "gov-east", ImpactLevel: "IL5"},
			{Name: "tts", Role: RoleTTS, Region: "gov-west", ImpactLevel: "IL5"},
		},
		Tenants: []Tenant{{ID: "t", ImpactLevel: "IL5", Regions: []string{"gov-west", "gov-east"}, LLM: []string{"il4", "b", "east", "tts", "missing", "a"}}},
	}
	var names []string
	for _, b := range c.Route("t", RoleLLM) {
		names = append(names, b.Name)
	}
	if got := strings.Join(names, ","); got != "b,a" {
		t.Errorf("route %s, want b,a", got)
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	exampleEnv(t)
	c, err := Load(exampleFile(t))
	if err != nil {
		t.Fatal(err)
	}
	b := *c.Backend("vllm-gov")
	var outs []string
	outs = append(outs, fmt.Sprint(b), fmt.Sprintf("%+v", b), fmt.Sprintf("%#v", b), fmt.Sprintf("%v", c), fmt.Sprintf("%+v", *c))
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	y, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("backend", "api_key", b.APIKey, "backend", b)
	slog.New(slog.NewTextHandler(&logged, nil)).Info("backend", "api_key", b.APIKey, "salt", c.Audit.Salt)
	outs = append(outs, string(j), string(y), logged.String())
	for _, o := range outs {
		for _, secret := range []string{"vllm-secret-value", strings.Repeat("k", 32)} {
			if strings.Contains(o, secret) {
				t.Errorf("secret printed in %s", o)
			}
		}
	}
	if !strings.Contains(string(j), "[secret env:VLLM_KEY]") || !strings.Contains(string(y), "env:VLLM_KEY") {
		t.Errorf("the reference should still show: %s", j)
	}
}

func TestSecretFile(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	if err := os.WriteFile(key, []byte(strings.Repeat("f", 40)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Parse("t.yaml", []byte(minimal+"tokens: {signing_key: \"file:"+key+"\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Tokens.SigningKey.Value() != strings.Repeat("f", 40) {
		t.Error("file secret not read or not trimmed")
	}
	empty := filepath.Join(dir, "empty")
	_ = os.WriteFile(empty, []byte("\n"), 0o600)
	for ref, want := range map[string]string{
		"file:" + empty: "is empty", "file:" + dir: "not a regular file", "file:" + filepath.Join(dir, "none"): "no such file",
		"env:": "needs a variable name", "verbatim-secret": "must be a reference",
	} {
		_, err := Parse("t.yaml", []byte(minimal+"audit: {salt: \""+ref+"\"}\n"))
		if err == nil || !strings.Contains(err.Error(), "audit.salt: ") || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", ref, err, want)
		}
	}
}

const minimal = `
backends:
  - {name: a, role: asr, url: "http://127.0.0.1:1", region: r, impact_level: IL5}
  - {name: l, role: llm, url: "http://[::1]:1", region: r, impact_level: IL5}
  - {name: s, role: tts, url: "ws://localhost:1", region: r, impact_level: IL6}
tenants:
  - {id: acme, impact_level: IL5, regions: [r], asr: [a], llm: [l], tts: [s]}
`

func TestDefaults(t *testing.T) {
	c, err := Parse("t.yaml", []byte(minimal+"redis: {url: \"redis://127.0.0.1:6379/0\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	acme := c.Tenants[0]
	want := Limits{CallsPerSecond: 5, Burst: 10, MaxConcurrentCalls: 20, LLMTokensPerMinute: 60000}
	if acme.Limits != want || acme.TokenTTL != Duration(5*time.Minute) || c.Listen.HTTP != "127.0.0.1:8080" || c.Tokens.Issuer != "voicegw" {
		t.Errorf("defaults: %+v", c)
	}
	if c.Redis.LocalShare != 0.5 || c.Redis.LeaseTTL != Duration(15*time.Second) {
		t.Errorf("redis defaults: %+v", c.Redis)
	}
	if c.DrainTimeout != Duration(30*time.Second) {
		t.Errorf("drain_timeout default %s, want 30s", time.Duration(c.DrainTimeout))
	}
	if got := acme.Party(Principal{}); got != PartyUnknown {
		t.Errorf("party %s", got)
	}
	if got := acme.Party(Principal{USPerson: true}); got != PartyUSPerson {
		t.Errorf("party %s", got)
	}
}

func TestMergeKeysAndAnchors(t *testing.T) {
	doc := minimal[:strings.Index(minimal, "tenants:")] + `
x-limits: &lim {max_concurrent_calls: 7}
tenants:
  - {id: acme, impact_level: IL5, regions: [r], asr: [a], llm: [l], tts: [s], limits: {<<: *lim, burst: 3}}
`
	_, err := Parse("t.yaml", []byte(doc))
	if err == nil || !strings.Contains(err.Error(), "x-limits: unknown field") {
		t.Fatalf("unknown top-level anchor holder: %v", err)
	}
	doc = minimal[:strings.Index(minimal, "tenants:")] + `
tenants:
  - &base {id: acme, impact_level: IL5, regions: [r], asr: [a], llm: [l], tts: [s], limits: {max_concurrent_calls: 7}}
  - {<<: *base, id: beta}
`
	c, err := Parse("t.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if c.Tenants[1].ID != "beta" || c.Tenants[1].Limits.MaxConcurrentCalls != 7 {
		t.Errorf("merged tenant %+v", c.Tenants[1])
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, ps := Check(filepath.Join(t.TempDir(), "none.yaml"))
	if len(ps) != 1 || !strings.Contains(ps[0].String(), "no such file") {
		t.Errorf("problems %v", ps)
	}
}

// writeCert writes a self-signed P-256 certificate and key as PEM files.
func writeCert(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, DNSNames: []string{name}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(k)
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile
}

func TestTLSFiles(t *testing.T) {
	dir := t.TempDir()
	ca, _ := writeCert(t, dir, "ca")
	crt, key := writeCert(t, dir, "client")
	doc := strings.Replace(minimal, "impact_level: IL5}\n  - {name: l", "impact_level: IL5, ca_file: "+ca+", client_cert: "+crt+", client_key: "+key+"}\n  - {name: l", 1)
	c, err := Parse("t.yaml", []byte(doc+"listen: {tls_cert: "+crt+", tls_key: "+key+"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	conf, err := c.Backends[0].TLSConfig()
	if err != nil || conf == nil || conf.RootCAs == nil || len(conf.Certificates) != 1 {
		t.Fatalf("backend TLS %+v %v", conf, err)
	}
	if conf, err := c.Backends[1].TLSConfig(); conf != nil || err != nil {
		t.Errorf("no TLS files: %v %v", conf, err)
	}
	bad := strings.Replace(doc, "ca_file: "+ca, "ca_file: "+key, 1)
	bad = strings.Replace(bad, "client_key: "+key, "client_key: "+ca, 1)
	_, err = Parse("t.yaml", []byte(bad+"listen: {tls_cert: "+crt+", tls_key: "+ca+"}\n"))
	for _, want := range []string{"backends[0].ca_file: " + key + " holds no PEM certificate", "listen.tls_cert: cannot load"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want %q", err, want)
		}
	}
}

// FuzzLoad: any bytes either load or are refused with a *ConfigError;
// nothing panics, and a refusal never echoes a secret's value.
func FuzzLoad(f *testing.F) {
	if b, err := os.ReadFile("../examples/voicegw.yaml"); err == nil {
		f.Add([]byte(exampleKeys.Replace(string(b))))
	}
	files, _ := filepath.Glob("testdata/broken/*.yaml")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Add([]byte("a: &a [*a, *a]\nb: &b [*a, *a]\nc: [*b, *b]\n"))
	f.Add([]byte("tenants: [{<<: [{id: x}], id: y}]"))
	f.Setenv("VOICEGW_FUZZ_SECRET", "fuzz-secret-value-0123456789abcdef")
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data)
		if err != nil {
			ce, ok := errors.AsType[*ConfigError](err)
			if !ok || len(ce.Problems) == 0 {
				t.Fatalf("unclassified error %v", err)
			}
			if strings.Contains(err.Error(), "fuzz-secret-value") {
				t.Fatalf("secret echoed: %v", err)
			}
			return
		}
		if len(c.Tenants) == 0 {
			t.Fatal("a config without tenants loaded")
		}
		for _, tn := range c.Tenants {
			for _, role := range []string{RoleASR, RoleLLM, RoleTTS} {
				if len(c.Route(tn.ID, role)) == 0 {
					t.Fatalf("tenant %s loaded without a compliant %s backend", tn.ID, role)
				}
			}
		}
	})
}

// TestClassifierBundle: classifier.bundle is loaded with the config; a
// bundle whose part does not match its manifest is a config error naming
// the field and the file.
func TestClassifierBundle(t *testing.T) {
	exampleEnv(t)
	base := exampleData(t)
	dir := t.TempDir()
	for _, name := range []string{"manifest.json", "default.yaml", "lexicon.yaml", "model.json"} {
		b, err := os.ReadFile(filepath.Join("../classifier/packs", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfgPath := filepath.Join(t.TempDir(), "voicegw.yaml")
	write := func() {
		t.Helper()
		if err := os.WriteFile(cfgPath, append(append([]byte{}, base...), []byte("\nclassifier:\n  bundle: "+dir+"\n")...), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write()
	c, err := Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if c.Classifier.Engine() == nil || c.Classifier.Engine().Model() == nil {
		t.Fatal("bundle not loaded")
	}
	f, err := os.OpenFile(filepath.Join(dir, "model.json"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(" ")
	f.Close()
	write()
	_, err = Load(cfgPath)
	if err == nil || !strings.Contains(err.Error(), "classifier.bundle") || !strings.Contains(err.Error(), "model.json: sha256") {
		t.Errorf("tampered bundle: %v", err)
	}
}

// TestBackendProxy: a backend's proxy is an http, https or socks5 URL with
// a port and nothing else; without one the backend has no proxy at all.
func TestBackendProxy(t *testing.T) {
	withProxy := func(p string) string {
		return strings.Replace(minimal, `url: "http://[::1]:1", `, `url: "http://[::1]:1", proxy: "`+p+`", `, 1)
	}
	c, err := Parse("t.yaml", []byte(withProxy("http://10.0.0.9:3128")))
	if err != nil {
		t.Fatal(err)
	}
	if u := c.Backend("l").ProxyURL(); u == nil || u.Host != "10.0.0.9:3128" {
		t.Errorf("proxy %v", u)
	}
	if u := c.Backend("a").ProxyURL(); u != nil {
		t.Errorf("a backend without proxy got %v", u)
	}
	for p, want := range map[string]string{
		"10.0.0.9:3128":                "backends[1].proxy: ",
		"ftp://10.0.0.9:21":            `scheme "ftp": want http, https or socks5`,
		"http://10.0.0.9":              "is not a proxy URL",
		"http://u:pw@10.0.0.9:3128":    "must not hold credentials",
		"http://10.0.0.9:3128/x?y=1":   "no path, query or fragment",
		"socks5://proxy.internal:1080": "",
	} {
		_, err := Parse("t.yaml", []byte(withProxy(p)))
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: %v", p, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), "backends[1].proxy: ") || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: got %v, want backends[1].proxy: …%s", p, err, want)
		case want != "" && strings.Contains(err.Error(), ":pw@"):
			t.Errorf("%s: credentials echoed: %v", p, err)
		}
	}
}

// TestHTTPLimits: the http section's defaults, and a value given as zero
// or less is refused by field.
func TestHTTPLimits(t *testing.T) {
	c, err := Parse("t.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	want := HTTP{MaxConnections: 1024, ReadHeaderTimeout: Duration(10 * time.Second), ReadTimeout: Duration(30 * time.Second),
		IdleTimeout: Duration(120 * time.Second), MaxHeaderBytes: 16 << 10, OfferTimeout: Duration(10 * time.Second)}
	if c.HTTP != want {
		t.Errorf("defaults %+v, want %+v", c.HTTP, want)
	}
	c, err = Parse("t.yaml", []byte(minimal+"http: {max_connections: 64, offer_timeout: 5s}\n"))
	if err != nil || c.HTTP.MaxConnections != 64 || c.HTTP.OfferTimeout != Duration(5*time.Second) || c.HTTP.IdleTimeout != want.IdleTimeout {
		t.Errorf("given: %+v %v", c.HTTP, err)
	}
	_, err = Parse("t.yaml", []byte(minimal+"http: {max_connections: 0, read_timeout: -1s}\n"))
	for _, w := range []string{"http.max_connections: must be > 0", "http.read_timeout: must be > 0"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("got %v, want %q", err, w)
		}
	}
}
