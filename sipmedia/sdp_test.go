package sipmedia

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pion/sdp/v3"
)

func crlf(s string) []byte {
	s = strings.TrimSpace(s)
	lines := strings.Split(s, "\n")
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return []byte(strings.Join(lines, "\r\n") + "\r\n")
}

var (
	sippOffer = crlf(`v=0
o=user1 53655765 2353687637 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 6000 RTP/AVP 0
a=rtpmap:0 PCMU/8000`)

	asteriskOffer = crlf(`v=0
o=- 1234567 1234567 IN IP4 192.0.2.10
s=Asterisk
c=IN IP4 192.0.2.10
t=0 0
m=audio 17822 RTP/AVP 8 0 3 101
a=rtpmap:8 PCMA/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:3 GSM/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=maxptime:150
a=sendrecv`)

	freeswitchOffer = crlf(`v=0
o=FreeSWITCH 1700000000 1700000001 IN IP4 198.51.100.7
s=FreeSWITCH
c=IN IP4 198.51.100.7
t=0 0
m=audio 24580 RTP/SAVP 102 9 0 8 101 13
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz
a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:KzNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz
a=rtpmap:102 opus/48000/2
a=fmtp:102 useinbandfec=1; maxaveragebitrate=30000; maxplaybackrate=48000; ptime=20; minptime=10; maxptime=40
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=rtpmap:13 CN/8000
a=ptime:20
a=sendrecv
a=rtcp:24581 IN IP4 198.51.100.7`)

	cubeOffer = crlf(`v=0
o=CiscoSystemsSIP-GW-UserAgent 4325 2345 IN IP4 203.0.113.5
s=SIP Call
c=IN IP4 203.0.113.5
t=0 0
m=audio 16384 RTP/AVP 18 0 101 19
c=IN IP4 203.0.113.6
a=rtpmap:18 G729/8000
a=fmtp:18 annexb=no
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=rtpmap:19 CN/8000
a=ptime:30`)

	g729Only = crlf(`v=0
o=- 1 1 IN IP4 192.0.2.1
s=-
c=IN IP4 192.0.2.1
t=0 0
m=audio 4000 RTP/AVP 18
a=rtpmap:18 G729/8000`)
)

func TestNegotiateRealWorld(t *testing.T) {
	cases := []struct {
		name      string
		offer     []byte
		opts      Options
		codec     string
		pt, dtmf  uint8
		ptime     time.Duration
		remote    string
		rtcp      string
		srtp      string
		direction string
	}{
		{"sipp", sippOffer, Options{}, "PCMU", 0, 0, 20 * time.Millisecond, "127.0.0.1:6000", "127.0.0.1:6001", "", "sendrecv"},
		{"asterisk prefers ours", asteriskOffer, Options{}, "PCMU", 0, 101, 20 * time.Millisecond, "192.0.2.10:17822", "192.0.2.10:17823", "", "sendrecv"},
		{"asterisk PCMA first", asteriskOffer, Options{Codecs: []string{"PCMA", "PCMU"}}, "PCMA", 8, 101, 20 * time.Millisecond, "192.0.2.10:17822", "192.0.2.10:17823", "", "sendrecv"},
		{"freeswitch opus srtp", freeswitchOffer, Options{Codecs: []string{"opus", "PCMU"}, RequireSRTP: true}, "opus", 102, 101, 20 * time.Millisecond, "198.51.100.7:24580", "198.51.100.7:24581", "AES_CM_128_HMAC_SHA1_80", "sendrecv"},
		{"freeswitch pcmu", freeswitchOffer, Options{}, "PCMU", 0, 101, 20 * time.Millisecond, "198.51.100.7:24580", "198.51.100.7:24581", "AES_CM_128_HMAC_SHA1_80", "sendrecv"},
		{"cube media c= and ptime 30", cubeOffer, Options{}, "PCMU", 0, 101, 30 * time.Millisecond, "203.0.113.6:16384", "203.0.113.6:16385", "", "sendrecv"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := Negotiate(c.offer, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			if p.Codec != c.codec || p.PayloadType != c.pt || p.DTMFPayloadType != c.dtmf || p.PTime != c.ptime {
				t.Errorf("got %s/%d dtmf %d ptime %v, want %s/%d dtmf %d ptime %v", p.Codec, p.PayloadType, p.DTMFPayloadType, p.PTime, c.codec, c.pt, c.dtmf, c.ptime)
			}
			if p.Remote.String() != c.remote || p.RemoteRTCP.String() != c.rtcp || p.Direction != c.direction {
				t.Errorf("remote %v rtcp %v dir %s, want %s %s %s", p.Remote, p.RemoteRTCP, p.Direction, c.remote, c.rtcp, c.direction)
			}
			suite := ""
			if p.SRTP != nil {
				suite = p.SRTP.Suite
				if len(p.SRTP.LocalKey) != 30 || len(p.SRTP.RemoteKey) != 30 || p.SRTP.Tag != 1 {
					t.Errorf("SDES %+v", p.SRTP)
				}
			}
			if suite != c.srtp {
				t.Errorf("suite %q, want %q", suite, c.srtp)
			}
			ans := p.Answer(30000, 42, 1)
			checkAnswer(t, ans, p)
		})
	}
}

