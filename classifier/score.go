package classifier

import (
	"slices"
	"strings"
)

// windowTokens is the largest window, in normalised tokens, that scoring
// combines anchors, intent and quantities over. Windows are runs of whole
// sentences ending at each sentence; one sentence longer than this is one
// window.
const windowTokens = 48

// hit is one lexicon match.
type hit struct {
	p          *phrase
	first, end int // token range [first, end)
	span       Span
}

// quantity is a number with a unit.
type quantity struct {
	unit      unit
	si        float64
	tok       int // token of the number
	next      int // token after the unit
	span      Span
	tolerance bool
	rng       bool
}

// analysis is what one pass over a text found.
type analysis struct {
	toks        []token
	hits        []hit
	quantities  []quantity
	identifiers []int // token indexes
	idSpans     []Span
	tolerances  []int // token indexes of ± tolerances
	sentStart   []bool
	question    bool
	dampers     []*phrase
	dampSpans   []Span
	negative    bool
	markings    []string
	weak        []string
	money       int
	code        int // lines that read as code or key=value settings
	asks        int // question words and phrases anywhere in the text
	pins        []Span
	crossed     []string // CCL thresholds crossed near an anchor of their category
	programs    int      // "project X", "program X", "block 3": a named program or variant
	names       int      // capitalised names inside a sentence: products, programs
	blobs       int      // runs that read as base64 or hex encodings
}

func (e *Engine) analyze(text string) *analysis {
	toks := tokenize(text)
	a := &analysis{toks: toks}
	if len(toks) == 0 {
		return a
	}
	// The normalised text " tok tok … ", with the token owning each byte.
	n := 1
	for _, t := range toks {
		n += len(t.text) + 1
	}
	nb := make([]byte, 0, n)
	owner := make([]int32, 0, n)
	for i, t := range toks {
		nb = append(nb, ' ')
		owner = append(owner, int32(i))
		nb = append(nb, t.text...)
		for range len(t.text) {
			owner = append(owner, int32(i))
		}
	}
	nb = append(nb, ' ')
	owner = append(owner, int32(len(toks)))
	e.trie.Walk(nb, func(end, n, pattern int64) bool {
		start := int(end - n + 1) // the leading space
		stop := int(end + 1)      // one past the match
		// A word boundary after: a space, or a plural "s"/"es" then a space.
		switch {
		case stop < len(nb) && nb[stop] == ' ':
		case stop+1 < len(nb) && nb[stop] == 's' && nb[stop+1] == ' ':
			stop++
		case stop+2 < len(nb) && nb[stop] == 'e' && nb[stop+1] == 's' && nb[stop+2] == ' ':
			stop += 2
		default:
			return true
		}
		first, last := int(owner[start+1]), int(owner[stop-1])
		for _, pi := range e.patterns[pattern] {
			p := &e.phrases[pi]
			h := hit{p: p, first: first, end: last + 1, span: Span{Start: toks[first].start, End: toks[last].end, Rule: p.rule, Kind: p.kind}}
			a.hits = append(a.hits, h)
		}
		return true
	})
	a.hits = append(a.hits, e.phoneticHits(toks, a.hits)...)
	a.hits = dropContained(a.hits)
	kept := a.hits[:0]
	for _, h := range a.hits {
		switch h.p.kind {
		case KindDamper:
			a.dampers = append(a.dampers, h.p)
			a.dampSpans = append(a.dampSpans, h.span)
			continue
		case KindNegative:
			a.negative = true
			a.dampSpans = append(a.dampSpans, h.span)
			continue
		case KindMarking:
			a.markings = append(a.markings, h.p.text)
		case KindWeak:
			a.weak = append(a.weak, h.p.text)
		}
		kept = append(kept, h)
	}
	a.hits = kept
	a.sentStart = make([]bool, len(toks))
	a.sentStart[0] = true
	for i, t := range toks {
		if i > 0 && t.sentence != toks[i-1].sentence {
			a.sentStart[i] = true
		}
		if strings.HasPrefix(t.text, "$") || strings.HasPrefix(t.text, "€") || strings.HasPrefix(t.text, "£") {
			a.money++
			continue
		}
		if strings.HasPrefix(t.text, "±") || t.text == "tolerance" {
			a.tolerances = append(a.tolerances, i)
		}
		if e.isIdentifier(toks, i) {
			a.identifiers = append(a.identifiers, i)
			a.idSpans = append(a.idSpans, Span{Start: t.start, End: t.end, Rule: "identifier", Kind: KindID})
		}
		if q, ok := e.quantityAt(toks, i); ok {
			if i > 0 && (toks[i-1].text == "within" || toks[i-1].text == "tolerance" || strings.HasPrefix(toks[i-1].text, "±")) {
				q.tolerance = true
			}
			a.quantities = append(a.quantities, q)
		}
	}
	a.question = isQuestion(toks, text)
	a.code = codeLines(text)
	a.blobs = encodedRuns(text)
	for i, t := range toks {
		if askWords[t.text] || i+1 < len(toks) && askPairKeys[t.text][toks[i+1].text] {
			a.asks++
		}
		if i+1 < len(toks) && toks[i+1].sentence == t.sentence {
			switch t.text {
			case "project", "program", "programme", "codename", "code-named":
				if !programStop[toks[i+1].text] {
					a.programs++
				}
			case "block", "lot", "variant", "increment", "spiral":
				if toks[i+1].isNum || len(toks[i+1].text) <= 2 {
					a.programs++
				}
			}
		}
		if i > 0 && !a.sentStart[i] && properName(text[t.start:t.end]) && !questionStarts[t.text] {
			a.names++
		}
		if pinRef(toks, i) {
			a.pins = append(a.pins, Span{Start: t.start, End: toks[min(i+1, len(toks)-1)].end, Rule: "identifier:pin", Kind: KindID})
		}
	}
	return a
}

