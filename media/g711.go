package media

import "math/bits"

// G.711 (ITU-T Recommendation G.711, 1988), µ-law and A-law companding.
//
// The code follows the ITU-T reference implementation in the G.191
// Software Tool Library (g711.c): µ-law works on the 14 most significant
// bits of the sample and A-law on the 12 most significant bits, taking the
// one's complement of negative samples. The decoders return the midpoint
// of each quantisation interval, as 16-bit values (µ-law ±32124, A-law
// ±32256 at full scale).
//
// Encoding and decoding are single table lookups: µ-law encoding indexes a
// 16 Ki-entry table by the sample's top 14 bits, A-law a 4 Ki-entry table
// by the top 12 bits, and both decoders a 256-entry table. The tables are
// built once at package initialisation and never written afterwards.

var (
	ulawEncTable = buildUlawEnc()
	ulawDecTable = buildUlawDec()
	alawEncTable = buildAlawEnc()
	alawDecTable = buildAlawDec()
)

// EncodeMulaw encodes src as G.711 µ-law into dst. dst must be at least
// len(src) long.
func EncodeMulaw(dst []byte, src []int16) {
	dst = dst[:len(src)]
	for i, s := range src {
		dst[i] = ulawEncTable[uint16(s)>>2]
	}
}

// DecodeMulaw decodes G.711 µ-law src into dst. dst must be at least
// len(src) long.
func DecodeMulaw(dst []int16, src []byte) {
	dst = dst[:len(src)]
	for i, c := range src {
		dst[i] = ulawDecTable[c]
	}
}

// EncodeAlaw encodes src as G.711 A-law into dst. dst must be at least
// len(src) long.
func EncodeAlaw(dst []byte, src []int16) {
	dst = dst[:len(src)]
	for i, s := range src {
		dst[i] = alawEncTable[uint16(s)>>4]
	}
}

// DecodeAlaw decodes G.711 A-law src into dst. dst must be at least
// len(src) long.
func DecodeAlaw(dst []int16, src []byte) {
	dst = dst[:len(src)]
	for i, c := range src {
		dst[i] = alawDecTable[c]
	}
}

// ulawEncode14 encodes a sample given by its 14 most significant bits
// (an arithmetic right shift by 2 of the 16-bit sample).
func ulawEncode14(v int) byte {
	sign := byte(0x80) // the sign bit is set for positive samples
	if v < 0 {
		v = ^v
		sign = 0
	}
	mag := v + 33 // bias: moves the segment boundaries to powers of two
	if mag > 0x1fff {
		mag = 0x1fff
	}
	seg := bits.Len(uint(mag >> 6)) // 0..7, as mag <= 0x1fff
	mant := (mag >> (seg + 1)) & 0xf
	return sign | byte(7-seg)<<4 | byte(15-mant)
}

func buildUlawEnc() (t [1 << 14]byte) {
	for i := range t {
		// i is the top 14 bits of the sample as an unsigned value.
		t[i] = ulawEncode14(int(int16(uint16(i)<<2) >> 2))
	}
	return t
}

func buildUlawDec() (t [256]int16) {
	for c := range t {
		u := ^byte(c)
		exp := (u >> 4) & 7
		mag := (int(u&0xf)<<3 + 0x84) << exp
		if u&0x80 != 0 {
			t[c] = int16(0x84 - mag)
		} else {
			t[c] = int16(mag - 0x84)
		}
	}
	return t
}

// alawEncode12 encodes a sample given by its 12 most significant bits.
func alawEncode12(v int) byte {
	sign := byte(0x80)
	if v < 0 {
		v = ^v
		sign = 0
	}
	ix := v // 0..2047
	if ix > 15 {
		exp := bits.Len(uint(ix)) - 4 // 1..7
		ix = ix>>(exp-1) - 16 + exp<<4
	}
	return (byte(ix) | sign) ^ 0x55
}

func buildAlawEnc() (t [1 << 12]byte) {
	for i := range t {
		t[i] = alawEncode12(int(int16(uint16(i)<<4) >> 4))
	}
	return t
}

func buildAlawDec() (t [256]int16) {
	for c := range t {
		a := byte(c) ^ 0x55
		exp := (a & 0x70) >> 4
		mag := int(a&0xf)<<4 + 8
		if exp > 0 {
			mag += 0x100
		}
		if exp > 1 {
			mag <<= exp - 1
		}
		if a&0x80 != 0 {
			t[c] = int16(mag)
		} else {
			t[c] = int16(-mag)
		}
	}
	return t
}
