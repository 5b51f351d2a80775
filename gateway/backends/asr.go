package backends

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/voicegw/voicegw/media"
)

// ASREvent is a transcript fragment (Final false) or a whole utterance's
// transcript (Final true), or a failure (Err set; the stream is then over
// and Events is closed after it).
type ASREvent struct {
	ItemID string
	Text   string
	Final  bool
	Err    error
}

// ASRStream is one call's transcription stream.
type ASRStream interface {
	// Append sends caller audio: mono PCM16 at media.PipelineRate. The
	// stream resamples it to the backend's rate.
	Append(pcm []int16) error
	// Commit ends the utterance; a Final event follows on Events (with
	// empty Text if nothing was said).
	Commit() error
	// Clear drops audio appended since the last Commit.
	Clear() error
	// Events delivers transcripts; it is closed when the stream ends.
	Events() <-chan ASREvent
	// Close ends the stream and waits for its goroutines; it is
	// idempotent.
	Close() error
}

// ASRConfig configures a transcription backend.
type ASRConfig struct {
	Endpoint
	// Mode is "realtime" (default: the Realtime transcription WebSocket)
	// or "batch" (POST /v1/audio/transcriptions per utterance).
	Mode string
	// Language is an ISO-639-1 hint; empty lets the engine detect it.
	Language string
	// SampleRate is the backend's input rate for realtime audio. Default
	// 24000 (the protocol's pcm16). Batch mode sends 16 kHz WAV files.
	SampleRate int
}

const (
	// maxTranscript bounds one utterance's transcript (and the sum of its
	// deltas).
	maxTranscript = 16 << 10
	// maxRealtimeMessage bounds one server event.
	maxRealtimeMessage = 1 << 20
	// eventBuffer is how many events wait for the reader before the
	// stream stops reading the backend.
	eventBuffer = 64
)

// DialASR opens a transcription stream. Like net.Dialer.DialContext, ctx
// bounds only the opening (connecting and the session handshake); once
// open, the stream lives until Close or a failure. In batch mode nothing is
// dialled: each Commit posts the utterance.
func DialASR(ctx context.Context, cfg ASRConfig) (ASRStream, error) {
	switch strings.ToLower(cfg.Mode) {
	case "", "realtime":
		a, err := dialRealtime(ctx, cfg)
		if err != nil {
			return nil, err // not a typed nil
		}
		return a, nil
	case "batch":
		return newBatchASR(cfg), nil
	}
	return nil, cfg.fail("asr", fmt.Errorf("%w: mode %q (want realtime or batch)", ErrConfig, cfg.Mode))
}

// --- realtime ----------------------------------------------------------------

