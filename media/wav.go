package media

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// Audio is mono PCM16 audio at a sample rate.
type Audio struct {
	Rate    int
	Samples []int16
}

// Duration returns the length of the audio.
func (a *Audio) Duration() time.Duration {
	if a.Rate <= 0 {
		return 0
	}
	return time.Duration(len(a.Samples)) * time.Second / time.Duration(a.Rate)
}

// MaxWAVBytes bounds the sample data ReadWAV accepts (about 5.8 hours of
// 16 kHz mono audio), so that a hostile header cannot make it allocate
// without limit; memory grows only as data actually arrives.
const MaxWAVBytes = 1 << 30

const (
	wavFormatPCM        = 0x0001
	wavFormatExtensible = 0xfffe
	wavMaxChannels      = 8
	wavMaxRate          = 768000
	// wavSizeUnknown is the data size streaming writers put in the header
	// when they cannot seek back: the data then runs to the end of the file.
	wavSizeUnknown = 0xffffffff
)

// ReadWAV reads a RIFF/WAVE file of 16-bit integer PCM. Files with more
// than one channel (up to 8) are downmixed to mono by averaging. Chunks
// other than "fmt " and "data" are skipped. A data chunk whose declared
// size is 0xFFFFFFFF (written by streaming encoders) runs to the end of
// the input. Errors wrap ErrMalformedWAV, ErrUnsupportedWAV,
// ErrTruncatedWAV or ErrWAVTooLarge.
func ReadWAV(r io.Reader) (*Audio, error) {
	var hdr [12]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("%w: reading riff header: %w", ErrMalformedWAV, err)
	}
	if string(hdr[0:4]) != "RIFF" || string(hdr[8:12]) != "WAVE" {
		return nil, fmt.Errorf("%w: not a RIFF/WAVE file", ErrMalformedWAV)
	}
	var (
		haveFmt  bool
		channels int
		rate     int
	)
	for {
		var ch [8]byte
		if _, err := io.ReadFull(r, ch[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("%w: no data chunk", ErrMalformedWAV)
			}
			return nil, fmt.Errorf("%w: reading chunk header: %w", ErrTruncatedWAV, err)
		}
		id := string(ch[0:4])
		size := binary.LittleEndian.Uint32(ch[4:8])
		switch id {
		case "fmt ":
			if haveFmt {
				return nil, fmt.Errorf("%w: duplicate fmt chunk", ErrMalformedWAV)
			}
			var err error
			channels, rate, err = readWAVFormat(r, size)
			if err != nil {
				return nil, err
			}
			haveFmt = true
		case "data":
			if !haveFmt {
				return nil, fmt.Errorf("%w: data chunk before fmt chunk", ErrMalformedWAV)
			}
			samples, err := readWAVData(r, size, channels)
			if err != nil {
				return nil, err
			}
			return &Audio{Rate: rate, Samples: samples}, nil
		default:
			if !isChunkID(ch[0:4]) {
				return nil, fmt.Errorf("%w: bad chunk id %q", ErrMalformedWAV, ch[0:4])
			}
			// Chunks are padded to an even size.
			skip := int64(size) + int64(size&1)
			if n, err := io.CopyN(io.Discard, r, skip); err != nil {
				return nil, fmt.Errorf("%w: chunk %q declares %d bytes, %d present", ErrTruncatedWAV, id, skip, n)
			}
		}
	}
}

// isChunkID reports whether b is a plausible FOURCC: printable ASCII.
func isChunkID(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

func readWAVFormat(r io.Reader, size uint32) (channels, rate int, err error) {
	if size < 16 || size > 1024 {
		return 0, 0, fmt.Errorf("%w: fmt chunk of %d bytes", ErrMalformedWAV, size)
	}
	buf := make([]byte, size+size&1)
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, 0, fmt.Errorf("%w: fmt chunk: %w", ErrTruncatedWAV, err)
	}
	le := binary.LittleEndian
	tag := le.Uint16(buf[0:2])
	channels = int(le.Uint16(buf[2:4]))
	rate = int(le.Uint32(buf[4:8]))
	blockAlign := int(le.Uint16(buf[12:14]))
	bitsPerSample := int(le.Uint16(buf[14:16]))
	if tag == wavFormatExtensible {
		// WAVEFORMATEXTENSIBLE: cbSize, valid bits, channel mask, then the
		// sub-format GUID whose first two bytes are the format tag.
		if size < 40 || le.Uint16(buf[16:18]) < 22 {
			return 0, 0, fmt.Errorf("%w: short WAVE_FORMAT_EXTENSIBLE fmt chunk", ErrMalformedWAV)
		}
		tag = le.Uint16(buf[24:26])
	}
	switch {
	case tag != wavFormatPCM:
		return 0, 0, fmt.Errorf("%w: format tag %#04x (want 1, integer PCM)", ErrUnsupportedWAV, tag)
	case bitsPerSample != 16:
		return 0, 0, fmt.Errorf("%w: %d bits per sample (want 16)", ErrUnsupportedWAV, bitsPerSample)
	case channels < 1 || channels > wavMaxChannels:
		return 0, 0, fmt.Errorf("%w: %d channels", ErrUnsupportedWAV, channels)
	case rate < 1 || rate > wavMaxRate:
		return 0, 0, fmt.Errorf("%w: sample rate %d", ErrMalformedWAV, rate)
	case blockAlign != 2*channels:
		return 0, 0, fmt.Errorf("%w: block align %d for %d channels of 16 bits", ErrMalformedWAV, blockAlign, channels)
	}
	return channels, rate, nil
}

