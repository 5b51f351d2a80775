// Command loadtest drives voicegw with real calls and serves simulated
// backends.
//
//	loadtest backends --listen ADDR [--asr-script FILE] [--llm-script FILE]
//	                  [--asr-delay D] [--llm-ttft D] [--tts-ttfb D]
package main

import (
	"context"
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
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "backends":
		return runBackends(args[1:], stdout, stderr)
	case "help", "-h", "--help":
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
`)
}

func runBackends(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("backends", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:9000", "listen address")
	asrScript := fs.String("asr-script", "", "file of transcripts, one per line, returned for successive utterances")
	llmScript := fs.String("llm-script", "", `file of JSON lines {"match": "…", "reply": "…"} ("*" matches anything)`)
	cfg := sim.Config{}
	fs.DurationVar(&cfg.ASRDelay, "asr-delay", 0, "commit → completed transcript (default 150ms)")
	fs.DurationVar(&cfg.LLMTTFT, "llm-ttft", 0, "request → first token (default 300ms)")
	fs.DurationVar(&cfg.LLMTokenInterval, "llm-token-interval", 0, "between tokens (default 15ms)")
	fs.DurationVar(&cfg.TTSTTFB, "tts-ttfb", 0, "request → first audio (default 150ms)")
	fs.BoolVar(&cfg.TTSRealtime, "tts-realtime", false, "pace TTS audio at real time")
	if err := fs.Parse(args); err != nil {
		return 2
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
	cfg.Logger = telemetry.NewLogger(stderr, "text", "info")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	_, url, err := sim.Listen(ctx, *listen, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "loadtest backends: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "SIMULATED backends at %s\n", url)
	<-ctx.Done()
	return 0
}
