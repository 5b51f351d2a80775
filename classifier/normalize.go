package classifier

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// token is one word or number of the normalised text, with its byte span
// in the original text.
type token struct {
	text       string  // normalised: NFKC, folded, skeleton, leetspeak undone
	start, end int     // byte offsets into the original text
	num        float64 // value when isNum
	isNum      bool
	rng        bool // a range written "8-12": num is the upper bound
	sentence   int  // index of the sentence the token belongs to
	afterTimes bool // a "×" or "*" stands between this token and the last
	// obf is empty for plain text, otherwise the transform undone to read
	// the token: obfLeet, obfHomoglyph, obfInvisible, obfSpaced,
	// obfDotted, obfNATO, obfLetters, obfReversed, obfBase64, obfHex,
	// obfROT13 or obfArith.
	obf string
}

// The transforms recorded in token.obf.
const (
	obfLeet      = "leet"      // "s33k3r"
	obfHomoglyph = "homoglyph" // look-alike or compatibility letters: "ѕeeker", "ＴＶＣ"
	obfInvisible = "invisible" // zero-width, bidi controls or soft hyphens inside a word
	obfSpaced    = "spaced"    // "s e e k e r"
	obfDotted    = "dotted"    // "s.e.e.k.e.r", "s-e-e-k-e-r", "s_e_e_k_e_r", "S·E·E·K·E·R"
	obfNATO      = "nato"      // "sierra echo echo kilo echo romeo", "kilo seven seven four"
	obfLetters   = "letters"   // letter names: "tee vee see"
	obfReversed  = "reversed"  // "rekees daeh"
	obfBase64    = "base64"
	obfHex       = "hex"
	obfROT13     = "rot13"
	obfArith     = "arith" // "two times twenty one"
)

//go:generate go run ./internal/confusablesgen -out confusables_table.go

// invisible reports zero-width and bidirectional control characters and
// the soft hyphen, which are removed before matching.
func invisible(r rune) bool {
	switch {
	case r >= 0x200B && r <= 0x200F, r >= 0x202A && r <= 0x202E, r >= 0x2060 && r <= 0x2069,
		r == 0xFEFF, r == 0x00AD, r == 0x180E, r == 0x034F:
		return true
	}
	return false
}

// leet maps leetspeak digits and symbols back to letters; it is applied to
// alphabetic-dominant tokens only, so part numbers keep their digits.
func leet(r rune) (rune, bool) {
	switch r {
	case '0':
		return 'o', true
	case '1':
		return 'i', true
	case '3':
		return 'e', true
	case '4':
		return 'a', true
	case '5':
		return 's', true
	case '7':
		return 't', true
	case '@':
		return 'a', true
	case '$':
		return 's', true
	}
	return r, false
}

// superscript returns the ASCII form of a superscript digit or sign.
func superscript(r rune) (byte, bool) {
	switch r {
	case '⁰':
		return '0', true
	case '¹':
		return '1', true
	case '²':
		return '2', true
	case '³':
		return '3', true
	case '⁻':
		return '-', true
	case '⁺':
		return '+', true
	}
	if r >= '⁴' && r <= '⁹' {
		return byte('4' + r - '⁴'), true
	}
	return 0, false
}

func isWordRune(r rune) bool {
	if r < utf8.RuneSelf {
		return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '%' || r == '@' || r == '$'
	}
	if unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsMark(r) {
		return true
	}
	if _, ok := superscript(r); ok {
		return true
	}
	switch r {
	case '°', '%', '@', '$', '±', '√', '℃', '℉', 'Ω', 'µ':
		return true
	}
	return false
}

// joiner reports punctuation kept inside a word when a word rune follows
// ("in-lb", "n·m", "cui//sp-expt", "0.31", "1,050", "°/√h", "2^16").
func joiner(r rune) bool {
	return strings.ContainsRune(".,-/'’·:^×‑", r)
}

