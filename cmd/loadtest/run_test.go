package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voicegw/voicegw/gateway"
	"github.com/voicegw/voicegw/gateway/backends"
	"github.com/voicegw/voicegw/loadtest/rig"
	"github.com/voicegw/voicegw/loadtest/sim"
	"github.com/voicegw/voicegw/media"
	"github.com/voicegw/voicegw/telemetry"
)

const testToken = "loadtest-test-token"

// startGateway runs a gateway on loopback with in-process simulated
// backends that answer every utterance with a short reply, and a stand-in
// POST /v1/tokens that mints testToken for the API key "test-key" (tenant
// "dev") and refuses subject "loadtest-2" with 429.
func startGateway(t *testing.T) string {
	t.Helper()
	url, _ := startGatewaySIP(t, false)
	return url
}

// startGatewaySIP is startGateway with, if sip, a SIP ingress on loopback
// UDP whose trunk takes any number from 127.0.0.1; it returns the SIP
// address too.
func startGatewaySIP(t *testing.T, sip bool) (string, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	log := slog.New(slog.DiscardHandler)
	if os.Getenv("LOADTEST_DEBUG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	_, simURL, err := sim.Listen(ctx, "127.0.0.1:0", sim.Config{
		ASRScript: []string{"What are your opening hours?"},
		LLMScript: []sim.Rule{{Match: "*", Reply: "Nine to five."}},
		Logger:    log,
	})
	if err != nil {
		t.Fatalf("sim backends: %v", err)
	}
	var sipCfg gateway.SIPConfig
	if sip {
		sipCfg = gateway.SIPConfig{UDPAddr: "127.0.0.1:0", RTPPortMin: 45000, RTPPortMax: 49999, Trunks: []gateway.Trunk{{
			Name: "loadtest", Tenant: "dev", Sources: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, Numbers: map[string]string{"*": ""},
		}}}
	}
	srv, err := gateway.New(gateway.Config{
		SIP:    sipCfg,
		ICE:    gateway.ICEConfig{UDPAddr: "127.0.0.1:0", LoopbackOnly: true},
		ASR:    backends.ASRConfig{Endpoint: backends.Endpoint{Name: "sim-asr", URL: simURL, Timeout: 5 * time.Second}},
		LLM:    backends.LLMConfig{Endpoint: backends.Endpoint{Name: "sim-llm", URL: simURL, Timeout: 5 * time.Second}},
		TTS:    backends.TTSConfig{Endpoint: backends.Endpoint{Name: "sim-tts", URL: simURL, Timeout: 5 * time.Second}},
		Auth:   gateway.StaticTokens{testToken: {Tenant: "dev", Subject: "loadtest"}},
		Routes: map[string]http.Handler{"POST /v1/tokens": http.HandlerFunc(fakeMint)},
		Audit:  telemetry.NewAudit(io.Discard, []byte("loadtest-salt")),
		Logger: log,
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
	return "http://" + l.Addr().String(), srv.SIPAddr("udp")
}

// fakeMint stands in for the tenants' token endpoint.
func fakeMint(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer test-key" {
		http.Error(w, `{"error":"unauthorized","message":"missing or invalid API key"}`, http.StatusUnauthorized)
		return
	}
	var req struct {
		Subject string `json:"subject"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || !strings.HasPrefix(req.Subject, "loadtest-") {
		http.Error(w, `{"error":"bad_request"}`, http.StatusBadRequest)
		return
	}
	if req.Subject == "loadtest-2" {
		w.Header().Set("Retry-After", "1")
		http.Error(w, `{"error":"rate_limited","message":"too many token requests"}`, http.StatusTooManyRequests)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"token": testToken, "expires_at": time.Now().Add(time.Minute).UTC().Format(time.RFC3339), "tenant": "dev"})
}

// shortUtterance writes the first 1.6 s of the built-in utterance ("Hello,
// I have a question") as an 8 kHz WAV, so calls are quick and --audio's
// resampling is exercised.
func shortUtterance(t *testing.T) string {
	t.Helper()
	pcm := rig.DefaultUtterance()[:16000*16/10]
	rs, err := media.NewResampler(media.PipelineRate, 8000)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := media.WriteWAV(&buf, 8000, rs.Process(nil, pcm)); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "short.wav")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// loadtest runs the command with a generous bound and returns its exit
// code, stdout and stderr.
func loadtest(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, &stdout, &stderr)
	t.Logf("loadtest %s → exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, stdout.String(), stderr.String())
	return code, stdout.String(), stderr.String()
}

// runReport is the part of run's JSON document the tests read.
type runReport struct {
	Config struct {
		Calls     int      `json:"calls"`
		Rate      float64  `json:"rate"`
		Auth      string   `json:"auth"`
		Transport string   `json:"transport"`
		SLO       []string `json:"slo"`
	} `json:"config"`
	StartedAt  time.Time `json:"started_at"`
	DurationMS int64     `json:"duration_ms"`
	Calls      struct {
		Scheduled, Started, Completed, Failed, Refused int
		DroppedByRig                                   int            `json:"dropped_by_rig"`
		Reasons                                        map[string]int `json:"reasons"`
	} `json:"calls"`
	Metrics map[string]rig.MetricSummary `json:"metrics"`
	SLO     []rig.SLOReport              `json:"slo"`
	RigCPU  rig.CPUUsage                 `json:"rig_cpu"`
	OK      bool                         `json:"ok"`
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("--json file: %v", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("--json file is not the expected JSON: %v\n%s", err, b)
	}
}

// TestRunOpenModel: six calls at three per second, two turns each, all
// measured; the JSON document holds every count, metric and verdict.
func TestRunOpenModel(t *testing.T) {
	gw := startGateway(t)
	out := filepath.Join(t.TempDir(), "run.json")
	code, stdout, stderr := loadtest(t, "run", "--gateway", gw, "--token", testToken, "--calls", "6", "--rate", "3", "--turns", "2",
		"--audio", shortUtterance(t), "--json", out, "--slo", "first_audio_p99<=30s,asr_to_first_token_p99<=30s")
	if code != exitOK {
		t.Fatalf("exit %d, want 0", code)
	}
	var rep runReport
	readJSON(t, out, &rep)
	if rep.Calls.Scheduled != 6 || rep.Calls.Started != 6 || rep.Calls.Completed != 6 || rep.Calls.Failed != 0 || rep.Calls.DroppedByRig != 0 {
		t.Errorf("calls %+v; want all 6 scheduled, started and completed", rep.Calls)
	}
	if got := rep.Metrics["first_audio"].Count; got != 12 {
		t.Errorf("first_audio measured %d times, want 12 (6 calls × 2 turns)", got)
	}
	for _, m := range []string{"setup", "schedule_lag", "gw_asr_to_first_token", "gw_asr_final", "gw_first_audio"} {
		if _, ok := rep.Metrics[m]; !ok {
			t.Errorf("metrics lack %q: %v", m, rep.Metrics)
		}
	}
	if got := rep.Metrics["setup"].Count; got != 6 {
		t.Errorf("setup measured %d times, want 6", got)
	}
	fa := rep.Metrics["first_audio"]
	if !(fa.P50 > 0 && fa.P50 <= fa.P90 && fa.P90 <= fa.P99 && fa.P99 <= fa.Max) {
		t.Errorf("first_audio percentiles out of order: %+v", fa)
	}
	if len(rep.SLO) != 2 || !rep.SLO[0].OK || !rep.SLO[1].OK || rep.SLO[1].Expr != "asr_to_first_token_p99<=30s" || !rep.OK {
		t.Errorf("slo %+v ok %v; want both held", rep.SLO, rep.OK)
	}
	if rep.Config.Calls != 6 || rep.Config.Rate != 3 || rep.Config.Auth != "token" || rep.Config.Transport != "webrtc" {
		t.Errorf("config %+v", rep.Config)
	}
	if rep.RigCPU.NumCPU < 1 || rep.RigCPU.GOMAXPROCS < 1 || !rep.RigCPU.Available || rep.RigCPU.CPUSeconds <= 0 {
		t.Errorf("rig_cpu %+v", rep.RigCPU)
	}
	if rep.StartedAt.IsZero() || rep.DurationMS <= 0 {
		t.Errorf("started_at %v duration_ms %d", rep.StartedAt, rep.DurationMS)
	}
	for _, want := range []string{"metric (ms)", "first_audio ", "gw_asr_to_first_token ", "PASS first_audio_p99<=30s", "PASS asr_to_first_token_p99<=30s", "rig CPU: ", "% of one core"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q", want)
		}
	}
	// stderr is not a terminal here: progress comes as plain lines.
	if !strings.Contains(stderr, "started 6") || strings.Contains(stderr, "\r") {
		t.Errorf("progress on stderr %q; want plain lines reaching started 6", stderr)
	}
}

// TestRunSLOMissed: an objective no gateway can meet gives exit 2 with a
// FAIL line; the built-in utterance is used.
func TestRunSLOMissed(t *testing.T) {
	gw := startGateway(t)
	code, stdout, _ := loadtest(t, "run", "--gateway", gw, "--token", testToken, "--calls", "2", "--rate", "2",
		"--slo", "first_audio_p50<=1ms,setup_max<=1m", "--progress=false")
	if code != exitMissed {
		t.Errorf("exit %d, want 2", code)
	}
	if !strings.Contains(stdout, "FAIL first_audio_p50<=1ms: ") || !strings.Contains(stdout, "PASS setup_max<=1m: ") {
		t.Errorf("stdout lacks the verdict lines")
	}
}

// TestRunAPIKey: with --api-key each call mints its token; a 429 is a
// refused call with its reason; a key for another tenant stops the run.
func TestRunAPIKey(t *testing.T) {
	gw := startGateway(t)
	out := filepath.Join(t.TempDir(), "run.json")
	code, _, _ := loadtest(t, "run", "--gateway", gw, "--api-key", "test-key", "--tenant", "dev", "--calls", "3", "--rate", "10",
		"--audio", shortUtterance(t), "--max-failed-ratio", "0.5", "--json", out, "--progress=false")
	if code != exitOK {
		t.Errorf("exit %d, want 0 (one refusal in three is within --max-failed-ratio 0.5)", code)
	}
	var rep runReport
	readJSON(t, out, &rep)
	if rep.Calls.Completed != 2 || rep.Calls.Refused != 1 || rep.Calls.Reasons["rate_limited"] != 1 || rep.Config.Auth != "api-key" {
		t.Errorf("calls %+v, auth %q; want 2 completed and 1 refused as rate_limited", rep.Calls, rep.Config.Auth)
	}

	code, _, stderr := loadtest(t, "run", "--gateway", gw, "--api-key", "test-key", "--tenant", "acme", "--calls", "2", "--rate", "10", "--progress=false")
	if code != exitError || !strings.Contains(stderr, `mints tokens for tenant "dev", not "acme"`) {
		t.Errorf("tenant mismatch: exit %d, stderr %q; want 1 and the mismatch", code, stderr)
	}

	code, stdout, stderr := loadtest(t, "run", "--gateway", gw, "--token", "wrong", "--calls", "1", "--rate", "1", "--progress=false")
	if code != exitError || !strings.Contains(stderr, "no turn was measured") || !strings.Contains(stdout, "signaling_unauthorized 1") {
		t.Errorf("bad token: exit %d; want 1, no turn measured and the reason signaling_unauthorized", code)
	}
}

func TestRunUsageErrors(t *testing.T) {
	// A port that refuses connections: listen, note it, close.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	l.Close()
	t.Setenv("VOICEGW_DEV_TOKEN", "")
	t.Setenv("VOICEGW_API_KEY", "")
	wav := filepath.Join(t.TempDir(), "not.wav")
	if err := os.WriteFile(wav, []byte("not a wav file"), 0o600); err != nil {
		t.Fatal(err)
	}
	tok := []string{"--gateway", dead, "--token", "x"}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"run", "--calls", "many"}, "invalid value"},
		{[]string{"run", "stray"}, `unexpected argument "stray"`},
		{[]string{"run", "--gateway", dead}, "need --token"},
		{append([]string{"run", "--api-key", "k"}, tok...), "not both"},
		{[]string{"run", "--gateway", dead, "--token", "x", "--tenant", "acme"}, "--tenant goes with --api-key"},
		{[]string{"run", "--gateway", "127.0.0.1:8080", "--token", "x"}, "want http://host:port"},
		{append([]string{"run", "--rate", "0"}, tok...), "--rate must be positive"},
		{append([]string{"run", "--calls", "0"}, tok...), "--calls must be at least 1"},
		{append([]string{"run", "--turns", "0"}, tok...), "--turns must be at least 1"},
		{append([]string{"run", "--concurrency", "-1"}, tok...), "--concurrency must not be negative"},
		{append([]string{"run", "--max-failed-ratio", "2"}, tok...), "between 0 and 1"},
		{append([]string{"run", "--slo", "ttfb_p99<=1s"}, tok...), `unknown metric "ttfb"`},
		{append([]string{"run", "--slo", "first_audio_p99<=1400"}, tok...), "not a duration with a unit"},
		{append([]string{"run", "--slo", "first_audio_p99<=1s,,"}, tok...), "term 2: empty"},
		{append([]string{"run", "--audio", wav}, tok...), "not.wav"},
		{append([]string{"run", "--transport", "carrier-pigeon"}, tok...), "want webrtc or sip"},
		{append([]string{"run", "--codec", "g729"}, tok...), "opus or pcmu"},
		{[]string{"run", "--transport", "sip"}, "needs --sip HOST:PORT"},
		{[]string{"run", "--transport", "sip", "--sip", "127.0.0.1:5060", "--sip-transport", "tls"}, "want udp or tcp"},
		{[]string{"run", "--transport", "sip", "--sip", "127.0.0.1:5060", "--codec", "g729"}, "PCMU, PCMA or opus"},
		{[]string{"run", "--transport", "sip", "--sip", "127.0.0.1:5060", "--token", "x"}, "admitted by the trunk"},
		{append([]string{"run"}, tok...), "gateway unreachable"},
		{append([]string{"ramp"}, tok...), "--max (the highest level to try) is required"},
		{append([]string{"ramp", "--max", "2", "--start", "3"}, tok...), "--max 2 is below --start 3"},
		{append([]string{"ramp", "--max", "2", "--step", "0"}, tok...), "must be at least 1"},
		{append([]string{"ramp", "--max", "2", "--slo", "first_audio_p98<=1s"}, tok...), `unknown statistic "p98"`},
		{append([]string{"ramp", "--max", "2"}, tok...), "gateway unreachable"},
	}
	for _, c := range cases {
		var stderr strings.Builder
		code := run(context.Background(), c.args, io.Discard, &stderr)
		if code != exitError || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("loadtest %q: exit %d, stderr %q; want 1 and %q", c.args, code, stderr.String(), c.want)
		}
	}
	for _, cmd := range []string{"run", "ramp"} {
		var stderr strings.Builder
		if code := run(context.Background(), []string{cmd, "-h"}, io.Discard, &stderr); code != exitOK || !strings.Contains(stderr.String(), "usage: loadtest "+cmd) || !strings.Contains(stderr.String(), "-slo") {
			t.Errorf("loadtest %s -h: exit %d, %q", cmd, code, stderr.String())
		}
	}
}

// TestRunSIP: the same run over the SIP trunk transport: calls measured on
// the caller's clock, turns ended by the agent's silence, no gw_ metrics.
func TestRunSIP(t *testing.T) {
	t.Setenv("VOICEGW_DEV_TOKEN", "ignored-by-sip")
	_, sipAddr := startGatewaySIP(t, true)
	out := filepath.Join(t.TempDir(), "run.json")
	code, stdout, _ := loadtest(t, "run", "--transport", "sip", "--sip", sipAddr, "--number", "1000", "--calls", "2", "--rate", "2",
		"--audio", shortUtterance(t), "--slo", "first_audio_p99<=30s", "--json", out, "--progress=false")
	if code != exitOK {
		t.Fatalf("exit %d, want 0", code)
	}
	var rep runReport
	readJSON(t, out, &rep)
	if rep.Calls.Completed != 2 || rep.Metrics["first_audio"].Count != 2 || rep.Config.Transport != "sip" || rep.Config.Auth != "trunk" {
		t.Errorf("calls %+v, first_audio %d, config %+v", rep.Calls, rep.Metrics["first_audio"].Count, rep.Config)
	}
	if _, ok := rep.Metrics["gw_asr_final"]; ok {
		t.Error("a SIP run reported the gateway's turn timings, which SIP does not carry")
	}
	if !strings.Contains(stdout, "transport sip") {
		t.Errorf("stdout does not name the transport")
	}
}
