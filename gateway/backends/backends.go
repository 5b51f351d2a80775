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
// malformed replies into errors: an *Error naming the backend and the
// operation, wrapping ErrTimeout, ErrMalformed, ErrStatus, ErrConnection,
// ErrClosed or ErrConfig (see errors.go).
//
// Typical use:
//
//	llm := backends.NewLLM(backends.LLMConfig{Endpoint: backends.Endpoint{
//		Name: "vllm-a", URL: "http://10.0.0.5:8000", Model: "llama-3.1-8b"}})
//	st, err := llm.Stream(ctx, backends.ChatRequest{Messages: msgs})
//	if err != nil { … }
//	defer st.Close()
//	for {
//		delta, err := st.Next()
//		if err == io.EOF { break }
//		…
//	}
package backends

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// DefaultTimeout is Endpoint.Timeout when it is zero.
const DefaultTimeout = 5 * time.Second

// Endpoint is one backend's address and credentials. The zero value of
// every optional field is usable.
type Endpoint struct {
	// Name identifies the backend in logs, metrics and errors.
	Name string
	// URL is the base URL, e.g. http://127.0.0.1:9000 (the paths of the
	// protocol are appended; ws/wss is derived for the realtime socket).
	URL string
	// APIKey is sent as a bearer token when set. It is never logged.
	APIKey string
	// Model is sent in every request.
	Model string
	// Timeout bounds connecting and waiting for the first byte of a reply
	// (and, for realtime ASR, for the transcript after a commit).
	// Default DefaultTimeout (5 s).
	Timeout time.Duration
	// IdleTimeout bounds any silence after the first byte of a streamed
	// reply. Default Timeout.
	IdleTimeout time.Duration
	// HTTPClient is used for HTTP requests. Default a shared client with
	// no proxy (NewHTTPClient(nil, nil)); give it no overall Timeout, since
	// streams are bounded by Timeout and IdleTimeout instead. Whatever its
	// CheckRedirect, redirects are never followed: a 3xx reply is an
	// ErrStatus error naming the status, so neither the body nor the
	// bearer token is sent to another address.
	HTTPClient *http.Client
	// Proxy, when set, is the proxy of the realtime socket (HTTP requests
	// use HTTPClient's transport; NewHTTPClient takes the same proxy).
	// Default none: HTTP_PROXY and the other proxy variables of the
	// environment are never used.
	Proxy *url.URL
	// TLS is the client TLS configuration (CA pool, client certificate
	// for mTLS) for the realtime socket. HTTP requests use HTTPClient's;
	// NewHTTPClient builds one from the same configuration.
	TLS *tls.Config
	// Logger receives debug lines (ignored protocol events). Default
	// slog.Default().
	Logger *slog.Logger
}

func (e Endpoint) timeout() time.Duration {
	if e.Timeout <= 0 {
		return DefaultTimeout
	}
	return e.Timeout
}

func (e Endpoint) idleTimeout() time.Duration {
	if e.IdleTimeout <= 0 {
		return e.timeout()
	}
	return e.IdleTimeout
}

// NewHTTPClient returns a client for one backend: its own connection pool,
// with tlsConfig (nil: the system roots) for https URLs, through proxy
// (nil: direct, whatever the environment says), never following a
// redirect, and with no overall timeout (Endpoint bounds requests itself).
func NewHTTPClient(tlsConfig *tls.Config, proxy *url.URL) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	if proxy != nil {
		t.Proxy = http.ProxyURL(proxy)
	}
	if tlsConfig != nil {
		t.TLSClientConfig = tlsConfig.Clone()
	}
	return &http.Client{Transport: t, CheckRedirect: noRedirect}
}

// defaultClient is the client of endpoints without an HTTPClient: direct
// connections, no redirects.
var defaultClient = sync.OnceValue(func() *http.Client { return NewHTTPClient(nil, nil) })

// noRedirect makes the client return a 3xx reply as it is.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// client is the endpoint's HTTP client, made never to follow a redirect.
func (e Endpoint) client() *http.Client {
	if e.HTTPClient == nil {
		return defaultClient()
	}
	c := *e.HTTPClient
	c.CheckRedirect = noRedirect
	return &c
}

// redirectError refuses a 3xx reply: the backend is an address inside the
// boundary, and a redirect could point anywhere.
func redirectError(resp *http.Response) error {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	return fmt.Errorf("%w: %s: redirect not followed (backends are called only at their configured URL)", ErrStatus, resp.Status)
}

// replyError is the error of a reply whose status is not 2xx.
func replyError(resp *http.Response) error {
	if resp.StatusCode/100 == 3 {
		return redirectError(resp)
	}
	return statusError(resp)
}

func (e Endpoint) logger() *slog.Logger {
	l := e.Logger
	if l == nil {
		l = slog.Default()
	}
	return l.With("backend", e.Name)
}

func (e Endpoint) url(path string) string {
	return strings.TrimRight(e.URL, "/") + path
}

func (e Endpoint) fail(op string, err error) error {
	return &Error{Backend: e.Name, Op: op, Err: err}
}

func (e Endpoint) authorize(h http.Header) {
	if e.APIKey != "" {
		h.Set("Authorization", "Bearer "+e.APIKey)
	}
}

