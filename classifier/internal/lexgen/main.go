// Command lexgen builds the classifier's control-list lexicon,
// classifier/packs/lexicon.yaml, from the regulation excerpts in
// classifier/lexicon/sources/*.txt and the curated layer in
// classifier/lexicon/curation.yaml:
//
//	go run ./classifier/internal/lexgen -out classifier/packs/lexicon.yaml
//
// It splits every enumerated paragraph of the sources into candidate noun
// phrases (at punctuation, conjunctions, prepositions, verbs and
// boilerplate such as "specially designed" or "parts, components,
// accessories, and attachments"), drops generic words, normalises and
// de-duplicates the phrases, assigns tiers, adds the curated terms,
// variants and parameter thresholds, and writes the lexicon in a stable
// order: the same inputs always give the same bytes.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

func main() {
	sources := flag.String("sources", "classifier/lexicon/sources", "directory of regulation excerpts (*.txt)")
	curation := flag.String("curation", "classifier/lexicon/curation.yaml", "curated layer")
	units := flag.String("units", "classifier/packs/default.yaml", "rule pack whose units the thresholds must use")
	out := flag.String("out", "classifier/packs/lexicon.yaml", "output lexicon (- for standard output)")
	flag.Parse()
	lex, err := Generate(*sources, *curation, *units)
	if err != nil {
		log.Fatal(err)
	}
	b := lex.Render()
	if *out == "-" {
		os.Stdout.Write(b)
	} else if err := os.WriteFile(*out, b, 0o644); err != nil {
		log.Fatal(err)
	}
	lex.Summary(os.Stderr)
}

// Curation is classifier/lexicon/curation.yaml.
type Curation struct {
	Version string `yaml:"version"`
	// Stop lists generic words and phrases that are never emitted as a
	// term on their own (they may still occur inside a longer phrase).
	Stop []string `yaml:"stop"`
	// Boilerplate phrases are cut out of the paragraphs before splitting.
	Boilerplate []string `yaml:"boilerplate"`
	// BreakWords end a candidate phrase (conjunctions, prepositions,
	// verbs, qualifiers).
	BreakWords []string `yaml:"break_words"`
	// LeadStrip words are dropped from the start of a phrase, TrailStrip
	// words (generic heads such as "systems") from its end.
	LeadStrip  []string `yaml:"lead_strip"`
	TrailStrip []string `yaml:"trail_strip"`
	// Keep lists words that end in "s" but are singular (lens, gas).
	Keep []string `yaml:"keep_singular"`
	// Common lists single words of everyday English that the extraction
	// must not emit alone (curated terms may still use them).
	Common []string `yaml:"common"`
	// Variants maps a term to the abbreviations and spellings used in
	// speech; each variant joins every category the term is in, at the
	// same tier.
	Variants   map[string][]string      `yaml:"variants"`
	Categories map[string]*CategoryCure `yaml:"categories"`
	Thresholds []Threshold              `yaml:"thresholds"`
	Markings   struct {
		Strong   []string `yaml:"strong"`
		Weak     []string `yaml:"weak"`
		Negative []string `yaml:"negative"`
	} `yaml:"markings"`
}

// CategoryCure is the curation of one category.
type CategoryCure struct {
	// Terms maps a citation paragraph (e.g. "(h)(1)" or "a.2.a") to the
	// terms it supports, by tier.
	Terms map[string]map[int][]string `yaml:"terms"`
	// Exclude drops extracted phrases from this category.
	Exclude []string `yaml:"exclude"`
	// Tier overrides the tier of an extracted or curated term.
	Tier map[string]int `yaml:"tier"`
}

// Threshold is a CCL or USML parameter threshold, as the pack's ccl
// entries spell it.
type Threshold struct {
	ID         string   `yaml:"id"`
	Categories []string `yaml:"categories"`
	Dim        string   `yaml:"dim"`
	Above      string   `yaml:"above,omitempty"`
	Below      string   `yaml:"below,omitempty"`
	Cite       string   `yaml:"cite"`
}

