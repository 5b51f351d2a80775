package classifier

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Tally counts decisions against labels.
type Tally struct{ TP, FN, FP, TN int }

// Add counts one decision.
func (t *Tally) Add(controlled, flagged bool) {
	switch {
	case controlled && flagged:
		t.TP++
	case controlled:
		t.FN++
	case flagged:
		t.FP++
	default:
		t.TN++
	}
}

// Recall is the share of controlled texts flagged.
func (t Tally) Recall() float64 { return float64(t.TP) / float64(max(1, t.TP+t.FN)) }

// FPR is the share of benign texts flagged.
func (t Tally) FPR() float64 { return float64(t.FP) / float64(max(1, t.FP+t.TN)) }

func (t Tally) String() string {
	return fmt.Sprintf("recall %.3f  FPR %.3f  (TP %d FN %d FP %d TN %d)", t.Recall(), t.FPR(), t.TP, t.FN, t.FP, t.TN)
}

// CVReport is a leave-one-file-out cross-validation: for each data file,
// a model trained on the other files decides that file's texts (at the
// final model's threshold). By file, by style, and overall.
type CVReport struct {
	Threshold float64          `json:"threshold"`
	All       Tally            `json:"all"`
	ByFile    map[string]Tally `json:"by_file"`
	ByStyle   map[string]Tally `json:"by_style"`
	// OOF is each example's out-of-fold probability, by index.
	OOF []float64 `json:"-"`
}

// CrossValidate trains one model per held-out file and records the
// held-out probabilities.
func (fz *Featurized) CrossValidate(opt TrainOptions) *CVReport {
	files := map[string]bool{}
	for _, ex := range fz.ex {
		files[ex.File] = true
	}
	oof := make([]float64, len(fz.ex))
	for _, f := range sortedKeys(files) {
		m := fz.Train(opt, func(i int) bool { return fz.ex[i].File != f })
		for i := range fz.ex {
			if fz.ex[i].File == f {
				oof[i] = fz.Predict(m, i)
			}
		}
	}
	return &CVReport{OOF: oof}
}

// Tally fills the report's tallies at threshold t.
func (r *CVReport) Tally(ex []Example, t float64) {
	r.Threshold = t
	r.All = Tally{}
	r.ByFile = map[string]Tally{}
	r.ByStyle = map[string]Tally{}
	for i, e := range ex {
		fl := r.OOF[i] >= t
		r.All.Add(e.Controlled, fl)
		f := r.ByFile[e.File]
		f.Add(e.Controlled, fl)
		r.ByFile[e.File] = f
		s := r.ByStyle[e.Style]
		s.Add(e.Controlled, fl)
		r.ByStyle[e.Style] = s
	}
}

// pickThreshold returns the lowest probability at which the out-of-fold
// false-positive rate is at most target, within [lo, hi].
func pickThreshold(ex []Example, oof []float64, target, lo, hi float64) float64 {
	var neg []float64
	for i, e := range ex {
		if !e.Controlled {
			neg = append(neg, oof[i])
		}
	}
	slices.Sort(neg)
	t := lo
	if len(neg) > 0 {
		k := int(math.Floor(float64(len(neg)) * (1 - target)))
		if k < len(neg) {
			t = max(t, neg[k]+1e-6)
		}
	}
	return round6(min(t, hi))
}

// TrainResult is what TrainBundle made and measured.
type TrainResult struct {
	Model *Model
	CV    *CVReport
	Fit   Tally
	Dev   *Tally
}

// trainingMeta is recorded in the model artifact.
type trainingMeta struct {
	Data    []dataFile   `json:"data"`
	Options TrainOptions `json:"options"`
	CV      *CVReport    `json:"leave_one_file_out"`
}

type dataFile struct {
	Name     string `json:"name"`
	SHA256   string `json:"sha256"`
	Examples int    `json:"examples"`
}

// TrainFiles is the data of a training run: each file's examples, by
// file name, read in order.
func readTrainFiles(data []string) ([]Example, []dataFile, error) {
	var ex []Example
	var files []dataFile
	for _, p := range data {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, nil, err
		}
		x, err := readExamples(filepath.Base(p), strings.NewReader(string(b)))
		if err != nil {
			return nil, nil, err
		}
		sum := sha256.Sum256(b)
		files = append(files, dataFile{Name: filepath.Base(p), SHA256: hex.EncodeToString(sum[:]), Examples: len(x)})
		ex = append(ex, x...)
	}
	if len(ex) == 0 {
		return nil, nil, fmt.Errorf("no training examples")
	}
	return ex, files, nil
}

