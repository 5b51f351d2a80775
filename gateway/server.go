// Package gateway is voicegw's call plane: the HTTP server, WebSocket
// signaling, the WebRTC ingress, each call's session and turn pipeline, and
// the notices a caller hears when a backend fails.
//
// A call is a session owned by one goroutine (session.run): the media leg,
// the ASR reader, the turn workers and the player post closures to it, so
// its state needs no locks. Every goroutine a session starts ends when the
// call ends, and Server.Shutdown drains calls before it stops.
package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/voicegw/voicegw/gateway/backends"
	"github.com/voicegw/voicegw/gateway/web"
	"github.com/voicegw/voicegw/telemetry"
	"github.com/voicegw/voicegw/tenants"
)

// Server is the gateway. Create it with New, run it with Serve or
// ListenAndServe, stop it with Shutdown.
type Server struct {
	shutdownOnce sync.Once
	shutdownErr  error

	cfg     Config
	log     *slog.Logger
	webrtc  *webrtcIngress
	sip     *sipIngress             // nil when SIP is off
	deps    map[string]*sessionDeps // by tenant
	http    *http.Server
	upgrade websocket.Upgrader

	// draining: no call is admitted (Shutdown began). closing: not even a
	// call admitted before is started (the drain is over).
	draining atomic.Bool
	mu       sync.Mutex
	closing  bool
	sessions map[string]*session
	// callEnded is closed, and replaced, each time a call ends.
	callEnded chan struct{}
	stopBg    context.CancelFunc
	bg        sync.WaitGroup
	// drainTimer starts the drain's deadline (time.After; tests
	// replace it).
	drainTimer func(time.Duration) <-chan time.Time
}

// New validates cfg, fills its defaults and opens the WebRTC UDP socket.
func New(cfg Config) (*Server, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, fmt.Errorf("gateway config: %w", err)
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("gateway config: %w", err)
	}
	log := cfg.Logger
	ing, err := newWebRTCIngress(cfg.ICE, log.With("component", "webrtc"))
	if err != nil {
		return nil, err
	}
	ing.onPanic = func() { cfg.Metrics.SessionPanics.WithLabelValues("webrtc").Inc() }
	s := &Server{
		cfg:        cfg,
		log:        log,
		webrtc:     ing,
		sessions:   map[string]*session{},
		deps:       map[string]*sessionDeps{},
		callEnded:  make(chan struct{}),
		drainTimer: time.After,
	}
	var prewarm []*notices
	var prewarmTexts [][]string
	for id, t := range cfg.Tenants {
		tlog := log.With("tenant", id)
		llms := &llmChain{llms: []*backends.LLM{backends.NewLLM(t.LLM)}, log: tlog, m: cfg.Metrics, hedgeAfter: t.Pipeline.llmHedgeAfter(), tenant: id}
		for _, f := range t.LLMFallback {
			llms.llms = append(llms.llms, backends.NewLLM(f))
		}
		tts := &ttsChain{ttss: []*backends.TTS{backends.NewTTS(t.TTS)}, log: tlog, m: cfg.Metrics, hedgeAfter: max(t.Pipeline.TTSHedgeAfter, 0), tenant: id}
		for _, f := range t.TTSFallback {
			tts.ttss = append(tts.ttss, backends.NewTTS(f))
		}
		n := newNotices(tts, log.With("component", "notices", "tenant", id))
		prewarm = append(prewarm, n)
		texts := []string{noticeASR, noticeLLM, noticeTTS, noticeBlock, noticeBusy}
		if t.Pipeline.Filler != "" {
			texts = append(texts, t.Pipeline.Filler)
		}
		prewarmTexts = append(prewarmTexts, texts)
		s.deps[id] = &sessionDeps{
			asr:      append([]backends.ASRConfig{t.ASR}, t.ASRFallback...),
			llm:      llms,
			tts:      tts,
			notices:  n,
			metrics:  cfg.Metrics,
			pipeline: t.Pipeline,
			tenant:   id,
			policy:   cfg.Policy,
			tokens:   cfg.LLMTokens,
			agents:   t.Agents,
		}
	}
	s.watchAudit()
	s.upgrade = websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   4096,
		WriteBufferSize:  4096,
		CheckOrigin:      s.checkOrigin,
	}
	s.http = &http.Server{
		Addr:              cfg.HTTPAddr,
		Handler:           s.Handler(),
		ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout,
		ReadTimeout:       cfg.HTTP.ReadTimeout, // hijacked WebSockets clear it
		IdleTimeout:       cfg.HTTP.IdleTimeout,
		MaxHeaderBytes:    cfg.HTTP.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if cfg.SIP.enabled() {
		if s.sip, err = newSIPIngress(s, cfg.SIP, log.With("component", "sip")); err != nil {
			_ = ing.Close()
			return nil, err
		}
	}
	bgCtx, cancel := context.WithCancel(context.Background())
	s.stopBg = cancel
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		for i, n := range prewarm {
			n.prewarm(bgCtx, prewarmTexts[i]...)
		}
	}()
	return s, nil
}

