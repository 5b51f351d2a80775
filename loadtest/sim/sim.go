// Package sim is a SIMULATED set of ASR, LLM and TTS backends that speak
// exactly the open protocols voicegw uses — the Realtime transcription
// WebSocket, batch /v1/audio/transcriptions, streamed /v1/chat/completions
// and /v1/audio/speech with response_format "pcm" — with configurable
// latency. It understands no audio and no language: the ASR returns
// scripted transcripts, the LLM scripted or echoed replies, and the TTS a
// speech-like synthetic signal whose length follows the text. It says so
// at "/" and in its log.
package sim

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// Config sets the simulated backends' behaviour. The zero value is usable.
type Config struct {
	// ASRDelay is the time from commit to the completed transcript.
	// Default 150 ms.
	ASRDelay time.Duration
	// LLMTTFT is the time from request to the first token. Default 300 ms.
	LLMTTFT time.Duration
	// LLMTokenInterval is the time between tokens. Default 15 ms.
	LLMTokenInterval time.Duration
	// TTSTTFB is the time from request to the first audio. Default 150 ms.
	TTSTTFB time.Duration
	// TTSRealtime paces TTS audio at real time instead of sending it as
	// fast as it is made.
	TTSRealtime bool
	// ASRScript are the transcripts of successive utterances, cycled.
	// Default one fixed sentence.
	ASRScript []string
	// LLMScript maps caller text to replies; the first matching rule wins.
	// Default: a reply that echoes the caller.
	LLMScript []Rule
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// Rule is one scripted LLM reply.
type Rule struct {
	// Match is a case-insensitive substring of the last user message, or
	// "*" for any.
	Match string `json:"match"`
	// Reply is the reply text.
	Reply string `json:"reply"`
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
	Stream bool `json:"stream"`
}

// Stats counts requests per route.
type Stats struct {
	RealtimeSessions int
	Commits          int
	Transcriptions   int
	Chats            int
	Speeches         int
}

// Server is the simulated backends.
type Server struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	asrN   int
	spoken []string
	chats  []ChatRequest
	stats  Stats
}

// New returns simulated backends with cfg's defaults filled in.
func New(cfg Config) *Server {
	if cfg.ASRDelay == 0 {
		cfg.ASRDelay = 150 * time.Millisecond
	}
	if cfg.LLMTTFT == 0 {
		cfg.LLMTTFT = 300 * time.Millisecond
	}
	if cfg.LLMTokenInterval == 0 {
		cfg.LLMTokenInterval = 15 * time.Millisecond
	}
	if cfg.TTSTTFB == 0 {
		cfg.TTSTTFB = 150 * time.Millisecond
	}
	if len(cfg.ASRScript) == 0 {
		cfg.ASRScript = []string{DefaultTranscript}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Server{cfg: cfg, log: cfg.Logger}
}

// Listen starts simulated backends on addr until ctx ends and returns the
// base URL.
func Listen(ctx context.Context, addr string, cfg Config) (*Server, string, error) {
	s := New(cfg)
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("sim: listen %s: %w", addr, err)
	}
	hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(l) }()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	url := "http://" + l.Addr().String()
	s.log.Warn("SIMULATED ASR/LLM/TTS backends are serving; they understand no audio or language", "url", url)
	return s, url, nil
}

// Handler returns the routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(w, `voicegw SIMULATED backends (not real ASR, LLM or TTS)
  GET  /v1/realtime?intent=transcription   Realtime transcription WebSocket (scripted transcripts)
  POST /v1/audio/transcriptions             batch transcription (scripted transcripts)
  POST /v1/chat/completions                 streamed chat completions (scripted or echoed replies)
  POST /v1/audio/speech                     response_format=pcm: synthetic speech-like PCM, 24 kHz
