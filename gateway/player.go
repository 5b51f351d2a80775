package gateway

import (
	"context"
	"sync"
	"time"

	"github.com/voicegw/voicegw/media"
)

// frameWriter is where the player sends paced audio; implemented by every Leg.
type frameWriter interface {
	WriteFrame(pcm []int16) error
}

type markKind int

const (
	markNone          markKind = iota
	markSentenceStart          // the next frame is the first of a sentence
	markSentenceEnd            // the previous frame was the last of a sentence
	markTurnEnd                // the turn's audio is all sent
)

// playMark is a zero-length item in the play queue that tells the session
// what has actually been heard.
type playMark struct {
	kind     markKind
	turn     int
	sentence int
	text     string
}

type playItem struct {
	frame []int16 // nil for a mark
	mark  playMark
}

// playerEvent reports a mark the player has passed, with the time the
// frame after it (or before it, for ends) was sent.
type playerEvent struct {
	mark playMark
	at   time.Time
}

// spokenProgress is what the caller has heard of one turn.
type spokenProgress struct {
	turn     int
	played   []string // sentences sent in full
	partial  string   // a sentence cut off part way, if any
	hasAudio bool     // whether any of the turn's audio was sent
}

// player paces a session's outbound audio at one 20 ms frame per tick,
// sending silence when it has nothing to say, so the caller's jitter buffer
// sees a steady stream. The session goroutine enqueues and flushes; the
// player goroutine sends. Flush takes effect before the next frame: barge-in
// stops playback within one frame.
type player struct {
	out    frameWriter
	notify func(playerEvent)

	mu       sync.Mutex
	queue    []playItem
	head     int
	progress spokenProgress
	speaking string // sentence currently being sent
	silence  []int16
	writeErr error
}

func newPlayer(out frameWriter, notify func(playerEvent)) *player {
	return &player{
		out:     out,
		notify:  notify,
		silence: make([]int16, media.SamplesPerFrame(media.PipelineRate)),
	}
}

// enqueue appends frames to the queue, bracketed by marks where given.
func (p *player) enqueue(items ...playItem) {
	p.mu.Lock()
	p.queue = append(p.queue, items...)
	p.mu.Unlock()
}

// busy reports whether audio is queued.
func (p *player) busy() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, it := range p.queue[p.head:] {
		if it.frame != nil {
			return true
		}
	}
	return false
}

// flush drops everything queued and returns what the caller heard of the
// turn that was playing.
func (p *player) flush() spokenProgress {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.queue = p.queue[:0]
	p.head = 0
	prog := p.progress
	prog.partial = p.speaking
	prog.played = append([]string(nil), prog.played...)
	p.speaking = ""
	return prog
}

// next pops marks until it finds a frame; it returns the frame (or nil) and
// the marks passed.
func (p *player) next() ([]int16, []playMark) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var marks []playMark
	for p.head < len(p.queue) {
		it := p.queue[p.head]
		p.queue[p.head] = playItem{}
		p.head++
		if it.frame == nil {
			marks = append(marks, it.mark)
			p.applyMarkLocked(it.mark)
			continue
		}
		if p.head == len(p.queue) {
			p.queue, p.head = p.queue[:0], 0
		}
		return it.frame, marks
	}
	p.queue, p.head = p.queue[:0], 0
	return nil, marks
}

func (p *player) applyMarkLocked(m playMark) {
	if m.turn != p.progress.turn {
		p.progress = spokenProgress{turn: m.turn}
	}
	switch m.kind {
	case markSentenceStart:
		p.speaking = m.text
		p.progress.hasAudio = true
	case markSentenceEnd:
		p.progress.played = append(p.progress.played, m.text)
		p.speaking = ""
	}
}

// run sends one frame every 20 ms until ctx ends.
func (p *player) run(ctx context.Context) {
	pacer := media.NewPacer(media.FrameDuration)
	for {
		if err := pacer.Wait(ctx); err != nil {
			return
		}
		frame, marks := p.next()
		// Ends are reported before the next frame goes out.
		var starts []playMark
		for _, m := range marks {
			if m.kind == markSentenceStart {
				starts = append(starts, m)
				continue
			}
			p.notify(playerEvent{mark: m, at: time.Now()})
		}
		if frame == nil {
			frame = p.silence
		}
		if err := p.out.WriteFrame(frame); err != nil {
			p.mu.Lock()
			p.writeErr = err
			p.mu.Unlock()
		}
		if len(starts) > 0 {
			now := time.Now()
			for _, m := range starts {
				p.notify(playerEvent{mark: m, at: now})
			}
		}
	}
}
