package classifier

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// A feature is one input of the learned scorer: either a named,
// interpretable feature ("anchor.t3", "qty.dim:force", "mark.strong") whose
// weight the model keys by name, or a hashed word n-gram of the
// normalised text whose weight sits in the model's hashed table. Every
// feature keeps the spans of the text that produced it, for the
// explanation.
type feature struct {
	name string // named feature; "" for a hashed one
	hash uint32 // bucket of a hashed feature
	// g1 and g2 are the n-gram of a hashed feature (g2 empty for a
	// unigram), for the explanation only.
	g1, g2 string
	val    float64
	spans  []Span // a named feature's spans
	span   Span   // a hashed feature's span
}

// gram is the n-gram of a hashed feature.
func (f *feature) gram() string {
	if f.g2 == "" {
		return f.g1
	}
	return f.g1 + " " + f.g2
}

// context is what a session adds to one text: the categories the call
// has been about (carried anchor weight, decaying) and the carried anchor
// terms, which are read before the text ("microchannel plate. Ten
// microns, center to center.").
type context struct {
	carry  map[string]float64
	prefix string
}

// contextFeatures computes the features of text in its call's context:
// with a carried topic, of the carried terms followed by the text (the
// question and ask features stay the text's own); spans in the carried
// terms are dropped and the rest shifted back onto text.
func (e *Engine) contextFeatures(text string, a *analysis, ctx *context) *featureSet {
	if ctx == nil || ctx.prefix == "" || a.question || a.asks > 0 && len(a.quantities) == 0 && len(a.identifiers) == 0 || !givesData(a) {
		// A question about the call's topic releases nothing, nor does a
		// text with no value or instruction in it ("awesome, thanks"):
		// they are read on their own.
		return e.features(a, ctx)
	}
	ca := e.analyze(ctx.prefix + ". " + text)
	ca.question, ca.asks = a.question, a.asks
	fs := e.features(ca, ctx)
	off := len(ctx.prefix) + 2
	for i := range fs.feats {
		f := &fs.feats[i]
		kept := f.spans[:0]
		for _, s := range f.spans {
			if s.Start >= off {
				s.Start -= off
				s.End -= off
				kept = append(kept, s)
			}
		}
		f.spans = kept
		if f.name == "" {
			if f.span.Start >= off {
				f.span.Start -= off
				f.span.End -= off
			} else {
				f.span = Span{}
			}
		}
	}
	return fs
}

// featureSet collects the features of one text. Named features are
// merged by name (the value is the largest, spans accumulate).
type featureSet struct {
	feats   []feature
	index   map[string]int
	scratch []contribIdx
}

var featurePool = sync.Pool{New: func() any {
	return &featureSet{feats: make([]feature, 0, 128), index: make(map[string]int, 64)}
}}

// newFeatureSet takes an empty set from the pool; release returns it.
func newFeatureSet() *featureSet { return featurePool.Get().(*featureSet) }

func (fs *featureSet) release() {
	if cap(fs.feats) > 4096 {
		return // one huge text: let it go
	}
	for i := range fs.feats {
		fs.feats[i] = feature{}
	}
	fs.feats = fs.feats[:0]
	clear(fs.index)
	fs.scratch = fs.scratch[:0]
	featurePool.Put(fs)
}

func (fs *featureSet) set(name string, val float64, spans ...Span) {
	if val == 0 {
		return
	}
	if i, ok := fs.index[name]; ok {
		f := &fs.feats[i]
		f.val = max(f.val, val)
		f.spans = append(f.spans, spans...)
		return
	}
	fs.index[name] = len(fs.feats)
	fs.feats = append(fs.feats, feature{name: name, val: val, spans: spans})
}

// hashed adds a hashed n-gram feature (value 1; the model sums features
// that share a bucket).
func (fs *featureSet) hashed(h uint32, g1, g2 string, span Span) {
	fs.feats = append(fs.feats, feature{hash: h, g1: g1, g2: g2, val: 1, span: span})
}

// log1p scales a count so the tenth hit adds less than the first.
func log1p(n int) float64 { return math.Log1p(float64(n)) }

