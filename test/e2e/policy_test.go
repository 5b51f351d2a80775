package e2e

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voicegw/voicegw/gateway"
	"github.com/voicegw/voicegw/loadtest"
	"github.com/voicegw/voicegw/loadtest/sim"
	"github.com/voicegw/voicegw/media"
)

// keywordPolicy is a hand-written Policy for testing the gateway's gating:
// it blocks any text containing a block word and redacts a redact word.
type keywordPolicy struct {
	block, redact string

	mu     sync.Mutex
	checks []string // "direction:text"
}

func (p *keywordPolicy) NewCall(gateway.Caller, string) gateway.CallPolicy { return p }

func (p *keywordPolicy) Check(text string, dir gateway.Direction, _ gateway.CheckMeta) gateway.PolicyDecision {
	p.mu.Lock()
	p.checks = append(p.checks, string(dir)+":"+text)
	p.mu.Unlock()
	switch {
	case strings.Contains(text, p.block):
		return gateway.PolicyDecision{Action: gateway.ActionBlock, Categories: []string{"TEST-1"}, Rules: []string{"test.block"}}
	case strings.Contains(text, p.redact):
		return gateway.PolicyDecision{Action: gateway.ActionRedact, Categories: []string{"TEST-2"}, Rules: []string{"test.redact"},
			Redacted: strings.ReplaceAll(text, p.redact, "a redacted value")}
	}
	return gateway.PolicyDecision{Action: gateway.ActionAllow}
}

func (p *keywordPolicy) Checks() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.checks...)
}

// TestOutboundGating: every model sentence is checked before TTS; a
// redacted sentence is spoken redacted; a blocked sentence is never sent to
// TTS, the caller gets a policy event and hears the notice, and the rest of
// the reply is dropped.
func TestOutboundGating(t *testing.T) {
	pol := &keywordPolicy{block: "Zephyr", redact: "4417"}
	reply := "Your ticket number is 4417. The Zephyr thrust is forty kilonewtons. This last sentence must never be spoken."
	st := startStack(t, stackOpts{policy: pol, sim: sim.Config{
		ASRScript: []string{"Tell me about the motor."},
		LLMScript: []sim.Rule{{Match: "*", Reply: reply}},
	}})
	c := dialCaller(t, st, "opus")
	c.Say(speech(t, "Tell me about the motor.", media.PipelineRate, 200*time.Millisecond, 0))
	var policy []loadtest.ServerMessage
	var notice bool
	turn := nextEvent(t, c, 20*time.Second, func(m loadtest.ServerMessage) bool {
		if m.Type == "policy" {
			policy = append(policy, m)
		}
		if m.Type == "transcript" && m.Role == "agent" && strings.Contains(m.Text, "can't discuss that") {
			notice = true
		}
		return m.Type == "turn"
	})
	if turn.Outcome != "blocked" || !notice {
		t.Errorf("outcome %q, notice %v; want blocked with the spoken notice", turn.Outcome, notice)
	}
	if len(policy) != 2 || policy[0].Action != "redact" || policy[1].Action != "block" ||
		policy[1].Direction != "outbound" || policy[1].Categories[0] != "TEST-1" || policy[1].Rules[0] != "test.block" {
		t.Errorf("policy events %+v; want redact then block, outbound, with categories and rules", policy)
	}
	spoken := strings.Join(st.sim.Spoken(), "|")
	if strings.Contains(spoken, "Zephyr") || strings.Contains(spoken, "never be spoken") || strings.Contains(spoken, "4417") {
		t.Errorf("TTS was asked to speak gated text: %q", spoken)
	}
	if !strings.Contains(spoken, "Your ticket number is a redacted value.") {
		t.Errorf("the redacted sentence was not spoken: %q", spoken)
	}
	// Every sentence that reached TTS was checked first.
	checked := strings.Join(pol.Checks(), "|")
	if !strings.Contains(checked, "inbound:Tell me about the motor.") || !strings.Contains(checked, "outbound:Your ticket number is 4417.") {
		t.Errorf("checks %q", checked)
	}
}

// TestInboundBlock: a blocked caller transcript never reaches the model.
func TestInboundBlock(t *testing.T) {
	pol := &keywordPolicy{block: "Zephyr", redact: "\x00"}
	st := startStack(t, stackOpts{policy: pol, sim: sim.Config{ASRScript: []string{"What is the Zephyr burn rate?"}}})
	c := dialCaller(t, st, "opus")
	c.Say(speech(t, "What is the burn rate?", media.PipelineRate, 200*time.Millisecond, 0))
	var pe loadtest.ServerMessage
	turn := nextEvent(t, c, 20*time.Second, func(m loadtest.ServerMessage) bool {
		if m.Type == "policy" {
			pe = m
		}
		return m.Type == "turn"
	})
	if turn.Outcome != "blocked" || pe.Direction != "inbound" || pe.Action != "block" {
		t.Errorf("outcome %q, policy %+v; want an inbound block", turn.Outcome, pe)
	}
	if n := len(st.sim.ChatRequests()); n != 0 {
		t.Errorf("the LLM received %d requests after an inbound block", n)
	}
}
