package gateway

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"github.com/voicegw/voicegw/sipmedia"
)

// SIPConfig configures the SIP trunk ingress. With no listen address it is
// off.
type SIPConfig struct {
	// UDPAddr, TCPAddr and TLSAddr are listen addresses (host:port; port 0
	// picks one). TLSAddr needs TLS.
	UDPAddr string
	TCPAddr string
	TLSAddr string
	TLS     *tls.Config
	// MediaIP is the address RTP sockets bind to and our SDP announces.
	// Default: the host of the first listen address, which must then be
	// a specific address.
	MediaIP netip.Addr
	// RTPPortMin and RTPPortMax bound the RTP ports (RTP on even ports,
	// RTCP on the next odd one). Default 20000 to 29999.
	RTPPortMin, RTPPortMax int
	// Trunks are the call centers allowed to call.
	Trunks []Trunk
	// RTPTimeout ends a call whose caller sends no RTP for this long while
	// not on hold. Default 30 s.
	RTPTimeout time.Duration
}

// Trunk is one contractor call center's SIP trunk into a tenant.
type Trunk struct {
	// Name identifies the trunk in logs and metrics.
	Name string
	// Tenant owns the calls.
	Tenant string
	// Sources are the networks the trunk's signaling comes from.
	Sources []netip.Prefix
	// Username and Password, when set, require digest authentication
	// (RFC 8760: SHA-256 and MD5 offered, in Algorithms order).
	Username, Password string
	// Realm for the digest challenge. Default "voicegw".
	Realm string
	// Algorithms offered in the challenge, most preferred first. Default
	// SHA-256 then MD5.
	Algorithms []string
	// Numbers maps the Request-URI user the trunk may call to the agent
	// that answers it ("" for the tenant's default pipeline). The key
	// "*" matches any number.
	Numbers map[string]string
	// RequireSRTP refuses offers without SDES SRTP (488).
	RequireSRTP bool
	// Codecs in order of preference. Default PCMU, PCMA, opus.
	Codecs []string
	// USPersonAttested: the trunk's owner attests that every caller on it
	// is a U.S. person (its technology control plan), as AttestedBy.
	USPersonAttested bool
	AttestedBy       string
	// AssertionHeader names the SIP header carrying a per-call signed
	// assertion about the caller, checked by VerifyAssertion. Default
	// "X-Voicegw-Caller-Assertion".
	AssertionHeader string
	// VerifyAssertion checks an assertion and returns the caller's
	// attestation. Nil: assertions are ignored.
	VerifyAssertion func(token string) (usPerson bool, attestedBy string, err error)
	// USPersonOnly refuses callers not attested as U.S. persons (403).
	USPersonOnly bool
	// DefaultParty is the classifier party of an unattested caller
	// ("unknown" or "foreign").
	DefaultParty string
	// AnswerDelay rings (180) for this long before answering.
	AnswerDelay time.Duration
}

// AgentSetup overrides a tenant's pipeline for the calls a trunk number
// routes to it.
type AgentSetup struct {
	SystemPrompt string
	Greeting     string
}

const (
	defaultAssertionHeader = "X-Voicegw-Caller-Assertion"
	sipUserAgent           = "voicegw"
	nonceLifetime          = 5 * time.Minute
	byeTimeout             = 4 * time.Second
)

func (c *SIPConfig) enabled() bool { return c.UDPAddr != "" || c.TCPAddr != "" || c.TLSAddr != "" }

func (c *SIPConfig) setDefaults() error {
	if c.RTPPortMin == 0 && c.RTPPortMax == 0 {
		c.RTPPortMin, c.RTPPortMax = 20000, 29999
	}
	if c.RTPTimeout == 0 {
		c.RTPTimeout = sipmedia.DefaultRTPTimeout
	}
	if c.TLSAddr != "" && c.TLS == nil {
		return errors.New("sip: a TLS listen address needs a certificate")
	}
	if !c.MediaIP.IsValid() {
		for _, a := range []string{c.UDPAddr, c.TCPAddr, c.TLSAddr} {
			if a == "" {
				continue
			}
			host, _, err := net.SplitHostPort(a)
			if err != nil {
				return fmt.Errorf("sip: listen address %q: %w", a, err)
			}
			ip, err := netip.ParseAddr(host)
			if err != nil || ip.IsUnspecified() {
				return fmt.Errorf("sip: listen address %q is not a specific IP: set the media IP", a)
			}
			c.MediaIP = ip
			break
		}
	}
	for i := range c.Trunks {
		t := &c.Trunks[i]
		if t.Realm == "" {
			t.Realm = "voicegw"
		}
		if len(t.Algorithms) == 0 {
			t.Algorithms = []string{"SHA-256", "MD5"}
		}
		if t.AssertionHeader == "" {
			t.AssertionHeader = defaultAssertionHeader
		}
	}
	return nil
}

