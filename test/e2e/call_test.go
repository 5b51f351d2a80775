package e2e

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voicegw/voicegw/loadtest"
	"github.com/voicegw/voicegw/loadtest/sim"
	"github.com/voicegw/voicegw/media"
)

func dialCaller(t *testing.T, st *stack, codec string) *loadtest.Caller {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := loadtest.Dial(ctx, loadtest.CallerConfig{Gateway: st.url, Token: testToken, Codec: codec})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(c.Close)
	if err := c.Connected(ctx); err != nil {
		t.Fatalf("media: %v", err)
	}
	return c
}

// nextEvent waits for the first signaling message that matches.
func nextEvent(t *testing.T, c *loadtest.Caller, d time.Duration, match func(loadtest.ServerMessage) bool) loadtest.ServerMessage {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case m, ok := <-c.Events():
			if !ok {
				t.Fatalf("signaling closed while waiting")
			}
			t.Logf("event: %s role=%s text=%q final=%v code=%s outcome=%s reason=%s timings=%v", m.Type, m.Role, m.Text, m.Final, m.Code, m.Outcome, m.Reason, m.Timings)
			if match(m) {
				return m
			}
		case <-timer.C:
			t.Fatalf("timed out after %s waiting for an event", d)
		}
	}
}

func isType(typ string) func(loadtest.ServerMessage) bool {
	return func(m loadtest.ServerMessage) bool { return m.Type == typ }
}

func nonSilent(frames []loadtest.RxFrame) int {
	n := 0
	for _, f := range frames {
		if !f.Silent {
			n++
		}
	}
	return n
}

// TestCallThroughPipeline: a pion caller speaks one utterance; the gateway
// transcribes it, asks the LLM, speaks the reply, reports turn timings, and
// hangs up cleanly when asked.
func TestCallThroughPipeline(t *testing.T) {
	for _, codec := range []string{"opus", "pcmu"} {
		t.Run(codec, func(t *testing.T) {
			st := startStack(t, &stackOpts{sim: sim.Config{ASRScript: []string{"What are your opening hours?"}}})
			c := dialCaller(t, st, codec)
			c.Say(speech(t, "Hello, what are your opening hours?", media.PipelineRate, 300*time.Millisecond, 0))

			var callerFinal, agentFinal string
			turn := nextEvent(t, c, 20*time.Second, func(m loadtest.ServerMessage) bool {
				if m.Type == "transcript" && m.Final && m.Role == "caller" {
					callerFinal = m.Text
				}
				if m.Type == "transcript" && m.Final && m.Role == "agent" {
					agentFinal = m.Text
				}
				return m.Type == "turn"
			})
			if callerFinal != "What are your opening hours?" {
				t.Errorf("caller caption = %q, want the ASR transcript", callerFinal)
			}
			if !strings.Contains(agentFinal, "What are your opening hours") {
				t.Errorf("agent caption = %q, want the simulated LLM's echo of the caller", agentFinal)
			}
			if turn.Outcome != "completed" {
				t.Errorf("turn outcome = %q, want completed", turn.Outcome)
			}
			for _, stage := range []string{"asr_final", "llm_first_token", "first_sentence", "tts_first_byte", "first_audio", "asr_to_first_token"} {
				if _, ok := turn.Timings[stage]; !ok {
					t.Errorf("turn timings lack %q: %v", stage, turn.Timings)
				}
			}
			if got := nonSilent(c.Received()); got < 50 {
				t.Errorf("caller heard %d non-silent frames, want ≥ 50", got)
			}
			spoken := strings.Join(st.sim.Spoken(), " ")
			if !strings.Contains(spoken, "What are your opening hours") {
				t.Errorf("TTS was asked to speak %q; want the reply", spoken)
			}
			if err := c.Hangup(); err != nil {
				t.Fatal(err)
			}
			h := nextEvent(t, c, 5*time.Second, isType("hangup"))
			if h.Reason != "caller" {
				t.Errorf("hangup reason = %q, want caller", h.Reason)
			}
			waitFor(t, 5*time.Second, "the session to end", func() bool { return st.srv.ActiveCalls() == 0 })
		})
	}
}

