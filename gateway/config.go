package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/voicegw/voicegw/classifier"
	"github.com/voicegw/voicegw/gateway/backends"
	"github.com/voicegw/voicegw/telemetry"
	"github.com/voicegw/voicegw/tenants"
)

// Config is everything a Server needs. Zero-valued fields take the defaults
// documented on them (applied by New).
type Config struct {
	// HTTPAddr is the HTTP listen address (softphone, signaling, metrics).
	// Default "127.0.0.1:8080".
	HTTPAddr string
	// ICE configures the WebRTC ingress.
	ICE ICEConfig
	// SIP configures the SIP trunk ingress (off without a listen address).
	SIP SIPConfig
	// Backends for every call.
	ASR backends.ASRConfig
	LLM backends.LLMConfig
	TTS backends.TTSConfig
	// Pipeline tunes each call's turn pipeline.
	Pipeline PipelineConfig
	// Tenants, when set, give each tenant its own backends and pipeline
	// (the caller's token names the tenant). When empty, ASR, LLM, TTS and
	// Pipeline above form the single tenant "dev".
	Tenants map[string]TenantSetup
	// Admission, when set, admits each call against its tenant's rate and
	// concurrency limits (a *tenants.Limiter).
	Admission CallAdmitter
	// LLMTokens, when set, is asked before every LLM request whether the
	// tenant may spend the request's tokens (a *tenants.Limiter or
	// *tenants.SharedLimiter).
	LLMTokens LLMTokenLimiter
	// Routes are extra HTTP handlers by pattern (e.g. "POST /v1/tokens").
	Routes map[string]http.Handler
	// Status, when set, adds details to /readyz (e.g. whether limits are
	// shared through Redis). It must be safe for concurrent use.
	Status func() map[string]any
	// Auth checks signaling tokens. Required.
	Auth Authenticator
	// AllowedOrigins are the browser origins (scheme://host:port) allowed to
	// open signaling besides the gateway's own. Default none.
	AllowedOrigins []string
	// MaxCalls caps concurrent calls on this gateway. Default 200.
	MaxCalls int
	// DrainTimeout is how long the calls in progress may go on once
	// Shutdown began (no new call is admitted meanwhile) before they are
	// hung up. Default 30 s.
	DrainTimeout time.Duration
	// HTTP bounds the HTTP server's connections.
	HTTP HTTPLimits
	// Logger for the gateway. Default slog.Default().
	Logger *slog.Logger
	// Metrics receives the gateway's instrumentation. Default a fresh set.
	Metrics *telemetry.Metrics
	// Policy checks every caller transcript and model sentence. Default
	// the deemed-export classifier with its embedded rule pack, auditing
	// to Audit.
	Policy Policy
	// Classifier is the deemed-export classifier of the default Policy
	// (a loaded bundle). Default the bundle embedded in the binary.
	Classifier *classifier.Engine
	// Audit receives the default policy's decision records. Default JSON
	// lines on standard error.
	Audit *telemetry.Audit
}

// HTTPLimits bound the HTTP server's connections, so that slow or idle
// clients cannot hold them (or the process's descriptors) forever. The
// zero value takes the defaults. The timeouts do not apply to a signaling
// WebSocket once upgraded; OfferTimeout and the ping/pong deadline do.
type HTTPLimits struct {
	// ReadHeaderTimeout bounds reading a request's headers. Default 10 s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included.
	// Default 30 s.
	ReadTimeout time.Duration
	// IdleTimeout closes a keep-alive connection idle this long.
	// Default 120 s.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's headers. Default 16 KiB.
	MaxHeaderBytes int
	// MaxConnections caps the connections open at once, WebSockets
	// included; one past the cap is closed as soon as it is accepted.
	// Default 1024.
	MaxConnections int
	// OfferTimeout closes a signaling WebSocket that has no call and has
	// sent no offer for this long, with an error event (code
	// offer_timeout). Default 10 s.
	OfferTimeout time.Duration
}

func (h *HTTPLimits) setDefaults() {
	if h.ReadHeaderTimeout == 0 {
		h.ReadHeaderTimeout = 10 * time.Second
	}
	if h.ReadTimeout == 0 {
		h.ReadTimeout = 30 * time.Second
	}
	if h.IdleTimeout == 0 {
		h.IdleTimeout = 120 * time.Second
	}
	if h.MaxHeaderBytes == 0 {
		h.MaxHeaderBytes = 16 << 10
	}
	if h.MaxConnections == 0 {
		h.MaxConnections = 1024
	}
	if h.OfferTimeout == 0 {
		h.OfferTimeout = 10 * time.Second
	}
}

