package mediatest_test

import (
	"math"
	"runtime"
	"testing"

	"github.com/voicegw/voicegw/media/mediatest"
)

// recTB records how a test helper ended a test.
type recTB struct {
	testing.TB
	failed, skipped bool
}

// RequireTool calls only these; the embedded nil TB panics on anything else.
func (r *recTB) Helper()               {}
func (r *recTB) Fatalf(string, ...any) { r.failed = true; runtime.Goexit() }
func (r *recTB) Skipf(string, ...any)  { r.skipped = true; runtime.Goexit() }

func requireMissing(ci string, t *testing.T) *recTB {
	t.Setenv("CI", ci)
	r := &recTB{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		mediatest.RequireTool(r, "no-such-tool-for-mediatest")
	}()
	<-done
	return r
}

func TestRequireToolCIRule(t *testing.T) {
	if r := requireMissing("true", t); !r.failed || r.skipped {
		t.Errorf("CI=true, missing tool: failed=%v skipped=%v, want a failure", r.failed, r.skipped)
	}
	if r := requireMissing("", t); r.failed || !r.skipped {
		t.Errorf("CI unset, missing tool: failed=%v skipped=%v, want a skip", r.failed, r.skipped)
	}
}

func TestToneHelpers(t *testing.T) {
	x := mediatest.Sine(16000, 1000, 1, 16000)
	if db := mediatest.ToneDB(x, 16000, 1000); math.Abs(db) > 0.01 {
		t.Errorf("ToneDB of a full-scale sine = %.3f, want 0", db)
	}
	if db := mediatest.ToneDB(x, 16000, 3000); db > -100 {
		t.Errorf("ToneDB at another frequency = %.1f, want below -100", db)
	}
	y := append(make([]int16, 7), x...)
	if lag := mediatest.BestLag(x, y, 40); lag != 7 {
		t.Errorf("BestLag = %d, want 7", lag)
	}
	if snr := mediatest.SNR(x, y, 7); !math.IsInf(snr, 1) {
		t.Errorf("SNR of identical signals = %v, want +Inf", snr)
	}
	n := mediatest.WhiteNoise(1, -20, 16000)
	sum := make([]int16, len(x))
	for i := range x {
		sum[i] = x[i]/2 + n[i]
	}
	// Signal at 0.5 FS (-9.03 dBFS RMS) over noise at -20 dBFS: 10.97 dB.
	half := mediatest.Sine(16000, 1000, 0.5, 16000)
	if snr := mediatest.SNR(half, sum, 0); math.Abs(snr-10.97) > 0.2 {
		t.Errorf("SNR = %.2f dB, want 10.97", snr)
	}
}
