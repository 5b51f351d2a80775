package e2e

import (
	"context"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/voicegw/voicegw/gateway"
	"github.com/voicegw/voicegw/loadtest/sim"
	"github.com/voicegw/voicegw/media"
	"github.com/voicegw/voicegw/media/mediatest"
	"github.com/voicegw/voicegw/tenants"
	"github.com/voicegw/voicegw/test/siptest"
)

// loopbackTrunk accepts SIP calls from 127.0.0.1 to any number.
func loopbackTrunk() gateway.Trunk {
	return gateway.Trunk{
		Name: "e2e", Tenant: "dev",
		Sources: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		Numbers: map[string]string{"*": ""},
	}
}

func counter(t *testing.T, c interface{ Write(*dto.Metric) error }) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestSIPCall: SIPp calls over UDP and over TCP with 3 s of speech; the
// gateway answers, runs the turn through ASR, LLM and TTS, and sends the
// reply back as PCMU that the sniffer on SIPp's media port decodes as
// speech, not silence. The call shows in /metrics under ingress "sip".
func TestSIPCall(t *testing.T) {
	siptest.RequireSIPp(t)
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			st := startStack(t, &stackOpts{
				trunks: []gateway.Trunk{loopbackTrunk()},
				sim:    sim.Config{ASRScript: []string{"What are your opening hours?"}},
			})
			target := st.sipUDP
			if transport == "tcp" {
				target = st.sipTCP
			}
			mp := siptest.FreeMediaPort(t)
			sn := siptest.Sniff(t, mp)
			r := siptest.Run(t, siptest.Options{
				Scenario: "uac_pcmu", Target: target, Transport: transport, MediaPort: mp,
				Audio: speech(t, "Hello, what are your opening hours?", 8000, 300*time.Millisecond, 0),
				Pause: 8 * time.Second,
			})
			sn.Close()
			if !r.OK() {
				t.Fatalf("SIPp: %s", r.Report())
			}
			pts := sn.PayloadTypes()
			if pts[0] < 100 {
				t.Fatalf("gateway sent %d PCMU packets to SIPp (payload types %v), want ≥ 100", pts[0], pts)
			}
			audio := sn.DecodedAudio(0)
			loud := 0
			for i := 0; i+160 <= len(audio); i += 160 {
				if media.DBFS(audio[i:i+160]) > -40 {
					loud++
				}
			}
			if loud < 25 {
				t.Errorf("reply audio has %d non-silent 20 ms frames, want ≥ 25 (the spoken reply)", loud)
			}
			spoken := strings.Join(st.sim.Spoken(), " ")
			if !strings.Contains(spoken, "What are your opening hours") {
				t.Errorf("TTS was asked for %q; want the reply to the caller", spoken)
			}
			waitFor(t, 10*time.Second, "the SIP call to end", func() bool { return st.srv.ActiveCalls() == 0 })
			if n := counter(t, st.metrics.CallsTotal.WithLabelValues("sip", "caller")); n != 1 {
				t.Errorf("voicegw_calls_total{ingress=sip,reason=caller} = %v, want 1", n)
			}
		})
	}
}

// TestSIPLoad: 100 SIPp calls at 20 calls per second all succeed.
func TestSIPLoad(t *testing.T) {
	siptest.RequireSIPp(t)
	st := startStack(t, &stackOpts{trunks: []gateway.Trunk{loopbackTrunk()}})
	r := siptest.Run(t, siptest.Options{
		Scenario: "uac_pcmu", Target: st.sipUDP, Calls: 100, Rate: 20, Pause: 500 * time.Millisecond,
		Timeout: 90 * time.Second,
	})
	if !r.OK() || r.Successful != 100 {
		t.Fatalf("%d of 100 calls succeeded: %s", r.Successful, r.Report())
	}
	waitFor(t, 20*time.Second, "every SIP call to end", func() bool { return st.srv.ActiveCalls() == 0 })
}

