package sim

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"github.com/voicegw/voicegw/media"
)

const (
	// maxRealtimeBuffer bounds the audio buffered between commits, as
	// OpenAI's 15 MiB.
	maxRealtimeBuffer = 15 << 20
	// maxRealtimeMessage bounds one client event.
	maxRealtimeMessage = 4 << 20
)

// transcriptJob is one committed utterance awaiting its transcript.
type transcriptJob struct {
	item string
	text string
	due  time.Time
}

// realtime serves one Realtime transcription session. The reader loop
// handles client events; one writer goroutine sends transcripts in commit
// order, each ASRDelay (or a draw from ASRLatency) after its commit.
func (s *Server) realtime(w http.ResponseWriter, r *http.Request) {
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	ws, err := up.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	s.conns.Add(1)
	defer s.conns.Done()
	defer ws.Close()
	ws.SetReadLimit(maxRealtimeMessage)
	s.count(func(st *Stats) { st.RealtimeSessions++ })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.closing:
			_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "simulated backends shutting down"), time.Now().Add(time.Second))
			_ = ws.Close()
		case <-ctx.Done():
		}
	}()

	var wmu sync.Mutex
	seq := 0
	send := func(v map[string]any) {
		wmu.Lock()
		defer wmu.Unlock()
		seq++
		v["event_id"] = fmt.Sprintf("event_sim_%d", seq)
		_ = ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_ = ws.WriteJSON(v)
	}
	sendErr := func(code, msg, clientEvent string) {
		s.count(func(st *Stats) { st.Rejected++ })
		e := map[string]any{"type": "invalid_request_error", "code": code, "message": msg, "param": nil}
		if clientEvent != "" {
			e["event_id"] = clientEvent
		}
		send(map[string]any{"type": "error", "error": e})
	}

	jobs := make(chan transcriptJob, 64)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for j := range jobs {
			if !sleep(ctx, time.Until(j.due)) {
				return
			}
			half := len(j.text) / 2
			for half < len(j.text) && !utf8.RuneStart(j.text[half]) {
				half++
			}
			for _, d := range []string{j.text[:half], j.text[half:]} {
				if d != "" {
					send(map[string]any{"type": "conversation.item.input_audio_transcription.delta", "item_id": j.item, "content_index": 0, "delta": d})
				}
			}
			send(map[string]any{"type": "conversation.item.input_audio_transcription.completed", "item_id": j.item, "content_index": 0, "transcript": j.text})
		}
	}()
	defer func() {
		cancel() // pending transcripts are dropped
		close(jobs)
		wg.Wait()
	}()

	session := map[string]any{
		"id": "sess_sim", "object": "realtime.transcription_session", "simulated": true,
		"input_audio_format": "pcm16", "input_audio_transcription": nil, "turn_detection": nil,
	}
	send(map[string]any{"type": "transcription_session.created", "session": session})
	buffered, items, prev := 0, 0, ""
	for {
		_, b, err := ws.ReadMessage()
		if err != nil {
			return
		}
		var ev struct {
			Type    string          `json:"type"`
			EventID string          `json:"event_id"`
			Audio   *string         `json:"audio"`
			Session json.RawMessage `json:"session"`
		}
		if err := json.Unmarshal(b, &ev); err != nil {
			sendErr("invalid_json", "the client event is not JSON", "")
			continue
		}
		switch ev.Type {
		case "transcription_session.update":
			var upd struct {
				InputAudioFormat        string          `json:"input_audio_format"`
				InputAudioTranscription json.RawMessage `json:"input_audio_transcription"`
			}
			if len(ev.Session) > 0 && json.Unmarshal(ev.Session, &upd) != nil {
				sendErr("invalid_value", "session must be an object", ev.EventID)
				continue
			}
			if upd.InputAudioFormat != "" && upd.InputAudioFormat != "pcm16" {
				sendErr("invalid_value", "the simulated ASR takes input_audio_format pcm16 only", ev.EventID)
				continue
			}
			if len(upd.InputAudioTranscription) > 0 {
				session["input_audio_transcription"] = upd.InputAudioTranscription
			}
			send(map[string]any{"type": "transcription_session.updated", "session": session})
		case "input_audio_buffer.append":
			if ev.Audio == nil {
				sendErr("missing_required_parameter", "missing required parameter: 'audio'", ev.EventID)
				continue
			}
			pcm, err := base64.StdEncoding.DecodeString(*ev.Audio)
			switch {
			case err != nil:
				sendErr("invalid_value", "audio is not valid base64", ev.EventID)
				continue
			case len(pcm)%2 != 0:
				sendErr("invalid_value", fmt.Sprintf("audio has %d bytes: pcm16 needs an even number", len(pcm)), ev.EventID)
				continue
			case buffered+len(pcm) > maxRealtimeBuffer:
				sendErr("input_audio_buffer_full", "the input audio buffer is full (15 MiB); commit or clear it", ev.EventID)
				continue
			}
			buffered += len(pcm)
			s.count(func(st *Stats) { st.Appends++ })
		case "input_audio_buffer.clear":
			buffered = 0
			send(map[string]any{"type": "input_audio_buffer.cleared"})
		case "input_audio_buffer.commit":
			if buffered == 0 {
				sendErr("input_audio_buffer_commit_empty", "Error committing input audio buffer: the buffer is empty.", ev.EventID)
				continue
			}
			buffered = 0
			items++
			id := fmt.Sprintf("item_sim_%d", items)
			s.count(func(st *Stats) { st.Commits++ })
			send(map[string]any{"type": "input_audio_buffer.committed", "previous_item_id": nilIfEmpty(prev), "item_id": id})
			prev = id
			select {
			case jobs <- transcriptJob{item: id, text: s.nextTranscript(), due: time.Now().Add(s.asrDelay())}:
			default:
				sendErr("rate_limit_exceeded", "too many utterances awaiting transcripts", ev.EventID)
			}
		default:
			sendErr("unknown_event", fmt.Sprintf("Invalid value: %q. The simulated ASR supports transcription_session.update and input_audio_buffer.append, commit and clear.", clip(ev.Type, 64)), ev.EventID)
		}
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func clip(s string, n int) string {
	if len(s) > n {
		s = strings.ToValidUTF8(s[:n], "") + "…"
	}
	return s
}

// transcriptions serves batch transcription: a multipart upload whose
// "file" must be a WAV file; the reply is the next scripted transcript.
func (s *Server) transcriptions(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 32<<20)
	if err := r.ParseMultipartForm(8 << 20); err != nil {
		s.reject(w, http.StatusBadRequest, "invalid_request", "expected multipart/form-data: "+err.Error())
		return
	}
	defer r.MultipartForm.RemoveAll()
	f, _, err := r.FormFile("file")
	if err != nil {
		s.reject(w, http.StatusBadRequest, "missing_required_parameter", `missing required parameter: 'file'`)
		return
	}
	audio, err := media.ReadWAV(f)
	f.Close()
	if err != nil {
		s.reject(w, http.StatusBadRequest, "invalid_file_format", "the simulated ASR reads WAV files only: "+err.Error())
		return
	}
	format := r.FormValue("response_format")
	switch format {
	case "", "json", "text", "verbose_json":
	default:
		s.reject(w, http.StatusBadRequest, "invalid_value", fmt.Sprintf("response_format %q is not supported by the simulated ASR", clip(format, 32)))
		return
	}
	s.count(func(st *Stats) { st.Transcriptions++ })
	if !sleep(r.Context(), s.asrDelay()) {
		return
	}
	text := s.nextTranscript()
	switch format {
	case "text":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, text)
	case "verbose_json":
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"task": "transcribe", "language": "english", "duration": audio.Duration().Seconds(), "text": text})
	default:
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"text": text})
	}
}
