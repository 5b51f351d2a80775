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
		if _, rest, ok := strings.Cut(sc.Text(), " http "); ok && base == "" {
			base = "http://" + strings.Fields(strings.TrimSuffix(rest, ","))[0]
			base = strings.TrimSuffix(base, ",")
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if base == "" {
		t.Fatalf("no address printed; stderr: %s", errb.String())
	}
	mint := func(key string, body string) (int, map[string]string) {
		req, _ := http.NewRequest("POST", base+"/v1/tokens", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]string
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
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
	cancel()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}
}
