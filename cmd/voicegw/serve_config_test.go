package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voicegw/voicegw/loadtest"
	"github.com/voicegw/voicegw/loadtest/sim"
	"github.com/voicegw/voicegw/media/mediatest"
)

func hashKey(k string) string {
	s := sha256.Sum256([]byte(k))
	return "sha256:" + hex.EncodeToString(s[:])
}

// TestServeConfig runs the gateway from a config file with two tenants:
// API keys mint call tokens at POST /v1/tokens; a tenant's concurrency
// limit refuses the call over it with rate_limited and a retry hint; a
// U.S.-person-only tenant refuses a caller who is not attested.
func TestServeConfig(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, simURL, err := sim.Listen(ctx, "127.0.0.1:0", sim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("TEST_TOKEN_KEY", strings.Repeat("k", 40))
	cfgPath := filepath.Join(t.TempDir(), "voicegw.yaml")
	cfg := `
listen: {http: "127.0.0.1:0", media: "127.0.0.1:0"}
drain_timeout: 1s
audit: {path: ` + filepath.Join(t.TempDir(), "audit.jsonl") + `}
tokens: {signing_key: env:TEST_TOKEN_KEY}
backends:
  - {name: asr, role: asr, url: "` + simURL + `", region: us-gov-west-1, impact_level: IL5}
  - {name: llm-down, role: llm, url: "http://127.0.0.1:1", region: us-gov-west-1, impact_level: IL5}
  - {name: llm, role: llm, url: "` + simURL + `", region: us-gov-west-1, impact_level: IL5}
  - {name: tts, role: tts, url: "` + simURL + `", region: us-gov-west-1, impact_level: IL5}
tenants:
  - {id: acme, impact_level: IL5, regions: [us-gov-west-1], asr: [asr], llm: [llm-down, llm], tts: [tts],
     api_keys: [{id: k1, hash: "` + hashKey("acme-key") + `"}], limits: {max_concurrent_calls: 1}}
  - {id: secure, impact_level: IL4, regions: [us-gov-west-1], asr: [asr], llm: [llm], tts: [tts], us_person_only: true,
     api_keys: [{id: k1, hash: "` + hashKey("secure-key") + `"}]}
`
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	base, done := startServe(t, ctx, cfgPath)
	mint := func(key, body string) (int, map[string]string) { return mintToken(t, base, key, body) }
	if code, _ := mint("wrong", `{"subject":"x"}`); code != 401 {
		t.Errorf("wrong API key: %d", code)
	}
	code, tok := mint("acme-key", `{"subject":"alice"}`)
	if code != 200 || tok["tenant"] != "acme" || tok["token"] == "" {
		t.Fatalf("mint: %d %v", code, tok)
	}
	dctx, dcancel := context.WithTimeout(ctx, 20*time.Second)
	defer dcancel()
	c1, err := loadtest.Dial(dctx, loadtest.CallerConfig{Gateway: base, Token: tok["token"]})
	if err != nil {
		t.Fatalf("first call: %v", err)
	}
	defer c1.Close()
	if err := c1.Connected(dctx); err != nil {
		t.Fatal(err)
	}
	// The tenant's first LLM is down: the turn fails over to the next
	// compliant one and completes.
	c1.Say(mediatest.Speech(t, "Hello, what time is it?", 16000))
	for m := range c1.Events() {
		if m.Type == "turn" {
			if m.Outcome != "completed" {
				t.Errorf("turn with the first LLM down: %s", m.Outcome)
			}
			break
		}
	}
	_, err = loadtest.Dial(dctx, loadtest.CallerConfig{Gateway: base, Token: tok["token"]})
	var se *loadtest.SignalingError
	if !errors.As(err, &se) || se.Code != "rate_limited" || se.RetryAfter <= 0 {
		t.Errorf("second concurrent call: %v, want rate_limited with a retry hint", err)
	}
	// The U.S.-person-only tenant.
	_, tok2 := mint("secure-key", `{"subject":"bob"}`)
	_, err = loadtest.Dial(dctx, loadtest.CallerConfig{Gateway: base, Token: tok2["token"]})
	if !errors.As(err, &se) || se.Code != "us_person_required" {
		t.Errorf("unattested caller on a U.S.-person-only tenant: %v", err)
	}
	_, tok3 := mint("secure-key", `{"subject":"carol","us_person":true,"attested_by":"secure FSO"}`)
	c3, err := loadtest.Dial(dctx, loadtest.CallerConfig{Gateway: base, Token: tok3["token"]})
	if err != nil {
		t.Errorf("attested caller: %v", err)
	} else {
		c3.Close()
	}
	// Stopping drains: the call still up is hung up at drain_timeout.
	cancel()
	reason := ""
	for m := range c1.Events() {
		if m.Type == "hangup" {
			reason = m.Reason
			break
		}
	}
	if reason != "shutdown" {
		t.Errorf("call in progress at stop: hangup %q, want shutdown at the drain timeout", reason)
	}
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}
}

