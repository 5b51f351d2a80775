package media

/*
#cgo LDFLAGS: -l:libwebrtc_audio_processing.a -lstdc++ -lm
#include <stdint.h>
#include <stddef.h>
typedef struct WebRtcVadInst VadInst;
VadInst* WebRtcVad_Create(void);
int WebRtcVad_Init(VadInst* handle);
int WebRtcVad_set_mode(VadInst* handle, int mode);
int WebRtcVad_Process(VadInst* handle, int fs, const int16_t* audio_frame, size_t frame_length);
void WebRtcVad_Free(VadInst* handle);
*/
import "C"

import (
	"fmt"
	"runtime"
	"unsafe"
)

// VAD is WebRTC's GMM voice activity detector (the WebRtcVad_* functions of
// Debian's libwebrtc-audio-processing). It takes 10, 20 or 30 ms frames at
// 8, 16, 32 or 48 kHz. Not safe for concurrent use.
type VAD struct {
	h    *C.VadInst
	rate int
}

// NewVAD creates a detector for rate with aggressiveness mode 0 (least) to
// 3 (most aggressive about calling a frame non-speech).
func NewVAD(rate, mode int) (*VAD, error) {
	switch rate {
	case 8000, 16000, 32000, 48000:
	default:
		return nil, fmt.Errorf("%w: vad at %d Hz", ErrUnsupportedRate, rate)
	}
	if mode < 0 || mode > 3 {
		return nil, fmt.Errorf("vad: mode %d out of range 0..3", mode)
	}
	h := C.WebRtcVad_Create()
	if h == nil {
		return nil, fmt.Errorf("vad: create failed")
	}
	if C.WebRtcVad_Init(h) != 0 || C.WebRtcVad_set_mode(h, C.int(mode)) != 0 {
		C.WebRtcVad_Free(h)
		return nil, fmt.Errorf("vad: init failed")
	}
	return &VAD{h: h, rate: rate}, nil
}

// IsSpeech classifies one frame.
func (v *VAD) IsSpeech(frame []int16) (bool, error) {
	if v.h == nil {
		return false, fmt.Errorf("vad: closed")
	}
	n := len(frame)
	if n != v.rate/100 && n != v.rate/50 && n != v.rate*3/100 {
		return false, fmt.Errorf("%w: vad frame of %d samples at %d Hz (need 10, 20 or 30 ms)", ErrFrameSize, n, v.rate)
	}
	r := C.WebRtcVad_Process(v.h, C.int(v.rate), (*C.int16_t)(unsafe.Pointer(&frame[0])), C.size_t(n))
	runtime.KeepAlive(frame)
	if r < 0 {
		return false, fmt.Errorf("vad: process failed")
	}
	return r == 1, nil
}

// Close frees the detector. It is safe to call twice.
func (v *VAD) Close() {
	if v.h != nil {
		C.WebRtcVad_Free(v.h)
		v.h = nil
	}
}
