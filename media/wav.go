package media

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Audio is mono PCM16 at Rate.
type Audio struct {
	Rate    int
	Samples []int16
}

// maxWAVBytes bounds what ReadWAV will allocate (10 minutes of 48 kHz stereo).
const maxWAVBytes = 48000 * 2 * 2 * 600

// ReadWAV reads a RIFF/WAVE file of 16-bit PCM (format 1, or
// WAVE_FORMAT_EXTENSIBLE with the PCM sub-format), mono or stereo; stereo is
// averaged to mono.
func ReadWAV(r io.Reader) (*Audio, error) {
	var hdr [12]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrMalformedWAV, err)
	}
	if string(hdr[0:4]) != "RIFF" || string(hdr[8:12]) != "WAVE" {
		return nil, fmt.Errorf("%w: not a RIFF/WAVE file", ErrMalformedWAV)
	}
	var (
		rate, channels, bits int
		haveFmt              bool
	)
	for {
		var ch [8]byte
		if _, err := io.ReadFull(r, ch[:]); err != nil {
			return nil, fmt.Errorf("%w: no data chunk: %v", ErrMalformedWAV, err)
		}
		id := string(ch[0:4])
		size := int64(binary.LittleEndian.Uint32(ch[4:8]))
		switch id {
		case "fmt ":
			if size < 16 || size > 1024 {
				return nil, fmt.Errorf("%w: fmt chunk of %d bytes", ErrMalformedWAV, size)
			}
			b := make([]byte, size+size%2)
			if _, err := io.ReadFull(r, b); err != nil {
				return nil, fmt.Errorf("%w: fmt chunk: %v", ErrMalformedWAV, err)
			}
			tag := binary.LittleEndian.Uint16(b[0:2])
			channels = int(binary.LittleEndian.Uint16(b[2:4]))
			rate = int(binary.LittleEndian.Uint32(b[4:8]))
			bits = int(binary.LittleEndian.Uint16(b[14:16]))
			if tag == 0xfffe && size >= 40 {
				tag = binary.LittleEndian.Uint16(b[24:26]) // sub-format GUID starts with the tag
			}
			if tag != 1 {
				return nil, fmt.Errorf("%w: format tag %#x (only PCM is read)", ErrMalformedWAV, tag)
			}
			if bits != 16 {
				return nil, fmt.Errorf("%w: %d bits per sample (only 16 is read)", ErrMalformedWAV, bits)
			}
			if channels != 1 && channels != 2 {
				return nil, fmt.Errorf("%w: %d channels (only mono and stereo are read)", ErrMalformedWAV, channels)
			}
			if rate < 1000 || rate > 384000 {
				return nil, fmt.Errorf("%w: sample rate %d", ErrMalformedWAV, rate)
			}
			haveFmt = true
		case "data":
			if !haveFmt {
				return nil, fmt.Errorf("%w: data chunk before fmt chunk", ErrMalformedWAV)
			}
			// Some writers leave the size at 0 or 0xffffffff while streaming:
			// read to the end, bounded.
			limit := size
			if size == 0 || size == 0xffffffff || size > maxWAVBytes {
				if size > maxWAVBytes && size != 0xffffffff {
					return nil, fmt.Errorf("%w: data chunk of %d bytes is over the %d byte limit", ErrMalformedWAV, size, maxWAVBytes)
				}
				limit = maxWAVBytes
			}
			b, err := io.ReadAll(io.LimitReader(r, limit))
			if err != nil {
				return nil, fmt.Errorf("%w: data: %v", ErrMalformedWAV, err)
			}
			if size != 0 && size != 0xffffffff && int64(len(b)) < size {
				return nil, fmt.Errorf("%w: data chunk truncated (%d of %d bytes)", ErrMalformedWAV, len(b), size)
			}
			frame := 2 * channels
			n := len(b) / frame
			out := make([]int16, n)
			for i := range n {
				if channels == 1 {
					out[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
				} else {
					l := int32(int16(binary.LittleEndian.Uint16(b[4*i:])))
					rr := int32(int16(binary.LittleEndian.Uint16(b[4*i+2:])))
					out[i] = int16((l + rr) / 2)
				}
			}
			return &Audio{Rate: rate, Samples: out}, nil
		default:
			if size > maxWAVBytes {
				return nil, fmt.Errorf("%w: %q chunk of %d bytes", ErrMalformedWAV, id, size)
			}
			if _, err := io.CopyN(io.Discard, r, size+size%2); err != nil {
				return nil, fmt.Errorf("%w: %q chunk: %v", ErrMalformedWAV, id, err)
			}
		}
	}
}

// WriteWAV writes samples as a mono 16-bit PCM WAV file at rate.
func WriteWAV(w io.Writer, rate int, samples []int16) error {
	data := len(samples) * 2
	if int64(data) > 0xffffffff-36 {
		return fmt.Errorf("wav: %d samples do not fit a RIFF file", len(samples))
	}
	b := make([]byte, 44+data)
	copy(b[0:], "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(36+data))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], 1)
	binary.LittleEndian.PutUint16(b[22:], 1)
	binary.LittleEndian.PutUint32(b[24:], uint32(rate))
	binary.LittleEndian.PutUint32(b[28:], uint32(rate*2))
	binary.LittleEndian.PutUint16(b[32:], 2)
	binary.LittleEndian.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(data))
	for i, s := range samples {
		binary.LittleEndian.PutUint16(b[44+2*i:], uint16(s))
	}
	_, err := w.Write(b)
	return err
}
