package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"sync"
	"testing"
	"time"
)

// fast runs simulated backends with no delays and cfg's injections.
func fast(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	cfg.Logger = quiet()
	cfg.LLMTTFTLatency, cfg.TTSTTFBLatency, cfg.LLMTokenInterval = Fixed(0), Fixed(0), time.Nanosecond
	cfg.LLMScript = []Rule{{Match: "*", Reply: "Sure."}}
	return start2(t, cfg)
}

// start2 is start without its delay defaults.
func start2(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, url, err := Listen(ctx, "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		<-s.Done()
	})
	return s, url
}

func post(ctx context.Context, url, path string, body any) (*http.Response, error) {
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+path, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	return http.DefaultClient.Do(req)
}

var (
	chatBody   = map[string]any{"model": "m", "stream": true, "messages": []map[string]string{{"role": "user", "content": "hi"}}}
	speechBody = map[string]any{"model": "tts", "input": "Hi.", "response_format": "pcm"}
)

const failureBody = `{"error":{"message":"simulated failure","type":"server_error"}}`

// TestFailRate: over 400 requests per role, the share answered 500 is the
// configured rate within a binomial bound (4σ), every failure carries the
// OpenAI-style error body, the rest succeed, and Stats counts them.
func TestFailRate(t *testing.T) {
	const n, rate = 400, 0.25
	for _, c := range []struct {
		role, path string
		body       any
		cfg        Config
		failures   func(Stats) int
		requests   func(Stats) int
	}{
		{"LLM", "/v1/chat/completions", chatBody, Config{LLMFailRate: rate}, func(s Stats) int { return s.LLMFailures }, func(s Stats) int { return s.Chats }},
		{"TTS", "/v1/audio/speech", speechBody, Config{TTSFailRate: rate}, func(s Stats) int { return s.TTSFailures }, func(s Stats) int { return s.Speeches }},
	} {
		c.cfg.Seed = 11
		s, url := fast(t, c.cfg)
		failed := 0
		for range n {
			resp, err := post(context.Background(), url, c.path, c.body)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatalf("%s: reading: %v", c.role, err)
			}
			switch resp.StatusCode {
			case http.StatusInternalServerError:
				failed++
				if string(bytes.TrimSpace(b)) != failureBody || resp.Header.Get("Content-Type") != "application/json" {
					t.Fatalf("%s failure: %s %q, want application/json %s", c.role, resp.Header.Get("Content-Type"), b, failureBody)
				}
			case http.StatusOK:
				if len(b) == 0 {
					t.Fatalf("%s: empty success", c.role)
				}
			default:
				t.Fatalf("%s: status %d: %s", c.role, resp.StatusCode, b)
			}
		}
		sd := math.Sqrt(n * rate * (1 - rate))
		if math.Abs(float64(failed)-n*rate) > 4*sd {
			t.Errorf("%s: %d of %d failed, want %.0f±%.0f", c.role, failed, n, n*rate, 4*sd)
		}
		st := s.Stats()
		if c.failures(st) != failed || c.requests(st) != n || st.Rejected != 0 {
			t.Errorf("%s: stats %+v; want %d requests, %d failures", c.role, st, n, failed)
		}
	}
}

// waitStalled waits (bounded) until s has want stalled requests open.
func waitStalled(t *testing.T, s *Server, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().Stalled != want {
		if time.Now().After(deadline) {
			t.Fatalf("%d stalled requests open, want %d", s.Stats().Stalled, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestStallUntilCancel: a stalled request gets its 200 and headers and
// then nothing; when the client cancels, the client's read ends with no
// byte received and the server's handler returns, long before StallMax.
func TestStallUntilCancel(t *testing.T) {
	for _, c := range []struct {
		role, path, ctype string
		body              any
		cfg               Config
		stalls            func(Stats) int
	}{
		{"LLM stream", "/v1/chat/completions", "text/event-stream", chatBody, Config{LLMStallRate: 1}, func(s Stats) int { return s.LLMStalls }},
		{"LLM", "/v1/chat/completions", "application/json", map[string]any{"messages": []map[string]string{{"role": "user", "content": "hi"}}}, Config{LLMStallRate: 1}, func(s Stats) int { return s.LLMStalls }},
		{"TTS", "/v1/audio/speech", "audio/pcm", speechBody, Config{TTSStallRate: 1}, func(s Stats) int { return s.TTSStalls }},
	} {
		s, url := fast(t, c.cfg)
		ctx, cancel := context.WithCancel(context.Background())
		resp, err := post(ctx, url, c.path, c.body)
		if err != nil {
			t.Fatalf("%s: %v", c.role, err)
		}
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != c.ctype {
			t.Errorf("%s: status %d, type %q; want 200 %s", c.role, resp.StatusCode, resp.Header.Get("Content-Type"), c.ctype)
		}
		waitStalled(t, s, 1)
		read := make(chan int, 1)
		go func() {
			b, _ := io.ReadAll(resp.Body)
			read <- len(b)
		}()
		// The server's handler is in its stall: whatever it had to send
		// before cancel is sent by now. Give it 20 ms more to misbehave.
		time.Sleep(20 * time.Millisecond)
		cancel()
		select {
		case n := <-read:
			if n != 0 {
				t.Errorf("%s: %d bytes arrived during the stall", c.role, n)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the read did not end on cancel", c.role)
		}
		resp.Body.Close()
		waitStalled(t, s, 0) // the handler has returned
		if st := s.Stats(); c.stalls(st) != 1 {
			t.Errorf("%s: stats %+v, want 1 stall", c.role, st)
		}
	}
}

// TestStallMax: a client that never gives up sees the response cut after
// StallMax with nothing in it.
func TestStallMax(t *testing.T) {
	s, url := fast(t, Config{LLMStallRate: 1, TTSStallRate: 1, StallMax: 50 * time.Millisecond})
	for _, c := range []struct {
		path string
		body any
	}{{"/v1/chat/completions", chatBody}, {"/v1/audio/speech", speechBody}} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		resp, err := post(ctx, url, c.path, c.body)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if len(b) != 0 || !errors.Is(err, io.ErrUnexpectedEOF) || ctx.Err() != nil {
			t.Errorf("%s: %d bytes, %v (ctx %v); want none, then the response cut short", c.path, len(b), err, ctx.Err())
		}
		cancel()
	}
	waitStalled(t, s, 0)
}

// TestStallEndsOnShutdown: shutting down cuts stalled requests at once,
// rather than waiting out the grace period or StallMax.
func TestStallEndsOnShutdown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s, url, err := Listen(ctx, "127.0.0.1:0", Config{LLMStallRate: 1, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	for range 3 {
		resp, err := post(context.Background(), url, "/v1/chat/completions", chatBody)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		})
	}
	waitStalled(t, s, 3)
	began := time.Now()
	cancel()
	<-s.Done()
	if took := time.Since(began); took > time.Second {
		t.Errorf("shutdown took %s with stalled requests; want them cut at once", took)
	}
	if st := s.Stats(); st.Stalled != 0 || st.LLMStalls != 3 {
		t.Errorf("stats %+v", st)
	}
}
