package gateway

// Leg is one call's media connection to the caller, whatever the ingress.
// It is implemented by webrtcLeg (and later by the SIP leg): the session
// never knows which.
type Leg interface {
	// Frames delivers the caller's audio as 20 ms frames of mono PCM16 at
	// media.PipelineRate. The channel is closed when the caller's audio ends.
	Frames() <-chan []int16
	// WriteFrame sends one 20 ms frame at media.PipelineRate to the caller.
	// Only the session's player calls it, from one goroutine.
	WriteFrame(pcm []int16) error
	// Done is closed when the media path has failed or closed.
	Done() <-chan struct{}
	// Stats returns the leg's packet counters.
	Stats() LegStats
	// Ingress names the ingress ("webrtc", "sip") for metrics and logs.
	Ingress() string
	// Close ends the media and waits for the leg's goroutines.
	Close() error
}

// LegStats counts a leg's media packets.
type LegStats struct {
	RxPackets uint64 `json:"rxPackets"`
	TxPackets uint64 `json:"txPackets"`
	RxDropped uint64 `json:"rxDropped"`
}
