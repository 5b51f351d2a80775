package backends

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// secret is a distinctive sentence a backend echoes into its errors.
const secret = "The quartz gyroscope drifts nine arcseconds per hour"

// TestErrorsCarryNoBackendText: an error body, an ASR error event and a
// model error chunk that quote the caller's or the model's words give
// errors (which are logged) with the status, the length and the error code
// only.
func TestErrorsCarryNoBackendText(t *testing.T) {
	body := fmt.Sprintf(`{"error":{"message":"bad request: %s","type":"invalid_request_error","code":"context_length_exceeded"}}`, secret)
	var errs []error
	errs = append(errs, statusError(&http.Response{Status: "400 Bad Request", Body: io.NopCloser(strings.NewReader(body))}))
	errs = append(errs, statusError(&http.Response{Status: "500 Internal Server Error", Body: io.NopCloser(strings.NewReader(secret))}))
	for _, ev := range []string{
		fmt.Sprintf(`{"type":"conversation.item.input_audio_transcription.failed","item_id":"i1","error":{"code":"audio_unintelligible","message":"heard %s"}}`, secret),
		fmt.Sprintf(`{"type":"error","error":{"code":"server_error","message":"%s"}}`, secret),
		`{"type":"` + secret + `"}`,
		`{"type":` + secret,
	} {
		got, _, err := decodeRealtimeEvent([]byte(ev))
		if strings.Contains(got.Text, "quartz") {
			t.Errorf("event %s: Text %q carries the backend's text", ev, got.Text)
		}
		errs = append(errs, got.Err, err)
	}
	var c chunk
	_, _, err := parseChunk(&c, []byte(body))
	errs = append(errs, err)
	_, _, err = parseChunk(&c, []byte(`{"choices":[{"delta":{"content":`+secret))
	errs = append(errs, err)

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, body)
	}))
	defer srv.Close()
	_, err = NewLLM(LLMConfig{Endpoint: Endpoint{Name: "llm", URL: srv.URL, Timeout: 2 * time.Second}}).
		Stream(context.Background(), ChatRequest{Messages: []Message{{Role: "user", Content: "hi"}}})
	errs = append(errs, err)
	if err == nil || !strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), "context_length_exceeded") {
		t.Errorf("LLM 400: %v, want the status and the error code", err)
	}

	for i, err := range errs {
		if err != nil && strings.Contains(err.Error(), "quartz") {
			t.Errorf("error %d carries the backend's text: %v", i, err)
		}
	}
	if errs[0] == nil || !strings.Contains(errs[0].Error(), "of ") || !strings.Contains(errs[0].Error(), "bytes") {
		t.Errorf("status error %v: want the body's length", errs[0])
	}
}
