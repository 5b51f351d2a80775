package classifier

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"testing"
)

type labeled struct {
	ID, Label, Cat, Style, Text string
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
	for sc.Scan() {
		var r labeled
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, r)
	}
	return out
}

type tally struct{ tp, fn, fp, tn int }

func (c tally) recall() float64 { return float64(c.tp) / float64(max(1, c.tp+c.fn)) }
func (c tally) fpr() float64    { return float64(c.fp) / float64(max(1, c.fp+c.tn)) }

// TestDevSetMetrics is the acceptance bar: on the labeled development set,
// for an unknown party, recall on controlled texts ≥ 0.95 and false
// positives on benign texts ≤ 0.05, overall and for each style. For a
// verified U.S. person every text is allowed.
func TestDevSetMetrics(t *testing.T) {
	e, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	rows := loadSet(t, "testdata/dev.jsonl")
	by := map[string]*tally{"all": {}}
	for _, r := range rows {
		d := e.Classify(r.Text, PartyUnknown, Outbound)
		flagged := d.Action != Allow
		for _, k := range []string{"all", "style:" + r.Style, "cat:" + r.Cat} {
			if by[k] == nil {
				by[k] = &tally{}
			}
			c := by[k]
			switch {
			case r.Label == "controlled" && flagged:
				c.tp++
			case r.Label == "controlled":
				c.fn++
			case flagged:
				c.fp++
			default:
				c.tn++
			}
		}
		if (r.Label == "controlled") != flagged && testing.Verbose() {
			t.Logf("miss %s %s %s R=%.1f A=%.1f L=%.0f Q=%.1f D=%.0f %s | %.90s", r.ID, r.Label, r.Style, d.Score, d.A, d.L, d.Q, d.D, d.Action, r.Text)
		}
		if u := e.Classify(r.Text, PartyUSPerson, Outbound); u.Action != Allow {
			t.Errorf("%s: us-person got %s", r.ID, u.Action)
		}
	}
	keys := make([]string, 0, len(by))
	for k := range by {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	t.Logf("%-22s %8s %8s %5s %5s %5s %5s", "slice", "recall", "FPR", "TP", "FN", "FP", "TN")
	for _, k := range keys {
		c := by[k]
		t.Logf("%-22s %8.3f %8.3f %5d %5d %5d %5d", k, c.recall(), c.fpr(), c.tp, c.fn, c.fp, c.tn)
	}
	for _, k := range []string{"all", "style:asr", "style:llm", "style:doc"} {
		c := by[k]
		if c.recall() < 0.95 {
			t.Errorf("%s: recall %.3f < 0.95", k, c.recall())
		}
		if c.fpr() > 0.05 {
			t.Errorf("%s: false-positive rate %.3f > 0.05", k, c.fpr())
		}
	}
	_ = fmt.Sprint()
}

// TestExtraSetMetrics: texts written for this project, outside the
// development set, covering categories and phrasings it lacks.
func TestExtraSetMetrics(t *testing.T) {
	e, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	var c tally
	for _, r := range loadSet(t, "testdata/extra.jsonl") {
		d := e.Classify(r.Text, PartyUnknown, Outbound)
		flagged := d.Action != Allow
		switch {
		case r.Label == "controlled" && flagged:
			c.tp++
		case r.Label == "controlled":
			c.fn++
			t.Errorf("%s missed (R=%.1f): %s", r.ID, d.Score, r.Text)
		case flagged:
			c.fp++
			t.Errorf("%s flagged (%s, R=%.1f): %s", r.ID, d.Action, d.Score, r.Text)
		default:
			c.tn++
		}
	}
	t.Logf("extra set: recall %.3f, false-positive rate %.3f (%d/%d/%d/%d)", c.recall(), c.fpr(), c.tp, c.fn, c.fp, c.tn)
}
