// Package backends holds voicegw's clients for the three open,
// OpenAI-compatible protocols that self-hosted engines speak:
//
//   - ASR: the Realtime transcription WebSocket (input_audio_buffer.append /
//     commit / clear, conversation.item.input_audio_transcription.delta /
//     completed), or batch POST /v1/audio/transcriptions for engines
//     without streaming;
//   - LLM: POST /v1/chat/completions with "stream": true (server-sent events);
//   - TTS: POST /v1/audio/speech with "response_format": "pcm", read as a
//     stream of 16-bit little-endian mono PCM.
//
// Every call has a connect/first-byte timeout and an idle timeout, ends
// promptly when its context is cancelled, bounds what it reads, and turns
// malformed replies into errors that wrap ErrMalformed, ErrStatus or
// ErrTimeout inside an *Error naming the backend and the operation.
package backends

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Sentinel errors; every error from this package wraps one of them.
var (
	ErrTimeout   = errors.New("backend timed out")
	ErrMalformed = errors.New("malformed backend reply")
	ErrStatus    = errors.New("backend returned an error status")
	ErrClosed    = errors.New("stream closed")
	ErrConfig    = errors.New("backend misconfigured")
)

// Error is a failure of one backend operation.
type Error struct {
	Backend string // Endpoint.Name
	Op      string // e.g. "chat", "speech", "realtime dial"
	Err     error
}

func (e *Error) Error() string { return e.Backend + ": " + e.Op + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Endpoint is one backend's address and credentials.
type Endpoint struct {
	// Name identifies the backend in logs and metrics.
	Name string
	// URL is the base URL, e.g. http://127.0.0.1:9000 (the paths of the
	// protocol are appended; ws/wss is derived for the realtime socket).
	URL string
	// APIKey is sent as a bearer token when set. It is never logged.
	APIKey string
	// Model is sent in every request.
	Model string
	// Timeout bounds connecting and waiting for the first byte, and any
	// silence mid-stream. Default 5 s.
	Timeout time.Duration
	// HTTPClient is used for HTTP requests. Default a client with no
	// overall timeout (streams are bounded by Timeout instead).
	HTTPClient *http.Client
}

func (e Endpoint) timeout() time.Duration {
	if e.Timeout <= 0 {
		return 5 * time.Second
	}
	return e.Timeout
}

func (e Endpoint) client() *http.Client {
	if e.HTTPClient != nil {
		return e.HTTPClient
	}
	return http.DefaultClient
}

func (e Endpoint) url(path string) string {
	return strings.TrimRight(e.URL, "/") + path
}

func (e Endpoint) fail(op string, err error) error {
	return &Error{Backend: e.Name, Op: op, Err: err}
}

// watchdog cancels a request when no progress is reported for d: the
// first byte, and every later read, must come within d.
type watchdog struct {
	mu     sync.Mutex
	t      *time.Timer
	d      time.Duration
	fired  bool
	cancel context.CancelFunc
}

func newWatchdog(d time.Duration, cancel context.CancelFunc) *watchdog {
	w := &watchdog{d: d, cancel: cancel}
	w.t = time.AfterFunc(d, func() {
		w.mu.Lock()
		w.fired = true
		w.mu.Unlock()
		cancel()
	})
	return w
}

func (w *watchdog) kick() {
	w.mu.Lock()
	if !w.fired {
		w.t.Reset(w.d)
	}
	w.mu.Unlock()
}

func (w *watchdog) stop() { w.t.Stop() }

func (w *watchdog) timedOut() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.fired
}

// classify maps an I/O error to a sentinel, preferring the watchdog's word.
func classify(w *watchdog, ctx context.Context, err error) error {
	if w != nil && w.timedOut() {
		return fmt.Errorf("%w: no data for %s", ErrTimeout, w.d)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// streamCall is an HTTP response being streamed under a watchdog.
type streamCall struct {
	ctx    context.Context
	cancel context.CancelFunc
	wd     *watchdog
	resp   *http.Response
}

// close releases the call.
func (c *streamCall) close() error {
	c.wd.stop()
	c.cancel()
	return c.resp.Body.Close()
}

// postJSON sends body as JSON to path and returns the streaming response
// once its status is 2xx and its content type passes accept. The watchdog
// bounds connecting and the first byte, and later every silence, by the
// endpoint's timeout.
func (e Endpoint) postJSON(ctx context.Context, op, path string, body any, acceptHeader string, accept func(mediaType string) error) (*streamCall, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, e.fail(op, fmt.Errorf("%w: %v", ErrConfig, err))
	}
	ctx, cancel := context.WithCancel(ctx)
	wd := newWatchdog(e.timeout(), cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url(path), bytes.NewReader(b))
	if err != nil {
		wd.stop()
		cancel()
		return nil, e.fail(op, fmt.Errorf("%w: %v", ErrConfig, err))
	}
	req.Header.Set("Content-Type", "application/json")
	if acceptHeader != "" {
		req.Header.Set("Accept", acceptHeader)
	}
	if e.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+e.APIKey)
	}
	resp, err := e.client().Do(req)
	if err != nil {
		err = classify(wd, ctx, err)
		wd.stop()
		cancel()
		return nil, e.fail(op, err)
	}
	c := &streamCall{ctx: ctx, cancel: cancel, wd: wd, resp: resp}
	if resp.StatusCode/100 != 2 {
		err := statusError(resp)
		_ = c.close()
		return nil, e.fail(op, err)
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err := accept(mt); err != nil {
		_ = c.close()
		return nil, e.fail(op, err)
	}
	return c, nil
}

// statusError reads a bounded error body and makes an ErrStatus error,
// quoting the server's error message when it sent OpenAI-style JSON.
func statusError(resp *http.Response) error {
	msg := readErrorBody(resp.Body)
	return fmt.Errorf("%w: %s: %s", ErrStatus, resp.Status, msg)
}