// sentenceEnd reports punctuation that ends a sentence or clause for
// windowing.
func sentenceEnd(r rune) bool {
	return r == '.' || r == '!' || r == '?' || r == ';' || r == '\n' || r == '。'
}

// tokenize splits text into normalised tokens: NFKC, case folding,
// invisible characters dropped, confusable letters mapped to their Latin
// skeleton, leetspeak undone, spaced-out letters joined, spelled numbers
// and scientific notation turned into values. Every token keeps its byte
// span in the original text.
//
// Obfuscations are undone as well (decode.go, spelled.go): base64 and hex
// runs and ROT13 or reversed text are decoded and tokenised in place of
// the run, every decoded token spanning the whole run; NATO alphabet and
// letter-name spellings are joined; spoken arithmetic is worked out. Each
// such token records the transform in obf.
func tokenize(text string) []token {
	return tokenizeDepth(text, 0)
}

// maxDecodeDepth bounds decoding inside decoded text.
const maxDecodeDepth = 2

func tokenizeDepth(text string, depth int) []token {
	toks := make([]token, 0, len(text)/5+1)
	sentence := 0
	var sb strings.Builder
	i := 0
	prev := ' ' // the rune before i, ignoring invisibles
	times := false
	scanned := 0 // text[:scanned] was tried as an encoded run
	for i < len(text) {
		r, w := utf8.DecodeRuneInString(text[i:])
		if invisible(r) {
			i += w
			continue
		}
		if depth < maxDecodeDepth && (r == '\\' || isWordRune(r)) && !isWordRune(prev) && i >= scanned {
			inner, end, kind := decodeAt(text, i, depth)
			if kind == "" {
				// Do not scan the same run again from each of its words.
				scanned = b64RunEnd(text, i)
			} else {
				last := 0
				for _, tk := range inner {
					tk.start, tk.end, tk.obf = i, end, kind
					last = tk.sentence
					tk.sentence += sentence
					toks = append(toks, tk)
				}
				sentence += last
				i, prev, times = end, ' ', false
				continue
			}
		}
		signed := (r == '-' || r == '−' || r == '+') && startsDigit(text[i+w:]) && !isWordRune(prev) && prev != '.' && prev != ','
		if !signed && !isWordRune(r) {
			if sentenceEnd(r) && !(r == '.' && startsDigit(text[i+w:])) {
				sentence++
			}
			if r == '×' || r == '*' {
				times = true
			}
			prev = r
			i += w
			continue
		}
		start := i
		hidden := false
		got := 0 // bytes of the word so far, invisibles left out
		// The word is text[start:i] unless invisibles sit inside it.
		word := func() string {
			if !hidden {
				return text[start:i]
			}
			sb.Reset()
			for _, r := range text[start:i] {
				if !invisible(r) {
					sb.WriteRune(r)
				}
			}
			return sb.String()
		}
		if signed {
			got += w
			i += w
		}
		for i < len(text) {
			r, w := utf8.DecodeRuneInString(text[i:])
			if invisible(r) {
				hidden = true
				i += w
				continue
			}
			if isWordRune(r) {
				got += w
				i += w
				continue
			}
			if joiner(r) && got > 0 && joinsHere(text, i, w, r, word()) {
				got += w
				i += w
				continue
			}
			break
		}
		prev = 'a'
		if tk, ok := makeToken(word(), start, i); ok {
			tk.sentence = sentence
			tk.afterTimes = times
			if hidden && tk.obf == "" && hiddenInside(text[start:i]) {
				tk.obf = obfInvisible
			}
			toks = append(toks, tk)
		}
		times = false
	}
	toks = collapseArith(text, collapseNumbers(collapseLetters(text, collapseSpelled(toks))))
	// Reversed and ROT13 runs are looked for last, in the tokens as they
	// come out, so that normalised text is judged the same way again.
	if depth < maxDecodeDepth {
		if n := len(toks); n > 0 {
			first := toks[0]
			toks = rewriteRuns(text, toks, depth)
			if len(toks) != n || toks[0] != first || anyDecoded(toks) {
				// Decoded words may join their neighbours.
				toks = collapseArith(text, collapseNumbers(collapseLetters(text, collapseSpelled(toks))))
			}
		}
	}
	return toks
}

