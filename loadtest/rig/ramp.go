package rig

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// RampConfig configures a ramp: a closed-loop load that raises the number
// of calls in flight step by step until the SLOs stop holding.
type RampConfig struct {
	// Config configures the calls (Calls, Rate and Concurrency are not
	// used). Its Duration bounds the whole ramp (default: no bound beyond
	// the steps').
	Config
	// Start is the first level (calls in flight). Default 1.
	Start int
	// Step is how much each level adds. Default 1.
	Step int
	// Max is the highest level tried. Required.
	Max int
	// StepDuration: at each level, calls are started for this long; calls
	// in flight when it ends run to completion and count to the step.
	StepDuration time.Duration
	// CallsPerStep: at each level, this many calls are started (at least the
	// level, so every slot places one). With StepDuration too, whichever
	// comes first ends the step. Default (neither set): StepDuration 30 s.
	CallsPerStep int
	// OnStep, when set, is called with each step's result as it ends.
	OnStep func(StepResult)
}

// StepResult is one ramp level's measurements.
type StepResult struct {
	Level int
	*Result
	// Held reports whether every SLO held, the failed ratio was within
	// bounds and at least one turn was measured.
	Held bool
}

// String is the step's summary line.
func (s StepResult) String() string {
	verdict := "held"
	if !s.Held {
		verdict = "MISSED"
	}
	line := fmt.Sprintf("step %3d concurrent: %3d calls (%d completed, %d failed, %d refused) in %.1f s",
		s.Level, s.Calls.Started, s.Calls.Completed, s.Calls.Failed, s.Calls.Refused, s.Duration.Seconds())
	if h := s.Metrics[MetricFirstAudio]; h.Count() > 0 {
		line += fmt.Sprintf(", first_audio p99 %s ms", ms(Duration(h.ValueAtQuantile(0.99))))
	}
	var missed []string
	for _, v := range s.Verdicts {
		if !v.OK {
			missed = append(missed, v.SLO.Expr)
		}
	}
	if !s.FailedOK {
		missed = append(missed, "failed_ratio<="+pct(s.MaxFailedRatio))
	}
	if s.Measured() == 0 {
		missed = append(missed, "nothing measured")
	}
	if s.CPU.Available {
		line += fmt.Sprintf(", rig CPU %.0f%% of one core", s.CPU.OneCorePercent)
	}
	line += ": SLOs " + verdict
	if len(missed) > 0 {
		line += fmt.Sprintf(" (%v)", missed)
	}
	return line
}

// RampResult is a whole ramp.
type RampResult struct {
	Transport string
	StartedAt time.Time
	Duration  time.Duration
	Steps     []StepResult
	// Capacity is the highest level at which the SLOs held (0: none).
	Capacity int
	// Stopped says why the ramp ended.
	Stopped string
	CPU     CPUUsage
}

// StepReport is one step in the ramp's JSON document.
type StepReport struct {
	Concurrency int  `json:"concurrency"`
	Held        bool `json:"held"`
	Measurements
	RigCPU CPUUsage `json:"rig_cpu"`
}

// RampReport is the JSON document of a ramp.
type RampReport struct {
	Config     any          `json:"config"`
	Transport  string       `json:"transport"`
	StartedAt  time.Time    `json:"started_at"`
	DurationMS int64        `json:"duration_ms"`
	Steps      []StepReport `json:"steps"`
	Capacity   int          `json:"capacity"`
	Stopped    string       `json:"stopped"`
	RigCPU     CPUUsage     `json:"rig_cpu"`
}

// Report returns the ramp's JSON document.
func (r *RampResult) Report(config any) RampReport {
	rep := RampReport{Config: config, Transport: r.Transport, StartedAt: r.StartedAt.UTC(), DurationMS: r.Duration.Milliseconds(),
		Steps: []StepReport{}, Capacity: r.Capacity, Stopped: r.Stopped, RigCPU: r.CPU}
	for _, s := range r.Steps {
		rep.Steps = append(rep.Steps, StepReport{Concurrency: s.Level, Held: s.Held, Measurements: s.Measurements(), RigCPU: s.CPU})
	}
	return rep
}

