package media_test

import (
	"context"
	"testing"
	"time"

	"github.com/voicegw/voicegw/media"
	"github.com/voicegw/voicegw/media/mediatest"
)

// voiceLike returns n samples at rate of a voice-like signal: a 140 Hz
// harmonic series with a falling spectrum plus noise, about -20 dBFS. It
// keeps the benchmarks free of external tools.
func voiceLike(rate, n int) []int16 {
	out := make([]int16, n)
	noise := mediatest.WhiteNoise(42, -40, n)
	for h := 1; float64(h)*140 < float64(rate)/2 && h <= 30; h++ {
		s := mediatest.Sine(rate, float64(h)*140, 0.1/float64(h), n)
		for i := range out {
			out[i] += s[i]
		}
	}
	for i := range out {
		out[i] += noise[i]
	}
	return out
}

func BenchmarkMulawEncode(b *testing.B) {
	pcm, dst := voiceLike(8000, 160), make([]byte, 160)
	b.ReportAllocs()
	for b.Loop() {
		media.EncodeMulaw(dst, pcm)
	}
}

func BenchmarkMulawDecode(b *testing.B) {
	src, dst := make([]byte, 160), make([]int16, 160)
	media.EncodeMulaw(src, voiceLike(8000, 160))
	b.ReportAllocs()
	for b.Loop() {
		media.DecodeMulaw(dst, src)
	}
}

func BenchmarkAlawEncode(b *testing.B) {
	pcm, dst := voiceLike(8000, 160), make([]byte, 160)
	b.ReportAllocs()
	for b.Loop() {
		media.EncodeAlaw(dst, pcm)
	}
}

func BenchmarkAlawDecode(b *testing.B) {
	src, dst := make([]byte, 160), make([]int16, 160)
	media.EncodeAlaw(src, voiceLike(8000, 160))
	b.ReportAllocs()
	for b.Loop() {
		media.DecodeAlaw(dst, src)
	}
}

// BenchmarkResample measures one 20 ms frame through each pipeline ratio.
func BenchmarkResample(b *testing.B) {
	for _, p := range [][2]int{{48000, 16000}, {16000, 48000}, {24000, 16000}, {24000, 48000}, {24000, 8000}, {8000, 16000}, {16000, 8000}} {
		b.Run(itoa(p[0]/1000)+"to"+itoa(p[1]/1000), func(b *testing.B) {
			rs, err := media.NewResampler(p[0], p[1])
			if err != nil {
				b.Fatal(err)
			}
			src := voiceLike(p[0], media.SamplesPerFrame(p[0]))
			dst := make([]int16, 0, media.SamplesPerFrame(p[1]))
			b.ReportAllocs()
			for b.Loop() {
				dst = rs.Process(dst[:0], src)
			}
		})
	}
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

// opusPackets encodes 1 s of voice-like audio at rate into 50 packets.
func opusPackets(b *testing.B, rate int) [][]byte {
	enc, err := media.NewOpusEncoder(rate, 1)
	if err != nil {
		b.Fatal(err)
	}
	defer enc.Close()
	n := media.SamplesPerFrame(rate)
	src := voiceLike(rate, rate)
	var pkts [][]byte
	for i := 0; i < len(src); i += n {
		buf := make([]byte, media.OpusMaxPacket)
		k, err := enc.Encode(src[i:i+n], buf)
		if err != nil {
			b.Fatal(err)
		}
		pkts = append(pkts, buf[:k])
	}
	return pkts
}

func BenchmarkOpusEncode48k(b *testing.B) {
	enc, err := media.NewOpusEncoder(48000, 1)
	if err != nil {
		b.Fatal(err)
	}
	defer enc.Close()
	src := voiceLike(48000, 48000)
	pkt := make([]byte, media.OpusMaxPacket)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		if _, err := enc.Encode(src[i:i+960], pkt); err != nil {
			b.Fatal(err)
		}
		i = (i + 960) % len(src)
	}
}

func BenchmarkOpusDecode48k(b *testing.B) {
	pkts := opusPackets(b, 48000)
	dec, _ := media.NewOpusDecoder(48000, 1)
	defer dec.Close()
	pcm := make([]int16, media.OpusMaxFrameSamples)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		if _, err := dec.Decode(pkts[i], pcm); err != nil {
			b.Fatal(err)
		}
		i = (i + 1) % len(pkts)
	}
}

func BenchmarkOpusConceal48k(b *testing.B) {
	pkts := opusPackets(b, 48000)
	dec, _ := media.NewOpusDecoder(48000, 1)
	defer dec.Close()
	pcm := make([]int16, media.OpusMaxFrameSamples)
	_, _ = dec.Decode(pkts[0], pcm)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := dec.Decode(nil, pcm); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVAD16k(b *testing.B) {
	v, err := media.NewVAD(16000, 2)
	if err != nil {
		b.Fatal(err)
	}
	defer v.Close()
	src := voiceLike(16000, 16000)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.IsSpeech(src[i : i+320]); err != nil {
			b.Fatal(err)
		}
		i = (i + 320) % len(src)
	}
}

