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
	text       string  // normalised: NFKC, lower case, leetspeak undone
	start, end int     // byte offsets into the original text
	num        float64 // value when isNum
	isNum      bool
}

// invisible reports zero-width and bidirectional control characters, which
// are removed before matching.
func invisible(r rune) bool {
	switch {
	case r >= 0x200B && r <= 0x200F, r >= 0x202A && r <= 0x202E, r >= 0x2060 && r <= 0x2069, r == 0xFEFF, r == 0x00AD:
		return true
	}
	return false
}

//go:generate go run ./internal/confusablesgen -out confusables_table.go

var leet = map[rune]rune{'0': 'o', '1': 'i', '3': 'e', '4': 'a', '5': 's', '7': 't', '@': 'a', '$': 's'}

// tokenize splits text into tokens. Words keep internal hyphens, slashes,
// dots and apostrophes when letters or digits follow ("in-lb", "n·m",
// "cui//sp-expt", "0.31"); everything is NFKC-normalised, case-folded and
// stripped of invisible characters, with offsets kept into the original.
func tokenize(text string) []token {
	var toks []token
	i := 0
	for i < len(text) {
		r, w := utf8.DecodeRuneInString(text[i:])
		if invisible(r) || !isWordRune(r) {
			i += w
			continue
		}
		start := i
		var sb strings.Builder
		for i < len(text) {
			r, w := utf8.DecodeRuneInString(text[i:])
			if invisible(r) {
				i += w
				continue
			}
			if isWordRune(r) {
				sb.WriteRune(r)
				i += w
				continue
			}
			// Joiners inside a word: keep when a word rune follows.
			if strings.ContainsRune(".,-/'’·:^×", r) && sb.Len() > 0 {
				j := i + w
				for j < len(text) {
					r2, w2 := utf8.DecodeRuneInString(text[j:])
					if !invisible(r2) {
						break
					}
					j += w2
				}
				if j < len(text) {
					r2, _ := utf8.DecodeRuneInString(text[j:])
					if isWordRune(r2) && !(r == ',' && !unicode.IsDigit(r2)) && !(r == '.' && !unicode.IsDigit(r2) && !unicode.IsLetter(r2)) {
						// A comma or colon joins digits only.
						last, _ := utf8.DecodeLastRuneInString(sb.String())
						if (r == ',' || r == ':' || r == '×' || r == '^') && !(unicode.IsDigit(last) && unicode.IsDigit(r2)) {
							break
						}
						if r == '.' && unicode.IsLetter(r2) && !unicode.IsLetter(last) {
							break
						}
						sb.WriteRune(r)
						i = j
						continue
					}
				}
			}
			break
		}
		if tk := makeToken(sb.String(), start, i); tk.text != "" {
			toks = append(toks, tk)
		}
	}
	return collapseSpelled(collapseLetters(toks))
}

// collapseLetters joins runs of two or more single-letter tokens, as ASR
// spells acronyms and evasions space letters out ("m m i c", "s e e k e r").
func collapseLetters(toks []token) []token {
	out := toks[:0:0]
	for i := 0; i < len(toks); {
		j := i
		for j < len(toks) && utf8.RuneCountInString(toks[j].text) == 1 && unicode.IsLetter([]rune(toks[j].text)[0]) {
			j++
		}
		if j-i >= 2 {
			var sb strings.Builder
			for _, t := range toks[i:j] {
				sb.WriteString(t.text)
			}
			out = append(out, token{text: sb.String(), start: toks[i].start, end: toks[j-1].end})
			i = j
			continue
		}
		out = append(out, toks[i])
		i++
	}
	return out
}

func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsNumber(r) || r == '°' || r == 'µ' || r == 'μ' || r == 'Ω' || r == '%' || r == '@' || r == '$' || r == '±' || r == '²' || r == '³' || r == '⁵' || r == '⁻' || r == '⁰'
}

func makeToken(raw string, start, end int) token {
	// NFKC turns superscript minus into U+2212; write it as a hyphen so the
	// token reads the same when normalised again.
	s := strings.ReplaceAll(norm.NFKC.String(raw), "\u2212", "-")
	s = strings.TrimRight(s, ".,-/'’·:^×")
	var sb strings.Builder
	letters, digits := 0, 0
	for _, r := range s {
		if c, ok := confusableTable[r]; ok {
			r = c
		}
		r = unicode.ToLower(r)
		switch {
		case unicode.IsLetter(r):
			letters++
		case unicode.IsDigit(r):
			digits++
		}
		sb.WriteRune(r)
	}
	t := token{text: sb.String(), start: start, end: end}
	// Leetspeak: a mostly alphabetic token with digits or @/$ in it.
	if letters >= 2 && digits >= 1 && letters >= digits && !looksLikeIdentifier(t.text) {
		var lb strings.Builder
		for _, r := range t.text {
			if m, ok := leet[r]; ok {
				r = m
			}
			lb.WriteRune(r)
		}
		t.text = lb.String()
	}
	if v, ok := parseNumber(t.text); ok {
		t.num, t.isNum = v, true
	}
	return t
}

