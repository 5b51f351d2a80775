// Package loadtest drives real calls against a voicegw gateway: synthetic
// callers that speak the signaling contract and real WebRTC (DTLS-SRTP,
// Opus or PCMU), measure what they hear on their own clock, and (in
// loadtest/sim) simulated ASR, LLM and TTS backends that speak the open wire
// protocols.
package loadtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	pionmedia "github.com/pion/webrtc/v4/pkg/media"

	"github.com/voicegw/voicegw/media"
)

// CallerConfig configures one synthetic WebRTC caller.
type CallerConfig struct {
	// Gateway is the gateway's base URL, e.g. http://127.0.0.1:8080.
	Gateway string
	// Token is the call token, sent as the "token" query parameter.
	Token string
	// Codec is "opus" (default) or "pcmu".
	Codec string
	// SilenceDBFS is the level at or below which a received frame counts as
	// silence. Default -50 dBFS.
	SilenceDBFS float64
	// Header is added to the signaling request (e.g. Authorization).
	Header http.Header
}

// ServerMessage is one signaling message from the gateway.
type ServerMessage struct {
	Type         string           `json:"type"`
	SDP          string           `json:"sdp,omitempty"`
	CallID       string           `json:"callId,omitempty"`
	Role         string           `json:"role,omitempty"`
	Text         string           `json:"text,omitempty"`
	Final        bool             `json:"final,omitempty"`
	Code         string           `json:"code,omitempty"`
	Message      string           `json:"message,omitempty"`
	RetryAfterMs int64            `json:"retryAfterMs,omitempty"`
	Reason       string           `json:"reason,omitempty"`
	Turn         int              `json:"turn,omitempty"`
	Outcome      string           `json:"outcome,omitempty"`
	Timings      map[string]int64 `json:"timings,omitempty"`
	SpeechEndAt  int64            `json:"speechEndAt,omitempty"`
	Direction    string           `json:"direction,omitempty"`
	Action       string           `json:"action,omitempty"`
	Categories   []string         `json:"categories,omitempty"`
	Rules        []string         `json:"rules,omitempty"`
	Received     time.Time        `json:"-"`
}

// RxFrame is one 20 ms frame of agent audio the caller received.
type RxFrame struct {
	At     time.Time
	DBFS   float64
	Silent bool
}

// SignalingError is an error message the gateway sent instead of an answer.
type SignalingError struct {
	Code, Message string
	RetryAfter    time.Duration
}

func (e *SignalingError) Error() string {
	return fmt.Sprintf("gateway refused the call: %s: %s", e.Code, e.Message)
}

// Caller is one synthetic call. It sends a frame every 20 ms (silence
// unless Say queued speech), as a phone does, and records every frame of
// agent audio it hears.
type Caller struct {
	cfg    CallerConfig
	pc     *webrtc.PeerConnection
	ws     *websocket.Conn
	track  *webrtc.TrackLocalStaticSample
	CallID string

	events chan ServerMessage
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	queue   []int16 // speech at media.PipelineRate waiting to be sent
	sayDone []sayMark
	rx      []RxFrame
	onRx    func(RxFrame)
	sent    int
	wsMu    sync.Mutex
}

type sayMark struct {
	remaining int // samples still queued before this utterance has been sent
	done      chan time.Time
}

