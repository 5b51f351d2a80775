package sipcall

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/voicegw/voicegw/sipmedia"
)

// userAgent is the User-Agent header of every request.
const userAgent = "voicegw-loadtest"

// endpoint is one sipgo user agent shared by every call with the same
// transport and local IP: its client sends the calls' requests and its
// server receives the gateway's requests, on the same sockets.
type endpoint struct {
	key    endpointKey
	ua     *sipgo.UserAgent
	client *sipgo.Client
	server *sipgo.Server
	log    *slog.Logger
	refs   int // guarded by registry.mu

	// The sockets, which the endpoint owns (see heldConn): for UDP one
	// socket for every target; for TCP one connection per target, handed
	// to sipgo through feed.
	udp  *net.UDPConn
	feed *connFeed
	wg   sync.WaitGroup // the Serve goroutines

	mu    sync.Mutex
	calls map[string]*SIPCaller // by dialog ID
	tcp   map[string]*heldConn  // by target
}

type endpointKey struct {
	transport string
	ip        netip.Addr
}

type portKey struct {
	ip     netip.Addr
	lo, hi int
}

// registry holds the endpoints and RTP port ranges shared by the calls of
// this process. It is package state because DialSIP takes no dialer: the
// point is that hundreds of calls share one user agent.
type registry struct {
	mu        sync.Mutex
	endpoints map[endpointKey]*endpoint
	ports     map[portKey]*sipmedia.PortRange
}

var shared = &registry{
	endpoints: map[endpointKey]*endpoint{},
	ports:     map[portKey]*sipmedia.PortRange{},
}

// acquire returns the endpoint for key, creating it on first use, with
// one more reference. release gives it back.
func (r *registry) acquire(key endpointKey, log *slog.Logger) (*endpoint, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ep := r.endpoints[key]; ep != nil {
		ep.refs++
		return ep, nil
	}
	ep, err := newEndpoint(key, log)
	if err != nil {
		return nil, err
	}
	ep.refs = 1
	r.endpoints[key] = ep
	return ep, nil
}

// release drops a reference to ep and closes it with the last one.
func (r *registry) release(ep *endpoint) {
	r.mu.Lock()
	ep.refs--
	last := ep.refs == 0
	if last {
		delete(r.endpoints, ep.key)
	}
	r.mu.Unlock()
	if last {
		ep.close()
	}
}

// portRange returns the shared range [lo, hi] on ip.
func (r *registry) portRange(ip netip.Addr, lo, hi int) (*sipmedia.PortRange, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := portKey{ip, lo, hi}
	if p := r.ports[k]; p != nil {
		return p, nil
	}
	p, err := sipmedia.NewPortRange(ip, lo, hi)
	if err != nil {
		return nil, err
	}
	r.ports[k] = p
	return p, nil
}

func newEndpoint(key endpointKey, log *slog.Logger) (*endpoint, error) {
	stackLog := log.With("component", "sip", "transport", key.transport)
	ua, err := sipgo.NewUA(
		sipgo.WithUserAgent(userAgent),
		sipgo.WithUserAgentHostname(key.ip.String()),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(stackLog)),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(stackLog)),
	)
	if err != nil {
		return nil, fmt.Errorf("sipcall: user agent: %w", err)
	}
	ep := &endpoint{key: key, ua: ua, log: stackLog, calls: map[string]*SIPCaller{}, tcp: map[string]*heldConn{}}
	if ep.server, err = sipgo.NewServer(ua, sipgo.WithServerLogger(stackLog)); err != nil {
		_ = ua.Close()
		return nil, fmt.Errorf("sipcall: server: %w", err)
	}
	ep.server.OnBye(ep.onBye)
	// Requests leave from laddr: for UDP our socket, for TCP the
	// connection to the target (port 0: sipgo looks it up by the
	// target's address).
	laddr := net.JoinHostPort(key.ip.String(), "0")
	if key.transport == "udp" {
		pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(key.ip, 0)))
		if err != nil {
			_ = ua.Close()
			return nil, fmt.Errorf("sipcall: listen udp: %w", err)
		}
		ep.udp = pc
		laddr = pc.LocalAddr().String()
		// In the pool before the first request looks it up (Serve adds it
		// too, from its own goroutine).
		ua.TransportLayer().Pool("udp").Add(laddr, &sip.UDPConnection{PacketConn: pc, PacketAddr: laddr, Listener: true})
		ep.wg.Add(1)
		go func() {
			defer ep.wg.Done()
			_ = ep.server.ServeUDP(pc)
		}()
	} else {
		ep.feed = newConnFeed(netip.AddrPortFrom(key.ip, 0))
		ep.wg.Add(1)
		go func() {
			defer ep.wg.Done()
			_ = ep.server.ServeTCP(ep.feed)
		}()
	}
	if ep.client, err = sipgo.NewClient(ua, sipgo.WithClientLogger(stackLog), sipgo.WithClientConnectionAddr(laddr)); err != nil {
		ep.close()
		return nil, fmt.Errorf("sipcall: client: %w", err)
	}
	return ep, nil
}

