package gateway

import (
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
)

// A panic in one call must not take the process and every other call down
// with it. Every goroutine a session starts recovers: the panic is counted
// in voicegw_session_panics_total, logged, and that call alone ends with
// an error. The log names where it happened, the panic value's type, the
// runtime's message for a runtime error and the stack; never the value of
// any other panic, which could hold a transcript or model text.

// reasonError is the hang-up reason of a call ended by a panic.
const reasonError = "error"

// panicAttrs describes a recovered panic value r for a log line, without
// its text unless the runtime wrote it.
func panicAttrs(where string, r any) []any {
	attrs := []any{"where", where, "panic_type", fmt.Sprintf("%T", r)}
	if re, ok := r.(runtime.Error); ok {
		attrs = append(attrs, "panic", re.Error())
	}
	return append(attrs, "stack", string(debug.Stack()))
}

// goSafe runs fn on a goroutine of the session, counted in s.wg; a panic
// in it ends the call instead of the process.
func (s *session) goSafe(where string, fn func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.recoverPanic(where)
		fn()
	}()
}

// recoverPanic, deferred on a session goroutine, recovers a panic, counts
// and logs it, tells the caller and hangs the call up with reasonError.
func (s *session) recoverPanic(where string) {
	r := recover()
	if r == nil {
		return
	}
	s.deps.metrics.SessionPanics.WithLabelValues(s.leg.Ingress()).Inc()
	s.log.Error("call goroutine panicked; ending the call", panicAttrs(where, r)...)
	s.sendEvent(errorMessage{Type: "error", Code: codeInternal, Message: "the call failed"})
	s.hangup(reasonError)
}

// recoverLegPanic, deferred on a WebRTC leg goroutine, recovers a panic,
// counts and logs it and ends the leg's media, which ends the call.
func (l *webrtcLeg) recoverLegPanic(where string) {
	r := recover()
	if r == nil {
		return
	}
	if l.onPanic != nil {
		l.onPanic()
	}
	l.log.Error("call media goroutine panicked; ending the call", panicAttrs(where, r)...)
	l.markDone()
}

// panicError carries a panic recovered on a backend attempt's goroutine
// to the goroutine that waits for the attempt, which panics again with it
// so that its session's recovery ends the call.
type panicError struct{ value any }

func (p *panicError) Error() string { return fmt.Sprintf("backend attempt panicked (%T)", p.value) }

// logDiscardedPanic logs a panic of an attempt whose answer nobody waits
// for any more.
func logDiscardedPanic(log *slog.Logger, role string, p *panicError) {
	log.Error("backend attempt panicked after another answered", "role", role, "panic_type", fmt.Sprintf("%T", p.value))
}
