package backends

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// Message is one chat message.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// ChatRequest is a streamed chat completion request.
type ChatRequest struct {
	Messages    []Message
	MaxTokens   int
	Temperature *float64
}

// ChatStream yields the model's reply as content deltas.
type ChatStream interface {
	// Next returns the next non-empty content delta, io.EOF at the end.
	Next() (string, error)
	Close() error
}

// LLMConfig configures an LLM client.
type LLMConfig struct {
	Endpoint
}

// LLM is a client for /v1/chat/completions with stream: true.
type LLM struct {
	cfg LLMConfig
}

// NewLLM returns a client for cfg.
func NewLLM(cfg LLMConfig) *LLM { return &LLM{cfg: cfg} }

// Name is the backend's name.
func (l *LLM) Name() string { return l.cfg.Name }

// maxSSELine bounds one server-sent event line.
const maxSSELine = 1 << 20

// Stream starts a completion. The returned stream must be closed.
func (l *LLM) Stream(ctx context.Context, req ChatRequest) (ChatStream, error) {
	e := l.cfg.Endpoint
	body := map[string]any{
		"model":    e.Model,
		"messages": req.Messages,
		"stream":   true,
	}
	if req.MaxTokens > 0 {
		body["max_tokens"] = req.MaxTokens
	}
	if req.Temperature != nil {
		body["temperature"] = *req.Temperature
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, e.fail("chat", fmt.Errorf("%w: %v", ErrConfig, err))
	}
	ctx, cancel := context.WithCancel(ctx)
	wd := newWatchdog(e.timeout(), cancel)
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url("/v1/chat/completions"), bytes.NewReader(b))
	if err != nil {
		wd.stop()
		cancel()
		return nil, e.fail("chat", fmt.Errorf("%w: %v", ErrConfig, err))
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "text/event-stream")
	if e.APIKey != "" {
		hreq.Header.Set("Authorization", "Bearer "+e.APIKey)
	}
	resp, err := e.client().Do(hreq)
	if err != nil {
		err = classify(wd, ctx, err)
		wd.stop()
		cancel()
		return nil, e.fail("chat", err)
	}
	fail := func(err error) (ChatStream, error) {
		resp.Body.Close()
		wd.stop()
		cancel()
		return nil, e.fail("chat", err)
	}
	if resp.StatusCode/100 != 2 {
		return fail(statusError(resp))
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		return fail(fmt.Errorf("%w: content type %q, want text/event-stream", ErrMalformed, resp.Header.Get("Content-Type")))
	}
	return &sseStream{e: e, ctx: ctx, cancel: cancel, wd: wd, body: resp.Body, r: bufio.NewReaderSize(resp.Body, 8192)}, nil
}

type sseStream struct {
	e      Endpoint
	ctx    context.Context
	cancel context.CancelFunc
	wd     *watchdog
	body   io.ReadCloser
	r      *bufio.Reader
	err    error
}

// Next implements ChatStream.
func (s *sseStream) Next() (string, error) {
	if s.err != nil {
		return "", s.err
	}
	for {
		line, err := readLine(s.r, maxSSELine)
		if err != nil {
			if errors.Is(err, io.EOF) {
				// A stream that ends without [DONE] is still over; accept it
				// (some servers omit the sentinel) once data was seen.
				s.err = io.EOF
				return "", io.EOF
			}
			s.err = s.e.fail("chat stream", classify(s.wd, s.ctx, err))
			return "", s.err
		}
		s.wd.kick()
		delta, done, err := parseSSELine(line)
		if err != nil {
			s.err = s.e.fail("chat stream", err)
			return "", s.err
		}
		if done {
			s.err = io.EOF
			return "", io.EOF
		}
		if delta != "" {
			return delta, nil
		}
	}
}

// Close implements ChatStream.
func (s *sseStream) Close() error {
	s.wd.stop()
	s.cancel()
	return s.body.Close()
}

// readLine reads one line without its end, failing past max bytes.
func readLine(r *bufio.Reader, max int) (string, error) {
	var buf []byte
	for {
		frag, err := r.ReadSlice('\n')
		buf = append(buf, frag...)
		if len(buf) > max {
			return "", fmt.Errorf("%w: line longer than %d bytes", ErrMalformed, max)
		}
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if len(buf) > 0 && errors.Is(err, io.EOF) {
			break
		}
		return "", err
	}
	return strings.TrimRight(string(buf), "\r\n"), nil
}

// chunk is the part of a chat.completion.chunk that matters here.
type chunk struct {
	Choices []struct {
		Delta struct {
			Content *string `json:"content"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Error json.RawMessage `json:"error"`
}

// parseSSELine interprets one server-sent-event line of a chat stream: it
// returns the content delta, or done at "data: [DONE]". Comments, blank
// lines and other fields give nothing.
func parseSSELine(line string) (delta string, done bool, err error) {
	if line == "" || strings.HasPrefix(line, ":") {
		return "", false, nil
	}
	field, value, _ := strings.Cut(line, ":")
	value = strings.TrimPrefix(value, " ")
	if field != "data" {
		return "", false, nil
	}
	if value == "[DONE]" {
		return "", true, nil
	}
	var c chunk
	if err := json.Unmarshal([]byte(value), &c); err != nil {
		return "", false, fmt.Errorf("%w: event data is not JSON: %v", ErrMalformed, err)
	}
	if len(c.Error) > 0 && string(c.Error) != "null" {
		return "", false, fmt.Errorf("%w: model error: %s", ErrStatus, clean(string(c.Error)))
	}
	var sb strings.Builder
	for _, ch := range c.Choices {
		if ch.Delta.Content != nil {
			sb.WriteString(*ch.Delta.Content)
		}
	}
	return sb.String(), false, nil
}
