package sipcall

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/voicegw/voicegw/loadtest"
	"github.com/voicegw/voicegw/media"
	"github.com/voicegw/voicegw/sipmedia"
)

// Reasons a call ended, from HangupReason.
const (
	// ReasonCaller: Hangup or Close sent our BYE.
	ReasonCaller = "caller"
	// ReasonRemoteBye: the gateway sent BYE.
	ReasonRemoteBye = "remote_bye"
	// ReasonMedia: no RTP arrived for sipmedia's RTP timeout; we sent BYE.
	ReasonMedia = "media"
)

// Defaults of SIPConfig.
const (
	DefaultNumber      = "voicegw"
	DefaultFrom        = "loadtest"
	DefaultSilenceDBFS = -50
	DefaultRTPPortMin  = 30000
	DefaultRTPPortMax  = 39999
)

// byeTimeout bounds the wait for the 200 to our BYE.
const byeTimeout = 5 * time.Second

// SIPConfig configures one synthetic SIP call. Only Target is required.
type SIPConfig struct {
	// Target is the gateway's SIP address, host:port (e.g.
	// "127.0.0.1:5060").
	Target string
	// Transport is "udp" (default) or "tcp".
	Transport string
	// Number is the Request-URI user, the number called. Default
	// "voicegw".
	Number string
	// From is the caller's user part (From: sip:From@LocalIP). Default
	// "loadtest".
	From string
	// LocalIP is the address the SIP client and RTP bind to and the SDP
	// announces. Default 127.0.0.1.
	LocalIP netip.Addr
	// Codec is the one codec offered: "PCMU" (default), "PCMA" or "opus".
	Codec string
	// Username and Password answer a 401 or 407 digest challenge.
	Username, Password string
	// Headers are added to the INVITE (e.g. X-Voicegw-Caller-Assertion).
	Headers map[string]string
	// SilenceDBFS is the level at or below which a received frame counts
	// as silence. Default -50 dBFS.
	SilenceDBFS float64
	// RTPPortMin and RTPPortMax bound our RTP ports on LocalIP (RTP on an
	// even port, RTCP on the next). Default 30000 to 39999.
	RTPPortMin, RTPPortMax int
	// Logger receives the call's logs (and, for the first call of a
	// transport and local IP, the shared SIP stack's). Default
	// slog.Default().
	Logger *slog.Logger
}

