package media

import (
	"context"
	"time"
)

// Pacer releases a sender once per interval on a fixed grid (start +
// n·interval), so timing errors do not accumulate. A sender that falls more
// than maxBehind intervals behind is re-anchored to now rather than allowed
// to burst to catch up.
type Pacer struct {
	interval time.Duration
	start    time.Time
	n        int64
	now      func() time.Time
	sleep    func(context.Context, time.Duration) error
}

const maxBehind = 5

// NewPacer returns a pacer for interval.
func NewPacer(interval time.Duration) *Pacer {
	return &Pacer{interval: interval, now: time.Now, sleep: sleepCtx}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Wait blocks until the next slot. The first call returns at once and
// anchors the grid.
func (p *Pacer) Wait(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := p.now()
	if p.start.IsZero() {
		p.start, p.n = now, 0
		return nil
	}
	p.n++
	due := p.start.Add(time.Duration(p.n) * p.interval)
	if now.Sub(due) > maxBehind*p.interval {
		p.start, p.n = now, 0
		return nil
	}
	return p.sleep(ctx, due.Sub(now))
}

// Reset re-anchors the grid at the next Wait.
func (p *Pacer) Reset() { p.start = time.Time{} }
