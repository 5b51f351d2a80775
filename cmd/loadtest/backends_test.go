package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/voicegw/voicegw/loadtest/sim"
)

func TestBackendsFlags(t *testing.T) {
	f, code, ok := parseBackendsFlags([]string{
		"--asr-delay", "uniform(100ms,200ms)", "--llm-ttft", "300ms±80ms,tail=1%:2s", "--tts-ttfb", "150ms",
		"--llm-fail-rate", "0.1", "--llm-stall-rate", "0.05", "--tts-fail-rate", "1", "--tts-stall-rate", "0",
		"--stall-max", "5s", "--seed", "42",
	}, io.Discard)
	if !ok {
		t.Fatalf("rejected, exit %d", code)
	}
	want := sim.Config{
		ASRLatency:     sim.MustParseLatency("uniform(100ms,200ms)"),
		LLMTTFTLatency: sim.MustParseLatency("300ms±80ms,tail=1%:2s"),
		TTSTTFBLatency: sim.Fixed(150 * time.Millisecond),
		LLMFailRate:    0.1, LLMStallRate: 0.05, TTSFailRate: 1,
		StallMax: 5 * time.Second, Seed: 42,
	}
	got := f.cfg
	if got.ASRLatency != want.ASRLatency || got.LLMTTFTLatency != want.LLMTTFTLatency || got.TTSTTFBLatency != want.TTSTTFBLatency ||
		got.LLMFailRate != want.LLMFailRate || got.LLMStallRate != want.LLMStallRate || got.TTSFailRate != want.TTSFailRate ||
		got.TTSStallRate != want.TTSStallRate || got.StallMax != want.StallMax || got.Seed != want.Seed {
		t.Errorf("config %+v\nwant %+v", got, want)
	}
	// Unset, the latencies fall back to the package's fixed defaults.
	f, _, ok = parseBackendsFlags(nil, io.Discard)
	if !ok || !f.cfg.ASRLatency.IsZero() || !f.cfg.LLMTTFTLatency.IsZero() || !f.cfg.TTSTTFBLatency.IsZero() {
		t.Errorf("no flags: %+v", f.cfg)
	}
}

func TestBackendsFlagErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--llm-fail-rate", "1.5"}, "loadtest backends: --llm-fail-rate 1.5 must be between 0 and 1"},
		{[]string{"--llm-stall-rate", "-0.1"}, "loadtest backends: --llm-stall-rate -0.1 must be between 0 and 1"},
		{[]string{"--tts-fail-rate", "NaN"}, "loadtest backends: --tts-fail-rate NaN must be between 0 and 1"},
		{[]string{"--tts-stall-rate", "2"}, "loadtest backends: --tts-stall-rate 2 must be between 0 and 1"},
		{[]string{"--llm-fail-rate", "half"}, `invalid value "half" for flag -llm-fail-rate`},
		{[]string{"--tts-fail-rate", "0.6", "--tts-stall-rate", "0.5"}, "loadtest backends: --tts-fail-rate and --tts-stall-rate add up to more than 1"},
		{[]string{"--llm-fail-rate", "0.6", "--llm-stall-rate", "0.5"}, "loadtest backends: --llm-fail-rate and --llm-stall-rate add up to more than 1"},
		{[]string{"--llm-ttft", "300ms±"}, `invalid value "300ms±" for flag -llm-ttft: sim: latency "300ms±": standard deviation is missing`},
		{[]string{"--asr-delay", "uniform(2s,1s)"}, `low 2s is above high 1s`},
		{[]string{"--tts-ttfb", "150ms,tail=1%"}, `tail "1%": want P%:D`},
		{[]string{"--stall-max", "-1s"}, "loadtest backends: --stall-max must not be negative"},
		{[]string{"--seed", "x"}, `invalid value "x" for flag -seed`},
	} {
		var stderr strings.Builder
		code := run(context.Background(), append([]string{"backends"}, c.args...), io.Discard, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("loadtest backends %q: exit %d, stderr %q; want 2 and %q", c.args, code, stderr.String(), c.want)
		}
	}
}

// TestBackendsInjects: the flags reach the served backends: with
// --llm-fail-rate 1 every chat is a 500, and a distribution is accepted.
func TestBackendsInjects(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, []string{"backends", "--listen", "127.0.0.1:0", "--llm-ttft", "1ms+-1ms,tail=0.1%:1ms",
			"--llm-fail-rate", "1", "--tts-ttfb", "uniform(0,1ms)", "--seed", "1", "--log-level", "error"}, pw, io.Discard)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the URL: %v", err)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	url := strings.TrimSpace(line)
	resp, err := http.Post(url+"/v1/chat/completions", "application/json", strings.NewReader(`{"stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(string(body), `"simulated failure"`) {
		t.Errorf("chat: %d %s; want the injected 500", resp.StatusCode, body)
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
}
