package gateway

import "errors"

// Sentinel errors. Callers compare with errors.Is; messages are wrapped with
// context where they occur.
var (
	errNoAudioCodec   = errors.New("offer has no supported audio codec (need opus/48000/2 or PCMU/8000)")
	errNoAudioMedia   = errors.New("offer has no audio media section")
	errBadOffer       = errors.New("malformed offer")
	errCallInProgress = errors.New("a call is already in progress on this connection")
	errNoCall         = errors.New("no call in progress")
	errSessionClosed  = errors.New("session closed")
	errUnauthorized   = errors.New("unauthorized")
	errDraining       = errors.New("gateway is draining")
	errSignalingPanic = errors.New("signaling reader failed")
	errAuditFailing   = errors.New("the audit log is failing; calls are refused")
)

// Signaling error codes sent in {"type":"error","code":…}.
const (
	codeUnauthorized = "unauthorized"
	codeBadRequest   = "bad_request"
	codeRateLimited  = "rate_limited"
	codeInternal     = "internal"
	codeUnavailable  = "unavailable"
	// codeDraining refuses a call because the gateway is shutting down
	// (draining the calls in progress); retry on another replica.
	codeDraining = "draining"
	codeBackend  = "backend_error"
	// codeUSPersonRequired refuses a caller not attested as a U.S. person
	// on a U.S.-person-only tenant.
	codeUSPersonRequired = "us_person_required"
	// codeOfferTimeout closes a signaling socket that sent no offer in
	// time (HTTPLimits.OfferTimeout).
	codeOfferTimeout = "offer_timeout"
)
