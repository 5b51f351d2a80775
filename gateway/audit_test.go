package gateway

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/voicegw/voicegw/loadtest"
	"github.com/voicegw/voicegw/telemetry"
)

// fullDisk is a writer whose every write fails as on a full disk:
// /dev/full where there is one, otherwise a writer returning ENOSPC's
// message.
func fullDisk(t *testing.T) io.Writer {
	t.Helper()
	f, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		return failingWriter{}
	}
	t.Cleanup(func() { f.Close() })
	return f
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("no space left on device") }

const controlledText = "Torque the TVC actuator bolts to 45 in-lb, then null each jet vane within 0.1 degrees."

// TestAuditFailureFailsClosed: with the audit log on a full disk, two
// decisions that must be recorded are both blocks (even the one an
// attested U.S. person would have been allowed), each failure is logged
// and counted, /readyz turns not ready, and new calls are refused on
// WebRTC signaling and on SIP (503 with Retry-After).
func TestAuditFailureFailsClosed(t *testing.T) {
	st := startTestStack(t, stackOptions{audit: telemetry.NewAudit(fullDisk(t), []byte("salt"))})
	if code, body := st.get(t, "/readyz"); code != 200 || !strings.Contains(body, `"audit":"ok"`) {
		t.Fatalf("/readyz before any failure: %d %s", code, body)
	}
	pol := st.srv.cfg.Policy
	us := Caller{Tenant: "dev", Subject: "alice", USPerson: true, AttestedBy: "FSO"}
	if d := pol.NewCall(us, "call_us").Check(controlledText, Outbound, CheckMeta{Turn: 1, Ingress: "webrtc"}); d.Action != ActionBlock {
		t.Errorf("U.S. person, controlled text, audit failing: action %s, want block (an unrecorded decision is not released)", d.Action)
	}
	if d := pol.NewCall(Caller{Tenant: "dev", Subject: "bob"}, "call_unknown").Check(controlledText, Outbound, CheckMeta{Turn: 1, Ingress: "sip"}); d.Action != ActionBlock {
		t.Errorf("unknown party, controlled text: action %s, want block", d.Action)
	}
	if got := st.metric(t, "voicegw_audit_failures_total"); got != "voicegw_audit_failures_total 2" {
		t.Errorf("audit failure counter: %q, want 2", got)
	}
	if n := strings.Count(st.logs.String(), "audit record not written"); n != 2 {
		t.Errorf("%d audit failures logged, want 2:\n%s", n, st.logs.String())
	}
	code, body := st.get(t, "/readyz")
	if code != 503 || !strings.Contains(body, `"ready":false`) || !strings.Contains(body, `"audit":"failing"`) {
		t.Errorf("/readyz with the audit log failing: %d %s, want 503 not ready", code, body)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := loadtest.Dial(ctx, loadtest.CallerConfig{Gateway: st.base, Token: "tok", Codec: "pcmu"})
	var se *loadtest.SignalingError
	if !errors.As(err, &se) || se.Code != codeUnavailable {
		if c != nil {
			c.Close()
		}
		t.Errorf("WebRTC call with the audit log failing: %v, want an %q refusal", err, codeUnavailable)
	}

	u := udpClient(t)
	code, hdrs := exchange(t, u, st.srv.SIPAddr("udp"), sipRequest("INVITE", "1", u.LocalAddr().String(), nextBranch()), 5*time.Second)
	if code != 503 || len(header(hdrs, "Retry-After")) != 1 {
		t.Errorf("SIP INVITE with the audit log failing: %d %v, want 503 with Retry-After", code, hdrs)
	}
	if st.srv.ActiveCalls() != 0 {
		t.Errorf("%d calls admitted with the audit log failing", st.srv.ActiveCalls())
	}
}
