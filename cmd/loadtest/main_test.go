package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBackendsServesUntilCancelled(t *testing.T) {
	dir := t.TempDir()
	asr := filepath.Join(dir, "asr.txt")
	llm := filepath.Join(dir, "llm.yaml")
	if err := os.WriteFile(asr, []byte("# utterances\nWhat are your hours?\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(llm, []byte("- match: hours\n  reply: Nine to five.\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, []string{"backends", "--listen", "127.0.0.1:0", "--asr-script", asr, "--llm-script", llm,
			"--asr-delay", "1ms", "--llm-ttft", "1ms", "--tts-ttfb", "1ms", "--log-level", "error"}, pw, io.Discard)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the URL: %v", err)
	}
	url := strings.TrimSpace(line)
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("printed %q, want the base URL", line)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	resp, err := http.Get(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "SIMULATED") || !strings.Contains(string(body), "/v1/chat/completions") {
		t.Errorf("index says %q; want it to say the backends are simulated and list the routes", body)
	}
	cancel()
	select {
	case c := <-code:
		if c != 0 {
			t.Errorf("exit code %d after shutdown, want 0", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("backends did not shut down")
	}
	if _, err := http.Get(url + "/healthz"); err == nil {
		t.Error("still serving after shutdown")
	}
}

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.jsonl")
	if err := os.WriteFile(bad, []byte("{\"match\":\"x\",\"reply\":\"y\"}\n{\"match\":\"x\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "backends"},
		{[]string{"fly"}, 2, `unknown command "fly"`},
		{[]string{"backends", "--asr-delay", "soon"}, 2, "invalid value"},
		{[]string{"backends", "--llm-ttft", "-1s"}, 2, "must not be negative"},
		{[]string{"backends", "extra"}, 2, "unexpected argument"},
		{[]string{"backends", "--llm-script", bad}, 1, "bad.jsonl:2"},
		{[]string{"backends", "--asr-script", filepath.Join(dir, "missing.txt")}, 1, "missing.txt"},
		{[]string{"backends", "--listen", "256.0.0.1:0"}, 1, "listen"},
	}
	for _, c := range cases {
		var stderr strings.Builder
		got := run(context.Background(), c.args, io.Discard, &stderr)
		if got != c.code || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("loadtest %q: exit %d, stderr %q; want %d and %q", c.args, got, stderr.String(), c.code, c.want)
		}
	}
	var stdout strings.Builder
	if run(context.Background(), []string{"help"}, &stdout, io.Discard) != 0 || !strings.Contains(stdout.String(), "  run ") ||
		!strings.Contains(stdout.String(), "  ramp ") || !strings.Contains(stdout.String(), "  backends ") {
		t.Errorf("help: %q", stdout.String())
	}
}
