package classifier

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGolden runs one subtest per file in testdata/golden. A file holds
// "party: …" and the text, a line of ten dashes, then the expected
// "action: …", "categories: …" (space-separated, sorted) and optionally
// "redacted: …".
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
			got := "action: " + string(d.Action) + "\ncategories:"
			if len(d.Categories) > 0 {
				got += " " + strings.Join(d.Categories, " ")
			}
			if strings.Contains(want, "redacted: ") {
				got += "\nredacted: " + d.Redacted
			}
			if got != strings.TrimSpace(want) {
				t.Errorf("got\n%s\nwant\n%s\ntrace:\n%s", got, strings.TrimSpace(want), strings.Join(d.Trace, "\n"))
			}
		})
	}
}