// close closes the endpoint's sockets, which ends sipgo's readers, and
// its user agent.
func (ep *endpoint) close() {
	if ep.udp != nil {
		_ = ep.udp.Close()
	}
	if ep.feed != nil {
		_ = ep.feed.Close()
	}
	ep.mu.Lock()
	for _, c := range ep.tcp {
		_ = c.Conn.Close()
	}
	ep.mu.Unlock()
	// Terminates the transactions.
	_ = ep.ua.Close()
	ep.wg.Wait()
}

// connect makes sure a TCP endpoint has a live connection to target
// (host:port), dialing one when needed.
func (ep *endpoint) connect(ctx context.Context, target string) error {
	if ep.feed == nil {
		return nil
	}
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if c := ep.tcp[target]; c != nil {
		if !c.dead.Load() {
			return nil
		}
		_ = c.Conn.Close()
		delete(ep.tcp, target)
	}
	d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(ep.key.ip, 0))}
	nc, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		return fmt.Errorf("sipcall: connect: %w", err)
	}
	c := &heldConn{Conn: nc}
	// sipgo finds it by the target's address: put it in the pool now,
	// before the feed hands it to sipgo's reader (which adds it again).
	ep.ua.TransportLayer().Pool("tcp").Add(nc.RemoteAddr().String(), &sip.TCPConnection{Conn: c})
	if !ep.feed.give(ctx, c) {
		_ = nc.Close()
		return fmt.Errorf("sipcall: connect: %w", net.ErrClosed)
	}
	ep.tcp[target] = c
	return nil
}

// heldConn is a TCP connection the endpoint owns. sipgo counts references
// to its connections and closes one whose count reaches zero, a count that
// can drift while other calls still use the connection: its Close is
// ignored, and the endpoint closes the connection itself.
type heldConn struct {
	net.Conn
	dead atomic.Bool // a read failed: the connection is gone
}

func (c *heldConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err != nil {
		c.dead.Store(true)
	}
	return n, err
}

func (c *heldConn) Close() error { return nil }

// connFeed is a net.Listener whose Accept returns the connections we
// dialed, so that sipgo's TCP transport reads them (and delivers the
// gateway's requests on them to our server).
type connFeed struct {
	addr   net.Addr
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newConnFeed(a netip.AddrPort) *connFeed {
	return &connFeed{addr: net.TCPAddrFromAddrPort(a), conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (f *connFeed) give(ctx context.Context, c net.Conn) bool {
	select {
	case f.conns <- c:
		return true
	case <-f.closed:
		return false
	case <-ctx.Done():
		return false
	}
}

func (f *connFeed) Accept() (net.Conn, error) {
	select {
	case c := <-f.conns:
		return c, nil
	case <-f.closed:
		return nil, net.ErrClosed
	}
}

func (f *connFeed) Close() error {
	f.once.Do(func() { close(f.closed) })
	return nil
}

func (f *connFeed) Addr() net.Addr { return f.addr }

func (ep *endpoint) register(id string, c *SIPCaller) {
	ep.mu.Lock()
	ep.calls[id] = c
	ep.mu.Unlock()
}

func (ep *endpoint) forget(id string) {
	ep.mu.Lock()
	delete(ep.calls, id)
	ep.mu.Unlock()
}

// onBye answers the gateway's BYE: 200 and the call ends, or 481 for a
// dialog we do not know (already ended).
func (ep *endpoint) onBye(req *sip.Request, tx sip.ServerTransaction) {
	var c *SIPCaller
	if id, err := sip.DialogIDFromRequestUAC(req); err == nil {
		ep.mu.Lock()
		c = ep.calls[id]
		ep.mu.Unlock()
	}
	if c == nil {
		res := sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil)
		if err := tx.Respond(res); err != nil {
			ep.log.Debug("sip 481 not sent", "err", err)
		}
		return
	}
	c.remoteBye(req, tx)
}
