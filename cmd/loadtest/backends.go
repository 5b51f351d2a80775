package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/voicegw/voicegw/loadtest/sim"
	"github.com/voicegw/voicegw/telemetry"
)

func runBackends(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loadtest backends", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:9000", "listen address (host:port; port 0 picks one)")
	asrScript := fs.String("asr-script", "", "file of transcripts, one per line, returned for successive utterances")
	llmScript := fs.String("llm-script", "", `file of rules {match, reply}: YAML list (.yaml/.yml) or JSON lines ("*" matches anything)`)
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	var cfg sim.Config
	fs.DurationVar(&cfg.ASRDelay, "asr-delay", 0, "commit → completed transcript (default 150ms)")
	fs.DurationVar(&cfg.LLMTTFT, "llm-ttft", 0, "request → first token (default 300ms)")
	fs.DurationVar(&cfg.LLMTokenInterval, "llm-token-interval", 0, "between tokens (default 15ms)")
	fs.DurationVar(&cfg.TTSTTFB, "tts-ttfb", 0, "request → first audio (default 150ms)")
	fs.BoolVar(&cfg.TTSRealtime, "tts-realtime", false, "pace TTS audio at real time instead of as fast as it is made")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "loadtest backends: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	for _, d := range []struct {
		name string
		v    int64
	}{{"asr-delay", int64(cfg.ASRDelay)}, {"llm-ttft", int64(cfg.LLMTTFT)}, {"llm-token-interval", int64(cfg.LLMTokenInterval)}, {"tts-ttfb", int64(cfg.TTSTTFB)}} {
		if d.v < 0 {
			fmt.Fprintf(stderr, "loadtest backends: --%s must not be negative\n", d.name)
			return 2
		}
	}
	var err error
	if *asrScript != "" {
		if cfg.ASRScript, err = sim.LoadASRScript(*asrScript); err != nil {
			fmt.Fprintf(stderr, "loadtest backends: %v\n", err)
			return 1
		}
	}
	if *llmScript != "" {
		if cfg.LLMScript, err = sim.LoadLLMScript(*llmScript); err != nil {
			fmt.Fprintf(stderr, "loadtest backends: %v\n", err)
			return 1
		}
	}
	cfg.Logger = telemetry.NewLogger(stderr, "text", *logLevel)
	srv, url, err := sim.Listen(ctx, *listen, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "loadtest backends: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, url)
	<-ctx.Done()
	cfg.Logger.Info("shutting down the simulated backends")
	<-srv.Done()
	return 0
}
