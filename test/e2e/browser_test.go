package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/voicegw/voicegw/loadtest/sim"
	"github.com/voicegw/voicegw/media"
)

// pageState mirrors window.voicegw on the softphone page.
type pageState struct {
	State    string `json:"state"`
	CallID   string `json:"callId"`
	Captions []struct {
		Role  string `json:"role"`
		Text  string `json:"text"`
		Final bool   `json:"final"`
	} `json:"captions"`
	RxPackets    int     `json:"rxPackets"`
	TxPackets    int     `json:"txPackets"`
	RxEnergy     float64 `json:"rxEnergy"`
	Error        string  `json:"error"`
	HangupReason string  `json:"hangupReason"`
	Turns        []struct {
		Turn    int    `json:"turn"`
		Outcome string `json:"outcome"`
	} `json:"turns"`
}

func (p pageState) caption(role string) string {
	for _, c := range p.Captions {
		if c.Role == role && c.Final {
			return c.Text
		}
	}
	return ""
}

// TestSoftphoneInChromium drives the real softphone page in headless
// Chromium with a fake microphone playing espeak-ng speech: the call
// connects over DTLS-SRTP, the caller's and the agent's captions arrive,
// the browser receives the agent's audio, and hanging up ends the session.
func TestSoftphoneInChromium(t *testing.T) {
	chromium := requireTool(t, "chromium")
	st := startStack(t, &stackOpts{sim: sim.Config{ASRScript: []string{"I need help resetting my password."}}})

	// Chromium's fake microphone loops this file: speech, then a long pause
	// in which the agent answers.
	mic := speech(t, "Hello, I need help resetting my password.", 48000, time.Second, 10*time.Second)
	wav := filepath.Join(t.TempDir(), "mic.wav")
	f, err := os.Create(wav)
	if err != nil {
		t.Fatal(err)
	}
	if err := media.WriteWAV(f, 48000, mic); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-file-for-fake-audio-capture", wav),
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.Flag("disable-features", "Translate,BlinkGenPropertyTrees,WebRtcHideLocalIpsWithMdns"),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	defer cancelT()

	page := st.url + "/?autocall=1&raw=1&token=" + testToken
	if err := chromedp.Do(ctx, chromedp.Navigate(page)); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	read := func() pageState {
		raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(window.voicegw || {})`))
		if err != nil {
			t.Fatalf("read page state: %v", err)
		}
		var ps pageState
		if err := json.Unmarshal([]byte(raw), &ps); err != nil {
			t.Fatalf("page state %q: %v", raw, err)
		}
		return ps
	}
	var ps pageState
	deadline := time.Now().Add(60 * time.Second)
	for {
		ps = read()
		if ps.State == "failed" {
			t.Fatalf("call failed in the browser: %+v", ps)
		}
		if ps.caption("caller") != "" && ps.caption("agent") != "" && ps.RxPackets >= 50 && ps.RxEnergy > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("browser never got captions and audio: %+v", ps)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("browser: state=%s call=%s rx=%d tx=%d energy=%.4f captions=%+v", ps.State, ps.CallID, ps.RxPackets, ps.TxPackets, ps.RxEnergy, ps.Captions)
	if ps.State != "connected" || !strings.HasPrefix(ps.CallID, "call_") {
		t.Errorf("state=%q callId=%q, want connected with a call id", ps.State, ps.CallID)
	}
	if got := ps.caption("caller"); got != "I need help resetting my password." {
		t.Errorf("caller caption = %q", got)
	}
	if got := ps.caption("agent"); !strings.Contains(got, "resetting my password") {
		t.Errorf("agent caption = %q, want the simulated reply", got)
	}
	if ps.TxPackets < 50 {
		t.Errorf("browser sent %d packets, want ≥ 50", ps.TxPackets)
	}

	// Hang up from the page.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.voicegw.hangup(), true`)); err != nil {
		t.Fatalf("hangup: %v", err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for ps = read(); ps.State != "ended"; ps = read() {
		if time.Now().After(deadline) {
			t.Fatalf("page never reached ended: %+v", ps)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if ps.HangupReason != "caller" {
		t.Errorf("hangup reason = %q, want caller", ps.HangupReason)
	}
	waitFor(t, 5*time.Second, "the gateway session to end", func() bool { return st.srv.ActiveCalls() == 0 })
}