// technicalWindow is the best-scoring window of the rule score, kept as
// features: its anchor strength, lifecycle language and specificity, and
// their products (anchors with numbers, anchors with procedure), which a
// linear model cannot form on its own.
func (e *Engine) features(a *analysis, ctx *context) *featureSet {
	fs := newFeatureSet()
	fs.set("bias", 1)
	if len(a.toks) == 0 {
		return fs
	}
	// Lexicon hits by tier and category.
	var tierTerms [4][]string
	var tierSpans [4][]Span
	var cats []*phrase // the first anchor of each category of weight ≥ 2
	intent, procedure, technical := 0, 0, 0
	var techSpans []Span
	var intentSpans, procSpans []Span
	imperative := false
	for _, h := range a.hits {
		switch h.p.kind {
		case KindAnchor:
			if strings.HasSuffix(h.span.Rule, "~sound") {
				fs.set("obf:homophone", 1, h.span)
			}
			t := int(h.p.weight)
			if !slices.Contains(tierTerms[t], h.p.text) {
				tierTerms[t] = append(tierTerms[t], h.p.text)
			}
			tierSpans[t] = append(tierSpans[t], h.span)
			if h.p.weight >= 2 && !slices.ContainsFunc(cats, func(p *phrase) bool { return p.category == h.p.category }) {
				cats = append(cats, h.p)
			}
		case KindIntent:
			intent++
			intentSpans = append(intentSpans, h.span)
			if a.leads(h) {
				imperative = true // "bypass the safe and arm device …"
				procSpans = append(procSpans, h.span)
			}
		case KindProcedure:
			procedure++
			procSpans = append(procSpans, h.span)
			if a.leads(h) {
				imperative = true
			}
		case KindTechnical:
			technical++
			techSpans = append(techSpans, h.span)
		case KindCue:
			fs.set(h.p.feature, 1, h.span)
		case KindMarking:
			fs.set("mark.strong", 1, h.span)
		case KindWeak:
			fs.set("mark.weak", 1, h.span)
		}
	}
	for t := 1; t <= 3; t++ {
		if n := len(tierTerms[t]); n > 0 {
			fs.set("anchor.t"+strconv.Itoa(t), log1p(n), tierSpans[t]...)
		}
	}
	slices.SortFunc(cats, func(x, y *phrase) int { return strings.Compare(x.category, y.category) })
	for _, p := range cats {
		fs.set(p.feature, 1)
	}
	if len(cats) > 1 {
		fs.set("anchor.multicat", 1)
	}
	fs.set("intent", log1p(intent), intentSpans...)
	fs.set("technical", log1p(technical), techSpans...)
	fs.set("procedure", log1p(procedure), procSpans...)
	if imperative {
		fs.set("imperative", 1, procSpans...)
	}
	// Quantities, thresholds, tolerances.
	var qspans []Span
	qw := 0.0
	var dims []string // feature names of the quantities' dimensions
	for _, q := range a.quantities {
		qspans = append(qspans, q.span)
		qw += q.unit.weight
		if !slices.Contains(dims, q.unit.feature) {
			dims = append(dims, q.unit.feature)
		}
		if q.tolerance || q.rng {
			fs.set("tolerance", 1, q.span)
		}
		for _, th := range e.thresholds {
			if th.dim != q.unit.dim {
				continue
			}
			if th.above && q.si > th.value || !th.above && q.si < th.value && q.si > 0 {
				near := slices.ContainsFunc(th.categories, func(c string) bool {
					return slices.ContainsFunc(cats, func(p *phrase) bool { return p.category == c })
				})
				if near {
					fs.set("threshold.near-anchor", 1, q.span)
					if !slices.Contains(a.crossed, th.id) {
						a.crossed = append(a.crossed, th.id)
					}
				}
			}
		}
	}
	if n := len(a.quantities); n > 0 {
		fs.set("qty", log1p(n), qspans...)
		fs.set("qty.weight", min(3, qw)/3)
		if n >= 3 {
			fs.set("qty.many", 1)
		}
		slices.Sort(dims)
		for _, d := range dims {
			fs.set(d, 1)
		}
		if len(dims) >= 2 {
			fs.set("qty.multidim", 1)
		}
	}
	for _, t := range a.tolerances {
		fs.set("tolerance", 1, Span{Start: a.toks[t].start, End: a.toks[t].end, Kind: KindQuantity, Rule: "tolerance"})
	}
	// Numbers without a unit, precision, scientific notation.
	bare, precise := 0, 0
	inQty := make([]bool, len(a.toks))
	for _, q := range a.quantities {
		for k := q.tok; k < q.next; k++ {
			inQty[k] = true
		}
	}
	for i, t := range a.toks {
		if !t.isNum || inQty[i] {
			continue
		}
		bare++
		if strings.ContainsAny(t.text, ".e") && len(t.text) >= 3 {
			precise++
		}
	}
	fs.set("number.bare", log1p(bare))
	fs.set("number.precise", log1p(precise))
	// Identifiers.
	if n := len(a.identifiers); n > 0 {
		fs.set("ident", log1p(n), a.idSpans...)
		for k, ti := range a.identifiers {
			s := a.toks[ti].text
			switch {
			case eccnShape(strings.SplitN(s, ".", 2)[0]):
				fs.set("ident.eccn", 1, a.idSpans[k])
			case s == "rev":
				fs.set("ident.revision", 1, a.idSpans[k])
			default:
				fs.set("ident.part", 1, a.idSpans[k])
			}
		}
	}
	// Markings and dampers.
	if a.negative {
		fs.set("mark.negative", 1)
	}
	// Dampers by kind, counted (a.dampers is in text order).
	var damp []*phrase
	var dampN []int
	refusal, civilian := false, false
	for _, p := range a.dampers {
		refusal = refusal || p.category == "refusal"
		civilian = civilian || p.category == "civilian"
		if k := slices.IndexFunc(damp, func(q *phrase) bool { return q.category == p.category }); k >= 0 {
			dampN[k]++
			continue
		}
		damp = append(damp, p)
		dampN = append(dampN, 1)
	}
	for k, p := range damp {
		fs.set(p.feature, log1p(dampN[k]))
	}
	if a.money > 0 {
		fs.set("damper:money", log1p(a.money))
	}
	if a.question {
		fs.set("question", 1)
	}
	if a.asks > 0 {
		fs.set("question.words", log1p(a.asks))
	}
	if refusal && (len(a.quantities) > 0 || bare > 0) {
		fs.set("refusal&data", 1)
	}
	if civilian && len(a.quantities) > 0 {
		fs.set("civilian&qty", 1)
	}
	if a.programs > 0 {
		fs.set("program.ref", log1p(a.programs))
	}
	if a.names > 0 {
		fs.set("name.proper", log1p(a.names))
	}
	if n := len(a.pins); n > 0 {
		fs.set("ident.pin", log1p(n), a.pins...)
	}
	// The rule score's best window: A, L, Q and their products.
	var best window
	for _, wr := range windows(a.toks) {
		if w := e.scoreWindow(a, wr[0], wr[1], ctxCarry(ctx)); w.r > best.r {
			best = w
		}
	}
	tech := best.a >= 2 || len(a.quantities) > 0 || len(a.identifiers) > 0
	switch {
	case len(a.quantities) > 0 && len(cats) == 0:
		fs.set("qty&no-anchor", 1)
	case len(a.quantities) > 0:
		fs.set("qty&anchor", 1)
	case bare > 0 && len(cats) > 0:
		fs.set("number&anchor", 1)
	}
	if fs.has("mark.strong") {
		if tech || procedure > 0 {
			fs.set("mark.strong&technical", 1)
		}
		if a.question {
			fs.set("mark.strong&question", 1)
		}
	}
	fs.set("win.a", best.a/3)
	fs.set("win.l", best.l/2)
	fs.set("win.q", best.q/3)
	fs.set("win.aq", best.a*best.q/9)
	fs.set("win.al", best.a*best.l/6)
	fs.set("win.alq", best.a*best.l*best.q/18)
	fs.set("win.r", min(30, best.r)/10)
	if best.a >= 3 && best.q >= 1 {
		fs.set("win.t3&qty", 1)
	}
	if best.a >= 2 && best.l >= 1 {
		fs.set("win.anchor&intent", 1)
	}
	// Session context: the call's carried topic with this text's numbers.
	if ctx != nil && len(ctx.carry) > 0 {
		cw := 0.0
		for _, w := range ctx.carry {
			cw = max(cw, w)
		}
		fs.set("carry", cw/3)
		if len(a.quantities) > 0 {
			fs.set("carry&qty", cw/3, qspans...)
		}
		if bare > 0 {
			fs.set("carry&number", cw/3)
		}
		if procedure > 0 || intent > 0 {
			fs.set("carry&procedure", cw/3)
		}
	}
	// Shape: code and key=value listings, length.
	if a.code > 0 {
		fs.set("code", log1p(a.code))
	}
	if a.blobs > 0 {
		fs.set("encoded", log1p(a.blobs))
	}
	// Recovered obfuscation: text that hid its words (and where).
	for _, t := range a.toks {
		if t.obf != "" {
			fs.set(obfFeature(t.obf), 1, Span{Start: t.start, End: t.end, Kind: "obfuscation", Rule: "obf:" + t.obf})
		}
	}
	fs.set("len", math.Log1p(float64(len(a.toks)))/5)
	e.ngrams(a, fs, inQty)
	return fs
}

