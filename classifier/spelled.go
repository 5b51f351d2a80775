package classifier

import (
	"math"
	"strconv"
	"strings"
)

// Spelled identifiers and acronyms, and spoken arithmetic.

// natoLetters is the NATO / ICAO spelling alphabet.
var natoLetters = map[string]byte{"alpha": 'a', "alfa": 'a', "bravo": 'b', "charlie": 'c', "delta": 'd', "echo": 'e',
	"foxtrot": 'f', "golf": 'g', "hotel": 'h', "india": 'i', "juliet": 'j', "juliett": 'j', "kilo": 'k', "lima": 'l',
	"mike": 'm', "november": 'n', "oscar": 'o', "papa": 'p', "quebec": 'q', "romeo": 'r', "sierra": 's', "tango": 't',
	"uniform": 'u', "victor": 'v', "whiskey": 'w', "whisky": 'w', "x-ray": 'x', "xray": 'x', "yankee": 'y', "zulu": 'z'}

// letterNames are the names of the letters, as ASR writes an acronym
// spoken letter by letter ("tee vee see").
var letterNames = map[string]byte{"ay": 'a', "bee": 'b', "be": 'b', "see": 'c', "cee": 'c', "dee": 'd', "ee": 'e',
	"ef": 'f', "eff": 'f', "gee": 'g', "jee": 'g', "aitch": 'h', "haitch": 'h', "eye": 'i', "jay": 'j', "kay": 'k',
	"el": 'l', "ell": 'l', "em": 'm', "en": 'n', "oh": 'o', "pee": 'p', "cue": 'q', "queue": 'q', "ar": 'r', "are": 'r',
	"ess": 's', "tee": 't', "tea": 't', "you": 'u', "vee": 'v', "ex": 'x', "why": 'y', "zee": 'z', "zed": 'z'}

// everydayNames are letter names that are everyday words: a run of them
// alone is left as it is ("see you", "oh why not").
var everydayNames = map[string]bool{"see": true, "you": true, "why": true, "oh": true, "are": true, "eye": true,
	"be": true, "bee": true, "tea": true, "ex": true, "cue": true, "queue": true}

// edgeWords are everyday letter names not taken at the ends of a run
// ("tee vee see you later" keeps "you").
var edgeWords = map[string]bool{"you": true, "are": true, "why": true, "oh": true, "be": true, "tea": true, "ex": true,
	"cue": true, "queue": true}

// letterGroups are words read as several letters inside a run of letter
// names ("eye tar" is ITAR).
var letterGroups = map[string]string{"tar": "tar"}

// mayBeSpelled reports a token that can start or join a spelled run; two
// in a row, or one and a digit, let the pass run at all.
func mayBeSpelled(s string) bool {
	if len(s) == 1 {
		return s[0] >= 'a' && s[0] <= 'z' && s != "a" && s != "i"
	}
	return spelledWords[s]
}

// spelledWords are the NATO words and letter names.
var spelledWords = func() map[string]bool {
	m := map[string]bool{"double": true}
	for w := range natoLetters {
		m[w] = true
	}
	for w := range letterNames {
		m[w] = true
	}
	return m
}()

// spelledNext reports a token that continues a spelled run after a letter.
func spelledNext(t token) bool {
	switch t.text {
	case "ray", "tar", "dash", "hyphen", "niner", "you":
		return true
	}
	if d, ok := smallNums[t.text]; ok && d < 10 {
		return true
	}
	return t.isNum && len(t.text) == 1
}

// collapseSpelled joins NATO alphabet spellings ("sierra echo echo kilo
// echo romeo" → "seeker", "kilo seven seven four dash oh two" → "k774-02")
// and runs of letter names ("tee vee see" → "tvc").
func collapseSpelled(toks []token) []token {
	found := false
	for k := 1; k < len(toks) && !found; k++ {
		found = mayBeSpelled(toks[k-1].text) && (mayBeSpelled(toks[k].text) || spelledNext(toks[k]))
	}
	if !found {
		return toks
	}
	out := toks[:0]
	for i := 0; i < len(toks); {
		if s, n := readNATO(toks, i); n > 0 {
			// An ECCN said "nine e six one zero": the digit before the
			// letter belongs to it.
			if k := len(out) - 1; k >= 0 && out[k].sentence == toks[i].sentence && isDigitWord(out[k].text) && eccnShape(strconv.Itoa(smallNums[out[k].text])+s) {
				s = strconv.Itoa(smallNums[out[k].text]) + s
				run := []token{out[k], toks[i+n-1]}
				out = out[:k]
				out = append(out, spelledToken(run, s, obfNATO))
				i += n
				continue
			}
			out = append(out, spelledToken(toks[i:i+n], s, obfNATO))
			i += n
			continue
		}
		if s, n := readLetterNames(toks, i); n > 0 {
			out = append(out, spelledToken(toks[i:i+n], s, obfLetters))
			i += n
			continue
		}
		out = append(out, toks[i])
		i++
	}
	return out
}

