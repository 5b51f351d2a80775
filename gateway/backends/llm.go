package backends

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Message is one chat message.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// ChatRequest is a streamed chat completion request.
type ChatRequest struct {
	Messages []Message
	// MaxTokens is sent as max_tokens when positive.
	MaxTokens int
	// Temperature is sent when set.
	Temperature *float64
}

// ChatStream yields the model's reply as content deltas.
type ChatStream interface {
	// Next returns the next non-empty content delta, io.EOF at the end.
	// After an error every call returns the same error.
	Next() (string, error)
	// Close releases the stream; it is idempotent.
	Close() error
}

// LLMConfig configures an LLM client.
type LLMConfig struct {
	Endpoint
}

// LLM is a client for POST /v1/chat/completions with "stream": true. It is
// safe for concurrent use.
type LLM struct {
	cfg LLMConfig
}

// NewLLM returns a client for cfg.
func NewLLM(cfg LLMConfig) *LLM { return &LLM{cfg: cfg} }

// Name is the backend's name.
func (l *LLM) Name() string { return l.cfg.Name }

const (
	// maxSSELine bounds one server-sent event line.
	maxSSELine = 1 << 20
	// maxSSEEvent bounds one event's data (its data lines together).
	maxSSEEvent = 1 << 20
	// maxReply bounds a whole reply's content.
	maxReply = 1 << 20
)

// chatBody is the request body.
type chatBody struct {
	Model       string    `json:"model,omitempty"`
	Messages    []Message `json:"messages"`
	Stream      bool      `json:"stream"`
	MaxTokens   int       `json:"max_tokens,omitempty"`
	Temperature *float64  `json:"temperature,omitempty"`
}

