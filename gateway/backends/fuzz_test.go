package backends

import (
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

// sseDeltas reads every delta of body, as a chat stream would.
func sseDeltas(body string) ([]string, error) {
	r := newSSEReader(strings.NewReader(body))
	var out []string
	for {
		d, err := r.next()
		if err != nil {
			return out, err
		}
		out = append(out, d)
	}
}

func TestSSEReader(t *testing.T) {
	cases := []struct {
		name, body string
		want       string
		err        error
	}{
		{"openai", "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n" +
			"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n" +
			"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},\"finish_reason\":null}]}\n\n" +
			"data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n", "Hello", io.EOF},
		{"crlf and comments", ": keep-alive\r\n\r\nevent: message\r\ndata:{\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\r\n\r\ndata: [DONE]\r\n\r\n", "a", io.EOF},
		{"no blank lines", "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\ndata: {\"choices\":[{\"delta\":{\"content\":\"b\"}}]}\ndata: [DONE]\n", "ab", io.EOF},
		{"multi-line data", "data: {\"choices\":\ndata: [{\"delta\":{\"content\":\"x\"}}]}\n\n", "x", io.EOF},
		{"no done", "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n", "a", io.EOF},
		{"last line unterminated", "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}", "a", io.EOF},
		{"second choice ignored", "data: {\"choices\":[{\"index\":1,\"delta\":{\"content\":\"no\"}},{\"index\":0,\"delta\":{\"content\":\"yes\"}}]}\n\n", "yes", io.EOF},
		{"garbage", "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: <html>\n\n", "a", ErrMalformed},
		{"error chunk", "data: {\"error\":{\"message\":\"context too long\",\"code\":400}}\n\n", "", ErrStatus},
		{"long line", "data: \"" + strings.Repeat("x", maxSSELine+10) + "\"\n\n", "", ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := sseDeltas(c.body)
			if s := strings.Join(got, ""); s != c.want || !errors.Is(err, c.err) {
				t.Errorf("got %q, %v; want %q, %v", s, err, c.want, c.err)
			}
		})
	}
}

// FuzzParseSSE: any event stream gives deltas, then the end or a
// classified error; never a panic, and never more than the reply bound.
func FuzzParseSSE(f *testing.F) {
	f.Add("data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\ndata: [DONE]\n\n")
	f.Add("data: [DONE]")
	f.Add(": keep-alive\n\n")
	f.Add("data: {\"error\":{\"message\":\"boom\"}}\n\n")
	f.Add("data: {\"choices\":[{\"delta\":{}}]}\r\ndata: {\"choices\":null}\n")
	f.Add("event: x\ndata: 1\ndata: 2\n\n")
	f.Add("data: {\"choices\":[{\"delta\":{\"content\":\"\\ud800\"}}]}\n\n")
	f.Fuzz(func(t *testing.T, body string) {
		got, err := sseDeltas(body)
		if !errors.Is(err, io.EOF) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrStatus) {
			t.Fatalf("unclassified error %v", err)
		}
		n := 0
		for _, d := range got {
			if d == "" {
				t.Fatal("empty delta returned")
			}
			n += len(d)
		}
		if n > len(body) {
			t.Fatalf("%d bytes of deltas from a %d-byte body", n, len(body))
		}
	})
}

// FuzzDecodeRealtimeEvent: any server event decodes, is ignored, or is a
// classified error; transcripts stay bounded.
func FuzzDecodeRealtimeEvent(f *testing.F) {
	f.Add([]byte(`{"type":"conversation.item.input_audio_transcription.completed","item_id":"a","transcript":"hi"}`))
	f.Add([]byte(`{"type":"conversation.item.input_audio_transcription.delta","item_id":"a","delta":"h"}`))
	f.Add([]byte(`{"type":"conversation.item.input_audio_transcription.failed","item_id":"a","error":{"message":"x"}}`))
	f.Add([]byte(`{"type":"error","error":{"code":"input_audio_buffer_commit_empty"}}`))
	f.Add([]byte(`{"type":"error","error":null}`))
	f.Add([]byte(`{"type":"transcription_session.created"}`))
	f.Add([]byte(`{"type":"something.new","x":[1,2]}`))
	f.Add([]byte(`not json`))
	f.Add([]byte(`{"type":7}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, ok, err := decodeRealtimeEvent(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if len(ev.Text) > maxTranscript {
			t.Fatalf("text of %d bytes passed the bound", len(ev.Text))
		}
		if !ok && ev.Text != "" && !utf8.ValidString(ev.Text) {
			t.Fatalf("unknown type %q not cleaned for logging", ev.Text)
		}
		if ev.Err != nil && !errors.Is(ev.Err, ErrStatus) {
			t.Fatalf("event error not classified: %v", ev.Err)
		}
	})
}
