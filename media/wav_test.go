package media_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/voicegw/voicegw/media"
	"github.com/voicegw/voicegw/media/mediatest"
)

// wavFile builds a RIFF/WAVE file from raw chunks (id, payload); odd
// payloads get their pad byte.
func wavFile(chunks ...any) []byte {
	var b bytes.Buffer
	b.WriteString("RIFF\x00\x00\x00\x00WAVE")
	for i := 0; i+1 < len(chunks); i += 2 {
		id := chunks[i].(string)
		payload, _ := chunks[i+1].([]byte)
		b.WriteString(id)
		_ = binary.Write(&b, binary.LittleEndian, uint32(len(payload)))
		b.Write(payload)
		if len(payload)%2 == 1 {
			b.WriteByte(0)
		}
	}
	out := b.Bytes()
	binary.LittleEndian.PutUint32(out[4:], uint32(len(out)-8))
	return out
}

func fmtChunk(tag, channels uint16, rate uint32, bits uint16) []byte {
	b := make([]byte, 16)
	le := binary.LittleEndian
	le.PutUint16(b[0:], tag)
	le.PutUint16(b[2:], channels)
	le.PutUint32(b[4:], rate)
	le.PutUint32(b[8:], rate*uint32(channels)*uint32(bits/8))
	le.PutUint16(b[12:], channels*bits/8)
	le.PutUint16(b[14:], bits)
	return b
}

func pcmBytes(s ...int16) []byte {
	b := make([]byte, 0, 2*len(s))
	for _, v := range s {
		b = binary.LittleEndian.AppendUint16(b, uint16(v))
	}
	return b
}

func TestWAVRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 3, 16000, 100001} {
		in := mediatest.WhiteNoise(uint64(n), -6, n)
		var buf bytes.Buffer
		if err := media.WriteWAV(&buf, 16000, in); err != nil {
			t.Fatal(err)
		}
		if buf.Len() != 44+2*n {
			t.Errorf("%d samples: file of %d bytes, want %d", n, buf.Len(), 44+2*n)
		}
		a, err := media.ReadWAV(&buf)
		if err != nil {
			t.Fatalf("%d samples: %v", n, err)
		}
		if a.Rate != 16000 || !slices.Equal(a.Samples, in) && !(n == 0 && len(a.Samples) == 0) {
			t.Errorf("%d samples: read back rate %d and %d samples, not what was written", n, a.Rate, len(a.Samples))
		}
	}
}

func TestWAVReadVariants(t *testing.T) {
	ext := make([]byte, 40) // WAVE_FORMAT_EXTENSIBLE with the PCM sub-format
	copy(ext, fmtChunk(0xfffe, 1, 8000, 16))
	binary.LittleEndian.PutUint16(ext[16:], 22)
	binary.LittleEndian.PutUint16(ext[18:], 16)
	binary.LittleEndian.PutUint16(ext[24:], 1)
	tests := []struct {
		name string
		file []byte
		rate int
		want []int16
	}{
		{"mono", wavFile("fmt ", fmtChunk(1, 1, 8000, 16), "data", pcmBytes(1, -2, 3)), 8000, []int16{1, -2, 3}},
		{"stereo downmix", wavFile("fmt ", fmtChunk(1, 2, 48000, 16), "data", pcmBytes(100, 200, -32768, -32768, 3, -4)), 48000, []int16{150, -32768, -1}},
		{"extensible", wavFile("fmt ", ext, "data", pcmBytes(7)), 8000, []int16{7}},
		{"odd chunks skipped", wavFile("LIST", []byte("abc"), "fmt ", fmtChunk(1, 1, 16000, 16), "fact", []byte{1}, "data", pcmBytes(5, 6)), 16000, []int16{5, 6}},
		{"chunks after data ignored", append(wavFile("fmt ", fmtChunk(1, 1, 16000, 16), "data", pcmBytes(9)), "junkjunk"...), 16000, []int16{9}},
	}
	// A streaming writer's "unknown" data size runs to the end.
	stream := wavFile("fmt ", fmtChunk(1, 1, 22050, 16), "data", pcmBytes(1, 2, 3, 4))
	binary.LittleEndian.PutUint32(stream[len(stream)-8-4:], 0xffffffff)
	tests = append(tests, struct {
		name string
		file []byte
		rate int
		want []int16
	}{"streamed size", stream, 22050, []int16{1, 2, 3, 4}})
	for _, tc := range tests {
		a, err := media.ReadWAV(bytes.NewReader(tc.file))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if a.Rate != tc.rate || !slices.Equal(a.Samples, tc.want) {
			t.Errorf("%s: got %d Hz %v, want %d Hz %v", tc.name, a.Rate, a.Samples, tc.rate, tc.want)
		}
	}
}

