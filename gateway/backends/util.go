package backends

import (
	"encoding/json"
	"io"
	"strings"
	"unicode/utf8"
)

// readErrorBody returns a short, printable description of an error body.
func readErrorBody(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, 4096))
	var e struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil && len(e.Error) > 0 {
		var obj struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(e.Error, &obj) == nil && obj.Message != "" {
			return clean(obj.Message)
		}
		var s string
		if json.Unmarshal(e.Error, &s) == nil {
			return clean(s)
		}
	}
	s := clean(string(b))
	if s == "" {
		return "(empty body)"
	}
	return s
}

// clean makes text safe and short for a log line.
func clean(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "?")
	}
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
