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
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
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
