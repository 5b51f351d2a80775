package rig

import (
	"fmt"
	"runtime"
	"time"
)

// CPUUsage is the rig process's CPU use over a run, so a run on a small
// machine shared with the gateway shows how much of it the rig took.
type CPUUsage struct {
	CPUSeconds  float64 `json:"cpu_seconds"`  // user + system time of the rig process
	WallSeconds float64 `json:"wall_seconds"` // the run's duration
	// OneCorePercent is CPUSeconds / WallSeconds × 100: 100 is one core
	// fully busy.
	OneCorePercent float64 `json:"percent_of_one_core"`
	// AllCoresPercent is OneCorePercent / NumCPU.
	AllCoresPercent float64 `json:"percent_of_all_cores"`
	NumCPU          int     `json:"num_cpu"`
	GOMAXPROCS      int     `json:"gomaxprocs"`
	// Available is false where the platform cannot measure process CPU.
	Available bool `json:"available"`
}

// String is "rig CPU: 12.3% of one core (6.2% of 2 cores, GOMAXPROCS 2)".
func (c CPUUsage) String() string {
	if !c.Available {
		return "rig CPU: not measured on this platform"
	}
	return fmt.Sprintf("rig CPU: %.1f%% of one core (%.1f%% of %d cores, GOMAXPROCS %d)",
		c.OneCorePercent, c.AllCoresPercent, c.NumCPU, c.GOMAXPROCS)
}

// cpuMeter measures CPU use from its start.
type cpuMeter struct {
	wall time.Time
	cpu  time.Duration
	ok   bool
}

func startCPU() cpuMeter {
	cpu, ok := processCPU()
	return cpuMeter{wall: time.Now(), cpu: cpu, ok: ok}
}

func (m cpuMeter) stop() CPUUsage {
	cpu, ok := processCPU()
	u := CPUUsage{WallSeconds: time.Since(m.wall).Seconds(), NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), Available: ok && m.ok}
	if !u.Available {
		return u
	}
	u.CPUSeconds = (cpu - m.cpu).Seconds()
	if u.WallSeconds > 0 {
		u.OneCorePercent = 100 * u.CPUSeconds / u.WallSeconds
		u.AllCoresPercent = u.OneCorePercent / float64(u.NumCPU)
	}
	return u
}
