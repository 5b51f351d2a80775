package classifier

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files with the current decisions")

// TestGolden runs one subtest per file in testdata/golden. A file holds
// "party: …" and the text, a line of ten dashes, then the expected
// "action: …", "categories: …" (sorted), "redacted: …" when redacted, and
// "explanation:" with the decision's named contributions (feature, sign)
// largest first: the golden explanation. Regenerate after retraining with
// go test -run TestGolden -update, and read the diff.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/golden/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	e := engine(t)
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			in, want, ok := strings.Cut(string(b), "\n----------\n")
			if !ok {
				t.Fatal("no ---------- separator")
			}
			partyLine, text, _ := strings.Cut(in, "\n")
			party, err := ParseParty(strings.TrimPrefix(partyLine, "party: "))
			if err != nil {
				t.Fatal(err)
			}
			d := e.Classify(text, party, Outbound)
			got := goldenOf(d)
			if *update {
				if err := os.WriteFile(f, []byte(in+"\n----------\n"+got+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if got != strings.TrimSpace(want) {
				t.Errorf("got\n%s\nwant\n%s\ntrace:\n%s", got, strings.TrimSpace(want), strings.Join(e.WithTrace().Classify(text, party, Outbound).Trace, "\n"))
			}
		})
	}
}

func goldenOf(d Decision) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "action: %s\ncategories:", d.Action)
	for _, c := range d.Categories {
		sb.WriteString(" " + c)
	}
	if d.Redacted != "" {
		sb.WriteString("\nredacted: " + d.Redacted)
	}
	sb.WriteString("\nexplanation:")
	n := 0
	for _, c := range d.Explanation {
		if c.Text != "" || n == 4 {
			continue // n-grams are weights of the data, named features the design
		}
		sign := "+"
		if c.Logit < 0 {
			sign = "-"
		}
		sb.WriteString(" " + sign + c.Feature)
		n++
	}
	return sb.String()
}