// audits are the audit logs the gateway's decisions are recorded in: the
// configured one and the default policy's, when it was given its own.
func (s *Server) audits() []*telemetry.Audit {
	out := []*telemetry.Audit{s.cfg.Audit}
	if p, ok := s.cfg.Policy.(*ClassifierPolicy); ok && p.Audit != nil && p.Audit != s.cfg.Audit {
		out = append(out, p.Audit)
	}
	return out
}

// watchAudit logs and counts every audit record that could not be
// written. From the first one the gateway is not ready and refuses new
// calls (auditErr), and the policy blocks what it cannot record.
func (s *Server) watchAudit() {
	for _, a := range s.audits() {
		a.OnFailure(func(err error) {
			s.cfg.Metrics.AuditFailures.Inc()
			s.log.Error("audit record not written: refusing new calls, blocking unrecorded decisions", "err", err)
		})
	}
}

// auditErr is the first audit write failure, or nil.
func (s *Server) auditErr() error {
	for _, a := range s.audits() {
		if err := a.Err(); err != nil {
			return err
		}
	}
	return nil
}

// MediaAddr is the UDP address of the WebRTC media mux.
func (s *Server) MediaAddr() net.Addr { return s.webrtc.Addr() }

// Handler returns the gateway's HTTP routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /", web.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", s.handleReady)
	mux.Handle("GET /metrics", s.cfg.Metrics.Handler())
	mux.HandleFunc("GET /v1/calls", s.handleCall)
	for pattern, h := range s.cfg.Routes {
		mux.Handle(pattern, h)
	}
	return web.SecureHeaders(mux)
}

// ListenAndServe listens on Config.HTTPAddr and serves until Shutdown; it
// returns http.ErrServerClosed after Shutdown.
func (s *Server) ListenAndServe() error {
	l, err := net.Listen("tcp", s.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("gateway: listen %s: %w", s.cfg.HTTPAddr, err)
	}
	return s.Serve(l)
}

// Serve serves HTTP on l until Shutdown, with at most
// Config.HTTP.MaxConnections connections open at once.
func (s *Server) Serve(l net.Listener) error {
	return s.http.Serve(s.limitConns(l))
}

// ServeTLS serves HTTPS on l with the certificate and key files until
// Shutdown, with the same connection cap.
func (s *Server) ServeTLS(l net.Listener, certFile, keyFile string) error {
	return s.http.ServeTLS(s.limitConns(l), certFile, keyFile)
}

func (s *Server) limitConns(l net.Listener) net.Listener {
	return newLimitListener(l, s.cfg.HTTP.MaxConnections, s.cfg.Metrics.HTTPConns, s.cfg.Metrics.HTTPRefused)
}

