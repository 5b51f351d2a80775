package classifier

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
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

// TestWorkedExamples: the domain notes' worked examples and evasions.
func TestWorkedExamples(t *testing.T) {
	e := engine(t)
	cases := []struct {
		text string
		want Action
	}{
		{"Torque the TVC actuator bolts to 45 in-lb.", Block}, // an instruction: redaction would leave it
		{"Gyro drifts 0.01 deg/hr.", Redact},
		{"Javelin is fire-and-forget.", Allow},
		{"The s e e k e r head gimbal boresight error is 0.3 mrad at 25 °C.", Redact},   // spaced letters
		{"The seek3r h3ad gimbal boresight error is 0.3 mrad at 25 °C.", Redact},        // leetspeak
		{"The se\u200bek\u200ber gimbal boresight error is 0.3 mrad at 25 °C.", Redact}, // zero-width
		{"The ѕeeker gimbal boresight error is 0.3 mrad at 25 °C.", Redact},             // Cyrillic ѕ
		{"The \u202eseeker\u202c gimbal boresight error is 0.3 mrad at 25 °C.", Redact}, // bidi controls
		{"the sustainer grain burns at zero point three one inches per second at a thousand psi", Redact},
		{"the seu rate is one e minus ten errors per bit per day on the rad hard fpga", Redact},
		{"CUI//SP-EXPT. Torque the TVC actuator bolts to 45 in-lb.", Block}, // marked: never redacted
		{"Please set the thermostat to 21 °C before you leave.", Allow},
		{"Tighten the bike's stem bolts to 5 N·m.", Allow},
		{"ITAR CONTROLLED. Attachment B: torque the canister adapter bolts to 45 in-lb.", Block},
		{"what does distribution statement d mean on a drawing cover sheet", Allow},
		{"Distribution Statement A: Approved for public release; distribution is unlimited.", Allow},
		{"The radar range equation says received power falls with the fourth power of range.", Allow},
	}
	for _, c := range cases {
		d := e.Classify(c.text, PartyUnknown, Outbound)
		if d.Action != c.want {
			t.Errorf("%q: %s (p=%.3f), want %s\n%s", c.text, d.Action, d.Score, c.want, strings.Join(d.Trace, "\n"))
		}
		if u := e.Classify(c.text, PartyUSPerson, Outbound); u.Action != Allow {
			t.Errorf("%q: us-person got %s", c.text, u.Action)
		}
		if f := e.Classify(c.text, PartyForeign, Outbound); f.Action != d.Action {
			t.Errorf("%q: foreign %s, unknown %s", c.text, f.Action, d.Action)
		}
	}
}

