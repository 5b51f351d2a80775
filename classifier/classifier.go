// Package classifier is voicegw's deemed-export classifier: it decides
// whether a text — a caller's transcript or a model's sentence — releases
// technical data controlled under the ITAR (22 CFR 120.33) or the EAR, and
// what to do about it for the party who would hear it.
//
// It is deterministic and explainable. A versioned rule pack (YAML, one
// embedded by default) lists anchors per USML category and CCL entry,
// lifecycle and procedure cues, units, identifier shapes, export-control
// markings and dampers. Text is normalised (NFKC, case folding, invisible
// characters removed, look-alike letters mapped, leetspeak undone, spaced
// letters joined, spelled numbers turned into values) with every token's
// offsets kept into the original, and one Aho-Corasick pass finds every
// lexicon term. The score follows the model in the rule pack's notes:
//
//	R = A × (1 + L + Q) + D
//
// where A is the strongest anchor (3 defense-specific, 2 dual-use, 1
// generic, plus a half for each further distinct anchor, at most 4; a
// technical quantity with no anchor counts as A = 1), L the intent (1 for
// a lifecycle verb, 2 for procedure language), Q the specificity (numbers
// with engineering units, tolerances and identifiers, at most 3) and D the
// dampers (public-domain, textbook, marketing, business and question
// framing, down to -3). A strong marking blocks by itself. For a verified
// U.S. person everything is allowed (markings are still reported); for a
// foreign or unknown party R at or above the pack's redact threshold
// redacts the quantities and identifiers, and at or above block blocks.
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
	Action     Action   `json:"action"`
	Controlled bool     `json:"controlled"`
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
	Trace       []string `json:"trace,omitempty"`
	PackVersion string   `json:"pack_version"`
	// A, L, Q and D are the terms of the best window's score
	// R = A × (1 + L + Q) + D.
	A float64 `json:"a"`
	L float64 `json:"l"`
	Q float64 `json:"q"`
	D float64 `json:"d"`
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
