// Package mediatest has helpers for tests that need audio: tones, tone
// power (Goertzel), SNR, and speech rendered by espeak-ng.
package mediatest

import (
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/voicegw/voicegw/media"
)

// Sine returns n samples of a sine at freq Hz, amplitude amp (0..1 of full scale).
func Sine(rate int, freq, amp float64, n int) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(amp * 32767 * math.Sin(2*math.Pi*freq*float64(i)/float64(rate)))
	}
	return out
}

// Power returns the power of freq in x (Goertzel), normalised so a
// full-scale sine gives about 0.25.
func Power(x []int16, rate int, freq float64) float64 {
	w := 2 * math.Pi * freq / float64(rate)
	c := 2 * math.Cos(w)
	var s1, s2 float64
	for _, v := range x {
		s := float64(v)/32768 + c*s1 - s2
		s2, s1 = s1, s
	}
	p := s1*s1 + s2*s2 - c*s1*s2
	n := float64(len(x))
	return p / (n * n)
}

// SNR is the ratio in dB of ref's energy to the energy of (got - ref),
// after shifting got by lag samples.
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

// BestLag finds the lag in [0, max] that maximises the correlation of got
// against ref.
func BestLag(ref, got []int16, max int) int {
	best, bestLag := math.Inf(-1), 0
	for lag := 0; lag <= max; lag++ {
		var c float64
		for i := range ref {
			j := i + lag
			if j >= len(got) {
				break
			}
			c += float64(ref[i]) * float64(got[j])
		}
		if c > best {
			best, bestLag = c, lag
		}
	}
	return bestLag
}

// RequireTool returns the path of a command-line tool. Under CI (CI set)
// a missing tool fails the test; elsewhere it skips.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is required under CI but not installed", name)
		}
		t.Skipf("%s not installed", name)
	}
	return p
}

// Speech renders text with espeak-ng and returns it resampled to rate.
func Speech(t testing.TB, text string, rate int) []int16 {
	t.Helper()
	espeak := RequireTool(t, "espeak-ng")
	wav := filepath.Join(t.TempDir(), "speech.wav")
	if out, err := exec.Command(espeak, "-s", "150", "-w", wav, text).CombinedOutput(); err != nil {
		t.Fatalf("espeak-ng: %v: %s", err, out)
	}
	f, err := os.Open(wav)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a, err := media.ReadWAV(f)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := media.NewResampler(a.Rate, rate)
	if err != nil {
		t.Fatalf("resample %d→%d: %v", a.Rate, rate, err)
	}
	return rs.Process(nil, a.Samples)
}
