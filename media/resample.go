package media

import (
	"fmt"
	"math"
	"time"
)

// Resampler design constants (see the package documentation for the
// figures the tests measure).
const (
	// resamplePassband is where the passband ends and resampleStopband is
	// where the stopband starts, as fractions of the lower of the two rates:
	// the transition band sits just below the lower rate's Nyquist frequency.
	resamplePassband = 0.40
	resampleStopband = 0.50
	// resampleAtten is the Kaiser design attenuation in dB.
	resampleAtten = 80.0
	// resampleMaxCoefs bounds the polyphase table (L phases × taps).
	resampleMaxCoefs = 1 << 17
)

// Resampler converts a stream of mono PCM16 from one sample rate to
// another. It is a polyphase FIR: the ratio out/in is reduced to L/M, one
// Kaiser-windowed sinc prototype is designed at the up-sampled rate in·L
// (cutoff 0.45 of the lower rate, transition band 0.40–0.50 of it, 80 dB
// design attenuation) and split into L phases of equal length, and each
// output sample is the dot product of one phase with the newest input. Only
// the outputs needed are computed, so 48→16 kHz costs one phase per output
// sample. Each phase is normalised to unit DC gain.
//
// The filter is causal: output k is available as soon as the input sample
// at its time has arrived, so n input samples give exactly the outputs
// whose time falls on or before the last of them (a 20 ms frame always
// gives a 20 ms frame among 8, 16, 24, 32 and 48 kHz). The price is the
// group delay reported by Delay (1.1 to 3.3 ms among the pipeline rates).
// State is kept between calls, so processing a stream in chunks of any
// size gives the same samples as processing it in one block.
//
// Equal rates pass samples through unchanged. A Resampler is not safe for
// concurrent use.
type Resampler struct {
	in, out int
	l, m    int
	taps    int       // taps per phase
	coef    []float32 // phase p is coef[p*taps:(p+1)*taps], oldest-sample first
	delay   int       // group delay in samples at the up-sampled rate in·L

	hist  []float32 // history: window of the next output starts at hist[pos]
	pos   int
	phase int // (output time · M) mod L for the next output
}

// resampleRates lists the rates NewResampler accepts: the telephony and
// wideband pipeline rates and the CD-family rates speech files come in.
func resampleRate(rate int) bool {
	switch rate {
	case 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000:
		return true
	}
	return false
}

