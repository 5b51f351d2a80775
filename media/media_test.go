package media_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/voicegw/voicegw/media"
	"github.com/voicegw/voicegw/media/mediatest"
)

// Reference G.711 (the classic Sun/CCITT implementation), used to check
// the tables on every input.
func refUlaw(pcm int16) byte {
	const bias, clip = 0x21, 8159
	segEnd := []int{0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF}
	v := int(pcm) >> 2
	mask := 0xFF
	if v < 0 {
		v = -v
		mask = 0x7F
	}
	if v > clip {
		v = clip
	}
	v += bias
	seg := 8
	for i, e := range segEnd {
		if v <= e {
			seg = i
			break
		}
	}
	if seg >= 8 {
		return byte(0x7F ^ mask)
	}
	return byte((seg<<4 | (v>>(seg+1))&0xF) ^ mask)
}

func refAlaw(pcm int16) byte {
	segEnd := []int{0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF}
	v := int(pcm) >> 3
	var mask int
	if v >= 0 {
		mask = 0xD5
	} else {
		mask = 0x55
		v = -v - 1
	}
	seg := 8
	for i, e := range segEnd {
		if v <= e {
			seg = i
			break
		}
	}
	if seg >= 8 {
		return byte(0x7F ^ mask)
	}
	a := seg << 4
	if seg < 2 {
		a |= (v >> 1) & 0xF
	} else {
		a |= (v >> seg) & 0xF
	}
	return byte(a ^ mask)
}

func TestG711MatchesReference(t *testing.T) {
	var u, a [1]byte
	for s := -32768; s <= 32767; s++ {
		media.EncodeMulaw(u[:], []int16{int16(s)})
		if want := refUlaw(int16(s)); u[0] != want {
			t.Fatalf("µ-law(%d) = %#x, want %#x", s, u[0], want)
		}
		media.EncodeAlaw(a[:], []int16{int16(s)})
		if want := refAlaw(int16(s)); a[0] != want {
			t.Fatalf("A-law(%d) = %#x, want %#x", s, a[0], want)
		}
	}
	// Every code decodes to a value that re-encodes to the same code.
	for c := range 256 {
		var pcm [1]int16
		media.DecodeMulaw(pcm[:], []byte{byte(c)})
		media.EncodeMulaw(u[:], pcm[:])
		if u[0] != byte(c) && !(c == 0x7F && u[0] == 0xFF) { // µ-law has two zeros
			t.Errorf("µ-law code %#x → %d → %#x", c, pcm[0], u[0])
		}
		media.DecodeAlaw(pcm[:], []byte{byte(c)})
		media.EncodeAlaw(a[:], pcm[:])
		if a[0] != byte(c) {
			t.Errorf("A-law code %#x → %d → %#x", c, pcm[0], a[0])
		}
	}
}

func TestG711RoundTripSNR(t *testing.T) {
	x := mediatest.Sine(8000, 1004, 0.5, 8000)
	enc := make([]byte, len(x))
	dec := make([]int16, len(x))
	for _, c := range []struct {
		name string
		enc  func([]byte, []int16)
		dec  func([]int16, []byte)
	}{{"mulaw", media.EncodeMulaw, media.DecodeMulaw}, {"alaw", media.EncodeAlaw, media.DecodeAlaw}} {
		c.enc(enc, x)
		c.dec(dec, enc)
		snr := mediatest.SNR(x, dec, 0)
		t.Logf("%s SNR on a -6 dBFS 1004 Hz tone: %.1f dB", c.name, snr)
		if snr < 33 { // G.711 gives about 35-38 dB over most of its range
			t.Errorf("%s SNR %.1f dB, want ≥ 33 dB", c.name, snr)
		}
	}
}

var rates = []int{8000, 16000, 24000, 48000}

