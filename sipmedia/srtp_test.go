package sipmedia

import (
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/voicegw/voicegw/media/mediatest"
)

func protect(t *testing.T, key []byte, mki []byte, seq uint16) []byte {
	t.Helper()
	var opts []srtp.ContextOption
	if mki != nil {
		opts = append(opts, srtp.MasterKeyIndicator(mki))
	}
	ctx, err := srtp.CreateContext(key[:16], key[16:], srtp.ProtectionProfileAes128CmHmacSha1_80, opts...)
	if err != nil {
		t.Fatal(err)
	}
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: seq, Timestamp: uint32(seq) * 160, SSRC: 5}, Payload: mulawTone(160, 0)}
	raw, _ := pkt.Marshal()
	out, err := ctx.EncryptRTP(nil, raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSRTPInbound(t *testing.T) {
	const suite = "AES_CM_128_HMAC_SHA1_80"
	remote, _ := newLocalKey(suite)
	other, _ := newLocalKey(suite)
	local, _ := newLocalKey(suite)
	from := addrOf(&Conn{port: 7000})
	setup := func(sd *SDES) *Stream {
		s := rxHarness(t, CodecPCMU)
		s.plan.SRTP = sd
		if err := s.setKeys(sd); err != nil {
			t.Fatal(err)
		}
		return s
	}

	s := setup(&SDES{Suite: suite, RemoteKey: remote, LocalKey: local})
	s.handlePacket(protect(t, other, nil, 1), from) // forged: another key
	raw := protect(t, remote, nil, 2)
	tampered := append([]byte(nil), raw...)
	tampered[20] ^= 1
	s.handlePacket(tampered, from)
	if s.rxPackets.Load() != 0 || s.rxDropped.Load() != 2 || s.latched {
		t.Fatalf("forged packets: rx %d dropped %d latched %v", s.rxPackets.Load(), s.rxDropped.Load(), s.latched)
	}
	s.handlePacket(raw, from)
	s.handlePacket(raw, from) // replay
	if s.rxPackets.Load() != 1 || s.rxDropped.Load() != 3 || !s.latched {
		t.Fatalf("genuine + replay: rx %d dropped %d", s.rxPackets.Load(), s.rxDropped.Load())
	}

	// MKI 1:4 in the offer: packets must carry it; lifetime 2 packets.
	s = setup(&SDES{Suite: suite, RemoteKey: remote, LocalKey: local, RemoteMKI: []byte{0, 0, 0, 1}, RemoteLifetime: 2})
	s.handlePacket(protect(t, remote, nil, 1), from)
	if s.rxPackets.Load() != 0 {
		t.Fatal("packet without the MKI accepted")
	}
	for seq := uint16(2); seq < 5; seq++ {
		s.handlePacket(protect(t, remote, []byte{0, 0, 0, 1}, seq), from)
	}
	if s.rxPackets.Load() != 2 || s.rxDropped.Load() != 2 {
		t.Errorf("lifetime 2: rx %d dropped %d", s.rxPackets.Load(), s.rxDropped.Load())
	}
}

// TestStreamHoldHasNoTimeout runs the playout on a fake clock: on hold
// (the remote is recvonly) far more than the timeout passes without RTP
// and the stream lives; back to sendrecv it times out.
func TestStreamHoldHasNoTimeout(t *testing.T) {
	ca, cb := listen(t), listen(t)
	_, pb := plans(CodecPCMU, 0, ca, cb, 20*time.Millisecond, 20*time.Millisecond, "")
	pb.Direction = RecvOnly
	clock := mediatest.NewFakeClock(t0)
	b := newStream(t, cb, pb, StreamConfig{Clock: clock, RTPTimeout: time.Second})
	deadline := time.Now().Add(10 * time.Second)
	for clock.Now().Sub(t0) < 20*time.Second {
		if time.Now().After(deadline) {
			t.Fatal("fake clock did not advance")
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case <-b.Done():
		t.Fatalf("ended on hold: %v", b.Err())
	default:
	}
	resumed := *pb
	resumed.Direction = SendRecv
	if err := b.Update(&resumed); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("no timeout after resuming")
	}
}
