package backends

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/voicegw/voicegw/media"
)

// ASREvent is a transcript fragment (Final false) or a whole utterance's
// transcript (Final true), or a failure (Err set; the stream is then over).
type ASREvent struct {
	ItemID string
	Text   string
	Final  bool
	Err    error
}

// ASRStream is one call's transcription stream.
type ASRStream interface {
	// Append sends caller audio: mono PCM16 at media.PipelineRate.
	Append(pcm []int16) error
	// Commit ends the utterance; a Final event follows on Events.
	Commit() error
	// Clear drops audio appended since the last Commit.
	Clear() error
	// Events delivers transcripts; it is closed when the stream ends.
	Events() <-chan ASREvent
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
	// 24000 (the protocol's pcm16).
	SampleRate int
}

// maxTranscript bounds one utterance's transcript.
const maxTranscript = 16 << 10

// DialASR opens a transcription stream.
func DialASR(ctx context.Context, cfg ASRConfig) (ASRStream, error) {
	switch strings.ToLower(cfg.Mode) {
	case "", "realtime":
		return dialRealtime(ctx, cfg)
	case "batch":
		return newBatchASR(cfg), nil
	}
	return nil, cfg.fail("asr", fmt.Errorf("%w: mode %q (want realtime or batch)", ErrConfig, cfg.Mode))
}

// --- realtime ----------------------------------------------------------------

type realtimeASR struct {
	e      Endpoint
	ws     *websocket.Conn
	rs     *media.Resampler
	events chan ASREvent

	wmu     sync.Mutex // guards writes, resampler and scratch buffers
	up      []int16
	raw     []byte
	b64     []byte
	pending int // commits awaiting a completed event
	timer   *time.Timer

	closeOnce sync.Once
	done      chan struct{}
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

func dialRealtime(ctx context.Context, cfg ASRConfig) (*realtimeASR, error) {
	e := cfg.Endpoint
	u, err := url.Parse(e.url("/v1/realtime"))
	if err != nil {
		return nil, e.fail("realtime dial", fmt.Errorf("%w: %v", ErrConfig, err))
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	}
	q := u.Query()
	q.Set("intent", "transcription")
	u.RawQuery = q.Encode()
	rate := cfg.SampleRate
	if rate == 0 {
		rate = 24000
	}
	rs, err := media.NewResampler(media.PipelineRate, rate)
	if err != nil {
		return nil, e.fail("realtime dial", fmt.Errorf("%w: %v", ErrConfig, err))
	}
	h := http.Header{}
	if e.APIKey != "" {
		h.Set("Authorization", "Bearer "+e.APIKey)
	}
	h.Set("OpenAI-Beta", "realtime=v1")
	d := websocket.Dialer{HandshakeTimeout: e.timeout()}
	dctx, cancel := context.WithTimeout(ctx, e.timeout())
	defer cancel()
	ws, resp, err := d.DialContext(dctx, u.String(), h)
	if err != nil {
		if resp != nil {
			err = fmt.Errorf("%w: %s: %v", ErrStatus, resp.Status, err)
			resp.Body.Close()
		} else if dctx.Err() != nil && ctx.Err() == nil {
			err = fmt.Errorf("%w: %v", ErrTimeout, err)
		}
		return nil, e.fail("realtime dial", err)
	}
	ws.SetReadLimit(1 << 20)
	a := &realtimeASR{e: e, ws: ws, rs: rs, events: make(chan ASREvent, 64), done: make(chan struct{})}
	transcription := map[string]any{"model": e.Model}
	if cfg.Language != "" {
		transcription["language"] = cfg.Language
	}
	if err := a.send(map[string]any{
		"type": "transcription_session.update",
		"session": map[string]any{
			"input_audio_format":        "pcm16",
			"input_audio_transcription": transcription,
			"turn_detection":            nil,
		},
	}); err != nil {
		ws.Close()
		return nil, e.fail("realtime session", err)
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.readLoop()
	}()
	return a, nil
}

func (a *realtimeASR) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return a.writeRaw(b)
}

func (a *realtimeASR) writeRaw(b []byte) error {
	_ = a.ws.SetWriteDeadline(time.Now().Add(a.e.timeout()))
	if err := a.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		return a.e.fail("realtime write", err)
	}
	return nil
}

