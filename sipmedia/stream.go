package sipmedia

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/voicegw/voicegw/media"
)

// Defaults of StreamConfig.
const (
	DefaultJitterMin    = 20 * time.Millisecond
	DefaultJitterMax    = 200 * time.Millisecond
	DefaultRTPTimeout   = 30 * time.Second
	DefaultRTCPInterval = 5 * time.Second
	// RelatchPackets is how many consecutive packets of a new SSRC from a
	// new source address move the latch there.
	RelatchPackets = 10
)

// StreamConfig configures a Stream. Its zero value uses the defaults.
type StreamConfig struct {
	// Logger receives the stream's logs. Default slog.Default().
	Logger *slog.Logger
	// Clock drives the playout ticks, the RTP timeout and RTCP. Default
	// the system clock.
	Clock media.Clock
	// JitterMin and JitterMax bound the adaptive playout delay. Defaults
	// 20 ms and 200 ms.
	JitterMin, JitterMax time.Duration
	// RTPTimeout ends the stream (Err returns ErrRTPTimeout) when no valid
	// RTP arrived for that long while the remote should be sending.
	// Default 30 s; negative disables it.
	RTPTimeout time.Duration
	// RTCPInterval is the period of our sender/receiver reports. Default
	// 5 s.
	RTCPInterval time.Duration
}

// Stats are a stream's counters.
type Stats struct {
	RxPackets uint64 // valid RTP packets accepted (audio and telephone-event)
	TxPackets uint64 // RTP packets sent
	// RxDropped counts packets refused: malformed, wrong payload type,
	// failed SRTP authentication, from an unlatched source, late or
	// duplicate.
	RxDropped uint64
	Lost      uint64  // packets never received (RFC 3550 sequence gaps)
	Concealed uint64  // 20 ms frames that carry concealment rather than decoded audio
	JitterMs  float64 // RFC 3550 interarrival jitter, in ms
	DTMF      uint64  // telephone-events reported on DTMF()
	// FramesDropped and DTMFDropped count frames and digits nobody read
	// in time.
	FramesDropped, DTMFDropped uint64
	RTCPRx, RTCPTx             uint64
	// Delay is the jitter buffer's current target playout delay.
	Delay time.Duration
	// Source is the address RTP is latched to (invalid before the first
	// packet).
	Source netip.AddrPort
}

// Stream is the media of one SIP call leg: it receives RTP (or SRTP) on
// conn, plays it out through an adaptive jitter buffer as 20 ms frames at
// media.PipelineRate on Frames, and sends WriteFrame's frames to the
// remote. See the package documentation for the design.
type Stream struct {
	conn  *Conn
	log   *slog.Logger
	clock media.Clock
	cfg   StreamConfig

	frames chan []int16
	dtmf   chan Digit
	done   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	endOnce sync.Once
	err     error // set once, before done is closed

	// mu guards the receive side and the peer state.
	mu          sync.Mutex
	plan        *Plan
	jb          *jitterBuffer
	dec         decoder
	fifo        []int16
	started     bool
	concealRun  int
	lastRx      time.Time
	latched     bool
	latchAddr   netip.AddrPort
	latchSSRC   uint32
	candAddr    netip.AddrPort
	candSSRC    uint32
	candCount   int
	loggedLatch bool
	rxRTP       *srtp.Context
	rxRTCP      *srtp.Context
	rxKeyUses   uint64
	dtmfSt      dtmfState
	lsr         uint32
	lsrAt       time.Time
	rtcpFrom    netip.AddrPort
	rxBuf       []byte

	// dest and rtcpDest are where we send; sending is false on hold.
	dest     atomic.Pointer[netip.AddrPort]
	rtcpDest atomic.Pointer[netip.AddrPort]
	sending  atomic.Bool

	logMu      sync.Mutex
	lastLog    time.Time
	suppressed int

	// txMu guards the send side. Lock order: mu before txMu.
	txMu      sync.Mutex
	enc       *encoder
	pt        uint8
	ssrc      uint32
	seq       uint16
	ts        uint32
	first     bool
	txRTP     *srtp.Context
	txRTCP    *srtp.Context
	txOctets  uint64
	lastTxTS  uint32
	lastTxAt  time.Time
	txPkt     []byte
	txEnc     []byte
	clockRate int

	rxPackets, txPackets, rxDropped, concealed atomic.Uint64
	dtmfCount, framesDropped, dtmfDropped      atomic.Uint64
	rtcpRx, rtcpTx                             atomic.Uint64
}

