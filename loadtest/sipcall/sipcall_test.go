package sipcall

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voicegw/voicegw/gateway"
	"github.com/voicegw/voicegw/gateway/backends"
	"github.com/voicegw/voicegw/loadtest"
	"github.com/voicegw/voicegw/loadtest/sim"
	"github.com/voicegw/voicegw/media"
	"github.com/voicegw/voicegw/media/mediatest"
	"github.com/voicegw/voicegw/telemetry"
	"github.com/voicegw/voicegw/tenants"
)

// stack is a real gateway with its SIP ingress on loopback and simulated
// backends, in process.
type stack struct {
	srv    *gateway.Server
	sipUDP string
	sipTCP string
}

type stackOpts struct {
	trunk     gateway.Trunk // default: loopbackTrunk()
	pipeline  gateway.PipelineConfig
	admission gateway.CallAdmitter
}

// loopbackTrunk accepts calls from 127.0.0.1 to any number.
func loopbackTrunk() gateway.Trunk {
	return gateway.Trunk{
		Name: "t", Tenant: "dev",
		Sources: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		Numbers: map[string]string{"*": ""},
	}
}

func startStack(t *testing.T, o stackOpts) *stack {
	t.Helper()
	if o.trunk.Name == "" {
		o.trunk = loopbackTrunk()
	}
	log := testLogger(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	_, simURL, err := sim.Listen(ctx, "127.0.0.1:0", sim.Config{
		ASRScript: []string{"What are your opening hours?"},
		Logger:    log.With("component", "sim"),
	})
	if err != nil {
		t.Fatalf("sim backends: %v", err)
	}
	srv, err := gateway.New(gateway.Config{
		SIP: gateway.SIPConfig{
			UDPAddr: "127.0.0.1:0", TCPAddr: "127.0.0.1:0",
			RTPPortMin: 46000, RTPPortMax: 47999,
			Trunks: []gateway.Trunk{o.trunk},
		},
		Admission: o.admission,
		ICE:       gateway.ICEConfig{UDPAddr: "127.0.0.1:0", LoopbackOnly: true},
		ASR:       backends.ASRConfig{Endpoint: backends.Endpoint{Name: "sim-asr", URL: simURL, Timeout: 2 * time.Second}},
		LLM:       backends.LLMConfig{Endpoint: backends.Endpoint{Name: "sim-llm", URL: simURL, Timeout: 2 * time.Second}},
		TTS:       backends.TTSConfig{Endpoint: backends.Endpoint{Name: "sim-tts", URL: simURL, Timeout: 2 * time.Second}},
		Pipeline:  o.pipeline,
		Auth:      gateway.StaticTokens{},
		Logger:    log,
		Metrics:   telemetry.NewMetrics(),
	})
	if err != nil {
		t.Fatalf("gateway: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	}()
	t.Cleanup(func() {
		sctx, c := context.WithTimeout(context.Background(), 10*time.Second)
		defer c()
		if err := srv.Shutdown(sctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		<-served
	})
	return &stack{srv: srv, sipUDP: srv.SIPAddr("udp"), sipTCP: srv.SIPAddr("tcp")}
}

// testLogger logs at warning level and above into the test's log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func dial(t *testing.T, cfg SIPConfig) *SIPCaller {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := DialSIP(ctx, cfg)
	if err != nil {
		t.Fatalf("DialSIP: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// refusal dials cfg and returns the *CallError it must fail with.
func refusal(t *testing.T, cfg SIPConfig) *CallError {
	t.Helper()
	cfg.Logger = testLogger(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := DialSIP(ctx, cfg)
	if err == nil {
		c.Close()
		t.Fatal("call admitted, want a refusal")
	}
	var ce *CallError
	if !errors.As(err, &ce) {
		t.Fatalf("DialSIP: %v, want a *CallError", err)
	}
	return ce
}

func nonSilentAfter(frames []loadtest.RxFrame, after time.Time) int {
	n := 0
	for _, f := range frames {
		if !f.Silent && f.At.After(after) {
			n++
		}
	}
	return n
}

// TestCall: over UDP and TCP a caller says a question; the gateway runs
// it through ASR, LLM and TTS and the caller hears the agent's reply after
// its speech ended; our BYE ends the call at the gateway.
func TestCall(t *testing.T) {
	speech := mediatest.Speech(t, "Hello, what are your opening hours?", media.PipelineRate)
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			st := startStack(t, stackOpts{})
			target := st.sipUDP
			if transport == "tcp" {
				target = st.sipTCP
			}
			c := dial(t, SIPConfig{Target: target, Transport: transport})
			if c.CallID == "" {
				t.Error("no Call-ID")
			}
			waitFor(t, 5*time.Second, "the gateway to count the call", func() bool { return st.srv.ActiveCalls() == 1 })
			var heard sync.WaitGroup
			heard.Add(1)
			var once sync.Once
			var spokeAt time.Time
			var mu sync.Mutex
			c.OnAudio(func(f loadtest.RxFrame) {
				mu.Lock()
				defer mu.Unlock()
				if !spokeAt.IsZero() && !f.Silent && f.At.After(spokeAt) {
					once.Do(heard.Done)
				}
			})
			var end time.Time
			select {
			case end = <-c.Say(speech):
			case <-time.After(15 * time.Second):
				t.Fatal("speech not sent")
			}
			mu.Lock()
			spokeAt = end
			mu.Unlock()
			if d := time.Duration(len(speech)) * time.Second / media.PipelineRate; d < time.Second {
				t.Fatalf("speech is %s long", d)
			}
			replied := make(chan struct{})
			go func() { heard.Wait(); close(replied) }()
			select {
			case <-replied:
			case <-time.After(15 * time.Second):
				t.Fatalf("no agent audio after the speech ended; received %d frames", len(c.Received()))
			}
			waitFor(t, 10*time.Second, "25 frames of the agent's reply", func() bool { return nonSilentAfter(c.Received(), end) >= 25 })
			if err := c.Hangup(); err != nil {
				t.Fatalf("Hangup: %v", err)
			}
			select {
			case <-c.Done():
			default:
				t.Error("Done not closed after Hangup")
			}
			if r := c.HangupReason(); r != ReasonCaller {
				t.Errorf("HangupReason = %q, want %q", r, ReasonCaller)
			}
			waitFor(t, 5*time.Second, "the gateway to end the call", func() bool { return st.srv.ActiveCalls() == 0 })
			s := c.Stats()
			if s.RxPackets == 0 || s.TxPackets == 0 {
				t.Errorf("stats %+v: want packets both ways", s)
			}
			if sent := c.FramesSent(); sent < len(speech)/media.SamplesPerFrame(media.PipelineRate) {
				t.Errorf("%d frames sent, fewer than the speech", sent)
			}
			if err := c.Hangup(); err != nil {
				t.Errorf("second Hangup: %v", err)
			}
		})
	}
}

// TestDigest: a trunk with credentials challenges the INVITE (SHA-256
// first, then MD5); the caller answers with the right password, and a
// wrong one is refused.
func TestDigest(t *testing.T) {
	tr := loopbackTrunk()
	tr.Username, tr.Password = "acme-cc", "s3cret-trunk-pass"
	st := startStack(t, stackOpts{trunk: tr})
	for _, transport := range []string{"udp", "tcp"} {
		target := map[string]string{"udp": st.sipUDP, "tcp": st.sipTCP}[transport]
		c := dial(t, SIPConfig{Target: target, Transport: transport, Username: tr.Username, Password: tr.Password})
		waitFor(t, 5*time.Second, "the call at the gateway", func() bool { return st.srv.ActiveCalls() == 1 })
		if err := c.Hangup(); err != nil {
			t.Fatalf("%s: Hangup: %v", transport, err)
		}
		waitFor(t, 5*time.Second, "the call to end", func() bool { return st.srv.ActiveCalls() == 0 })
	}
	ce := refusal(t, SIPConfig{Target: st.sipUDP, Username: tr.Username, Password: "wrong"})
	if ce.Status != 401 && ce.Status != 403 {
		t.Errorf("wrong password: %v, want 401 or 403", ce)
	}
	ce = refusal(t, SIPConfig{Target: st.sipUDP})
	if ce.Status != 401 {
		t.Errorf("no credentials: %v, want 401", ce)
	}
}

// TestMD5AndHeaders: a trunk that offers only MD5 digest admits the
// caller, and the INVITE carries the configured extra headers (here the
// signed caller assertion the trunk verifies).
func TestMD5AndHeaders(t *testing.T) {
	tr := loopbackTrunk()
	tr.Username, tr.Password, tr.Algorithms = "acme-cc", "md5-pass", []string{"MD5"}
	got := make(chan string, 1)
	tr.VerifyAssertion = func(token string) (bool, string, error) {
		got <- token
		return true, "test", nil
	}
	st := startStack(t, stackOpts{trunk: tr})
	c := dial(t, SIPConfig{Target: st.sipUDP, Username: tr.Username, Password: tr.Password,
		Headers: map[string]string{"X-Voicegw-Caller-Assertion": "the-token", "X-Other": "1"}})
	select {
	case tok := <-got:
		if tok != "the-token" {
			t.Errorf("assertion %q, want the-token", tok)
		}
	case <-time.After(5 * time.Second):
		t.Error("the gateway saw no assertion header")
	}
	waitFor(t, 5*time.Second, "the call at the gateway", func() bool { return st.srv.ActiveCalls() == 1 })
	if err := c.Hangup(); err != nil {
		t.Fatalf("Hangup: %v", err)
	}
}

// TestConfig: bad configurations are refused before anything is sent.
func TestConfig(t *testing.T) {
	for _, cfg := range []SIPConfig{
		{},
		{Target: "127.0.0.1"},
		{Target: "127.0.0.1:5060", Transport: "tls"},
		{Target: "127.0.0.1:5060", Codec: "G729"},
		{Target: "127.0.0.1:x"},
	} {
		if c, err := DialSIP(context.Background(), cfg); err == nil {
			c.Close()
			t.Errorf("%+v: accepted", cfg)
		}
	}
	if got := sharedEndpoints(); got != 0 {
		t.Errorf("%d shared endpoints after refused configurations", got)
	}
}

// TestRefusals: a number the trunk may not call is 404; a call over the
// tenant's concurrency limit is 503 with Retry-After.
func TestRefusals(t *testing.T) {
	cfg, err := tenants.Parse("limits.yaml", []byte(`
backends:
  - {name: a, role: asr, url: "http://127.0.0.1:1", region: r, impact_level: IL5}
  - {name: l, role: llm, url: "http://127.0.0.1:1", region: r, impact_level: IL5}
  - {name: s, role: tts, url: "http://127.0.0.1:1", region: r, impact_level: IL5}
tenants:
  - {id: dev, impact_level: IL5, regions: [r], asr: [a], llm: [l], tts: [s], limits: {max_concurrent_calls: 1}}
`))
	if err != nil {
		t.Fatal(err)
	}
	tr := loopbackTrunk()
	tr.Numbers = map[string]string{"1": ""}
	st := startStack(t, stackOpts{trunk: tr, admission: tenants.NewLimiter(cfg)})

	if ce := refusal(t, SIPConfig{Target: st.sipUDP, Number: "2"}); ce.Status != 404 {
		t.Errorf("number not allowed: %v, want 404", ce)
	}
	c := dial(t, SIPConfig{Target: st.sipUDP, Number: "1"})
	waitFor(t, 5*time.Second, "the first call at the gateway", func() bool { return st.srv.ActiveCalls() == 1 })
	ce := refusal(t, SIPConfig{Target: st.sipTCP, Transport: "tcp", Number: "1"})
	if ce.Status != 503 || ce.RetryAfter <= 0 {
		t.Errorf("over the concurrency limit: %+v, want 503 with Retry-After", ce)
	}
	if !strings.Contains(ce.Error(), "503") {
		t.Errorf("error %q does not name the status", ce)
	}
	c.Close()
}

// TestGatewayHangsUp: at the maximum call duration the gateway sends BYE;
// the caller answers it and its call ends with reason remote_bye.
func TestGatewayHangsUp(t *testing.T) {
	st := startStack(t, stackOpts{pipeline: gateway.PipelineConfig{MaxCallDuration: 2 * time.Second}})
	c := dial(t, SIPConfig{Target: st.sipUDP})
	select {
	case <-c.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("the call did not end at the gateway's maximum duration")
	}
	if r := c.HangupReason(); r != ReasonRemoteBye {
		t.Errorf("HangupReason = %q, want %q", r, ReasonRemoteBye)
	}
	if err := c.Hangup(); err != nil {
		t.Errorf("Hangup after the remote BYE: %v", err)
	}
	waitFor(t, 5*time.Second, "the gateway to end the call", func() bool { return st.srv.ActiveCalls() == 0 })
}

// TestManyCalls: 20 calls placed at once over UDP share one SIP socket
// (and 5 over TCP one connection), with PCMU, PCMA and Opus; all connect,
// have RTP both ways and hang up cleanly, and once closed they leave no
// goroutine and no shared user agent behind.
func TestManyCalls(t *testing.T) {
	const n, overTCP = 25, 5 // 20 calls over UDP, 5 over TCP
	// Every goroutine started from here on has ended once the gateway
	// has shut down (this cleanup runs after the stack's).
	base := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		for runtime.NumGoroutine() > base {
			if time.Now().After(deadline) {
				t.Errorf("%d goroutines, %d before the test:\n%s", runtime.NumGoroutine(), base, goroutines())
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	st := startStack(t, stackOpts{})
	codecs := []string{"PCMU", "PCMA", "opus"}

	calls := make([]*SIPCaller, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			cfg := SIPConfig{Target: st.sipUDP, From: fmt.Sprintf("caller%d", i), Codec: codecs[i%len(codecs)], Logger: testLogger(t)}
			if i < overTCP {
				cfg.Target, cfg.Transport = st.sipTCP, "tcp"
			}
			calls[i], errs[i] = DialSIP(ctx, cfg)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("call %d: %v", i, err)
		}
	}
	if t.Failed() {
		for _, c := range calls {
			if c != nil {
				c.Close()
			}
		}
		t.FailNow()
	}
	if got := sharedEndpoints(); got != 2 {
		t.Errorf("%d shared endpoints, want 2 (UDP and TCP)", got)
	}
	// A BYE that reaches the gateway before it has set the call up is
	// lost there (the call then lasts until its RTP timeout): wait.
	waitFor(t, 10*time.Second, "every call at the gateway", func() bool { return st.srv.ActiveCalls() == n })
	waitFor(t, 5*time.Second, "RTP both ways on every call", func() bool {
		for _, c := range calls {
			if s := c.Stats(); s.RxPackets == 0 || s.TxPackets == 0 {
				return false
			}
		}
		return true
	})
	for i, c := range calls {
		wg.Go(func() {
			if err := c.Hangup(); err != nil {
				t.Errorf("call %d: Hangup: %v", i, err)
			}
			c.Close()
			c.Close() // idempotent
		})
	}
	wg.Wait()
	for i, c := range calls {
		if r := c.HangupReason(); r != ReasonCaller {
			t.Errorf("call %d: HangupReason = %q", i, r)
		}
	}
	waitFor(t, 10*time.Second, "the gateway to end every call", func() bool { return st.srv.ActiveCalls() == 0 })
	if got := sharedEndpoints(); got != 0 {
		t.Errorf("%d shared endpoints left after every call closed", got)
	}
	// The callers' own goroutines are gone now; the rest (RTP streams,
	// sipgo's readers) is checked against the baseline at cleanup.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var left []string
		for _, g := range strings.Split(goroutines(), "\n\n") {
			if strings.Contains(g, "sipcall.(*SIPCaller)") || strings.Contains(g, "sipcall.newEndpoint") {
				left = append(left, g)
			}
		}
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d caller goroutines left:\n%s", len(left), strings.Join(left, "\n\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func sharedEndpoints() int {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	return len(shared.endpoints)
}

func goroutines() string {
	var b bytes.Buffer
	_ = pprof.Lookup("goroutine").WriteTo(&b, 2)
	return b.String()
}
