package gateway

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/voicegw/voicegw/loadtest/sipcall"
	"github.com/voicegw/voicegw/media"
	"github.com/voicegw/voicegw/media/mediatest"
)

// TestSIPCallLogsNoText: a SIP call, then a WebRTC call, runs a full turn (the caller's
// distinctive sentence is transcribed, the model echoes it, TTS speaks
// it) with the gateway logging at debug level, and neither the caller's
// words nor the model's reply appears anywhere in the log; the call
// events are logged by type, role, length and hash.
func TestSIPCallLogsNoText(t *testing.T) {
	const sentence = "Please read me the marmalade lighthouse timetable"
	st := startTestStack(t, stackOptions{asrScript: []string{sentence}})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := sipcall.DialSIP(ctx, sipcall.SIPConfig{
		Target: st.srv.SIPAddr("udp"), RTPPortMin: 36000, RTPPortMax: 36999,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("DialSIP: %v", err)
	}
	defer c.Close()
	c.Say(mediatest.Speech(t, "Hello, can you hear me?", media.PipelineRate))
	eventually(t, 20*time.Second, "the model's reply to reach TTS", func() bool {
		for _, s := range st.sim.Spoken() {
			if strings.Contains(s, "marmalade") {
				return true
			}
		}
		return false
	})
	eventually(t, 20*time.Second, "the turn to end", func() bool { return strings.Contains(st.logs.String(), `msg=turn `) })
	if err := c.Hangup(); err != nil {
		t.Errorf("hangup: %v", err)
	}
	eventually(t, 10*time.Second, "the call to end", func() bool { return st.srv.ActiveCalls() == 0 })

	// The same over WebRTC: the words go to the caller on signaling only.
	web := dialCall(t, st, "tok")
	web.Say(mediatest.Speech(t, "Hello, can you hear me?", media.PipelineRate))
	captioned := false
	timeout := time.After(20 * time.Second)
	for done := false; !done; {
		select {
		case m, ok := <-web.Events():
			if !ok {
				t.Fatal("signaling closed before the turn ended")
			}
			captioned = captioned || m.Type == "transcript" && strings.Contains(m.Text, "marmalade")
			done = m.Type == "turn"
		case <-timeout:
			t.Fatal("no turn on the WebRTC call")
		}
	}
	if !captioned {
		t.Error("the WebRTC caller got no caption of the sentence")
	}
	web.Close()
	eventually(t, 10*time.Second, "the WebRTC call to end", func() bool { return st.srv.ActiveCalls() == 0 })

	logs := st.logs.String()
	if strings.Contains(logs, "marmalade") || strings.Contains(logs, "lighthouse") {
		t.Errorf("the caller's or the model's words are in the gateway's log:\n%s", logs)
	}
	if !strings.Contains(logs, "event=transcript role=caller") || !strings.Contains(logs, "event=transcript role=agent") || !strings.Contains(logs, "text_hash=") {
		t.Errorf("call events not logged by type, role and hash:\n%s", logs)
	}
}
