package telemetry

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"
)

// AuditRecord is one classifier decision, as NIST SP 800-171 3.3 asks: who
// (tenant, subject, call), when (UTC, synchronised clock), what the party's
// status was and who attested it, which backend the text was bound for, the
// rules and categories that fired, the score and the action, and the policy
// version. Matched text is never stored: only salted hashes of the spans,
// so the audit log does not itself become controlled technical data.
type AuditRecord struct {
	Time        time.Time `json:"time"`
	Event       string    `json:"event"` // "policy_decision"
	Tenant      string    `json:"tenant"`
	Subject     string    `json:"subject,omitempty"`
	Call        string    `json:"call"`
	Ingress     string    `json:"ingress,omitempty"`
	Turn        int       `json:"turn"`
	Direction   string    `json:"direction"` // inbound (caller → LLM) | outbound (model → caller)
	Party       string    `json:"party"`     // us-person | foreign | unknown
	AttestedBy  string    `json:"attested_by,omitempty"`
	Backend     string    `json:"backend,omitempty"`
	Action      string    `json:"action"`
	Controlled  bool      `json:"controlled"`
	Score       float64   `json:"score"`
	Categories  []string  `json:"categories,omitempty"`
	Rules       []string  `json:"rules,omitempty"`
	Markings    []string  `json:"markings,omitempty"`
	SpanHashes  []string  `json:"span_hashes,omitempty"`
	TextHash    string    `json:"text_hash"`
	TextLen     int       `json:"text_len"`
	PackVersion string    `json:"pack_version"`
}

// Audit writes AuditRecords as JSON lines. It is safe for concurrent use. A
// write failure is counted, returned and reported to the OnFailure hook,
// never silently dropped (3.3.4: alert on audit logging failure). The
// failure is latched: once a record is lost the log has a gap that an
// operator must look at, so Err stays set until the process restarts.
type Audit struct {
	mu        sync.Mutex
	w         io.Writer
	salt      []byte
	failures  int
	err       error // the first write failure
	onFailure func(error)
}

// NewAudit writes to w, hashing spans with salt; a nil salt draws a random
// one (hashes then correlate within one process lifetime only).
func NewAudit(w io.Writer, salt []byte) *Audit {
	if len(salt) == 0 {
		salt = make([]byte, 32)
		_, _ = rand.Read(salt)
	}
	return &Audit{w: w, salt: salt}
}

// Salt is the key span hashes are computed with.
func (a *Audit) Salt() []byte { return a.salt }

// Hash returns the salted hash (HMAC-SHA-256, hex, 128 bits) of s.
func (a *Audit) Hash(s string) string {
	m := hmac.New(sha256.New, a.salt)
	m.Write([]byte(s))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// Write appends one record.
func (a *Audit) Write(r AuditRecord) error {
	if r.Time.IsZero() {
		r.Time = time.Now().UTC()
	}
	if r.Event == "" {
		r.Event = "policy_decision"
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("audit: encode: %w", err)
	}
	b = append(b, '\n')
	a.mu.Lock()
	_, err = a.w.Write(b)
	if err == nil {
		a.mu.Unlock()
		return nil
	}
	err = fmt.Errorf("audit: write: %w", err)
	a.failures++
	if a.err == nil {
		a.err = err
	}
	hook := a.onFailure
	a.mu.Unlock()
	if hook != nil {
		hook(err)
	}
	return err
}

// OnFailure sets fn to be called, outside the audit's lock, with the error
// of every record that could not be written. Set it before the first
// Write.
func (a *Audit) OnFailure(fn func(error)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.onFailure = fn
}

// Err is the first write failure, or nil while every record has been
// written. It stays set once a record was lost.
func (a *Audit) Err() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// Failures is the number of records that could not be written.
func (a *Audit) Failures() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.failures
}
