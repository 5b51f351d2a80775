package classifier

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Example is one labelled text for training or evaluation. Texts of one
// conversation (same Conv, in file order) are classified as one call, so
// their session context is part of their features.
type Example struct {
	ID         string `json:"id"`
	Text       string `json:"text"`
	Label      string `json:"label"`
	Style      string `json:"style"`
	Cat        string `json:"cat"`
	Conv       string `json:"conv"`
	Role       string `json:"role"`
	Controlled bool   `json:"-"`
	// File is the base name of the file the example came from (the
	// writer, for leave-one-file-out cross-validation).
	File string `json:"-"`
}

// ReadExamples reads a JSONL file of labelled texts: {"id", "text",
// "label": "controlled"|"benign", "style", "cat"} or conversation turns
// {"conv", "turn", "role", "text", "label"}. Every problem names the line.
func ReadExamples(path string) ([]Example, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readExamples(filepath.Base(path), f)
}

func readExamples(name string, r io.Reader) ([]Example, error) {
	var out []Example
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var ex Example
		if err := json.Unmarshal([]byte(line), &ex); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, n, err)
		}
		switch ex.Label {
		case "controlled":
			ex.Controlled = true
		case "benign":
		default:
			return nil, fmt.Errorf("%s:%d: label %q: want controlled or benign", name, n, ex.Label)
		}
		if ex.Text == "" {
			return nil, fmt.Errorf("%s:%d: no text", name, n)
		}
		ex.File = strings.TrimSuffix(name, ".jsonl")
		if ex.ID == "" {
			ex.ID = fmt.Sprintf("%s:%d", ex.File, n)
		}
		if ex.Style == "" && ex.Role != "" {
			ex.Style = ex.Role
		}
		out = append(out, ex)
	}
	return out, sc.Err()
}

// TrainOptions are the training hyper-parameters. The zero value means
// the defaults documented on each field.
type TrainOptions struct {
	Epochs   int     // passes over the data (default 30)
	Rate     float64 // AdaGrad learning rate (default 0.3)
	L2Named  float64 // L2 penalty on named features (default 1e-3)
	L2Hashed float64 // L2 penalty on hashed n-grams (default 1e-2)
	HashBits int     // hashed table size, 2^bits (default 16)
	Seed     uint64  // shuffling seed (default 1)
	// TargetFPR is the largest false-positive rate the threshold may give
	// on the leave-one-file-out predictions, texts of writers the fold's
	// model has not seen (default 0.04).
	TargetFPR float64
	Version   string // model version (default "dev")
	// ThresholdOn names the data files (base names without .jsonl) whose
	// held-out predictions choose the threshold; default all of them.
	// The independent writers' files are the best stand-in for writers
	// nobody has seen.
	ThresholdOn []string `json:",omitempty"`
}

