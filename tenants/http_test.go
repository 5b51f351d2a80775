package tenants

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestTokensHandler(t *testing.T) {
	a := testAuthority(t, false, nil)
	clk := &fakeClock{t: time.Unix(1000, 0)}
	lim := NewLimiter(&Config{Tenants: []Tenant{{ID: "acme", Limits: Limits{CallsPerSecond: 1, Burst: 2, MaxConcurrentCalls: 1, LLMTokensPerMinute: 1}}}}, WithClock(clk.now))
	h := TokensHandler(a, lim, nil)
	post := func(key, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "/v1/tokens", strings.NewReader(body))
		if key != "" {
			r.Header.Set("Authorization", "Bearer "+key)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	w := post(testKey, `{"subject":"alice","us_person":true,"attested_by":"acme HR"}`)
	var got struct {
		Token     string `json:"token"`
		ExpiresAt string `json:"expires_at"`
		Tenant    string `json:"tenant"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &got); w.Code != 200 || err != nil || got.Tenant != "acme" || got.ExpiresAt == "" {
		t.Fatalf("mint: %d %s", w.Code, w.Body)
	}
	if p, err := a.Authenticate(got.Token); err != nil || p.Subject != "alice" || !p.USPerson {
		t.Errorf("minted token: %+v %v", p, err)
	}
	if w := post("wrong", `{"subject":"x"}`); w.Code != http.StatusUnauthorized || strings.Contains(w.Body.String(), "matches no tenant") {
		t.Errorf("wrong key: %d %s (the reason is for the log only)", w.Code, w.Body)
	}
	if w := post("", `{"subject":"x"}`); w.Code != http.StatusUnauthorized {
		t.Errorf("no key: %d", w.Code)
	}
	if w := post(testKey, `{"subject":"x","admin":true}`); w.Code != http.StatusBadRequest {
		t.Errorf("unknown field: %d", w.Code)
	}
	// The burst of 2 is spent (one mint, one bad request): 429 with Retry-After.
	w = post(testKey, `{"subject":"x"}`)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "1" {
		t.Errorf("over the rate: %d Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	clk.add(time.Second)
	if w := post(testKey, `{"subject":"x"}`); w.Code != 200 || w.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("after a second: %d %v", w.Code, w.Header())
	}
}

// TestTokensFailureLimit: after the limit of failed API keys from one
// source within the window, that source gets 429 with Retry-After, even
// with the right key, until the window ends; other sources and successful
// requests are not limited, and the sources tracked stay bounded.
func TestTokensFailureLimit(t *testing.T) {
	a := testAuthority(t, false, nil)
	clk := &fakeClock{t: time.Unix(1000, 0)}
	fails := newFailureLimiter(3, time.Minute, 2, clk.now)
	h := tokensHandler(a, nil, fails, nil)
	post := func(remote, key string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "/v1/tokens", strings.NewReader(`{"subject":"x"}`))
		r.RemoteAddr = remote
		if key != "" {
			r.Header.Set("Authorization", "Bearer "+key)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	for i := range 10 {
		if w := post("192.0.2.9:1000", testKey); w.Code != http.StatusOK {
			t.Fatalf("success %d: %d (successes must not be limited)", i, w.Code)
		}
	}
	for i, key := range []string{"wrong-1", "", "wrong-3"} {
		if w := post("192.0.2.1:1000", key); w.Code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i, w.Code)
		}
	}
	clk.add(15 * time.Second)
	w := post("192.0.2.1:2000", testKey)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "45" || !strings.Contains(w.Body.String(), "rate_limited") {
		t.Fatalf("after the limit: %d Retry-After %q %s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	if w := post("192.0.2.2:1000", testKey); w.Code != http.StatusOK {
		t.Errorf("another source: %d", w.Code)
	}
	clk.add(45 * time.Second)
	if w := post("192.0.2.1:1000", testKey); w.Code != http.StatusOK {
		t.Errorf("after the window: %d", w.Code)
	}
	// An IPv6 /64 is one source.
	for i := range 3 {
		post(fmt.Sprintf("[2001:db8::%x]:1000", i+1), "wrong")
	}
	if w := post("[2001:db8::ffff]:1000", testKey); w.Code != http.StatusTooManyRequests {
		t.Errorf("same /64: %d", w.Code)
	}
	// Bounded: a flood of sources keeps at most size of them.
	for i := range 50 {
		post(fmt.Sprintf("198.51.100.%d:1000", i), "wrong")
	}
	if n := fails.len(); n > 2 {
		t.Errorf("%d sources tracked, want at most 2", n)
	}
}

// TestTokensHandlerLimitsFailures: the handler the server mounts refuses a
// source after authFailureLimit failed keys.
func TestTokensHandlerLimitsFailures(t *testing.T) {
	h := TokensHandler(testAuthority(t, false, nil), nil, nil)
	code := 0
	for range authFailureLimit + 1 {
		r := httptest.NewRequest("POST", "/v1/tokens", strings.NewReader(`{"subject":"x"}`))
		r.Header.Set("Authorization", "Bearer guess")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		code = w.Code
	}
	if code != http.StatusTooManyRequests {
		t.Errorf("attempt %d: %d, want 429", authFailureLimit+1, code)
	}
}