func (c *SIPConfig) setDefaults() error {
	if c.Target == "" {
		return errors.New("sipcall: no target")
	}
	if _, _, err := net.SplitHostPort(c.Target); err != nil {
		return fmt.Errorf("sipcall: target %q: %w", c.Target, err)
	}
	c.Transport = strings.ToLower(c.Transport)
	switch c.Transport {
	case "":
		c.Transport = "udp"
	case "udp", "tcp":
	default:
		return fmt.Errorf("sipcall: transport %q: want udp or tcp", c.Transport)
	}
	if c.Number == "" {
		c.Number = DefaultNumber
	}
	if c.From == "" {
		c.From = DefaultFrom
	}
	if !c.LocalIP.IsValid() {
		c.LocalIP = netip.MustParseAddr("127.0.0.1")
	}
	switch strings.ToLower(c.Codec) {
	case "", "pcmu":
		c.Codec = sipmedia.CodecPCMU
	case "pcma":
		c.Codec = sipmedia.CodecPCMA
	case "opus":
		c.Codec = sipmedia.CodecOpus
	default:
		return fmt.Errorf("sipcall: codec %q: want PCMU, PCMA or opus", c.Codec)
	}
	if c.SilenceDBFS == 0 {
		c.SilenceDBFS = DefaultSilenceDBFS
	}
	if c.RTPPortMin == 0 && c.RTPPortMax == 0 {
		c.RTPPortMin, c.RTPPortMax = DefaultRTPPortMin, DefaultRTPPortMax
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// CallError is a final non-2xx response to our INVITE.
type CallError struct {
	Status int
	Reason string
	// RetryAfter is the response's Retry-After (0 without one).
	RetryAfter time.Duration
}

func (e *CallError) Error() string {
	s := fmt.Sprintf("sipcall: call refused: %d %s", e.Status, e.Reason)
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	return s
}

// SIPCaller is one synthetic SIP call. It sends a frame every 20 ms
// (silence unless Say queued speech), as a phone does, and records every
// frame of agent audio it hears.
type SIPCaller struct {
	// CallID is the SIP Call-ID of the dialog.
	CallID string

	cfg    SIPConfig
	log    *slog.Logger
	ep     *endpoint
	dlg    *sipgo.DialogClientSession
	stream *sipmedia.Stream

	ctx       context.Context // canceled when the call ends
	cancel    context.CancelFunc
	wg        sync.WaitGroup // the send and receive loops
	done      chan struct{}  // closed when run has cleaned up
	closeOnce sync.Once

	mu      sync.Mutex
	reason  string
	queue   []int16 // speech at media.PipelineRate waiting to be sent
	sayDone []sayMark
	rx      []loadtest.RxFrame
	onRx    func(loadtest.RxFrame)
	sent    int
}

type sayMark struct {
	remaining int // samples still queued before this utterance has been sent
	done      chan time.Time
}

// DialSIP places a call: an INVITE with our SDP offer, digest credentials
// when challenged, and, on the 2xx, the ACK and the call's media. ctx
// bounds the wait for the answer (provisional responses are skipped);
// canceling it sends a CANCEL. A final failure response is a *CallError.
func DialSIP(ctx context.Context, cfg SIPConfig) (*SIPCaller, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	host, portStr, _ := net.SplitHostPort(cfg.Target)
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("sipcall: target %q: bad port", cfg.Target)
	}
	ports, err := shared.portRange(cfg.LocalIP, cfg.RTPPortMin, cfg.RTPPortMax)
	if err != nil {
		return nil, fmt.Errorf("sipcall: rtp ports: %w", err)
	}
	ep, err := shared.acquire(endpointKey{cfg.Transport, cfg.LocalIP}, cfg.Logger)
	if err != nil {
		return nil, err
	}
	if err := ep.connect(ctx, cfg.Target); err != nil {
		shared.release(ep)
		return nil, err
	}
	conn, err := ports.Allocate()
	if err != nil {
		shared.release(ep)
		return nil, fmt.Errorf("sipcall: rtp ports: %w", err)
	}
	cctx, cancel := context.WithCancel(context.Background())
	c := &SIPCaller{cfg: cfg, ep: ep, ctx: cctx, cancel: cancel, done: make(chan struct{})}
	fail := func(err error) (*SIPCaller, error) {
		cancel()
		_ = conn.Close()
		shared.release(ep)
		return nil, err
	}

	offer, offered, err := sipmedia.Offer(sipmedia.Options{Codecs: []string{cfg.Codec}, LocalIP: cfg.LocalIP}, conn.Port(), rand.Uint64()>>1, 1)
	if err != nil {
		return fail(fmt.Errorf("sipcall: offer: %w", err))
	}
	req, contact := newInvite(cfg, host, port, offer)
	c.CallID = req.CallID().Value()
	c.log = cfg.Logger.With("sip_call_id", c.CallID)
	dua := &sipgo.DialogUA{Client: ep.client, ContactHDR: contact}
	dlg, err := dua.WriteInvite(ctx, req)
	if err != nil {
		return fail(fmt.Errorf("sipcall: INVITE: %w", err))
	}
	c.dlg = dlg
	if err := dlg.WaitAnswer(ctx, sipgo.AnswerOptions{Username: cfg.Username, Password: cfg.Password}); err != nil {
		_ = dlg.Close()
		if res := failureResponse(err); res != nil {
			return fail(callError(res))
		}
		return fail(fmt.Errorf("sipcall: waiting for the answer: %w", err))
	}
	ep.register(dlg.ID, c)
	if err := dlg.Ack(ctx); err != nil {
		ep.forget(dlg.ID)
		return fail(fmt.Errorf("sipcall: ACK: %w", err))
	}
	hangUp := func(err error) (*SIPCaller, error) {
		ep.forget(dlg.ID)
		if berr := c.bye(); berr != nil {
			c.log.Info("sip BYE after a failed call setup", "err", berr)
		}
		return fail(err)
	}
	plan, err := offered.ParseAnswer(dlg.InviteResponse.Body())
	if err != nil {
		return hangUp(fmt.Errorf("sipcall: answer: %w", err))
	}
	stream, err := sipmedia.NewStream(conn, plan, sipmedia.StreamConfig{Logger: c.log.With("component", "rtp")})
	if err != nil {
		return hangUp(fmt.Errorf("sipcall: rtp: %w", err))
	}
	c.stream = stream // owns conn from here on
	c.wg.Add(2)
	go func() {
		defer c.wg.Done()
		c.sendLoop()
	}()
	go func() {
		defer c.wg.Done()
		c.receiveLoop()
	}()
	go c.run()
	return c, nil
}

// newInvite builds the INVITE to cfg.Number at host:port with our offer,
// and the Contact it carries. The Contact's address is left empty: sipgo
// fills it with the local address of the socket the INVITE leaves from,
// where the gateway's in-dialog requests must arrive.
func newInvite(cfg SIPConfig, host string, port int, offer []byte) (*sip.Request, sip.ContactHeader) {
	recipient := sip.Uri{Scheme: "sip", User: cfg.Number, Host: host, Port: port}
	contact := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: cfg.From}}
	if cfg.Transport == "tcp" {
		recipient.UriParams = sip.NewParams()
		recipient.UriParams.Add("transport", "tcp")
		contact.Address.UriParams = sip.NewParams()
		contact.Address.UriParams.Add("transport", "tcp")
	}
	req := sip.NewRequest(sip.INVITE, recipient)
	req.SetTransport(strings.ToUpper(cfg.Transport))
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: cfg.From, Host: cfg.LocalIP.String()}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: cfg.Number, Host: host}, Params: sip.NewParams()})
	callID := sip.CallIDHeader(fmt.Sprintf("%016x%016x", rand.Uint64(), rand.Uint64()))
	req.AppendHeader(&callID)
	req.AppendHeader(contact.Clone())
	req.AppendHeader(sip.NewHeader("User-Agent", userAgent))
	for _, k := range slices.Sorted(maps.Keys(cfg.Headers)) {
		req.AppendHeader(sip.NewHeader(k, cfg.Headers[k]))
	}
	ct := sip.ContentTypeHeader("application/sdp")
	req.AppendHeader(&ct)
	req.SetBody(offer)
	return req, contact
}

