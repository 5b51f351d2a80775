package rig

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/voicegw/voicegw/loadtest"
)

// How a started call ended.
const (
	endCompleted = iota
	endFailed
	endRefused
	endCut
)

// Reasons that are not the gateway's own codes.
const (
	ReasonCutAtEnd     = "cut_at_end"     // the run's time bound ended the call
	ReasonNoReply      = "no_reply"       // no agent audio within the turn timeout
	ReasonNoTurnEvent  = "no_turn_event"  // audio heard, but no turn event in time
	ReasonNoAudioHeard = "no_audio_heard" // the gateway ended the turn, the caller heard nothing
	ReasonSetupTimeout = "setup_timeout"  // dial → connected took longer than the setup timeout
	ReasonDialError    = "dial_error"     // any other dial failure
	ReasonSayStalled   = "say_stalled"    // the caller could not send its utterance
	ReasonSignalClosed = "signaling_closed"
	// ReasonReplyUnfinished: on a transport without turn events, the agent
	// never fell silent within the turn timeout.
	ReasonReplyUnfinished = "reply_unfinished"
)

// refusedCodes are the gateway's refusals: the call was turned away on
// purpose (limits, policy, draining), which is counted apart from failures.
var refusedCodes = map[string]bool{"rate_limited": true, "us_person_required": true, "unavailable": true, "draining": true}

// classify sorts a token or dial error into an end kind and a reason.
func classify(runCtx context.Context, err error) (int, string) {
	if se, ok := errors.AsType[*loadtest.SignalingError](err); ok {
		if refusedCodes[se.Code] {
			return endRefused, se.Code
		}
		return endFailed, "signaling_" + se.Code
	}
	if de, ok := errors.AsType[*DialError](err); ok {
		if de.Refused {
			return endRefused, de.Reason
		}
		return endFailed, de.Reason
	}
	if _, ok := errors.AsType[*MintRefusedError](err); ok {
		return endRefused, "rate_limited"
	}
	if me, ok := errors.AsType[*MintError](err); ok {
		return endFailed, "token_http_" + strconv.Itoa(me.Status)
	}
	if runCtx.Err() != nil {
		return endCut, ReasonCutAtEnd
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return endFailed, ReasonSetupTimeout
	}
	return endFailed, ReasonDialError
}

// listener watches a call's received audio for the first non-silent frame
// after the end of the caller's utterance. The end is only known once Say's
// channel yields, which can be a frame or two after frames started arriving,
// so loud frames heard before the end is known are kept and checked then.
type listener struct {
	mu       sync.Mutex
	armed    chan struct{} // closed when first is found; nil when not armed
	end      time.Time
	pending  []time.Time
	first    time.Time
	lastLoud time.Time
}

// frame is the OnAudio callback.
func (l *listener) frame(f loadtest.RxFrame) {
	if f.Silent {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lastLoud = f.At
	switch {
	case l.armed == nil || !l.first.IsZero():
	case l.end.IsZero():
		if len(l.pending) < 4096 {
			l.pending = append(l.pending, f.At)
		}
	case f.At.After(l.end):
		l.first = f.At
		close(l.armed)
	}
}

// arm starts a turn; the channel is closed when the first agent audio after
// the end of the utterance arrives.
func (l *listener) arm() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.armed = make(chan struct{})
	l.end, l.first, l.pending = time.Time{}, time.Time{}, l.pending[:0]
	return l.armed
}

// setEnd records the end of the utterance.
func (l *listener) setEnd(end time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.end = end
	for _, at := range l.pending {
		if at.After(end) {
			l.first = at
			close(l.armed)
			break
		}
	}
	l.pending = l.pending[:0]
}

func (l *listener) firstAudio() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.first
}

// quietFor reports whether no agent audio has been heard for d.
func (l *listener) quietFor(d time.Duration, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return now.Sub(l.lastLoud) >= d
}

// quietEnd is how long the agent must be silent, on a transport without
// turn events, before its reply counts as finished.
const quietEnd = time.Second

