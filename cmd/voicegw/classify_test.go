package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

func classify(t *testing.T, input string, args ...string) (code int, lines []map[string]any, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), append([]string{"classify"}, args...), strings.NewReader(input), &out, &errb)
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
	code, lines, _ := classify(t, "Torque the TVC actuator bolts to 45 in-lb.\n{\"id\":\"x1\",\"text\":\"The cafeteria opens at 7.\"}\n")
	if code != 0 || len(lines) != 2 {
		t.Fatalf("code %d, %d lines", code, len(lines))
	}
	if lines[0]["id"] != "1" || lines[0]["action"] != "block" || lines[0]["controlled"] != true {
		t.Errorf("line 1: %v", lines[0])
	}
	if lines[1]["id"] != "x1" || lines[1]["action"] != "allow" {
		t.Errorf("line 2: %v", lines[1])
	}
	for _, k := range []string{"score", "categories", "rules"} {
		if _, ok := lines[0][k]; !ok {
			t.Errorf("decision lacks %q", k)
		}
	}
	// A verified U.S. person is allowed the same text.
	if _, l, _ := classify(t, "Torque the TVC actuator bolts to 45 in-lb.\n", "--party", "us-person"); l[0]["action"] != "allow" {
		t.Errorf("us-person: %v", l[0])
	}
}

func TestClassifyBadLinesContinue(t *testing.T) {
	in := "{\"id\":1,\"text\":\"ok\"}\n{not json\n{\"id\":3}\n\xff\xfe\n{\"id\":5,\"text\":\"fine\"}\n"
	code, lines, stderr := classify(t, in)
	if code != 1 || len(lines) != 2 {
		t.Fatalf("code %d, %d decisions; want 1 and 2", code, len(lines))
	}
	for _, want := range []string{"line 2: not a JSON object", `line 3: object has no "text"`, "line 4: not valid UTF-8"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if code, _, stderr := classify(t, "x\n", "--policy", "/nonexistent.yaml"); code != 2 || !strings.Contains(stderr, "nonexistent") {
		t.Errorf("bad policy: %d %q", code, stderr)
	}
}

// TestClassifyDevSet reads the development set as DESIGN.md promises.
func TestClassifyDevSet(t *testing.T) {
	f, err := os.ReadFile("../../classifier/testdata/dev.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	code, lines, _ := classify(t, string(f), "--explain")
	if code != 0 || len(lines) != 200 {
		t.Fatalf("code %d, %d decisions", code, len(lines))
	}
	if _, ok := lines[0]["explain"]; !ok {
		t.Error("--explain added no trace")
	}
}