// anyDecoded reports a token read from reversed or ROT13 text.
func anyDecoded(toks []token) bool {
	for _, t := range toks {
		if t.obf == obfReversed || t.obf == obfROT13 {
			return true
		}
	}
	return false
}

// hiddenInside reports an invisible character between two visible ones.
func hiddenInside(s string) bool {
	seen, hid := false, false
	for _, r := range s {
		switch {
		case invisible(r):
			hid = seen
		case hid:
			return true
		default:
			seen = true
		}
	}
	return false
}

func startsDigit(s string) bool {
	for len(s) > 0 {
		r, w := utf8.DecodeRuneInString(s)
		if !invisible(r) {
			return r >= '0' && r <= '9' || r == '.' && len(s) > 1 && s[1] >= '0' && s[1] <= '9'
		}
		s = s[w:]
	}
	return false
}

// joinsHere decides whether the joiner r at text[i] stays inside the word
// built so far (sofar): a word rune must follow; commas, colons, carets
// and times signs join digits only; a dot joins digits, or letters to
// letters ("u.s.").
func joinsHere(text string, i, w int, r rune, sofar string) bool {
	j := i + w
	for j < len(text) {
		r2, w2 := utf8.DecodeRuneInString(text[j:])
		if !invisible(r2) {
			break
		}
		j += w2
	}
	if j >= len(text) {
		return false
	}
	next, nw := utf8.DecodeRuneInString(text[j:])
	last, _ := utf8.DecodeLastRuneInString(sofar)
	if r == '^' && (next == '-' || next == '+') && unicode.IsDigit(last) {
		return startsDigit(text[j+nw:]) // "10^-7"
	}
	if !isWordRune(next) {
		return false
	}
	switch r {
	case ',', ':', '×', '^':
		return unicode.IsDigit(last) && unicode.IsDigit(next)
	case '.':
		return unicode.IsDigit(next) || unicode.IsLetter(next) && unicode.IsLetter(last)
	}
	return true
}

// makeToken normalises one raw word. It returns false for a word that
// normalises to nothing.
func makeToken(raw string, start, end int) (token, bool) {
	// Superscripts after a digit are an exponent ("10⁻⁷" → "10^-7"); NFKC
	// would otherwise flatten them into the mantissa.
	s := raw
	if !isASCII(s) {
		s = norm.NFKC.String(exponents(s))
		s = unicodeFolds.Replace(s)
	}
	s = trimWord(s)
	if s == "" {
		return token{}, false
	}
	obf := ""
	if j, ok := joinSeparated(s); ok {
		s, obf = j, obfDotted
	}
	letters, digits := 0, 0
	ascii := isASCII(s)
	mapped := false
	var text string
	if ascii && !hasASCIIUpper(s) {
		// The common case: already folded; count without copying.
		for i := 0; i < len(s); i++ {
			switch c := s[i]; {
			case c >= 'a' && c <= 'z':
				letters++
			case c >= '0' && c <= '9':
				digits++
			}
		}
		text = s
	} else {
		text, letters, digits, mapped = foldToken(s, ascii)
	}
	t := token{text: text, start: start, end: end, obf: obf}
	if obf == "" && !isASCII(raw) && (mapped || s != raw) && isASCII(t.text) && hasNonASCIILetter(raw) {
		t.obf = obfHomoglyph
	}
	if letters >= 2 && digits+strings.Count(t.text, "@")+strings.Count(t.text, "$") >= 1 && letters >= digits && !strings.ContainsAny(t.text, "^,:×") && !looksLikeIdentifier(t.text) && leetDigits(t.text) {
		var lb strings.Builder
		for _, r := range t.text {
			r, _ = leet(r)
			lb.WriteRune(r)
		}
		// Keep the mapping only when it reads back as the same one word.
		if l := trimWord(strings.TrimLeft(lb.String(), "+-")); l != "" && oneWord(l) {
			if l != t.text && t.obf == "" {
				t.obf = obfLeet
			}
			t.text = l
		}
	}
	t.num, t.rng, t.isNum = parseNumber(t.text)
	return t, true
}

