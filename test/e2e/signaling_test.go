package e2e

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/voicegw/voicegw/loadtest"
	"github.com/voicegw/voicegw/loadtest/sim"
	"github.com/voicegw/voicegw/media"
)

func wsDial(t *testing.T, st *stack, token string) *websocket.Conn {
	t.Helper()
	u := strings.Replace(st.url, "http", "ws", 1) + "/v1/calls"
	if token != "" {
		u += "?token=" + token
	}
	ws, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatalf("dial signaling: %v", err)
	}
	t.Cleanup(func() { _ = ws.Close() })
	return ws
}

func readMsg(t *testing.T, ws *websocket.Conn) loadtest.ServerMessage {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	var m loadtest.ServerMessage
	if err := ws.ReadJSON(&m); err != nil {
		t.Fatalf("read signaling: %v", err)
	}
	return m
}

func expectError(t *testing.T, ws *websocket.Conn, code, contains string) {
	t.Helper()
	m := readMsg(t, ws)
	if m.Type != "error" || m.Code != code || !strings.Contains(m.Message, contains) {
		t.Fatalf("got %+v, want error %s containing %q", m, code, contains)
	}
}

const videoOnlyOffer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:96 VP8/90000\r\na=mid:0\r\na=sendrecv\r\n"
const g722Offer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 9\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:9 G722/8000\r\na=mid:0\r\na=sendrecv\r\n"

// TestSignalingBadInput: every malformed message gets a precise error and
// the connection stays usable; a good call on the same gateway is unharmed.
func TestSignalingBadInput(t *testing.T) {
	st := startStack(t, &stackOpts{sim: sim.Config{ASRScript: []string{"Is the help desk open?"}}})

	// A healthy call runs alongside the bad clients.
	good := dialCaller(t, st, "opus")
	good.Say(speech(t, "Is the help desk open today?", media.PipelineRate, 200*time.Millisecond, 0))

	t.Run("unauthorized", func(t *testing.T) {
		for _, tok := range []string{"", "wrong-token"} {
			ws := wsDial(t, st, tok)
			expectError(t, ws, "unauthorized", "token")
			_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, _, err := ws.ReadMessage()
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation {
				t.Errorf("after unauthorized: %v, want close 1008", err)
			}
		}
	})
	t.Run("bearer header", func(t *testing.T) {
		u := strings.Replace(st.url, "http", "ws", 1) + "/v1/calls"
		ws, _, err := websocket.DefaultDialer.Dial(u, http.Header{"Authorization": {"Bearer " + testToken}})
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"hangup"}`)); err != nil {
			t.Fatal(err)
		}
		expectError(t, ws, "bad_request", "no call in progress")
	})
	t.Run("junk and recovery", func(t *testing.T) {
		ws := wsDial(t, st, testToken)
		steps := []struct{ msg, code, contains string }{
			{"not json at all", "bad_request", "not valid JSON"},
			{`{"sdp":"x"}`, "bad_request", `no "type"`},
			{`{"type":"dance"}`, "bad_request", `unknown message type "dance"`},
			{`{"type":"offer"}`, "bad_request", `no "sdp"`},
			{`{"type":"offer","sdp":"this is not sdp"}`, "bad_request", "malformed offer"},
			{`{"type":"offer","sdp":"` + strings.ReplaceAll(videoOnlyOffer, "\r\n", `\r\n`) + `"}`, "bad_request", "no audio"},
			{`{"type":"offer","sdp":"` + strings.ReplaceAll(g722Offer, "\r\n", `\r\n`) + `"}`, "bad_request", "no supported audio codec"},
			{`{"type":"offer","sdp":"` + strings.Repeat("a", 70<<10) + `"}`, "bad_request", "larger than"},
			{`{"type":"hangup"}`, "bad_request", "no call in progress"},
		}
		for _, s := range steps {
			if err := ws.WriteMessage(websocket.TextMessage, []byte(s.msg)); err != nil {
				t.Fatal(err)
			}
			expectError(t, ws, s.code, s.contains)
		}
		if err := ws.WriteMessage(websocket.BinaryMessage, []byte{0, 1, 2}); err != nil {
			t.Fatal(err)
		}
		expectError(t, ws, "bad_request", "binary")
		// The same connection still places a call.
		c := rawOfferCall(t, st, ws)
		defer c()
	})
	t.Run("oversize closes", func(t *testing.T) {
		ws := wsDial(t, st, testToken)
		_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"offer","sdp":"`+strings.Repeat("b", 2<<20)+`"}`))
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			_, _, err := ws.ReadMessage()
			if err != nil {
				var ce *websocket.CloseError
				if errors.As(err, &ce) && ce.Code != websocket.CloseMessageTooBig {
					t.Errorf("close code %d, want 1009", ce.Code)
				}
				break
			}
		}
	})

	// The healthy call finished its turn regardless.
	turn := nextEvent(t, good, 20*time.Second, isType("turn"))
	if turn.Outcome != "completed" {
		t.Errorf("good call's turn = %q, want completed", turn.Outcome)
	}
	if st.srv.ActiveCalls() != 1 {
		t.Errorf("active calls = %d, want the one good call", st.srv.ActiveCalls())
	}
}