// NewStream starts the media of plan on conn. The stream owns conn from
// then on: Close closes it.
func NewStream(conn *Conn, plan *Plan, cfg StreamConfig) (*Stream, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = sysClock{}
	}
	if cfg.JitterMin <= 0 {
		cfg.JitterMin = DefaultJitterMin
	}
	if cfg.JitterMax <= 0 {
		cfg.JitterMax = DefaultJitterMax
	}
	cfg.JitterMax = max(cfg.JitterMax, cfg.JitterMin)
	if cfg.RTPTimeout == 0 {
		cfg.RTPTimeout = DefaultRTPTimeout
	}
	if cfg.RTCPInterval <= 0 {
		cfg.RTCPInterval = DefaultRTCPInterval
	}
	dec, err := newDecoder(plan.Codec)
	if err != nil {
		return nil, err
	}
	enc, err := newEncoder(plan)
	if err != nil {
		dec.close()
		return nil, err
	}
	s := &Stream{
		conn: conn, log: cfg.Logger.With("ingress", "sip", "rtp_port", conn.Port()), clock: cfg.Clock, cfg: cfg,
		frames: make(chan []int16, 50), dtmf: make(chan Digit, 16), done: make(chan struct{}),
		plan: plan, dec: dec, enc: enc, pt: plan.PayloadType, clockRate: plan.ClockRate,
		jb:   newJitterBuffer(plan.ClockRate, cfg.JitterMin, cfg.JitterMax),
		ssrc: rand.Uint32(), seq: uint16(rand.Uint32()), ts: rand.Uint32(), first: true,
		rxBuf: make([]byte, 1500), txPkt: make([]byte, 0, 1500), txEnc: make([]byte, 0, 1600),
	}
	if plan.SRTP != nil {
		if err := s.setKeys(plan.SRTP); err != nil {
			dec.close()
			enc.close()
			return nil, err
		}
	}
	s.setPeer(plan)
	s.lastRx = s.clock.Now()
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(3)
	go s.readRTP()
	go s.readRTCP()
	go s.playout()
	return s, nil
}

func (s *Stream) setKeys(sd *SDES) error {
	rx, tx, err := sd.contexts()
	if err != nil {
		return err
	}
	rx2, tx2, err := sd.contexts()
	if err != nil {
		return err
	}
	s.rxRTP, s.rxRTCP, s.txRTP, s.txRTCP = rx, rx2, tx, tx2
	s.rxKeyUses = 0
	return nil
}

// setPeer points sending at the plan's addresses and forgets the latch.
func (s *Stream) setPeer(p *Plan) {
	d, r := p.Remote, p.RemoteRTCP
	s.dest.Store(&d)
	s.rtcpDest.Store(&r)
	s.latched, s.candCount, s.loggedLatch = false, 0, false
	s.sending.Store(p.RemoteReceives())
}

// Frames delivers the caller's audio, 20 ms at media.PipelineRate per
// frame, one per playout tick from the first packet played on (silence
// when nothing arrives). It is closed when the stream ends.
func (s *Stream) Frames() <-chan []int16 { return s.frames }

// DTMF delivers one Digit per RFC 4733 event. It is closed when the
// stream ends.
func (s *Stream) DTMF() <-chan Digit { return s.dtmf }

// Done is closed when the media failed (see Err) or the stream was closed.
func (s *Stream) Done() <-chan struct{} { return s.done }

// Err returns why the stream ended: ErrRTPTimeout, ErrClosed, or nil
// while it runs.
func (s *Stream) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// Ingress returns "sip".
func (s *Stream) Ingress() string { return "sip" }

