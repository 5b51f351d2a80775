package sipmedia

import (
	"errors"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/voicegw/voicegw/media"
	"github.com/voicegw/voicegw/media/mediatest"
)

var loopback = netip.MustParseAddr("127.0.0.1")

func listen(t testing.TB) *Conn {
	t.Helper()
	c, err := ListenConn(netip.AddrPortFrom(loopback, 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func addrOf(c *Conn) netip.AddrPort { return netip.AddrPortFrom(loopback, uint16(c.Port())) }

func rtcpAddrOf(c *Conn) netip.AddrPort {
	return netip.AddrPortFrom(loopback, uint16(c.RTCP.LocalAddr().(*net.UDPAddr).Port))
}

// plans builds a matching pair of plans by hand: a sends to b with
// ptimeAB and b to a with ptimeBA.
func plans(codec string, pt uint8, a, b *Conn, ptimeAB, ptimeBA time.Duration, suite string) (pa, pb *Plan) {
	rate := 8000
	if codec == CodecOpus {
		rate = 48000
	}
	pa = &Plan{Codec: codec, PayloadType: pt, ClockRate: rate, PTime: ptimeAB, DTMFPayloadType: 101, DTMFClockRate: 8000,
		Remote: addrOf(b), RemoteRTCP: rtcpAddrOf(b), Direction: SendRecv, LocalIP: loopback, proto: "RTP/AVP"}
	pb = &Plan{Codec: codec, PayloadType: pt, ClockRate: rate, PTime: ptimeBA, DTMFPayloadType: 101, DTMFClockRate: 8000,
		Remote: addrOf(a), RemoteRTCP: rtcpAddrOf(a), Direction: SendRecv, LocalIP: loopback, proto: "RTP/AVP"}
	if suite != "" {
		ka, _ := newLocalKey(suite)
		kb, _ := newLocalKey(suite)
		pa.SRTP = &SDES{Tag: 1, Suite: suite, LocalKey: ka, RemoteKey: kb}
		pb.SRTP = &SDES{Tag: 1, Suite: suite, LocalKey: kb, RemoteKey: ka}
	}
	return pa, pb
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newStream(t testing.TB, c *Conn, p *Plan, cfg StreamConfig) *Stream {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quiet()
	}
	s, err := NewStream(c, p, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// sendTone writes n frames of a 1 kHz sine at -6 dBFS to s, one every
// 20 ms, in a goroutine that the test's cleanup stops and waits for.
func sendTone(t testing.TB, s *Stream, n int) {
	t.Helper()
	tone := mediatest.Sine(media.PipelineRate, 1000, 0.5, n*frameSamples)
	stop, done := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { close(stop); <-done })
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := range n {
			if err := s.WriteFrame(tone[i*frameSamples : (i+1)*frameSamples]); err != nil {
				if !errors.Is(err, ErrClosed) {
					t.Errorf("WriteFrame: %v", err)
				}
				return
			}
			select {
			case <-tick.C:
			case <-stop:
				return
			}
		}
	}()
}

// collect reads n frames from s, failing after a generous timeout.
func collect(t testing.TB, s *Stream, n int) [][]int16 {
	t.Helper()
	var out [][]int16
	deadline := time.After(10 * time.Second)
	for len(out) < n {
		select {
		case f, ok := <-s.Frames():
			if !ok {
				t.Fatalf("frames closed after %d: %v", len(out), s.Err())
			}
			if len(f) != frameSamples {
				t.Fatalf("frame of %d samples", len(f))
			}
			out = append(out, f)
		case <-deadline:
			t.Fatalf("only %d of %d frames", len(out), n)
		}
	}
	return out
}

// checkTone finds the loudest 30-frame stretch of got and checks it is
// the tone: level near -6 dB and a high SNR against a clean sine.
func checkTone(t testing.TB, frames [][]int16, minSNR float64) {
	t.Helper()
	var all []int16
	for _, f := range frames {
		all = append(all, f...)
	}
	// skip start-up; take a stretch in the middle
	seg := all[len(all)/3 : len(all)/3+30*frameSamples]
	lvl := mediatest.ToneDB(seg, media.PipelineRate, 1000)
	ref := mediatest.Sine(media.PipelineRate, 1000, 0.5, len(seg)-32)
	lag := mediatest.BestLag(ref, seg, 16)
	snr := mediatest.SNR(ref, seg, lag)
	t.Logf("tone %.2f dB, SNR %.1f dB", lvl, snr)
	if math.Abs(lvl+6.02) > 1.5 {
		t.Errorf("tone level %.2f dB, want -6", lvl)
	}
	if snr < minSNR {
		t.Errorf("SNR %.1f dB < %.0f", snr, minSNR)
	}
}

func TestStreamLoopback(t *testing.T) {
	cases := []struct {
		name             string
		codec            string
		pt               uint8
		ptimeAB, ptimeBA time.Duration
		suite            string
		minSNR           float64
	}{
		{"PCMU", CodecPCMU, 0, 20 * time.Millisecond, 20 * time.Millisecond, "", 25},
		{"PCMA", CodecPCMA, 8, 20 * time.Millisecond, 20 * time.Millisecond, "", 25},
		{"opus", CodecOpus, 111, 20 * time.Millisecond, 20 * time.Millisecond, "", 10},
		{"PCMU ptime 40", CodecPCMU, 0, 40 * time.Millisecond, 10 * time.Millisecond, "", 25},
		{"PCMU ptime 30", CodecPCMU, 0, 30 * time.Millisecond, 20 * time.Millisecond, "", 25},
		{"SRTP AES_CM_128_HMAC_SHA1_80", CodecPCMU, 0, 20 * time.Millisecond, 20 * time.Millisecond, "AES_CM_128_HMAC_SHA1_80", 25},
		{"SRTP AEAD_AES_128_GCM", CodecPCMA, 8, 20 * time.Millisecond, 20 * time.Millisecond, "AEAD_AES_128_GCM", 25},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ca, cb := listen(t), listen(t)
			pa, pb := plans(c.codec, c.pt, ca, cb, c.ptimeAB, c.ptimeBA, c.suite)
			a := newStream(t, ca, pa, StreamConfig{RTCPInterval: 200 * time.Millisecond})
			b := newStream(t, cb, pb, StreamConfig{RTCPInterval: 200 * time.Millisecond})
			sendTone(t, a, 100)
			sendTone(t, b, 100)
			got := collect(t, b, 80)
			checkTone(t, got, c.minSNR)
			back := collect(t, a, 80)
			checkTone(t, back, c.minSNR)
			st := b.Stats()
			want := uint64(80 * 20 * time.Millisecond / c.ptimeAB)
			if st.RxPackets < want || st.RxDropped != 0 || st.Source != addrOf(ca) {
				t.Errorf("b stats %+v, want ≥ %d packets from %v", st, want, addrOf(ca))
			}
			if st.RTCPRx == 0 || a.Stats().RTCPTx == 0 {
				t.Errorf("no RTCP: b rx %d, a tx %d", st.RTCPRx, a.Stats().RTCPTx)
			}
			if st.JitterMs > 15 {
				t.Errorf("loopback jitter %.1f ms", st.JitterMs)
			}
		})
	}
}

func TestStreamSDPSRTPRoundTrip(t *testing.T) {
	ca, cb := listen(t), listen(t)
	opts := Options{Codecs: []string{"PCMU"}, RequireSRTP: true, LocalIP: loopback}
	offer, pending, err := Offer(opts, ca.Port(), 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := Negotiate(offer, opts)
	if err != nil {
		t.Fatal(err)
	}
	pa, err := pending.ParseAnswer(pb.Answer(cb.Port(), 2, 1))
	if err != nil {
		t.Fatal(err)
	}
	a := newStream(t, ca, pa, StreamConfig{})
	b := newStream(t, cb, pb, StreamConfig{})
	sendTone(t, a, 60)
	checkTone(t, collect(t, b, 50), 25)
	if d := b.Stats().RxDropped; d != 0 {
		t.Errorf("dropped %d", d)
	}
}

func TestStreamSymmetricLatching(t *testing.T) {
	ca, cb := listen(t), listen(t)
	pa, pb := plans(CodecPCMU, 0, ca, cb, 20*time.Millisecond, 20*time.Millisecond, "")
	// b's SDP says a is elsewhere (a NAT rewrote the source): a bound
	// socket that nobody reads.
	decoy := listen(t)
	pb.Remote = addrOf(decoy)
	a := newStream(t, ca, pa, StreamConfig{})
	b := newStream(t, cb, pb, StreamConfig{})
	sendTone(t, a, 80)
	sendTone(t, b, 80)
	// a hears b only if b replies to a's actual source.
	checkTone(t, collect(t, a, 60), 25)
	if src := b.Stats().Source; src != addrOf(ca) {
		t.Errorf("b latched to %v, want %v", src, addrOf(ca))
	}
}

func TestStreamRelatch(t *testing.T) {
	cb := listen(t)
	_, pb := plans(CodecPCMU, 0, cb, cb, 20*time.Millisecond, 20*time.Millisecond, "")
	b := newStream(t, cb, pb, StreamConfig{})
	src1, src2 := listenRaw(t), listenRaw(t)
	send := func(c *net.UDPConn, ssrc uint32, seq uint16) {
		pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: seq, Timestamp: uint32(seq) * 160, SSRC: ssrc}, Payload: mulawTone(160, 0)}
		raw, _ := pkt.Marshal()
		if _, err := c.WriteToUDPAddrPort(raw, addrOf(cb)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s: %+v", what, b.Stats())
			}
			time.Sleep(time.Millisecond)
		}
	}
	send(src1, 1, 0)
	waitFor("latch", func() bool { return b.Stats().Source == localAddr(src1) })
	// A stranger with a new SSRC: dropped until it has persisted.
	for i := range RelatchPackets - 1 {
		send(src2, 2, uint16(100+i))
	}
	waitFor("drops", func() bool { return b.Stats().RxDropped == RelatchPackets-1 })
	if b.Stats().Source != localAddr(src1) {
		t.Fatal("re-latched too early")
	}
	send(src2, 2, 200)
	waitFor("re-latch", func() bool { return b.Stats().Source == localAddr(src2) })
}

