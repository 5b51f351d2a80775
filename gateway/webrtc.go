package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	pionmedia "github.com/pion/webrtc/v4/pkg/media"

	"github.com/voicegw/voicegw/media"
)

// ICEConfig configures the WebRTC ingress. The zero value listens on
// 127.0.0.1 on a random UDP port.
type ICEConfig struct {
	// UDPAddr is the one UDP address every call's ICE, DTLS and SRTP use
	// (the ICE UDP mux). Default "127.0.0.1:0".
	UDPAddr string
	// NAT1To1IPs are public addresses to advertise as host candidates in
	// place of the local ones, for a gateway behind 1:1 NAT. Default none.
	NAT1To1IPs []string
	// LoopbackOnly restricts candidates to loopback addresses (tests, and
	// dev mode where caller and gateway share a machine).
	LoopbackOnly bool
}

// webrtcIngress owns the shared UDP socket and the pion API every call's
// PeerConnection is built from.
type webrtcIngress struct {
	api  *webrtc.API
	conn net.PacketConn
	mux  ice.UDPMux
	log  *slog.Logger
	// onPanic counts a panic recovered on a leg's goroutine.
	onPanic func()
}

func newWebRTCIngress(cfg ICEConfig, log *slog.Logger) (*webrtcIngress, error) {
	addr := cfg.UDPAddr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	conn, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("webrtc: listen %s: %w", addr, err)
	}
	mux := webrtc.NewICEUDPMux(nil, conn)

	se := webrtc.SettingEngine{}
	se.SetICEUDPMux(mux)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	if len(cfg.NAT1To1IPs) > 0 {
		// Advertise the public addresses in place of the local host ones.
		if err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External:        cfg.NAT1To1IPs,
			AsCandidateType: webrtc.ICECandidateTypeHost,
			Mode:            webrtc.ICEAddressRewriteReplace,
		}); err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("webrtc: nat 1:1 addresses %v: %w", cfg.NAT1To1IPs, err)
		}
	}
	if cfg.LoopbackOnly {
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	}
	// Fail a call whose media path dies within seconds, not half a minute.
	se.SetICETimeouts(5*time.Second, 10*time.Second, 2*time.Second)

	m := &webrtc.MediaEngine{}
	for _, c := range []webrtc.RTPCodecParameters{
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}, PayloadType: 111},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000, Channels: 1}, PayloadType: 0},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMA, ClockRate: 8000, Channels: 1}, PayloadType: 8},
	} {
		if err := m.RegisterCodec(c, webrtc.RTPCodecTypeAudio); err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("webrtc: register codec %s: %w", c.MimeType, err)
		}
	}
	reg := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("webrtc: interceptors: %w", err)
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(reg))
	return &webrtcIngress{api: api, conn: conn, mux: mux, log: log}, nil
}

// Addr is the UDP address calls' media uses.
func (w *webrtcIngress) Addr() net.Addr { return w.conn.LocalAddr() }

func (w *webrtcIngress) Close() error {
	err := w.mux.Close()
	if cerr := w.conn.Close(); err == nil && !errors.Is(cerr, net.ErrClosed) {
		err = cerr
	}
	return err
}

// chooseCodec picks the audio codec for our send track from the offer:
// Opus when offered, else PCMU, else PCMA.
func chooseCodec(offer string) (webrtc.RTPCodecCapability, error) {
	desc := webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}
	parsed, err := desc.Unmarshal()
	if err != nil {
		return webrtc.RTPCodecCapability{}, fmt.Errorf("%w: %v", errBadOffer, err)
	}
	var hasAudio, opus, pcmu, pcma bool
	for _, md := range parsed.MediaDescriptions {
		if md.MediaName.Media != "audio" {
			continue
		}
		hasAudio = true
		for _, a := range md.Attributes {
			if a.Key != "rtpmap" {
				continue
			}
			v := strings.ToLower(a.Value)
			switch {
			case strings.Contains(v, " opus/48000"):
				opus = true
			case strings.Contains(v, " pcmu/8000"):
				pcmu = true
			case strings.Contains(v, " pcma/8000"):
				pcma = true
			}
		}
		// Static payload types need no rtpmap.
		for _, f := range md.MediaName.Formats {
			switch f {
			case "0":
				pcmu = true
			case "8":
				pcma = true
			}
		}
	}
	switch {
	case !hasAudio:
		return webrtc.RTPCodecCapability{}, errNoAudioMedia
	case opus:
		return webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, nil
	case pcmu:
		return webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000, Channels: 1}, nil
	case pcma:
		return webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMA, ClockRate: 8000, Channels: 1}, nil
	}
	return webrtc.RTPCodecCapability{}, errNoAudioCodec
}

// webrtcLeg is one browser call's media: it decodes the caller's audio into
// 20 ms PCM frames at media.PipelineRate and encodes the agent's frames into
// the negotiated codec. It implements Leg.
type webrtcLeg struct {
	pc    *webrtc.PeerConnection
	track *webrtc.TrackLocalStaticSample
	log   *slog.Logger

	frames  chan []int16
	done    chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
	onPanic func()

	// send path: used only by the player goroutine.
	enc      audioEncoder
	rxPkts   atomic.Uint64
	txPkts   atomic.Uint64
	rxDrops  atomic.Uint64
	gotTrack atomic.Bool
}