// Shutdown drains the gateway and stops it. It stops admitting calls at
// once (/readyz turns 503, signaling refuses with "draining", SIP INVITEs
// get 503 with Retry-After) and lets the calls in progress go on for
// Config.DrainTimeout or until ctx ends, whichever comes first (ending ctx
// cuts the drain short; it does not skip the rest). Then it
// hangs up the calls that remain (a hangup event with reason "shutdown"
// on signaling, a BYE on SIP), waits for them to end (bounded by
// hangupGrace), and stops the HTTP server, the SIP listeners and the
// media socket. Later calls return the first call's result.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() { s.shutdownErr = s.shutdown(ctx) })
	return s.shutdownErr
}

// hangupGrace bounds how long Shutdown waits for the calls it hung up to
// end (their BYEs confirmed), and then for the HTTP server to stop.
const hangupGrace = byeTimeout + time.Second

func (s *Server) shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining.Store(true)
	n := len(s.sessions)
	s.mu.Unlock()
	var errs []error
	if n > 0 {
		s.log.Info("draining: new calls refused, calls in progress may go on", "calls", n, "drain_timeout", s.cfg.DrainTimeout)
		deadline := s.drainTimer(s.cfg.DrainTimeout)
		if !s.waitCalls(ctx, deadline) {
			s.hangupAll()
			hctx, cancel := context.WithTimeout(context.Background(), hangupGrace)
			if !s.waitCalls(hctx, nil) {
				errs = append(errs, fmt.Errorf("gateway: calls still ending after hang-up: %w", hctx.Err()))
			}
			cancel()
		}
	}
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.stopBg()
	s.bg.Wait()
	// Bounded on its own: an ended ctx cut the drain short, it does not
	// skip the orderly stop.
	hctx, cancel := context.WithTimeout(context.Background(), hangupGrace)
	defer cancel()
	if err := s.http.Shutdown(hctx); err != nil {
		errs = append(errs, err)
	}
	if err := s.webrtc.Close(); err != nil {
		errs = append(errs, err)
	}
	if s.sip != nil {
		s.sip.close()
	}
	return errors.Join(errs...)
}

