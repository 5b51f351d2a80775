package rig

import (
	"bytes"
	_ "embed"
	"fmt"
	"io"
	"os"

	"github.com/voicegw/voicegw/media"
)

// utteranceWAV is the default utterance, "Hello, I have a question about my
// account. What are your opening hours on Sunday?" (4.4 s), made with
//
//	espeak-ng -s 150 -w x.wav "Hello, I have a question about my account. What are your opening hours on Sunday?"
//	sox x.wav -r 16000 -c 1 -b 16 utterance.wav silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse tempo -s 1.15 norm -3
//
//go:embed testdata/utterance.wav
var utteranceWAV []byte

// DefaultUtterance returns the embedded utterance as mono PCM16 at 16 kHz.
func DefaultUtterance() []int16 {
	pcm, err := ReadUtterance(bytes.NewReader(utteranceWAV))
	if err != nil {
		panic("rig: embedded utterance: " + err.Error())
	}
	return pcm
}

// LoadUtterance reads a WAV file (16-bit PCM, any supported rate, mono or
// downmixed) and returns it as mono PCM16 at 16 kHz.
func LoadUtterance(path string) ([]int16, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	pcm, err := ReadUtterance(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return pcm, nil
}

// ReadUtterance reads a WAV stream and resamples it to 16 kHz.
func ReadUtterance(r io.Reader) ([]int16, error) {
	a, err := media.ReadWAV(r)
	if err != nil {
		return nil, err
	}
	if len(a.Samples) == 0 {
		return nil, fmt.Errorf("no audio in the WAV file")
	}
	if a.Rate == media.PipelineRate {
		return a.Samples, nil
	}
	rs, err := media.NewResampler(a.Rate, media.PipelineRate)
	if err != nil {
		return nil, err
	}
	// Flush the filter's group delay with a little silence so the last
	// syllable is not cut.
	in := append(a.Samples, make([]int16, rs.DelaySamples()*a.Rate/media.PipelineRate+a.Rate/100)...)
	return rs.Process(nil, in), nil
}