// sipIngress is the SIP user agent server: it admits trunk calls, answers
// them with an RTP leg and runs each as a session like any softphone call.
type sipIngress struct {
	srv   *Server
	cfg   SIPConfig
	log   *slog.Logger
	ua    *sipgo.UserAgent
	sipS  *sipgo.Server
	cl    *sipgo.Client
	ports *sipmedia.PortRange
	key   []byte // signs digest nonces

	ctx    context.Context // ends the listeners
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// ring ends calls still ringing when the gateway stops; handlers
	// counts INVITE handlers, so close waits for their BYEs.
	ring     context.Context
	stopRing context.CancelFunc
	handlers sync.WaitGroup

	mu    sync.Mutex
	calls map[string]*sipCall // by dialog ID
	addrs map[string]string   // bound listen address by network
}

// sipCall is one SIP dialog and the call it carries.
type sipCall struct {
	id      string
	trunk   *Trunk
	dlg     *sipgo.DialogServerSession
	conn    *sipmedia.Conn
	log     *slog.Logger
	sessID  uint64
	version atomic.Uint64

	mu       sync.Mutex
	offered  *sipmedia.Offered // our offer, for an INVITE without SDP
	ackBody  []byte
	plan     *sipmedia.Plan
	stream   *sipmedia.Stream
	sess     *session
	byRemote atomic.Bool
}

func newSIPIngress(srv *Server, cfg SIPConfig, log *slog.Logger) (*sipIngress, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	ports, err := sipmedia.NewPortRange(cfg.MediaIP, cfg.RTPPortMin, cfg.RTPPortMax)
	if err != nil {
		return nil, fmt.Errorf("sip: rtp ports: %w", err)
	}
	// The SIP stack logs through our logger, with long values (a bad
	// message's bytes) cut short.
	stackLog := slog.New(truncatingHandler{log.Handler(), 200})
	opts := []sipgo.UserAgentOption{
		sipgo.WithUserAgent(sipUserAgent),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(stackLog)),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(stackLog)),
	}
	if cfg.TLS != nil {
		opts = append(opts, sipgo.WithUserAgenTLSConfig(cfg.TLS))
	}
	ua, err := sipgo.NewUA(opts...)
	if err != nil {
		return nil, fmt.Errorf("sip: %w", err)
	}
	in := &sipIngress{srv: srv, cfg: cfg, log: log, ua: ua, ports: ports, calls: map[string]*sipCall{}, addrs: map[string]string{}}
	in.key = make([]byte, 32)
	_, _ = rand.Read(in.key)
	if in.sipS, err = sipgo.NewServer(ua, sipgo.WithServerLogger(stackLog)); err != nil {
		return nil, fmt.Errorf("sip: %w", err)
	}
	if in.cl, err = sipgo.NewClient(ua, sipgo.WithClientLogger(stackLog)); err != nil {
		return nil, fmt.Errorf("sip: %w", err)
	}
	in.sipS.OnInvite(in.onInvite)
	in.sipS.OnAck(in.onAck)
	in.sipS.OnBye(in.onBye)
	in.sipS.OnCancel(in.onStrayCancel)
	in.sipS.OnOptions(in.onOptions)
	in.ctx, in.cancel = context.WithCancel(context.Background())
	in.ring, in.stopRing = context.WithCancel(context.Background())
	if err := in.listen(); err != nil {
		in.close()
		return nil, err
	}
	return in, nil
}

