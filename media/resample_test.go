package media_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/voicegw/voicegw/media"
	"github.com/voicegw/voicegw/media/mediatest"
)

var pipelineRates = []int{8000, 16000, 24000, 48000}

// ratePairs returns every ordered pair of distinct rates.
func ratePairs(rates []int) [][2]int {
	var out [][2]int
	for _, a := range rates {
		for _, b := range rates {
			if a != b {
				out = append(out, [2]int{a, b})
			}
		}
	}
	return out
}

// Quality figures the resampler is held to, for every pair of pipeline
// rates. The design (Kaiser, 80 dB, transition 0.40–0.50 of the lower
// rate) measures a worst-case passband deviation of 0.0009 dB and rejects
// stopband tones, images and aliases by at least 84 dB (the floor of the
// measurement, int16 rounding of a 0.9 FS tone, is about 95 dB).
const (
	maxRippleDB    = 0.005 // passband: |gain| up to 0.4 of the lower rate
	minRejectionDB = 80.0  // stopband tones, images and aliases
)

// fitTone fits a·sin + b·cos at freq to x, which must span a whole number
// of periods, and returns the tone's RMS and the RMS of what is left.
func fitTone(x []int16, rate int, freq float64) (tone, residual float64) {
	var a, b float64
	w := 2 * math.Pi * freq / float64(rate)
	for i, v := range x {
		a += float64(v) * math.Sin(w*float64(i))
		b += float64(v) * math.Cos(w*float64(i))
	}
	n := float64(len(x))
	a, b = 2*a/n, 2*b/n
	var res float64
	for i, v := range x {
		d := float64(v) - a*math.Sin(w*float64(i)) - b*math.Cos(w*float64(i))
		res += d * d
	}
	return math.Sqrt((a*a + b*b) / 2), math.Sqrt(res / n)
}

func db(x float64) float64 { return 20 * math.Log10(x) }

// resampleTone resamples 1 s of a 0.9 FS sine and returns the steady-state
// output: 0.5 s at the output rate, after the filter has filled.
func resampleTone(t *testing.T, in, out int, freq float64) []int16 {
	t.Helper()
	rs, err := media.NewResampler(in, out)
	if err != nil {
		t.Fatal(err)
	}
	y := rs.Process(nil, mediatest.Sine(in, freq, 0.9, in))
	return y[out/4 : out/4+out/2]
}

func TestResamplerPassbandAndRejection(t *testing.T) {
	inRMS := 0.9 * 32767 / math.Sqrt2
	for _, p := range ratePairs(pipelineRates) {
		in, out := p[0], p[1]
		low := float64(min(in, out))
		worstRipple, worstReject := 0.0, math.Inf(1)
		// Passband tones (multiples of 10 Hz: whole periods in 0.5 s).
		for f := 50.0; f <= 0.4*low; f += 0.4 * low / 23 {
			f = math.Round(f/10) * 10
			tone, res := fitTone(resampleTone(t, in, out, f), out, f)
			worstRipple = max(worstRipple, math.Abs(db(tone/inRMS)))
			worstReject = min(worstReject, db(inRMS/res))
		}
		// Stopband tones: from the lower rate's Nyquist frequency up.
		if out < in {
			for f := 0.5 * low; f < 0.5*float64(in); f += 0.5 * (float64(in) - low) / 17 {
				f = math.Round(f/10) * 10
				y := resampleTone(t, in, out, f)
				worstReject = min(worstReject, db(inRMS/media.RMS(y)))
			}
		}
		t.Logf("%5d → %5d Hz: passband deviation %.4f dB, rejection %.1f dB", in, out, worstRipple, worstReject)
		if worstRipple > maxRippleDB {
			t.Errorf("%d → %d Hz: passband deviation %.4f dB > %.2f dB", in, out, worstRipple, maxRippleDB)
		}
		if worstReject < minRejectionDB {
			t.Errorf("%d → %d Hz: rejection %.1f dB < %.0f dB", in, out, worstReject, minRejectionDB)
		}
	}
}