// hasNonASCIILetter reports a letter of another script than Latin, or a
// compatibility form of a letter (fullwidth, mathematical): what a
// look-alike spelling uses. Accented Latin letters do not count.
func hasNonASCIILetter(s string) bool {
	for _, r := range s {
		if r >= utf8.RuneSelf && unicode.IsLetter(r) {
			if !unicode.Is(unicode.Latin, r) {
				return true
			}
			if c := string(r); norm.NFKC.String(c) != c {
				return true
			}
		}
	}
	return false
}

// joinSeparated joins a word of three or more single letters or digits
// separated by dots, hyphens or middle dots ("s.e.e.k.e.r", "T-V-C",
// "S·E·E·K·E·R", "P-O-4-4-1-9"), at least two of them letters. Two
// letters ("u.s", "e.g"), digit groups ("1-2-3") and units of three
// with middle dots ("n·m·s") stay as they are.
func joinSeparated(s string) (string, bool) {
	if len(s) < 5 {
		return "", false
	}
	_, w := utf8.DecodeRuneInString(s)
	if r, _ := utf8.DecodeRuneInString(s[w:]); r != '.' && r != '-' && r != '·' && r != '‑' && r != '_' {
		return "", false
	}
	var sb strings.Builder
	n, letters := 0, 0
	want := true // a character, not a separator, comes next
	middot := strings.ContainsRune(s, '·')
	for _, r := range s {
		switch {
		case want && (unicode.IsLetter(r) || r >= '0' && r <= '9'):
			if unicode.IsLetter(r) {
				letters++
			}
			n++
			sb.WriteRune(r)
			want = false
		case !want && (r == '.' || r == '-' || r == '·' || r == '‑' || r == '_'):
			want = true
		default:
			return "", false
		}
	}
	if want || n < 3 || letters < 2 || middot && n < 4 {
		return "", false // "n·m·s" is a unit
	}
	return sb.String(), true
}

// leetDigits reports a word whose digits all stand for letters: a digit
// with no letter look ("n627ab", "kx7p9b") makes it an identifier, and an
// ordinal ("15th", "21st") stays a number.
func leetDigits(s string) bool {
	if ordinal(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= '0' && c <= '9' {
			if _, ok := leet(rune(c)); !ok {
				return false
			}
		}
	}
	return true
}

// ordinal reports "1st", "22nd", "3rd", "15th".
func ordinal(s string) bool {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return false
	}
	d := s[i-1]
	if i > 1 && s[i-2] == '1' {
		d = '0' // 11th, 12th, 13th
	}
	switch s[i:] {
	case "st":
		return d == '1'
	case "nd":
		return d == '2'
	case "rd":
		return d == '3'
	case "th":
		return d != '1' && d != '2' && d != '3'
	}
	return false
}

// oneWord reports whether the tokenizer reads s as one word.
func oneWord(s string) bool {
	i := 0
	for i < len(s) {
		r, w := utf8.DecodeRuneInString(s[i:])
		switch {
		case isWordRune(r), i == 0 && (r == '-' || r == '+') && startsDigit(s[w:]):
		case i > 0 && joiner(r) && joinsHere(s, i, w, r, s[:i]):
		default:
			return false
		}
		i += w
	}
	return s != ""
}

// trimWord drops trailing joiners and a possessive "'s".
func trimWord(s string) string {
	if n := len(s); n > 0 && asciiAlnum(s[0]) && asciiAlnum(s[n-1]) && !(n >= 2 && s[n-1] == 's' && s[n-2] == '\'') {
		return s // the common case: nothing to trim
	}
	for {
		t := strings.TrimSuffix(strings.TrimRight(s, ".,-/'·:^×‑"), "'s")
		t = strings.TrimLeft(t, ".,/'·:^×‑")
		if len(t) > 0 && (t[0] == '-' || t[0] == '+') && !startsDigit(t[1:]) {
			t = t[1:]
		}
		if t == s {
			return s
		}
		s = t
	}
}

