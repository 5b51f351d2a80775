package media_test

import (
	"errors"
	"testing"

	"github.com/voicegw/voicegw/media"
	"github.com/voicegw/voicegw/media/mediatest"
)

// vadDecisions runs a fresh VAD over x in 20 ms frames.
func vadDecisions(t *testing.T, rate, mode int, x []int16) []bool {
	t.Helper()
	v, err := media.NewVAD(rate, mode)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	n := media.SamplesPerFrame(rate)
	var out []bool
	for i := 0; i+n <= len(x); i += n {
		s, err := v.IsSpeech(x[i : i+n])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func fraction(d []bool) float64 {
	n := 0
	for _, v := range d {
		if v {
			n++
		}
	}
	return float64(n) / float64(len(d))
}

// TestVADSpeechSilenceNoise: on espeak-ng speech the VAD marks at least
// 95 % of the frames louder than -45 dBFS as speech (measured 99-100 % in
// every mode and rate); digital silence gives no voiced frame; white noise
// at -70 to -50 dBFS at most 5 % (measured ≤ 2.8 %, the first frames while
// the noise model adapts).
func TestVADSpeechSilenceNoise(t *testing.T) {
	const text = "Please confirm the delivery address and the time of the appointment for tomorrow morning."
	for _, rate := range []int{8000, 16000, 32000, 48000} {
		speech := mediatest.Speech(t, text, rate)
		n := media.SamplesPerFrame(rate)
		silence := make([]int16, 3*rate)
		for mode := range 4 {
			d := vadDecisions(t, rate, mode, speech)
			active, hit := 0, 0
			for i, v := range d {
				if media.DBFS(speech[i*n:(i+1)*n]) > -45 {
					active++
					if v {
						hit++
					}
				}
			}
			recall := float64(hit) / float64(active)
			si := fraction(vadDecisions(t, rate, mode, silence))
			worstNoise := 0.0
			for _, level := range []float64{-70, -60, -50} {
				noise := mediatest.WhiteNoise(uint64(rate)+uint64(mode), level, 5*rate)
				worstNoise = max(worstNoise, fraction(vadDecisions(t, rate, mode, noise)))
			}
			t.Logf("%5d Hz mode %d: speech frames voiced %.3f (all frames %.3f), silence %.3f, low noise ≤ %.3f",
				rate, mode, recall, fraction(d), si, worstNoise)
			if recall < 0.95 {
				t.Errorf("%d Hz mode %d: %.3f of speech frames voiced, want ≥ 0.95", rate, mode, recall)
			}
			if si != 0 {
				t.Errorf("%d Hz mode %d: %.3f of digital silence voiced, want 0", rate, mode, si)
			}
			if worstNoise > 0.05 {
				t.Errorf("%d Hz mode %d: %.3f of low-level white noise voiced, want ≤ 0.05", rate, mode, worstNoise)
			}
		}
	}
}

func TestVADErrors(t *testing.T) {
	if _, err := media.NewVAD(24000, 2); !errors.Is(err, media.ErrUnsupportedRate) {
		t.Errorf("24 kHz: %v, want ErrUnsupportedRate", err)
	}
	if _, err := media.NewVAD(16000, 4); !errors.Is(err, media.ErrInvalidMode) {
		t.Errorf("mode 4: %v, want ErrInvalidMode", err)
	}
	v, err := media.NewVAD(16000, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{160, 320, 480} {
		if _, err := v.IsSpeech(make([]int16, n)); err != nil {
			t.Errorf("%d samples (10/20/30 ms): %v", n, err)
		}
	}
	for _, n := range []int{0, 1, 319, 640} {
		if _, err := v.IsSpeech(make([]int16, n)); !errors.Is(err, media.ErrFrameSize) {
			t.Errorf("%d samples: %v, want ErrFrameSize", n, err)
		}
	}
	v.Close()
	v.Close()
	if _, err := v.IsSpeech(make([]int16, 320)); !errors.Is(err, media.ErrClosed) {
		t.Errorf("after Close: %v, want ErrClosed", err)
	}
}

func TestVADAllocs(t *testing.T) {
	v, _ := media.NewVAD(16000, 2)
	defer v.Close()
	frame := mediatest.WhiteNoise(1, -30, 320)
	if n := testing.AllocsPerRun(100, func() { _, _ = v.IsSpeech(frame) }); n != 0 {
		t.Errorf("IsSpeech: %v allocations, want 0", n)
	}
}