// Stream starts a completion. The returned stream must be closed.
// Cancelling ctx ends the stream: Next then returns the context's error.
func (l *LLM) Stream(ctx context.Context, req ChatRequest) (ChatStream, error) {
	e := l.cfg.Endpoint
	msgs := req.Messages
	if msgs == nil {
		msgs = []Message{}
	}
	body := chatBody{Model: e.Model, Messages: msgs, Stream: true, MaxTokens: max(req.MaxTokens, 0), Temperature: req.Temperature}
	c, err := e.postJSON(ctx, "chat", "/v1/chat/completions", body, "text/event-stream", func(mt string) error {
		if mt != "text/event-stream" {
			return fmt.Errorf("%w: content type %q, want text/event-stream", ErrMalformed, mt)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &chatStream{e: e, call: c, sse: newSSEReader(c)}, nil
}

type chatStream struct {
	e    Endpoint
	call *streamCall
	sse  *sseReader
	err  error
}

// Next implements ChatStream.
func (s *chatStream) Next() (string, error) {
	if s.err != nil {
		return "", s.err
	}
	delta, err := s.sse.next()
	if err == nil {
		return delta, nil
	}
	if errors.Is(err, io.EOF) {
		s.err = io.EOF
	} else if isClassified(err) {
		s.err = s.e.fail("chat stream", err)
	} else {
		s.err = s.e.fail("chat stream", ioError(s.call.wd, s.call.ctx, err))
	}
	return "", s.err
}

// Close implements ChatStream.
func (s *chatStream) Close() error {
	return s.call.close()
}

// sseReader reads the content deltas of a chat completion event stream.
// Events follow the server-sent events format: "data:" lines, joined by
// newlines, end at a blank line; comments (":…") and other fields are
// skipped. For servers that omit the blank line, a data line that follows
// a complete JSON value starts a new event.
type sseReader struct {
	r     *bufio.Reader
	long  []byte // a line longer than the bufio buffer
	data  []byte // the current event's data
	has   bool   // data holds at least one data line
	total int    // content bytes returned so far
	err   error  // sticky
	chunk chunk  // reused between events
}

func newSSEReader(r io.Reader) *sseReader {
	return &sseReader{r: bufio.NewReaderSize(r, 4096)}
}

// next returns the next non-empty content delta, io.EOF after "[DONE]" or
// at the end of the body, or an error wrapping ErrMalformed or ErrStatus
// (or the reader's own error).
func (s *sseReader) next() (string, error) {
	for s.err == nil {
		line, rerr := s.readLine()
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			s.err = rerr
			break
		}
		var ready []byte
		if rerr != nil || len(line) == 0 { // EOF or blank line: dispatch
			if s.has {
				ready = s.data
			}
		} else if line[0] != ':' {
			field, value, _ := bytes.Cut(line, []byte(":"))
			value = bytes.TrimPrefix(value, []byte(" "))
			if string(field) == "data" {
				if s.has && json.Valid(s.data) {
					// No blank line after the last event: dispatch it and
					// keep this line for the next.
					delta, err := s.dispatch(s.data)
					s.data = append(s.data[:0], value...)
					s.has = true
					if err != nil || delta != "" {
						return delta, err
					}
					continue
				}
				if s.has {
					s.data = append(s.data, '\n')
				}
				s.data = append(s.data, value...)
				s.has = true
				if len(s.data) > maxSSEEvent {
					s.err = fmt.Errorf("%w: event longer than %d bytes", ErrMalformed, maxSSEEvent)
					break
				}
			}
		}
		if ready != nil {
			delta, err := s.dispatch(ready)
			if err != nil || delta != "" {
				return delta, err
			}
		}
		if rerr != nil {
			s.err = io.EOF
		}
	}
	return "", s.err
}

// dispatch handles one event's data, clearing it.
func (s *sseReader) dispatch(data []byte) (string, error) {
	s.data, s.has = s.data[:0], false
	delta, done, err := parseChunk(&s.chunk, data)
	if err != nil {
		s.err = err
		return "", err
	}
	if done {
		s.err = io.EOF
		return "", io.EOF
	}
	s.total += len(delta)
	if s.total > maxReply {
		s.err = fmt.Errorf("%w: reply longer than %d bytes", ErrMalformed, maxReply)
		return "", s.err
	}
	return delta, nil
}

// readLine reads one line without its end; the slice is valid until the
// next call. A line longer than maxSSELine is an error.
func (s *sseReader) readLine() ([]byte, error) {
	frag, err := s.r.ReadSlice('\n')
	if err == nil {
		return trimEOL(frag), nil
	}
	s.long = append(s.long[:0], frag...)
	for errors.Is(err, bufio.ErrBufferFull) {
		if len(s.long) > maxSSELine {
			return nil, fmt.Errorf("%w: line longer than %d bytes", ErrMalformed, maxSSELine)
		}
		frag, err = s.r.ReadSlice('\n')
		s.long = append(s.long, frag...)
	}
	if len(s.long) > maxSSELine {
		return nil, fmt.Errorf("%w: line longer than %d bytes", ErrMalformed, maxSSELine)
	}
	if err == nil {
		return trimEOL(s.long), nil
	}
	if errors.Is(err, io.EOF) && len(s.long) > 0 {
		// A last line without its end: dispatch it at EOF.
		return trimEOL(s.long), nil
	}
	return nil, err
}

func trimEOL(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}

// chunk is the part of a chat.completion.chunk that matters here.
type chunk struct {
	Choices []choice        `json:"choices"`
	Error   json.RawMessage `json:"error"`
}

type choice struct {
	Index int `json:"index"`
	Delta struct {
		Content string `json:"content"`
	} `json:"delta"`
}

var doneMarker = []byte("[DONE]")

// parseChunk interprets one event's data, decoding into c: the content delta of choice 0,
// done at "[DONE]", an ErrStatus error for an error object, or an
// ErrMalformed error for anything that is not a chunk.
func parseChunk(c *chunk, data []byte) (delta string, done bool, err error) {
	if bytes.Equal(bytes.TrimSpace(data), doneMarker) {
		return "", true, nil
	}
	// Decoding reuses the elements in place: zero them first.
	clear(c.Choices[:cap(c.Choices)])
	c.Choices, c.Error = c.Choices[:0], c.Error[:0]
	if err := json.Unmarshal(data, c); err != nil {
		return "", false, fmt.Errorf("%w: event data of %d bytes is not a JSON chunk: %s", ErrMalformed, len(data), jsonProblem(err))
	}
	if len(c.Error) > 0 && !bytes.Equal(c.Error, []byte("null")) {
		// The error's message is not copied: it may quote the prompt.
		return "", false, fmt.Errorf("%w: model error: %s", ErrStatus, describeError(data, "error event"))
	}
	for i := range c.Choices {
		if ch := &c.Choices[i]; ch.Index == 0 {
			return ch.Delta.Content, false, nil
		}
	}
	return "", false, nil
}

var _ ChatStream = (*chatStream)(nil)
