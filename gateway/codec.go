package gateway

import (
	"fmt"
	"strings"

	"github.com/voicegw/voicegw/media"
)

// audioDecoder turns one RTP payload into zero or more 20 ms frames at
// media.PipelineRate.
type audioDecoder interface {
	decode(payload []byte) ([][]int16, error)
	// conceal returns the frames that stand in for one lost packet.
	conceal() [][]int16
}

// audioEncoder turns one 20 ms frame at media.PipelineRate into an RTP
// payload. The returned slice is valid until the next call.
type audioEncoder interface {
	encode(pcm []int16) ([]byte, error)
}

// framer collects pipeline-rate samples and cuts them into 20 ms frames.
type framer struct {
	pending []int16
}

func (f *framer) push(samples []int16) [][]int16 {
	n := media.SamplesPerFrame(media.PipelineRate)
	f.pending = append(f.pending, samples...)
	var out [][]int16
	for len(f.pending) >= n {
		fr := make([]int16, n)
		copy(fr, f.pending[:n])
		out = append(out, fr)
		f.pending = f.pending[n:]
	}
	// Keep the backing array from growing without bound.
	if len(f.pending) == 0 {
		f.pending = f.pending[:0:0]
	}
	return out
}

func newAudioDecoder(mime string) (audioDecoder, error) {
	switch strings.ToLower(mime) {
	case "audio/opus":
		dec, err := media.NewOpusDecoder(48000, 1)
		if err != nil {
			return nil, fmt.Errorf("opus decoder: %w", err)
		}
		rs, err := media.NewResampler(48000, media.PipelineRate)
		if err != nil {
			return nil, err
		}
		return &opusDecoder{dec: dec, rs: rs, pcm: make([]int16, 5760)}, nil
	case "audio/pcmu", "audio/pcma":
		rs, err := media.NewResampler(8000, media.PipelineRate)
		if err != nil {
			return nil, err
		}
		return &g711Decoder{alaw: strings.EqualFold(mime, "audio/pcma"), rs: rs}, nil
	}
	return nil, fmt.Errorf("%w: %s", errNoAudioCodec, mime)
}

type opusDecoder struct {
	dec *media.OpusDecoder
	rs  *media.Resampler
	pcm []int16
	out []int16
	fr  framer
}

func (d *opusDecoder) decode(payload []byte) ([][]int16, error) {
	if len(payload) == 0 {
		return nil, nil
	}
	n, err := d.dec.Decode(payload, d.pcm)
	if err != nil {
		return nil, fmt.Errorf("opus decode: %w", err)
	}
	d.out = d.rs.Process(d.out[:0], d.pcm[:n])
	return d.fr.push(d.out), nil
}

func (d *opusDecoder) conceal() [][]int16 {
	n, err := d.dec.Decode(nil, d.pcm[:960])
	if err != nil {
		return nil
	}
	d.out = d.rs.Process(d.out[:0], d.pcm[:n])
	return d.fr.push(d.out)
}

type g711Decoder struct {
	alaw bool
	rs   *media.Resampler
	pcm  []int16
	out  []int16
	fr   framer
	last int
}

func (d *g711Decoder) decode(payload []byte) ([][]int16, error) {
	if cap(d.pcm) < len(payload) {
		d.pcm = make([]int16, len(payload))
	}
	pcm := d.pcm[:len(payload)]
	if d.alaw {
		media.DecodeAlaw(pcm, payload)
	} else {
		media.DecodeMulaw(pcm, payload)
	}
	d.last = len(payload)
	d.out = d.rs.Process(d.out[:0], pcm)
	return d.fr.push(d.out), nil
}

// conceal repeats nothing: a lost G.711 packet becomes silence of the
// same length.
func (d *g711Decoder) conceal() [][]int16 {
	if d.last == 0 {
		return nil
	}
	d.out = d.rs.Process(d.out[:0], make([]int16, d.last))
	return d.fr.push(d.out)
}

func newAudioEncoder(mime string) (audioEncoder, error) {
	switch strings.ToLower(mime) {
	case "audio/opus":
		enc, err := media.NewOpusEncoder(48000, 1)
		if err != nil {
			return nil, fmt.Errorf("opus encoder: %w", err)
		}
		rs, err := media.NewResampler(media.PipelineRate, 48000)
		if err != nil {
			return nil, err
		}
		return &opusEncoder{enc: enc, rs: rs, buf: make([]byte, 1500)}, nil
	case "audio/pcmu", "audio/pcma":
		rs, err := media.NewResampler(media.PipelineRate, 8000)
		if err != nil {
			return nil, err
		}
		return &g711Encoder{alaw: strings.EqualFold(mime, "audio/pcma"), rs: rs}, nil
	}
	return nil, fmt.Errorf("%w: %s", errNoAudioCodec, mime)
}

type opusEncoder struct {
	enc *media.OpusEncoder
	rs  *media.Resampler
	up  []int16
	buf []byte
}

func (e *opusEncoder) encode(pcm []int16) ([]byte, error) {
	e.up = e.rs.Process(e.up[:0], pcm)
	if len(e.up) != 960 {
		return nil, fmt.Errorf("opus encode: resampler gave %d samples for one 20 ms frame, want 960", len(e.up))
	}
	n, err := e.enc.Encode(e.up, e.buf)
	if err != nil {
		return nil, fmt.Errorf("opus encode: %w", err)
	}
	return e.buf[:n], nil
}

type g711Encoder struct {
	alaw bool
	rs   *media.Resampler
	down []int16
	buf  []byte
}

func (e *g711Encoder) encode(pcm []int16) ([]byte, error) {
	e.down = e.rs.Process(e.down[:0], pcm)
	if cap(e.buf) < len(e.down) {
		e.buf = make([]byte, len(e.down))
	}
	b := e.buf[:len(e.down)]
	if e.alaw {
		media.EncodeAlaw(b, e.down)
	} else {
		media.EncodeMulaw(b, e.down)
	}
	return b, nil
}
