package classifier

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// explainTop is how many contributions a decision reports.
const explainTop = 8

// Classify decides one text on its own (no session state).
func (e *Engine) Classify(text string, party Party, dir Direction) Decision {
	return e.decide(text, e.analyze(text), party, dir, nil)
}

// decide scores an analysis with the model and turns it into a decision
// for party.
func (e *Engine) decide(text string, a *analysis, party Party, dir Direction, ctx *context) Decision {
	fs := e.contextFeatures(text, a, ctx)
	defer fs.release()
	z := e.model.score(fs)
	p := sigmoid(z)
	d := Decision{PackVersion: e.version, ModelVersion: e.model.version, Categories: []string{}, Rules: []string{},
		Score: math.Round(p*1e4) / 1e4, Logit: math.Round(z*1e3) / 1e3}
	asks := onlyAsks(a)
	if asks {
		p = min(p, askCap)
		d.Score = math.Round(p*1e4) / 1e4
	}
	d.Controlled = p >= e.model.redact
	d.Markings = append(slices.Clone(a.markings), a.weak...)
	d.Explanation = e.model.explain(fs, explainTop)
	// Categories: those named by dual-use or defense-specific anchors, or
	// by generic ones when nothing stronger is there; the carried topic
	// when it made a controlled decision; "marking" for a strong marking.
	cats := map[string]bool{}
	strong := false
	for _, h := range a.hits {
		if h.p.kind == KindAnchor && h.p.weight >= 2 {
			cats[h.p.category] = true
			strong = true
		}
	}
	if !strong {
		for _, h := range a.hits {
			if h.p.kind == KindAnchor {
				cats[h.p.category] = true
			}
		}
	}
	if d.Controlled && ctx != nil && len(cats) == 0 {
		for c := range ctx.carry {
			cats[c] = true
		}
	}
	// An ECCN or USML citation names its category.
	for _, ti := range a.identifiers {
		if c := citedCategory(a.toks[ti].text); c != "" {
			cats[c] = true
		}
	}
	if len(a.markings) > 0 {
		cats["marking"] = true
	}
	d.Categories = sortedKeys(cats)
	// Rules: the named features that pushed towards controlled, in order
	// of weight; n-grams by hash only. Markings always.
	rules := []string{}
	for _, c := range d.Explanation {
		if c.Logit > 0 {
			rules = append(rules, c.Feature)
		}
	}
	for _, h := range a.hits {
		if (h.p.kind == KindMarking || h.p.kind == KindWeak) && !slices.Contains(rules, h.p.rule) {
			rules = append(rules, h.p.rule)
		}
	}
	for _, id := range a.crossed {
		if !slices.Contains(rules, id) {
			rules = append(rules, id)
		}
	}
	d.Rules = rules
	// Spans: every lexicon match, quantity, identifier and damper, in
	// text order.
	for _, h := range a.hits {
		d.Spans = append(d.Spans, h.span)
	}
	for _, q := range a.quantities {
		d.Spans = append(d.Spans, q.span)
	}
	d.Spans = append(d.Spans, a.idSpans...)
	d.Spans = append(d.Spans, a.pins...)
	d.Spans = append(d.Spans, a.dampSpans...)
	slices.SortFunc(d.Spans, func(x, y Span) int {
		if x.Start != y.Start {
			return x.Start - y.Start
		}
		return x.End - y.End
	})
	d.Spans = slices.Compact(d.Spans)
	d.Action = Allow
	tr := tracer{on: e.trace}
	tr.addf("p=%.3f (logit %+.2f; controlled at p ≥ %g)", p, z, e.model.redact)
	if asks {
		tr.addf("a question with no values, identifiers, markings or instructions releases nothing: p at most %g", askCap)
	}
	if tr.on {
		for _, c := range d.Explanation {
			tr.addf("%+.2f %s%s", c.Logit, contributionName(c), spanText(text, c.Spans))
		}
	}
	switch {
	case party == PartyUSPerson:
		if d.Controlled {
			tr.addf("verified U.S. person: allowed, logged")
		}
	case !d.Controlled:
	case len(a.markings) > 0:
		d.Action = Block
		tr.addf("controlled text under an export-control marking: blocked")
	case fs.has("imperative") || fs.value("procedure") >= math.Log1p(2):
		// Redaction removes values, not instructions.
		d.Action = Block
		tr.addf("controlled instructions (procedure language): blocked")
	default:
		// Redact the numbers, quantities, identifiers and pin references;
		// if what is left still reads as controlled, block.
		red, n := redact(text, a)
		if n == 0 {
			d.Action = Block
			tr.addf("nothing to redact: blocked")
			break
		}
		ra := e.analyze(red)
		rfs := e.contextFeatures(red, ra, ctx)
		rp := sigmoid(e.model.score(rfs))
		rfs.release()
		// The values are gone; what is left is blocked only when it
		// still reads as controlled with margin (halfway from the
		// threshold to certainty): a description or a procedure.
		if rt := (e.model.redact + 1) / 2; rp >= rt {
			d.Action = Block
			tr.addf("redacted text still controlled (p=%.3f ≥ %.3f): blocked", rp, rt)
			break
		}
		d.Action = Redact
		d.Redacted = red
	}
	tr.addf("party %s, direction %s → %s", party, dir, d.Action)
	d.Trace = tr.lines
	return d
}

// tracer collects a decision's trace when the engine was asked for one
// (WithTrace); otherwise it costs nothing.
type tracer struct {
	on    bool
	lines []string
}

func (t *tracer) addf(format string, args ...any) {
	if t.on {
		t.lines = append(t.lines, fmt.Sprintf(format, args...))
	}
}

func contributionName(c Contribution) string {
	if c.Text != "" {
		return fmt.Sprintf("%s %q", c.Feature, c.Text)
	}
	if c.Value != 1 {
		return fmt.Sprintf("%s ×%.2f", c.Feature, c.Value)
	}
	return c.Feature
}

// spanText quotes the first few spans of text, for a local trace only.
func spanText(text string, spans []Span) string {
	var parts []string
	for _, s := range spans {
		if s.Start < 0 || s.End > len(text) || s.Start >= s.End || len(parts) == 3 {
			continue
		}
		q := fmt.Sprintf("%q", text[s.Start:s.End])
		if !slices.Contains(parts, q) {
			parts = append(parts, q)
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " [" + strings.Join(parts, " ") + "]"
}

// citedCategory returns the ECCN category an identifier token cites
// ("3a001.b.2" → "EAR-3A001"), or "".
func citedCategory(tok string) string {
	e, _, _ := strings.Cut(tok, ".")
	if !eccnShape(e) {
		return ""
	}
	if c := "EAR-" + strings.ToUpper(e); validCategory(c) {
		return c
	}
	return ""
}

// askCap is the highest probability a text that only asks may have.
const askCap = 0.2

// onlyAsks reports a text that asks and tells nothing: a question (or
// question words) with no number, quantity, identifier, pin reference,
// marking or instruction. Asking for technical data is not releasing it.
func onlyAsks(a *analysis) bool {
	if !a.question && a.asks == 0 || len(a.quantities) > 0 || len(a.identifiers) > 0 || len(a.pins) > 0 || len(a.markings) > 0 {
		return false
	}
	for _, t := range a.toks {
		if t.isNum {
			return false
		}
	}
	for _, h := range a.hits {
		if h.p.kind == KindProcedure && a.leads(h) {
			return false
		}
	}
	return true
}
