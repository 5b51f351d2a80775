package siptest_test

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
	"github.com/pion/rtp"

	"github.com/voicegw/voicegw/media"
	"github.com/voicegw/voicegw/media/mediatest"
)

// uasConfig says how the test UAS answers a new INVITE. The zero value
// answers every INVITE with PCMU and plays a 1 kHz tone.
type uasConfig struct {
	// Reject answers every new INVITE with this final status.
	Reject int
	// RetryAfter adds "Retry-After: 30" to the rejection.
	RetryAfter bool
	// Ring sends 180 and never answers (for CANCEL).
	Ring bool
	// DigestUser and DigestPass challenge every new INVITE (401) until it
	// carries matching credentials.
	DigestUser, DigestPass string
	// HangupAfter sends a BYE this long after the ACK.
	HangupAfter time.Duration
	// IgnoreHold answers every re-INVITE with sendrecv.
	IgnoreHold bool
	// Tone is how long the 1 kHz tone plays. Default 2 s.
	Tone time.Duration
}

const digestRealm = "siptest.invalid"

// testUAS is a small SIP UAS on 127.0.0.1 (UDP and TCP on one port) that
// answers INVITE with PCMU and sends a 1 kHz tone to the latched source of
// the caller's RTP.
type testUAS struct {
	tb   testing.TB
	cfg  uasConfig
	Addr string // "127.0.0.1:port", for both UDP and TCP

	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	client *sipgo.Client
	cancel context.CancelFunc

	mu    sync.Mutex
	calls map[string]*uasCall
	wg    sync.WaitGroup
}

type uasCall struct {
	id      string
	invite  *sip.Request
	toTag   string
	conn    *net.UDPConn
	offer   sdpInfo // the caller's offer or answer
	held    bool
	acked   chan struct{}
	ackOnce sync.Once
	done    chan struct{}
	endOnce sync.Once
}

func (c *uasCall) end() { c.endOnce.Do(func() { close(c.done) }) }

func newUAS(tb testing.TB, cfg uasConfig) *testUAS {
	tb.Helper()
	if cfg.Tone == 0 {
		cfg.Tone = 2 * time.Second
	}
	log := slog.New(slog.DiscardHandler)
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("siptest-uas"))
	if err != nil {
		tb.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(log))
	if err != nil {
		tb.Fatal(err)
	}
	client, err := sipgo.NewClient(ua, sipgo.WithClientLogger(log), sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		tb.Fatal(err)
	}
	u := &testUAS{tb: tb, cfg: cfg, ua: ua, srv: srv, client: client, calls: make(map[string]*uasCall)}
	srv.OnInvite(u.onInvite)
	srv.OnAck(u.onAck)
	srv.OnBye(u.onBye)
	srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		res := sip.NewResponseFromRequest(req, 200, "OK", nil)
		res.AppendHeader(sip.NewHeader("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS"))
		res.AppendHeader(sip.NewHeader("Accept", "application/sdp"))
		_ = tx.Respond(res)
	})

	udp, tcp := listenPair(tb)
	u.Addr = udp.LocalAddr().String()
	ctx, cancel := context.WithCancel(context.Background())
	u.cancel = cancel
	u.wg.Add(2)
	go func() { defer u.wg.Done(); _ = srv.ServeUDP(udp) }()
	go func() { defer u.wg.Done(); _ = srv.ServeTCP(tcp) }()
	go func() { <-ctx.Done(); udp.Close(); tcp.Close() }()
	tb.Cleanup(u.close)
	return u
}

// listenPair binds UDP and TCP on the same free port of 127.0.0.1.
func listenPair(tb testing.TB) (net.PacketConn, net.Listener) {
	tb.Helper()
	for range 50 {
		udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		tcp, err := net.Listen("tcp4", udp.LocalAddr().String())
		if err == nil {
			return udp, tcp
		}
		udp.Close()
	}
	tb.Fatal("no free port for UDP and TCP")
	return nil, nil
}

func (u *testUAS) close() {
	u.mu.Lock()
	for _, c := range u.calls {
		c.end()
	}
	u.mu.Unlock()
	u.cancel()
	_ = u.srv.Close()
	_ = u.ua.Close()
	u.wg.Wait()
}

func (u *testUAS) call(id string) *uasCall {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.calls[id]
}

