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

	draining atomic.Bool
	mu       sync.Mutex
	sessions map[string]*session
	calls    sync.WaitGroup
	stopBg   context.CancelFunc
	bg       sync.WaitGroup
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
	s := &Server{
		cfg:      cfg,
		log:      log,
		webrtc:   ing,
		sessions: map[string]*session{},
		deps:     map[string]*sessionDeps{},
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

// Shutdown stops admitting calls, hangs up the calls in progress (each
// caller gets a hangup event with reason "shutdown"), waits for them to end
// within ctx or Config.DrainTimeout, then stops the HTTP server, the SIP
// listeners (after the SIP calls' BYEs) and the media socket. Later calls
// return the first call's result.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() { s.shutdownErr = s.shutdown(ctx) })
	return s.shutdownErr
}

func (s *Server) shutdown(ctx context.Context) error {
	// Draining is set under the lock that guards admitting a call, so no
	// call is added to s.calls once Wait may have started.
	s.mu.Lock()
	s.draining.Store(true)
	for _, ss := range s.sessions {
		ss.hangup(reasonShutdown)
	}
	s.mu.Unlock()
	drained := make(chan struct{})
	go func() {
		s.calls.Wait()
		close(drained)
	}()
	dctx, cancel := context.WithTimeout(ctx, s.cfg.DrainTimeout)
	defer cancel()
	var errs []error
	select {
	case <-drained:
	case <-dctx.Done():
		errs = append(errs, fmt.Errorf("gateway: calls still draining: %w", dctx.Err()))
	}
	s.stopBg()
	s.bg.Wait()
	if err := s.http.Shutdown(dctx); err != nil {
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
	ready := !s.draining.Load()
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
		refuse(codeUnavailable, "gateway is shutting down; try again shortly", websocket.CloseTryAgainLater)
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
		c.sendError(codeUnavailable, errDraining.Error())
		return
	}
	c.sess = sess
	c.sessDone = done
}

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
		return nil, &refusal{code: codeUnavailable, msg: errDraining.Error(), retryAfter: 5 * time.Second}
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
// ended, release is called and then done with the hang-up reason. It
// returns false (and discards the session, releasing it) when the gateway
// began draining while the call was being set up.
func (s *Server) launch(sess *session, release func(), done func(reason string)) bool {
	s.mu.Lock()
	if s.draining.Load() {
		s.mu.Unlock()
		release()
		sess.discard()
		return false
	}
	s.sessions[sess.id] = sess
	s.calls.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.calls.Done()
		reason := sess.run()
		release()
		s.mu.Lock()
		delete(s.sessions, sess.id)
		s.mu.Unlock()
		done(reason)
	}()
	return true
}
