package gateway

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/icholy/digest"

	"github.com/voicegw/voicegw/gateway/backends"
)

// sipTestServer is a gateway with only the SIP ingress in use: its trunk
// admits 127.0.0.1 and may call number "1" only, so requests are answered
// without a call being set up.
func sipTestServer(t testing.TB, trunk Trunk) *Server {
	t.Helper()
	dead := backends.Endpoint{URL: "http://127.0.0.1:1", Timeout: 200 * time.Millisecond}
	srv, err := New(Config{
		ICE: ICEConfig{UDPAddr: "127.0.0.1:0", LoopbackOnly: true},
		SIP: SIPConfig{UDPAddr: "127.0.0.1:0", TCPAddr: "127.0.0.1:0", RTPPortMin: 46000, RTPPortMax: 46999, Trunks: []Trunk{trunk}},
		ASR: backends.ASRConfig{Endpoint: dead}, LLM: backends.LLMConfig{Endpoint: dead}, TTS: backends.TTSConfig{Endpoint: dead},
		Auth:   StaticTokens{},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return srv
}

func testTrunk() Trunk {
	return Trunk{Name: "t", Tenant: "dev", Sources: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, Numbers: map[string]string{"1": ""}}
}

// sipRequest renders a request from the client at laddr.
func sipRequest(method, user, laddr, branch string, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s sip:%s@127.0.0.1 SIP/2.0\r\n", method, user)
	fmt.Fprintf(&b, "Via: SIP/2.0/UDP %s;branch=z9hG4bK%s\r\n", laddr, branch)
	fmt.Fprintf(&b, "From: <sip:tester@127.0.0.1>;tag=ft%s\r\n", branch)
	fmt.Fprintf(&b, "To: <sip:%s@127.0.0.1>\r\n", user)
	fmt.Fprintf(&b, "Call-ID: %s@test\r\n", branch)
	fmt.Fprintf(&b, "CSeq: 1 %s\r\n", method)
	fmt.Fprintf(&b, "Contact: <sip:tester@%s>\r\n", laddr)
	b.WriteString("Max-Forwards: 70\r\n")
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return b.String()
}

// exchange sends msg over UDP from c and returns the final response to it
// (matched by Via branch; provisional ones and responses to other
// requests skipped) with its headers, or 0 when none comes. A final
// response to an INVITE is acknowledged, as a UAC must.
func exchange(t testing.TB, c *net.UDPConn, to string, msg string, wait time.Duration) (int, []string) {
	t.Helper()
	dst, _ := net.ResolveUDPAddr("udp", to)
	if _, err := c.WriteToUDP([]byte(msg), dst); err != nil {
		t.Fatal(err)
	}
	branch := ""
	if _, rest, ok := strings.Cut(msg, "branch="); ok {
		branch, _, _ = strings.Cut(rest, "\r\n")
	}
	buf := make([]byte, 65536)
	deadline := time.Now().Add(wait)
	for {
		_ = c.SetReadDeadline(deadline)
		n, _, err := c.ReadFromUDP(buf)
		if err != nil {
			return 0, nil
		}
		lines := strings.Split(string(buf[:n]), "\r\n")
		f := strings.Fields(lines[0])
		if len(f) < 2 || f[0] != "SIP/2.0" || branch == "" || !strings.Contains(string(buf[:n]), "branch="+branch) {
			continue
		}
		code, _ := strconv.Atoi(f[1])
		if code < 200 {
			continue
		}
		if strings.HasPrefix(msg, "INVITE ") {
			ack := strings.Replace(strings.Replace(msg, "INVITE ", "ACK ", 1), " INVITE\r\n", " ACK\r\n", 1)
			if to := header(lines[1:], "To"); len(to) == 1 {
				ack = strings.Replace(ack, "\r\nTo: "+strings.SplitN(ack[strings.Index(ack, "\r\nTo: ")+7:], "\r\n", 2)[0], "\r\nTo: "+to[0], 1)
			}
			_, _ = c.WriteToUDP([]byte(ack), dst)
		}
		return code, lines[1:]
	}
}

func header(lines []string, name string) []string {
	var out []string
	for _, l := range lines {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(strings.TrimSpace(k), name) {
			out = append(out, strings.TrimSpace(v))
		}
	}
	return out
}

func udpClient(t testing.TB) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

var branchSeq int

func nextBranch() string {
	branchSeq++
	return fmt.Sprintf("b%d%d", time.Now().UnixNano(), branchSeq)
}

// alive checks that the SIP ingress still answers OPTIONS with 200.
func alive(t testing.TB, srv *Server) {
	t.Helper()
	c := udpClient(t)
	code, _ := exchange(t, c, srv.SIPAddr("udp"), sipRequest("OPTIONS", "1", c.LocalAddr().String(), nextBranch()), 2*time.Second)
	if code != 200 {
		t.Fatalf("OPTIONS after bad input: status %d, want 200 (the ingress must stay healthy)", code)
	}
}

// TestSIPMalformed: garbage, missing headers, a wrong Content-Length, huge
// headers and broken SDP are answered with 400 (or 488 for SDP without a
// usable codec) or dropped, never with a call, and the ingress keeps
// answering.
func TestSIPMalformed(t *testing.T) {
	srv := sipTestServer(t, Trunk{Name: "t", Tenant: "dev", Sources: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, Numbers: map[string]string{"*": ""}})
	c := udpClient(t)
	laddr := c.LocalAddr().String()
	invite := func(body, ctype string) string {
		b := nextBranch()
		m := sipRequest("INVITE", "1", laddr, b, "Content-Type: "+ctype)
		return strings.Replace(m, "Content-Length: 0\r\n\r\n", fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body), 1)
	}
	noCSeq := strings.Replace(sipRequest("INVITE", "1", laddr, nextBranch()), "CSeq: 1 INVITE\r\n", "", 1)
	badLen := strings.Replace(sipRequest("OPTIONS", "1", laddr, nextBranch()), "Content-Length: 0", "Content-Length: 900", 1)
	huge := sipRequest("OPTIONS", "1", laddr, nextBranch(), "X-Huge: "+strings.Repeat("a", 60000))
	for _, c2 := range []struct {
		name  string
		msg   string
		codes []int // acceptable final statuses; 0 means dropped
	}{
		{"garbage", "\x00\x01garbage\r\n\r\n", []int{0}},
		{"no CSeq", noCSeq, []int{0, 400}},
		{"Content-Length beyond the datagram", badLen, []int{0, 400}},
		{"huge header", huge, []int{0, 400, 413, 200}},
		{"broken SDP", invite("v=0\r\nthis is not sdp\r\n", "application/sdp"), []int{400}},
		{"SDP with only G.729", invite("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n", "application/sdp"), []int{488}},
		{"not SDP", invite("hello", "text/plain"), []int{415}},
	} {
		code, _ := exchange(t, c, srv.SIPAddr("udp"), c2.msg, time.Second)
		ok := false
		for _, want := range c2.codes {
			ok = ok || code == want
		}
		if !ok {
			t.Errorf("%s: status %d, want one of %v", c2.name, code, c2.codes)
		}
	}
	if n := srv.ActiveCalls(); n != 0 {
		t.Errorf("%d calls set up from bad input", n)
	}
	alive(t, srv)

	// Over TCP: garbage and a truncated message on one connection; a new
	// connection still gets answers.
	tc, err := net.Dial("tcp", srv.SIPAddr("tcp"))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = tc.Write([]byte("\x16\x03\x01garbage that is not SIP\r\n\r\nINVITE sip:1@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP x"))
	tc.Close()
	tc2, err := net.Dial("tcp", srv.SIPAddr("tcp"))
	if err != nil {
		t.Fatal(err)
	}
	defer tc2.Close()
	opt := strings.ReplaceAll(sipRequest("OPTIONS", "1", tc2.LocalAddr().String(), nextBranch()), "SIP/2.0/UDP", "SIP/2.0/TCP")
	_, _ = tc2.Write([]byte(opt))
	_ = tc2.SetReadDeadline(time.Now().Add(3 * time.Second))
	line, err := bufio.NewReader(tc2).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "SIP/2.0 200") {
		t.Errorf("OPTIONS over a new TCP connection after garbage: %q %v", line, err)
	}
}