// waitCalls waits until no call is in progress (true), or until ctx ends
// or deadline fires (false).
func (s *Server) waitCalls(ctx context.Context, deadline <-chan time.Time) bool {
	for {
		s.mu.Lock()
		n, ended := len(s.sessions), s.callEnded
		s.mu.Unlock()
		if n == 0 {
			return true
		}
		select {
		case <-ended:
		case <-deadline:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// hangupAll ends the drain: no admitted call is started any more, and the
// calls in progress are hung up with reason "shutdown".
func (s *Server) hangupAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing = true
	s.log.Info("drain over: hanging up the calls in progress", "calls", len(s.sessions))
	for _, ss := range s.sessions {
		ss.hangup(reasonShutdown)
	}
}

// SIPAddr is the bound SIP listen address for network ("udp", "tcp",
// "tls"), or "" when it is not configured.
func (s *Server) SIPAddr(network string) string {
	if s.sip == nil {
		return ""
	}
	return s.sip.addr(network)
}

// ActiveCalls is the number of calls in progress.
func (s *Server) ActiveCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

func (s *Server) handleReady(w http.ResponseWriter, _ *http.Request) {
	calls := s.ActiveCalls()
	status := http.StatusOK
	auditOK := s.auditErr() == nil
	ready := !s.draining.Load() && auditOK
	if !ready {
		status = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	body := map[string]any{
		"ready":    ready,
		"draining": s.draining.Load(),
		"calls":    calls,
		"media":    s.webrtc.Addr().String(),
		"audit":    map[bool]string{true: "ok", false: "failing"}[auditOK],
	}
	if s.cfg.Status != nil {
		for k, v := range s.cfg.Status() {
			body[k] = v
		}
	}
	_ = json.NewEncoder(w).Encode(body)
}

// checkOrigin allows non-browser clients (no Origin), same-host browsers and
// the configured origins.
func (s *Server) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, o := range s.cfg.AllowedOrigins {
		if strings.EqualFold(strings.TrimRight(o, "/"), origin) {
			return true
		}
	}
	return false
}

func newCallID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "call_" + hex.EncodeToString(b[:])
}

// handleCall is the signaling WebSocket: one call per connection.
func (s *Server) handleCall(w http.ResponseWriter, r *http.Request) {
	token := tokenFrom(r)
	ws, err := s.upgrade.Upgrade(w, r, nil)
	if err != nil {
		// The upgrader has already written an HTTP error.
		s.log.Debug("signaling upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	conn := newSignalConn(ws)
	m := s.cfg.Metrics
	refuse := func(code, msg string, closeCode int) {
		m.SignalingErrs.WithLabelValues(code).Inc()
		_ = conn.sendError(code, msg)
		conn.close(closeCode, code)
	}
	caller, err := s.cfg.Auth.Authenticate(r.Context(), token)
	if err == nil && s.deps[caller.Tenant] == nil {
		err = fmt.Errorf("token names tenant %q, which this gateway does not serve", caller.Tenant)
	}
	if err != nil {
		s.log.Info("signaling refused", "remote", r.RemoteAddr, "err", err)
		if errors.Is(err, tenants.ErrUSPersonRequired) {
			refuse(codeUSPersonRequired, "this line accepts only callers attested as U.S. persons", websocket.ClosePolicyViolation)
			return
		}
		refuse(codeUnauthorized, "missing or invalid call token", websocket.ClosePolicyViolation)
		return
	}
	if s.draining.Load() {
		refuse(codeDraining, errDraining.Error(), websocket.CloseTryAgainLater)
		return
	}
	log := s.log.With("tenant", caller.Tenant, "subject", caller.Subject)
	c := &callConn{srv: s, conn: conn, caller: caller, log: log, remote: r.RemoteAddr}
	c.serve()
}

// callConn is one signaling connection and the call it carries.
type callConn struct {
	srv    *Server
	conn   *signalConn
	caller Caller
	log    *slog.Logger
	remote string

	sess     *session
	sessDone chan string
}

// serve reads client messages until the connection or the call ends.
func (c *callConn) serve() {
	ws := c.conn.ws
	_ = ws.SetReadDeadline(time.Now().Add(pongWait))
	ws.SetPongHandler(func(string) error { return ws.SetReadDeadline(time.Now().Add(pongWait)) })

	stop := make(chan struct{})
	var pinger sync.WaitGroup
	pinger.Add(1)
	go func() {
		defer pinger.Done()
		t := time.NewTicker(pingInterval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if err := c.conn.ping(); err != nil {
					return
				}
			}
		}
	}()

	msgs := make(chan clientMessage)
	readErr := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				c.srv.cfg.Metrics.SessionPanics.WithLabelValues("webrtc").Inc()
				c.log.Error("signaling reader panicked; hanging up", panicAttrs("signaling", r)...)
				readErr <- errSignalingPanic
			}
		}()
		for {
			m, err := c.conn.readMessage()
			var bad *badMessageError
			switch {
			case errors.Is(err, errMessageTooLarge):
				c.sendError(codeBadRequest, fmt.Sprintf("message larger than %d bytes", softMessageLimit))
				continue
			case errors.As(err, &bad):
				c.sendError(codeBadRequest, bad.msg)
				continue
			case err != nil:
				readErr <- err
				return
			}
			_ = ws.SetReadDeadline(time.Now().Add(pongWait))
			select {
			case msgs <- m:
			case <-stop:
				return
			}
		}
	}()

	// A socket without a call must keep offering: one that has sent no
	// offer for OfferTimeout is closed, so idle sockets cannot pile up.
	offerWait := c.srv.cfg.HTTP.OfferTimeout
	offerTimer := time.NewTimer(offerWait)
	defer offerTimer.Stop()
	reason := ""
	closeCode := websocket.CloseNormalClosure