// TestNormalize: inverse text normalisation and evasions, as matched.
func TestNormalize(t *testing.T) {
	cases := []struct{ in, want string }{
		{"forty five kilonewtons", "45 kilonewtons"},
		{"point oh one degrees per hour", "0.01 degrees per hour"},
		{"zero point zero zero zero eight inches", "0.0008 inches"},
		{"one twenty five", "125"},
		{"two hundred fifty six bins", "256 bins"},
		{"nineteen fifty", "1950"},
		{"one e minus seven", "0.0000001"},
		{"one times ten to the minus seven", "0.0000001"},
		{"minus seventy eight d b m", "-78 dbm"},
		{"plus or minus point one", "±0.1"},
		{"3 × 10⁵ rad(Si)", "300000 rad si"},
		{"1 × 10⁻¹⁰", "0.0000000001"},
		{"−40 °C", "-40 °c"},
		{"s e e k e r head", "seeker head"},
		{"j4mm3r's DRFM", "jammer drfm"},
		{"RB-2210-04 and 5A002", "rb-2210-04 and 5a002"},
		{"se\u200bek\u200ber", "seeker"},
		{"ѕееkеr", "seeker"}, // Cyrillic look-alikes
		{"ＴＶＣ", "tvc"},       // fullwidth
		{"CUI//SP-EXPT", "cui sp-expt"},
	}
	for _, c := range cases {
		if got := Normalize(c.in); got != c.want {
			t.Errorf("Normalize(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestQuantitiesInSI: values are compared with CCL thresholds in SI.
func TestQuantitiesInSI(t *testing.T) {
	e := engine(t)
	for _, c := range []struct {
		text, rule string
		cross      bool
	}{
		{"gyro bias stability 0.01 deg/hr", "ccl.7a002-gyro-bias", true},
		{"gyro bias stability point zero one degrees per hour", "ccl.7a002-gyro-bias", true},
		{"gyro bias stability 2 deg/hr", "ccl.7a002-gyro-bias", false},
		{"the microchannel plate pitch is 6 µm", "ccl.6a002-mcp-pitch", true},
		{"the custom cipher uses a 128-bit key", "ccl.5a002-symmetric-key", true},
		{"the custom cipher uses a 40-bit key", "ccl.5a002-symmetric-key", false},
		{"combustor exit temperature 1,650 °C", "ccl.9e003-combustor-exit", true},
		{"combustor exit temperature 1,200 °C", "ccl.9e003-combustor-exit", false},
	} {
		d := e.Classify(c.text, PartyUnknown, Outbound)
		if got := slices.Contains(d.Rules, c.rule); got != c.cross {
			t.Errorf("%q: crosses %s = %v, want %v (rules %v)", c.text, c.rule, got, c.cross, d.Rules)
		}
	}
	v, dim, ok := e.parseQuantity("45 kN")
	if !ok || dim != "force" || v != 45000 {
		t.Errorf("45 kN = %v %s %v", v, dim, ok)
	}
	v, dim, ok = e.parseQuantity("70 °F")
	if !ok || dim != "temperature" || v < 294.2 || v > 294.3 {
		t.Errorf("70 °F = %v K %s %v", v, dim, ok)
	}
}

// TestRedaction: a redacted sentence keeps its words and loses its
// numbers; spans point into the original text.
func TestRedaction(t *testing.T) {
	text := "Gyro drifts 0.01 deg/hr."
	d := engine(t).Classify(text, PartyForeign, Outbound)
	if d.Action != Redact || strings.Contains(d.Redacted, "0.01") || !strings.Contains(d.Redacted, "Gyro drifts") {
		t.Fatalf("got %s %q", d.Action, d.Redacted)
	}
	found := false
	for _, s := range d.Spans {
		if s.Kind == KindQuantity && text[s.Start:s.End] == "0.01 deg/hr" {
			found = true
		}
	}
	if !found {
		t.Errorf("no quantity span over %q: %+v", "0.01 deg/hr", d.Spans)
	}
}

// TestTopicCarryAndAccumulator: the caller's anchor makes the model's bare
// quantity controlled and decays; repeated partial answers escalate.
func TestTopicCarryAndAccumulator(t *testing.T) {
	e := engine(t)
	if d := e.Classify("It makes about forty five kilonewtons.", PartyUnknown, Outbound); d.Action != Allow {
		t.Fatalf("without context: %s", d.Action)
	}
	s := e.NewSession()
	s.Classify("what thrust does the rocket motor make", PartyUnknown, Inbound)
	if d := s.Classify("It makes about forty five kilonewtons.", PartyUnknown, Outbound); d.Action == Allow {
		t.Errorf("with the caller's topic: allowed (R=%.1f)\n%s", d.Score, strings.Join(d.Trace, "\n"))
	}
	for range 3 {
		s.Classify("Let me check.", PartyUnknown, Outbound)
	}
	if d := s.Classify("It is about forty five kilonewtons.", PartyUnknown, Outbound); d.Action != Allow {
		t.Errorf("carry did not decay: %s", d.Action)
	}
	// Piecemeal: individually allowed remarks escalate within a few turns.
	s = e.NewSession()
	var last Decision
	for range 6 {
		s.Classify("and the gyro?", PartyUnknown, Inbound)
		last = s.Classify("The fiber-optic gyro coil is wound quadrupolar.", PartyUnknown, Outbound)
	}
	if last.Action != Block || !last.Escalate || !slices.Contains(last.Rules, "session.accumulator") {
		t.Errorf("accumulator did not escalate: %s %v", last.Action, last.Rules)
	}
	// A verified U.S. person is never escalated.
	s = e.NewSession()
	for range 6 {
		last = s.Classify("The fiber-optic gyro coil is wound quadrupolar.", PartyUSPerson, Outbound)
	}
	if last.Action != Allow {
		t.Errorf("us-person: %s", last.Action)
	}
}

func TestSpanHashesHoldNoText(t *testing.T) {
	text := "Torque the TVC actuator bolts to 45 in-lb."
	d := engine(t).Classify(text, PartyUnknown, Outbound)
	h1 := d.SpanHashes([]byte("salt-1"), text)
	h2 := d.SpanHashes([]byte("salt-2"), text)
	if len(h1) != len(d.Spans) || len(h1) == 0 {
		t.Fatalf("%d hashes for %d spans", len(h1), len(d.Spans))
	}
	for i, h := range h1 {
		if strings.Contains(text, h) || h == h2[i] || len(h) != 32 {
			t.Errorf("hash %q", h)
		}
	}
}

// TestOffsetsAndIdempotence: every span lies inside the original text on
// rune boundaries, and normalising normalised text changes nothing.
func TestOffsetsAndIdempotence(t *testing.T) {
	e := engine(t)
	for _, p := range []string{devSetPath(t), "testdata/extra.jsonl"} {
		for _, r := range loadSet(t, p) {
			checkSpans(t, e, r.Text)
			checkIdempotent(t, r.Text)
		}
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
	for _, tk := range tokenize(text) {
		if tk.start < 0 || tk.end > len(text) || tk.start >= tk.end {
			t.Fatalf("token %q at %d–%d outside %q", tk.text, tk.start, tk.end, text)
		}
	}
}

func checkIdempotent(t *testing.T, text string) {
	t.Helper()
	once := Normalize(text)
	if twice := Normalize(once); twice != once {
		t.Fatalf("normalisation not idempotent for %q:\n once %q\ntwice %q", text, once, twice)
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"Torque the TVC actuator bolts to 45 in-lb.", "s e e k e r", "zero point three one inches", "±0.1°",
		"one e minus seven", "3 × 10⁵ rad(Si)", "−40 °C", "j4mm3r's", "\u200b\u202e", "1,050 and 1,150 m", "8-12 GHz", "ＴＶＣ ѕееkеr",
		"minus plus or minus point", "10⁻¹⁰", "a hundred and a", "2^-16 x 10^5"} {
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
		checkIdempotent(t, text)
	})
}

func FuzzClassify(f *testing.F) {
	for _, s := range []string{"Torque the TVC actuator bolts to 45 in-lb.", "ITAR CONTROLLED", "Gyro drifts 0.01 deg/hr. Then 0.02."} {
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
		d := e.Classify(text, PartyUnknown, Outbound)
		if d.Action == Redact && d.Redacted == "" {
			t.Fatal("redact without redacted text")
		}
		if d.Action != Allow && !d.Controlled {
			t.Fatalf("%s but not controlled", d.Action)
		}
		if u := e.Classify(text, PartyUSPerson, Outbound); u.Action != Allow {
			t.Fatalf("us-person: %s", u.Action)
		}
	})
}

func FuzzParsePack(f *testing.F) {
	f.Add(DefaultPack())
	f.Add([]byte("version: x\nanchors: {USML-I: {3: [a]}}\n"))
	f.Add([]byte("version: x\nanchors: {USML-I: {3: [a]}}\nunits: [{unit: N, dim: force, si: 1, weight: 1, names: [n]}]\nccl: [{id: x, categories: [USML-I], dim: force, above: '3 n'}]\n"))
	f.Add([]byte("version: [\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := Parse("fuzz.yaml", data)
		if err != nil {
			if !errors.Is(err, ErrPack) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		e.Classify("Torque the TVC actuator bolts to 45 in-lb.", PartyUnknown, Outbound)
	})
}

func TestPackErrorsNameFileLineField(t *testing.T) {
	bad := `version: "1"
anchors:
  WIDGETS:
    3: [thing]
  USML-I:
    5: [rifle]
units:
  - {unit: N, dim: force, si: -1, weight: 1, names: [n]}
ccl:
  - {id: x, categories: [USML-I], dim: length, above: "3 mm"}
`
	_, err := Parse("bad.yaml", []byte(bad))
	var pe *PackError
	if !errors.As(err, &pe) || !errors.Is(err, ErrPack) {
		t.Fatalf("err %v, want a *PackError", err)
	}
	msg := err.Error()
	for _, want := range []string{"bad.yaml:3: anchors.WIDGETS", "bad.yaml:6: anchors.USML-I.5", "bad.yaml:8: units[0].si", "bad.yaml:10: ccl[0].dim"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if _, err := Parse("u.yaml", []byte("version: x\nsurprise: 1\n")); !errors.Is(err, ErrPack) || !strings.Contains(err.Error(), "surprise") || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("unknown field: %v", err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); !errors.Is(err, ErrPack) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestLoadAndDefault(t *testing.T) {
	a, _ := Default()
	b, _ := Default()
	if a != b {
		t.Error("Default compiled twice")
	}
	p := filepath.Join(t.TempDir(), "pack.yaml")
	pack := strings.Replace(string(DefaultPack()), `version: "`, `version: "custom-`, 1)
	if err := os.WriteFile(p, []byte(pack), 0o600); err != nil {
		t.Fatal(err)
	}
	e, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(e.Version(), "custom-") || e.Version() == a.Version() {
		t.Errorf("version %q", e.Version())
	}
	if d := e.Classify("Torque the TVC actuator bolts to 45 in-lb.", PartyUnknown, Inbound); d.Action == Allow || d.PackVersion != e.Version() {
		t.Errorf("loaded pack: %s %s", d.Action, d.PackVersion)
	}
}

func TestParsePartyAndDirection(t *testing.T) {
	for in, want := range map[string]Party{"us-person": PartyUSPerson, "Foreign": PartyForeign, "": PartyUnknown, "unknown": PartyUnknown} {
		if got, err := ParseParty(in); err != nil || got != want {
			t.Errorf("ParseParty(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseParty("martian"); !errors.Is(err, ErrParty) {
		t.Errorf("bad party: %v", err)
	}
	if _, err := ParseDirection("sideways"); !errors.Is(err, ErrDirection) {
		t.Errorf("bad direction: %v", err)
	}
}

func BenchmarkClassifyDevSet(b *testing.B) {
	e := engine(b)
	rows := loadSet(b, devSetPath(b))
	var n int64
	for _, r := range rows {
		n += int64(len(r.Text))
	}
	b.SetBytes(n / int64(len(rows)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		e.Classify(rows[i%len(rows)].Text, PartyUnknown, Outbound)
		i++
	}
}

// BenchmarkClassifySentence: one typical spoken sentence.
// BenchmarkClassifyBenignSentence: the common case, an ordinary agent
// sentence that is allowed.
func BenchmarkClassifyBenignSentence(b *testing.B) {
	e := engine(b)
	text := "Sure, I can move your appointment to Thursday at 2 pm; the shuttle leaves from building 4."
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		e.Classify(text, PartyUnknown, Outbound)
	}
}

// BenchmarkClassifySentence: a controlled sentence, scored, redacted and
// the redaction scored again.
func BenchmarkClassifySentence(b *testing.B) {
	e := engine(b)
	text := "The sustainer grain burns at zero point three one inches per second at a thousand psi."
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		e.Classify(text, PartyUnknown, Outbound)
	}
}

func BenchmarkNormalize(b *testing.B) {
	rows := loadSet(b, devSetPath(b))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		Normalize(rows[i%len(rows)].Text)
		i++
	}
}

// TestConcurrentUse: one engine serves many sessions at once (run with
// -race).
func TestConcurrentUse(t *testing.T) {
	e := engine(t)
	rows := loadSet(t, devSetPath(t))
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			s := e.NewSession()
			for i, r := range rows {
				if i%4 == g {
					s.Classify(r.Text, PartyUnknown, Inbound)
					e.Classify(r.Text, PartyForeign, Outbound)
				}
			}
		}()
	}
	for range 4 {
		<-done
	}
}
