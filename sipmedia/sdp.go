package sipmedia

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/pion/sdp/v3"
)

// Codec names accepted in Options.Codecs and reported in Plan.Codec.
const (
	CodecPCMU = "PCMU"
	CodecPCMA = "PCMA"
	CodecOpus = "opus"
)

// Directions (RFC 3264 §6.1).
const (
	SendRecv = "sendrecv"
	SendOnly = "sendonly"
	RecvOnly = "recvonly"
	Inactive = "inactive"
)

// maxSDP bounds the SDP bodies we parse.
const maxSDP = 64 << 10

// Payload types we use in our own offers.
const (
	offerOpusPT    = 111
	offerDTMF8kPT  = 101
	offerDTMF48kPT = 102
)

// Options configures negotiation. The zero value accepts PCMU, PCMA and
// Opus (in that order of preference) over RTP or SDES-SRTP.
type Options struct {
	// Codecs in order of preference: "PCMU", "PCMA", "opus". Default
	// PCMU, PCMA, opus.
	Codecs []string
	// RequireSRTP refuses offers without a=crypto (ErrSRTPRequired) and
	// makes Offer propose RTP/SAVP. When false, RTP/AVP and RTP/SAVP
	// offers are both accepted, and RTP/SAVP is answered with our key.
	RequireSRTP bool
	// LocalIP is the address put in our c= and o= lines. Default
	// 127.0.0.1.
	LocalIP netip.Addr
}

func (o Options) codecs() ([]string, error) {
	if len(o.Codecs) == 0 {
		return []string{CodecPCMU, CodecPCMA, CodecOpus}, nil
	}
	for _, c := range o.Codecs {
		switch c {
		case CodecPCMU, CodecPCMA, CodecOpus:
		default:
			return nil, fmt.Errorf("sipmedia: unknown codec %q in Options.Codecs", c)
		}
	}
	return o.Codecs, nil
}

