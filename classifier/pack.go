package classifier

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	ahocorasick "github.com/BobuSumisu/aho-corasick"
	"go.yaml.in/yaml/v3"
)

// packFile is the YAML rule pack. See packs/default.yaml for the format.
type packFile struct {
	Version     string                      `yaml:"version"`
	Anchors     map[string]map[int][]string `yaml:"anchors"`
	Intent      []string                    `yaml:"intent"`
	Procedure   []string                    `yaml:"procedure"`
	Units       []unitDef                   `yaml:"units"`
	CCL         []cclDef                    `yaml:"ccl"`
	Identifiers []string                    `yaml:"identifiers"`
	Markings    struct {
		Strong   []string `yaml:"strong"`
		Weak     []string `yaml:"weak"`
		Negative []string `yaml:"negative"`
	} `yaml:"markings"`
	// Technical is general engineering vocabulary (no category): the
	// language of specifications, tuning and test, which technical data
	// and civilian engineering share.
	Technical []string `yaml:"technical"`
	// Cues are phrase lists that frame a text without naming an article:
	// sensitivity (the speaker knows it should not travel: "keep it off
	// the partner slides"), military (defense context: "the program
	// office", "the fleet"), evasion (a release dressed as a non-answer:
	// "here's the gist", "not typing the real figure").
	Cues    map[string][]string `yaml:"cues"`
	Dampers map[string][]string `yaml:"dampers"`
	// DamperWeights is what one match of a damper kind subtracts
	// (default 1).
	DamperWeights map[string]float64 `yaml:"damper_weights"`
}

// lexiconFile is the lexicon part of a bundle: anchors, thresholds and
// markings derived from the control lists (see classifier/lexicon), merged
// with the rule pack's.
type lexiconFile struct {
	Version  string                      `yaml:"version"`
	Anchors  map[string]map[int][]string `yaml:"anchors"`
	CCL      []cclDef                    `yaml:"ccl"`
	Markings struct {
		Strong   []string `yaml:"strong"`
		Weak     []string `yaml:"weak"`
		Negative []string `yaml:"negative"`
	} `yaml:"markings"`
}

// unitDef is one canonical unit, its SI value and the ways it is written.
type unitDef struct {
	Unit   string   `yaml:"unit"`   // canonical name, for rule ids
	Dim    string   `yaml:"dim"`    // dimension, e.g. force, angular_rate
	SI     float64  `yaml:"si"`     // value of one unit in the dimension's SI unit
	Offset float64  `yaml:"offset"` // added before scaling (°C, °F)
	Weight float64  `yaml:"weight"` // how strongly it marks an engineering parameter, (0, 1]
	Names  []string `yaml:"names"`
}

// cclDef is a Commerce Control List (or USML) parameter threshold.
type cclDef struct {
	ID         string   `yaml:"id"`
	Categories []string `yaml:"categories"`
	Dim        string   `yaml:"dim"`
	Above      string   `yaml:"above"` // crossed by values greater than this quantity
	Below      string   `yaml:"below"` // crossed by values smaller than this quantity
}

// Kinds of matched spans.
const (
	KindAnchor    = "anchor"
	KindIntent    = "intent"
	KindProcedure = "procedure"
	KindQuantity  = "quantity"
	KindID        = "identifier"
	KindMarking   = "marking"
	KindWeak      = "weak-marking"
	KindNegative  = "negative-marking"
	KindDamper    = "damper"
	KindTechnical = "technical"
	KindCue       = "cue"
)

// phrase is one lexicon entry.
type phrase struct {
	kind     string
	category string
	weight   float64
	text     string
	rule     string
	feature  string // the model feature its category names: anchor.cat:…, damper:…
}

// unit is a compiled unit synonym.
type unit struct {
	name, dim      string
	feature, gram  string // qty.dim:<dim> and <dim>
	si, off        float64
	weight         float64
	canonical      string
	wordsInSynonym int
}

// threshold is a compiled CCL threshold.
type threshold struct {
	id         string
	categories []string
	dim        string
	value      float64 // SI
	above      bool
	display    string
}