// TestSIPRefusals: what the gateway refuses, it refuses with the right
// status: an unknown trunk 403, a number the trunk may not call 404, an
// SDP with only an unsupported codec 488, a call over the tenant's
// concurrency limit 503 with Retry-After; CANCEL before the answer ends
// the INVITE with 487; OPTIONS gets 200.
func TestSIPRefusals(t *testing.T) {
	siptest.RequireSIPp(t)
	strict := loopbackTrunk()
	strict.Numbers = map[string]string{"18005550100": ""}
	strict.AnswerDelay = 3 * time.Second // rings, so that CANCEL comes first
	cfg, err := tenants.Parse("sip.yaml", []byte(`
backends:
  - {name: a, role: asr, url: "http://127.0.0.1:1", region: r, impact_level: IL5}
  - {name: l, role: llm, url: "http://127.0.0.1:1", region: r, impact_level: IL5}
  - {name: s, role: tts, url: "http://127.0.0.1:1", region: r, impact_level: IL5}
tenants:
  - {id: dev, impact_level: IL5, regions: [r], asr: [a], llm: [l], tts: [s], limits: {max_concurrent_calls: 2}}
`))
	if err != nil {
		t.Fatal(err)
	}
	st := startStack(t, &stackOpts{trunks: []gateway.Trunk{strict}, admission: tenants.NewLimiter(cfg)})

	t.Run("unknown trunk", func(t *testing.T) {
		other := startStack(t, &stackOpts{trunks: []gateway.Trunk{{Name: "far", Tenant: "dev",
			Sources: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")}, Numbers: map[string]string{"*": ""}}}})
		siptest.Run(t, siptest.Options{Scenario: "uac_reject_403", Target: other.sipUDP})
	})
	t.Run("unknown number", func(t *testing.T) {
		siptest.Run(t, siptest.Options{Scenario: "uac_reject_404", Target: st.sipUDP, Service: "18005550999"})
	})
	t.Run("unsupported codec", func(t *testing.T) {
		siptest.Run(t, siptest.Options{Scenario: "uac_unsupported_codec", Target: st.sipUDP, Service: "18005550100"})
	})
	t.Run("cancel", func(t *testing.T) {
		siptest.Run(t, siptest.Options{Scenario: "uac_cancel", Target: st.sipTCP, Transport: "tcp", Service: "18005550100"})
	})
	t.Run("options", func(t *testing.T) {
		siptest.Run(t, siptest.Options{Scenario: "uac_options", Target: st.sipUDP, Service: "18005550100"})
	})
	t.Run("over the concurrency limit", func(t *testing.T) {
		// Two calls hold the tenant's two slots; the third gets 503 with
		// Retry-After.
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				siptest.Run(t, siptest.Options{Scenario: "uac_pcmu", Target: st.sipUDP, Service: "18005550100", Pause: 8 * time.Second})
			})
		}
		waitFor(t, 15*time.Second, "two calls up", func() bool { return st.srv.ActiveCalls() == 2 })
		siptest.Run(t, siptest.Options{Scenario: "uac_reject_503", Target: st.sipUDP, Service: "18005550100"})
		wg.Wait()
		if n := counter(t, st.metrics.LimitRefusals.WithLabelValues("dev", "concurrent_calls")); n != 1 {
			t.Errorf("voicegw_limit_refusals_total{limit=concurrent_calls} = %v, want 1", n)
		}
	})
}

// TestSIPDigest: a trunk with credentials challenges an INVITE without
// them (401) and admits the retry with the right password.
func TestSIPDigest(t *testing.T) {
	siptest.RequireSIPp(t)
	tr := loopbackTrunk()
	tr.Username, tr.Password = "acme-cc", "s3cret-trunk-pass"
	tr.Algorithms = []string{"MD5"} // SIPp answers MD5 challenges
	st := startStack(t, &stackOpts{trunks: []gateway.Trunk{tr}})
	siptest.Run(t, siptest.Options{Scenario: "uac_digest", Target: st.sipUDP, AuthUser: "acme-cc", AuthPass: "s3cret-trunk-pass", Pause: time.Second})
	r := siptest.Run(t, siptest.Options{Scenario: "uac_digest", Target: st.sipUDP, AuthUser: "acme-cc", AuthPass: "wrong", Pause: time.Second, AllowFailure: true})
	if r.OK() {
		t.Fatal("a wrong digest password was admitted")
	}
}

// TestSIPHoldAndNoSDP: a re-INVITE with a=sendonly is answered recvonly
// (the gateway stops sending), a resume restores sendrecv; an INVITE
// without SDP gets the offer in the 200 and the answer in the ACK.
func TestSIPHoldAndNoSDP(t *testing.T) {
	siptest.RequireSIPp(t)
	st := startStack(t, &stackOpts{trunks: []gateway.Trunk{loopbackTrunk()}})
	siptest.Run(t, siptest.Options{Scenario: "uac_hold", Target: st.sipUDP})
	siptest.Run(t, siptest.Options{Scenario: "uac_invite_no_sdp", Target: st.sipTCP, Transport: "tcp"})
}

// TestSIPControlledReplyNeverSpoken: on a SIP call from a caller the trunk
// does not attest, a model reply carrying controlled technical data never
// reaches TTS; on a trunk whose owner attests its callers as U.S. persons
// it is spoken.
func TestSIPControlledReplyNeverSpoken(t *testing.T) {
	siptest.RequireSIPp(t)
	controlled := "Torque the TVC actuator bolts to 45 in-lb, then null each jet vane within 0.1 degrees."
	for _, attested := range []bool{false, true} {
		name := map[bool]string{false: "unattested", true: "attested"}[attested]
		t.Run(name, func(t *testing.T) {
			tr := loopbackTrunk()
			tr.USPersonAttested, tr.AttestedBy = attested, "e2e technology control plan"
			o := &stackOpts{trunks: []gateway.Trunk{tr}, sim: sim.Config{
				ASRScript: []string{"How do I recenter the thrust vector control?"},
				LLMScript: []sim.Rule{{Match: "*", Reply: "Sure, here is the procedure. " + controlled}},
			}}
			st := startStack(t, o)
			siptest.Run(t, siptest.Options{
				Scenario: "uac_pcmu", Target: st.sipUDP, Pause: 8 * time.Second,
				Audio: speech(t, "How do I recenter the thrust vector control?", 8000, 300*time.Millisecond, 0),
			})
			if len(st.sim.ChatRequests()) == 0 {
				t.Fatal("the turn never reached the LLM")
			}
			spoken := strings.Join(st.sim.Spoken(), "|")
			if got := strings.Contains(spoken, "TVC actuator"); got != attested {
				t.Fatalf("controlled sentence reached TTS = %v, want %v (spoken %q)", got, attested, spoken)
			}
			audit := o.auditBuf.String()
			if !attested && (!strings.Contains(audit, `"action":"block"`) || !strings.Contains(audit, `"party":"unknown"`)) {
				t.Errorf("no block for an unknown party in the audit log: %s", audit)
			}
			// The attestation's source is audited with the decision.
			if attested && (!strings.Contains(audit, `"party":"us-person"`) || !strings.Contains(audit, `"attested_by":"trunk:e2e:e2e technology control plan"`)) {
				t.Errorf("audit log lacks the trunk's attestation: %s", audit)
			}
			if !strings.Contains(audit, `"ingress":"sip"`) {
				t.Errorf("audit records lack ingress sip: %s", audit)
			}
		})
	}
}

// TestSIPKeypad: RFC 4733 telephone-events from SIPp (Debian's recorded
// digit '1') become a keypad entry that reaches the model as the caller's
// turn, after the inter-digit timeout.
func TestSIPKeypad(t *testing.T) {
	siptest.RequireSIPp(t)
	pcap := "/usr/share/sip-tester/dtmf_2833_1.pcap"
	if _, err := os.Stat(pcap); err != nil {
		if mediatest.InCI() {
			t.Fatalf("%s: %v (package sip-tester)", pcap, err)
		}
		t.Skipf("%s: %v", pcap, err)
	}
	base, err := siptest.Scenario("uac_pcmu")
	if err != nil {
		t.Fatal(err)
	}
	xml := strings.Replace(string(base), `<exec rtp_stream="siptest_audio.ul,1,0"/>`, `<exec play_pcap_audio="`+pcap+`"/>`, 1)
	if xml == string(base) {
		t.Fatal("scenario has no rtp_stream action to replace")
	}
	st := startStack(t, &stackOpts{trunks: []gateway.Trunk{loopbackTrunk()}})
	siptest.Run(t, siptest.Options{XML: xml, Target: st.sipUDP, Pause: 5 * time.Second})
	var asked []string
	for _, r := range st.sim.ChatRequests() {
		for _, m := range r.Messages {
			if m.Role == "user" {
				asked = append(asked, m.Content)
			}
		}
	}
	if !slices.Contains(asked, "Keypad: 1") {
		t.Errorf("the model was asked %q; want the keypad entry %q", asked, "Keypad: 1")
	}
}

// TestSIPGatewayHangsUp: the gateway ends SIP calls itself with a BYE
// that SIPp answers: at the maximum call duration, and on shutdown.
func TestSIPGatewayHangsUp(t *testing.T) {
	siptest.RequireSIPp(t)
	t.Run("max duration", func(t *testing.T) {
		st := startStack(t, &stackOpts{trunks: []gateway.Trunk{loopbackTrunk()}, pipeline: gateway.PipelineConfig{MaxCallDuration: 2 * time.Second}})
		r := siptest.Run(t, siptest.Options{Scenario: "uac_pcmu", Target: st.sipUDP, Pause: 30 * time.Second})
		if r.Elapsed > 20*time.Second {
			t.Errorf("the call lasted %s; the gateway should have hung up at 2 s", r.Elapsed)
		}
		waitFor(t, 5*time.Second, "the call to end", func() bool { return st.srv.ActiveCalls() == 0 })
		if n := counter(t, st.metrics.CallsTotal.WithLabelValues("sip", "max_duration")); n != 1 {
			t.Errorf("voicegw_calls_total{ingress=sip,reason=max_duration} = %v, want 1", n)
		}
	})
	t.Run("shutdown", func(t *testing.T) {
		st := startStack(t, &stackOpts{trunks: []gateway.Trunk{loopbackTrunk()}})
		done := make(chan siptest.Result, 1)
		go func() {
			done <- siptest.Run(t, siptest.Options{Scenario: "uac_pcmu", Target: st.sipTCP, Transport: "tcp", Pause: 30 * time.Second})
		}()
		waitFor(t, 10*time.Second, "the call to be up", func() bool { return st.srv.ActiveCalls() == 1 })
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := st.srv.Shutdown(ctx); err != nil {
			t.Fatalf("shutdown: %v", err)
		}
		r := <-done
		if !r.OK() || r.Elapsed > 20*time.Second {
			t.Errorf("SIPp after shutdown: ok=%v after %s; want the gateway's BYE answered at once", r.OK(), r.Elapsed)
		}
		if n := counter(t, st.metrics.CallsTotal.WithLabelValues("sip", "shutdown")); n != 1 {
			t.Errorf("voicegw_calls_total{ingress=sip,reason=shutdown} = %v, want 1", n)
		}
	})
}