func TestResamplerStreamingEqualsBlock(t *testing.T) {
	rates := []int{8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000}
	for _, p := range ratePairs(rates) {
		in, out := p[0], p[1]
		src := mediatest.WhiteNoise(uint64(in+out), -10, in) // 1 s
		block, err := media.NewResampler(in, out)
		if err != nil {
			t.Fatal(err)
		}
		want := block.Process(nil, src)
		// Outputs fall every in/out input samples from the first one on.
		if n := (len(src)*out + in - 1) / in; len(want) != n {
			t.Errorf("%d → %d: %d samples out for %d in, want %d", in, out, len(want), len(src), n)
		}
		// 20 ms chunks.
		rs, _ := media.NewResampler(in, out)
		var got []int16
		n := media.SamplesPerFrame(in)
		for i := 0; i < len(src); i += n {
			got = rs.Process(got, src[i:min(i+n, len(src))])
		}
		if !slices.Equal(got, want) {
			t.Errorf("%d → %d: 20 ms chunks differ from one block", in, out)
		}
		// Random chunks, including empty ones, after a Reset.
		rs.Reset()
		rng := rand.New(rand.NewPCG(1, 2))
		got = got[:0]
		for i := 0; i < len(src); {
			k := min(rng.IntN(700), len(src)-i)
			got = rs.Process(got, src[i:i+k])
			i += k
		}
		if !slices.Equal(got, want) {
			t.Errorf("%d → %d: random chunks after Reset differ from one block", in, out)
		}
	}
}

// TestResamplerFrameExact checks what the codecs rely on: among the
// pipeline's rates every 20 ms frame in gives exactly one 20 ms frame out,
// from the first call on.
func TestResamplerFrameExact(t *testing.T) {
	for _, p := range ratePairs([]int{8000, 16000, 24000, 32000, 48000}) {
		rs, err := media.NewResampler(p[0], p[1])
		if err != nil {
			t.Fatal(err)
		}
		frame := mediatest.Sine(p[0], 440, 0.5, media.SamplesPerFrame(p[0]))
		var out []int16
		for i := range 10 {
			out = rs.Process(out[:0], frame)
			if len(out) != media.SamplesPerFrame(p[1]) {
				t.Fatalf("%d → %d: frame %d gave %d samples, want %d", p[0], p[1], i, len(out), media.SamplesPerFrame(p[1]))
			}
		}
	}
}

func TestResamplerDelay(t *testing.T) {
	for _, p := range ratePairs(pipelineRates) {
		rs, _ := media.NewResampler(p[0], p[1])
		// A band-limited impulse: the peak of the response marks the delay.
		src := make([]int16, p[0]/10)
		src[0] = 30000
		y := rs.Process(nil, src)
		peak := 0
		for i, v := range y {
			if math.Abs(float64(v)) > math.Abs(float64(y[peak])) {
				peak = i
			}
		}
		d := rs.DelaySamples()
		if math.Abs(float64(peak-d)) > 1 {
			t.Errorf("%d → %d: impulse peak at %d, DelaySamples %d", p[0], p[1], peak, d)
		}
		if got, want := rs.Delay().Seconds(), float64(d)/float64(p[1]); math.Abs(got-want) > 1e-9 {
			t.Errorf("%d → %d: Delay %v, want %.6f s", p[0], p[1], rs.Delay(), want)
		}
		t.Logf("%5d → %5d Hz: delay %v (%d samples)", p[0], p[1], rs.Delay(), d)
	}
}

func TestResamplerPassThroughAndErrors(t *testing.T) {
	rs, err := media.NewResampler(16000, 16000)
	if err != nil {
		t.Fatal(err)
	}
	src := mediatest.WhiteNoise(3, -10, 333)
	if got := rs.Process(nil, src); !slices.Equal(got, src) || rs.Delay() != 0 {
		t.Error("16000 → 16000 is not a pass-through")
	}
	for _, p := range [][2]int{{0, 16000}, {16000, 7999}, {-8000, 8000}, {96000, 16000}} {
		if _, err := media.NewResampler(p[0], p[1]); !errors.Is(err, media.ErrUnsupportedRate) {
			t.Errorf("NewResampler(%d, %d): %v, want ErrUnsupportedRate", p[0], p[1], err)
		}
	}
}