// realtimeASR is a Realtime transcription session. One goroutine reads the
// socket and is the only sender on events; writers serialise on wmu.
type realtimeASR struct {
	e      Endpoint
	log    *slog.Logger
	ws     *websocket.Conn
	events chan ASREvent
	done   chan struct{} // closed by Close

	wmu     sync.Mutex // guards the fields below and socket writes
	rs      *media.Resampler
	up      []int16
	raw     []byte
	msg     []byte
	pending int // commits awaiting a final
	timer   *time.Timer

	closed    atomic.Bool // set first thing in Close
	timedOut  atomic.Bool
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// realtimeEvent is the subset of server events the client reads.
type realtimeEvent struct {
	Type       string `json:"type"`
	ItemID     string `json:"item_id"`
	Delta      string `json:"delta"`
	Transcript string `json:"transcript"`
	Error      *struct {
		Type    string `json:"type"`
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// realtimeURL derives the socket URL from the base URL.
func realtimeURL(base string) (string, error) {
	u, err := url.Parse(strings.TrimRight(base, "/") + "/v1/realtime")
	if err != nil {
		return "", err
	}
	switch u.Scheme {
	case "http", "ws":
		u.Scheme = "ws"
	case "https", "wss":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("scheme %q (want http, https, ws or wss)", u.Scheme)
	}
	q := u.Query()
	q.Set("intent", "transcription")
	u.RawQuery = q.Encode()
	return u.String(), nil
}

func dialRealtime(ctx context.Context, cfg ASRConfig) (*realtimeASR, error) {
	e := cfg.Endpoint
	const op = "realtime dial"
	u, err := realtimeURL(e.URL)
	if err != nil {
		return nil, e.fail(op, fmt.Errorf("%w: url: %w", ErrConfig, err))
	}
	rate := cfg.SampleRate
	if rate <= 0 {
		rate = 24000
	}
	rs, err := media.NewResampler(media.PipelineRate, rate)
	if err != nil {
		return nil, e.fail(op, fmt.Errorf("%w: %w", ErrConfig, err))
	}
	h := http.Header{}
	e.authorize(h)
	h.Set("OpenAI-Beta", "realtime=v1")
	dctx, cancel := context.WithTimeout(ctx, e.timeout())
	defer cancel()
	// Never the environment's proxy: only the one configured, if any.
	d := websocket.Dialer{HandshakeTimeout: e.timeout(), TLSClientConfig: e.TLS}
	if e.Proxy != nil {
		d.Proxy = http.ProxyURL(e.Proxy)
	}
	ws, resp, err := d.DialContext(dctx, u, h)
	if err != nil {
		switch {
		case resp != nil:
			msg := describeErrorBody(resp.Body)
			resp.Body.Close()
			err = fmt.Errorf("%w: %s: %s", ErrStatus, resp.Status, msg)
		case ctx.Err() != nil:
			err = ctx.Err()
		case dctx.Err() != nil || isTimeout(err):
			err = fmt.Errorf("%w: no connection within %s", ErrTimeout, e.timeout())
		default:
			err = fmt.Errorf("%w: %w", ErrConnection, err)
		}
		return nil, e.fail(op, err)
	}
	ws.SetReadLimit(maxRealtimeMessage)
	a := &realtimeASR{e: e, log: e.logger(), ws: ws, rs: rs, events: make(chan ASREvent, eventBuffer), done: make(chan struct{})}
	if err := a.handshake(dctx, cfg); err != nil {
		ws.Close()
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, e.fail(op, err)
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.readLoop()
	}()
	return a, nil
}

// handshake configures the session and waits for the server's first event
// (transcription_session.created or .updated): a server that accepts the
// socket but does not speak the protocol fails here, within the timeout.
func (a *realtimeASR) handshake(ctx context.Context, cfg ASRConfig) error {
	type transcription struct {
		Model    string `json:"model,omitempty"`
		Language string `json:"language,omitempty"`
	}
	type session struct {
		InputAudioFormat        string        `json:"input_audio_format"`
		InputAudioTranscription transcription `json:"input_audio_transcription"`
		TurnDetection           *struct{}     `json:"turn_detection"`
	}
	update := struct {
		Type    string  `json:"type"`
		Session session `json:"session"`
	}{"transcription_session.update", session{"pcm16", transcription{a.e.Model, cfg.Language}, nil}}
	b, err := json.Marshal(update)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	deadline, _ := ctx.Deadline()
	_ = a.ws.SetWriteDeadline(deadline)
	if err := a.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		return fmt.Errorf("%w: %w", ErrConnection, err)
	}
	_ = a.ws.SetReadDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = a.ws.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	_, msg, err := a.ws.ReadMessage()
	if err != nil {
		if isTimeout(err) || ctx.Err() != nil {
			return fmt.Errorf("%w: no session event within %s", ErrTimeout, a.e.timeout())
		}
		return fmt.Errorf("%w: %w", ErrConnection, err)
	}
	ev, _, err := decodeRealtimeEvent(msg)
	if err != nil {
		return err
	}
	if ev.Err != nil {
		return ev.Err
	}
	_ = a.ws.SetReadDeadline(time.Time{})
	_ = a.ws.SetWriteDeadline(time.Time{})
	return nil
}

func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
}

// writeLocked sends one text message; a.wmu must be held.
func (a *realtimeASR) writeLocked(b []byte) error {
	if a.closed.Load() {
		return a.e.fail("realtime write", ErrClosed)
	}
	_ = a.ws.SetWriteDeadline(time.Now().Add(a.e.timeout()))
	if err := a.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		if isTimeout(err) {
			return a.e.fail("realtime write", fmt.Errorf("%w: write blocked for %s", ErrTimeout, a.e.timeout()))
		}
		return a.e.fail("realtime write", fmt.Errorf("%w: %w", ErrConnection, err))
	}
	return nil
}

