package sim

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestParseLatency(t *testing.T) {
	ms := time.Millisecond
	valid := []struct {
		in   string
		want Latency
		str  string
	}{
		{"300ms", Latency{kind: latencyFixed, a: 300 * ms}, "300ms"},
		{" 0 ", Latency{kind: latencyFixed}, "0s"},
		{"1.5s", Latency{kind: latencyFixed, a: 1500 * ms}, "1.5s"},
		{"300ms±80ms", Latency{kind: latencyNormal, a: 300 * ms, b: 80 * ms}, "300ms±80ms"},
		{"300ms+-80ms", Latency{kind: latencyNormal, a: 300 * ms, b: 80 * ms}, "300ms±80ms"},
		{"300ms ± 0s", Latency{kind: latencyNormal, a: 300 * ms}, "300ms±0s"},
		{"uniform(200ms,400ms)", Latency{kind: latencyUniform, a: 200 * ms, b: 400 * ms}, "uniform(200ms,400ms)"},
		{"uniform( 1s , 1s )", Latency{kind: latencyUniform, a: time.Second, b: time.Second}, "uniform(1s,1s)"},
		{"300ms±80ms,tail=1%:2s", Latency{kind: latencyNormal, a: 300 * ms, b: 80 * ms, p: 0.01, tail: 2 * time.Second}, "300ms±80ms,tail=1%:2s"},
		{"300ms, tail=0.5%:1s", Latency{kind: latencyFixed, a: 300 * ms, p: 0.005, tail: time.Second}, "300ms,tail=0.5%:1s"},
		{"uniform(0,10ms),tail=100%:5ms", Latency{kind: latencyUniform, b: 10 * ms, p: 1, tail: 5 * ms}, "uniform(0s,10ms),tail=100%:5ms"},
	}
	for _, c := range valid {
		got, err := ParseLatency(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseLatency(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
			continue
		}
		if got.String() != c.str {
			t.Errorf("ParseLatency(%q).String() = %q, want %q", c.in, got.String(), c.str)
		}
		if back, err := ParseLatency(got.String()); err != nil || back != got {
			t.Errorf("%q does not read back: %+v, %v", got.String(), back, err)
		}
	}
	invalid := []struct{ in, want string }{
		{"", `sim: latency "": empty; want e.g. 300ms, 300ms±80ms or uniform(200ms,400ms)`},
		{"soon", `sim: latency "soon": duration "soon" is not a duration such as 300ms`},
		{"-1s", `sim: latency "-1s": duration "-1s" must not be negative`},
		{"300±80ms", `sim: latency "300±80ms": mean "300" is not a duration such as 300ms`},
		{"300ms±", `sim: latency "300ms±": standard deviation is missing`},
		{"300ms+--80ms", `sim: latency "300ms+--80ms": standard deviation "-80ms" must not be negative`},
		{"uniform(400ms,200ms)", `sim: latency "uniform(400ms,200ms)": "uniform(400ms,200ms)": low 400ms is above high 200ms`},
		{"uniform(200ms)", `sim: latency "uniform(200ms)": "uniform(200ms)": want two durations, uniform(L,H)`},
		{"uniform(1s,2s,3s)", `sim: latency "uniform(1s,2s,3s)": "uniform(1s,2s,3s)": want two durations, uniform(L,H)`},
		{"uniform(1s,2s", `sim: latency "uniform(1s,2s": "uniform(1s,2s": want uniform(L,H) with the closing parenthesis last`},
		{"uniform(1s,x)", `sim: latency "uniform(1s,x)": uniform high "x" is not a duration such as 300ms`},
		{"uniform(1s,2s)x", `sim: latency "uniform(1s,2s)x": "x" after "uniform(1s,2s)": want ,tail=P%:D`},
		{"normal(1s)", `sim: latency "normal(1s)": "normal(1s)": want a duration, D±S or uniform(L,H)`},
		{"300ms,", `sim: latency "300ms,": nothing after the comma; want tail=P%:D, e.g. tail=1%:2s`},
		{"300ms,foo", `sim: latency "300ms,foo": "foo" after the comma: want tail=P%:D, e.g. tail=1%:2s`},
		{"300ms,tail=1%", `sim: latency "300ms,tail=1%": tail "1%": want P%:D, e.g. 1%:2s`},
		{"300ms,tail=1:2s", `sim: latency "300ms,tail=1:2s": tail probability "1": want a percentage such as 1%`},
		{"300ms,tail=150%:2s", `sim: latency "300ms,tail=150%:2s": tail probability "150%": want a number from 0% to 100%`},
		{"300ms,tail=x%:2s", `sim: latency "300ms,tail=x%:2s": tail probability "x%": want a number from 0% to 100%`},
		{"300ms,tail=1%:-2s", `sim: latency "300ms,tail=1%:-2s": tail delay "-2s" must not be negative`},
		{"300ms,tail=1%:", `sim: latency "300ms,tail=1%:": tail delay is missing`},
	}
	for _, c := range invalid {
		got, err := ParseLatency(c.in)
		if err == nil || err.Error() != c.want {
			t.Errorf("ParseLatency(%q) = %+v, %v\nwant error %s", c.in, got, err, c.want)
		}
	}
}

func TestLatencyZeroAndText(t *testing.T) {
	var l Latency
	if !l.IsZero() || l.String() != "" || l.Sample(nil) != 0 {
		t.Errorf("zero Latency: IsZero %v, String %q, Sample %v", l.IsZero(), l.String(), l.Sample(nil))
	}
	if Fixed(0).IsZero() || Fixed(-time.Second) != Fixed(0) {
		t.Error("Fixed(0) must be set, and negative clamps to 0")
	}
	if err := l.UnmarshalText([]byte("uniform(1ms,2ms)")); err != nil || l != MustParseLatency("uniform(1ms,2ms)") {
		t.Errorf("UnmarshalText: %+v, %v", l, err)
	}
	if b, _ := l.MarshalText(); string(b) != "uniform(1ms,2ms)" {
		t.Errorf("MarshalText: %q", b)
	}
	if err := l.UnmarshalText(nil); err != nil || !l.IsZero() {
		t.Errorf("empty text: %+v, %v", l, err)
	}
	if err := l.Set("1s±x"); err == nil || !strings.Contains(err.Error(), `standard deviation "x"`) {
		t.Errorf("Set: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("MustParseLatency did not panic on bad text")
		}
	}()
	MustParseLatency("bad")
}

// TestLatencySample checks 20k draws with a fixed seed against each
// distribution's mean, standard deviation, range and tail fraction.
func TestLatencySample(t *testing.T) {
	const n = 20000
	ms := float64(time.Millisecond)
	cases := []struct {
		spec     string
		mean, sd float64 // ms
		lo, hi   float64 // every draw in [lo, hi] ms, ignoring the tail
		tailP    float64
		tail     float64 // ms
	}{
		{"250ms", 250, 0, 250, 250, 0, 0},
		{"300ms±80ms", 300, 80, 0, 620, 0, 0},
		{"uniform(200ms,400ms)", 300, 200 / math.Sqrt(12), 200, 400, 0, 0},
		// Heavily truncated: a half-normal cut at 4σ.
		{"0s±50ms", 50 * 0.7979, 50 * 0.6028, 0, 200, 0, 0},
		{"300ms±80ms,tail=1%:2s", 300 + 0.01*2000, math.Sqrt(80*80 + 0.01*0.99*2000*2000), 0, 620, 0.01, 2000},
		{"uniform(100ms,200ms),tail=5%:1s", 150 + 50, math.Sqrt(100*100/12.0 + 0.05*0.95*1000*1000), 100, 200, 0.05, 1000},
	}
	for _, c := range cases {
		l := MustParseLatency(c.spec)
		r := rand.New(rand.NewPCG(1, 2))
		var sum, sum2 float64
		tails := 0
		for range n {
			d := l.Sample(r)
			if d < 0 {
				t.Fatalf("%s: negative draw %v", c.spec, d)
			}
			x := float64(d) / ms
			if x > c.hi+c.tail/2 && c.tail > 0 {
				tails++
				x0 := x - c.tail
				if x0 < c.lo || x0 > c.hi {
					t.Fatalf("%s: tail draw %v outside [%v, %v]+tail", c.spec, d, c.lo, c.hi)
				}
			} else if x < c.lo || x > c.hi {
				t.Fatalf("%s: draw %v outside [%vms, %vms]", c.spec, d, c.lo, c.hi)
			}
			sum += x
			sum2 += x * x
		}
		mean := sum / n
		sd := math.Sqrt(max(sum2/n-mean*mean, 0))
		if math.Abs(mean-c.mean) > 0.03*c.mean {
			t.Errorf("%s: mean %.1fms, want %.1fms ±3%%", c.spec, mean, c.mean)
		}
		if math.Abs(sd-c.sd) > 0.10*c.sd {
			t.Errorf("%s: standard deviation %.1fms, want %.1fms ±10%%", c.spec, sd, c.sd)
		}
		if got := float64(tails) / n; math.Abs(got-c.tailP) > 0.003 {
			t.Errorf("%s: %.2f%% of draws in the tail, want %.2f%% ±0.3 points", c.spec, 100*got, 100*c.tailP)
		}
	}
}

// TestSeedRepeats: two servers with one seed draw the same latencies and
// fates; a set Latency overrides the fixed delay.
func TestSeedRepeats(t *testing.T) {
	cfg := Config{Seed: 7, LLMTTFT: time.Hour, LLMTTFTLatency: MustParseLatency("300ms±80ms,tail=10%:1s"), LLMFailRate: 0.3, LLMStallRate: 0.2, Logger: quiet()}
	a, b := New(cfg), New(cfg)
	if a.Seed() != 7 {
		t.Errorf("Seed() = %d, want 7", a.Seed())
	}
	for i := range 200 {
		fa, fb := a.fate(cfg.LLMFailRate, cfg.LLMStallRate), b.fate(cfg.LLMFailRate, cfg.LLMStallRate)
		da, db := a.llmTTFT(), b.llmTTFT()
		if fa != fb || da != db {
			t.Fatalf("draw %d: %v %v and %v %v differ", i, fa, da, fb, db)
		}
		if da >= time.Hour {
			t.Fatalf("draw %d: %v: LLMTTFTLatency did not override LLMTTFT", i, da)
		}
	}
	if d := New(Config{ASRDelay: 7 * time.Millisecond, Logger: quiet()}).asrDelay(); d != 7*time.Millisecond {
		t.Errorf("unset ASRLatency: %v, want ASRDelay", d)
	}
	if d := New(Config{TTSTTFBLatency: Fixed(0), Logger: quiet()}).ttsTTFB(); d != 0 {
		t.Errorf("TTSTTFBLatency Fixed(0): %v, want 0 (not the default TTSTTFB)", d)
	}
	if New(Config{Logger: quiet()}).Seed() == 0 {
		t.Error("no seed taken from the clock")
	}
}

// TestFateRates: over 20k draws, fail and stall each come up at their
// rates.
func TestFateRates(t *testing.T) {
	const n = 20000
	s := New(Config{Seed: 3, Logger: quiet()})
	var got [3]int
	for range n {
		got[s.fate(0.1, 0.05)]++
	}
	for f, want := range map[fate]float64{fail: 0.1, stall: 0.05, serve: 0.85} {
		if p := float64(got[f]) / n; math.Abs(p-want) > 0.006 {
			t.Errorf("fate %d: %.3f, want %.3f", f, p, want)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{LLMFailRate: 0.5, LLMStallRate: 0.5, TTSFailRate: 1}, ""},
		{Config{LLMFailRate: -0.1}, "sim: LLMFailRate -0.1 is not between 0 and 1"},
		{Config{TTSStallRate: 1.5}, "sim: TTSStallRate 1.5 is not between 0 and 1"},
		{Config{TTSFailRate: math.NaN()}, "sim: TTSFailRate NaN is not between 0 and 1"},
		{Config{LLMFailRate: 0.6, LLMStallRate: 0.5}, "sim: LLMFailRate 0.6 and LLMStallRate 0.5 add up to more than 1"},
	} {
		err := c.cfg.Validate()
		if got := ""; err != nil {
			got = err.Error()
			if got != c.want {
				t.Errorf("%+v: %q, want %q", c.cfg, got, c.want)
			}
		} else if c.want != "" {
			t.Errorf("%+v: valid, want %q", c.cfg, c.want)
		}
	}
	if _, _, err := Listen(t.Context(), "127.0.0.1:0", Config{LLMStallRate: 2, Logger: quiet()}); err == nil {
		t.Error("Listen took a stall rate of 2")
	}
}
