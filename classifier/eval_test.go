package classifier

import (
	"bufio"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"sort"
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

type tally struct{ tp, fn, fp, tn int }

func (c tally) recall() float64 { return float64(c.tp) / float64(max(1, c.tp+c.fn)) }
func (c tally) fpr() float64    { return float64(c.fp) / float64(max(1, c.fp+c.tn)) }

// evaluate classifies a labeled set for an unknown party, logs a table
// per style and per category, and checks the acceptance bar: recall on
// controlled texts ≥ 0.95 and false positives on benign texts ≤ 0.05,
// overall and for each style. For a verified U.S. person every text is
// allowed.
func evaluate(t *testing.T, path string) {
	e := engine(t)
	rows := loadSet(t, path)
	by := map[string]*tally{"all": {}}
	for _, r := range rows {
		d := e.Classify(r.Text, PartyUnknown, Inbound)
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
		if (r.Label == "controlled") != flagged {
			t.Logf("miss %s %s %s %s p=%.3f | %.100s", r.ID, r.Label, r.Style, d.Action, d.Score, r.Text)
		}
		if u := e.Classify(r.Text, PartyUSPerson, Inbound); u.Action != Allow {
			t.Errorf("%s: us-person got %s", r.ID, u.Action)
		}
	}
	keys := make([]string, 0, len(by))
	for k := range by {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	t.Logf("%s (%d texts, party unknown)", path, len(rows))
	t.Logf("%-22s %8s %8s %5s %5s %5s %5s", "slice", "recall", "FPR", "TP", "FN", "FP", "TN")
	for _, k := range keys {
		c := by[k]
		t.Logf("%-22s %8.3f %8.3f %5d %5d %5d %5d", k, c.recall(), c.fpr(), c.tp, c.fn, c.fp, c.tn)
	}
	for _, k := range []string{"all", "style:asr", "style:llm", "style:doc"} {
		c := by[k]
		if c == nil {
			t.Errorf("%s: no texts", k)
			continue
		}
		if c.recall() < 0.95 {
			t.Errorf("%s: recall %.3f < 0.95", k, c.recall())
		}
		if c.fpr() > 0.05 {
			t.Errorf("%s: false-positive rate %.3f > 0.05", k, c.fpr())
		}
	}
}

// TestDevSetMetrics is the acceptance bar on the labeled development set.
func TestDevSetMetrics(t *testing.T) { evaluate(t, devSetPath(t)) }

// TestExtraSetMetrics holds the classifier to the same bar on texts written
// for this project outside the development set: every USML category and
// the listed ECCNs, hard negatives, spelled numbers and evasions
// (leetspeak, zero-width characters, spaced letters).
func TestExtraSetMetrics(t *testing.T) { evaluate(t, "testdata/extra.jsonl") }