func (u *testUAS) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	id := req.CallID().Value()
	if tag, ok := req.To().Params.Get("tag"); ok && tag != "" {
		u.onReinvite(req, tx, id)
		return
	}
	_ = tx.Respond(sip.NewResponseFromRequest(req, 100, "Trying", nil))

	if u.cfg.DigestUser != "" && !u.authorized(req) {
		res := sip.NewResponseFromRequest(req, 401, "Unauthorized", nil)
		res.AppendHeader(sip.NewHeader("WWW-Authenticate",
			fmt.Sprintf(`Digest realm="%s", nonce="%s", algorithm=MD5, qop="auth"`, digestRealm, randHex(8))))
		_ = tx.Respond(res)
		return
	}
	if u.cfg.Reject != 0 {
		res := sip.NewResponseFromRequest(req, u.cfg.Reject, "Test Rejection", nil)
		if u.cfg.RetryAfter {
			res.AppendHeader(sip.NewHeader("Retry-After", "30"))
		}
		_ = tx.Respond(res)
		return
	}
	if u.cfg.Ring {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 180, "Ringing", nil))
		// sipgo answers the CANCEL (200) and the INVITE (487) itself.
		select {
		case <-tx.Done():
		case <-time.After(30 * time.Second):
		}
		return
	}

	var offer sdpInfo
	if len(req.Body()) > 0 {
		offer = parseSDP(req.Body())
		if !offer.hasPT(0) {
			_ = tx.Respond(sip.NewResponseFromRequest(req, 488, "Not Acceptable Here", nil))
			return
		}
	}
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 500, "Server Error", nil))
		return
	}
	c := &uasCall{
		id: id, invite: req, toTag: randHex(6), conn: conn, offer: offer,
		acked: make(chan struct{}), done: make(chan struct{}),
	}
	u.mu.Lock()
	u.calls[id] = c
	u.mu.Unlock()

	dir := "sendrecv"
	res := u.answer(req, c, sdpBody(conn.LocalAddr().(*net.UDPAddr).Port, dir, 1))
	if err := tx.Respond(res); err != nil {
		c.end()
		return
	}
	u.wg.Add(1)
	go u.runMedia(c)
}

func (u *testUAS) answer(req *sip.Request, c *uasCall, body []byte) *sip.Response {
	res := sip.NewResponseFromRequest(req, 200, "OK", body)
	res.To().Params.Add("tag", c.toTag)
	res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{
		Scheme: "sip", User: "uas", Host: "127.0.0.1", Port: u.port(),
		UriParams: sip.HeaderParams{{K: "transport", V: strings.ToLower(req.Transport())}},
	}})
	res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	return res
}

func (u *testUAS) port() int {
	_, p, _ := net.SplitHostPort(u.Addr)
	n, _ := strconv.Atoi(p)
	return n
}

// onReinvite answers a re-INVITE, mirroring the offer's direction.
func (u *testUAS) onReinvite(req *sip.Request, tx sip.ServerTransaction, id string) {
	c := u.call(id)
	if c == nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		return
	}
	offer := parseSDP(req.Body())
	dir := map[string]string{"sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}[offer.dir]
	if dir == "" || u.cfg.IgnoreHold {
		dir = "sendrecv"
	}
	u.mu.Lock()
	c.held = dir != "sendrecv"
	u.mu.Unlock()
	_ = tx.Respond(u.answer(req, c, sdpBody(c.conn.LocalAddr().(*net.UDPAddr).Port, dir, 2)))
}

func (u *testUAS) onAck(req *sip.Request, _ sip.ServerTransaction) {
	c := u.call(req.CallID().Value())
	if c == nil {
		return
	}
	if len(req.Body()) > 0 {
		u.mu.Lock()
		c.offer = parseSDP(req.Body())
		u.mu.Unlock()
	}
	c.ackOnce.Do(func() { close(c.acked) })
}

func (u *testUAS) onBye(req *sip.Request, tx sip.ServerTransaction) {
	c := u.call(req.CallID().Value())
	if c == nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		return
	}
	c.end()
	_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
}

