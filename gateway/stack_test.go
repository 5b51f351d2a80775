package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voicegw/voicegw/gateway/backends"
	"github.com/voicegw/voicegw/loadtest/sim"
	"github.com/voicegw/voicegw/telemetry"
)

// testStack is a real gateway on loopback (HTTP, WebRTC media, SIP over
// UDP) with simulated backends in process.
type testStack struct {
	srv  *Server
	base string // http://127.0.0.1:port
	sim  *sim.Server
	logs *lockedBuffer // everything the gateway logged, at debug level
}

type stackOptions struct {
	asrScript []string
	pipeline  PipelineConfig
	audit     *telemetry.Audit
	policy    Policy
	caller    Caller       // the caller of token "tok"
	tokens    StaticTokens // more tokens
	trunk     Trunk        // default: loopback, any number
	drain     time.Duration
}

// lockedBuffer is a bytes.Buffer safe for concurrent writers and readers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startTestStack(t *testing.T, o stackOptions) *testStack {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	logs := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	simSrv, simURL, err := sim.Listen(ctx, "127.0.0.1:0", sim.Config{ASRScript: o.asrScript, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("sim backends: %v", err)
	}
	if o.trunk.Name == "" {
		o.trunk = Trunk{Name: "t", Tenant: "dev", Sources: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, Numbers: map[string]string{"*": ""}}
	}
	if o.caller.Tenant == "" {
		o.caller = Caller{Tenant: "dev", Subject: "tester"}
	}
	auth := StaticTokens{"tok": o.caller}
	for k, v := range o.tokens {
		auth[k] = v
	}
	ep := func(name string) backends.Endpoint {
		return backends.Endpoint{Name: name, URL: simURL, Timeout: 3 * time.Second}
	}
	srv, err := New(Config{
		ICE:          ICEConfig{UDPAddr: "127.0.0.1:0", LoopbackOnly: true},
		SIP:          SIPConfig{UDPAddr: "127.0.0.1:0", RTPPortMin: 44000, RTPPortMax: 45999, Trunks: []Trunk{o.trunk}},
		ASR:          backends.ASRConfig{Endpoint: ep("sim-asr")},
		LLM:          backends.LLMConfig{Endpoint: ep("sim-llm")},
		TTS:          backends.TTSConfig{Endpoint: ep("sim-tts")},
		Pipeline:     o.pipeline,
		Auth:         auth,
		Logger:       log,
		Metrics:      telemetry.NewMetrics(),
		Audit:        o.audit,
		Policy:       o.policy,
		DrainTimeout: o.drain,
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
		sctx, c := context.WithTimeout(context.Background(), 20*time.Second)
		defer c()
		_ = srv.Shutdown(sctx)
		<-served
	})
	return &testStack{srv: srv, base: "http://" + l.Addr().String(), sim: simSrv, logs: logs}
}

// get returns the status and body of GET path.
func (st *testStack) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(st.base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metric is the line of /metrics that starts with series, or "".
func (st *testStack) metric(t *testing.T, series string) string {
	t.Helper()
	_, body := st.get(t, "/metrics")
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, series+" ") {
			return l
		}
	}
	return ""
}

// eventually polls cond every 20 ms until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