// SetRTPTimeout changes the RTP timeout (see StreamConfig.RTPTimeout).
func (s *Stream) SetRTPTimeout(d time.Duration) {
	s.mu.Lock()
	s.cfg.RTPTimeout = d
	s.lastRx = s.clock.Now()
	s.mu.Unlock()
}

// Stats returns the stream's counters.
func (s *Stream) Stats() Stats {
	st := Stats{
		RxPackets: s.rxPackets.Load(), TxPackets: s.txPackets.Load(), RxDropped: s.rxDropped.Load(),
		Concealed: s.concealed.Load(), DTMF: s.dtmfCount.Load(), FramesDropped: s.framesDropped.Load(),
		DTMFDropped: s.dtmfDropped.Load(), RTCPRx: s.rtcpRx.Load(), RTCPTx: s.rtcpTx.Load(),
	}
	s.mu.Lock()
	st.Lost = s.jb.lost()
	st.JitterMs = float64(s.jb.jitterDuration()) / float64(time.Millisecond)
	st.Delay = s.jb.target()
	st.RxDropped += s.jb.late + s.jb.dups + s.jb.invalid + s.jb.overflow
	if s.latched {
		st.Source = s.latchAddr
	}
	s.mu.Unlock()
	return st
}

// end records err (the first one wins), stops the goroutines and closes
// the sockets.
func (s *Stream) end(err error) {
	s.endOnce.Do(func() {
		s.err = err
		close(s.done)
		s.cancel()
		_ = s.conn.Close()
		if !errors.Is(err, ErrClosed) {
			s.log.Warn("sip media ended", "err", err)
		}
	})
}

// Close stops the stream, waits for its goroutines and closes conn. It
// is idempotent and returns nil.
func (s *Stream) Close() error {
	s.end(ErrClosed)
	s.wg.Wait()
	s.mu.Lock()
	s.dec.close()
	s.mu.Unlock()
	s.txMu.Lock()
	s.enc.close()
	s.txMu.Unlock()
	return nil
}

// Update applies a re-INVITE's plan: new remote address (the latch is
// reset), direction (sendonly or inactive from the remote stop our
// sending; recvonly or inactive suspend the RTP timeout), codec and keys.
func (s *Stream) Update(p *Plan) error {
	select {
	case <-s.done:
		return ErrClosed
	default:
	}
	s.mu.Lock()
	old := s.plan
	codecChanged := p.Codec != old.Codec || p.ClockRate != old.ClockRate
	var dec decoder
	var enc *encoder
	var err error
	if codecChanged || p.PTime != old.PTime {
		if enc, err = newEncoder(p); err != nil {
			s.mu.Unlock()
			return err
		}
	}
	if codecChanged {
		if dec, err = newDecoder(p.Codec); err != nil {
			s.mu.Unlock()
			enc.close()
			return err
		}
	}
	keysChanged := (p.SRTP == nil) != (old.SRTP == nil) ||
		(p.SRTP != nil && (!bytes.Equal(p.SRTP.RemoteKey, old.SRTP.RemoteKey) || !bytes.Equal(p.SRTP.LocalKey, old.SRTP.LocalKey)))
	s.txMu.Lock()
	if keysChanged {
		s.rxRTP, s.rxRTCP, s.txRTP, s.txRTCP = nil, nil, nil, nil
		if p.SRTP != nil {
			if err := s.setKeys(p.SRTP); err != nil {
				s.txMu.Unlock()
				s.mu.Unlock()
				return err
			}
		}
	}
	if dec != nil {
		s.dec.close()
		s.dec = dec
		s.jb = newJitterBuffer(p.ClockRate, s.cfg.JitterMin, s.cfg.JitterMax)
		s.fifo = s.fifo[:0]
	}
	if enc != nil {
		s.enc.close()
		s.enc = enc
		s.clockRate = p.ClockRate
	}
	s.pt = p.PayloadType
	s.txMu.Unlock()
	if !old.RemoteSends() && p.RemoteSends() {
		s.lastRx = s.clock.Now() // the timeout restarts when they resume
	}
	if p.Remote != old.Remote || p.RemoteRTCP != old.RemoteRTCP {
		s.setPeer(p)
	} else {
		s.sending.Store(p.RemoteReceives())
	}
	s.plan = p
	s.mu.Unlock()
	s.log.Info("sip media updated", "codec", p.Codec, "remote", p.Remote, "direction", p.Direction)
	return nil
}

