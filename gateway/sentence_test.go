package gateway

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func splitAll(maxChars int, deltas ...string) []string {
	sp := newSentenceSplitter(maxChars)
	var out []string
	for _, d := range deltas {
		out = append(out, sp.push(d)...)
	}
	if rest := sp.flush(); rest != "" {
		out = append(out, rest)
	}
	return out
}

func TestSentenceSplitter(t *testing.T) {
	cases := []struct {
		name   string
		deltas []string
		want   []string
	}{
		{"two sentences", []string{"Hello there. ", "How can I help?"}, []string{"Hello there.", "How can I help?"}},
		{"token by token", strings.SplitAfter("Sure! Your order ships today. Anything else?", ""), []string{"Sure!", "Your order ships today.", "Anything else?"}},
		{"decimal across deltas", []string{"The price is 3.", "5 dollars. Thanks."}, []string{"The price is 3.5 dollars.", "Thanks."}},
		{"abbreviation", []string{"Ask Dr. Smith about it, e.g. tomorrow. Bye."}, []string{"Ask Dr. Smith about it, e.g. tomorrow.", "Bye."}},
		{"initial", []string{"Talk to J. Doe in HR. He knows."}, []string{"Talk to J. Doe in HR.", "He knows."}},
		{"quotes after period", []string{`He said "done." Then left.`}, []string{`He said "done."`, "Then left."}},
		{"newline", []string{"First line\nSecond line"}, []string{"First line", "Second line"}},
		{"ellipsis", []string{"Well… let me check. Done."}, []string{"Well…", "let me check.", "Done."}},
		{"no terminator", []string{"no punctuation at all"}, []string{"no punctuation at all"}},
		{"empty", nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := splitAll(0, c.deltas...)
			if strings.Join(got, "|") != strings.Join(c.want, "|") {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestSentenceSplitterCutsLongClauses(t *testing.T) {
	long := strings.Repeat("word ", 30) + "then a clause, " + strings.Repeat("more ", 30) + "end."
	got := splitAll(60, long)
	if len(got) < 3 {
		t.Fatalf("got %d pieces, want the long sentence cut: %q", len(got), got)
	}
	for _, s := range got {
		if n := utf8.RuneCountInString(s); n > 60 {
			t.Errorf("piece of %d runes exceeds 60: %q", n, s)
		}
	}
	if strings.Join(strings.Fields(strings.Join(got, " ")), " ") != strings.Join(strings.Fields(long), " ") {
		t.Errorf("cutting lost or changed text")
	}
}

// FuzzSentenceSplitter checks that splitting never loses, reorders or
// invents text, and never panics, whatever the deltas.
func FuzzSentenceSplitter(f *testing.F) {
	f.Add("Hello. World! 3.5 is a number… ok?", 7, 40)
	f.Add("\n\n.\"!?)", 1, 20)
	f.Add("é… 。ok", 2, 20)
	f.Fuzz(func(t *testing.T, text string, step, maxChars int) {
		if step <= 0 || step > 64 || maxChars < 20 || maxChars > 500 {
			return
		}
		var deltas []string
		for i := 0; i < len(text); i += step {
			deltas = append(deltas, text[i:min(i+step, len(text))])
		}
		got := splitAll(maxChars, deltas...)
		joined := strings.Join(strings.Fields(strings.Join(got, " ")), "")
		want := strings.Join(strings.Fields(text), "")
		if joined != want {
			t.Fatalf("text changed:\n got %q\nwant %q", joined, want)
		}
		for _, s := range got {
			if strings.TrimSpace(s) == "" {
				t.Fatalf("empty sentence in %q", got)
			}
		}
	})
}

// TestFirstClause: the reply's first piece may end at a clause mark once it
// has enough words; later pieces are whole sentences; numbers with commas
// and marks at the end of a delta are not cut.
func TestFirstClause(t *testing.T) {
	for _, c := range []struct {
		deltas []string
		words  int
		want   []string
	}{
		{[]string{"You said: What are your ", "opening hours. How else, then, can I help? "}, 2, []string{"You said:", "What are your opening hours.", "How else, then, can I help?"}},
		{[]string{"Sure, here is the procedure. "}, 2, []string{"Sure, here is the procedure."}},
		{[]string{"It costs 3,", "000 dollars, roughly. "}, 2, []string{"It costs 3,000 dollars,", "roughly."}},
		{[]string{"You said: hello. "}, -1, []string{"You said: hello."}},
		{[]string{"Well; ", "fine. "}, 1, []string{"Well;", "fine."}},
	} {
		s := newSentenceSplitter(0)
		s.firstClauseWords = c.words
		var got []string
		for _, d := range c.deltas {
			got = append(got, s.push(d)...)
		}
		if rest := s.flush(); rest != "" {
			got = append(got, rest)
		}
		if strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("%q (min %d words): got %q, want %q", c.deltas, c.words, got, c.want)
		}
	}
}
