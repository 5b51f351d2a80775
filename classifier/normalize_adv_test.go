package classifier

import (
	"bufio"
	"encoding/json"
	"errors"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/quick"
	"unicode/utf8"
)

// TestNormalizeObfuscations: adversarial spellings and encodings read as
// their plain spelling.
func TestNormalizeObfuscations(t *testing.T) {
	cases := []struct{ in, want string }{
		// NATO / ICAO alphabet.
		{"sierra echo echo kilo echo romeo", "seeker"},
		{"kilo seven seven four dash oh two", "k774-02"},
		{"part number k seven seven four dash oh two rev c", "part number k774-02 rev c"},
		{"part number kilo seven seven four dash oh two rev c", "part number k774-02 rev c"},
		{"the file is tango delta niner", "the file is td9"},
		{"uh the confirmation code is kilo x ray seven papa niner bravo", "uh the confirmation code is kx7p9b"},
		{"the header says eccn nine e six one zero", "the header says eccn 9e610"},
		{"echo", "echo"},
		{"the echo came back and golf is on friday", "the echo came back and golf is on friday"},
		{"the alpha version ships monday", "the alpha version ships monday"},
		{"whiskey foxtrot held the hill", "whiskey foxtrot held the hill"},
		{"bravo six this is alpha two over", "bravo 6 this is alpha 2 over"},
		// Letter names.
		{"tee vee see", "tvc"},
		{"the tee vee see loop on stage two", "the tvc loop on stage 2"},
		{"eye tar", "itar"},
		{"ay ee ess ay", "aesa"},
		{"em see pee", "mcp"},
		{"eff pee ay", "fpa"},
		{"dee are eff em", "drfm"},
		{"minus twenty five dee bee ess em", "-25 dbsm"},
		{"tee vee see you later", "tvc you later"},
		// Dotted and separated letters, invisibles.
		{"s.e.e.k.e.r", "seeker"},
		{"s-e-e-k-e-r", "seeker"},
		{"s_e_e_k_e_r", "seeker"},
		{"s e e k e r", "seeker"},
		{"S·E·E·K·E·R", "seeker"},
		{"T-V-C A-C-T-U-A-T-O-R stroke", "tvc actuator stroke"},
		{"se\u00adek\u00ader", "seeker"},
		{"se\u200bek\u200der", "seeker"},
		{"the u.s. and e.g. stay", "the u.s . and e.g . stay"},
		{"50 N·m·s", "50 n·m·s"},
		// Reversed.
		{"rekees daeh", "seeker head"},
		{"mc 05 erutrepa ,daru 5.1 rettij ,s/ged 03 wels rotcerid maeb", "beam director slew 30 deg/s jitter 1.5 urad aperture 50 cm"},
		{"Note 3: thgiserob eht resal ot eht thgis nihtiw 1.0 ,darm (each word reversed)", "note 3 boresight the laser to the sight within 0.1 mrad each word reversed"},
		// Encodings.
		{"SW5sZXQgUkNTIC0yOCBkQnNtIGF0IFgtYmFuZA==", "inlet rcs -28 dbsm at x-band"},
		{"ignore this SW5sZXQgUkNTIC0yOCBkQnNtIGF0IFgtYmFuZA please", "ignore this inlet rcs -28 dbsm at x-band please"},
		{"SW5sZXQgUkNTIC0yOCBkQnNtIGF0IFgtYmFuZA", "inlet rcs -28 dbsm at x-band"},
		{"data=SW5sZXQgUkNTIGF0IFgtYmFuZD8_Pj4=", "data inlet rcs at x-band"}, // URL alphabet
		{"hex 496e6c6574205243532061742058", "hex inlet rcs at x"},
		{"blob=0x496e6c6574205243532061742058", "blob inlet rcs at x"},
		{"49 6e 6c 65 74 20 52 43 53", "inlet rcs"},
		{`\x49\x6e\x6c\x65\x74\x20\x52\x43\x53`, "inlet rcs"},
		{"Gur frrxre urnq tvzony reebe vf mreb cbvag guerr zenq", "the seeker head gimbal error is 0.3 mrad"},
		// Nested: base64 of hex.
		{"NDk2ZTZjNjU3NDIwNTI0MzUzMjA2MTc0MjA1OA==", "inlet rcs at x"},
		// Binary and ordinary long words stay.
		{"key 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "key 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
		{"internationalization and counterrevolutionaries", "internationalization and counterrevolutionaries"},
		{"readings 12 34 56 78 90", "readings 12 34 56 78 90"},
		// Spoken arithmetic.
		{"two times twenty one", "42"},
		{"twice twenty two", "44"},
		{"half of ninety", "45"},
		{"three hundred plus twenty", "320"},
		{"ten minus one point five", "8.5"},
		{"forty five thousand newtons divided by ten", "4500 newtons"},
		{"two times one thirty plus eight seconds", "268 seconds"},
		{"crew of 3 plus 8 dismounts", "crew of 3 plus 8 dismounts"},
		{"the first half of twenty twenty four", "the first half of 2024"},
		{"one minus one over the ratio", "1 -1 over the ratio"},
		{"zero point two two four plus two tenths", "0.224 plus 2 tenths"},
		{"plus or minus point one", "±0.1"},
		{"one times ten to the minus seven", "0.0000001"},
		// Ordinals and identifiers keep their digits.
		{"by the 15th and the 21st", "by the 15th and the 21st"},
		{"dll code 0x2f", "dll code 0x2f"},
		{"j4mm3r", "jammer"},
	}
	for _, c := range cases {
		if got := Normalize(c.in); got != c.want {
			t.Errorf("Normalize(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestOrdinaryTextUnchanged: everyday sentences that hold letter names,
// NATO words, reversible words or arithmetic words normalise as plain
// text.
func TestOrdinaryTextUnchanged(t *testing.T) {
	for _, s := range []string{
		"see you tomorrow", "oh why not", "are you there", "i see", "what are you doing", "see you at the tee",
		"why are you here", "oh you are right", "i be there at ten", "you see the sea", "a tea for you", "my ex is here",
		"gee you are right", "the golf tee is gone", "he said no", "it was on the tub", "the net terms are thirty days",
		"the total is due", "a police speed gun relies on it", "keep free chlorine for a residential pool",
		"the regulator is qualified to 100 krad si total dose", "stressed desserts", "live evil", "step on no pets",
		"my drone flies 30 minus 4 minutes in the cold", "we need 12 times 4 badges", "one of the two",
		"the seeker head gimbal boresight error is 0.3 mrad", "the radar range equation", "alpha beta gamma",
		"that's a plus", "twice a day", "half of the team", "it's half past seven",
	} {
		for _, tk := range tokenize(s) {
			if tk.obf != "" {
				t.Errorf("%q: token %q is %s", s, tk.text, tk.obf)
			}
		}
	}
}

// TestObfKinds: each transform is recorded on its tokens, and every
// decoded token spans the whole encoded run.
func TestObfKinds(t *testing.T) {
	cases := []struct{ in, tok, obf, span string }{
		{"the seek3r head", "seeker", obfLeet, "seek3r"},
		{"the ѕeeker head", "seeker", obfHomoglyph, "ѕeeker"},
		{"ＴＶＣ loop", "tvc", obfHomoglyph, "ＴＶＣ"},
		{"the se\u200beker head", "seeker", obfInvisible, "se\u200beker"},
		{"the s e e k e r head", "seeker", obfSpaced, "s e e k e r"},
		{"the s.e.e.k.e.r head", "seeker", obfDotted, "s.e.e.k.e.r"},
		{"the s_e_e_k_e_r head", "seeker", obfDotted, "s_e_e_k_e_r"},
		{"the sierra echo echo kilo echo romeo head", "seeker", obfNATO, "sierra echo echo kilo echo romeo"},
		{"the tee vee see loop", "tvc", obfLetters, "tee vee see"},
		{"ok rekees daeh", "seeker", obfReversed, "rekees daeh"},
		{"x SW5sZXQgUkNTIC0yOCBkQnNtIGF0IFgtYmFuZA== y", "dbsm", obfBase64, "SW5sZXQgUkNTIC0yOCBkQnNtIGF0IFgtYmFuZA=="},
		{"x 496e6c6574205243532061742058 y", "inlet", obfHex, "496e6c6574205243532061742058"},
		{"Gur frrxre urnq tvzony", "seeker", obfROT13, "Gur frrxre urnq tvzony"},
		{"it is two times twenty one", "42", obfArith, "two times twenty one"},
	}
	for _, c := range cases {
		found := false
		for _, tk := range tokenize(c.in) {
			if tk.text != c.tok {
				continue
			}
			found = true
			if tk.obf != c.obf || c.in[tk.start:tk.end] != c.span {
				t.Errorf("%q: %q is %q over %q, want %q over %q", c.in, tk.text, tk.obf, c.in[tk.start:tk.end], c.obf, c.span)
			}
		}
		if !found {
			t.Errorf("%q: no token %q in %q", c.in, c.tok, Normalize(c.in))
		}
	}
	for _, tk := range tokenize("the seeker head") {
		if tk.obf != "" {
			t.Errorf("plain %q is %s", tk.text, tk.obf)
		}
	}
}

// labeledTexts reads the texts of the development and training sets that
// are present. The development set is required under CI=true.
func labeledTexts(t *testing.T) []labeled {
	t.Helper()
	var rows []labeled
	dev := ""
	for _, p := range []string{"testdata/dev.jsonl", "../../shared/classifier/dev.jsonl", "/work/shared/classifier/dev.jsonl"} {
		if _, err := os.Stat(p); err == nil {
			dev = p
			break
		}
	}
	if dev == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("development set not found")
		}
		t.Skip("development set not found")
	}
	paths := []string{dev, "testdata/extra.jsonl"}
	for _, dir := range []string{"../../shared/classifier/train", "/work/shared/classifier/train"} {
		if m, _ := filepath.Glob(filepath.Join(dir, "*.jsonl")); len(m) > 0 {
			paths = append(paths, m...)
			break
		}
	}
	for _, p := range paths {
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var r labeled
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			rows = append(rows, r)
		}
		f.Close()
	}
	return rows
}

// TestDevBenignNotReversed: no benign development text is read as
// reversed or ROT13 text.
func TestDevBenignNotReversed(t *testing.T) {
	p := ""
	for _, c := range []string{"testdata/dev.jsonl", "../../shared/classifier/dev.jsonl", "/work/shared/classifier/dev.jsonl"} {
		if _, err := os.Stat(c); err == nil {
			p = c
			break
		}
	}
	if p == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("development set not found")
		}
		t.Skip("development set not found")
	}
	n := 0
	for _, r := range loadSet(t, p) {
		if r.Label != "benign" {
			continue
		}
		n++
		for _, tk := range tokenize(r.Text) {
			if tk.obf == obfReversed || tk.obf == obfROT13 {
				t.Errorf("%s: %q read as %s: %q", r.ID, r.Text, tk.obf, Normalize(r.Text))
				break
			}
		}
	}
	if n == 0 {
		t.Fatal("no benign texts")
	}
}