// spelledToken is the token a run spells, normalised as if written.
func spelledToken(run []token, s, obf string) token {
	t, ok := makeToken(s, run[0].start, run[len(run)-1].end)
	if !ok {
		t = token{text: s, start: run[0].start, end: run[len(run)-1].end}
	}
	t.sentence, t.afterTimes, t.obf = run[0].sentence, run[0].afterTimes, obf
	return t
}

// natoAt reads a NATO word at toks[j] ("x ray" is two tokens).
func natoAt(toks []token, j int) (byte, int) {
	if c, ok := natoLetters[toks[j].text]; ok {
		return c, 1
	}
	if toks[j].text == "x" && j+1 < len(toks) && toks[j+1].text == "ray" && toks[j+1].sentence == toks[j].sentence {
		return 'x', 2
	}
	return 0, 0
}

// digitAt reads one spelled digit ("oh", "niner") or a written digit.
func digitAt(toks []token, j int) (string, bool) {
	t := toks[j]
	if t.isNum && len(t.text) == 1 && allDigits(t.text) {
		return t.text, true // "k 7 7 4"; a longer number is a number
	}
	if t.text == "niner" {
		return "9", true
	}
	d, ok := smallNums[t.text]
	if !ok || d > 9 {
		return "", false
	}
	// "three hundred", "one seventy", "two point four" are numbers.
	if j+1 < len(toks) {
		next := toks[j+1].text
		if _, ok := tensNums[next]; ok {
			return "", false
		}
		if _, ok := scales[next]; ok || next == "point" {
			return "", false
		}
	}
	return strconv.Itoa(d), true
}

// maxSpelled bounds the words read as one spelled identifier, which keeps
// a long run of letters linear.
const maxSpelled = 32

// readNATO reads a spelled identifier from toks[i]: NATO words, spelled
// digits and "dash", starting with a NATO word or a bare letter ("k seven
// seven four"). It needs three NATO words, or two and a digit, or one
// letter and two digits, so "echo" or "golf" alone stays a word.
func readNATO(toks []token, i int) (string, int) {
	first := toks[i].text
	if _, ok := natoLetters[first]; !ok && first != "x" && (len(first) != 1 || first[0] < 'a' || first[0] > 'z') {
		return "", 0
	}
	var b []byte
	nato, digits, bare := 0, 0, 0
	j, end, endLen := i, i, 0
	for j < len(toks) && j-i < maxSpelled && toks[j].sentence == toks[i].sentence {
		if c, n := natoAt(toks, j); n > 0 {
			b = append(b, c)
			nato++
			j += n
			end, endLen = j, len(b)
			continue
		}
		if d, ok := digitAt(toks, j); ok && j > i {
			b = append(b, d...)
			digits++
			j++
			end, endLen = j, len(b)
			continue
		}
		t := toks[j].text
		if len(t) == 1 && t[0] >= 'a' && t[0] <= 'z' && t != "a" && t != "i" && nato == 0 && digits == 0 {
			b = append(b, t[0])
			bare++
			j++
			end, endLen = j, len(b)
			continue
		}
		if (t == "dash" || t == "hyphen") && j > i && len(b) > 0 && b[len(b)-1] != '-' {
			b = append(b, '-')
			j++
			continue
		}
		break
	}
	if !(nato >= 3 || nato >= 2 && digits >= 1 || nato+bare >= 1 && digits >= 2) {
		return "", 0
	}
	return string(b[:endLen]), end - i
}

