package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/voicegw/voicegw/classifier"
)

const (
	sourcesDir   = "../../lexicon/sources"
	curationPath = "../../lexicon/curation.yaml"
	defaultPack  = "../../packs/default.yaml"
	lexiconPath  = "../../packs/lexicon.yaml"
)

func generate(t *testing.T) []byte {
	t.Helper()
	lex, err := Generate(sourcesDir, curationPath, defaultPack)
	if err != nil {
		t.Fatal(err)
	}
	return lex.Render()
}

// lexiconFile is the schema the classifier's loader reads (KnownFields).
type lexiconFile struct {
	Version string                      `yaml:"version"`
	Anchors map[string]map[int][]string `yaml:"anchors"`
	CCL     []struct {
		ID         string   `yaml:"id"`
		Categories []string `yaml:"categories"`
		Dim        string   `yaml:"dim"`
		Above      string   `yaml:"above"`
		Below      string   `yaml:"below"`
	} `yaml:"ccl"`
	Markings struct {
		Strong   []string `yaml:"strong"`
		Weak     []string `yaml:"weak"`
		Negative []string `yaml:"negative"`
	} `yaml:"markings"`
}

func readLexicon(t *testing.T, b []byte) *lexiconFile {
	t.Helper()
	var lf lexiconFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&lf); err != nil {
		t.Fatalf("lexicon does not parse with the pack's keys: %v", err)
	}
	return &lf
}

func TestDeterministic(t *testing.T) {
	a, b := generate(t), generate(t)
	if !bytes.Equal(a, b) {
		t.Fatal("two runs of the generator gave different bytes")
	}
}

func TestCommittedLexiconIsGenerated(t *testing.T) {
	want := generate(t)
	got, err := os.ReadFile(lexiconPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("classifier/packs/lexicon.yaml differs from a fresh generation: edit classifier/lexicon/ and run\n\tgo run ./classifier/internal/lexgen -out classifier/packs/lexicon.yaml")
	}
}

// genericWords fire on business and help-desk talk; none may be a term.
var genericWords = []string{"system", "equipment", "component", "part", "unit", "device", "software", "test", "data",
	"program", "vehicle", "article", "control", "module", "set", "kit", "board", "plate", "round", "shell", "mine",
	"item", "assembly", "material", "technology", "service", "support", "network", "computer", "display", "sensor",
	"camera", "antenna", "receiver", "battery", "engine", "motor", "code", "key", "security", "safety", "training",
	"target", "weapon", "report", "manual", "drawing", "database", "library", "account", "file", "power", "range",
	"rate", "level", "mode", "time", "speed", "type", "model", "tool", "process", "design", "development",
	"production", "operation", "maintenance", "repair", "installation", "integration", "inspection", "calibration",
	"delivery", "storage", "cargo", "payload", "military", "defense", "government", "ground", "space", "air", "sea",
	"water", "oil", "fuel", "light", "window", "filter", "cable", "wire", "valve", "pump", "tank", "frame", "cover",
	"case", "body", "head", "line", "tube", "bullet", "meeting", "ticket", "password", "printer", "budget", "invoice"}

func TestCategoriesTiersAndStopWords(t *testing.T) {
	lf := readLexicon(t, generate(t))
	if lf.Version != "2026.12.1" {
		t.Errorf("version %q", lf.Version)
	}
	stop := map[string]bool{}
	for _, w := range genericWords {
		stop[w] = true
	}
	for cat, tiers := range lf.Anchors {
		if !ValidCategory(cat) {
			t.Errorf("category %q is not USML-I … USML-XXI or EAR-<ECCN>", cat)
		}
		seen := map[string]int{}
		for tier, terms := range tiers {
			if tier < 1 || tier > 3 {
				t.Errorf("%s: tier %d", cat, tier)
			}
			for _, term := range terms {
				if term == "" || term != strings.ToLower(strings.Join(strings.Fields(term), " ")) {
					t.Errorf("%s: term %q is not lowercase with single spaces", cat, term)
				}
				if stop[term] || stop[strings.TrimSuffix(term, "s")] {
					t.Errorf("%s: generic word %q is a term", cat, term)
				}
				if prev, dup := seen[term]; dup {
					t.Errorf("%s: %q is in tiers %d and %d", cat, term, prev, tier)
				}
				seen[term] = tier
			}
		}
	}
}

// The pack's damper words must not come back as anchors.
func TestNoDamperTerms(t *testing.T) {
	b, err := os.ReadFile(defaultPack)
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Dampers map[string][]string `yaml:"dampers"`
	}
	if err := yaml.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	damp := map[string]string{}
	for kind, l := range p.Dampers {
		for _, w := range l {
			damp[strings.ToLower(w)] = kind
		}
	}
	lf := readLexicon(t, generate(t))
	for cat, tiers := range lf.Anchors {
		for _, terms := range tiers {
			for _, term := range terms {
				if kind, ok := damp[term]; ok {
					t.Errorf("%s: %q is a %s damper in default.yaml", cat, term, kind)
				}
			}
		}
	}
}

