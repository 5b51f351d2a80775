package media_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/voicegw/voicegw/media"
	"github.com/voicegw/voicegw/media/mediatest"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestPacerGrid(t *testing.T) {
	clk := mediatest.NewFakeClock(t0)
	p := media.NewPacer(20*time.Millisecond, media.WithClock(clk))
	ctx := context.Background()
	work := []time.Duration{0, 3, 19, 7, 0, 12, 1} // ms of work between Waits
	for n := range 100 {
		clk.Advance(work[n%len(work)] * time.Millisecond)
		if err := p.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		if want := t0.Add(time.Duration(n) * 20 * time.Millisecond); !clk.Now().Equal(want) {
			t.Fatalf("Wait %d returned at %v, want %v", n, clk.Now().Sub(t0), want.Sub(t0))
		}
	}
}

func TestPacerFallsBehind(t *testing.T) {
	const iv = 20 * time.Millisecond
	clk := mediatest.NewFakeClock(t0)
	p := media.NewPacer(iv, media.WithClock(clk))
	ctx := context.Background()
	for range 5 { // slots 0..4, at 0..80 ms
		_ = p.Wait(ctx)
	}
	// Fall 50 ms behind slot 5 (due at 100 ms): within 3 intervals, the
	// sender catches up on the same grid with back-to-back slots.
	clk.Advance(iv + 50*time.Millisecond) // now 150 ms
	for _, want := range []time.Duration{150, 150, 150, 160, 180} {
		_ = p.Wait(ctx) // slots 5, 6, 7 (past due), then 8 at 160, 9 at 180
		if got := clk.Now().Sub(t0); got != want*time.Millisecond {
			t.Fatalf("catching up: Wait returned at %v, want %v ms", got, want)
		}
	}
	if p.Reanchors() != 0 {
		t.Fatalf("re-anchored within the allowed lag")
	}
	// Fall 100 ms behind (5 intervals): re-anchor now, then a new grid.
	clk.Advance(iv + 100*time.Millisecond) // now 300 ms; slot 10 was due at 200
	anchor := clk.Now()
	for k := range 4 {
		_ = p.Wait(ctx)
		if want := anchor.Add(time.Duration(k) * iv); !clk.Now().Equal(want) {
			t.Fatalf("after re-anchoring, Wait %d at %v, want %v", k, clk.Now().Sub(t0), want.Sub(t0))
		}
	}
	if p.Reanchors() != 1 {
		t.Errorf("Reanchors() = %d, want 1", p.Reanchors())
	}
	// WithMaxLag widens the allowance.
	p = media.NewPacer(iv, media.WithClock(clk), media.WithMaxLag(10*iv))
	_ = p.Wait(ctx)
	clk.Advance(9 * iv)
	_ = p.Wait(ctx)
	if p.Reanchors() != 0 {
		t.Error("re-anchored within WithMaxLag")
	}
	// Reset: the next Wait anchors anew and returns at once.
	p.Reset()
	clk.Advance(7 * time.Millisecond)
	before := clk.Now()
	_ = p.Wait(ctx)
	_ = p.Wait(ctx)
	if got := clk.Now().Sub(before); got != iv {
		t.Errorf("after Reset the second Wait came %v after the first, want %v", got, iv)
	}
}

func TestPacerSystemClock(t *testing.T) {
	p := media.NewPacer(5 * time.Millisecond)
	ctx := context.Background()
	start := time.Now()
	for range 21 { // the first returns at once: 20 intervals
		if err := p.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if el := time.Since(start); el < 100*time.Millisecond || el > 400*time.Millisecond {
		t.Errorf("21 Waits of 5 ms took %v, want 100 ms (never less)", el)
	}
	// Cancel while waiting.
	p = media.NewPacer(time.Hour)
	_ = p.Wait(ctx)
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := p.Wait(cctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait with an expiring context: %v", err)
	}
	done, cancel2 := context.WithCancel(ctx)
	cancel2()
	if err := p.Wait(done); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait with a cancelled context: %v", err)
	}
}

func TestPacerAllocs(t *testing.T) {
	clk := mediatest.NewFakeClock(t0)
	p := media.NewPacer(20*time.Millisecond, media.WithClock(clk))
	ctx := context.Background()
	if n := testing.AllocsPerRun(100, func() { _ = p.Wait(ctx) }); n != 0 {
		t.Errorf("Wait: %v allocations, want 0", n)
	}
	rp := media.NewPacer(time.Microsecond)
	_ = rp.Wait(ctx)
	_ = rp.Wait(ctx) // creates the timer
	if n := testing.AllocsPerRun(20, func() { _ = rp.Wait(ctx) }); n != 0 {
		t.Errorf("Wait on the system clock: %v allocations, want 0", n)
	}
}