// appendEvent appends the input_audio_buffer.append event for pcm (PCM16 at
// the backend's rate) to dst, using raw as scratch. It returns both
// buffers for reuse.
func appendEvent(dst, raw []byte, pcm []int16) (event, scratch []byte) {
	raw = raw[:0]
	for _, s := range pcm {
		raw = binary.LittleEndian.AppendUint16(raw, uint16(s))
	}
	dst = append(dst[:0], `{"type":"input_audio_buffer.append","audio":"`...)
	dst = base64.StdEncoding.AppendEncode(dst, raw)
	dst = append(dst, `"}`...)
	return dst, raw
}

// Append implements ASRStream.
func (a *realtimeASR) Append(pcm []int16) error {
	a.wmu.Lock()
	defer a.wmu.Unlock()
	if a.closed.Load() {
		return a.e.fail("realtime write", ErrClosed)
	}
	a.up = a.rs.Process(a.up[:0], pcm)
	if len(a.up) == 0 {
		return nil
	}
	a.msg, a.raw = appendEvent(a.msg, a.raw, a.up)
	return a.writeLocked(a.msg)
}

// Commit implements ASRStream. If the final does not arrive within the
// endpoint's Timeout, the stream fails with ErrTimeout.
func (a *realtimeASR) Commit() error {
	a.wmu.Lock()
	defer a.wmu.Unlock()
	if err := a.writeLocked([]byte(`{"type":"input_audio_buffer.commit"}`)); err != nil {
		return err
	}
	a.pending++
	if a.timer == nil {
		a.timer = time.AfterFunc(a.e.timeout(), a.transcriptTimeout)
	} else if a.pending == 1 {
		a.timer.Reset(a.e.timeout())
	}
	return nil
}

// transcriptTimeout runs when a committed utterance's final is late: it
// breaks the socket, and the read loop reports ErrTimeout.
func (a *realtimeASR) transcriptTimeout() {
	a.wmu.Lock()
	late := a.pending > 0 && !a.closed.Load()
	a.wmu.Unlock()
	if late {
		a.timedOut.Store(true)
		_ = a.ws.Close()
	}
}

// finalArrived accounts for one final; the next pending commit gets a
// fresh timeout.
func (a *realtimeASR) finalArrived() {
	a.wmu.Lock()
	defer a.wmu.Unlock()
	if a.pending > 0 {
		a.pending--
	}
	if a.timer != nil {
		if a.pending == 0 {
			a.timer.Stop()
		} else {
			a.timer.Reset(a.e.timeout())
		}
	}
}

// Clear implements ASRStream.
func (a *realtimeASR) Clear() error {
	a.wmu.Lock()
	defer a.wmu.Unlock()
	if a.closed.Load() {
		return a.e.fail("realtime write", ErrClosed)
	}
	a.rs.Reset()
	return a.writeLocked([]byte(`{"type":"input_audio_buffer.clear"}`))
}

// Events implements ASRStream.
func (a *realtimeASR) Events() <-chan ASREvent { return a.events }

// emit delivers ev unless the stream is closing; only readLoop calls it.
func (a *realtimeASR) emit(ev ASREvent) bool {
	select {
	case a.events <- ev:
		return true
	case <-a.done:
		return false
	}
}

func (a *realtimeASR) readLoop() {
	defer close(a.events)
	defer a.ws.Close()
	const op = "realtime stream"
	deltas := 0 // delta bytes since the last final
	for {
		_, b, err := a.ws.ReadMessage()
		if err != nil {
			select {
			case <-a.done:
				return
			default:
			}
			switch {
			case a.timedOut.Load():
				err = fmt.Errorf("%w: no transcript within %s of commit", ErrTimeout, a.e.timeout())
			case websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway):
				err = fmt.Errorf("%w: the backend closed the session", ErrClosed)
			case errors.Is(err, websocket.ErrReadLimit):
				err = fmt.Errorf("%w: event longer than %d bytes", ErrMalformed, maxRealtimeMessage)
			default:
				err = fmt.Errorf("%w: %w", ErrConnection, err)
			}
			a.emit(ASREvent{Err: a.e.fail(op, err)})
			return
		}
		ev, ok, err := decodeRealtimeEvent(b)
		if err != nil {
			a.emit(ASREvent{Err: a.e.fail(op, err)})
			return
		}
		if !ok {
			if ev.Text != "" { // the type of an event the client does not know
				a.log.Debug("ignoring realtime event", "type", ev.Text)
			}
			continue
		}
		if ev.Err != nil {
			ev.Err = a.e.fail(op, ev.Err)
			a.emit(ev)
			return
		}
		if ev.Final {
			deltas = 0
			a.finalArrived()
		} else if deltas += len(ev.Text); deltas > maxTranscript {
			a.emit(ASREvent{Err: a.e.fail(op, fmt.Errorf("%w: deltas longer than %d bytes", ErrMalformed, maxTranscript))})
			return
		}
		if !a.emit(ev) {
			return
		}
	}
}

