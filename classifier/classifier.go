// Package classifier is voicegw's deemed-export classifier: it decides
// whether a text — a caller's transcript or a model's sentence — releases
// technical data controlled under the ITAR (22 CFR 120.33) or the EAR, and
// what to do about it for the party who would hear it.
//
// It is deterministic and explainable, and imports nothing of voicegw's.
//
// Normalisation (normalize.go, numbers.go) turns the text into tokens, each
// keeping its byte span in the original: NFKC, case folding, zero-width
// and bidi controls removed, look-alike characters mapped to their Latin
// skeleton (a table generated from Unicode's confusables data), leetspeak
// undone on alphabetic-dominant tokens, spaced-out letters joined ("s e e k
// e r"), and spelled or written numbers read as values the way ASR inverse
// text normalisation does ("forty five", "point oh one", "minus forty",
// "plus or minus point one", "one e minus seven", "3 × 10⁵", "1e-10",
// ranges "8-12"). Normalize shows the result; it is idempotent.
//
// The rule pack (pack.go, packs/default.yaml, embedded) is versioned YAML:
// anchors per USML category and ECCN with weights 1–3, lifecycle and
// procedure cues, units with their dimension and SI value, CCL parameter
// thresholds, identifier shapes, strong, weak and negative markings, and
// kinds of dampers. Every term is normalised like the text and compiled
// into one Aho-Corasick automaton, so one pass finds every term; numbers
// are then paired with units and converted to SI so thresholds compare
// ("0.01 deg/hr" is 4.8e-8 rad/s, under 7A002's 0.5 °/h).
//
// Scoring (score.go) follows the domain notes' model per window: a window
// is a run of whole sentences ending at each sentence, at most 48 tokens,
// so anchors, intent and quantities combine only when they are close.
//
//	R = A × (1 + L + Q) + D
//
// A is the strongest anchor (3 defense-specific, 2 dual-use, 1 generic),
// plus 0.5 for each further distinct anchor of weight 2 or 3, at most 4; a
// quantity with no anchor counts as A = 1. L is 1 for a lifecycle verb and
// 2 for procedure language (an imperative, or several procedure cues). Q is
// the unit weights of the numbers with units, +0.5 for several, +1 for a
// tolerance or range, +1 for a CCL threshold crossed near an anchor of its
// category, +1 for a quantity answering a carried topic, +1 per identifier,
// at most 3. D frames the whole text: -1 per damper match (fiction, history
// and refusals -2), -1 for money, -1 for a question, -2 for a
// public-release marking, at least -3. The text's score is its best
// window's. A strong marking blocks by itself (unless it is only asked
// about). For a foreign or unknown party R ≥ redact (7) redacts and R ≥
// block (10) blocks; a verified U.S. person is always allowed, and the
// decision still reports Controlled and the markings for the audit log.
//
// Redaction (redact.go) replaces the quantities, identifiers and numbers
// of every window at or above the redact threshold with "[redacted]"; a
// window whose score comes from words alone loses its sentences.
//
// A Session (session.go) adds a call's context: the anchors of each text
// (weight ≥ 2) stay live for the next texts at the text's anchor strength,
// decaying ×0.6 per text until below 0.9 (about three sentences for a
// Tier-1 anchor), so "about forty five kilonewtons" after "what thrust does
// the motor make" is caught; and a per-category accumulator sums the scores
// of texts allowed with R ≥ 4, halving every five caller turns, and blocks
// and escalates once a category reaches the pack's accumulator threshold
// (15): piecemeal extraction.
package classifier

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// Party is who would receive the text.
type Party string

// Parties. Unknown is treated as foreign.
const (
	PartyUSPerson Party = "us-person"
	PartyForeign  Party = "foreign"
	PartyUnknown  Party = "unknown"
)

// ParseParty reads a party name.
func ParseParty(s string) (Party, error) {
	switch Party(strings.ToLower(strings.TrimSpace(s))) {
	case PartyUSPerson, "us_person", "usperson":
		return PartyUSPerson, nil
	case PartyForeign:
		return PartyForeign, nil
	case PartyUnknown, "":
		return PartyUnknown, nil
	}
	return "", fmt.Errorf("%w %q (want us-person, foreign or unknown)", ErrParty, s)
}

// ParseDirection reads a direction name; empty means outbound.
func ParseDirection(s string) (Direction, error) {
	switch Direction(strings.ToLower(strings.TrimSpace(s))) {
	case Inbound:
		return Inbound, nil
	case Outbound, "":
		return Outbound, nil
	}
	return "", fmt.Errorf("%w %q (want inbound or outbound)", ErrDirection, s)
}

// Direction is which way the text flows.
type Direction string

// Directions.
const (
	Inbound  Direction = "inbound"  // caller → LLM
	Outbound Direction = "outbound" // model → caller
)

// Action is what to do with the text.
type Action string

// Actions.
const (
	Allow  Action = "allow"
	Redact Action = "redact"
	Block  Action = "block"
)

// Span is a matched piece of the original text.
type Span struct {
	Start int    `json:"start"`
	End   int    `json:"end"`
	Rule  string `json:"rule"`
	Kind  string `json:"kind"`
}

// Decision is the classifier's verdict on one text.
type Decision struct {
	Action     Action `json:"action"`
	Controlled bool   `json:"controlled"`
	// Score is the model's probability that the text releases technical
	// data, in [0, 1].
	Score      float64  `json:"score"`
	Categories []string `json:"categories"`
	Rules      []string `json:"rules"`
	Spans      []Span   `json:"spans,omitempty"`
	Redacted   string   `json:"redacted,omitempty"`
	Markings   []string `json:"markings,omitempty"`
	// Escalate is set when the session accumulator saw piecemeal
	// extraction: the text is blocked and the call should be reviewed.
	Escalate bool `json:"escalate,omitempty"`
	// Trace explains the decision, one step per entry.
	Trace []string `json:"trace,omitempty"`
	// Explanation is the features that contributed most to the score,
	// largest first, with the spans that produced them.
	Explanation  []Contribution `json:"explanation,omitempty"`
	PackVersion  string         `json:"pack_version"`
	ModelVersion string         `json:"model_version"`
	// Logit is the model's raw score; Score is its probability σ(Logit).
	Logit float64 `json:"logit"`
}

// SpanHashes returns salted hashes (HMAC-SHA-256, 128 bits, hex) of the
// matched spans of text, for audit records that must not hold the text.
func (d Decision) SpanHashes(salt []byte, text string) []string {
	out := make([]string, 0, len(d.Spans))
	for _, s := range d.Spans {
		if s.Start < 0 || s.End > len(text) || s.Start >= s.End {
			continue
		}
		m := hmac.New(sha256.New, salt)
		m.Write([]byte(text[s.Start:s.End]))
		out = append(out, hex.EncodeToString(m.Sum(nil)[:16]))
	}
	return out
}
