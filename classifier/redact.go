package classifier

import (
	"slices"
	"strings"
)

// Redaction mark spoken or shown in place of a removed span.
const redactionMark = "[redacted]"

// redact removes from text its quantities, identifiers, pin references
// and bare numbers: the parameters that make a description technical
// data. It returns the redacted text and how many spans it removed.
func redact(text string, a *analysis) (string, int) {
	var spans []Span
	for _, q := range a.quantities {
		spans = append(spans, q.span)
	}
	spans = append(spans, a.idSpans...)
	spans = append(spans, a.pins...)
	for _, t := range a.toks {
		if t.isNum {
			spans = append(spans, Span{Start: t.start, End: t.end})
		}
	}
	if len(spans) == 0 {
		return text, 0
	}
	slices.SortFunc(spans, func(x, y Span) int { return x.Start - y.Start })
	var sb strings.Builder
	pos := 0
	for _, s := range spans {
		if s.Start < pos {
			pos = max(pos, s.End)
			continue
		}
		sb.WriteString(text[pos:s.Start])
		sb.WriteString(redactionMark)
		pos = s.End
	}
	sb.WriteString(text[pos:])
	return sb.String(), len(spans)
}
