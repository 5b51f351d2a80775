package media_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/voicegw/voicegw/media"
	"github.com/voicegw/voicegw/media/mediatest"
)

// frames builds a VAD decision sequence from runs: "v5 s3" is five voiced
// then three silent frames.
func frames(runs ...any) []bool {
	var out []bool
	for i := 0; i+1 < len(runs); i += 2 {
		v := runs[i].(bool)
		for range runs[i+1].(int) {
			out = append(out, v)
		}
	}
	return out
}

type evAt struct {
	frame int
	ev    media.EndpointEvent
}

func pushAll(e *media.Endpointer, d []bool) []evAt {
	var out []evAt
	for i, v := range d {
		if ev := e.Push(v); ev != media.EventNone {
			out = append(out, evAt{i, ev})
		}
	}
	return out
}

func TestEndpointer(t *testing.T) {
	const V, S = true, false
	tests := []struct {
		name    string
		cfg     media.EndpointerConfig
		in      []bool
		want    []evAt
		wantLag int
	}{
		{"click", media.EndpointerConfig{}, frames(S, 10, V, 1, S, 50), nil, 0},
		{"two clicks in the window", media.EndpointerConfig{}, frames(V, 1, S, 1, V, 1, S, 50), nil, 0},
		// 3 voiced frames open a pending turn, but 60 ms < MinSpeech.
		{"short burst dropped", media.EndpointerConfig{}, frames(V, 3, S, 60), nil, 0},
		// 30 voiced frames from frame 0: the start fires when the speech
		// has lasted 200 ms (frame 9), the end 25 frames (500 ms) after the
		// last voiced frame (29): frame 54.
		{"utterance", media.EndpointerConfig{}, frames(V, 30, S, 50),
			[]evAt{{9, media.EventSpeechStart}, {54, media.EventSpeechEnd}}, 9},
		{"onset in the window", media.EndpointerConfig{}, frames(S, 5, V, 1, S, 1, V, 30, S, 30),
			[]evAt{{14, media.EventSpeechStart}, {61, media.EventSpeechEnd}}, 9},
		{"pause shorter than hangover", media.EndpointerConfig{}, frames(V, 20, S, 24, V, 20, S, 30),
			[]evAt{{9, media.EventSpeechStart}, {88, media.EventSpeechEnd}}, 9},
		{"pause of hangover", media.EndpointerConfig{}, frames(V, 20, S, 25, V, 20, S, 30),
			[]evAt{{9, media.EventSpeechStart}, {44, media.EventSpeechEnd}, {54, media.EventSpeechStart}, {89, media.EventSpeechEnd}}, 9},
		{"no minimum", media.EndpointerConfig{MinSpeech: -1}, frames(V, 3, S, 30),
			[]evAt{{2, media.EventSpeechStart}, {27, media.EventSpeechEnd}}, 2},
		{"custom", media.EndpointerConfig{StartFrames: 2, StartWindow: 2, Hangover: 100 * time.Millisecond, MinSpeech: 50 * time.Millisecond},
			frames(V, 1, S, 1, V, 3, S, 10),
			[]evAt{{4, media.EventSpeechStart}, {9, media.EventSpeechEnd}}, 2},
		// A gap inside the pending period is bridged and counts toward
		// MinSpeech (first to last voiced frame).
		{"gappy onset", media.EndpointerConfig{}, frames(V, 3, S, 4, V, 3, S, 30),
			[]evAt{{9, media.EventSpeechStart}, {34, media.EventSpeechEnd}}, 9},
	}
	for _, tc := range tests {
		e := media.NewEndpointer(tc.cfg)
		got := pushAll(e, tc.in)
		if len(got) != len(tc.want) {
			t.Errorf("%s: events %v, want %v", tc.name, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%s: events %v, want %v", tc.name, got, tc.want)
				break
			}
		}
		if e.OnsetLag() != tc.wantLag {
			t.Errorf("%s: OnsetLag %d, want %d", tc.name, e.OnsetLag(), tc.wantLag)
		}
	}
}

func TestEndpointerDefaultsAndReset(t *testing.T) {
	e := media.NewEndpointer(media.EndpointerConfig{StartFrames: 7, StartWindow: 4})
	c := e.Config()
	if c.StartFrames != 7 || c.StartWindow != 7 || c.Hangover != 500*time.Millisecond ||
		c.MinSpeech != 200*time.Millisecond || c.MinLevelDBFS != -55 {
		t.Errorf("Config() = %+v", c)
	}
	e = media.NewEndpointer(media.EndpointerConfig{})
	for range 12 {
		e.Push(true)
	}
	if !e.Speaking() {
		t.Fatal("not speaking after 240 ms of voiced frames")
	}
	e.Reset()
	if e.Speaking() {
		t.Fatal("speaking after Reset")
	}
	// After Reset the window is empty again: two voiced frames do not open.
	if ev := pushAll(e, frames(true, 2, false, 40)); len(ev) != 0 {
		t.Errorf("after Reset: %v", ev)
	}
	if s := media.EventSpeechEnd.String(); s != "speech_end" {
		t.Errorf("String() = %q", s)
	}
}

