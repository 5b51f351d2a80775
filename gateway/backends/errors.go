package backends

import (
	"context"
	"errors"
	"fmt"
)

// Sentinel errors. Every error a client returns or delivers is an *Error
// wrapping one of these (or the caller's context error), so callers can
// tell a slow backend from a broken one with errors.Is.
var (
	// ErrTimeout: the backend did not connect, answer or go on sending
	// within the endpoint's Timeout or IdleTimeout.
	ErrTimeout = errors.New("backend timed out")
	// ErrMalformed: the reply does not follow the protocol (bad JSON, wrong
	// content type, odd-length PCM, an oversized line or transcript).
	ErrMalformed = errors.New("malformed backend reply")
	// ErrStatus: the backend refused: a non-2xx HTTP status, a failed
	// WebSocket upgrade, or an error event or chunk in the protocol.
	ErrStatus = errors.New("backend returned an error status")
	// ErrConnection: the connection could not be made or broke.
	ErrConnection = errors.New("backend connection failed")
	// ErrClosed: the stream was used after Close, or the backend ended it.
	ErrClosed = errors.New("stream closed")
	// ErrConfig: the request could not be built from the configuration.
	ErrConfig = errors.New("backend misconfigured")
)

// Error is a failure of one backend operation.
type Error struct {
	// Backend is the Endpoint's Name.
	Backend string
	// Op names what failed. Failures before a stream was handed to the
	// caller are "chat", "speech", "realtime dial", "transcription"; those
	// after end in "stream" ("chat stream", "speech stream", "realtime
	// stream") or are "realtime write".
	Op  string
	Err error
}

func (e *Error) Error() string { return e.Backend + ": " + e.Op + ": " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// ioError classifies an I/O failure: a timeout when the watchdog fired, the
// caller's context error when it ended (a deadline also counts as
// ErrTimeout), and ErrConnection otherwise.
func ioError(w *watchdog, ctx context.Context, err error) error {
	if w != nil && w.timedOut() {
		return fmt.Errorf("%w: %s", ErrTimeout, w.reason())
	}
	if cerr := ctx.Err(); cerr != nil {
		if errors.Is(cerr, context.DeadlineExceeded) {
			return fmt.Errorf("%w: %w", ErrTimeout, cerr)
		}
		return cerr
	}
	if isClassified(err) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrConnection, err)
}

// isClassified reports whether err already wraps one of the sentinels.
func isClassified(err error) bool {
	for _, s := range []error{ErrTimeout, ErrMalformed, ErrStatus, ErrConnection, ErrClosed, ErrConfig} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

var _ error = (*Error)(nil)