// WriteFrame sends one 20 ms frame at media.PipelineRate. While the
// remote does not receive (it is sendonly or inactive, or on an RFC 2543
// hold address) it sends nothing and returns nil. Network errors are
// counted and logged, not returned: UDP has no connection to lose.
func (s *Stream) WriteFrame(pcm []int16) error {
	if len(pcm) != frameSamples {
		return fmt.Errorf("%w: %d samples, want %d", media.ErrFrameSize, len(pcm), frameSamples)
	}
	select {
	case <-s.done:
		return ErrClosed
	default:
	}
	s.txMu.Lock()
	defer s.txMu.Unlock()
	if !s.sending.Load() {
		s.ts += s.enc.frameUnits()
		s.first = true
		return nil
	}
	return s.enc.encode(pcm, s.sendRTPLocked)
}

func (s *Stream) sendRTPLocked(payload []byte, samples uint32) error {
	h := rtp.Header{Version: 2, Marker: s.first, PayloadType: s.pt, SequenceNumber: s.seq, Timestamp: s.ts, SSRC: s.ssrc}
	s.first = false
	n := h.MarshalSize()
	buf := s.txPkt[:n+len(payload)]
	if _, err := h.MarshalTo(buf); err != nil {
		return err
	}
	copy(buf[n:], payload)
	if s.txRTP != nil {
		enc, err := s.txRTP.EncryptRTP(s.txEnc[:0], buf, &h)
		if err != nil {
			return fmt.Errorf("sipmedia: SRTP protect: %w", err)
		}
		buf = enc
	}
	dst := *s.dest.Load()
	if _, err := s.conn.RTP.WriteToUDPAddrPort(buf, dst); err != nil {
		if errors.Is(err, net.ErrClosed) {
			return ErrClosed
		}
		s.debug("rtp send failed", "err", err, "to", dst)
	} else {
		s.txPackets.Add(1)
		s.txOctets += uint64(len(payload))
	}
	s.lastTxTS, s.lastTxAt = s.ts, s.clock.Now()
	s.seq++
	s.ts += samples
	return nil
}

// debug logs at debug level, at most once a second, with the count of
// messages suppressed since the last one.
func (s *Stream) debug(msg string, args ...any) {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	now := s.clock.Now()
	if now.Sub(s.lastLog) < time.Second {
		s.suppressed++
		return
	}
	s.lastLog = now
	if s.suppressed > 0 {
		args = append(args, "suppressed", s.suppressed)
		s.suppressed = 0
	}
	s.log.Debug(msg, args...)
}

func (s *Stream) readRTP() {
	defer s.wg.Done()
	defer close(s.dtmf)
	buf := make([]byte, 2048)
	for {
		n, from, err := s.conn.RTP.ReadFromUDPAddrPort(buf)
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			s.debug("rtp read failed", "err", err)
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		s.handlePacket(buf[:n], from)
	}
}

func (s *Stream) readRTCP() {
	defer s.wg.Done()
	buf := make([]byte, 2048)
	for {
		n, from, err := s.conn.RTCP.ReadFromUDPAddrPort(buf)
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			s.debug("rtcp read failed", "err", err)
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		s.mu.Lock()
		s.handleRTCPLocked(buf[:n], from)
		s.mu.Unlock()
	}
}

// isRTCP tells RTCP from RTP on a multiplexed port (RFC 5761 §4): RTCP
// packet types 192-223 fall where RTP's marker bit and payload type 64-95
// would be.
func isRTCP(b []byte) bool { return len(b) >= 2 && b[1] >= 192 && b[1] <= 223 }