// checkAnswer parses our answer with pion/sdp and with our own parser.
func checkAnswer(t *testing.T, ans []byte, p *Plan) {
	t.Helper()
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(ans); err != nil {
		t.Fatalf("pion/sdp cannot parse our answer: %v\n%s", err, ans)
	}
	s, err := parseSDP(ans)
	if err != nil {
		t.Fatalf("our parser refuses our answer: %v\n%s", err, ans)
	}
	if len(p.medias) > 0 && len(s.medias) != len(p.medias) {
		t.Fatalf("answer has %d m= lines, offer %d", len(s.medias), len(p.medias))
	}
	m := s.medias[p.mindex]
	if m.port != 30000 || m.proto != p.proto {
		t.Errorf("m= %d %s", m.port, m.proto)
	}
	if name, _ := m.codecOf(m.pts[0]); name != p.Codec || m.pts[0] != p.PayloadType {
		t.Errorf("answer codec %s pt %d, want %s/%d", name, m.pts[0], p.Codec, p.PayloadType)
	}
	if p.DTMFPayloadType != 0 && (len(m.pts) != 2 || m.pts[1] != p.DTMFPayloadType || m.maps[p.DTMFPayloadType].fmtp != "0-16") {
		t.Errorf("answer telephone-event: %v\n%s", m.pts, ans)
	}
	if p.SRTP != nil {
		if len(m.cryptos) != 1 {
			t.Fatalf("want one a=crypto in the answer:\n%s", ans)
		}
		got, err := parseCrypto(m.cryptos[0].text)
		if err != nil || got.Tag != p.SRTP.Tag || got.Suite != p.SRTP.Suite || string(got.RemoteKey) != string(p.SRTP.LocalKey) {
			t.Errorf("answer crypto %q: %v", m.cryptos[0].text, err)
		}
	}
	if !strings.Contains(string(ans), "c=IN IP4 127.0.0.1\r\n") {
		t.Errorf("answer c= line:\n%s", ans)
	}
}

