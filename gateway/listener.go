package gateway

import (
	"net"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// limitListener caps the connections open at once: one accepted past the
// cap is closed at once (the client sees the connection reset or closed,
// not a queue), so a flood of idle sockets cannot exhaust the process's
// descriptors. Every open connection, hijacked WebSockets included,
// counts until it is closed.
type limitListener struct {
	net.Listener
	slots   chan struct{}
	open    prometheus.Gauge
	refused prometheus.Counter
}

func newLimitListener(l net.Listener, max int, open prometheus.Gauge, refused prometheus.Counter) *limitListener {
	return &limitListener{Listener: l, slots: make(chan struct{}, max), open: open, refused: refused}
}

// Accept returns the next connection within the cap; those past it are
// closed and skipped.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			l.open.Inc()
			return &limitConn{Conn: c, l: l}, nil
		default:
			l.refused.Inc()
			_ = c.Close()
		}
	}
}

// limitConn gives its slot back when it is first closed.
type limitConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		<-c.l.slots
		c.l.open.Dec()
	})
	return err
}

var (
	_ net.Listener = (*limitListener)(nil)
	_ net.Conn     = (*limitConn)(nil)
)
