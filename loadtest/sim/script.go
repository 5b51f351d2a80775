package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Script file formats.
//
// An ASR script is UTF-8 text with one transcript per line; blank lines
// and lines starting with "#" are skipped:
//
//	# successive caller utterances
//	What are your opening hours?
//	Thanks, goodbye.
//
// An LLM script is a list of rules, each {match, reply}, tried in order
// (see Rule). In a file ending .yaml or .yml it is a YAML sequence:
//
//	- match: hours
//	  reply: We are open from nine to five.
//	- match: "*"
//	  reply: Sorry, I can only talk about our hours.
//
// Otherwise it is JSON lines, one rule per line, with blank and "#" lines
// skipped:
//
//	{"match": "hours", "reply": "We are open from nine to five."}
//
// Errors name the file and line.

// maxScriptBytes bounds a script file.
const maxScriptBytes = 8 << 20

func readScript(kind, path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%s script: %w", kind, err)
	}
	if st.Size() > maxScriptBytes {
		return nil, fmt.Errorf("%s script %s: %d bytes, more than %d", kind, path, st.Size(), maxScriptBytes)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s script: %w", kind, err)
	}
	return bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")), nil
}

// LoadASRScript reads transcripts, one per line.
func LoadASRScript(path string) ([]string, error) {
	b, err := readScript("asr", path)
	if err != nil {
		return nil, err
	}
	return parseASRScript(path, b)
}

func parseASRScript(path string, b []byte) ([]string, error) {
	var out []string
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !utf8.ValidString(line) {
			return nil, fmt.Errorf("asr script %s:%d: not valid UTF-8", path, i+1)
		}
		out = append(out, line)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("asr script %s: no transcripts", path)
	}
	return out, nil
}

// LoadLLMScript reads rules: YAML for .yaml and .yml files, JSON lines
// otherwise.
func LoadLLMScript(path string) ([]Rule, error) {
	b, err := readScript("llm", path)
	if err != nil {
		return nil, err
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml":
		return parseLLMYAML(path, b)
	}
	return parseLLMJSONL(path, b)
}

func parseLLMJSONL(path string, b []byte) ([]Rule, error) {
	var out []Rule
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var r Rule
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			return nil, fmt.Errorf("llm script %s:%d: %w", path, i+1, err)
		}
		if dec.More() {
			return nil, fmt.Errorf("llm script %s:%d: more than one object on the line", path, i+1)
		}
		if err := r.validate(); err != nil {
			return nil, fmt.Errorf("llm script %s:%d: %w", path, i+1, err)
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("llm script %s: no rules", path)
	}
	return out, nil
}

func parseLLMYAML(path string, b []byte) ([]Rule, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("llm script %s: %w", path, err)
	}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("llm script %s: no rules", path)
	}
	seq := doc.Content[0]
	if seq.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("llm script %s:%d: want a list of {match, reply}", path, seq.Line)
	}
	var out []Rule
	for _, n := range seq.Content {
		var r Rule
		if n.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("llm script %s:%d: want {match, reply}", path, n.Line)
		}
		for k := 0; k+1 < len(n.Content); k += 2 {
			key, val := n.Content[k], n.Content[k+1]
			if val.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("llm script %s:%d: %q must be text", path, val.Line, key.Value)
			}
			switch key.Value {
			case "match":
				r.Match = val.Value
			case "reply":
				r.Reply = val.Value
			default:
				return nil, fmt.Errorf("llm script %s:%d: unknown field %q (want match and reply)", path, key.Line, key.Value)
			}
		}
		if err := r.validate(); err != nil {
			return nil, fmt.Errorf("llm script %s:%d: %w", path, n.Line, err)
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("llm script %s: no rules", path)
	}
	return out, nil
}

func (r Rule) validate() error {
	switch {
	case strings.TrimSpace(r.Match) == "":
		return errors.New(`"match" is missing or empty (use "*" to match anything)`)
	case strings.TrimSpace(r.Reply) == "":
		return errors.New(`"reply" is missing or empty`)
	}
	return nil
}
