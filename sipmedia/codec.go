package sipmedia

import (
	"fmt"
	"slices"

	"github.com/voicegw/voicegw/media"
)

const (
	frameSamples = 320 // 20 ms at media.PipelineRate
	// fadeSamples is the concealment fade: silence after 60 ms.
	fadeSamples = 3 * frameSamples
)

// decoder turns payloads of one codec into 16 kHz mono samples.
type decoder interface {
	// decode appends the samples of payload to dst.
	decode(dst []int16, payload []byte) ([]int16, error)
	// conceal appends about n samples (or one packet for Opus) replacing
	// lost audio; run is how many samples were concealed before in a row.
	conceal(dst []int16, n, run int) []int16
	// fec appends the audio of a lost packet recovered from next, the
	// packet after it; ok is false when the codec has no FEC.
	fec(dst []int16, next []byte) ([]int16, bool)
	reset()
	close()
}

func newDecoder(codec string) (decoder, error) {
	switch codec {
	case CodecPCMU, CodecPCMA:
		rs, err := media.NewResampler(8000, media.PipelineRate)
		if err != nil {
			return nil, err
		}
		d := &g711Decoder{alaw: codec == CodecPCMA, rs: rs}
		return d, nil
	case CodecOpus:
		od, err := media.NewOpusDecoder(media.PipelineRate, 1)
		if err != nil {
			return nil, err
		}
		return &opusDecoder{dec: od, buf: make([]int16, media.OpusMaxFrameSamples/3)}, nil
	}
	return nil, fmt.Errorf("sipmedia: no decoder for %q", codec)
}

// g711Decoder decodes G.711 at 8 kHz and resamples to 16 kHz. It conceals
// by repeating the last 20 ms it decoded with a linear fade to silence
// over 60 ms.
type g711Decoder struct {
	alaw bool
	rs   *media.Resampler
	pcm8 []int16
	hist [frameSamples]int16 // last 20 ms decoded, at 16 kHz
	have bool
}

func (d *g711Decoder) decode(dst []int16, payload []byte) ([]int16, error) {
	if len(payload) == 0 {
		return dst, fmt.Errorf("empty G.711 payload")
	}
	if cap(d.pcm8) < len(payload) {
		d.pcm8 = make([]int16, len(payload))
	}
	d.pcm8 = d.pcm8[:len(payload)]
	if d.alaw {
		media.DecodeAlaw(d.pcm8, payload)
	} else {
		media.DecodeMulaw(d.pcm8, payload)
	}
	start := len(dst)
	dst = d.rs.Process(dst, d.pcm8)
	d.remember(dst[start:])
	return dst, nil
}

func (d *g711Decoder) remember(out []int16) {
	if len(out) >= frameSamples {
		copy(d.hist[:], out[len(out)-frameSamples:])
	} else {
		copy(d.hist[:], d.hist[len(out):])
		copy(d.hist[frameSamples-len(out):], out)
	}
	d.have = true
}

func (d *g711Decoder) conceal(dst []int16, n, run int) []int16 {
	for i := range n {
		k := run + i
		if !d.have || k >= fadeSamples {
			dst = append(dst, 0)
			continue
		}
		g := float64(fadeSamples-k) / fadeSamples
		dst = append(dst, int16(float64(d.hist[k%frameSamples])*g))
	}
	return dst
}

func (d *g711Decoder) fec(dst []int16, _ []byte) ([]int16, bool) { return dst, false }

func (d *g711Decoder) reset() { d.rs.Reset(); d.have = false }
func (d *g711Decoder) close() {}

// opusDecoder decodes Opus directly at 16 kHz (libopus decodes any
// packet at any of its rates), and conceals with libopus's PLC and
// in-band FEC.
type opusDecoder struct {
	dec *media.OpusDecoder
	buf []int16
}

func (d *opusDecoder) decode(dst []int16, payload []byte) ([]int16, error) {
	n, err := d.dec.Decode(payload, d.buf)
	if err != nil || len(payload) == 0 {
		return dst, fmt.Errorf("opus: %w", err)
	}
	return append(dst, d.buf[:n]...), nil
}

