package telemetry

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

func TestAuditHashesAndWrites(t *testing.T) {
	var b bytes.Buffer
	a := NewAudit(&b, []byte("salt-1"))
	h1, h2 := a.Hash("thrust vector control"), a.Hash("thrust vector control")
	if h1 != h2 || len(h1) != 32 {
		t.Fatalf("hash not stable 128-bit hex: %q %q", h1, h2)
	}
	if other := NewAudit(io.Discard, []byte("salt-2")).Hash("thrust vector control"); other == h1 {
		t.Error("different salts give the same hash")
	}
	if err := a.Write(AuditRecord{Tenant: "t", Call: "c", Direction: "outbound", Party: "unknown", Action: "block", SpanHashes: []string{h1}}); err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(b.Bytes(), &rec); err != nil {
		t.Fatalf("record is not one JSON line: %v: %q", err, b.String())
	}
	if rec["event"] != "policy_decision" || rec["time"] == "" || strings.Contains(b.String(), "thrust") {
		t.Errorf("record %v: want event, time, and no raw text", rec)
	}
	failing := NewAudit(errWriter{}, nil)
	if err := failing.Write(AuditRecord{}); err == nil || failing.Failures() != 1 {
		t.Errorf("write failure not reported: %v, %d", err, failing.Failures())
	}
}

type errWriter struct{}

func (errWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestMetricsExposition(t *testing.T) {
	m := NewMetrics()
	m.TurnStage.WithLabelValues(StageFirstAudio, "webrtc").Observe(1.2)
	m.BudgetMisses.WithLabelValues(StageFirstAudio, "dev").Inc()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`voicegw_turn_stage_seconds_count{ingress="webrtc",stage="first_audio"} 1`,
		`voicegw_budget_misses_total{stage="first_audio",tenant="dev"} 1`,
		`voicegw_calls_active{ingress="sip"} 0`,
		`voicegw_audit_failures_total 0`,
		`voicegw_session_panics_total{ingress="webrtc"} 0`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestAuditFailureLatchedAndReported: a record that cannot be written (a
// full disk) is reported to the hook with its error, and Err stays set
// after it, so the gateway can refuse calls until an operator restarts it.
func TestAuditFailureLatchedAndReported(t *testing.T) {
	f, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("/dev/full: %v", err)
		}
		t.Skipf("/dev/full: %v", err)
	}
	defer f.Close()
	a := NewAudit(f, []byte("salt"))
	if a.Err() != nil {
		t.Fatalf("fresh audit reports %v", a.Err())
	}
	var hooked []error
	a.OnFailure(func(err error) { hooked = append(hooked, err) })
	for range 2 {
		if err := a.Write(AuditRecord{Tenant: "t", Action: "block"}); err == nil {
			t.Fatal("write to /dev/full succeeded")
		}
	}
	if len(hooked) != 2 || a.Failures() != 2 {
		t.Errorf("hook saw %d failures, Failures() = %d; want 2 and 2", len(hooked), a.Failures())
	}
	if err := a.Err(); err == nil || !strings.Contains(err.Error(), "audit: write") {
		t.Errorf("Err() = %v, want the first write failure", err)
	}
}