`)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /v1/realtime", s.realtime)
	mux.HandleFunc("POST /v1/audio/transcriptions", s.transcriptions)
	mux.HandleFunc("POST /v1/chat/completions", s.chat)
	mux.HandleFunc("POST /v1/audio/speech", s.speech)
	return mux
}

// Spoken returns every text TTS was asked to speak, in order.
func (s *Server) Spoken() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.spoken...)
}

// ChatRequests returns every chat request received, in order.
func (s *Server) ChatRequests() []ChatRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ChatRequest(nil), s.chats...)
}

// Requests returns request counters.
func (s *Server) Requests() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

func (s *Server) nextTranscript() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.cfg.ASRScript[s.asrN%len(s.cfg.ASRScript)]
	s.asrN++
	return t
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func writeError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"type": typ, "message": msg}})
}

// --- ASR ----------------------------------------------------------------------

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

func (s *Server) realtime(w http.ResponseWriter, r *http.Request) {
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer ws.Close()
	ws.SetReadLimit(4 << 20)
	s.mu.Lock()
	s.stats.RealtimeSessions++
	s.mu.Unlock()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	var wmu sync.Mutex
	send := func(v any) {
		wmu.Lock()
		defer wmu.Unlock()
		_ = ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_ = ws.WriteJSON(v)
	}
	sendErr := func(code, msg string) {
		send(map[string]any{"type": "error", "error": map[string]string{"type": "invalid_request_error", "code": code, "message": msg}})
	}
	send(map[string]any{"type": "transcription_session.created", "session": map[string]any{"object": "realtime.transcription_session", "simulated": true}})
	var wg sync.WaitGroup
	defer wg.Wait()
	buffered, item := 0, 0
	for {
		_, b, err := ws.ReadMessage()
		if err != nil {
			return
		}
		var ev struct {
			Type  string `json:"type"`
			Audio string `json:"audio"`
		}
		if err := json.Unmarshal(b, &ev); err != nil {
			sendErr("invalid_json", "event is not JSON")
			continue
		}
		switch ev.Type {
		case "transcription_session.update", "session.update":
			send(map[string]any{"type": "transcription_session.updated"})
		case "input_audio_buffer.append":
			pcm, err := base64.StdEncoding.DecodeString(ev.Audio)
			if err != nil || len(pcm)%2 != 0 {
				sendErr("invalid_audio", "audio must be base64 of 16-bit PCM")
				continue
			}
			buffered += len(pcm)
		case "input_audio_buffer.clear":
			buffered = 0
			send(map[string]any{"type": "input_audio_buffer.cleared"})
		case "input_audio_buffer.commit":
			if buffered == 0 {
				sendErr("input_audio_buffer_commit_empty", "buffer is empty")
				continue
			}
			buffered = 0
			item++
			id := fmt.Sprintf("item_sim_%d", item)
			s.mu.Lock()
			s.stats.Commits++
			s.mu.Unlock()
			send(map[string]any{"type": "input_audio_buffer.committed", "item_id": id})
			text := s.nextTranscript()
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Two deltas, then the completed transcript.
				half := len(text) / 2
				for half < len(text) && !utf8.RuneStart(text[half]) {
					half++
				}
				if !sleep(ctx, s.cfg.ASRDelay/2) {
					return
				}
				send(map[string]any{"type": "conversation.item.input_audio_transcription.delta", "item_id": id, "delta": text[:half]})
				if !sleep(ctx, s.cfg.ASRDelay-s.cfg.ASRDelay/2) {
					return
				}
				send(map[string]any{"type": "conversation.item.input_audio_transcription.delta", "item_id": id, "delta": text[half:]})
				send(map[string]any{"type": "conversation.item.input_audio_transcription.completed", "item_id": id, "transcript": text})
			}()
		default:
			sendErr("unknown_event", fmt.Sprintf("unknown event type %q", ev.Type))
		}
	}
}

func (s *Server) transcriptions(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseMultipartForm(32 << 20); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "expected multipart/form-data: "+err.Error())
		return
	}
	f, _, err := r.FormFile("file")
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", `missing "file"`)
		return
	}
	f.Close()
	s.mu.Lock()
	s.stats.Transcriptions++
	s.mu.Unlock()
	if !sleep(r.Context(), s.cfg.ASRDelay) {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"text": s.nextTranscript()})
}

// --- LLM ----------------------------------------------------------------------

func (s *Server) reply(user string) string {
	for _, rule := range s.cfg.LLMScript {
		if rule.Match == "*" || strings.Contains(strings.ToLower(user), strings.ToLower(rule.Match)) {
			return rule.Reply
		}
	}
	return "You said: " + strings.TrimRight(user, ".!? ") + ". How else can I help?"
}

func (s *Server) chat(w http.ResponseWriter, r *http.Request) {
	var req ChatRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<20)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "body is not a chat completion request: "+err.Error())
		return
	}
	if len(req.Messages) == 0 {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "messages is empty")
		return
	}
	s.mu.Lock()
	s.chats = append(s.chats, req)
	s.stats.Chats++
	s.mu.Unlock()
	user := ""
	for _, m := range req.Messages {
		if m.Role == "user" {
			user = m.Content
		}
	}
	reply := s.reply(user)
	if !req.Stream {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"object": "chat.completion", "model": req.Model,
			"choices": []any{map[string]any{"index": 0, "message": map[string]string{"role": "assistant", "content": reply}, "finish_reason": "stop"}}})
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	fl, _ := w.(http.Flusher)
	bw := bufio.NewWriter(w)
	id := fmt.Sprintf("chatcmpl-sim-%d", time.Now().UnixNano())
	chunk := func(content string, finish any) {
		b, _ := json.Marshal(map[string]any{
			"id": id, "object": "chat.completion.chunk", "created": time.Now().Unix(), "model": req.Model,
			"choices": []any{map[string]any{"index": 0, "delta": map[string]string{"content": content}, "finish_reason": finish}},
		})
		fmt.Fprintf(bw, "data: %s\n\n", b)
		_ = bw.Flush()
		if fl != nil {
			fl.Flush()
		}
	}
	if !sleep(r.Context(), s.cfg.LLMTTFT) {
		return
	}
	for i, tok := range tokens(reply) {
		if i > 0 && !sleep(r.Context(), s.cfg.LLMTokenInterval) {
			return
		}
		chunk(tok, nil)
	}
	chunk("", "stop")
	fmt.Fprint(bw, "data: [DONE]\n\n")
	_ = bw.Flush()
}

// tokens splits text into word-ish tokens that concatenate back to it.
func tokens(text string) []string {
	var out []string
	start := 0
	for i, r := range text {
		if r == ' ' && i > start {
			out = append(out, text[start:i])
			start = i
		}
	}
	if start < len(text) {
		out = append(out, text[start:])
	}
	return out
}

// --- TTS ----------------------------------------------------------------------

const ttsRate = 24000

func (s *Server) speech(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model          string `json:"model"`
		Input          string `json:"input"`
		Voice          string `json:"voice"`
		ResponseFormat string `json:"response_format"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "body is not a speech request: "+err.Error())
		return
	}
	if strings.TrimSpace(req.Input) == "" {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "input is empty")
		return
	}
	if req.ResponseFormat != "pcm" {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "the simulated TTS only returns response_format pcm")
		return
	}
	s.mu.Lock()
	s.spoken = append(s.spoken, req.Input)
	s.stats.Speeches++
	s.mu.Unlock()
	if !sleep(r.Context(), s.cfg.TTSTTFB) {
		return
	}
	w.Header().Set("Content-Type", "audio/pcm")
	fl, _ := w.(http.Flusher)
	pcm := Synthesize(req.Input, ttsRate)
	chunk := ttsRate / 25 // 40 ms
	buf := make([]byte, 2*chunk)
	start := time.Now()
	for i := 0; i < len(pcm); i += chunk {
		part := pcm[i:min(i+chunk, len(pcm))]
		b := buf[:2*len(part)]
		for k, v := range part {
			binary.LittleEndian.PutUint16(b[2*k:], uint16(v))
		}
		if _, err := w.Write(b); err != nil {
			return
		}
		if fl != nil {
			fl.Flush()
		}
		if s.cfg.TTSRealtime {
			due := start.Add(time.Duration(i+len(part)) * time.Second / ttsRate)
			if !sleep(r.Context(), time.Until(due)) {
				return
			}
		}
	}
}