// Dial opens signaling, negotiates WebRTC with a complete offer, and returns
// once the gateway has answered. Media may still be connecting.
func Dial(ctx context.Context, cfg CallerConfig) (*Caller, error) {
	if cfg.SilenceDBFS == 0 {
		cfg.SilenceDBFS = -50
	}
	pc, codec, err := newPeer(cfg)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithCancel(context.Background())
	c := &Caller{cfg: cfg, pc: pc, events: make(chan ServerMessage, 256), ctx: cctx, cancel: cancel}
	fail := func(err error) (*Caller, error) {
		c.Close()
		return nil, err
	}
	track, err := webrtc.NewTrackLocalStaticSample(codec, "caller-audio", "caller")
	if err != nil {
		return fail(err)
	}
	if _, err := pc.AddTrack(track); err != nil {
		return fail(err)
	}
	c.track = track
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.receive(tr)
		}()
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return fail(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return fail(err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return fail(ctx.Err())
	}

	u, err := url.Parse(cfg.Gateway)
	if err != nil {
		return fail(fmt.Errorf("gateway url: %w", err))
	}
	u.Scheme = strings.Replace(u.Scheme, "http", "ws", 1)
	u.Path = "/v1/calls"
	if cfg.Token != "" {
		q := u.Query()
		q.Set("token", cfg.Token)
		u.RawQuery = q.Encode()
	}
	ws, _, err := websocket.DefaultDialer.DialContext(ctx, u.String(), cfg.Header)
	if err != nil {
		return fail(fmt.Errorf("signaling: %w", err))
	}
	c.ws = ws
	if err := c.sendJSON(map[string]string{"type": "offer", "sdp": pc.LocalDescription().SDP}); err != nil {
		return fail(err)
	}
	// Wait for the answer (or an error) before starting the reader.
	_ = ws.SetReadDeadline(time.Now().Add(15 * time.Second))
	for {
		var msg ServerMessage
		if err := ws.ReadJSON(&msg); err != nil {
			return fail(fmt.Errorf("signaling: waiting for answer: %w", err))
		}
		if msg.Type == "error" {
			return fail(&SignalingError{Code: msg.Code, Message: msg.Message, RetryAfter: time.Duration(msg.RetryAfterMs) * time.Millisecond})
		}
		if msg.Type != "answer" {
			continue
		}
		c.CallID = msg.CallID
		if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: msg.SDP}); err != nil {
			return fail(fmt.Errorf("answer: %w", err))
		}
		break
	}
	_ = ws.SetReadDeadline(time.Time{})
	c.wg.Add(2)
	go func() {
		defer c.wg.Done()
		c.readSignaling()
	}()
	go func() {
		defer c.wg.Done()
		c.sendLoop(codec.MimeType)
	}()
	return c, nil
}

// newPeer builds the caller's PeerConnection with one audio codec.
func newPeer(cfg CallerConfig) (*webrtc.PeerConnection, webrtc.RTPCodecCapability, error) {
	codec := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}
	pt := webrtc.PayloadType(111)
	if strings.EqualFold(cfg.Codec, "pcmu") {
		codec = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000, Channels: 1}
		pt = 0
	}
	m := &webrtc.MediaEngine{}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: codec, PayloadType: pt}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, codec, err
	}
	se := webrtc.SettingEngine{}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	if u, err := url.Parse(cfg.Gateway); err == nil {
		if ip := net.ParseIP(u.Hostname()); ip != nil && ip.IsLoopback() {
			se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
		}
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, codec, err
	}
	return pc, codec, nil
}