func BenchmarkTurnDetectorPush(b *testing.B) {
	td, err := media.NewTurnDetector(16000, 2, media.EndpointerConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer td.Close()
	src := voiceLike(16000, 16000)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		if _, err := td.Push(src[i : i+320]); err != nil {
			b.Fatal(err)
		}
		i = (i + 320) % len(src)
	}
}

func BenchmarkEndpointerPush(b *testing.B) {
	e := media.NewEndpointer(media.EndpointerConfig{})
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		e.Push(i%40 < 25)
		i++
	}
}

func BenchmarkRMS(b *testing.B) {
	frame := voiceLike(16000, 320)
	b.ReportAllocs()
	for b.Loop() {
		media.RMS(frame)
	}
}

func BenchmarkDBFS(b *testing.B) {
	frame := voiceLike(16000, 320)
	b.ReportAllocs()
	for b.Loop() {
		media.DBFS(frame)
	}
}

func BenchmarkPacerWaitFakeClock(b *testing.B) {
	p := media.NewPacer(20*time.Millisecond, media.WithClock(mediatest.NewFakeClock(t0)))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_ = p.Wait(ctx)
	}
}

// BenchmarkInboundWebRTCFrame is one 20 ms frame of a browser caller: Opus
// decode at 48 kHz, resample 48→16 kHz, turn detection (VAD, level gate,
// end-pointer).
func BenchmarkInboundWebRTCFrame(b *testing.B) {
	pkts := opusPackets(b, 48000)
	dec, _ := media.NewOpusDecoder(48000, 1)
	defer dec.Close()
	rs, _ := media.NewResampler(48000, media.PipelineRate)
	td, _ := media.NewTurnDetector(media.PipelineRate, 2, media.EndpointerConfig{})
	defer td.Close()
	pcm := make([]int16, media.OpusMaxFrameSamples)
	frame := make([]int16, 0, 320)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		n, err := dec.Decode(pkts[i], pcm)
		if err != nil {
			b.Fatal(err)
		}
		frame = rs.Process(frame[:0], pcm[:n])
		if _, err := td.Push(frame); err != nil {
			b.Fatal(err)
		}
		i = (i + 1) % len(pkts)
	}
}

// BenchmarkOutboundWebRTCFrame is one 20 ms frame of agent speech to a
// browser along the pipeline's path: TTS at 24 kHz resampled to the 16 kHz
// pipeline rate, then to 48 kHz, then Opus encoded.
func BenchmarkOutboundWebRTCFrame(b *testing.B) {
	tts := voiceLike(24000, 24000)
	down, _ := media.NewResampler(24000, media.PipelineRate)
	up, _ := media.NewResampler(media.PipelineRate, 48000)
	enc, _ := media.NewOpusEncoder(48000, 1)
	defer enc.Close()
	mid := make([]int16, 0, 320)
	out := make([]int16, 0, 960)
	pkt := make([]byte, media.OpusMaxPacket)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		mid = down.Process(mid[:0], tts[i:i+480])
		out = up.Process(out[:0], mid)
		if _, err := enc.Encode(out, pkt); err != nil {
			b.Fatal(err)
		}
		i = (i + 480) % len(tts)
	}
}

// BenchmarkOutboundWebRTCFrameDirect is the same frame resampled 24→48 kHz
// in one step (keeps TTS audio above 6.4 kHz).
func BenchmarkOutboundWebRTCFrameDirect(b *testing.B) {
	tts := voiceLike(24000, 24000)
	up, _ := media.NewResampler(24000, 48000)
	enc, _ := media.NewOpusEncoder(48000, 1)
	defer enc.Close()
	out := make([]int16, 0, 960)
	pkt := make([]byte, media.OpusMaxPacket)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		out = up.Process(out[:0], tts[i:i+480])
		if _, err := enc.Encode(out, pkt); err != nil {
			b.Fatal(err)
		}
		i = (i + 480) % len(tts)
	}
}

// BenchmarkInboundG711Frame is one 20 ms frame of a SIP caller: µ-law
// decode at 8 kHz, resample 8→16 kHz, turn detection.
func BenchmarkInboundG711Frame(b *testing.B) {
	src := voiceLike(8000, 8000)
	payloads := make([]byte, len(src))
	media.EncodeMulaw(payloads, src)
	rs, _ := media.NewResampler(8000, media.PipelineRate)
	td, _ := media.NewTurnDetector(media.PipelineRate, 2, media.EndpointerConfig{})
	defer td.Close()
	pcm := make([]int16, 160)
	frame := make([]int16, 0, 320)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		media.DecodeMulaw(pcm, payloads[i:i+160])
		frame = rs.Process(frame[:0], pcm)
		if _, err := td.Push(frame); err != nil {
			b.Fatal(err)
		}
		i = (i + 160) % len(payloads)
	}
}

// BenchmarkOutboundG711Frame is one 20 ms frame of agent speech to a SIP
// caller: TTS at 24 kHz resampled to 8 kHz and µ-law encoded.
func BenchmarkOutboundG711Frame(b *testing.B) {
	tts := voiceLike(24000, 24000)
	rs, _ := media.NewResampler(24000, 8000)
	out := make([]int16, 0, 160)
	payload := make([]byte, 160)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		out = rs.Process(out[:0], tts[i:i+480])
		media.EncodeMulaw(payload, out)
		i = (i + 480) % len(tts)
	}
}
