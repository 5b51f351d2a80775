package rig

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
	"time"
)

// within reports whether got is an acceptable histogram answer for the
// exact value want: never below it, above it by at most 1/1024 of it.
func within(got, want int64) bool {
	return got >= want && float64(got-want) <= float64(want)/1024
}

// exactQuantile is the nearest-rank quantile of sorted values.
func exactQuantile(sorted []int64, q float64) int64 {
	rank := max(int(math.Ceil(q*float64(len(sorted))-1e-9)), 1)
	return sorted[rank-1]
}

var quantiles = []float64{0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999}

func TestHistogramUniform(t *testing.T) {
	const n = 100000
	h := NewHistogram()
	for v := int64(1); v <= n; v++ {
		h.Record(v)
	}
	if h.Count() != n || h.Min() != 1 || h.Max() != n {
		t.Fatalf("count %d min %d max %d; want %d, 1, %d", h.Count(), h.Min(), h.Max(), n, n)
	}
	if got, want := h.Mean(), float64(n+1)/2; got != want {
		t.Errorf("mean %v, want %v", got, want)
	}
	for _, q := range quantiles {
		want := int64(math.Ceil(q * n))
		if got := h.ValueAtQuantile(q); !within(got, want) {
			t.Errorf("uniform 1..%d: p%v = %d, want %d (+0.1%%)", n, q*100, got, want)
		}
	}
	// Below 2048 µs every value has its own slot: quantiles are exact.
	small := NewHistogram()
	for v := int64(1); v <= 2000; v++ {
		small.Record(v)
	}
	for _, q := range quantiles {
		if got, want := small.ValueAtQuantile(q), int64(math.Ceil(q*2000)); got != want {
			t.Errorf("uniform 1..2000: p%v = %d, want exactly %d", q*100, got, want)
		}
	}
}

func TestHistogramRandomWithinPrecision(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	h := NewHistogram()
	vals := make([]int64, 50000)
	for i := range vals {
		// Log-uniform from 1 µs to about 20 minutes: every bucket is used.
		vals[i] = int64(math.Exp(r.Float64() * math.Log(1.2e9)))
		h.Record(vals[i])
	}
	sort.Slice(vals, func(i, j int) bool { return vals[i] < vals[j] })
	for _, q := range quantiles {
		want := exactQuantile(vals, q)
		if got := h.ValueAtQuantile(q); !within(got, want) {
			t.Errorf("p%v = %d, want %d (+0.1%%)", q*100, got, want)
		}
	}
}

func TestHistogramBimodal(t *testing.T) {
	h := NewHistogram()
	// 90 % of turns answer in about 300 ms, 10 % in about 2.5 s.
	for i := range 900 {
		h.RecordDuration(300*time.Millisecond + time.Duration(i)*time.Microsecond)
	}
	for i := range 100 {
		h.RecordDuration(2500*time.Millisecond + time.Duration(i)*time.Millisecond)
	}
	cases := []struct {
		q    float64
		want int64
	}{
		{0.5, 300_499},
		{0.9, 300_899},
		{0.901, 2_500_000},
		{0.91, 2_509_000},
		{0.95, 2_549_000},
		{0.99, 2_589_000},
	}
	for _, c := range cases {
		if got := h.ValueAtQuantile(c.q); !within(got, c.want) {
			t.Errorf("p%v = %d, want %d (+0.1%%)", c.q*100, got, c.want)
		}
	}
	if got, want := h.Max(), int64(2_599_000); got != want {
		t.Errorf("max %d, want %d", got, want)
	}
}

func TestHistogramSingleValue(t *testing.T) {
	for _, v := range []int64{0, 1, 2047, 2048, 1_234_567, HistogramMax} {
		h := NewHistogram()
		h.Record(v)
		for _, q := range []float64{0, 0.5, 0.99, 0.999, 1} {
			if got := h.ValueAtQuantile(q); got != v {
				t.Errorf("single value %d: quantile %v = %d", v, q, got)
			}
		}
		if h.Min() != v || h.Max() != v || h.Mean() != float64(v) {
			t.Errorf("single value %d: min %d max %d mean %v", v, h.Min(), h.Max(), h.Mean())
		}
	}
}