func TestNegotiateErrors(t *testing.T) {
	plainOffer := sippOffer
	cases := []struct {
		name  string
		offer []byte
		opts  Options
		want  error
		line  int // for *SDPError
	}{
		{"g729 only", g729Only, Options{}, ErrNoCommonCodec, 0},
		{"srtp required", plainOffer, Options{RequireSRTP: true}, ErrSRTPRequired, 0},
		{"opus only vs pcmu", plainOffer, Options{Codecs: []string{"opus"}}, ErrNoCommonCodec, 0},
		{"video only", crlf("v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nc=IN IP4 1.2.3.4\nt=0 0\nm=video 5000 RTP/AVP 96"), Options{}, ErrNoAudio, 0},
		{"audio port 0", crlf("v=0\nc=IN IP4 1.2.3.4\nm=audio 0 RTP/AVP 0"), Options{}, ErrNoAudio, 0},
		{"dtls only", crlf("v=0\nc=IN IP4 1.2.3.4\nm=audio 5000 UDP/TLS/RTP/SAVPF 111"), Options{}, ErrNoAudio, 0},
		{"savp without crypto", crlf("v=0\nc=IN IP4 1.2.3.4\nm=audio 5000 RTP/SAVP 0"), Options{}, ErrNoCommonCrypto, 0},
		{"unknown suite", crlf("v=0\nc=IN IP4 1.2.3.4\nm=audio 5000 RTP/SAVP 0\na=crypto:1 F8_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"), Options{}, ErrNoCommonCrypto, 0},
		{"session param", crlf("v=0\nc=IN IP4 1.2.3.4\nm=audio 5000 RTP/SAVP 0\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz UNENCRYPTED_SRTP"), Options{}, ErrNoCommonCrypto, 0},
		{"two keys", crlf("v=0\nc=IN IP4 1.2.3.4\nm=audio 5000 RTP/SAVP 0\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4;inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|2:4"), Options{}, ErrNoCommonCrypto, 0},
		{"short key", crlf("v=0\nc=IN IP4 1.2.3.4\nm=audio 5000 RTP/SAVP 0\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAA"), Options{}, ErrNoCommonCrypto, 0},
		{"first line", []byte("x=0\r\n"), Options{}, nil, 1},
		{"empty", nil, Options{}, nil, 0},
		{"no equals", crlf("v=0\nc=IN IP4 1.2.3.4\nhello\nm=audio 5000 RTP/AVP 0"), Options{}, nil, 3},
		{"bad port", crlf("v=0\nc=IN IP4 1.2.3.4\nm=audio 70000 RTP/AVP 0"), Options{}, nil, 3},
		{"bad pt", crlf("v=0\nc=IN IP4 1.2.3.4\nm=audio 7000 RTP/AVP 0 300"), Options{}, nil, 3},
		{"bad rtpmap", crlf("v=0\nc=IN IP4 1.2.3.4\nm=audio 7000 RTP/AVP 0\na=rtpmap:0 PCMU"), Options{}, nil, 4},
		{"bad rtpmap rate", crlf("v=0\nc=IN IP4 1.2.3.4\nm=audio 7000 RTP/AVP 0\na=rtpmap:0 PCMU/eight"), Options{}, nil, 4},
		{"hostname c=", crlf("v=0\nc=IN IP4 pbx.example.com\nm=audio 7000 RTP/AVP 0"), Options{}, nil, 2},
		{"ip6 mismatch", crlf("v=0\nc=IN IP6 1.2.3.4\nm=audio 7000 RTP/AVP 0"), Options{}, nil, 2},
		{"no c=", crlf("v=0\nm=audio 7000 RTP/AVP 0"), Options{}, nil, 2},
		{"bad ptime", crlf("v=0\nc=IN IP4 1.2.3.4\nm=audio 7000 RTP/AVP 0\na=ptime:abc"), Options{}, nil, 4},
		{"no m=", crlf("v=0\nc=IN IP4 1.2.3.4"), Options{}, nil, 0},
		{"too large", append([]byte("v=0\r\n"), make([]byte, maxSDP)...), Options{}, nil, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := Negotiate(c.offer, c.opts)
			if err == nil {
				t.Fatalf("accepted: %+v", p)
			}
			if c.want != nil {
				if !errors.Is(err, c.want) {
					t.Fatalf("err %v, want %v", err, c.want)
				}
				if StatusCode(err) != 488 {
					t.Errorf("status %d", StatusCode(err))
				}
				return
			}
			var se *SDPError
			if !errors.As(err, &se) {
				t.Fatalf("err %v (%T), want *SDPError", err, err)
			}
			if se.Line != c.line {
				t.Errorf("line %d, want %d (%v)", se.Line, c.line, err)
			}
			if StatusCode(err) != 400 {
				t.Errorf("status %d", StatusCode(err))
			}
		})
	}
}

