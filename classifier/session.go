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
	// accMin is the lowest probability that counts as a partial release:
	// texts allowed at or above it add their probability to their
	// categories.
	accMin = 0.15
)

// Session is one call's classifier state: the topic carry (a caller's
// anchors stay live for the next few sentences, so "about forty five
// kilonewtons" right after "what thrust does the motor make" is read as a
// thrust figure) and a per-category accumulator that escalates piecemeal
// extraction across turns. One goroutine owns a Session; it is not safe
// for concurrent use.
type Session struct {
	e     *Engine
	carry carryState
	acc   map[string]float64 // category → decayed sum of allowed probabilities
	turns int
}

// NewSession starts a call's classifier state.
func (e *Engine) NewSession() *Session {
	return &Session{e: e, carry: carryState{m: map[string]float64{}}, acc: map[string]float64{}}
}

// Classify decides one text in the call's context and updates the state.
func (s *Session) Classify(text string, party Party, dir Direction) Decision {
	a := s.e.analyze(text)
	if dir == Inbound {
		s.turns++
		f := math.Pow(0.5, 1/accHalfLife)
		for c, v := range s.acc {
			if v *= f; v < 0.1 {
				delete(s.acc, c)
			} else {
				s.acc[c] = v
			}
		}
	}
	ctx := s.carry.context()
	d := s.e.decide(text, a, party, dir, ctx)
	s.carry.advance(a)
	if d.Action != Allow || d.Score < accMin {
		return d
	}
	// A partial answer counts towards its own categories and, when it
	// gives a value or instructions, towards the call's carried topic.
	cats := slices.Clone(d.Categories)
	if ctx != nil && givesData(a) {
		for _, c := range sortedKeys(ctx.carry) {
			if !slices.Contains(cats, c) {
				cats = append(cats, c)
			}
		}
	}
	var over []string
	for _, c := range cats {
		if c == "marking" {
			continue
		}
		s.acc[c] += d.Score
		if s.acc[c] >= s.e.model.accum {
			over = append(over, c)
		}
	}
	if s.e.trace {
		d.Trace = append(d.Trace, fmt.Sprintf("session accumulator: %v", roundedAcc(s.acc)))
	}
	if len(over) > 0 && party != PartyUSPerson {
		slices.Sort(over)
		d.Action = Block
		d.Controlled = true
		d.Escalate = true
		d.Rules = append(d.Rules, "session.accumulator")
		if s.e.trace {
			d.Trace = append(d.Trace, fmt.Sprintf("accumulator ≥ %g for %v: piecemeal extraction, blocked and escalated", s.e.model.accum, over))
		}
	}
	return d
}

func roundedAcc(m map[string]float64) map[string]float64 {
	out := make(map[string]float64, len(m))
	for k, v := range m {
		out[k] = math.Round(v*100) / 100
	}
	return out
}