// TestSIPTrunkAndNumber: a source outside every trunk gets 403 for INVITE
// and OPTIONS; a number the trunk may not call gets 404.
func TestSIPTrunkAndNumber(t *testing.T) {
	tr := testTrunk()
	srv := sipTestServer(t, tr)
	c := udpClient(t)
	if code, _ := exchange(t, c, srv.SIPAddr("udp"), sipRequest("INVITE", "2", c.LocalAddr().String(), nextBranch()), 2*time.Second); code != 404 {
		t.Errorf("unknown number: %d, want 404", code)
	}
	far := sipTestServer(t, Trunk{Name: "far", Tenant: "dev", Sources: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, Numbers: map[string]string{"*": ""}})
	for _, m := range []string{"INVITE", "OPTIONS"} {
		if code, _ := exchange(t, c, far.SIPAddr("udp"), sipRequest(m, "1", c.LocalAddr().String(), nextBranch()), 2*time.Second); code != 403 {
			t.Errorf("%s from outside every trunk: %d, want 403", m, code)
		}
	}
}

// TestSIPDigestSHA256: the challenge offers SHA-256 before MD5; responses
// computed with either and the right password pass (the call then reaches
// the number check: 404), a wrong password, another user, a forged nonce
// or an algorithm not offered are challenged again.
func TestSIPDigestSHA256(t *testing.T) {
	tr := testTrunk()
	tr.Username, tr.Password = "acme", "correct horse"
	srv := sipTestServer(t, tr)
	c := udpClient(t)
	laddr := c.LocalAddr().String()
	code, hdrs := exchange(t, c, srv.SIPAddr("udp"), sipRequest("INVITE", "2", laddr, nextBranch()), 2*time.Second)
	chals := header(hdrs, "WWW-Authenticate")
	if code != 401 || len(chals) != 2 || !strings.Contains(chals[0], "SHA-256") || !strings.Contains(chals[1], "MD5") {
		t.Fatalf("no credentials: %d %v, want 401 offering SHA-256 then MD5", code, chals)
	}
	try := func(chal, user, pass string, mutate func(*digest.Credentials)) int {
		ch, err := digest.ParseChallenge(chal)
		if err != nil {
			t.Fatal(err)
		}
		cr, err := digest.Digest(ch, digest.Options{Method: "INVITE", URI: "sip:2@127.0.0.1", Username: user, Password: pass, Count: 1})
		if err != nil {
			t.Fatal(err)
		}
		if mutate != nil {
			mutate(cr)
		}
		code, _ := exchange(t, c, srv.SIPAddr("udp"), sipRequest("INVITE", "2", laddr, nextBranch(), "Authorization: "+cr.String()), 2*time.Second)
		return code
	}
	for i, name := range []string{"SHA-256", "MD5"} {
		if code := try(chals[i], "acme", "correct horse", nil); code != 404 {
			t.Errorf("%s with the right password: %d, want 404 (past authentication)", name, code)
		}
		if code := try(chals[i], "acme", "wrong", nil); code != 401 {
			t.Errorf("%s with a wrong password: %d, want 401", name, code)
		}
	}
	if code := try(chals[0], "mallory", "correct horse", nil); code != 401 {
		t.Errorf("another user: %d", code)
	}
	if code := try(chals[0], "acme", "correct horse", func(cr *digest.Credentials) { cr.Nonce = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" }); code != 401 {
		t.Errorf("forged nonce: %d", code)
	}
	if code := try(strings.Replace(chals[0], "SHA-256", "SHA-512-256", 1), "acme", "correct horse", nil); code != 401 {
		t.Errorf("algorithm not offered: %d", code)
	}
}

// FuzzSIPDatagram sends arbitrary datagrams to the SIP ingress: whatever
// arrives, the process must not panic and the ingress must keep answering
// OPTIONS.
func FuzzSIPDatagram(f *testing.F) {
	laddr := "127.0.0.1:5999"
	f.Add([]byte(sipRequest("OPTIONS", "1", laddr, "seed1")))
	f.Add([]byte(sipRequest("INVITE", "2", laddr, "seed2")))
	f.Add([]byte(sipRequest("BYE", "1", laddr, "seed3")))
	f.Add([]byte(sipRequest("CANCEL", "1", laddr, "seed4")))
	f.Add([]byte(sipRequest("ACK", "1", laddr, "seed5")))
	f.Add([]byte(strings.Replace(sipRequest("INVITE", "2", laddr, "seed6", "Content-Type: application/sdp"), "Content-Length: 0\r\n\r\n",
		"Content-Length: 60\r\n\r\nv=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nm=audio 4000 RTP/AVP 0\r\n", 1)))
	f.Add([]byte("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKx\r\nCSeq: 1 BYE\r\n\r\n"))
	f.Add([]byte{0, 1, 2, 3})
	srv := sipTestServer(f, testTrunk())
	c := udpClient(f)
	dst, _ := net.ResolveUDPAddr("udp", srv.SIPAddr("udp"))
	n := 0
	f.Fuzz(func(t *testing.T, msg []byte) {
		if len(msg) > 65000 {
			return
		}
		if _, err := c.WriteToUDP(msg, dst); err != nil {
			t.Fatal(err)
		}
		// Every seed is checked; while fuzzing, every 50th input.
		if n++; n <= 10 || n%50 == 0 {
			alive(t, srv)
		}
	})
}

// BenchmarkSIPOptions is one OPTIONS request through the SIP ingress over
// loopback UDP: parse, transaction, trunk match, response.
func BenchmarkSIPOptions(b *testing.B) {
	srv := sipTestServer(b, testTrunk())
	c := udpClient(b)
	laddr := c.LocalAddr().String()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if code, _ := exchange(b, c, srv.SIPAddr("udp"), sipRequest("OPTIONS", "1", laddr, fmt.Sprintf("o%d", i)), 2*time.Second); code != 200 {
			b.Fatalf("status %d", code)
		}
	}
}

