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
	// Read fills dst with PCM16 samples at SampleRate; io.EOF at the end.
	Read(dst []int16) (int, error)
	SampleRate() int
	Close() error
}

// TTS is a client for /v1/audio/speech with response_format "pcm".
type TTS struct {
	cfg TTSConfig
}

// NewTTS returns a client for cfg.
func NewTTS(cfg TTSConfig) *TTS {
	if cfg.Voice == "" {
		cfg.Voice = "alloy"
	}
	if cfg.SampleRate == 0 {
		cfg.SampleRate = 24000
	}
	return &TTS{cfg: cfg}
}

// Name is the backend's name.
func (t *TTS) Name() string { return t.cfg.Name }

// maxSpeechBytes bounds one reply: 10 minutes at 48 kHz.
const maxSpeechBytes = 48000 * 2 * 600

// Speak starts synthesising text.
func (t *TTS) Speak(ctx context.Context, text string) (SpeechStream, error) {
	e := t.cfg.Endpoint
	c, err := e.postJSON(ctx, "speech", "/v1/audio/speech", map[string]any{
		"model":           e.Model,
		"input":           text,
		"voice":           t.cfg.Voice,
		"response_format": "pcm",
	}, "", func(mt string) error {
		if mt != "application/octet-stream" && !strings.HasPrefix(mt, "audio/") && mt != "" {
			return fmt.Errorf("%w: content type %q, want raw PCM audio", ErrMalformed, mt)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &pcmStream{e: e, call: c, body: c.resp.Body, rate: t.cfg.SampleRate, raw: make([]byte, 8192)}, nil
}

type pcmStream struct {
	e     Endpoint
	call  *streamCall
	body  io.ReadCloser
	rate  int
	raw   []byte
	odd   []byte // a byte left over from the last read
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
	want := min(2*len(dst), len(s.raw))
	buf := s.raw[:want]
	k := copy(buf, s.odd)
	s.odd = s.odd[:0]
	n, err := s.body.Read(buf[k:])
	if n > 0 {
		s.call.wd.kick()
	}
	n += k
	s.total += n
	if s.total > maxSpeechBytes {
		s.err = s.e.fail("speech stream", fmt.Errorf("%w: reply longer than %d bytes", ErrMalformed, maxSpeechBytes))
		return 0, s.err
	}
	samples := n / 2
	for i := range samples {
		dst[i] = int16(binary.LittleEndian.Uint16(buf[2*i:]))
	}
	if n%2 == 1 {
		s.odd = append(s.odd, buf[n-1])
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			if len(s.odd) > 0 {
				s.err = s.e.fail("speech stream", fmt.Errorf("%w: odd number of PCM bytes", ErrMalformed))
				return samples, nil
			}
			s.err = io.EOF
		} else {
			s.err = s.e.fail("speech stream", classify(s.call.wd, s.call.ctx, err))
		}
		if samples > 0 {
			return samples, nil
		}
		return 0, s.err
	}
	return samples, nil
}

func (s *pcmStream) Close() error { return s.call.close() }
