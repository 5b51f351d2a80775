package media

import (
	"fmt"
	"time"
)

// EndpointEvent is what one frame changed about the caller's turn.
type EndpointEvent int

// Endpoint events. Every EventSpeechStart is followed, sooner or later, by
// exactly one EventSpeechEnd (unless the Endpointer is Reset).
const (
	// EventNone: nothing changed.
	EventNone EndpointEvent = iota
	// EventSpeechStart: a turn has begun. It fires once the speech has
	// lasted MinSpeech; OnsetLag says how many frames earlier it began.
	EventSpeechStart
	// EventSpeechEnd: Hangover of silence followed speech; the turn's last
	// voiced frame was Hangover (rounded up to whole frames) ago.
	EventSpeechEnd
)

// String returns "none", "speech_start" or "speech_end".
func (e EndpointEvent) String() string {
	switch e {
	case EventNone:
		return "none"
	case EventSpeechStart:
		return "speech_start"
	case EventSpeechEnd:
		return "speech_end"
	}
	return fmt.Sprintf("EndpointEvent(%d)", int(e))
}

// Endpointer defaults (EndpointerConfig's zero values).
const (
	DefaultStartFrames  = 3
	DefaultStartWindow  = 5
	DefaultHangover     = 500 * time.Millisecond
	DefaultMinSpeech    = 200 * time.Millisecond
	DefaultMinLevelDBFS = -55.0
)

// EndpointerConfig tunes end-of-turn detection. Every field's zero value
// selects the default in its comment.
type EndpointerConfig struct {
	// StartFrames voiced frames within the last StartWindow frames mark a
	// possible onset. Default 3.
	StartFrames int
	// StartWindow is the window, in frames, for StartFrames. Default 5
	// (100 ms). It is raised to StartFrames if smaller.
	StartWindow int
	// Hangover is the silence that ends a turn. Default 500 ms; it is
	// counted in whole 20 ms frames, rounded up.
	Hangover time.Duration
	// MinSpeech is the shortest turn that counts, measured from the first
	// voiced frame to the last: a burst shorter than this followed by
	// Hangover of silence is dropped as noise and produces no event, so
	// EventSpeechStart fires MinSpeech after the onset. Default 200 ms; a
	// negative value disables the check (the start fires on the onset).
	MinSpeech time.Duration
	// MinLevelDBFS is used by TurnDetector only: a frame quieter than this
	// (see DBFS) is never speech, whatever the VAD says. WebRTC's VAD
	// models spectral shape, not loudness, and takes some steady low-level
	// noise for speech. Default -55 dBFS; set it to SilenceDBFS or lower to
	// disable the gate.
	MinLevelDBFS float64
}

func (c EndpointerConfig) withDefaults() EndpointerConfig {
	if c.StartFrames <= 0 {
		c.StartFrames = DefaultStartFrames
	}
	if c.StartWindow <= 0 {
		c.StartWindow = DefaultStartWindow
	}
	c.StartWindow = max(c.StartWindow, c.StartFrames)
	if c.Hangover <= 0 {
		c.Hangover = DefaultHangover
	}
	if c.MinSpeech == 0 {
		c.MinSpeech = DefaultMinSpeech
	}
	if c.MinLevelDBFS == 0 {
		c.MinLevelDBFS = DefaultMinLevelDBFS
	}
	return c
}

type endpointState uint8

const (
	stateIdle     endpointState = iota
	statePending                // onset seen, shorter than MinSpeech so far
	stateSpeaking               // EventSpeechStart sent
)

// Endpointer turns per-frame VAD decisions, one per 20 ms frame, into turn
// starts and ends with hysteresis: a click does not open a turn (it needs
// StartFrames voiced frames in StartWindow and MinSpeech of speech) and a
// pause shorter than Hangover does not end one. It is not safe for
// concurrent use.
type Endpointer struct {
	cfg        EndpointerConfig
	hangFrames int
	minFrames  int // MinSpeech in frames (first to last voiced, inclusive)

	window []bool // ring of the last StartWindow decisions while idle
	wpos   int
	nvoice int // voiced frames in window

	state  endpointState
	frame  int // index of the current frame since the onset
	last   int // index of the last voiced frame since the onset
	silent int // unvoiced frames since the last voiced one
	lag    int
}

