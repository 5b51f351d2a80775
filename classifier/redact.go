package classifier

import (
	"slices"
	"strings"
)

// Redaction mark spoken or shown in place of a removed span.
const redactionMark = "[redacted]"

// redact removes from text the quantities, identifiers and bare numbers
// of the windows that reached the redact threshold; a window with none of
// those (its score comes from anchors and procedure language) loses its
// sentences whole.
func redact(text string, a *analysis, hot []window) string {
	var spans []Span
	for _, w := range hot {
		n := 0
		for _, q := range a.quantities {
			if q.tok >= w.first && q.tok < w.end {
				spans = append(spans, q.span)
				n++
			}
		}
		for k, t := range a.identifiers {
			if t >= w.first && t < w.end {
				spans = append(spans, a.idSpans[k])
				n++
			}
		}
		for i := w.first; i < w.end; i++ {
			if t := a.toks[i]; t.isNum {
				spans = append(spans, Span{Start: t.start, End: t.end})
				n++
			}
		}
		if n == 0 && w.end > w.first {
			spans = append(spans, Span{Start: a.toks[w.first].start, End: a.toks[w.end-1].end})
		}
	}
	if len(spans) == 0 {
		return redactionMark
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
	return sb.String()
}