// BenchmarkSIPInviteDigest is an INVITE carrying valid SHA-256 digest
// credentials, refused after authentication (404): parse, transaction,
// trunk match, nonce and digest check, number routing, response.
func BenchmarkSIPInviteDigest(b *testing.B) {
	tr := testTrunk()
	tr.Username, tr.Password = "acme", "correct horse"
	srv := sipTestServer(b, tr)
	c := udpClient(b)
	laddr := c.LocalAddr().String()
	_, hdrs := exchange(b, c, srv.SIPAddr("udp"), sipRequest("INVITE", "2", laddr, "chal"), 2*time.Second)
	ch, err := digest.ParseChallenge(header(hdrs, "WWW-Authenticate")[0])
	if err != nil {
		b.Fatal(err)
	}
	cr, err := digest.Digest(ch, digest.Options{Method: "INVITE", URI: "sip:2@127.0.0.1", Username: "acme", Password: "correct horse", Count: 1})
	if err != nil {
		b.Fatal(err)
	}
	auth := "Authorization: " + cr.String()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if code, _ := exchange(b, c, srv.SIPAddr("udp"), sipRequest("INVITE", "2", laddr, fmt.Sprintf("i%d", i), auth), 2*time.Second); code != 404 {
			b.Fatalf("request %d: status %d", i, code)
		}
	}
}