func (h *HTTPLimits) validate() error {
	var errs []error
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"read_header_timeout", h.ReadHeaderTimeout}, {"read_timeout", h.ReadTimeout}, {"idle_timeout", h.IdleTimeout}, {"offer_timeout", h.OfferTimeout}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("http.%s: must be > 0, got %s", d.name, d.v))
		}
	}
	if h.MaxHeaderBytes < 0 {
		errs = append(errs, fmt.Errorf("http.max_header_bytes: must be > 0, got %d", h.MaxHeaderBytes))
	}
	if h.MaxConnections < 0 {
		errs = append(errs, fmt.Errorf("http.max_connections: must be > 0, got %d", h.MaxConnections))
	}
	return errors.Join(errs...)
}

// TenantSetup is one tenant's backends and pipeline.
type TenantSetup struct {
	ASR      backends.ASRConfig
	LLM      backends.LLMConfig
	TTS      backends.TTSConfig
	Pipeline PipelineConfig
	// Fallbacks, in order, for a backend that refuses or cannot be
	// reached. They must be inside the tenant's boundary too.
	ASRFallback []backends.ASRConfig
	LLMFallback []backends.LLMConfig
	TTSFallback []backends.TTSConfig
	// Agents are named pipeline variants that SIP trunk numbers route to.
	Agents map[string]AgentSetup
}

// CallAdmitter admits calls against per-tenant limits. Implemented by
// *tenants.Limiter; an over-limit refusal is a *tenants.LimitError.
type CallAdmitter interface {
	AdmitCall(ctx context.Context, tenant string) (*tenants.Lease, error)
}

// LLMTokenLimiter meters a tenant's LLM tokens per minute.
type LLMTokenLimiter interface {
	// AllowLLMTokens reports whether tenant may spend n tokens now and,
	// if not, how long until it may.
	AllowLLMTokens(ctx context.Context, tenant string, n int) (bool, time.Duration)
}

// PipelineConfig tunes the turn pipeline. The zero value is usable.
type PipelineConfig struct {
	// SystemPrompt starts every conversation's history. Default none.
	SystemPrompt string
	// Greeting, when set, is spoken as soon as the call connects.
	Greeting string
	// VADMode is the WebRTC VAD aggressiveness, 0 to 3. Default 2
	// (a negative value selects 0).
	VADMode int
	// Hangover is the silence that ends a caller's turn. Default 500 ms.
	Hangover time.Duration
	// MaxSentenceChars cuts long model sentences at a clause. Default 220.
	MaxSentenceChars int
	// FirstChunkWords lets the reply's first piece go to TTS at its first
	// clause mark (, ; : —) once it has this many words, instead of at the
	// end of the first sentence. Default 2; negative: whole sentences only.
	FirstChunkWords int
	// MaxTokens caps the model's reply. Default 300.
	MaxTokens int
	// Temperature for the model; nil leaves the backend's default.
	Temperature *float64
	// MaxHistory is the number of user/assistant messages kept. Default 20.
	MaxHistory int
	// MaxCallDuration hangs up a call that lasts longer. Default 30 min.
	MaxCallDuration time.Duration
	// FirstTokenBudget is the budget from final transcript to the model's
	// first token. Default 800 ms.
	FirstTokenBudget time.Duration
	// FirstAudioBudget is the budget from the caller's end of speech to the
	// first reply audio packet. Default 1400 ms.
	FirstAudioBudget time.Duration
	// HedgeFraction: when the first LLM token has not come after this
	// fraction of FirstTokenBudget, the request also goes to the tenant's
	// next compliant LLM and the first to answer is streamed. Default 0.5;
	// negative turns hedging off.
	HedgeFraction float64
	// TTSHedgeAfter: when a sentence's first audio has not come after this
	// long, the next compliant TTS backend is asked too. Default 300 ms;
	// negative turns it off.
	TTSHedgeAfter time.Duration
	// Filler, when set, is a short phrase (synthesised once per tenant)
	// played when a turn's reply audio has not started by FillerAt after
	// the caller's end of speech, so that first audio keeps its budget.
	Filler string
	// FillerAt is when the filler plays if nothing else has. Default 80 %
	// of FirstAudioBudget.
	FillerAt time.Duration
}

// llmHedgeAfter is the LLM hedge delay, 0 when hedging is off.
func (p *PipelineConfig) llmHedgeAfter() time.Duration {
	if p.HedgeFraction <= 0 {
		return 0
	}
	return time.Duration(p.HedgeFraction * float64(p.FirstTokenBudget))
}

