package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestVersionAndUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"version"}, nil, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "voicegw ") {
		t.Errorf("version: %d %q", code, out.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"frobnicate"}, nil, &out, &errb); code != 2 || !strings.Contains(errb.String(), `unknown command "frobnicate"`) {
		t.Errorf("unknown command: %d %q", code, errb.String())
	}
	errb.Reset()
	if code := run(context.Background(), []string{"serve"}, nil, &out, &errb); code != 2 || !strings.Contains(errb.String(), "--dev") {
		t.Errorf("serve without --dev: %d %q", code, errb.String())
	}
	errb.Reset()
	missing := filepath.Join(t.TempDir(), "no-bundle")
	if code := run(context.Background(), []string{"serve", "--dev", "--classifier", missing}, nil, &out, &errb); code != 2 ||
		!strings.Contains(errb.String(), "--classifier") || !strings.Contains(errb.String(), missing) {
		t.Errorf("serve --dev with a missing classifier bundle: %d %q", code, errb.String())
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServeDev starts dev mode, finds the softphone URL it prints, checks
// the HTTP endpoints, and stops it by cancelling its context.
func TestServeDev(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	var errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--dev", "--http", "127.0.0.1:0", "--token", "devtok"}, nil, pw, &errb)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	var url string
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "softphone: "); ok {
			url = u
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if !strings.HasSuffix(url, "/?token=devtok") {
		cancel()
		t.Fatalf("softphone URL %q; stderr: %s", url, errb.String())
	}
	base := strings.TrimSuffix(url, "/?token=devtok")
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": `"ready":true`, "/": "voicegw softphone", "/metrics": "voicegw_calls_active"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("GET %s: %d, body lacks %q", path, resp.StatusCode, want)
		}
	}
	if !strings.Contains(errb.String(), "SIMULATED") {
		t.Errorf("dev mode did not say its backends are simulated: %s", errb.String())
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit code %d", code)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop after its context ended")
	}
}
