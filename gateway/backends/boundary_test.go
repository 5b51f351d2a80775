package backends_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voicegw/voicegw/gateway/backends"
)

// countingListener accepts TCP connections on 127.0.0.1, counts them and
// closes them at once.
func countingListener(t *testing.T) (addr string, accepted *atomic.Int64) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted = new(atomic.Int64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			_ = c.Close()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		<-done
	})
	return l.Addr().String(), accepted
}

// TestRedirectsAreNotFollowed: a backend answering 307 to another server
// is an ErrStatus error naming the status; the other server sees nothing
// (neither the body nor the bearer token), with the default client and
// with NewHTTPClient's.
func TestRedirectsAreNotFollowed(t *testing.T) {
	var elsewhere atomic.Int64
	outside := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		w.WriteHeader(http.StatusTeapot)
	}))
	defer outside.Close()
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, outside.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer redirector.Close()

	clients := map[string]*http.Client{
		"default":       nil,
		"NewHTTPClient": backends.NewHTTPClient(nil, nil),
		// A caller's own client that would follow redirects.
		"caller's": {},
	}
	for name, client := range clients {
		t.Run(name, func(t *testing.T) {
			e := ep(redirector.URL)
			e.APIKey = "secret-key"
			e.HTTPClient = client
			ctx := context.Background()
			ops := map[string]func() error{
				"llm": func() error {
					_, err := backends.NewLLM(backends.LLMConfig{Endpoint: e}).Stream(ctx, backends.ChatRequest{Messages: []backends.Message{{Role: "user", Content: "hi"}}})
					return err
				},
				"tts": func() error {
					_, err := backends.NewTTS(backends.TTSConfig{Endpoint: e}).Speak(ctx, "hi")
					return err
				},
				"batch asr": func() error {
					st, err := backends.DialASR(ctx, backends.ASRConfig{Endpoint: e, Mode: "batch"})
					if err != nil {
						return err
					}
					defer st.Close()
					_ = st.Append(make([]int16, 1600))
					_ = st.Commit()
					return lastErr(events(t, st))
				},
			}
			for op, call := range ops {
				err := call()
				if !errors.Is(err, backends.ErrStatus) || !strings.Contains(err.Error(), "307") {
					t.Errorf("%s: got %v, want ErrStatus naming 307", op, err)
				}
			}
			if n := elsewhere.Load(); n != 0 {
				t.Fatalf("the redirect target got %d requests", n)
			}
		})
	}
}

// proxyChildEnv marks the child process of TestEnvironmentProxyIgnored.
const proxyChildEnv = "VOICEGW_TEST_PROXY_CHILD"

// TestEnvironmentProxyIgnored: with HTTP_PROXY and HTTPS_PROXY pointing at
// a listener, no backend client connects to it. The clients run in a child
// process, because net/http reads the proxy variables once per process.
func TestEnvironmentProxyIgnored(t *testing.T) {
	if os.Getenv(proxyChildEnv) == "1" {
		proxyChild(t)
		return
	}
	addr, accepted := countingListener(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestEnvironmentProxyIgnored$", "-test.count=1")
	cmd.Env = append(os.Environ(), proxyChildEnv+"=1",
		"HTTP_PROXY=http://"+addr, "HTTPS_PROXY=http://"+addr, "http_proxy=http://"+addr, "https_proxy=http://"+addr,
		"NO_PROXY=", "no_proxy=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "proxy child done") {
		t.Fatalf("child did not run the clients:\n%s", out)
	}
	if n := accepted.Load(); n != 0 {
		t.Fatalf("the environment's proxy got %d connections", n)
	}
}

// proxyChild calls a backend that is not on loopback (so the proxy
// variables would apply) over every client; each call fails to resolve
// the name instead of going to the proxy.
func proxyChild(t *testing.T) {
	ctx := context.Background()
	for name, client := range map[string]*http.Client{"default": nil, "NewHTTPClient": backends.NewHTTPClient(nil, nil)} {
		e := backends.Endpoint{Name: name, URL: "http://backend.invalid", Model: "m", Timeout: 2 * time.Second, HTTPClient: client}
		if _, err := backends.NewLLM(backends.LLMConfig{Endpoint: e}).Stream(ctx, backends.ChatRequest{Messages: []backends.Message{{Role: "user", Content: "hi"}}}); err == nil {
			t.Errorf("%s: llm call to backend.invalid succeeded", name)
		}
		if _, err := backends.NewTTS(backends.TTSConfig{Endpoint: e}).Speak(ctx, "hi"); err == nil {
			t.Errorf("%s: tts call to backend.invalid succeeded", name)
		}
	}
	e := backends.Endpoint{Name: "ws", URL: "ws://backend.invalid", Model: "m", Timeout: 2 * time.Second}
	if _, err := backends.DialASR(ctx, backends.ASRConfig{Endpoint: e}); err == nil {
		t.Error("realtime dial of backend.invalid succeeded")
	}
	_, _ = os.Stdout.WriteString("proxy child done\n")
}

// TestConfiguredProxyIsUsed: a proxy given per backend carries its HTTP
// requests and its realtime socket.
func TestConfiguredProxyIsUsed(t *testing.T) {
	addr, accepted := countingListener(t)
	proxy := &url.URL{Scheme: "http", Host: addr}
	e := backends.Endpoint{Name: "p", URL: "http://backend.invalid", Model: "m", Timeout: 2 * time.Second,
		HTTPClient: backends.NewHTTPClient(nil, proxy), Proxy: proxy}
	ctx := context.Background()
	if _, err := backends.NewLLM(backends.LLMConfig{Endpoint: e}).Stream(ctx, backends.ChatRequest{Messages: []backends.Message{{Role: "user", Content: "hi"}}}); err == nil {
		t.Fatal("llm call through a closing proxy succeeded")
	}
	if n := accepted.Load(); n == 0 {
		t.Fatal("the configured proxy saw no HTTP request")
	}
	before := accepted.Load()
	if _, err := backends.DialASR(ctx, backends.ASRConfig{Endpoint: e}); err == nil {
		t.Fatal("realtime dial through a closing proxy succeeded")
	}
	if accepted.Load() == before {
		t.Fatal("the configured proxy saw no realtime dial")
	}
}