// listen binds every configured address and serves it.
func (in *sipIngress) listen() error {
	serve := func(network string, f func() error) {
		in.wg.Add(1)
		go func() {
			defer in.wg.Done()
			if err := f(); err != nil && in.ctx.Err() == nil {
				in.log.Error("sip listener stopped", "network", network, "err", err)
			}
		}()
	}
	if a := in.cfg.UDPAddr; a != "" {
		pc, err := net.ListenPacket("udp", a)
		if err != nil {
			return fmt.Errorf("sip: listen udp %s: %w", a, err)
		}
		in.addrs["udp"] = pc.LocalAddr().String()
		serve("udp", func() error { return in.sipS.ServeUDP(pc) })
		in.closeOnStop(pc)
	}
	if a := in.cfg.TCPAddr; a != "" {
		l, err := net.Listen("tcp", a)
		if err != nil {
			return fmt.Errorf("sip: listen tcp %s: %w", a, err)
		}
		in.addrs["tcp"] = l.Addr().String()
		serve("tcp", func() error { return in.sipS.ServeTCP(l) })
		in.closeOnStop(l)
	}
	if a := in.cfg.TLSAddr; a != "" {
		l, err := tls.Listen("tcp", a, in.cfg.TLS)
		if err != nil {
			return fmt.Errorf("sip: listen tls %s: %w", a, err)
		}
		in.addrs["tls"] = l.Addr().String()
		serve("tls", func() error { return in.sipS.ServeTLS(l) })
		in.closeOnStop(l)
	}
	return nil
}

func (in *sipIngress) closeOnStop(c interface{ Close() error }) {
	in.wg.Add(1)
	go func() {
		defer in.wg.Done()
		<-in.ctx.Done()
		_ = c.Close()
	}()
}

// close ends calls still ringing, waits (bounded) for the calls' BYEs,
// then stops the listeners and the user agent. The sessions must have
// been hung up.
func (in *sipIngress) close() {
	in.mu.Lock()
	in.stopRing()
	in.mu.Unlock()
	done := make(chan struct{})
	go func() {
		in.handlers.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(byeTimeout + time.Second):
		in.log.Warn("sip calls still ending at shutdown")
	}
	in.cancel()
	_ = in.ua.Close()
	in.wg.Wait()
}

// addr is the bound address for network ("udp", "tcp", "tls").
func (in *sipIngress) addr(network string) string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.addrs[network]
}

// --- requests -----------------------------------------------------------------

// respond sends a stateful response to req, with extra headers.
func (in *sipIngress) respond(req *sip.Request, tx sip.ServerTransaction, code int, reason string, hdrs ...sip.Header) {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	if code >= 300 {
		in.srv.cfg.Metrics.SIPRefusals.WithLabelValues(strconv.Itoa(code)).Inc()
	}
	if err := tx.Respond(res); err != nil {
		in.log.Debug("sip response not sent", "code", code, "err", err)
	}
}

func retryAfter(d time.Duration) sip.Header {
	return sip.NewHeader("Retry-After", strconv.Itoa(max(1, int(math.Ceil(d.Seconds())))))
}

// source is the request's source address.
func source(req *sip.Request) (netip.AddrPort, error) {
	return netip.ParseAddrPort(req.Source())
}

// matchTrunk is the first trunk whose sources contain ip.
func (in *sipIngress) matchTrunk(ip netip.Addr) *Trunk {
	ip = ip.Unmap()
	for i := range in.cfg.Trunks {
		for _, p := range in.cfg.Trunks[i].Sources {
			if p.Contains(ip) {
				return &in.cfg.Trunks[i]
			}
		}
	}
	return nil
}

func (in *sipIngress) onOptions(req *sip.Request, tx sip.ServerTransaction) {
	src, err := source(req)
	if err != nil || in.matchTrunk(src.Addr()) == nil {
		in.respond(req, tx, 403, "Forbidden")
		return
	}
	in.respond(req, tx, 200, "OK",
		sip.NewHeader("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS"),
		sip.NewHeader("Accept", "application/sdp"))
}

// onStrayCancel answers a CANCEL that matched no pending INVITE (the
// transaction layer answers the others: 200, then 487 to the INVITE).
func (in *sipIngress) onStrayCancel(req *sip.Request, tx sip.ServerTransaction) {
	in.respond(req, tx, 481, "Call/Transaction Does Not Exist")
}

