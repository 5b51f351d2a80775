package rig

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voicegw/voicegw/loadtest"
	"github.com/voicegw/voicegw/media"
)

// fakeCall is a Call whose agent answers each utterance after a fixed delay
// on the call's own clock: Say yields at once, the reply's first loud frame
// is stamped end+delay, then the turn event follows.
type fakeCall struct {
	delay   time.Duration
	outcome string // turn outcome; default "completed"
	silent  bool   // never answer
	noTurn  bool   // answer, but send no turn event

	mu      sync.Mutex
	onAudio func(loadtest.RxFrame)
	events  chan loadtest.ServerMessage
	turn    int
	closed  bool
	wg      sync.WaitGroup
	hangups int
}

func newFakeCall(delay time.Duration) *fakeCall {
	return &fakeCall{delay: delay, events: make(chan loadtest.ServerMessage, 16)}
}

func (f *fakeCall) Say([]int16) <-chan time.Time {
	ch := make(chan time.Time, 1)
	f.mu.Lock()
	f.turn++
	turn := f.turn
	f.mu.Unlock()
	f.wg.Go(func() {
		end := time.Now()
		ch <- end
		if f.silent {
			return
		}
		f.mu.Lock()
		fn := f.onAudio
		f.mu.Unlock()
		fn(loadtest.RxFrame{At: end.Add(f.delay / 2), DBFS: -90, Silent: true})
		fn(loadtest.RxFrame{At: end.Add(f.delay), DBFS: -20})
		if f.noTurn {
			return
		}
		outcome := f.outcome
		if outcome == "" {
			outcome = "completed"
		}
		f.send(loadtest.ServerMessage{Type: "turn", Turn: turn, Outcome: outcome, SpeechEndAt: end.UnixMilli(),
			Timings: map[string]int64{"asr_final": 150, "asr_to_first_token": 300, "first_audio": f.delay.Milliseconds(), "barge_in": 1}})
	})
	return ch
}

func (f *fakeCall) send(m loadtest.ServerMessage) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		f.events <- m
	}
}

func (f *fakeCall) OnAudio(fn func(loadtest.RxFrame)) {
	f.mu.Lock()
	f.onAudio = fn
	f.mu.Unlock()
}

func (f *fakeCall) Events() <-chan loadtest.ServerMessage { return f.events }

func (f *fakeCall) Hangup() error {
	f.mu.Lock()
	f.hangups++
	f.mu.Unlock()
	f.send(loadtest.ServerMessage{Type: "hangup", Reason: "caller"})
	return nil
}

func (f *fakeCall) Close() {
	f.wg.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		f.closed = true
		close(f.events)
	}
}

// noEvents hides a fakeCall's events, as a SIP call has none.
type noEvents struct{ c *fakeCall }

func (n noEvents) Say(p []int16) <-chan time.Time    { return n.c.Say(p) }
func (n noEvents) OnAudio(fn func(loadtest.RxFrame)) { n.c.OnAudio(fn) }
func (n noEvents) Hangup() error                     { return n.c.Hangup() }
func (n noEvents) Close()                            { n.c.Close() }

// numbered gives call n the token "n", so a fake dialer knows which call it
// is placing.
type numbered struct{}

func (numbered) Token(_ context.Context, n int) (string, error) { return strconv.Itoa(n), nil }

// fakeDialer dials fake calls made by mk for the call number.
func fakeDialer(mk func(n int) (Call, error)) Dialer {
	return DialerFunc(func(_ context.Context, token string) (Call, error) {
		n, _ := strconv.Atoi(token)
		return mk(n)
	})
}

// testUtterance is 0.1 s of silence: the fakes do not listen.
var testUtterance = make([]int16, media.PipelineRate/10)

