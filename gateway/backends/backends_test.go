package backends_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/voicegw/voicegw/gateway/backends"
	"github.com/voicegw/voicegw/loadtest/sim"
)

func startSim(t *testing.T, cfg sim.Config) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cfg.ASRDelay, cfg.LLMTTFT, cfg.TTSTTFB = 10*time.Millisecond, 10*time.Millisecond, 10*time.Millisecond
	cfg.LLMTokenInterval = time.Millisecond
	cfg.Logger = quietLogger()
	_, url, err := sim.Listen(ctx, "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	return url
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func ep(url string) backends.Endpoint {
	return backends.Endpoint{Name: "test", URL: url, Model: "m", Timeout: 500 * time.Millisecond}
}

func readAll(t *testing.T, s backends.ChatStream) (string, error) {
	t.Helper()
	var sb strings.Builder
	for {
		d, err := s.Next()
		if errors.Is(err, io.EOF) {
			return sb.String(), nil
		}
		if err != nil {
			return sb.String(), err
		}
		sb.WriteString(d)
	}
}

func TestLLMAgainstSimulator(t *testing.T) {
	url := startSim(t, sim.Config{LLMScript: []sim.Rule{{Match: "hours", Reply: "We open at nine. We close at five."}}})
	llm := backends.NewLLM(backends.LLMConfig{Endpoint: ep(url)})
	s, err := llm.Stream(context.Background(), backends.ChatRequest{Messages: []backends.Message{{Role: "user", Content: "What are your hours?"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := readAll(t, s)
	if err != nil || got != "We open at nine. We close at five." {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestTTSAgainstSimulator(t *testing.T) {
	url := startSim(t, sim.Config{})
	tts := backends.NewTTS(backends.TTSConfig{Endpoint: ep(url)})
	s, err := tts.Speak(context.Background(), "Hello there, this is a test.")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	buf := make([]int16, 1000)
	total, loud := 0, 0
	for {
		n, err := s.Read(buf)
		for _, v := range buf[:n] {
			if v > 1000 || v < -1000 {
				loud++
			}
		}
		total += n
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if s.SampleRate() != 24000 || total < 24000 || loud < total/10 {
		t.Errorf("rate %d, %d samples, %d loud: want over a second of audible 24 kHz speech", s.SampleRate(), total, loud)
	}
}

func TestASRAgainstSimulator(t *testing.T) {
	url := startSim(t, sim.Config{ASRScript: []string{"first utterance", "second utterance"}})
	for _, mode := range []string{"realtime", "batch"} {
		t.Run(mode, func(t *testing.T) {
			st, err := backends.DialASR(context.Background(), backends.ASRConfig{Endpoint: ep(url), Mode: mode})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			frame := make([]int16, 320)
			for i := range frame {
				frame[i] = int16(i * 50)
			}
			var finals []string
			for range 2 {
				for range 10 {
					if err := st.Append(frame); err != nil {
						t.Fatal(err)
					}
				}
				if err := st.Commit(); err != nil {
					t.Fatal(err)
				}
				for ev := range st.Events() {
					if ev.Err != nil {
						t.Fatal(ev.Err)
					}
					if ev.Final {
						finals = append(finals, ev.Text)
						break
					}
				}
			}
			if len(finals) != 2 || finals[0] == "" || finals[0] == finals[1] {
				t.Errorf("finals %q, want two successive scripted transcripts", finals)
			}
		})
	}
}

// TestRealtimeEmptyCommit: committing nothing gives an empty final, not a
// broken stream.
func TestRealtimeEmptyCommit(t *testing.T) {
	url := startSim(t, sim.Config{})
	st, err := backends.DialASR(context.Background(), backends.ASRConfig{Endpoint: ep(url)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Commit(); err != nil {
		t.Fatal(err)
	}
	ev := <-st.Events()
	if ev.Err != nil || !ev.Final || ev.Text != "" {
		t.Fatalf("got %+v, want an empty final", ev)
	}
}

// TestBadServers: every malformed or silent reply is a clear, classified
// error; nothing hangs.
func TestBadServers(t *testing.T) {
	stall := make(chan struct{})
	defer close(stall)
	cases := []struct {
		name    string
		handler http.HandlerFunc
		want    error
	}{
		{"html 500", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(500)
			_, _ = w.Write([]byte("<html><body>Internal error</body></html>"))
		}, backends.ErrStatus},
		{"json error 429", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(429)
			_, _ = w.Write([]byte(`{"error":{"message":"slow down","type":"rate_limit"}}`))
		}, backends.ErrStatus},
		{"wrong content type", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"choices":[]}`))
		}, backends.ErrMalformed},
		{"never answers", func(w http.ResponseWriter, r *http.Request) {
			// Read the body so the server notices when the client gives up.
			_, _ = io.Copy(io.Discard, r.Body)
			select {
			case <-stall:
			case <-r.Context().Done():
			}
		}, backends.ErrTimeout},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(c.handler)
			defer srv.Close()
			llm := backends.NewLLM(backends.LLMConfig{Endpoint: ep(srv.URL)})
			_, err := llm.Stream(context.Background(), backends.ChatRequest{Messages: []backends.Message{{Role: "user", Content: "hi"}}})
			var be *backends.Error
			if !errors.Is(err, c.want) || !errors.As(err, &be) || be.Backend != "test" {
				t.Fatalf("LLM: %v, want %v in a *backends.Error", err, c.want)
			}
			if c.name == "wrong content type" {
				return // a JSON body is fine for TTS only if it is audio
			}
			tts := backends.NewTTS(backends.TTSConfig{Endpoint: ep(srv.URL)})
			if _, err := tts.Speak(context.Background(), "hi"); !errors.Is(err, c.want) {
				t.Fatalf("TTS: %v, want %v", err, c.want)
			}
		})
	}
}

func TestStreamsFailMidway(t *testing.T) {
	stall := make(chan struct{})
	defer close(stall)
	sse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write([]byte("data: {\"choices\":[{\"delta\":{\"content\":\"Hello\"}}]}\n\n"))
		w.(http.Flusher).Flush()
		if r.URL.Query().Get("garbage") != "" {
			_, _ = w.Write([]byte("data: {not json\n\n"))
			return
		}
		select { // stall mid-stream
		case <-stall:
		case <-r.Context().Done():
		}
	}))
	defer sse.Close()
	llm := backends.NewLLM(backends.LLMConfig{Endpoint: ep(sse.URL)})
	s, err := llm.Stream(context.Background(), backends.ChatRequest{Messages: []backends.Message{{Role: "user", Content: "hi"}}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := readAll(t, s)
	s.Close()
	if got != "Hello" || !errors.Is(err, backends.ErrTimeout) {
		t.Errorf("stalled stream: %q, %v; want Hello then ErrTimeout", got, err)
	}
	// Garbage after a good event: the good delta, then ErrMalformed.
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write([]byte("data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\ndata: {not json\n\n"))
	}))
	defer garbage.Close()
	s, err = backends.NewLLM(backends.LLMConfig{Endpoint: ep(garbage.URL)}).Stream(context.Background(), backends.ChatRequest{Messages: []backends.Message{{Role: "user", Content: "hi"}}})
	if err != nil {
		t.Fatal(err)
	}
	got, err = readAll(t, s)
	s.Close()
	if got != "Hi" || !errors.Is(err, backends.ErrMalformed) {
		t.Errorf("garbage event: %q, %v; want Hi then ErrMalformed", got, err)
	}

	odd := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "audio/pcm")
		_, _ = w.Write([]byte{1, 2, 3, 4, 5})
	}))
	defer odd.Close()
	tts := backends.NewTTS(backends.TTSConfig{Endpoint: ep(odd.URL)})
	st, err := tts.Speak(context.Background(), "hi")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	buf := make([]int16, 16)
	var rerr error
	for rerr == nil {
		_, rerr = st.Read(buf)
	}
	if !errors.Is(rerr, backends.ErrMalformed) {
		t.Errorf("odd PCM length: %v, want ErrMalformed", rerr)
	}
}

func TestCancelEndsStreamsWithoutLeaks(t *testing.T) {
	url := startSim(t, sim.Config{LLMScript: []sim.Rule{{Match: "*", Reply: strings.Repeat("word ", 2000)}}})
	before := runtime.NumGoroutine()
	for range 10 {
		ctx, cancel := context.WithCancel(context.Background())
		s, err := backends.NewLLM(backends.LLMConfig{Endpoint: ep(url)}).Stream(ctx, backends.ChatRequest{Messages: []backends.Message{{Role: "user", Content: "x"}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Next(); err != nil {
			t.Fatal(err)
		}
		cancel()
		for {
			if _, err := s.Next(); err != nil {
				if !errors.Is(err, context.Canceled) {
					t.Errorf("after cancel: %v, want context.Canceled", err)
				}
				break
			}
		}
		s.Close()
		a, err := backends.DialASR(context.Background(), backends.ASRConfig{Endpoint: ep(url)})
		if err != nil {
			t.Fatal(err)
		}
		a.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+3 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+3 {
		t.Errorf("goroutines: %d before, %d after", before, n)
	}
}