func TestWAVMalformed(t *testing.T) {
	good := wavFile("fmt ", fmtChunk(1, 1, 16000, 16), "data", pcmBytes(1, 2, 3, 4))
	huge := slices.Clone(good)
	binary.LittleEndian.PutUint32(huge[40:], 0x3ffffff0) // data size
	over := slices.Clone(good)
	binary.LittleEndian.PutUint32(over[40:], 0xfffffff0)
	hugeChunk := wavFile("LIST", nil, "fmt ", fmtChunk(1, 1, 16000, 16), "data", pcmBytes(1))
	binary.LittleEndian.PutUint32(hugeChunk[16:], 0xfffffff0)
	oddData := wavFile("fmt ", fmtChunk(1, 1, 16000, 16), "data", []byte{1, 2, 3})
	badAlign := wavFile("fmt ", fmtChunk(1, 2, 16000, 16), "data", pcmBytes(1, 2))
	binary.LittleEndian.PutUint16(badAlign[32:], 2)
	tests := []struct {
		name string
		file []byte
		want error
	}{
		{"empty", nil, media.ErrMalformedWAV},
		{"not riff", []byte("RIFX\x00\x00\x00\x00WAVEfmt "), media.ErrMalformedWAV},
		{"not wave", []byte("RIFF\x00\x00\x00\x00AVI LIST"), media.ErrMalformedWAV},
		{"truncated header", good[:30], media.ErrTruncatedWAV},
		{"truncated data", good[:len(good)-3], media.ErrTruncatedWAV},
		{"no data chunk", wavFile("fmt ", fmtChunk(1, 1, 16000, 16)), media.ErrMalformedWAV},
		{"data before fmt", wavFile("data", pcmBytes(1), "fmt ", fmtChunk(1, 1, 16000, 16)), media.ErrMalformedWAV},
		{"duplicate fmt", wavFile("fmt ", fmtChunk(1, 1, 16000, 16), "fmt ", fmtChunk(1, 1, 16000, 16), "data", nil), media.ErrMalformedWAV},
		{"float format", wavFile("fmt ", fmtChunk(3, 1, 16000, 32), "data", pcmBytes(1, 2)), media.ErrUnsupportedWAV},
		{"a-law format", wavFile("fmt ", fmtChunk(6, 1, 8000, 8), "data", []byte{1}), media.ErrUnsupportedWAV},
		{"8-bit pcm", wavFile("fmt ", fmtChunk(1, 1, 8000, 8), "data", []byte{1}), media.ErrUnsupportedWAV},
		{"zero channels", wavFile("fmt ", fmtChunk(1, 0, 8000, 16), "data", nil), media.ErrUnsupportedWAV},
		{"zero rate", wavFile("fmt ", fmtChunk(1, 1, 0, 16), "data", nil), media.ErrMalformedWAV},
		{"short fmt", wavFile("fmt ", make([]byte, 14), "data", nil), media.ErrMalformedWAV},
		{"bad block align", badAlign, media.ErrMalformedWAV},
		{"odd data size", oddData, media.ErrMalformedWAV},
		{"huge declared data", huge, media.ErrTruncatedWAV},
		{"data over limit", over, media.ErrWAVTooLarge},
		{"huge declared chunk", hugeChunk, media.ErrTruncatedWAV},
		{"binary chunk id", wavFile("\x00\x01\x02\x03", []byte{1}, "fmt ", fmtChunk(1, 1, 8000, 16), "data", nil), media.ErrMalformedWAV},
	}
	for _, tc := range tests {
		a, err := media.ReadWAV(bytes.NewReader(tc.file))
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: got (%v, %v), want error %v", tc.name, a, err, tc.want)
		}
	}
}

// errReader fails after its data.
type errReader struct{ r io.Reader }

var errBoom = errors.New("boom")

func (e errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if errors.Is(err, io.EOF) {
		return n, errBoom
	}
	return n, err
}

func TestWAVReadError(t *testing.T) {
	good := wavFile("fmt ", fmtChunk(1, 1, 16000, 16), "data", pcmBytes(1, 2, 3, 4))
	_, err := media.ReadWAV(errReader{bytes.NewReader(good[:len(good)-2])})
	if !errors.Is(err, errBoom) {
		t.Errorf("read error not passed on: %v", err)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errBoom }

func TestWAVWriteErrors(t *testing.T) {
	if err := media.WriteWAV(failWriter{}, 16000, []int16{1}); !errors.Is(err, errBoom) {
		t.Errorf("write error not passed on: %v", err)
	}
	if err := media.WriteWAV(io.Discard, 0, []int16{1}); !errors.Is(err, media.ErrUnsupportedRate) {
		t.Errorf("rate 0: %v, want ErrUnsupportedRate", err)
	}
}

func FuzzReadWAV(f *testing.F) {
	var buf bytes.Buffer
	_ = media.WriteWAV(&buf, 16000, []int16{0, 1, -1, 32767, -32768})
	f.Add(buf.Bytes())
	f.Add(wavFile("fmt ", fmtChunk(1, 2, 8000, 16), "LIST", []byte("x"), "data", pcmBytes(1, 2, 3, 4)))
	f.Add(wavFile("fmt ", fmtChunk(0xfffe, 1, 8000, 16), "data", nil))
	f.Add([]byte("RIFF\xff\xff\xff\xffWAVEdata\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := media.ReadWAV(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, media.ErrMalformedWAV) && !errors.Is(err, media.ErrUnsupportedWAV) &&
				!errors.Is(err, media.ErrTruncatedWAV) && !errors.Is(err, media.ErrWAVTooLarge) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		if a.Rate <= 0 || len(a.Samples) > len(data)/2 {
			t.Fatalf("implausible result: rate %d, %d samples from %d bytes", a.Rate, len(a.Samples), len(data))
		}
		var out bytes.Buffer
		if err := media.WriteWAV(&out, a.Rate, a.Samples); err != nil {
			t.Fatal(err)
		}
		b, err := media.ReadWAV(&out)
		if err != nil || b.Rate != a.Rate || !slices.Equal(a.Samples, b.Samples) {
			t.Fatalf("rewrite does not round-trip: %v", err)
		}
	})
}