// unicodeFolds writes the signs and apostrophes NFKC keeps as their ASCII
// forms.
var unicodeFolds = strings.NewReplacer("\u2212", "-", "\u2044", "/", "\u2011", "-", "’", "'", "℃", "°c", "℉", "°f")

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// exponents rewrites superscript digits that follow a digit as "^digits".
func exponents(s string) string {
	has := false
	for _, r := range s {
		if _, ok := superscript(r); ok {
			has = true
			break
		}
	}
	if !has {
		return s
	}
	var sb strings.Builder
	var last rune
	inExp := false
	for i, r := range s {
		c, ok := superscript(r)
		switch {
		case ok && inExp:
			sb.WriteByte(c)
		case ok && last >= '0' && last <= '9' && superscriptDigitAhead(s[i:]):
			sb.WriteByte('^')
			sb.WriteByte(c)
			inExp = true
		default:
			inExp = false
			sb.WriteRune(r)
		}
		last = r
	}
	return sb.String()
}

// superscriptDigitAhead reports a run of superscripts that holds a digit.
func superscriptDigitAhead(s string) bool {
	for _, r := range s {
		c, ok := superscript(r)
		if !ok {
			return false
		}
		if c >= '0' && c <= '9' {
			return true
		}
	}
	return false
}

// looksLikeIdentifier keeps part numbers and model codes ("rb-2210-04",
// "5a002", "m12") away from the leetspeak mapping.
func looksLikeIdentifier(s string) bool {
	if strings.ContainsAny(s, "-/") {
		return true
	}
	i := 0
	for i < len(s) && s[i] >= 'a' && s[i] <= 'z' {
		i++
	}
	j := i
	for j < len(s) && s[j] >= '0' && s[j] <= '9' {
		j++
	}
	return j == len(s) && i > 0 && j > i || eccnShape(s)
}

