// Package media holds voicegw's audio primitives: DRAFT DOC.
package media

import "time"

// FrameDuration is the length of one pipeline frame.
const FrameDuration = 20 * time.Millisecond

// PipelineRate is the pipeline's internal sample rate: mono PCM16 at 16 kHz.
const PipelineRate = 16000

// SamplesPerFrame returns the number of samples per channel in one
// FrameDuration at rate.
func SamplesPerFrame(rate int) int {
	return rate * int(FrameDuration/time.Millisecond) / 1000
}