func TestThresholdUnitsExistInPack(t *testing.T) {
	dims, err := PackUnits(defaultPack)
	if err != nil {
		t.Fatal(err)
	}
	lf := readLexicon(t, generate(t))
	if len(lf.CCL) < 30 {
		t.Errorf("%d thresholds, want at least 30", len(lf.CCL))
	}
	ids := map[string]bool{}
	for _, th := range lf.CCL {
		if ids[th.ID] {
			t.Errorf("threshold id %s repeated", th.ID)
		}
		ids[th.ID] = true
		names, ok := dims[th.Dim]
		if !ok {
			t.Errorf("%s: dimension %q is not in default.yaml's units", th.ID, th.Dim)
			continue
		}
		q := th.Above + th.Below
		if (th.Above == "") == (th.Below == "") {
			t.Errorf("%s: exactly one of above and below", th.ID)
		}
		_, unit, ok := QuantityUnit(q)
		found := false
		for _, n := range names {
			found = found || n == strings.ToLower(unit)
		}
		if !ok || !found {
			t.Errorf("%s: %q: unit is not a %s unit of default.yaml", th.ID, q, th.Dim)
		}
		if len(th.Categories) == 0 {
			t.Errorf("%s: no categories", th.ID)
		}
		for _, c := range th.Categories {
			if !ValidCategory(c) {
				t.Errorf("%s: category %q", th.ID, c)
			}
		}
		// The id names the ECCN (or USML category) and its paragraph.
		if !eccnRe.MatchString("EAR-"+strings.ToUpper(th.ID[:min(5, len(th.ID))])) && !strings.HasPrefix(th.ID, "usml-") {
			t.Errorf("%s: id does not start with an ECCN or usml-", th.ID)
		}
	}
}

// Every USML category and every CCL category 0-9 is represented, each
// broad enough (the two catch-all categories excepted).
func TestCounts(t *testing.T) {
	lf := readLexicon(t, generate(t))
	count := func(cat string) int {
		n := 0
		for _, terms := range lf.Anchors[cat] {
			n += len(terms)
		}
		return n
	}
	total := 0
	for cat := range lf.Anchors {
		total += count(cat)
	}
	if total < 1500 || total > 5000 {
		t.Errorf("%d terms in all, want 1,500-5,000", total)
	}
	thin := map[string]int{"USML-XVII": 10, "USML-XXI": 5}
	for cat := range romanCats {
		want := 30
		if n, ok := thin[cat]; ok {
			want = n
		}
		if got := count(cat); got < want {
			t.Errorf("%s: %d terms, want at least %d", cat, got, want)
		}
	}
	perDigit := map[byte]int{}
	for cat := range lf.Anchors {
		if strings.HasPrefix(cat, "EAR-") {
			perDigit[cat[4]] += count(cat)
			if count(cat) < 3 {
				t.Errorf("%s: only %d terms", cat, count(cat))
			}
		}
	}
	for d := byte('0'); d <= '9'; d++ {
		if perDigit[d] < 30 {
			t.Errorf("CCL category %c: %d terms, want at least 30", d, perDigit[d])
		}
	}
	for _, cat := range []string{"EAR-0A606", "EAR-1C351", "EAR-3A001", "EAR-5A002", "EAR-6A008", "EAR-7A002", "EAR-8A609", "EAR-9A515", "EAR-9A610", "EAR-9A619", "EAR-9E610", "EAR-9E515"} {
		if count(cat) == 0 {
			t.Errorf("%s is missing", cat)
		}
	}
	if len(lf.Markings.Strong) < 20 || len(lf.Markings.Negative) < 3 {
		t.Errorf("markings: %d strong, %d negative", len(lf.Markings.Strong), len(lf.Markings.Negative))
	}
}

// Merged into default.yaml, the lexicon compiles as a rule pack: every
// term normalises, every threshold parses as a quantity of its dimension.
func TestMergesIntoDefaultPack(t *testing.T) {
	base, err := os.ReadFile(defaultPack)
	if err != nil {
		t.Fatal(err)
	}
	var pack map[string]any
	if err := yaml.Unmarshal(base, &pack); err != nil {
		t.Fatal(err)
	}
	var lex map[string]any
	if err := yaml.Unmarshal(generate(t), &lex); err != nil {
		t.Fatal(err)
	}
	anchors := pack["anchors"].(map[string]any)
	for cat, tiers := range lex["anchors"].(map[string]any) {
		cur, _ := anchors[cat].(map[any]any)
		if cur == nil {
			cur = map[any]any{}
		}
		for tier, terms := range tiers.(map[any]any) {
			old, _ := cur[tier].([]any)
			add, _ := terms.([]any)
			cur[tier] = append(old, add...)
		}
		anchors[cat] = cur
	}
	asList := func(v any) []any { l, _ := v.([]any); return l }
	pack["ccl"] = append(asList(pack["ccl"]), asList(lex["ccl"])...)
	marks := pack["markings"].(map[string]any)
	for k, v := range lex["markings"].(map[string]any) {
		marks[k] = append(asList(marks[k]), asList(v)...)
	}
	merged, err := yaml.Marshal(pack)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := classifier.Parse("default+lexicon", merged); err != nil {
		t.Fatal(err)
	}
}

func TestExtraction(t *testing.T) {
	cur, err := ReadCuration(curationPath)
	if err != nil {
		t.Fatal(err)
	}
	x := newExtractor(cur)
	got := x.phrases(`Thrust vector control systems, jet vanes, and "parts," "components," "accessories," and "attachments" specially designed for solid rocket motors (see paragraph (a)(1) of this category);`)
	want := map[string]bool{"thrust vector control": true, "jet vane": true, "solid rocket motor": true}
	for _, p := range got {
		if !want[p] {
			t.Errorf("unexpected phrase %q", p)
		}
		delete(want, p)
	}
	for p := range want {
		t.Errorf("phrase %q not extracted (got %q)", p, got)
	}
	for in, out := range map[string]string{"assemblies": "assembly", "lenses": "lense", "lens": "lens", "fuzes": "fuze",
		"torpedoes": "torpedo", "viruses": "virus", "gas": "gas", "avionics": "avionics", "switches": "switch", "track shoes": "track shoe"} {
		if got := x.norm(in); got != out && !(in == "lenses" && got == "lens") {
			t.Errorf("norm(%q) = %q, want %q", in, got, out)
		}
	}
}