// looksLikeIdentifier keeps part numbers and model codes ("rb-2210-04",
// "5a002", "tr-8817") away from the leetspeak mapping.
func looksLikeIdentifier(s string) bool {
	if strings.ContainsAny(s, "-/") {
		return true
	}
	// Letters then digits ("m12", "k3", "x7") or an ECCN shape.
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

func eccnShape(s string) bool {
	return len(s) == 5 && s[0] >= '0' && s[0] <= '9' && s[1] >= 'a' && s[1] <= 'e' && allDigits(s[2:])
}

func allDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// parseNumber reads "1,050", "0.31", "−40", "±0.1" and the like.
func parseNumber(s string) (float64, bool) {
	s = strings.TrimLeft(s, "±+")
	s = strings.ReplaceAll(s, ",", "")
	if s == "" || (s[0] < '0' || s[0] > '9') && s[0] != '.' {
		return 0, false
	}
	v, err := strconv.ParseFloat(s, 64)
	return v, err == nil
}

// Spelled numbers, as ASR writes them.
var (
	smallNums = map[string]float64{"zero": 0, "oh": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
		"eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
		"sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19}
	tensNums = map[string]float64{"twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
	scales   = map[string]float64{"hundred": 100, "thousand": 1000, "million": 1e6, "billion": 1e9}
)

func isNumberWord(s string) bool {
	_, a := smallNums[s]
	_, b := tensNums[s]
	_, c := scales[s]
	return a || b || c || s == "point" || s == "a"
}

// collapseSpelled turns runs of number words ("zero point three one",
// "one twenty five", "two hundred fifty", "nineteen fifty") into one
// numeric token spanning the words.
func collapseSpelled(toks []token) []token {
	out := toks[:0:0]
	for i := 0; i < len(toks); {
		j := i
		for j < len(toks) && isNumberWord(toks[j].text) {
			j++
		}
		// The longest run from i that reads as one number.
		done := false
		for k := j; k > i && !done; k-- {
			first, last := toks[i].text, toks[k-1].text
			if first == "point" || last == "point" || last == "a" || k-i == 1 && (first == "a" || first == "oh") {
				continue
			}
			if v, ok := spelledValue(toks[i:k]); ok {
				out = append(out, token{text: strconv.FormatFloat(v, 'f', -1, 64), start: toks[i].start, end: toks[k-1].end, num: v, isNum: true})
				i = k
				done = true
			}
		}
		if !done {
			out = append(out, toks[i])
			i++
		}
	}
	return out
}

func spelledValue(ws []token) (float64, bool) {
	// Split at "point".
	var intPart, frac []token
	for k, w := range ws {
		if w.text == "point" {
			intPart, frac = ws[:k], ws[k+1:]
			break
		}
	}
	if intPart == nil && frac == nil {
		intPart = ws
	}
	iv := 0.0
	if len(intPart) > 0 {
		v, ok := spelledInt(intPart)
		if !ok {
			return 0, false
		}
		iv = v
	}
	if frac != nil {
		var digits strings.Builder
		for _, w := range frac {
			d, ok := smallNums[w.text]
			if !ok || d > 9 {
				return 0, false
			}
			digits.WriteByte(byte('0' + int(d)))
		}
		f, err := strconv.ParseFloat("0."+digits.String(), 64)
		if err != nil {
			return 0, false
		}
		iv += f
	}
	return iv, true
}

// spelledInt handles "two hundred fifty", "twelve hundred", "a thousand",
// and ASR digit groups "one twenty five" (125), "nineteen fifty" (1950).
func spelledInt(ws []token) (float64, bool) {
	hasScale := false
	for _, w := range ws {
		if _, ok := scales[w.text]; ok {
			hasScale = true
		}
	}
	if hasScale {
		total, cur := 0.0, 0.0
		for _, w := range ws {
			switch {
			case w.text == "a":
				cur = 1
			case smallNums[w.text] > 0 || w.text == "zero":
				cur += smallNums[w.text]
			case tensNums[w.text] > 0:
				cur += tensNums[w.text]
			default:
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
		}
		return total + cur, true
	}
	// Groups of 1–99 written one after another are digit groups.
	var groups []float64
	for k := 0; k < len(ws); k++ {
		w := ws[k].text
		if w == "a" {
			return 0, false
		}
		if t, ok := tensNums[w]; ok {
			if k+1 < len(ws) {
				if u, ok := smallNums[ws[k+1].text]; ok && u > 0 && u < 10 {
					groups = append(groups, t+u)
					k++
					continue
				}
			}
			groups = append(groups, t)
			continue
		}
		groups = append(groups, smallNums[w])
	}
	if len(groups) == 1 {
		return groups[0], true
	}
	var sb strings.Builder
	for k, g := range groups {
		if k > 0 && g < 10 && (groups[k-1] >= 20 && int(groups[k-1])%10 == 0) {
			// "twenty" "five" already joined above; a lone digit after a
			// group is a digit.
		}
		sb.WriteString(strconv.Itoa(int(g)))
	}
	v, err := strconv.ParseFloat(sb.String(), 64)
	return v, err == nil
}
