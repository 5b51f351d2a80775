package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/voicegw/voicegw/gateway"
	"github.com/voicegw/voicegw/gateway/backends"
	"github.com/voicegw/voicegw/telemetry"
	"github.com/voicegw/voicegw/tenants"
)

// serveConfig runs the gateway from a config file: its tenants, their
// boundary-checked backends, call tokens from POST /v1/tokens, and
// per-tenant limits.
func serveConfig(ctx context.Context, path string, log *slog.Logger, stdout, stderr io.Writer) int {
	cfg, err := tenants.Load(path)
	if err != nil {
		fmt.Fprintf(stderr, "voicegw serve: %v\n", err)
		return 1
	}
	auth, err := tenants.NewAuthority(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "voicegw serve: %v\n", err)
		return 1
	}
	var auditW io.Writer = os.Stderr
	if cfg.Audit.Path != "" {
		f, err := os.OpenFile(cfg.Audit.Path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			fmt.Fprintf(stderr, "voicegw serve: audit.path: %v\n", err)
			return 1
		}
		defer f.Close()
		auditW = f
	}
	var salt []byte
	if v := cfg.Audit.Salt.Value(); v != "" {
		salt = []byte(v)
	}
	metrics := telemetry.NewMetrics()
	limiter := tenants.NewLimiter(cfg) // also paces token minting
	var admission gateway.CallAdmitter = limiter
	var llmTokens gateway.LLMTokenLimiter = limiter
	var status func() map[string]any
	if cfg.Redis != nil {
		shared, err := tenants.NewSharedLimiter(cfg, log.With("component", "limits"), func(ok bool) {
			metrics.LimitsShared.Set(map[bool]float64{true: 1, false: 0}[ok])
		})
		if err != nil {
			fmt.Fprintf(stderr, "voicegw serve: %v\n", err)
			return 1
		}
		defer shared.Close()
		metrics.LimitsShared.Set(map[bool]float64{true: 1, false: 0}[shared.Healthy()])
		admission, llmTokens = shared, shared
		status = func() map[string]any { return map[string]any{"limits": shared.Detail()} }
	}
	setups := map[string]gateway.TenantSetup{}
	// One endpoint (its TLS and connection pool) per backend, shared by
	// every tenant that routes to it.
	endpoints := map[string]backends.Endpoint{}
	for _, b := range cfg.Backends {
		e, err := endpoint(b, log)
		if err != nil {
			fmt.Fprintf(stderr, "voicegw serve: %v\n", err)
			return 1
		}
		endpoints[b.Name] = e
	}
	asrCfg := func(b tenants.Backend) backends.ASRConfig {
		return backends.ASRConfig{Endpoint: endpoints[b.Name], Mode: b.Mode}
	}
	llmCfg := func(b tenants.Backend) backends.LLMConfig { return backends.LLMConfig{Endpoint: endpoints[b.Name]} }
	ttsCfg := func(b tenants.Backend) backends.TTSConfig {
		return backends.TTSConfig{Endpoint: endpoints[b.Name], Voice: b.Voice}
	}
	for _, t := range cfg.Tenants {
		// Only compliant backends, in the tenant's order: the first serves,
		// the rest are its failover.
		asrs, llms, ttss := cfg.Route(t.ID, "asr"), cfg.Route(t.ID, "llm"), cfg.Route(t.ID, "tts")
		if len(asrs) == 0 || len(llms) == 0 || len(ttss) == 0 {
			fmt.Fprintf(stderr, "voicegw serve: tenant %s has no compliant backend for a role\n", t.ID)
			return 1
		}
		setup := gateway.TenantSetup{
			ASR: asrCfg(asrs[0]),
			LLM: llmCfg(llms[0]),
			TTS: ttsCfg(ttss[0]),
			Pipeline: gateway.PipelineConfig{
				SystemPrompt:     t.Pipeline.SystemPrompt,
				Greeting:         t.Pipeline.Greeting,
				Hangover:         time.Duration(t.Pipeline.Hangover),
				FirstTokenBudget: time.Duration(t.Pipeline.FirstTokenBudget),
				FirstAudioBudget: time.Duration(t.Pipeline.FirstAudioBudget),
				HedgeFraction:    t.Pipeline.HedgeFraction,
				FirstChunkWords:  t.Pipeline.FirstChunkWords,
				TTSHedgeAfter:    time.Duration(t.Pipeline.TTSHedgeAfter),
				Filler:           t.Pipeline.Filler,
				FillerAt:         time.Duration(t.Pipeline.FillerAt),
			},
		}
		if len(t.Agents) > 0 {
			setup.Agents = map[string]gateway.AgentSetup{}
			for name, a := range t.Agents {
				setup.Agents[name] = gateway.AgentSetup{SystemPrompt: a.SystemPrompt, Greeting: a.Greeting}
			}
		}
		for _, b := range asrs[1:] {
			setup.ASRFallback = append(setup.ASRFallback, asrCfg(b))
		}
		for _, b := range llms[1:] {
			setup.LLMFallback = append(setup.LLMFallback, llmCfg(b))
		}
		for _, b := range ttss[1:] {
			setup.TTSFallback = append(setup.TTSFallback, ttsCfg(b))
		}
		setups[t.ID] = setup
	}
	host, _, _ := net.SplitHostPort(cfg.Listen.HTTP)
	media := cfg.Listen.Media
	if media == "" {
		media = net.JoinHostPort(host, "0")
	}
	sipCfg, err := sipConfig(cfg, auth)
	if err != nil {
		fmt.Fprintf(stderr, "voicegw serve: %v\n", err)
		return 1
	}
	srv, err := gateway.New(gateway.Config{
		HTTPAddr: cfg.Listen.HTTP,
		HTTP: gateway.HTTPLimits{
			ReadHeaderTimeout: time.Duration(cfg.HTTP.ReadHeaderTimeout), ReadTimeout: time.Duration(cfg.HTTP.ReadTimeout),
			IdleTimeout: time.Duration(cfg.HTTP.IdleTimeout), MaxHeaderBytes: cfg.HTTP.MaxHeaderBytes,
			MaxConnections: cfg.HTTP.MaxConnections, OfferTimeout: time.Duration(cfg.HTTP.OfferTimeout),
		},
		SIP:          sipCfg,
		ICE:          gateway.ICEConfig{UDPAddr: media, NAT1To1IPs: cfg.Listen.NAT1To1IPs},
		Tenants:      setups,
		Auth:         gateway.TokenAuth{Authority: auth},
		Admission:    admission,
		LLMTokens:    llmTokens,
		Status:       status,
		Metrics:      metrics,
		Routes:       map[string]http.Handler{"POST /v1/tokens": tenants.TokensHandler(auth, limiter, log.With("component", "tokens"))},
		Logger:       log,
		Audit:        telemetry.NewAudit(auditW, salt),
		DrainTimeout: time.Duration(cfg.DrainTimeout),
		// nil: the embedded bundle.
		Classifier: cfg.Classifier.Engine(),
	})
	if err != nil {
		fmt.Fprintf(stderr, "voicegw serve: %v\n", err)
		return 1
	}
	l, err := net.Listen("tcp", cfg.Listen.HTTP)
	if err != nil {
		fmt.Fprintf(stderr, "voicegw serve: listen %s: %v\n", cfg.Listen.HTTP, err)
		_ = srv.Shutdown(context.Background())
		return 1
	}
	fmt.Fprintf(stdout, "voicegw %s: %d tenants, http %s, media udp %s\n", version, len(cfg.Tenants), l.Addr(), srv.MediaAddr())
	for _, n := range []string{"udp", "tcp", "tls"} {
		if a := srv.SIPAddr(n); a != "" {
			fmt.Fprintf(stdout, "sip %s %s\n", n, a)
		}
	}
	return serveUntilDone(ctx, srv, l, cfg.Listen.TLSCert, cfg.Listen.TLSKey, log, stderr)
}

