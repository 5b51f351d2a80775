// Command loadtest drives voicegw under load and tells whether a deployment
// meets its latency objectives.
//
// Its run command places real calls (WebRTC as the browser softphone does,
// or SIP as a contractor's trunk does) in an OPEN model: arrival i starts at i/rate seconds whatever the earlier
// calls are doing, so a slow gateway cannot slow the arrivals and hide its
// latency. Each call speaks an utterance --turns times and measures, on the
// caller's clock, the call setup time and first_audio: the end of its speech
// → the first non-silent agent audio after it. The gateway's per-turn stage
// timings (its "turn" event) are collected as gw_<stage>. Percentiles come
// from HDR histograms (3 significant digits, reported values at most 0.1 %
// high):
//
//	loadtest run --gateway URL (--token T | --api-key K [--tenant ID])
//	             [--calls N] [--rate R] [--concurrency C] [--turns K]
//	             [--audio WAV] [--duration D] [--json FILE]
//	             [--slo 'first_audio_p99<=1400ms,asr_to_first_token_p99<=800ms']
//	             [--max-failed-ratio F] [--transport webrtc|sip] [--codec C]
//	             [--sip HOST:PORT] [--sip-transport udp|tcp] [--number N]
//	             [--setup-timeout D] [--turn-timeout D] [--progress=false]
//
// --token reuses one call token (dev mode prints one; default
// $VOICEGW_DEV_TOKEN); --api-key mints one per call at POST /v1/tokens
// (default $VOICEGW_API_KEY; a 429 counts as a refused call). --concurrency
// caps the calls up at once: an arrival that finds the cap reached is
// counted as dropped_by_rig, not delayed. --transport sip calls --sip
// HOST:PORT over UDP or TCP without a token (the trunk admits the caller);
// its turns end when the agent falls silent, and it has no gw_ metrics
// (the gateway's turn events travel over WebRTC signaling). --slo takes METRIC_STAT<=DURATION
// terms: metrics setup, first_audio, schedule_lag and gw_asr_final,
// gw_llm_first_token, gw_first_sentence, gw_tts_first_byte, gw_first_audio,
// gw_asr_to_first_token (the gw_ prefix may be left out where it is
// unambiguous); statistics p50, p90, p95, p99, p999, max. It prints a
// progress line to stderr every second, then a table (ms) and one verdict
// line per SLO to stdout, with the rig's own CPU use.
//
// Its ramp command keeps C calls in flight (closed loop) at C = start,
// start+step, … max, judges the SLOs at each level, prints a line per level
// and reports the highest level that held ("capacity: N concurrent calls"):
//
//	loadtest ramp [the connection, call and SLO flags of run] --max C
//	              [--start C0] [--step S] [--step-duration D | --calls-per-step N]
//
// Exit status of run and ramp: 0 every SLO held (ramp: some level held), 2
// an SLO or the failed ratio was missed (ramp: no level held), 1 an error
// (bad flags, gateway unreachable, nothing measured).
//
// Its backends command serves SIMULATED ASR, LLM and TTS backends that speak
// the open protocols the gateway uses, with latency that can be a
// distribution and with injected failures and stalls:
//
//	loadtest backends [--listen ADDR] [--asr-script FILE] [--llm-script FILE]
//	                  [--asr-delay L] [--llm-ttft L] [--llm-token-interval D]
//	                  [--tts-ttfb L] [--tts-realtime]
//	                  [--llm-fail-rate R] [--llm-stall-rate R]
//	                  [--tts-fail-rate R] [--tts-stall-rate R]
//	                  [--stall-max D] [--seed N] [--log-level L]
//
// L is a duration or a distribution such as 300ms±80ms, uniform(200ms,400ms)
// or 300ms±80ms,tail=1%:2s (see sim.Latency); R is a fraction from 0 to 1.
// It prints the base URL on stdout and serves until SIGINT or SIGTERM, then
// shuts down gracefully.
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
	case "run":
		return runLoad(ctx, args[1:], stdout, stderr)
	case "ramp":
		return runRamp(ctx, args[1:], stdout, stderr)
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
  run        place calls at a fixed arrival rate and judge latency SLOs
             (loadtest run -h for its flags)
  ramp       raise the calls in flight step by step; report the capacity at the SLOs
             (loadtest ramp -h for its flags)
  backends   serve SIMULATED ASR, LLM and TTS backends speaking the open protocols
             (loadtest backends -h for its flags)
`)
}
