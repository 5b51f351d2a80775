package sim

import (
	"context"
	"net/http"
	"time"
)

// delay is the delay for one request: drawn from l when it is set, else
// fixed.
func (s *Server) delay(l Latency, fixed time.Duration) time.Duration {
	if l.IsZero() {
		return fixed
	}
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	return l.Sample(s.rng)
}

func (s *Server) asrDelay() time.Duration { return s.delay(s.cfg.ASRLatency, s.cfg.ASRDelay) }
func (s *Server) llmTTFT() time.Duration  { return s.delay(s.cfg.LLMTTFTLatency, s.cfg.LLMTTFT) }
func (s *Server) ttsTTFB() time.Duration  { return s.delay(s.cfg.TTSTTFBLatency, s.cfg.TTSTTFB) }

// fate is what becomes of one request.
type fate uint8

const (
	serve fate = iota
	fail
	stall
)

// fate draws a request's fate: fail with probability failRate, stall with
// stallRate, else serve. With both rates 0 it draws nothing.
func (s *Server) fate(failRate, stallRate float64) fate {
	if failRate <= 0 && stallRate <= 0 {
		return serve
	}
	s.rngMu.Lock()
	u := s.rng.Float64()
	s.rngMu.Unlock()
	switch {
	case u < failRate:
		return fail
	case u < failRate+stallRate:
		return stall
	}
	return serve
}

// failure answers with the injected server error, after delay unless
// the client goes first.
func (s *Server) failure(w http.ResponseWriter, r *http.Request, delay time.Duration) {
	if !sleep(r.Context(), delay) {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Simulated", "true")
	w.WriteHeader(http.StatusInternalServerError)
	_, _ = w.Write([]byte(`{"error":{"message":"simulated failure","type":"server_error"}}` + "\n"))
}

// stall sends a 200 with w's headers at once and then nothing, until the
// client goes away, the server shuts down or StallMax passes; then it cuts
// the connection (http.ErrAbortHandler), so that a client still reading
// sees the response end early rather than complete.
func (s *Server) stall(w http.ResponseWriter, r *http.Request) {
	s.count(func(st *Stats) { st.Stalled++ })
	defer s.count(func(st *Stats) { st.Stalled-- })
	w.Header().Set("X-Simulated", "true")
	w.WriteHeader(http.StatusOK)
	if fl, ok := w.(http.Flusher); ok {
		fl.Flush()
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.StallMax)
	defer cancel()
	select {
	case <-ctx.Done():
	case <-s.closing:
	}
	panic(http.ErrAbortHandler)
}
