package gateway

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/voicegw/voicegw/loadtest"
)

// TestAnswerAdvertisesNAT1To1: with NAT 1:1 addresses configured, the
// answer's host candidates carry the public address, on the one shared
// media port, and never the local one.
func TestAnswerAdvertisesNAT1To1(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ing, err := newWebRTCIngress(ICEConfig{UDPAddr: "127.0.0.1:0", LoopbackOnly: true, NAT1To1IPs: []string{"203.0.113.7"}}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer ing.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offer, err := loadtest.Offer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	leg, answer, err := ing.answer(offer, log)
	if err != nil {
		t.Fatal(err)
	}
	defer leg.Close()
	var cands []string
	for _, line := range strings.Split(answer, "\r\n") {
		if strings.HasPrefix(line, "a=candidate:") {
			cands = append(cands, line)
		}
	}
	if len(cands) == 0 {
		t.Fatalf("answer has no candidates:\n%s", answer)
	}
	port := ing.Addr().String()[strings.LastIndex(ing.Addr().String(), ":")+1:]
	for _, c := range cands {
		if !strings.Contains(c, " 203.0.113.7 "+port+" ") || strings.Contains(c, "127.0.0.1") {
			t.Errorf("candidate %q: want the public address on the mux port %s", c, port)
		}
	}
}