// WriteText writes the final ramp report (the step lines are OnStep's): the
// table and verdicts at the capacity level (or the last level tried), why
// the ramp stopped, the capacity and the rig's CPU use.
func (r *RampResult) WriteText(w io.Writer) {
	if n := len(r.Steps); n > 0 {
		shown := r.Steps[n-1]
		for _, s := range r.Steps {
			if s.Level == r.Capacity {
				shown = s
			}
		}
		fmt.Fprintf(w, "at %d concurrent calls:\n", shown.Level)
		WriteTable(w, shown.Metrics)
		fmt.Fprintln(w)
		shown.WriteVerdicts(w)
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "stopped: %s\n", r.Stopped)
	if r.Capacity > 0 {
		fmt.Fprintf(w, "capacity: %d concurrent calls\n", r.Capacity)
	} else {
		fmt.Fprintln(w, "capacity: none (the SLOs did not hold at any level tried)")
	}
	fmt.Fprintln(w, r.CPU)
}

// Ramp runs a closed-loop load at levels Start, Start+Step, … up to Max:
// at each level that many workers each keep one call in flight (a new call
// as soon as the previous one ends) until the step ends; then the step's
// SLOs are evaluated. The ramp stops at the first level where they do not
// hold, after Max, or when Config.Duration has passed; Capacity is the
// highest level that held. The error is non-nil only for a bad config or a
// condition that stops the run (a *TenantMismatchError).
func Ramp(ctx context.Context, cfg RampConfig) (*RampResult, error) {
	if err := cfg.Config.defaults(false); err != nil {
		return nil, err
	}
	if cfg.Start == 0 {
		cfg.Start = 1
	}
	if cfg.Step == 0 {
		cfg.Step = 1
	}
	if cfg.Start < 0 || cfg.Step < 0 || cfg.Max < cfg.Start || cfg.StepDuration < 0 || cfg.CallsPerStep < 0 {
		return nil, fmt.Errorf("%w: want 0 < start ≤ max, step > 0 and non-negative step bounds", ErrConfig)
	}
	if cfg.StepDuration == 0 && cfg.CallsPerStep == 0 {
		cfg.StepDuration = 30 * time.Second
	}
	r := &runner{cfg: cfg.Config, utterance: cfg.utteranceLen()}
	cpu := startCPU()
	res := &RampResult{Transport: cfg.Transport, StartedAt: time.Now()}
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	res.Stopped = fmt.Sprintf("reached the maximum level %d", cfg.Max)
	next := 0 // call numbers across the ramp
	for level := cfg.Start; level <= cfg.Max; level += cfg.Step {
		step := r.step(ctx, stop, &cfg, level, &next)
		if ctx.Err() != nil {
			// A step cut short by the time bound is reported but not judged.
			step.Held = false
			res.Steps = append(res.Steps, step)
			if cfg.OnStep != nil {
				cfg.OnStep(step)
			}
			res.Stopped = "the time bound ended the ramp"
			if cause := context.Cause(ctx); !errors.Is(cause, context.DeadlineExceeded) && !errors.Is(cause, context.Canceled) {
				res.Stopped = cause.Error()
			} else if errors.Is(cause, context.Canceled) {
				res.Stopped = "interrupted"
			}
			break
		}
		res.Steps = append(res.Steps, step)
		if cfg.OnStep != nil {
			cfg.OnStep(step)
		}
		if !step.Held {
			res.Stopped = fmt.Sprintf("the SLOs did not hold at %d concurrent calls", level)
			break
		}
		res.Capacity = level
	}
	res.Duration = time.Since(res.StartedAt)
	res.CPU = cpu.stop()
	if err := context.Cause(ctx); err != nil {
		if tm, ok := errors.AsType[*TenantMismatchError](err); ok {
			return res, tm
		}
	}
	return res, nil
}

// step runs one level of the ramp.
func (r *runner) step(ctx context.Context, stop context.CancelCauseFunc, cfg *RampConfig, level int, next *int) StepResult {
	col := newCollector()
	cpu := startCPU()
	stopProgress := r.progressLoop(col, level)
	var deadline time.Time
	if cfg.StepDuration > 0 {
		deadline = col.start.Add(cfg.StepDuration)
	}
	budget := int64(max(cfg.CallsPerStep, level))
	var claimed atomic.Int64
	var numMu sync.Mutex
	var wg sync.WaitGroup
	for range level {
		wg.Go(func() {
			for ctx.Err() == nil {
				if !deadline.IsZero() && !time.Now().Before(deadline) {
					return
				}
				if cfg.CallsPerStep > 0 && claimed.Add(1) > budget {
					return
				}
				numMu.Lock()
				*next++
				n := *next
				numMu.Unlock()
				col.started()
				if err := r.call(ctx, n, col); err != nil {
					stop(err)
					return
				}
			}
		})
	}
	wg.Wait()
	stopProgress()
	res := col.result(&r.cfg)
	res.Calls.Scheduled = res.Calls.Started
	res.CPU = cpu.stop()
	return StepResult{Level: level, Result: res, Held: res.OK()}
}