// handlePacket is the inbound path of one datagram on the RTP port. It
// never panics on any bytes: every refusal is counted.
func (s *Stream) handlePacket(b []byte, from netip.AddrPort) {
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if isRTCP(b) {
		s.handleRTCPLocked(b, from)
		return
	}
	var pkt rtp.Packet
	var err error
	if s.rxRTP != nil {
		if lt := s.plan.SRTP.RemoteLifetime; lt != 0 && s.rxKeyUses >= lt {
			s.dropLocked("srtp key lifetime exhausted", from, nil)
			return
		}
		var plain []byte
		plain, err = s.rxRTP.DecryptRTP(s.rxBuf[:0], b, nil)
		if err == nil {
			err = pkt.Unmarshal(plain)
		}
	} else {
		err = pkt.Unmarshal(b)
	}
	if err != nil {
		s.dropLocked("bad rtp packet", from, err)
		return
	}
	p := s.plan
	isDTMF := p.DTMFPayloadType != 0 && pkt.PayloadType == p.DTMFPayloadType
	if pkt.Version != 2 || (pkt.PayloadType != p.PayloadType && !isDTMF) {
		s.dropLocked("unexpected rtp version or payload type", from, fmt.Errorf("v%d pt %d", pkt.Version, pkt.PayloadType))
		return
	}
	if s.rxRTP != nil {
		s.rxKeyUses++
	}
	if !s.latchLocked(from, pkt.SSRC) {
		s.rxDropped.Add(1)
		return
	}
	s.rxPackets.Add(1)
	s.lastRx = now
	if isDTMF {
		s.jb.push(pkt.SSRC, pkt.SequenceNumber, pkt.Timestamp, nil, true, now)
		d, ok, err := s.dtmfSt.event(pkt.Payload, pkt.Timestamp, p.DTMFClockRate)
		if err != nil {
			s.dropLocked("bad telephone-event", from, err)
			return
		}
		if ok {
			s.dtmfCount.Add(1)
			select {
			case s.dtmf <- d:
			default:
				s.dtmfDropped.Add(1)
			}
		}
		return
	}
	if len(pkt.Payload) == 0 {
		s.dropLocked("empty rtp payload", from, nil)
		return
	}
	reset, _ := s.jb.push(pkt.SSRC, pkt.SequenceNumber, pkt.Timestamp, pkt.Payload, false, now)
	if reset && s.started {
		s.dec.reset()
	}
}

func (s *Stream) dropLocked(why string, from netip.AddrPort, err error) {
	s.rxDropped.Add(1)
	s.debug(why, "from", from, "err", err)
}

// latchLocked implements symmetric RTP: it reports whether a valid packet
// from from with ssrc is accepted, and moves our destination to its
// source when it is the first one, or the RelatchPackets-th consecutive
// one of a new SSRC from a new address.
func (s *Stream) latchLocked(from netip.AddrPort, ssrc uint32) bool {
	if !s.latched || from == s.latchAddr {
		if !s.latched {
			s.latchTo(from, ssrc)
		}
		s.latchSSRC = ssrc
		s.candCount = 0
		return true
	}
	if ssrc == s.latchSSRC {
		return false
	}
	if from == s.candAddr && ssrc == s.candSSRC {
		s.candCount++
	} else {
		s.candAddr, s.candSSRC, s.candCount = from, ssrc, 1
	}
	if s.candCount < RelatchPackets {
		return false
	}
	s.log.Info("rtp source moved", "from", s.latchAddr, "to", from)
	s.latchTo(from, ssrc)
	return true
}

