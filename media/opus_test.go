package media_test

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/voicegw/voicegw/media"
	"github.com/voicegw/voicegw/media/mediatest"
)

// opusRoundTrip encodes src frame by frame at rate and decodes it again.
func opusRoundTrip(t *testing.T, rate int, src []int16) []int16 {
	t.Helper()
	enc, err := media.NewOpusEncoder(rate, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	dec, err := media.NewOpusDecoder(rate, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	n := media.SamplesPerFrame(rate)
	pkt := make([]byte, media.OpusMaxPacket)
	pcm := make([]int16, media.OpusMaxFrameSamples)
	var out []int16
	for i := 0; i+n <= len(src); i += n {
		k, err := enc.Encode(src[i:i+n], pkt)
		if err != nil {
			t.Fatal(err)
		}
		m, err := dec.Decode(pkt[:k], pcm)
		if err != nil {
			t.Fatal(err)
		}
		if m != n {
			t.Fatalf("decoded %d samples from a 20 ms packet, want %d", m, n)
		}
		out = append(out, pcm[:m]...)
	}
	return out
}

func TestOpusRoundTrip(t *testing.T) {
	// Opus is a perceptual codec: waveform SNR is modest by design. The
	// figures are at 32 kbit/s, complexity 5, after aligning the codec's
	// delay (6.5 ms); measured: 440 Hz tone SNR 36.4 dB at 48 kHz and
	// 31.7 dB at 16 kHz (correlation 0.9997+), espeak-ng speech SNR 10.9 and
	// 11.4 dB, correlation 0.958 and 0.963.
	type tc struct {
		name    string
		rate    int
		src     []int16
		minSNR  float64
		minCorr float64
	}
	tests := []tc{
		{"tone 48k", 48000, mediatest.Sine(48000, 440, 0.5, 48000), 25, 0.995},
		{"tone 16k", 16000, mediatest.Sine(16000, 440, 0.5, 16000), 25, 0.995},
	}
	if !testing.Short() {
		text := "Opus carries the caller's voice from the browser to the gateway."
		tests = append(tests,
			tc{"speech 48k", 48000, mediatest.Speech(t, text, 48000), 8, 0.93},
			tc{"speech 16k", 16000, mediatest.Speech(t, text, 16000), 8, 0.93})
	}
	for _, c := range tests {
		got := opusRoundTrip(t, c.rate, c.src)
		lag := mediatest.BestLag(c.src, got, c.rate/50)
		// Skip the first 100 ms while the encoder settles.
		skip := c.rate / 10
		snr := mediatest.SNR(c.src[skip:len(got)-lag], got[skip+lag:], 0)
		corr := mediatest.Correlation(c.src[skip:len(got)-lag], got[skip+lag:], 0)
		t.Logf("%s: delay %d samples, SNR %.1f dB, correlation %.4f", c.name, lag, snr, corr)
		if snr < c.minSNR || corr < c.minCorr {
			t.Errorf("%s: SNR %.1f dB (want ≥ %.0f), correlation %.4f (want ≥ %.2f)", c.name, snr, c.minSNR, corr, c.minCorr)
		}
	}
}

// TestOpusStereoPacketsMonoDecoder: a browser may signal stereo; a mono
// decoder must take its packets.
func TestOpusStereoPacketsMonoDecoder(t *testing.T) {
	enc, err := media.NewOpusEncoder(48000, 2)
	if err != nil {
		t.Fatal(err)
	}
	dec, _ := media.NewOpusDecoder(48000, 1)
	mono := mediatest.Sine(48000, 600, 0.4, 48000)
	stereo := make([]int16, 2*len(mono))
	for i, v := range mono {
		stereo[2*i], stereo[2*i+1] = v, v
	}
	pkt := make([]byte, media.OpusMaxPacket)
	pcm := make([]int16, media.OpusMaxFrameSamples)
	var out []int16
	for i := 0; i < len(stereo); i += 2 * 960 {
		k, err := enc.Encode(stereo[i:i+2*960], pkt)
		if err != nil {
			t.Fatal(err)
		}
		n, err := dec.Decode(pkt[:k], pcm)
		if err != nil {
			t.Fatalf("mono decoder on a stereo packet: %v", err)
		}
		out = append(out, pcm[:n]...)
	}
	lag := mediatest.BestLag(mono, out, 960)
	if c := mediatest.Correlation(mono[4800:len(out)-lag], out[4800+lag:], 0); c < 0.99 {
		t.Errorf("stereo → mono: correlation %.4f, want ≥ 0.99", c)
	}
}

func TestOpusConcealment(t *testing.T) {
	enc, _ := media.NewOpusEncoder(48000, 1)
	dec, _ := media.NewOpusDecoder(48000, 1)
	pcm := make([]int16, media.OpusMaxFrameSamples)
	// Concealment before any packet: 20 ms of silence.
	n, err := dec.Decode(nil, pcm)
	if err != nil || n != 960 {
		t.Fatalf("PLC before the first packet: %d samples, %v; want 960", n, err)
	}
	tone := mediatest.Sine(48000, 300, 0.5, 48000)
	pkt := make([]byte, media.OpusMaxPacket)
	var last []int16
	for i := 0; i < 24000; i += 960 {
		k, _ := enc.Encode(tone[i:i+960], pkt)
		n, err := dec.Decode(pkt[:k], pcm)
		if err != nil {
			t.Fatal(err)
		}
		last = append(last[:0], pcm[:n]...)
	}
	n, err = dec.Decode(nil, pcm)
	if err != nil || n != 960 {
		t.Fatalf("PLC: %d samples, %v; want 960", n, err)
	}
	// The first concealed frame continues the tone at a similar level.
	ratio := media.RMS(pcm[:n]) / media.RMS(last)
	t.Logf("PLC level relative to the last frame: %.2f", ratio)
	if ratio < 0.3 || ratio > 1.5 {
		t.Errorf("PLC level %.2f of the last frame, want 0.3..1.5", ratio)
	}
	// FEC: the next packet carries the lost one at low rate.
	k, _ := enc.Encode(tone[24000:24960], pkt)
	if n, err := dec.DecodeFEC(pkt[:k], pcm); err != nil || n != 960 {
		t.Errorf("DecodeFEC: %d, %v; want 960", n, err)
	}
	if n, err := dec.Decode(pkt[:k], pcm); err != nil || n != 960 {
		t.Errorf("Decode after DecodeFEC: %d, %v; want 960", n, err)
	}
	// PLC duration follows the last packet, bounded by dst.
	if n, err := dec.Decode(nil, pcm[:480]); err != nil || n != 480 {
		t.Errorf("PLC into 10 ms of room: %d, %v; want 480", n, err)
	}
}

func TestOpusGarbage(t *testing.T) {
	dec, _ := media.NewOpusDecoder(48000, 1)
	pcm := make([]int16, media.OpusMaxFrameSamples)
	invalid := [][]byte{
		{0x03},             // code 3 without its frame-count byte
		{0x03, 0x00},       // code 3 with zero frames
		{0x02},             // code 2 without the first frame's length
		{0x02, 0xff, 0xff}, // code 2 whose first frame is longer than the packet
		{0x01, 0x00},       // code 1 (two equal frames) with an odd payload
		{0x03, 0xff},       // code 3, 63 frames (over 120 ms), padding flag without padding
	}
	for _, p := range invalid {
		n, err := dec.Decode(p, pcm)
		if !errors.Is(err, media.ErrOpus) {
			t.Errorf("Decode(% x) = %d, %v; want an ErrOpus error", p, n, err)
		}
	}
	// Random bytes never crash the decoder; valid-looking ones decode.
	rng := rand.New(rand.NewPCG(7, 7))
	buf := make([]byte, 1500)
	for range 3000 {
		p := buf[:1+rng.IntN(len(buf))]
		for i := range p {
			p[i] = byte(rng.Uint32())
		}
		n, err := dec.Decode(p, pcm)
		if err == nil && (n <= 0 || n > len(pcm)) {
			t.Fatalf("Decode(random) = %d samples", n)
		}
	}
}

func TestOpusErrors(t *testing.T) {
	if _, err := media.NewOpusEncoder(44100, 1); !errors.Is(err, media.ErrUnsupportedRate) {
		t.Errorf("encoder at 44.1 kHz: %v", err)
	}
	if _, err := media.NewOpusDecoder(48000, 3); !errors.Is(err, media.ErrUnsupportedChannels) {
		t.Errorf("decoder with 3 channels: %v", err)
	}
	enc, _ := media.NewOpusEncoder(16000, 1)
	pkt := make([]byte, media.OpusMaxPacket)
	if _, err := enc.Encode(make([]int16, 319), pkt); !errors.Is(err, media.ErrFrameSize) {
		t.Errorf("319 samples: %v, want ErrFrameSize", err)
	}
	if _, err := enc.Encode(make([]int16, 320), nil); !errors.Is(err, media.ErrBufferTooSmall) {
		t.Errorf("nil packet buffer: %v, want ErrBufferTooSmall", err)
	}
	if err := enc.SetBitrate(24000); err != nil {
		t.Errorf("SetBitrate: %v", err)
	}
	if err := enc.SetComplexity(42); !errors.Is(err, media.ErrOpus) {
		t.Errorf("SetComplexity(42): %v, want ErrOpus", err)
	}
	k, err := enc.Encode(make([]int16, 320), pkt)
	if err != nil {
		t.Fatal(err)
	}
	dec, _ := media.NewOpusDecoder(16000, 1)
	if _, err := dec.Decode(pkt[:k], make([]int16, 100)); !errors.Is(err, media.ErrBufferTooSmall) {
		t.Errorf("decode 20 ms into 100 samples: %v, want ErrBufferTooSmall", err)
	}
	enc.Close()
	enc.Close()
	dec.Close()
	if _, err := enc.Encode(make([]int16, 320), pkt); !errors.Is(err, media.ErrClosed) {
		t.Errorf("Encode after Close: %v, want ErrClosed", err)
	}
	if _, err := dec.Decode(pkt[:k], make([]int16, 320)); !errors.Is(err, media.ErrClosed) {
		t.Errorf("Decode after Close: %v, want ErrClosed", err)
	}
}

func TestOpusAllocs(t *testing.T) {
	enc, _ := media.NewOpusEncoder(48000, 1)
	dec, _ := media.NewOpusDecoder(48000, 1)
	frame := mediatest.Sine(48000, 440, 0.5, 960)
	pkt := make([]byte, media.OpusMaxPacket)
	pcm := make([]int16, 960)
	if n := testing.AllocsPerRun(50, func() {
		k, _ := enc.Encode(frame, pkt)
		_, _ = dec.Decode(pkt[:k], pcm)
		_, _ = dec.Decode(nil, pcm)
	}); n != 0 {
		t.Errorf("Opus encode+decode+PLC: %v allocations per frame, want 0", n)
	}
}