func TestResamplerAllocs(t *testing.T) {
	for _, p := range ratePairs(pipelineRates) {
		rs, _ := media.NewResampler(p[0], p[1])
		frame := mediatest.Sine(p[0], 440, 0.5, media.SamplesPerFrame(p[0]))
		out := make([]int16, 0, media.SamplesPerFrame(p[1]))
		out = rs.Process(out[:0], frame)
		if n := testing.AllocsPerRun(50, func() { out = rs.Process(out[:0], frame) }); n != 0 {
			t.Errorf("%d → %d: %v allocations per frame, want 0", p[0], p[1], n)
		}
	}
}

// TestResamplerMatchesSox compares with Debian's sox (its default "rate"
// effect, high quality, linear phase) on multi-tone signals inside the
// passband, and on speech.
func TestResamplerMatchesSox(t *testing.T) {
	sox := mediatest.RequireTool(t, "sox")
	dir := t.TempDir()
	var speech22k *media.Audio
	if _, err := exec.LookPath("espeak-ng"); err == nil || mediatest.InCI() {
		speech22k = mediatest.ReadWAVFile(t, mediatest.EspeakWAV(t, "Resampling speech should sound the same from either tool."))
	}
	for _, p := range ratePairs(pipelineRates) {
		in, out := p[0], p[1]
		low := float64(min(in, out))
		// Five tones spread over the passband, 2 s.
		tones := []float64{0.05 * low, 0.13 * low, 0.21 * low, 0.29 * low, 0.37 * low}
		src := make([]int16, 2*in)
		for _, f := range tones {
			for i, v := range mediatest.Sine(in, math.Round(f/10)*10, 0.18, len(src)) {
				src[i] += v
			}
		}
		mine, theirs := resampleBoth(t, sox, dir, in, out, src)
		snr := mediatest.SNR(theirs, mine, 0)
		var worst float64
		for _, f := range tones {
			f = math.Round(f/10) * 10
			worst = max(worst, math.Abs(mediatest.ToneDB(mine, out, f)-mediatest.ToneDB(theirs, out, f)))
		}
		t.Logf("%5d → %5d Hz tones: SNR vs sox %.1f dB, tone levels within %.4f dB", in, out, snr, worst)
		if snr < 80 || worst > 0.005 {
			t.Errorf("%d → %d: tones differ from sox: SNR %.1f dB (want ≥ 80), level difference %.4f dB (want ≤ 0.005)", in, out, snr, worst)
		}
		if speech22k == nil {
			continue
		}
		// Speech: espeak-ng's 22.05 kHz output brought to in, then both
		// tools resample it to out. They differ only between 0.4 and 0.5 of
		// the lower rate, where sox keeps more band, so the bar is lower.
		rs, err := media.NewResampler(speech22k.Rate, in)
		if err != nil {
			t.Fatal(err)
		}
		sp := rs.Process(nil, speech22k.Samples)
		mine, theirs = resampleBoth(t, sox, dir, in, out, sp)
		snr = mediatest.SNR(theirs, mine, 0)
		t.Logf("%5d → %5d Hz speech: SNR vs sox %.1f dB", in, out, snr)
		if snr < 24 {
			t.Errorf("%d → %d: speech differs from sox: SNR %.1f dB, want ≥ 24", in, out, snr)
		}
	}
}

// resampleBoth resamples src with media.Resampler (delay removed) and with
// sox, and returns the two outputs cut to the same length, skipping the
// edges.
func resampleBoth(t *testing.T, sox, dir string, in, out int, src []int16) (mine, theirs []int16) {
	t.Helper()
	rs, err := media.NewResampler(in, out)
	if err != nil {
		t.Fatal(err)
	}
	y := rs.Process(nil, src)
	y = rs.Process(y, make([]int16, in/10))
	y = y[rs.DelaySamples():]
	inPath := filepath.Join(dir, fmt.Sprintf("in-%d.wav", in))
	outPath := filepath.Join(dir, fmt.Sprintf("out-%d-%d.wav", in, out))
	writeWAVFile(t, inPath, in, src)
	if b, err := exec.Command(sox, "-D", inPath, "-r", fmt.Sprint(out), outPath).CombinedOutput(); err != nil {
		t.Fatalf("sox: %v: %s", err, b)
	}
	s := mediatest.ReadWAVFile(t, outPath).Samples
	n := min(len(s), len(y))
	edge := out / 20 // 50 ms
	return y[edge : n-edge], s[edge : n-edge]
}
