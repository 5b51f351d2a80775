package gateway

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/voicegw/voicegw/gateway/backends"
	"github.com/voicegw/voicegw/telemetry"
)

// A tenant's backends for one role, in its order of preference. Every
// entry is already inside the tenant's boundary (the config refuses
// anything else), so failing over never leaves it. A request goes to the
// first backend that accepts it; a stream that fails after it started is
// not replayed elsewhere (the caller has already heard part of it).

// llmChain is a tenant's LLM backends.
type llmChain struct {
	llms []*backends.LLM
	log  *slog.Logger
	m    *telemetry.Metrics
	// hedgeAfter, when > 0, sends the request to the next backend too if
	// the first token has not come by then; the first to answer wins.
	hedgeAfter time.Duration
	tenant     string
}

// Name is the preferred backend's name.
func (c *llmChain) Name() string { return c.llms[0].Name() }

// llmAttempt is one backend's try at a request: its stream and first
// delta, or why it failed.
type llmAttempt struct {
	i     int
	st    backends.ChatStream
	first string
	err   error // io.EOF: an empty reply (a valid answer)
}

// Stream starts a completion and returns once a backend has produced its
// first token (or ended its reply). Backends are tried in order: one that
// refuses or fails before its first token hands over to the next
// (failover), and one that is slower than hedgeAfter gets the next one
// started beside it (hedging): whichever answers first is streamed, the
// other is cancelled. Every backend is inside the tenant's boundary.
func (c *llmChain) Stream(ctx context.Context, req backends.ChatRequest) (backends.ChatStream, error) {
	results := make(chan llmAttempt, len(c.llms))
	cancels := make([]context.CancelFunc, 0, len(c.llms))
	next, pending := 0, 0
	start := func() {
		i := next
		next++
		pending++
		actx, cancel := context.WithCancel(ctx)
		cancels = append(cancels, cancel)
		go func() {
			st, err := c.llms[i].Stream(actx, req)
			if err != nil {
				results <- llmAttempt{i: i, err: err}
				return
			}
			d, err := st.Next()
			if err != nil && !errors.Is(err, io.EOF) {
				st.Close()
				results <- llmAttempt{i: i, err: err}
				return
			}
			results <- llmAttempt{i: i, st: st, first: d, err: err}
		}()
	}
	// cleanup cancels every attempt but the winner and drains their
	// results, closing late streams, without making the caller wait.
	cleanup := func(winner int) {
		for i, cancel := range cancels {
			if i != winner {
				cancel()
			}
		}
		if rest := pending; rest > 0 {
			go func() {
				for range rest {
					if a := <-results; a.st != nil {
						a.st.Close()
					}
				}
			}()
		}
	}
	start()
	var hedge <-chan time.Time
	if c.hedgeAfter > 0 && len(c.llms) > 1 {
		t := time.NewTimer(c.hedgeAfter)
		defer t.Stop()
		hedge = t.C
	}
	var lastErr error
	for {
		select {
		case <-ctx.Done():
			cleanup(-1)
			return nil, ctx.Err()
		case <-hedge:
			hedge = nil
			if next < len(c.llms) {
				c.m.Hedges.WithLabelValues("llm", c.tenant).Inc()
				c.log.Info("LLM first token late; hedging", "waited", c.hedgeAfter, "backend", c.llms[0].Name(), "hedge", c.llms[next].Name())
				start()
			}
		case a := <-results:
			pending--
			if a.err == nil || errors.Is(a.err, io.EOF) {
				cleanup(a.i)
				if a.i > 0 {
					c.log.Info("LLM answered by a later backend", "backend", c.llms[a.i].Name())
				}
				return &firstDeltaStream{first: a.first, eof: a.err != nil, st: a.st, cancel: cancels[a.i]}, nil
			}
			if ctx.Err() != nil {
				cleanup(-1)
				return nil, a.err
			}
			lastErr = a.err
			c.m.BackendErrors.WithLabelValues("llm", c.llms[a.i].Name()).Inc()
			if next < len(c.llms) {
				c.log.Warn("LLM backend failed; failing over", "backend", c.llms[a.i].Name(), "next", c.llms[next].Name(), "err", a.err)
				start()
			} else if pending == 0 {
				cleanup(-1)
				return nil, lastErr
			}
		}
	}
}

// firstDeltaStream replays an attempt's first delta, then streams the rest.
type firstDeltaStream struct {
	first  string
	eof    bool
	sent   bool
	st     backends.ChatStream
	cancel context.CancelFunc
}

func (f *firstDeltaStream) Next() (string, error) {
	if !f.sent {
		f.sent = true
		if f.eof {
			return "", io.EOF
		}
		if f.first != "" {
			return f.first, nil
		}
	}
	if f.eof {
		return "", io.EOF
	}
	return f.st.Next()
}

func (f *firstDeltaStream) Close() error {
	f.cancel()
	return f.st.Close()
}

