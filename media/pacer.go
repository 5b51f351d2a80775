package media

import (
	"context"
	"time"
)

// Clock is the time source of a Pacer. The zero-cost default is the system
// clock; tests inject a fake one (mediatest.FakeClock) with WithClock.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// Sleep blocks for d, or until ctx is done, and then returns ctx.Err().
	// It returns nil at once for d <= 0 if ctx is not done.
	Sleep(ctx context.Context, d time.Duration) error
}

// PacerOption configures a Pacer.
type PacerOption func(*Pacer)

// WithClock makes the pacer use c instead of the system clock.
func WithClock(c Clock) PacerOption { return func(p *Pacer) { p.clock = c } }

// WithMaxLag sets how far behind its grid a sender may fall before the
// pacer re-anchors instead of letting it catch up. Default
// DefaultPacerMaxLag intervals.
func WithMaxLag(d time.Duration) PacerOption { return func(p *Pacer) { p.maxLag = d } }

// DefaultPacerMaxLag is the default WithMaxLag, in intervals: up to 3
// frames (60 ms at 20 ms) a sender catches up by sending back to back,
// which a receiver's jitter buffer absorbs; beyond that it re-anchors.
const DefaultPacerMaxLag = 3

// Pacer releases a sender once per interval on a fixed grid: the n-th
// Wait after the anchor returns at anchor + n·interval, so the scheduling
// error of one Wait is not carried into the next. The first Wait anchors
// the grid and returns at once. A sender that is more than the maximum lag
// behind the grid when it calls Wait is re-anchored at that moment (Wait
// returns at once, and the grid restarts from now) rather than allowed to
// burst. It is not safe for concurrent use.
type Pacer struct {
	interval  time.Duration
	maxLag    time.Duration
	clock     Clock
	anchor    time.Time
	anchored  bool
	n         int64
	reanchors int
}

// NewPacer returns a pacer for interval (typically FrameDuration).
func NewPacer(interval time.Duration, opts ...PacerOption) *Pacer {
	p := &Pacer{interval: interval, maxLag: DefaultPacerMaxLag * interval}
	for _, o := range opts {
		o(p)
	}
	if p.clock == nil {
		p.clock = &systemClock{}
	}
	return p
}

// Wait blocks until the next slot, or until ctx is done, and then returns
// ctx.Err().
func (p *Pacer) Wait(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := p.clock.Now()
	if !p.anchored {
		p.anchor, p.n, p.anchored = now, 0, true
		return nil
	}
	due := p.anchor.Add(time.Duration(p.n+1) * p.interval)
	if now.Sub(due) > p.maxLag {
		p.anchor, p.n = now, 0
		p.reanchors++
		return nil
	}
	p.n++
	return p.clock.Sleep(ctx, due.Sub(now))
}

// Reset drops the grid: the next Wait anchors a new one and returns at
// once. Call it when a sender pauses on purpose (between utterances).
func (p *Pacer) Reset() { p.anchored = false }

// Reanchors returns how many times the pacer re-anchored because the
// sender fell too far behind.
func (p *Pacer) Reanchors() int { return p.reanchors }

// systemClock is the real clock; it reuses one timer.
type systemClock struct {
	t *time.Timer
}

func (*systemClock) Now() time.Time { return time.Now() }

func (c *systemClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	if c.t == nil {
		c.t = time.NewTimer(d)
	} else {
		c.t.Reset(d) // since Go 1.23 Reset needs no drain
	}
	select {
	case <-ctx.Done():
		c.t.Stop()
		return ctx.Err()
	case <-c.t.C:
		return nil
	}
}
