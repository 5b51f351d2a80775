package rig

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/voicegw/voicegw/media"
)

// Config configures a run (Run) or the calls of a ramp (Ramp). Each field
// documents its default.
type Config struct {
	// Dialer places the calls. Required.
	Dialer Dialer
	// Tokens gives each call its token. Default StaticToken("").
	Tokens TokenSource
	// Transport names the transport in reports. Default "webrtc".
	Transport string
	// Calls is the number of arrivals Run schedules. Required for Run.
	Calls int
	// Rate is Run's arrival rate in calls per second: arrival i (from 0) is
	// started at start + i/Rate. Required for Run.
	Rate float64
	// Concurrency caps the calls Run has up at once; an arrival that finds
	// the cap reached is dropped (DroppedByRig), never delayed. Default 0:
	// no cap.
	Concurrency int
	// Turns is the number of utterances each call speaks, each after the
	// reply to the previous one has finished. Default 1.
	Turns int
	// Utterance is what the caller says (mono PCM16 at 16 kHz). Default
	// DefaultUtterance.
	Utterance []int16
	// Duration bounds the whole run; calls still up when it ends are hung
	// up and counted as cut_at_end. Default: Run's schedule (Calls/Rate)
	// plus one call's worst case (setup timeout + Turns × (utterance + turn
	// timeout)) plus 10 s; for Ramp, no bound beyond the steps.
	Duration time.Duration
	// SetupTimeout bounds token + dial + media connected. Default 15 s.
	SetupTimeout time.Duration
	// TurnTimeout bounds each turn from the end of the utterance to the end
	// of the reply. Default 20 s.
	TurnTimeout time.Duration
	// SLOs are evaluated against the run's measurements (each ramp step's).
	SLOs []SLO
	// MaxFailedRatio is the share of started calls that may fail or be
	// refused while the run (or a ramp step) still holds. Default 0: none.
	MaxFailedRatio float64
	// OnProgress, when set, is called every ProgressInterval with the
	// counts so far (from the run's own goroutine).
	OnProgress func(Progress)
	// ProgressInterval; default 1 s.
	ProgressInterval time.Duration
}

// ErrConfig is wrapped by configuration errors.
var ErrConfig = errors.New("rig: bad config")

func (c *Config) defaults(forRun bool) error {
	if c.Dialer == nil {
		return fmt.Errorf("%w: no dialer", ErrConfig)
	}
	if forRun && c.Calls <= 0 {
		return fmt.Errorf("%w: calls must be positive", ErrConfig)
	}
	if forRun && !(c.Rate > 0) {
		return fmt.Errorf("%w: rate must be positive", ErrConfig)
	}
	if c.Concurrency < 0 || c.Turns < 0 || c.Duration < 0 || c.SetupTimeout < 0 || c.TurnTimeout < 0 || c.MaxFailedRatio < 0 {
		return fmt.Errorf("%w: negative concurrency, turns, duration, timeout or failed ratio", ErrConfig)
	}
	if c.Tokens == nil {
		c.Tokens = StaticToken("")
	}
	if c.Transport == "" {
		c.Transport = "webrtc"
	}
	if c.Turns == 0 {
		c.Turns = 1
	}
	if len(c.Utterance) == 0 {
		c.Utterance = DefaultUtterance()
	}
	if c.SetupTimeout == 0 {
		c.SetupTimeout = 15 * time.Second
	}
	if c.TurnTimeout == 0 {
		c.TurnTimeout = 20 * time.Second
	}
	if c.ProgressInterval == 0 {
		c.ProgressInterval = time.Second
	}
	if forRun && c.Duration == 0 {
		c.Duration = time.Duration(float64(c.Calls)/c.Rate*float64(time.Second)) + c.callBound() + 10*time.Second
	}
	return nil
}

// callBound is the longest a call can take.
func (c *Config) callBound() time.Duration {
	return c.SetupTimeout + time.Duration(c.Turns)*(c.utteranceLen()+c.TurnTimeout+5*time.Second)
}

func (c *Config) utteranceLen() time.Duration {
	return time.Duration(len(c.Utterance)) * time.Second / media.PipelineRate
}

// runner places calls with one configuration.
type runner struct {
	cfg       Config
	utterance time.Duration
}

