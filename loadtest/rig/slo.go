package rig

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Metric names. The rig's own measurements are taken on the caller's clock;
// the gw_ metrics are the gateway's turn timings as its turn event reports
// them (milliseconds after the end of the caller's speech).
const (
	// MetricSetup is dial → media connected (WebRTC: signaling, ICE and
	// DTLS; SIP: INVITE → ACK).
	MetricSetup = "setup"
	// MetricFirstAudio is the end of the caller's utterance (its last frame
	// sent) → the first non-silent frame of agent audio received after it.
	MetricFirstAudio = "first_audio"
	// MetricScheduleLag is how late an arrival was started against its
	// schedule (a measure of the rig's own health, not the gateway's).
	MetricScheduleLag = "schedule_lag"
)

// GatewayStages returns the turn timings the gateway reports; each becomes
// the metric "gw_<stage>".
func GatewayStages() []string {
	return []string{"asr_final", "llm_first_token", "first_sentence", "tts_first_byte", "first_audio", "asr_to_first_token"}
}

// Metrics lists every metric name in report order.
func Metrics() []string {
	out := []string{MetricSetup, MetricFirstAudio}
	for _, s := range GatewayStages() {
		out = append(out, "gw_"+s)
	}
	return append(out, MetricScheduleLag)
}

// Stats are the statistics an SLO may bound, with their quantiles.
var stats = []struct {
	name string
	q    float64
}{{"p50", 0.5}, {"p90", 0.9}, {"p95", 0.95}, {"p99", 0.99}, {"p999", 0.999}, {"p99.9", 0.999}, {"max", 1}}

// ErrSLO is wrapped by every SLO parse error.
var ErrSLO = errors.New("bad SLO")

// SLO is one service-level objective: a statistic of a metric is at most
// (or below) a bound, e.g. first_audio_p99<=1400ms.
type SLO struct {
	Expr     string        // as written, without spaces
	Metric   string        // a name from Metrics
	Stat     string        // p50, p90, p95, p99, p999 or max
	Quantile float64       // the statistic's quantile; 1 for max
	Bound    time.Duration // the objective
	Strict   bool          // "<" rather than "<="
}

// ParseSLOs parses a comma-separated list of METRIC_STAT<=DURATION terms.
// METRIC is a name from Metrics; a gateway stage may omit its gw_ prefix
// unless the rig has a metric of that name (first_audio is the caller's;
// gw_first_audio the gateway's). STAT is p50, p90, p95, p99, p999 (or
// p99.9) or max. The operator is <= or <; DURATION is a Go duration with a
// unit (1400ms, 1.4s). An empty string gives no SLOs.
func ParseSLOs(s string) ([]SLO, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []SLO
	for i, term := range strings.Split(s, ",") {
		slo, err := parseSLO(strings.Join(strings.Fields(term), ""))
		if err != nil {
			return nil, fmt.Errorf("%w: term %d: %w", ErrSLO, i+1, err)
		}
		out = append(out, slo)
	}
	return out, nil
}

func parseSLO(term string) (SLO, error) {
	if term == "" {
		return SLO{}, errors.New("empty (two commas in a row, or a trailing comma?)")
	}
	for _, op := range []string{">=", ">", "==", "="} {
		if strings.Contains(term, op) && !strings.Contains(term, "<") {
			return SLO{}, fmt.Errorf("%q: operator %q not supported; an SLO is an upper bound: METRIC_STAT<=DURATION", term, op)
		}
	}
	i := strings.IndexByte(term, '<')
	if i < 0 {
		return SLO{}, fmt.Errorf("%q: no operator; want METRIC_STAT<=DURATION, e.g. first_audio_p99<=1400ms", term)
	}
	left, right, strict := term[:i], term[i+1:], true
	if strings.HasPrefix(right, "=") {
		right, strict = right[1:], false
	}
	slo := SLO{Expr: term, Strict: strict}
	u := strings.LastIndexByte(left, '_')
	if u <= 0 || u == len(left)-1 {
		return SLO{}, fmt.Errorf("%q: %q has no statistic; want METRIC_STAT with STAT one of p50, p90, p95, p99, p999, max", term, left)
	}
	metric, stat := left[:u], left[u+1:]
	// "first_audio_p99.9" splits at the last underscore too, so p99.9 is whole.
	found := false
	for _, st := range stats {
		if st.name == stat {
			slo.Stat, slo.Quantile, found = strings.ReplaceAll(st.name, ".", ""), st.q, true
		}
	}
	if !found {
		return SLO{}, fmt.Errorf("%q: unknown statistic %q; want p50, p90, p95, p99, p999 or max", term, stat)
	}
	known := Metrics()
	switch {
	case slices.Contains(known, metric):
		slo.Metric = metric
	case slices.Contains(GatewayStages(), metric):
		slo.Metric = "gw_" + metric
	default:
		return SLO{}, fmt.Errorf("%q: unknown metric %q; known: %s", term, metric, strings.Join(known, ", "))
	}
	if right == "" {
		return SLO{}, fmt.Errorf("%q: no bound after the operator", term)
	}
	d, err := time.ParseDuration(right)
	if err != nil {
		return SLO{}, fmt.Errorf("%q: bound %q is not a duration with a unit (e.g. 1400ms, 1.4s)", term, right)
	}
	if d <= 0 {
		return SLO{}, fmt.Errorf("%q: bound %s must be positive", term, right)
	}
	slo.Bound = d
	return slo, nil
}

// Verdict is an SLO evaluated against measurements.
type Verdict struct {
	SLO   SLO
	Value time.Duration // the measured statistic (0 with no data)
	Count int64         // values measured for the metric
	OK    bool          // the objective held (false with no data)
}

// Evaluate checks s against the histogram of its metric (nil or empty: no
// data, which fails).
func (s SLO) Evaluate(h *Histogram) Verdict {
	v := Verdict{SLO: s}
	if h == nil || h.Count() == 0 {
		return v
	}
	v.Count = h.Count()
	v.Value = Duration(h.ValueAtQuantile(s.Quantile))
	if s.Strict {
		v.OK = v.Value < s.Bound
	} else {
		v.OK = v.Value <= s.Bound
	}
	return v
}

// String is a verdict line: "PASS first_audio_p99<=1400ms: 1234.5 ms (n=60)".
func (v Verdict) String() string {
	if v.Count == 0 {
		return fmt.Sprintf("FAIL %s: no data", v.SLO.Expr)
	}
	word := "PASS"
	if !v.OK {
		word = "FAIL"
	}
	return fmt.Sprintf("%s %s: %s ms (n=%d)", word, v.SLO.Expr, ms(v.Value), v.Count)
}

// ms formats a duration in milliseconds with one decimal.
func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond)) }
