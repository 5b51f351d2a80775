package siptest_test

import (
	"math"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/voicegw/voicegw/media"
	"github.com/voicegw/voicegw/media/mediatest"
	"github.com/voicegw/voicegw/test/siptest"
)

var transports = []string{"udp", "tcp"}

func TestScenariosEmbedded(t *testing.T) {
	names := siptest.Scenarios()
	for _, want := range []string{
		"uac_pcmu.xml", "uac_pcma.xml", "uac_unsupported_codec.xml", "uac_cancel.xml", "uac_digest.xml",
		"uac_reject_403.xml", "uac_reject_404.xml", "uac_reject_503.xml", "uac_options.xml",
		"uac_invite_no_sdp.xml", "uac_hold.xml",
	} {
		if _, err := siptest.Scenario(want); err != nil {
			t.Errorf("%s: %v (have %v)", want, err, names)
		}
	}
	if _, err := siptest.Scenario("uac_pcmu"); err != nil {
		t.Errorf("name without .xml: %v", err)
	}
	if _, err := siptest.Scenario("nope"); err == nil {
		t.Error("unknown scenario: no error")
	}
}

// checkTone asserts that the sniffer saw at least 50 PCMU packets whose
// audio is a clear 1 kHz tone.
func checkTone(t *testing.T, sn *siptest.Sniffer) {
	t.Helper()
	pts := sn.PayloadTypes()
	if pts[0] < 50 {
		t.Fatalf("PCMU packets to SIPp: %d, want >= 50 (payload types %v, %d datagrams, %d dropped by the capture)",
			pts[0], pts, len(sn.Packets()), sn.Drops())
	}
	pcm := sn.DecodedAudio(0)
	if db := media.DBFS(pcm); db < -20 {
		t.Errorf("reply audio level %.1f dBFS, want a tone near -9 dBFS", db)
	}
	// Power of a 0.5 amplitude sine is 0.25·0.25; compare 1 kHz with a
	// frequency where a pure tone has nothing.
	p1k := mediatest.Power(pcm, 8000, 1000)
	p2k := mediatest.Power(pcm, 8000, 2300)
	if p1k < 0.01 || p1k < 100*p2k {
		t.Errorf("reply audio is not a 1 kHz tone: power at 1 kHz %.4g, at 2.3 kHz %.4g", p1k, p2k)
	}
}

func TestPCMUReplyAudio(t *testing.T) {
	siptest.RequireSIPp(t)
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			uas := newUAS(t, uasConfig{})
			mp := siptest.FreeMediaPort(t)
			sn := siptest.Sniff(t, mp)
			r := siptest.Run(t, siptest.Options{
				Scenario: "uac_pcmu", Target: uas.Addr, Transport: tr,
				MediaPort: mp, Pause: 3 * time.Second,
			})
			if !r.OK() || r.Successful != 1 {
				t.Fatalf("run: successful=%d\n%s", r.Successful, r.Report())
			}
			sn.Close()
			checkTone(t, sn)
			for _, p := range sn.Packets() {
				if p.Dst.Port() != uint16(mp) || p.Dst.Addr() != netip.MustParseAddr("127.0.0.1") {
					t.Fatalf("captured a datagram to %v, want only 127.0.0.1:%d", p.Dst, mp)
				}
			}
		})
	}
}

func TestGatewayHangsUp(t *testing.T) {
	siptest.RequireSIPp(t)
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			uas := newUAS(t, uasConfig{HangupAfter: 1500 * time.Millisecond})
			r := siptest.Run(t, siptest.Options{
				Scenario: "uac_pcmu", Target: uas.Addr, Transport: tr, Pause: 8 * time.Second,
			})
			if !strings.Contains(r.Log, "gateway hung up") {
				t.Errorf("the call did not end with the UAS's BYE\n%s", r.Report())
			}
		})
	}
}

func TestPCMARejectedByPCMUOnlyUAS(t *testing.T) {
	// The test UAS speaks only PCMU: an offer of PCMA alone gets 488, which
	// uac_pcma does not expect. Proves uac_pcma reaches the far end and the
	// runner reports the failure.
	siptest.RequireSIPp(t)
	uas := newUAS(t, uasConfig{})
	r := siptest.Run(t, siptest.Options{Scenario: "uac_pcma", Target: uas.Addr, AllowFailure: true})
	if r.OK() || r.Failed != 1 || r.ExitCode != 1 {
		t.Fatalf("uac_pcma against a PCMU-only UAS: want one failed call and exit 1\n%s", r.Report())
	}
}

func TestScenarios(t *testing.T) {
	siptest.RequireSIPp(t)
	cases := []struct {
		scenario string
		cfg      uasConfig
		opts     siptest.Options
	}{
		{scenario: "uac_options"},
		{scenario: "uac_cancel", cfg: uasConfig{Ring: true}},
		{scenario: "uac_unsupported_codec"},
		{scenario: "uac_reject_403", cfg: uasConfig{Reject: 403}},
		{scenario: "uac_reject_404", cfg: uasConfig{Reject: 404}},
		{scenario: "uac_reject_503", cfg: uasConfig{Reject: 503, RetryAfter: true}},
		{
			scenario: "uac_digest", cfg: uasConfig{DigestUser: "alice", DigestPass: "s3cret"},
			opts: siptest.Options{AuthUser: "alice", AuthPass: "s3cret", Pause: time.Second},
		},
		{scenario: "uac_invite_no_sdp", opts: siptest.Options{Pause: 2500 * time.Millisecond}},
		{scenario: "uac_hold", opts: siptest.Options{Pause: time.Second}},
	}
	for _, c := range cases {
		for _, tr := range transports {
			t.Run(c.scenario+"/"+tr, func(t *testing.T) {
				t.Parallel()
				uas := newUAS(t, c.cfg)
				opts := c.opts
				opts.Scenario, opts.Target, opts.Transport = c.scenario, uas.Addr, tr
				if c.scenario == "uac_invite_no_sdp" {
					opts.MediaPort = siptest.FreeMediaPort(t)
					sn := siptest.Sniff(t, opts.MediaPort)
					r := siptest.Run(t, opts)
					sn.Close()
					if r.OK() {
						checkTone(t, sn)
					}
					return
				}
				r := siptest.Run(t, opts)
				if c.scenario == "uac_digest" && !strings.Contains(r.Messages, "Authorization: Digest") {
					t.Errorf("no credentials were sent\n%s", r.Report())
				}
			})
		}
	}
}