// TestResamplerQuality measures every pair: passband tones keep their level
// (ripple), tones above the output's Nyquist frequency vanish (stopband).
func TestResamplerQuality(t *testing.T) {
	for _, in := range rates {
		for _, out := range rates {
			if in == out {
				continue
			}
			low := float64(min(in, out))
			var worstRipple, worstStop float64
			for _, f := range []float64{0.05, 0.1, 0.2, 0.3, 0.35, 0.4} {
				freq := f * low
				x := mediatest.Sine(in, freq, 0.5, in) // 1 s
				r, err := media.NewResampler(in, out)
				if err != nil {
					t.Fatal(err)
				}
				y := r.Process(nil, x)
				y = y[out/10 : len(y)-out/10] // skip edges
				got := mediatest.Power(y, out, freq)
				want := mediatest.Power(mediatest.Sine(out, freq, 0.5, len(y)), out, freq)
				db := 10 * math.Log10(got/want)
				worstRipple = math.Max(worstRipple, math.Abs(db))
			}
			if in > out {
				for _, f := range []float64{0.52, 0.6, 0.75, 0.9} {
					freq := f * float64(out)
					if freq >= float64(in)/2 {
						continue
					}
					x := mediatest.Sine(in, freq, 0.5, in)
					r, _ := media.NewResampler(in, out)
					y := r.Process(nil, x)[out/10:]
					// Energy of whatever the tone aliased to, relative to the input tone.
					rms := media.RMS(y) / (0.5 * 32767 / math.Sqrt2)
					worstStop = math.Min(worstStop, 20*math.Log10(rms+1e-12))
				}
			}
			t.Logf("%5d → %5d Hz: passband ripple ±%.3f dB, stopband %.1f dB", in, out, worstRipple, worstStop)
			if worstRipple > 0.1 {
				t.Errorf("%d→%d passband ripple %.3f dB, want ≤ 0.1", in, out, worstRipple)
			}
			if in > out && worstStop > -60 {
				t.Errorf("%d→%d stopband %.1f dB, want ≤ -60", in, out, worstStop)
			}
		}
	}
}

func TestResamplerStreamingEqualsBlock(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]int16, 48000)
	for i := range x {
		x[i] = int16(rng.IntN(20000) - 10000)
	}
	for _, pair := range [][2]int{{48000, 16000}, {16000, 48000}, {24000, 16000}, {8000, 16000}, {16000, 8000}, {22050, 16000}} {
		a, _ := media.NewResampler(pair[0], pair[1])
		b, _ := media.NewResampler(pair[0], pair[1])
		whole := a.Process(nil, x)
		var parts []int16
		chunk := media.SamplesPerFrame(pair[0])
		for i := 0; i < len(x); i += chunk {
			parts = b.Process(parts, x[i:min(i+chunk, len(x))])
		}
		if !slicesEqual(whole, parts) {
			t.Errorf("%v: chunked output differs from block output (%d vs %d samples)", pair, len(parts), len(whole))
		}
		wantLen := len(x) * pair[1] / pair[0]
		if d := len(whole) - wantLen; d < -1 || d > 1 {
			t.Errorf("%v: %d output samples for %d input, want %d", pair, len(whole), len(x), wantLen)
		}
	}
	// 20 ms in gives exactly 20 ms out for integer ratios.
	r, _ := media.NewResampler(16000, 48000)
	for range 10 {
		if n := len(r.Process(nil, make([]int16, 320))); n != 960 {
			t.Fatalf("16→48 kHz: %d samples out for 20 ms, want 960", n)
		}
	}
	if _, err := media.NewResampler(16000, 12345); !errors.Is(err, media.ErrUnsupportedRate) {
		t.Errorf("odd rate: %v, want ErrUnsupportedRate", err)
	}
}

