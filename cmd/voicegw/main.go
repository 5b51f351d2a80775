// Command voicegw is the AI voice gateway: it terminates browser (WebRTC) and
// SIP calls, runs each call through ASR, an LLM and TTS over open wire
// protocols, and gates every transcript and model sentence with the
// deemed-export classifier.
//
// Subcommands:
//
//	voicegw serve --dev | --config FILE   run the gateway
//	voicegw check --config FILE           validate a config file
//	voicegw classify [--party P] [--policy PATH] [--direction D] [--explain]
//	voicegw version
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		// SIGHUP must never end the gateway; serve logs it while it runs.
		signal.Ignore(syscall.SIGHUP)
	}
	// SIGTERM and SIGINT end ctx: serve drains its calls and exits.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], stdout, stderr)
	case "classify":
		return runClassify(args[1:], stdin, stdout, stderr)
	case "check":
		return runCheck(args[1:], stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "voicegw %s\n", version)
		return 0
	case "help", "--help", "-h":
		usage(stdout)
		return 0
	default:
		fmt.Fprintf(stderr, "voicegw: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: voicegw <command> [flags]

commands:
  serve     run the gateway (--dev for the built-in dev tenant and simulated backends)
  check     validate a config file (--config FILE)
  classify  classify text lines or JSONL from stdin, one JSON decision per line
  version   print the version
`)
}
