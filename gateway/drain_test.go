package gateway

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/voicegw/voicegw/loadtest"
	"github.com/voicegw/voicegw/loadtest/sipcall"
)

// TestShutdownDrains: once Shutdown begins, /readyz is 503, a new WebRTC
// call is refused with "draining" and a SIP INVITE with 503 and
// Retry-After, while the calls in progress stay up: one that ends by
// itself lets the drain go on, and when the drain timeout fires the one
// left is hung up (BYE on SIP, a hangup event on signaling) and Shutdown
// returns.
func TestShutdownDrains(t *testing.T) {
	st := startTestStack(t, stackOptions{drain: 45 * time.Second})
	fire := make(chan time.Time)
	asked := make(chan time.Duration, 1)
	st.srv.drainTimer = func(d time.Duration) <-chan time.Time {
		asked <- d
		return fire
	}
	web := dialCall(t, st, "tok")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	sip, err := sipcall.DialSIP(ctx, sipcall.SIPConfig{
		Target: st.srv.SIPAddr("udp"), RTPPortMin: 37000, RTPPortMax: 37999,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("DialSIP: %v", err)
	}
	defer sip.Close()
	eventually(t, 5*time.Second, "both calls to start", func() bool { return st.srv.ActiveCalls() == 2 })

	stopped := make(chan error, 1)
	go func() { stopped <- st.srv.Shutdown(context.Background()) }()
	if d := <-asked; d != 45*time.Second {
		t.Errorf("drain timer set for %s, want the configured 45s", d)
	}
	if code, body := st.get(t, "/readyz"); code != 503 || !strings.Contains(body, `"draining":true`) {
		t.Errorf("/readyz while draining: %d %s, want 503 draining", code, body)
	}
	_, err = loadtest.Dial(ctx, loadtest.CallerConfig{Gateway: st.base, Token: "tok", Codec: "pcmu"})
	var se *loadtest.SignalingError
	if !errors.As(err, &se) || se.Code != codeDraining {
		t.Errorf("new WebRTC call while draining: %v, want a %q refusal", err, codeDraining)
	}
	u := udpClient(t)
	code, hdrs := exchange(t, u, st.srv.SIPAddr("udp"), sipRequest("INVITE", "1", u.LocalAddr().String(), nextBranch()), 5*time.Second)
	if code != 503 || len(header(hdrs, "Retry-After")) != 1 {
		t.Errorf("SIP INVITE while draining: %d %v, want 503 with Retry-After", code, hdrs)
	}
	if n := st.srv.ActiveCalls(); n != 2 {
		t.Errorf("%d calls in progress while draining, want both still up", n)
	}
	select {
	case <-sip.Done():
		t.Errorf("SIP call ended while draining: %s", sip.HangupReason())
	case err := <-stopped:
		t.Fatalf("Shutdown returned before the drain timeout: %v", err)
	default:
	}

	// The WebRTC caller hangs up by itself; the drain goes on for the other.
	if err := web.Hangup(); err != nil {
		t.Fatal(err)
	}
	if reason, _ := waitHangup(t, web, 10*time.Second); reason != reasonCaller {
		t.Errorf("WebRTC call: hangup %q, want %q", reason, reasonCaller)
	}
	eventually(t, 5*time.Second, "the WebRTC call to end", func() bool { return st.srv.ActiveCalls() == 1 })
	select {
	case err := <-stopped:
		t.Fatalf("Shutdown returned with a call still in progress: %v", err)
	default:
	}

	close(fire) // the drain timeout
	select {
	case <-sip.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the SIP call was not hung up at the drain timeout")
	}
	if r := sip.HangupReason(); r != sipcall.ReasonRemoteBye {
		t.Errorf("SIP call ended by %q, want the gateway's BYE", r)
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Shutdown did not return after the drain timeout")
	}
}

// TestShutdownHangsUpWebRTCAtDrainTimeout: a WebRTC call still up when
// the drain timeout fires gets a hangup event with reason "shutdown".
func TestShutdownHangsUpWebRTCAtDrainTimeout(t *testing.T) {
	st := startTestStack(t, stackOptions{})
	fire := make(chan time.Time)
	st.srv.drainTimer = func(time.Duration) <-chan time.Time { return fire }
	web := dialCall(t, st, "tok")
	eventually(t, 5*time.Second, "the call to start", func() bool { return st.srv.ActiveCalls() == 1 })
	stopped := make(chan error, 1)
	go func() { stopped <- st.srv.Shutdown(context.Background()) }()
	eventually(t, 5*time.Second, "the drain to begin", func() bool { return st.srv.draining.Load() })
	close(fire)
	if reason, _ := waitHangup(t, web, 10*time.Second); reason != reasonShutdown {
		t.Errorf("hangup %q, want %q", reason, reasonShutdown)
	}
	if err := <-stopped; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}
