package media

import "errors"

// Sentinel errors. Functions wrap them with context (fmt.Errorf("%w: …")),
// so callers test with errors.Is.
var (
	// ErrUnsupportedRate is returned for a sample rate a component does not
	// handle.
	ErrUnsupportedRate = errors.New("media: unsupported sample rate")
	// ErrUnsupportedChannels is returned for a channel count other than 1 or 2.
	ErrUnsupportedChannels = errors.New("media: unsupported channel count")
	// ErrFrameSize is returned when a frame does not have the length the
	// component expects (for example not 10, 20 or 30 ms for the VAD).
	ErrFrameSize = errors.New("media: bad frame size")
	// ErrBufferTooSmall is returned when a destination buffer cannot hold
	// the output.
	ErrBufferTooSmall = errors.New("media: destination buffer too small")
	// ErrInvalidMode is returned for a VAD aggressiveness outside 0..3.
	ErrInvalidMode = errors.New("media: invalid VAD mode")
	// ErrClosed is returned by a codec or VAD used after Close.
	ErrClosed = errors.New("media: use after close")
	// ErrOpus wraps an error code returned by libopus.
	ErrOpus = errors.New("media: opus")
	// ErrVAD is returned when the WebRTC VAD reports an error.
	ErrVAD = errors.New("media: vad")

	// ErrMalformedWAV is returned by ReadWAV for a file that is not a
	// well-formed RIFF/WAVE file.
	ErrMalformedWAV = errors.New("media: malformed wav")
	// ErrUnsupportedWAV is returned by ReadWAV for a well-formed file in an
	// encoding it does not read (anything but 16-bit integer PCM).
	ErrUnsupportedWAV = errors.New("media: unsupported wav encoding")
	// ErrTruncatedWAV is returned by ReadWAV when the file ends before the
	// sizes it declares.
	ErrTruncatedWAV = errors.New("media: truncated wav")
	// ErrWAVTooLarge is returned when audio exceeds what a RIFF file can
	// hold, or MaxWAVBytes when reading.
	ErrWAVTooLarge = errors.New("media: wav too large")
)