// Paragraph is one enumerated paragraph of a source.
type Paragraph struct {
	File, Category, Cite, Text string
}

// Lexicon is the generated pack fragment.
type Lexicon struct {
	Version    string
	Anchors    map[string]map[int][]string // category → tier → sorted terms
	Thresholds []Threshold
	Strong     []string
	Weak       []string
	Negative   []string
	Extracted  map[string]int // category → number of terms taken from the sources
	Skipped    []string       // curated terms dropped because they are in the stop list
}

var (
	romanCats = func() map[string]bool {
		m := map[string]bool{}
		for _, r := range []string{"I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII", "XIII", "XIV", "XV", "XVI", "XVII", "XVIII", "XIX", "XX", "XXI"} {
			m["USML-"+r] = true
		}
		return m
	}()
	eccnRe = regexp.MustCompile(`^EAR-[0-9][A-E][0-9]{3}$`)
)

// ValidCategory reports "USML-I" … "USML-XXI" or "EAR-<ECCN>".
func ValidCategory(c string) bool { return romanCats[c] || eccnRe.MatchString(c) }

// ReadSources reads every *.txt file in dir. A line "@category CAT" sets
// the category; a line that starts with a paragraph designator ("(a)",
// "(h)(1)", "a.", "a.1.b.") starts a paragraph; other lines continue it;
// lines starting with "#" are the file's header. Paragraphs that are notes
// ("Note", "N.B.", "Technical Note") are skipped: they mostly say what is
// not controlled.
func ReadSources(dir string) ([]Paragraph, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no sources in %s", dir)
	}
	sort.Strings(files)
	var out []Paragraph
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		ps, err := parseSource(filepath.Base(f), b)
		if err != nil {
			return nil, err
		}
		out = append(out, ps...)
	}
	return out, nil
}

var paraRe = regexp.MustCompile(`^((?:\([a-z0-9]{1,5}\))+|[a-z]{1,2}\.(?:[0-9a-z]{1,3}\.)*)\s+(.*)$`)

func parseSource(name string, b []byte) ([]Paragraph, error) {
	var out []Paragraph
	cat := ""
	var cur *Paragraph
	flush := func() {
		if cur != nil && cur.Text != "" {
			out = append(out, *cur)
		}
		cur = nil
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
			flush()
		case strings.HasPrefix(line, "@category "):
			flush()
			cat = strings.TrimSpace(strings.TrimPrefix(line, "@category "))
			if !ValidCategory(cat) {
				return nil, fmt.Errorf("%s:%d: %q is not a USML category or EAR-<ECCN>", name, n, cat)
			}
		case isNote(line):
			flush()
			cur = &Paragraph{} // swallow continuation lines; never emitted
		default:
			if cat == "" {
				return nil, fmt.Errorf("%s:%d: text before any @category line", name, n)
			}
			if rest, ok := strings.CutPrefix(line, "heading "); ok {
				flush()
				cur = &Paragraph{File: name, Category: cat, Cite: "heading", Text: rest}
				continue
			}
			if m := paraRe.FindStringSubmatch(line); m != nil {
				flush()
				cur = &Paragraph{File: name, Category: cat, Cite: m[1], Text: m[2]}
				continue
			}
			if cur == nil {
				cur = &Paragraph{File: name, Category: cat, Cite: "heading"}
			}
			if cur.Category == "" { // inside a note
				continue
			}
			if cur.Text != "" {
				cur.Text += " "
			}
			cur.Text += line
		}
	}
	flush()
	return out, sc.Err()
}

func isNote(line string) bool {
	l := strings.ToLower(line)
	for _, p := range []string{"note", "n.b.", "technical note", "nota bene"} {
		if strings.HasPrefix(l, p) {
			return true
		}
	}
	return false
}

