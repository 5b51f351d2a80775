package media_test

import (
	"math"
	"testing"

	"github.com/voicegw/voicegw/media"
	"github.com/voicegw/voicegw/media/mediatest"
)

// The ITU-T G.191 Software Tool Library reference (g711.c: ulaw_compress,
// ulaw_expand, alaw_compress, alaw_expand), transcribed line by line.

func stlUlawCompress(lin int16) byte {
	var absno int
	if lin < 0 {
		absno = int(^lin>>2) + 33
	} else {
		absno = int(lin>>2) + 33
	}
	if absno > 0x1fff {
		absno = 0x1fff
	}
	i := absno >> 6
	segno := 1
	for i != 0 {
		segno++
		i >>= 1
	}
	high := 0x0008 - segno
	low := 0x000f - ((absno >> segno) & 0x000f)
	out := high<<4 | low
	if lin >= 0 {
		out |= 0x0080
	}
	return byte(out)
}

func stlUlawExpand(log byte) int16 {
	sign := 1
	if log < 0x80 {
		sign = -1
	}
	mantissa := ^int(log)
	exponent := (mantissa >> 4) & 0x7
	segment := exponent + 1
	mantissa &= 0xf
	step := 4 << segment
	return int16(sign * ((0x80 << exponent) + step*mantissa + step/2 - 4*33))
}

func stlAlawCompress(lin int16) byte {
	var ix int
	if lin < 0 {
		ix = int(^lin >> 4)
	} else {
		ix = int(lin >> 4)
	}
	if ix > 15 {
		iexp := 1
		for ix > 16+15 {
			ix >>= 1
			iexp++
		}
		ix -= 16
		ix += iexp << 4
	}
	if lin >= 0 {
		ix |= 0x80
	}
	return byte(ix ^ 0x55)
}

func stlAlawExpand(log byte) int16 {
	ix := int(log) ^ 0x55
	ix &= 0x7f
	iexp := ix >> 4
	mant := ix & 0xf
	if iexp > 0 {
		mant += 16
	}
	mant = mant<<4 + 0x8
	if iexp > 1 {
		mant <<= iexp - 1
	}
	if log > 127 {
		return int16(mant)
	}
	return int16(-mant)
}

func TestG711MatchesITUReference(t *testing.T) {
	all := make([]int16, 65536)
	for i := range all {
		all[i] = int16(i - 32768)
	}
	u := make([]byte, len(all))
	a := make([]byte, len(all))
	media.EncodeMulaw(u, all)
	media.EncodeAlaw(a, all)
	for i, s := range all {
		if want := stlUlawCompress(s); u[i] != want {
			t.Fatalf("EncodeMulaw(%d) = %#02x, reference %#02x", s, u[i], want)
		}
		if want := stlAlawCompress(s); a[i] != want {
			t.Fatalf("EncodeAlaw(%d) = %#02x, reference %#02x", s, a[i], want)
		}
	}
	codes := make([]byte, 256)
	for i := range codes {
		codes[i] = byte(i)
	}
	du := make([]int16, 256)
	da := make([]int16, 256)
	media.DecodeMulaw(du, codes)
	media.DecodeAlaw(da, codes)
	for c := range 256 {
		if want := stlUlawExpand(byte(c)); du[c] != want {
			t.Fatalf("DecodeMulaw(%#02x) = %d, reference %d", c, du[c], want)
		}
		if want := stlAlawExpand(byte(c)); da[c] != want {
			t.Fatalf("DecodeAlaw(%#02x) = %d, reference %d", c, da[c], want)
		}
	}
	// Decoding then re-encoding is the identity on codes, except µ-law's
	// negative zero (0x7f), which decodes to 0 and re-encodes as +0.
	re := make([]byte, 256)
	media.EncodeMulaw(re, du)
	for c := range 256 {
		if re[c] != byte(c) && c != 0x7f {
			t.Errorf("µ-law code %#02x → %d → %#02x", c, du[c], re[c])
		}
	}
	media.EncodeAlaw(re, da)
	for c := range 256 {
		if re[c] != byte(c) {
			t.Errorf("A-law code %#02x → %d → %#02x", c, da[c], re[c])
		}
	}
}

func g711RoundTrip(src []int16, alaw bool) []int16 {
	enc := make([]byte, len(src))
	dec := make([]int16, len(src))
	if alaw {
		media.EncodeAlaw(enc, src)
		media.DecodeAlaw(dec, enc)
	} else {
		media.EncodeMulaw(enc, src)
		media.DecodeMulaw(dec, enc)
	}
	return dec
}

func TestG711RoundTripSNR(t *testing.T) {
	// G.711's SNR is about 38 dB over a wide range of levels (it is
	// logarithmic): G.712 requires ≥ 35 dB for a sine at -10 dBm0 and
	// above. Measured: sine at 0.9 FS µ-law 38.5 dB, A-law 38.9 dB; at -30
	// dBFS 35.8 and 39.2 dB; espeak-ng speech 37.5 and 37.7 dB.
	sine := mediatest.Sine(8000, 1004, 0.9, 8000)
	quiet := mediatest.Sine(8000, 1004, 0.03, 8000) // -30 dBFS
	tests := []struct {
		name string
		src  []int16
		min  float64
	}{
		{"sine 0.9 FS", sine, 37},
		{"sine -30 dBFS", quiet, 33},
	}
	if !testing.Short() {
		speech := mediatest.Speech(t, "The quick brown fox jumps over the lazy dog.", 8000)
		tests = append(tests, struct {
			name string
			src  []int16
			min  float64
		}{"espeak speech", speech, 33})
	}
	for _, tc := range tests {
		for _, alaw := range []bool{false, true} {
			law := "µ-law"
			if alaw {
				law = "A-law"
			}
			snr := mediatest.SNR(tc.src, g711RoundTrip(tc.src, alaw), 0)
			t.Logf("%s %s: SNR %.2f dB", law, tc.name, snr)
			if snr < tc.min || snr > 45 || math.IsNaN(snr) {
				t.Errorf("%s %s: SNR %.2f dB, want %.0f..45 dB", law, tc.name, snr, tc.min)
			}
		}
	}
}

func TestG711Allocs(t *testing.T) {
	pcm := mediatest.Sine(8000, 440, 0.5, 160)
	enc := make([]byte, 160)
	dec := make([]int16, 160)
	if n := testing.AllocsPerRun(100, func() {
		media.EncodeMulaw(enc, pcm)
		media.DecodeMulaw(dec, enc)
		media.EncodeAlaw(enc, pcm)
		media.DecodeAlaw(dec, enc)
	}); n != 0 {
		t.Errorf("G.711 per frame: %v allocations, want 0", n)
	}
}
