package rig

import (
	"math"
	"math/bits"
	"time"
)

// The histogram's fixed layout: values in microseconds from 0 to one hour,
// three significant decimal digits.
const (
	// HistogramMax is the highest value a Histogram tracks (one hour in
	// microseconds); larger values are clamped to it and counted by Clamped.
	HistogramMax = int64(time.Hour / time.Microsecond)

	subBucketCount     = 2048 // 2·10³ rounded up to a power of two: 3 significant digits
	subBucketHalf      = subBucketCount / 2
	subBucketHalfMag   = 10 // log2(subBucketHalf)
	subBucketMask      = subBucketCount - 1
	subBucketCountBits = 11 // log2(subBucketCount)
)

// bucketCount is the number of power-of-two buckets needed to reach
// HistogramMax: bucket b covers [1024·2^b, 2048·2^b) at a resolution of 2^b
// (bucket 0 covers [0, 2048) at 1).
var bucketCount = func() int {
	n := 1
	for smallestUntrackable := int64(subBucketCount); smallestUntrackable <= HistogramMax; smallestUntrackable <<= 1 {
		n++
	}
	return n
}()

// Histogram is a high-dynamic-range histogram of durations, recorded in
// microseconds, in the layout of HdrHistogram: log-linear buckets with 2048
// linear sub-buckets each, so the first 2048 µs are exact and every larger
// value shares its slot with values within 1/1024 of it. A quantile is
// reported as the highest value of its slot, so it is never below the true
// sample and at most 0.1 % (1/1024) above it. The value range is 0 to one
// hour; values outside it are clamped to the nearest end and counted by
// Clamped. Min, Max and Mean are exact (over the clamped values).
//
// The zero value is not usable; call NewHistogram. A Histogram is not safe
// for concurrent use.
type Histogram struct {
	counts   []int64
	total    int64
	min, max int64
	sum      float64
	clamped  int64
}

// NewHistogram returns an empty histogram (about 190 KB of counters).
func NewHistogram() *Histogram {
	return &Histogram{counts: make([]int64, (bucketCount+1)*subBucketHalf), min: math.MaxInt64}
}

// countsIndex returns the slot of v (0 ≤ v ≤ HistogramMax).
func countsIndex(v int64) int {
	bucket := bits.Len64(uint64(v)|subBucketMask) - subBucketCountBits
	sub := int(v >> uint(bucket))
	return (bucket+1)<<subBucketHalfMag + sub - subBucketHalf
}

// slotRange returns the lowest and highest value that share slot i.
func slotRange(i int) (lo, hi int64) {
	bucket := i>>subBucketHalfMag - 1
	sub := i&(subBucketHalf-1) + subBucketHalf
	if bucket < 0 {
		bucket, sub = 0, sub-subBucketHalf
	}
	lo = int64(sub) << uint(bucket)
	return lo, lo + 1<<uint(bucket) - 1
}

// Record adds one value in microseconds.
func (h *Histogram) Record(us int64) {
	if us < 0 {
		us = 0
		h.clamped++
	} else if us > HistogramMax {
		us = HistogramMax
		h.clamped++
	}
	h.counts[countsIndex(us)]++
	h.total++
	h.sum += float64(us)
	h.min = min(h.min, us)
	h.max = max(h.max, us)
}

// RecordDuration adds one duration, truncated to whole microseconds.
func (h *Histogram) RecordDuration(d time.Duration) { h.Record(d.Microseconds()) }

// Merge adds every value recorded in o.
func (h *Histogram) Merge(o *Histogram) {
	if o.total == 0 {
		h.clamped += o.clamped
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.sum += o.sum
	h.clamped += o.clamped
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
}

// Count is the number of values recorded.
func (h *Histogram) Count() int64 { return h.total }

// Clamped is the number of values that were outside [0, HistogramMax] and
// were recorded as the nearest end.
func (h *Histogram) Clamped() int64 { return h.clamped }

// Min is the smallest value recorded (0 when empty).
func (h *Histogram) Min() int64 {
	if h.total == 0 {
		return 0
	}
	return h.min
}

// Max is the largest value recorded (0 when empty).
func (h *Histogram) Max() int64 { return h.max }

// Mean is the exact mean of the values recorded (0 when empty).
func (h *Histogram) Mean() float64 {
	if h.total == 0 {
		return 0
	}
	return h.sum / float64(h.total)
}

// ValueAtQuantile returns the value at quantile q (0 ≤ q ≤ 1): the highest
// value of the slot holding the ⌈q·count⌉-th smallest value (at least the
// first), capped at Max. It is never below that value and exceeds it by at
// most 1/1024 of it. q ≤ 0 gives Min, q ≥ 1 gives Max; an empty histogram
// gives 0.
func (h *Histogram) ValueAtQuantile(q float64) int64 {
	if h.total == 0 {
		return 0
	}
	if q <= 0 || math.IsNaN(q) {
		return h.min
	}
	if q >= 1 {
		return h.max
	}
	// The small offset keeps q·count from rounding up past an exact rank
	// (0.9·10 is 9.000000000000002 in floating point).
	rank := max(int64(math.Ceil(q*float64(h.total)-1e-9)), 1)
	var seen int64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			_, hi := slotRange(i)
			return min(hi, h.max)
		}
	}
	return h.max
}

// Duration converts a histogram value to a time.Duration.
func Duration(us int64) time.Duration { return time.Duration(us) * time.Microsecond }