// failureResponse is the response in a sipgo dialog error, which sipgo
// returns as a value or a pointer.
func failureResponse(err error) *sip.Response {
	var p *sipgo.ErrDialogResponse
	if errors.As(err, &p) {
		return p.Res
	}
	var v sipgo.ErrDialogResponse
	if errors.As(err, &v) {
		return v.Res
	}
	return nil
}

// callError converts a final failure response.
func callError(res *sip.Response) *CallError {
	e := &CallError{Status: res.StatusCode, Reason: res.Reason}
	if h := res.GetHeader("Retry-After"); h != nil {
		// Retry-After: delta-seconds [comment] [;params]
		v := strings.TrimSpace(h.Value())
		end := strings.IndexFunc(v, func(r rune) bool { return r < '0' || r > '9' })
		if end < 0 {
			end = len(v)
		}
		if n, err := strconv.Atoi(v[:end]); err == nil {
			e.RetryAfter = time.Duration(n) * time.Second
		}
	}
	return e
}

// run waits for the end of the call (our Hangup, the gateway's BYE, a
// media failure), then stops the media and the loops. done is closed
// when everything but the shared endpoint has been released.
func (c *SIPCaller) run() {
	defer close(c.done)
	select {
	case <-c.ctx.Done():
	case <-c.stream.Done():
		if c.setReason(ReasonMedia) {
			c.log.Info("sip call: media ended; hanging up", "err", c.stream.Err())
			if err := c.bye(); err != nil {
				c.log.Info("sip BYE not confirmed", "err", err)
			}
		}
	}
	c.cancel()
	_ = c.stream.Close()
	c.wg.Wait()
	c.ep.forget(c.dlg.ID)
}

// setReason records why the call ended; it reports whether it was the
// first to do so.
func (c *SIPCaller) setReason(r string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reason != "" {
		return false
	}
	c.reason = r
	return true
}

// remoteBye answers the gateway's BYE with 200 and ends the call.
func (c *SIPCaller) remoteBye(req *sip.Request, tx sip.ServerTransaction) {
	c.setReason(ReasonRemoteBye)
	if err := c.dlg.ReadBye(req, tx); err != nil {
		c.log.Info("sip BYE: 200 not sent", "err", err)
	}
	c.cancel()
}