loop:
	for {
		select {
		case m := <-msgs:
			if m.Type == "offer" {
				offerTimer.Reset(offerWait)
			}
			if c.handle(m) {
				reason = reasonCaller
				break loop
			}
		case <-offerTimer.C:
			if c.sess != nil {
				continue
			}
			c.log.Info("signaling closed: no offer", "remote", c.remote, "within", offerWait)
			c.sendError(codeOfferTimeout, fmt.Sprintf("no offer within %s; closing", offerWait))
			closeCode = websocket.ClosePolicyViolation
			break loop
		case err := <-readErr:
			if c.sess == nil {
				c.log.Debug("signaling closed before a call", "err", err)
				break loop
			}
			c.log.Info("signaling connection lost; hanging up", "err", err)
			reason = reasonSignaling
			if errors.Is(err, websocket.ErrReadLimit) {
				closeCode = websocket.CloseMessageTooBig
			}
			break loop
		case r := <-c.sessDone:
			c.sessDone = nil
			_ = c.conn.send(hangupMessage{Type: "hangup", Reason: r})
			break loop
		}
	}
	if c.sess != nil && c.sessDone != nil {
		c.sess.hangup(reason)
		r := <-c.sessDone
		_ = c.conn.send(hangupMessage{Type: "hangup", Reason: r})
	}
	close(stop)
	c.conn.close(closeCode, "")
	pinger.Wait()
}

func (c *callConn) sendError(code, msg string) {
	c.srv.cfg.Metrics.SignalingErrs.WithLabelValues(code).Inc()
	_ = c.conn.sendError(code, msg)
}

// handle acts on one client message; it returns true when the caller hung up.
func (c *callConn) handle(m clientMessage) bool {
	switch m.Type {
	case "offer":
		if c.sess != nil {
			c.sendError(codeBadRequest, errCallInProgress.Error())
			return false
		}
		if strings.TrimSpace(m.SDP) == "" {
			c.sendError(codeBadRequest, `offer has no "sdp"`)
			return false
		}
		c.startCall(m.SDP)
		return false
	case "hangup":
		if c.sess == nil {
			c.sendError(codeBadRequest, errNoCall.Error())
			return false
		}
		return true
	default:
		c.sendError(codeBadRequest, fmt.Sprintf("unknown message type %q (expected offer or hangup)", m.Type))
		return false
	}
}

func (c *callConn) startCall(offer string) {
	s := c.srv
	release, ref := s.admitCall(c.caller, c.log)
	if ref != nil {
		_ = c.conn.send(errorMessage{Type: "error", Code: ref.code, Message: ref.msg, RetryAfterMs: ref.retryAfter.Milliseconds()})
		return
	}
	id := newCallID()
	log := c.log.With("call", id)
	leg, answer, err := s.webrtc.answer(offer, log)
	if err != nil {
		release()
		log.Info("offer refused", "err", err)
		code := codeBadRequest
		if !errors.Is(err, errBadOffer) && !errors.Is(err, errNoAudioCodec) && !errors.Is(err, errNoAudioMedia) {
			code = codeInternal
		}
		c.sendError(code, err.Error())
		return
	}
	sess, err := newSession(context.Background(), id, c.caller, s.deps[c.caller.Tenant], leg, c.conn, log)
	if err != nil {
		release()
		_ = leg.Close()
		log.Error("session setup failed", "err", err)
		c.sendError(codeInternal, "could not start the call")
		return
	}
	if err := c.conn.send(answerMessage{Type: "answer", SDP: answer, CallID: id}); err != nil {
		release()
		sess.discard()
		return
	}
	done := make(chan string, 1)
	if !s.launch(sess, release, func(reason string) { done <- reason }) {
		c.sendError(codeDraining, errDraining.Error())
		return
	}
	c.sess = sess
	c.sessDone = done
}

