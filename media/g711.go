package media

// G.711 (ITU-T G.711) µ-law and A-law, table driven. Encoding looks the
// sample up in a 16384-entry (µ-law, 14-bit) or 8192-entry (A-law, 13-bit)
// table indexed by the sample's top bits; decoding is a 256-entry table.
// The tables are built once from the reference bit algorithms.

var (
	ulawDecode [256]int16
	alawDecode [256]int16
	ulawEncode [1 << 14]byte
	alawEncode [1 << 13]byte
)

func init() {
	for i := range 256 {
		ulawDecode[i] = ulawToLinear(byte(i))
		alawDecode[i] = alawToLinear(byte(i))
	}
	for i := range ulawEncode {
		// Index is the 14-bit two's complement sample (sample >> 2).
		s := int16(uint16(i << 2)) // sign-extend through uint16
		ulawEncode[i] = linearToUlaw(s)
	}
	for i := range alawEncode {
		s := int16(uint16(i << 3))
		alawEncode[i] = linearToAlaw(s)
	}
}

// EncodeMulaw encodes src into dst, which must be at least len(src) long.
func EncodeMulaw(dst []byte, src []int16) {
	dst = dst[:len(src)]
	for i, s := range src {
		dst[i] = ulawEncode[uint16(s)>>2]
	}
}

// DecodeMulaw decodes src into dst, which must be at least len(src) long.
func DecodeMulaw(dst []int16, src []byte) {
	dst = dst[:len(src)]
	for i, b := range src {
		dst[i] = ulawDecode[b]
	}
}

// EncodeAlaw encodes src into dst, which must be at least len(src) long.
func EncodeAlaw(dst []byte, src []int16) {
	dst = dst[:len(src)]
	for i, s := range src {
		dst[i] = alawEncode[uint16(s)>>3]
	}
}

// DecodeAlaw decodes src into dst, which must be at least len(src) long.
func DecodeAlaw(dst []int16, src []byte) {
	dst = dst[:len(src)]
	for i, b := range src {
		dst[i] = alawDecode[b]
	}
}

// linearToUlaw is the reference µ-law encoder (bias 0x84, clip 32635).
func linearToUlaw(s int16) byte {
	const bias, clip = 0x84, 32635
	v := int(s)
	sign := 0
	if v < 0 {
		v = -v
		sign = 0x80
	}
	if v > clip {
		v = clip
	}
	v += bias
	exp := 7
	for mask := 0x4000; v&mask == 0 && exp > 0; mask >>= 1 {
		exp--
	}
	mant := (v >> (exp + 3)) & 0x0f
	return ^byte(sign | exp<<4 | mant)
}

func ulawToLinear(u byte) int16 {
	u = ^u
	sign := u & 0x80
	exp := int(u>>4) & 0x07
	mant := int(u & 0x0f)
	v := ((mant << 3) + 0x84) << exp
	v -= 0x84
	if sign != 0 {
		return int16(-v)
	}
	return int16(v)
}

// linearToAlaw is the reference A-law encoder on the 13-bit magnitude.
func linearToAlaw(s int16) byte {
	v := int(s) >> 3 // 13-bit
	var mask byte
	if v >= 0 {
		mask = 0xd5
	} else {
		mask = 0x55
		v = -v - 1
	}
	var out byte
	switch {
	case v < 32:
		out = byte(v >> 1)
	default:
		seg := 1
		for t := v >> 5; t > 1; t >>= 1 {
			seg++
		}
		if seg > 7 {
			out = 0x7f
		} else {
			out = byte(seg<<4) | byte((v>>seg)&0x0f)
		}
	}
	return out ^ mask
}

func alawToLinear(a byte) int16 {
	a ^= 0x55
	t := int(a&0x0f) << 4
	seg := int(a&0x70) >> 4
	switch seg {
	case 0:
		t += 8
	case 1:
		t += 0x108
	default:
		t += 0x108
		t <<= seg - 1
	}
	if a&0x80 != 0 {
		return int16(t)
	}
	return int16(-t)
}