// ReadCuration reads and checks curation.yaml.
func ReadCuration(path string) (*Curation, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c Curation
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if strings.TrimSpace(c.Version) == "" {
		return nil, fmt.Errorf("%s: version is required", path)
	}
	for cat, cc := range c.Categories {
		if !ValidCategory(cat) {
			return nil, fmt.Errorf("%s: category %q is not USML-I … USML-XXI or EAR-<ECCN>", path, cat)
		}
		if cc == nil {
			return nil, fmt.Errorf("%s: category %s is empty", path, cat)
		}
		for cite, tiers := range cc.Terms {
			for t := range tiers {
				if t < 1 || t > 3 {
					return nil, fmt.Errorf("%s: %s %s: tier %d is not 1, 2 or 3", path, cat, cite, t)
				}
			}
		}
		for term, t := range cc.Tier {
			if t < 1 || t > 3 {
				return nil, fmt.Errorf("%s: %s tier override %q: %d is not 1, 2 or 3", path, cat, term, t)
			}
		}
	}
	return &c, nil
}

// PackUnits reads the dimensions of the units in a rule pack and the
// unit names (lowercased) of each dimension.
func PackUnits(path string) (map[string][]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var p struct {
		Units []struct {
			Unit  string   `yaml:"unit"`
			Dim   string   `yaml:"dim"`
			Names []string `yaml:"names"`
		} `yaml:"units"`
	}
	if err := yaml.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	dims := map[string][]string{}
	for _, u := range p.Units {
		for _, n := range u.Names { // the names the classifier parses
			dims[u.Dim] = append(dims[u.Dim], strings.ToLower(n))
		}
	}
	return dims, nil
}

// QuantityUnit splits "130 µg" into its number and unit name.
func QuantityUnit(q string) (num, unit string, ok bool) {
	q = strings.TrimSpace(q)
	i := strings.IndexByte(q, ' ')
	if i <= 0 {
		return "", "", false
	}
	num, unit = q[:i], strings.TrimSpace(q[i+1:])
	if strings.Trim(num, "0123456789.e-+") != "" || unit == "" {
		return "", "", false
	}
	return num, unit, true
}

// Generate builds the lexicon.
func Generate(sourcesDir, curationPath, unitsPath string) (*Lexicon, error) {
	paras, err := ReadSources(sourcesDir)
	if err != nil {
		return nil, err
	}
	cur, err := ReadCuration(curationPath)
	if err != nil {
		return nil, err
	}
	dims, err := PackUnits(unitsPath)
	if err != nil {
		return nil, err
	}
	return Build(paras, cur, dims)
}

