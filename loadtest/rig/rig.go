// Package rig is the load-test rig behind "loadtest run" and "loadtest
// ramp": it places real calls against a voicegw gateway, measures them on
// the caller's own clock, and reports percentiles against service-level
// objectives (SLOs), so a deployment can be validated before it is trusted.
//
// # Open model (Run)
//
// Run schedules Calls arrivals at Rate calls per second: arrival i (from 0)
// starts at start + i/Rate whatever the earlier calls are doing. A slow
// gateway therefore cannot slow the arrivals down and hide its own latency
// (the "coordinated omission" of closed-loop testers); each arrival's
// lateness against its schedule is recorded as schedule_lag, a check on the
// rig itself. Concurrency caps the calls up at once: an arrival that finds
// the cap reached is dropped and counted as dropped_by_rig, never delayed,
// so the arrivals that are placed keep their schedule. Dropped arrivals mean
// the load offered was less than asked for; the report warns about them.
//
// # Closed model (Ramp)
//
// Ramp keeps C calls in flight (a new call as soon as one ends) at levels
// Start, Start+Step, … Max, evaluates the SLOs at each level and reports the
// highest level at which they held as the capacity. It stops at the first
// level that misses.
//
// # Transports
//
// A Dialer places calls and returns each once its media is connected; a Call
// speaks, hears and hangs up. WebRTC is built in (signaling over the
// gateway's WebSocket, then ICE and DTLS-SRTP, as the browser softphone
// does); any other transport plugs in through DialerFunc, as cmd/loadtest
// does for SIP trunk calls with loadtest/sipcall. A call that also has
// signaling events (EventSource) gives the gateway's turn timings.
//
// # What is measured
//
//   - setup: dial → media connected (WebRTC: signaling, ICE and DTLS; SIP:
//     INVITE → ACK). Minting a token, when the rig does, comes before and is
//     not counted.
//   - first_audio: per turn, the end of the caller's utterance (the moment
//     its last frame was sent, as Say reports) → the first received frame of
//     agent audio that is not silence (above -50 dBFS) after it. This is
//     what a caller experiences, on the caller's clock, including the
//     gateway's end-of-speech hangover, the backends and the network.
//   - gw_<stage>: the gateway's own turn timings from its "turn" event
//     (asr_final, llm_first_token, first_sentence, tts_first_byte,
//     first_audio, asr_to_first_token; milliseconds after the gateway
//     detected the end of speech). Only transports with signaling events
//     (WebRTC) report them.
//   - schedule_lag: how late Run started each arrival.
//
// Each turn speaks the utterance, then waits for the reply to finish (the
// gateway's turn event; on a transport without events, a second of agent
// silence after it spoke) or for the turn timeout. Calls end as completed,
// failed (dial or signaling errors, no reply in time, a turn outcome other
// than completed, with a reason each), refused (the gateway's rate_limited,
// us_person_required or unavailable, and 429 from /v1/tokens) or cut at the
// end of the run's time bound.
//
// # Precision
//
// Percentiles come from HDR histograms (Histogram) in microseconds from 0 to
// one hour with three significant digits: values below 2.048 ms are exact,
// larger ones share a slot with values within 1/1024 of them. A reported
// percentile is the top of its slot (capped at the exact maximum), so it is
// never below the true sample value and at most 0.1 % above it; an SLO is
// judged on that conservative value.
//
// # Exit codes (cmd/loadtest)
//
// 0: every SLO held, the failed ratio was within its bound and turns were
// measured (ramp: some level held). 2: an SLO or the failed ratio was missed
// (ramp: no level held). 1: an error: bad flags, gateway unreachable, no
// turn measured at all.
//
// # Rig overhead
//
// The rig's process CPU time (getrusage user + system) over the run is
// reported as a share of one core and of all cores, so numbers taken on a
// small machine shared with the gateway can be judged.
package rig