// TestSIPOverTLS: with a certificate configured the ingress serves SIP over
// TLS, and a trunk's OPTIONS over it is answered.
func TestSIPOverTLS(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "voicegw sip test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	dead := backends.Endpoint{URL: "http://127.0.0.1:1", Timeout: 200 * time.Millisecond}
	srv, err := New(Config{
		ICE: ICEConfig{UDPAddr: "127.0.0.1:0", LoopbackOnly: true},
		SIP: SIPConfig{TLSAddr: "127.0.0.1:0", TLS: &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
			RTPPortMin: 47000, RTPPortMax: 47999, Trunks: []Trunk{testTrunk()}},
		ASR: backends.ASRConfig{Endpoint: dead}, LLM: backends.LLMConfig{Endpoint: dead}, TTS: backends.TTSConfig{Endpoint: dead},
		Auth:   StaticTokens{},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	if srv.SIPAddr("udp") != "" || srv.SIPAddr("tls") == "" {
		t.Fatalf("listeners: udp %q tls %q", srv.SIPAddr("udp"), srv.SIPAddr("tls"))
	}
	conn, err := tls.Dial("tcp", srv.SIPAddr("tls"), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	defer conn.Close()
	msg := strings.ReplaceAll(sipRequest("OPTIONS", "1", conn.LocalAddr().String(), nextBranch()), "SIP/2.0/UDP", "SIP/2.0/TLS")
	if _, err := conn.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "SIP/2.0 200") {
		t.Errorf("OPTIONS over TLS: %q %v", line, err)
	}
}
