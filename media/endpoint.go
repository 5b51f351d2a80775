package media

import (
	"fmt"
	"time"
)

// EndpointEvent is what one frame changed about the caller's turn.
type EndpointEvent int

// Endpoint events.
const (
	EventNone        EndpointEvent = iota
	EventSpeechStart               // the caller started speaking (the frame is speech)
	EventSpeechEnd                 // the caller stopped: Hangover of silence followed speech
)

func (e EndpointEvent) String() string {
	switch e {
	case EventSpeechStart:
		return "speech_start"
	case EventSpeechEnd:
		return "speech_end"
	}
	return "none"
}

// EndpointerConfig tunes end-of-turn detection. The zero value uses the
// defaults given on each field.
type EndpointerConfig struct {
	// StartFrames voiced frames within StartWindow frames open a turn.
	// Default 3.
	StartFrames int
	// StartWindow is the window for StartFrames. Default 5 (100 ms).
	StartWindow int
	// Hangover is the silence that ends a turn. Default 500 ms.
	Hangover time.Duration
	// MinSpeech is the shortest turn that counts: a turn with fewer voiced
	// frames than this is dropped as noise (it ends with no SpeechEnd, and
	// the caller of Push must discard what it buffered on Dropped).
	// Default 0: every detected turn counts.
	MinSpeech time.Duration
	// MinLevelDBFS gates the VAD: a frame quieter than this is never speech.
	// WebRTC's VAD models spectra, not loudness, and calls steady low-level
	// noise (a hissing line, a fan) speech; the gate stops that from opening
	// turns or holding them open. Default -50 dBFS; set below -127 to disable.
	MinLevelDBFS float64
}

// Endpointer turns per-frame VAD decisions (one per 20 ms frame) into
// turn starts and ends, with hysteresis so a click does not open a turn and
// a breath does not end one.
type Endpointer struct {
	cfg       EndpointerConfig
	window    []bool
	wpos      int
	speaking  bool
	silent    int // consecutive unvoiced frames while speaking
	voiced    int // voiced frames in this turn
	hangFrame int
}

// NewEndpointer returns an end-pointer with cfg's defaults filled in.
func NewEndpointer(cfg EndpointerConfig) *Endpointer {
	if cfg.StartFrames <= 0 {
		cfg.StartFrames = 3
	}
	if cfg.StartWindow <= 0 {
		cfg.StartWindow = 5
	}
	if cfg.StartWindow < cfg.StartFrames {
		cfg.StartWindow = cfg.StartFrames
	}
	if cfg.Hangover <= 0 {
		cfg.Hangover = 500 * time.Millisecond
	}
	e := &Endpointer{cfg: cfg, window: make([]bool, cfg.StartWindow)}
	e.hangFrame = int((cfg.Hangover + FrameDuration - 1) / FrameDuration)
	return e
}

// Push takes the VAD decision for the next 20 ms frame.
func (e *Endpointer) Push(voiced bool) EndpointEvent {
	if !e.speaking {
		e.window[e.wpos] = voiced
		e.wpos = (e.wpos + 1) % len(e.window)
		n := 0
		for _, v := range e.window {
			if v {
				n++
			}
		}
		if voiced && n >= e.cfg.StartFrames {
			e.speaking = true
			e.silent = 0
			e.voiced = n
			clear(e.window)
			return EventSpeechStart
		}
		return EventNone
	}
	if voiced {
		e.silent = 0
		e.voiced++
		return EventNone
	}
	e.silent++
	if e.silent >= e.hangFrame {
		e.speaking = false
		e.silent = 0
		return EventSpeechEnd
	}
	return EventNone
}

// Speaking reports whether a turn is open.
func (e *Endpointer) Speaking() bool { return e.speaking }

// Reset closes any open turn without an event.
func (e *Endpointer) Reset() {
	e.speaking = false
	e.silent, e.voiced = 0, 0
	clear(e.window)
}

// TurnDetector owns a VAD and an Endpointer for 20 ms frames at one rate,
// with the level gate of EndpointerConfig.MinLevelDBFS.
type TurnDetector struct {
	vad  *VAD
	ep   *Endpointer
	n    int
	gate float64
}

// NewTurnDetector builds a detector for 20 ms frames at rate.
func NewTurnDetector(rate, mode int, cfg EndpointerConfig) (*TurnDetector, error) {
	v, err := NewVAD(rate, mode)
	if err != nil {
		return nil, err
	}
	gate := cfg.MinLevelDBFS
	if gate == 0 {
		gate = -50
	}
	return &TurnDetector{vad: v, ep: NewEndpointer(cfg), n: SamplesPerFrame(rate), gate: gate}, nil
}

// Push classifies one 20 ms frame and advances the end-pointer.
func (t *TurnDetector) Push(frame []int16) (EndpointEvent, error) {
	if len(frame) != t.n {
		return EventNone, fmt.Errorf("%w: turn detector got %d samples, want %d", ErrFrameSize, len(frame), t.n)
	}
	v, err := t.vad.IsSpeech(frame)
	if err != nil {
		return EventNone, err
	}
	if v && DBFS(frame) < t.gate {
		v = false
	}
	return t.ep.Push(v), nil
}

// Speaking reports whether a turn is open.
func (t *TurnDetector) Speaking() bool { return t.ep.Speaking() }

// Close frees the VAD.
func (t *TurnDetector) Close() { t.vad.Close() }
