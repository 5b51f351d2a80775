package media

/*
#cgo pkg-config: opus
#include <opus.h>

// The ctl calls are variadic macros, which cgo cannot call: wrap them.
static int vg_opus_enc_set(OpusEncoder *e, int request, opus_int32 v) {
	return opus_encoder_ctl(e, request, v);
}
// vg_opus_dec_last_duration returns the samples per channel of the last
// packet decoded (or concealed), or -1.
static opus_int32 vg_opus_dec_last_duration(OpusDecoder *d) {
	opus_int32 v = 0;
	if (opus_decoder_ctl(d, OPUS_GET_LAST_PACKET_DURATION(&v)) != OPUS_OK) return -1;
	return v;
}
*/
import "C"

import (
	"fmt"
	"runtime"
	"unsafe"
)

// Opus defaults for new encoders: wideband voice over lossy networks.
const (
	// OpusDefaultBitrate is the encoder's initial target, in bit/s.
	OpusDefaultBitrate = 32000
	// OpusDefaultComplexity is the encoder's initial complexity (0..10).
	// 5 costs about half of 10 for speech that is hard to tell apart.
	OpusDefaultComplexity = 5
	// OpusMaxPacket is a destination size that always holds one 20 ms
	// packet (RFC 6716 allows at most 1275 bytes per frame).
	OpusMaxPacket = 1275
	// OpusMaxFrameSamples is the samples per channel in the longest Opus
	// packet (120 ms) at 48 kHz: a decode buffer of this size per channel
	// accepts any valid packet.
	OpusMaxFrameSamples = 5760
)

func opusError(op string, code C.int) error {
	return fmt.Errorf("%w: %s: %s", ErrOpus, op, C.GoString(C.opus_strerror(code)))
}

func opusRate(rate int) bool {
	switch rate {
	case 8000, 12000, 16000, 24000, 48000:
		return true
	}
	return false
}

// OpusEncoder is a libopus encoder for 20 ms frames with the VoIP
// application and the voice signal hint, in-band FEC on (tuned for 5 %
// loss), OpusDefaultBitrate and OpusDefaultComplexity. It is not safe for
// concurrent use. Its C state is freed by Close, or by the garbage
// collector if Close is never called.
type OpusEncoder struct {
	enc     *C.OpusEncoder
	rate    int
	ch      int
	cleanup runtime.Cleanup
}

// NewOpusEncoder returns an encoder for rate (8000, 12000, 16000, 24000
// or 48000 Hz) and 1 or 2 channels.
func NewOpusEncoder(rate, channels int) (*OpusEncoder, error) {
	if !opusRate(rate) {
		return nil, fmt.Errorf("%w: opus encoder at %d Hz", ErrUnsupportedRate, rate)
	}
	if channels != 1 && channels != 2 {
		return nil, fmt.Errorf("%w: opus encoder with %d channels", ErrUnsupportedChannels, channels)
	}
	var code C.int
	enc := C.opus_encoder_create(C.opus_int32(rate), C.int(channels), C.OPUS_APPLICATION_VOIP, &code)
	if code != C.OPUS_OK {
		return nil, opusError("creating encoder", code)
	}
	for _, s := range []struct {
		req C.int
		v   int
	}{
		{C.OPUS_SET_BITRATE_REQUEST, OpusDefaultBitrate},
		{C.OPUS_SET_COMPLEXITY_REQUEST, OpusDefaultComplexity},
		{C.OPUS_SET_SIGNAL_REQUEST, C.OPUS_SIGNAL_VOICE},
		{C.OPUS_SET_INBAND_FEC_REQUEST, 1},
		{C.OPUS_SET_PACKET_LOSS_PERC_REQUEST, 5},
	} {
		if r := C.vg_opus_enc_set(enc, s.req, C.opus_int32(s.v)); r != C.OPUS_OK {
			C.opus_encoder_destroy(enc)
			return nil, opusError("configuring encoder", r)
		}
	}
	e := &OpusEncoder{enc: enc, rate: rate, ch: channels}
	e.cleanup = runtime.AddCleanup(e, func(p *C.OpusEncoder) { C.opus_encoder_destroy(p) }, enc)
	return e, nil
}