func readWAVData(r io.Reader, size uint32, channels int) ([]int16, error) {
	block := 2 * channels
	toEOF := size == wavSizeUnknown
	if !toEOF {
		if size > MaxWAVBytes {
			return nil, fmt.Errorf("%w: data chunk of %d bytes (limit %d)", ErrWAVTooLarge, size, MaxWAVBytes)
		}
		if int(size)%block != 0 {
			return nil, fmt.Errorf("%w: data size %d is not a multiple of the %d-byte block", ErrMalformedWAV, size, block)
		}
	}
	// Read in bounded pieces so that memory follows the bytes present,
	// not the size declared.
	const piece = 64 << 10
	buf := make([]byte, piece-piece%block)
	var out []int16
	remaining := int64(size)
	total := 0
	for toEOF || remaining > 0 {
		want := len(buf)
		if !toEOF && int64(want) > remaining {
			want = int(remaining)
		}
		n, err := io.ReadFull(r, buf[:want])
		total += n
		if toEOF && total > MaxWAVBytes {
			return nil, fmt.Errorf("%w: more than %d bytes of data", ErrWAVTooLarge, MaxWAVBytes)
		}
		if n%block != 0 {
			if toEOF && errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, fmt.Errorf("%w: data ends inside a sample frame", ErrTruncatedWAV)
			}
		}
		out = appendDownmix(out, buf[:n-n%block], channels)
		remaining -= int64(n)
		if err != nil {
			if toEOF && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
				break
			}
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, fmt.Errorf("%w: data chunk declares %d bytes, %d present", ErrTruncatedWAV, size, total)
			}
			return nil, fmt.Errorf("media: reading wav data: %w", err)
		}
	}
	return out, nil
}

func appendDownmix(out []int16, b []byte, channels int) []int16 {
	le := binary.LittleEndian
	if channels == 1 {
		for i := 0; i+1 < len(b); i += 2 {
			out = append(out, int16(le.Uint16(b[i:])))
		}
		return out
	}
	block := 2 * channels
	for i := 0; i+block <= len(b); i += block {
		sum := 0
		for c := range channels {
			sum += int(int16(le.Uint16(b[i+2*c:])))
		}
		out = append(out, int16(roundDiv(sum, channels)))
	}
	return out
}

// roundDiv divides rounding half away from zero.
func roundDiv(a, b int) int {
	if a < 0 {
		return -((-a + b/2) / b)
	}
	return (a + b/2) / b
}

// WriteWAV writes samples as a mono 16-bit PCM RIFF/WAVE file at rate.
func WriteWAV(w io.Writer, rate int, samples []int16) error {
	if rate < 1 || rate > wavMaxRate {
		return fmt.Errorf("%w: %d Hz for wav", ErrUnsupportedRate, rate)
	}
	dataBytes := uint64(len(samples)) * 2
	if dataBytes > 0xffffffff-36 {
		return fmt.Errorf("%w: %d samples", ErrWAVTooLarge, len(samples))
	}
	var h [44]byte
	le := binary.LittleEndian
	copy(h[0:4], "RIFF")
	le.PutUint32(h[4:8], uint32(36+dataBytes))
	copy(h[8:16], "WAVEfmt ")
	le.PutUint32(h[16:20], 16)
	le.PutUint16(h[20:22], wavFormatPCM)
	le.PutUint16(h[22:24], 1)
	le.PutUint32(h[24:28], uint32(rate))
	le.PutUint32(h[28:32], uint32(rate*2))
	le.PutUint16(h[32:34], 2)
	le.PutUint16(h[34:36], 16)
	copy(h[36:40], "data")
	le.PutUint32(h[40:44], uint32(dataBytes))
	if _, err := w.Write(h[:]); err != nil {
		return fmt.Errorf("media: writing wav header: %w", err)
	}
	buf := make([]byte, 0, 8192)
	for len(samples) > 0 {
		n := min(len(samples), cap(buf)/2)
		buf = buf[:0]
		for _, s := range samples[:n] {
			buf = le.AppendUint16(buf, uint16(s))
		}
		if _, err := w.Write(buf); err != nil {
			return fmt.Errorf("media: writing wav data: %w", err)
		}
		samples = samples[n:]
	}
	return nil
}
