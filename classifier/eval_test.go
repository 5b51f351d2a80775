package classifier

import (
	"bufio"
	"encoding/json"
	"errors"
	"io/fs"
	"math"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
)

type labeled struct {
	ID, Label, Cat, Style, Text string
}

// devSetPath prefers the copy in testdata; it falls back to the shared
// development set next to the checkout (../shared/classifier/dev.jsonl
// from the repository root). Under CI=true a missing set fails the test.
func devSetPath(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"testdata/dev.jsonl", "../../shared/classifier/dev.jsonl"} {
		if _, err := os.Stat(p); err == nil {
			return p
		} else if !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("development set not found: testdata/dev.jsonl or ../shared/classifier/dev.jsonl")
	}
	t.Skip("development set not found")
	return ""
}

func loadSet(t testing.TB, path string) []labeled {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("labeled set: %v", err)
	}
	defer f.Close()
	var out []labeled
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		var r labeled
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s:%d: %v", path, n, err)
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// logTallies prints a table of tallies by slice name.
func logTallies(t *testing.T, by map[string]*Tally) {
	keys := make([]string, 0, len(by))
	for k := range by {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	t.Logf("%-26s %8s %8s %5s %5s %5s %5s", "slice", "recall", "FPR", "TP", "FN", "FP", "TN")
	for _, k := range keys {
		c := by[k]
		t.Logf("%-26s %8.3f %8.3f %5d %5d %5d %5d", k, c.Recall(), c.FPR(), c.TP, c.FN, c.FP, c.TN)
	}
}

func count(by map[string]*Tally, controlled, flagged bool, keys ...string) {
	for _, k := range keys {
		if by[k] == nil {
			by[k] = &Tally{}
		}
		by[k].Add(controlled, flagged)
	}
}

// TestDevSetMetrics is the acceptance bar on the labeled development set
// (which the model is not trained on): for an unknown party recall on
// controlled texts ≥ 0.95 and false positives on benign texts ≤ 0.03; a
// verified U.S. person is allowed every text.
func TestDevSetMetrics(t *testing.T) {
	e := engine(t)
	path := devSetPath(t)
	rows := loadSet(t, path)
	by := map[string]*Tally{}
	for _, r := range rows {
		d := e.Classify(r.Text, PartyUnknown, Inbound)
		flagged := d.Action != Allow
		count(by, r.Label == "controlled", flagged, "all", "style:"+r.Style, "cat:"+r.Cat)
		if (r.Label == "controlled") != flagged {
			t.Logf("miss %s %s %s %s p=%.3f | %.100s", r.ID, r.Label, r.Style, d.Action, d.Score, r.Text)
		}
		if u := e.Classify(r.Text, PartyUSPerson, Inbound); u.Action != Allow {
			t.Errorf("%s: us-person got %s", r.ID, u.Action)
		}
	}
	t.Logf("%s (%d texts, party unknown)", path, len(rows))
	logTallies(t, by)
	if c := by["all"]; c.Recall() < 0.95 || c.FPR() > 0.03 {
		t.Errorf("dev set: recall %.3f (want ≥ 0.95), FPR %.3f (want ≤ 0.03)", c.Recall(), c.FPR())
	}
}

// trainingMetaOf reads the committed model's training record.
func trainingMetaOf(t testing.TB, m *Model) trainingMeta {
	t.Helper()
	var meta trainingMeta
	if err := json.Unmarshal(m.meta, &meta); err != nil {
		t.Fatalf("model training record: %v", err)
	}
	return meta
}

// trainingSet is the committed training data, featurised once for the
// tests that retrain on part of it, with the embedded engine and the
// committed model's training record.
func trainingSet(t *testing.T) (*Engine, trainingMeta, []Example, *Featurized) {
	t.Helper()
	e := engine(t)
	meta := trainingMetaOf(t, e.model)
	trainingOnce.Do(func() {
		ex, _, err := readTrainFiles(TrainingFiles("testdata"))
		if err != nil {
			trainingErr = err
			return
		}
		trainingFz = e.Featurize(ex)
	})
	if trainingErr != nil {
		t.Fatal(trainingErr)
	}
	return e, meta, trainingFz.Examples(), trainingFz
}

var (
	trainingOnce sync.Once
	trainingFz   *Featurized
	trainingErr  error
)

// Leave-one-file-out bars. The goal (recall ≥ 0.93 and FPR ≤ 0.05,
// overall and per style) is printed with the figures; the test fails
// below the floors, which the committed model clears, so a change that
// makes the classifier generalise worse does not land.
const (
	lofoGoalRecall, lofoGoalFPR   = 0.93, 0.05
	lofoFloorRecall, lofoFloorFPR = 0.92, 0.06 // overall
	lofoStyleRecall, lofoStyleFPR = 0.88, 0.12 // each style
)

// TestLeaveOneFileOut is the figure that says whether the model
// generalises to a writer it has not seen: for each writer's file of
// train/, a model trained on every other training file (with the
// committed model's options) decides that file's texts at the committed
// threshold.
func TestLeaveOneFileOut(t *testing.T) {
	e, meta, ex, fz := trainingSet(t)
	by := map[string]*Tally{}
	for _, w := range WriterFiles(TrainingFiles("testdata")) {
		if w == "conversations" {
			continue // turns, measured as calls by TestConversationTurns
		}
		m := fz.Train(meta.Options, func(i int) bool { return ex[i].File != w })
		for i := range ex {
			if ex[i].File != w {
				continue
			}
			fl := fz.Predict(m, i) >= e.model.redact
			count(by, ex[i].Controlled, fl, "all", "file:"+w, "style:"+ex[i].Style)
		}
	}
	t.Logf("leave one writer's file out, threshold p ≥ %g", e.model.redact)
	logTallies(t, by)
	for k, c := range by {
		if k != "all" && !strings.HasPrefix(k, "style:") {
			continue
		}
		if c.Recall() < lofoGoalRecall || c.FPR() > lofoGoalFPR {
			t.Logf("%s: recall %.3f, FPR %.3f: short of the goal (recall ≥ %g, FPR ≤ %g)", k, c.Recall(), c.FPR(), lofoGoalRecall, lofoGoalFPR)
		}
		minR, maxF := lofoStyleRecall, lofoStyleFPR
		if k == "all" {
			minR, maxF = lofoFloorRecall, lofoFloorFPR
		}
		if c.Recall() < minR || c.FPR() > maxF {
			t.Errorf("%s: recall %.3f (floor %g), FPR %.3f (ceiling %g)", k, c.Recall(), minR, c.FPR(), maxF)
		}
	}
}

// TestConversationTurns replays train/conversations.jsonl call by call
// through a Session (topic carry and accumulator, as in the gateway) with
// a model trained without the conversations, and reports per-turn recall
// and false-positive rate by role.
func TestConversationTurns(t *testing.T) {
	e, meta, ex, fz := trainingSet(t)
	m := fz.Train(meta.Options, func(i int) bool { return ex[i].File != "conversations" })
	m.redact, m.accum = e.model.redact, e.model.accum
	ce := e.WithModel(m)
	conv, err := ReadExamples("testdata/train/conversations.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]*Tally{}
	var s *Session
	cur := ""
	for _, x := range conv {
		if s == nil || x.Conv != cur {
			s, cur = ce.NewSession(), x.Conv
		}
		dir := Outbound
		if x.Role == "caller" {
			dir = Inbound
		}
		d := s.Classify(x.Text, PartyUnknown, dir)
		count(by, x.Controlled, d.Action != Allow, "all", "role:"+x.Role)
	}
	t.Logf("conversations, per turn (model trained without them), threshold p ≥ %g", m.redact)
	logTallies(t, by)
	if c := by["all"]; c.Recall() < 0.80 || c.FPR() > 0.04 {
		t.Errorf("conversation turns: recall %.3f (floor 0.80), FPR %.3f (ceiling 0.04)", c.Recall(), c.FPR())
	}
}

// TestModelArtifactReproducible retrains the model from the committed
// training files with the committed options and compares it with the
// embedded artifact, so model.json is what the code and the data make.
func TestModelArtifactReproducible(t *testing.T) {
	e := engine(t)
	meta := trainingMetaOf(t, e.model)
	files := TrainingFiles("testdata")
	res, err := e.TrainModel(files, meta.Options)
	if err != nil {
		t.Fatal(err)
	}
	got, want := res.Model, e.model
	if math.Abs(got.redact-want.redact) > 1e-3 {
		t.Errorf("threshold %g, committed %g", got.redact, want.redact)
	}
	var gm trainingMeta
	if err := json.Unmarshal(got.meta, &gm); err != nil {
		t.Fatal(err)
	}
	if len(gm.Data) != len(meta.Data) {
		t.Fatalf("training files %v, committed %v", gm.Data, meta.Data)
	}
	for i := range gm.Data {
		if gm.Data[i] != meta.Data[i] {
			t.Errorf("training file %d: %+v, committed %+v (retrain: make classifier-model)", i, gm.Data[i], meta.Data[i])
		}
	}
	diff := 0.0
	for k, v := range want.named {
		diff = max(diff, math.Abs(got.named[k]-v))
	}
	for k, v := range got.named {
		diff = max(diff, math.Abs(want.named[k]-v))
	}
	for i := range want.hashed {
		diff = max(diff, math.Abs(float64(got.hashed[i]-want.hashed[i])))
	}
	if diff > 1e-4 {
		t.Errorf("retrained weights differ from model.json by up to %g (retrain: make classifier-model)", diff)
	}
}
