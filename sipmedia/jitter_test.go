package sipmedia

import (
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/voicegw/voicegw/media"
	"github.com/voicegw/voicegw/media/mediatest"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func popAll(jb *jitterBuffer, now time.Time) (seqs []int, st []jbStatus) {
	for {
		p, s := jb.pop(now)
		if s == jbEmpty {
			return
		}
		seqs = append(seqs, int(p.ext))
		st = append(st, s)
	}
}

func TestJitterReorderDuplicateLoss(t *testing.T) {
	jb := newJitterBuffer(8000, 20*time.Millisecond, 200*time.Millisecond)
	for _, seq := range []uint16{10, 12, 11, 11, 13, 15, 16} {
		jb.push(1, seq, uint32(seq)*160, []byte{0xff}, false, t0)
	}
	if jb.dups != 1 {
		t.Errorf("dups %d", jb.dups)
	}
	if _, st := jb.pop(t0.Add(10 * time.Millisecond)); st != jbEmpty {
		t.Fatalf("played before the target delay")
	}
	seqs, st := popAll(jb, t0.Add(time.Second))
	want := []int{10, 11, 12, 13, 0, 15, 16}
	if len(seqs) != len(want) {
		t.Fatalf("got %v %v", seqs, st)
	}
	for i := range want {
		if (want[i] == 0) != (st[i] == jbLost) || (want[i] != 0 && seqs[i] != want[i]) {
			t.Errorf("pop %d: seq %d status %d, want %d", i, seqs[i], st[i], want[i])
		}
	}
	if jb.lost() != 1 {
		t.Errorf("lost %d", jb.lost())
	}
	// A packet whose time has passed is late.
	jb.push(1, 14, 14*160, []byte{0xff}, false, t0.Add(time.Second))
	if jb.late != 1 {
		t.Errorf("late %d", jb.late)
	}
}

func TestJitterWraparoundAndSSRC(t *testing.T) {
	jb := newJitterBuffer(8000, 20*time.Millisecond, 200*time.Millisecond)
	seqs := []uint16{65533, 65535, 65534, 0, 1, 2}
	for i, seq := range seqs {
		if reset, kept := jb.push(7, seq, uint32(i)*160, []byte{1}, false, t0); !kept || (reset != (i == 0)) {
			t.Fatalf("push %d: reset %v kept %v", seq, reset, kept)
		}
	}
	got, st := popAll(jb, t0.Add(time.Second))
	want := []int{65533, 65534, 65535, 65536, 65537, 65538}
	for i := range want {
		if i >= len(got) || got[i] != want[i] || st[i] != jbPacket {
			t.Fatalf("got %v %v, want %v", got, st, want)
		}
	}
	if jb.lost() != 0 {
		t.Errorf("lost %d", jb.lost())
	}
	// New SSRC: reset, buffer flushed, counting restarts.
	jb.push(7, 3, 0, []byte{1}, false, t0.Add(time.Second))
	if reset, _ := jb.push(8, 500, 9999, []byte{1}, false, t0.Add(time.Second)); !reset || len(jb.pkts) != 1 || jb.playing {
		t.Errorf("SSRC change: reset %v, %d packets, playing %v", reset, len(jb.pkts), jb.playing)
	}
	// Sequence restart within an SSRC: a jump is dropped once, accepted
	// when the next packet follows it.
	if _, kept := jb.push(8, 20000, 0, []byte{1}, false, t0.Add(time.Second)); kept {
		t.Error("a wild jump was kept")
	}
	if reset, kept := jb.push(8, 20001, 160, []byte{1}, false, t0.Add(time.Second)); !reset || !kept {
		t.Errorf("restart: reset %v kept %v", reset, kept)
	}
}

func TestJitterAdaptiveDelay(t *testing.T) {
	jb := newJitterBuffer(8000, 20*time.Millisecond, 200*time.Millisecond)
	rng := rand.New(rand.NewPCG(1, 2))
	var seq uint16
	now := t0
	nextPkt := t0
	var sched []time.Time // arrival times of packets in flight
	run := func(d time.Duration, jitter time.Duration) {
		end := now.Add(d)
		for now.Before(end) {
			// packets are sent every 20 ms and arrive with a random delay
			for !nextPkt.After(now) {
				delay := time.Duration(0)
				if jitter > 0 {
					delay = time.Duration(rng.Int64N(int64(jitter)))
				}
				sched = append(sched, nextPkt.Add(delay))
				nextPkt = nextPkt.Add(20 * time.Millisecond)
			}
			// deliver in arrival order those due by now (a real network
			// may reorder: arrival order is what counts)
			for i := 0; i < len(sched); {
				if !sched[i].After(now) {
					jb.push(1, seq, uint32(seq)*160, []byte{0xff}, false, sched[i])
					seq++
					sched = append(sched[:i], sched[i+1:]...)
					continue
				}
				i++
			}
			if jb.tick() {
				jb.pop(now)
			}
			jb.pop(now)
			now = now.Add(20 * time.Millisecond)
		}
	}
	run(2*time.Second, 0)
	if d := jb.target(); d > 25*time.Millisecond {
		t.Fatalf("no jitter, target %v", d)
	}
	run(5*time.Second, 80*time.Millisecond)
	grown := jb.target()
	if grown < 60*time.Millisecond {
		t.Errorf("with 80 ms of jitter the target is %v (J=%v)", grown, jb.jitterDuration())
	}
	depthHigh := jb.buffered()
	run(20*time.Second, 0)
	if d := jb.target(); d > 30*time.Millisecond {
		t.Errorf("target did not shrink back: %v", d)
	}
	if jb.shrinks == 0 && depthHigh > 40*time.Millisecond {
		t.Errorf("buffer never shrank from %v", depthHigh)
	}
	if b := jb.buffered(); b > jb.target()+40*time.Millisecond {
		t.Errorf("buffer depth %v stayed above target %v", b, jb.target())
	}
	t.Logf("target %v after jitter, depth then %v, shrinks %d, underruns %d", grown, depthHigh, jb.shrinks, jb.underruns)
}

// rxHarness is a Stream without sockets or goroutines, to drive the
// receive path with a fake clock.
func rxHarness(t testing.TB, codec string) *Stream {
	t.Helper()
	dec, err := newDecoder(codec)
	if err != nil {
		t.Fatal(err)
	}
	rate := 8000
	if codec == CodecOpus {
		rate = 48000
	}
	s := &Stream{log: slog.New(slog.DiscardHandler), clock: mediatest.NewFakeClock(t0), dec: dec,
		plan: &Plan{Codec: codec, PayloadType: 0, ClockRate: rate, DTMFPayloadType: 101, DTMFClockRate: 8000, Direction: SendRecv},
		jb:   newJitterBuffer(rate, 20*time.Millisecond, 200*time.Millisecond), rxBuf: make([]byte, 1500),
		dtmf: make(chan Digit, 16)}
	t.Cleanup(dec.close)
	return s
}

func mulawTone(n int, phase int) []byte {
	pcm := mediatest.Sine(8000, 1000, 0.5, n+phase)[phase:]
	b := make([]byte, n)
	media.EncodeMulaw(b, pcm)
	return b
}

func TestConcealmentRepeatAndFade(t *testing.T) {
	s := rxHarness(t, CodecPCMU)
	// 10 packets on time, the 6th lost; then nothing (the sender stopped).
	var frames [][]int16
	for i := range 16 {
		now := t0.Add(time.Duration(i) * 20 * time.Millisecond)
		if i < 10 && i != 5 {
			s.jb.push(1, uint16(i), uint32(i*160), mulawTone(160, i*160), false, now)
		}
		s.mu.Lock()
		if f := s.nextFrameLocked(now); f != nil {
			frames = append(frames, f)
		}
		s.mu.Unlock()
	}
	if len(frames) != 15 { // playout starts one tick after the first packet
		t.Fatalf("%d frames", len(frames))
	}
	lvl := func(i int) float64 { return mediatest.ToneDB(frames[i], 16000, 1000) }
	for i := range frames {
		t.Logf("frame %d: %.1f dB", i, lvl(i))
	}
	if l := lvl(3); l < -7.5 || l > -5 {
		t.Errorf("decoded tone at %.1f dB, want -6", l)
	}
	// The lost frame (index 5) repeats the tone, slightly faded.
	if l := lvl(5); l < -12 || l > -5 {
		t.Errorf("concealed frame at %.1f dB", l)
	}
	if l := lvl(6); l < -7.5 {
		t.Errorf("tone after the loss at %.1f dB", l)
	}
	// After the last packet (index 9): a fade then silence within 60 ms.
	if l := lvl(10); l > -6.5 || l < -30 {
		t.Errorf("first underrun frame at %.1f dB, want a fading tone", l)
	}
	for i := 13; i < 15; i++ {
		if media.RMS(frames[i]) != 0 {
			t.Errorf("frame %d not silent after 60 ms of concealment", i)
		}
	}
	if c := s.concealed.Load(); c != 4 { // the lost packet + 3 fading frames
		t.Errorf("concealed %d, want 4", c)
	}
	if s.jb.lost() != 1 {
		t.Errorf("lost %d", s.jb.lost())
	}
}
