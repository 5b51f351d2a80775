package media_test

import (
	"math"
	"testing"

	"github.com/voicegw/voicegw/media"
	"github.com/voicegw/voicegw/media/mediatest"
)

func TestLevels(t *testing.T) {
	square := make([]int16, 320)
	for i := range square {
		square[i] = 32767
		if i%2 == 1 {
			square[i] = -32768
		}
	}
	tests := []struct {
		name     string
		frame    []int16
		wantDBFS float64
		tol      float64
	}{
		{"full-scale square", square, 0, 0.001},
		{"full-scale sine", mediatest.Sine(16000, 1000, 1, 320), -3.01, 0.01},
		{"sine at 0.1", mediatest.Sine(16000, 1000, 0.1, 320), -23.01, 0.01},
		{"white noise -40 dBFS", mediatest.WhiteNoise(1, -40, 16000), -40, 0.1},
		{"silence", make([]int16, 320), media.SilenceDBFS, 0},
		{"empty", nil, media.SilenceDBFS, 0},
		{"one LSB", []int16{1, -1, 1, -1}, -90.31, 0.01},
	}
	for _, tc := range tests {
		got := media.DBFS(tc.frame)
		if math.Abs(got-tc.wantDBFS) > tc.tol {
			t.Errorf("DBFS(%s) = %.3f, want %.3f ± %g", tc.name, got, tc.wantDBFS, tc.tol)
		}
	}
	if got := media.RMS([]int16{3, -4, 3, -4}); math.Abs(got-math.Sqrt(12.5)) > 1e-12 {
		t.Errorf("RMS = %v, want %v", got, math.Sqrt(12.5))
	}
	if n := testing.AllocsPerRun(100, func() { media.DBFS(square) }); n != 0 {
		t.Errorf("DBFS: %v allocations, want 0", n)
	}
}

func TestSamplesPerFrame(t *testing.T) {
	for rate, want := range map[int]int{8000: 160, 16000: 320, 24000: 480, 48000: 960, 44100: 882} {
		if got := media.SamplesPerFrame(rate); got != want {
			t.Errorf("SamplesPerFrame(%d) = %d, want %d", rate, got, want)
		}
	}
}
