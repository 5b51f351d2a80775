// The backends command serves SIMULATED ASR, LLM and TTS backends
// (package loadtest/sim) that speak the open protocols the gateway uses,
// with latency drawn from distributions and injected failures and stalls:
//
//	loadtest backends [--listen ADDR] [--asr-script FILE] [--llm-script FILE]
//	                  [--asr-delay L] [--llm-ttft L] [--llm-token-interval D]
//	                  [--tts-ttfb L] [--tts-realtime]
//	                  [--llm-fail-rate R] [--llm-stall-rate R]
//	                  [--tts-fail-rate R] [--tts-stall-rate R]
//	                  [--stall-max D] [--seed N] [--log-level LEVEL]
//
// D is a Go duration ("300ms"). L is a duration or a distribution of them
// (see sim.Latency): "300ms", "300ms±80ms" or "300ms+-80ms" (normal,
// truncated to [0, mean+4σ]), "uniform(200ms,400ms)", each optionally with
// a long tail, "300ms±80ms,tail=1%:2s" (1% of requests take 2 s longer).
// R is a fraction from 0 to 1: a failing request is answered HTTP 500 with
// an OpenAI-style error after its latency; a stalling one gets its 200 and
// headers and then nothing until the client gives up, or --stall-max
// (default 60s) passes. A role's fail and stall rates add up to at most 1.
// --seed makes the draws repeat (default: from the clock, logged at start).
//
// It prints the base URL on stdout and serves until SIGINT or SIGTERM,
// then shuts down gracefully. Usage errors exit 2; a script that cannot
// be read or an address that cannot be bound exits 1.

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/voicegw/voicegw/loadtest/sim"
	"github.com/voicegw/voicegw/telemetry"
)

// backendsFlags are the parsed flags of the backends command.
type backendsFlags struct {
	listen, asrScript, llmScript, logLevel string
	cfg                                    sim.Config
}

// parseBackendsFlags parses args; on a usage error it has written the
// message to stderr and returns ok false with the exit code.
func parseBackendsFlags(args []string, stderr io.Writer) (f backendsFlags, code int, ok bool) {
	fs := flag.NewFlagSet("loadtest backends", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.listen, "listen", "127.0.0.1:9000", "listen address (host:port; port 0 picks one)")
	fs.StringVar(&f.asrScript, "asr-script", "", "file of transcripts, one per line, returned for successive utterances")
	fs.StringVar(&f.llmScript, "llm-script", "", `file of rules {match, reply}: YAML list (.yaml/.yml) or JSON lines ("*" matches anything)`)
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	cfg := &f.cfg
	fs.Var(&cfg.ASRLatency, "asr-delay", "commit → completed transcript, a `latency`: a duration or a distribution such as 150ms±40ms, uniform(100ms,200ms) or 150ms±40ms,tail=1%:1s (default 150ms; 0 is none)")
	fs.Var(&cfg.LLMTTFTLatency, "llm-ttft", "request → first token: a `latency` as for --asr-delay (default 300ms)")
	fs.DurationVar(&cfg.LLMTokenInterval, "llm-token-interval", 0, "between tokens (default 15ms)")
	fs.Var(&cfg.TTSTTFBLatency, "tts-ttfb", "request → first audio: a `latency` as for --asr-delay (default 150ms)")
	fs.BoolVar(&cfg.TTSRealtime, "tts-realtime", false, "pace TTS audio at real time instead of as fast as it is made")
	fs.Float64Var(&cfg.LLMFailRate, "llm-fail-rate", 0, "`fraction` (0..1) of chat requests answered HTTP 500")
	fs.Float64Var(&cfg.LLMStallRate, "llm-stall-rate", 0, "`fraction` (0..1) of chat requests that send headers, then nothing")
	fs.Float64Var(&cfg.TTSFailRate, "tts-fail-rate", 0, "`fraction` (0..1) of speech requests answered HTTP 500")
	fs.Float64Var(&cfg.TTSStallRate, "tts-stall-rate", 0, "`fraction` (0..1) of speech requests that send headers, then no audio")
	fs.DurationVar(&cfg.StallMax, "stall-max", 0, "cut a stalled request after this long even if its client waits on (default 60s)")
	fs.Int64Var(&cfg.Seed, "seed", 0, "seed of the latency, failure and stall draws (default 0: from the clock)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return f, 0, false
		}
		return f, 2, false
	}
	usage := func(format string, args ...any) (backendsFlags, int, bool) {
		fmt.Fprintf(stderr, "loadtest backends: "+format+"\n", args...)
		return f, 2, false
	}
	if fs.NArg() > 0 {
		return usage("unexpected argument %q", fs.Arg(0))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"llm-token-interval", cfg.LLMTokenInterval}, {"stall-max", cfg.StallMax}} {
		if d.v < 0 {
			return usage("--%s must not be negative", d.name)
		}
	}
	for _, r := range []struct {
		name string
		v    float64
	}{{"llm-fail-rate", cfg.LLMFailRate}, {"llm-stall-rate", cfg.LLMStallRate}, {"tts-fail-rate", cfg.TTSFailRate}, {"tts-stall-rate", cfg.TTSStallRate}} {
		if !(r.v >= 0 && r.v <= 1) {
			return usage("--%s %v must be between 0 and 1", r.name, r.v)
		}
	}
	if cfg.LLMFailRate+cfg.LLMStallRate > 1 {
		return usage("--llm-fail-rate and --llm-stall-rate add up to more than 1")
	}
	if cfg.TTSFailRate+cfg.TTSStallRate > 1 {
		return usage("--tts-fail-rate and --tts-stall-rate add up to more than 1")
	}
	return f, 0, true
}

func runBackends(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f, code, ok := parseBackendsFlags(args, stderr)
	if !ok {
		return code
	}
	cfg := f.cfg
	var err error
	if f.asrScript != "" {
		if cfg.ASRScript, err = sim.LoadASRScript(f.asrScript); err != nil {
			fmt.Fprintf(stderr, "loadtest backends: %v\n", err)
			return 1
		}
	}
	if f.llmScript != "" {
		if cfg.LLMScript, err = sim.LoadLLMScript(f.llmScript); err != nil {
			fmt.Fprintf(stderr, "loadtest backends: %v\n", err)
			return 1
		}
	}
	cfg.Logger = telemetry.NewLogger(stderr, "text", f.logLevel)
	srv, url, err := sim.Listen(ctx, f.listen, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "loadtest backends: %v\n", err)
		return 1
	}
	show := func(l sim.Latency, def string) string {
		if l.IsZero() {
			return def
		}
		return l.String()
	}
	cfg.Logger.Info("simulated backends", "seed", srv.Seed(),
		"asr_delay", show(cfg.ASRLatency, "150ms"), "llm_ttft", show(cfg.LLMTTFTLatency, "300ms"), "tts_ttfb", show(cfg.TTSTTFBLatency, "150ms"),
		"llm_fail_rate", cfg.LLMFailRate, "llm_stall_rate", cfg.LLMStallRate,
		"tts_fail_rate", cfg.TTSFailRate, "tts_stall_rate", cfg.TTSStallRate)
	fmt.Fprintln(stdout, url)
	<-ctx.Done()
	cfg.Logger.Info("shutting down the simulated backends")
	<-srv.Done()
	return 0
}
