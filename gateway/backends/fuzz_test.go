package backends

import (
	"errors"
	"testing"
)

// FuzzParseSSE: any event line parses to a delta, the end, or a classified
// error; never a panic.
func FuzzParseSSE(f *testing.F) {
	f.Add(`data: {"choices":[{"delta":{"content":"Hi"}}]}`)
	f.Add(`data: [DONE]`)
	f.Add(`: keep-alive`)
	f.Add(`data: {"error":{"message":"boom"}}`)
	f.Add(`data: {"choices":[{"delta":{}}]}`)
	f.Add(`event: x`)
	f.Fuzz(func(t *testing.T, line string) {
		_, _, err := parseSSELine(line)
		if err != nil && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrStatus) {
			t.Fatalf("unclassified error %v", err)
		}
	})
}

// FuzzDecodeRealtimeEvent: any server event decodes, is ignored, or is a
// classified error; transcripts stay bounded.
func FuzzDecodeRealtimeEvent(f *testing.F) {
	f.Add([]byte(`{"type":"conversation.item.input_audio_transcription.completed","item_id":"a","transcript":"hi"}`))
	f.Add([]byte(`{"type":"conversation.item.input_audio_transcription.delta","item_id":"a","delta":"h"}`))
	f.Add([]byte(`{"type":"error","error":{"code":"input_audio_buffer_commit_empty"}}`))
	f.Add([]byte(`{"type":"session.created"}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, ok, err := decodeRealtimeEvent(b)
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("unclassified error %v", err)
		}
		if ok && len(ev.Text) > maxTranscript {
			t.Fatalf("transcript of %d bytes passed the bound", len(ev.Text))
		}
		if ev.Err != nil && !errors.Is(ev.Err, ErrStatus) {
			t.Fatalf("event error not classified: %v", ev.Err)
		}
	})
}

func BenchmarkParseSSELine(b *testing.B) {
	line := `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":" warranty"},"finish_reason":null}]}`
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := parseSSELine(line); err != nil {
			b.Fatal(err)
		}
	}
}