// endpoint is backend b's client side: its URL and credentials, and its
// TLS configuration (CA file, client certificate for mTLS) and proxy for
// both HTTP requests and the realtime socket.
func endpoint(b tenants.Backend, log *slog.Logger) (backends.Endpoint, error) {
	tc, err := b.TLSConfig()
	if err != nil {
		return backends.Endpoint{}, fmt.Errorf("backend %s: %w", b.Name, err)
	}
	proxy := b.ProxyURL() // nil: direct, never the environment's proxy
	return backends.Endpoint{
		Name: b.Name, URL: b.URL, APIKey: b.APIKey.Value(), Model: b.Model, Timeout: time.Duration(b.Timeout),
		TLS: tc, HTTPClient: backends.NewHTTPClient(tc, proxy), Proxy: proxy, Logger: log.With("component", "backend"),
	}, nil
}

// sipConfig is the SIP ingress of cfg: its listeners and every tenant's
// trunks, with caller assertions verified by auth.
func sipConfig(cfg *tenants.Config, auth *tenants.Authority) (gateway.SIPConfig, error) {
	s := cfg.Listen.SIP
	if s == nil {
		return gateway.SIPConfig{}, nil
	}
	out := gateway.SIPConfig{UDPAddr: s.UDP, TCPAddr: s.TCP, TLSAddr: s.TLS, MediaIP: s.MediaAddr(), RTPTimeout: time.Duration(s.RTPTimeout)}
	out.RTPPortMin, out.RTPPortMax = s.PortRange()
	if s.TLS != "" {
		cert, err := tls.LoadX509KeyPair(s.TLSCert, s.TLSKey)
		if err != nil {
			return out, fmt.Errorf("listen.sip.tls_cert: %w", err)
		}
		out.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	for _, t := range cfg.Tenants {
		for _, tr := range t.Trunks {
			gt := gateway.Trunk{
				Name: tr.Name, Tenant: t.ID, Sources: tr.Prefixes(), Numbers: map[string]string{},
				RequireSRTP: tr.RequireSRTP, Codecs: tr.Codecs, USPersonOnly: t.USPersonOnly,
				DefaultParty: t.Party(tenants.Principal{}), AnswerDelay: time.Duration(tr.AnswerDelay),
			}
			for num, agent := range tr.Numbers {
				if agent == "default" {
					agent = ""
				}
				gt.Numbers[num] = agent
			}
			if d := tr.Digest; d != nil {
				gt.Username, gt.Password, gt.Realm, gt.Algorithms = d.Username, d.Password.Value(), d.Realm, d.Algorithms
			}
			switch tr.Callers {
			case tenants.CallersAttested:
				gt.USPersonAttested, gt.AttestedBy = true, tr.AttestedBy
			case tenants.CallersAssertion:
				gt.AssertionHeader = tr.Assertion.Header
				gt.VerifyAssertion = auth.TrunkAssertion(t.ID, tr.Name)
			}
			out.Trunks = append(out.Trunks, gt)
		}
	}
	return out, nil
}