func (o Options) localIP() netip.Addr {
	if !o.LocalIP.IsValid() {
		return netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	return o.LocalIP
}

// Plan is the outcome of an offer/answer exchange: everything a Stream
// needs for one call's audio.
type Plan struct {
	// Codec is "PCMU", "PCMA" or "opus".
	Codec string
	// PayloadType is the codec's RTP payload type (the offerer's number).
	PayloadType uint8
	// ClockRate is the RTP clock rate: 8000, or 48000 for Opus.
	ClockRate int
	// PTime is the packet duration the remote asked to receive (a=ptime,
	// 10 to 40 ms; 20 ms when absent or out of range). Opus is always sent
	// in 20 ms packets.
	PTime time.Duration
	// DTMFPayloadType is the telephone-event payload type, 0 for none.
	DTMFPayloadType uint8
	// DTMFClockRate is the telephone-event clock rate (8000 or 48000).
	DTMFClockRate int
	// Remote is the remote's RTP address from c= and m= (an unspecified
	// address such as 0.0.0.0 means RFC 2543 hold).
	Remote netip.AddrPort
	// RemoteRTCP is where RTCP goes before any arrives: a=rtcp, or Remote
	// with port+1; equal to Remote with RTCPMux.
	RemoteRTCP netip.AddrPort
	// RTCPMux is set when the remote offered a=rtcp-mux (RFC 5761): RTCP
	// then shares the RTP port in both directions.
	RTCPMux bool
	// Direction is the REMOTE's direction as it offered (or answered) it:
	// sendrecv, sendonly, recvonly or inactive.
	Direction string
	// SRTP holds the SDES keys; nil for plain RTP.
	SRTP *SDES
	// LocalIP is the address of our c= line.
	LocalIP netip.Addr

	proto   string       // transport of the chosen m= line, echoed in the answer
	mindex  int          // index of the chosen m= line
	medias  []offerMedia // every m= line of the offer, for the answer
	opusFmt string       // fmtp we answer for opus
	offered []string     // codecs of Options, to render offers
}

// RemoteSends reports whether the remote's direction says it sends audio.
func (p *Plan) RemoteSends() bool { return p.Direction == SendRecv || p.Direction == SendOnly }

// RemoteReceives reports whether we may send audio: the remote's direction
// is sendrecv or recvonly and its address is not an RFC 2543 hold address.
func (p *Plan) RemoteReceives() bool {
	return (p.Direction == SendRecv || p.Direction == RecvOnly) &&
		p.Remote.Addr().IsValid() && !p.Remote.Addr().IsUnspecified() && p.Remote.Port() != 0
}

// localDirection is our direction, mirroring the remote's (RFC 3264 §6.1).
func (p *Plan) localDirection() string {
	switch p.Direction {
	case SendOnly:
		return RecvOnly
	case RecvOnly:
		return SendOnly
	case Inactive:
		return Inactive
	}
	return SendRecv
}

// rtpmap is one a=rtpmap (or static payload type).
type rtpmap struct {
	name     string
	rate     int
	channels int
	fmtp     string
}

// offerMedia is one parsed m= section.
type offerMedia struct {
	line    int
	kind    string
	port    int
	proto   string
	formats []string
	pts     []uint8
	maps    map[uint8]*rtpmap
	conn    netip.Addr
	hasConn bool
	dir     string
	ptime   time.Duration
	rtcp    netip.AddrPort
	rtcpMux bool
	cryptos []cryptoLine
}

type cryptoLine struct {
	line int
	text string
}

type session struct {
	conn    netip.Addr
	hasConn bool
	dir     string
	ptime   time.Duration
	medias  []*offerMedia
}

func sdpErr(line int, format string, args ...any) error {
	return &SDPError{Line: line, Msg: fmt.Sprintf(format, args...)}
}

// parseSDP parses the parts of an SDP body (RFC 4566/8866) that matter
// for audio. Syntax it cannot read is an *SDPError with its line number;
// attributes it does not know are ignored.
func parseSDP(body []byte) (*session, error) {
	if len(body) > maxSDP {
		return nil, sdpErr(0, "body of %d bytes exceeds %d", len(body), maxSDP)
	}
	text := string(body)
	text = strings.TrimRight(text, "\r\n \t")
	if text == "" {
		return nil, sdpErr(0, "empty body")
	}
	s := &session{dir: SendRecv}
	var m *offerMedia
	for i, raw := range strings.Split(text, "\n") {
		n := i + 1
		ln := strings.TrimSuffix(raw, "\r")
		if len(ln) < 2 || ln[1] != '=' || ln[0] < 'a' || ln[0] > 'z' {
			return nil, sdpErr(n, "expected <type>=<value>, got %q", clip(ln))
		}
		typ, val := ln[0], ln[2:]
		if n == 1 {
			if typ != 'v' || strings.TrimSpace(val) != "0" {
				return nil, sdpErr(n, "first line must be v=0")
			}
			continue
		}
		switch typ {
		case 'v':
			return nil, sdpErr(n, "repeated v= line")
		case 'c':
			addr, err := parseConn(val)
			if err != nil {
				return nil, sdpErr(n, "%v", err)
			}
			if m != nil {
				m.conn, m.hasConn = addr, true
			} else {
				s.conn, s.hasConn = addr, true
			}
		case 'm':
			md, err := parseMediaLine(val)
			if err != nil {
				return nil, sdpErr(n, "%v", err)
			}
			md.line = n
			m = md
			s.medias = append(s.medias, m)
		case 'a':
			if err := parseAttr(s, m, val, n); err != nil {
				return nil, err
			}
		}
	}
	if len(s.medias) == 0 {
		return nil, sdpErr(0, "no m= line")
	}
	return s, nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

func parseConn(val string) (netip.Addr, error) {
	f := strings.Fields(val)
	if len(f) != 3 || f[0] != "IN" || (f[1] != "IP4" && f[1] != "IP6") {
		return netip.Addr{}, fmt.Errorf("c= must be \"IN IP4|IP6 <address>\", got %q", clip(val))
	}
	a := f[2]
	if j := strings.IndexByte(a, '/'); j >= 0 {
		a = a[:j] // multicast TTL or count
	}
	addr, err := netip.ParseAddr(a)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("c= address %q is not an IP literal", clip(a))
	}
	if addr.Zone() != "" || (f[1] == "IP4") != addr.Is4() {
		return netip.Addr{}, fmt.Errorf("c= address %q does not match %s", clip(a), f[1])
	}
	return addr, nil
}

func parseMediaLine(val string) (*offerMedia, error) {
	f := strings.Fields(val)
	if len(f) < 4 {
		return nil, fmt.Errorf("m= must be \"<media> <port> <proto> <fmt> …\", got %q", clip(val))
	}
	portStr := f[1]
	if j := strings.IndexByte(portStr, '/'); j >= 0 {
		portStr = portStr[:j]
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("m= port %q is not 0..65535", clip(f[1]))
	}
	md := &offerMedia{kind: f[0], port: port, proto: f[2], formats: f[3:], maps: map[uint8]*rtpmap{}}
	if isRTPProto(md.proto) {
		for _, fm := range md.formats {
			pt, err := strconv.Atoi(fm)
			if err != nil || pt < 0 || pt > 127 {
				return nil, fmt.Errorf("m= payload type %q is not 0..127", clip(fm))
			}
			md.pts = append(md.pts, uint8(pt))
		}
	}
	return md, nil
}

func isRTPProto(p string) bool {
	switch p {
	case "RTP/AVP", "RTP/SAVP", "RTP/AVPF", "RTP/SAVPF":
		return true
	}
	return false
}

func isSecureProto(p string) bool { return p == "RTP/SAVP" || p == "RTP/SAVPF" }

func parseAttr(s *session, m *offerMedia, val string, n int) error {
	name, arg, _ := strings.Cut(val, ":")
	switch name {
	case SendRecv, SendOnly, RecvOnly, Inactive:
		if m != nil {
			m.dir = name
		} else {
			s.dir = name
		}
	case "ptime":
		ms, err := strconv.ParseFloat(strings.TrimSpace(arg), 64)
		if err != nil || ms <= 0 || ms > 1000 {
			return sdpErr(n, "a=ptime %q is not a duration in ms", clip(arg))
		}
		d := time.Duration(ms * float64(time.Millisecond))
		if m != nil {
			m.ptime = d
		} else {
			s.ptime = d
		}
	case "rtpmap", "fmtp":
		if m == nil || m.pts == nil {
			return nil // session-level or non-RTP media: not ours
		}
		ptStr, rest, ok := strings.Cut(arg, " ")
		pt, err := strconv.Atoi(ptStr)
		if !ok || err != nil || pt < 0 || pt > 127 {
			return sdpErr(n, "a=%s needs \"<payload type> <value>\", got %q", name, clip(arg))
		}
		rest = strings.TrimSpace(rest)
		if name == "fmtp" {
			if rm := m.maps[uint8(pt)]; rm != nil {
				rm.fmtp = rest
			} else {
				m.maps[uint8(pt)] = &rtpmap{fmtp: rest}
			}
			return nil
		}
		parts := strings.Split(rest, "/")
		if len(parts) < 2 || len(parts) > 3 || parts[0] == "" {
			return sdpErr(n, "a=rtpmap needs \"<pt> <encoding>/<clock rate>[/<channels>]\", got %q", clip(arg))
		}
		rate, err := strconv.Atoi(parts[1])
		if err != nil || rate <= 0 || rate > 1000000 {
			return sdpErr(n, "a=rtpmap clock rate %q is not a positive integer", clip(parts[1]))
		}
		ch := 1
		if len(parts) == 3 {
			ch, err = strconv.Atoi(parts[2])
			if err != nil || ch <= 0 || ch > 255 {
				return sdpErr(n, "a=rtpmap channels %q is not a positive integer", clip(parts[2]))
			}
		}
		rm := m.maps[uint8(pt)]
		if rm == nil {
			rm = &rtpmap{}
			m.maps[uint8(pt)] = rm
		}
		rm.name, rm.rate, rm.channels = parts[0], rate, ch
	case "rtcp":
		if m == nil {
			return nil
		}
		f := strings.Fields(arg)
		if len(f) == 0 {
			return sdpErr(n, "a=rtcp needs a port")
		}
		port, err := strconv.Atoi(f[0])
		if err != nil || port <= 0 || port > 65535 {
			return sdpErr(n, "a=rtcp port %q is not 1..65535", clip(f[0]))
		}
		var addr netip.Addr
		if len(f) >= 4 {
			addr, err = parseConn(strings.Join(f[1:4], " "))
			if err != nil {
				return sdpErr(n, "a=rtcp: %v", err)
			}
		}
		m.rtcp = netip.AddrPortFrom(addr, uint16(port))
	case "rtcp-mux":
		if m != nil {
			m.rtcpMux = true
		}
	case "crypto":
		if m != nil {
			m.cryptos = append(m.cryptos, cryptoLine{line: n, text: arg})
		}
	}
	return nil
}

// codecOf returns the codec name pt stands for in m, or "".
func (m *offerMedia) codecOf(pt uint8) (string, *rtpmap) {
	rm := m.maps[pt]
	if rm == nil || rm.name == "" {
		switch pt { // static payload types (RFC 3551) need no rtpmap
		case 0:
			return CodecPCMU, &rtpmap{name: CodecPCMU, rate: 8000, channels: 1}
		case 8:
			return CodecPCMA, &rtpmap{name: CodecPCMA, rate: 8000, channels: 1}
		}
		return "", nil
	}
	switch {
	case strings.EqualFold(rm.name, "PCMU") && rm.rate == 8000 && rm.channels == 1:
		return CodecPCMU, rm
	case strings.EqualFold(rm.name, "PCMA") && rm.rate == 8000 && rm.channels == 1:
		return CodecPCMA, rm
	case strings.EqualFold(rm.name, "opus") && rm.rate == 48000 && (rm.channels == 2 || rm.channels == 1):
		return CodecOpus, rm
	case strings.EqualFold(rm.name, "telephone-event") && (rm.rate == 8000 || rm.rate == 48000):
		return "telephone-event", rm
	}
	return "", nil
}

// Negotiate parses an SDP offer and picks, on the first usable audio
// stream, the first codec of opts.Codecs that the offer supports. It
// returns *SDPError for malformed SDP, and errors wrapping
// ErrNoAudio, ErrNoCommonCodec, ErrSRTPRequired or ErrNoCommonCrypto when
// the offer is well formed but unacceptable. It never panics.
func Negotiate(offer []byte, opts Options) (*Plan, error) {
	prefs, err := opts.codecs()
	if err != nil {
		return nil, err
	}
	s, err := parseSDP(offer)
	if err != nil {
		return nil, err
	}
	var firstErr error
	for i, m := range s.medias {
		if m.kind != "audio" || m.port == 0 || !isRTPProto(m.proto) {
			continue
		}
		p, err := planFor(s, m, prefs, opts, nil)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		p.mindex = i
		p.medias = make([]offerMedia, len(s.medias))
		for j, o := range s.medias {
			p.medias[j] = *o
		}
		return p, nil
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return nil, fmt.Errorf("%w: no m=audio with a port and an RTP/AVP or RTP/SAVP transport", ErrNoAudio)
}

// planFor negotiates one audio m= line. For an answer, offered holds the
// crypto lines we offered (nil when negotiating an offer).
func planFor(s *session, m *offerMedia, prefs []string, opts Options, offered *Offered) (*Plan, error) {
	secure := isSecureProto(m.proto)
	if opts.RequireSRTP && !secure {
		return nil, fmt.Errorf("%w: m=audio on line %d is %s", ErrSRTPRequired, m.line, m.proto)
	}
	p := &Plan{LocalIP: opts.localIP(), proto: m.proto, offered: prefs}
	// Codec: our preference order, the offerer's payload type.
	for _, want := range prefs {
		for _, pt := range m.pts {
			if name, rm := m.codecOf(pt); name == want {
				p.Codec, p.PayloadType, p.ClockRate = name, pt, rm.rate
				break
			}
		}
		if p.Codec != "" {
			break
		}
	}
	if p.Codec == "" {
		var names []string
		for _, pt := range m.pts {
			if rm := m.maps[pt]; rm != nil && rm.name != "" {
				names = append(names, fmt.Sprintf("%s/%d", rm.name, rm.rate))
			} else {
				names = append(names, strconv.Itoa(int(pt)))
			}
		}
		return nil, fmt.Errorf("%w: offered %s, we accept %s", ErrNoCommonCodec, strings.Join(names, " "), strings.Join(prefs, " "))
	}
	// telephone-event: the one at the codec's clock rate, else any.
	for _, pt := range m.pts {
		if name, rm := m.codecOf(pt); name == "telephone-event" {
			if p.DTMFPayloadType == 0 || rm.rate == p.ClockRate {
				if p.DTMFPayloadType == 0 || p.DTMFClockRate != p.ClockRate {
					p.DTMFPayloadType, p.DTMFClockRate = pt, rm.rate
				}
			}
		}
	}
	if p.DTMFPayloadType == p.PayloadType { // cannot share a PT
		p.DTMFPayloadType, p.DTMFClockRate = 0, 0
	}
	// ptime
	p.PTime = m.ptime
	if p.PTime == 0 {
		p.PTime = s.ptime
	}
	if p.PTime < 10*time.Millisecond || p.PTime > 40*time.Millisecond || p.Codec == CodecOpus {
		p.PTime = 20 * time.Millisecond
	}
	p.PTime = p.PTime.Round(time.Millisecond)
	if p.Codec == CodecOpus {
		p.opusFmt = "minptime=10;useinbandfec=1"
	}
	// Addresses
	addr := s.conn
	if m.hasConn {
		addr = m.conn
	} else if !s.hasConn {
		return nil, sdpErr(m.line, "m=audio has no c= line (neither session nor media level)")
	}
	p.Remote = netip.AddrPortFrom(addr, uint16(m.port))
	p.RTCPMux = m.rtcpMux
	switch {
	case m.rtcpMux:
		p.RemoteRTCP = p.Remote
	case m.rtcp.Port() != 0:
		ra := m.rtcp.Addr()
		if !ra.IsValid() {
			ra = addr
		}
		p.RemoteRTCP = netip.AddrPortFrom(ra, m.rtcp.Port())
	default:
		p.RemoteRTCP = netip.AddrPortFrom(addr, uint16(m.port+1))
	}
	p.Direction = m.dir
	if p.Direction == "" {
		p.Direction = s.dir
	}
	// SRTP
	if secure {
		sd, err := chooseCrypto(m.cryptos, offered)
		if err != nil {
			return nil, err
		}
		p.SRTP = sd
	}
	return p, nil
}

// Answer renders our SDP answer to the offer p was negotiated from, with
// our RTP port localPort (0 rejects the stream). Our direction mirrors the
// remote's (sendonly→recvonly, recvonly→sendonly, inactive→inactive);
// every other m= line of the offer is answered with port 0 (RFC 3264 §6).
// a=rtcp-mux is answered only when offered.
func (p *Plan) Answer(localPort int, sessionID, version uint64) []byte {
	d := p.baseSDP(sessionID, version)
	for i, m := range p.medias {
		if i != p.mindex {
			d.MediaDescriptions = append(d.MediaDescriptions, rejectedMedia(m))
			continue
		}
		d.MediaDescriptions = append(d.MediaDescriptions, p.mediaDesc(localPort))
	}
	if len(p.medias) == 0 { // a Plan from ParseAnswer: render our side alone
		d.MediaDescriptions = append(d.MediaDescriptions, p.mediaDesc(localPort))
	}
	b, err := d.Marshal()
	if err != nil { // only on a programming error in building d
		panic(err)
	}
	return b
}

func rejectedMedia(m offerMedia) *sdp.MediaDescription {
	formats := m.formats
	if len(formats) == 0 {
		formats = []string{"0"}
	}
	return &sdp.MediaDescription{MediaName: sdp.MediaName{
		Media: m.kind, Port: sdp.RangedPort{Value: 0}, Protos: strings.Split(m.proto, "/"), Formats: formats,
	}}
}

func (p *Plan) baseSDP(sessionID, version uint64) *sdp.SessionDescription {
	netType, addrType := "IN", "IP4"
	if p.LocalIP.Is6() {
		addrType = "IP6"
	}
	ip := p.LocalIP.String()
	return &sdp.SessionDescription{
		Version: 0,
		Origin: sdp.Origin{Username: "voicegw", SessionID: sessionID, SessionVersion: version,
			NetworkType: netType, AddressType: addrType, UnicastAddress: ip},
		SessionName: "voicegw",
		ConnectionInformation: &sdp.ConnectionInformation{NetworkType: netType, AddressType: addrType,
			Address: &sdp.Address{Address: ip}},
		TimeDescriptions: []sdp.TimeDescription{{Timing: sdp.Timing{}}},
	}
}

func (p *Plan) mediaDesc(port int) *sdp.MediaDescription {
	md := &sdp.MediaDescription{MediaName: sdp.MediaName{
		Media: "audio", Port: sdp.RangedPort{Value: port}, Protos: strings.Split(p.proto, "/"),
	}}
	md.WithCodec(p.PayloadType, rtpName(p.Codec), uint32(p.ClockRate), channelsOf(p.Codec), p.opusFmt)
	if p.DTMFPayloadType != 0 {
		md.WithCodec(p.DTMFPayloadType, "telephone-event", uint32(p.DTMFClockRate), 0, "0-16")
	}
	md.WithValueAttribute("ptime", strconv.Itoa(int(p.PTime/time.Millisecond)))
	md.WithPropertyAttribute(p.localDirection())
	if p.RTCPMux {
		md.WithPropertyAttribute("rtcp-mux")
	}
	if p.SRTP != nil {
		md.WithValueAttribute("crypto", p.SRTP.localLine())
	}
	return md
}

func rtpName(codec string) string { return codec }

func channelsOf(codec string) uint16 {
	if codec == CodecOpus {
		return 2
	}
	return 0
}

// Offered is an offer we sent, waiting for the remote's answer.
type Offered struct {
	opts    Options
	prefs   []string
	proto   string
	keys    []*SDES // one per a=crypto line we offered, by tag
	localIP netip.Addr
}

// Offer builds our SDP offer (for an INVITE without SDP, or a re-INVITE):
// every codec of opts.Codecs plus telephone-event (at 8000 Hz, and at
// 48000 Hz when Opus is offered), ptime 20, and, when opts.RequireSRTP,
// RTP/SAVP with one a=crypto line per suite we support, each with its own
// fresh key. ParseAnswer completes a Plan from the remote's answer.
func Offer(opts Options, localPort int, sessionID, version uint64) ([]byte, *Offered, error) {
	prefs, err := opts.codecs()
	if err != nil {
		return nil, nil, err
	}
	o := &Offered{opts: opts, prefs: prefs, proto: "RTP/AVP", localIP: opts.localIP()}
	p := &Plan{LocalIP: o.localIP, PTime: 20 * time.Millisecond, Direction: SendRecv}
	d := p.baseSDP(sessionID, version)
	md := &sdp.MediaDescription{MediaName: sdp.MediaName{Media: "audio", Port: sdp.RangedPort{Value: localPort}}}
	opus := false
	for _, c := range prefs {
		switch c {
		case CodecPCMU:
			md.WithCodec(0, "PCMU", 8000, 0, "")
		case CodecPCMA:
			md.WithCodec(8, "PCMA", 8000, 0, "")
		case CodecOpus:
			opus = true
			md.WithCodec(offerOpusPT, "opus", 48000, 2, "minptime=10;useinbandfec=1")
		}
	}
	md.WithCodec(offerDTMF8kPT, "telephone-event", 8000, 0, "0-16")
	if opus {
		md.WithCodec(offerDTMF48kPT, "telephone-event", 48000, 0, "0-16")
	}
	md.WithValueAttribute("ptime", "20")
	md.WithPropertyAttribute(SendRecv)
	if opts.RequireSRTP {
		o.proto = "RTP/SAVP"
		for i, suite := range offerSuites {
			k, err := newLocalKey(suite)
			if err != nil {
				return nil, nil, err
			}
			sd := &SDES{Tag: i + 1, Suite: suite, LocalKey: k}
			o.keys = append(o.keys, sd)
			md.WithValueAttribute("crypto", sd.localLine())
		}
	}
	md.MediaName.Protos = strings.Split(o.proto, "/")
	d.MediaDescriptions = append(d.MediaDescriptions, md)
	b, err := d.Marshal()
	if err != nil {
		return nil, nil, fmt.Errorf("sipmedia: offer: %w", err)
	}
	return b, o, nil
}

// ParseAnswer completes a Plan from the remote's answer to our offer. The
// answer must choose codecs we offered on its first audio stream, and,
// when we offered SRTP, accept one of our a=crypto lines (same tag and
// suite) with its own key.
func (o *Offered) ParseAnswer(answer []byte) (*Plan, error) {
	s, err := parseSDP(answer)
	if err != nil {
		return nil, err
	}
	for _, m := range s.medias {
		if m.kind != "audio" {
			continue
		}
		if m.port == 0 {
			return nil, fmt.Errorf("%w: the answer rejected the audio stream (port 0)", ErrNoAudio)
		}
		if !isRTPProto(m.proto) {
			return nil, fmt.Errorf("%w: answer transport %s", ErrNoAudio, m.proto)
		}
		if isSecureProto(m.proto) != (o.proto == "RTP/SAVP") {
			return nil, fmt.Errorf("%w: we offered %s, the answer has %s", ErrNoCommonCrypto, o.proto, m.proto)
		}
		// The answerer lists what it will use, in its order of preference.
		var order []string
		for _, pt := range m.pts {
			if name, _ := m.codecOf(pt); name != "" && name != "telephone-event" && contains(o.prefs, name) {
				order = append(order, name)
			}
		}
		p, err := planFor(s, m, order, o.opts, o)
		if err != nil {
			return nil, err
		}
		p.proto = m.proto
		if p.Codec == CodecOpus {
			p.PTime = 20 * time.Millisecond
		}
		return p, nil
	}
	return nil, fmt.Errorf("%w: no m=audio in the answer", ErrNoAudio)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
