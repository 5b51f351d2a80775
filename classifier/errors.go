package classifier

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error a pack load returns wraps ErrPack; a
// validation failure also carries one *PackError per problem.
var (
	// ErrPack is wrapped by every rule pack loading or validation error.
	ErrPack = errors.New("invalid rule pack")
	// ErrParty is an unknown party name.
	ErrParty = errors.New("unknown party")
	// ErrDirection is an unknown direction name.
	ErrDirection = errors.New("unknown direction")
)

// PackError is one rule pack validation problem: it names the file, the
// line (when known) and the field.
type PackError struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (e *PackError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Field, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", e.File, e.Field, e.Msg)
}

// Unwrap makes errors.Is(err, ErrPack) hold for a single *PackError too.
func (e *PackError) Unwrap() error { return ErrPack }
