package backends

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	c, err := e.postJSON(ctx, "chat", "/v1/chat/completions", body, "text/event-stream", func(mt string) error {
		if mt != "text/event-stream" {
			return fmt.Errorf("%w: content type %q, want text/event-stream", ErrMalformed, mt)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &sseStream{e: e, call: c, r: bufio.NewReaderSize(c.resp.Body, 8192)}, nil
}

type sseStream struct {
	e    Endpoint
	call *streamCall
	r    *bufio.Reader
	err  error
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
			s.err = s.e.fail("chat stream", classify(s.call.wd, s.call.ctx, err))
			return "", s.err
		}
		s.call.wd.kick()
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
func (s *sseStream) Close() error { return s.call.close() }

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
