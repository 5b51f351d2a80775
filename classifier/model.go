package classifier

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// ModelFormat is the format tag of a model artifact this package reads.
const ModelFormat = "voicegw-classifier-model/1"

// Model is the learned scorer: a regularised logistic regression over the
// named features and the hashed n-grams of a text. p = σ(Σ wᵢxᵢ); a text
// is controlled at p ≥ the redact threshold. It is immutable once loaded.
type Model struct {
	version  string
	named    map[string]float64
	hashBits int
	hashed   []float32
	redact   float64
	accum    float64
	meta     json.RawMessage
}

// modelFile is the JSON artifact.
type modelFile struct {
	Format   string             `json:"format"`
	Version  string             `json:"version"`
	HashBits int                `json:"hash_bits"`
	Named    map[string]float64 `json:"named"`
	// Hashed is the table of n-gram weights, little-endian float32,
	// base64.
	Hashed     string `json:"hashed"`
	Thresholds struct {
		// Redact is the probability at or above which a text is
		// controlled: redacted, or blocked when redaction cannot clean
		// it.
		Redact float64 `json:"redact"`
		// Accumulator is the per-category session sum of allowed
		// probabilities that escalates piecemeal extraction.
		Accumulator float64 `json:"accumulator"`
	} `json:"thresholds"`
	// Training records how the model was made: data files and their
	// hashes, options, cross-validated figures. Informational.
	Training json.RawMessage `json:"training,omitempty"`
}

// ErrModel is wrapped by every model loading or validation error.
var ErrModel = errors.New("invalid classifier model")

// ParseModel reads a model artifact; name is used in error messages.
func ParseModel(name string, data []byte) (*Model, error) {
	var mf modelFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&mf); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrModel, name, err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrModel, name, fmt.Sprintf(format, args...))
	}
	if mf.Format != ModelFormat {
		return nil, bad("format %q, want %q", mf.Format, ModelFormat)
	}
	if strings.TrimSpace(mf.Version) == "" {
		return nil, bad("version: required")
	}
	if mf.HashBits < 8 || mf.HashBits > 24 {
		return nil, bad("hash_bits %d: must be 8 … 24", mf.HashBits)
	}
	raw, err := base64.StdEncoding.DecodeString(mf.Hashed)
	if err != nil {
		return nil, bad("hashed: %v", err)
	}
	if len(raw) != 4<<mf.HashBits {
		return nil, bad("hashed: %d bytes, want %d for hash_bits %d", len(raw), 4<<mf.HashBits, mf.HashBits)
	}
	m := &Model{version: mf.Version, named: mf.Named, hashBits: mf.HashBits, hashed: make([]float32, 1<<mf.HashBits),
		redact: mf.Thresholds.Redact, accum: mf.Thresholds.Accumulator, meta: mf.Training}
	for i := range m.hashed {
		v := math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, bad("hashed[%d]: not a finite number", i)
		}
		m.hashed[i] = v
	}
	if m.named == nil {
		return nil, bad("named: required")
	}
	for _, k := range sortedKeys(m.named) {
		if v := m.named[k]; math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, bad("named[%q]: not a finite number", k)
		}
	}
	t := mf.Thresholds
	switch {
	case !(t.Redact > 0 && t.Redact < 1):
		return nil, bad("thresholds.redact: must be a probability in (0, 1)")
	case !(t.Accumulator > 0) || math.IsInf(t.Accumulator, 0):
		return nil, bad("thresholds.accumulator: must be > 0")
	}
	return m, nil
}

// Marshal writes the model artifact (stable bytes: sorted keys).
func (m *Model) Marshal() ([]byte, error) {
	mf := modelFile{Format: ModelFormat, Version: m.version, HashBits: m.hashBits, Named: m.named, Training: m.meta}
	raw := make([]byte, 4*len(m.hashed))
	for i, v := range m.hashed {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	mf.Hashed = base64.StdEncoding.EncodeToString(raw)
	mf.Thresholds.Redact, mf.Thresholds.Accumulator = m.redact, m.accum
	b, err := json.MarshalIndent(mf, "", " ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Version is the model's version string.
func (m *Model) Version() string { return m.version }

func (m *Model) weight(f *feature) float64 {
	if f.name != "" {
		return m.named[f.name]
	}
	return float64(m.hashed[f.hash&(1<<m.hashBits-1)])
}

// score returns the logit of a feature set.
func (m *Model) score(fs *featureSet) float64 {
	z := 0.0
	for i := range fs.feats {
		z += m.weight(&fs.feats[i]) * fs.feats[i].val
	}
	return z
}

func sigmoid(z float64) float64 { return 1 / (1 + math.Exp(-z)) }

// Contribution is one feature's share of a decision: weight × value, in
// logit units. Name is the feature's name; an n-gram is named by its hash
// ("ngram:1a2b3c4d") so that decisions and audit records never carry the
// text, and Text holds the n-gram for a local explanation only.
type Contribution struct {
	Feature string  `json:"feature"`
	Value   float64 `json:"value"`
	Weight  float64 `json:"weight"`
	Logit   float64 `json:"logit"`
	Spans   []Span  `json:"spans,omitempty"`
	Text    string  `json:"-"`
}

// explain returns the n features with the largest contributions (in
// absolute logit), largest first; only the chosen ones get names and
// spans.
func (m *Model) explain(fs *featureSet, n int) []Contribution {
	top := fs.scratch[:0]
	mask := uint32(1)<<m.hashBits - 1
	for i := range fs.feats {
		f := &fs.feats[i]
		w := m.weight(f)
		if w == 0 || f.name == "bias" {
			continue
		}
		c := contribIdx{i: i, logit: w * f.val, val: f.val, w: w}
		a := math.Abs(c.logit)
		if len(top) == n && a <= math.Abs(top[n-1].logit) {
			continue
		}
		// Insert in order, dropping the smallest beyond n.
		k := len(top)
		if k < n {
			top = append(top, c)
		} else {
			k = n - 1
		}
		for k > 0 && math.Abs(top[k-1].logit) < a {
			top[k] = top[k-1]
			k--
		}
		top[k] = c
	}
	fs.scratch = top
	out := make([]Contribution, len(top))
	// The n-grams' one span each share one array.
	grams := 0
	for _, c := range top {
		if fs.feats[c.i].name == "" {
			grams++
		}
	}
	gramSpans := make([]Span, 0, grams)
	for k, c := range top {
		f := &fs.feats[c.i]
		out[k] = Contribution{Feature: f.name, Value: c.val, Weight: c.w, Logit: c.logit}
		if f.name == "" {
			out[k].Feature = "ngram:" + strconv.FormatUint(uint64(f.hash&mask), 16)
			out[k].Text = f.gram()
			gramSpans = append(gramSpans, f.span)
			out[k].Spans = gramSpans[len(gramSpans)-1 : len(gramSpans) : len(gramSpans)]
		} else if len(f.spans) > 0 {
			out[k].Spans = slices.Clone(f.spans)
		}
	}
	return out
}

// contribIdx is one feature's (or bucket's) share while explaining.
type contribIdx struct {
	i     int
	logit float64
	val   float64
	w     float64
}
