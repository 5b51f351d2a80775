package media

/*
#cgo pkg-config: opus
#include <stdlib.h>
#include <opus.h>

static int vg_opus_encoder_set(OpusEncoder *e, int bitrate, int complexity, int fec, int loss) {
	int r;
	if ((r = opus_encoder_ctl(e, OPUS_SET_BITRATE(bitrate))) != OPUS_OK) return r;
	if ((r = opus_encoder_ctl(e, OPUS_SET_COMPLEXITY(complexity))) != OPUS_OK) return r;
	if ((r = opus_encoder_ctl(e, OPUS_SET_INBAND_FEC(fec))) != OPUS_OK) return r;
	if ((r = opus_encoder_ctl(e, OPUS_SET_PACKET_LOSS_PERC(loss))) != OPUS_OK) return r;
	return opus_encoder_ctl(e, OPUS_SET_SIGNAL(OPUS_SIGNAL_VOICE));
}
*/
import "C"

import (
	"fmt"
	"runtime"
	"unsafe"
)

func opusErr(op string, code C.int) error {
	return fmt.Errorf("%w: opus %s: %s", ErrCodec, op, C.GoString(C.opus_strerror(code)))
}

func opusRate(rate int) bool {
	switch rate {
	case 8000, 12000, 16000, 24000, 48000:
		return true
	}
	return false
}

// OpusEncoder is a libopus encoder (VoIP application, voice signal,
// 32 kbit/s, in-band FEC on). Not safe for concurrent use.
type OpusEncoder struct {
	e        *C.OpusEncoder
	rate, ch int
}

// NewOpusEncoder creates an encoder for rate (8, 12, 16, 24 or 48 kHz)
// and 1 or 2 channels.
func NewOpusEncoder(rate, channels int) (*OpusEncoder, error) {
	if !opusRate(rate) {
		return nil, fmt.Errorf("%w: opus at %d Hz", ErrUnsupportedRate, rate)
	}
	if channels != 1 && channels != 2 {
		return nil, fmt.Errorf("%w: opus with %d channels", ErrCodec, channels)
	}
	var code C.int
	e := C.opus_encoder_create(C.opus_int32(rate), C.int(channels), C.OPUS_APPLICATION_VOIP, &code)
	if code != C.OPUS_OK {
		return nil, opusErr("encoder_create", code)
	}
	if r := C.vg_opus_encoder_set(e, 32000, 5, 1, 5); r != C.OPUS_OK {
		C.opus_encoder_destroy(e)
		return nil, opusErr("encoder_ctl", r)
	}
	enc := &OpusEncoder{e: e, rate: rate, ch: channels}
	runtime.AddCleanup(enc, func(e *C.OpusEncoder) { C.opus_encoder_destroy(e) }, e)
	return enc, nil
}

// Encode encodes one 20 ms frame (interleaved if stereo) into dst and
// returns the packet length.
func (e *OpusEncoder) Encode(pcm []int16, dst []byte) (int, error) {
	want := SamplesPerFrame(e.rate) * e.ch
	if len(pcm) != want {
		return 0, fmt.Errorf("%w: opus encode got %d samples, want %d", ErrFrameSize, len(pcm), want)
	}
	if len(dst) == 0 {
		return 0, fmt.Errorf("%w: opus encode into an empty buffer", ErrFrameSize)
	}
	n := C.opus_encode(e.e, (*C.opus_int16)(unsafe.Pointer(&pcm[0])), C.int(want/e.ch),
		(*C.uchar)(unsafe.Pointer(&dst[0])), C.opus_int32(len(dst)))
	runtime.KeepAlive(e)
	if n < 0 {
		return 0, opusErr("encode", n)
	}
	return int(n), nil
}

// OpusDecoder is a libopus decoder. Not safe for concurrent use.
type OpusDecoder struct {
	d        *C.OpusDecoder
	rate, ch int
	last     int // samples per channel of the last decoded packet
}

// NewOpusDecoder creates a decoder producing rate Hz with 1 or 2
// channels; it accepts any valid Opus packet (mono or stereo, any mode).
func NewOpusDecoder(rate, channels int) (*OpusDecoder, error) {
	if !opusRate(rate) {
		return nil, fmt.Errorf("%w: opus at %d Hz", ErrUnsupportedRate, rate)
	}
	if channels != 1 && channels != 2 {
		return nil, fmt.Errorf("%w: opus with %d channels", ErrCodec, channels)
	}
	var code C.int
	d := C.opus_decoder_create(C.opus_int32(rate), C.int(channels), &code)
	if code != C.OPUS_OK {
		return nil, opusErr("decoder_create", code)
	}
	dec := &OpusDecoder{d: d, rate: rate, ch: channels, last: SamplesPerFrame(rate)}
	runtime.AddCleanup(dec, func(d *C.OpusDecoder) { C.opus_decoder_destroy(d) }, d)
	return dec, nil
}

// Decode decodes pkt into dst and returns the samples per channel. A nil or
// empty pkt asks for packet-loss concealment of one packet's length (the
// last packet's, or min(len(dst), 20 ms)).
func (d *OpusDecoder) Decode(pkt []byte, dst []int16) (int, error) {
	maxPer := len(dst) / d.ch
	if maxPer == 0 {
		return 0, fmt.Errorf("%w: opus decode into an empty buffer", ErrFrameSize)
	}
	var data *C.uchar
	frame := maxPer
	if len(pkt) == 0 {
		frame = min(d.last, maxPer)
	} else {
		data = (*C.uchar)(unsafe.Pointer(&pkt[0]))
	}
	n := C.opus_decode(d.d, data, C.opus_int32(len(pkt)), (*C.opus_int16)(unsafe.Pointer(&dst[0])), C.int(frame), 0)
	runtime.KeepAlive(d)
	if n < 0 {
		return 0, opusErr("decode", n)
	}
	if len(pkt) > 0 {
		d.last = int(n)
	}
	return int(n), nil
}
