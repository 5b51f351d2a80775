package classifier

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"

	ahocorasick "github.com/BobuSumisu/aho-corasick"
	"go.yaml.in/yaml/v3"
)

//go:embed packs/default.yaml
var defaultPack []byte

// packFile is the YAML rule pack.
type packFile struct {
	Version    string `yaml:"version"`
	Thresholds struct {
		Redact      float64 `yaml:"redact"`
		Block       float64 `yaml:"block"`
		Accumulator float64 `yaml:"accumulator"`
	} `yaml:"thresholds"`
	Anchors     map[string]map[int][]string `yaml:"anchors"`
	Intent      []string                    `yaml:"intent"`
	Procedure   []string                    `yaml:"procedure"`
	Units       []unitGroup                 `yaml:"units"`
	Identifiers []string                    `yaml:"identifiers"`
	Markings    struct {
		Strong   []string `yaml:"strong"`
		Weak     []string `yaml:"weak"`
		Negative []string `yaml:"negative"`
	} `yaml:"markings"`
	Dampers []string `yaml:"dampers"`
}

type unitGroup struct {
	Weight float64  `yaml:"weight"`
	Names  []string `yaml:"names"`
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
)

// phrase is one lexicon entry compiled into the automaton.
type phrase struct {
	kind     string
	category string
	weight   float64
	text     string
	rule     string
}

// Engine is a compiled rule pack. It is safe for concurrent use.
type Engine struct {
	version     string
	redact      float64
	block       float64
	accumulate  float64
	phrases     []phrase
	trie        *ahocorasick.Trie
	units       map[string]float64
	maxUnitLen  int
	procedure   map[string]bool // single-word procedure verbs, for imperatives
	identifiers []*regexp.Regexp
}

// PackError is a rule pack that failed validation: it names the file, the
// line (when known) and the field.
type PackError struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (e *PackError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Field, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", e.File, e.Field, e.Msg)
}

// ErrPack is wrapped by every pack loading error.
var ErrPack = errors.New("invalid rule pack")

// Default returns the rule pack embedded in the binary.
func Default() (*Engine, error) { return Parse("default.yaml", defaultPack) }

// Load reads and compiles a rule pack file.
func Load(path string) (*Engine, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPack, err)
	}
	return Parse(path, b)
}

// Parse compiles a rule pack; name is used in error messages.
func Parse(name string, data []byte) (*Engine, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrPack, name, err)
	}
	var pf packFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&pf); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrPack, name, err)
	}
	line := func(path ...string) int { return findLine(&root, path...) }
	var errs []error
	bad := func(field, msg string, path ...string) {
		errs = append(errs, &PackError{File: name, Line: line(path...), Field: field, Msg: msg})
	}
	if strings.TrimSpace(pf.Version) == "" {
		bad("version", "required", "version")
	}
	t := pf.Thresholds
	if t.Redact <= 0 || t.Block <= 0 || t.Redact > t.Block {
		bad("thresholds", fmt.Sprintf("need 0 < redact (%g) ≤ block (%g)", t.Redact, t.Block), "thresholds")
	}
	if t.Accumulator <= 0 {
		bad("thresholds.accumulator", "must be > 0", "thresholds", "accumulator")
	}
	if len(pf.Anchors) == 0 {
		bad("anchors", "at least one category is required", "anchors")
	}
	e := &Engine{version: pf.Version, redact: t.Redact, block: t.Block, accumulate: t.Accumulator, units: map[string]float64{}}
	seen := map[string]string{}
	add := func(kind, cat string, w float64, text, field string, path ...string) {
		n := strings.Join(strings.Fields(strings.ToLower(text)), " ")
		if n == "" {
			bad(field, "empty term", path...)
			return
		}
		key := kind + "\x00" + n
		if prev, dup := seen[key]; dup && prev != cat {
			// The same anchor in two categories: keep the first, which is
			// explainable; flag nothing (overlapping vocabularies are normal).
			return
		}
		seen[key] = cat
		rule := kind + ":" + strings.ReplaceAll(n, " ", "_")
		if cat != "" {
			rule = strings.ToLower(cat) + "." + rule
		}
		e.phrases = append(e.phrases, phrase{kind: kind, category: cat, weight: w, text: n, rule: rule})
	}
	cats := make([]string, 0, len(pf.Anchors))
	for c := range pf.Anchors {
		cats = append(cats, c)
	}
	sort.Strings(cats)
	for _, c := range cats {
		if !strings.HasPrefix(c, "USML-") && !strings.HasPrefix(c, "EAR-") {
			bad("anchors."+c, "category must be USML-<roman> or EAR-<ECCN>", "anchors", c)
		}
		for w, terms := range pf.Anchors[c] {
			if w < 1 || w > 3 {
				bad(fmt.Sprintf("anchors.%s.%d", c, w), "weight must be 1, 2 or 3", "anchors", c)
			}
			for _, term := range terms {
				add(KindAnchor, c, float64(w), term, "anchors."+c, "anchors", c)
			}
		}
	}
	for _, s := range pf.Intent {
		add(KindIntent, "", 1, s, "intent", "intent")
	}
	e.procedure = map[string]bool{}
	for _, s := range pf.Procedure {
		add(KindProcedure, "", 1, s, "procedure", "procedure")
		e.procedure[strings.ToLower(strings.TrimSpace(s))] = true
	}
	for _, s := range pf.Markings.Strong {
		add(KindMarking, "marking", 1, s, "markings.strong", "markings", "strong")
	}
	for _, s := range pf.Markings.Weak {
		add(KindWeak, "marking", 1, s, "markings.weak", "markings", "weak")
	}
	for _, s := range pf.Markings.Negative {
		add(KindNegative, "", 1, s, "markings.negative", "markings", "negative")
	}
	for _, s := range pf.Dampers {
		add(KindDamper, "", 1, s, "dampers", "dampers")
	}
	for i, g := range pf.Units {
		if g.Weight <= 0 || g.Weight > 1 {
			bad(fmt.Sprintf("units[%d].weight", i), "must be in (0, 1]", "units")
		}
		for _, u := range g.Names {
			u = strings.ToLower(strings.TrimSpace(u))
			if u == "" {
				bad(fmt.Sprintf("units[%d].names", i), "empty unit", "units")
				continue
			}
			e.units[u] = g.Weight
			e.maxUnitLen = max(e.maxUnitLen, len(strings.Fields(u)))
		}
	}
	for i, p := range pf.Identifiers {
		re, err := regexp.Compile(p)
		if err != nil {
			bad(fmt.Sprintf("identifiers[%d]", i), err.Error(), "identifiers")
			continue
		}
		e.identifiers = append(e.identifiers, re)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrPack, errors.Join(errs...))
	}
	b := ahocorasick.NewTrieBuilder()
	for _, p := range e.phrases {
		b.AddString(" " + p.text)
	}
	e.trie = b.Build()
	return e, nil
}

// findLine returns the line of the node at path in a YAML document, or 0.
func findLine(n *yaml.Node, path ...string) int {
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, key := range path {
		if n.Kind != yaml.MappingNode {
			return line
		}
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
	}
	return line
}

// Version is the pack's version string.
func (e *Engine) Version() string { return e.version }
