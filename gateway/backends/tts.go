package backends

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// TTSConfig configures a TTS client.
type TTSConfig struct {
	Endpoint
	// Voice is sent as "voice". Default "alloy".
	Voice string
	// SampleRate is the rate of the PCM the engine returns. Default 24000
	// (the OpenAI protocol's "pcm" format).
	SampleRate int
}

// SpeechStream is synthesised speech, read as it arrives.
type SpeechStream interface {
	// Read fills dst with PCM16 samples at SampleRate and returns how many
	// it wrote, as soon as any have arrived; io.EOF at the end. After an
	// error every call returns the same error.
	Read(dst []int16) (int, error)
	SampleRate() int
	// Close releases the stream; it is idempotent.
	Close() error
}

// TTS is a client for POST /v1/audio/speech with response_format "pcm". It
// is safe for concurrent use.
type TTS struct {
	cfg TTSConfig
}

// NewTTS returns a client for cfg.
func NewTTS(cfg TTSConfig) *TTS {
	if cfg.Voice == "" {
		cfg.Voice = "alloy"
	}
	if cfg.SampleRate <= 0 {
		cfg.SampleRate = 24000
	}
	return &TTS{cfg: cfg}
}

// Name is the backend's name.
func (t *TTS) Name() string { return t.cfg.Name }

// SampleRate is the rate of the PCM the backend returns.
func (t *TTS) SampleRate() int { return t.cfg.SampleRate }

// maxSpeechBytes bounds one reply: 10 minutes at 48 kHz.
const maxSpeechBytes = 48000 * 2 * 600

type speechBody struct {
	Model          string `json:"model,omitempty"`
	Input          string `json:"input"`
	Voice          string `json:"voice"`
	ResponseFormat string `json:"response_format"`
}

// Speak starts synthesising text. It returns once the backend has
// accepted the request (status and content type checked); the audio is
// then read from the stream as it arrives. Cancelling ctx ends the stream.
func (t *TTS) Speak(ctx context.Context, text string) (SpeechStream, error) {
	e := t.cfg.Endpoint
	body := speechBody{Model: e.Model, Input: text, Voice: t.cfg.Voice, ResponseFormat: "pcm"}
	c, err := e.postJSON(ctx, "speech", "/v1/audio/speech", body, "", acceptPCM)
	if err != nil {
		return nil, err
	}
	return &pcmStream{e: e, call: c, rate: t.cfg.SampleRate, raw: make([]byte, 8192)}, nil
}

// acceptPCM accepts the media types engines send raw PCM with.
func acceptPCM(mt string) error {
	switch {
	case mt == "", mt == "application/octet-stream", strings.HasPrefix(mt, "audio/"):
		return nil
	}
	return fmt.Errorf("%w: content type %q, want raw PCM audio", ErrMalformed, mt)
}

type pcmStream struct {
	e     Endpoint
	call  *streamCall
	rate  int
	raw   []byte
	odd   bool // raw[0] holds a byte left over from the last read
	total int
	err   error
}

func (s *pcmStream) SampleRate() int { return s.rate }

// Read implements SpeechStream.
func (s *pcmStream) Read(dst []int16) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if len(dst) == 0 {
		return 0, nil
	}
	k := 0
	if s.odd {
		k = 1
	}
	buf := s.raw[:min(2*len(dst), len(s.raw))]
	var n int
	var err error
	for n == 0 && err == nil {
		n, err = s.call.Read(buf[k:])
	}
	n += k
	s.total += n - k
	if s.total > maxSpeechBytes {
		s.err = s.e.fail("speech stream", fmt.Errorf("%w: reply longer than %d bytes", ErrMalformed, maxSpeechBytes))
		return 0, s.err
	}
	samples := n / 2
	for i := range samples {
		dst[i] = int16(binary.LittleEndian.Uint16(buf[2*i:]))
	}
	s.odd = n%2 == 1
	if s.odd {
		s.raw[0] = buf[n-1]
	}
	if err != nil {
		switch {
		case errors.Is(err, io.EOF) && s.odd:
			s.err = s.e.fail("speech stream", fmt.Errorf("%w: odd number of PCM bytes (%d)", ErrMalformed, s.total))
		case errors.Is(err, io.EOF):
			s.err = io.EOF
		default:
			s.err = s.e.fail("speech stream", ioError(s.call.wd, s.call.ctx, err))
		}
		if samples > 0 {
			return samples, nil
		}
		return 0, s.err
	}
	return samples, nil
}

// Close implements SpeechStream.
func (s *pcmStream) Close() error { return s.call.close() }

var _ SpeechStream = (*pcmStream)(nil)
