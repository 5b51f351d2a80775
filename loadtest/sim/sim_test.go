package sim

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/voicegw/voicegw/media"
	"github.com/voicegw/voicegw/media/mediatest"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// start runs simulated backends with short delays on loopback.
func start(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cfg.Logger = quiet()
	if cfg.ASRDelay == 0 {
		cfg.ASRDelay = 5 * time.Millisecond
	}
	cfg.LLMTTFT, cfg.LLMTokenInterval = time.Millisecond, time.Millisecond
	if cfg.TTSTTFB == 0 {
		cfg.TTSTTFB = time.Millisecond
	}
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

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestIndexSaysSimulated(t *testing.T) {
	_, url := start(t, Config{})
	idx := get(t, url+"/")
	for _, want := range []string{"SIMULATED", "/v1/realtime", "/v1/audio/transcriptions", "/v1/chat/completions", "/v1/audio/speech", "/healthz"} {
		if !strings.Contains(idx, want) {
			t.Errorf("index lacks %q:\n%s", want, idx)
		}
	}
	if h := get(t, url+"/healthz"); !strings.HasPrefix(h, "ok") {
		t.Errorf("healthz: %q", h)
	}
}

// rtClient is a bare Realtime protocol client.
type rtClient struct {
	t  *testing.T
	ws *websocket.Conn
}

func dialRT(t *testing.T, url string) *rtClient {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(url, "http")+"/v1/realtime?intent=transcription", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	return &rtClient{t, ws}
}

func (c *rtClient) send(v any) {
	c.t.Helper()
	if err := c.ws.WriteJSON(v); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rtClient) next() map[string]any {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	var ev map[string]any
	if err := c.ws.ReadJSON(&ev); err != nil {
		c.t.Fatal(err)
	}
	return ev
}

func errCode(ev map[string]any) string {
	if ev["type"] != "error" {
		return ""
	}
	e, _ := ev["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

func pcm16(n int) string {
	b := make([]byte, 2*n)
	for i := range n {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(int16(1000*math.Sin(float64(i)/5))))
	}
	return base64.StdEncoding.EncodeToString(b)
}

func TestRealtimeProtocol(t *testing.T) {
	s, url := start(t, Config{ASRScript: []string{"first thing", "second thing"}})
	c := dialRT(t, url)
	if ev := c.next(); ev["type"] != "transcription_session.created" {
		t.Fatalf("first event %v, want transcription_session.created", ev)
	}
	c.send(map[string]any{"type": "transcription_session.update", "session": map[string]any{
		"input_audio_format": "pcm16", "input_audio_transcription": map[string]any{"model": "m"}, "turn_detection": nil}})
	if ev := c.next(); ev["type"] != "transcription_session.updated" {
		t.Fatalf("after update: %v", ev)
	}
	// Protocol errors, each an error event; the session goes on.
	bad := []struct {
		event any
		code  string
	}{
		{map[string]any{"type": "input_audio_buffer.commit"}, "input_audio_buffer_commit_empty"},
		{map[string]any{"type": "input_audio_buffer.append", "audio": "%%%not base64"}, "invalid_value"},
		{map[string]any{"type": "input_audio_buffer.append", "audio": base64.StdEncoding.EncodeToString([]byte{1, 2, 3})}, "invalid_value"},
		{map[string]any{"type": "input_audio_buffer.append"}, "missing_required_parameter"},
		{map[string]any{"type": "response.create"}, "unknown_event"},
		{"not an object", "invalid_json"},
	}
	for _, b := range bad {
		c.send(b.event)
		if ev := c.next(); errCode(ev) != b.code {
			t.Errorf("sent %v: got %v, want error %s", b.event, ev, b.code)
		}
	}
	// A cleared buffer is empty.
	c.send(map[string]any{"type": "input_audio_buffer.append", "audio": pcm16(480)})
	c.send(map[string]any{"type": "input_audio_buffer.clear"})
	if ev := c.next(); ev["type"] != "input_audio_buffer.cleared" {
		t.Fatalf("after clear: %v", ev)
	}
	c.send(map[string]any{"type": "input_audio_buffer.commit"})
	if ev := c.next(); errCode(ev) != "input_audio_buffer_commit_empty" {
		t.Fatalf("commit after clear: %v", ev)
	}
	// Two utterances, committed back to back: transcripts in order.
	for range 2 {
		for range 5 {
			c.send(map[string]any{"type": "input_audio_buffer.append", "audio": pcm16(480)})
		}
		c.send(map[string]any{"type": "input_audio_buffer.commit"})
	}
	var committed []string
	deltas := map[string]string{}
	var finals []string
	for len(finals) < 2 {
		ev := c.next()
		item, _ := ev["item_id"].(string)
		switch ev["type"] {
		case "input_audio_buffer.committed":
			committed = append(committed, item)
		case "conversation.item.input_audio_transcription.delta":
			deltas[item] += ev["delta"].(string)
		case "conversation.item.input_audio_transcription.completed":
			tr := ev["transcript"].(string)
			if deltas[item] != tr {
				t.Errorf("deltas %q do not add up to %q", deltas[item], tr)
			}
			if len(finals) >= len(committed) || committed[len(finals)] != item {
				t.Errorf("completed %s out of order (committed %v)", item, committed)
			}
			finals = append(finals, tr)
		default:
			t.Fatalf("unexpected %v", ev)
		}
	}
	if finals[0] != "first thing" || finals[1] != "second thing" {
		t.Errorf("finals %q, want the script in order", finals)
	}
	st := s.Requests()
	if st.RealtimeSessions != 1 || st.Commits != 2 || st.Appends != 11 || st.Rejected != 7 {
		t.Errorf("stats %+v", st)
	}
}

func TestRealtimeEndsOnShutdown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s, url, err := Listen(ctx, "127.0.0.1:0", Config{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	c := dialRT(t, url)
	c.next() // created
	cancel()
	select {
	case <-s.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("shutdown did not finish with a realtime session open")
	}
	_ = c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err = c.ws.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Errorf("session ended with %v, want a going-away close", err)
	}
}

func wavUpload(t *testing.T, file []byte, format string) (*http.Request, string) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("file", "a.wav")
	_, _ = fw.Write(file)
	_ = mw.WriteField("model", "whisper-1")
	if format != "" {
		_ = mw.WriteField("response_format", format)
	}
	_ = mw.Close()
	req, _ := http.NewRequest(http.MethodPost, "", &body)
	return req, mw.FormDataContentType()
}

func TestBatchTranscription(t *testing.T) {
	s, url := start(t, Config{ASRScript: []string{"one", "two"}})
	var wav bytes.Buffer
	if err := media.WriteWAV(&wav, 16000, make([]int16, 1600)); err != nil {
		t.Fatal(err)
	}
	post := func(file []byte, format string) (int, string, string) {
		req, ct := wavUpload(t, file, format)
		resp, err := http.Post(url+"/v1/audio/transcriptions", ct, req.Body)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}
	if code, ct, body := post(wav.Bytes(), "json"); code != 200 || ct != "application/json" || strings.TrimSpace(body) != `{"text":"one"}` {
		t.Errorf("json: %d %s %s", code, ct, body)
	}
	if code, _, body := post(wav.Bytes(), "text"); code != 200 || body != "two\n" {
		t.Errorf("text: %d %q", code, body)
	}
	if code, _, body := post([]byte("MP3 bytes, not a wav"), ""); code != 400 || !strings.Contains(body, "invalid_file_format") {
		t.Errorf("garbage file: %d %s", code, body)
	}
	if code, _, _ := post(wav.Bytes(), "srt"); code != 400 {
		t.Errorf("srt: %d, want 400", code)
	}
	if st := s.Requests(); st.Transcriptions != 2 || st.Rejected != 2 {
		t.Errorf("stats %+v", st)
	}
}

// chatEvents posts a chat request and returns the SSE data payloads.
func chatEvents(t *testing.T, url string, req map[string]any) []string {
	t.Helper()
	b, _ := json.Marshal(req)
	resp, err := http.Post(url+"/v1/chat/completions", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var out []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			out = append(out, d)
		} else if sc.Text() != "" {
			t.Errorf("unexpected line %q", sc.Text())
		}
	}
	return out
}