// NewResampler returns a resampler from inRate to outRate, each one of
// 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100 or 48000 Hz.
func NewResampler(inRate, outRate int) (*Resampler, error) {
	if !resampleRate(inRate) || !resampleRate(outRate) {
		return nil, fmt.Errorf("%w: resampling %d Hz to %d Hz", ErrUnsupportedRate, inRate, outRate)
	}
	g := gcd(inRate, outRate)
	r := &Resampler{in: inRate, out: outRate, l: outRate / g, m: inRate / g}
	if r.l != 1 || r.m != 1 {
		r.design()
	} else {
		r.taps = 1
		r.coef = []float32{1}
	}
	if len(r.coef) > resampleMaxCoefs {
		return nil, fmt.Errorf("%w: resampling %d Hz to %d Hz needs %d coefficients", ErrUnsupportedRate, inRate, outRate, len(r.coef))
	}
	r.Reset()
	return r, nil
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// design computes the polyphase coefficients.
func (r *Resampler) design() {
	fsUp := float64(r.in * r.l)
	low := float64(min(r.in, r.out))
	fc := (resamplePassband + resampleStopband) / 2 * low / fsUp // cycles per up-sampled sample
	df := (resampleStopband - resamplePassband) * low / fsUp
	// Kaiser's estimate of the length for the attenuation and transition.
	n := int(math.Ceil((resampleAtten-7.95)/(14.36*df))) + 1
	// Centre the prototype on a multiple of M so the delay is a whole
	// number of output samples (outputs fall on multiples of M).
	half := (n - 1 + 1) / 2
	d := (half + r.m - 1) / r.m * r.m
	n = 2*d + 1
	r.delay = d
	r.taps = (n + r.l - 1) / r.l
	beta := 0.1102 * (resampleAtten - 8.7)
	i0b := besselI0(beta)
	proto := make([]float64, r.taps*r.l) // zero beyond n
	for k := range n {
		x := float64(k - d)
		sinc := 2 * fc
		if x != 0 {
			sinc = math.Sin(2*math.Pi*fc*x) / (math.Pi * x)
		}
		t := x / float64(d)
		proto[k] = sinc * besselI0(beta*math.Sqrt(max(0, 1-t*t))) / i0b
	}
	// Phase p produces y = Σ_m proto[p+m·L]·x[newest-m]. Store it oldest
	// sample first and normalise its sum to 1.
	r.coef = make([]float32, r.l*r.taps)
	for p := range r.l {
		var sum float64
		for m := range r.taps {
			sum += proto[p+m*r.l]
		}
		c := r.coef[p*r.taps : (p+1)*r.taps]
		for m := range r.taps {
			c[r.taps-1-m] = float32(proto[p+m*r.l] / sum)
		}
	}
}

// besselI0 is the zeroth-order modified Bessel function of the first kind.
func besselI0(x float64) float64 {
	sum, term := 1.0, 1.0
	for k := 1; k < 100; k++ {
		f := x / (2 * float64(k))
		term *= f * f
		sum += term
		if term < 1e-15*sum {
			break
		}
	}
	return sum
}

// Reset forgets the stream, as if the resampler were new: the history is
// silence.
func (r *Resampler) Reset() {
	if cap(r.hist) < r.taps-1 {
		r.hist = make([]float32, r.taps-1, r.taps-1+1024)
	}
	r.hist = r.hist[:r.taps-1]
	clear(r.hist)
	r.pos, r.phase = 0, 0
}

// Delay returns the group delay: an input impulse appears this much later
// in the output (rounded to the nanosecond; it is a whole number of output
// samples).
func (r *Resampler) Delay() time.Duration {
	return time.Duration(float64(r.delay) / float64(r.in*r.l) * float64(time.Second))
}

// DelaySamples returns the group delay in output samples.
func (r *Resampler) DelaySamples() int { return r.delay / r.m }

// InRate returns the input sample rate.
func (r *Resampler) InRate() int { return r.in }

// OutRate returns the output sample rate.
func (r *Resampler) OutRate() int { return r.out }

// Process appends the output for src to dst and returns it. It does not
// allocate once dst has room and the resampler has seen a chunk as large
// as src.
func (r *Resampler) Process(dst, src []int16) []int16 {
	if r.l == 1 && r.m == 1 {
		return append(dst, src...)
	}
	for _, s := range src {
		r.hist = append(r.hist, float32(s))
	}
	hist, taps, pos, phase := r.hist, r.taps, r.pos, r.phase
	for pos+taps <= len(hist) {
		c := r.coef[phase*taps : (phase+1)*taps]
		dst = append(dst, clip16(dot(c, hist[pos:pos+taps])))
		phase += r.m
		pos += phase / r.l
		phase %= r.l
	}
	// Drop what no future output needs.
	drop := min(pos, len(hist))
	n := copy(hist, hist[drop:])
	r.hist = hist[:n]
	r.pos, r.phase = pos-drop, phase
	return dst
}

// dot returns Σ a[i]·b[i]; len(b) must be at least len(a). Four
// independent sums let the CPU overlap the multiply-adds; re-slicing by
// four keeps the bounds checks out of the loop.
func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	for len(a) >= 4 && len(b) >= 4 {
		s0 += a[0] * b[0]
		s1 += a[1] * b[1]
		s2 += a[2] * b[2]
		s3 += a[3] * b[3]
		a, b = a[4:], b[4:]
	}
	for i := range a {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// clip16 rounds v to the nearest int16, saturating.
func clip16(v float32) int16 {
	switch {
	case v >= 32767:
		return 32767
	case v <= -32768:
		return -32768
	case v >= 0:
		return int16(v + 0.5)
	default:
		return int16(v - 0.5)
	}
}