// TrainModel fits a model on the data files with e's pack and lexicon:
// leave-one-file-out cross-validation picks the threshold (the lowest
// probability whose held-out false-positive rate is within
// opt.TargetFPR), then the model is fitted on everything.
func (e *Engine) TrainModel(data []string, opt TrainOptions) (*TrainResult, error) {
	opt = opt.withDefaults()
	ex, files, err := readTrainFiles(data)
	if err != nil {
		return nil, err
	}
	fz := e.Featurize(ex)
	cv := fz.CrossValidate(opt)
	tex, toof := ex, cv.OOF
	if len(opt.ThresholdOn) > 0 {
		tex, toof = nil, nil
		for i := range ex {
			if slices.Contains(opt.ThresholdOn, ex[i].File) {
				tex = append(tex, ex[i])
				toof = append(toof, cv.OOF[i])
			}
		}
	}
	t := pickThreshold(tex, toof, opt.TargetFPR, 0.35, 0.8)
	cv.Tally(ex, t)
	m := fz.Train(opt, nil)
	m.redact = t
	m.accum = 0.8
	res := &TrainResult{Model: m, CV: cv}
	for i := range ex {
		res.Fit.Add(ex[i].Controlled, fz.Predict(m, i) >= t)
	}
	meta := trainingMeta{Data: files, Options: opt, CV: cv}
	mb, err := json.Marshal(meta)
	if err != nil {
		return nil, err
	}
	m.meta = mb
	return res, nil
}

// TrainBundle trains the model of the bundle in dir on the data files
// (TrainModel), measures it on devFile (when given) and writes
// dir/model.json and dir/manifest.json. The report goes to w.
func TrainBundle(dir string, data []string, devFile string, opt TrainOptions, w io.Writer) (*TrainResult, error) {
	e, err := LoadBundleForTraining(dir)
	if err != nil {
		return nil, err
	}
	res, err := e.TrainModel(data, opt)
	if err != nil {
		return nil, err
	}
	m, cv := res.Model, res.CV
	fmt.Fprintf(w, "trained on %d texts from %d files; threshold p ≥ %.3f\n", res.Fit.TP+res.Fit.FN+res.Fit.FP+res.Fit.TN, len(data), m.redact)
	fmt.Fprintf(w, "training fit:              %s\n", res.Fit)
	fmt.Fprintf(w, "leave one file out, all:   %s\n", cv.All)
	for _, f := range sortedKeys(cv.ByFile) {
		fmt.Fprintf(w, "  file  %-20s %s\n", f, cv.ByFile[f])
	}
	for _, s := range sortedKeys(cv.ByStyle) {
		fmt.Fprintf(w, "  style %-20s %s\n", s, cv.ByStyle[s])
	}
	if devFile != "" {
		dev, err := ReadExamples(devFile)
		if err != nil {
			return nil, err
		}
		de := e.WithModel(m)
		var dt Tally
		for _, x := range dev {
			dt.Add(x.Controlled, de.Classify(x.Text, PartyUnknown, Inbound).Action != Allow)
		}
		res.Dev = &dt
		fmt.Fprintf(w, "dev (%s):  %s\n", filepath.Base(devFile), dt)
	}
	out, err := m.Marshal()
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "model.json"), out, 0o644); err != nil {
		return nil, err
	}
	roles := map[string]string{RolePack: "default.yaml", RoleModel: "model.json"}
	if _, err := os.Stat(filepath.Join(dir, "lexicon.yaml")); err == nil {
		roles[RoleLexicon] = "lexicon.yaml"
	}
	if err := WriteManifest(dir, e.version, roles); err != nil {
		return nil, err
	}
	return res, nil
}

// WriterFiles are the files of TrainingFiles from independent writers
// (train/), whose held-out predictions choose the committed threshold.
func WriterFiles(files []string) []string {
	var out []string
	for _, f := range files {
		if filepath.Base(filepath.Dir(f)) == "train" {
			out = append(out, strings.TrimSuffix(filepath.Base(f), ".jsonl"))
		}
	}
	return out
}

// TrainingFiles lists the training data under dir in the order the
// committed model was trained on: train/*.jsonl, own/*.jsonl (each
// sorted), then extra.jsonl.
func TrainingFiles(dir string) []string {
	var out []string
	for _, sub := range []string{"train", "own"} {
		m, _ := filepath.Glob(filepath.Join(dir, sub, "*.jsonl"))
		slices.Sort(m)
		out = append(out, m...)
	}
	if _, err := os.Stat(filepath.Join(dir, "extra.jsonl")); err == nil {
		out = append(out, filepath.Join(dir, "extra.jsonl"))
	}
	return out
}
