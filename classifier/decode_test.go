package classifier

import (
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzDecode: the base64, hex, ROT13 and reversal decoders never panic,
// keep spans in the text, and read an encoding of text as the text.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{"Inlet RCS -28 dBsm at X-band", "SW5sZXQgUkNTIC0yOCBkQnNtIGF0IFgtYmFuZA==", "496e6c6574205243532d3238",
		"49 6e 6c 65 74 20 52 43 53", `\x49\x6e\x6c\x65\x74`, "0x496e6c6574205243532d3238", "Gur frrxre urnq", "rekees daeh",
		"mc 05 erutrepa ,daru 5.1 rettij", "3q2+7wAAAAEAAAACAAAAAwAAAAQ=", "NDk2ZTZjNjU3NDIwNTI0MzUzMjA2MTc0MjA1OA==", "a-b_c+d/e=f",
		strings.Repeat("a+", 200), strings.Repeat("00 ", 200), strings.Repeat(`\x00`, 200), strings.Repeat("k ", 200),
		strings.Repeat("two times ", 100), strings.Repeat("eht ni ged ", 50)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		for i := 0; i < len(s); i++ {
			if !utf8.RuneStart(s[i]) {
				continue
			}
			toks, end, kind := decodeAt(s, i, 0)
			if kind != "" && (end <= i || end > len(s) || len(toks) == 0) {
				t.Fatalf("decodeAt(%q, %d) = end %d, %d tokens", s, i, end, len(toks))
			}
		}
		checkTokens(t, s)
		checkIdempotent(t, s)
		for _, enc := range []string{base64.StdEncoding.EncodeToString([]byte(s)), base64.RawURLEncoding.EncodeToString([]byte(s)), hex.EncodeToString([]byte(s))} {
			text := "x " + enc + " y"
			checkTokens(t, text)
			checkIdempotent(t, text)
			if len(enc) < minEncodedRun || !looksText([]byte(s)) {
				continue
			}
			want := tokenizeDepth(s, 1)
			toks, end, _ := decodeAt(text, 2, 0)
			if end != 2+len(enc) || len(toks) != len(want) {
				t.Fatalf("%q encoded as %q: end %d, %d tokens, want %d", s, enc, end, len(toks), len(want))
			}
			for k := range want {
				if toks[k].text != want[k].text {
					t.Fatalf("%q encoded as %q: token %q, want %q", s, enc, toks[k].text, want[k].text)
				}
			}
		}
		checkTokens(t, reverseRunes(s))
		checkTokens(t, rot13(s))
	})
}

func TestDecodeRejectsBinary(t *testing.T) {
	for _, s := range []string{"3q2+7wAAAAEAAAACAAAAAwAAAAQ=", "9f86d081884c7d659a2feaa0c55ad015", "AAAAAAAAAAAAAAAAAAAAAA==",
		"/////////////////////w==", "00 01 02 03 04 05", `\x00\x01\x02\x03\x04`} {
		if toks, _, kind := decodeAt(s, 0, 0); kind != "" {
			t.Errorf("%q decoded as %s: %v", s, kind, toks)
		}
	}
	if _, _, kind := decodeAt("SW5sZXQgUkNTIC0yOCBkQnNtIGF0IFgtYmFuZA==", 0, maxDecodeDepth); kind != "" {
		t.Errorf("decoded past the depth bound")
	}
}
