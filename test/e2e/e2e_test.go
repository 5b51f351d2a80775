// Package e2e runs whole calls against a real gateway on loopback: a pion
// caller in Go and the real softphone page in headless Chromium, with the
// simulated ASR/LLM/TTS backends speaking the open wire protocols. Run it
// inside a loopback-only network namespace (scripts/test.sh does).
package e2e

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/voicegw/voicegw/gateway"
	"github.com/voicegw/voicegw/gateway/backends"
	"github.com/voicegw/voicegw/loadtest/sim"
	"github.com/voicegw/voicegw/media"
	"github.com/voicegw/voicegw/telemetry"
)

const (
	testToken     = "e2e-test-token"      // caller status unknown
	usPersonToken = "e2e-us-person-token" // caller attested as a U.S. person
)

// stack is a gateway with in-process simulated backends.
type stack struct {
	srv     *gateway.Server
	sim     *sim.Server
	url     string
	metrics *telemetry.Metrics
	sipUDP  string // SIP listen addresses when stackOpts.trunks is set
	sipTCP  string
}

type stackOpts struct {
	sim      sim.Config
	pipeline gateway.PipelineConfig
	llmURL   string // override the LLM backend URL (bad-backend tests)
	ttsURL   string
	asrURL   string
	policy   gateway.Policy
	auditBuf syncBuffer
	// llmTokens meters the dev tenant's LLM tokens (nil: unmetered).
	llmTokens gateway.LLMTokenLimiter
	// trunks, when set, open the SIP ingress on loopback UDP and TCP.
	trunks []gateway.Trunk
	// admission admits calls against the dev tenant's limits.
	admission gateway.CallAdmitter
	// llmFallback and ttsFallback, when set, are a second compliant LLM
	// or TTS backend for the dev tenant (hedging, failover).
	llmFallback string
	ttsFallback string
}

// syncBuffer collects audit records from the gateway.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startStack(t *testing.T, o *stackOpts) *stack {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	o.sim.Logger = log.With("component", "sim")
	simSrv, simURL, err := sim.Listen(ctx, "127.0.0.1:0", o.sim)
	if err != nil {
		t.Fatalf("sim backends: %v", err)
	}
	pick := func(override string) string {
		if override != "" {
			return override
		}
		return simURL
	}
	m := telemetry.NewMetrics()
	var sipCfg gateway.SIPConfig
	if len(o.trunks) > 0 {
		sipCfg = gateway.SIPConfig{UDPAddr: "127.0.0.1:0", TCPAddr: "127.0.0.1:0", RTPPortMin: 40000, RTPPortMax: 44999, Trunks: o.trunks}
	}
	var tenantSetups map[string]gateway.TenantSetup
	if o.llmFallback != "" || o.ttsFallback != "" {
		ts := gateway.TenantSetup{
			ASR:      backends.ASRConfig{Endpoint: backends.Endpoint{Name: "sim-asr", URL: pick(o.asrURL), Timeout: 2 * time.Second}},
			LLM:      backends.LLMConfig{Endpoint: backends.Endpoint{Name: "sim-llm", URL: pick(o.llmURL), Timeout: 40 * time.Second}},
			TTS:      backends.TTSConfig{Endpoint: backends.Endpoint{Name: "sim-tts", URL: pick(o.ttsURL), Timeout: 40 * time.Second}},
			Pipeline: o.pipeline,
		}
		if o.llmFallback != "" {
			ts.LLMFallback = []backends.LLMConfig{{Endpoint: backends.Endpoint{Name: "sim-llm-2", URL: o.llmFallback, Timeout: 2 * time.Second}}}
		}
		if o.ttsFallback != "" {
			ts.TTSFallback = []backends.TTSConfig{{Endpoint: backends.Endpoint{Name: "sim-tts-2", URL: o.ttsFallback, Timeout: 2 * time.Second}}}
		}
		tenantSetups = map[string]gateway.TenantSetup{"dev": ts}
	}
	srv, err := gateway.New(gateway.Config{
		Tenants:   tenantSetups,
		SIP:       sipCfg,
		Admission: o.admission,
		ICE:       gateway.ICEConfig{UDPAddr: "127.0.0.1:0", LoopbackOnly: true},
		ASR:       backends.ASRConfig{Endpoint: backends.Endpoint{Name: "sim-asr", URL: pick(o.asrURL), Timeout: 2 * time.Second}},
		LLM:       backends.LLMConfig{Endpoint: backends.Endpoint{Name: "sim-llm", URL: pick(o.llmURL), Timeout: 2 * time.Second}},
		TTS:       backends.TTSConfig{Endpoint: backends.Endpoint{Name: "sim-tts", URL: pick(o.ttsURL), Timeout: 2 * time.Second}},
		Pipeline:  o.pipeline,
		Auth: gateway.StaticTokens{
			testToken:     {Tenant: "dev", Subject: "e2e"},
			usPersonToken: {Tenant: "dev", Subject: "e2e-us", USPerson: true, AttestedBy: "e2e test"},
		},
		Audit:     telemetry.NewAudit(&o.auditBuf, []byte("e2e-salt")),
		Policy:    o.policy,
		LLMTokens: o.llmTokens,
		Logger:    log,
		Metrics:   m,
	})
	if err != nil {
		t.Fatalf("gateway: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
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
	})
	return &stack{srv: srv, sim: simSrv, url: "http://" + l.Addr().String(), metrics: m, sipUDP: srv.SIPAddr("udp"), sipTCP: srv.SIPAddr("tcp")}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// requireTool fails under CI (which installs every tool) and skips elsewhere.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is required under CI but not installed: %v", name, err)
		}
		t.Skipf("%s not installed", name)
	}
	return p
}

// speech renders text with espeak-ng, converts it with sox to mono 16-bit
// at rate, and pads it with lead and trail of silence.
func speech(t *testing.T, text string, rate int, lead, trail time.Duration) []int16 {
	t.Helper()
	espeak := requireTool(t, "espeak-ng")
	sox := requireTool(t, "sox")
	dir := t.TempDir()
	raw := filepath.Join(dir, "espeak.wav")
	wav := filepath.Join(dir, "speech.wav")
	if out, err := exec.Command(espeak, "-s", "150", "-w", raw, text).CombinedOutput(); err != nil {
		t.Fatalf("espeak-ng: %v: %s", err, out)
	}
	if out, err := exec.Command(sox, raw, "-r", strconv.Itoa(rate), "-c", "1", "-b", "16", wav, "norm", "-3").CombinedOutput(); err != nil {
		t.Fatalf("sox: %v: %s", err, out)
	}
	f, err := os.Open(wav)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a, err := media.ReadWAV(f)
	if err != nil {
		t.Fatalf("read speech wav: %v", err)
	}
	if a.Rate != rate {
		t.Fatalf("speech at %d Hz, want %d", a.Rate, rate)
	}
	out := make([]int16, int(lead.Seconds()*float64(rate)))
	out = append(out, a.Samples...)
	out = append(out, make([]int16, int(trail.Seconds()*float64(rate)))...)
	return out
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", d, what)
}