// Build applies the curation to the paragraphs. dims maps each dimension
// of the rule pack to its unit names.
func Build(paras []Paragraph, cur *Curation, dims map[string][]string) (*Lexicon, error) {
	x := newExtractor(cur)
	lex := &Lexicon{Version: cur.Version, Anchors: map[string]map[int][]string{}, Extracted: map[string]int{}}
	tiers := map[string]map[string]int{} // category → term → tier
	set := func(cat, term string, tier int) {
		if tiers[cat] == nil {
			tiers[cat] = map[string]int{}
		}
		if tier > tiers[cat][term] {
			tiers[cat][term] = tier
		}
	}
	common := map[string]bool{}
	for _, w := range cur.Common {
		common[x.norm(w)] = true
	}
	// Unit names are quantities, not anchors.
	for _, names := range dims {
		for _, n := range names {
			common[strings.ToLower(n)] = true
		}
	}
	excluded := func(cat, term string) bool {
		if x.stop[term] || common[term] {
			return true
		}
		if cc := cur.Categories[cat]; cc != nil && slices.Contains(cc.Exclude, term) {
			return true
		}
		return false
	}
	// 1. Phrases extracted from the regulation text; kept when one of
	// their words is also a word of the category's curated vocabulary (a
	// phrase that shares nothing with it is mostly boilerplate that the
	// stop list missed), or when the regulation spells it as an acronym.
	type cand struct{ cat, term string }
	var extracted []cand
	for _, p := range paras {
		for _, term := range x.phrases(p.Text) {
			if !excluded(p.Category, term) {
				extracted = append(extracted, cand{p.Category, term})
			}
		}
	}
	// 2. Curated terms, with their citations; a curated tier replaces an
	// extracted one (the highest wins when a term is curated twice).
	curated := map[string]map[string]int{}
	for cat, cc := range cur.Categories {
		curated[cat] = map[string]int{}
		for _, byTier := range cc.Terms {
			for tier, terms := range byTier {
				for _, t := range terms {
					term := x.norm(t)
					if term == "" {
						return nil, fmt.Errorf("curation: %s: %q is empty after normalisation", cat, t)
					}
					if x.stop[term] {
						lex.Skipped = append(lex.Skipped, cat+": "+term)
						continue // the stop list wins over the curation
					}
					curated[cat][term] = max(curated[cat][term], tier)
				}
			}
		}
	}
	for cat, m := range curated {
		for term, tier := range m {
			if tiers[cat] == nil {
				tiers[cat] = map[string]int{}
			}
			tiers[cat][term] = tier
		}
	}
	vocab := map[string]map[string]bool{}
	for cat, m := range curated {
		vocab[cat] = map[string]bool{}
		for term := range m {
			for _, w := range strings.Fields(term) {
				if !x.stop[w] && !common[w] && len(w) > 2 {
					vocab[cat][x.singular(w)] = true
				}
			}
		}
	}
	for _, c := range extracted {
		if _, ok := tiers[c.cat][c.term]; ok {
			continue
		}
		words := strings.Fields(c.term)
		ok := len(words) == 1 // acronyms and long names, see phrases
		for _, w := range words {
			ok = ok || vocab[c.cat][x.singular(w)]
		}
		if !ok {
			continue
		}
		tier := 2
		if len(words) == 1 {
			tier = 1
		}
		set(c.cat, c.term, tier)
		lex.Extracted[c.cat]++
	}
	// 3. Tier overrides, then spoken variants.
	for cat, cc := range cur.Categories {
		for t, tier := range cc.Tier {
			term := x.norm(t)
			if _, ok := tiers[cat][term]; !ok {
				return nil, fmt.Errorf("curation: %s: tier override for %q, which is not a term of the category", cat, t)
			}
			tiers[cat][term] = tier
		}
	}
	for _, cat := range sortedKeys(tiers) {
		for _, term := range sortedKeys(tiers[cat]) {
			for _, v := range cur.Variants[term] {
				vn := x.norm(v)
				if vn == "" || x.stop[vn] || excluded(cat, vn) {
					continue
				}
				if tiers[cat][vn] == 0 {
					tiers[cat][vn] = tiers[cat][term]
				}
			}
		}
	}
	for _, cat := range sortedKeys(tiers) {
		by := map[int][]string{}
		for term, tier := range tiers[cat] {
			by[tier] = append(by[tier], term)
		}
		for t := range by {
			sort.Strings(by[t])
		}
		lex.Anchors[cat] = by
	}
	// 4. Thresholds: every dimension and unit must be the pack's.
	ids := map[string]bool{}
	for _, th := range cur.Thresholds {
		if th.ID == "" || ids[th.ID] {
			return nil, fmt.Errorf("curation: threshold id %q is empty or repeated", th.ID)
		}
		ids[th.ID] = true
		names, ok := dims[th.Dim]
		if !ok {
			return nil, fmt.Errorf("curation: threshold %s: the pack has no unit of dimension %q", th.ID, th.Dim)
		}
		q := th.Above
		if (th.Above == "") == (th.Below == "") {
			return nil, fmt.Errorf("curation: threshold %s: exactly one of above and below is required", th.ID)
		}
		if q == "" {
			q = th.Below
		}
		_, unit, ok := QuantityUnit(q)
		if !ok || !slices.Contains(names, strings.ToLower(unit)) {
			return nil, fmt.Errorf("curation: threshold %s: %q is not a number and a %s unit of the pack", th.ID, q, th.Dim)
		}
		for _, c := range th.Categories {
			if !ValidCategory(c) {
				return nil, fmt.Errorf("curation: threshold %s: category %q is not valid", th.ID, c)
			}
		}
		lex.Thresholds = append(lex.Thresholds, th)
	}
	sort.SliceStable(lex.Thresholds, func(i, j int) bool { return lex.Thresholds[i].ID < lex.Thresholds[j].ID })
	lex.Strong = x.normList(cur.Markings.Strong)
	lex.Weak = x.normList(cur.Markings.Weak)
	lex.Negative = x.normList(cur.Markings.Negative)
	return lex, nil
}

