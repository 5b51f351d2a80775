package sim

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// reply is the scripted reply to the caller's text.
func (s *Server) reply(user string) string {
	lower := strings.ToLower(user)
	for _, rule := range s.cfg.LLMScript {
		if rule.Match == "*" || strings.Contains(lower, strings.ToLower(rule.Match)) {
			return rule.Reply
		}
	}
	return "You said: " + strings.TrimRight(strings.TrimSpace(user), ".!? ") + ". How else can I help?"
}

// chat serves /v1/chat/completions, streamed as OpenAI does: one
// chat.completion.chunk per word-ish token, the role in the first chunk,
// finish_reason in the last ("length" when max_tokens cut the reply short),
// then "data: [DONE]". The first token comes after LLMTTFT (or a draw from
// LLMTTFTLatency); LLMFailRate and LLMStallRate pick requests to fail or
// stall instead.
func (s *Server) chat(w http.ResponseWriter, r *http.Request) {
	var req ChatRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<20))
	if err := dec.Decode(&req); err != nil {
		s.reject(w, http.StatusBadRequest, "invalid_request", "body is not a chat completion request: "+err.Error())
		return
	}
	if len(req.Messages) == 0 {
		s.reject(w, http.StatusBadRequest, "invalid_value", "messages must not be empty")
		return
	}
	if req.MaxTokens < 0 {
		s.reject(w, http.StatusBadRequest, "invalid_value", "max_tokens must be positive")
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
	switch s.fate(s.cfg.LLMFailRate, s.cfg.LLMStallRate) {
	case fail:
		s.count(func(st *Stats) { st.LLMFailures++ })
		s.failure(w, r, s.llmTTFT())
		return
	case stall:
		s.count(func(st *Stats) { st.LLMStalls++ })
		if req.Stream {
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("Cache-Control", "no-cache")
		} else {
			w.Header().Set("Content-Type", "application/json")
		}
		s.stall(w, r)
		return
	}
	ttft := s.llmTTFT()
	toks := tokens(s.reply(user))
	finish := "stop"
	if req.MaxTokens > 0 && len(toks) > req.MaxTokens {
		toks, finish = toks[:req.MaxTokens], "length"
	}
	id := fmt.Sprintf("chatcmpl-sim-%d", time.Now().UnixNano())
	created := time.Now().Unix()
	if !req.Stream {
		if !sleep(r.Context(), ttft) {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"id": id, "object": "chat.completion", "created": created, "model": req.Model,
			"choices": []any{map[string]any{"index": 0, "message": map[string]string{"role": "assistant", "content": strings.Join(toks, "")}, "finish_reason": finish}},
		})
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Simulated", "true")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	bw := bufio.NewWriter(w)
	write := func(delta map[string]string, finish any) bool {
		b, _ := json.Marshal(map[string]any{
			"id": id, "object": "chat.completion.chunk", "created": created, "model": req.Model,
			"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}},
		})
		fmt.Fprintf(bw, "data: %s\n\n", b)
		if err := bw.Flush(); err != nil {
			return false
		}
		if fl != nil {
			fl.Flush()
		}
		return true
	}
	if !sleep(r.Context(), ttft) {
		return
	}
	for i, tok := range toks {
		if i > 0 && !sleep(r.Context(), s.cfg.LLMTokenInterval) {
			return
		}
		delta := map[string]string{"content": tok}
		if i == 0 {
			delta["role"] = "assistant"
		}
		if !write(delta, nil) {
			return
		}
	}
	if !write(map[string]string{}, finish) {
		return
	}
	fmt.Fprint(bw, "data: [DONE]\n\n")
	_ = bw.Flush()
}

// tokens splits text into word-ish tokens that concatenate back to it:
// each token but the first starts with the space before its word.
func tokens(text string) []string {
	var out []string
	start := 0
	for i, r := range text {
		if r == ' ' && i > start && text[i-1] != ' ' {
			out = append(out, text[start:i])
			start = i
		}
	}
	if start < len(text) {
		out = append(out, text[start:])
	}
	return out
}