// Encode encodes pcm, exactly one 20 ms frame (interleaved if stereo),
// into dst and returns the packet's length. OpusMaxPacket bytes of dst
// always suffice.
func (e *OpusEncoder) Encode(pcm []int16, dst []byte) (int, error) {
	if e.enc == nil {
		return 0, fmt.Errorf("opus encode: %w", ErrClosed)
	}
	want := SamplesPerFrame(e.rate) * e.ch
	if len(pcm) != want {
		return 0, fmt.Errorf("%w: opus encode got %d samples, want %d (20 ms at %d Hz × %d channels)", ErrFrameSize, len(pcm), want, e.rate, e.ch)
	}
	if len(dst) == 0 {
		return 0, fmt.Errorf("%w: opus encode into an empty buffer", ErrBufferTooSmall)
	}
	n := C.opus_encode(e.enc, (*C.opus_int16)(unsafe.Pointer(&pcm[0])), C.int(want/e.ch),
		(*C.uchar)(unsafe.Pointer(&dst[0])), C.opus_int32(min(len(dst), 1<<30)))
	runtime.KeepAlive(e) // the cleanup must not free the state during the call
	if n < 0 {
		return 0, opusError("encoding", n)
	}
	return int(n), nil
}

// SetBitrate sets the target bitrate in bit/s (500 to 512000).
func (e *OpusEncoder) SetBitrate(bps int) error {
	return e.set("setting bitrate", C.OPUS_SET_BITRATE_REQUEST, bps)
}

// SetComplexity sets the encoder's computational complexity, 0 to 10.
func (e *OpusEncoder) SetComplexity(c int) error {
	return e.set("setting complexity", C.OPUS_SET_COMPLEXITY_REQUEST, c)
}

// SetInbandFEC turns in-band forward error correction on or off and sets
// the packet loss, in percent, the encoder expects.
func (e *OpusEncoder) SetInbandFEC(on bool, lossPercent int) error {
	v := 0
	if on {
		v = 1
	}
	if err := e.set("setting in-band FEC", C.OPUS_SET_INBAND_FEC_REQUEST, v); err != nil {
		return err
	}
	return e.set("setting packet loss", C.OPUS_SET_PACKET_LOSS_PERC_REQUEST, lossPercent)
}

func (e *OpusEncoder) set(op string, req C.int, v int) error {
	if e.enc == nil {
		return fmt.Errorf("opus %s: %w", op, ErrClosed)
	}
	r := C.vg_opus_enc_set(e.enc, req, C.opus_int32(v))
	runtime.KeepAlive(e)
	if r != C.OPUS_OK {
		return opusError(op, r)
	}
	return nil
}

// Close frees the encoder. Later calls return ErrClosed; Close is
// idempotent.
func (e *OpusEncoder) Close() {
	if e.enc == nil {
		return
	}
	e.cleanup.Stop()
	C.opus_encoder_destroy(e.enc)
	e.enc = nil
}

// OpusDecoder is a libopus decoder. It decodes any valid Opus packet
// (SILK, CELT or hybrid; mono or stereo, which a mono decoder downmixes;
// 2.5 to 120 ms) at its own rate and channel count. It is not safe for
// concurrent use. Its C state is freed by Close, or by the garbage
// collector if Close is never called.
type OpusDecoder struct {
	dec     *C.OpusDecoder
	rate    int
	ch      int
	cleanup runtime.Cleanup
}

