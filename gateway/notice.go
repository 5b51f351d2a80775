package gateway

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/voicegw/voicegw/gateway/backends"
	"github.com/voicegw/voicegw/media"
)

// notices holds the short spoken notices a caller hears when something
// fails, synthesised once per text by the tenant's TTS and cached as
// pipeline-rate PCM. When TTS itself is down and a notice was never cached,
// the caller hears a two-tone alert instead of silence.
type notices struct {
	tts speaker
	log *slog.Logger

	mu    sync.Mutex
	cache map[string][]int16
}

// speaker synthesises speech; implemented by ttsChain and backends.TTS.
type speaker interface {
	Speak(ctx context.Context, text string) (backends.SpeechStream, error)
}

func newNotices(tts speaker, log *slog.Logger) *notices {
	return &notices{tts: tts, log: log, cache: map[string][]int16{}}
}

// prewarm synthesises texts in the background so a failing backend does not
// also cost a TTS round trip; failures are retried on demand.
func (n *notices) prewarm(ctx context.Context, texts ...string) {
	for _, t := range texts {
		if ctx.Err() != nil {
			return
		}
		_, _ = n.synth(ctx, t)
	}
}

// get returns the notice's audio at media.PipelineRate.
func (n *notices) get(ctx context.Context, text string) []int16 {
	n.mu.Lock()
	pcm, ok := n.cache[text]
	n.mu.Unlock()
	if ok {
		return pcm
	}
	pcm, err := n.synth(ctx, text)
	if err != nil {
		n.log.Warn("notice synthesis failed; playing alert tone", "err", err)
		return alertTone()
	}
	return pcm
}

// cached returns a text's audio if it has been synthesised, without
// waiting for TTS.
func (n *notices) cached(text string) ([]int16, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	pcm, ok := n.cache[text]
	return pcm, ok
}

func (n *notices) synth(ctx context.Context, text string) ([]int16, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	st, err := n.tts.Speak(ctx, text)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	rs, err := media.NewResampler(st.SampleRate(), media.PipelineRate)
	if err != nil {
		return nil, err
	}
	buf := make([]int16, 4096)
	var out []int16
	for {
		k, err := st.Read(buf)
		out = rs.Process(out, buf[:k])
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if len(out) > media.PipelineRate*20 {
			return nil, errors.New("notice audio longer than 20 s")
		}
	}
	if len(out) == 0 {
		return nil, errors.New("notice audio is empty")
	}
	n.mu.Lock()
	n.cache[text] = out
	n.mu.Unlock()
	return out, nil
}

// alertTone is 2 × 150 ms of 660/880 Hz at -12 dBFS.
func alertTone() []int16 {
	const rate = media.PipelineRate
	seg := rate * 150 / 1000
	out := make([]int16, 0, 3*seg)
	for i, f := range []float64{660, 0, 880} {
		for k := 0; k < seg; k++ {
			v := 0.0
			if f > 0 {
				v = 0.25 * math.Sin(2*math.Pi*f*float64(i*seg+k)/rate)
			}
			out = append(out, int16(v*32767))
		}
	}
	return out
}