// TestEndpointerAlternates: whatever the input, starts and ends alternate,
// Speaking agrees with them, and an end comes exactly Hangover after the
// last voiced frame.
func TestEndpointerAlternates(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	e := media.NewEndpointer(media.EndpointerConfig{})
	speaking := false
	lastVoiced := -1
	for i := range 200000 {
		// Bursty input: runs of random length.
		v := rng.IntN(100) < 55
		if i%7 != 0 {
			v = lastVoiced == i-1
			if rng.IntN(6) == 0 {
				v = !v
			}
		}
		if v {
			lastVoiced = i
		}
		switch e.Push(v) {
		case media.EventSpeechStart:
			if speaking {
				t.Fatalf("frame %d: start while speaking", i)
			}
			speaking = true
		case media.EventSpeechEnd:
			if !speaking {
				t.Fatalf("frame %d: end while not speaking", i)
			}
			if i-lastVoiced != 25 {
				t.Fatalf("frame %d: end %d frames after the last voiced one, want 25", i, i-lastVoiced)
			}
			speaking = false
		}
		if e.Speaking() != speaking {
			t.Fatalf("frame %d: Speaking() = %v, events say %v", i, e.Speaking(), speaking)
		}
	}
}

// TestTurnDetectorUtterance: one utterance then 1 s of silence gives
// exactly one start and one end, the end Hangover after the speech.
func TestTurnDetectorUtterance(t *testing.T) {
	speech := mediatest.Speech(t, "I would like to change my appointment to Thursday afternoon, please.", 16000)
	const n = 320
	lastActive := 0
	for i := 0; i+n <= len(speech); i += n {
		if media.DBFS(speech[i:i+n]) > -45 {
			lastActive = i / n
		}
	}
	for _, hang := range []time.Duration{300 * time.Millisecond, 500 * time.Millisecond, 800 * time.Millisecond} {
		for _, noise := range []float64{0, -65} {
			td, err := media.NewTurnDetector(16000, 2, media.EndpointerConfig{Hangover: hang})
			if err != nil {
				t.Fatal(err)
			}
			in := make([]int16, 0, len(speech)+2*16000)
			in = append(in, make([]int16, 16000/2)...) // 0.5 s lead-in
			in = append(in, speech...)
			in = append(in, make([]int16, 16000)...) // 1 s of silence
			lead := 25
			if noise != 0 {
				nz := mediatest.WhiteNoise(9, noise, len(in))
				for i := range in {
					in[i] += nz[i]
				}
			}
			var evs []evAt
			for i := 0; i+n <= len(in); i += n {
				ev, err := td.Push(in[i : i+n])
				if err != nil {
					t.Fatal(err)
				}
				if ev != media.EventNone {
					evs = append(evs, evAt{i / n, ev})
				}
			}
			td.Close()
			if len(evs) != 2 || evs[0].ev != media.EventSpeechStart || evs[1].ev != media.EventSpeechEnd {
				t.Errorf("hangover %v, noise %v dBFS: events %v, want one start and one end", hang, noise, evs)
				continue
			}
			endAfter := time.Duration(evs[1].frame-(lead+lastActive)) * media.FrameDuration
			startAt := time.Duration(evs[0].frame-lead) * media.FrameDuration
			t.Logf("hangover %v, noise %v dBFS: start %v into the speech, end %v after its last active frame", hang, noise, startAt, endAfter)
			if endAfter < hang || endAfter > hang+100*time.Millisecond {
				t.Errorf("hangover %v: end %v after the speech, want %v..%v", hang, endAfter, hang, hang+100*time.Millisecond)
			}
			if startAt < 0 || startAt > 300*time.Millisecond {
				t.Errorf("start %v into the speech, want within 300 ms", startAt)
			}
		}
	}
}

// TestTurnDetectorQuiet: silence and low-level noise open no turn.
func TestTurnDetectorQuiet(t *testing.T) {
	inputs := map[string][]int16{
		"silence":        make([]int16, 10*16000),
		"noise -60 dBFS": mediatest.WhiteNoise(5, -60, 10*16000),
		"noise -45 dBFS": mediatest.WhiteNoise(6, -45, 10*16000),
		"hum -40 dBFS":   mediatest.Sine(16000, 50, 0.014, 10*16000),
	}
	for name, in := range inputs {
		td, err := media.NewTurnDetector(16000, 2, media.EndpointerConfig{})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+320 <= len(in); i += 320 {
			if ev, err := td.Push(in[i : i+320]); err != nil || ev != media.EventNone {
				t.Errorf("%s: frame %d: %v, %v", name, i/320, ev, err)
				break
			}
		}
		td.Close()
	}
}

func TestTurnDetectorErrorsAndAllocs(t *testing.T) {
	if _, err := media.NewTurnDetector(24000, 2, media.EndpointerConfig{}); err == nil {
		t.Error("24 kHz turn detector: no error")
	}
	td, err := media.NewTurnDetector(16000, 2, media.EndpointerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer td.Close()
	if _, err := td.Push(make([]int16, 160)); err == nil {
		t.Error("10 ms frame: no error")
	}
	frame := mediatest.Sine(16000, 200, 0.3, 320)
	if n := testing.AllocsPerRun(100, func() { _, _ = td.Push(frame) }); n != 0 {
		t.Errorf("TurnDetector.Push: %v allocations, want 0", n)
	}
}