func (d *opusDecoder) conceal(dst []int16, n, run int) []int16 {
	if run >= fadeSamples {
		for range n {
			dst = append(dst, 0)
		}
		return dst
	}
	m, err := d.dec.Decode(nil, d.buf)
	if err != nil || m == 0 {
		for range n {
			dst = append(dst, 0)
		}
		return dst
	}
	return append(dst, d.buf[:m]...)
}

func (d *opusDecoder) fec(dst []int16, next []byte) ([]int16, bool) {
	m, err := d.dec.DecodeFEC(next, d.buf)
	if err != nil || m == 0 {
		return dst, false
	}
	return append(dst, d.buf[:m]...), true
}

func (d *opusDecoder) reset() {
	if nd, err := media.NewOpusDecoder(media.PipelineRate, 1); err == nil {
		d.dec.Close()
		d.dec = nd
	}
}

func (d *opusDecoder) close() { d.dec.Close() }

// encoder turns 20 ms frames at 16 kHz into RTP payloads of the
// negotiated packet duration.
type encoder struct {
	codec   string
	rs      *media.Resampler
	opus    *media.OpusEncoder
	pcm8    []int16
	pending []byte // encoded G.711 not yet sent
	ptimeN  int    // G.711 bytes (= samples) per packet
	out     []byte
}

func newEncoder(p *Plan) (*encoder, error) {
	e := &encoder{codec: p.Codec}
	switch p.Codec {
	case CodecPCMU, CodecPCMA:
		rs, err := media.NewResampler(media.PipelineRate, 8000)
		if err != nil {
			return nil, err
		}
		e.rs = rs
		e.ptimeN = int(p.PTime.Milliseconds()) * 8
		e.pcm8 = make([]int16, 0, 160)
		e.pending = make([]byte, 0, 2*e.ptimeN+160)
	case CodecOpus:
		// libopus takes 16 kHz input directly: no resampling to 48 kHz,
		// the RTP clock stays 48 kHz.
		oe, err := media.NewOpusEncoder(media.PipelineRate, 1)
		if err != nil {
			return nil, err
		}
		e.opus = oe
		e.out = make([]byte, media.OpusMaxPacket)
	default:
		return nil, fmt.Errorf("sipmedia: no encoder for %q", p.Codec)
	}
	return e, nil
}

// encode takes one 20 ms frame and calls emit for each packet that is
// complete, with its payload and duration in RTP clock units. For a
// remote ptime of 10 ms it emits two packets, for 40 ms one every second
// frame, for 30 ms two every three frames.
func (e *encoder) encode(frame []int16, emit func(payload []byte, samples uint32) error) error {
	if e.opus != nil {
		n, err := e.opus.Encode(frame, e.out)
		if err != nil {
			return err
		}
		return emit(e.out[:n], 960)
	}
	e.pcm8 = e.rs.Process(e.pcm8[:0], frame)
	start := len(e.pending)
	e.pending = slices.Grow(e.pending, len(e.pcm8))[:start+len(e.pcm8)]
	if e.codec == CodecPCMA {
		media.EncodeAlaw(e.pending[start:], e.pcm8)
	} else {
		media.EncodeMulaw(e.pending[start:], e.pcm8)
	}
	var err error
	for len(e.pending) >= e.ptimeN && err == nil {
		err = emit(e.pending[:e.ptimeN], uint32(e.ptimeN))
		e.pending = append(e.pending[:0], e.pending[e.ptimeN:]...)
	}
	return err
}

// frameUnits returns the RTP clock units of one 20 ms frame, by which the
// timestamp advances for a frame not sent (hold).
func (e *encoder) frameUnits() uint32 {
	if e.opus != nil {
		return 960
	}
	return 160
}

func (e *encoder) close() {
	if e.opus != nil {
		e.opus.Close()
	}
}
