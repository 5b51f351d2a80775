package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func classify(t *testing.T, input string, args ...string) (code int, lines []map[string]any, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = runClassify(args, strings.NewReader(input), &out, &errb)
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("output line %q: %v", l, err)
		}
		lines = append(lines, m)
	}
	return code, lines, errb.String()
}

func TestClassifyCommand(t *testing.T) {
	in := "Torque the TVC actuator bolts to 45 in-lb.\r\n\n{\"id\":\"x1\",\"text\":\"The cafeteria opens at 7.\"}\n{\"id\":7,\"text\":\"Gyro drifts 0.01 deg/hr.\",\"party\":\"foreign\"}"
	code, lines, stderr := classify(t, in)
	if code != 0 || len(lines) != 3 {
		t.Fatalf("code %d, %d lines: %s", code, len(lines), stderr)
	}
	if lines[0]["id"] != "1" || lines[0]["action"] == "allow" || lines[0]["controlled"] != true {
		t.Errorf("line 1: %v", lines[0])
	}
	if lines[1]["id"] != "x1" || lines[1]["action"] != "allow" || lines[1]["controlled"] != false {
		t.Errorf("line 3: %v", lines[1])
	}
	if lines[2]["id"] != 7.0 || lines[2]["action"] != "redact" || lines[2]["party"] != "foreign" || !strings.Contains(lines[2]["redacted"].(string), "[redacted]") {
		t.Errorf("line 4: %v", lines[2])
	}
	for _, k := range []string{"id", "action", "controlled", "score", "categories", "rules", "spans", "markings", "pack_version", "model_version", "explanation"} {
		if _, ok := lines[0][k]; !ok {
			t.Errorf("decision lacks %q", k)
		}
	}
	if _, ok := lines[0]["trace"]; ok {
		t.Error("trace without --explain")
	}
	// A verified U.S. person is allowed the same text.
	if _, l, _ := classify(t, "Torque the TVC actuator bolts to 45 in-lb.\n", "--party", "us-person"); l[0]["action"] != "allow" {
		t.Errorf("us-person: %v", l[0])
	}
}

func TestClassifyExplainAndSession(t *testing.T) {
	in := `{"conv":"a","role":"caller","text":"what thrust does the rocket motor make","label":"benign","style":"asr"}
{"conv":"a","role":"agent","text":"It makes about forty five kilonewtons.","label":"controlled","style":"llm"}
{"conv":"b","role":"agent","text":"It makes about forty five kilonewtons.","label":"benign","style":"llm"}
`
	code, lines, stderr := classify(t, in, "--explain", "--session", "--report")
	if code != 0 || len(lines) != 3 {
		t.Fatalf("code %d, %d lines", code, len(lines))
	}
	if _, ok := lines[1]["trace"].([]any); !ok || !strings.Contains(stderr, "2: ") || !strings.Contains(stderr, "p=") {
		t.Errorf("no trace: %v\n%s", lines[1], stderr)
	}
	if lines[0]["direction"] != "inbound" || lines[1]["direction"] != "outbound" {
		t.Errorf("roles did not set the direction: %v %v", lines[0]["direction"], lines[1]["direction"])
	}
	if lines[1]["action"] == "allow" {
		t.Errorf("the caller's topic did not carry: %v", lines[1])
	}
	if lines[2]["action"] != "allow" {
		t.Errorf("a new conv kept the last call's topic: %v", lines[2])
	}
	if !strings.Contains(stderr, "all            recall 1.000  FPR 0.000  (TP 1 FN 0 FP 0 TN 2)") || !strings.Contains(stderr, "style llm") {
		t.Errorf("report: %s", stderr)
	}
	if _, l, _ := classify(t, in); l[1]["action"] != "allow" {
		t.Errorf("without --session: %v", l[1])
	}
}

func TestClassifyBadLinesContinue(t *testing.T) {
	in := "{\"id\":1,\"text\":\"ok\"}\n{not json\n{\"id\":3}\n\xff\xfe\n{\"id\":5,\"text\":\"fine\",\"party\":\"martian\"}\n{\"id\":6,\"text\":\"fine\"}\n"
	code, lines, stderr := classify(t, in)
	if code != 1 || len(lines) != 2 {
		t.Fatalf("code %d, %d decisions; want 1 and 2", code, len(lines))
	}
	for _, want := range []string{"line 2: not a JSON object", `line 3: object has no "text"`, "line 4: not valid UTF-8", `line 5: unknown party "martian"`} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if code, _, stderr := classify(t, "x\n", "--policy", "/nonexistent.yaml"); code != 2 || !strings.Contains(stderr, "nonexistent") {
		t.Errorf("bad policy: %d %q", code, stderr)
	}
	if code, _, _ := classify(t, "x\n", "--party", "martian"); code != 2 {
		t.Errorf("bad --party: %d", code)
	}
	if code, _, _ := classify(t, "x\n", "--direction", "up"); code != 2 {
		t.Errorf("bad --direction: %d", code)
	}
}

func TestClassifyPolicyFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(p, []byte("version: \"1\"\nanchors: {USML-I: {3: [rifle]}, WIDGETS: {3: [thing]}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := classify(t, "x\n", "--policy", p)
	if code != 2 || !strings.Contains(stderr, p+":2: anchors.WIDGETS") {
		t.Errorf("code %d, stderr %q", code, stderr)
	}
}

// TestClassifyDevSet reads the development set as DESIGN.md promises and
// holds the command to the acceptance bar for an unknown party.
func TestClassifyDevSet(t *testing.T) {
	f, err := os.ReadFile("../../classifier/testdata/dev.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	code, lines, _ := classify(t, string(f))
	if code != 0 || len(lines) != 200 {
		t.Fatalf("code %d, %d decisions", code, len(lines))
	}
	label := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(f)), "\n") {
		var r struct{ ID, Label string }
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		label[r.ID] = r.Label
	}
	var tp, fn, fp, tn int
	for _, d := range lines {
		flagged := d["action"] != "allow"
		switch c := label[d["id"].(string)] == "controlled"; {
		case c && flagged:
			tp++
		case c:
			fn++
		case flagged:
			fp++
		default:
			tn++
		}
	}
	recall, fpr := float64(tp)/float64(tp+fn), float64(fp)/float64(fp+tn)
	t.Logf("voicegw classify on the development set: recall %.3f, false-positive rate %.3f", recall, fpr)
	if recall < 0.95 || fpr > 0.05 {
		t.Errorf("recall %.3f, false-positive rate %.3f", recall, fpr)
	}
}

// TestClassifyPolicyBundle: --policy takes a bundle directory; a part that
// does not match the manifest is refused with the file named.
func TestClassifyPolicyBundle(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"manifest.json", "default.yaml", "lexicon.yaml", "model.json"} {
		b, err := os.ReadFile(filepath.Join("../../classifier/packs", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	code, lines, stderr := classify(t, "Gyro drifts 0.01 deg/hr.\n", "--policy", dir)
	if code != 0 || len(lines) != 1 || lines[0]["action"] == "allow" {
		t.Fatalf("code %d, %v, %s", code, lines, stderr)
	}
	f, err := os.OpenFile(filepath.Join(dir, "lexicon.yaml"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("# edited\n")
	f.Close()
	code, _, stderr = classify(t, "x\n", "--policy", dir)
	if code != 2 || !strings.Contains(stderr, "lexicon.yaml: sha256") {
		t.Errorf("tampered bundle: code %d, stderr %q", code, stderr)
	}
}

// TestClassifyTrainRefusesBadData: training files are checked line by
// line, and nothing is written when one is wrong; a bad role in a
// session line is reported and the other lines are still classified.
func TestClassifyTrainRefusesBadData(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"manifest.json", "default.yaml", "lexicon.yaml", "model.json"} {
		b, err := os.ReadFile(filepath.Join("../../classifier/packs", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := os.ReadFile(filepath.Join(dir, "model.json"))
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	if err := os.WriteFile(bad, []byte(`{"id":"a","label":"benign","text":"hello"}`+"\n"+`{"id":"b","label":"secret","text":"x"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := runClassify([]string{"train", "--bundle", dir, bad}, nil, &out, &errb); code != 1 || !strings.Contains(errb.String(), `bad.jsonl:2: label "secret"`) {
		t.Errorf("bad label: code %d, stderr %q", code, errb.String())
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "model.json")); !bytes.Equal(before, after) {
		t.Error("a refused training run rewrote model.json")
	}
	errb.Reset()
	if code := runClassify([]string{"train", "--bundle", dir}, nil, &out, &errb); code != 2 || !strings.Contains(errb.String(), "no training files") {
		t.Errorf("no files: code %d, stderr %q", code, errb.String())
	}
	code, lines, stderr := classify(t, `{"conv":"a","role":"pilot","text":"hi"}`+"\n"+`{"conv":"a","role":"agent","text":"hello"}`+"\n", "--session")
	if code != 1 || len(lines) != 1 || !strings.Contains(stderr, `line 1: role "pilot"`) {
		t.Errorf("bad role: code %d, %d lines, stderr %q", code, len(lines), stderr)
	}
}