// CallCounts counts calls by how they ended. Every started call ends
// exactly once: Started = Completed + Failed + Refused + CutAtEnd, and
// Scheduled = Started + DroppedByRig + NotStarted.
type CallCounts struct {
	Scheduled    int `json:"scheduled"`
	Started      int `json:"started"`
	Completed    int `json:"completed"`
	Failed       int `json:"failed"`
	Refused      int `json:"refused"`
	CutAtEnd     int `json:"cut_at_end"`
	DroppedByRig int `json:"dropped_by_rig"`
	NotStarted   int `json:"not_started"`
	// Reasons counts failed, refused and cut calls by reason.
	Reasons map[string]int `json:"reasons"`
	// Examples holds the first error message seen for each reason.
	Examples map[string]string `json:"examples,omitempty"`
}

// FailedRatio is (Failed + Refused) / Started, 0 with no calls started.
func (c CallCounts) FailedRatio() float64 {
	if c.Started == 0 {
		return 0
	}
	return float64(c.Failed+c.Refused) / float64(c.Started)
}

// TurnCounts counts turns.
type TurnCounts struct {
	Started   int `json:"started"`
	Completed int `json:"completed"`
}

// collector gathers one run's (or one ramp step's) measurements from
// concurrent calls.
type collector struct {
	mu     sync.Mutex
	start  time.Time
	hists  map[string]*Histogram
	calls  CallCounts
	turns  TurnCounts
	active int
}

func newCollector() *collector {
	c := &collector{start: time.Now(), hists: map[string]*Histogram{}, calls: CallCounts{Reasons: map[string]int{}, Examples: map[string]string{}}}
	for _, m := range Metrics() {
		c.hists[m] = NewHistogram()
	}
	return c
}

func (c *collector) record(metric string, d time.Duration) {
	c.mu.Lock()
	c.hists[metric].RecordDuration(d)
	c.mu.Unlock()
}

func (c *collector) started() {
	c.mu.Lock()
	c.calls.Started++
	c.active++
	c.mu.Unlock()
}

func (c *collector) dropped() {
	c.mu.Lock()
	c.calls.DroppedByRig++
	c.mu.Unlock()
}

func (c *collector) turnStarted() {
	c.mu.Lock()
	c.turns.Started++
	c.mu.Unlock()
}

func (c *collector) turnCompleted() {
	c.mu.Lock()
	c.turns.Completed++
	c.mu.Unlock()
}

// finish counts a started call's end.
func (c *collector) finish(kind int, reason string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.active--
	switch kind {
	case endCompleted:
		c.calls.Completed++
		return
	case endFailed:
		c.calls.Failed++
	case endRefused:
		c.calls.Refused++
	case endCut:
		c.calls.CutAtEnd++
	}
	c.calls.Reasons[reason]++
	if _, ok := c.calls.Examples[reason]; !ok && err != nil {
		c.calls.Examples[reason] = err.Error()
	}
}

// Progress is a run's state at one moment.
type Progress struct {
	// Level is the ramp level (calls in flight); 0 in a run.
	Level                                                int
	Elapsed                                              time.Duration
	Started, Active, Completed, Failed, Refused, Dropped int
	FirstAudioP99                                        time.Duration
	FirstAudioCount                                      int64
}

// String is one progress line.
func (p Progress) String() string {
	s := ""
	if p.Level > 0 {
		s = fmt.Sprintf("level %d: ", p.Level)
	}
	s += fmt.Sprintf("%5.0fs  started %d  active %d  completed %d  failed %d  refused %d",
		p.Elapsed.Seconds(), p.Started, p.Active, p.Completed, p.Failed, p.Refused)
	if p.Dropped > 0 {
		s += fmt.Sprintf("  dropped %d", p.Dropped)
	}
	if p.FirstAudioCount > 0 {
		return s + fmt.Sprintf("  first_audio p99 %s ms (n=%d)", ms(p.FirstAudioP99), p.FirstAudioCount)
	}
	return s + "  first_audio p99 -"
}

func (c *collector) progress() Progress {
	c.mu.Lock()
	defer c.mu.Unlock()
	fa := c.hists[MetricFirstAudio]
	return Progress{
		Elapsed: time.Since(c.start), Started: c.calls.Started, Active: c.active,
		Completed: c.calls.Completed, Failed: c.calls.Failed, Refused: c.calls.Refused, Dropped: c.calls.DroppedByRig,
		FirstAudioP99: Duration(fa.ValueAtQuantile(0.99)), FirstAudioCount: fa.Count(),
	}
}

