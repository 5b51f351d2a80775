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
	"math"
	"sort"
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
	return "", fmt.Errorf("unknown party %q (want us-person, foreign or unknown)", s)
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
	Action      Action   `json:"action"`
	Controlled  bool     `json:"controlled"`
	Score       float64  `json:"score"`
	Categories  []string `json:"categories"`
	Rules       []string `json:"rules"`
	Spans       []Span   `json:"spans,omitempty"`
	Redacted    string   `json:"redacted,omitempty"`
	Markings    []string `json:"markings,omitempty"`
	Trace       []string `json:"-"`
	PackVersion string   `json:"pack_version"`
	// A, L, Q and D are the score's terms.
	A, L, Q, D float64 `json:"-"`
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

// analysis is what one pass over a text found.
type analysis struct {
	anchors      map[string]float64 // category → strongest weight
	anchorTerms  map[string]bool
	intent       int
	procedure    int
	quantities   float64
	tolerance    bool
	identifiers  int
	markings     []string
	weakMarkings []string
	negative     bool
	dampers      int
	question     bool
	imperative   bool // the text starts with a procedure verb
	spans        []Span
}

// Classify decides one text on its own (no session state).
func (e *Engine) Classify(text string, party Party, dir Direction) Decision {
	a := e.analyze(text)
	return e.decide(text, a, party, dir, nil)
}

func (e *Engine) analyze(text string) *analysis {
	toks := tokenize(text)
	a := &analysis{anchors: map[string]float64{}, anchorTerms: map[string]bool{}}
	if len(toks) == 0 {
		return a
	}
	// The normalised text: " tok tok tok", with each byte mapped to its token.
	var sb strings.Builder
	owner := make([]int, 0, len(text)+len(toks))
	for i, t := range toks {
		sb.WriteByte(' ')
		owner = append(owner, i)
		sb.WriteString(t.text)
		for range len(t.text) {
			owner = append(owner, i)
		}
	}
	sb.WriteByte(' ')
	owner = append(owner, len(toks))
	norm := sb.String()
	nb := []byte(norm)
	e.trie.Walk(nb, func(end, n, pattern int64) bool {
		start := int(end - n + 1) // position of the leading space
		stop := int(end + 1)      // one past the match
		// Word boundary after: a space, or a plural "s"/"es" then a space.
		switch {
		case stop < len(norm) && norm[stop] == ' ':
		case stop+1 < len(norm) && norm[stop] == 's' && norm[stop+1] == ' ':
			stop++
		case stop+2 < len(norm) && norm[stop:stop+2] == "es" && norm[stop+2] == ' ':
			stop += 2
		default:
			return true
		}
		p := e.phrases[pattern]
		first, last := owner[start+1], owner[stop-1]
		span := Span{Start: toks[first].start, End: toks[last].end, Rule: p.rule, Kind: p.kind}
		switch p.kind {
		case KindAnchor:
			if p.weight > a.anchors[p.category] {
				a.anchors[p.category] = p.weight
			}
			a.anchorTerms[p.text] = true
		case KindIntent:
			a.intent++
		case KindProcedure:
			a.procedure++
		case KindMarking:
			a.markings = append(a.markings, p.text)
		case KindWeak:
			a.weakMarkings = append(a.weakMarkings, p.text)
		case KindNegative:
			a.negative = true
		case KindDamper:
			a.dampers++
		}
		a.spans = append(a.spans, span)
		return true
	})
	// Quantities: a number followed by a unit, or a token with the unit
	// glued on ("45kn", "60°/s", "2.4ms").
	for i, t := range toks {
		if strings.HasPrefix(t.text, "$") {
			a.dampers++ // money is business talk
			continue
		}
		if strings.HasPrefix(t.text, "±") {
			a.tolerance = true
		}
		if t.text == "rev" || hasDigitAndLetter(t.text) {
			for _, re := range e.identifiers {
				if re.MatchString(t.text) && (t.text != "rev" || i+1 < len(toks)) {
					a.identifiers++
					a.spans = append(a.spans, Span{Start: t.start, End: t.end, Rule: "identifier", Kind: KindID})
					break
				}
			}
		}
		num, rest := splitNumber(t.text)
		if num == "" {
			continue
		}
		if rest != "" {
			if w, ok := e.units[rest]; ok {
				a.quantities += w
				a.spans = append(a.spans, Span{Start: t.start, End: t.end, Rule: "quantity:" + rest, Kind: KindQuantity})
			}
			continue
		}
		// Longest unit phrase in the next tokens.
		for n := min(e.maxUnitLen, len(toks)-i-1); n >= 1; n-- {
			u := toks[i+1].text
			for k := 1; k < n; k++ {
				u += " " + toks[i+1+k].text
			}
			if w, ok := e.units[u]; ok {
				a.quantities += w
				a.spans = append(a.spans, Span{Start: t.start, End: toks[i+n].end, Rule: "quantity:" + u, Kind: KindQuantity})
				break
			}
		}
	}
	a.question = isQuestion(toks, text)
	a.imperative = e.procedure[toks[0].text]
	return a
}

// hasDigitAndLetter reports a token that could be a part or document number.
func hasDigitAndLetter(s string) bool {
	d, l := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			d = true
		case c >= 'a' && c <= 'z':
			l = true
		}
	}
	return d && l
}

// splitNumber splits "2.4ms" into "2.4" and "ms"; a plain number gives an
// empty rest; a token that does not start with a number gives "".
func splitNumber(s string) (num, rest string) {
	s = strings.TrimLeft(s, "±+")
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.' || s[i] == ',') {
		i++
	}
	if i == 0 || !strings.ContainsAny(s[:i], "0123456789") {
		return "", ""
	}
	return s[:i], s[i:]
}

