package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/voicegw/voicegw/classifier"
)

// classifyInput is one JSONL input object; other fields (label, cat,
// style…) are ignored.
type classifyInput struct {
	ID        json.RawMessage `json:"id"`
	Text      *string         `json:"text"`
	Party     string          `json:"party"`
	Direction string          `json:"direction"`
}

type classifyOutput struct {
	ID         any                  `json:"id"`
	Action     classifier.Action    `json:"action"`
	Controlled bool                 `json:"controlled"`
	Score      float64              `json:"score"`
	Categories []string             `json:"categories"`
	Rules      []string             `json:"rules"`
	Spans      []classifier.Span    `json:"spans,omitempty"`
	Redacted   string               `json:"redacted,omitempty"`
	Markings   []string             `json:"markings,omitempty"`
	Party      classifier.Party     `json:"party"`
	Direction  classifier.Direction `json:"direction"`
	Pack       string               `json:"pack_version"`
	Explain    []string             `json:"explain,omitempty"`
}

// runClassify implements `voicegw classify`: lines of text or JSONL objects
// with id and text on stdin, one JSON decision per line on stdout. A bad
// input line is reported on stderr with its line number and skipped; the
// exit code is then 1.
func runClassify(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("classify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	partyFlag := fs.String("party", "unknown", "who would hear the text: us-person, foreign or unknown (treated as foreign)")
	policy := fs.String("policy", "", "rule pack file (default: the pack embedded in the binary)")
	dirFlag := fs.String("direction", "outbound", "inbound (caller → LLM) or outbound (model → caller)")
	explain := fs.Bool("explain", false, "add the scoring trace to each decision (\"explain\") and print it on stderr")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	party, err := classifier.ParseParty(*partyFlag)
	if err != nil {
		fmt.Fprintf(stderr, "voicegw classify: --party: %v\n", err)
		return 2
	}
	dir, err := parseDirection(*dirFlag)
	if err != nil {
		fmt.Fprintf(stderr, "voicegw classify: --direction: %v\n", err)
		return 2
	}
	var eng *classifier.Engine
	if *policy != "" {
		eng, err = classifier.Load(*policy)
	} else {
		eng, err = classifier.Default()
	}
	if err != nil {
		fmt.Fprintf(stderr, "voicegw classify: %v\n", err)
		return 2
	}
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	failed := false
	bad := func(n int, msg string) {
		failed = true
		fmt.Fprintf(stderr, "voicegw classify: line %d: %s\n", n, msg)
	}
	n := 0
	for sc.Scan() {
		n++
		line := sc.Bytes()
		if len(strings.TrimSpace(string(line))) == 0 {
			continue
		}
		if !utf8.Valid(line) {
			bad(n, "not valid UTF-8")
			continue
		}
		var id any = strconv.Itoa(n)
		text := string(line)
		p, d := party, dir
		if trimmed := strings.TrimSpace(text); strings.HasPrefix(trimmed, "{") {
			var in classifyInput
			if err := json.Unmarshal(line, &in); err != nil {
				bad(n, "not a JSON object: "+err.Error())
				continue
			}
			if in.Text == nil {
				bad(n, `object has no "text"`)
				continue
			}
			text = *in.Text
			if len(in.ID) > 0 {
				if err := json.Unmarshal(in.ID, &id); err != nil {
					bad(n, `bad "id"`)
					continue
				}
			}
			if in.Party != "" {
				if p, err = classifier.ParseParty(in.Party); err != nil {
					bad(n, err.Error())
					continue
				}
			}
			if in.Direction != "" {
				if d, err = parseDirection(in.Direction); err != nil {
					bad(n, err.Error())
					continue
				}
			}
		}
		dec := eng.Classify(text, p, d)
		o := classifyOutput{ID: id, Action: dec.Action, Controlled: dec.Controlled, Score: dec.Score, Categories: dec.Categories,
			Rules: dec.Rules, Spans: dec.Spans, Redacted: dec.Redacted, Markings: dec.Markings, Party: p, Direction: d, Pack: dec.PackVersion}
		if *explain {
			o.Explain = dec.Trace
			fmt.Fprintf(stderr, "%v: %s\n", id, strings.Join(dec.Trace, "; "))
		}
		if err := enc.Encode(o); err != nil {
			fmt.Fprintf(stderr, "voicegw classify: write: %v\n", err)
			return 1
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(stderr, "voicegw classify: line %d: %v\n", n+1, err)
		return 1
	}
	if failed {
		return 1
	}
	return 0
}

func parseDirection(s string) (classifier.Direction, error) {
	switch classifier.Direction(strings.ToLower(strings.TrimSpace(s))) {
	case classifier.Inbound:
		return classifier.Inbound, nil
	case classifier.Outbound, "":
		return classifier.Outbound, nil
	}
	return "", fmt.Errorf("unknown direction %q (want inbound or outbound)", s)
}