func slicesEqual(a, b []int16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestOpusRoundTrip(t *testing.T) {
	for _, rate := range []int{48000, 16000} {
		enc, err := media.NewOpusEncoder(rate, 1)
		if err != nil {
			t.Fatal(err)
		}
		dec, err := media.NewOpusDecoder(rate, 1)
		if err != nil {
			t.Fatal(err)
		}
		x := mediatest.Sine(rate, 440, 0.4, rate)
		n := media.SamplesPerFrame(rate)
		var y []int16
		pkt := make([]byte, 1500)
		out := make([]int16, 5760)
		for i := 0; i+n <= len(x); i += n {
			k, err := enc.Encode(x[i:i+n], pkt)
			if err != nil {
				t.Fatal(err)
			}
			m, err := dec.Decode(pkt[:k], out)
			if err != nil {
				t.Fatal(err)
			}
			y = append(y, out[:m]...)
		}
		lag := mediatest.BestLag(x[:rate/2], y, rate/50)
		pIn := mediatest.Power(x[rate/4:], rate, 440)
		pOut := mediatest.Power(y[rate/4+lag:len(x)-rate/10], rate, 440)
		db := 10 * math.Log10(pOut/pIn)
		t.Logf("opus %d Hz: 440 Hz tone level after round trip %.2f dB (lag %d)", rate, db, lag)
		if math.Abs(db) > 1 {
			t.Errorf("opus %d Hz: tone level changed by %.2f dB", rate, db)
		}
		// Concealment of a lost packet gives a frame, garbage gives an error.
		if m, err := dec.Decode(nil, out); err != nil || m != n {
			t.Errorf("PLC: %d samples, %v; want %d", m, err, n)
		}
		if _, err := dec.Decode([]byte{0xff, 0xff, 0xff, 0xff, 0xff}, out); err == nil {
			t.Errorf("garbage packet decoded without error")
		}
		if _, err := enc.Encode(x[:n-1], pkt); !errors.Is(err, media.ErrFrameSize) {
			t.Errorf("short frame: %v, want ErrFrameSize", err)
		}
	}
}

// TestVADSpeechAndSilence: espeak-ng speech is mostly voiced; silence and
// low-level noise are not; the end-pointer gives one turn with its end one
// hangover after the speech.
func TestVADSpeechAndSilence(t *testing.T) {
	speech := mediatest.Speech(t, "The quick brown fox jumps over the lazy dog, and then it rests.", 16000)
	td, err := media.NewTurnDetector(16000, 2, media.EndpointerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer td.Close()
	count := func(x []int16) (voiced, total int) {
		vad, _ := media.NewVAD(16000, 2) // fresh: the VAD has its own hangover
		defer vad.Close()
		for i := 0; i+320 <= len(x); i += 320 {
			v, err := vad.IsSpeech(x[i : i+320])
			if err != nil {
				t.Fatal(err)
			}
			total++
			if v {
				voiced++
			}
		}
		return
	}
	// Frames of the speech that carry energy.
	var loud []int16
	for i := 0; i+320 <= len(speech); i += 320 {
		if media.DBFS(speech[i:i+320]) > -40 {
			loud = append(loud, speech[i:i+320]...)
		}
	}
	v, n := count(loud)
	t.Logf("speech: %d of %d loud frames voiced", v, n)
	if float64(v) < 0.8*float64(n) {
		t.Errorf("speech: only %d of %d frames voiced", v, n)
	}
	if v, n := count(make([]int16, 16000)); v != 0 {
		t.Errorf("digital silence: %d of %d frames voiced", v, n)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	noise := make([]int16, 32000)
	for i := range noise {
		noise[i] = int16(rng.NormFloat64() * 30) // about -60 dBFS
	}
	// WebRTC's VAD calls steady low noise speech; the turn detector's level
	// gate must keep it from opening a turn.
	v, n = count(noise)
	t.Logf("-60 dBFS noise: raw VAD says %d of %d frames voiced", v, n)
	for i := 0; i+320 <= len(noise); i += 320 {
		if ev, _ := td.Push(noise[i : i+320]); ev != media.EventNone {
			t.Fatalf("noise opened a turn at frame %d", i/320)
		}
	}

	// One utterance then a second of silence: exactly one start and one end.
	stream := append(append(make([]int16, 8000), speech...), make([]int16, 16000)...)
	var starts, ends, endFrame, lastVoiced int
	for i := 0; i+320 <= len(stream); i += 320 {
		ev, err := td.Push(stream[i : i+320])
		if err != nil {
			t.Fatal(err)
		}
		if media.DBFS(stream[i:i+320]) > -40 {
			lastVoiced = i / 320
		}
		switch ev {
		case media.EventSpeechStart:
			starts++
		case media.EventSpeechEnd:
			ends++
			endFrame = i / 320
		}
	}
	if starts != 1 || ends != 1 {
		t.Fatalf("got %d starts and %d ends, want one of each", starts, ends)
	}
	gap := time.Duration(endFrame-lastVoiced) * media.FrameDuration
	t.Logf("speech end detected %s after the last loud frame", gap)
	if gap < 400*time.Millisecond || gap > 700*time.Millisecond {
		t.Errorf("end detected %s after speech, want about the 500 ms hangover", gap)
	}
}

func TestEndpointerHysteresis(t *testing.T) {
	e := media.NewEndpointer(media.EndpointerConfig{Hangover: 100 * time.Millisecond})
	// A lone click does not open a turn.
	for _, v := range []bool{true, false, false, false, false, true, false, false} {
		if ev := e.Push(v); ev != media.EventNone {
			t.Fatalf("click opened a turn")
		}
	}
	// Three voiced frames in five do.
	evs := []media.EndpointEvent{}
	for _, v := range []bool{true, false, true, true, true, false, true, false, false, false, false, false} {
		evs = append(evs, e.Push(v))
	}
	want := []media.EndpointEvent{0, 0, 0, media.EventSpeechStart, 0, 0, 0, 0, 0, 0, 0, media.EventSpeechEnd}
	for i := range want {
		if evs[i] != want[i] {
			t.Fatalf("events %v, want %v", evs, want)
		}
	}
}

func TestWAVRoundTripAndErrors(t *testing.T) {
	x := mediatest.Sine(16000, 300, 0.3, 1234)
	var b bytes.Buffer
	if err := media.WriteWAV(&b, 16000, x); err != nil {
		t.Fatal(err)
	}
	a, err := media.ReadWAV(bytes.NewReader(b.Bytes()))
	if err != nil || a.Rate != 16000 || !slicesEqual(a.Samples, x) {
		t.Fatalf("round trip: %v rate %d", err, a.Rate)
	}
	good := b.Bytes()
	bad := map[string][]byte{
		"empty":     nil,
		"not riff":  append([]byte("RIFX"), good[4:]...),
		"truncated": good[:60],
		"float":     patch(good, 20, []byte{3, 0}),
		"8 bit":     patch(good, 34, []byte{8, 0}),
		"6 ch":      patch(good, 22, []byte{6, 0}),
		"huge data": patch(good, 40, []byte{0xf0, 0xff, 0xff, 0x7f}),
		"no fmt":    append(append([]byte("RIFF\x00\x00\x00\x00WAVE"), []byte("data\x02\x00\x00\x00")...), 1, 2),
	}
	for name, in := range bad {
		if _, err := media.ReadWAV(bytes.NewReader(in)); !errors.Is(err, media.ErrMalformedWAV) {
			t.Errorf("%s: %v, want ErrMalformedWAV", name, err)
		}
	}
}

func patch(b []byte, off int, v []byte) []byte {
	c := append([]byte(nil), b...)
	copy(c[off:], v)
	return c
}

func FuzzReadWAV(f *testing.F) {
	var b bytes.Buffer
	_ = media.WriteWAV(&b, 8000, []int16{1, -2, 3, 30000})
	f.Add(b.Bytes())
	f.Add([]byte("RIFF\x00\x00\x00\x00WAVEfmt \x10\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := media.ReadWAV(bytes.NewReader(data))
		if err == nil && (a.Rate <= 0 || a.Samples == nil && len(data) > 44) {
			_ = a
		}
		if err != nil && !errors.Is(err, media.ErrMalformedWAV) {
			t.Fatalf("unclassified error %v", err)
		}
	})
}

func TestPacerGrid(t *testing.T) {
	// Real clock, behaviour only: Wait returns on the grid and re-anchors
	// after falling far behind (checked through the returned order, not
	// through elapsed time).
	p := media.NewPacer(time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	for range 5 {
		if err := p.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	if err := p.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("after cancel: %v", err)
	}
}
