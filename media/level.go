package media

import "math"

// SilenceDBFS is the level DBFS reports for digital silence and the floor
// it never goes below (the range of RFC 6464 audio levels and of WebRTC's
// level meter is 0 to -127 dBov).
const SilenceDBFS = -127.0

// RMS returns the root mean square of frame in sample units (0 to 32768).
// It returns 0 for an empty frame.
func RMS(frame []int16) float64 {
	if len(frame) == 0 {
		return 0
	}
	var sum int64
	for _, s := range frame {
		v := int64(s)
		sum += v * v
	}
	return math.Sqrt(float64(sum) / float64(len(frame)))
}

// DBFS returns the level of frame in dB relative to full scale, where full
// scale is the RMS of a full-scale square wave (32768): a full-scale square
// wave reads 0, a full-scale sine about -3.01. Silence and levels below
// SilenceDBFS read SilenceDBFS.
func DBFS(frame []int16) float64 {
	rms := RMS(frame)
	if rms == 0 {
		return SilenceDBFS
	}
	return max(20*math.Log10(rms/32768), SilenceDBFS)
}