func (p *PipelineConfig) setDefaults() {
	switch {
	case p.VADMode == 0:
		p.VADMode = 2
	case p.VADMode < 0:
		p.VADMode = 0
	}
	if p.Hangover == 0 {
		p.Hangover = 500 * time.Millisecond
	}
	if p.MaxSentenceChars == 0 {
		p.MaxSentenceChars = defaultMaxSentenceChars
	}
	if p.MaxTokens == 0 {
		p.MaxTokens = 300
	}
	if p.FirstChunkWords == 0 {
		p.FirstChunkWords = 2
	}
	if p.MaxHistory == 0 {
		p.MaxHistory = 20
	}
	if p.MaxCallDuration == 0 {
		p.MaxCallDuration = 30 * time.Minute
	}
	if p.FirstTokenBudget == 0 {
		p.FirstTokenBudget = 800 * time.Millisecond
	}
	if p.FirstAudioBudget == 0 {
		p.FirstAudioBudget = 1400 * time.Millisecond
	}
	if p.HedgeFraction == 0 {
		p.HedgeFraction = 0.5
	}
	if p.TTSHedgeAfter == 0 {
		p.TTSHedgeAfter = 300 * time.Millisecond
	}
	if p.FillerAt == 0 {
		p.FillerAt = p.FirstAudioBudget * 4 / 5
	}
}

func (p *PipelineConfig) validate() error {
	var errs []error
	if p.VADMode > 3 {
		errs = append(errs, fmt.Errorf("pipeline.vad_mode: must be 0 to 3, got %d", p.VADMode))
	}
	if p.Hangover < 100*time.Millisecond || p.Hangover > 5*time.Second {
		errs = append(errs, fmt.Errorf("pipeline.hangover: must be between 100ms and 5s, got %s", p.Hangover))
	}
	if p.HedgeFraction > 1 {
		errs = append(errs, fmt.Errorf("pipeline.hedge_fraction: must be at most 1, got %g", p.HedgeFraction))
	}
	if p.MaxSentenceChars < 20 {
		errs = append(errs, fmt.Errorf("pipeline.max_sentence_chars: must be at least 20, got %d", p.MaxSentenceChars))
	}
	return errors.Join(errs...)
}

func (c *Config) setDefaults() error {
	if c.HTTPAddr == "" {
		c.HTTPAddr = "127.0.0.1:8080"
	}
	if c.MaxCalls == 0 {
		c.MaxCalls = 200
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 30 * time.Second
	}
	c.HTTP.setDefaults()
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Metrics == nil {
		c.Metrics = telemetry.NewMetrics()
	}
	if len(c.Tenants) == 0 {
		c.Tenants = map[string]TenantSetup{"dev": {ASR: c.ASR, LLM: c.LLM, TTS: c.TTS, Pipeline: c.Pipeline}}
	}
	for id, t := range c.Tenants {
		if t.ASR.Name == "" {
			t.ASR.Name = "asr"
		}
		if t.LLM.Name == "" {
			t.LLM.Name = "llm"
		}
		if t.TTS.Name == "" {
			t.TTS.Name = "tts"
		}
		t.Pipeline.setDefaults()
		c.Tenants[id] = t
	}
	if c.Audit == nil {
		c.Audit = telemetry.NewAudit(os.Stderr, nil)
	}
	if c.Policy == nil {
		eng := c.Classifier
		if eng == nil {
			var err error
			if eng, err = classifier.Default(); err != nil {
				return fmt.Errorf("policy: embedded classifier bundle: %w", err)
			}
		}
		c.Policy = &ClassifierPolicy{Engine: eng, Audit: c.Audit}
	}
	return nil
}

func (c *Config) validate() error {
	var errs []error
	if c.Auth == nil {
		errs = append(errs, errors.New("auth: an authenticator is required"))
	}
	if c.DrainTimeout < 0 {
		errs = append(errs, fmt.Errorf("drain_timeout: must not be negative, got %s", c.DrainTimeout))
	}
	if err := c.HTTP.validate(); err != nil {
		errs = append(errs, err)
	}
	for id, t := range c.Tenants {
		for _, b := range []struct{ role, url string }{{"asr", t.ASR.URL}, {"llm", t.LLM.URL}, {"tts", t.TTS.URL}} {
			if b.url == "" {
				errs = append(errs, fmt.Errorf("tenant %s: backends.%s.url: required", id, b.role))
			}
		}
		if err := t.Pipeline.validate(); err != nil {
			errs = append(errs, fmt.Errorf("tenant %s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}