// startServe runs `voicegw serve --config cfgPath` until ctx ends and
// returns its HTTP base URL and a channel with its exit code.
func startServe(t *testing.T, ctx context.Context, cfgPath string) (string, chan int) {
	t.Helper()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	var errb syncBuffer
	go func() {
		done <- run(ctx, []string{"serve", "--config", cfgPath}, nil, pw, &errb)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	var base string
	for sc.Scan() {
		if _, rest, ok := strings.Cut(sc.Text(), " http "); ok {
			base = "http://" + strings.TrimSuffix(strings.Fields(rest)[0], ",")
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if base == "" {
		t.Fatalf("no address printed; stderr: %s", errb.String())
	}
	return base, done
}

// mintToken posts body to /v1/tokens with API key key.
func mintToken(t *testing.T, base, key, body string) (int, map[string]string) {
	req, _ := http.NewRequest("POST", base+"/v1/tokens", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0, nil
	}
	defer resp.Body.Close()
	var m map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// TestTenantIsolation: one tenant floods the gateway (token mints and call
// attempts far over its limits) while its only LLM is down; the other
// tenant, on the same gateway at the same time, mints every token, gets
// every call it is entitled to, and every turn completes.
func TestTenantIsolation(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, simURL, err := sim.Listen(ctx, "127.0.0.1:0", sim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("TEST_TOKEN_KEY", strings.Repeat("k", 40))
	cfgPath := filepath.Join(t.TempDir(), "voicegw.yaml")
	cfg := `
listen: {http: "127.0.0.1:0", media: "127.0.0.1:0"}
drain_timeout: 1s
audit: {path: ` + filepath.Join(t.TempDir(), "audit.jsonl") + `}
tokens: {signing_key: env:TEST_TOKEN_KEY}
backends:
  - {name: asr, role: asr, url: "` + simURL + `", region: us-gov-west-1, impact_level: IL5}
  - {name: llm-down, role: llm, url: "http://127.0.0.1:1", region: us-gov-west-1, impact_level: IL5}
  - {name: llm, role: llm, url: "` + simURL + `", region: us-gov-west-1, impact_level: IL5}
  - {name: tts, role: tts, url: "` + simURL + `", region: us-gov-west-1, impact_level: IL5}
tenants:
  - {id: noisy, impact_level: IL5, regions: [us-gov-west-1], asr: [asr], llm: [llm-down], tts: [tts],
     api_keys: [{id: k1, hash: "` + hashKey("noisy-key") + `"}], limits: {calls_per_second: 1, burst: 3, max_concurrent_calls: 2}}
  - {id: quiet, impact_level: IL5, regions: [us-gov-west-1], asr: [asr], llm: [llm], tts: [tts],
     api_keys: [{id: k1, hash: "` + hashKey("quiet-key") + `"}], limits: {calls_per_second: 1, burst: 3, max_concurrent_calls: 3}}
`
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	base, done := startServe(t, ctx, cfgPath)
	dctx, dcancel := context.WithTimeout(ctx, 60*time.Second)
	defer dcancel()

	// The noisy tenant exhausts its mint rate: most of 20 are refused.
	var noisyTok string
	refused := 0
	for range 20 {
		code, m := mintToken(t, base, "noisy-key", `{"subject":"n"}`)
		switch code {
		case 200:
			noisyTok = m["token"]
		case 429:
			refused++
		default:
			t.Fatalf("noisy mint: %d", code)
		}
	}
	if refused < 15 || noisyTok == "" {
		t.Fatalf("noisy tenant: %d of 20 mints refused, token %q; want its burst admitted and the rest refused", refused, noisyTok)
	}
	// The quiet tenant is not affected by it.
	quietToks := make([]string, 3)
	for i := range quietToks {
		code, m := mintToken(t, base, "quiet-key", `{"subject":"q"}`)
		if code != 200 {
			t.Fatalf("quiet tenant mint %d refused (%d) while the other tenant floods", i, code)
		}
		quietToks[i] = m["token"]
	}

	// The noisy tenant tries 8 calls at once: at most its 2 concurrent
	// calls are admitted, the rest refused with rate_limited. Its calls
	// stay up while the quiet tenant places its own.
	type result struct {
		c   *loadtest.Caller
		err error
	}
	noisy := make(chan result, 8)
	for range 8 {
		go func() {
			c, err := loadtest.Dial(dctx, loadtest.CallerConfig{Gateway: base, Token: noisyTok})
			noisy <- result{c, err}
		}()
	}
	var noisyCalls []*loadtest.Caller
	for range 8 {
		r := <-noisy
		var se *loadtest.SignalingError
		switch {
		case r.err == nil:
			noisyCalls = append(noisyCalls, r.c)
			defer r.c.Close()
		case errors.As(r.err, &se) && se.Code == "rate_limited":
		default:
			t.Errorf("noisy call: %v, want admitted or rate_limited", r.err)
		}
	}
	if len(noisyCalls) == 0 || len(noisyCalls) > 2 {
		t.Fatalf("noisy tenant got %d calls up, want 1 or 2 (its concurrency limit is 2)", len(noisyCalls))
	}
	// Its turns fail (its only LLM is down) and it hears a notice.
	for _, c := range noisyCalls {
		if err := c.Connected(dctx); err != nil {
			t.Fatal(err)
		}
		c.Say(mediatest.Speech(t, "Hello, is anyone there?", 16000))
	}

	// The quiet tenant: all 3 of its calls are admitted and every turn
	// completes on its own LLM.
	var quiet []*loadtest.Caller
	for i, tok := range quietToks {
		c, err := loadtest.Dial(dctx, loadtest.CallerConfig{Gateway: base, Token: tok})
		if err != nil {
			t.Fatalf("quiet call %d refused while the other tenant is over its limits: %v", i, err)
		}
		defer c.Close()
		if err := c.Connected(dctx); err != nil {
			t.Fatal(err)
		}
		quiet = append(quiet, c)
	}
	for _, c := range quiet {
		c.Say(mediatest.Speech(t, "Hello, what time is it?", 16000))
	}
	turnOutcome := func(c *loadtest.Caller) string {
		for {
			select {
			case m, ok := <-c.Events():
				if !ok {
					return "events closed"
				}
				if m.Type == "turn" {
					return m.Outcome
				}
			case <-dctx.Done():
				return "no turn"
			}
		}
	}
	for i, c := range quiet {
		if o := turnOutcome(c); o != "completed" {
			t.Errorf("quiet call %d: turn %s, want completed", i, o)
		}
	}
	for i, c := range noisyCalls {
		if o := turnOutcome(c); o != "failed" {
			t.Errorf("noisy call %d: turn %s, want failed (its only LLM is down)", i, o)
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}
}