func TestHistogramQuantileEnds(t *testing.T) {
	h := NewHistogram()
	for _, v := range []int64{5000, 123_456, 987_654, 77} {
		h.Record(v)
	}
	if got := h.ValueAtQuantile(0); got != 77 {
		t.Errorf("quantile 0 = %d, want the minimum 77", got)
	}
	if got := h.ValueAtQuantile(1); got != 987_654 {
		t.Errorf("quantile 1 = %d, want the maximum 987654", got)
	}
	// The slot of the maximum reaches above it; the answer is capped at it.
	if got := h.ValueAtQuantile(0.9999); got != 987_654 {
		t.Errorf("quantile 0.9999 = %d, want the maximum 987654", got)
	}
	empty := NewHistogram()
	if empty.ValueAtQuantile(0.5) != 0 || empty.Min() != 0 || empty.Max() != 0 || empty.Mean() != 0 || empty.Count() != 0 {
		t.Error("an empty histogram should answer 0 everywhere")
	}
}

func TestHistogramMergeEqualsWhole(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	whole, a, b := NewHistogram(), NewHistogram(), NewHistogram()
	for i := range 20000 {
		v := int64(r.ExpFloat64() * 400_000)
		whole.Record(v)
		if i%2 == 0 {
			a.Record(v)
		} else {
			b.Record(v)
		}
	}
	a.Merge(b)
	if a.Count() != whole.Count() || a.Min() != whole.Min() || a.Max() != whole.Max() || math.Abs(a.Mean()-whole.Mean()) > 1e-6 {
		t.Fatalf("merged count %d min %d max %d mean %v; whole %d %d %d %v",
			a.Count(), a.Min(), a.Max(), a.Mean(), whole.Count(), whole.Min(), whole.Max(), whole.Mean())
	}
	for _, q := range append(quantiles, 0, 1) {
		if got, want := a.ValueAtQuantile(q), whole.ValueAtQuantile(q); got != want {
			t.Errorf("merged p%v = %d, whole %d", q*100, got, want)
		}
	}
	// Merging an empty histogram changes nothing.
	before := a.ValueAtQuantile(0.5)
	a.Merge(NewHistogram())
	if a.ValueAtQuantile(0.5) != before || a.Min() != whole.Min() {
		t.Error("merging an empty histogram changed the result")
	}
}

func TestHistogramClamps(t *testing.T) {
	h := NewHistogram()
	h.Record(-5)
	h.Record(HistogramMax + 1)
	h.RecordDuration(3 * time.Hour)
	h.Record(1000)
	if h.Count() != 4 || h.Clamped() != 3 {
		t.Fatalf("count %d clamped %d; want 4 and 3", h.Count(), h.Clamped())
	}
	if h.Min() != 0 || h.Max() != HistogramMax {
		t.Errorf("min %d max %d; want 0 and %d", h.Min(), h.Max(), HistogramMax)
	}
	if got := h.ValueAtQuantile(0.99); got != HistogramMax {
		t.Errorf("p99 = %d, want the clamp %d", got, HistogramMax)
	}
	m := NewHistogram()
	m.Merge(h)
	if m.Clamped() != 3 {
		t.Errorf("merged clamped %d, want 3", m.Clamped())
	}
}

// TestSlotLayout checks every slot boundary: a slot's range maps back to it
// and its width is within the precision bound.
func TestSlotLayout(t *testing.T) {
	n := (bucketCount + 1) * subBucketHalf
	prevHi := int64(-1)
	for i := range n {
		lo, hi := slotRange(i)
		if lo != prevHi+1 {
			t.Fatalf("slot %d starts at %d, previous ended at %d", i, lo, prevHi)
		}
		if countsIndex(lo) != i || (hi <= HistogramMax && countsIndex(hi) != i) {
			t.Fatalf("slot %d [%d, %d] maps to %d and %d", i, lo, hi, countsIndex(lo), countsIndex(hi))
		}
		if lo > 0 && float64(hi-lo) > float64(lo)/1024 {
			t.Fatalf("slot %d [%d, %d] is wider than 1/1024 of its value", i, lo, hi)
		}
		prevHi = hi
	}
	if prevHi < HistogramMax {
		t.Fatalf("slots end at %d, below the range %d", prevHi, HistogramMax)
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	h := NewHistogram()
	b.ReportAllocs()
	v := int64(1)
	for b.Loop() {
		h.Record(v)
		v = (v*7 + 13) % HistogramMax
	}
}
