package sipmedia

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
)

// PortRange hands out RTP/RTCP socket pairs: RTP on an even port, RTCP on
// the odd port above it (RFC 3550 §11), within [min, max] on one IP. Ports
// are tried round-robin, so a port just released is the last to be reused;
// a port in use (by us or by another process) is skipped. It is safe for
// concurrent use.
type PortRange struct {
	ip       netip.Addr
	min, max int // even RTP ports, inclusive

	mu    sync.Mutex
	next  int
	inUse map[int]bool
}

// NewPortRange returns a range of RTP ports on ip: the even ports of
// [min, max] whose port+1 is also within it.
func NewPortRange(ip netip.Addr, min, max int) (*PortRange, error) {
	if min%2 == 1 {
		min++
	}
	if max%2 == 0 {
		max-- // RTCP needs max ≥ rtp+1
	}
	if !ip.IsValid() || min < 2 || max > 65535 || min+1 > max {
		return nil, fmt.Errorf("sipmedia: bad port range %v %d-%d", ip, min, max)
	}
	return &PortRange{ip: ip, min: min, max: max - 1, next: min, inUse: map[int]bool{}}, nil
}

// Allocate binds the next free pair. It returns ErrNoPorts when every pair
// is in use or cannot be bound.
func (r *PortRange) Allocate() (*Conn, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := (r.max-r.min)/2 + 1
	for range n {
		port := r.next
		r.next += 2
		if r.next > r.max {
			r.next = r.min
		}
		if r.inUse[port] {
			continue
		}
		c, err := bindPair(r.ip, port)
		if err != nil {
			continue // taken by someone else
		}
		r.inUse[port] = true
		c.release = func() { r.mu.Lock(); delete(r.inUse, port); r.mu.Unlock() }
		return c, nil
	}
	return nil, ErrNoPorts
}

func bindPair(ip netip.Addr, port int) (*Conn, error) {
	rtp, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port))))
	if err != nil {
		return nil, err
	}
	rtcp, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port+1))))
	if err != nil {
		_ = rtp.Close()
		return nil, err
	}
	return &Conn{RTP: rtp, RTCP: rtcp, port: port}, nil
}

// ListenConn binds an RTP socket on addr (port 0 picks one) and an RTCP
// socket on any port, outside any PortRange; for tests and tools.
func ListenConn(addr netip.AddrPort) (*Conn, error) {
	rtp, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return nil, err
	}
	rtcp, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr.Addr(), 0)))
	if err != nil {
		_ = rtp.Close()
		return nil, err
	}
	return &Conn{RTP: rtp, RTCP: rtcp, port: rtp.LocalAddr().(*net.UDPAddr).Port}, nil
}

// Conn is one call's RTP and RTCP sockets.
type Conn struct {
	RTP, RTCP *net.UDPConn
	port      int

	once    sync.Once
	release func()
	err     error
}

// Port returns the RTP port (the one to put in m=).
func (c *Conn) Port() int { return c.port }

// Close closes both sockets and returns the port pair to its range. It is
// idempotent.
func (c *Conn) Close() error {
	c.once.Do(func() {
		c.err = errors.Join(c.RTP.Close(), c.RTCP.Close())
		if c.release != nil {
			c.release()
		}
	})
	return c.err
}