// Engine is a compiled rule pack. It is immutable and safe for concurrent
// use.
type Engine struct {
	version string
	// model is the learned scorer; nil only for an engine loaded for
	// training.
	model *Model
	// trace makes decisions carry a readable trace (WithTrace).
	trace bool
	// phonetic matches multi-word anchors by sound (phonetic.go).
	phonetic *phoneticIndex
	// patterns are the distinct normalised terms in the automaton; each
	// names the phrases (kind, category, weight) it stands for.
	patterns    [][]int
	phrases     []phrase
	trie        *ahocorasick.Trie
	units       map[string]unit
	maxUnitLen  int
	thresholds  []threshold
	procedure   map[string]bool // single-word procedure verbs, for imperatives
	identifiers []*regexp.Regexp
}

var romanCats = map[string]bool{}

func init() {
	for _, r := range []string{"I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII", "XIII", "XIV", "XV", "XVI", "XVII", "XVIII", "XIX", "XX", "XXI"} {
		romanCats["USML-"+r] = true
	}
}

var eccnRe = regexp.MustCompile(`^EAR-[0-9][A-E][0-9]{3}$`)

// validCategory reports a USML category ("USML-I" … "USML-XXI") or an
// ECCN ("EAR-5A002").
func validCategory(c string) bool { return romanCats[c] || eccnRe.MatchString(c) }

// decodeStrict decodes YAML into v, refusing unknown fields, and returns
// the document's node tree for the line numbers of later errors.
func decodeStrict(name string, data []byte, v any) (*yaml.Node, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrPack, name, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrPack, name, err)
	}
	return &root, nil
}

// compilePack compiles a rule pack and, when lexData is not empty, the
// lexicon merged into it.
func compilePack(name string, data []byte, lexName string, lexData []byte) (*Engine, error) {
	var pf packFile
	root, err := decodeStrict(name, data, &pf)
	if err != nil {
		return nil, err
	}
	c := compiler{name: name, root: root, e: &Engine{
		version: strings.TrimSpace(pf.Version), units: map[string]unit{}, procedure: map[string]bool{},
	}, seen: map[string]int{}, dims: map[string]bool{}}
	c.compile(&pf)
	if len(lexData) > 0 && len(c.errs) == 0 {
		var lf lexiconFile
		lroot, err := decodeStrict(lexName, lexData, &lf)
		if err != nil {
			return nil, err
		}
		c.name, c.root = lexName, lroot
		if strings.TrimSpace(lf.Version) == "" {
			c.bad("version", "required", "version")
		}
		c.compileAnchors(lf.Anchors)
		c.compileMarkings(lf.Markings.Strong, lf.Markings.Weak, lf.Markings.Negative)
		c.compileCCL(lf.CCL)
	}
	if len(c.errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrPack, errors.Join(c.errs...))
	}
	c.splitCompounds()
	c.buildPhonetic()
	b := ahocorasick.NewTrieBuilder()
	for _, p := range c.terms {
		b.AddString(" " + p)
	}
	c.e.trie = b.Build()
	return c.e, nil
}

type compiler struct {
	name  string
	root  *yaml.Node
	e     *Engine
	errs  []error
	seen  map[string]int // normalised term → pattern index
	terms []string
	dims  map[string]bool
}

func (c *compiler) bad(field, msg string, path ...string) {
	c.errs = append(c.errs, &PackError{File: c.name, Line: findLine(c.root, path...), Field: field, Msg: msg})
}

func (c *compiler) compile(pf *packFile) {
	e := c.e
	if e.version == "" {
		c.bad("version", "required", "version")
	}
	if len(pf.Anchors) == 0 {
		c.bad("anchors", "at least one category is required", "anchors")
	}
	c.compileAnchors(pf.Anchors)
	c.compileRest(pf)
}