// Result is what a run (or a ramp step) measured.
type Result struct {
	Transport string
	StartedAt time.Time
	Duration  time.Duration
	Calls     CallCounts
	Turns     TurnCounts
	// Metrics are the histograms by name (see Metrics); every name is
	// present, possibly empty.
	Metrics map[string]*Histogram
	// Verdicts are the SLOs evaluated, in the order given.
	Verdicts []Verdict
	// FailedRatio is Calls.FailedRatio(); FailedOK whether it is within
	// Config.MaxFailedRatio.
	FailedRatio    float64
	MaxFailedRatio float64
	FailedOK       bool
	// CPU is the rig process's CPU use over the run.
	CPU CPUUsage
}

// Measured is the number of turns whose first audio was measured.
func (r *Result) Measured() int64 { return r.Metrics[MetricFirstAudio].Count() }

// OK reports whether every SLO held, the failed ratio is within bounds and
// something was measured.
func (r *Result) OK() bool {
	if r.Measured() == 0 || !r.FailedOK {
		return false
	}
	for _, v := range r.Verdicts {
		if !v.OK {
			return false
		}
	}
	return true
}

// result snapshots the collector and evaluates the SLOs.
func (c *collector) result(cfg *Config) *Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := &Result{Transport: cfg.Transport, StartedAt: c.start, Duration: time.Since(c.start), Calls: c.calls, Turns: c.turns, Metrics: c.hists}
	for _, s := range cfg.SLOs {
		r.Verdicts = append(r.Verdicts, s.Evaluate(c.hists[s.Metric]))
	}
	r.FailedRatio = c.calls.FailedRatio()
	r.MaxFailedRatio = cfg.MaxFailedRatio
	r.FailedOK = r.FailedRatio <= cfg.MaxFailedRatio
	return r
}

// Run places cfg.Calls calls in an open model: arrival i starts at
// start + i/Rate whatever the earlier calls are doing, so a slow gateway
// cannot slow the arrivals down and hide its own latency. Each arrival's
// lateness against its schedule is recorded as schedule_lag. An arrival that
// finds cfg.Concurrency calls up is dropped, not queued, and counted as
// dropped_by_rig. Run returns when every call has ended or cfg.Duration has
// passed (calls still up are hung up). The error is non-nil only for a bad
// config or a condition that stops the run (a *TenantMismatchError).
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.defaults(true); err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, utterance: cfg.utteranceLen()}
	cpu := startCPU()
	col := newCollector()
	col.calls.Scheduled = cfg.Calls

	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()

	stopProgress := r.progressLoop(col, 0)
	var wg sync.WaitGroup
	start := col.start
	sem := 0
	var semMu sync.Mutex
	for i := range cfg.Calls {
		at := start.Add(time.Duration(float64(i) / cfg.Rate * float64(time.Second)))
		if !sleepUntil(ctx, at) {
			break
		}
		col.record(MetricScheduleLag, time.Since(at))
		semMu.Lock()
		if cfg.Concurrency > 0 && sem >= cfg.Concurrency {
			semMu.Unlock()
			col.dropped()
			continue
		}
		sem++
		semMu.Unlock()
		col.started()
		n := i + 1
		wg.Go(func() {
			defer func() {
				semMu.Lock()
				sem--
				semMu.Unlock()
			}()
			if err := r.call(ctx, n, col); err != nil {
				stop(err)
			}
		})
	}
	wg.Wait()
	stopProgress()
	res := col.result(&cfg)
	res.Calls.NotStarted = res.Calls.Scheduled - res.Calls.Started - res.Calls.DroppedByRig
	res.CPU = cpu.stop()
	if err := context.Cause(ctx); err != nil {
		if tm, ok := errors.AsType[*TenantMismatchError](err); ok {
			return res, tm
		}
	}
	return res, nil
}

// progressLoop reports progress every interval until the returned function
// is called (which waits for the loop to exit).
func (r *runner) progressLoop(col *collector, level int) func() {
	if r.cfg.OnProgress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(r.cfg.ProgressInterval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				p := col.progress()
				p.Level = level
				r.cfg.OnProgress(p)
			case <-done:
				return
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// sleepUntil waits until t; false if ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