// call places call n and drives it to the end, recording into col. It
// returns an error only when the whole run must stop.
func (r *runner) call(ctx context.Context, n int, col *collector) error {
	setupCtx, cancel := context.WithTimeout(ctx, r.cfg.SetupTimeout)
	defer cancel()
	token, err := r.cfg.Tokens.Token(setupCtx, n)
	if err != nil {
		if tm, ok := errors.AsType[*TenantMismatchError](err); ok {
			col.finish(endFailed, "tenant_mismatch", err)
			return tm
		}
		kind, reason := classify(ctx, err)
		col.finish(kind, reason, err)
		return nil
	}
	t0 := time.Now()
	c, err := r.cfg.Dialer.Dial(setupCtx, token)
	if err != nil {
		kind, reason := classify(ctx, err)
		col.finish(kind, reason, err)
		return nil
	}
	col.record(MetricSetup, time.Since(t0))
	defer c.Close()

	l := &listener{}
	c.OnAudio(l.frame)
	var events <-chan loadtest.ServerMessage
	if es, ok := c.(EventSource); ok {
		events = es.Events()
	}
	for k := 0; k < r.cfg.Turns; k++ {
		col.turnStarted()
		reason := r.turn(ctx, c, &events, l, col)
		if reason == ReasonCutAtEnd {
			_ = c.Hangup()
			col.finish(endCut, reason, nil)
			return nil
		}
		if reason != "" {
			_ = c.Hangup()
			col.finish(endFailed, reason, nil)
			return nil
		}
		col.turnCompleted()
	}
	_ = c.Hangup()
	waitHangup(ctx, events)
	col.finish(endCompleted, "", nil)
	return nil
}

// waitHangup gives the gateway a moment to confirm the hangup, so calls end
// cleanly on both sides before Close.
func waitHangup(ctx context.Context, events <-chan loadtest.ServerMessage) {
	if events == nil {
		return
	}
	t := time.NewTimer(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case m, ok := <-events:
			if !ok || m.Type == "hangup" {
				return
			}
		case <-t.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// turn speaks the utterance once and waits for the agent's reply. It returns
// "" when the turn completed, else the reason it failed (ReasonCutAtEnd when
// the run ended). *events is set to nil if signaling closes.
func (r *runner) turn(ctx context.Context, c Call, events *<-chan loadtest.ServerMessage, l *listener, col *collector) string {
	heard := l.arm()
	said := c.Say(r.cfg.Utterance)
	// Until the utterance has been sent, allow its length plus a margin.
	limit := time.NewTimer(r.utterance + 5*time.Second)
	defer limit.Stop()
	var ended <-chan struct{}
	e, canEnd := c.(Ender)
	if canEnd {
		ended = e.Done()
	}
	var tick <-chan time.Time
	if *events == nil {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		tick = t.C
	}
	var (
		end     time.Time
		turnMsg *loadtest.ServerMessage
		grace   <-chan time.Time
		lastErr string
	)
	// spoke notes the end of the utterance; the turn timeout runs from it.
	spoke := func(t time.Time) {
		end, said = t, nil
		l.setEnd(end)
		limit.Reset(r.cfg.TurnTimeout)
	}
	// done records the turn's measurements and returns its verdict.
	done := func() string {
		if turnMsg != nil && turnMsg.Outcome != "completed" {
			return "turn_" + turnMsg.Outcome
		}
		col.record(MetricFirstAudio, l.firstAudio().Sub(end))
		if turnMsg != nil {
			for _, s := range GatewayStages() {
				if v, ok := turnMsg.Timings[s]; ok {
					col.record("gw_"+s, time.Duration(v)*time.Millisecond)
				}
			}
		}
		return ""
	}
	for {
		select {
		case <-ctx.Done():
			return ReasonCutAtEnd
		case t := <-said:
			spoke(t)
		case <-heard:
			heard = nil
			if turnMsg != nil {
				return done()
			}
		case m, ok := <-*events:
			if !ok {
				*events = nil
				return ReasonSignalClosed
			}
			switch m.Type {
			case "error":
				lastErr = m.Code
			case "hangup":
				if m.Reason == "" {
					return "gateway_hangup"
				}
				return "gateway_hangup_" + m.Reason
			case "turn":
				// The end of the utterance may be ready too: take it first.
				if said != nil {
					select {
					case t := <-said:
						spoke(t)
					default:
					}
				}
				// A turn before our utterance ended is the greeting or a
				// piece of the utterance the gateway cut at a pause.
				if said != nil || m.SpeechEndAt == 0 || turnMsg != nil {
					continue
				}
				turnMsg = &m
				if heard == nil || m.Outcome != "completed" {
					return done()
				}
				// The reply's frames and the turn event travel apart; give
				// the audio a moment to arrive.
				grace = time.After(time.Second)
			}
		case <-ended:
			if r := e.HangupReason(); r != "" {
				return "gateway_hangup_" + r
			}
			return "gateway_hangup"
		case <-grace:
			return ReasonNoAudioHeard
		case now := <-tick:
			if said == nil && heard == nil && l.quietFor(quietEnd, now) {
				return done()
			}
		case <-limit.C:
			switch {
			case said != nil:
				return ReasonSayStalled
			case heard != nil && lastErr != "":
				return "error_" + lastErr
			case heard != nil:
				return ReasonNoReply
			case tick != nil:
				return ReasonReplyUnfinished
			}
			return ReasonNoTurnEvent
		}
	}
}
