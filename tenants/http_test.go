package tenants

import (
	"encoding/json"
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
