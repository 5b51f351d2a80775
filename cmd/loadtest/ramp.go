package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/voicegw/voicegw/loadtest/rig"
)

// runRamp is "loadtest ramp": a closed-loop load raised step by step until
// the SLOs stop holding; it reports the highest level that held.
func runRamp(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loadtest ramp", flag.ContinueOnError)
	var f callFlags
	f.register(fs)
	start := fs.Int("start", 1, "first level: calls kept in flight")
	step := fs.Int("step", 1, "calls added at each level")
	maxLevel := fs.Int("max", 0, "highest level tried (required)")
	stepDuration := fs.Duration("step-duration", 0, "how long each level places calls (default 30s unless --calls-per-step)")
	callsPerStep := fs.Int("calls-per-step", 0, "calls placed at each level (at least the level); with --step-duration, whichever ends first")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: loadtest ramp --gateway URL (--token T | --api-key K) --max C [--start C0] [--step S] [--step-duration D | --calls-per-step N] [--slo EXPR] [flags]")
		fs.PrintDefaults()
	}
	if code := f.parse(fs, args, stderr); code >= 0 {
		return code
	}
	cfg, err := f.config()
	if err == nil {
		switch {
		case *start < 1 || *step < 1:
			err = usagef("--start and --step must be at least 1")
		case *maxLevel < 1:
			err = usagef("--max (the highest level to try) is required")
		case *maxLevel < *start:
			err = usagef("--max %d is below --start %d", *maxLevel, *start)
		case *stepDuration < 0 || *callsPerStep < 0:
			err = usagef("--step-duration and --calls-per-step must not be negative")
		case len(cfg.SLOs) == 0:
			fmt.Fprintln(stderr, "loadtest ramp: no --slo given: a level holds when its calls succeed (--max-failed-ratio)")
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "loadtest ramp: %v\n", err)
		return exitError
	}
	if err := f.preflight(ctx); err != nil {
		fmt.Fprintf(stderr, "loadtest ramp: %v\n", err)
		return exitError
	}
	rc := rig.RampConfig{Config: cfg, Start: *start, Step: *step, Max: *maxLevel, StepDuration: *stepDuration, CallsPerStep: *callsPerStep}
	if rc.StepDuration == 0 && rc.CallsPerStep == 0 {
		rc.StepDuration = 30 * time.Second
	}
	done := func() {}
	if f.progress {
		rc.OnProgress, done = progressPrinter(stderr)
	}
	rc.OnStep = func(s rig.StepResult) {
		done()
		fmt.Fprintln(stdout, s)
	}
	res, err := rig.Ramp(ctx, rc)
	done()
	if res == nil {
		fmt.Fprintf(stderr, "loadtest ramp: %v\n", err)
		return exitError
	}
	fmt.Fprintln(stdout)
	res.WriteText(stdout)
	if f.jsonOut != "" {
		desc := f.describe(cfg)
		desc.Start, desc.Step, desc.Max = *start, *step, *maxLevel
		desc.StepDurationMS, desc.CallsPerStep = rc.StepDuration.Milliseconds(), *callsPerStep
		if werr := writeJSON(f.jsonOut, res.Report(desc)); werr != nil {
			fmt.Fprintf(stderr, "loadtest ramp: --json: %v\n", werr)
			return exitError
		}
	}
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "loadtest ramp: %v\n", err)
		return exitError
	case ctx.Err() != nil:
		fmt.Fprintln(stderr, "loadtest ramp: interrupted")
		return exitError
	case res.Capacity == 0:
		return exitMissed
	}
	return exitOK
}
