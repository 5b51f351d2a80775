// Package sim is a SIMULATED set of ASR, LLM and TTS backends that speak
// exactly the open protocols voicegw uses — the Realtime transcription
// WebSocket, batch /v1/audio/transcriptions, streamed /v1/chat/completions
// and /v1/audio/speech with response_format "pcm" — with configurable
// latency. It understands no audio and no language: the ASR returns
// scripted transcripts, the LLM scripted or echoed replies, and the TTS a
// speech-like synthetic signal whose length follows the text. It says so
// at "/" and in its log.
//
// Use it in process with New and Handler, or on a socket with Listen:
//
//	srv, url, err := sim.Listen(ctx, "127.0.0.1:0", sim.Config{ASRScript: []string{"What are your hours?"}})
//	// point the backends' Endpoint.URL at url; srv.Spoken() is what TTS said.
//
// To exercise a client's latency budgets, each role's delay can be a
// distribution (Latency: normal, uniform, with a long tail), and the LLM
// and TTS can fail (HTTP 500) or stall (headers, then nothing) on a
// fraction of requests. The draws come from one seeded generator, so a run
// with the same Config.Seed and the same order of requests repeats itself:
//
//	sim.Config{
//		LLMTTFTLatency: sim.MustParseLatency("300ms±80ms,tail=1%:2s"),
//		LLMFailRate:    0.02, // 2% of chats answer 500
//		TTSStallRate:   0.01, // 1% of speeches never send audio
//		Seed:           42,
//	}
//
// Stats counts the requests and what was injected.
package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"
)

// Config sets the simulated backends' behaviour. The zero value is usable;
// each field documents its default.
type Config struct {
	// ASRDelay is the time from commit (or batch upload) to the completed
	// transcript. Default 150 ms.
	ASRDelay time.Duration
	// LLMTTFT is the time from request to the first token. Default 300 ms.
	LLMTTFT time.Duration
	// LLMTokenInterval is the time between tokens. Default 15 ms.
	LLMTokenInterval time.Duration
	// TTSTTFB is the time from request to the first audio. Default 150 ms.
	TTSTTFB time.Duration
	// TTSRealtime paces TTS audio at real time. Default false: after TTSTTFB
	// the audio is sent as fast as it is made.
	TTSRealtime bool
	// ASRScript are the transcripts of successive utterances, cycled across
	// all sessions in the order commits arrive. Default one sentence,
	// DefaultTranscript.
	ASRScript []string
	// LLMScript maps caller text to replies; the first matching rule wins.
	// Default (and when no rule matches): a reply that echoes the caller,
	// "You said: <text>. How else can I help?".
	LLMScript []Rule
	// Logger; default slog.Default().
	Logger *slog.Logger

	// ASRLatency, when set, replaces ASRDelay: each utterance's delay is
	// drawn from it. Default unset.
	ASRLatency Latency
	// LLMTTFTLatency, when set, replaces LLMTTFT: each request's time to
	// first token is drawn from it. Default unset.
	LLMTTFTLatency Latency
	// TTSTTFBLatency, when set, replaces TTSTTFB: each request's time to
	// first audio is drawn from it. Default unset.
	TTSTTFBLatency Latency

	// LLMFailRate is the fraction (0..1) of chat requests answered, after
	// their time to first token, with HTTP 500 and the body
	// {"error":{"message":"simulated failure","type":"server_error"}}.
	// Default 0.
	LLMFailRate float64
	// LLMStallRate is the fraction (0..1) of chat requests that stall:
	// the 200 and its headers are sent at once, then nothing, until the
	// client goes away, the server shuts down or StallMax passes, when the
	// connection is cut. Default 0. LLMFailRate+LLMStallRate must not
	// exceed 1.
	LLMStallRate float64
	// TTSFailRate and TTSStallRate are the same for speech requests: a 500
	// after the time to first audio, or a 200 with headers and no audio.
	// Default 0.
	TTSFailRate, TTSStallRate float64
	// StallMax bounds a stall, so that a client that never gives up does
	// not hold a request forever. Default 60 s.
	StallMax time.Duration
	// Seed seeds the generator of latencies, failures and stalls (a PCG).
	// Default 0: seeded from the clock; Seed reports the seed used.
	Seed int64
}

