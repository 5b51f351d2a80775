package rig

import (
	"context"
	"fmt"
	"time"

	"github.com/voicegw/voicegw/loadtest"
)

// Call is one connected call as the rig drives it: it speaks utterances,
// hears the agent and hangs up. *loadtest.Caller (WebRTC) implements it, and
// so does *sipcall.SIPCaller (SIP), which cmd/loadtest wires in.
type Call interface {
	// Say queues speech (mono PCM16 at 16 kHz); the channel yields the time
	// its last frame was sent.
	Say(pcm []int16) <-chan time.Time
	// OnAudio sets a callback for every received 20 ms frame of agent audio.
	OnAudio(fn func(loadtest.RxFrame))
	// Hangup asks the gateway to end the call.
	Hangup() error
	// Close releases the call's media and signaling.
	Close()
}

// EventSource is implemented by calls whose transport carries the gateway's
// signaling events (WebRTC: *loadtest.Caller). With it the rig takes each
// turn's end and the gateway's stage timings from the "turn" event; without
// it (SIP) a turn ends when the agent has been silent for a while after
// answering, and there are no gw_ metrics.
type EventSource interface {
	Events() <-chan loadtest.ServerMessage
}

// Ender is implemented by calls that can end from the gateway's side
// outside signaling events (SIP: the gateway's BYE). A call that ends during
// a turn fails with reason "gateway_hangup_<HangupReason>".
type Ender interface {
	Done() <-chan struct{}
	HangupReason() string
}

// DialError is a dial failure a transport has already classified: Reason
// names it in the report (e.g. "sip_503"), and Refused counts the call as
// refused by the gateway rather than failed.
type DialError struct {
	Reason  string
	Refused bool
	Err     error
}

func (e *DialError) Error() string { return e.Err.Error() }
func (e *DialError) Unwrap() error { return e.Err }

// Dialer places calls. Dial returns once the call's media is connected, so
// the time it takes is the call setup time. token is the call token (empty
// for transports that do not use one).
type Dialer interface {
	Dial(ctx context.Context, token string) (Call, error)
}

// DialerFunc adapts a function to Dialer.
type DialerFunc func(ctx context.Context, token string) (Call, error)

// Dial implements Dialer.
func (f DialerFunc) Dial(ctx context.Context, token string) (Call, error) { return f(ctx, token) }

// WebRTC dials calls the way the browser softphone does: signaling over the
// gateway's WebSocket, then ICE and DTLS-SRTP.
type WebRTC struct {
	// Gateway is the gateway's base URL, e.g. http://127.0.0.1:8080.
	Gateway string
	// Codec is "opus" (default) or "pcmu".
	Codec string
}

// Dial implements Dialer: signaling, answer, then media connected.
func (w WebRTC) Dial(ctx context.Context, token string) (Call, error) {
	c, err := loadtest.Dial(ctx, loadtest.CallerConfig{Gateway: w.Gateway, Token: token, Codec: w.Codec})
	if err != nil {
		return nil, err
	}
	if err := c.Connected(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("media: %w", err)
	}
	return c, nil
}

var (
	_ Dialer      = WebRTC{}
	_ Dialer      = DialerFunc(nil)
	_ Call        = (*loadtest.Caller)(nil)
	_ EventSource = (*loadtest.Caller)(nil)
)