// rawOfferCall places a call on an already open signaling connection with a
// pion offer and checks the answer and a second-offer refusal.
func rawOfferCall(t *testing.T, st *stack, ws *websocket.Conn) func() {
	t.Helper()
	offer := pionOffer(t)
	if err := ws.WriteJSON(map[string]string{"type": "offer", "sdp": offer}); err != nil {
		t.Fatal(err)
	}
	m := readMsg(t, ws)
	if m.Type != "answer" || !strings.HasPrefix(m.CallID, "call_") || !strings.Contains(m.SDP, "a=fingerprint:sha-256") {
		t.Fatalf("got %+v, want an answer with a DTLS fingerprint", m.Type)
	}
	if err := ws.WriteJSON(map[string]string{"type": "offer", "sdp": offer}); err != nil {
		t.Fatal(err)
	}
	expectError(t, ws, "bad_request", "already in progress")
	return func() {
		_ = ws.WriteJSON(map[string]string{"type": "hangup"})
		for {
			m := readMsg(t, ws)
			if m.Type == "hangup" {
				return
			}
		}
	}
}

// TestBackendFailures: an LLM that returns garbage, and one that hangs, give
// the caller an error event and a spoken notice; the call stays up.
func TestBackendFailures(t *testing.T) {
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write([]byte("data: {this is not json\n\n"))
	}))
	defer garbage.Close()
	hang := make(chan struct{})
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer hanging.Close()
	defer close(hang)

	for _, c := range []struct{ name, url string }{{"garbage", garbage.URL}, {"hang", hanging.URL}} {
		t.Run(c.name, func(t *testing.T) {
			st := startStack(t, &stackOpts{llmURL: c.url, sim: sim.Config{ASRScript: []string{"Hello there."}}})
			call := dialCaller(t, st, "opus")
			call.Say(speech(t, "Hello there.", media.PipelineRate, 200*time.Millisecond, 0))
			var gotErr, gotNotice bool
			turn := nextEvent(t, call, 20*time.Second, func(m loadtest.ServerMessage) bool {
				if m.Type == "error" && m.Code == "backend_error" {
					gotErr = true
				}
				if m.Type == "transcript" && m.Role == "agent" && strings.Contains(m.Text, "Sorry") {
					gotNotice = true
				}
				return m.Type == "turn"
			})
			if !gotErr || !gotNotice || turn.Outcome != "failed" {
				t.Errorf("error=%v notice=%v outcome=%q; want a backend_error event, a spoken notice and a failed turn", gotErr, gotNotice, turn.Outcome)
			}
			waitFor(t, 10*time.Second, "the notice audio", func() bool { return nonSilent(call.Received()) >= 25 })
			// The call is still up and answers hang-up normally.
			if err := call.Hangup(); err != nil {
				t.Fatal(err)
			}
			if h := nextEvent(t, call, 5*time.Second, isType("hangup")); h.Reason != "caller" {
				t.Errorf("hangup reason %q", h.Reason)
			}
		})
	}
}

// pionOffer makes a complete offer from a real pion caller's SDP.
func pionOffer(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sdp, err := loadtest.Offer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return sdp
}