// readLetterNames reads a run of two or more letter names from toks[i]
// with at least one that is not an everyday word; everyday words at the
// ends are left out ("see you tomorrow" stays, "tee vee see" is "tvc").
func readLetterNames(toks []token, i int) (string, int) {
	type item struct {
		s    string
		n    int
		word string
	}
	if _, ok := letterNames[toks[i].text]; !ok && toks[i].text != "double" {
		return "", 0
	}
	var buf [16]item
	items := buf[:0]
	for j := i; j < len(toks) && len(items) < len(buf) && toks[j].sentence == toks[i].sentence; {
		t := toks[j].text
		if c, ok := letterNames[t]; ok {
			items = append(items, item{string(c), 1, t})
			j++
			continue
		}
		if g, ok := letterGroups[t]; ok && len(items) > 0 {
			items = append(items, item{g, 1, t})
			j++
			continue
		}
		if t == "double" && j+1 < len(toks) && toks[j+1].text == "you" && toks[j+1].sentence == toks[i].sentence {
			items = append(items, item{"w", 2, "double you"})
			j += 2
			continue
		}
		if len(t) == 1 && t[0] >= 'a' && t[0] <= 'z' && t != "a" && t != "i" && len(items) > 0 {
			items = append(items, item{t, 1, ""}) // a bare letter inside a run
			j++
			continue
		}
		break
	}
	// Only the leading everyday word may be dropped by the caller's loop:
	// a run that starts with one is read from its next word instead.
	if len(items) > 0 && edgeWords[items[0].word] {
		return "", 0
	}
	for len(items) > 0 && (edgeWords[items[len(items)-1].word] || items[len(items)-1].word == "") {
		items = items[:len(items)-1]
	}
	if len(items) < 2 {
		return "", 0
	}
	plain := false
	for _, it := range items {
		if it.word != "" && !everydayNames[it.word] {
			plain = true
		}
	}
	if !plain {
		return "", 0
	}
	var sb strings.Builder
	n := 0
	for _, it := range items {
		sb.WriteString(it.s)
		n += it.n
	}
	return sb.String(), n
}

// collapseArith works out spoken arithmetic between numbers: "two times
// twenty one" → 42, "twice twenty two" → 44, "half of ninety" → 45,
// "three hundred plus twenty" → 320, "ten minus one point five" → 8.5,
// "forty five thousand newtons divided by ten" → 4500 newtons. Both sides
// must be numbers; times and divided by bind first.
func collapseArith(text string, toks []token) []token {
	found := false
	for _, t := range toks {
		switch t.text {
		case "times", "plus", "divided", "multiplied", "twice", "half":
			found = true
		}
		if t.isNum && t.num < 0 {
			found = true
		}
	}
	if !found {
		return toks
	}
	out := toks[:0]
	for i := 0; i < len(toks); {
		if res, n, unit := readArith(text, toks, i); n > 0 {
			out = append(out, res)
			if unit >= 0 {
				out = append(out, toks[unit])
			}
			i += n
			continue
		}
		out = append(out, toks[i])
		i++
	}
	return out
}

// operandAt reads a spoken number, "twice N" or "half of N" at toks[j].
// Written numbers are left alone ("crew of 3 plus 8 dismounts"), and so is
// "the first half of twenty twenty four".
func operandAt(text string, toks []token, j, sentence int) (float64, int, bool) {
	if j >= len(toks) || toks[j].sentence != sentence {
		return 0, 0, false
	}
	switch {
	case spelledNumber(text, toks[j]):
		return toks[j].num, 1, true
	case toks[j].text == "twice" && j+1 < len(toks) && spelledNumber(text, toks[j+1]) && toks[j+1].sentence == sentence:
		return 2 * toks[j+1].num, 2, true
	case at(toks, j, "half", "of") && j+2 < len(toks) && spelledNumber(text, toks[j+2]) && toks[j+2].sentence == sentence:
		if j > 0 && halfOfWhat[toks[j-1].text] {
			return 0, 0, false
		}
		return toks[j+2].num / 2, 3, true
	}
	return 0, 0, false
}

// halfOfWhat are words before "half of" that make it a part of a period
// or a thing, not arithmetic.
var halfOfWhat = map[string]bool{"first": true, "second": true, "last": true, "back": true, "front": true, "other": true,
	"latter": true, "top": true, "bottom": true, "better": true, "one": true, "1": true}