// runMedia sends cfg.Tone of a 1 kHz tone in PCMU to the latched source of
// the caller's RTP (or, if none arrives within a second of the ACK, to the
// address in its SDP), and hangs up after cfg.HangupAfter if set.
func (u *testUAS) runMedia(c *uasCall) {
	defer u.wg.Done()
	defer c.conn.Close()
	select {
	case <-c.acked:
	case <-c.done:
		return
	case <-time.After(30 * time.Second):
		return
	}
	var hangup <-chan time.Time
	if u.cfg.HangupAfter > 0 {
		hangup = time.After(u.cfg.HangupAfter)
	}

	latched := make(chan *net.UDPAddr, 1)
	go func() { // ends when conn is closed
		buf := make([]byte, 1500)
		for {
			n, from, err := c.conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			var p rtp.Packet
			if p.Unmarshal(buf[:n]) == nil {
				select {
				case latched <- from:
				default:
				}
				return // latched once; later packets are not needed
			}
		}
	}()
	var dst *net.UDPAddr
	select {
	case dst = <-latched:
	case <-time.After(time.Second):
		u.mu.Lock()
		off := c.offer
		u.mu.Unlock()
		dst = &net.UDPAddr{IP: net.ParseIP(off.ip), Port: off.port}
	case <-c.done:
		return
	case <-hangup:
		u.bye(c)
		return
	}

	tone := mediatest.Sine(8000, 1000, 0.5, 8000)
	frame := make([]byte, 160)
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SSRC: 0x51b7e570, Marker: true}}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	frames := int(u.cfg.Tone / (20 * time.Millisecond))
	for i := 0; i < frames; {
		select {
		case <-c.done:
			return
		case <-hangup:
			u.bye(c)
			return
		case <-tick.C:
		}
		u.mu.Lock()
		held := c.held
		u.mu.Unlock()
		if held {
			continue
		}
		off := (i * 160) % (len(tone) - 160)
		media.EncodeMulaw(frame, tone[off:off+160])
		pkt.SequenceNumber = uint16(i)
		pkt.Timestamp = uint32(i * 160)
		pkt.Payload = frame
		pkt.Marker = i == 0
		b, err := pkt.Marshal()
		if err != nil {
			return
		}
		_, _ = c.conn.WriteToUDP(b, dst)
		i++
	}
	select {
	case <-c.done:
	case <-hangup:
		u.bye(c)
	case <-time.After(60 * time.Second):
	}
}

// bye hangs up call c from the UAS side.
func (u *testUAS) bye(c *uasCall) {
	inv := c.invite
	target := inv.Contact().Address
	req := sip.NewRequest(sip.BYE, target)
	from := &sip.FromHeader{Address: inv.To().Address, Params: sip.NewParams()}
	from.Params.Add("tag", c.toTag)
	to := &sip.ToHeader{Address: inv.From().Address, Params: inv.From().Params.Clone()}
	req.AppendHeader(from)
	req.AppendHeader(to)
	callID := sip.CallIDHeader(c.id)
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.BYE})
	req.SetTransport(inv.Transport())
	req.SetDestination(inv.Source())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := u.client.Do(ctx, req)
	if err != nil {
		u.tb.Logf("uas BYE: %v", err)
	} else if res.StatusCode != 200 {
		u.tb.Logf("uas BYE: %d %s", res.StatusCode, res.Reason)
	}
	c.end()
}

// authorized checks an INVITE's digest credentials (RFC 2617, MD5, qop=auth
// or none) against cfg.DigestUser and DigestPass.
func (u *testUAS) authorized(req *sip.Request) bool {
	h := req.GetHeader("Authorization")
	if h == nil {
		return false
	}
	cred, err := digest.ParseCredentials(h.Value())
	if err != nil || cred.Username != u.cfg.DigestUser || cred.Realm != digestRealm {
		return false
	}
	md := func(s string) string { x := md5.Sum([]byte(s)); return hex.EncodeToString(x[:]) }
	ha1 := md(cred.Username + ":" + cred.Realm + ":" + u.cfg.DigestPass)
	ha2 := md("INVITE:" + cred.URI)
	want := md(ha1 + ":" + cred.Nonce + ":" + ha2)
	if cred.QOP != "" {
		want = md(ha1 + ":" + cred.Nonce + ":" + fmt.Sprintf("%08x", cred.Nc) + ":" + cred.Cnonce + ":" + cred.QOP + ":" + ha2)
	}
	return cred.Response == want
}

// sdpInfo is what the UAS reads from an SDP body.
type sdpInfo struct {
	ip   string
	port int
	pts  []int
	dir  string
}

func (s sdpInfo) hasPT(pt int) bool {
	for _, p := range s.pts {
		if p == pt {
			return true
		}
	}
	return false
}

func parseSDP(b []byte) sdpInfo {
	var s sdpInfo
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "c=IN IP4 "):
			s.ip = strings.TrimPrefix(line, "c=IN IP4 ")
		case strings.HasPrefix(line, "m=audio "):
			f := strings.Fields(line)
			if len(f) >= 3 {
				s.port, _ = strconv.Atoi(f[1])
			}
			for _, x := range f[min(3, len(f)):] {
				if n, err := strconv.Atoi(x); err == nil {
					s.pts = append(s.pts, n)
				}
			}
		case line == "a=sendonly" || line == "a=recvonly" || line == "a=inactive" || line == "a=sendrecv":
			s.dir = strings.TrimPrefix(line, "a=")
		}
	}
	return s
}

func sdpBody(port int, dir string, version int) []byte {
	return fmt.Appendf(nil, "v=0\r\no=uas 1 %d IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
		"m=audio %d RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"+
		"a=fmtp:101 0-15\r\na=ptime:20\r\na=%s\r\n", version, port, dir)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
