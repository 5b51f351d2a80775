package backends

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/voicegw/voicegw/media"
)

const (
	// maxBatchSamples bounds one batch utterance: 2 minutes.
	maxBatchSamples = media.PipelineRate * 120
	// maxBatchQueue bounds the utterances waiting to be posted.
	maxBatchQueue = 8
)

// batchASR buffers each utterance and, on Commit, posts it as a 16 kHz WAV
// file to /v1/audio/transcriptions. One worker posts utterances in order,
// so finals arrive in commit order.
type batchASR struct {
	e        Endpoint
	language string
	events   chan ASREvent
	jobs     chan batchJob
	ctx      context.Context // ended by Close
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	once     sync.Once

	mu     sync.Mutex // guards the fields below
	buf    []int16
	seq    int
	closed bool
}

type batchJob struct {
	id  string
	pcm []int16
}

func newBatchASR(cfg ASRConfig) *batchASR {
	ctx, cancel := context.WithCancel(context.Background())
	b := &batchASR{
		e:        cfg.Endpoint,
		language: cfg.Language,
		events:   make(chan ASREvent, eventBuffer),
		jobs:     make(chan batchJob, maxBatchQueue),
		ctx:      ctx,
		cancel:   cancel,
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.work()
	}()
	return b
}

// Append implements ASRStream.
func (b *batchASR) Append(pcm []int16) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return b.e.fail("batch append", ErrClosed)
	}
	if len(b.buf)+len(pcm) > maxBatchSamples {
		return b.e.fail("batch append", fmt.Errorf("%w: utterance longer than %s", ErrConfig, time.Duration(maxBatchSamples/media.PipelineRate)*time.Second))
	}
	b.buf = append(b.buf, pcm...)
	return nil
}

// Clear implements ASRStream.
func (b *batchASR) Clear() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return b.e.fail("batch clear", ErrClosed)
	}
	b.buf = b.buf[:0]
	return nil
}

// Events implements ASRStream.
func (b *batchASR) Events() <-chan ASREvent { return b.events }

// Commit implements ASRStream: the buffered utterance is queued for
// posting, and its final follows on Events.
func (b *batchASR) Commit() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return b.e.fail("batch commit", ErrClosed)
	}
	b.seq++
	job := batchJob{id: fmt.Sprintf("batch_%d", b.seq), pcm: b.buf}
	select {
	case b.jobs <- job:
		b.buf = nil
		return nil
	default:
		b.seq--
		return b.e.fail("batch commit", fmt.Errorf("%w: %d utterances already waiting for the backend", ErrTimeout, maxBatchQueue))
	}
}

// work posts queued utterances in order until Close or a failure.
func (b *batchASR) work() {
	defer close(b.events)
	for {
		var job batchJob
		select {
		case job = <-b.jobs:
		case <-b.ctx.Done():
			return
		}
		ev := ASREvent{ItemID: job.id, Final: true}
		if len(job.pcm) > 0 {
			ev.Text, ev.Err = b.transcribe(job.pcm)
		}
		if ev.Err != nil && b.ctx.Err() != nil {
			return // closed while posting
		}
		select {
		case b.events <- ev:
		case <-b.ctx.Done():
			return
		}
		if ev.Err != nil {
			return
		}
	}
}

// transcribe posts one utterance and returns its text.
func (b *batchASR) transcribe(pcm []int16) (string, error) {
	e := b.e
	const op = "transcription"
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, err := mw.CreateFormFile("file", "utterance.wav")
	if err != nil {
		return "", e.fail(op, fmt.Errorf("%w: %w", ErrConfig, err))
	}
	if err := media.WriteWAV(fw, media.PipelineRate, pcm); err != nil {
		return "", e.fail(op, fmt.Errorf("%w: %w", ErrConfig, err))
	}
	fields := [][2]string{{"model", e.Model}, {"response_format", "json"}, {"language", b.language}}
	for _, f := range fields {
		if f[1] != "" {
			_ = mw.WriteField(f[0], f[1])
		}
	}
	_ = mw.Close()
	// The whole utterance must be transcribed before the first byte: allow
	// the timeout plus the audio's own length.
	wait := e.timeout() + time.Duration(len(pcm))*time.Second/media.PipelineRate
	ctx, cancel := context.WithTimeout(b.ctx, wait)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url("/v1/audio/transcriptions"), &body)
	if err != nil {
		return "", e.fail(op, fmt.Errorf("%w: %w", ErrConfig, err))
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	e.authorize(req.Header)
	resp, err := e.client().Do(req)
	if err != nil {
		return "", e.fail(op, b.ioError(ctx, wait, err))
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return "", e.fail(op, replyError(resp))
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/json" && mt != "" {
		return "", e.fail(op, fmt.Errorf("%w: content type %q, want application/json", ErrMalformed, mt))
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxTranscript+4096))
	if err != nil {
		return "", e.fail(op, b.ioError(ctx, wait, err))
	}
	var out struct {
		Text *string `json:"text"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || out.Text == nil {
		return "", e.fail(op, fmt.Errorf("%w: reply of %d bytes has no \"text\"", ErrMalformed, len(raw)))
	}
	if len(*out.Text) > maxTranscript {
		return "", e.fail(op, fmt.Errorf("%w: transcript of %d bytes", ErrMalformed, len(*out.Text)))
	}
	return strings.TrimSpace(*out.Text), nil
}

func (b *batchASR) ioError(ctx context.Context, wait time.Duration, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w: no transcript within %s", ErrTimeout, wait)
	}
	if b.ctx.Err() != nil {
		return ErrClosed
	}
	return fmt.Errorf("%w: %w", ErrConnection, err)
}

// Close implements ASRStream: a post in flight is abandoned.
func (b *batchASR) Close() error {
	b.once.Do(func() {
		b.mu.Lock()
		b.closed = true
		b.mu.Unlock()
		b.cancel()
	})
	b.wg.Wait()
	return nil
}

var _ ASRStream = (*batchASR)(nil)
