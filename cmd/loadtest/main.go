// Command loadtest drives voicegw under load. Its backends command serves
// SIMULATED ASR, LLM and TTS backends that speak the open protocols the
// gateway uses, with configurable latency:
//
//	loadtest backends [--listen ADDR] [--asr-script FILE] [--llm-script FILE]
//	                  [--asr-delay D] [--llm-ttft D] [--llm-token-interval D]
//	                  [--tts-ttfb D] [--tts-realtime] [--log-level L]
//
// It prints the base URL on stdout and serves until SIGINT or SIGTERM,
// then shuts down gracefully.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/voicegw/voicegw/loadtest/sim"
	"github.com/voicegw/voicegw/telemetry"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches a command; it returns the exit code (2 for usage errors).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "backends":
		return runBackends(ctx, args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "loadtest: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: loadtest <command> [flags]

commands:
  backends   serve SIMULATED ASR, LLM and TTS backends speaking the open protocols
             (loadtest backends -h for its flags)
`)
}

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