// NewEndpointer returns an end-pointer; zero fields of cfg take their
// defaults.
func NewEndpointer(cfg EndpointerConfig) *Endpointer {
	cfg = cfg.withDefaults()
	e := &Endpointer{
		cfg:        cfg,
		hangFrames: int((cfg.Hangover + FrameDuration - 1) / FrameDuration),
		window:     make([]bool, cfg.StartWindow),
	}
	if cfg.MinSpeech > 0 {
		e.minFrames = int((cfg.MinSpeech + FrameDuration - 1) / FrameDuration)
	}
	return e
}

// Config returns the configuration in use, defaults filled in.
func (e *Endpointer) Config() EndpointerConfig { return e.cfg }

// Push takes the VAD decision for the next 20 ms frame and returns what
// it changed.
func (e *Endpointer) Push(voiced bool) EndpointEvent {
	switch e.state {
	case stateIdle:
		if e.window[e.wpos] {
			e.nvoice--
		}
		e.window[e.wpos] = voiced
		if voiced {
			e.nvoice++
		}
		e.wpos = (e.wpos + 1) % len(e.window)
		if !voiced || e.nvoice < e.cfg.StartFrames {
			return EventNone
		}
		// Onset: the oldest voiced frame in the window.
		onset := 0
		for i := range len(e.window) {
			if e.window[(e.wpos+i)%len(e.window)] {
				onset = len(e.window) - 1 - i // frames before the current one
				break
			}
		}
		e.clearWindow()
		e.frame, e.last, e.silent = onset, onset, 0
		e.state = statePending
		return e.confirm()
	case statePending:
		e.frame++
		if voiced {
			e.last, e.silent = e.frame, 0
			return e.confirm()
		}
		e.silent++
		if e.silent >= e.hangFrames {
			e.state = stateIdle // too short: noise
		}
		return EventNone
	default: // stateSpeaking
		e.frame++
		if voiced {
			e.last, e.silent = e.frame, 0
			return EventNone
		}
		e.silent++
		if e.silent >= e.hangFrames {
			e.state = stateIdle
			return EventSpeechEnd
		}
		return EventNone
	}
}

// confirm starts the turn if the pending speech has lasted long enough.
func (e *Endpointer) confirm() EndpointEvent {
	if e.last+1 < e.minFrames {
		return EventNone
	}
	e.state = stateSpeaking
	e.lag = e.frame
	return EventSpeechStart
}

func (e *Endpointer) clearWindow() {
	clear(e.window)
	e.wpos, e.nvoice = 0, 0
}

// Speaking reports whether a turn is open (EventSpeechStart was returned
// and EventSpeechEnd not yet).
func (e *Endpointer) Speaking() bool { return e.state == stateSpeaking }

// OnsetLag returns, for the last EventSpeechStart, how many frames before
// the frame that returned it the turn's first voiced frame was: keep at
// least OnsetLag()+1 frames of pre-roll to send the whole turn to ASR.
// With the defaults it is at most MinSpeech/20 ms + StartWindow - 1.
func (e *Endpointer) OnsetLag() int { return e.lag }

// Reset returns to the idle state without an event, forgetting any open
// or pending turn.
func (e *Endpointer) Reset() {
	e.clearWindow()
	e.state = stateIdle
	e.frame, e.last, e.silent, e.lag = 0, 0, 0, 0
}

// TurnDetector owns a VAD and an Endpointer for 20 ms frames at one rate,
// and gates the VAD with EndpointerConfig.MinLevelDBFS. It is not safe
// for concurrent use.
type TurnDetector struct {
	vad *VAD
	ep  *Endpointer
	n   int
}

// NewTurnDetector returns a detector for 20 ms frames at rate (8000,
// 16000, 32000 or 48000 Hz), VAD aggressiveness mode (0..3) and cfg.
func NewTurnDetector(rate, mode int, cfg EndpointerConfig) (*TurnDetector, error) {
	v, err := NewVAD(rate, mode)
	if err != nil {
		return nil, fmt.Errorf("turn detector: %w", err)
	}
	return &TurnDetector{vad: v, ep: NewEndpointer(cfg), n: SamplesPerFrame(rate)}, nil
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
	if v && DBFS(frame) < t.ep.cfg.MinLevelDBFS {
		v = false
	}
	return t.ep.Push(v), nil
}

// Speaking reports whether a turn is open.
func (t *TurnDetector) Speaking() bool { return t.ep.Speaking() }

// OnsetLag is Endpointer.OnsetLag.
func (t *TurnDetector) OnsetLag() int { return t.ep.OnsetLag() }

// Reset forgets any open turn (without an event); the VAD keeps its
// noise model.
func (t *TurnDetector) Reset() { t.ep.Reset() }

// Close frees the VAD. It is idempotent.
func (t *TurnDetector) Close() { t.vad.Close() }
