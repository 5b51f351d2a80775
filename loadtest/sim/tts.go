package sim

import (
	"encoding/binary"
	"encoding/json"
	"hash/fnv"
	"math"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

const (
	// TTSRate is the rate of the simulated TTS's PCM (the protocol's "pcm").
	TTSRate = 24000
	// maxTTSInput bounds the text of one request, as OpenAI's 4096
	// characters.
	maxTTSInput = 4096
	// ttsChunk is how much audio each write carries: 40 ms.
	ttsChunk = TTSRate / 25
	// voicedGain and fricGain set the level: vowels near -22 dBFS RMS with
	// peaks near -5 dBFS, fricatives about 10 dB below.
	voicedGain = 120000.0
	fricGain   = 1500.0
)

// speech serves /v1/audio/speech with response_format "pcm": after
// TTSTTFB (or a draw from TTSTTFBLatency), synthetic speech streamed in
// flushed 40 ms chunks, as fast as it is made or, with TTSRealtime, paced
// at real time. TTSFailRate and TTSStallRate pick requests to fail or
// stall instead.
func (s *Server) speech(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model          string  `json:"model"`
		Input          *string `json:"input"`
		Voice          string  `json:"voice"`
		ResponseFormat string  `json:"response_format"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		s.reject(w, http.StatusBadRequest, "invalid_request", "body is not a speech request: "+err.Error())
		return
	}
	switch {
	case req.Input == nil:
		s.reject(w, http.StatusBadRequest, "missing_required_parameter", "missing required parameter: 'input'")
		return
	case strings.TrimSpace(*req.Input) == "":
		s.reject(w, http.StatusBadRequest, "invalid_value", "input must not be empty")
		return
	case utf8.RuneCountInString(*req.Input) > maxTTSInput:
		s.reject(w, http.StatusBadRequest, "string_above_max_length", "input is longer than 4096 characters")
		return
	case req.ResponseFormat != "pcm":
		s.reject(w, http.StatusBadRequest, "invalid_value", `the simulated TTS returns response_format "pcm" only`)
		return
	}
	s.mu.Lock()
	s.spoken = append(s.spoken, *req.Input)
	s.stats.Speeches++
	s.mu.Unlock()
	switch s.fate(s.cfg.TTSFailRate, s.cfg.TTSStallRate) {
	case fail:
		s.count(func(st *Stats) { st.TTSFailures++ })
		s.failure(w, r, s.ttsTTFB())
		return
	case stall:
		s.count(func(st *Stats) { st.TTSStalls++ })
		w.Header().Set("Content-Type", "audio/pcm")
		s.stall(w, r)
		return
	}
	if !sleep(r.Context(), s.ttsTTFB()) {
		return
	}
	w.Header().Set("Content-Type", "audio/pcm")
	w.Header().Set("X-Simulated", "true")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	v := NewVoice(*req.Input, TTSRate)
	pcm := make([]int16, ttsChunk)
	buf := make([]byte, 2*ttsChunk)
	start, sent := time.Now(), 0
	for {
		n := v.Read(pcm)
		if n == 0 {
			return
		}
		for i, x := range pcm[:n] {
			binary.LittleEndian.PutUint16(buf[2*i:], uint16(x))
		}
		if _, err := w.Write(buf[:2*n]); err != nil {
			return
		}
		if fl != nil {
			fl.Flush()
		}
		sent += n
		if s.cfg.TTSRealtime && !sleep(r.Context(), time.Until(start.Add(time.Duration(sent)*time.Second/TTSRate))) {
			return
		}
	}
}

// Voice makes speech-like audio for a text, as a stream: a glottal pulse
// train with a falling, wandering pitch, through three formant resonators
// that glide from vowel to vowel, shaped into syllables of 180 ms (about
// 5.5 a second); some syllables open with a burst of filtered noise like a
// fricative, and punctuation in the text becomes a pause. The length is
// about 65 ms per character of text. The same text always gives the same
// samples. It is not speech: it only has speech's rhythm, pitch range and
// spectral envelope, which is what pipelines, VADs and codecs react to.
type Voice struct {
	rate  int
	text  []rune
	total int // samples
	syl   int // samples per syllable
	i     int // next sample

	phase   float64
	glottis float64 // previous glottal flow sample
	res     [3]resonator
	radius  [3]float64 // pole radius per formant, from its bandwidth
	coef    [3]float64 // 2·r·cos(2πf/rate) per formant, at the current glide
	f0      float64
	noise   uint32
	last    float64 // previous noise sample, for the high-pass

	// The current syllable.
	sylN      int
	paused    bool
	stress    float64
	onset     float64 // fraction of the syllable before the vowel
	cur, prev [3]float64
}

// resonator is a two-pole filter at one formant.
type resonator struct{ y1, y2 float64 }

// vowels are formant triples (Hz) of a few vowels.
var vowels = [...][3]float64{
	{730, 1090, 2440}, // a
	{530, 1840, 2480}, // e
	{270, 2290, 3010}, // i
	{570, 840, 2410},  // o
	{300, 870, 2240},  // u
	{660, 1720, 2410}, // ae
}

// NewVoice returns the voice for text at rate.
func NewVoice(text string, rate int) *Voice {
	runes := []rune(text)
	n := max(len(runes), 6)
	h := fnv.New32a()
	_, _ = h.Write([]byte(text))
	v := &Voice{
		rate:  rate,
		text:  runes,
		total: int(float64(n) * 0.065 * float64(rate)),
		syl:   max(int(0.18*float64(rate)), 1),
		noise: h.Sum32() | 1,
	}
	for k := range v.radius {
		bw := 80.0 + 40*float64(k) // formant bandwidth, Hz
		v.radius[k] = math.Exp(-math.Pi * bw / float64(rate))
	}
	return v
}

// Len is the total number of samples.
func (v *Voice) Len() int { return v.total }

// Read fills dst with the next samples and returns how many; 0 at the end.
func (v *Voice) Read(dst []int16) int {
	n := min(len(dst), v.total-v.i)
	for k := range n {
		dst[k] = v.sample()
	}
	return n
}

// Synthesize returns the whole of NewVoice(text, rate).
func Synthesize(text string, rate int) []int16 {
	v := NewVoice(text, rate)
	out := make([]int16, v.Len())
	v.Read(out)
	return out
}

// sylHash is a stable pseudo-random number for syllable s.
func sylHash(s int) uint32 {
	x := uint32(s)*2654435761 + 0x9e3779b9
	x ^= x >> 15
	x *= 0x2c1b3c6d
	return x ^ x>>12
}

// pause reports whether syllable s falls on punctuation or a line break.
func (v *Voice) pause(s int) bool {
	if len(v.text) == 0 {
		return false
	}
	at := min(s*v.syl*len(v.text)/max(v.total, 1), len(v.text)-1)
	// Look over the syllable's stretch of text.
	end := min((s+1)*v.syl*len(v.text)/max(v.total, 1), len(v.text))
	for _, r := range v.text[at:max(end, at+1)] {
		if r == '\n' || (unicode.IsPunct(r) && r != '\'' && r != '-') {
			return true
		}
	}
	return false
}

func (v *Voice) rand() float64 {
	v.noise ^= v.noise << 13
	v.noise ^= v.noise >> 17
	v.noise ^= v.noise << 5
	return float64(v.noise)/float64(math.MaxUint32)*2 - 1
}

// coefStep is how often (in samples) the formant filters follow the glide.
const coefStep = 32

// syllable computes what is fixed for syllable s.
func (v *Voice) syllable(s int) {
	v.sylN = s
	v.paused = v.pause(s)
	h := sylHash(s)
	v.stress = float64(h >> 8 % 16)
	v.onset = 0
	if h%3 == 0 {
		v.onset = 0.25 // a fricative opens the syllable
	}
	v.cur, v.prev = vowels[h%uint32(len(vowels))], vowels[sylHash(s-1)%uint32(len(vowels))]
}

func (v *Voice) sample() int16 {
	i, rate := v.i, float64(v.rate)
	v.i++
	s := i / v.syl
	if s != v.sylN || i == 0 {
		v.syllable(s)
	}
	pos := float64(i%v.syl) / float64(v.syl)
	if v.paused {
		v.res = [3]resonator{}
		return int16(v.rand() * 20) // room noise
	}
	// Voiced part: a raised-sine envelope after the onset.
	var env float64
	if pos >= v.onset {
		env = math.Sin(math.Pi * (pos - v.onset) / (1 - v.onset))
		env *= env
	}
	if i%coefStep == 0 || i%v.syl == 0 {
		// Pitch: declination over the utterance, a slow wander, a little
		// stress per syllable.
		t := float64(i) / rate
		v.f0 = 135 - 25*float64(i)/float64(max(v.total, 1)) + 8*math.Sin(2*math.Pi*0.9*t) + v.stress
		// Formants glide from the last syllable's vowel over the first
		// third of this one.
		g := min(pos/0.33, 1)
		for k := range v.res {
			f := v.prev[k] + (v.cur[k]-v.prev[k])*g
			v.coef[k] = 2 * v.radius[k] * math.Cos(2*math.Pi*f/rate)
		}
	}
	v.phase += v.f0 / rate
	if v.phase >= 1 {
		v.phase--
	}
	// A Rosenberg glottal pulse, differentiated for the lips' radiation.
	var gl float64
	switch p := v.phase; {
	case p < 0.4:
		gl = 0.5 * (1 - math.Cos(math.Pi*p/0.4))
	case p < 0.56:
		gl = math.Cos(math.Pi * (p - 0.4) / 0.32)
	}
	src := gl - v.glottis + 0.01*v.rand() // with a little breath
	v.glottis = gl
	y := src * env
	for k := range v.res {
		c, r2 := v.coef[k], v.radius[k]*v.radius[k]
		st := &v.res[k]
		// Unity gain at 0 Hz, as in a Klatt cascade.
		out := (1-c+r2)*y + c*st.y1 - r2*st.y2
		st.y2, st.y1 = st.y1, out
		y = out
	}
	voiced := y * voicedGain
	// Fricative onset: high-passed noise.
	var fric float64
	if v.onset > 0 && pos < v.onset+0.05 {
		e := math.Sin(math.Pi * min(pos/(v.onset+0.05), 1))
		n := v.rand()
		fric = (n - v.last) * e * fricGain
		v.last = n
	}
	return int16(max(-32767, min(32767, voiced+fric)))
}