func TestRunReportsFailure(t *testing.T) {
	siptest.RequireSIPp(t)
	cases := []struct {
		name     string
		scenario string
		cfg      uasConfig
	}{
		{"486 instead of 200", "uac_pcmu", uasConfig{Reject: 486}},
		{"503 without Retry-After", "uac_reject_503", uasConfig{Reject: 503}},
		{"200 instead of 403", "uac_reject_403", uasConfig{}},
		{"wrong password", "uac_digest", uasConfig{DigestUser: "alice", DigestPass: "other"}},
		{"hold answered sendrecv", "uac_hold", uasConfig{IgnoreHold: true}},
		{"200 instead of ringing", "uac_cancel", uasConfig{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			uas := newUAS(t, c.cfg)
			r := siptest.Run(t, siptest.Options{
				Scenario: c.scenario, Target: uas.Addr, AuthUser: "alice", AuthPass: "s3cret",
				Pause: 500 * time.Millisecond, RecvTimeout: 5 * time.Second, AllowFailure: true,
			})
			if r.OK() || r.Failed != 1 || r.Successful != 0 || r.ExitCode != 1 {
				t.Fatalf("want one failed call and exit 1\n%s", r.Report())
			}
			if !strings.Contains(r.Report(), "sipp exit=1") {
				t.Errorf("report lacks the exit status:\n%s", r.Report())
			}
		})
	}
}

func TestLoad50CallsAt20cps(t *testing.T) {
	siptest.RequireSIPp(t)
	if testing.Short() {
		t.Skip("load test")
	}
	uas := newUAS(t, uasConfig{Tone: time.Second})
	mp := siptest.FreeMediaPort(t)
	sn := siptest.Sniff(t, mp)
	r := siptest.Run(t, siptest.Options{
		Scenario: "uac_pcmu", Target: uas.Addr, Calls: 50, Rate: 20, Limit: 60,
		MediaPort: mp, Pause: 2 * time.Second, Timeout: 120 * time.Second,
		Audio: mediatest.Sine(8000, 440, 0.3, 8000),
	})
	if r.Successful != 50 || r.Failed != 0 {
		t.Fatalf("successful=%d failed=%d, want 50 and 0\n%s", r.Successful, r.Failed, r.Report())
	}
	sn.Close()
	// Every call's tone reached SIPp's media port (1 s = 50 packets each);
	// allow for a few losses under load.
	if got := sn.PayloadTypes()[0]; got < 50*45 {
		t.Errorf("PCMU packets to SIPp: %d, want about %d (%d dropped by the capture)", got, 50*50, sn.Drops())
	}
}

func TestSnifferDecodesInSequenceOrder(t *testing.T) {
	// Datagrams sent out of order to a port nobody listens on are captured
	// once each and decoded in sequence order.
	mp := siptest.FreeMediaPort(t)
	sn := siptest.Sniff(t, mp)
	sendRTPOutOfOrder(t, mp+1) // not captured
	sendRTPOutOfOrder(t, mp)
	deadline := time.Now().Add(5 * time.Second)
	for len(sn.Packets()) < 4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	sn.Close()
	if n := len(sn.Packets()); n != 4 {
		t.Fatalf("captured %d datagrams, want 4 (each once, none to another port)", n)
	}
	pcm := sn.DecodedAudio(0)
	if len(pcm) != 4*160 {
		t.Fatalf("decoded %d samples, want %d", len(pcm), 4*160)
	}
	for i := range 4 {
		got := pcm[i*160]
		want := int16((i + 1) * 1000)
		if math.Abs(float64(got-want)) > float64(want)/16 {
			t.Errorf("frame %d starts at %d, want about %d (sequence order)", i, got, want)
		}
	}
	if sn.DecodedAudio(8) != nil || len(sn.DecodedAudio(96)) != 0 {
		t.Error("DecodedAudio for other payload types should be empty")
	}
}

// sendRTPOutOfOrder sends four PCMU packets across a sequence wrap, out of
// order; frame k (in sequence order) holds the constant (k+1)·1000.
func sendRTPOutOfOrder(t *testing.T, port int) {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	seqs := []uint16{65534, 65535, 0, 1}
	for _, k := range []int{3, 0, 2, 1} {
		pcm := make([]int16, 160)
		for i := range pcm {
			pcm[i] = int16((k + 1) * 1000)
		}
		payload := make([]byte, 160)
		media.EncodeMulaw(payload, pcm)
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: seqs[k], Timestamp: uint32(k * 160), SSRC: 7}, Payload: payload}
		b, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.WriteToUDP(b, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}); err != nil {
			t.Fatal(err)
		}
	}
}