type extractor struct {
	stop, brk, lead, trail, keep map[string]bool
	boiler                       []string
}

func toSet(l []string) map[string]bool {
	m := map[string]bool{}
	for _, s := range l {
		m[strings.ToLower(strings.TrimSpace(s))] = true
	}
	return m
}

func newExtractor(c *Curation) *extractor {
	x := &extractor{brk: toSet(c.BreakWords), lead: toSet(c.LeadStrip), trail: toSet(c.TrailStrip), keep: toSet(c.Keep)}
	x.stop = map[string]bool{}
	for _, s := range c.Stop {
		x.stop[x.norm(s)] = true
	}
	for _, b := range c.Boilerplate {
		x.boiler = append(x.boiler, strings.ToLower(b))
	}
	// Longest first, so that "parts, components, accessories, and
	// attachments" goes before "parts".
	sort.SliceStable(x.boiler, func(i, j int) bool { return len(x.boiler[i]) > len(x.boiler[j]) })
	return x
}

var (
	quoteRep = strings.NewReplacer("“", " ", "”", " ", "\"", " ", "‘", " ", "’", " ", "`", " ", "—", ";", "–", "-", "\u00a0", " ")
	// Citations and identifiers: "(a)(1)", "9A610.x", "paragraph (b)".
	citeRe    = regexp.MustCompile(`\([a-z0-9]{1,5}\)|\b[0-9][a-e][0-9]{3}(\.[a-z0-9]+)*\b|\b[a-z]\.[0-9]+(\.[a-z0-9]+)*\.?`)
	splitRe   = regexp.MustCompile(`[;:,.()\[\]{}!?=<>±%§*+]|\s-\s|\s/\s`)
	acronymRe = regexp.MustCompile(`\b[A-Z][A-Z0-9/-]*[A-Z0-9]s?\b`)
	wordRe    = regexp.MustCompile(`^[a-z][a-z'/&-]*[a-z]$|^[a-z]$`)
	spaceRe   = regexp.MustCompile(`\s+`)
)

// norm lowercases, collapses spaces and puts the last word in singular.
func (x *extractor) norm(s string) string {
	s = strings.ToLower(spaceRe.ReplaceAllString(strings.TrimSpace(s), " "))
	if s == "" {
		return ""
	}
	words := strings.Split(s, " ")
	words[len(words)-1] = x.singular(words[len(words)-1])
	return strings.Join(words, " ")
}

func (x *extractor) normList(l []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range l {
		n := strings.Join(strings.Fields(s), " ")
		k := strings.ToLower(n)
		if n == "" || seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return strings.ToLower(out[i]) < strings.ToLower(out[j]) })
	return out
}

// singular removes an English plural ending from a word; the matcher adds
// "s" and "es" back itself.
func (x *extractor) singular(w string) string {
	switch {
	case x.keep[w] || len(w) <= 3 || !strings.HasSuffix(w, "s") || strings.ContainsAny(w, "/&"):
		return w
	case strings.HasSuffix(w, "ss") || strings.HasSuffix(w, "us") || strings.HasSuffix(w, "is") || strings.HasSuffix(w, "ics"):
		return w
	case strings.HasSuffix(w, "uses") || strings.HasSuffix(w, "oes") && !strings.HasSuffix(w, "shoes"):
		return w[:len(w)-2]
	case strings.HasSuffix(w, "ies") && len(w) > 4:
		return w[:len(w)-3] + "y"
	case strings.HasSuffix(w, "sses") || strings.HasSuffix(w, "xes") || strings.HasSuffix(w, "ches") || strings.HasSuffix(w, "shes") || strings.HasSuffix(w, "zzes"):
		return w[:len(w)-2]
	}
	return w[:len(w)-1]
}