// Append implements ASRStream.
func (a *realtimeASR) Append(pcm []int16) error {
	a.wmu.Lock()
	defer a.wmu.Unlock()
	a.up = a.rs.Process(a.up[:0], pcm)
	if len(a.up) == 0 {
		return nil
	}
	a.raw = a.raw[:0]
	for _, s := range a.up {
		a.raw = binary.LittleEndian.AppendUint16(a.raw, uint16(s))
	}
	a.b64 = append(a.b64[:0], `{"type":"input_audio_buffer.append","audio":"`...)
	a.b64 = base64.StdEncoding.AppendEncode(a.b64, a.raw)
	a.b64 = append(a.b64, `"}`...)
	return a.writeRaw(a.b64)
}

// Commit implements ASRStream. If no completed transcript arrives within
// the endpoint's timeout, the stream fails with ErrTimeout.
func (a *realtimeASR) Commit() error {
	a.wmu.Lock()
	defer a.wmu.Unlock()
	if err := a.writeRaw([]byte(`{"type":"input_audio_buffer.commit"}`)); err != nil {
		return err
	}
	a.pending++
	if a.timer == nil {
		a.timer = time.AfterFunc(a.e.timeout(), a.transcriptTimeout)
	} else {
		a.timer.Reset(a.e.timeout())
	}
	return nil
}

func (a *realtimeASR) transcriptTimeout() {
	a.wmu.Lock()
	pending := a.pending
	a.wmu.Unlock()
	if pending > 0 {
		a.emit(ASREvent{Err: a.e.fail("transcription", fmt.Errorf("%w: no transcript %s after commit", ErrTimeout, a.e.timeout()))})
		_ = a.ws.Close()
	}
}

func (a *realtimeASR) completed() {
	a.wmu.Lock()
	if a.pending > 0 {
		a.pending--
	}
	if a.pending == 0 && a.timer != nil {
		a.timer.Stop()
	}
	a.wmu.Unlock()
}

// Clear implements ASRStream.
func (a *realtimeASR) Clear() error {
	a.wmu.Lock()
	defer a.wmu.Unlock()
	a.rs.Reset()
	return a.writeRaw([]byte(`{"type":"input_audio_buffer.clear"}`))
}

// Events implements ASRStream.
func (a *realtimeASR) Events() <-chan ASREvent { return a.events }

func (a *realtimeASR) emit(ev ASREvent) {
	select {
	case a.events <- ev:
	case <-a.done:
	}
}

func (a *realtimeASR) readLoop() {
	defer close(a.events)
	for {
		_, b, err := a.ws.ReadMessage()
		if err != nil {
			select {
			case <-a.done:
			default:
				a.emit(ASREvent{Err: a.e.fail("realtime read", err)})
			}
			return
		}
		ev, ok, err := decodeRealtimeEvent(b)
		if err != nil {
			a.emit(ASREvent{Err: a.e.fail("realtime event", err)})
			_ = a.ws.Close()
			return
		}
		if !ok {
			continue
		}
		if ev.Final {
			a.completed()
		}
		a.emit(ev)
		if ev.Err != nil {
			_ = a.ws.Close()
			return
		}
	}
}

// decodeRealtimeEvent maps one server event to an ASREvent; ok is false for
// events the client does not act on.
func decodeRealtimeEvent(b []byte) (ev ASREvent, ok bool, err error) {
	var e realtimeEvent
	if err := json.Unmarshal(b, &e); err != nil {
		return ev, false, fmt.Errorf("%w: event is not JSON: %v", ErrMalformed, err)
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
			msg += ": " + clean(e.Error.Message)
		}
		return ASREvent{ItemID: e.ItemID, Final: true, Err: fmt.Errorf("%w: %s", ErrStatus, msg)}, true, nil
	case "error":
		if e.Error != nil && e.Error.Code == "input_audio_buffer_commit_empty" {
			// Nothing was said: an empty final, not a failure.
			return ASREvent{Final: true}, true, nil
		}
		msg := "(no message)"
		if e.Error != nil {
			msg = clean(e.Error.Code + " " + e.Error.Message)
		}
		return ASREvent{Err: fmt.Errorf("%w: %s", ErrStatus, msg)}, true, nil
	case "":
		return ev, false, fmt.Errorf("%w: event without a type", ErrMalformed)
	}
	return ev, false, nil
}

