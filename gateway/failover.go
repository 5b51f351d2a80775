package gateway

import (
	"context"
	"log/slog"

	"github.com/voicegw/voicegw/gateway/backends"
	"github.com/voicegw/voicegw/telemetry"
)

// A tenant's backends for one role, in its order of preference. Every
// entry is already inside the tenant's boundary (the config refuses
// anything else), so failing over never leaves it. A request goes to the
// first backend that accepts it; a stream that fails after it started is
// not replayed elsewhere (the caller has already heard part of it).

// llmChain is a tenant's LLM backends.
type llmChain struct {
	llms []*backends.LLM
	log  *slog.Logger
	m    *telemetry.Metrics
}

// Name is the preferred backend's name.
func (c *llmChain) Name() string { return c.llms[0].Name() }

// Stream starts a completion on the first backend that accepts it.
func (c *llmChain) Stream(ctx context.Context, req backends.ChatRequest) (backends.ChatStream, error) {
	var err error
	for i, l := range c.llms {
		var st backends.ChatStream
		st, err = l.Stream(ctx, req)
		if err == nil {
			return st, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		c.m.BackendErrors.WithLabelValues("llm", l.Name()).Inc()
		if i+1 < len(c.llms) {
			c.log.Warn("LLM backend failed; failing over", "backend", l.Name(), "next", c.llms[i+1].Name(), "err", err)
		}
	}
	return nil, err
}

// ttsChain is a tenant's TTS backends.
type ttsChain struct {
	ttss []*backends.TTS
	log  *slog.Logger
	m    *telemetry.Metrics
}

// Name is the preferred backend's name.
func (c *ttsChain) Name() string { return c.ttss[0].Name() }

// Speak starts synthesis on the first backend that accepts it.
func (c *ttsChain) Speak(ctx context.Context, text string) (backends.SpeechStream, error) {
	var err error
	for i, t := range c.ttss {
		var st backends.SpeechStream
		st, err = t.Speak(ctx, text)
		if err == nil {
			return st, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		c.m.BackendErrors.WithLabelValues("tts", t.Name()).Inc()
		if i+1 < len(c.ttss) {
			c.log.Warn("TTS backend failed; failing over", "backend", t.Name(), "next", c.ttss[i+1].Name(), "err", err)
		}
	}
	return nil, err
}

// dialASRChain opens a transcription stream on the first backend that
// accepts it; it returns the backend's name with the stream.
func dialASRChain(ctx context.Context, cfgs []backends.ASRConfig, log *slog.Logger, m *telemetry.Metrics) (backends.ASRStream, string, error) {
	var err error
	for i, cfg := range cfgs {
		var st backends.ASRStream
		st, err = backends.DialASR(ctx, cfg)
		if err == nil {
			return st, cfg.Name, nil
		}
		if ctx.Err() != nil {
			return nil, cfg.Name, err
		}
		m.BackendErrors.WithLabelValues("asr", cfg.Name).Inc()
		if i+1 < len(cfgs) {
			log.Warn("ASR backend failed; failing over", "backend", cfg.Name, "next", cfgs[i+1].Name, "err", err)
		}
	}
	return nil, cfgs[len(cfgs)-1].Name, err
}