func (in *sipIngress) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	defer func() {
		if r := recover(); r != nil {
			in.log.Error("sip INVITE handler panicked", "panic", r)
			in.respond(req, tx, 500, "Server Internal Error")
		}
	}()
	if to := req.To(); to != nil && to.Params != nil && to.Params.Has("tag") {
		in.onReInvite(req, tx)
		return
	}
	in.mu.Lock()
	if in.ring.Err() != nil {
		in.mu.Unlock()
		in.respond(req, tx, 503, "Service Unavailable", retryAfter(5*time.Second))
		return
	}
	in.handlers.Add(1)
	in.mu.Unlock()
	defer in.handlers.Done()
	in.newCall(req, tx)
}

// newCall admits, answers and runs a call from an initial INVITE. It
// returns when the call has ended or was refused.
func (in *sipIngress) newCall(req *sip.Request, tx sip.ServerTransaction) {
	log := in.log.With("sip_call_id", callIDOf(req), "source", req.Source(), "transport", req.Transport())
	src, err := source(req)
	if err != nil {
		in.respond(req, tx, 400, "Bad Request")
		return
	}
	trunk := in.matchTrunk(src.Addr())
	if trunk == nil {
		log.Info("sip INVITE from an unknown source refused")
		in.respond(req, tx, 403, "Forbidden")
		return
	}
	log = log.With("tenant", trunk.Tenant, "trunk", trunk.Name)
	if trunk.Username != "" && !in.authorized(trunk, req, tx, log) {
		return
	}
	agent, ok := trunk.numberAgent(req.Recipient.User)
	if !ok {
		log.Info("sip INVITE to a number the trunk may not call", "number", req.Recipient.User)
		in.respond(req, tx, 404, "Not Found")
		return
	}
	deps := in.srv.deps[trunk.Tenant]
	if deps == nil {
		log.Error("trunk names a tenant this gateway does not serve")
		in.respond(req, tx, 503, "Service Unavailable")
		return
	}
	caller := in.identify(trunk, req, log)
	if trunk.USPersonOnly && !caller.USPerson {
		log.Info("sip call refused: caller not attested as a U.S. person")
		in.respond(req, tx, 403, "U.S. Person Required")
		return
	}
	body := req.Body()
	if len(body) > 0 {
		if ct := req.ContentType(); ct == nil || !strings.EqualFold(strings.TrimSpace(strings.Split(ct.Value(), ";")[0]), "application/sdp") {
			in.respond(req, tx, 415, "Unsupported Media Type", sip.NewHeader("Accept", "application/sdp"))
			return
		}
	}
	opts := sipmedia.Options{Codecs: trunk.Codecs, RequireSRTP: trunk.RequireSRTP, LocalIP: in.cfg.MediaIP}
	var plan *sipmedia.Plan
	if len(body) > 0 {
		plan, err = sipmedia.Negotiate(body, opts)
		if err != nil {
			code := sipmedia.StatusCode(err)
			log.Info("sip offer refused", "status", code, "err", err)
			reason := map[int]string{400: "Bad Request", 488: "Not Acceptable Here"}[code]
			if reason == "" {
				reason = "Server Internal Error"
			}
			in.respond(req, tx, code, reason, sip.NewHeader("Warning", `399 voicegw "`+sipWarning(err)+`"`))
			return
		}
	}
	release, ref := in.srv.admitCall(caller, log)
	if ref != nil {
		code, reason := 503, "Service Unavailable"
		if ref.code == codeDraining {
			log.Info("sip call refused: draining")
		}
		in.respond(req, tx, code, reason, retryAfter(ref.retryAfter))
		return
	}
	conn, err := in.ports.Allocate()
	if err != nil {
		release()
		log.Error("sip call refused: no RTP port", "err", err)
		in.respond(req, tx, 503, "Service Unavailable", retryAfter(time.Second))
		return
	}
	dua := &sipgo.DialogUA{Client: in.cl, ContactHDR: in.contact(req), RewriteContact: true}
	dlg, err := dua.ReadInvite(req, tx)
	if err != nil {
		release()
		_ = conn.Close()
		log.Info("sip INVITE refused", "err", err)
		in.respond(req, tx, 400, "Bad Request")
		return
	}
	c := &sipCall{id: newCallID(), trunk: trunk, dlg: dlg, conn: conn, plan: plan}
	c.log = log.With("call", c.id)
	c.sessID = randUint64() >> 1
	in.mu.Lock()
	in.calls[dlg.ID] = c
	in.mu.Unlock()
	defer func() {
		in.mu.Lock()
		delete(in.calls, dlg.ID)
		in.mu.Unlock()
	}()
	started := in.answer(c, deps, caller, agent, opts, release)
	if !started {
		_ = conn.Close()
	}
}