// Offer returns a complete (all candidates gathered) Opus offer from a
// throwaway peer, for signaling protocol tests.
func Offer(ctx context.Context) (string, error) {
	pc, codec, err := newPeer(CallerConfig{Gateway: "http://127.0.0.1"})
	if err != nil {
		return "", err
	}
	defer pc.Close()
	track, err := webrtc.NewTrackLocalStaticSample(codec, "caller-audio", "caller")
	if err != nil {
		return "", err
	}
	if _, err := pc.AddTrack(track); err != nil {
		return "", err
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return "", err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return "", err
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	return pc.LocalDescription().SDP, nil
}

func (c *Caller) sendJSON(v any) error {
	c.wsMu.Lock()
	defer c.wsMu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.ws.WriteJSON(v)
}

// Send writes a raw text message on signaling (for protocol tests).
func (c *Caller) Send(msg string) error {
	c.wsMu.Lock()
	defer c.wsMu.Unlock()
	return c.ws.WriteMessage(websocket.TextMessage, []byte(msg))
}

func (c *Caller) readSignaling() {
	defer close(c.events)
	for {
		var msg ServerMessage
		if err := c.ws.ReadJSON(&msg); err != nil {
			return
		}
		msg.Received = time.Now()
		select {
		case c.events <- msg:
		case <-c.ctx.Done():
			return
		}
	}
}

// Events delivers the gateway's signaling messages after the answer. It is
// closed when signaling closes.
func (c *Caller) Events() <-chan ServerMessage { return c.events }

// Connected waits until media is connected (ICE and DTLS up).
func (c *Caller) Connected(ctx context.Context) error {
	for {
		switch c.pc.ConnectionState() {
		case webrtc.PeerConnectionStateConnected:
			return nil
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			return errors.New("media connection failed")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Say queues speech (mono PCM16 at media.PipelineRate) after whatever is
// queued; the returned channel yields the time its last frame was sent.
func (c *Caller) Say(pcm []int16) <-chan time.Time {
	done := make(chan time.Time, 1)
	c.mu.Lock()
	c.queue = append(c.queue, pcm...)
	c.sayDone = append(c.sayDone, sayMark{remaining: len(c.queue), done: done})
	c.mu.Unlock()
	return done
}

// OnAudio sets a callback for every received frame of agent audio.
func (c *Caller) OnAudio(fn func(RxFrame)) {
	c.mu.Lock()
	c.onRx = fn
	c.mu.Unlock()
}

// Received returns every frame of agent audio received so far.
func (c *Caller) Received() []RxFrame {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]RxFrame(nil), c.rx...)
}

// FramesSent is the number of 20 ms frames sent.
func (c *Caller) FramesSent() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sent
}

func (c *Caller) nextFrame(n int) []int16 {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := make([]int16, n)
	k := copy(f, c.queue)
	c.queue = c.queue[k:]
	now := time.Now()
	keep := c.sayDone[:0]
	for _, m := range c.sayDone {
		m.remaining -= k
		if m.remaining <= 0 {
			m.done <- now
			continue
		}
		keep = append(keep, m)
	}
	c.sayDone = keep
	c.sent++
	return f
}

func (c *Caller) sendLoop(mime string) {
	n := media.SamplesPerFrame(media.PipelineRate)
	var encode func([]int16) ([]byte, error)
	if mime == webrtc.MimeTypeOpus {
		enc, err := media.NewOpusEncoder(48000, 1)
		if err != nil {
			return
		}
		rs, _ := media.NewResampler(media.PipelineRate, 48000)
		buf := make([]byte, 1500)
		var up []int16
		encode = func(f []int16) ([]byte, error) {
			up = rs.Process(up[:0], f)
			k, err := enc.Encode(up, buf)
			return buf[:k], err
		}
	} else {
		rs, _ := media.NewResampler(media.PipelineRate, 8000)
		var down []int16
		encode = func(f []int16) ([]byte, error) {
			down = rs.Process(down[:0], f)
			b := make([]byte, len(down))
			media.EncodeMulaw(b, down)
			return b, nil
		}
	}
	pacer := media.NewPacer(media.FrameDuration)
	for {
		if err := pacer.Wait(c.ctx); err != nil {
			return
		}
		payload, err := encode(c.nextFrame(n))
		if err != nil {
			continue
		}
		if err := c.track.WriteSample(pionmedia.Sample{Data: payload, Duration: media.FrameDuration}); err != nil {
			return
		}
	}
}

func (c *Caller) receive(tr *webrtc.TrackRemote) {
	mime := strings.ToLower(tr.Codec().MimeType)
	var decode func([]byte) ([]int16, error)
	switch mime {
	case "audio/opus":
		dec, err := media.NewOpusDecoder(48000, 1)
		if err != nil {
			return
		}
		pcm := make([]int16, 5760)
		decode = func(p []byte) ([]int16, error) {
			k, err := dec.Decode(p, pcm)
			return pcm[:k], err
		}
	case "audio/pcmu", "audio/pcma":
		decode = func(p []byte) ([]int16, error) {
			out := make([]int16, len(p))
			if mime == "audio/pcma" {
				media.DecodeAlaw(out, p)
			} else {
				media.DecodeMulaw(out, p)
			}
			return out, nil
		}
	default:
		return
	}
	buf := make([]byte, 1500)
	pkt := &rtp.Packet{}
	for {
		k, _, err := tr.Read(buf)
		if err != nil {
			return
		}
		if pkt.Unmarshal(buf[:k]) != nil {
			continue
		}
		pcm, err := decode(pkt.Payload)
		if err != nil || len(pcm) == 0 {
			continue
		}
		db := media.DBFS(pcm)
		f := RxFrame{At: time.Now(), DBFS: db, Silent: db <= c.cfg.SilenceDBFS}
		c.mu.Lock()
		c.rx = append(c.rx, f)
		fn := c.onRx
		c.mu.Unlock()
		if fn != nil {
			fn(f)
		}
	}
}

// Hangup sends {"type":"hangup"}.
func (c *Caller) Hangup() error {
	return c.sendJSON(map[string]string{"type": "hangup"})
}

// Close ends the call's media and signaling and waits for its goroutines.
func (c *Caller) Close() {
	c.cancel()
	if c.ws != nil {
		c.wsMu.Lock()
		_ = c.ws.Close()
		c.wsMu.Unlock()
	}
	_ = c.pc.Close()
	c.wg.Wait()
}
