package backends

import (
	"context"
	"io"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/voicegw/voicegw/media"
)

// loop is an endless reader repeating b.
type loop struct {
	b   []byte
	off int
}

func (l *loop) Read(p []byte) (int, error) {
	n := copy(p, l.b[l.off:])
	l.off = (l.off + n) % len(l.b)
	return n, nil
}

const benchChunk = "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" warranty\"},\"finish_reason\":null}]}\n\n"

// BenchmarkSSEChunk: one token, read and parsed from the event stream.
func BenchmarkSSEChunk(b *testing.B) {
	r := newSSEReader(&loop{b: []byte(benchChunk)})
	b.ReportAllocs()
	b.SetBytes(int64(len(benchChunk)))
	for b.Loop() {
		r.total = 0
		if d, err := r.next(); err != nil || d != " warranty" {
			b.Fatal(d, err)
		}
	}
}

func voiceFrame() []int16 {
	f := make([]int16, media.PipelineRate/50)
	for i := range f {
		f[i] = int16(8000 * math.Sin(2*math.Pi*220*float64(i)/media.PipelineRate))
	}
	return f
}

// BenchmarkRealtimeAppend: one 20 ms frame at 16 kHz resampled to 24 kHz
// and encoded as an input_audio_buffer.append event.
func BenchmarkRealtimeAppend(b *testing.B) {
	rs, err := media.NewResampler(media.PipelineRate, 24000)
	if err != nil {
		b.Fatal(err)
	}
	frame := voiceFrame()
	var up []int16
	var msg, raw []byte
	b.ReportAllocs()
	for b.Loop() {
		up = rs.Process(up[:0], frame)
		msg, raw = appendEvent(msg, raw, up)
	}
	if len(up) != 480 {
		b.Fatalf("%d samples", len(up))
	}
}

func TestRealtimeAppendDoesNotAllocate(t *testing.T) {
	rs, _ := media.NewResampler(media.PipelineRate, 24000)
	frame := voiceFrame()
	var up []int16
	var msg, raw []byte
	step := func() {
		up = rs.Process(up[:0], frame)
		msg, raw = appendEvent(msg, raw, up)
	}
	step()
	if n := testing.AllocsPerRun(100, step); n != 0 {
		t.Errorf("%v allocations per frame", n)
	}
}

func benchPCM() *pcmStream {
	body := make([]byte, 24000*2)
	for i := range body {
		body[i] = byte(i * 7)
	}
	ctx, cancel := context.WithCancel(context.Background())
	call := &streamCall{ctx: ctx, cancel: cancel, wd: newWatchdog(time.Hour, time.Hour, cancel),
		resp: &http.Response{Body: io.NopCloser(&loop{b: body})}}
	return &pcmStream{call: call, rate: 24000, raw: make([]byte, 8192)}
}

// BenchmarkTTSRead: 20 ms of 24 kHz audio read from a speech stream.
func BenchmarkTTSRead(b *testing.B) {
	s := benchPCM()
	defer s.Close()
	dst := make([]int16, 480)
	b.ReportAllocs()
	b.SetBytes(2 * 480)
	for b.Loop() {
		s.total = 0
		if n, err := s.Read(dst); n != 480 || err != nil {
			b.Fatal(n, err)
		}
	}
}