// answer rings, answers with SDP, waits for the ACK and runs the call. It
// reports whether a session was started (which then owns the socket).
func (in *sipIngress) answer(c *sipCall, deps *sessionDeps, caller Caller, agent string, opts sipmedia.Options, release func()) bool {
	dlg := c.dlg
	_ = dlg.Respond(100, "Trying", nil)
	if d := c.trunk.AnswerDelay; d > 0 {
		if err := dlg.Respond(180, "Ringing", nil); err != nil {
			release()
			return false
		}
		select {
		case <-time.After(d):
		case <-dlg.Context().Done():
			release()
			c.log.Info("sip call canceled before answer")
			return false
		case <-in.ring.Done():
			release()
			_ = dlg.Respond(480, "Temporarily Unavailable", nil)
			return false
		}
	}
	var sdp []byte
	if c.plan != nil {
		sdp = c.plan.Answer(c.conn.Port(), c.sessID, c.version.Add(1))
	} else {
		offer, offered, err := sipmedia.Offer(opts, c.conn.Port(), c.sessID, c.version.Add(1))
		if err != nil {
			release()
			c.log.Error("sip offer failed", "err", err)
			_ = dlg.Respond(500, "Server Internal Error", nil)
			return false
		}
		c.mu.Lock()
		c.offered = offered
		c.mu.Unlock()
		sdp = offer
	}
	if err := dlg.RespondSDP(sdp); err != nil {
		release()
		c.log.Info("sip call not established", "err", err)
		if dlg.LoadState() == sip.DialogStateConfirmed || dlg.LoadState() == sip.DialogStateEstablished {
			in.bye(c)
		}
		return false
	}
	// Confirmed by the ACK.
	c.mu.Lock()
	plan, offered, ack := c.plan, c.offered, c.ackBody
	c.mu.Unlock()
	if plan == nil {
		var err error
		if len(ack) == 0 {
			err = errors.New("ACK carried no SDP answer")
		} else {
			plan, err = offered.ParseAnswer(ack)
		}
		if err != nil {
			release()
			c.log.Info("sip answer in ACK refused; hanging up", "err", err)
			in.bye(c)
			return false
		}
		c.mu.Lock()
		c.plan = plan
		c.mu.Unlock()
	}
	stream, err := sipmedia.NewStream(c.conn, plan, sipmedia.StreamConfig{Logger: c.log.With("component", "rtp"), RTPTimeout: in.cfg.RTPTimeout})
	if err != nil {
		release()
		c.log.Error("rtp stream", "err", err)
		in.bye(c)
		return false
	}
	if a, ok := deps.agents[agent]; ok {
		d := *deps
		d.pipeline.SystemPrompt, d.pipeline.Greeting = a.SystemPrompt, a.Greeting
		deps = &d
	}
	leg := &sipLeg{Stream: stream}
	sess, err := newSession(context.Background(), c.id, caller, deps, leg, logSink{c.log, in.srv.cfg.Audit.Hash}, c.log)
	if err != nil {
		release()
		_ = stream.Close()
		c.log.Error("session setup failed", "err", err)
		in.bye(c)
		return true
	}
	c.mu.Lock()
	c.stream, c.sess = stream, sess
	c.mu.Unlock()
	c.log.Info("sip call answered", "codec", plan.Codec, "ptime", plan.PTime, "srtp", plan.SRTP != nil, "remote", plan.Remote, "agent", agent)
	ended := make(chan string, 1)
	if !in.srv.launch(sess, release, func(reason string) { ended <- reason }) {
		in.bye(c)
		return true
	}
	// A BYE that came before the session was registered (onBye stores
	// byRemote before it looks for the session) hangs it up now.
	if c.byRemote.Load() {
		sess.hangup(reasonCaller)
	}
	// DTMF digits go to the session as keypad entries.
	dtmfDone := make(chan struct{})
	go func() {
		defer close(dtmfDone)
		for {
			select {
			case d := <-stream.DTMF():
				sess.post(func() { sess.onDTMF(d.Key) })
			case <-sess.ctx.Done():
				return
			}
		}
	}()
	reason := <-ended
	<-dtmfDone
	if !c.byRemote.Load() {
		c.log.Info("sip call: gateway hangs up", "reason", reason)
		in.bye(c)
	}
	return true
}

