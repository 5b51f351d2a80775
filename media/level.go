package media

import "math"

// SilenceDBFS is what DBFS returns for digital silence.
const SilenceDBFS = -127.0

// RMS is the root mean square of frame, in sample units.
func RMS(frame []int16) float64 {
	if len(frame) == 0 {
		return 0
	}
	var sum float64
	for _, s := range frame {
		v := float64(s)
		sum += v * v
	}
	return math.Sqrt(sum / float64(len(frame)))
}

// DBFS is frame's RMS level relative to a full-scale square wave: 0 for
// full scale, about -3 for a full-scale sine, SilenceDBFS for silence.
func DBFS(frame []int16) float64 {
	r := RMS(frame)
	if r < 1e-9 {
		return SilenceDBFS
	}
	return math.Max(SilenceDBFS, 20*math.Log10(r/32768))
}
