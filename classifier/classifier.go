// Package classifier is voicegw's deemed-export classifier: it decides
// whether a text — a caller's transcript or a model's sentence — releases
// technical data controlled under the ITAR (22 CFR 120.33) or the EAR, and
// what to do about it for the party who would hear it.
//
// It is deterministic and explainable, and imports nothing of voicegw's.
//
// Normalisation (normalize.go, numbers.go, spelled.go, decode.go) turns
// the text into tokens, each keeping its byte span in the original: NFKC,
// case folding, zero-width and bidi controls and soft hyphens removed,
// look-alike characters mapped to their Latin skeleton (a table generated
// from Unicode's confusables data), leetspeak undone on alphabetic-dominant
// tokens, spaced, dotted or hyphenated letters joined ("s e e k e r",
// "S·E·E·K·E·R"), NATO-alphabet and letter-name spellings read back
// ("sierra echo echo kilo", "tee vee see", "kilo seven seven four dash oh
// two"), reversed words or sentences, base64, hex and ROT13 runs that
// decode to text, spoken arithmetic ("two times twenty one"), and spelled
// or written numbers read as values the way ASR inverse text
// normalisation does ("forty five", "point oh one", "minus forty", "plus or
// minus point one", "one e minus seven", "3 × 10⁵", "1e-10", ranges
// "8-12"). A token recovered from an obfuscation records which one (and
// that is a feature of its own); a decoded token spans the encoded run.
// Normalize shows the result; it is idempotent.
//
// The bundle (bundle.go; packs/, embedded) is three parts pinned by
// SHA-256 in manifest.json, so that one detached signature over the
// manifest covers all of them:
//
//   - the rule pack (packs/default.yaml): what to look for — anchors per
//     USML category and ECCN with their tier (3 defense-specific, 2
//     dual-use, 1 generic), lifecycle and procedure language, general
//     engineering vocabulary, units with their dimension and SI value,
//     CCL parameter thresholds, identifier shapes, strong, weak and
//     negative markings, and kinds of dampers (public, textbook,
//     marketing, business, workplace, history, refusal, civilian);
//   - the lexicon (packs/lexicon.yaml), generated from the USML (22 CFR
//     121.1) and the CCL (15 CFR 774 Supp. 1) by classifier/internal/lexgen
//     from the excerpts and curation in classifier/lexicon, merged into the
//     pack's anchors, thresholds and markings;
//   - the model (packs/model.json), trained by `voicegw classify train`.
//
// Every term is normalised like the text and compiled into one
// Aho-Corasick automaton, so one pass finds every term; numbers are then
// paired with units and converted to SI so thresholds compare ("0.01
// deg/hr" is 4.8e-8 rad/s, under 7A002's 0.5 °/h).
//
// Scoring (features.go, model.go, decide.go) is a regularised logistic
// regression, p = σ(Σ wᵢxᵢ), over interpretable features — lexicon hits by
// tier and category, lifecycle and procedure language, quantities by
// dimension, thresholds crossed near an anchor of their category,
// tolerances, bare and precise numbers, identifiers (part, drawing,
// revision, ECCN, pin and connector references), program names, strong,
// weak and negative markings, dampers by kind, questions, code, the
// session's carried topic, and the rule score of the best window of
// sentences (R = A × (1 + L + Q): anchor strength, lifecycle language,
// specificity) with its products — and hashed word unigrams and bigrams
// of the normalised text, numbers read as <num> and quantities as their
// dimension ("<force>"). Training (train.go, trainbundle.go) is AdaGrad
// over balanced classes in a seeded order, so the same data gives the
// same model; the threshold is chosen on leave-one-file-out predictions
// (each file a writer the fold's model has not seen).
//
// A text is controlled at p ≥ the model's threshold. A verified U.S.
// person is always allowed (the decision still reports Controlled and the
// markings for the audit log). For a foreign or unknown party a
// controlled text is blocked when it carries a strong export-control
// marking or gives instructions (procedure language), and otherwise
// redacted (redact.go: its numbers, quantities, identifiers and pin
// references become "[redacted]"), unless the redacted text still scores
// controlled, which blocks it too.
//
// Every decision reports its largest contributions (Explanation: feature,
// value, weight, share of the logit and the spans that produced it).
// N-gram features are named by their hash bucket ("ngram:1a2b"), so
// decisions, rule lists and audit records never carry the text;
// Engine.WithTrace adds a readable trace that quotes it, for local use.
//
// A Session (session.go) adds a call's context: the dual-use and
// defense-specific anchors of each text stay live for the next texts,
// decaying ×0.6 per text until below 0.9 (about three sentences for a
// Tier-1 anchor), and are read before the next text ("rocket motor,
// thrust. It makes about forty five kilonewtons."), so a context-only
// release is scored with its topic; and a per-category accumulator sums
// the probabilities of allowed texts with p ≥ 0.15, halving every five
// caller turns, and blocks and escalates once a category reaches the
// model's accumulator threshold: piecemeal extraction.
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
