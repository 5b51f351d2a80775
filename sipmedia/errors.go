package sipmedia

import (
	"errors"
	"fmt"
)

// Sentinel errors. Negotiation errors are wrapped with detail
// (fmt.Errorf("%w: …")); test them with errors.Is and map them to a SIP
// response with StatusCode.
var (
	// ErrNoCommonCodec: the offer (or answer) has no audio codec of
	// Options.Codecs. SIP 488.
	ErrNoCommonCodec = errors.New("sipmedia: no common codec")
	// ErrNoAudio: the SDP has no usable audio stream (no m=audio with a
	// non-zero port and an RTP transport). SIP 488.
	ErrNoAudio = errors.New("sipmedia: no usable audio stream")
	// ErrSRTPRequired: Options.RequireSRTP is set and the offer is plain
	// RTP. SIP 488.
	ErrSRTPRequired = errors.New("sipmedia: SRTP required")
	// ErrNoCommonCrypto: the offer is RTP/SAVP but none of its a=crypto
	// lines has a suite and parameters we can honour. SIP 488.
	ErrNoCommonCrypto = errors.New("sipmedia: no acceptable a=crypto")
	// ErrNoPorts: every RTP port of the PortRange is in use.
	ErrNoPorts = errors.New("sipmedia: no free RTP port")
	// ErrRTPTimeout: no RTP arrived for StreamConfig.RTPTimeout while the
	// remote was supposed to send. Returned by Stream.Err.
	ErrRTPTimeout = errors.New("sipmedia: RTP timeout")
	// ErrClosed is returned by Stream.Err after Close, and by a second
	// Close.
	ErrClosed = errors.New("sipmedia: stream closed")
)

// SDPError is a malformed SDP body (SIP 400). Line is the 1-based line
// number the problem was found on, 0 for the body as a whole.
type SDPError struct {
	Line int
	Msg  string
}

func (e *SDPError) Error() string {
	if e.Line == 0 {
		return "sipmedia: malformed SDP: " + e.Msg
	}
	return fmt.Sprintf("sipmedia: malformed SDP: line %d: %s", e.Line, e.Msg)
}

// StatusCode maps an error from Negotiate or ParseAnswer to the SIP
// response a UAS sends for it: 400 for *SDPError, 488 for the negotiation
// failures above, 500 for anything else, and 200 for nil.
func StatusCode(err error) int {
	var se *SDPError
	switch {
	case err == nil:
		return 200
	case errors.As(err, &se):
		return 400
	case errors.Is(err, ErrNoCommonCodec), errors.Is(err, ErrNoAudio),
		errors.Is(err, ErrSRTPRequired), errors.Is(err, ErrNoCommonCrypto):
		return 488
	default:
		return 500
	}
}