// dropContained removes a match that lies inside a longer match of the
// same kind ("jammer" inside "jammer pod", "game" inside "video game"), so
// one phrase counts once.
func dropContained(hits []hit) []hit {
	slices.SortStableFunc(hits, func(x, y hit) int {
		if x.first != y.first {
			return x.first - y.first
		}
		return (y.end - y.first) - (x.end - x.first)
	})
	type reach struct{ first, end int }
	far := map[string]reach{} // per kind: the match reaching furthest so far
	out := hits[:0]
	for _, h := range hits {
		r, ok := far[h.p.kind]
		if ok && (r.end > h.end || r.end == h.end && r.first < h.first) {
			continue
		}
		if !ok || h.end > r.end {
			far[h.p.kind] = reach{h.first, h.end}
		}
		out = append(out, h)
	}
	return out
}

// quantityAt reads a number at toks[i] with its unit, glued ("45kn",
// "0.005°/h", "128-bit") or in the next tokens ("45 kilonewtons", "0.01
// degrees per hour"); the longest unit name wins.
func (e *Engine) quantityAt(toks []token, i int) (quantity, bool) {
	t := toks[i]
	if t.isNum {
		for n := min(e.maxUnitLen, len(toks)-i-1); n >= 1; n-- {
			if toks[i+n].sentence != t.sentence {
				continue
			}
			var sb strings.Builder
			for k := 1; k <= n; k++ {
				if k > 1 {
					sb.WriteByte(' ')
				}
				sb.WriteString(toks[i+k].text)
			}
			if u, ok := e.units[sb.String()]; ok {
				return quantity{unit: u, si: (t.num + u.off) * u.si, tok: i, next: i + n + 1, rng: t.rng,
					span: Span{Start: t.start, End: toks[i+n].end, Rule: "quantity:" + u.canonical, Kind: KindQuantity}}, true
			}
		}
		return quantity{}, false
	}
	num, rest := splitNumber(t.text)
	if num == "" || rest == "" {
		return quantity{}, false
	}
	u, ok := e.units[strings.TrimLeft(rest, "-")]
	if !ok || rest == "s" && !strings.Contains(num, ".") && strings.HasSuffix(num, "0") {
		return quantity{}, false // "1960s", "20s": decades and ages
	}
	v, _, ok := parseNumber(num)
	if !ok {
		return quantity{}, false
	}
	return quantity{unit: u, si: (v + u.off) * u.si, tok: i, next: i + 1,
		span: Span{Start: t.start, End: t.end, Rule: "quantity:" + u.canonical, Kind: KindQuantity}}, true
}