type simChunk struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Choices []struct {
		Delta struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
}

// reply decodes a chat stream into its text and finish reason.
func reply(t *testing.T, events []string) (text, finish string) {
	t.Helper()
	if len(events) < 3 || events[len(events)-1] != "[DONE]" {
		t.Fatalf("events %q: want chunks then [DONE]", events)
	}
	var id string
	for i, e := range events[:len(events)-1] {
		var c simChunk
		if err := json.Unmarshal([]byte(e), &c); err != nil {
			t.Fatalf("chunk %q: %v", e, err)
		}
		if c.Object != "chat.completion.chunk" || len(c.Choices) != 1 || (id != "" && c.ID != id) {
			t.Fatalf("chunk %q is not shaped like OpenAI's", e)
		}
		id = c.ID
		if (i == 0) != (c.Choices[0].Delta.Role == "assistant") {
			t.Errorf("chunk %d: role %q (only the first carries it)", i, c.Choices[0].Delta.Role)
		}
		last := i == len(events)-2
		if last != (c.Choices[0].FinishReason != nil) {
			t.Errorf("chunk %d: finish_reason %v (only the last carries it)", i, c.Choices[0].FinishReason)
		}
		if last {
			finish = *c.Choices[0].FinishReason
		}
		text += c.Choices[0].Delta.Content
	}
	return text, finish
}

