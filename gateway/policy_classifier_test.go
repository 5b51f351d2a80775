package gateway

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/voicegw/voicegw/classifier"
	"github.com/voicegw/voicegw/telemetry"
)

// TestClassifierPolicyParty: the caller's party decides the action on
// controlled text and is what the audit record names: an attested U.S.
// person hears it, a caller the tenant treats as foreign (default_party)
// or whose status is unknown does not.
func TestClassifierPolicyParty(t *testing.T) {
	eng, err := classifier.Default()
	if err != nil {
		t.Fatal(err)
	}
	const controlled = "Torque the TVC actuator bolts to 45 in-lb, then null each jet vane within 0.1 degrees."
	for _, c := range []struct {
		caller    Caller
		wantParty string
		wantAllow bool
	}{
		{Caller{Tenant: "t", USPerson: true, AttestedBy: "FSO"}, "us-person", true},
		{Caller{Tenant: "t", USPerson: true, AttestedBy: "FSO", Party: "foreign"}, "us-person", true},
		{Caller{Tenant: "t", Party: "foreign"}, "foreign", false},
		{Caller{Tenant: "t"}, "unknown", false},
		{Caller{Tenant: "t", Party: "us-person"}, "unknown", false}, // only USPerson attests
	} {
		var buf bytes.Buffer
		p := &ClassifierPolicy{Engine: eng, Audit: telemetry.NewAudit(&buf, []byte("salt"))}
		d := p.NewCall(c.caller, "call_1").Check(controlled, Outbound, CheckMeta{Turn: 1, Ingress: "webrtc", Backend: "llm"})
		if got := d.Action == ActionAllow; got != c.wantAllow {
			t.Errorf("%+v: action %s, want allow=%v", c.caller, d.Action, c.wantAllow)
		}
		var rec struct {
			Party string `json:"party"`
		}
		if err := json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &rec); err != nil {
			t.Fatalf("%+v: audit record %q: %v", c.caller, buf.String(), err)
		}
		if rec.Party != c.wantParty {
			t.Errorf("%+v: audited party %q, want %q", c.caller, rec.Party, c.wantParty)
		}
	}
}
