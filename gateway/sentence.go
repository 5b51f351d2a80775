package gateway

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// sentenceSplitter cuts a stream of LLM text deltas into sentences, so each
// can be classified and sent to TTS while the model is still writing. A
// sentence ends at . ! ? (or … and a newline) followed by white space, except
// after a known abbreviation, an initial or inside a number. A sentence that
// grows past maxChars is cut at the last clause mark (, ; : —) or space, so
// long model answers still start playing early.
type sentenceSplitter struct {
	buf      strings.Builder
	maxChars int
	// firstClauseWords, when > 0, lets the reply's first piece end at a
	// clause mark (, ; : —) followed by white space once it holds that
	// many words, so the first audio does not wait for a whole sentence.
	firstClauseWords int
	emitted          int
}

// defaultMaxSentenceChars bounds how much text waits before TTS.
const defaultMaxSentenceChars = 220

func newSentenceSplitter(maxChars int) *sentenceSplitter {
	if maxChars <= 0 {
		maxChars = defaultMaxSentenceChars
	}
	return &sentenceSplitter{maxChars: maxChars}
}

// abbreviations that end with a period but do not end a sentence.
var abbreviations = map[string]bool{
	"mr": true, "mrs": true, "ms": true, "dr": true, "prof": true, "sr": true, "jr": true, "st": true,
	"vs": true, "etc": true, "e.g": true, "i.e": true, "approx": true, "no": true, "fig": true,
	"inc": true, "ltd": true, "co": true, "corp": true, "dept": true, "est": true, "u.s": true,
	"a.m": true, "p.m": true, "min": true, "max": true, "sec": true, "ref": true, "vol": true,
}

// push adds a delta and returns the sentences it completed.
func (s *sentenceSplitter) push(delta string) []string {
	s.buf.WriteString(delta)
	var out []string
	for {
		text := s.buf.String()
		cut := findSentenceEnd(text)
		if s.emitted == 0 && s.firstClauseWords > 0 {
			if c := findFirstClause(text, s.firstClauseWords); c > 0 && (cut < 0 || c < cut) {
				cut = c
			}
		}
		if cut < 0 && utf8.RuneCountInString(text) > s.maxChars {
			cut = findClauseCut(text, s.maxChars)
		}
		if cut < 0 {
			return out
		}
		if sent := strings.TrimSpace(text[:cut]); sent != "" {
			out = append(out, sent)
			s.emitted++
		}
		rest := text[cut:]
		s.buf.Reset()
		s.buf.WriteString(rest)
	}
}

// flush returns whatever text is left once the model has finished.
func (s *sentenceSplitter) flush() string {
	t := strings.TrimSpace(s.buf.String())
	s.buf.Reset()
	return t
}

// findSentenceEnd returns the byte index just past a sentence terminator
// that is followed by white space, or -1. A terminator at the very end of
// the text is not yet an end: the next delta may continue it ("3." "5").
func findSentenceEnd(text string) int {
	for i, r := range text {
		switch r {
		case '\n':
			if strings.TrimSpace(text[:i]) != "" {
				return i + 1
			}
		case '.', '!', '?', '…', '。':
			j := i + utf8.RuneLen(r)
			// Swallow closing quotes and brackets, and repeated marks.
			for j < len(text) {
				c, w := utf8.DecodeRuneInString(text[j:])
				if strings.ContainsRune(`"')]}»”’.!?`, c) {
					j += w
					continue
				}
				break
			}
			if j >= len(text) {
				return -1
			}
			next, _ := utf8.DecodeRuneInString(text[j:])
			if !unicode.IsSpace(next) {
				continue
			}
			if r == '.' && isAbbreviationBefore(text[:i]) {
				continue
			}
			return j
		}
	}
	return -1
}

// isAbbreviationBefore reports whether the word ending at the end of s is a
// known abbreviation or a single-letter initial.
func isAbbreviationBefore(s string) bool {
	start := strings.LastIndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || r == '(' })
	word := strings.ToLower(s[start+1:])
	if word == "" {
		return false
	}
	if utf8.RuneCountInString(word) == 1 {
		r, _ := utf8.DecodeRuneInString(word)
		return unicode.IsLetter(r)
	}
	return abbreviations[word]
}

// findClauseCut picks where to cut an over-long sentence: after the last
// clause mark before maxChars runes, else after the last space, else at
// maxChars.
func findClauseCut(text string, maxChars int) int {
	limit := len(text)
	n := 0
	for i := range text {
		if n == maxChars {
			limit = i
			break
		}
		n++
	}
	head := text[:limit]
	if i := strings.LastIndexAny(head, ",;:—"); i > 0 {
		_, w := utf8.DecodeRuneInString(head[i:])
		return i + w
	}
	if i := strings.LastIndexFunc(head, unicode.IsSpace); i > 0 {
		_, w := utf8.DecodeRuneInString(head[i:])
		return i + w
	}
	return limit
}

// findFirstClause returns the index just past the first clause mark that
// is followed by white space and has at least minWords words before it,
// or -1.
func findFirstClause(text string, minWords int) int {
	for i, r := range text {
		switch r {
		case ',', ';', ':', '—':
			j := i + utf8.RuneLen(r)
			if j >= len(text) {
				return -1 // the next delta may continue it ("3," "000")
			}
			next, _ := utf8.DecodeRuneInString(text[j:])
			if unicode.IsSpace(next) && len(strings.Fields(text[:i])) >= minWords {
				return j
			}
		}
	}
	return -1
}