func TestNegotiatePTimeAndHold(t *testing.T) {
	base := "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 %s\nt=0 0\n%sm=audio 7000 RTP/AVP 0 101\na=rtpmap:101 telephone-event/8000\n%s"
	mk := func(conn, sess, media string) []byte {
		return crlf(strings.Replace(strings.Replace(strings.Replace(base, "%s", conn, 1), "%s", sess, 1), "%s", media, 1))
	}
	cases := []struct {
		name           string
		offer          []byte
		ptime          time.Duration
		dir, answerDir string
		sends, recvs   bool
	}{
		{"ptime 10", mk("10.0.0.1", "", "a=ptime:10"), 10 * time.Millisecond, "sendrecv", "sendrecv", true, true},
		{"ptime 30", mk("10.0.0.1", "", "a=ptime:30"), 30 * time.Millisecond, "sendrecv", "sendrecv", true, true},
		{"ptime 40", mk("10.0.0.1", "", "a=ptime:40"), 40 * time.Millisecond, "sendrecv", "sendrecv", true, true},
		{"ptime 60 falls back", mk("10.0.0.1", "", "a=ptime:60"), 20 * time.Millisecond, "sendrecv", "sendrecv", true, true},
		{"session ptime", mk("10.0.0.1", "a=ptime:40\n", ""), 40 * time.Millisecond, "sendrecv", "sendrecv", true, true},
		{"sendonly hold", mk("10.0.0.1", "", "a=sendonly"), 20 * time.Millisecond, "sendonly", "recvonly", true, false},
		{"session sendonly", mk("10.0.0.1", "a=sendonly\n", ""), 20 * time.Millisecond, "sendonly", "recvonly", true, false},
		{"inactive", mk("10.0.0.1", "", "a=inactive"), 20 * time.Millisecond, "inactive", "inactive", false, false},
		{"recvonly", mk("10.0.0.1", "", "a=recvonly"), 20 * time.Millisecond, "recvonly", "sendonly", false, true},
		{"c=0.0.0.0 hold", mk("0.0.0.0", "", ""), 20 * time.Millisecond, "sendrecv", "sendrecv", true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := Negotiate(c.offer, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if p.PTime != c.ptime || p.Direction != c.dir || p.RemoteSends() != c.sends || p.RemoteReceives() != c.recvs {
				t.Errorf("ptime %v dir %s sends %v recvs %v", p.PTime, p.Direction, p.RemoteSends(), p.RemoteReceives())
			}
			ans := string(p.Answer(30000, 1, 2))
			if !strings.Contains(ans, "a="+c.answerDir+"\r\n") {
				t.Errorf("answer lacks a=%s:\n%s", c.answerDir, ans)
			}
			if !strings.Contains(ans, "a=ptime:"+strings.TrimSuffix(c.ptime.String(), "ms")+"\r\n") {
				t.Errorf("answer ptime:\n%s", ans)
			}
		})
	}
}

