// Package mediatest holds helpers for tests that need audio: tone and
// noise generators, tone power (Goertzel), SNR with alignment, speech
// rendered by espeak-ng, the rule for tests that need an external tool,
// and a fake clock for media.Pacer.
//
// External tools follow one rule (RequireTool): when the environment
// variable CI is "true" (or "1") a missing tool fails the test, because CI
// must never silently skip a quality check; elsewhere it skips.
package mediatest

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/voicegw/voicegw/media"
)

// Sine returns n samples at rate of a sine at freq Hz with peak amplitude
// amp, a fraction of full scale (1 is ±32767). Samples are rounded.
func Sine(rate int, freq, amp float64, n int) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(math.Round(amp * 32767 * math.Sin(2*math.Pi*freq*float64(i)/float64(rate))))
	}
	return out
}

// WhiteNoise returns n samples of uniform white noise with RMS level dbfs
// (see media.DBFS), from a deterministic generator seeded with seed.
func WhiteNoise(seed uint64, dbfs float64, n int) []int16 {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	// A uniform variable on [-a, a] has RMS a/√3.
	a := 32768 * math.Pow(10, dbfs/20) * math.Sqrt(3)
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(max(-32768, min(32767, math.Round((2*rng.Float64()-1)*a))))
	}
	return out
}

// Power returns the power of the component at freq Hz in x (Goertzel's
// algorithm over the whole slice), normalised so that a full-scale sine at
// exactly freq gives 0.25. Use a whole number of periods, or a window
// long enough, for accurate figures.
func Power(x []int16, rate int, freq float64) float64 {
	w := 2 * math.Pi * freq / float64(rate)
	c := 2 * math.Cos(w)
	var s1, s2 float64
	for _, v := range x {
		s := float64(v)/32767 + c*s1 - s2
		s2, s1 = s1, s
	}
	p := s1*s1 + s2*s2 - c*s1*s2
	n := float64(len(x))
	return p / (n * n)
}

// ToneDB returns the level of freq in x in dB relative to a full-scale
// sine (0 dB): 10·log10(Power/0.25).
func ToneDB(x []int16, rate int, freq float64) float64 {
	return 10 * math.Log10(Power(x, rate, freq)/0.25)
}

// SNR returns, in dB, the energy of ref over the energy of got-ref, with
// got shifted by lag samples (got[i+lag] is compared with ref[i]); samples
// outside got are skipped. It returns +Inf when they are identical.
func SNR(ref, got []int16, lag int) float64 {
	var sig, noise float64
	for i := range ref {
		j := i + lag
		if j < 0 || j >= len(got) {
			continue
		}
		d := float64(got[j]) - float64(ref[i])
		sig += float64(ref[i]) * float64(ref[i])
		noise += d * d
	}
	if noise == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(sig/noise)
}

// Correlation returns the normalised cross-correlation (-1..1) of ref and
// got shifted by lag, as SNR pairs them.
func Correlation(ref, got []int16, lag int) float64 {
	var xy, xx, yy float64
	for i := range ref {
		j := i + lag
		if j < 0 || j >= len(got) {
			continue
		}
		x, y := float64(ref[i]), float64(got[j])
		xy += x * y
		xx += x * x
		yy += y * y
	}
	if xx == 0 || yy == 0 {
		return 0
	}
	return xy / math.Sqrt(xx*yy)
}

// BestLag returns the lag in [0, maxLag] that maximises the correlation of
// got (delayed) against ref.
func BestLag(ref, got []int16, maxLag int) int {
	best, bestLag := math.Inf(-1), 0
	for lag := 0; lag <= maxLag; lag++ {
		if c := Correlation(ref, got, lag); c > best {
			best, bestLag = c, lag
		}
	}
	return bestLag
}

// InCI reports whether the environment variable CI is "true" or "1".
func InCI() bool {
	v := os.Getenv("CI")
	return v == "true" || v == "1"
}

// RequireTool returns the path of an external command. If it is missing,
// the test fails under CI (see InCI) and is skipped elsewhere.
func RequireTool(tb testing.TB, name string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if InCI() {
			tb.Fatalf("%s is required under CI=true but is not installed: %v", name, err)
		}
		tb.Skipf("%s is not installed (required under CI=true)", name)
	}
	return p
}

// EspeakWAV renders text with espeak-ng (default voice, 150 words per
// minute) into a WAV file in a temporary directory and returns its path.
// espeak-ng writes 22050 Hz mono. It follows the RequireTool rule.
func EspeakWAV(tb testing.TB, text string) string {
	tb.Helper()
	espeak := RequireTool(tb, "espeak-ng")
	path := filepath.Join(tb.TempDir(), "speech.wav")
	out, err := exec.Command(espeak, "-s", "150", "-w", path, text).CombinedOutput()
	if err != nil {
		tb.Fatalf("espeak-ng: %v: %s", err, out)
	}
	return path
}

// Speech renders text with espeak-ng and returns it resampled to rate with
// media.Resampler, trimmed of the resampler's delay. It follows the
// RequireTool rule.
func Speech(tb testing.TB, text string, rate int) []int16 {
	tb.Helper()
	a := ReadWAVFile(tb, EspeakWAV(tb, text))
	rs, err := media.NewResampler(a.Rate, rate)
	if err != nil {
		tb.Fatalf("resampling espeak-ng output %d Hz → %d Hz: %v", a.Rate, rate, err)
	}
	// Flush the filter with silence, then drop its delay.
	out := rs.Process(nil, a.Samples)
	out = rs.Process(out, make([]int16, a.Rate/10))
	return out[rs.DelaySamples() : rs.DelaySamples()+len(a.Samples)*rate/a.Rate]
}

// ReadWAVFile reads a WAV file with media.ReadWAV, failing the test on
// error.
func ReadWAVFile(tb testing.TB, path string) *media.Audio {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	a, err := media.ReadWAV(f)
	if err != nil {
		tb.Fatalf("reading %s: %v", path, err)
	}
	return a
}

// FakeClock is a media.Clock whose time moves only when Sleep or Advance
// is called: Sleep advances it by d at once. It is safe for concurrent
// use.
type FakeClock struct {
	mu  sync.Mutex
	now time.Time
}

// NewFakeClock returns a fake clock reading start.
func NewFakeClock(start time.Time) *FakeClock { return &FakeClock{now: start} }

var _ media.Clock = (*FakeClock)(nil)

// Now returns the fake time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Sleep advances the fake time by d (if positive) unless ctx is done.
func (c *FakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.Advance(d)
	return nil
}

// Advance moves the fake time forward by d (if positive), as work would.
func (c *FakeClock) Advance(d time.Duration) {
	if d <= 0 {
		return
	}
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}