func (o TrainOptions) withDefaults() TrainOptions {
	if o.Epochs == 0 {
		o.Epochs = 30
	}
	if o.Rate == 0 {
		o.Rate = 0.3
	}
	if o.L2Named == 0 {
		o.L2Named = 1e-3
	}
	if o.L2Hashed == 0 {
		o.L2Hashed = 1e-2
	}
	if o.HashBits == 0 {
		o.HashBits = 16
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.TargetFPR == 0 {
		o.TargetFPR = 0.04
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	return o
}

// sparse is one example's features as indexes into the weight vector
// (named features first, then the hashed table).
type sparse struct {
	idx []int32
	val []float32
	y   float64
}

// Featurize computes each example's features once, replaying
// conversations as calls, for repeated training and evaluation.
type Featurized struct {
	e      *Engine
	ex     []Example
	sets   []*featureSet
	asking []bool
	names  []string
}

// Featurize extracts the features of every example with this engine's
// rule pack and lexicon.
func (e *Engine) Featurize(ex []Example) *Featurized {
	fz := &Featurized{e: e, ex: ex, sets: make([]*featureSet, len(ex)), asking: make([]bool, len(ex))}
	var carry *carryState
	conv := ""
	for i := range ex {
		if ex[i].Conv == "" || ex[i].Conv != conv || ex[i].File != ex[max(0, i-1)].File {
			carry = nil
			conv = ex[i].Conv
		}
		a := e.analyze(ex[i].Text)
		var ctx *context
		if ex[i].Conv != "" {
			if carry == nil {
				carry = &carryState{m: map[string]float64{}}
			}
			ctx = carry.context()
		}
		fz.sets[i] = e.contextFeatures(ex[i].Text, a, ctx)
		fz.asking[i] = onlyAsks(a)
		if carry != nil {
			carry.advance(a)
		}
	}
	names := map[string]bool{}
	for _, fs := range fz.sets {
		for _, f := range fs.feats {
			if f.name != "" {
				names[f.name] = true
			}
		}
	}
	fz.names = sortedKeys(names)
	return fz
}

// Examples returns the featurized examples.
func (fz *Featurized) Examples() []Example { return fz.ex }

// Train fits a model on the examples whose index keep accepts (all when
// keep is nil).
func (fz *Featurized) Train(opt TrainOptions, keep func(i int) bool) *Model {
	opt = opt.withDefaults()
	nNamed := len(fz.names)
	nameIdx := make(map[string]int32, nNamed)
	for i, n := range fz.names {
		nameIdx[n] = int32(i)
	}
	mask := uint32(1)<<opt.HashBits - 1
	var data []sparse
	pos, neg := 0, 0
	for i, fs := range fz.sets {
		if keep != nil && !keep(i) {
			continue
		}
		s := sparse{idx: make([]int32, 0, len(fs.feats)), val: make([]float32, 0, len(fs.feats))}
		for _, f := range fs.feats {
			if f.name != "" {
				s.idx = append(s.idx, nameIdx[f.name])
			} else {
				s.idx = append(s.idx, int32(nNamed)+int32(f.hash&mask))
			}
			s.val = append(s.val, float32(f.val))
		}
		if fz.ex[i].Controlled {
			s.y = 1
			pos++
		} else {
			neg++
		}
		data = append(data, s)
	}
	w := make([]float64, nNamed+1<<opt.HashBits)
	g2 := make([]float64, len(w))
	// Balanced classes: each class weighs half.
	cw := [2]float64{float64(pos+neg) / float64(2*max(1, neg)), float64(pos+neg) / float64(2*max(1, pos))}
	rng := rand.New(rand.NewPCG(opt.Seed, 0x766f6963656777))
	order := make([]int, len(data))
	for i := range order {
		order[i] = i
	}
	biasIdx, hasBias := nameIdx["bias"]
	for range opt.Epochs {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, k := range order {
			s := &data[k]
			z := 0.0
			for j, ix := range s.idx {
				z += w[ix] * float64(s.val[j])
			}
			g := (sigmoid(z) - s.y) * cw[int(s.y)]
			for j, ix := range s.idx {
				l2 := opt.L2Named
				if int(ix) >= nNamed {
					l2 = opt.L2Hashed
				} else if hasBias && ix == biasIdx {
					l2 = 0
				}
				gr := g*float64(s.val[j]) + l2*w[ix]
				g2[ix] += gr * gr
				w[ix] -= opt.Rate * gr / (math.Sqrt(g2[ix]) + 1e-8)
			}
		}
	}
	m := &Model{version: opt.Version, named: make(map[string]float64, nNamed), hashBits: opt.HashBits,
		hashed: make([]float32, 1<<opt.HashBits), accum: 3}
	for i, n := range fz.names {
		if w[i] != 0 {
			m.named[n] = round6(w[i])
		}
	}
	for i := range m.hashed {
		m.hashed[i] = float32(w[nNamed+i])
	}
	// The redact threshold: the lowest probability whose false-positive
	// rate on the training fit stays within TargetFPR, and never below
	// one half. TrainBundle replaces it with one chosen on held-out
	// files.
	var negP []float64
	for i, fs := range fz.sets {
		if (keep == nil || keep(i)) && !fz.ex[i].Controlled {
			negP = append(negP, sigmoid(m.score(fs)))
		}
	}
	slices.Sort(negP)
	t := 0.5
	if k := int(math.Floor(float64(len(negP)) * (1 - opt.TargetFPR))); k < len(negP) && k >= 0 {
		t = max(t, negP[k]+1e-6)
	}
	m.redact = round6(min(t, 0.95))
	return m
}

func round6(v float64) float64 { return math.Round(v*1e6) / 1e6 }

// Predict returns the model's probability for example i.
// A text that only asks is scored at most askCap, as decide does.
func (fz *Featurized) Predict(m *Model, i int) float64 {
	p := sigmoid(m.score(fz.sets[i]))
	if fz.asking[i] {
		p = min(p, askCap)
	}
	return p
}

// carryState is the topic carry of a call: the categories and terms of
// the call's dual-use and defense-specific anchors, at their tier,
// decaying ×carryDecay per text until below carryFloor.
type carryState struct {
	m     map[string]float64 // category → weight
	terms map[string]float64 // anchor term → weight
}

// carryTerms is how many carried terms are read before a text.
const carryTerms = 4

func (c *carryState) context() *context {
	if len(c.m) == 0 {
		return nil
	}
	terms := sortedKeys(c.terms)
	slices.SortStableFunc(terms, func(x, y string) int {
		switch wx, wy := c.terms[x], c.terms[y]; {
		case wx > wy:
			return -1
		case wx < wy:
			return 1
		}
		return 0
	})
	if len(terms) > carryTerms {
		terms = terms[:carryTerms]
	}
	return &context{carry: maps.Clone(c.m), prefix: strings.Join(terms, ", ")}
}

func (c *carryState) advance(a *analysis) {
	if c.terms == nil {
		c.terms = map[string]float64{}
	}
	for _, m := range []map[string]float64{c.m, c.terms} {
		for k, w := range m {
			if w *= carryDecay; w < carryFloor {
				delete(m, k)
			} else {
				m[k] = w
			}
		}
	}
	for _, h := range a.hits {
		if h.p.kind == KindAnchor && h.p.weight >= 2 {
			c.m[h.p.category] = max(c.m[h.p.category], h.p.weight)
			c.terms[h.p.text] = max(c.terms[h.p.text], h.p.weight)
		}
	}
}