// checkTokens: spans inside the text on rune boundaries, non-empty, and
// sentence indices that never decrease.
func checkTokens(t *testing.T, text string) {
	t.Helper()
	toks := tokenize(text)
	for k, tk := range toks {
		if tk.start < 0 || tk.end > len(text) || tk.start >= tk.end || !utf8.RuneStart(text[tk.start]) || tk.end < len(text) && !utf8.RuneStart(text[tk.end]) {
			t.Fatalf("token %q at %d–%d outside %q or off a rune boundary", tk.text, tk.start, tk.end, text)
		}
		if tk.text == "" {
			t.Fatalf("empty token in %q", text)
		}
		if k > 0 && tk.sentence < toks[k-1].sentence {
			t.Fatalf("sentence goes back at %q in %q", tk.text, text)
		}
	}
}

// TestTokenProperties over the labelled sets and over generated strings.
func TestTokenProperties(t *testing.T) {
	for _, r := range labeledTexts(t) {
		checkTokens(t, r.Text)
		checkIdempotent(t, r.Text)
	}
	pieces := []string{"sierra", "echo", "kilo", "seven", "oh", "dash", "tee", "vee", "see", "you", "eye", "tar", "s", "e", "k",
		"s.e.e", "k-e-r", "_", "·", "\u00ad", "\u200b", "rekees", "daeh", "eht", "ni", "ged", "SW5sZXQgUkNTIC0yOCBkQnNtIGF0IFgtYmFuZA==",
		"496e6c6574205243532061742058", "49 6e 6c 65 74", `\x49\x6e\x6c\x65`, "Gur", "frrxre", "urnq", "two", "times", "twenty",
		"one", "plus", "minus", "point", "five", "half", "of", "twice", "divided", "by", "ten", "newtons", "3", "0.5", "-",
		".", ",", "?", " ", "  ", "ѕ", "Ｔ", "é", "4", "x", "ray", "niner", "hundred", "thousand", "e", "10⁻⁷", "±", "%"}
	f := func(seed int64) bool {
		rng := rand.New(rand.NewSource(seed))
		var sb strings.Builder
		for range 1 + rng.Intn(24) {
			sb.WriteString(pieces[rng.Intn(len(pieces))])
			if rng.Intn(3) > 0 {
				sb.WriteByte(' ')
			}
		}
		s := sb.String()
		checkTokens(t, s)
		checkIdempotent(t, s)
		// Encoded and reversed forms of generated text hold too.
		checkTokens(t, reverseRunes(s))
		checkIdempotent(t, reverseRunes(s))
		checkTokens(t, rot13(s))
		checkIdempotent(t, rot13(s))
		return true
	}
	if err := quick.Check(f, &quick.Config{MaxCount: 3000}); err != nil {
		t.Error(err)
	}
}

// tokenizeBenchTexts are typical sentences of the three styles.
var tokenizeBenchTexts = []string{
	"The sustainer grain burns at zero point three one inches per second at a thousand psi.",
	"hi yeah um im calling about the delivery we got coming for the range demo next month",
	"Sure, I can help with that. Your export compliance office can tell you whether a mass-market treatment applies.",
	"Torque the TVC actuator bolts to 45 in-lb and check the gimbal boresight error is 0.3 mrad at 25 °C.",
}

func BenchmarkTokenize(b *testing.B) {
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		tokenize(tokenizeBenchTexts[i%len(tokenizeBenchTexts)])
		i++
	}
}

// BenchmarkTokenizeObfuscated: texts that take the decoders' slow paths.
func BenchmarkTokenizeObfuscated(b *testing.B) {
	texts := []string{
		"decode this: SW5sZXQgUkNTIC0yOCBkQnNtIGF0IFgtYmFuZA== thanks",
		"mc 05 erutrepa ,daru 5.1 rettij ,s/ged 03 wels rotcerid maeb",
		"part number kilo seven seven four dash oh two and the tee vee see loop runs at two times twenty one hertz",
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		tokenize(texts[i%len(texts)])
		i++
	}
}
