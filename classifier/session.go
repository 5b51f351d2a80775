package classifier

import "math"

// Session is one call's classifier state: the caller's topic carries into
// the next model sentences (so "about forty five kilonewtons" right after
// "what thrust does the motor make" is caught), and an accumulator per
// category escalates piecemeal extraction across turns. One goroutine owns
// a Session; it is not safe for concurrent use.
type Session struct {
	e *Engine
	// carry is the caller's anchor weight per category, decaying by half
	// with each model sentence; it lasts about three sentences.
	carry map[string]float64
	// acc is the per-category score sum with a half-life of five texts.
	acc map[string]float64
}

// NewSession starts a call's classifier state.
func (e *Engine) NewSession() *Session {
	return &Session{e: e, carry: map[string]float64{}, acc: map[string]float64{}}
}

const (
	carryDecay = 0.5
	accDecay   = 0.87 // 0.87^5 ≈ 0.5: five-text half-life
)

// Classify decides one text in the call's context.
func (s *Session) Classify(text string, party Party, dir Direction) Decision {
	a := s.e.analyze(text)
	var carry map[string]float64
	if dir == Outbound {
		carry = s.carry
	}
	d := s.e.decide(text, a, party, dir, carry)
	// Update topic carry: the caller's anchors arm it; model sentences decay it.
	if dir == Inbound {
		for c, w := range a.anchors {
			s.carry[c] = w
		}
	} else {
		for c, w := range s.carry {
			if w *= carryDecay; w < 0.5 {
				delete(s.carry, c)
			} else {
				s.carry[c] = w
			}
		}
	}
	// Accumulate and escalate.
	for c, v := range s.acc {
		s.acc[c] = v * accDecay
	}
	escalate := false
	for _, c := range d.Categories {
		if c == "marking" {
			continue
		}
		s.acc[c] += d.Score
		if s.acc[c] >= s.e.accumulate {
			escalate = true
		}
	}
	if escalate && party != PartyUSPerson && d.Action == Allow && d.Score > 0 && math.Round(d.Score) >= 4 {
		d.Action = Block
		d.Controlled = true
		d.Rules = append(d.Rules, "session.accumulator")
		d.Trace = append(d.Trace, "session accumulator reached the escalation threshold: piecemeal extraction")
	}
	return d
}