// answer builds a PeerConnection for a complete offer and returns the leg and
// the complete answer (all candidates gathered: no trickle).
func (w *webrtcIngress) answer(offer string, log *slog.Logger) (*webrtcLeg, string, error) {
	codec, err := chooseCodec(offer)
	if err != nil {
		return nil, "", err
	}
	enc, err := newAudioEncoder(codec.MimeType)
	if err != nil {
		return nil, "", err
	}
	pc, err := w.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, "", fmt.Errorf("webrtc: new peer connection: %w", err)
	}
	leg := &webrtcLeg{
		pc:      pc,
		log:     log,
		onPanic: w.onPanic,
		frames:  make(chan []int16, 50),
		done:    make(chan struct{}),
		enc:     enc,
	}
	fail := func(err error) (*webrtcLeg, string, error) {
		_ = leg.Close()
		return nil, "", err
	}
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		log.Debug("peer connection state", "state", s.String())
		switch s {
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			leg.markDone()
		}
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		// One caller audio track per call; anything else is ignored.
		if tr.Kind() != webrtc.RTPCodecTypeAudio || !leg.gotTrack.CompareAndSwap(false, true) {
			return
		}
		leg.wg.Add(1)
		go func() {
			defer leg.wg.Done()
			defer leg.recoverLegPanic("webrtc read")
			leg.readLoop(tr)
		}()
	})
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return fail(fmt.Errorf("%w: %v", errBadOffer, err))
	}
	track, err := webrtc.NewTrackLocalStaticSample(codec, "agent-audio", "voicegw")
	if err != nil {
		return fail(fmt.Errorf("webrtc: local track: %w", err))
	}
	sender, err := pc.AddTrack(track)
	if err != nil {
		return fail(fmt.Errorf("webrtc: add track: %w", err))
	}
	leg.track = track
	// Read RTCP so the interceptors (NACK, reports) see it.
	leg.wg.Add(1)
	go func() {
		defer leg.wg.Done()
		buf := make([]byte, 1500)
		for {
			if _, _, err := sender.Read(buf); err != nil {
				return
			}
		}
	}()
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		return fail(fmt.Errorf("%w: %v", errBadOffer, err))
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(ans); err != nil {
		return fail(fmt.Errorf("webrtc: set local description: %w", err))
	}
	select {
	case <-gathered:
	case <-time.After(5 * time.Second):
		return fail(errors.New("webrtc: candidate gathering timed out"))
	}
	return leg, pc.LocalDescription().SDP, nil
}

func (l *webrtcLeg) markDone() { l.once.Do(func() { close(l.done) }) }

// readLoop decodes the caller's RTP into pipeline frames until the track ends.
func (l *webrtcLeg) readLoop(tr *webrtc.TrackRemote) {
	defer close(l.frames)
	dec, err := newAudioDecoder(tr.Codec().MimeType)
	if err != nil {
		l.log.Warn("caller codec not supported", "codec", tr.Codec().MimeType, "err", err)
		return
	}
	var lastSeq uint16
	var haveSeq bool
	pkt := &rtp.Packet{}
	buf := make([]byte, 1500)
	for {
		n, _, err := tr.Read(buf)
		if err != nil {
			return
		}
		if err := pkt.Unmarshal(buf[:n]); err != nil {
			continue
		}
		l.rxPkts.Add(1)
		if haveSeq {
			d := pkt.SequenceNumber - lastSeq
			if d == 0 || d > 0x8000 {
				continue // duplicate or late: drop
			}
			// Conceal up to 5 lost packets.
			for i := uint16(1); i < d && i <= 5; i++ {
				l.emit(dec.conceal())
			}
		}
		lastSeq, haveSeq = pkt.SequenceNumber, true
		pcm, err := dec.decode(pkt.Payload)
		if err != nil {
			l.log.Debug("caller audio decode", "err", err)
			continue
		}
		l.emit(pcm)
	}
}

// emit slices decoded pipeline-rate audio into 20 ms frames for the session.
func (l *webrtcLeg) emit(frames [][]int16) {
	for _, f := range frames {
		select {
		case l.frames <- f:
		default:
			l.rxDrops.Add(1)
		}
	}
}

// Frames delivers the caller's audio, 20 ms at media.PipelineRate per frame.
// It is closed when the caller's track ends.
func (l *webrtcLeg) Frames() <-chan []int16 { return l.frames }

// Done is closed when the media path fails or closes.
func (l *webrtcLeg) Done() <-chan struct{} { return l.done }

// WriteFrame encodes one 20 ms frame at media.PipelineRate and sends it.
// It is called only from the session's player goroutine.
func (l *webrtcLeg) WriteFrame(pcm []int16) error {
	payload, err := l.enc.encode(pcm)
	if err != nil {
		return err
	}
	if err := l.track.WriteSample(pionmedia.Sample{Data: payload, Duration: media.FrameDuration}); err != nil {
		return fmt.Errorf("webrtc: write sample: %w", err)
	}
	l.txPkts.Add(1)
	return nil
}

// Stats reports packet counters.
func (l *webrtcLeg) Stats() LegStats {
	return LegStats{RxPackets: l.rxPkts.Load(), TxPackets: l.txPkts.Load(), RxDropped: l.rxDrops.Load()}
}

// Ingress names the leg's ingress for metrics and logs.
func (l *webrtcLeg) Ingress() string { return "webrtc" }

// Close ends the call's media and waits for its goroutines.
func (l *webrtcLeg) Close() error {
	err := l.pc.Close()
	l.markDone()
	l.wg.Wait()
	return err
}

var _ Leg = (*webrtcLeg)(nil)