func TestRunCountsAndMeasures(t *testing.T) {
	slos, _ := ParseSLOs("first_audio_p99<=300ms,gw_asr_final_max<=150ms,first_audio_p50<200ms")
	res, err := Run(context.Background(), Config{
		Dialer: fakeDialer(func(int) (Call, error) { return newFakeCall(250 * time.Millisecond), nil }),
		Tokens: numbered{}, Calls: 5, Rate: 1000, Turns: 2, Utterance: testUtterance, SLOs: slos,
	})
	if err != nil {
		t.Fatal(err)
	}
	c := res.Calls
	if c.Scheduled != 5 || c.Started != 5 || c.Completed != 5 || c.Failed+c.Refused+c.CutAtEnd+c.DroppedByRig+c.NotStarted != 0 {
		t.Errorf("calls %+v; want 5 completed", c)
	}
	if res.Turns != (TurnCounts{Started: 10, Completed: 10}) {
		t.Errorf("turns %+v", res.Turns)
	}
	for m, want := range map[string]int64{MetricFirstAudio: 10, MetricSetup: 5, MetricScheduleLag: 5, "gw_asr_final": 10, "gw_asr_to_first_token": 10, "gw_first_audio": 10, "gw_llm_first_token": 0} {
		if got := res.Metrics[m].Count(); got != want {
			t.Errorf("%s count %d, want %d", m, got, want)
		}
	}
	// first_audio is the fake's stamped delay, exactly (within the
	// histogram's precision).
	fa := res.Metrics[MetricFirstAudio]
	if !within(fa.Max(), 250_000) || fa.Min() != 250_000 {
		t.Errorf("first_audio min %d max %d µs, want 250000", fa.Min(), fa.Max())
	}
	wantOK := []bool{true, true, false}
	for i, v := range res.Verdicts {
		if v.OK != wantOK[i] {
			t.Errorf("%s: ok %v, want %v (value %v)", v.SLO.Expr, v.OK, wantOK[i], v.Value)
		}
	}
	if res.OK() {
		t.Error("Result.OK with a missed SLO")
	}
	if !res.CPU.Available || res.CPU.NumCPU < 1 {
		t.Errorf("cpu %+v", res.CPU)
	}
}