// Synthesize makes speech-like audio for text at rate: a glottal pulse
// train with a wandering pitch through two formant resonators that move
// from syllable to syllable, with a syllable-rate (180 ms) amplitude
// envelope. About 65 ms per character.
func Synthesize(text string, rate int) []int16 {
	n := max(utf8.RuneCountInString(text), 6)
	total := int(float64(n) * 0.065 * float64(rate))
	out := make([]int16, total)
	vowels := [][2]float64{{730, 1090}, {530, 1840}, {270, 2290}, {570, 840}, {300, 870}, {660, 1720}}
	syl := int(0.18 * float64(rate))
	var phase float64
	// Resonator state per formant.
	type res struct{ y1, y2 float64 }
	var r1, r2 res
	for i := range out {
		s := i / syl
		pos := float64(i%syl) / float64(syl)
		env := math.Sin(math.Pi * pos)
		env *= env
		f0 := 120 + 25*math.Sin(2*math.Pi*float64(i)/float64(rate)*0.7) + 10*float64(s%3)
		phase += f0 / float64(rate)
		var src float64
		if phase >= 1 {
			phase -= 1
			src = 1
		}
		v := vowels[s%len(vowels)]
		y := src
		for k, f := range v {
			bw := 90.0
			rr := math.Exp(-math.Pi * bw / float64(rate))
			c := 2 * rr * math.Cos(2*math.Pi*f/float64(rate))
			st := &r1
			if k == 1 {
				st = &r2
			}
			yy := y + c*st.y1 - rr*rr*st.y2
			st.y2, st.y1 = st.y1, yy
			y = yy
		}
		out[i] = int16(math.Max(-32767, math.Min(32767, y*env*900)))
	}
	return out
}

// LoadASRScript reads transcripts, one per non-empty line.
func LoadASRScript(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("asr script: %w", err)
	}
	var out []string
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !utf8.ValidString(line) {
			return nil, fmt.Errorf("asr script %s:%d: not UTF-8", path, i+1)
		}
		out = append(out, line)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("asr script %s: no transcripts", path)
	}
	return out, nil
}

// LoadLLMScript reads JSON lines of {"match": …, "reply": …}.
func LoadLLMScript(path string) ([]Rule, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("llm script: %w", err)
	}
	var out []Rule
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var r Rule
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			return nil, fmt.Errorf("llm script %s:%d: %w", path, i+1, err)
		}
		if r.Match == "" || r.Reply == "" {
			return nil, fmt.Errorf("llm script %s:%d: need both \"match\" and \"reply\"", path, i+1)
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, errors.New("llm script " + path + ": no rules")
	}
	return out, nil
}
