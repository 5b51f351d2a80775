package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Signaling message limits. A message over softMessageLimit is answered with
// a bad_request error and discarded; one over hardMessageLimit closes the
// connection with close code 1009 (message too big).
const (
	softMessageLimit = 64 << 10
	hardMessageLimit = 1 << 20
	writeTimeout     = 5 * time.Second
	pongWait         = 60 * time.Second
	pingInterval     = 25 * time.Second
)

// clientMessage is any message a client sends on /v1/calls.
type clientMessage struct {
	Type string `json:"type"`
	SDP  string `json:"sdp,omitempty"`
}

// Server → client messages. Field names are the signaling contract.
type (
	answerMessage struct {
		Type   string `json:"type"` // "answer"
		SDP    string `json:"sdp"`
		CallID string `json:"callId"`
	}
	transcriptMessage struct {
		Type  string `json:"type"` // "transcript"
		Role  string `json:"role"` // "caller" | "agent"
		Text  string `json:"text"`
		Final bool   `json:"final"`
	}
	// dtmfMessage reports a keypad digit the caller pressed (SIP calls).
	dtmfMessage struct {
		Type  string `json:"type"` // "dtmf"
		Digit string `json:"digit"`
	}
	errorMessage struct {
		Type         string `json:"type"` // "error"
		Code         string `json:"code"`
		Message      string `json:"message"`
		RetryAfterMs int64  `json:"retryAfterMs,omitempty"`
	}
	hangupMessage struct {
		Type   string `json:"type"` // "hangup"
		Reason string `json:"reason"`
	}
	turnMessage struct {
		Type    string           `json:"type"` // "turn"
		Turn    int              `json:"turn"`
		Outcome string           `json:"outcome"`
		Timings map[string]int64 `json:"timings"` // ms after the caller's end of speech
		// SpeechEndAt is the caller's end of speech, Unix milliseconds on
		// the gateway's clock, so a client can place the timings.
		SpeechEndAt int64 `json:"speechEndAt,omitempty"`
	}
	policyMessage struct {
		Type       string   `json:"type"` // "policy"
		Direction  string   `json:"direction"`
		Action     string   `json:"action"`
		Categories []string `json:"categories"`
		Rules      []string `json:"rules"`
	}
)

// signalConn serialises writes to one signaling WebSocket. It is safe for
// concurrent use; after Close every send is a no-op.
type signalConn struct {
	ws *websocket.Conn

	mu     sync.Mutex
	closed bool
}

func newSignalConn(ws *websocket.Conn) *signalConn {
	ws.SetReadLimit(hardMessageLimit)
	return &signalConn{ws: ws}
}

// send writes v as one JSON text message.
func (c *signalConn) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("signaling: encode %T: %w", v, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errSessionClosed
	}
	_ = c.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		return fmt.Errorf("signaling: write: %w", err)
	}
	return nil
}

func (c *signalConn) sendError(code, msg string) error {
	return c.send(errorMessage{Type: "error", Code: code, Message: msg})
}

func (c *signalConn) ping() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errSessionClosed
	}
	return c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeTimeout))
}

// close sends a close frame with code and reason, then closes the socket.
func (c *signalConn) close(code int, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
	_ = c.ws.Close()
}

// errMessageTooLarge is returned by readMessage for a message over the soft limit.
var errMessageTooLarge = errors.New("message too large")

// readMessage reads the next client message. It returns errMessageTooLarge
// (connection still usable) for messages over the soft limit, a decode error
// (connection still usable) for junk, and any other error when the connection
// is gone.
func (c *signalConn) readMessage() (clientMessage, error) {
	var m clientMessage
	typ, r, err := c.ws.NextReader()
	if err != nil {
		return m, err
	}
	if typ != websocket.TextMessage {
		if _, err := io.Copy(io.Discard, r); err != nil {
			return m, err
		}
		return m, &badMessageError{msg: "binary messages are not accepted; send JSON text"}
	}
	b, err := io.ReadAll(io.LimitReader(r, softMessageLimit+1))
	if err != nil {
		return m, err
	}
	if len(b) > softMessageLimit {
		if _, err := io.Copy(io.Discard, r); err != nil {
			return m, err
		}
		return m, errMessageTooLarge
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, &badMessageError{msg: "message is not valid JSON: " + err.Error()}
	}
	if m.Type == "" {
		return m, &badMessageError{msg: `message has no "type"`}
	}
	return m, nil
}

// badMessageError is a client message that could not be understood; the
// connection stays usable.
type badMessageError struct{ msg string }

func (e *badMessageError) Error() string { return e.msg }