func (s *Stream) latchTo(from netip.AddrPort, ssrc uint32) {
	s.latched, s.latchAddr, s.latchSSRC, s.candCount = true, from, ssrc, 0
	s.dest.Store(&from)
	if s.plan.RTCPMux {
		s.rtcpDest.Store(&from)
	} else if !s.rtcpFrom.IsValid() {
		r := netip.AddrPortFrom(from.Addr(), from.Port()+1)
		if from.Addr() == s.plan.RemoteRTCP.Addr() && s.plan.Remote == from {
			r = s.plan.RemoteRTCP
		}
		s.rtcpDest.Store(&r)
	}
	if from != s.plan.Remote && !s.loggedLatch {
		s.loggedLatch = true
		s.log.Info("rtp latched to a source other than the SDP address", "sdp", s.plan.Remote, "source", from)
	}
}

func (s *Stream) handleRTCPLocked(b []byte, from netip.AddrPort) {
	if s.rxRTCP != nil {
		plain, err := s.rxRTCP.DecryptRTCP(nil, b, nil)
		if err != nil {
			s.dropLocked("bad srtcp packet", from, err)
			return
		}
		b = plain
	}
	pkts, err := rtcp.Unmarshal(b)
	if err != nil {
		s.dropLocked("bad rtcp packet", from, err)
		return
	}
	s.rtcpRx.Add(1)
	if !s.plan.RTCPMux && from != s.rtcpFrom && (!s.latched || from.Addr() == s.latchAddr.Addr()) {
		s.rtcpFrom = from // symmetric RTCP
		f := from
		s.rtcpDest.Store(&f)
	}
	for _, p := range pkts {
		switch p := p.(type) {
		case *rtcp.SenderReport:
			s.lsr = uint32(p.NTPTime >> 16)
			s.lsrAt = s.clock.Now()
		case *rtcp.Goodbye:
			s.log.Info("remote sent RTCP BYE", "ssrcs", p.Sources, "reason", p.Reason)
		}
	}
}

// playout is the receive clock: one frame per 20 ms tick, the RTP timeout
// and the RTCP reports.
func (s *Stream) playout() {
	defer s.wg.Done()
	defer close(s.frames)
	pacer := media.NewPacer(media.FrameDuration, media.WithClock(s.clock))
	nextRTCP := s.clock.Now().Add(s.cfg.RTCPInterval / 2)
	for {
		if err := pacer.Wait(s.ctx); err != nil {
			return
		}
		now := s.clock.Now()
		s.mu.Lock()
		frame := s.nextFrameLocked(now)
		timeout := s.plan.RemoteSends() && s.cfg.RTPTimeout > 0 && now.Sub(s.lastRx) > s.cfg.RTPTimeout
		s.mu.Unlock()
		if timeout {
			s.end(fmt.Errorf("%w: nothing for %v", ErrRTPTimeout, s.cfg.RTPTimeout))
			return
		}
		if frame != nil {
			select {
			case s.frames <- frame:
			default:
				s.framesDropped.Add(1)
			}
		}
		if !now.Before(nextRTCP) {
			nextRTCP = now.Add(s.cfg.RTCPInterval)
			s.sendRTCP(now)
		}
	}
}

// nextFrameLocked assembles the next 20 ms frame from the jitter buffer,
// concealing losses and underruns. It returns nil until the first packet
// has been played.
func (s *Stream) nextFrameLocked(now time.Time) []int16 {
	if s.jb.tick() {
		// shrink: decode the next packet and drop its audio
		if pkt, st := s.jb.pop(now); st == jbPacket && !pkt.skip {
			var scratch [1920]int16
			_, _ = s.dec.decode(scratch[:0], pkt.payload)
		}
	}
	concealed := false
	for len(s.fifo) < frameSamples {
		pkt, st := s.jb.pop(now)
		if st == jbEmpty {
			break
		}
		if st == jbLost {
			if next := s.jb.pkts; len(next) > 0 && next[0].ext == s.jb.nextExt && !next[0].skip {
				if out, ok := s.dec.fec(s.fifo, next[0].payload); ok {
					s.fifo = out
					concealed = true
					continue
				}
			}
			n := int(s.jb.pktDur * media.PipelineRate / time.Second)
			s.fifo = s.dec.conceal(s.fifo, n, s.concealRun)
			s.concealRun += n
			concealed = true
			continue
		}
		if pkt.skip {
			continue
		}
		out, err := s.dec.decode(s.fifo, pkt.payload)
		if err != nil {
			s.dropLocked("undecodable payload", netip.AddrPort{}, err)
			continue
		}
		s.fifo = out
		s.started = true
		s.concealRun = 0
	}
	if !s.started {
		s.fifo = s.fifo[:0]
		return nil
	}
	if need := frameSamples - len(s.fifo); need > 0 {
		if s.concealRun < fadeSamples {
			concealed = true
		}
		s.fifo = s.dec.conceal(s.fifo, need, s.concealRun)
		s.concealRun += need
		if len(s.fifo) < frameSamples { // a codec that gave less than asked
			s.fifo = append(s.fifo, make([]int16, frameSamples-len(s.fifo))...)
		}
	}
	if concealed {
		s.concealed.Add(1)
	}
	frame := make([]int16, frameSamples)
	copy(frame, s.fifo)
	s.fifo = append(s.fifo[:0], s.fifo[frameSamples:]...)
	return frame
}