// bye ends the dialog from our side.
func (in *sipIngress) bye(c *sipCall) {
	ctx, cancel := context.WithTimeout(context.Background(), byeTimeout)
	defer cancel()
	if err := c.dlg.Bye(ctx); err != nil {
		c.log.Info("sip BYE not confirmed", "err", err)
	}
}

func (in *sipIngress) findCall(req *sip.Request) *sipCall {
	id, err := sip.DialogIDFromRequestUAS(req)
	if err != nil {
		return nil
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.calls[id]
}

func (in *sipIngress) onAck(req *sip.Request, tx sip.ServerTransaction) {
	c := in.findCall(req)
	if c == nil {
		return // ACK for a refused INVITE, or a stray one
	}
	c.mu.Lock()
	if c.offered != nil && c.ackBody == nil && len(req.Body()) > 0 {
		c.ackBody = append([]byte(nil), req.Body()...)
	}
	c.mu.Unlock()
	if err := c.dlg.ReadAck(req, tx); err != nil {
		c.log.Debug("sip ACK", "err", err)
	}
}

func (in *sipIngress) onBye(req *sip.Request, tx sip.ServerTransaction) {
	c := in.findCall(req)
	if c == nil {
		in.respond(req, tx, 481, "Call/Transaction Does Not Exist")
		return
	}
	c.byRemote.Store(true)
	if err := c.dlg.ReadBye(req, tx); err != nil {
		c.log.Info("sip BYE", "err", err)
		in.respond(req, tx, 500, "Server Internal Error")
	}
	c.mu.Lock()
	sess := c.sess
	c.mu.Unlock()
	if sess != nil {
		sess.hangup(reasonCaller)
	}
}

// onReInvite handles an INVITE inside a dialog: hold, resume, a new
// address or codec.
func (in *sipIngress) onReInvite(req *sip.Request, tx sip.ServerTransaction) {
	c := in.findCall(req)
	if c == nil {
		in.respond(req, tx, 481, "Call/Transaction Does Not Exist")
		return
	}
	if err := c.dlg.ReadRequest(req, tx); err != nil {
		in.respond(req, tx, 500, "Server Internal Error", retryAfter(time.Second))
		return
	}
	c.mu.Lock()
	stream, cur := c.stream, c.plan
	c.mu.Unlock()
	if stream == nil {
		in.respond(req, tx, 491, "Request Pending")
		return
	}
	plan := cur
	if body := req.Body(); len(body) > 0 {
		p, err := sipmedia.Negotiate(body, sipmedia.Options{Codecs: c.trunk.Codecs, RequireSRTP: c.trunk.RequireSRTP, LocalIP: in.cfg.MediaIP})
		if err != nil {
			code := sipmedia.StatusCode(err)
			c.log.Info("sip re-INVITE refused; media unchanged", "status", code, "err", err)
			in.respond(req, tx, code, map[int]string{400: "Bad Request", 488: "Not Acceptable Here"}[code])
			return
		}
		if err := stream.Update(p); err != nil {
			c.log.Info("sip re-INVITE refused; media unchanged", "err", err)
			in.respond(req, tx, 488, "Not Acceptable Here")
			return
		}
		plan = p
		c.mu.Lock()
		c.plan = p
		c.mu.Unlock()
		c.log.Info("sip media updated", "direction", p.Direction, "codec", p.Codec, "remote", p.Remote)
	}
	res := sip.NewSDPResponseFromRequest(req, plan.Answer(c.conn.Port(), c.sessID, c.version.Add(1)))
	res.AppendHeader(in.contactHeader(req))
	if err := tx.Respond(res); err != nil {
		c.log.Info("sip re-INVITE response", "err", err)
	}
}

// contact is our Contact for a dialog on req's transport.
func (in *sipIngress) contact(req *sip.Request) sip.ContactHeader {
	network := strings.ToLower(req.Transport())
	host, port := in.cfg.MediaIP.String(), 5060
	if a, err := netip.ParseAddrPort(in.addr(network)); err == nil {
		if !a.Addr().IsUnspecified() {
			host = a.Addr().String()
		}
		port = int(a.Port())
	}
	u := sip.Uri{Scheme: "sip", Host: host, Port: port}
	if network == "tcp" || network == "tls" {
		u.UriParams = sip.NewParams()
		u.UriParams.Add("transport", network)
	}
	return sip.ContactHeader{Address: u}
}

func (in *sipIngress) contactHeader(req *sip.Request) *sip.ContactHeader {
	h := in.contact(req)
	return &h
}

// numberAgent is the agent answering number on t, and whether t may call
// it.
func (t *Trunk) numberAgent(number string) (string, bool) {
	if a, ok := t.Numbers[number]; ok {
		return a, true
	}
	a, ok := t.Numbers["*"]
	return a, ok
}

// identify is the caller of req: its subject from the From header and its
// U.S.-person attestation from the trunk or a signed assertion.
func (in *sipIngress) identify(t *Trunk, req *sip.Request, log *slog.Logger) Caller {
	subject := "sip:unknown"
	if f := req.From(); f != nil {
		subject = sanitizeSubject("sip:" + f.Address.User + "@" + f.Address.Host)
	}
	c := Caller{Tenant: t.Tenant, Subject: subject, Party: t.DefaultParty}
	switch {
	case t.USPersonAttested:
		c.USPerson, c.AttestedBy = true, "trunk:"+t.Name+":"+t.AttestedBy
	case t.VerifyAssertion != nil:
		h := req.GetHeader(t.AssertionHeader)
		if h == nil {
			break
		}
		us, by, err := t.VerifyAssertion(strings.TrimSpace(h.Value()))
		if err != nil {
			log.Warn("sip caller assertion refused; caller treated as unattested", "err", err)
			break
		}
		if us {
			c.USPerson, c.AttestedBy = true, "assertion:"+by
		}
	}
	return c
}

func sanitizeSubject(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) && r != '"' && r != '\\' {
			return r
		}
		return -1
	}, s)
	if len(s) > 128 {
		s = s[:128]
	}
	return s
}

