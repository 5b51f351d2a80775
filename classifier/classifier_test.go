package classifier

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func engine(t testing.TB) *Engine {
	t.Helper()
	e, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestWorkedExamples: the rule pack's worked examples and evasions.
func TestWorkedExamples(t *testing.T) {
	e := engine(t)
	cases := []struct {
		text string
		want Action
	}{
		{"Torque the TVC actuator bolts to 45 in-lb.", Block},
		{"Gyro drifts 0.01 deg/hr.", Redact},
		{"Javelin is fire-and-forget.", Allow},
		{"The s e e k e r head gimbal boresight error is 0.3 mrad at 25 °C.", Block},   // spaced letters
		{"The seek3r h3ad gimbal boresight error is 0.3 mrad at 25 °C.", Block},        // leetspeak
		{"The se\u200bek\u200ber gimbal boresight error is 0.3 mrad at 25 °C.", Block}, // zero-width
		{"The ѕeeker gimbal boresight error is 0.3 mrad at 25 °C.", Block},             // Cyrillic ѕ
		{"the sustainer grain burns at zero point three one inches per second at a thousand psi", Block},
		{"Please set the thermostat to 21 °C before you leave.", Allow},
		{"Tighten the bike's stem bolts to 5 N·m.", Allow},
		{"ITAR CONTROLLED. Attachment B lists the torque values.", Block},
		{"what does distribution statement d mean on a drawing cover sheet", Allow},
		{"Distribution Statement A: Approved for public release; distribution is unlimited.", Allow},
	}
	for _, c := range cases {
		d := e.Classify(c.text, PartyUnknown, Outbound)
		if d.Action != c.want {
			t.Errorf("%q: %s (R=%.1f A=%.1f L=%.0f Q=%.1f D=%.0f), want %s", c.text, d.Action, d.Score, d.A, d.L, d.Q, d.D, c.want)
		}
		if u := e.Classify(c.text, PartyUSPerson, Outbound); u.Action != Allow {
			t.Errorf("%q: us-person got %s", c.text, u.Action)
		}
	}
}

// TestRedactionRemovesQuantities: a redacted sentence keeps its words and
// loses its numbers with units.
func TestRedactionRemovesQuantities(t *testing.T) {
	d := engine(t).Classify("Gyro drifts 0.01 deg/hr.", PartyForeign, Outbound)
	if d.Action != Redact || strings.Contains(d.Redacted, "0.01") || !strings.Contains(d.Redacted, "Gyro drifts") {
		t.Fatalf("got %s %q", d.Action, d.Redacted)
	}
}

// TestTopicCarryAndAccumulator: the caller's anchor makes the model's bare
// quantity controlled; repeated partial answers escalate.
func TestTopicCarryAndAccumulator(t *testing.T) {
	e := engine(t)
	if d := e.Classify("It makes about forty five kilonewtons.", PartyUnknown, Outbound); d.Action != Allow {
		t.Fatalf("without context: %s", d.Action)
	}
	s := e.NewSession()
	s.Classify("what thrust does the rocket motor make", PartyUnknown, Inbound)
	if d := s.Classify("It makes about forty five kilonewtons.", PartyUnknown, Outbound); d.Action == Allow {
		t.Errorf("with the caller's topic: allowed (R=%.1f)", d.Score)
	}
	// The carry decays: three sentences later a bare quantity is allowed.
	for range 3 {
		s.Classify("Let me check.", PartyUnknown, Outbound)
	}
	if d := s.Classify("It is about forty five kilonewtons.", PartyUnknown, Outbound); d.Action != Allow {
		t.Errorf("carry did not decay: %s", d.Action)
	}
	// Piecemeal: individually allowed gyro remarks escalate.
	s = e.NewSession()
	var last Decision
	for range 6 {
		last = s.Classify("The fiber-optic gyro coil is wound quadrupolar.", PartyUnknown, Outbound)
	}
	if last.Action != Block {
		t.Errorf("accumulator did not escalate: %s %v", last.Action, last.Rules)
	}
}

// TestOffsetsAndIdempotence: every span lies inside the original text on
// rune boundaries, and normalising normalised text changes nothing.
func TestOffsetsAndIdempotence(t *testing.T) {
	e := engine(t)
	for _, r := range loadSet(t, "testdata/dev.jsonl") {
		checkSpans(t, e, r.Text)
		checkIdempotent(t, r.Text)
	}
}

func checkSpans(t *testing.T, e *Engine, text string) {
	t.Helper()
	d := e.Classify(text, PartyUnknown, Outbound)
	for _, s := range d.Spans {
		if s.Start < 0 || s.End > len(text) || s.Start >= s.End || !utf8.RuneStart(text[s.Start]) || s.End < len(text) && !utf8.RuneStart(text[s.End]) {
			t.Fatalf("span %+v outside %q", s, text)
		}
	}
}

func normalized(text string) string {
	var parts []string
	for _, tk := range tokenize(text) {
		parts = append(parts, tk.text)
	}
	return strings.Join(parts, " ")
}

func checkIdempotent(t *testing.T, text string) {
	t.Helper()
	once := normalized(text)
	if twice := normalized(once); twice != once {
		t.Fatalf("normalisation not idempotent:\n once %q\ntwice %q", once, twice)
	}
}

func FuzzClassify(f *testing.F) {
	for _, s := range []string{"Torque the TVC actuator bolts to 45 in-lb.", "s e e k e r", "zero point three one inches", "±0.1°", "ITAR CONTROLLED", "\u200b\u202e", "1,050 and 1,150 m", "one two three four five six seven eight nine"} {
		f.Add(s)
	}
	e, err := Default()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, text string) {
		if !utf8.ValidString(text) {
			return
		}
		checkSpans(t, e, text)
		d := e.Classify(text, PartyUnknown, Outbound)
		if d.Action == Redact && d.Redacted == "" {
			t.Fatal("redact without redacted text")
		}
	})
}

func FuzzParsePack(f *testing.F) {
	f.Add(defaultPack)
	f.Add([]byte("version: x\nthresholds: {redact: 1, block: 2, accumulator: 3}\nanchors: {USML-I: {3: [a]}}\n"))
	f.Add([]byte("version: [\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := Parse("fuzz.yaml", data)
		if err != nil && !errors.Is(err, ErrPack) {
			t.Fatalf("unclassified error: %v", err)
		}
	})
}

func TestPackErrorsNameFileLineField(t *testing.T) {
	bad := "version: \"1\"\nthresholds: {redact: 12, block: 10, accumulator: 15}\nanchors:\n  WIDGETS:\n    3: [thing]\n"
	_, err := Parse("bad.yaml", []byte(bad))
	var pe *PackError
	if !errors.As(err, &pe) || !errors.Is(err, ErrPack) {
		t.Fatalf("err %v, want a *PackError", err)
	}
	msg := err.Error()
	for _, want := range []string{"bad.yaml:2: thresholds", "bad.yaml:4: anchors.WIDGETS"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if _, err := Parse("u.yaml", []byte("version: x\nsurprise: 1\n")); err == nil || !strings.Contains(err.Error(), "surprise") {
		t.Errorf("unknown field: %v", err)
	}
}

func BenchmarkClassifySentence(b *testing.B) {
	e := engine(b)
	rows := loadSet(b, "testdata/dev.jsonl")
	var bytes int64
	for _, r := range rows {
		bytes += int64(len(r.Text))
	}
	b.SetBytes(bytes / int64(len(rows)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		e.Classify(rows[i%len(rows)].Text, PartyUnknown, Outbound)
		i++
	}
}