// splitNumber splits "2.4ms" into "2.4" and "ms"; a token that does not
// start with a number gives "".
func splitNumber(s string) (num, rest string) {
	s = strings.TrimPrefix(s, "±")
	i := 0
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		i++
	}
	digits := false
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.' || s[i] == ',') {
		digits = digits || s[i] >= '0' && s[i] <= '9'
		i++
	}
	if !digits {
		return "", ""
	}
	return strings.TrimRight(s[:i], ".,"), s[i:]
}

// isIdentifier reports a part, drawing, document or change number, or an
// ECCN or USML citation, at toks[i].
func (e *Engine) isIdentifier(toks []token, i int) bool {
	s := toks[i].text
	hasDigit, hasSep := false, false
	for k := 0; k < len(s); k++ {
		switch c := s[k]; {
		case c >= '0' && c <= '9':
			hasDigit = true
		case c == '-' || c == '/':
			hasSep = true
		}
	}
	if s == "rev" {
		return i+1 < len(toks) && len(toks[i+1].text) <= 2 && toks[i+1].sentence == toks[i].sentence
	}
	if !hasDigit || toks[i].isNum && !hasSep {
		return false
	}
	for _, re := range e.identifiers {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}

var questionStarts = map[string]bool{"what": true, "whats": true, "what's": true, "how": true, "why": true, "is": true, "are": true,
	"do": true, "does": true, "can": true, "could": true, "should": true, "who": true, "whos": true, "which": true, "am": true,
	"where": true, "when": true, "would": true, "will": true, "did": true}

// isQuestion reports a text that asks rather than tells.
func isQuestion(toks []token, text string) bool {
	if strings.HasSuffix(strings.TrimSpace(text), "?") {
		return true
	}
	// Spoken questions start after fillers: "and how quiet is it", "ok
	// so what's the pitch"; a follow-up without a number ("okay and the
	// instantaneous bandwidth on it") asks too.
	for i, t := range toks {
		if questionFillers[t.text] {
			continue
		}
		if questionStarts[t.text] {
			return true
		}
		if i > 0 && toks[i-1].text == "and" && (t.text == "the" || t.text == "on" || t.text == "for") {
			for _, u := range toks {
				if u.isNum {
					return false
				}
			}
			return len(toks) <= 14
		}
		return false
	}
	return false
}

var questionFillers = map[string]bool{"and": true, "so": true, "um": true, "uh": true, "ok": true, "okay": true, "right": true,
	"yeah": true, "yes": true, "hi": true, "hey": true, "well": true, "also": true, "then": true, "oh": true, "hmm": true,
	"quick": true, "question": true, "but": true, "sorry": true}

// window is the rule score of one run of sentences: R = A × (1 + L + Q)
// (see the package documentation), kept as features of the model.
type window struct {
	a, l, q, r float64
}

// scoreWindow computes A, L, Q and R for the tokens [first, end), with
// the call's carried categories counting as anchors.
func (e *Engine) scoreWindow(a *analysis, first, end int, carry map[string]float64) window {
	var w window
	var cats [8]string
	nc := 0
	var terms [8]string
	nt := 0
	intent, procedure, imperative := 0, 0, false
	hasCat := func(c string) bool {
		for _, x := range cats[:nc] {
			if x == c {
				return true
			}
		}
		return false
	}
	k, _ := slices.BinarySearchFunc(a.hits, first, func(h hit, t int) int { return h.first - t })
	for _, h := range a.hits[k:] {
		if h.first >= end {
			break
		}
		switch h.p.kind {
		case KindAnchor:
			w.a = max(w.a, h.p.weight)
			if nc < len(cats) && !hasCat(h.p.category) {
				cats[nc] = h.p.category
				nc++
			}
			if h.p.weight >= 2 && nt < len(terms) && !slices.Contains(terms[:nt], h.p.text) {
				terms[nt] = h.p.text
				nt++
			}
		case KindIntent:
			intent++
		case KindProcedure:
			procedure++
			if a.leads(h) {
				imperative = true
			}
		}
	}
	carried := false
	for c, wt := range carry {
		if wt > 0 && !hasCat(c) {
			w.a = max(w.a, wt)
			carried = true
			if nc < len(cats) {
				cats[nc] = c
				nc++
			}
		}
	}
	if nt > 1 {
		w.a = min(4, w.a+0.5*float64(nt-1))
	}
	nq := 0
	q := 0.0
	tol, crossed := false, false
	for _, qt := range a.quantities {
		if qt.tok < first || qt.tok >= end {
			continue
		}
		nq++
		q += qt.unit.weight
		tol = tol || qt.tolerance || qt.rng
		for _, th := range e.thresholds {
			if crossed || th.dim != qt.unit.dim || !slices.ContainsFunc(th.categories, hasCat) {
				continue
			}
			crossed = th.above && qt.si > th.value || !th.above && qt.si < th.value && qt.si > 0
		}
	}
	if w.a == 0 && nq > 0 {
		w.a = 1 // a technical quantity with no anchor
	}
	for _, t := range a.tolerances {
		if t >= first && t < end {
			tol = true
		}
	}
	if nq >= 2 {
		q += 0.5
	}
	if tol {
		q++
	}
	if crossed {
		q++
	}
	if carried && nq > 0 {
		q++
	}
	for _, t := range a.identifiers {
		if t >= first && t < end {
			q++
		}
	}
	w.q = min(3, q)
	switch {
	case imperative || procedure >= 3 || procedure >= 2 && intent >= 1:
		w.l = 2
	case procedure == 1 || intent >= 1:
		w.l = 1
	}
	w.r = w.a * (1 + w.l + w.q)
	return w
}

// leads reports a hit that opens its sentence, after at most a polite or
// sequencing word ("then torque …"): a verb there is an imperative.
func (a *analysis) leads(h hit) bool {
	return a.sentStart[h.first] || h.first > 0 && a.sentStart[h.first-1] && politeWord(a.toks[h.first-1].text)
}

func politeWord(s string) bool {
	switch s {
	case "please", "then", "next", "first", "now", "and", "also", "always", "just", "so":
		return true
	}
	return false
}

// windows returns the token ranges to score: for each sentence, the
// longest run of whole sentences ending at it within windowTokens.
func windows(toks []token) [][2]int {
	if len(toks) == 0 {
		return nil
	}
	var starts []int // token index where each sentence starts
	for i, t := range toks {
		if i == 0 || t.sentence != toks[i-1].sentence {
			starts = append(starts, i)
		}
	}
	out := make([][2]int, 0, len(starts))
	for s := range starts {
		end := len(toks)
		if s+1 < len(starts) {
			end = starts[s+1]
		}
		first := starts[s]
		for j := s - 1; j >= 0 && end-starts[j] <= windowTokens; j-- {
			first = starts[j]
		}
		out = append(out, [2]int{first, end})
	}
	return out
}

// codeLines counts the lines of text that read as source code or as
// configuration: an assignment "name = value" or "name: value" with a
// number, a preprocessor or comment line, a statement ending in ";" or a
// brace, a hex literal.
func codeLines(text string) int {
	n := 0
	for line := range strings.SplitSeq(text, "\n") {
		l := strings.TrimSpace(line)
		if len(l) < 3 {
			continue
		}
		switch {
		case strings.HasPrefix(l, "#define") || strings.HasPrefix(l, "//") || strings.HasPrefix(l, "0x"):
			n++
		case strings.HasSuffix(l, ";") || strings.HasSuffix(l, "{") || strings.HasSuffix(l, "}"):
			n++
		case strings.Contains(l, "0x"):
			n++
		default:
			if k := strings.IndexAny(l, "="); k > 0 && k < len(l)-1 && !strings.ContainsRune(l[:k], ' ') && strings.ContainsAny(l[k+1:], "0123456789") {
				n++
			}
		}
	}
	return n
}

// askWords and askPairs are question words and phrases that mark a text
// as asking, wherever they stand ("hi, whats the gyro bias").
var (
	askWords = map[string]bool{"whats": true, "what's": true, "hows": true, "how's": true, "which": true, "whether": true, "wondering": true}
	askPairs = map[string]bool{"what is": true, "what are": true, "what does": true, "what do": true, "how many": true, "how much": true,
		"how do": true, "how does": true, "how far": true, "how big": true, "how often": true, "how long": true, "is it": true,
		"can you": true, "could you": true, "do you": true, "does it": true, "is there": true, "are there": true, "tell me": true,
		"what kind": true, "what about": true, "how about": true, "what type": true, "any idea": true, "do they": true,
		"is that": true, "are they": true, "can it": true, "will it": true, "better than": true, "wondering if": true,
		"what sort": true, "how fast": true, "how hot": true, "how quiet": true, "how heavy": true, "how thick": true}
	// askPairKeys holds askPairs by first and second word, looked up
	// without building the phrase.
	askPairKeys = pairKeys(askPairs)
)

// pairKeys splits each two-word phrase of set into its words.
func pairKeys(set map[string]bool) map[string]map[string]bool {
	out := make(map[string]map[string]bool)
	for k := range set {
		a, b, _ := strings.Cut(k, " ")
		if out[a] == nil {
			out[a] = make(map[string]bool)
		}
		out[a][b] = true
	}
	return out
}

// pinRef reports a pin or connector reference at toks[i]: "pin 7", "pins
// c", "j2", "p1-4", "tb3".
func pinRef(toks []token, i int) bool {
	s := toks[i].text
	switch s {
	case "pin", "pins", "terminal", "contact", "contacts", "socket":
		if i+1 < len(toks) && toks[i+1].sentence == toks[i].sentence {
			n := toks[i+1].text
			return toks[i+1].isNum || len(n) == 1 && n[0] >= 'a' && n[0] <= 'z'
		}
		return false
	}
	if len(s) < 2 || len(s) > 8 {
		return false
	}
	k := 0
	for k < len(s) && s[k] >= 'a' && s[k] <= 'z' {
		k++
	}
	if k == 0 || k > 2 || k == len(s) || s[k] < '0' || s[k] > '9' {
		return false
	}
	switch s[:k] {
	case "j", "p", "tb", "jp", "xp", "xj":
		return true
	}
	return false
}

// programStop are words after "program" or "project" that do not name one.
var programStop = map[string]bool{"manager": true, "managers": true, "office": true, "review": true, "reviews": true, "schedule": true,
	"budget": true, "budgets": true, "plan": true, "status": true, "team": true, "teams": true, "meeting": true, "lead": true,
	"director": true, "management": true, "the": true, "a": true, "an": true, "for": true, "and": true, "is": true, "was": true,
	"to": true, "of": true, "in": true, "on": true, "that": true, "this": true, "we": true, "i": true, "it": true, "our": true,
	"update": true, "updates": true, "kickoff": true, "portal": true, "file": true, "files": true, "folder": true, "code": true,
	"coordinator": true, "staff": true, "level": true, "wide": true, "funding": true, "cost": true, "costs": true}

// properName reports a word written as a name: a capital letter, then
// lower-case letters or digits (not an all-capitals acronym).
func properName(raw string) bool {
	if len(raw) < 3 || raw[0] < 'A' || raw[0] > 'Z' {
		return false
	}
	lower := 0
	for i := 1; i < len(raw); i++ {
		switch c := raw[i]; {
		case c >= 'a' && c <= 'z':
			lower++
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-':
		default:
			return false
		}
	}
	return lower > 0
}

// encodedRuns counts runs of 16 or more characters that read as an
// encoding: hexadecimal digits (with an optional 0x), or the base64
// alphabet with both cases and a digit or padding. Text that hides behind
// an encoding is a signal of its own, decoded or not.
func encodedRuns(text string) int {
	// Fast path: no run of 16 bytes without a space or punctuation.
	run, long := 0, false
	for i := 0; i < len(text) && !long; i++ {
		switch c := text[i]; {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '+', c == '/', c == '=', c == '-', c == '_':
			run++
			long = run >= 16
		default:
			run = 0
		}
	}
	if !long {
		return 0
	}
	n := 0
	for i := 0; i < len(text); {
		j := i
		hex, b64, upper, lower, digit, pad := true, true, false, false, false, false
		for j < len(text) {
			c := text[j]
			isHex := c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
			isB64 := c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '+' || c == '/' || c == '-' || c == '_' || c == '='
			if !isHex && !isB64 {
				break
			}
			hex = hex && isHex
			b64 = b64 && isB64
			upper = upper || c >= 'A' && c <= 'Z'
			lower = lower || c >= 'a' && c <= 'z'
			digit = digit || c >= '0' && c <= '9'
			pad = pad || c == '='
			j++
		}
		run := text[i:j]
		run = strings.TrimPrefix(strings.TrimPrefix(run, "0x"), "0X")
		switch {
		case len(run) >= 16 && hex && digit:
			n++
		case len(run) >= 16 && b64 && upper && lower && (digit || pad):
			n++
		}
		if j == i {
			j++
		}
		i = j
	}
	return n
}
