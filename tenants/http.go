package tenants

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// tokenRequest is the body of POST /v1/tokens.
type tokenRequest struct {
	Subject    string `json:"subject"`
	USPerson   bool   `json:"us_person"`
	AttestedBy string `json:"attested_by"`
	TTLSeconds int    `json:"ttl_seconds"`
}

// TokensHandler serves POST /v1/tokens: a tenant's server presents its API
// key (Authorization: Bearer KEY) and the caller it vouches for, and gets a
// short-lived call token for the softphone. Refusals are generic to the
// client (401, 400, 429 with Retry-After) and precise in the log.
//
// The JSON body is {subject, us_person, attested_by, ttl_seconds}; the
// answer {token, expires_at, tenant}. lim paces minting per tenant at the
// tenant's calls_per_second and burst (nil: no pacing); log may be nil.
//
// A source address (an IPv4 address or an IPv6 /64) that presents a
// missing or wrong API key 10 times within a minute is refused with 429
// and Retry-After until that minute ends, whatever key it then presents,
// so keys cannot be guessed at line rate. Successful requests never count.
func TokensHandler(a *Authority, lim *Limiter, log *slog.Logger) http.Handler {
	return tokensHandler(a, lim, newFailureLimiter(authFailureLimit, authFailureWindow, authFailureSources, nil), log)
}

func tokensHandler(a *Authority, lim *Limiter, fails *failureLimiter, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		src := sourceOf(r.RemoteAddr)
		if retry, ok := fails.blocked(src); ok {
			log.Info("token request refused: too many failed API keys from this source", "remote", r.RemoteAddr, "retry_after", retry)
			w.Header().Set("Retry-After", strconv.Itoa(int((retry+time.Second-1)/time.Second)))
			writeJSONError(w, http.StatusTooManyRequests, "rate_limited", "too many failed attempts; try again later")
			return
		}
		key := ""
		if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
			key = strings.TrimSpace(h[7:])
		}
		t, err := a.TenantForKey(key)
		if err != nil {
			fails.fail(src)
			if ae, ok := errors.AsType[*AuthError](err); ok {
				log.Info("token request refused", "remote", r.RemoteAddr, "reason", ae.Reason)
			}
			writeJSONError(w, http.StatusUnauthorized, "unauthorized", "missing or invalid API key")
			return
		}
		if lim != nil {
			if retry, ok := lim.AllowMint(t.ID); !ok {
				log.Info("token request over the tenant's rate", "tenant", t.ID, "retry_after", retry)
				w.Header().Set("Retry-After", strconv.Itoa(int((retry+time.Second-1)/time.Second)))
				writeJSONError(w, http.StatusTooManyRequests, "rate_limited", "too many token requests")
				return
			}
		}
		var req tokenRequest
		dec := json.NewDecoder(io.LimitReader(r.Body, 16<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeJSONError(w, http.StatusBadRequest, "bad_request", "body must be JSON {subject, us_person, attested_by, ttl_seconds}: "+err.Error())
			return
		}
		if req.TTLSeconds < 0 {
			writeJSONError(w, http.StatusBadRequest, "bad_request", "ttl_seconds must be ≥ 0")
			return
		}
		tok, exp, err := a.mintFor(t, MintRequest{Subject: req.Subject, USPerson: req.USPerson, AttestedBy: req.AttestedBy, TTL: time.Duration(req.TTLSeconds) * time.Second})
		if err != nil {
			if ae, ok := errors.AsType[*AuthError](err); ok {
				log.Info("token request refused", "tenant", t.ID, "remote", r.RemoteAddr, "reason", ae.Reason)
				writeJSONError(w, http.StatusBadRequest, "bad_request", ae.Reason)
				return
			}
			log.Error("token mint failed", "tenant", t.ID, "err", err)
			writeJSONError(w, http.StatusInternalServerError, "internal", "could not mint a token")
			return
		}
		log.Info("call token minted", "tenant", t.ID, "subject", req.Subject, "us_person", req.USPerson, "attested_by", req.AttestedBy)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"token": tok, "expires_at": exp.UTC().Format(time.RFC3339), "tenant": t.ID})
	})
}

func writeJSONError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "message": msg})
}
