package media

/*
// WebRTC's VAD from Debian's libwebrtc-audio-processing (0.3), linked
// statically so the binary needs no extra runtime package. The package
// ships no header for the VAD: the prototypes below are those of
// common_audio/vad/include/webrtc_vad.h in that release.
#cgo LDFLAGS: -l:libwebrtc_audio_processing.a -lm
#include <stdint.h>
#include <stddef.h>
typedef struct WebRtcVadInst VadInst;
VadInst* WebRtcVad_Create(void);
void WebRtcVad_Free(VadInst* handle);
int WebRtcVad_Init(VadInst* handle);
int WebRtcVad_set_mode(VadInst* handle, int mode);
int WebRtcVad_Process(VadInst* handle, int fs, const int16_t* audio_frame, size_t frame_length);
*/
import "C"

import (
	"fmt"
	"runtime"
	"unsafe"
)

// VAD is WebRTC's GMM voice activity detector. It classifies frames of
// 10, 20 or 30 ms at 8, 16, 32 or 48 kHz and adapts its noise model as it
// goes, so one VAD should see one stream's frames in order. It is not
// safe for concurrent use. Its C state is freed by Close, or by the
// garbage collector if Close is never called.
type VAD struct {
	h       *C.VadInst
	rate    int
	cleanup runtime.Cleanup
}

// NewVAD returns a detector for rate (8000, 16000, 32000 or 48000 Hz)
// with aggressiveness mode 0 (quality: calls more frames speech) to 3
// (very aggressive: calls fewer frames speech).
func NewVAD(rate, mode int) (*VAD, error) {
	switch rate {
	case 8000, 16000, 32000, 48000:
	default:
		return nil, fmt.Errorf("%w: vad at %d Hz (want 8000, 16000, 32000 or 48000)", ErrUnsupportedRate, rate)
	}
	if mode < 0 || mode > 3 {
		return nil, fmt.Errorf("%w: %d (want 0 to 3)", ErrInvalidMode, mode)
	}
	h := C.WebRtcVad_Create()
	if h == nil {
		return nil, fmt.Errorf("%w: create failed", ErrVAD)
	}
	if C.WebRtcVad_Init(h) != 0 || C.WebRtcVad_set_mode(h, C.int(mode)) != 0 {
		C.WebRtcVad_Free(h)
		return nil, fmt.Errorf("%w: init failed", ErrVAD)
	}
	v := &VAD{h: h, rate: rate}
	v.cleanup = runtime.AddCleanup(v, func(h *C.VadInst) { C.WebRtcVad_Free(h) }, h)
	return v, nil
}

// IsSpeech classifies one frame of 10, 20 or 30 ms.
func (v *VAD) IsSpeech(frame []int16) (bool, error) {
	if v.h == nil {
		return false, fmt.Errorf("vad: %w", ErrClosed)
	}
	n := len(frame)
	if n != v.rate/100 && n != v.rate/50 && n != v.rate*3/100 {
		return false, fmt.Errorf("%w: vad frame of %d samples at %d Hz (want 10, 20 or 30 ms)", ErrFrameSize, n, v.rate)
	}
	r := C.WebRtcVad_Process(v.h, C.int(v.rate), (*C.int16_t)(unsafe.Pointer(&frame[0])), C.size_t(n))
	runtime.KeepAlive(v) // the cleanup must not free the state during the call
	if r < 0 {
		return false, fmt.Errorf("%w: process failed", ErrVAD)
	}
	return r == 1, nil
}

// Close frees the detector. Later calls to IsSpeech return ErrClosed;
// Close is idempotent.
func (v *VAD) Close() {
	if v.h == nil {
		return
	}
	v.cleanup.Stop()
	C.WebRtcVad_Free(v.h)
	v.h = nil
}