func TestRunDropsAtConcurrencyCap(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	res, err := Run(context.Background(), Config{
		Dialer: fakeDialer(func(n int) (Call, error) {
			if n == 1 {
				<-release // hold the only slot until the other arrivals came
			}
			return newFakeCall(10 * time.Millisecond), nil
		}),
		Tokens: numbered{}, Calls: 3, Rate: 1000, Concurrency: 1, Utterance: testUtterance,
		ProgressInterval: time.Millisecond,
		OnProgress: func(p Progress) {
			if p.Dropped == 2 {
				once.Do(func() { close(release) })
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if c := res.Calls; c.Started != 1 || c.Completed != 1 || c.DroppedByRig != 2 || c.NotStarted != 0 {
		t.Errorf("calls %+v; want 1 completed and 2 dropped by the rig", c)
	}
	var buf bytes.Buffer
	res.WriteText(&buf)
	if !strings.Contains(buf.String(), "2 dropped by rig") || !strings.Contains(buf.String(), "raise --concurrency") {
		t.Errorf("report does not flag the dropped arrivals:\n%s", buf.String())
	}
}

func TestRunTimeBound(t *testing.T) {
	// Two arrivals at once whose calls never hear a reply, a third due
	// after the bound: two are cut, one never starts.
	res, err := Run(context.Background(), Config{
		Dialer: fakeDialer(func(int) (Call, error) {
			c := newFakeCall(0)
			c.silent = true
			return c, nil
		}),
		Tokens: numbered{}, Calls: 3, Rate: 0.5, Utterance: testUtterance, Duration: 300 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Rate 0.5: arrivals at 0 s, 2 s and 4 s; only the first is inside.
	if c := res.Calls; c.Started != 1 || c.CutAtEnd != 1 || c.NotStarted != 2 || c.Reasons[ReasonCutAtEnd] != 1 {
		t.Errorf("calls %+v; want 1 cut at end and 2 not started", c)
	}
	if res.Measured() != 0 || res.OK() {
		t.Error("nothing was measured, yet the result is OK")
	}
}

func TestRunFailureReasons(t *testing.T) {
	calls := map[int]func() (Call, error){
		1: func() (Call, error) {
			return nil, &loadtest.SignalingError{Code: "rate_limited", RetryAfter: time.Second}
		},
		2: func() (Call, error) { return nil, &loadtest.SignalingError{Code: "us_person_required"} },
		3: func() (Call, error) { return nil, &loadtest.SignalingError{Code: "bad_request", Message: "no"} },
		4: func() (Call, error) {
			return nil, &DialError{Reason: "sip_503", Refused: true, Err: errors.New("503 Service Unavailable")}
		},
		5: func() (Call, error) { return nil, errors.New("connection refused") },
		6: func() (Call, error) { return nil, context.DeadlineExceeded },
		7: func() (Call, error) { c := newFakeCall(time.Millisecond); c.outcome = "failed"; return c, nil },
		8: func() (Call, error) { c := newFakeCall(0); c.silent = true; return c, nil },
		9: func() (Call, error) { c := newFakeCall(time.Millisecond); c.noTurn = true; return c, nil },
		10: func() (Call, error) {
			c := newFakeCall(0)
			c.silent = true
			c.events <- loadtest.ServerMessage{Type: "error", Code: "backend_error"}
			return c, nil
		},
		11: func() (Call, error) {
			c := newFakeCall(0)
			c.silent = true
			c.events <- loadtest.ServerMessage{Type: "hangup", Reason: "max_duration"}
			return c, nil
		},
		12: func() (Call, error) { c := newFakeCall(0); c.silent = true; c.Close(); return c, nil },
		13: func() (Call, error) { return newFakeCall(time.Millisecond), nil },
	}
	res, err := Run(context.Background(), Config{
		Dialer: fakeDialer(func(n int) (Call, error) { return calls[n]() }),
		Tokens: numbered{}, Calls: len(calls), Rate: 1000, Utterance: testUtterance, TurnTimeout: 100 * time.Millisecond,
		MaxFailedRatio: 0.5,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{
		"rate_limited": 1, "us_person_required": 1, "signaling_bad_request": 1, "sip_503": 1, ReasonDialError: 1,
		ReasonSetupTimeout: 1, "turn_failed": 1, ReasonNoReply: 1, ReasonNoTurnEvent: 1, "error_backend_error": 1,
		"gateway_hangup_max_duration": 1, ReasonSignalClosed: 1,
	}
	c := res.Calls
	if len(c.Reasons) != len(want) {
		t.Errorf("reasons %v\nwant %v", c.Reasons, want)
	}
	for r, n := range want {
		if c.Reasons[r] != n {
			t.Errorf("reason %q: %d, want %d", r, c.Reasons[r], n)
		}
	}
	if c.Refused != 3 || c.Failed != 9 || c.Completed != 1 {
		t.Errorf("calls %+v; want 3 refused, 9 failed, 1 completed", c)
	}
	if c.Examples["dial_error"] != "connection refused" {
		t.Errorf("examples %v", c.Examples)
	}
	if res.FailedOK || res.OK() {
		t.Errorf("failed ratio %v passed its bound 0.5", res.FailedRatio)
	}
}

func TestRunWithoutEvents(t *testing.T) {
	// Without signaling events a turn ends after a second of agent silence;
	// there are no gateway timings.
	res, err := Run(context.Background(), Config{
		Dialer:    fakeDialer(func(int) (Call, error) { return noEvents{newFakeCall(40 * time.Millisecond)}, nil }),
		Transport: "sip", Tokens: numbered{}, Calls: 1, Rate: 1, Utterance: testUtterance,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Calls.Completed != 1 || res.Metrics[MetricFirstAudio].Count() != 1 || res.Metrics["gw_asr_final"].Count() != 0 || res.Transport != "sip" {
		t.Errorf("calls %+v, first_audio %d, gw_asr_final %d", res.Calls, res.Metrics[MetricFirstAudio].Count(), res.Metrics["gw_asr_final"].Count())
	}
}

func TestRunStopsOnTenantMismatch(t *testing.T) {
	_, err := Run(context.Background(), Config{
		Dialer: fakeDialer(func(int) (Call, error) { return newFakeCall(time.Millisecond), nil }),
		Tokens: tokenFunc(func(context.Context, int) (string, error) {
			return "", &TenantMismatchError{Want: "acme", Got: "dev"}
		}),
		Calls: 3, Rate: 1000, Utterance: testUtterance,
	})
	if tm, ok := errors.AsType[*TenantMismatchError](err); !ok || tm.Got != "dev" {
		t.Errorf("err %v; want the tenant mismatch", err)
	}
}

type tokenFunc func(context.Context, int) (string, error)

func (f tokenFunc) Token(ctx context.Context, n int) (string, error) { return f(ctx, n) }

func TestRunBadConfig(t *testing.T) {
	d := fakeDialer(func(int) (Call, error) { return newFakeCall(0), nil })
	for _, cfg := range []Config{{Calls: 1, Rate: 1}, {Dialer: d, Rate: 1}, {Dialer: d, Calls: 1}, {Dialer: d, Calls: 1, Rate: 1, Turns: -1}} {
		if _, err := Run(context.Background(), cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("Run(%+v) = %v, want ErrConfig", cfg, err)
		}
	}
	if _, err := Ramp(context.Background(), RampConfig{Config: Config{Dialer: d}}); !errors.Is(err, ErrConfig) {
		t.Errorf("Ramp without Max = %v, want ErrConfig", err)
	}
}

func TestRampFindsCapacity(t *testing.T) {
	// The fake gateway slows down with load: calls are numbered across the
	// ramp (level 1: call 1; level 2: calls 2-3; level 3: calls 4-6), and
	// answer in 40, 80 and 120 ms. The SLO holds up to level 2.
	slos, _ := ParseSLOs("first_audio_p99<=100ms")
	var steps []StepResult
	var levels []int
	var mu sync.Mutex
	res, err := Ramp(context.Background(), RampConfig{
		Config: Config{
			Dialer: fakeDialer(func(n int) (Call, error) {
				d := 40 * time.Millisecond
				switch {
				case n >= 4:
					d = 120 * time.Millisecond
				case n >= 2:
					d = 80 * time.Millisecond
				}
				return newFakeCall(d), nil
			}),
			Tokens: numbered{}, Utterance: testUtterance, SLOs: slos,
			ProgressInterval: time.Millisecond,
			OnProgress: func(p Progress) {
				mu.Lock()
				levels = append(levels, p.Level)
				mu.Unlock()
			},
		},
		Start: 1, Step: 1, Max: 5, CallsPerStep: 1,
		OnStep: func(s StepResult) { steps = append(steps, s) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Capacity != 2 || len(res.Steps) != 3 || len(steps) != 3 || !strings.Contains(res.Stopped, "did not hold at 3") {
		t.Fatalf("capacity %d after %d steps (%s); want 2 after 3", res.Capacity, len(res.Steps), res.Stopped)
	}
	for i, s := range res.Steps {
		if s.Level != i+1 || s.Calls.Started != i+1 || s.Calls.Completed != i+1 || s.Held != (i < 2) {
			t.Errorf("step %d: level %d, calls %+v, held %v", i, s.Level, s.Calls, s.Held)
		}
	}
	if line := res.Steps[2].String(); !strings.Contains(line, "step   3 concurrent:   3 calls") || !strings.Contains(line, "MISSED ([first_audio_p99<=100ms])") {
		t.Errorf("step line %q", line)
	}
	var buf bytes.Buffer
	res.WriteText(&buf)
	if !strings.Contains(buf.String(), "capacity: 2 concurrent calls") || !strings.Contains(buf.String(), "at 2 concurrent calls:") {
		t.Errorf("ramp report:\n%s", buf.String())
	}
	b, err := json.Marshal(res.Report(map[string]int{"max": 5}))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Capacity int `json:"capacity"`
		Steps    []struct {
			Concurrency int  `json:"concurrency"`
			Held        bool `json:"held"`
		} `json:"steps"`
	}
	if err := json.Unmarshal(b, &doc); err != nil || doc.Capacity != 2 || len(doc.Steps) != 3 || doc.Steps[2].Held {
		t.Errorf("ramp JSON %s (%v)", b, err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, l := range levels {
		if l < 1 || l > 3 {
			t.Errorf("progress at level %d", l)
		}
	}
}

func TestListenerLoudFramesBeforeEndKnown(t *testing.T) {
	var l listener
	end := time.Now()
	heard := l.arm()
	l.frame(loadtest.RxFrame{At: end.Add(-10 * time.Millisecond)}) // agent audio during the utterance
	l.frame(loadtest.RxFrame{At: end.Add(5 * time.Millisecond), Silent: true})
	l.frame(loadtest.RxFrame{At: end.Add(7 * time.Millisecond)}) // heard before Say reported the end
	select {
	case <-heard:
		t.Fatal("first audio found before the end of the utterance was known")
	default:
	}
	l.setEnd(end)
	select {
	case <-heard:
	default:
		t.Fatal("a loud frame after the end was not taken as the first audio")
	}
	if got := l.firstAudio().Sub(end); got != 7*time.Millisecond {
		t.Errorf("first audio %v after the end, want 7ms", got)
	}
	// Later frames do not move it; the next turn starts afresh.
	l.frame(loadtest.RxFrame{At: end.Add(9 * time.Millisecond)})
	if got := l.firstAudio().Sub(end); got != 7*time.Millisecond {
		t.Errorf("first audio moved to %v", got)
	}
	heard = l.arm()
	l.setEnd(end.Add(time.Second))
	l.frame(loadtest.RxFrame{At: end.Add(time.Second)}) // not after the end
	l.frame(loadtest.RxFrame{At: end.Add(time.Second + 20*time.Millisecond)})
	<-heard
	if got := l.firstAudio().Sub(end); got != time.Second+20*time.Millisecond {
		t.Errorf("second turn first audio %v", got)
	}
}

func TestMinter(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Subject string }
		_ = json.NewDecoder(r.Body).Decode(&req)
		switch {
		case r.URL.Path != "/v1/tokens" || r.Method != http.MethodPost:
			http.NotFound(w, r)
		case r.Header.Get("Authorization") != "Bearer key":
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"unauthorized","message":"missing or invalid API key"}`))
		case req.Subject == "loadtest-2":
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(http.StatusTooManyRequests)
		default:
			_, _ = w.Write([]byte(`{"token":"tok-` + req.Subject + `","expires_at":"2030-01-01T00:00:00Z","tenant":"dev"}`))
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	m := &Minter{Gateway: srv.URL + "/", APIKey: "key", Tenant: "dev"}
	if tok, err := m.Token(ctx, 1); err != nil || tok != "tok-loadtest-1" {
		t.Errorf("Token(1) = %q, %v", tok, err)
	}
	_, err := m.Token(ctx, 2)
	if mr, ok := errors.AsType[*MintRefusedError](err); !ok || mr.RetryAfter != 3*time.Second {
		t.Errorf("Token(2) = %v; want a refusal with Retry-After 3s", err)
	}
	if kind, reason := classify(ctx, err); kind != endRefused || reason != "rate_limited" {
		t.Errorf("a 429 classifies as %d %q", kind, reason)
	}
	_, err = (&Minter{Gateway: srv.URL, APIKey: "wrong"}).Token(ctx, 1)
	if me, ok := errors.AsType[*MintError](err); !ok || me.Status != 401 || me.Message != "missing or invalid API key" {
		t.Errorf("wrong key: %v", err)
	}
	if kind, reason := classify(ctx, err); kind != endFailed || reason != "token_http_401" {
		t.Errorf("a 401 classifies as %d %q", kind, reason)
	}
	_, err = (&Minter{Gateway: srv.URL, APIKey: "key", Tenant: "acme"}).Token(ctx, 1)
	if tm, ok := errors.AsType[*TenantMismatchError](err); !ok || tm.Got != "dev" || tm.Want != "acme" {
		t.Errorf("tenant mismatch: %v", err)
	}
	if err := CheckGateway(ctx, srv.URL); err == nil || !strings.Contains(err.Error(), "/healthz answered 404") {
		t.Errorf("CheckGateway on a server without /healthz: %v", err)
	}
}

func TestUtterances(t *testing.T) {
	pcm := DefaultUtterance()
	if d := time.Duration(len(pcm)) * time.Second / media.PipelineRate; d < 4*time.Second || d > 5*time.Second {
		t.Errorf("built-in utterance lasts %v, want about 4.4 s", d)
	}
	if media.DBFS(pcm) < -30 {
		t.Errorf("built-in utterance is at %.1f dBFS; want speech", media.DBFS(pcm))
	}
	for _, rate := range []int{8000, 16000, 48000} {
		rs, err := media.NewResampler(media.PipelineRate, rate)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := media.WriteWAV(&buf, rate, rs.Process(nil, pcm)); err != nil {
			t.Fatal(err)
		}
		got, err := ReadUtterance(&buf)
		if err != nil {
			t.Fatalf("%d Hz: %v", rate, err)
		}
		// Same length within 20 ms (the resamplers' delay and flush).
		if diff := len(got) - len(pcm); diff < -320 || diff > 320 {
			t.Errorf("%d Hz: %d samples at 16 kHz, want about %d", rate, len(got), len(pcm))
		}
	}
	if _, err := ReadUtterance(strings.NewReader("RIFF")); err == nil {
		t.Error("a truncated WAV was accepted")
	}
	if _, err := LoadUtterance("testdata/missing.wav"); err == nil || !strings.Contains(err.Error(), "missing.wav") {
		t.Errorf("missing file: %v", err)
	}
}
