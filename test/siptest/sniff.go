package siptest

import (
	"net/netip"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/voicegw/voicegw/media"
	"github.com/voicegw/voicegw/media/mediatest"
)

// Captured is one UDP datagram seen on the loopback interface.
type Captured struct {
	Time     time.Time
	Src, Dst netip.AddrPort
	Payload  []byte
}

// Sniffer records the UDP datagrams sent to one port on the loopback
// interface, without binding the port: it reads an AF_PACKET socket on "lo".
// Each datagram is recorded once. Its methods are safe for concurrent use.
type Sniffer struct {
	port int

	mu   sync.Mutex
	pkts []Captured

	drops   int        // kernel drops counted so far; guarded by mu
	dropsFn func() int // reads and resets the kernel's count; guarded by mu

	closeOnce sync.Once
	closeFn   func() // stops the reader; set by the platform's start
	done      chan struct{}
}

// Packets returns a copy of the datagrams captured so far, in arrival order.
func (s *Sniffer) Packets() []Captured {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Captured(nil), s.pkts...)
}

// Drops returns how many matching datagrams the kernel dropped because the
// capture buffer was full (PACKET_STATISTICS). A test that counts packets
// can report it.
func (s *Sniffer) Drops() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dropsFn != nil {
		s.drops += s.dropsFn()
	}
	return s.drops
}

// RTP returns the captured datagrams that parse as RTP version 2, in
// arrival order. RTCP (payload types 72 to 76 with the marker bit, i.e.
// packet types 200 to 204) is left out.
func (s *Sniffer) RTP() []*rtp.Packet {
	var out []*rtp.Packet
	for _, c := range s.Packets() {
		if len(c.Payload) < 12 || c.Payload[0]>>6 != 2 {
			continue
		}
		if pt := c.Payload[1]; pt >= 200 && pt <= 204 {
			continue // RTCP
		}
		p := new(rtp.Packet)
		if err := p.Unmarshal(c.Payload); err != nil {
			continue
		}
		out = append(out, p)
	}
	return out
}

// PayloadTypes counts the captured RTP packets by payload type.
func (s *Sniffer) PayloadTypes() map[uint8]int {
	m := make(map[uint8]int)
	for _, p := range s.RTP() {
		m[p.PayloadType]++
	}
	return m
}

// DecodedAudio returns the 8 kHz PCM of the captured RTP packets of payload
// type pt (0 PCMU or 8 PCMA; nil for any other), ordered by sequence number
// (with wrap-around, per SSRC in order of first appearance). Duplicates are
// dropped; lost packets are not concealed.
func (s *Sniffer) DecodedAudio(pt uint8) []int16 {
	var decode func([]int16, []byte)
	switch pt {
	case 0:
		decode = media.DecodeMulaw
	case 8:
		decode = media.DecodeAlaw
	default:
		return nil
	}
	type seqPkt struct {
		ext uint64
		p   *rtp.Packet
	}
	var order []uint32
	streams := make(map[uint32][]seqPkt)
	last := make(map[uint32]uint64)
	for _, p := range s.RTP() {
		if p.PayloadType != pt {
			continue
		}
		prev, seen := last[p.SSRC]
		var ext uint64
		if !seen {
			order = append(order, p.SSRC)
			ext = 1<<32 + uint64(p.SequenceNumber)
		} else {
			// Extend the 16-bit sequence number relative to the previous one.
			d := int16(p.SequenceNumber - uint16(prev))
			ext = uint64(int64(prev) + int64(d))
		}
		last[p.SSRC] = ext
		streams[p.SSRC] = append(streams[p.SSRC], seqPkt{ext, p})
	}
	var out []int16
	for _, ssrc := range order {
		ps := streams[ssrc]
		sort.SliceStable(ps, func(i, j int) bool { return ps[i].ext < ps[j].ext })
		for i, sp := range ps {
			if i > 0 && sp.ext == ps[i-1].ext {
				continue
			}
			pcm := make([]int16, len(sp.p.Payload))
			decode(pcm, sp.p.Payload)
			out = append(out, pcm...)
		}
	}
	return out
}

// Close stops the capture and waits for the reader to exit. It is
// idempotent; the captured packets stay readable.
func (s *Sniffer) Close() {
	s.closeOnce.Do(func() {
		if s.closeFn != nil {
			s.closeFn()
		}
		<-s.done
	})
}

func (s *Sniffer) add(c Captured) {
	s.mu.Lock()
	s.pkts = append(s.pkts, c)
	s.mu.Unlock()
}

// Sniff starts capturing the UDP datagrams sent to port on the loopback
// interface (IPv4 and IPv6) until the test ends or Close is called. It needs
// CAP_NET_RAW (root): without it, the test is skipped outside CI and fails in
// CI (mediatest.InCI).
func Sniff(tb testing.TB, port int) *Sniffer {
	tb.Helper()
	s := &Sniffer{port: port, done: make(chan struct{})}
	if err := s.start(); err != nil {
		requireCapture(tb, err)
		return nil
	}
	tb.Cleanup(s.Close)
	return s
}

// testingTB is the part of testing.TB the platform code uses.
type testingTB interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Skip(args ...any)
	Skipf(format string, args ...any)
}

func inCI() bool { return mediatest.InCI() }
