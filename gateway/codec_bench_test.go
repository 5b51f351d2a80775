package gateway

import (
	"math"
	"testing"

	"github.com/voicegw/voicegw/media"
)

// tone returns n samples of a two-tone signal at rate, loud enough to be
// treated as speech by level gates.
func tone(rate, n int) []int16 {
	out := make([]int16, n)
	for i := range out {
		t := float64(i) / float64(rate)
		out[i] = int16(8000*math.Sin(2*math.Pi*220*t) + 4000*math.Sin(2*math.Pi*1230*t))
	}
	return out
}

// benchInbound measures one caller frame through the inbound path: RTP
// payload decode, resampling to the pipeline rate, and VAD/end-pointing.
func benchInbound(b *testing.B, mime string, rate int, encode func([]int16) []byte) {
	dec, err := newAudioDecoder(mime)
	if err != nil {
		b.Fatal(err)
	}
	det, err := media.NewTurnDetector(media.PipelineRate, 2, media.EndpointerConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer det.Close()
	src := tone(rate, rate) // 1 s
	n := media.SamplesPerFrame(rate)
	var pkts [][]byte
	for i := 0; i+n <= len(src); i += n {
		pkts = append(pkts, append([]byte(nil), encode(src[i:i+n])...))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		frames, err := dec.decode(pkts[i%len(pkts)])
		if err != nil {
			b.Fatal(err)
		}
		for _, f := range frames {
			if _, err := det.Push(f); err != nil {
				b.Fatal(err)
			}
		}
		i++
	}
}

func BenchmarkInboundOpusFrame(b *testing.B) {
	enc, err := media.NewOpusEncoder(48000, 1)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 1500)
	benchInbound(b, "audio/opus", 48000, func(pcm []int16) []byte {
		k, err := enc.Encode(pcm, buf)
		if err != nil {
			b.Fatal(err)
		}
		return buf[:k]
	})
}

func BenchmarkInboundPCMUFrame(b *testing.B) {
	buf := make([]byte, 160)
	benchInbound(b, "audio/PCMU", 8000, func(pcm []int16) []byte {
		media.EncodeMulaw(buf, pcm)
		return buf
	})
}

// benchOutbound measures one agent frame through the outbound path: 20 ms
// of 24 kHz TTS audio resampled to the pipeline rate, then encoded for
// the caller.
func benchOutbound(b *testing.B, mime string) {
	enc, err := newAudioEncoder(mime)
	if err != nil {
		b.Fatal(err)
	}
	rs, err := media.NewResampler(24000, media.PipelineRate)
	if err != nil {
		b.Fatal(err)
	}
	tts := tone(24000, 480)
	var frame []int16
	b.ReportAllocs()
	for b.Loop() {
		frame = rs.Process(frame[:0], tts)
		if len(frame) == 0 {
			continue
		}
		if _, err := enc.encode(frame[:media.SamplesPerFrame(media.PipelineRate)]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOutboundOpusFrame(b *testing.B) { benchOutbound(b, "audio/opus") }
func BenchmarkOutboundPCMUFrame(b *testing.B) { benchOutbound(b, "audio/PCMU") }

// BenchmarkSentenceSplitter measures cutting a streamed reply into sentences,
// per token, with the first piece allowed to end at a clause (the default
// pipeline); each reply starts a new splitter, as each turn does.
func BenchmarkSentenceSplitter(b *testing.B) {
	reply := "Sure. Your order ships today from our warehouse, and it should arrive within three business days. Anything else I can help with? "
	toks := tokensOf(reply)
	b.ReportAllocs()
	sp := newSentenceSplitter(0)
	sp.firstClauseWords = 2
	i := 0
	for b.Loop() {
		sp.push(toks[i%len(toks)])
		i++
		if i%len(toks) == 0 {
			sp.flush()
			sp.emitted = 0
		}
	}
}

func tokensOf(s string) []string {
	var out []string
	start := 0
	for i, r := range s {
		if r == ' ' && i > start {
			out = append(out, s[start:i])
			start = i
		}
	}
	return append(out, s[start:])
}