// bye sends our BYE and waits (bounded) for its 200.
func (c *SIPCaller) bye() error {
	ctx, cancel := context.WithTimeout(context.Background(), byeTimeout)
	defer cancel()
	err := c.dlg.Bye(ctx)
	if res := failureResponse(err); res != nil {
		return fmt.Errorf("sipcall: BYE: %w", callError(res))
	}
	if err != nil {
		return fmt.Errorf("sipcall: BYE: %w", err)
	}
	return nil
}

// Hangup sends BYE and waits (at most 5 s) for its 200, then ends the
// call's media. After the call ended it does nothing and returns nil.
func (c *SIPCaller) Hangup() error {
	if !c.setReason(ReasonCaller) {
		<-c.done
		return nil
	}
	err := c.bye()
	c.cancel()
	<-c.done
	return err
}

// Done is closed when the call has ended (see HangupReason) and its media
// has stopped.
func (c *SIPCaller) Done() <-chan struct{} { return c.done }

// HangupReason says why the call ended: ReasonCaller, ReasonRemoteBye or
// ReasonMedia; "" while it lasts.
func (c *SIPCaller) HangupReason() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reason
}

// Close hangs up if the call still lasts, waits for its goroutines, closes
// its sockets and releases the shared SIP user agent. It is idempotent.
func (c *SIPCaller) Close() {
	c.closeOnce.Do(func() {
		if err := c.Hangup(); err != nil {
			c.log.Warn("sip hangup on close", "err", err)
		}
		shared.release(c.ep)
	})
}

// Stats returns the call's RTP counters.
func (c *SIPCaller) Stats() sipmedia.Stats { return c.stream.Stats() }

// Say queues speech (mono PCM16 at media.PipelineRate) after whatever is
// queued; the returned channel yields the time its last frame was sent. If
// the call ends first it never yields: select on Done as well.
func (c *SIPCaller) Say(pcm []int16) <-chan time.Time {
	done := make(chan time.Time, 1)
	c.mu.Lock()
	c.queue = append(c.queue, pcm...)
	c.sayDone = append(c.sayDone, sayMark{remaining: len(c.queue), done: done})
	c.mu.Unlock()
	return done
}

// OnAudio sets a callback for every received 20 ms frame of agent audio.
// It runs on the call's receive goroutine: keep it short.
func (c *SIPCaller) OnAudio(fn func(loadtest.RxFrame)) {
	c.mu.Lock()
	c.onRx = fn
	c.mu.Unlock()
}

// Received returns every frame of agent audio received so far.
func (c *SIPCaller) Received() []loadtest.RxFrame {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.rx)
}

// FramesSent is the number of 20 ms frames sent.
func (c *SIPCaller) FramesSent() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sent
}

// nextFrame takes the next n samples of queued speech (zero-padded to a
// frame) and yields the utterances it completes.
func (c *SIPCaller) nextFrame(f []int16) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := copy(f, c.queue)
	clear(f[k:])
	c.queue = c.queue[k:]
	if len(c.queue) == 0 {
		c.queue = nil // let the spoken samples be collected
	}
	if len(c.sayDone) > 0 {
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
	}
	c.sent++
}

// sendLoop sends a frame every 20 ms until the call ends.
func (c *SIPCaller) sendLoop() {
	frame := make([]int16, media.SamplesPerFrame(media.PipelineRate))
	pacer := media.NewPacer(media.FrameDuration)
	for {
		if err := pacer.Wait(c.ctx); err != nil {
			return
		}
		c.nextFrame(frame)
		if err := c.stream.WriteFrame(frame); err != nil {
			c.log.Debug("rtp frame not sent", "err", err)
		}
	}
}

// receiveLoop records every frame the stream plays out until it ends.
func (c *SIPCaller) receiveLoop() {
	for pcm := range c.stream.Frames() {
		db := media.DBFS(pcm)
		f := loadtest.RxFrame{At: time.Now(), DBFS: db, Silent: db <= c.cfg.SilenceDBFS}
		c.mu.Lock()
		c.rx = append(c.rx, f)
		fn := c.onRx
		c.mu.Unlock()
		if fn != nil {
			fn(f)
		}
	}
}
