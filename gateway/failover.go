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

// llmFirst is a started completion with its first delta (eof: the reply
// ended before any text, which is a valid, empty answer).
type llmFirst struct {
	st    backends.ChatStream
	first string
	eof   bool
}

// Stream starts a completion and returns once a backend has produced its
// first token (or ended its reply), with failover and hedging (see
// firstAnswer). Every backend is inside the tenant's boundary.
func (c *llmChain) Stream(ctx context.Context, req backends.ChatRequest) (backends.ChatStream, error) {
	try := func(ctx context.Context, i int) (llmFirst, error) {
		st, err := c.llms[i].Stream(ctx, req)
		if err != nil {
			return llmFirst{}, err
		}
		d, err := st.Next()
		if err != nil && !errors.Is(err, io.EOF) {
			st.Close()
			return llmFirst{}, err
		}
		return llmFirst{st: st, first: d, eof: err != nil}, nil
	}
	a, cancel, err := firstAnswer(ctx, chainOps[llmFirst]{
		role: "llm", tenant: c.tenant, hedgeAfter: c.hedgeAfter, log: c.log, m: c.m,
		names: func(i int) string { return c.llms[i].Name() }, n: len(c.llms),
		try: try, discard: func(a llmFirst) { a.st.Close() },
	})
	if err != nil {
		return nil, err
	}
	return &firstDeltaStream{first: a.first, eof: a.eof, st: a.st, cancel: cancel}, nil
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

// ttsFirst is a started synthesis with its first samples (eof: no audio
// at all, a valid, empty answer).
type ttsFirst struct {
	st    backends.SpeechStream
	first []int16
	eof   bool
}

// Speak starts synthesis and returns once a backend has produced its
// first audio, with failover and hedging (see firstAnswer).
func (c *ttsChain) Speak(ctx context.Context, text string) (backends.SpeechStream, error) {
	try := func(ctx context.Context, i int) (ttsFirst, error) {
		st, err := c.ttss[i].Speak(ctx, text)
		if err != nil {
			return ttsFirst{}, err
		}
		buf := make([]int16, max(st.SampleRate()/50, 1))
		n, err := st.Read(buf)
		if err != nil && !errors.Is(err, io.EOF) {
			st.Close()
			return ttsFirst{}, err
		}
		return ttsFirst{st: st, first: buf[:n], eof: err != nil}, nil
	}
	a, cancel, err := firstAnswer(ctx, chainOps[ttsFirst]{
		role: "tts", tenant: c.tenant, hedgeAfter: c.hedgeAfter, log: c.log, m: c.m,
		names: func(i int) string { return c.ttss[i].Name() }, n: len(c.ttss),
		try: try, discard: func(a ttsFirst) { a.st.Close() },
	})
	if err != nil {
		return nil, err
	}
	return &firstAudioStream{first: a.first, eof: a.eof, st: a.st, cancel: cancel}, nil
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

// chainOps describes one request over a role's backends for firstAnswer.
type chainOps[T any] struct {
	role, tenant string
	hedgeAfter   time.Duration // 0: no hedging
	log          *slog.Logger
	m            *telemetry.Metrics
	n            int
	names        func(i int) string
	// try sends the request to backend i and waits for its first output.
	try func(ctx context.Context, i int) (T, error)
	// discard releases an answer that lost.
	discard func(T)
}

type attempt[T any] struct {
	i   int
	v   T
	err error
}

// firstAnswer sends a request to a role's backends in order and returns
// the first answer, with the cancel function of its context (cancel it when
// done with the answer). A backend that fails before its first output
// hands over to the next (failover); one that has not answered after
// hedgeAfter gets the next started beside it (hedging), and whichever
// answers first wins while the others are cancelled and their late
// answers discarded.
func firstAnswer[T any](ctx context.Context, o chainOps[T]) (T, context.CancelFunc, error) {
	var zero T
	results := make(chan attempt[T], o.n)
	cancels := make([]context.CancelFunc, 0, o.n)
	next, pending := 0, 0
	start := func() {
		i := next
		next++
		pending++
		actx, cancel := context.WithCancel(ctx)
		cancels = append(cancels, cancel)
		go func() {
			a := attempt[T]{i: i}
			defer func() {
				if r := recover(); r != nil {
					a.err = &panicError{value: r}
				}
				results <- a
			}()
			a.v, a.err = o.try(actx, i)
		}()
	}
	// finish cancels every attempt but the winner and, without making the
	// caller wait, discards the answers still to come.
	finish := func(winner int) {
		for i, cancel := range cancels {
			if i != winner {
				cancel()
			}
		}
		if rest := pending; rest > 0 {
			go func() {
				for range rest {
					a := <-results
					var pe *panicError
					switch {
					case a.err == nil:
						o.discard(a.v)
					case errors.As(a.err, &pe):
						logDiscardedPanic(o.log, o.role, pe)
					}
				}
			}()
		}
	}
	start()
	var hedge <-chan time.Time
	if o.hedgeAfter > 0 && o.n > 1 {
		t := time.NewTimer(o.hedgeAfter)
		defer t.Stop()
		hedge = t.C
	}
	for {
		select {
		case <-ctx.Done():
			finish(-1)
			return zero, nil, ctx.Err()
		case <-hedge:
			hedge = nil
			if next < o.n {
				o.m.Hedges.WithLabelValues(o.role, o.tenant).Inc()
				o.log.Info("first answer late; hedging", "role", o.role, "waited", o.hedgeAfter, "backend", o.names(0), "hedge", o.names(next))
				start()
			}
		case a := <-results:
			pending--
			if pe := (*panicError)(nil); errors.As(a.err, &pe) {
				// Panic again on this goroutine, whose session recovers.
				finish(-1)
				panic(pe.value)
			}
			if a.err == nil {
				finish(a.i)
				if a.i > 0 {
					o.log.Info("answered by a later backend", "role", o.role, "backend", o.names(a.i))
				}
				return a.v, cancels[a.i], nil
			}
			if ctx.Err() != nil {
				finish(-1)
				return zero, nil, a.err
			}
			o.m.BackendErrors.WithLabelValues(o.role, o.names(a.i)).Inc()
			switch {
			case next < o.n:
				o.log.Warn("backend failed; failing over", "role", o.role, "backend", o.names(a.i), "next", o.names(next), "err", a.err)
				start()
			case pending == 0:
				finish(-1)
				return zero, nil, a.err
			}
		}
	}
}
