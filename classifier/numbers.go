package classifier

import (
	"strconv"
	"strings"
)

// Spelled numbers, as ASR writes them.
var (
	smallNums = map[string]int{"zero": 0, "oh": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
		"eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
		"sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19}
	tensNums = map[string]int{"twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
	scales   = map[string]float64{"hundred": 100, "thousand": 1000, "million": 1e6, "billion": 1e9}
)

// numberWords is every word isNumberWord accepts, in one set.
var numberWords = func() map[string]bool {
	out := map[string]bool{"point": true, "a": true}
	for k := range smallNums {
		out[k] = true
	}
	for k := range tensNums {
		out[k] = true
	}
	for k := range scales {
		out[k] = true
	}
	return out
}()

func isNumberWord(s string) bool {
	// Every number word is 1 to 9 letters long and starts with one of a
	// few letters: most words are turned away without a lookup.
	if len(s) == 0 || len(s) > 9 {
		return false
	}
	switch s[0] {
	case 'a', 'b', 'e', 'f', 'h', 'm', 'n', 'o', 'p', 's', 't', 'z':
		return numberWords[s]
	}
	return false
}

// maxNumberWords bounds the words read as one spelled number.
const maxNumberWords = 16

// collapseNumbers rewrites spelled and split numbers into one numeric
// token spanning the words, the way inverse text normalisation does:
//
//	"zero point three one"        → 0.31
//	"one twenty five"             → 125
//	"two hundred fifty"           → 250
//	"minus forty"                 → -40
//	"plus or minus point one"     → ±0.1
//	"one e minus seven"           → 1e-07 (written 0.0000001)
//	"one times ten to the minus seven", "3 × 10⁵", "3 x 10^5" → the value
func collapseNumbers(toks []token) []token {
	out := toks[:0]
	for i := 0; i < len(toks); {
		tk, n := readNumber(toks, i)
		if n == 0 {
			out = append(out, toks[i])
			i++
			continue
		}
		out = append(out, tk)
		i += n
	}
	return out
}

// readNumber reads a number starting at toks[i]: an optional sign word,
// a spelled number or a numeric token, and an optional exponent. n is the
// number of tokens consumed, 0 when no rewrite applies (a lone numeric
// token is left as it is).
func readNumber(toks []token, i int) (token, int) {
	switch t := toks[i]; {
	case t.isNum:
		if i+1 >= len(toks) {
			return token{}, 0
		}
		switch next := toks[i+1].text; {
		case next == "e", next == "times", next == "x", strings.HasPrefix(next, "10^"):
		default:
			return token{}, 0
		}
	case !isNumberWord(t.text) && t.text != "plus" && t.text != "minus" && t.text != "negative":
		return token{}, 0
	}
	j := i
	prefix := ""
	switch {
	case at(toks, j, "plus", "or", "minus"):
		prefix, j = "±", j+3
	case at(toks, j, "plus", "minus"):
		prefix, j = "±", j+2
	case at(toks, j, "minus") || at(toks, j, "negative"):
		prefix, j = "-", j+1
	}
	mant, k, ok := readMantissa(toks, j)
	if !ok {
		return token{}, 0
	}
	j = k
	// Exponent: "e minus seven", "times ten to the minus seven", "x 10^-7".
	exp, k, hasExp := readExponent(toks, j)
	if hasExp {
		j = k
	}
	if j-i == 1 && !hasExp && prefix == "" {
		if toks[i].isNum {
			return token{}, 0 // a plain numeric token
		}
	}
	if prefix == "±" && strings.HasPrefix(mant, "-") {
		return token{}, 0
	}
	str := mant
	if hasExp {
		str = mant + "e" + exp
	}
	v, err := strconv.ParseFloat(str, 64)
	if err != nil {
		return token{}, 0
	}
	if prefix == "-" {
		v = -v
	}
	text := strconv.FormatFloat(v, 'f', -1, 64)
	if len(text) > 24 {
		text = strings.Replace(strconv.FormatFloat(v, 'g', -1, 64), "e+", "e", 1)
	}
	if prefix == "±" {
		text = "±" + text
	}
	return token{text: text, start: toks[i].start, end: toks[j-1].end, num: v, isNum: true, sentence: toks[i].sentence}, j - i
}

// at reports whether the tokens from i read words.
func at(toks []token, i int, words ...string) bool {
	if i+len(words) > len(toks) {
		return false
	}
	for k, w := range words {
		if toks[i+k].text != w {
			return false
		}
	}
	return true
}

// readMantissa reads a numeric token or the longest run of number words
// from i that reads as one number; it returns the number as a decimal
// string.
func readMantissa(toks []token, i int) (string, int, bool) {
	if i >= len(toks) {
		return "", i, false
	}
	if t := toks[i]; t.isNum {
		if t.rng || strings.HasPrefix(t.text, "±") {
			return "", i, false
		}
		return strconv.FormatFloat(t.num, 'g', -1, 64), i + 1, true
	}
	j := i
	// A spoken number is a handful of words; the bound keeps a long run
	// of number words linear.
	for j < len(toks) && j-i < maxNumberWords && isNumberWord(toks[j].text) && toks[j].sentence == toks[i].sentence {
		j++
	}
	for k := j; k > i; k-- {
		first, last := toks[i].text, toks[k-1].text
		if last == "point" || last == "a" || k-i == 1 && (first == "a" || first == "oh" || first == "point") {
			continue
		}
		if first == "point" && (k-i < 2 || !isDigitWord(toks[i+1].text)) {
			continue
		}
		if s, ok := spelledValue(toks[i:k]); ok {
			return s, k, true
		}
	}
	return "", i, false
}

func isDigitWord(s string) bool {
	d, ok := smallNums[s]
	return ok && d < 10
}

// readExponent reads "e [minus|plus] N", "times ten to the [minus] N",
// "x 10^N" or a bare "10^N" token that follows a mantissa with "×".
func readExponent(toks []token, i int) (string, int, bool) {
	j := i
	switch {
	case at(toks, j, "e"):
		j++
	case at(toks, j, "times", "ten", "to", "the"):
		j += 4
	case at(toks, j, "times", "10", "to", "the"):
		j += 4
	case j < len(toks) && toks[j].afterTimes && strings.HasPrefix(toks[j].text, "10^") && toks[j].isNum:
		return strings.TrimPrefix(toks[j].text, "10^"), j + 1, true
	case (at(toks, j, "x") || at(toks, j, "times")) && j+1 < len(toks) && strings.HasPrefix(toks[j+1].text, "10^") && toks[j+1].isNum:
		return strings.TrimPrefix(toks[j+1].text, "10^"), j + 2, true
	default:
		return "", i, false
	}
	sign := ""
	switch {
	case at(toks, j, "minus") || at(toks, j, "negative"):
		sign, j = "-", j+1
	case at(toks, j, "plus"):
		j++
	}
	m, k, ok := readMantissa(toks, j)
	if !ok || strings.ContainsAny(m, ".eE") || strings.HasPrefix(m, "-") {
		return "", i, false
	}
	return sign + m, k, true
}

// spelledValue reads spelled number words as a decimal string.
func spelledValue(ws []token) (string, bool) {
	intPart, frac := ws, []token(nil)
	hasPoint := false
	for k, w := range ws {
		if w.text == "point" {
			intPart, frac, hasPoint = ws[:k], ws[k+1:], true
			break
		}
	}
	var sb strings.Builder
	if len(intPart) > 0 {
		v, ok := spelledInt(intPart)
		if !ok {
			return "", false
		}
		sb.WriteString(v)
	} else {
		sb.WriteByte('0')
	}
	if hasPoint {
		if len(frac) == 0 {
			return "", false
		}
		sb.WriteByte('.')
		for _, w := range frac {
			d, ok := smallNums[w.text]
			if !ok || d > 9 {
				return "", false
			}
			sb.WriteByte(byte('0' + d))
		}
	}
	return sb.String(), true
}

// spelledInt handles "two hundred fifty", "twelve hundred", "a thousand",
// and ASR digit groups "one twenty five" (125), "nineteen fifty" (1950).
func spelledInt(ws []token) (string, bool) {
	hasScale := false
	for _, w := range ws {
		if _, ok := scales[w.text]; ok {
			hasScale = true
		}
		if w.text == "point" {
			return "", false
		}
	}
	if hasScale {
		total, cur := 0.0, 0.0
		for k, w := range ws {
			if w.text == "a" {
				if k+1 >= len(ws) || scales[ws[k+1].text] == 0 {
					return "", false
				}
				cur = 1
				continue
			}
			if d, ok := smallNums[w.text]; ok {
				cur += float64(d)
				continue
			}
			if d, ok := tensNums[w.text]; ok {
				cur += float64(d)
				continue
			}
			s := scales[w.text]
			if cur == 0 {
				cur = 1
			}
			if s == 100 {
				cur *= 100
			} else {
				total += cur * s
				cur = 0
			}
		}
		return strconv.FormatFloat(total+cur, 'f', -1, 64), true
	}
	// Groups of 0–99 written one after another are digit groups.
	var sb strings.Builder
	for k := 0; k < len(ws); k++ {
		w := ws[k].text
		if w == "a" {
			return "", false
		}
		if t, ok := tensNums[w]; ok {
			if k+1 < len(ws) {
				if u, ok := smallNums[ws[k+1].text]; ok && u > 0 && u < 10 && ws[k+1].text != "oh" {
					sb.WriteString(strconv.Itoa(t + u))
					k++
					continue
				}
			}
			sb.WriteString(strconv.Itoa(t))
			continue
		}
		sb.WriteString(strconv.Itoa(smallNums[w]))
	}
	return sb.String(), true
}
