// Package media is voicegw's audio toolkit: 20 ms mono PCM16 frames, G.711
// µ-law and A-law, Opus through libopus, a polyphase windowed-sinc
// resampler, WebRTC's GMM voice activity detector with an end-of-turn
// end-pointer, WAV files, levels and a drift-free pacer. It imports nothing
// else of voicegw and does no network I/O.
//
// Design notes:
//   - Opus and the VAD are cgo bindings to Debian's libopus and
//     libwebrtc-audio-processing (its WebRtcVad_* functions, linked
//     statically). WebRTC's VAD is the detector every softphone and SBC
//     is tuned against; a pure-Go port would have to be proven equal to it
//     on every frame, and binding the original removes that question. Both
//     bindings are small (one C struct each) and copy no Go pointers.
//   - The resampler handles every rational ratio among 8, 16, 24 and 48 kHz
//     with one Kaiser-windowed sinc prototype per ratio (see resample.go for
//     the measured passband ripple and stopband attenuation).
package media

import "time"

// FrameDuration is the pipeline's frame length.
const FrameDuration = 20 * time.Millisecond

// PipelineRate is the sample rate, in Hz, of the pipeline's mono PCM16
// frames between legs and backends.
const PipelineRate = 16000

// SamplesPerFrame is the number of samples in one 20 ms frame at rate.
func SamplesPerFrame(rate int) int { return rate / 50 }
