package gateway

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/voicegw/voicegw/loadtest"
	"github.com/voicegw/voicegw/telemetry"
)

// panickyPolicy panics on every check of the calls of subject "boom",
// with the text in the panic value, and allows everything else.
type panickyPolicy struct{}

func (panickyPolicy) NewCall(c Caller, _ string) CallPolicy {
	if c.Subject == "boom" {
		return panickyCall{}
	}
	return allowAll{}
}

type panickyCall struct{}

func (panickyCall) Check(text string, _ Direction, _ CheckMeta) PolicyDecision {
	panic("policy exploded on " + text)
}

// dialCall opens a WebRTC call with token and waits for its media.
func dialCall(t *testing.T, st *testStack, token string) *loadtest.Caller {
	t.Helper()
	c := dialSignaling(t, st, token)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := c.Connected(ctx); err != nil {
		t.Fatalf("media %s: %v", token, err)
	}
	return c
}

// dialSignaling opens a WebRTC call with token, answered but perhaps not
// yet connected.
func dialSignaling(t *testing.T, st *testStack, token string) *loadtest.Caller {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := loadtest.Dial(ctx, loadtest.CallerConfig{Gateway: st.base, Token: token, Codec: "pcmu"})
	if err != nil {
		t.Fatalf("dial %s: %v", token, err)
	}
	t.Cleanup(c.Close)
	return c
}

// waitHangup reads c's events until its hangup and returns its reason and
// the error codes sent before it.
func waitHangup(t *testing.T, c *loadtest.Caller, d time.Duration) (reason string, codes []string) {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case m, ok := <-c.Events():
			if !ok {
				t.Fatal("signaling closed without a hangup")
			}
			switch m.Type {
			case "error":
				codes = append(codes, m.Code)
			case "hangup":
				return m.Reason, codes
			}
		case <-timeout:
			t.Fatalf("no hangup within %s", d)
		}
	}
}

// TestSessionPanicEndsOnlyThatCall: a panic on a call's TTS goroutine (its
// policy check of the greeting) and one on another call's own session
// goroutine each end that call alone, with an internal error and the
// hang-up reason "error"; the process and the gateway's other calls go
// on, each panic is counted, and the log names it without the text.
func TestSessionPanicEndsOnlyThatCall(t *testing.T) {
	st := startTestStack(t, stackOptions{
		policy:   panickyPolicy{},
		pipeline: PipelineConfig{Greeting: "Welcome to the detonated zeppelin hotline."},
		tokens:   StaticTokens{"boom": {Tenant: "dev", Subject: "boom"}, "other": {Tenant: "dev", Subject: "other"}},
	})
	good := dialCall(t, st, "tok")
	eventually(t, 5*time.Second, "the first call to start", func() bool { return st.srv.ActiveCalls() == 1 })

	boom := dialSignaling(t, st, "boom")
	reason, codes := waitHangup(t, boom, 15*time.Second)
	if reason != reasonError || !contains(codes, codeInternal) {
		t.Errorf("panicking call: hangup %q after errors %v, want %q after %q", reason, codes, reasonError, codeInternal)
	}
	eventually(t, 5*time.Second, "the panicking call to end", func() bool { return st.srv.ActiveCalls() == 1 })

	// A panic on the first call's own session goroutine.
	st.srv.mu.Lock()
	var sess *session
	for _, s := range st.srv.sessions {
		sess = s
	}
	st.srv.mu.Unlock()
	sess.post(func() { panic("session exploded") })
	if reason, _ := waitHangup(t, good, 15*time.Second); reason != reasonError {
		t.Errorf("call whose session goroutine panicked: hangup %q, want %q", reason, reasonError)
	}

	if got := st.metric(t, `voicegw_session_panics_total{ingress="webrtc"}`); got != `voicegw_session_panics_total{ingress="webrtc"} 2` {
		t.Errorf("panic counter: %q, want 2", got)
	}
	if code, _ := st.get(t, "/readyz"); code != 200 {
		t.Errorf("/readyz after the panics: %d", code)
	}
	dialCall(t, st, "other")
	eventually(t, 5*time.Second, "a new call to start", func() bool { return st.srv.ActiveCalls() == 1 })

	logs := st.logs.String()
	if n := strings.Count(logs, "panicked; ending the call"); n != 2 {
		t.Errorf("%d panics logged, want 2", n)
	}
	if strings.Contains(logs, "zeppelin") || strings.Contains(logs, "exploded") {
		t.Errorf("the panic's text is in the log:\n%s", logs)
	}
}

func contains(v []string, s string) bool {
	for _, x := range v {
		if x == s {
			return true
		}
	}
	return false
}

// TestBackendAttemptPanicReachesTheTurn: a panic while trying a backend
// (on firstAnswer's attempt goroutine, where nothing could recover it) is
// raised again on the goroutine waiting for the answer, a session
// goroutine whose recovery ends the call.
func TestBackendAttemptPanicReachesTheTurn(t *testing.T) {
	got := make(chan any, 1)
	func() {
		defer func() { got <- recover() }()
		_, _, _ = firstAnswer(context.Background(), chainOps[int]{
			role: "llm", tenant: "dev", log: slog.New(slog.DiscardHandler), m: telemetry.NewMetrics(), n: 1,
			names:   func(int) string { return "llm" },
			try:     func(context.Context, int) (int, error) { panic("backend client exploded") },
			discard: func(int) {},
		})
	}()
	if r := <-got; r != "backend client exploded" {
		t.Errorf("recovered %v on the waiting goroutine, want the attempt's panic", r)
	}
}