func (c *compiler) compileAnchors(anchors map[string]map[int][]string) {
	for _, cat := range sortedKeys(anchors) {
		if !validCategory(cat) {
			c.bad("anchors."+cat, "category must be USML-I … USML-XXI or EAR-<ECCN> such as EAR-5A002", "anchors", cat)
		}
		for _, w := range sortedKeys(anchors[cat]) {
			field := fmt.Sprintf("anchors.%s.%d", cat, w)
			if w < 1 || w > 3 {
				c.bad(field, "weight must be 1, 2 or 3", "anchors", cat, strconv.Itoa(w))
			}
			for i, term := range anchors[cat][w] {
				c.add(phrase{kind: KindAnchor, category: cat, weight: float64(w)}, term, fmt.Sprintf("%s[%d]", field, i), "anchors", cat, strconv.Itoa(w), strconv.Itoa(i))
			}
		}
	}
}

func (c *compiler) compileMarkings(strong, weak, negative []string) {
	for i, s := range strong {
		c.add(phrase{kind: KindMarking, category: "marking", weight: 1}, s, fmt.Sprintf("markings.strong[%d]", i), "markings", "strong", strconv.Itoa(i))
	}
	for i, s := range weak {
		c.add(phrase{kind: KindWeak, weight: 1}, s, fmt.Sprintf("markings.weak[%d]", i), "markings", "weak", strconv.Itoa(i))
	}
	for i, s := range negative {
		c.add(phrase{kind: KindNegative, weight: 1}, s, fmt.Sprintf("markings.negative[%d]", i), "markings", "negative", strconv.Itoa(i))
	}
}

func (c *compiler) compileRest(pf *packFile) {
	e := c.e
	for i, s := range pf.Intent {
		c.add(phrase{kind: KindIntent, weight: 1}, s, fmt.Sprintf("intent[%d]", i), "intent", strconv.Itoa(i))
	}
	for i, s := range pf.Procedure {
		if n := c.add(phrase{kind: KindProcedure, weight: 1}, s, fmt.Sprintf("procedure[%d]", i), "procedure", strconv.Itoa(i)); n != "" {
			e.procedure[n] = true
		}
	}
	c.compileMarkings(pf.Markings.Strong, pf.Markings.Weak, pf.Markings.Negative)
	for i, s := range pf.Technical {
		c.add(phrase{kind: KindTechnical, weight: 1}, s, fmt.Sprintf("technical[%d]", i), "technical", strconv.Itoa(i))
	}
	for _, kind := range sortedKeys(pf.Cues) {
		switch kind {
		case "sensitivity", "military", "evasion":
		default:
			c.bad("cues."+kind, "want sensitivity, military or evasion", "cues", kind)
			continue
		}
		for i, s := range pf.Cues[kind] {
			c.add(phrase{kind: KindCue, category: kind, weight: 1}, s, fmt.Sprintf("cues.%s[%d]", kind, i), "cues", kind, strconv.Itoa(i))
		}
	}
	for _, kind := range sortedKeys(pf.DamperWeights) {
		if _, ok := pf.Dampers[kind]; !ok {
			c.bad("damper_weights."+kind, "no damper list of this kind", "damper_weights", kind)
		}
		if w := pf.DamperWeights[kind]; !(w > 0 && w <= 3) {
			c.bad("damper_weights."+kind, "must be in (0, 3]", "damper_weights", kind)
		}
	}
	for _, kind := range sortedKeys(pf.Dampers) {
		dw := 1.0
		if w, ok := pf.DamperWeights[kind]; ok {
			dw = w
		}
		for i, s := range pf.Dampers[kind] {
			c.add(phrase{kind: KindDamper, category: kind, weight: dw}, s, fmt.Sprintf("dampers.%s[%d]", kind, i), "dampers", kind, strconv.Itoa(i))
		}
	}
	for i, u := range pf.Units {
		field := fmt.Sprintf("units[%d]", i)
		path := []string{"units", strconv.Itoa(i)}
		switch {
		case strings.TrimSpace(u.Unit) == "":
			c.bad(field+".unit", "required", path...)
		case u.Dim == "":
			c.bad(field+".dim", "required", path...)
		case !(u.SI > 0) || math.IsInf(u.SI, 0):
			c.bad(field+".si", "must be a positive number", path...)
		case !(u.Weight > 0 && u.Weight <= 1):
			c.bad(field+".weight", "must be in (0, 1]", path...)
		case len(u.Names) == 0:
			c.bad(field+".names", "at least one name is required", path...)
		}
		c.dims[u.Dim] = true
		for k, nm := range u.Names {
			n := Normalize(nm)
			if n == "" || strings.ContainsAny(n, "0123456789") && !strings.ContainsAny(n, "abcdefghijklmnopqrstuvwxyz°%µ") {
				c.bad(fmt.Sprintf("%s.names[%d]", field, k), fmt.Sprintf("%q is not a unit name", nm), append(path, "names", strconv.Itoa(k))...)
				continue
			}
			if prev, dup := e.units[n]; dup && prev.dim != u.Dim {
				c.bad(fmt.Sprintf("%s.names[%d]", field, k), fmt.Sprintf("%q is already a unit of %s", nm, prev.dim), append(path, "names", strconv.Itoa(k))...)
				continue
			}
			words := strings.Count(n, " ") + 1
			e.units[n] = unit{name: n, dim: u.Dim, feature: "qty.dim:" + u.Dim, gram: "<" + u.Dim + ">", si: u.SI, off: u.Offset, weight: u.Weight, canonical: u.Unit, wordsInSynonym: words}
			e.maxUnitLen = max(e.maxUnitLen, words)
		}
	}
	c.compileCCL(pf.CCL)
	for i, p := range pf.Identifiers {
		re, err := regexp.Compile(p)
		if err != nil {
			c.bad(fmt.Sprintf("identifiers[%d]", i), err.Error(), "identifiers", strconv.Itoa(i))
			continue
		}
		e.identifiers = append(e.identifiers, re)
	}
}

