package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/voicegw/voicegw/gateway"
	"github.com/voicegw/voicegw/loadtest"
	"github.com/voicegw/voicegw/loadtest/sim"
	"github.com/voicegw/voicegw/media"
)

// secondSim starts another simulated backend set with cfg.
func secondSim(t *testing.T, cfg sim.Config) (*sim.Server, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	srv, url, err := sim.Listen(ctx, "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	return srv, url
}

// oneTurn speaks one utterance and returns the turn event.
func oneTurn(t *testing.T, st *stack) loadtest.ServerMessage {
	t.Helper()
	c := dialCaller(t, st, "opus")
	c.Say(speech(t, "Hello, what are your opening hours?", media.PipelineRate, 300*time.Millisecond, 0))
	return nextEvent(t, c, 30*time.Second, isType("turn"))
}

// TestHedgeStalledLLM: the tenant's first LLM takes 2 s to its first
// token, the second 100 ms. With hedging at a quarter of the 800 ms
// first-token budget, the request also goes to the second LLM at 200 ms,
// its reply is streamed and the turn keeps its budget; without hedging the
// same turn waits for the first LLM and misses it.
func TestHedgeStalledLLM(t *testing.T) {
	for _, hedge := range []bool{true, false} {
		name := map[bool]string{true: "hedged", false: "not hedged"}[hedge]
		t.Run(name, func(t *testing.T) {
			fast, fastURL := secondSim(t, sim.Config{LLMTTFT: 100 * time.Millisecond, LLMScript: []sim.Rule{{Match: "*", Reply: "The second model answers."}}})
			frac := 0.25
			if !hedge {
				frac = -1
			}
			st := startStack(t, &stackOpts{
				sim:         sim.Config{LLMTTFT: 2 * time.Second, ASRScript: []string{"What are your opening hours?"}},
				llmFallback: fastURL,
				pipeline:    gateway.PipelineConfig{FirstTokenBudget: 800 * time.Millisecond, HedgeFraction: frac},
			})
			turn := oneTurn(t, st)
			if turn.Outcome != "completed" {
				t.Fatalf("turn outcome %q", turn.Outcome)
			}
			tok := turn.Timings["asr_to_first_token"]
			hedges := counter(t, st.metrics.Hedges.WithLabelValues("llm", "dev"))
			misses := counter(t, st.metrics.BudgetMisses.WithLabelValues("asr_to_first_token", "dev"))
			if hedge {
				if hedges != 1 || len(fast.ChatRequests()) != 1 {
					t.Errorf("hedges %v, second LLM requests %d; want the request hedged once", hedges, len(fast.ChatRequests()))
				}
				if tok >= 800 || misses != 0 {
					t.Errorf("hedged turn: final transcript → first token %d ms, %v budget misses; want within the 800 ms budget", tok, misses)
				}
				return
			}
			if hedges != 0 || len(fast.ChatRequests()) != 0 {
				t.Errorf("hedging off, yet hedges %v and %d requests to the second LLM", hedges, len(fast.ChatRequests()))
			}
			if tok < 2000 || misses != 1 {
				t.Errorf("unhedged turn: first token after %d ms with %v misses; want the first LLM's 2 s and a counted miss", tok, misses)
			}
		})
	}
}

// TestHedgeStalledTTS: the first TTS takes 3 s to its first audio, the
// second 100 ms; with the TTS hedge at 200 ms the reply is spoken by the
// second.
func TestHedgeStalledTTS(t *testing.T) {
	fast, fastURL := secondSim(t, sim.Config{TTSTTFB: 100 * time.Millisecond})
	st := startStack(t, &stackOpts{
		sim:         sim.Config{TTSTTFB: 3 * time.Second, ASRScript: []string{"What are your opening hours?"}},
		ttsFallback: fastURL,
		pipeline:    gateway.PipelineConfig{TTSHedgeAfter: 200 * time.Millisecond},
	})
	turn := oneTurn(t, st)
	if turn.Outcome != "completed" {
		t.Fatalf("turn outcome %q", turn.Outcome)
	}
	if len(fast.Spoken()) == 0 || counter(t, st.metrics.Hedges.WithLabelValues("tts", "dev")) < 1 {
		t.Errorf("second TTS spoke %d sentences; want the hedged request answered by it", len(fast.Spoken()))
	}
	if fa := turn.Timings["first_audio"]; fa >= 3000 {
		t.Errorf("first audio %d ms after speech end; the stalled TTS was waited for", fa)
	}
}

// TestFillerKeepsFirstAudio: the LLM takes 1.5 s to its first token, so
// the reply cannot start within the 1.4 s first-audio budget; the tenant's
// filler phrase plays at 80 % of the budget instead, the caller hears it,
// and the first-audio budget is not missed.
func TestFillerKeepsFirstAudio(t *testing.T) {
	st := startStack(t, &stackOpts{
		sim:      sim.Config{LLMTTFT: 1500 * time.Millisecond, ASRScript: []string{"What are your opening hours?"}},
		pipeline: gateway.PipelineConfig{Filler: "One moment, please."},
	})
	c := dialCaller(t, st, "opus")
	// Let the filler be synthesised before the turn.
	waitFor(t, 10*time.Second, "the filler to be synthesised", func() bool {
		for _, s := range st.sim.Spoken() {
			if s == "One moment, please." {
				return true
			}
		}
		return false
	})
	c.Say(speech(t, "Hello, what are your opening hours?", media.PipelineRate, 300*time.Millisecond, 0))
	var captions []string
	turn := nextEvent(t, c, 30*time.Second, func(m loadtest.ServerMessage) bool {
		if m.Type == "transcript" && m.Role == "agent" && m.Final {
			captions = append(captions, m.Text)
		}
		return m.Type == "turn"
	})
	if turn.Outcome != "completed" {
		t.Fatalf("turn outcome %q", turn.Outcome)
	}
	filler, ok := turn.Timings["filler"]
	if !ok || len(captions) == 0 || captions[0] != "One moment, please." {
		t.Fatalf("timings %v, agent captions %q; want the filler first", turn.Timings, captions)
	}
	if fa := turn.Timings["first_audio"]; fa > 1400 || fa < filler {
		t.Errorf("first audio at %d ms (filler at %d ms); want the filler within the 1400 ms budget", fa, filler)
	}
	if n := counter(t, st.metrics.Fillers.WithLabelValues("dev")); n != 1 {
		t.Errorf("voicegw_fillers_total = %v, want 1", n)
	}
	if n := counter(t, st.metrics.BudgetMisses.WithLabelValues("first_audio", "dev")); n != 0 {
		t.Errorf("first_audio budget misses %v, want 0", n)
	}
}