// Validate checks the rates: each in [0, 1], and each role's fail and
// stall rates summing to at most 1. Listen calls it; New does not, and
// clamps instead.
func (c Config) Validate() error {
	for _, r := range []struct {
		name        string
		fail, stall float64
	}{{"LLM", c.LLMFailRate, c.LLMStallRate}, {"TTS", c.TTSFailRate, c.TTSStallRate}} {
		if !(r.fail >= 0 && r.fail <= 1) {
			return fmt.Errorf("sim: %sFailRate %v is not between 0 and 1", r.name, r.fail)
		}
		if !(r.stall >= 0 && r.stall <= 1) {
			return fmt.Errorf("sim: %sStallRate %v is not between 0 and 1", r.name, r.stall)
		}
		if r.fail+r.stall > 1 {
			return fmt.Errorf("sim: %sFailRate %v and %sStallRate %v add up to more than 1", r.name, r.fail, r.name, r.stall)
		}
	}
	return nil
}

// Rule is one scripted LLM reply.
type Rule struct {
	// Match is a case-insensitive substring of the last user message, or
	// "*" for any.
	Match string `json:"match" yaml:"match"`
	// Reply is the reply text.
	Reply string `json:"reply" yaml:"reply"`
}

// DefaultTranscript is what the simulated ASR hears when no script is given.
const DefaultTranscript = "Hello, I have a question about my account."

// ChatRequest is a chat completion request as the simulated LLM received it.
type ChatRequest struct {
	Model    string `json:"model"`
	Messages []struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	} `json:"messages"`
	Stream      bool     `json:"stream"`
	MaxTokens   int      `json:"max_tokens"`
	Temperature *float64 `json:"temperature"`
}

// Stats counts requests per route, and the failures and stalls injected
// per role.
type Stats struct {
	// RealtimeSessions counts /v1/realtime WebSocket sessions, Commits the
	// utterances committed on them and Appends their audio events.
	RealtimeSessions, Commits, Appends int
	// Transcriptions counts /v1/audio/transcriptions requests.
	Transcriptions int
	// Chats counts /v1/chat/completions requests.
	Chats int
	// Speeches counts /v1/audio/speech requests.
	Speeches int
	// Rejected counts requests refused with 4xx and realtime error events.
	Rejected int
	// LLMFailures and LLMStalls count the chat requests chosen to fail
	// (LLMFailRate) and to stall (LLMStallRate); they are among Chats.
	LLMFailures, LLMStalls int
	// TTSFailures and TTSStalls are the same for speech requests, among
	// Speeches.
	TTSFailures, TTSStalls int
	// Stalled is how many stalled requests are open now; each closes when
	// its client goes away, the server shuts down or StallMax passes.
	Stalled int
}

// Server is the simulated backends.
type Server struct {
	cfg     Config
	log     *slog.Logger
	closing chan struct{} // closed when a Listen server starts shutting down
	done    chan struct{} // closed when it has shut down
	conns   sync.WaitGroup
	logOnce sync.Once

	seed  int64
	rngMu sync.Mutex
	rng   *rand.Rand // draws latencies and fates; under rngMu

	mu     sync.Mutex
	asrN   int
	spoken []string
	chats  []ChatRequest
	stats  Stats
}

// New returns simulated backends with cfg's defaults filled in.
func New(cfg Config) *Server {
	if cfg.ASRDelay <= 0 {
		cfg.ASRDelay = 150 * time.Millisecond
	}
	if cfg.LLMTTFT <= 0 {
		cfg.LLMTTFT = 300 * time.Millisecond
	}
	if cfg.LLMTokenInterval <= 0 {
		cfg.LLMTokenInterval = 15 * time.Millisecond
	}
	if cfg.TTSTTFB <= 0 {
		cfg.TTSTTFB = 150 * time.Millisecond
	}
	if len(cfg.ASRScript) == 0 {
		cfg.ASRScript = []string{DefaultTranscript}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.StallMax <= 0 {
		cfg.StallMax = 60 * time.Second
	}
	clamp := func(r *float64) { *r = max(0, min(*r, 1)) }
	clamp(&cfg.LLMFailRate)
	clamp(&cfg.LLMStallRate)
	clamp(&cfg.TTSFailRate)
	clamp(&cfg.TTSStallRate)
	seed := cfg.Seed
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	return &Server{
		cfg: cfg, log: cfg.Logger, closing: make(chan struct{}), done: make(chan struct{}),
		seed: seed, rng: rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15)),
	}
}