func listenRaw(t testing.TB) *net.UDPConn {
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func localAddr(c *net.UDPConn) netip.AddrPort {
	return netip.AddrPortFrom(loopback, uint16(c.LocalAddr().(*net.UDPAddr).Port))
}

func TestStreamUpdateSendonlyStopsSending(t *testing.T) {
	ca, cb := listen(t), listen(t)
	pa, pb := plans(CodecPCMU, 0, ca, cb, 20*time.Millisecond, 20*time.Millisecond, "")
	a := newStream(t, ca, pa, StreamConfig{})
	b := newStream(t, cb, pb, StreamConfig{})
	frame := mediatest.Sine(media.PipelineRate, 1000, 0.5, frameSamples)
	for range 5 {
		if err := b.WriteFrame(frame); err != nil {
			t.Fatal(err)
		}
	}
	// The remote (a) puts b on hold: a is sendonly.
	held := *pb
	held.Direction = SendOnly
	if err := b.Update(&held); err != nil {
		t.Fatal(err)
	}
	before := b.Stats().TxPackets
	for range 10 {
		if err := b.WriteFrame(frame); err != nil {
			t.Fatalf("WriteFrame on hold: %v", err)
		}
	}
	if after := b.Stats().TxPackets; after != before || before != 5 {
		t.Errorf("tx packets %d before hold, %d after", before, after)
	}
	// Off hold: sending resumes.
	if err := b.Update(pb); err != nil {
		t.Fatal(err)
	}
	if err := b.WriteFrame(frame); err != nil || b.Stats().TxPackets != 6 {
		t.Errorf("after resume: %v, %d packets", err, b.Stats().TxPackets)
	}
	_ = a
}

func TestStreamDTMF(t *testing.T) {
	cb := listen(t)
	_, pb := plans(CodecPCMU, 0, cb, cb, 20*time.Millisecond, 20*time.Millisecond, "")
	b := newStream(t, cb, pb, StreamConfig{})
	src := listenRaw(t)
	seq := uint16(1000)
	event := func(key byte, ts uint32) {
		durs := []uint16{160, 320, 480, 640, 800, 800, 800}
		for i, d := range durs {
			end := byte(0)
			if i >= 4 { // the end packet, sent three times
				end = 0x80
			}
			pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 101, Marker: i == 0, SequenceNumber: seq, Timestamp: ts, SSRC: 42},
				Payload: []byte{key, end | 10, byte(d >> 8), byte(d)}}
			seq++
			raw, _ := pkt.Marshal()
			if _, err := src.WriteToUDPAddrPort(raw, addrOf(cb)); err != nil {
				t.Fatal(err)
			}
		}
	}
	event(5, 8000)
	event(11, 16000) // '#'
	for _, want := range []Digit{{'5', 100 * time.Millisecond}, {'#', 100 * time.Millisecond}} {
		select {
		case d := <-b.DTMF():
			if d != want {
				t.Errorf("digit %+v, want %+v", d, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no digit %c", want.Key)
		}
	}
	if n := b.Stats().DTMF; n != 2 {
		t.Errorf("DTMF count %d", n)
	}
}

func TestStreamRTPTimeout(t *testing.T) {
	ca, cb := listen(t), listen(t)
	_, pb := plans(CodecPCMU, 0, ca, cb, 20*time.Millisecond, 20*time.Millisecond, "")
	b := newStream(t, cb, pb, StreamConfig{RTPTimeout: 200 * time.Millisecond})
	select {
	case <-b.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("no timeout")
	}
	if !errors.Is(b.Err(), ErrRTPTimeout) {
		t.Errorf("Err %v", b.Err())
	}
	if _, ok := <-b.Frames(); ok {
		t.Error("frames not closed")
	}
	if err := b.WriteFrame(make([]int16, frameSamples)); !errors.Is(err, ErrClosed) {
		t.Errorf("WriteFrame after the end: %v", err)
	}
}

func TestStreamCloseLeaksNothing(t *testing.T) {
	before := runtime.NumGoroutine()
	for range 5 {
		ca, cb := listen(t), listen(t)
		pa, pb := plans(CodecOpus, 111, ca, cb, 20*time.Millisecond, 20*time.Millisecond, "AES_CM_128_HMAC_SHA1_80")
		a, err := NewStream(ca, pa, StreamConfig{Logger: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		b, err := NewStream(cb, pb, StreamConfig{Logger: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		_ = a.WriteFrame(make([]int16, frameSamples))
		_ = a.Close()
		_ = a.Close()
		_ = b.Close()
		if !errors.Is(a.Err(), ErrClosed) {
			t.Errorf("Err after Close: %v", a.Err())
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestPortRange(t *testing.T) {
	r, err := NewPortRange(loopback, 41000, 41005) // pairs 41000, 41002, 41004
	if err != nil {
		t.Fatal(err)
	}
	var conns []*Conn
	for {
		c, err := r.Allocate()
		if errors.Is(err, ErrNoPorts) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if c.Port()%2 != 0 || c.RTCP.LocalAddr().(*net.UDPAddr).Port != c.Port()+1 {
			t.Errorf("ports %d/%v", c.Port(), c.RTCP.LocalAddr())
		}
		conns = append(conns, c)
	}
	if len(conns) == 0 || len(conns) > 3 {
		t.Fatalf("%d pairs from a range of 3", len(conns))
	}
	// Release one: the next allocation gets it (the only free one).
	p := conns[0].Port()
	_ = conns[0].Close()
	_ = conns[0].Close()
	c, err := r.Allocate()
	if err != nil || c.Port() != p {
		t.Fatalf("after release: %v %v", c, err)
	}
	_ = c.Close()
	for _, c := range conns[1:] {
		_ = c.Close()
	}
}

// FuzzStreamPacket feeds arbitrary datagrams to the inbound path (plain
// and SRTP streams) and plays out after each.
func FuzzStreamPacket(f *testing.F) {
	good := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: 1, Timestamp: 160, SSRC: 9}, Payload: mulawTone(160, 0)}
	raw, _ := good.Marshal()
	f.Add(raw)
	dtmf := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 101, SequenceNumber: 2, Timestamp: 320, SSRC: 9}, Payload: []byte{5, 0x8a, 0, 160}}
	raw, _ = dtmf.Marshal()
	f.Add(raw)
	f.Add([]byte{0x80, 200, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}) // RTCP SR
	f.Add([]byte{0xa0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9, 1, 2, 0xff})                                       // padding
	f.Add([]byte{0x90, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9, 0xbe, 0xde, 0xff, 0xff})                           // extension
	f.Add([]byte{})
	var streams []*Stream
	for _, suite := range []string{"", "AES_CM_128_HMAC_SHA1_80"} {
		for _, codec := range []string{CodecPCMU, CodecOpus} {
			s := rxHarness(f, codec)
			s.plan.PayloadType = 0
			if suite != "" {
				k, _ := newLocalKey(suite)
				s.plan.SRTP = &SDES{Suite: suite, LocalKey: k, RemoteKey: k}
				if err := s.setKeys(s.plan.SRTP); err != nil {
					f.Fatal(err)
				}
			}
			streams = append(streams, s)
		}
	}
	from := netip.MustParseAddrPort("127.0.0.1:5000")
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, s := range streams {
			s.handlePacket(b, from)
			if s.rxRTP != nil { // also as a correctly protected packet
				var h rtp.Header
				if enc, err := s.txRTP.EncryptRTP(nil, b, &h); err == nil {
					s.handlePacket(enc, from)
				}
			}
			s.mu.Lock()
			s.nextFrameLocked(s.clock.Now().Add(time.Second))
			s.mu.Unlock()
			select {
			case <-s.dtmf:
			default:
			}
		}
	})
}
