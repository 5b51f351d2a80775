// Package telemetry holds voicegw's observability: structured logging (slog),
// Prometheus metrics kept as fields of one Metrics value (no package-level
// collectors), and the helpers that name every turn stage the same way in
// logs and metrics.
//
// A Metrics value owns its own prometheus.Registry, so tests and several
// gateways in one process never collide, and /metrics exposes exactly what
// the gateway registered plus the Go and process collectors.
package telemetry

import (
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Turn stages, measured from the caller's end of speech. The names are used
// as the "stage" label of voicegw_turn_stage_seconds and as the keys of the
// signaling "turn" event's timings.
const (
	StageASRFinal      = "asr_final"       // speech end → final transcript
	StageLLMFirstToken = "llm_first_token" // speech end → first LLM token
	StageFirstSentence = "first_sentence"  // speech end → first sentence cleared by the classifier
	StageTTSFirstByte  = "tts_first_byte"  // speech end → first TTS audio
	StageFirstAudio    = "first_audio"     // speech end → first reply audio packet sent
	// StageASRToFirstToken is the budgeted interval from final transcript to
	// first LLM token (not measured from speech end).
	StageASRToFirstToken = "asr_to_first_token"
)

// Metrics is the gateway's Prometheus instrumentation. Create it once with
// NewMetrics and pass it to the components that record into it.
type Metrics struct {
	Registry *prometheus.Registry

	CallsActive    *prometheus.GaugeVec     // ingress
	CallsTotal     *prometheus.CounterVec   // ingress, result
	TurnsTotal     *prometheus.CounterVec   // ingress, outcome
	TurnStage      *prometheus.HistogramVec // stage, ingress
	BudgetMisses   *prometheus.CounterVec   // stage, tenant
	BackendErrors  *prometheus.CounterVec   // role, backend
	BackendLatency *prometheus.HistogramVec // role, backend (time to first byte/token/transcript)
	SignalingErrs  *prometheus.CounterVec   // code
	BargeIns       *prometheus.CounterVec   // ingress
	PacketsRx      *prometheus.CounterVec   // ingress
	PacketsTx      *prometheus.CounterVec   // ingress
	PolicyActions  *prometheus.CounterVec   // direction, action
	LimitsShared   prometheus.Gauge         // 1 while tenant limits are shared through Redis
	LimitRefusals  *prometheus.CounterVec   // tenant, limit (call_rate, concurrency, llm_tokens)
	SIPRefusals    *prometheus.CounterVec   // status (SIP final responses ≥ 300 the gateway sent)
	Hedges         *prometheus.CounterVec   // role, tenant (a second backend started because the first was late)
	Fillers        *prometheus.CounterVec   // tenant (filler phrases played to keep the first-audio budget)
	AuditFailures  prometheus.Counter       // audit records that could not be written
	SessionPanics  *prometheus.CounterVec   // ingress (calls ended because a session goroutine panicked)
	HTTPConns      prometheus.Gauge         // open HTTP connections (WebSockets included)
	HTTPRefused    prometheus.Counter       // HTTP connections closed at accept: the connection cap was reached
}

// NewMetrics registers every voicegw collector on a fresh registry.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	stageBuckets := []float64{.05, .1, .15, .2, .3, .4, .5, .6, .7, .8, .9, 1, 1.2, 1.4, 1.6, 2, 2.5, 3, 5, 10}
	m := &Metrics{
		Registry: reg,
		CallsActive: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "voicegw_calls_active", Help: "Calls in progress.",
		}, []string{"ingress"}),
		CallsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "voicegw_calls_total", Help: "Calls ended, by ingress and result.",
		}, []string{"ingress", "result"}),
		TurnsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "voicegw_turns_total", Help: "Turns ended, by ingress and outcome (completed, barged_in, failed, blocked).",
		}, []string{"ingress", "outcome"}),
		TurnStage: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "voicegw_turn_stage_seconds",
			Help:    "Time from the caller's end of speech to each turn stage (asr_to_first_token: from final transcript).",
			Buckets: stageBuckets,
		}, []string{"stage", "ingress"}),
		BudgetMisses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "voicegw_budget_misses_total", Help: "Turns that missed a latency budget, by stage and tenant.",
		}, []string{"stage", "tenant"}),
		BackendErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "voicegw_backend_errors_total", Help: "Backend failures, by role (asr, llm, tts) and backend name.",
		}, []string{"role", "backend"}),
		BackendLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "voicegw_backend_first_response_seconds",
			Help:    "Backend time to first response (ASR: commit to final; LLM: first token; TTS: first audio).",
			Buckets: stageBuckets,
		}, []string{"role", "backend"}),
		SignalingErrs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "voicegw_signaling_errors_total", Help: "Error messages sent on signaling, by code.",
		}, []string{"code"}),
		BargeIns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "voicegw_barge_ins_total", Help: "Agent replies interrupted by caller speech.",
		}, []string{"ingress"}),
		PacketsRx: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "voicegw_rtp_packets_received_total", Help: "Inbound media packets.",
		}, []string{"ingress"}),
		PacketsTx: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "voicegw_rtp_packets_sent_total", Help: "Outbound media packets.",
		}, []string{"ingress"}),
		PolicyActions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "voicegw_policy_decisions_total", Help: "Classifier decisions, by direction and action.",
		}, []string{"direction", "action"}),
	}
	m.LimitsShared = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "voicegw_limits_shared", Help: "1 while tenant limits are shared across replicas through Redis, 0 while each replica enforces its local share.",
	})
	m.LimitRefusals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "voicegw_limit_refusals_total", Help: "Requests refused by a tenant's limits, by tenant and limit.",
	}, []string{"tenant", "limit"})
	m.SIPRefusals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "voicegw_sip_refusals_total", Help: "SIP requests the gateway refused, by response status.",
	}, []string{"status"})
	m.Hedges = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "voicegw_hedges_total", Help: "Requests sent to a second compliant backend because the first had not answered within the hedge delay, by role and tenant.",
	}, []string{"role", "tenant"})
	m.Fillers = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "voicegw_fillers_total", Help: "Filler phrases played because a turn's first audio would have missed its budget, by tenant.",
	}, []string{"tenant"})
	m.AuditFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "voicegw_audit_failures_total", Help: "Audit records that could not be written; after the first the gateway refuses new calls and blocks every decision it cannot record.",
	})
	m.SessionPanics = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "voicegw_session_panics_total", Help: "Calls ended because one of their goroutines panicked, by ingress.",
	}, []string{"ingress"})
		m.HTTPConns = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "voicegw_http_connections", Help: "Open HTTP connections, signaling WebSockets included.",
	})
	m.HTTPRefused = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "voicegw_http_connections_refused_total", Help: "HTTP connections closed as soon as accepted because the connection cap was reached.",
	})
	reg.MustRegister(m.LimitsShared, m.LimitRefusals, m.SIPRefusals, m.Hedges, m.Fillers, m.HTTPConns, m.HTTPRefused, m.AuditFailures, m.SessionPanics)
	// Publish the per-ingress series at zero so dashboards see them before
	// the first call.
	for _, ingress := range []string{"webrtc", "sip"} {
		m.CallsActive.WithLabelValues(ingress)
		m.BargeIns.WithLabelValues(ingress)
		m.PacketsRx.WithLabelValues(ingress)
		m.PacketsTx.WithLabelValues(ingress)
		m.SessionPanics.WithLabelValues(ingress)
	}
	reg.MustRegister(m.CallsActive, m.CallsTotal, m.TurnsTotal, m.TurnStage, m.BudgetMisses,
		m.BackendErrors, m.BackendLatency, m.SignalingErrs, m.BargeIns, m.PacketsRx, m.PacketsTx, m.PolicyActions)
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// NewLogger returns a slog logger writing to w. format is "json" or "text"
// (default text); level is debug, info (default), warn or error.
func NewLogger(w io.Writer, format, level string) *slog.Logger {
	var lv slog.Level
	switch strings.ToLower(level) {
	case "debug":
		lv = slog.LevelDebug
	case "warn", "warning":
		lv = slog.LevelWarn
	case "error":
		lv = slog.LevelError
	default:
		lv = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lv}
	if strings.EqualFold(format, "json") {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
