package siptest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

const (
	ethPAll        = 0x0003 // ETH_P_ALL
	packetOutgoing = 4      // PACKET_OUTGOING
	etherTypeIPv4  = 0x0800
	etherTypeIPv6  = 0x86dd
	protoUDP       = 17
)

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// start opens an AF_PACKET socket bound to "lo" and reads it until Close.
// On lo every datagram passes the tap twice, as PACKET_OUTGOING and as
// PACKET_HOST: only the latter is kept.
func (s *Sniffer) start() error {
	lo, err := loopback()
	if err != nil {
		return err
	}
	fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC, int(htons(ethPAll)))
	if err != nil {
		return fmt.Errorf("siptest: AF_PACKET socket: %w", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrLinklayer{Protocol: htons(ethPAll), Ifindex: lo.Index}); err != nil {
		syscall.Close(fd)
		return fmt.Errorf("siptest: bind AF_PACKET to %s: %w", lo.Name, err)
	}
	// A bounded wait lets the reader see Close; a large buffer rides out
	// bursts (50 calls of 50 packets a second each way).
	tv := syscall.NsecToTimeval((100 * time.Millisecond).Nanoseconds())
	if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
		syscall.Close(fd)
		return fmt.Errorf("siptest: SO_RCVTIMEO: %w", err)
	}
	// SO_RCVBUFFORCE passes net.core.rmem_max (root); SO_RCVBUF is the fallback.
	if syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, 16<<20) != nil {
		_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF, 16<<20)
	}
	// The kernel passes only UDP to the port: the reader never sees, and
	// the buffer never fills with, the rest of the loopback traffic.
	if err := attachFilter(fd, s.port); err != nil {
		syscall.Close(fd)
		return err
	}

	var stop atomic.Bool
	s.closeFn = func() { stop.Store(true) }
	s.dropsFn = func() int { return packetDrops(fd) }
	go func() {
		defer close(s.done)
		defer func() {
			s.mu.Lock()
			s.drops += packetDrops(fd)
			s.dropsFn = nil
			s.mu.Unlock()
			syscall.Close(fd)
		}()
		buf := make([]byte, 65536+64)
		for !stop.Load() {
			n, from, err := syscall.Recvfrom(fd, buf, 0)
			if err != nil {
				if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR) {
					continue
				}
				return
			}
			if ll, ok := from.(*syscall.SockaddrLinklayer); ok && ll.Pkttype == packetOutgoing {
				continue
			}
			if c, ok := parseFrame(buf[:n], s.port); ok {
				c.Time = time.Now()
				s.add(c)
			}
		}
	}()
	return nil
}

// loopback finds the loopback interface ("lo" on Linux).
func loopback() (*net.Interface, error) {
	if ifi, err := net.InterfaceByName("lo"); err == nil {
		return ifi, nil
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("siptest: interfaces: %w", err)
	}
	for i := range ifs {
		if ifs[i].Flags&net.FlagLoopback != 0 {
			return &ifs[i], nil
		}
	}
	return nil, errors.New("siptest: no loopback interface")
}

// parseFrame decodes an Ethernet-framed (lo uses zero MACs) IPv4 or IPv6 UDP
// datagram and returns it if its destination port is port. IPv4 fragments
// other than the first and IPv6 extension headers are not handled: RTP on
// loopback never uses them.
func parseFrame(b []byte, port int) (Captured, bool) {
	if len(b) < 14 {
		return Captured{}, false
	}
	et := binary.BigEndian.Uint16(b[12:14])
	b = b[14:]
	var src, dst netip.Addr
	switch et {
	case etherTypeIPv4:
		if len(b) < 20 || b[0]>>4 != 4 {
			return Captured{}, false
		}
		ihl := int(b[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(b[2:4]))
		if ihl < 20 || total < ihl || total > len(b) || b[9] != protoUDP {
			return Captured{}, false
		}
		if binary.BigEndian.Uint16(b[6:8])&0x1fff != 0 {
			return Captured{}, false // not the first fragment
		}
		src = netip.AddrFrom4([4]byte(b[12:16]))
		dst = netip.AddrFrom4([4]byte(b[16:20]))
		b = b[ihl:total]
	case etherTypeIPv6:
		if len(b) < 40 || b[0]>>4 != 6 || b[6] != protoUDP {
			return Captured{}, false
		}
		plen := int(binary.BigEndian.Uint16(b[4:6]))
		if 40+plen > len(b) {
			return Captured{}, false
		}
		src = netip.AddrFrom16([16]byte(b[8:24]))
		dst = netip.AddrFrom16([16]byte(b[24:40]))
		b = b[40 : 40+plen]
	default:
		return Captured{}, false
	}
	if len(b) < 8 {
		return Captured{}, false
	}
	sp := binary.BigEndian.Uint16(b[0:2])
	dp := binary.BigEndian.Uint16(b[2:4])
	ulen := int(binary.BigEndian.Uint16(b[4:6]))
	if int(dp) != port || ulen < 8 || ulen > len(b) {
		return Captured{}, false
	}
	return Captured{
		Src:     netip.AddrPortFrom(src, sp),
		Dst:     netip.AddrPortFrom(dst, dp),
		Payload: append([]byte(nil), b[8:ulen]...),
	}, true
}

// requireCapture skips (or, in CI, fails) a test that cannot capture
// because it lacks CAP_NET_RAW, and fails it for any other error.
func requireCapture(tb testingTB, err error) {
	tb.Helper()
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
		if inCI() {
			tb.Fatalf("siptest.Sniff needs CAP_NET_RAW (run as root): %v", err)
		}
		tb.Skipf("siptest.Sniff needs CAP_NET_RAW (run as root): %v", err)
	}
	tb.Fatalf("siptest.Sniff: %v", err)
}