func TestChat(t *testing.T) {
	s, url := start(t, Config{LLMScript: []Rule{{Match: "HOURS", Reply: "Nine to five, Monday to Friday."}, {Match: "hours", Reply: "never"}}})
	msgs := func(user string) []map[string]string {
		return []map[string]string{{"role": "system", "content": "be brief"}, {"role": "user", "content": "earlier"}, {"role": "assistant", "content": "ok"}, {"role": "user", "content": user}}
	}
	cases := []struct {
		user      string
		maxTokens int
		want      string
		finish    string
	}{
		{"What are your hours?", 0, "Nine to five, Monday to Friday.", "stop"},
		{"Is it raining?", 0, "You said: Is it raining. How else can I help?", "stop"},
		{"What are your hours?", 3, "Nine to five,", "length"},
	}
	for _, c := range cases {
		req := map[string]any{"model": "m", "messages": msgs(c.user), "stream": true}
		if c.maxTokens > 0 {
			req["max_tokens"] = c.maxTokens
		}
		events := chatEvents(t, url, req)
		text, finish := reply(t, events)
		if text != c.want || finish != c.finish {
			t.Errorf("%q: %q (%s), want %q (%s)", c.user, text, finish, c.want, c.finish)
		}
	}
	if n := len(s.ChatRequests()); n != 3 {
		t.Errorf("%d chat requests recorded", n)
	}
	// Refusals are OpenAI-style JSON errors.
	for _, body := range []string{`{"messages":[]}`, `not json`, `{"messages":[{"role":"user","content":"x"}],"max_tokens":-1}`} {
		resp, err := http.Post(url+"/v1/chat/completions", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var e struct {
			Error struct{ Message string } `json:"error"`
		}
		err = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != 400 || err != nil || e.Error.Message == "" {
			t.Errorf("%s: %d, %v, %+v", body, resp.StatusCode, err, e)
		}
	}
}

func TestTokensRejoin(t *testing.T) {
	for _, s := range []string{"", "one", " lead", "two  spaces here", "trail ", "Hello, world. How are you?"} {
		if got := strings.Join(tokens(s), ""); got != s {
			t.Errorf("tokens(%q) rejoin to %q", s, got)
		}
	}
	if n := len(tokens("We open at nine.")); n != 4 {
		t.Errorf("%d tokens, want one per word", n)
	}
}

func speak(t *testing.T, url string, body map[string]any) (*http.Response, []byte) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(url+"/v1/audio/speech", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, out
}

func TestSpeech(t *testing.T) {
	s, url := start(t, Config{})
	text := "Thanks for calling. We open at nine, and close at five."
	resp, pcm := speak(t, url, map[string]any{"model": "tts", "input": text, "voice": "alloy", "response_format": "pcm"})
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "audio/pcm" || len(pcm)%2 != 0 {
		t.Fatalf("status %d, type %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(pcm))
	}
	secs := float64(len(pcm)/2) / TTSRate
	if perChar := secs / float64(len(text)); perChar < 0.060 || perChar > 0.070 {
		t.Errorf("%.2f s for %d characters: %.0f ms each, want 60-70", secs, len(text), perChar*1000)
	}
	for _, bad := range []map[string]any{
		{"input": text, "response_format": "mp3"},
		{"input": "   ", "response_format": "pcm"},
		{"response_format": "pcm"},
		{"input": strings.Repeat("x", maxTTSInput+1), "response_format": "pcm"},
	} {
		if resp, _ := speak(t, url, bad); resp.StatusCode != 400 {
			t.Errorf("%v: status %d, want 400", bad, resp.StatusCode)
		}
	}
	if got := s.Spoken(); len(got) != 1 || got[0] != text {
		t.Errorf("spoken %q", got)
	}
}

// TestSpeechPacing: with TTSRealtime the audio takes at least its own
// length to arrive; it arrives in several flushed pieces either way.
func TestSpeechPacing(t *testing.T) {
	for _, realtime := range []bool{false, true} {
		_, url := start(t, Config{TTSRealtime: realtime})
		b, _ := json.Marshal(map[string]any{"input": "Just a moment please.", "response_format": "pcm"})
		began := time.Now()
		resp, err := http.Post(url+"/v1/audio/speech", "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		reads, total := 0, 0
		buf := make([]byte, 1<<16)
		for {
			n, err := resp.Body.Read(buf)
			if n > 0 {
				reads++
				total += n
			}
			if err != nil {
				break
			}
		}
		resp.Body.Close()
		took := time.Since(began)
		audio := time.Duration(total/2) * time.Second / TTSRate
		if realtime && took < audio*9/10 {
			t.Errorf("realtime: %s of audio arrived in %s", audio, took)
		}
		if realtime && reads < 5 {
			t.Errorf("realtime: audio arrived in %d reads, want it streamed", reads)
		}
	}
}

// TestVoiceIsSpeechLike: the synthetic voice is loud enough, not clipped,
// pitched like a voice, spread over formants rather than one tone, rises and
// falls by syllable, pauses at punctuation, and WebRTC's VAD calls it speech.
func TestVoiceIsSpeechLike(t *testing.T) {
	text := "Hello there, this is the simulated voice speaking. Thanks!"
	pcm := Synthesize(text, TTSRate)
	if again := Synthesize(text, TTSRate); !equal(pcm, again) {
		t.Error("the same text gave different audio")
	}
	// Streamed in odd-sized pieces it is the same audio.
	v := NewVoice(text, TTSRate)
	var streamed []int16
	for buf := make([]int16, 77); ; {
		n := v.Read(buf)
		if n == 0 {
			break
		}
		streamed = append(streamed, buf[:n]...)
	}
	if !equal(pcm, streamed) {
		t.Error("streamed voice differs from the whole")
	}
	var sum float64
	clipped := 0
	for _, x := range pcm {
		sum += float64(x) * float64(x)
		if x == 32767 || x == -32767 {
			clipped++
		}
	}
	rms := 20 * math.Log10(math.Sqrt(sum/float64(len(pcm)))/32768)
	if rms < -30 || rms > -12 || clipped > 0 {
		t.Errorf("level %.1f dBFS with %d clipped samples", rms, clipped)
	}
	// Syllables: 20 ms frame energies span a wide range.
	frame := TTSRate / 50
	var lo, hi float64 = math.Inf(1), 0
	for i := 0; i+frame <= len(pcm); i += frame {
		var e float64
		for _, x := range pcm[i : i+frame] {
			e += float64(x) * float64(x)
		}
		lo, hi = min(lo, e), max(hi, e)
	}
	if hi < 1000*max(lo, 1) {
		t.Errorf("frame energy from %.0f to %.0f: no syllable rhythm", lo, hi)
	}
	// Formants: energy over a spread of bands, no single tone dominating.
	bands := 0
	for _, f := range []float64{250, 500, 750, 1000, 1500, 2000, 2500} {
		if mediatest.ToneDB(pcm, TTSRate, f) > -75 {
			bands++
		}
	}
	if bands < 5 {
		t.Errorf("energy in %d of 7 bands; want a speech-like spread", bands)
	}
	// The gateway's VAD at 16 kHz calls most of it speech, and not all.
	rs, err := media.NewResampler(TTSRate, 16000)
	if err != nil {
		t.Fatal(err)
	}
	pcm16k := rs.Process(nil, pcm)
	vad, err := media.NewVAD(16000, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer vad.Close()
	speech, frames := 0, 0
	for i := 0; i+320 <= len(pcm16k); i += 320 {
		yes, err := vad.IsSpeech(pcm16k[i : i+320])
		if err != nil {
			t.Fatal(err)
		}
		frames++
		if yes {
			speech++
		}
	}
	if speech < frames/2 || speech == frames {
		t.Errorf("VAD: %d of %d frames speech; want most but not all", speech, frames)
	}
}

func equal(a, b []int16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestScripts(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	asr, err := LoadASRScript(write("asr.txt", "\ufeff# comment\nFirst line.\n\n  Second line.  \r\n"))
	if err != nil || len(asr) != 2 || asr[0] != "First line." || asr[1] != "Second line." {
		t.Errorf("asr script: %q, %v", asr, err)
	}
	rules, err := LoadLLMScript(write("llm.jsonl", "# rules\n{\"match\":\"hours\",\"reply\":\"Nine.\"}\n\n{\"match\":\"*\",\"reply\":\"Sorry.\"}\n"))
	if err != nil || len(rules) != 2 || rules[1].Match != "*" {
		t.Errorf("jsonl: %+v, %v", rules, err)
	}
	rules, err = LoadLLMScript(write("llm.yaml", "# rules\n- match: hours\n  reply: Nine.\n- match: \"*\"\n  reply: |\n    Sorry.\n"))
	if err != nil || len(rules) != 2 || rules[0].Reply != "Nine." || rules[1].Reply != "Sorry.\n" {
		t.Errorf("yaml: %+v, %v", rules, err)
	}
	bad := []struct {
		name, body, want string
		asr              bool
	}{
		{"empty.txt", "# nothing\n\n", "no transcripts", true},
		{"latin1.txt", "ok\ncaf\xe9\n", "latin1.txt:2: not valid UTF-8", true},
		{"a.jsonl", "{\"match\":\"a\",\"reply\":\"b\"}\n{\"match\":\"a\"}\n", "a.jsonl:2: \"reply\" is missing", false},
		{"b.jsonl", "{\"match\":\"a\",\"reply\":\"b\",\"extra\":1}\n", "b.jsonl:1: json: unknown field", false},
		{"c.jsonl", "{\"match\":\"a\",\"reply\":\"b\"} {}\n", "c.jsonl:1: more than one", false},
		{"d.jsonl", "match: a\n", "d.jsonl:1:", false},
		{"e.yaml", "- match: a\n  reply: b\n- match: c\n  answer: d\n", "e.yaml:4: unknown field \"answer\"", false},
		{"f.yaml", "match: a\n", "f.yaml:1: want a list", false},
		{"g.yaml", "- match: \"\"\n  reply: b\n", "g.yaml:1: \"match\" is missing", false},
		{"h.yaml", "- [a, b]\n", "h.yaml:1: want {match, reply}", false},
		{"i.yml", "- match: [a]\n  reply: b\n", "i.yml:1: \"match\" must be text", false},
		{"j.yaml", "- match: a\n\treply: b\n", "j.yaml", false},
	}
	for _, b := range bad {
		p := write(b.name, b.body)
		var err error
		if b.asr {
			_, err = LoadASRScript(p)
		} else {
			_, err = LoadLLMScript(p)
		}
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%s: %v, want an error containing %q", b.name, err, b.want)
		}
	}
	if _, err := LoadASRScript(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing file: %v", err)
	}
}

// BenchmarkVoice: 20 ms of simulated speech at 24 kHz.
func BenchmarkVoice(b *testing.B) {
	text := strings.Repeat("A sentence of simulated speech. ", 100)
	v := NewVoice(text, TTSRate)
	buf := make([]int16, TTSRate/50)
	b.ReportAllocs()
	for b.Loop() {
		if v.Read(buf) == 0 {
			v = NewVoice(text, TTSRate)
		}
	}
}
