package rig

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// TokenSource gives each call its call token.
type TokenSource interface {
	// Token returns the token for call n (numbered from 1).
	Token(ctx context.Context, n int) (string, error)
}

// StaticToken is one token reused for every call (dev mode's printed token,
// or a long-lived test token).
type StaticToken string

// Token implements TokenSource.
func (s StaticToken) Token(context.Context, int) (string, error) { return string(s), nil }

// Minter mints a token per call at POST {Gateway}/v1/tokens with a tenant's
// API key, as the tenant's own server would for each caller.
type Minter struct {
	// Gateway is the gateway's base URL.
	Gateway string
	// APIKey is the tenant's API key (sent as a bearer token).
	APIKey string
	// Tenant, when set, must equal the tenant the gateway names in its
	// answer; a mismatch is a *TenantMismatchError and ends the run.
	Tenant string
	// Client; default one with a 10 s timeout.
	Client *http.Client
}

// MintRefusedError is a 429 from /v1/tokens: the tenant's rate limit
// refused the token, so the call counts as refused ("rate_limited").
type MintRefusedError struct {
	RetryAfter time.Duration
}

func (e *MintRefusedError) Error() string {
	return fmt.Sprintf("token refused: rate_limited (retry after %s)", e.RetryAfter)
}

// MintError is any other non-200 answer from /v1/tokens.
type MintError struct {
	Status  int
	Message string
}

func (e *MintError) Error() string {
	return fmt.Sprintf("token request: HTTP %d: %s", e.Status, e.Message)
}

// TenantMismatchError is a mint answer naming another tenant than
// Minter.Tenant: the API key belongs to someone else, so the run stops.
type TenantMismatchError struct {
	Want, Got string
}

func (e *TenantMismatchError) Error() string {
	return fmt.Sprintf("the API key mints tokens for tenant %q, not %q", e.Got, e.Want)
}

// Token implements TokenSource.
func (m *Minter) Token(ctx context.Context, n int) (string, error) {
	body, _ := json.Marshal(map[string]string{"subject": "loadtest-" + strconv.Itoa(n)})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(m.Gateway, "/")+"/v1/tokens", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+m.APIKey)
	req.Header.Set("Content-Type", "application/json")
	client := m.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("token request: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", fmt.Errorf("token request: %w", err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusTooManyRequests:
		secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		return "", &MintRefusedError{RetryAfter: time.Duration(secs) * time.Second}
	default:
		var e struct {
			Message string `json:"message"`
		}
		msg := strings.TrimSpace(string(raw))
		if json.Unmarshal(raw, &e) == nil && e.Message != "" {
			msg = e.Message
		}
		return "", &MintError{Status: resp.StatusCode, Message: msg}
	}
	var ans struct {
		Token     string `json:"token"`
		ExpiresAt string `json:"expires_at"`
		Tenant    string `json:"tenant"`
	}
	if err := json.Unmarshal(raw, &ans); err != nil || ans.Token == "" {
		return "", &MintError{Status: resp.StatusCode, Message: "answer has no token"}
	}
	if m.Tenant != "" && ans.Tenant != m.Tenant {
		return "", &TenantMismatchError{Want: m.Tenant, Got: ans.Tenant}
	}
	return ans.Token, nil
}

// CheckGateway fails unless GET {gateway}/healthz answers 200: a run against
// an unreachable gateway is an error, not a set of failed calls.
func CheckGateway(ctx context.Context, gateway string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(gateway, "/")+"/healthz", nil)
	if err != nil {
		return fmt.Errorf("gateway %s: %w", gateway, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("gateway unreachable: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("gateway %s: /healthz answered %s", gateway, resp.Status)
	}
	return nil
}

var (
	_ TokenSource = StaticToken("")
	_ TokenSource = (*Minter)(nil)
	_ error       = (*TenantMismatchError)(nil)
)