// watchdog cancels a request when it makes no progress: the first byte
// must come within first, and every later read within idle.
type watchdog struct {
	mu     sync.Mutex
	t      *time.Timer
	first  time.Duration
	idle   time.Duration
	seen   bool // the first byte arrived
	fired  bool
	firedA string
}

func newWatchdog(first, idle time.Duration, cancel context.CancelFunc) *watchdog {
	w := &watchdog{first: first, idle: idle}
	w.t = time.AfterFunc(first, func() {
		w.mu.Lock()
		w.fired = true
		if w.seen {
			w.firedA = fmt.Sprintf("stream idle for %s", w.idle)
		} else {
			w.firedA = fmt.Sprintf("no reply within %s", w.first)
		}
		w.mu.Unlock()
		cancel()
	})
	return w
}

// kick records progress: the next read has idle to arrive.
func (w *watchdog) kick() {
	w.mu.Lock()
	if !w.fired {
		w.seen = true
		w.t.Reset(w.idle)
	}
	w.mu.Unlock()
}

func (w *watchdog) stop() { w.t.Stop() }

func (w *watchdog) timedOut() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.fired
}

func (w *watchdog) reason() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.firedA
}

// streamCall is an HTTP response being streamed under a watchdog.
type streamCall struct {
	ctx    context.Context
	cancel context.CancelFunc
	wd     *watchdog
	resp   *http.Response
	once   sync.Once
}

// body is the response body; every read that returns data kicks the
// watchdog.
func (c *streamCall) Read(p []byte) (int, error) {
	n, err := c.resp.Body.Read(p)
	if n > 0 {
		c.wd.kick()
	}
	return n, err
}

// close releases the call. It is idempotent.
func (c *streamCall) close() error {
	c.once.Do(func() {
		c.wd.stop()
		c.cancel()
		_ = c.resp.Body.Close()
	})
	return nil
}

// postJSON sends body as JSON to path and returns the streaming response
// once its status is 2xx and its media type passes accept. The watchdog
// bounds connecting and the first byte by the endpoint's Timeout, and every
// later silence by its IdleTimeout.
func (e Endpoint) postJSON(ctx context.Context, op, path string, body any, acceptHeader string, accept func(mediaType string) error) (*streamCall, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, e.fail(op, fmt.Errorf("%w: %w", ErrConfig, err))
	}
	ctx, cancel := context.WithCancel(ctx)
	wd := newWatchdog(e.timeout(), e.idleTimeout(), cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url(path), bytes.NewReader(b))
	if err != nil {
		wd.stop()
		cancel()
		return nil, e.fail(op, fmt.Errorf("%w: %w", ErrConfig, err))
	}
	req.Header.Set("Content-Type", "application/json")
	if acceptHeader != "" {
		req.Header.Set("Accept", acceptHeader)
	}
	e.authorize(req.Header)
	resp, err := e.client().Do(req)
	if err != nil {
		err = ioError(wd, ctx, err)
		wd.stop()
		cancel()
		return nil, e.fail(op, err)
	}
	c := &streamCall{ctx: ctx, cancel: cancel, wd: wd, resp: resp}
	if resp.StatusCode/100 != 2 {
		err := replyError(resp)
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

// statusError drains a bounded error body and makes an ErrStatus error
// with the status and the body's length (plus its error code when that
// is a bare identifier). The body's message is never copied: a backend
// may echo the transcript or the prompt into it, and the error is logged.
func statusError(resp *http.Response) error {
	return fmt.Errorf("%w: %s: %s", ErrStatus, resp.Status, describeErrorBody(resp.Body))
}

// describeErrorBody reads up to 4 KiB of an error body and describes it
// without its text: "error body of N bytes", with an OpenAI-style error
// code when it has one ({"error": {"code": …}} or {"error": {"type": …}}).
func describeErrorBody(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, 4096))
	return describeError(b, "error body")
}

// describeError describes an error payload b as what, its length and its
// error code, never its message.
func describeError(b []byte, what string) string {
	s := fmt.Sprintf("%s of %d bytes", what, len(b))
	if code := errorCode(b); code != "" {
		s += ", code " + code
	}
	return s
}

// errorCode is the code (or else the type) of an OpenAI-style error body
// when it is a bare identifier, or "".
func errorCode(b []byte) string {
	var e struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(b, &e) != nil || len(e.Error) == 0 {
		return ""
	}
	var obj struct {
		Code any    `json:"code"`
		Type string `json:"type"`
	}
	if json.Unmarshal(e.Error, &obj) != nil {
		return ""
	}
	if obj.Code != nil {
		if c := identifier(fmt.Sprint(obj.Code)); c != "" {
			return c
		}
	}
	return identifier(obj.Type)
}

// identifier returns s when it is a bare protocol identifier (at most 64
// letters, digits and . _ -), which cannot carry a sentence, or "".
func identifier(s string) string {
	if s == "" || len(s) > 64 {
		return ""
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return ""
		}
	}
	return s
}

// jsonProblem says where a payload failed to decode, without quoting it:
// a syntax error's offset, or the field of the wrong type.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %q is not a %s", te.Field, te.Type)
	}
	return "undecodable"
}