// NewOpusDecoder returns a decoder producing rate Hz (8000, 12000, 16000,
// 24000 or 48000) with 1 or 2 channels.
func NewOpusDecoder(rate, channels int) (*OpusDecoder, error) {
	if !opusRate(rate) {
		return nil, fmt.Errorf("%w: opus decoder at %d Hz", ErrUnsupportedRate, rate)
	}
	if channels != 1 && channels != 2 {
		return nil, fmt.Errorf("%w: opus decoder with %d channels", ErrUnsupportedChannels, channels)
	}
	var code C.int
	dec := C.opus_decoder_create(C.opus_int32(rate), C.int(channels), &code)
	if code != C.OPUS_OK {
		return nil, opusError("creating decoder", code)
	}
	d := &OpusDecoder{dec: dec, rate: rate, ch: channels}
	d.cleanup = runtime.AddCleanup(d, func(p *C.OpusDecoder) { C.opus_decoder_destroy(p) }, dec)
	return d, nil
}

// Decode decodes pkt into dst (interleaved if stereo) and returns the
// samples per channel. dst must hold the whole packet: OpusMaxFrameSamples
// per channel (scaled to the rate) always suffices. A nil or empty pkt
// means the packet was lost: the decoder conceals it with as many samples
// as the last packet had (20 ms before the first), bounded by dst.
func (d *OpusDecoder) Decode(pkt []byte, dst []int16) (int, error) {
	return d.decode(pkt, dst, false)
}

// DecodeFEC recovers a lost packet from the in-band FEC data carried by
// pkt, the packet that followed it; call it before Decode(pkt, …). The
// recovered duration is that of the last packet (len(dst) bounds it).
// Without FEC data in pkt, libopus conceals instead.
func (d *OpusDecoder) DecodeFEC(pkt []byte, dst []int16) (int, error) {
	if len(pkt) == 0 {
		return d.decode(nil, dst, false)
	}
	return d.decode(pkt, dst, true)
}

func (d *OpusDecoder) decode(pkt []byte, dst []int16, fec bool) (int, error) {
	if d.dec == nil {
		return 0, fmt.Errorf("opus decode: %w", ErrClosed)
	}
	per := len(dst) / d.ch
	if per == 0 {
		return 0, fmt.Errorf("%w: opus decode into an empty buffer", ErrBufferTooSmall)
	}
	var data *C.uchar
	frame := per
	if len(pkt) == 0 || fec {
		// Concealment and FEC produce the last packet's duration, which
		// libopus needs to be told through the frame size.
		last := C.vg_opus_dec_last_duration(d.dec)
		if last <= 0 {
			last = C.opus_int32(SamplesPerFrame(d.rate))
		}
		frame = min(per, int(last))
		// Frame sizes must be a multiple of 2.5 ms.
		q := d.rate / 400
		frame -= frame % q
		if frame == 0 {
			return 0, fmt.Errorf("%w: %d samples per channel cannot conceal 2.5 ms", ErrBufferTooSmall, per)
		}
	}
	if len(pkt) > 0 {
		if !fec {
			ns := C.opus_decoder_get_nb_samples(d.dec, (*C.uchar)(unsafe.Pointer(&pkt[0])), C.opus_int32(len(pkt)))
			if ns < 0 {
				return 0, opusError("decoding", ns)
			}
			if int(ns) > per {
				return 0, fmt.Errorf("%w: packet of %d samples per channel, room for %d", ErrBufferTooSmall, ns, per)
			}
		}
		data = (*C.uchar)(unsafe.Pointer(&pkt[0]))
	}
	f := C.int(0)
	if fec {
		f = 1
	}
	n := C.opus_decode(d.dec, data, C.opus_int32(len(pkt)), (*C.opus_int16)(unsafe.Pointer(&dst[0])), C.int(frame), f)
	runtime.KeepAlive(d) // the cleanup must not free the state during the call
	if n < 0 {
		return 0, opusError("decoding", n)
	}
	return int(n), nil
}

// Close frees the decoder. Later calls return ErrClosed; Close is
// idempotent.
func (d *OpusDecoder) Close() {
	if d.dec == nil {
		return
	}
	d.cleanup.Stop()
	C.opus_decoder_destroy(d.dec)
	d.dec = nil
}