// phrases splits a paragraph into normalised candidate noun phrases.
//
// A single word is kept only when the regulation writes it as an acronym
// ("HMX", "SLVs") or it is a long technical name (ten letters or more,
// e.g. "microbolometer"): other lone words are mostly generic.
func (x *extractor) phrases(text string) []string {
	acronyms := map[string]bool{}
	for _, a := range acronymRe.FindAllString(text, -1) {
		acronyms[x.singular(strings.ToLower(strings.TrimSuffix(a, "s")))] = true
	}
	t := " " + strings.ToLower(quoteRep.Replace(text)) + " "
	for _, b := range x.boiler {
		t = strings.ReplaceAll(t, b, " ; ")
	}
	t = citeRe.ReplaceAllString(t, " ; ")
	var out []string
	seen := map[string]bool{}
	for _, frag := range splitRe.Split(t, -1) {
		var run []string
		emit := func() {
			if p := x.clean(run); p != "" && !seen[p] && (strings.Contains(p, " ") || acronyms[p] || len(p) >= 10) {
				seen[p] = true
				out = append(out, p)
			}
			run = run[:0]
		}
		for _, w := range strings.Fields(frag) {
			w = strings.Trim(w, "'-/&")
			if w == "" || x.brk[w] || !wordRe.MatchString(w) {
				emit()
				continue
			}
			run = append(run, w)
		}
		emit()
	}
	return out
}

// clean trims a run of words to a noun phrase, or returns "".
func (x *extractor) clean(run []string) string {
	for len(run) > 0 && x.lead[run[0]] {
		run = run[1:]
	}
	for len(run) > 1 && x.trail[x.singular(run[len(run)-1])] {
		run = run[:len(run)-1]
	}
	if len(run) == 0 || len(run) > 3 {
		return ""
	}
	if len(run) == 1 && len(run[0]) < 3 {
		return ""
	}
	p := x.norm(strings.Join(run, " "))
	if x.stop[p] || x.trail[p] {
		return ""
	}
	// A phrase made only of generic words says nothing.
	generic := true
	for _, w := range strings.Split(p, " ") {
		if !x.stop[x.singular(w)] && !x.trail[x.singular(w)] {
			generic = false
		}
	}
	if generic {
		return ""
	}
	return p
}

// Render writes the lexicon as YAML in the rule pack's layout.
func (l *Lexicon) Render() []byte {
	var b bytes.Buffer
	b.WriteString(`# GENERATED FILE: do not edit. Built by classifier/internal/lexgen from the
# regulation excerpts in classifier/lexicon/sources/ (22 CFR 121.1, the
# USML; 15 CFR 774 Supplement No. 1, the CCL; DoDI 5230.24, DFARS
# 252.204-7012, the CUI registry) and the curated layer
# classifier/lexicon/curation.yaml. To change it, edit those and rebuild:
#
#   go run ./classifier/internal/lexgen -out classifier/packs/lexicon.yaml
#
# The classifier merges it with packs/default.yaml (same anchors, ccl and
# markings shapes). Tiers: 3 defense-specific or controlled technology,
# 2 dual-use technical term, 1 generic noun. See classifier/lexicon/README.md.
`)
	fmt.Fprintf(&b, "version: %s\n", yamlScalar(l.Version))
	b.WriteString("anchors:\n")
	for _, cat := range sortCategories(sortedKeys(l.Anchors)) {
		fmt.Fprintf(&b, "  %s:\n", cat)
		for _, t := range []int{3, 2, 1} {
			terms := l.Anchors[cat][t]
			if len(terms) == 0 {
				continue
			}
			writeFlow(&b, fmt.Sprintf("    %d: ", t), "      ", terms)
		}
	}
	b.WriteString("ccl:\n")
	for _, th := range l.Thresholds {
		cats := make([]string, len(th.Categories))
		copy(cats, th.Categories)
		side, q := "above", th.Above
		if q == "" {
			side, q = "below", th.Below
		}
		fmt.Fprintf(&b, "  - {id: %s, categories: [%s], dim: %s, %s: %s} # %s\n",
			yamlScalar(th.ID), strings.Join(cats, ", "), th.Dim, side, yamlQuote(q), th.Cite)
	}
	b.WriteString("markings:\n")
	writeFlow(&b, "  strong: ", "    ", l.Strong)
	writeFlow(&b, "  weak: ", "    ", l.Weak)
	writeFlow(&b, "  negative: ", "    ", l.Negative)
	return b.Bytes()
}