// eccnShape reports an ECCN such as "5a002" or "9e610".
func eccnShape(s string) bool {
	return len(s) == 5 && s[0] >= '0' && s[0] <= '9' && s[1] >= 'a' && s[1] <= 'e' && allDigits(s[2:])
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// parseNumber reads "1,050", "0.31", "-40", "±0.1", "1e-7", "3x10^5",
// "2^16" and ranges "8-12" (the upper bound).
func parseNumber(s string) (v float64, rng, ok bool) {
	s = strings.TrimPrefix(s, "±")
	if s == "" || eccnShape(s) {
		return 0, false, false
	}
	c := s[0]
	if c == '-' || c == '+' {
		if len(s) < 2 {
			return 0, false, false
		}
		c = s[1]
	}
	if (c < '0' || c > '9') && c != '.' {
		return 0, false, false
	}
	s = strings.ReplaceAll(s, ",", "")
	if f, err := strconv.ParseFloat(s, 64); err == nil && !strings.ContainsAny(s, "xXpPnN_") {
		return f, false, true
	}
	// Mantissa × 10^exponent.
	if m, e, found := strings.Cut(s, "x10^"); found {
		if f, err := strconv.ParseFloat(m+"e"+e, 64); err == nil && allSignedDigits(e) && !strings.ContainsAny(m, "eE") {
			return f, false, true
		}
	}
	if b, e, found := strings.Cut(s, "^"); found && allDigits(b) && allSignedDigits(e) {
		bv, _ := strconv.ParseFloat(b, 64)
		ev, _ := strconv.Atoi(e)
		if ev > -300 && ev < 300 {
			if b == "10" {
				f, _ := strconv.ParseFloat("1e"+e, 64)
				return f, false, true
			}
			return pow(bv, ev), false, true
		}
	}
	// A range "8-12": both ends plain numbers, the first not longer than
	// the second (drawing numbers like "5520-331" stay identifiers).
	if lo, hi, found := strings.Cut(s, "-"); found && lo != "" && len(lo) <= len(hi) {
		lv, err1 := strconv.ParseFloat(lo, 64)
		hv, err2 := strconv.ParseFloat(hi, 64)
		if err1 == nil && err2 == nil && lv <= hv {
			return hv, true, true
		}
	}
	return 0, false, false
}

func allSignedDigits(s string) bool {
	s = strings.TrimLeft(s, "+-")
	return allDigits(s)
}

func pow(b float64, e int) float64 {
	r := 1.0
	neg := e < 0
	if neg {
		e = -e
	}
	for range e {
		r *= b
	}
	if neg {
		return 1 / r
	}
	return r
}

// collapseLetters joins runs of two or more single-letter tokens, as ASR
// spells acronyms and evasions space letters out ("m m i c", "s e e k e r").
func collapseLetters(text string, toks []token) []token {
	out := toks[:0]
	for i := 0; i < len(toks); {
		j := i
		for j < len(toks) && singleLetter(toks[j].text) && (j == i || toks[j].sentence == toks[i].sentence) {
			j++
		}
		if j-i >= 2 {
			var sb strings.Builder
			obf := obfSpaced
			for k, t := range toks[i:j] {
				sb.WriteString(t.text)
				if k > 0 && toks[i+k-1].end <= t.start && strings.TrimSpace(text[toks[i+k-1].end:t.start]) != "" {
					obf = obfDotted
				}
			}
			for _, t := range toks[i:j] {
				if t.obf != "" && t.obf != obfHomoglyph && t.obf != obfInvisible {
					obf = t.obf // decoded letters keep their decoding
				}
			}
			out = append(out, token{text: sb.String(), start: toks[i].start, end: toks[j-1].end, sentence: toks[i].sentence, obf: obf})
			i = j
			continue
		}
		out = append(out, toks[i])
		i++
	}
	return out
}

func singleLetter(s string) bool {
	r, n := utf8.DecodeRuneInString(s)
	return n == len(s) && n > 0 && unicode.IsLetter(r)
}

// Normalize returns the normalised form of text that the rule pack is
// matched against: tokens separated by single spaces, sentences by " . ".
// It is idempotent: when the normalised text would normalise further (a
// decoded or joined word that meets its neighbours anew, as in mixes of
// encodings and spellings), it is normalised again, up to a few rounds.
func Normalize(text string) string {
	out := normalizeOnce(text)
	for range 3 {
		next := normalizeOnce(out)
		if next == out {
			break
		}
		out = next
	}
	return out
}

func normalizeOnce(text string) string {
	toks := tokenize(text)
	var sb strings.Builder
	for i, t := range toks {
		switch {
		case i > 0 && t.sentence != toks[i-1].sentence:
			sb.WriteString(" . ")
		case i > 0:
			sb.WriteByte(' ')
		}
		sb.WriteString(t.text)
	}
	return sb.String()
}

// foldToken case-folds s and maps confusable letters to their skeleton,
// counting letters and digits; mapped reports a confusable mapped.
func foldToken(s string, ascii bool) (text string, letters, digits int, mapped bool) {
	var sb strings.Builder
	sb.Grow(len(s))
	for _, r := range s {
		if !ascii {
			if c, ok := confusableTable[r]; ok {
				mapped = mapped || c != r
				r = c
			}
			r = unicode.ToLower(r)
		} else if r >= 'A' && r <= 'Z' {
			r += 'a' - 'A'
		}
		switch {
		case unicode.IsLetter(r):
			letters++
		case r >= '0' && r <= '9':
			digits++
		}
		sb.WriteRune(r)
	}
	return sb.String(), letters, digits, mapped
}

// hasASCIIUpper reports an ASCII upper-case letter in s.
func hasASCIIUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 'A' && s[i] <= 'Z' {
			return true
		}
	}
	return false
}

// asciiAlnum reports an ASCII letter or digit.
func asciiAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