func callIDOf(req *sip.Request) string {
	if h := req.CallID(); h != nil {
		return sanitizeSubject(h.Value())
	}
	return ""
}

func sipWarning(err error) string {
	return strings.ReplaceAll(sanitizeSubject(err.Error()), `"`, "'")
}

func randUint64() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:])
}

// --- digest authentication (RFC 3261 22, RFC 8760) -------------------------------

// authorized checks req's digest credentials for trunk t. When they are
// missing, stale or wrong it sends a 401 challenge and returns false.
func (in *sipIngress) authorized(t *Trunk, req *sip.Request, tx sip.ServerTransaction, log *slog.Logger) bool {
	stale := false
	if h := req.GetHeader("Authorization"); h != nil {
		ok, isStale, err := in.checkDigest(t, req, h.Value())
		if ok {
			return true
		}
		stale = isStale
		log.Info("sip digest authentication failed", "err", err)
	}
	nonce := in.newNonce(t, time.Now())
	hdrs := make([]sip.Header, 0, len(t.Algorithms))
	for _, alg := range t.Algorithms {
		ch := digest.Challenge{Realm: t.Realm, Nonce: nonce, Algorithm: alg, QOP: []string{"auth"}, Stale: stale}
		hdrs = append(hdrs, sip.NewHeader("WWW-Authenticate", ch.String()))
	}
	in.respond(req, tx, 401, "Unauthorized", hdrs...)
	return false
}