func (c *compiler) compileCCL(defs []cclDef) {
	e := c.e
	for i, d := range defs {
		field := fmt.Sprintf("ccl[%d]", i)
		path := []string{"ccl", strconv.Itoa(i)}
		if d.ID == "" {
			c.bad(field+".id", "required", path...)
		}
		if len(d.Categories) == 0 {
			c.bad(field+".categories", "at least one category is required", path...)
		}
		for _, cat := range d.Categories {
			if !validCategory(cat) {
				c.bad(field+".categories", fmt.Sprintf("%q is not a USML category or ECCN", cat), append(path, "categories")...)
			}
		}
		if !c.dims[d.Dim] {
			c.bad(field+".dim", fmt.Sprintf("no unit has dimension %q", d.Dim), append(path, "dim")...)
			continue
		}
		q, above := d.Above, true
		if (d.Above == "") == (d.Below == "") {
			c.bad(field, "exactly one of above and below is required", path...)
			continue
		}
		if q == "" {
			q, above = d.Below, false
		}
		v, dim, ok := e.parseQuantity(q)
		if !ok || dim != d.Dim {
			c.bad(field, fmt.Sprintf("%q is not a quantity of %s", q, d.Dim), path...)
			continue
		}
		e.thresholds = append(e.thresholds, threshold{id: "ccl." + strings.ToLower(d.ID), categories: d.Categories, dim: d.Dim, value: v, above: above, display: q})
	}
}

// add normalises a term and files it under its pattern; it returns the
// normalised term, or "" when the term is empty.
func (c *compiler) add(p phrase, term, field string, path ...string) string {
	n := Normalize(term)
	if n == "" {
		c.bad(field, fmt.Sprintf("%q is empty after normalisation", term), path...)
		return ""
	}
	p.text = n
	p.rule = p.kind + ":" + strings.ReplaceAll(n, " ", "_")
	switch {
	case p.kind == KindAnchor:
		p.rule = strings.ToLower(p.category) + "." + p.rule
		p.feature = "anchor.cat:" + p.category
	case p.kind == KindDamper:
		p.rule = "damper." + p.category + ":" + strings.ReplaceAll(n, " ", "_")
		p.feature = "damper:" + p.category
	case p.kind == KindCue:
		p.rule = "cue." + p.category + ":" + strings.ReplaceAll(n, " ", "_")
		p.feature = "cue:" + p.category
	}
	idx, ok := c.seen[n]
	if !ok {
		idx = len(c.terms)
		c.seen[n] = idx
		c.terms = append(c.terms, n)
		c.e.patterns = append(c.e.patterns, nil)
	}
	for _, pi := range c.e.patterns[idx] {
		if q := c.e.phrases[pi]; q.kind == p.kind && q.category == p.category {
			return n // a duplicate
		}
	}
	c.e.patterns[idx] = append(c.e.patterns[idx], len(c.e.phrases))
	c.e.phrases = append(c.e.phrases, p)
	return n
}