// drainRetryAfter is the Retry-After of a call refused while draining: by
// then the caller is better served by another replica.
const drainRetryAfter = 5 * time.Second

// auditRetryAfter is the Retry-After of a call refused because the audit
// log is failing: long, since only an operator can clear it.
const auditRetryAfter = 60 * time.Second

// refusal is why a call was not admitted, as a signaling error (the SIP
// ingress maps it to a status code).
type refusal struct {
	code       string
	msg        string
	retryAfter time.Duration
}

// admitCall admits a call for caller against the gateway's call cap and
// the tenant's limits. On success release must be called exactly once when
// the call ends (or is not set up after all).
func (s *Server) admitCall(caller Caller, log *slog.Logger) (release func(), _ *refusal) {
	if s.draining.Load() {
		s.cfg.Metrics.SignalingErrs.WithLabelValues(codeDraining).Inc()
		return nil, &refusal{code: codeDraining, msg: errDraining.Error(), retryAfter: drainRetryAfter}
	}
	if s.auditErr() != nil {
		s.cfg.Metrics.SignalingErrs.WithLabelValues(codeUnavailable).Inc()
		log.Warn("call refused: the audit log is failing")
		return nil, &refusal{code: codeUnavailable, msg: errAuditFailing.Error(), retryAfter: auditRetryAfter}
	}
	s.mu.Lock()
	full := len(s.sessions) >= s.cfg.MaxCalls
	s.mu.Unlock()
	if full {
		s.cfg.Metrics.SignalingErrs.WithLabelValues(codeRateLimited).Inc()
		return nil, &refusal{code: codeRateLimited, msg: "gateway is at its call limit", retryAfter: time.Second}
	}
	if s.cfg.Admission == nil {
		return func() {}, nil
	}
	lease, err := s.cfg.Admission.AdmitCall(context.Background(), caller.Tenant)
	var le *tenants.LimitError
	switch {
	case errors.As(err, &le):
		log.Info("call refused by tenant limits", "reason", le.Reason, "retry_after", le.RetryAfter)
		s.cfg.Metrics.LimitRefusals.WithLabelValues(caller.Tenant, le.Reason).Inc()
		s.cfg.Metrics.SignalingErrs.WithLabelValues(codeRateLimited).Inc()
		return nil, &refusal{code: codeRateLimited, msg: "over the tenant's " + le.Reason + " limit", retryAfter: le.RetryAfter}
	case err != nil:
		log.Error("admission failed", "err", err)
		return nil, &refusal{code: codeUnavailable, msg: "admission is unavailable; try again", retryAfter: time.Second}
	}
	var once sync.Once
	return func() { once.Do(lease.Release) }, nil
}

// launch registers sess and runs it on its own goroutine; when it has
// ended, release is called and then done with the hang-up reason. A call
// admitted before the drain began still starts during it; launch returns
// false (and discards the session, releasing it) once the drain is over.
func (s *Server) launch(sess *session, release func(), done func(reason string)) bool {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		release()
		sess.discard()
		return false
	}
	s.sessions[sess.id] = sess
	s.mu.Unlock()
	go func() {
		reason := runSession(sess)
		release()
		s.mu.Lock()
		delete(s.sessions, sess.id)
		close(s.callEnded)
		s.callEnded = make(chan struct{})
		s.mu.Unlock()
		done(reason)
	}()
	return true
}

// runSession runs sess and returns its hang-up reason. The session
// recovers its own goroutines; a panic in its teardown still ends only
// that call: it is counted and logged, and the call's media is closed.
func runSession(sess *session) (reason string) {
	defer func() {
		if r := recover(); r != nil {
			sess.deps.metrics.SessionPanics.WithLabelValues(sess.leg.Ingress()).Inc()
			sess.log.Error("call teardown panicked", panicAttrs("teardown", r)...)
			sess.cancel()
			_ = sess.leg.Close()
			reason = reasonError
		}
	}()
	return sess.run()
}