// ttsChain is a tenant's TTS backends.
type ttsChain struct {
	ttss []*backends.TTS
	log  *slog.Logger
	m    *telemetry.Metrics
	// hedgeAfter, when > 0, asks the next backend too if the first audio
	// has not come by then; the first to answer is played.
	hedgeAfter time.Duration
	tenant     string
}

// Name is the preferred backend's name.
func (c *ttsChain) Name() string { return c.ttss[0].Name() }

type ttsAttempt struct {
	i     int
	st    backends.SpeechStream
	first []int16
	err   error // io.EOF: no audio at all (a valid, empty answer)
}

// Speak starts synthesis and returns once a backend has produced its
// first audio, with failover and hedging as llmChain.Stream.
func (c *ttsChain) Speak(ctx context.Context, text string) (backends.SpeechStream, error) {
	results := make(chan ttsAttempt, len(c.ttss))
	cancels := make([]context.CancelFunc, 0, len(c.ttss))
	next, pending := 0, 0
	start := func() {
		i := next
		next++
		pending++
		actx, cancel := context.WithCancel(ctx)
		cancels = append(cancels, cancel)
		go func() {
			st, err := c.ttss[i].Speak(actx, text)
			if err != nil {
				results <- ttsAttempt{i: i, err: err}
				return
			}
			buf := make([]int16, max(st.SampleRate()/50, 1))
			n, err := st.Read(buf)
			if err != nil && !errors.Is(err, io.EOF) {
				st.Close()
				results <- ttsAttempt{i: i, err: err}
				return
			}
			results <- ttsAttempt{i: i, st: st, first: buf[:n], err: err}
		}()
	}
	cleanup := func(winner int) {
		for i, cancel := range cancels {
			if i != winner {
				cancel()
			}
		}
		if rest := pending; rest > 0 {
			go func() {
				for range rest {
					if a := <-results; a.st != nil {
						a.st.Close()
					}
				}
			}()
		}
	}
	start()
	var hedge <-chan time.Time
	if c.hedgeAfter > 0 && len(c.ttss) > 1 {
		t := time.NewTimer(c.hedgeAfter)
		defer t.Stop()
		hedge = t.C
	}
	var lastErr error
	for {
		select {
		case <-ctx.Done():
			cleanup(-1)
			return nil, ctx.Err()
		case <-hedge:
			hedge = nil
			if next < len(c.ttss) {
				c.m.Hedges.WithLabelValues("tts", c.tenant).Inc()
				c.log.Info("TTS first audio late; hedging", "waited", c.hedgeAfter, "backend", c.ttss[0].Name(), "hedge", c.ttss[next].Name())
				start()
			}
		case a := <-results:
			pending--
			if a.err == nil || errors.Is(a.err, io.EOF) {
				cleanup(a.i)
				return &firstAudioStream{first: a.first, eof: a.err != nil, st: a.st, cancel: cancels[a.i]}, nil
			}
			if ctx.Err() != nil {
				cleanup(-1)
				return nil, a.err
			}
			lastErr = a.err
			c.m.BackendErrors.WithLabelValues("tts", c.ttss[a.i].Name()).Inc()
			if next < len(c.ttss) {
				c.log.Warn("TTS backend failed; failing over", "backend", c.ttss[a.i].Name(), "next", c.ttss[next].Name(), "err", a.err)
				start()
			} else if pending == 0 {
				cleanup(-1)
				return nil, lastErr
			}
		}
	}
}

// firstAudioStream replays an attempt's first samples, then reads the rest.
type firstAudioStream struct {
	first  []int16
	eof    bool
	st     backends.SpeechStream
	cancel context.CancelFunc
}

func (f *firstAudioStream) Read(dst []int16) (int, error) {
	if len(f.first) > 0 {
		n := copy(dst, f.first)
		f.first = f.first[n:]
		return n, nil
	}
	if f.eof {
		return 0, io.EOF
	}
	return f.st.Read(dst)
}

func (f *firstAudioStream) SampleRate() int { return f.st.SampleRate() }

func (f *firstAudioStream) Close() error {
	f.cancel()
	return f.st.Close()
}

// dialASRChain opens a transcription stream on the first backend that
// accepts it; it returns the backend's name with the stream.
func dialASRChain(ctx context.Context, cfgs []backends.ASRConfig, log *slog.Logger, m *telemetry.Metrics) (backends.ASRStream, string, error) {
	var err error
	for i, cfg := range cfgs {
		var st backends.ASRStream
		st, err = backends.DialASR(ctx, cfg)
		if err == nil {
			return st, cfg.Name, nil
		}
		if ctx.Err() != nil {
			return nil, cfg.Name, err
		}
		m.BackendErrors.WithLabelValues("asr", cfg.Name).Inc()
		if i+1 < len(cfgs) {
			log.Warn("ASR backend failed; failing over", "backend", cfg.Name, "next", cfgs[i+1].Name, "err", err)
		}
	}
	return nil, cfgs[len(cfgs)-1].Name, err
}
