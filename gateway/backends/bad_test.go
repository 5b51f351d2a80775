package backends_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/voicegw/voicegw/gateway/backends"
	"github.com/voicegw/voicegw/loadtest/sim"
	"github.com/voicegw/voicegw/media"
)

// wsServer serves the realtime route with script, after the upgrade.
func wsServer(t *testing.T, script func(ws *websocket.Conn)) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		script(ws)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// created answers the session update as a server does.
func created(ws *websocket.Conn) {
	_, _, _ = ws.ReadMessage() // transcription_session.update
	_ = ws.WriteJSON(map[string]any{"type": "transcription_session.created"})
}

// drain reads client events until the client goes away.
func drain(ws *websocket.Conn) {
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			return
		}
	}
}

// events reads a stream's events until it closes.
func events(t *testing.T, st backends.ASRStream) []backends.ASREvent {
	t.Helper()
	var out []backends.ASREvent
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-st.Events():
			if !ok {
				return out
			}
			out = append(out, ev)
		case <-timeout:
			t.Fatalf("events not closed; so far %+v", out)
		}
	}
}

func lastErr(evs []backends.ASREvent) error {
	if len(evs) == 0 {
		return nil
	}
	return evs[len(evs)-1].Err
}

func TestRealtimeDialFailures(t *testing.T) {
	stall := make(chan struct{})
	defer close(stall)
	refused := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l.Close()
		return "http://" + l.Addr().String()
	}()
	// Accepts TCP and never speaks HTTP.
	mute, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer mute.Close()
	go func() {
		for {
			c, err := mute.Accept()
			if err != nil {
				return
			}
			go func() { <-stall; c.Close() }()
		}
	}()
	unauthorized := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer right" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":{"message":"bad key","code":"invalid_api_key"}}`))
			return
		}
	}))
	defer unauthorized.Close()
	cases := []struct {
		name string
		url  string
		want error
	}{
		{"refused", refused, backends.ErrConnection},
		{"never speaks HTTP", "http://" + mute.Addr().String(), backends.ErrTimeout},
		{"upgrade refused", unauthorized.URL, backends.ErrStatus},
		{"no session event", wsServer(t, func(ws *websocket.Conn) { drain(ws) }), backends.ErrTimeout},
		{"error event", wsServer(t, func(ws *websocket.Conn) {
			_, _, _ = ws.ReadMessage()
			_ = ws.WriteJSON(map[string]any{"type": "error", "error": map[string]any{"code": "model_not_found", "message": "no such model"}})
			drain(ws)
		}), backends.ErrStatus},
		{"not JSON", wsServer(t, func(ws *websocket.Conn) {
			_ = ws.WriteMessage(websocket.TextMessage, []byte("<html>hello</html>"))
			drain(ws)
		}), backends.ErrMalformed},
		{"bad scheme", "ftp://127.0.0.1:1", backends.ErrConfig},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := ep(c.url)
			e.Timeout = 300 * time.Millisecond
			e.APIKey = "wrong"
			st, err := backends.DialASR(context.Background(), backends.ASRConfig{Endpoint: e})
			var be *backends.Error
			if st != nil || !errors.Is(err, c.want) || !errors.As(err, &be) || be.Op != "realtime dial" {
				t.Fatalf("got %v, %v; want %v from realtime dial", st, err, c.want)
			}
			if strings.Contains(err.Error(), "wrong") {
				t.Errorf("error %q shows the API key", err)
			}
		})
	}
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		url := wsServer(t, func(ws *websocket.Conn) { cancel(); drain(ws) })
		e := ep(url)
		e.Timeout = time.Minute
		_, err := backends.DialASR(ctx, backends.ASRConfig{Endpoint: e})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
	})
}

func TestRealtimeStreamFailures(t *testing.T) {
	frame := make([]int16, 320)
	cases := []struct {
		name   string
		script func(ws *websocket.Conn)
		want   error
	}{
		{"no transcript after commit", func(ws *websocket.Conn) { created(ws); drain(ws) }, backends.ErrTimeout},
		{"garbage frame", func(ws *websocket.Conn) {
			created(ws)
			_, _, _ = ws.ReadMessage()
			_ = ws.WriteMessage(websocket.TextMessage, []byte{0xff, 0x00})
			drain(ws)
		}, backends.ErrMalformed},
		{"endless deltas", func(ws *websocket.Conn) {
			created(ws)
			for range 40 {
				_ = ws.WriteJSON(map[string]any{"type": "conversation.item.input_audio_transcription.delta", "item_id": "a", "delta": strings.Repeat("la ", 300)})
			}
			drain(ws)
		}, backends.ErrMalformed},
		{"huge event", func(ws *websocket.Conn) {
			created(ws)
			_ = ws.WriteJSON(map[string]any{"type": "x", "pad": strings.Repeat("x", 2<<20)})
			drain(ws)
		}, backends.ErrMalformed},
		{"hangs up", func(ws *websocket.Conn) {
			created(ws)
			_, _, _ = ws.ReadMessage()
		}, backends.ErrConnection},
		{"closes politely", func(ws *websocket.Conn) {
			created(ws)
			_, _, _ = ws.ReadMessage()
			_ = ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"))
			drain(ws)
		}, backends.ErrClosed},
		{"transcription failed", func(ws *websocket.Conn) {
			created(ws)
			_, _, _ = ws.ReadMessage()
			_ = ws.WriteJSON(map[string]any{"type": "conversation.item.input_audio_transcription.failed", "item_id": "a", "error": map[string]any{"message": "decoder crashed"}})
			drain(ws)
		}, backends.ErrStatus},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := ep(wsServer(t, c.script))
			e.Timeout = 300 * time.Millisecond
			st, err := backends.DialASR(context.Background(), backends.ASRConfig{Endpoint: e})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			_ = st.Append(frame)
			_ = st.Commit()
			evs := events(t, st)
			err = lastErr(evs)
			var be *backends.Error
			if !errors.Is(err, c.want) || !errors.As(err, &be) || be.Op != "realtime stream" {
				t.Fatalf("events %+v; want the last to fail with %v", evs, c.want)
			}
			for _, ev := range evs[:len(evs)-1] {
				if ev.Err != nil {
					t.Errorf("more than one error: %+v", evs)
				}
			}
			if err := st.Append(frame); err == nil {
				t.Error("Append after the stream failed succeeded")
			}
		})
	}
}

// TestRealtimeWire checks what the client sends and that it reads past
// events it does not know.
func TestRealtimeWire(t *testing.T) {
	got := make(chan []map[string]any, 1)
	url := wsServer(t, func(ws *websocket.Conn) {
		var evs []map[string]any
		defer func() { got <- evs }()
		for {
			var ev map[string]any
			if err := ws.ReadJSON(&ev); err != nil {
				return
			}
			evs = append(evs, ev)
			switch ev["type"] {
			case "transcription_session.update":
				_ = ws.WriteJSON(map[string]any{"type": "transcription_session.updated"})
			case "input_audio_buffer.commit":
				_ = ws.WriteJSON(map[string]any{"type": "brand.new.event", "x": 1})
				_ = ws.WriteJSON(map[string]any{"type": "input_audio_buffer.committed", "item_id": "i1"})
				_ = ws.WriteJSON(map[string]any{"type": "conversation.item.input_audio_transcription.completed", "item_id": "i1", "transcript": "hello"})
			}
		}
	})
	e := ep(url)
	e.APIKey = "k"
	st, err := backends.DialASR(context.Background(), backends.ASRConfig{Endpoint: e, Language: "en"})
	if err != nil {
		t.Fatal(err)
	}
	frame := make([]int16, 320) // 20 ms at 16 kHz
	for range 3 {
		if err := st.Append(frame); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Clear(); err != nil {
		t.Fatal(err)
	}
	if err := st.Append(frame); err != nil {
		t.Fatal(err)
	}
	if err := st.Commit(); err != nil {
		t.Fatal(err)
	}
	ev := <-st.Events()
	if ev.Err != nil || !ev.Final || ev.Text != "hello" || ev.ItemID != "i1" {
		t.Fatalf("got %+v, want the final past the unknown event", ev)
	}
	st.Close()
	if err := st.Append(frame); !errors.Is(err, backends.ErrClosed) {
		t.Errorf("Append after Close: %v, want ErrClosed", err)
	}
	evs := <-got
	var types []string
	for _, ev := range evs {
		types = append(types, ev["type"].(string))
	}
	want := "transcription_session.update input_audio_buffer.append input_audio_buffer.append input_audio_buffer.append input_audio_buffer.clear input_audio_buffer.append input_audio_buffer.commit"
	if strings.Join(types, " ") != want {
		t.Fatalf("sent %v", types)
	}
	sess := evs[0]["session"].(map[string]any)
	tr := sess["input_audio_transcription"].(map[string]any)
	if sess["input_audio_format"] != "pcm16" || tr["model"] != "m" || tr["language"] != "en" || sess["turn_detection"] != nil {
		t.Errorf("session update %v", sess)
	}
	// 20 ms at 16 kHz becomes 20 ms at 24 kHz: 480 samples, 960 bytes.
	audio, _ := evs[1]["audio"].(string)
	if n := len(audio) * 3 / 4; n != 960 {
		t.Errorf("append carries %d bytes, want 960", n)
	}
}

func TestRealtimeEmptyAfterClear(t *testing.T) {
	url := startSim(t, sim.Config{})
	st, err := backends.DialASR(context.Background(), backends.ASRConfig{Endpoint: ep(url)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_ = st.Append(make([]int16, 320))
	_ = st.Clear()
	_ = st.Commit()
	if ev := <-st.Events(); ev.Err != nil || !ev.Final || ev.Text != "" {
		t.Fatalf("got %+v, want an empty final", ev)
	}
}

func TestBatchWireAndFailures(t *testing.T) {
	type upload struct {
		rate, samples       int
		model, format, lang string
		auth                string
	}
	got := make(chan upload, 4)
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if mt != "multipart/form-data" || r.URL.Path != "/v1/audio/transcriptions" {
			w.WriteHeader(400)
			return
		}
		form, err := multipart.NewReader(r.Body, params["boundary"]).ReadForm(1 << 20)
		if err != nil {
			w.WriteHeader(400)
			return
		}
		f, _ := form.File["file"][0].Open()
		a, err := media.ReadWAV(f)
		if err != nil {
			w.WriteHeader(400)
			return
		}
		got <- upload{a.Rate, len(a.Samples), form.Value["model"][0], form.Value["response_format"][0], form.Value["language"][0], r.Header.Get("Authorization")}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"text":"  batch words "}`))
	}))
	defer good.Close()
	e := ep(good.URL)
	e.APIKey = "k"
	st, err := backends.DialASR(context.Background(), backends.ASRConfig{Endpoint: e, Mode: "batch", Language: "de"})
	if err != nil {
		t.Fatal(err)
	}
	_ = st.Append(make([]int16, 1600))
	_ = st.Append(make([]int16, 1600))
	_ = st.Commit()
	if ev := <-st.Events(); ev.Err != nil || !ev.Final || ev.Text != "batch words" {
		t.Fatalf("got %+v", ev)
	}
	if u := <-got; u != (upload{16000, 3200, "m", "json", "de", "Bearer k"}) {
		t.Errorf("upload %+v", u)
	}
	// Nothing said: an empty final without a request.
	_ = st.Commit()
	if ev := <-st.Events(); ev.Err != nil || !ev.Final || ev.Text != "" {
		t.Fatalf("empty commit: %+v", ev)
	}
	st.Close()
	if _, ok := <-st.Events(); ok {
		t.Error("events open after Close")
	}
	if err := st.Commit(); !errors.Is(err, backends.ErrClosed) {
		t.Errorf("Commit after Close: %v", err)
	}

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
			_, _ = w.Write([]byte("<html><body><h1>Internal Server Error</h1></body></html>"))
		}, backends.ErrStatus},
		{"not json", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"txt":`))
		}, backends.ErrMalformed},
		{"wrong type", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte(`<p>hi</p>`))
		}, backends.ErrMalformed},
		{"never answers", func(_ http.ResponseWriter, r *http.Request) {
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
			e := ep(srv.URL)
			e.Timeout = 200 * time.Millisecond
			st, _ := backends.DialASR(context.Background(), backends.ASRConfig{Endpoint: e, Mode: "batch"})
			defer st.Close()
			_ = st.Append(make([]int16, 160))
			_ = st.Commit()
			evs := events(t, st)
			if err := lastErr(evs); !errors.Is(err, c.want) || len(evs) != 1 {
				t.Fatalf("events %+v, want one failing with %v", evs, c.want)
			}
		})
	}
}

func TestLLMWire(t *testing.T) {
	var body map[string]any
	var auth, accept string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewDecoder(r.Body).Decode(&body)
		auth, accept = r.Header.Get("Authorization"), r.Header.Get("Accept")
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		_, _ = w.Write([]byte("data: [DONE]\n\n"))
	}))
	defer srv.Close()
	e := ep(srv.URL + "/")
	e.APIKey = "sk-1"
	temp := 0.0
	s, err := backends.NewLLM(backends.LLMConfig{Endpoint: e}).Stream(context.Background(), backends.ChatRequest{
		Messages: []backends.Message{{Role: "system", Content: "s"}, {Role: "user", Content: "u"}}, MaxTokens: 64, Temperature: &temp})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("Next: %v, want io.EOF", err)
	}
	s.Close()
	s.Close() // idempotent
	b, _ := json.Marshal(body)
	want := `{"max_tokens":64,"messages":[{"content":"s","role":"system"},{"content":"u","role":"user"}],"model":"m","stream":true,"temperature":0}`
	if string(b) != want || auth != "Bearer sk-1" || accept != "text/event-stream" {
		t.Errorf("sent %s with %q, %q", b, auth, accept)
	}
}

// TestStreamsDeliverFirstBytesEarly: the first token and the first audio
// reach the caller while the server is still holding the rest back.
func TestStreamsDeliverFirstBytesEarly(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/audio/speech" {
			w.Header().Set("Content-Type", "audio/pcm")
			_, _ = w.Write([]byte{1, 0, 2, 0, 3})
			w.(http.Flusher).Flush()
			<-release
			_, _ = w.Write([]byte{0, 4, 0})
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write([]byte("data: {\"choices\":[{\"delta\":{\"content\":\"first\"}}]}\n\n"))
		w.(http.Flusher).Flush()
		<-release
		_, _ = w.Write([]byte("data: {\"choices\":[{\"delta\":{\"content\":\" second\"}}]}\n\ndata: [DONE]\n\n"))
	}))
	defer srv.Close()
	s, err := backends.NewLLM(backends.LLMConfig{Endpoint: ep(srv.URL)}).Stream(context.Background(), backends.ChatRequest{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if d, err := s.Next(); d != "first" || err != nil {
		t.Fatalf("first delta %q, %v", d, err)
	}
	sp, err := backends.NewTTS(backends.TTSConfig{Endpoint: ep(srv.URL)}).Speak(context.Background(), "hi")
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	buf := make([]int16, 16)
	if n, err := sp.Read(buf); n != 2 || err != nil || buf[0] != 1 || buf[1] != 2 {
		t.Fatalf("first read %d %v %v", n, err, buf[:n])
	}
	close(release)
	if d, err := s.Next(); d != " second" || err != nil {
		t.Fatalf("second delta %q, %v", d, err)
	}
	// The odd byte pairs with the next read's first: 3, then 4.
	var rest []int16
	for {
		n, err := sp.Read(buf)
		rest = append(rest, buf[:n]...)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			break
		}
	}
	if len(rest) != 2 || rest[0] != 3 || rest[1] != 4 {
		t.Errorf("rest %v", rest)
	}
}

// TestIdleTimeout: a stream that stalls after its first bytes fails after
// IdleTimeout, not the (long) first-byte Timeout.
func TestIdleTimeout(t *testing.T) {
	stall := make(chan struct{})
	defer close(stall)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "audio/pcm")
		_, _ = w.Write([]byte{1, 0})
		w.(http.Flusher).Flush()
		select {
		case <-stall:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	e := ep(srv.URL)
	e.Timeout, e.IdleTimeout = time.Hour, 100*time.Millisecond
	sp, err := backends.NewTTS(backends.TTSConfig{Endpoint: e}).Speak(context.Background(), "hi")
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	buf := make([]int16, 8)
	var rerr error
	for rerr == nil {
		_, rerr = sp.Read(buf)
	}
	var be *backends.Error
	if !errors.Is(rerr, backends.ErrTimeout) || !strings.Contains(rerr.Error(), "idle") || !errors.As(rerr, &be) || be.Op != "speech stream" {
		t.Fatalf("got %v, want an idle ErrTimeout from the speech stream", rerr)
	}
}

func TestTTSCancel(t *testing.T) {
	url := startSim(t, sim.Config{TTSRealtime: true})
	ctx, cancel := context.WithCancel(context.Background())
	sp, err := backends.NewTTS(backends.TTSConfig{Endpoint: ep(url)}).Speak(ctx, strings.Repeat("A long sentence to speak. ", 20))
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	buf := make([]int16, 480)
	if _, err := sp.Read(buf); err != nil {
		t.Fatal(err)
	}
	cancel()
	var rerr error
	for rerr == nil {
		_, rerr = sp.Read(buf)
	}
	if !errors.Is(rerr, context.Canceled) {
		t.Fatalf("after cancel: %v", rerr)
	}
}

func TestTTSRejectsNonAudio(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"error":"mp3 only"}`))
	}))
	defer srv.Close()
	_, err := backends.NewTTS(backends.TTSConfig{Endpoint: ep(srv.URL)}).Speak(context.Background(), "hi")
	if !errors.Is(err, backends.ErrMalformed) {
		t.Fatalf("got %v, want ErrMalformed", err)
	}
}

