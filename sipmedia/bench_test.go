package sipmedia

import (
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/voicegw/voicegw/media"
	"github.com/voicegw/voicegw/media/mediatest"
)

// BenchmarkInboundPCMU is the receive cost of one 20 ms frame: RTP parse,
// jitter buffer, G.711 decode and 8→16 kHz resampling.
func BenchmarkInboundPCMU(b *testing.B) {
	s := rxHarness(b, CodecPCMU)
	from := addrOf(&Conn{port: 5000})
	payload := mulawTone(160, 0)
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SSRC: 1}, Payload: payload}
	raw := make([]byte, 12+160)
	now := t0
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		pkt.SequenceNumber, pkt.Timestamp = uint16(i), uint32(i*160)
		n, _ := pkt.MarshalTo(raw)
		s.handlePacket(raw[:n], from)
		now = now.Add(20 * time.Millisecond)
		s.mu.Lock()
		s.nextFrameLocked(now)
		s.mu.Unlock()
		i++
	}
}

// BenchmarkOutboundPCMU is the send cost of one 20 ms frame: 16→8 kHz
// resampling, G.711 encoding and RTP packetisation (socket write
// excluded).
func BenchmarkOutboundPCMU(b *testing.B) {
	enc, err := newEncoder(&Plan{Codec: CodecPCMU, PTime: 20 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	frame := mediatest.Sine(media.PipelineRate, 1000, 0.5, frameSamples)
	buf := make([]byte, 1500)
	var seq uint16
	emit := func(payload []byte, samples uint32) error {
		h := rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * samples, SSRC: 1}
		n, _ := h.MarshalTo(buf)
		copy(buf[n:], payload)
		seq++
		return nil
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := enc.encode(frame, emit); err != nil {
			b.Fatal(err)
		}
	}
}

func benchSRTP(b *testing.B, suite string, decrypt bool) {
	k, _ := newLocalKey(suite)
	sd := &SDES{Suite: suite, LocalKey: k, RemoteKey: k}
	rx, tx, err := sd.contexts()
	if err != nil {
		b.Fatal(err)
	}
	h := rtp.Header{Version: 2, SSRC: 1}
	plain := make([]byte, 12+160)
	out := make([]byte, 0, 1500)
	dec := make([]byte, 0, 1500)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		h.SequenceNumber, h.Timestamp = uint16(i), uint32(i*160)
		_, _ = h.MarshalTo(plain)
		enc, err := tx.EncryptRTP(out[:0], plain, nil)
		if err != nil {
			b.Fatal(err)
		}
		if decrypt {
			if _, err := rx.DecryptRTP(dec[:0], enc, nil); err != nil {
				b.Fatal(err)
			}
		}
		i++
	}
}

// BenchmarkSRTPProtect encrypts one 20 ms PCMU packet; Unprotect adds its
// decryption (so it is protect + unprotect).
func BenchmarkSRTPProtect(b *testing.B) { benchSRTP(b, "AES_CM_128_HMAC_SHA1_80", false) }
func BenchmarkSRTPProtectUnprotect(b *testing.B) {
	benchSRTP(b, "AES_CM_128_HMAC_SHA1_80", true)
}
func BenchmarkSRTPProtectUnprotectGCM(b *testing.B) { benchSRTP(b, "AEAD_AES_128_GCM", true) }
