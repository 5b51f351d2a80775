package classifier

import (
	"fmt"
	"math"
	"slices"
)

// Session parameters.
const (
	// carryDecay multiplies a carried anchor's weight after each text, so
	// a Tier-1 anchor (3) stays live for three more sentences (1.8, 1.08,
	// then below carryFloor) and a dual-use one (2) for two.
	carryDecay = 0.6
	carryFloor = 0.9
	// accHalfLife is the accumulator's half-life in turns; a turn starts
	// with each caller (inbound) text.
	accHalfLife = 5.0
	// accMin is the lowest score that counts as a partial release: texts
	// allowed with R at or above it add R to their categories.
	accMin = 4.0
)

// Session is one call's classifier state: the topic carry (a caller's
// anchors stay live for the next few sentences, so "about forty five
// kilonewtons" right after "what thrust does the motor make" is caught)
// and a per-category accumulator that escalates piecemeal extraction
// across turns. One goroutine owns a Session; it is not safe for
// concurrent use.
type Session struct {
	e     *Engine
	carry map[string]float64 // category → carried anchor weight
	acc   map[string]float64 // category → decayed sum of allowed scores
	turns int
}

// NewSession starts a call's classifier state.
func (e *Engine) NewSession() *Session {
	return &Session{e: e, carry: map[string]float64{}, acc: map[string]float64{}}
}

// Classify decides one text in the call's context and updates the state.
func (s *Session) Classify(text string, party Party, dir Direction) Decision {
	a := s.e.analyze(text)
	if dir == Inbound {
		s.turns++
		f := math.Pow(0.5, 1/accHalfLife)
		for c, v := range s.acc {
			if v *= f; v < 0.5 {
				delete(s.acc, c)
			} else {
				s.acc[c] = v
			}
		}
	}
	var carry map[string]float64
	if len(s.carry) > 0 {
		carry = s.carry
	}
	d := s.e.decide(text, a, party, dir, carry)
	// Decay the carry, then arm it with this text's anchors.
	for c, w := range s.carry {
		if w *= carryDecay; w < carryFloor {
			delete(s.carry, c)
		} else {
			s.carry[c] = w
		}
	}
	// The carried weight is the text's anchor strength (A of its best
	// window, which counts several anchors above one), for each category
	// named by a dual-use or defense-specific anchor.
	for _, h := range a.hits {
		if h.p.kind == KindAnchor && h.p.weight >= 2 {
			s.carry[h.p.category] = max(s.carry[h.p.category], h.p.weight, d.A)
		}
	}
	if d.Action != Allow || d.Score < accMin {
		return d
	}
	var over []string
	for _, c := range d.Categories {
		if c == "marking" {
			continue
		}
		s.acc[c] += d.Score
		if s.acc[c] >= s.e.accumulate {
			over = append(over, c)
		}
	}
	d.Trace = append(d.Trace, fmt.Sprintf("session accumulator: %v", roundedAcc(s.acc)))
	if len(over) > 0 && party != PartyUSPerson {
		slices.Sort(over)
		d.Action = Block
		d.Controlled = true
		d.Escalate = true
		d.Rules = append(d.Rules, "session.accumulator")
		d.Trace = append(d.Trace, fmt.Sprintf("accumulator ≥ %g for %v: piecemeal extraction, blocked and escalated", s.e.accumulate, over))
	}
	return d
}

func roundedAcc(m map[string]float64) map[string]float64 {
	out := make(map[string]float64, len(m))
	for k, v := range m {
		out[k] = math.Round(v*10) / 10
	}
	return out
}