// sendRTCP sends a compound report: SR (or RR before we have sent
// anything) with a reception report for the remote's SSRC, and SDES CNAME.
func (s *Stream) sendRTCP(now time.Time) {
	s.mu.Lock()
	var reports []rtcp.ReceptionReport
	if s.jb.haveSSRC {
		cum, frac, highest := s.jb.lossStats()
		cum = min(max(cum, -1<<23), 1<<23-1)
		rr := rtcp.ReceptionReport{SSRC: s.jb.ssrc, FractionLost: frac, TotalLost: uint32(cum) & 0xFFFFFF,
			LastSequenceNumber: highest, Jitter: uint32(s.jb.jitter)}
		if !s.lsrAt.IsZero() {
			rr.LastSenderReport = s.lsr
			rr.Delay = uint32(now.Sub(s.lsrAt) * 65536 / time.Second)
		}
		reports = append(reports, rr)
	}
	mux := s.plan.RTCPMux
	s.mu.Unlock()

	s.txMu.Lock()
	defer s.txMu.Unlock()
	var first rtcp.Packet
	if n := s.txPackets.Load(); n > 0 {
		rtpTS := s.lastTxTS + uint32(now.Sub(s.lastTxAt)*time.Duration(s.clockRate)/time.Second)
		first = &rtcp.SenderReport{SSRC: s.ssrc, NTPTime: ntpTime(now), RTPTime: rtpTS,
			PacketCount: uint32(n), OctetCount: uint32(s.txOctets), Reports: reports}
	} else {
		first = &rtcp.ReceiverReport{SSRC: s.ssrc, Reports: reports}
	}
	sdes := &rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{Source: s.ssrc,
		Items: []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: fmt.Sprintf("voicegw-%08x", s.ssrc)}}}}}
	b, err := rtcp.Marshal([]rtcp.Packet{first, sdes})
	if err != nil {
		s.debug("rtcp marshal", "err", err)
		return
	}
	if s.txRTCP != nil {
		if b, err = s.txRTCP.EncryptRTCP(nil, b, nil); err != nil {
			s.debug("srtcp protect", "err", err)
			return
		}
	}
	sock, dst := s.conn.RTCP, *s.rtcpDest.Load()
	if mux {
		sock, dst = s.conn.RTP, *s.dest.Load()
	}
	if !dst.Addr().IsValid() || dst.Addr().IsUnspecified() || dst.Port() == 0 {
		return
	}
	if _, err := sock.WriteToUDPAddrPort(b, dst); err == nil {
		s.rtcpTx.Add(1)
	}
}

// ntpTime is t as a 64-bit NTP timestamp (RFC 3550 §4).
func ntpTime(t time.Time) uint64 {
	const ntpEpochOffset = 2208988800
	secs := uint64(t.Unix()) + ntpEpochOffset
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	return secs<<32 | frac
}

// sysClock is the system clock.
type sysClock struct{}

func (sysClock) Now() time.Time { return time.Now() }

func (sysClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
