package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// Latency is a distribution of delays. Its zero value is unset: a Config
// field holding it falls back to the fixed delay beside it. Make one with
// ParseLatency, MustParseLatency or Fixed; a Latency is a comparable value.
//
// The text form (ParseLatency, String, flag.Value, encoding.TextUnmarshaler)
// is
//
//	latency  = base [ "," tail ]
//	base     = D                          fixed: always D
//	         | D "±" S  |  D "+-" S       normal: mean D, standard deviation S,
//	                                      truncated to [0, D+4S] by redrawing
//	         | "uniform(" L "," H ")"     uniform over [L, H], L ≤ H
//	tail     = "tail=" P "%:" T           with probability P percent add T
//
// where D, S, L, H and T are non-negative Go durations (time.ParseDuration:
// "300ms", "1.5s", "0"), P is a decimal number from 0 to 100, and spaces
// around any part are ignored. Examples: "300ms", "300ms±80ms",
// "300ms+-80ms", "uniform(200ms,400ms)", "300ms±80ms,tail=1%:2s" (1% of
// draws take 2 s longer). Errors quote the whole text and name the bad part.
type Latency struct {
	kind latencyKind
	a, b time.Duration // fixed: a; normal: mean a, deviation b; uniform: [a, b]
	p    float64       // tail probability, 0..1
	tail time.Duration // added with probability p
}

type latencyKind uint8

const (
	latencyUnset latencyKind = iota
	latencyFixed
	latencyNormal
	latencyUniform
)

// Fixed returns the Latency that is always d (0 if d is negative).
func Fixed(d time.Duration) Latency {
	return Latency{kind: latencyFixed, a: max(d, 0)}
}

// MustParseLatency is ParseLatency for text known to be valid; it panics
// on an error.
func MustParseLatency(s string) Latency {
	l, err := ParseLatency(s)
	if err != nil {
		panic(err)
	}
	return l
}

// ParseLatency parses the text form described at Latency.
func ParseLatency(s string) (Latency, error) {
	bad := func(format string, args ...any) (Latency, error) {
		return Latency{}, fmt.Errorf("sim: latency %q: %s", s, fmt.Sprintf(format, args...))
	}
	text := strings.TrimSpace(s)
	if text == "" {
		return bad("empty; want e.g. 300ms, 300ms±80ms or uniform(200ms,400ms)")
	}
	var l Latency
	// Split off the tail: it follows the first comma, or for uniform the
	// closing parenthesis and a comma.
	base, rest, hasTail := text, "", false
	if strings.HasPrefix(text, "uniform(") {
		if i := strings.IndexByte(text, ')'); i >= 0 && i < len(text)-1 {
			base, rest = text[:i+1], strings.TrimSpace(text[i+1:])
			if rest, hasTail = strings.CutPrefix(rest, ","); !hasTail {
				return bad("%q after %q: want ,tail=P%%:D", rest, base)
			}
		}
	} else if i := strings.IndexByte(text, ','); i >= 0 {
		base, rest, hasTail = strings.TrimSpace(text[:i]), text[i+1:], true
	}
	rest = strings.TrimSpace(rest)
	if hasTail && rest == "" {
		return bad("nothing after the comma; want tail=P%%:D, e.g. tail=1%%:2s")
	}
	if rest != "" {
		spec, ok := strings.CutPrefix(rest, "tail=")
		if !ok {
			return bad("%q after the comma: want tail=P%%:D, e.g. tail=1%%:2s", rest)
		}
		pct, dur, ok := strings.Cut(spec, ":")
		if !ok {
			return bad("tail %q: want P%%:D, e.g. 1%%:2s", spec)
		}
		pct, dur = strings.TrimSpace(pct), strings.TrimSpace(dur)
		num, ok := strings.CutSuffix(pct, "%")
		if !ok {
			return bad("tail probability %q: want a percentage such as 1%%", pct)
		}
		p, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
		if err != nil || !(p >= 0 && p <= 100) {
			return bad("tail probability %q: want a number from 0%% to 100%%", pct)
		}
		d, err := parseNonNegative("tail delay", dur)
		if err != nil {
			return bad("%v", err)
		}
		l.p, l.tail = p/100, d
	}
	if inner, ok := strings.CutPrefix(base, "uniform("); ok {
		inner, ok = strings.CutSuffix(inner, ")")
		if !ok {
			return bad("%q: want uniform(L,H) with the closing parenthesis last", base)
		}
		lo, hi, ok := strings.Cut(inner, ",")
		if !ok || strings.Contains(hi, ",") {
			return bad("%q: want two durations, uniform(L,H)", base)
		}
		var err error
		if l.a, err = parseNonNegative("uniform low", lo); err != nil {
			return bad("%v", err)
		}
		if l.b, err = parseNonNegative("uniform high", hi); err != nil {
			return bad("%v", err)
		}
		if l.a > l.b {
			return bad("%q: low %s is above high %s", base, l.a, l.b)
		}
		l.kind = latencyUniform
		return l, nil
	}
	if strings.ContainsAny(base, "()") {
		return bad("%q: want a duration, D±S or uniform(L,H)", base)
	}
	mean, dev, normal := strings.Cut(base, "±")
	if !normal {
		mean, dev, normal = strings.Cut(base, "+-")
	}
	var err error
	if !normal {
		if l.a, err = parseNonNegative("duration", base); err != nil {
			return bad("%v", err)
		}
		l.kind = latencyFixed
		return l, nil
	}
	if l.a, err = parseNonNegative("mean", mean); err != nil {
		return bad("%v", err)
	}
	if l.b, err = parseNonNegative("standard deviation", dev); err != nil {
		return bad("%v", err)
	}
	l.kind = latencyNormal
	return l, nil
}

