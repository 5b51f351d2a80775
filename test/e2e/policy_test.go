package e2e

import (
	"context"
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
	st := startStack(t, &stackOpts{policy: pol, sim: sim.Config{
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
	st := startStack(t, &stackOpts{policy: pol, sim: sim.Config{ASRScript: []string{"What is the Zephyr burn rate?"}}})
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

// TestClassifierGatesControlledReply: with the real deemed-export
// classifier, a model reply that carries controlled technical data is never
// sent to TTS for a caller whose status is unknown (who gets the policy
// event and hears the notice, and the audit log holds hashes, not text);
// for a caller attested as a U.S. person the same reply is spoken.
func TestClassifierGatesControlledReply(t *testing.T) {
	controlled := "Torque the TVC actuator bolts to 45 in-lb, then null each jet vane within 0.1 degrees."
	reply := "Sure, here is the procedure. " + controlled
	for _, c := range []struct {
		name, token string
		spoken      bool
	}{{"unknown caller", testToken, false}, {"us person", usPersonToken, true}} {
		t.Run(c.name, func(t *testing.T) {
			o := &stackOpts{sim: sim.Config{
				ASRScript: []string{"How do I recenter the thrust vector control?"},
				LLMScript: []sim.Rule{{Match: "*", Reply: reply}},
			}}
			st := startStack(t, o)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			call, err := loadtest.Dial(ctx, loadtest.CallerConfig{Gateway: st.url, Token: c.token})
			if err != nil {
				t.Fatal(err)
			}
			defer call.Close()
			if err := call.Connected(ctx); err != nil {
				t.Fatal(err)
			}
			call.Say(speech(t, "How do I recenter the thrust vector control?", media.PipelineRate, 200*time.Millisecond, 0))
			var policy []loadtest.ServerMessage
			turn := nextEvent(t, call, 20*time.Second, func(m loadtest.ServerMessage) bool {
				if m.Type == "policy" {
					policy = append(policy, m)
				}
				return m.Type == "turn"
			})
			spoken := strings.Join(st.sim.Spoken(), "|")
			if got := strings.Contains(spoken, "TVC actuator"); got != c.spoken {
				t.Fatalf("controlled sentence reached TTS = %v, want %v (spoken %q)", got, c.spoken, spoken)
			}
			if c.spoken {
				if turn.Outcome != "completed" {
					t.Errorf("outcome %q", turn.Outcome)
				}
				return
			}
			if turn.Outcome != "blocked" || len(policy) == 0 {
				t.Fatalf("outcome %q, %d policy events; want blocked with an event", turn.Outcome, len(policy))
			}
			last := policy[len(policy)-1]
			if last.Direction != "outbound" || last.Action != "block" || len(last.Categories) == 0 || len(last.Rules) == 0 {
				t.Errorf("policy event %+v", last)
			}
			audit := o.auditBuf.String()
			// Rule ids name lexicon terms; the caller's text and its values
			// never appear.
			if !strings.Contains(audit, `"action":"block"`) || !strings.Contains(audit, `"span_hashes"`) ||
				strings.Contains(audit, "Torque the") || strings.Contains(audit, "45 in-lb") || strings.Contains(audit, "0.1 degrees") {
				t.Errorf("audit log must record the block with hashes and no text: %s", audit)
			}
		})
	}
}
