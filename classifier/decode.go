package classifier

import (
	"encoding/base64"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Encoded runs: base64, hex and ROT13 or reversed text are decoded and
// tokenised in place of the run. A decoder only runs when the text looks
// encoded (a long unbroken run of its alphabet, or words the common-word
// list does not know), so ordinary text pays a scan and a few lookups.

// minEncodedRun is the shortest base64 or hex run tried.
const minEncodedRun = 16

// decodeAt tries to decode an encoded run that starts at text[i]: "\x49\x6e…"
// escapes, hex byte pairs "49 6e 6c …", a hex run "496e6c…" (or
// "0x496e…"), or base64 in the standard or URL alphabet, padded or not.
// It returns the decoded text's tokens, the end of the run and the
// encoding; kind is "" when nothing decodes to text.
func decodeAt(text string, i, depth int) (toks []token, end int, kind string) {
	if depth >= maxDecodeDepth {
		return nil, 0, ""
	}
	var raw []byte
	switch c := text[i]; {
	case c == '\\':
		raw, end = hexEscapes(text, i)
		kind = obfHex
	case isHexDigit(c) && i+2 < len(text) && isHexDigit(text[i+1]) && text[i+2] == ' ':
		raw, end = hexPairs(text, i)
		kind = obfHex
	}
	if raw == nil {
		// The whole run of the base64 alphabets, else its letters and
		// digits alone (as the tokenizer reads a word before "-" or "_").
		j := i
		for j < len(text) && isB64(text[j]) {
			j++
		}
		if j+2-i < minEncodedRun {
			return nil, 0, "" // a word like any other
		}
		raw, end, kind = decodeB64Run(text, i, j)
		if raw == nil {
			j = i
			for j < len(text) && isWordByte(text[j]) {
				j++
			}
			raw, end, kind = decodeB64Run(text, i, j)
		}
	}
	if raw == nil || !looksText(raw) && !(depth+1 < maxDecodeDepth && looksEncoded(raw)) {
		return nil, 0, ""
	}
	toks = tokenizeDepth(string(raw), depth+1)
	if len(toks) == 0 || !looksText(raw) && toks[0].obf == "" {
		return nil, 0, "" // an encoded-looking run that decodes to no text
	}
	return toks, end, kind
}

// decodeB64Run decodes text[i:j] and its "=" padding as hex or base64;
// the run must end the word.
func decodeB64Run(text string, i, j int) ([]byte, int, string) {
	k := j
	for k < len(text) && k-j < 2 && text[k] == '=' {
		k++
	}
	if k-i < minEncodedRun {
		return nil, 0, ""
	}
	if !endsWord(text, i, k) {
		return nil, 0, ""
	}
	raw := decodeRun(text[i:j], text[j:k])
	if raw == nil {
		return nil, 0, ""
	}
	if hexRun(text[i:j]) {
		return raw, k, obfHex
	}
	return raw, k, obfBase64
}

// endsWord reports whether the word text[i:k] ends at k as the tokenizer
// reads it.
func endsWord(text string, i, k int) bool {
	if k >= len(text) {
		return true
	}
	r, w := utf8.DecodeRuneInString(text[k:])
	switch {
	case isWordRune(r) || r == '+' || r == '/':
		return false
	case joiner(r) || r == '^':
		return !joinsHere(text, k, w, r, text[i:k])
	}
	return true
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isB64(c byte) bool {
	return isWordByte(c) || c == '+' || c == '/' || c == '-' || c == '_'
}

func isHexDigit(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func hexVal(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// hexRun reports a run of hex digits, optionally "0x"-prefixed, of even
// length.
func hexRun(s string) bool {
	if len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		s = s[2:]
	}
	if len(s) < minEncodedRun || len(s)%2 != 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isHexDigit(s[i]) {
			return false
		}
	}
	return true
}

// decodeRun decodes a hex or base64 run; pad is the "=" padding after it.
func decodeRun(s, pad string) []byte {
	if pad == "" && hexRun(s) {
		if s[1] == 'x' || s[1] == 'X' {
			s = s[2:]
		}
		b := make([]byte, len(s)/2)
		for k := range b {
			b[k] = hexVal(s[2*k])<<4 | hexVal(s[2*k+1])
		}
		return b
	}
	enc := base64.RawStdEncoding
	if strings.ContainsAny(s, "-_") {
		if strings.ContainsAny(s, "+/") {
			return nil
		}
		enc = base64.RawURLEncoding
	}
	if (len(s)+len(pad))%4 != 0 && pad != "" {
		return nil
	}
	b, err := enc.DecodeString(s)
	if err != nil {
		return nil
	}
	return b
}

// hexEscapes reads "\x49\x6e…" (at least four escapes).
func hexEscapes(text string, i int) ([]byte, int) {
	var b []byte
	j := i
	for j+3 < len(text) && text[j] == '\\' && (text[j+1] == 'x' || text[j+1] == 'X') && isHexDigit(text[j+2]) && isHexDigit(text[j+3]) {
		b = append(b, hexVal(text[j+2])<<4|hexVal(text[j+3]))
		j += 4
	}
	if len(b) < 4 {
		return nil, 0
	}
	return b, j
}

// hexPairs reads hex byte pairs separated by single spaces or colons,
// "49 6e 6c 65 74" (at least five pairs).
func hexPairs(text string, i int) ([]byte, int) {
	var b []byte
	j := i
	for j+1 < len(text) && isHexDigit(text[j]) && isHexDigit(text[j+1]) && endsWord(text, j, j+2) {
		b = append(b, hexVal(text[j])<<4|hexVal(text[j+1]))
		j += 2
		if j+2 < len(text) && (text[j] == ' ' || text[j] == ':') && isHexDigit(text[j+1]) {
			j++
			continue
		}
		break
	}
	if len(b) < 5 {
		return nil, 0
	}
	return b, j
}

// looksEncoded reports decoded bytes that are themselves a base64 or hex
// run, decoded once more.
func looksEncoded(b []byte) bool {
	if len(b) < minEncodedRun {
		return false
	}
	for _, c := range b {
		if !isB64(c) && c != '=' {
			return false
		}
	}
	return true
}

// looksText reports decoded bytes that read as text: valid UTF-8, at
// least 90% printable, at least four letters, and letters at least half
// of what is not white space.
func looksText(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	n, printable, letters, spaces := 0, 0, 0, 0
	for _, r := range string(b) {
		n++
		switch {
		case r == ' ' || r == '\n' || r == '\t' || r == '\r':
			printable++
			spaces++
		case unicode.IsLetter(r):
			printable++
			letters++
		case unicode.IsPrint(r):
			printable++
		}
	}
	return n > 0 && printable*10 >= n*9 && letters >= 4 && letters*2 >= n-spaces
}

// Runs of words written backwards or in ROT13. A run is a stretch of
// tokens none of which is a common word; it is rewritten when its words,
// reversed or rotated, are mostly common words. Words that read as common
// words both ways ("no"/"on", "was"/"saw") are neutral.

// runWord is what rewriteRuns knows of one token.
type runWord struct {
	letters  bool // a word of two or more letters, no digits
	num      bool
	fwd      bool // a common word as it is
	fwdLike  bool // a common word or an English ending as it is
	pal      bool // reads the same backwards
	rev, rot int  // evidence that it is a word reversed, rotated: 0–2
}

// rewriteRuns replaces reversed and ROT13 runs of toks by the tokens of
// the run's text read forwards or rotated back.
func rewriteRuns(text string, toks []token, depth int) []token {
	if len(toks) < 2 {
		return toks
	}
	// Fast path: nothing to do unless a token that is not a common word
	// reads as one reversed or rotated.
	hit := false
	for _, t := range toks {
		if strongReading(t.text) {
			hit = true
			break
		}
	}
	if !hit {
		return toks
	}
	words := make([]runWord, len(toks))
	for k, t := range toks {
		words[k], _ = classifyRunWord(t, true)
	}
	var out []token
	shift := 0
	last := 0 // toks[:last] are copied or rewritten
	for i := 0; i < len(toks); {
		if breaksRun(toks[i], words[i]) {
			i++
			continue
		}
		j := i
		for j < len(toks) && !breaksRun(toks[j], words[j]) {
			j++
		}
		next := j
		inner, kind, a, b := rewriteRun(text, toks[i:j], words[i:j], depth)
		if kind == "" {
			i = next
			continue
		}
		i, j = i+a, i+b
		if out == nil {
			out = make([]token, 0, len(toks)+len(inner))
		}
		for _, t := range toks[last:i] {
			t.sentence += shift
			out = append(out, t)
		}
		base := toks[i].sentence + shift
		innerLast := 0
		for _, t := range inner {
			innerLast = t.sentence
			t.sentence += base
			t.start, t.end, t.obf = toks[i].start, toks[j-1].end, kind
			out = append(out, t)
		}
		shift = base + innerLast - toks[j-1].sentence
		last, i = j, next
	}
	if out == nil {
		return toks
	}
	for _, t := range toks[last:] {
		t.sentence += shift
		out = append(out, t)
	}
	return out
}

// breaksRun: a common word that reads as nothing backwards or rotated
// ("no"/"on" does not break a run), or a token that was decoded already.
func breaksRun(t token, w runWord) bool {
	return decoded(t.obf) || w.fwd && w.rev == 0 && w.rot == 0
}

// decoded reports the transforms that decode a whole run of text.
func decoded(obf string) bool {
	return obf == obfBase64 || obf == obfHex || obf == obfROT13 || obf == obfReversed
}

// reversedFunctionWords are function words written backwards: strong
// evidence, as English text never has them.
var reversedFunctionWords = map[string]bool{"eht": true, "dna": true, "fo": true, "ot": true, "ni": true, "ta": true,
	"rof": true, "htiw": true, "yb": true, "morf": true, "siht": true, "taht": true, "era": true, "ruoy": true,
	"ruo": true, "ym": true, "eb": true, "nac": true, "lliw": true, "dluohs": true, "ti": true}

// unitWords are unit symbols, to tell "ged 3" and "zHG 4.2" backwards.
var unitWords = map[string]bool{"deg": true, "db": true, "dbm": true, "dbi": true, "dbsm": true, "hz": true, "khz": true,
	"mhz": true, "ghz": true, "kn": true, "nm": true, "kg": true, "km": true, "cm": true, "psi": true, "rpm": true,
	"kw": true, "mw": true, "ms": true, "mrad": true, "urad": true, "µrad": true, "ug": true, "µg": true, "mpa": true,
	"kpa": true, "gpa": true, "ns": true, "µs": true, "us": true, "kv": true, "ma": true, "lb": true, "lbf": true,
	"ppm": true, "rms": true, "deg/s": true, "deg/h": true, "deg/hr": true, "mm/s": true, "m/s": true, "km/s": true,
	"km/h": true, "w/k": true, "krad": true, "rad": true, "si": true, "isp": true, "gy": true, "kg/m3": true, "n·m": true, "in-lb": true, "ft-lb": true, "mrad/s": true}

// strongReading reports a word, not a common word itself, that is a
// common word or a unit reversed or rotated: the cheap test, one lookup,
// that keeps ordinary text off the run search.
func strongReading(s string) bool {
	return len(s) >= 2 && strongReadings[s] && !knownWord(s) && !unitWords[s]
}

// strongReadings holds the common words of four letters or more reversed
// and rotated, the units reversed and the function words reversed.
var strongReadings = func() map[string]bool {
	m := make(map[string]bool, 3*len(commonWords))
	for w := range commonWords {
		if len(w) >= 4 && isAlpha(w) {
			m[reverseRunes(w)] = true
			m[rot13(w)] = true
		}
	}
	for u := range unitWords {
		m[reverseRunes(u)] = true
	}
	for f := range reversedFunctionWords {
		m[f] = true
	}
	return m
}()

// classifyRunWord looks a token up forwards, reversed and rotated (unless
// it is a common word and full is false). ok is false for numbers and
// tokens that are not plain words or units.
func classifyRunWord(t token, full bool) (runWord, bool) {
	s := t.text
	if t.isNum {
		return runWord{num: true}, false
	}
	if len(s) < 2 || len(s) > 24 {
		return runWord{}, false
	}
	var rb, ob [24]byte
	letters := true
	for k := 0; k < len(s); k++ {
		c := s[k]
		if c < 'a' || c > 'z' {
			if c >= utf8.RuneSelf {
				return runWord{}, false
			}
			letters = letters && c == '\'' && k > 0 && k < len(s)-1
			if c != '/' && c != '\'' && c != '-' && (c < '0' || c > '9') {
				return runWord{}, false
			}
			rb[len(s)-1-k], ob[k] = c, c
			continue
		}
		rb[len(s)-1-k] = c
		ob[k] = 'a' + (c-'a'+13)%26
	}
	rev, rot := rb[:len(s)], ob[:len(s)]
	if !letters {
		// Units backwards: "h/ged", "s/mm".
		if unitWords[string(rev)] && !unitWords[s] {
			return runWord{rev: 2}, true
		}
		return runWord{}, false
	}
	w := runWord{letters: true, fwd: knownWord(s) || unitWords[s]}
	if w.fwd && !full {
		return w, true
	}
	w.rev = wordEvidence(string(rev), s)
	w.rot = wordEvidence(string(rot), s)
	w.fwdLike = w.fwd || forwardLooking(s)
	w.pal = string(rev) == s
	return w, true
}

// wordEvidence is how strongly t (s reversed or rotated) reads as
// English: 2 for a common word of four letters or more, a function word
// backwards or a unit; 1 for a short or inflected common word or an
// English ending; 0 for none.
func wordEvidence(t, s string) int {
	switch {
	case t == s:
		return 0
	case commonWords[t] && len(t) >= 4, unitWords[t] && !unitWords[s] && !commonWords[s]:
		return 2
	case reversedFunctionWords[s] && commonWords[t]:
		return 2
	case knownWord(t), englishSuffix(t):
		return 1
	case len(s) >= 4 && !englishOnset(s) && englishOnset(t) && hasVowel(s):
		return 1 // "kcolb", "htoob": no English word starts so
	}
	return 0
}

// englishOnset reports a word whose first two letters can start an
// English word: a vowel in them, or a usual cluster.
func englishOnset(w string) bool {
	if len(w) < 2 {
		return true
	}
	if strings.IndexByte("aeiouy", w[0]) >= 0 || strings.IndexByte("aeiouy", w[1]) >= 0 {
		return true
	}
	switch w[:2] {
	case "bl", "br", "ch", "cl", "cr", "dr", "dw", "fl", "fr", "gh", "gl", "gn", "gr", "kl", "kn", "kr", "ph", "pl",
		"pr", "ps", "qu", "rh", "sc", "sh", "sk", "sl", "sm", "sn", "sp", "sq", "st", "sw", "th", "tr", "tw", "wh", "wr":
		return true
	}
	return false
}

func hasVowel(s string) bool {
	return strings.ContainsAny(s, "aeiouy")
}

// forwardLooking reports a word that reads as English as it is: one the
// list knows or with an English ending.
func forwardLooking(w string) bool {
	if knownWord(w) || englishSuffix(w) {
		return true
	}
	for _, e := range [...]string{"ed", "er", "al", "ic", "ary", "ory", "ful", "less", "ist", "ism", "ize", "ise", "ent", "ant", "ence", "ance", "ure", "age", "ly", "ings"} {
		if len(w) > len(e)+2 && strings.HasSuffix(w, e) {
			return true
		}
	}
	return false
}

// rewriteRun decides whether the run toks (words alongside) is reversed
// or ROT13 text and returns the tokens of its text decoded, and the part
// of the run they replace, toks[a:b]: words with no evidence at its ends
// are left out ("… semit lc cramming for the exam").
func rewriteRun(text string, toks []token, words []runWord, depth int) (inner []token, kind string, a, b int) {
	for _, dir := range [2]int{0, 1} {
		ev := func(w runWord) int {
			if dir == 0 {
				return w.rev
			}
			return w.rot
		}
		a, b = 0, len(toks)
		// Words at the ends that read forwards and not otherwise belong
		// to the plain text around the run.
		for a < b && !words[a].num && (ev(words[a]) == 0 && (words[a].fwdLike || !words[a].letters) || words[a].fwd && ev(words[a]) < 2) {
			a++
		}
		for b > a && !words[b-1].num && (ev(words[b-1]) == 0 && (words[b-1].fwdLike || !words[b-1].letters) || words[b-1].fwd && ev(words[b-1]) < 2) {
			b--
		}
		letters, hits, sum, strong, fwd := 0, 0, 0, 0, 0
		for _, w := range words[a:b] {
			if !w.letters && ev(w) == 0 || w.fwd && ev(w) < 2 || dir == 0 && w.pal {
				continue // numbers, marks, palindromes
			}
			letters++
			e := ev(w)
			sum += e
			if e > 0 {
				hits++
			}
			if e == 2 {
				strong++
			}
			if w.fwdLike && e < 2 {
				fwd++
			}
		}
		if letters < 2 || strong == 0 || sum < max(3, letters)+2*fwd || 10*hits < 6*letters && (strong < 3 || 2*hits < letters) {
			continue
		}
		src := text[toks[a].start:toks[b-1].end]
		if dir == 1 {
			return tokenizeDepth(rot13(src), depth+1), obfROT13, a, b
		}
		whole := tokenizeDepth(reverseRunes(src), depth+1)
		each := tokenizeDepth(reverseWords(src), depth+1)
		sw := orderScore(whole) + wholeReversed(text, toks[a].start, src)
		se := orderScore(each) + wordByWordHint(text)
		if sw > se || sw == se && b-a > 2 {
			return whole, obfReversed, a, b
		}
		return each, obfReversed, a, b
	}
	return nil, "", 0, 0
}

// reverseRunes writes s backwards.
func reverseRunes(s string) string {
	r := []rune(s)
	for a, b := 0, len(r)-1; a < b; a, b = a+1, b-1 {
		r[a], r[b] = r[b], r[a]
	}
	return string(r)
}

// reverseWords writes each word of s backwards, keeping their order.
func reverseWords(s string) string {
	var sb strings.Builder
	sb.Grow(len(s))
	for len(s) > 0 {
		k := strings.IndexFunc(s, unicode.IsSpace)
		if k < 0 {
			k = len(s)
		}
		sb.WriteString(reverseRunes(s[:k]))
		s = s[k:]
		k = strings.IndexFunc(s, func(r rune) bool { return !unicode.IsSpace(r) })
		if k < 0 {
			k = len(s)
		}
		sb.WriteString(s[:k])
		s = s[k:]
	}
	return sb.String()
}

func rot13(s string) string {
	b := []byte(s)
	for k, c := range b {
		switch {
		case c >= 'a' && c <= 'z':
			b[k] = 'a' + (c-'a'+13)%26
		case c >= 'A' && c <= 'Z':
			b[k] = 'A' + (c-'A'+13)%26
		}
	}
	return string(b)
}

// wholeReversed weighs the marks of a text written backwards as a whole
// rather than word by word: the capital that began the sentence ends the
// run ("esaeler cilbup rof devorppA"), or the sentence's full stop or
// question mark leads it (".sdrawkcab daer"); a capital ending the first
// word ("ehT thgirW reylF") means word by word.
func wholeReversed(text string, start int, src string) int {
	score := 0
	last, _ := utf8.DecodeLastRuneInString(src)
	firstWord := src
	if k := strings.IndexFunc(src, unicode.IsSpace); k >= 0 {
		firstWord = src[:k]
	}
	lastWord := src[strings.LastIndexFunc(src, unicode.IsSpace)+1:]
	if unicode.IsUpper(last) && !hasUpper(lastWord[:len(lastWord)-utf8.RuneLen(last)]) {
		score += 2
	}
	if f, _ := utf8.DecodeLastRuneInString(firstWord); len(firstWord) > 1 && unicode.IsUpper(f) && !hasUpper(firstWord[:len(firstWord)-utf8.RuneLen(f)]) {
		score -= 2
	}
	if start > 0 && (text[start-1] == '.' || text[start-1] == '?' || text[start-1] == '!') {
		score++
	}
	return score
}

// wordByWordHint weighs a note that each word is written backwards
// ("flip each word", "letters reversed per word").
func wordByWordHint(text string) int {
	if len(text) > 2000 {
		text = text[:2000]
	}
	l := strings.ToLower(text)
	for _, h := range [...]string{"each word", "per word", "every word", "word by word", "words reversed", "words flipped", "word flipped", "words backwards"} {
		if strings.Contains(l, h) {
			return 3
		}
	}
	return 0
}

func hasUpper(s string) bool {
	for _, r := range s {
		if unicode.IsUpper(r) {
			return true
		}
	}
	return false
}

// leaders are words that come before the word they go with.
var leaders = map[string]bool{"the": true, "a": true, "an": true, "of": true, "to": true, "in": true, "on": true, "at": true,
	"for": true, "with": true, "by": true, "from": true, "my": true, "your": true, "our": true, "their": true, "this": true,
	"is": true, "are": true, "was": true, "its": true, "into": true, "per": true, "under": true, "each": true}

// determiners never end a phrase.
var determiners = map[string]bool{"the": true, "a": true, "an": true, "my": true, "your": true, "our": true, "their": true, "its": true}

var conjunctions = map[string]bool{"and": true, "or": true, "but": true, "so": true, "then": true, "than": true}

// orderScore rates how English a word order is: leading words followed
// by the word they lead, numbers followed by a unit-like word.
func orderScore(toks []token) int {
	score := 0
	for k, t := range toks {
		next := ""
		if k+1 < len(toks) {
			next = toks[k+1].text
		}
		switch {
		case determiners[t.text] && (next == "" || leaders[next] || conjunctions[next]):
			score--
		case leaders[t.text] && next != "" && !leaders[next]:
			score++
		case t.isNum && next != "" && !toks[k+1].isNum && !leaders[next] && (len(next) <= 3 || unitWords[next] || strings.Contains(next, "/")):
			score++
		}
	}
	return score
}

// b64RunEnd is the end of the run decodeAt scans from text[i] (escapes,
// byte pairs or the base64 alphabets); a run that failed to decode is not
// tried again from its later words, which keeps long runs linear.
func b64RunEnd(text string, i int) int {
	j := i
	switch {
	case text[i] == '\\':
		for j+3 < len(text) && text[j] == '\\' && (text[j+1] == 'x' || text[j+1] == 'X') && isHexDigit(text[j+2]) && isHexDigit(text[j+3]) {
			j += 4
		}
		return j
	case isHexDigit(text[i]) && i+2 < len(text) && isHexDigit(text[i+1]) && text[i+2] == ' ':
		for j+1 < len(text) && isHexDigit(text[j]) && isHexDigit(text[j+1]) {
			j += 2
			if j+1 < len(text) && (text[j] == ' ' || text[j] == ':') {
				j++
				continue
			}
			break
		}
		return j
	}
	for j < len(text) && isB64(text[j]) {
		j++
	}
	if j-i < minEncodedRun {
		return i
	}
	return j
}