// Close implements ASRStream.
func (a *realtimeASR) Close() error {
	a.closeOnce.Do(func() {
		close(a.done)
		a.wmu.Lock()
		if a.timer != nil {
			a.timer.Stop()
		}
		_ = a.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(100*time.Millisecond))
		a.wmu.Unlock()
		_ = a.ws.Close()
	})
	a.wg.Wait()
	return nil
}

// --- batch -------------------------------------------------------------------

// batchASR buffers an utterance and posts it as a WAV file on Commit.
type batchASR struct {
	cfg    ASRConfig
	mu     sync.Mutex
	buf    []int16
	seq    int
	events chan ASREvent
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// maxBatchSamples bounds one utterance: 2 minutes.
const maxBatchSamples = media.PipelineRate * 120

func newBatchASR(cfg ASRConfig) *batchASR {
	ctx, cancel := context.WithCancel(context.Background())
	return &batchASR{cfg: cfg, events: make(chan ASREvent, 16), ctx: ctx, cancel: cancel}
}

func (b *batchASR) Append(pcm []int16) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.buf)+len(pcm) > maxBatchSamples {
		return b.cfg.fail("batch append", fmt.Errorf("%w: utterance longer than %s", ErrConfig, time.Duration(maxBatchSamples/media.PipelineRate)*time.Second))
	}
	b.buf = append(b.buf, pcm...)
	return nil
}

func (b *batchASR) Clear() error {
	b.mu.Lock()
	b.buf = b.buf[:0]
	b.mu.Unlock()
	return nil
}

func (b *batchASR) Events() <-chan ASREvent { return b.events }

func (b *batchASR) Commit() error {
	b.mu.Lock()
	pcm := b.buf
	b.buf = nil
	b.seq++
	id := fmt.Sprintf("batch_%d", b.seq)
	b.mu.Unlock()
	if b.ctx.Err() != nil {
		return b.cfg.fail("batch commit", ErrClosed)
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		if len(pcm) == 0 {
			b.emit(ASREvent{ItemID: id, Final: true})
			return
		}
		text, err := b.transcribe(pcm)
		if err != nil {
			b.emit(ASREvent{ItemID: id, Final: true, Err: err})
			return
		}
		b.emit(ASREvent{ItemID: id, Text: text, Final: true})
	}()
	return nil
}

func (b *batchASR) emit(ev ASREvent) {
	select {
	case b.events <- ev:
	case <-b.ctx.Done():
	}
}

func (b *batchASR) transcribe(pcm []int16) (string, error) {
	e := b.cfg.Endpoint
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("file", "utterance.wav")
	if err := media.WriteWAV(fw, media.PipelineRate, pcm); err != nil {
		return "", e.fail("transcription", err)
	}
	_ = mw.WriteField("model", e.Model)
	_ = mw.WriteField("response_format", "json")
	if b.cfg.Language != "" {
		_ = mw.WriteField("language", b.cfg.Language)
	}
	_ = mw.Close()
	ctx, cancel := context.WithTimeout(b.ctx, e.timeout()+time.Duration(len(pcm)/media.PipelineRate)*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url("/v1/audio/transcriptions"), &body)
	if err != nil {
		return "", e.fail("transcription", fmt.Errorf("%w: %v", ErrConfig, err))
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	if e.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+e.APIKey)
	}
	resp, err := e.client().Do(req)
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			err = fmt.Errorf("%w: %v", ErrTimeout, err)
		}
		return "", e.fail("transcription", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return "", e.fail("transcription", statusError(resp))
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxTranscript+1024))
	if err != nil {
		return "", e.fail("transcription", err)
	}
	var out struct {
		Text *string `json:"text"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || out.Text == nil {
		return "", e.fail("transcription", fmt.Errorf("%w: reply has no \"text\": %s", ErrMalformed, clean(string(raw))))
	}
	return strings.TrimSpace(*out.Text), nil
}

func (b *batchASR) Close() error {
	b.once.Do(func() {
		b.cancel()
		go func() {
			b.wg.Wait()
			close(b.events)
		}()
	})
	b.wg.Wait()
	return nil
}

var (
	_ ASRStream = (*realtimeASR)(nil)
	_ ASRStream = (*batchASR)(nil)
)