// attachFilter installs a classic BPF program that accepts Ethernet-framed
// IPv4 (first fragments) and IPv6 UDP datagrams to port.
func attachFilter(fd, port int) error {
	const (
		ldh  = 0x28 // BPF_LD|BPF_H|BPF_ABS
		ldb  = 0x30 // BPF_LD|BPF_B|BPF_ABS
		ldxb = 0xb1 // BPF_LDX|BPF_B|BPF_MSH
		ldhx = 0x48 // BPF_LD|BPF_H|BPF_IND
		jeq  = 0x15 // BPF_JMP|BPF_JEQ|BPF_K
		jset = 0x45 // BPF_JMP|BPF_JSET|BPF_K
		ret  = 0x06 // BPF_RET|BPF_K
	)
	p := uint32(port)
	// Jt and Jf skip that many instructions: 14 accepts, 15 drops.
	prog := []syscall.SockFilter{
		/* 0 */ {Code: ldh, K: 12},
		/* 1 */ {Code: jeq, K: etherTypeIPv4, Jt: 0, Jf: 7},
		/* 2 */ {Code: ldb, K: 23},
		/* 3 */ {Code: jeq, K: protoUDP, Jt: 0, Jf: 11},
		/* 4 */ {Code: ldh, K: 20},
		/* 5 */ {Code: jset, K: 0x1fff, Jt: 9, Jf: 0},
		/* 6 */ {Code: ldxb, K: 14},
		/* 7 */ {Code: ldhx, K: 16},
		/* 8 */ {Code: jeq, K: p, Jt: 5, Jf: 6},
		/* 9 */ {Code: jeq, K: etherTypeIPv6, Jt: 0, Jf: 5},
		/* 10 */ {Code: ldb, K: 20},
		/* 11 */ {Code: jeq, K: protoUDP, Jt: 0, Jf: 3},
		/* 12 */ {Code: ldh, K: 56},
		/* 13 */ {Code: jeq, K: p, Jt: 0, Jf: 1},
		/* 14 */ {Code: ret, K: 0x40000},
		/* 15 */ {Code: ret, K: 0},
	}
	fprog := syscall.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	_, _, errno := syscall.Syscall6(syscall.SYS_SETSOCKOPT, uintptr(fd), syscall.SOL_SOCKET, syscall.SO_ATTACH_FILTER,
		uintptr(unsafe.Pointer(&fprog)), unsafe.Sizeof(fprog), 0)
	if errno != 0 {
		return fmt.Errorf("siptest: SO_ATTACH_FILTER: %w", errno)
	}
	return nil
}

// packetDrops reads and resets the socket's drop counter (PACKET_STATISTICS).
func packetDrops(fd int) int {
	const solPacket, packetStatistics = 263, 6
	var st struct{ packets, drops uint32 }
	l := uint32(unsafe.Sizeof(st))
	_, _, errno := syscall.Syscall6(syscall.SYS_GETSOCKOPT, uintptr(fd), solPacket, packetStatistics,
		uintptr(unsafe.Pointer(&st)), uintptr(unsafe.Pointer(&l)), 0)
	if errno != 0 {
		return 0
	}
	return int(st.drops)
}