func (fs *featureSet) has(name string) bool { _, ok := fs.index[name]; return ok }

// value is a named feature's value, 0 when absent.
func (fs *featureSet) value(name string) float64 {
	if i, ok := fs.index[name]; ok {
		return fs.feats[i].val
	}
	return 0
}

func ctxCarry(ctx *context) map[string]float64 {
	if ctx == nil || len(ctx.carry) == 0 {
		return nil
	}
	return ctx.carry
}

// gramToken is the form a token takes in n-grams: numbers become <num>,
// a quantity's number and unit become <dim>, so "38 kilonewtons" and
// "six kilonewtons" share their n-grams.
func gramToken(a *analysis, i int, qdim []string, inQty []bool) string {
	if qdim != nil && inQty[i] {
		return qdim[i]
	}
	if a.toks[i].isNum {
		return "<num>"
	}
	return a.toks[i].text
}

// ngrams adds hashed word unigrams and bigrams of the normalised text.
func (e *Engine) ngrams(a *analysis, fs *featureSet, inQty []bool) {
	// The n-gram form of each token of a quantity: its dimension, or ""
	// for the unit words after the number.
	var qdim []string
	if len(a.quantities) > 0 {
		qdim = make([]string, len(a.toks))
		for _, q := range a.quantities {
			qdim[q.tok] = q.unit.gram
		}
	}
	prev, prevStart := "<s>", 0
	if len(a.toks) > 0 {
		prevStart = a.toks[0].start
	}
	for i, t := range a.toks {
		g := gramToken(a, i, qdim, inQty)
		if g == "" {
			continue // the unit words of a quantity
		}
		if i > 0 && t.sentence != a.toks[i-1].sentence {
			prev, prevStart = "<s>", t.start
		}
		fs.hashed(hashGram("1", g, ""), g, "", Span{Start: t.start, End: t.end, Kind: "ngram"})
		fs.hashed(hashGram("2", prev, g), prev, g, Span{Start: prevStart, End: t.end, Kind: "ngram"})
		prev, prevStart = g, t.start
	}
}