// TestNoLeaks runs every client through success, failure and cancellation,
// then checks the goroutines settle back.
func TestNoLeaks(t *testing.T) {
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	before := runtime.NumGoroutine()
	func() {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s, url, err := sim.Listen(ctx, "127.0.0.1:0", sim.Config{ASRDelay: time.Millisecond, LLMTTFT: time.Millisecond, LLMTokenInterval: time.Millisecond, TTSTTFB: time.Millisecond, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { cancel(); <-s.Done() }()
		stall := make(chan struct{})
		bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-stall:
			case <-r.Context().Done():
			}
		}))
		defer bad.Close()
		defer close(stall)
		for range 5 {
			for _, mode := range []string{"realtime", "batch"} {
				st, err := backends.DialASR(ctx, backends.ASRConfig{Endpoint: ep(url), Mode: mode})
				if err != nil {
					t.Fatal(err)
				}
				_ = st.Append(make([]int16, 320))
				_ = st.Commit()
				<-st.Events()
				_ = st.Append(make([]int16, 320))
				_ = st.Commit() // closed with a transcript in flight
				st.Close()
			}
			ls, err := backends.NewLLM(backends.LLMConfig{Endpoint: ep(url)}).Stream(ctx, backends.ChatRequest{Messages: []backends.Message{{Role: "user", Content: "hi there"}}})
			if err != nil {
				t.Fatal(err)
			}
			_, _ = ls.Next()
			ls.Close() // abandoned mid-reply
			sp, err := backends.NewTTS(backends.TTSConfig{Endpoint: ep(url)}).Speak(ctx, "Hello")
			if err != nil {
				t.Fatal(err)
			}
			_, _ = sp.Read(make([]int16, 100))
			sp.Close()
			e := ep(bad.URL)
			e.Timeout = 50 * time.Millisecond
			if _, err := backends.NewLLM(backends.LLMConfig{Endpoint: e}).Stream(ctx, backends.ChatRequest{}); !errors.Is(err, backends.ErrTimeout) {
				t.Fatalf("stalled LLM: %v", err)
			}
			if _, err := backends.DialASR(ctx, backends.ASRConfig{Endpoint: e}); err == nil {
				t.Fatal("dial to a plain HTTP server succeeded")
			}
		}
	}()
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("goroutines: %d before, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}