// writeFlow writes a YAML flow sequence, wrapped near 100 columns.
func writeFlow(b *bytes.Buffer, first, indent string, items []string) {
	b.WriteString(first)
	b.WriteByte('[')
	col := len(first) + 1
	for i, it := range items {
		s := yamlScalar(it)
		if i > 0 {
			b.WriteByte(',')
			col++
			if col+1+len(s) > 100 {
				b.WriteString("\n" + indent)
				col = len(indent)
			} else {
				b.WriteByte(' ')
				col++
			}
		}
		b.WriteString(s)
		col += len(s)
	}
	b.WriteString("]\n")
}

var plainRe = regexp.MustCompile(`^[\p{L}\p{N}][\p{L}\p{N} ./²µ°_'-]*$`)

// yamlScalar writes s plain when YAML reads it back as the same string
// inside a flow sequence, else double-quoted.
func yamlScalar(s string) string {
	if plainRe.MatchString(s) && !strings.HasSuffix(s, " ") {
		var v any
		if err := yaml.Unmarshal([]byte("["+s+"]"), &v); err == nil {
			if l, ok := v.([]any); ok && len(l) == 1 {
				if str, ok := l[0].(string); ok && str == s {
					return s
				}
			}
		}
	}
	return yamlQuote(s)
}

func yamlQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func sortedKeys[K ~string | ~int, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// sortCategories orders USML-I … USML-XXI by number, then the ECCNs.
func sortCategories(cats []string) []string {
	rank := func(c string) (int, string) {
		if romanCats[c] {
			return romanValue(strings.TrimPrefix(c, "USML-")), ""
		}
		return 100, c
	}
	sort.SliceStable(cats, func(i, j int) bool {
		ri, si := rank(cats[i])
		rj, sj := rank(cats[j])
		if ri != rj {
			return ri < rj
		}
		return si < sj
	})
	return cats
}

func romanValue(r string) int {
	v := map[byte]int{'I': 1, 'V': 5, 'X': 10}
	n := 0
	for i := 0; i < len(r); i++ {
		if i+1 < len(r) && v[r[i]] < v[r[i+1]] {
			n -= v[r[i]]
		} else {
			n += v[r[i]]
		}
	}
	return n
}

// Unique is the number of distinct terms over all categories.
func (l *Lexicon) Unique() int {
	seen := map[string]bool{}
	for _, tiers := range l.Anchors {
		for _, terms := range tiers {
			for _, t := range terms {
				seen[t] = true
			}
		}
	}
	return len(seen)
}

// Count is the number of terms of a category.
func (l *Lexicon) Count(cat string) int {
	n := 0
	for _, terms := range l.Anchors[cat] {
		n += len(terms)
	}
	return n
}

// Summary prints the term counts per category.
func (l *Lexicon) Summary(w io.Writer) {
	total := 0
	for _, cat := range sortCategories(sortedKeys(l.Anchors)) {
		n := l.Count(cat)
		total += n
		fmt.Fprintf(w, "%-12s %4d  (t3 %d, t2 %d, t1 %d; %d from the sources)\n", cat, n,
			len(l.Anchors[cat][3]), len(l.Anchors[cat][2]), len(l.Anchors[cat][1]), l.Extracted[cat])
	}
	if len(l.Skipped) > 0 {
		sort.Strings(l.Skipped)
		fmt.Fprintf(w, "curated terms in the stop list, left out: %s\n", strings.Join(l.Skipped, "; "))
	}
	fmt.Fprintf(w, "%d terms (%d distinct) in %d categories, %d thresholds, %d markings\n", total, l.Unique(), len(l.Anchors), len(l.Thresholds),
		len(l.Strong)+len(l.Weak)+len(l.Negative))
}