// parseQuantity reads "0.5 °/h" with the engine's units; it returns the SI
// value and the dimension.
func (e *Engine) parseQuantity(s string) (float64, string, bool) {
	toks := tokenize(s)
	if len(toks) == 0 || !toks[0].isNum {
		return 0, "", false
	}
	if q, ok := e.quantityAt(toks, 0); ok && q.next == len(toks) {
		return q.si, q.unit.dim, true
	}
	return 0, "", false
}

func sortedKeys[K int | string, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// findLine returns the line of the node at path (mapping keys, or
// sequence indexes) in a YAML document; the deepest node found when the
// path runs out; 0 for an empty document.
func findLine(n *yaml.Node, path ...string) int {
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return 0
		}
		n = n.Content[0]
	}
	line := n.Line
	for _, key := range path {
		switch n.Kind {
		case yaml.MappingNode:
			found := false
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == key {
					line = n.Content[i].Line
					n = n.Content[i+1]
					found = true
					break
				}
			}
			if !found {
				return line
			}
		case yaml.SequenceNode:
			i, err := strconv.Atoi(key)
			if err != nil || i < 0 || i >= len(n.Content) {
				return line
			}
			n = n.Content[i]
			line = n.Line
		default:
			return line
		}
	}
	return line
}

// Version is the pack's version string.
func (e *Engine) Version() string { return e.version }

// splitCompounds registers the spoken, split form of one-word anchors
// that join two words ("photocathode" → "photo cathode", "microchannel
// plate" → "micro channel plate"): ASR writes them apart. Both halves
// be words of the lexicon or common English (or one a word and the other
// of at least five letters), of at least three letters each.
func (c *compiler) splitCompounds() {
	vocab := map[string]bool{}
	for _, t := range c.terms {
		for w := range strings.FieldsSeq(t) {
			vocab[w] = true
		}
	}
	known := func(w string) bool { return len(w) >= 3 && (vocab[w] || knownWord(w)) }
	n := len(c.terms)
	for idx := 0; idx < n; idx++ {
		t := c.terms[idx]
		words := strings.Fields(t)
		for wi, w := range words {
			if len(w) < 7 || strings.ContainsAny(w, "0123456789-/.'") {
				continue
			}
			for k := 3; k <= len(w)-3; k++ {
				l, r := w[:k], w[k:]
				if !(known(l) && known(r) || known(l) && len(r) >= 5 || known(r) && len(l) >= 5) {
					continue
				}
				split := slices.Clone(words)
				split[wi] = w[:k] + " " + w[k:]
				variant := strings.Join(split, " ")
				if _, dup := c.seen[variant]; dup {
					break
				}
				for _, pi := range c.e.patterns[idx] {
					p := c.e.phrases[pi]
					if p.kind != KindAnchor {
						continue
					}
					c.addNormalised(p, variant)
				}
				break
			}
		}
	}
}

// addNormalised files an already normalised variant of phrase p.
func (c *compiler) addNormalised(p phrase, n string) {
	idx, ok := c.seen[n]
	if !ok {
		idx = len(c.terms)
		c.seen[n] = idx
		c.terms = append(c.terms, n)
		c.e.patterns = append(c.e.patterns, nil)
	}
	c.e.patterns[idx] = append(c.e.patterns[idx], len(c.e.phrases))
	c.e.phrases = append(c.e.phrases, p)
}