func TestAnswerRejectsOtherMedia(t *testing.T) {
	offer := crlf(`v=0
o=- 1 1 IN IP4 10.0.0.1
s=-
c=IN IP4 10.0.0.1
t=0 0
m=video 9000 RTP/AVP 96
a=rtpmap:96 H264/90000
m=audio 7000 RTP/AVP 0
a=rtcp-mux`)
	p, err := Negotiate(offer, Options{LocalIP: netip.MustParseAddr("127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	if !p.RTCPMux || p.RemoteRTCP != p.Remote {
		t.Errorf("rtcp-mux: %v %v", p.RTCPMux, p.RemoteRTCP)
	}
	ans := string(p.Answer(30000, 1, 1))
	if !strings.Contains(ans, "m=video 0 RTP/AVP 96\r\n") || !strings.Contains(ans, "m=audio 30000 RTP/AVP 0\r\n") || !strings.Contains(ans, "a=rtcp-mux\r\n") {
		t.Errorf("answer:\n%s", ans)
	}
	if strings.Index(ans, "m=video") > strings.Index(ans, "m=audio") {
		t.Errorf("m= order changed:\n%s", ans)
	}
}

func TestCryptoParams(t *testing.T) {
	const key = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"
	sd, err := parseCrypto("3 AES_CM_128_HMAC_SHA1_32 inline:" + key + "|2^20|7:2 WSH=64")
	if err != nil {
		t.Fatal(err)
	}
	if sd.Tag != 3 || sd.RemoteLifetime != 1<<20 || string(sd.RemoteMKI) != "\x00\x07" {
		t.Errorf("%+v", sd)
	}
	for _, bad := range []string{
		"1 AES_CM_128_HMAC_SHA1_80 inline:" + key + "|2^99",
		"1 AES_CM_128_HMAC_SHA1_80 inline:" + key + "|1:0",
		"1 AES_CM_128_HMAC_SHA1_80 inline:" + key + "|300:1",
		"1 AES_CM_128_HMAC_SHA1_80 uri:http://x",
		"1 AES_CM_128_HMAC_SHA1_80 inline:" + key + " KDR=1",
		"x AES_CM_128_HMAC_SHA1_80 inline:" + key,
	} {
		if _, err := parseCrypto(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	// GCM (RFC 7714): 16-byte key + 12-byte salt.
	gcm := "1 AEAD_AES_128_GCM inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGw=="
	if sd, err := parseCrypto(gcm); err != nil || len(sd.RemoteKey) != 28 {
		t.Errorf("GCM: %v", err)
	}
}

func TestOfferAnswerRoundTrip(t *testing.T) {
	for _, srtp := range []bool{false, true} {
		opts := Options{Codecs: []string{"opus", "PCMU"}, RequireSRTP: srtp}
		offer, pending, err := Offer(opts, 40000, 7, 1)
		if err != nil {
			t.Fatal(err)
		}
		var sd sdp.SessionDescription
		if err := sd.Unmarshal(offer); err != nil {
			t.Fatalf("pion/sdp: %v\n%s", err, offer)
		}
		// The remote negotiates our offer, preferring PCMU, and answers.
		remote, err := Negotiate(offer, Options{Codecs: []string{"PCMU", "opus"}, RequireSRTP: srtp})
		if err != nil {
			t.Fatalf("remote cannot negotiate our offer: %v\n%s", err, offer)
		}
		if remote.Codec != "PCMU" || remote.DTMFPayloadType != offerDTMF8kPT || remote.Remote.Port() != 40000 {
			t.Errorf("remote plan %+v", remote)
		}
		answer := remote.Answer(50000, 9, 1)
		p, err := pending.ParseAnswer(answer)
		if err != nil {
			t.Fatalf("ParseAnswer: %v\n%s", err, answer)
		}
		if p.Codec != "PCMU" || p.PayloadType != 0 || p.Remote.Port() != 50000 || p.DTMFPayloadType != offerDTMF8kPT {
			t.Errorf("plan %+v", p)
		}
		if srtp {
			if p.SRTP == nil || string(p.SRTP.RemoteKey) != string(remote.SRTP.LocalKey) || string(p.SRTP.LocalKey) != string(remote.SRTP.RemoteKey) {
				t.Fatalf("keys do not pair up: %+v %+v", p.SRTP, remote.SRTP)
			}
		} else if p.SRTP != nil {
			t.Error("SRTP without offering it")
		}
	}
	// An answer picking a codec we did not offer.
	_, pending, _ := Offer(Options{Codecs: []string{"PCMA"}}, 40000, 1, 1)
	if _, err := pending.ParseAnswer(sippOffer); !errors.Is(err, ErrNoCommonCodec) {
		t.Errorf("foreign codec: %v", err)
	}
}

func FuzzNegotiate(f *testing.F) {
	for _, s := range [][]byte{sippOffer, asteriskOffer, freeswitchOffer, cubeOffer, g729Only, []byte("v=0\r\n"), []byte("v=0\nc=IN IP6 ::1\nm=audio 1 RTP/SAVP 0 8 111\na=rtpmap:111 opus/48000/2\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^31|1:4\na=rtcp:9 IN IP6 ::2\na=rtcp-mux")} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, offer []byte) {
		p, err := Negotiate(offer, Options{})
		if err != nil {
			if StatusCode(err) == 500 {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		ans := p.Answer(30000, 1, 1)
		if _, err := parseSDP(ans); err != nil {
			t.Fatalf("our answer does not parse: %v\n%q\n%s", err, offer, ans)
		}
		var sd sdp.SessionDescription
		if err := sd.Unmarshal(ans); err != nil {
			t.Fatalf("pion/sdp refuses our answer: %v\n%q\n%s", err, offer, ans)
		}
	})
}
