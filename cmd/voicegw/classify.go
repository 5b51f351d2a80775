package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
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

// classifyOutput is one decision line.
type classifyOutput struct {
	ID         any                  `json:"id"`
	Action     classifier.Action    `json:"action"`
	Controlled bool                 `json:"controlled"`
	Score      float64              `json:"score"`
	Categories []string             `json:"categories"`
	Rules      []string             `json:"rules"`
	Spans      []classifier.Span    `json:"spans"`
	Redacted   string               `json:"redacted,omitempty"`
	Markings   []string             `json:"markings"`
	Escalate   bool                 `json:"escalate,omitempty"`
	Party      classifier.Party     `json:"party"`
	Direction  classifier.Direction `json:"direction"`
	Pack       string               `json:"pack_version"`
	Trace      []string             `json:"trace,omitempty"`
}

const classifyUsage = `usage: voicegw classify [--party us-person|foreign|unknown] [--direction inbound|outbound]
                        [--policy PATH] [--explain] [--session] < input

Reads one text per line on stdin: plain text (its id is the line number) or
a JSON object {"id": …, "text": …, "party": …, "direction": …} whose party
and direction override the flags (other fields are ignored). Writes one
JSON decision per line on stdout. With --explain each decision carries its
scoring trace ("trace") and the trace is also printed on stderr. With
--session the lines are one call in order (topic carry and the piecemeal
accumulator apply); otherwise each line is classified on its own.
A line that cannot be read is reported on stderr with its number and
skipped; the exit code is then 1. Blank lines are skipped.
`

// runClassify implements `voicegw classify`.
func runClassify(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("classify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, classifyUsage)
		fs.PrintDefaults()
	}
	partyFlag := fs.String("party", "unknown", "who would hear the text: us-person, foreign or unknown (treated as foreign)")
	policy := fs.String("policy", "", "rule pack file (default: the pack embedded in the binary)")
	dirFlag := fs.String("direction", "outbound", "inbound (caller → LLM) or outbound (model → caller)")
	explain := fs.Bool("explain", false, "add the scoring trace to each decision and print it on stderr")
	session := fs.Bool("session", false, "classify the lines as one call, in order")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "voicegw classify: unexpected argument %q (the texts are read from stdin)\n", fs.Arg(0))
		return 2
	}
	party, err := classifier.ParseParty(*partyFlag)
	if err != nil {
		fmt.Fprintf(stderr, "voicegw classify: --party: %v\n", err)
		return 2
	}
	dir, err := classifier.ParseDirection(*dirFlag)
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
	classify := eng.Classify
	if *session {
		classify = eng.NewSession().Classify
	}
	in := bufio.NewReader(stdin)
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	failed := false
	bad := func(n int, msg string) {
		failed = true
		fmt.Fprintf(stderr, "voicegw classify: line %d: %s\n", n, msg)
	}
	for n := 1; ; n++ {
		line, rerr := in.ReadBytes('\n')
		if len(line) > 0 {
			if !handleLine(n, line, party, dir, classify, enc, *explain, stderr, bad) {
				return 1
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			fmt.Fprintf(stderr, "voicegw classify: line %d: %v\n", n, rerr)
			return 1
		}
	}
	if failed {
		return 1
	}
	return 0
}

// handleLine classifies one input line; it returns false when the output
// cannot be written.
func handleLine(n int, line []byte, party classifier.Party, dir classifier.Direction,
	classify func(string, classifier.Party, classifier.Direction) classifier.Decision,
	enc *json.Encoder, explain bool, stderr io.Writer, bad func(int, string)) bool {
	line = bytes.TrimRight(line, "\r\n")
	if len(bytes.TrimSpace(line)) == 0 {
		return true
	}
	if !utf8.Valid(line) {
		bad(n, "not valid UTF-8")
		return true
	}
	var id any = strconv.Itoa(n)
	text := string(line)
	p, d := party, dir
	if trimmed := bytes.TrimSpace(line); trimmed[0] == '{' {
		var in classifyInput
		if err := json.Unmarshal(trimmed, &in); err != nil {
			bad(n, "not a JSON object: "+err.Error())
			return true
		}
		if in.Text == nil {
			bad(n, `object has no "text" string`)
			return true
		}
		text = *in.Text
		if len(in.ID) > 0 && string(in.ID) != "null" {
			var v any
			if err := json.Unmarshal(in.ID, &v); err != nil {
				bad(n, `bad "id"`)
				return true
			}
			id = v
		}
		var err error
		if in.Party != "" {
			if p, err = classifier.ParseParty(in.Party); err != nil {
				bad(n, err.Error())
				return true
			}
		}
		if in.Direction != "" {
			if d, err = classifier.ParseDirection(in.Direction); err != nil {
				bad(n, err.Error())
				return true
			}
		}
	}
	dec := classify(text, p, d)
	o := classifyOutput{ID: id, Action: dec.Action, Controlled: dec.Controlled, Score: dec.Score, Categories: dec.Categories,
		Rules: dec.Rules, Spans: dec.Spans, Redacted: dec.Redacted, Markings: dec.Markings, Escalate: dec.Escalate,
		Party: p, Direction: d, Pack: dec.PackVersion}
	if o.Spans == nil {
		o.Spans = []classifier.Span{}
	}
	if o.Markings == nil {
		o.Markings = []string{}
	}
	if explain {
		o.Trace = dec.Trace
		fmt.Fprintf(stderr, "%v: %s\n  %s\n", id, dec.Action, strings.Join(dec.Trace, "\n  "))
	}
	if err := enc.Encode(o); err != nil {
		fmt.Fprintf(stderr, "voicegw classify: write: %v\n", err)
		return false
	}
	return true
}
