package e2e

import (
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/voicegw/voicegw/gateway"
	"github.com/voicegw/voicegw/loadtest"
	"github.com/voicegw/voicegw/loadtest/sim"
	"github.com/voicegw/voicegw/media"
	"github.com/voicegw/voicegw/tenants"
)

// TestLLMTokensPerMinute: a tenant's LLM tokens per minute are charged
// before each request (max_tokens plus the prompt). With a budget of 400
// tokens and max_tokens 300 the first turn is answered and the second is
// refused before the LLM is asked: the caller gets rate_limited with a
// retry time, hears a notice, and the call stays up.
func TestLLMTokensPerMinute(t *testing.T) {
	cfg, err := tenants.Parse("limits.yaml", []byte(`
backends:
  - {name: a, role: asr, url: "http://127.0.0.1:1", region: r, impact_level: IL5}
  - {name: l, role: llm, url: "http://127.0.0.1:1", region: r, impact_level: IL5}
  - {name: s, role: tts, url: "http://127.0.0.1:1", region: r, impact_level: IL5}
tenants:
  - {id: dev, impact_level: IL5, regions: [r], asr: [a], llm: [l], tts: [s], limits: {llm_tokens_per_minute: 400}}
`))
	if err != nil {
		t.Fatal(err)
	}
	lim := tenants.NewLimiter(cfg)
	st := startStack(t, &stackOpts{
		llmTokens: lim,
		pipeline:  gateway.PipelineConfig{MaxTokens: 300},
		sim:       sim.Config{ASRScript: []string{"What are your opening hours?", "And on Sundays?"}},
	})
	c := dialCaller(t, st, "opus")
	c.Say(speech(t, "Hello, what are your opening hours?", media.PipelineRate, 300*time.Millisecond, 0))
	first := nextEvent(t, c, 20*time.Second, isType("turn"))
	if first.Outcome != "completed" {
		t.Fatalf("first turn outcome %q, want completed within the token budget", first.Outcome)
	}
	heard := len(c.Received())
	c.Say(speech(t, "And on Sundays?", media.PipelineRate, 300*time.Millisecond, 0))
	var refusal loadtest.ServerMessage
	second := nextEvent(t, c, 20*time.Second, func(m loadtest.ServerMessage) bool {
		if m.Type == "error" {
			refusal = m
		}
		return m.Type == "turn"
	})
	if second.Outcome != "rate_limited" {
		t.Errorf("second turn outcome %q, want rate_limited", second.Outcome)
	}
	if refusal.Code != "rate_limited" || refusal.RetryAfterMs <= 0 || !strings.Contains(refusal.Message, "llm_tokens") {
		t.Errorf("refusal event %+v, want rate_limited over llm_tokens with a retry time", refusal)
	}
	if n := len(st.sim.ChatRequests()); n != 1 {
		t.Errorf("the LLM received %d requests, want 1 (the refused one must never be sent)", n)
	}
	if got := nonSilent(c.Received()[heard:]); got < 25 {
		t.Errorf("caller heard %d non-silent frames after the refusal, want the busy notice", got)
	}
	var m dto.Metric
	if err := st.metrics.LimitRefusals.WithLabelValues("dev", "llm_tokens").Write(&m); err != nil {
		t.Fatal(err)
	}
	if v := m.GetCounter().GetValue(); v != 1 {
		t.Errorf("voicegw_limit_refusals_total{limit=llm_tokens} = %v, want 1", v)
	}
	if st.srv.ActiveCalls() != 1 {
		t.Errorf("active calls %d, want the call still up", st.srv.ActiveCalls())
	}
}
