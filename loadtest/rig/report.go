package rig

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// MetricSummary is one metric's statistics in milliseconds.
type MetricSummary struct {
	Count   int64   `json:"count"`
	P50     float64 `json:"p50_ms"`
	P90     float64 `json:"p90_ms"`
	P95     float64 `json:"p95_ms"`
	P99     float64 `json:"p99_ms"`
	P999    float64 `json:"p999_ms"`
	Max     float64 `json:"max_ms"`
	Min     float64 `json:"min_ms"`
	Mean    float64 `json:"mean_ms"`
	Clamped int64   `json:"clamped,omitempty"`
}

func msf(us int64) float64 { return float64(us) / 1000 }

// Summarize returns h's statistics in milliseconds.
func Summarize(h *Histogram) MetricSummary {
	return MetricSummary{
		Count: h.Count(),
		P50:   msf(h.ValueAtQuantile(0.5)), P90: msf(h.ValueAtQuantile(0.9)), P95: msf(h.ValueAtQuantile(0.95)),
		P99: msf(h.ValueAtQuantile(0.99)), P999: msf(h.ValueAtQuantile(0.999)), Max: msf(h.Max()),
		Min: msf(h.Min()), Mean: h.Mean() / 1000, Clamped: h.Clamped(),
	}
}

// SLOReport is one evaluated SLO.
type SLOReport struct {
	Expr    string  `json:"expr"`
	ValueMS float64 `json:"value_ms"`
	Count   int64   `json:"count"`
	OK      bool    `json:"ok"`
}

// FailedRatioReport is the share of started calls that failed or were
// refused, against its bound.
type FailedRatioReport struct {
	Value float64 `json:"value"`
	Max   float64 `json:"max"`
	OK    bool    `json:"ok"`
}

// Measurements is the JSON form of a Result without the run's config.
type Measurements struct {
	Transport   string                   `json:"transport"`
	StartedAt   time.Time                `json:"started_at"`
	DurationMS  int64                    `json:"duration_ms"`
	Calls       CallCounts               `json:"calls"`
	Turns       TurnCounts               `json:"turns"`
	Metrics     map[string]MetricSummary `json:"metrics"`
	SLO         []SLOReport              `json:"slo"`
	FailedRatio FailedRatioReport        `json:"failed_ratio"`
	OK          bool                     `json:"ok"`
}

// Measurements returns r in its JSON form; metrics without data are left
// out.
func (r *Result) Measurements() Measurements {
	m := Measurements{
		Transport: r.Transport, StartedAt: r.StartedAt.UTC(), DurationMS: r.Duration.Milliseconds(),
		Calls: r.Calls, Turns: r.Turns, Metrics: map[string]MetricSummary{}, SLO: []SLOReport{},
		FailedRatio: FailedRatioReport{Value: r.FailedRatio, Max: r.MaxFailedRatio, OK: r.FailedOK}, OK: r.OK(),
	}
	for name, h := range r.Metrics {
		if h.Count() > 0 {
			m.Metrics[name] = Summarize(h)
		}
	}
	for _, v := range r.Verdicts {
		m.SLO = append(m.SLO, SLOReport{Expr: v.SLO.Expr, ValueMS: float64(v.Value) / float64(time.Millisecond), Count: v.Count, OK: v.OK})
	}
	return m
}

// RunReport is the JSON document of a run.
type RunReport struct {
	Config any `json:"config"`
	Measurements
	RigCPU CPUUsage `json:"rig_cpu"`
}

// Report returns the run's JSON document with config (any JSON-encodable
// description of how the run was configured).
func (r *Result) Report(config any) RunReport {
	return RunReport{Config: config, Measurements: r.Measurements(), RigCPU: r.CPU}
}

// WriteTable writes one aligned row per metric that has data: count and
// p50, p90, p95, p99, p99.9 and max in milliseconds.
func WriteTable(w io.Writer, metrics map[string]*Histogram) {
	names := Metrics()
	for name := range metrics {
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	width := len("metric")
	for _, n := range names {
		if h := metrics[n]; h != nil && h.Count() > 0 {
			width = max(width, len(n))
		}
	}
	fmt.Fprintf(w, "%-*s %7s %9s %9s %9s %9s %9s %9s\n", width, "metric (ms)", "count", "p50", "p90", "p95", "p99", "p99.9", "max")
	for _, n := range names {
		h := metrics[n]
		if h == nil || h.Count() == 0 {
			continue
		}
		s := Summarize(h)
		fmt.Fprintf(w, "%-*s %7d %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f\n", width, n, s.Count, s.P50, s.P90, s.P95, s.P99, s.P999, s.Max)
	}
}

// WriteText writes the human-readable report: call counts, reasons, the
// metrics table, SLO verdicts and the rig's CPU use.
func (r *Result) WriteText(w io.Writer) {
	c := r.Calls
	fmt.Fprintf(w, "transport %s, %.1f s: %d calls scheduled, %d started, %d completed, %d failed, %d refused, %d cut at end, %d dropped by rig, %d not started\n",
		r.Transport, r.Duration.Seconds(), c.Scheduled, c.Started, c.Completed, c.Failed, c.Refused, c.CutAtEnd, c.DroppedByRig, c.NotStarted)
	if len(c.Reasons) > 0 {
		fmt.Fprintf(w, "reasons: %s\n", formatReasons(c.Reasons))
		for _, k := range sortedKeys(c.Examples) {
			fmt.Fprintf(w, "  %s: %s\n", k, c.Examples[k])
		}
	}
	if c.DroppedByRig > 0 {
		fmt.Fprintf(w, "warning: %d arrivals found the rig's concurrency cap reached and were dropped; raise --concurrency to offer the full load\n", c.DroppedByRig)
	}
	fmt.Fprintf(w, "turns: %d started, %d completed\n\n", r.Turns.Started, r.Turns.Completed)
	WriteTable(w, r.Metrics)
	fmt.Fprintln(w)
	r.WriteVerdicts(w)
	fmt.Fprintln(w, r.CPU)
}

// WriteVerdicts writes one line per SLO and one for the failed ratio.
func (r *Result) WriteVerdicts(w io.Writer) {
	for _, v := range r.Verdicts {
		fmt.Fprintln(w, v)
	}
	word := "PASS"
	if !r.FailedOK {
		word = "FAIL"
	}
	fmt.Fprintf(w, "%s failed_ratio<=%s: %s (%d of %d started calls failed or were refused)\n",
		word, pct(r.MaxFailedRatio), pct(r.FailedRatio), r.Calls.Failed+r.Calls.Refused, r.Calls.Started)
	if r.Measured() == 0 {
		fmt.Fprintln(w, "FAIL no turn was measured")
	}
}

func pct(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) }

func formatReasons(m map[string]int) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