// parseNonNegative parses one duration of the grammar; what names it in
// errors.
func parseNonNegative(what, s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("%s is missing", what)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%s %q is not a duration such as 300ms", what, s)
	}
	if d < 0 {
		return 0, fmt.Errorf("%s %q must not be negative", what, s)
	}
	return d, nil
}

// IsZero reports whether l is unset.
func (l Latency) IsZero() bool { return l.kind == latencyUnset }

// Sample draws one delay from r (with a nil r, from math/rand/v2's
// top-level functions). An unset Latency is always 0. A normal draw
// outside [0, mean+4σ] is drawn again.
func (l Latency) Sample(r *rand.Rand) time.Duration {
	float, norm, int64n := rand.Float64, rand.NormFloat64, rand.Int64N
	if r != nil {
		float, norm, int64n = r.Float64, r.NormFloat64, r.Int64N
	}
	var d time.Duration
	switch l.kind {
	case latencyFixed:
		d = l.a
	case latencyUniform:
		d = l.a
		if l.b > l.a {
			d += time.Duration(int64n(int64(l.b-l.a) + 1))
		}
	case latencyNormal:
		mean, dev := float64(l.a), float64(l.b)
		hi := mean + 4*dev
		x := mean
		// At least half of the mass lies in [0, mean+4σ], so redrawing
		// ends fast; 64 misses in a row is beyond belief, and then x
		// is clamped.
		for range 64 {
			if x = mean + dev*norm(); x >= 0 && x <= hi {
				break
			}
		}
		d = time.Duration(math.Round(max(0, min(x, hi))))
	}
	if l.p > 0 && float() < l.p {
		d += l.tail
	}
	return d
}

// String returns the text form, which ParseLatency reads back; "" when
// unset.
func (l Latency) String() string {
	var s string
	switch l.kind {
	case latencyUnset:
		return ""
	case latencyFixed:
		s = l.a.String()
	case latencyNormal:
		s = l.a.String() + "±" + l.b.String()
	case latencyUniform:
		s = "uniform(" + l.a.String() + "," + l.b.String() + ")"
	}
	if l.p > 0 {
		s += ",tail=" + strconv.FormatFloat(l.p*100, 'g', -1, 64) + "%:" + l.tail.String()
	}
	return s
}

// Set parses s into l, for flag.Var.
func (l *Latency) Set(s string) error {
	v, err := ParseLatency(s)
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// MarshalText returns the text form.
func (l Latency) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText parses the text form; empty text is unset.
func (l *Latency) UnmarshalText(b []byte) error {
	if strings.TrimSpace(string(b)) == "" {
		*l = Latency{}
		return nil
	}
	return l.Set(string(b))
}