// spelledNumber is a plain number said in words.
func spelledNumber(text string, t token) bool {
	return plainNumber(t) && t.start < len(text) && (text[t.start] >= 'a' && text[t.start] <= 'z' || text[t.start] >= 'A' && text[t.start] <= 'Z')
}

func plainNumber(t token) bool {
	return t.isNum && !t.rng && !strings.HasPrefix(t.text, "±") && t.obf == ""
}

// spokenMinus reports a negative number said "minus …" or "negative …".
func spokenMinus(text string, t token) bool {
	if !t.isNum || t.num >= 0 || t.start >= len(text) {
		return false
	}
	s := text[t.start:]
	return len(s) >= 5 && strings.EqualFold(s[:5], "minus") || len(s) >= 8 && strings.EqualFold(s[:8], "negative")
}

// maxArithOps bounds the operations read as one spoken sum.
const maxArithOps = 8

// readArith reads an arithmetic expression from toks[i]. It returns the
// result, the number of tokens read and the index of a unit word to keep
// after the result (-1 for none).
func readArith(text string, toks []token, i int) (token, int, int) {
	sentence := toks[i].sentence
	v, n, ok := operandAt(text, toks, i, sentence)
	if !ok {
		return token{}, 0, -1
	}
	// "forty five thousand newtons divided by ten".
	if n == 1 && at(toks, i+2, "divided", "by") && toks[i+1].sentence == sentence && !toks[i+1].isNum && isAlpha(toks[i+1].text) {
		if m, k, ok := operandAt(text, toks, i+4, sentence); ok && m != 0 && !math.IsInf(v/m, 0) {
			return arithToken(toks[i:i+4+k], v/m), 4 + k, i + 1
		}
	}
	terms := []float64{} // sums of products
	cur := v
	j := i + n
	ops := 0
	for j < len(toks) && ops < maxArithOps && toks[j].sentence == sentence {
		op, k := byte(0), 0
		switch {
		case at(toks, j, "times"):
			op, k = '*', 1
		case at(toks, j, "multiplied", "by"):
			op, k = '*', 2
		case at(toks, j, "divided", "by"):
			op, k = '/', 2
		case at(toks, j, "plus"):
			op, k = '+', 1
		case spokenMinus(text, toks[j]) && spelledNumber(text, toks[j]):
			op, k = '-', 0
		}
		if op == 0 {
			break
		}
		m, l, ok := operandAt(text, toks, j+k, sentence)
		if !ok || op == '/' && m == 0 {
			break
		}
		switch op {
		case '*':
			cur *= m
		case '/':
			cur /= m
		case '+':
			terms = append(terms, cur)
			cur = m
		case '-':
			terms = append(terms, cur)
			cur = m // m is negative already
		}
		j += k + l
		ops++
	}
	if ops == 0 && n == 1 || unhandledOp(toks, j) {
		return token{}, 0, -1
	}
	for _, t := range terms {
		cur += t
	}
	if math.IsInf(cur, 0) || math.IsNaN(cur) {
		return token{}, 0, -1
	}
	return arithToken(toks[i:j], cur), j - i, -1
}

// unhandledOp reports an operation read no further that binds tighter
// than what came before it ("one minus one over the ratio", "two plus
// three squared"): the expression is then left as it is.
func unhandledOp(toks []token, j int) bool {
	if j >= len(toks) {
		return false
	}
	switch toks[j].text {
	case "over", "squared", "cubed", "divided", "times", "multiplied", "tenth", "tenths", "hundredth", "hundredths",
		"thousandth", "thousandths", "half", "halves", "quarter", "quarters", "third", "thirds", "percent":
		return true
	}
	return at(toks, j, "to", "the")
}

func isAlpha(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 'a' || s[i] > 'z' {
			return false
		}
	}
	return s != ""
}

// arithToken is the number a run of tokens works out to.
func arithToken(run []token, v float64) token {
	text := strconv.FormatFloat(v, 'f', -1, 64)
	if len(text) > 24 {
		text = strings.Replace(strconv.FormatFloat(v, 'g', -1, 64), "e+", "e", 1)
	}
	end := run[0].end
	for _, t := range run {
		end = max(end, t.end)
	}
	return token{text: text, start: run[0].start, end: end, num: v, isNum: true, sentence: run[0].sentence, afterTimes: run[0].afterTimes, obf: obfArith}
}