// Listen starts simulated backends on addr and returns them with their
// base URL (http://host:port). When ctx ends the server shuts down
// gracefully: it stops accepting, ends realtime sessions with a going-away
// close, cuts stalled requests, and gives requests in flight up to 2 s;
// Done is closed after. It returns cfg.Validate's error, if any.
func Listen(ctx context.Context, addr string, cfg Config) (*Server, string, error) {
	if err := cfg.Validate(); err != nil {
		return nil, "", err
	}
	s := New(cfg)
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("sim: listen %s: %w", addr, err)
	}
	url := "http://" + l.Addr().String()
	s.logOnce.Do(func() {
		s.log.Warn("SIMULATED ASR/LLM/TTS backends: they understand no audio or language; transcripts and replies are scripted", "url", url)
	})
	hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := hs.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("simulated backends stopped", "err", err)
		}
	}()
	go func() {
		defer close(s.done)
		<-ctx.Done()
		close(s.closing)
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := hs.Shutdown(sctx); err != nil {
			_ = hs.Close()
		}
		<-served
		s.conns.Wait() // realtime sessions end on closing
	}()
	return s, url, nil
}

// Done is closed once a server started by Listen has shut down. It is
// never closed for one made by New.
func (s *Server) Done() <-chan struct{} { return s.done }

// Handler returns the routes.
func (s *Server) Handler() http.Handler {
	s.logOnce.Do(func() {
		s.log.Warn("SIMULATED ASR/LLM/TTS backends: they understand no audio or language; transcripts and replies are scripted")
	})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(w, index)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok (simulated)")
	})
	mux.HandleFunc("GET /v1/realtime", s.realtime)
	mux.HandleFunc("POST /v1/audio/transcriptions", s.transcriptions)
	mux.HandleFunc("POST /v1/chat/completions", s.chat)
	mux.HandleFunc("POST /v1/audio/speech", s.speech)
	return mux
}

const index = `voicegw SIMULATED backends: not real ASR, LLM or TTS.
They understand no audio and no language; they return scripted text and synthetic audio.

  GET  /v1/realtime?intent=transcription  Realtime transcription WebSocket (scripted transcripts per commit)
  POST /v1/audio/transcriptions           batch transcription, multipart WAV upload (scripted transcripts)
  POST /v1/chat/completions               chat completions, streamed as SSE (scripted or echoed replies)
  POST /v1/audio/speech                   response_format "pcm": synthetic speech-like PCM16, 24 kHz mono
  GET  /healthz                           liveness
`

// Spoken returns every text TTS was asked to speak, in order, including
// requests chosen to fail or stall.
func (s *Server) Spoken() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.spoken...)
}

// ChatRequests returns every chat request received, in order, including
// those chosen to fail or stall.
func (s *Server) ChatRequests() []ChatRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ChatRequest(nil), s.chats...)
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Requests returns the counters; it is Stats under its first name.
func (s *Server) Requests() Stats { return s.Stats() }

// Seed returns the seed of the generator: Config.Seed, or the one taken
// from the clock.
func (s *Server) Seed() int64 { return s.seed }

// count applies f to the counters.
func (s *Server) count(f func(*Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

func (s *Server) nextTranscript() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.cfg.ASRScript[s.asrN%len(s.cfg.ASRScript)]
	s.asrN++
	return t
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// reject writes an OpenAI-style error body.
func (s *Server) reject(w http.ResponseWriter, status int, code, msg string) {
	s.count(func(st *Stats) { st.Rejected++ })
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
		"type": "invalid_request_error", "code": code, "message": msg, "param": nil,
	}})
}