// knownEvents are server events the client reads past without a word.
var knownEvents = map[string]bool{
	"transcription_session.created":      true,
	"transcription_session.updated":      true,
	"session.created":                    true,
	"session.updated":                    true,
	"input_audio_buffer.committed":       true,
	"input_audio_buffer.cleared":         true,
	"input_audio_buffer.speech_started":  true,
	"input_audio_buffer.speech_stopped":  true,
	"conversation.item.created":          true,
	"conversation.item.added":            true,
	"conversation.item.done":             true,
	"rate_limits.updated":                true,
	"transcription_session.rate_limited": true,
}

// decodeRealtimeEvent maps one server event to an ASREvent. ok is false for
// events the client does not act on; for an unknown type the returned
// event's Text holds the type when it is a bare identifier, for logging. A protocol error or
// failed transcription is an event with Err wrapping ErrStatus; an event
// that cannot be read is an error wrapping ErrMalformed.
func decodeRealtimeEvent(b []byte) (ev ASREvent, ok bool, err error) {
	var e realtimeEvent
	if err := json.Unmarshal(b, &e); err != nil {
		return ev, false, fmt.Errorf("%w: event of %d bytes is not JSON: %s", ErrMalformed, len(b), jsonProblem(err))
	}
	switch e.Type {
	case "conversation.item.input_audio_transcription.delta":
		if len(e.Delta) > maxTranscript {
			return ev, false, fmt.Errorf("%w: delta of %d bytes", ErrMalformed, len(e.Delta))
		}
		return ASREvent{ItemID: e.ItemID, Text: e.Delta}, true, nil
	case "conversation.item.input_audio_transcription.completed":
		if len(e.Transcript) > maxTranscript {
			return ev, false, fmt.Errorf("%w: transcript of %d bytes", ErrMalformed, len(e.Transcript))
		}
		return ASREvent{ItemID: e.ItemID, Text: e.Transcript, Final: true}, true, nil
	case "conversation.item.input_audio_transcription.failed":
		msg := "transcription failed"
		if e.Error != nil {
			msg += errorDetail(e.Error.Code, e.Error.Message)
		}
		return ASREvent{ItemID: e.ItemID, Final: true, Err: fmt.Errorf("%w: %s", ErrStatus, msg)}, true, nil
	case "error":
		if e.Error != nil && e.Error.Code == "input_audio_buffer_commit_empty" {
			// Nothing was said: an empty final, not a failure.
			return ASREvent{Final: true}, true, nil
		}
		msg := "(no detail)"
		if e.Error != nil {
			msg = strings.TrimPrefix(errorDetail(e.Error.Code, e.Error.Message), ": ")
		}
		return ASREvent{Err: fmt.Errorf("%w: error event: %s", ErrStatus, msg)}, true, nil
	case "":
		return ev, false, fmt.Errorf("%w: event without a type", ErrMalformed)
	}
	if knownEvents[e.Type] {
		return ev, false, nil
	}
	return ASREvent{Text: identifier(e.Type)}, false, nil
}

// errorDetail describes an ASR error event's code and message without the
// message's text (the engine may quote what it heard): ": code C, message
// of N bytes", or "" when both are empty.
func errorDetail(code, message string) string {
	var parts []string
	if c := identifier(code); c != "" {
		parts = append(parts, "code "+c)
	}
	if message != "" {
		parts = append(parts, fmt.Sprintf("message of %d bytes", len(message)))
	}
	if len(parts) == 0 {
		return ""
	}
	return ": " + strings.Join(parts, ", ")
}

// Close implements ASRStream.
func (a *realtimeASR) Close() error {
	a.closeOnce.Do(func() {
		a.closed.Store(true)
		close(a.done)
		// Closing the socket first unblocks a write in progress.
		_ = a.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(100*time.Millisecond))
		_ = a.ws.Close()
		a.wmu.Lock()
		if a.timer != nil {
			a.timer.Stop()
		}
		a.wmu.Unlock()
	})
	a.wg.Wait()
	return nil
}

var _ ASRStream = (*realtimeASR)(nil)
