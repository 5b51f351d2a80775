// Package siptest drives a SIP UAS (the gateway) with SIPp and checks the
// audio it sends back. It is a test-support library: import it from tests.
//
// # Running SIPp
//
// Run starts /usr/bin/sipp (Debian package sip-tester) as a client of a
// target, with one of the embedded scenarios (Scenarios lists them) or
// caller-supplied XML, in a fresh temporary working directory, and waits for
// it within Options.Timeout (the process group is killed at the bound). It
// fails the test, with the tails of SIPp's error log, scenario log, message
// trace and screen, if any call failed; set Options.AllowFailure to check a
// failure yourself through Result (OK, Successful, Failed, ExitCode,
// Report). RequireSIPp skips a test where sipp is missing, or fails it in CI
// (mediatest.RequireTool).
//
//	uas := startGateway(t) // "127.0.0.1:5060"
//	mp := siptest.FreeMediaPort(t)
//	sn := siptest.Sniff(t, mp) // before the call: SIPp binds mp itself
//	r := siptest.Run(t, siptest.Options{
//		Scenario:  "uac_pcmu",
//		Target:    uas,
//		Transport: "tcp",
//		MediaPort: mp,
//		Pause:     6 * time.Second, // time for the reply audio
//	})
//	sn.Close()
//	if n := sn.PayloadTypes()[0]; n < 50 {
//		t.Fatalf("%d PCMU packets from the gateway", n)
//	}
//	if db := media.DBFS(sn.DecodedAudio(0)); db < -40 {
//		t.Fatalf("reply audio is silent (%.0f dBFS)", db)
//	}
//
// The call scenarios stream Options.Audio (default: about 3 s of espeak-ng
// speech) from SIPp's media port once, as headerless G.711 written into the
// working directory (AudioFileMulaw, AudioFileAlaw), then stay up for
// Options.Pause (the "pause" variable, -set pause MS) before hanging up.
// If the gateway sends BYE first, the call still succeeds; any other
// unexpected message fails it.
//
// # Scenarios
//
// Every scenario runs over UDP and TCP (Options.Transport) and uses
// [service] (Options.Service, default "voicegw") as the Request-URI user.
//
//	uac_pcmu               PCMU + telephone-event offer, 200 must accept PT 0; audio; BYE. -set pause
//	uac_pcma               the same with PCMA (PT 8). -set pause
//	uac_unsupported_codec  G.729-only offer; expects 488, ACK
//	uac_reject_403         expects 403, ACK
//	uac_reject_404         expects 404, ACK
//	uac_reject_503         expects 503 with a numeric Retry-After, ACK
//	uac_cancel             expects 180 or 183, CANCEL, 200, 487, ACK
//	uac_digest             401 or 407, ACK, INVITE with credentials (Options.AuthUser, AuthPass), 200 ... BYE. -set pause
//	uac_options            OPTIONS; expects 200
//	uac_invite_no_sdp      INVITE without SDP; 200 must offer PCMU; ACK answers. -set pause
//	uac_hold               re-INVITE sendonly (200 must be recvonly), re-INVITE sendrecv, BYE. -set pause
//
// # Capturing the gateway's RTP
//
// The gateway latches its RTP onto the source address of SIPp's RTP, which
// is SIPp's media port, so a test cannot bind that port itself. Sniff reads
// an AF_PACKET socket on the loopback interface instead and keeps every UDP
// datagram sent to the port, once each. It needs root (CAP_NET_RAW) and
// works inside a loopback-only network namespace (unshare -n). RTP,
// PayloadTypes and DecodedAudio (G.711 in sequence order) read the capture.
package siptest