// hashGram is FNV-1a over the parts with separators.
func hashGram(kind, x, y string) uint32 {
	h := uint32(2166136261)
	for _, s := range [3]string{kind, x, y} {
		for i := 0; i < len(s); i++ {
			h ^= uint32(s[i])
			h *= 16777619
		}
		h ^= 0xff
		h *= 16777619
	}
	return h
}

// obfFeature names the feature of a recovered obfuscation without
// allocating for the known transforms.
func obfFeature(kind string) string {
	switch kind {
	case obfLeet:
		return "obf:leet"
	case obfHomoglyph:
		return "obf:homoglyph"
	case obfInvisible:
		return "obf:invisible"
	case obfSpaced:
		return "obf:spaced"
	case obfDotted:
		return "obf:dotted"
	case obfNATO:
		return "obf:nato"
	case obfLetters:
		return "obf:letters"
	case obfReversed:
		return "obf:reversed"
	case obfBase64:
		return "obf:base64"
	case obfHex:
		return "obf:hex"
	case obfROT13:
		return "obf:rot13"
	case obfArith:
		return "obf:arith"
	}
	return "obf:" + kind
}

// givesData reports a text that could carry a parameter of the call's
// topic: a number, quantity, identifier or pin reference, or lifecycle or
// procedure language.
func givesData(a *analysis) bool {
	if len(a.quantities) > 0 || len(a.identifiers) > 0 || len(a.pins) > 0 {
		return true
	}
	for _, t := range a.toks {
		if t.isNum {
			return true
		}
	}
	for _, h := range a.hits {
		if h.p.kind == KindProcedure || h.p.kind == KindIntent {
			return true
		}
	}
	return false
}
