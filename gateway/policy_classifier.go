package gateway

import (
	"sync"

	"github.com/voicegw/voicegw/classifier"
	"github.com/voicegw/voicegw/telemetry"
)

// ClassifierPolicy is the deemed-export Policy: the classifier's compiled
// rule pack, an audit log, and the party each caller is treated as (a
// verified U.S. person when the token attests it, otherwise the tenant's
// default party, "unknown" or "foreign", which the classifier treats alike
// but audits apart).
type ClassifierPolicy struct {
	Engine *classifier.Engine
	Audit  *telemetry.Audit
}

// NewCall implements Policy.
func (p *ClassifierPolicy) NewCall(caller Caller, callID string) CallPolicy {
	party := classifier.PartyUnknown
	switch {
	case caller.USPerson:
		party = classifier.PartyUSPerson
	case caller.Party == string(classifier.PartyForeign):
		party = classifier.PartyForeign
	}
	return &classifierCall{p: p, party: party, caller: caller, callID: callID, sess: p.Engine.NewSession()}
}

// classifierCall keeps one call's classifier session: topic carry from the
// caller's words to the model's and the piecemeal-extraction accumulator.
// Inbound texts are checked on the session goroutine and outbound ones on
// the turn's TTS stage, so the session is guarded by a mutex.
type classifierCall struct {
	p      *ClassifierPolicy
	party  classifier.Party
	caller Caller
	callID string

	mu   sync.Mutex
	sess *classifier.Session
}

// Check implements CallPolicy. Every decision that is not a plain allow,
// and every decision on marked or controlled text, is audited with salted
// hashes of the matched spans, never the text. A decision whose record
// cannot be written becomes a block.
func (c *classifierCall) Check(text string, dir Direction, meta CheckMeta) PolicyDecision {
	cdir := classifier.Inbound
	if dir == Outbound {
		cdir = classifier.Outbound
	}
	c.mu.Lock()
	d := c.sess.Classify(text, c.party, cdir)
	c.mu.Unlock()
	out := PolicyDecision{Action: string(d.Action), Categories: d.Categories, Rules: d.Rules, Redacted: d.Redacted}
	if c.p.Audit == nil || (d.Action == classifier.Allow && !d.Controlled && len(d.Markings) == 0) {
		return out
	}
	err := c.p.Audit.Write(telemetry.AuditRecord{
		Tenant:      c.caller.Tenant,
		Subject:     c.caller.Subject,
		Call:        c.callID,
		Ingress:     meta.Ingress,
		Turn:        meta.Turn,
		Direction:   string(dir),
		Party:       string(c.party),
		AttestedBy:  c.caller.AttestedBy,
		Backend:     meta.Backend,
		Action:      string(d.Action),
		Controlled:  d.Controlled,
		Score:       d.Score,
		Categories:  d.Categories,
		Rules:       d.Rules,
		Markings:    d.Markings,
		SpanHashes:  d.SpanHashes(c.p.Audit.Salt(), text),
		TextHash:    c.p.Audit.Hash(text),
		TextLen:     len(text),
		PackVersion: d.PackVersion,
	})
	if err != nil {
		// A decision that cannot be recorded is not released (3.3.4):
		// the text is neither spoken nor sent to the model.
		out.Action, out.Redacted = ActionBlock, ""
	}
	return out
}

var _ Policy = (*ClassifierPolicy)(nil)
