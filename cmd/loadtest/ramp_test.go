package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/voicegw/voicegw/loadtest/rig"
)

// rampReport is the part of ramp's JSON document the tests read.
type rampReport struct {
	Steps []struct {
		Concurrency int  `json:"concurrency"`
		Held        bool `json:"held"`
		Calls       struct {
			Started, Completed int
		} `json:"calls"`
		Metrics map[string]rig.MetricSummary `json:"metrics"`
		SLO     []rig.SLOReport              `json:"slo"`
	} `json:"steps"`
	Capacity int          `json:"capacity"`
	Stopped  string       `json:"stopped"`
	RigCPU   rig.CPUUsage `json:"rig_cpu"`
	Config   struct {
		Max          int `json:"max"`
		CallsPerStep int `json:"calls_per_step"`
	} `json:"config"`
}

// TestRampCapacity: levels 1, 2 and 3 each hold a lenient SLO, so the
// capacity is the highest level tried; each level is one line.
func TestRampCapacity(t *testing.T) {
	gw := startGateway(t)
	out := filepath.Join(t.TempDir(), "ramp.json")
	code, stdout, _ := loadtest(t, "ramp", "--gateway", gw, "--token", testToken, "--start", "1", "--step", "1", "--max", "3",
		"--calls-per-step", "1", "--step-duration", "30s", "--audio", shortUtterance(t), "--slo", "first_audio_p99<=30s", "--json", out)
	if code != exitOK {
		t.Fatalf("exit %d, want 0", code)
	}
	for _, want := range []string{"step   1 concurrent:   1 calls", "step   2 concurrent:   2 calls", "step   3 concurrent:   3 calls", "SLOs held", "capacity: 3 concurrent calls", "rig CPU: "} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q", want)
		}
	}
	var rep rampReport
	readJSON(t, out, &rep)
	if rep.Capacity != 3 || len(rep.Steps) != 3 || rep.Config.Max != 3 || rep.Config.CallsPerStep != 1 {
		t.Fatalf("capacity %d, %d steps, config %+v; want 3 and 3", rep.Capacity, len(rep.Steps), rep.Config)
	}
	for i, s := range rep.Steps {
		if s.Concurrency != i+1 || !s.Held || s.Calls.Started != i+1 || s.Calls.Completed != i+1 || s.Metrics["first_audio"].Count != int64(i+1) {
			t.Errorf("step %d: %+v; want level %d held with %d calls measured", i, s, i+1, i+1)
		}
	}
	if !rep.RigCPU.Available {
		t.Errorf("rig_cpu %+v", rep.RigCPU)
	}
}

// TestRampNoCapacity: an objective that cannot hold stops the ramp at its
// first level with exit 2.
func TestRampNoCapacity(t *testing.T) {
	gw := startGateway(t)
	code, stdout, _ := loadtest(t, "ramp", "--gateway", gw, "--token", testToken, "--max", "3", "--calls-per-step", "1",
		"--audio", shortUtterance(t), "--slo", "first_audio_p50<=1ms", "--progress=false")
	if code != exitMissed {
		t.Errorf("exit %d, want 2", code)
	}
	for _, want := range []string{"step   1 concurrent", "SLOs MISSED ([first_audio_p50<=1ms])", "capacity: none", "the SLOs did not hold at 1 concurrent calls"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q", want)
		}
	}
	if strings.Contains(stdout, "step   2") {
		t.Error("the ramp went on after a level missed its SLOs")
	}
}
