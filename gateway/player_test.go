package gateway

import (
	"context"
	"sync"
	"testing"
	"time"
)

type recordingWriter struct {
	mu     sync.Mutex
	frames [][]int16
	wrote  chan struct{}
}

func (w *recordingWriter) WriteFrame(pcm []int16) error {
	w.mu.Lock()
	w.frames = append(w.frames, pcm)
	w.mu.Unlock()
	select {
	case w.wrote <- struct{}{}:
	default:
	}
	return nil
}

func frameOf(v int16) []int16 {
	f := make([]int16, 320)
	for i := range f {
		f[i] = v
	}
	return f
}

// TestPlayerMarksAndFlush checks the order of frames and marks, and that a
// flush drops queued audio and reports exactly what was heard.
func TestPlayerMarksAndFlush(t *testing.T) {
	var mu sync.Mutex
	var events []playerEvent
	p := newPlayer(nil, func(ev playerEvent) {
		mu.Lock()
		events = append(events, ev)
		mu.Unlock()
	})
	p.enqueue(
		playItem{mark: playMark{kind: markSentenceStart, turn: 1, sentence: 0, text: "One."}},
		playItem{frame: frameOf(1)},
		playItem{frame: frameOf(2)},
		playItem{mark: playMark{kind: markSentenceEnd, turn: 1, sentence: 0, text: "One."}},
		playItem{mark: playMark{kind: markSentenceStart, turn: 1, sentence: 1, text: "Two."}},
		playItem{frame: frameOf(3)},
		playItem{frame: frameOf(4)},
		playItem{mark: playMark{kind: markSentenceEnd, turn: 1, sentence: 1, text: "Two."}},
	)
	if !p.busy() {
		t.Fatal("busy() = false with audio queued")
	}
	// Send three frames by hand: the whole first sentence, one of the second.
	for i := 1; i <= 3; i++ {
		f, _ := p.next()
		if f == nil || f[0] != int16(i) {
			t.Fatalf("frame %d: got %v", i, f)
		}
	}
	prog := p.flush()
	if prog.turn != 1 || len(prog.played) != 1 || prog.played[0] != "One." || prog.partial != "Two." || !prog.hasAudio {
		t.Errorf("progress = %+v, want one sentence heard and the second cut off", prog)
	}
	if p.busy() {
		t.Error("busy() after flush")
	}
	if f, marks := p.next(); f != nil || len(marks) != 0 {
		t.Errorf("after flush next() = %v, %v; want nothing", f, marks)
	}
}

// TestPlayerSendsSilenceAndReportsMarks runs the paced loop: with nothing
// queued it sends silence; queued audio goes out in order with its marks
// reported.
func TestPlayerSendsSilenceAndReportsMarks(t *testing.T) {
	w := &recordingWriter{wrote: make(chan struct{}, 1)}
	evs := make(chan playerEvent, 16)
	p := newPlayer(w, func(ev playerEvent) { evs <- ev })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		p.run(ctx)
		close(done)
	}()
	<-w.wrote // silence
	p.enqueue(
		playItem{mark: playMark{kind: markSentenceStart, turn: 7, text: "Hi."}},
		playItem{frame: frameOf(9)},
		playItem{mark: playMark{kind: markSentenceEnd, turn: 7, text: "Hi."}},
		playItem{mark: playMark{kind: markTurnEnd, turn: 7}},
	)
	want := []markKind{markSentenceStart, markSentenceEnd, markTurnEnd}
	for _, k := range want {
		select {
		case ev := <-evs:
			if ev.mark.kind != k || ev.mark.turn != 7 {
				t.Fatalf("event %+v, want kind %d", ev, k)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no event of kind %d", k)
		}
	}
	cancel()
	<-done
	w.mu.Lock()
	defer w.mu.Unlock()
	var sawSilence, sawAudio bool
	for _, f := range w.frames {
		if f[0] == 0 {
			sawSilence = true
		}
		if f[0] == 9 {
			sawAudio = true
		}
		if len(f) != 320 {
			t.Fatalf("frame of %d samples, want 320", len(f))
		}
	}
	if !sawSilence || !sawAudio {
		t.Errorf("silence=%v audio=%v; want both", sawSilence, sawAudio)
	}
}
