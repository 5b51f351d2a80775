package gateway

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/voicegw/voicegw/gateway/backends"
)

// httpTestServer serves a gateway with limits on 127.0.0.1 and returns it
// and its address. Its backends are never reached.
func httpTestServer(t *testing.T, limits HTTPLimits) (*Server, string) {
	t.Helper()
	dead := backends.Endpoint{URL: "http://127.0.0.1:1", Timeout: 200 * time.Millisecond}
	srv, err := New(Config{
		ICE: ICEConfig{UDPAddr: "127.0.0.1:0", LoopbackOnly: true},
		ASR: backends.ASRConfig{Endpoint: dead}, LLM: backends.LLMConfig{Endpoint: dead}, TTS: backends.TTSConfig{Endpoint: dead},
		Auth: StaticTokens{"tok": {Tenant: "dev", Subject: "tester"}},
		HTTP: limits,
		// A call is never placed: the audit log stays empty.
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		_ = srv.Shutdown(context.Background())
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return srv, l.Addr().String()
}

// value is a gauge's or counter's current value.
func value(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	if g := m.GetGauge(); g != nil {
		return g.GetValue()
	}
	return m.GetCounter().GetValue()
}

// readUntilClosed reads c until the server closes it. safety only bounds a
// broken test; the assertion is that the read ends in EOF (or a reset),
// not in our own deadline.
func readUntilClosed(t *testing.T, c net.Conn, safety time.Duration) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(safety))
	_, err := io.Copy(io.Discard, c)
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		t.Fatalf("the server did not close the connection within %s", safety)
	}
}

// get sends GET path on c (keep-alive) and returns the response.
func get(t *testing.T, c net.Conn, br *bufio.Reader, path string) *http.Response {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: gw\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp
}

// TestHTTPHeaderTimeout: a client that sends part of a request's headers
// and then nothing is disconnected after ReadHeaderTimeout.
func TestHTTPHeaderTimeout(t *testing.T) {
	_, addr := httpTestServer(t, HTTPLimits{ReadHeaderTimeout: 100 * time.Millisecond})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: gw\r\nX-Slow: "); err != nil {
		t.Fatal(err)
	}
	readUntilClosed(t, c, 5*time.Second)
}

// TestSignalingOfferTimeout: an authenticated signaling socket that never
// offers gets an offer_timeout error event and is closed.
func TestSignalingOfferTimeout(t *testing.T) {
	_, addr := httpTestServer(t, HTTPLimits{OfferTimeout: 100 * time.Millisecond})
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/v1/calls?token=tok", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	var m errorMessage
	if err := ws.ReadJSON(&m); err != nil {
		t.Fatalf("no error event: %v", err)
	}
	if m.Type != "error" || m.Code != codeOfferTimeout {
		t.Fatalf("got %+v, want an %s error", m, codeOfferTimeout)
	}
	_, _, err = ws.ReadMessage()
	if !websocket.IsCloseError(err, websocket.ClosePolicyViolation) {
		t.Fatalf("after the error: %v, want close 1008", err)
	}
}

// TestHTTPConnectionCap: with MaxConnections 2, two connections are served
// and counted, the third is closed at once, and a slot freed by a closed
// connection serves the next one.
func TestHTTPConnectionCap(t *testing.T) {
	srv, addr := httpTestServer(t, HTTPLimits{MaxConnections: 2})
	m := srv.cfg.Metrics
	var conns []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if resp := get(t, c, bufio.NewReader(c), "/healthz"); resp.StatusCode != http.StatusOK || resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Fatalf("connection %d: %d %v", len(conns)+1, resp.StatusCode, resp.Header)
		}
		conns = append(conns, c)
	}
	if n := value(m.HTTPConns); n != 2 {
		t.Errorf("voicegw_http_connections %g, want 2", n)
	}
	third, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	_, _ = io.WriteString(third, "GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n")
	_ = third.SetReadDeadline(time.Now().Add(5 * time.Second))
	if resp, err := http.ReadResponse(bufio.NewReader(third), nil); err == nil {
		t.Fatalf("connection 3 was served: %d", resp.StatusCode)
	} else if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		t.Fatal("connection 3 was neither served nor closed")
	}
	if n := value(m.HTTPRefused); n != 1 {
		t.Errorf("voicegw_http_connections_refused_total %g, want 1", n)
	}
	// Closing one frees its slot once the server has seen the close.
	_ = conns[0].Close()
	for i := 0; value(m.HTTPConns) != 1; i++ {
		if i == 500 {
			t.Fatal("the closed connection's slot was not released")
		}
		time.Sleep(10 * time.Millisecond)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if resp := get(t, c, bufio.NewReader(c), "/healthz"); resp.StatusCode != http.StatusOK {
		t.Fatalf("after a slot was freed: %d", resp.StatusCode)
	}
}