// checkDigest verifies an Authorization header value: our nonce, not
// expired, the trunk's user and realm, an offered algorithm, and the
// response computed with the trunk's password (compared in constant time).
func (in *sipIngress) checkDigest(t *Trunk, req *sip.Request, value string) (ok, stale bool, err error) {
	cr, err := digest.ParseCredentials(value)
	if err != nil {
		return false, false, fmt.Errorf("malformed Authorization: %w", err)
	}
	if cr.Username != t.Username || cr.Realm != t.Realm {
		return false, false, fmt.Errorf("unknown user %q or realm %q", cr.Username, cr.Realm)
	}
	alg := cr.Algorithm
	if alg == "" {
		alg = "MD5"
	}
	offered := false
	for _, a := range t.Algorithms {
		offered = offered || strings.EqualFold(a, alg)
	}
	if !offered {
		return false, false, fmt.Errorf("algorithm %q not offered", alg)
	}
	fresh, valid := in.checkNonce(t, cr.Nonce, time.Now())
	if !valid {
		return false, false, errors.New("nonce not issued by this gateway")
	}
	if !fresh {
		return false, true, errors.New("nonce expired")
	}
	ch := &digest.Challenge{Realm: t.Realm, Nonce: cr.Nonce, Algorithm: cr.Algorithm, Opaque: cr.Opaque}
	if cr.QOP != "" {
		ch.QOP = []string{cr.QOP}
	}
	want, err := digest.Digest(ch, digest.Options{Method: string(req.Method), URI: cr.URI, Username: t.Username, Password: t.Password, Cnonce: cr.Cnonce, Count: cr.Nc})
	if err != nil {
		return false, false, fmt.Errorf("digest: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(strings.ToLower(want.Response)), []byte(strings.ToLower(cr.Response))) != 1 {
		return false, false, errors.New("wrong response (password)")
	}
	return true, false, nil
}

// newNonce is a stateless nonce: issue time and trunk, signed.
func (in *sipIngress) newNonce(t *Trunk, now time.Time) string {
	var b [8 + 16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixNano()))
	copy(b[8:], in.nonceMAC(t, b[:8]))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (in *sipIngress) nonceMAC(t *Trunk, ts []byte) []byte {
	m := hmac.New(sha256.New, in.key)
	m.Write(ts)
	m.Write([]byte(t.Name))
	return m.Sum(nil)[:16]
}

func (in *sipIngress) checkNonce(t *Trunk, nonce string, now time.Time) (fresh, valid bool) {
	b, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil || len(b) != 24 || !hmac.Equal(b[8:], in.nonceMAC(t, b[:8])) {
		return false, false
	}
	issued := time.Unix(0, int64(binary.BigEndian.Uint64(b[:8])))
	return now.Sub(issued) < nonceLifetime && !issued.After(now.Add(time.Minute)), true
}

// --- the leg --------------------------------------------------------------------

// sipLeg adapts an RTP stream to the session's Leg.
type sipLeg struct {
	*sipmedia.Stream
}

func (l *sipLeg) Stats() LegStats {
	st := l.Stream.Stats()
	return LegStats{RxPackets: st.RxPackets, TxPackets: st.TxPackets, RxDropped: st.RxDropped}
}

// truncatingHandler cuts string attributes longer than max bytes, so that
// a malformed message's bytes, logged by the SIP stack, cannot flood the
// log.
type truncatingHandler struct {
	slog.Handler
	max int
}

func (h truncatingHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		if a.Value.Kind() == slog.KindString {
			if s := a.Value.String(); len(s) > h.max {
				a.Value = slog.StringValue(fmt.Sprintf("%q… (%d bytes)", s[:h.max], len(s)))
			}
		}
		out.AddAttrs(a)
		return true
	})
	return h.Handler.Handle(ctx, out)
}

func (h truncatingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return truncatingHandler{h.Handler.WithAttrs(as), h.max}
}

func (h truncatingHandler) WithGroup(name string) slog.Handler {
	return truncatingHandler{h.Handler.WithGroup(name), h.max}
}

// logSink receives a SIP call's session events (there is no signaling
// channel to send them on) and logs them at debug level. No caller or
// model text is logged: a transcript is its role, length and salted hash
// (the audit log's, so it matches the records' text_hash), a keypad
// digit only its event.
type logSink struct {
	log  *slog.Logger
	hash func(string) string
}

func (s logSink) send(v any) error {
	if !s.log.Enabled(context.Background(), slog.LevelDebug) {
		return nil
	}
	switch m := v.(type) {
	case transcriptMessage:
		s.log.Debug("call event", "event", m.Type, "role", m.Role, "final", m.Final, "text_len", len(m.Text), "text_hash", s.hash(m.Text))
	case policyMessage:
		s.log.Debug("call event", "event", m.Type, "direction", m.Direction, "action", m.Action, "categories", m.Categories, "rules", m.Rules)
	case turnMessage:
		s.log.Debug("call event", "event", m.Type, "turn", m.Turn, "outcome", m.Outcome, "timings_ms", m.Timings)
	case errorMessage:
		s.log.Debug("call event", "event", m.Type, "code", m.Code)
	case dtmfMessage:
		s.log.Debug("call event", "event", m.Type)
	default:
		s.log.Debug("call event", "event", fmt.Sprintf("%T", v))
	}
	return nil
}
