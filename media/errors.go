package media

import "errors"

var (
	// ErrUnsupportedRate is returned for a sample rate a component cannot use.
	ErrUnsupportedRate = errors.New("unsupported sample rate")
	// ErrFrameSize is returned for a frame of the wrong length.
	ErrFrameSize = errors.New("wrong frame size")
	// ErrMalformedWAV is returned for a WAV file that cannot be read.
	ErrMalformedWAV = errors.New("malformed wav")
	// ErrCodec is returned when libopus rejects a call.
	ErrCodec = errors.New("codec error")
)
