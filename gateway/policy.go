package gateway

// Policy decides what a call's texts may do: every final caller transcript
// is checked before the LLM sees it, every model sentence before TTS does.
// It is implemented by ClassifierPolicy (the deemed-export classifier),
// the default.
type Policy interface {
	// NewCall returns the checker for one call; it may keep per-call state
	// (topic carry, accumulators) and is used by that call only.
	NewCall(caller Caller, callID string) CallPolicy
}

// CallPolicy checks one call's texts. Check may be called from the session
// goroutine (inbound) and from the turn's TTS stage (outbound), never at
// the same time for the same direction; implementations guard shared state.
type CallPolicy interface {
	Check(text string, dir Direction, meta CheckMeta) PolicyDecision
}

// Direction is which way a text flows.
type Direction string

// Directions.
const (
	Inbound  Direction = "inbound"  // caller → LLM
	Outbound Direction = "outbound" // model → caller
)

// Policy actions.
const (
	ActionAllow  = "allow"
	ActionRedact = "redact"
	ActionBlock  = "block"
)

// CheckMeta is what a policy may record about a check (for its audit log).
type CheckMeta struct {
	Turn    int
	Ingress string
	Backend string
}

// PolicyDecision is a policy's verdict on one text.
type PolicyDecision struct {
	Action     string   // ActionAllow, ActionRedact or ActionBlock
	Categories []string // e.g. USML-IV, EAR-7A001
	Rules      []string // rule ids that fired
	Redacted   string   // for ActionRedact: the text to use instead
}

// allowAll is the nil Policy's checker.
type allowAll struct{}

func (allowAll) Check(string, Direction, CheckMeta) PolicyDecision {
	return PolicyDecision{Action: ActionAllow}
}
