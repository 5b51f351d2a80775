package sipmedia

import (
	"errors"
	"time"
)

// Digit is one RFC 4733 telephone-event received from the remote.
type Digit struct {
	// Key is '0'-'9', '*', '#' or 'A'-'D'.
	Key rune
	// Duration is the event's duration from its end packet.
	Duration time.Duration
}

const dtmfKeys = "0123456789*#ABCD"

var errDTMF = errors.New("malformed telephone-event")

// dtmfState de-duplicates events: all packets of one event carry the
// event's RTP timestamp, and the end packet is sent three times.
type dtmfState struct {
	lastEndTS uint32
	haveEnd   bool
}

// event parses an RFC 4733 §2.3 payload (event, E|R|volume, duration) and
// returns the digit when this packet ends an event not reported yet.
func (s *dtmfState) event(payload []byte, ts uint32, clockRate int) (Digit, bool, error) {
	if len(payload) < 4 {
		return Digit{}, false, errDTMF
	}
	ev := payload[0]
	end := payload[1]&0x80 != 0
	dur := uint16(payload[2])<<8 | uint16(payload[3])
	if ev >= 16 { // other events (tones, flash) are not digits
		return Digit{}, false, nil
	}
	if !end || (s.haveEnd && s.lastEndTS == ts) {
		return Digit{}, false, nil
	}
	s.lastEndTS, s.haveEnd = ts, true
	if clockRate <= 0 {
		clockRate = 8000
	}
	return Digit{Key: rune(dtmfKeys[ev]), Duration: time.Duration(dur) * time.Second / time.Duration(clockRate)}, true, nil
}