var questionStarts = map[string]bool{"what": true, "whats": true, "how": true, "why": true, "is": true, "are": true, "do": true, "does": true, "can": true, "could": true, "should": true, "who": true, "which": true, "am": true, "where": true, "when": true}

func isQuestion(toks []token, text string) bool {
	if strings.HasSuffix(strings.TrimSpace(text), "?") {
		return true
	}
	return len(toks) > 0 && questionStarts[toks[0].text]
}

// decide turns an analysis into a decision for party.
func (e *Engine) decide(text string, a *analysis, party Party, dir Direction, carry map[string]float64) Decision {
	d := Decision{PackVersion: e.version, Spans: a.spans}
	var trace []string
	// A: strongest anchor, half a point per further distinct anchor term.
	var cats []string
	aVal := 0.0
	for c, w := range a.anchors {
		cats = append(cats, c)
		aVal = math.Max(aVal, w)
	}
	carried := false
	for c, w := range carry { // topic carried from the caller's words
		if _, ok := a.anchors[c]; !ok && w > 0 {
			cats = append(cats, c)
			aVal = math.Max(aVal, w)
			carried = true
			trace = append(trace, fmt.Sprintf("topic carry: %s at %.1f", c, w))
		}
	}
	if n := len(a.anchorTerms); n > 1 {
		aVal = math.Min(4, aVal+0.5*float64(n-1))
	}
	if aVal == 0 && a.quantities > 0 {
		aVal = 1
		trace = append(trace, "no anchor: technical quantity counts as A=1")
	}
	// L: intent.
	l := 0.0
	switch {
	case a.procedure >= 2 || a.procedure >= 1 && a.intent >= 1 || a.imperative:
		l = 2
	case a.procedure == 1 || a.intent >= 1:
		l = 1
	}
	// Q: specificity.
	q := a.quantities
	if a.quantities >= 2 {
		q += 0.5 // several parameters
	}
	if a.tolerance {
		q++
	}
	if carried && a.quantities > 0 {
		q++ // the quantity answers the caller's technical question
	}
	q += float64(a.identifiers)
	q = math.Min(3, q)
	// D: dampers.
	dm := -float64(a.dampers)
	if a.question {
		dm--
	}
	if a.negative {
		dm -= 2
	}
	dm = math.Max(-3, dm)
	r := aVal*(1+l+q) + dm
	if r < 0 {
		r = 0
	}
	d.A, d.L, d.Q, d.D = aVal, l, q, dm
	d.Score = math.Round(r*100) / 100
	trace = append(trace, fmt.Sprintf("A=%.1f L=%.0f Q=%.1f D=%.0f → R=%.2f (redact ≥ %.0f, block ≥ %.0f)", aVal, l, q, dm, r, e.redact, e.block))
	marked := len(a.markings) > 0 && !(a.question && len(a.markings) > 0 && r < e.redact && !hasStrongApplied(text))
	if marked {
		cats = append(cats, "marking")
		trace = append(trace, "strong export-control marking: "+strings.Join(a.markings, ", "))
	}
	d.Markings = append(append([]string(nil), a.markings...), a.weakMarkings...)
	d.Controlled = marked || r >= e.redact
	sort.Strings(cats)
	d.Categories = dedupe(cats)
	if d.Categories == nil {
		d.Categories = []string{}
	}
	rules := []string{}
	for _, s := range a.spans {
		if s.Kind == KindDamper || s.Kind == KindIntent || s.Kind == KindProcedure {
			continue
		}
		rules = append(rules, s.Rule)
	}
	sort.Strings(rules)
	d.Rules = dedupe(rules)
	if d.Rules == nil {
		d.Rules = []string{}
	}
	d.Action = Allow
	if party != PartyUSPerson {
		switch {
		case marked || r >= e.block:
			d.Action = Block
		case r >= e.redact:
			d.Action = Redact
			d.Redacted = redactSpans(text, a.spans)
		}
	} else if d.Controlled {
		trace = append(trace, "verified U.S. person: allowed, logged")
	}
	trace = append(trace, fmt.Sprintf("party %s, direction %s → %s", party, dir, d.Action))
	d.Trace = trace
	return d
}

// hasStrongApplied reports a marking written as a marking (upper case, or
// at the start of the text) rather than asked about.
func hasStrongApplied(text string) bool {
	up := 0
	letters := 0
	for _, r := range text {
		if r >= 'A' && r <= 'Z' {
			up++
		}
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			letters++
		}
	}
	return letters > 0 && up*4 > letters
}

// redactSpans replaces quantities and identifiers in text with "[redacted]".
func redactSpans(text string, spans []Span) string {
	var rs []Span
	for _, s := range spans {
		if s.Kind == KindQuantity || s.Kind == KindID {
			rs = append(rs, s)
		}
	}
	if len(rs) == 0 {
		return "[redacted]"
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].Start < rs[j].Start })
	var sb strings.Builder
	pos := 0
	for _, s := range rs {
		if s.Start < pos {
			if s.End > pos {
				pos = s.End
			}
			continue
		}
		sb.WriteString(text[pos:s.Start])
		sb.WriteString("[redacted]")
		pos = s.End
	}
	sb.WriteString(text[pos:])
	return sb.String()
}

func dedupe(s []string) []string {
	if len(s) == 0 {
		return s
	}
	out := s[:1]
	for _, v := range s[1:] {
		if v != out[len(out)-1] {
			out = append(out, v)
		}
	}
	return out
}