// TestBargeIn: caller speech during the agent's reply stops playback within
// a few frames of detection, cancels the LLM and TTS work still in flight,
// and the history keeps only what the caller heard.
func TestBargeIn(t *testing.T) {
	long := "First, let me explain how the warranty works for your device. " +
		"Second, the standard coverage lasts for two full years from the date of purchase. " +
		"Third, accidental damage is covered only if you bought the extended plan. " +
		"Fourth, repairs are handled at our service center in about five business days. " +
		"Fifth, you can track the repair status on the customer portal at any time. " +
		"Sixth, shipping both ways is free for all covered repairs."
	st := startStack(t, &stackOpts{sim: sim.Config{
		ASRScript:        []string{"Tell me about the warranty.", "Stop, that's enough."},
		LLMScript:        []sim.Rule{{Match: "warranty", Reply: long}, {Match: "*", Reply: "Okay."}},
		LLMTokenInterval: 120 * time.Millisecond, // the model is still writing when the caller interrupts
	}})
	c := dialCaller(t, st, "opus")
	c.Say(speech(t, "Tell me about the warranty please.", media.PipelineRate, 200*time.Millisecond, 0))

	// Wait until the agent has been audible for half a second.
	waitFor(t, 20*time.Second, "the agent to start speaking", func() bool { return nonSilent(c.Received()) >= 25 })
	done := c.Say(speech(t, "Stop, that is enough.", media.PipelineRate, 0, 0))

	turn := nextEvent(t, c, 10*time.Second, func(m loadtest.ServerMessage) bool { return m.Type == "turn" && m.Turn == 1 })
	if turn.Outcome != "barged_in" {
		t.Fatalf("first turn outcome = %q, want barged_in", turn.Outcome)
	}
	<-done
	// The gateway reports when it detected the interruption (same clock: the
	// gateway runs in this process). Any agent audio heard more than 100 ms
	// after that is a failure to stop.
	bi, ok := turn.Timings["barge_in"]
	if !ok || turn.SpeechEndAt == 0 {
		t.Fatalf("turn event lacks barge_in timing: %+v", turn)
	}
	detected := time.UnixMilli(turn.SpeechEndAt + bi)
	// The window ends well before the answer to the interruption can start
	// (the interruption lasts over a second, then hangover and ASR).
	late := 0
	for _, f := range c.Received() {
		if f.At.After(detected.Add(100*time.Millisecond)) && f.At.Before(detected.Add(time.Second)) && !f.Silent {
			late++
		}
	}
	if late > 0 {
		t.Errorf("caller heard %d non-silent agent frames more than 100 ms after the gateway detected its speech", late)
	}
	// The second turn answers the interruption.
	turn2 := nextEvent(t, c, 20*time.Second, func(m loadtest.ServerMessage) bool { return m.Type == "turn" && m.Turn == 2 })
	if turn2.Outcome != "completed" {
		t.Errorf("second turn outcome = %q, want completed", turn2.Outcome)
	}
	// LLM/TTS work in flight was cancelled: the later sentences never reached TTS.
	for _, s := range st.sim.Spoken() {
		if strings.Contains(s, "Sixth") {
			t.Errorf("TTS was asked to speak %q after the caller barged in", s)
		}
	}
	// The history sent with the second request holds only what was heard.
	reqs := st.sim.ChatRequests()
	if len(reqs) < 2 {
		t.Fatalf("LLM saw %d requests, want 2", len(reqs))
	}
	var assistant string
	for _, m := range reqs[1].Messages {
		if m.Role == "assistant" {
			assistant = m.Content
		}
	}
	if strings.Contains(assistant, "Sixth") || strings.Contains(assistant, "Fifth") {
		t.Errorf("history kept unspoken text: %q", assistant)
	}
	if assistant != "" && !strings.HasPrefix(assistant, "First") {
		t.Errorf("history assistant message = %q, want the sentences heard", assistant)
	}
}

// TestNoGoroutineLeak: 50 calls, five at a time, each connecting media,
// sending audio and hanging up; afterwards the process has no more
// goroutines than before.
func TestNoGoroutineLeak(t *testing.T) {
	st := startStack(t, &stackOpts{})
	// One call first so lazily started shared goroutines exist in the baseline.
	oneCall(t, st)
	waitFor(t, 5*time.Second, "calls to end", func() bool { return st.srv.ActiveCalls() == 0 })
	time.Sleep(200 * time.Millisecond)
	base := runtime.NumGoroutine()

	var wg sync.WaitGroup
	sem := make(chan struct{}, 5)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			oneCall(t, st)
		}()
	}
	wg.Wait()
	waitFor(t, 10*time.Second, "calls to end", func() bool { return st.srv.ActiveCalls() == 0 })
	var now int
	waitFor(t, 10*time.Second, "goroutines to settle", func() bool {
		now = runtime.NumGoroutine()
		return now <= base+2
	})
	t.Logf("goroutines: %d before, %d after 50 calls", base, now)
}

func oneCall(t *testing.T, st *stack) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := loadtest.Dial(ctx, loadtest.CallerConfig{Gateway: st.url, Token: testToken})
	if err != nil {
		t.Errorf("dial: %v", err)
		return
	}
	defer c.Close()
	if err := c.Connected(ctx); err != nil {
		t.Errorf("media: %v", err)
		return
	}
	time.Sleep(100 * time.Millisecond) // let a few frames flow both ways
	if err := c.Hangup(); err != nil {
		t.Errorf("hangup: %v", err)
		return
	}
	for m := range c.Events() {
		if m.Type == "hangup" {
			return
		}
	}
	t.Errorf("signaling closed without a hangup event")
}
