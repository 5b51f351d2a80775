package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
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
	Conv      json.RawMessage `json:"conv"`
	Role      string          `json:"role"`
	Label     string          `json:"label"`
	Style     string          `json:"style"`
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
	Model      string               `json:"model_version"`
	// Explanation: the top contributing features (n-grams by hash).
	Explanation []classifier.Contribution `json:"explanation"`
	Trace       []string                  `json:"trace,omitempty"`
}

const classifyUsage = `usage: voicegw classify [--party us-person|foreign|unknown] [--direction inbound|outbound]
                        [--policy PATH] [--explain] [--session] [--report] < input
       voicegw classify train [--bundle DIR] [--dev FILE] TRAIN.jsonl...

Reads one text per line on stdin: plain text (its id is the line number) or
a JSON object {"id": …, "text": …, "party": …, "direction": …} whose party
and direction override the flags (other fields are ignored). Writes one
JSON decision per line on stdout, with the features that contributed
most ("explanation"). With --explain each decision carries its scoring
trace ("trace") and the trace is also printed on stderr. With --session
consecutive lines are one call in order (topic carry and the piecemeal
accumulator apply): lines with the same "conv" field are one call, a new
"conv" starts another, and "role" caller/agent sets the direction
(inbound/outbound); otherwise each line is classified on its own. With
--report, lines that carry a "label" (controlled or benign) are scored
and recall and false-positive rate, overall and per style, are printed on
stderr.

--policy is a classifier bundle (a directory with manifest.json: the rule
pack, the lexicon and the model, each pinned by SHA-256) or a bare rule
pack YAML file, compiled with the embedded lexicon and model.

A line that cannot be read is reported on stderr with its number and
skipped; the exit code is then 1. Blank lines are skipped.

"train" fits the bundle's model on labelled JSONL files (one per writer
or source), prints the leave-one-file-out cross-validation by file and
style, and the figures on --dev, then writes model.json and manifest.json
into the bundle directory. The threshold is the lowest probability at
which the held-out false-positive rate is 4 %, over the files in a
directory named train (the independent writers), or over all files when
none is.
`

// runClassify implements `voicegw classify`.
func runClassify(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "train" {
		return runClassifyTrain(args[1:], stdout, stderr)
	}
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
	session := fs.Bool("session", false, "classify consecutive lines as one call, in order (a new \"conv\" value starts a new call)")
	report := fs.Bool("report", false, "score lines that carry a \"label\" and print recall and false-positive rate on stderr")
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
	if *explain {
		eng = eng.WithTrace()
	}
	c := &classifyRun{eng: eng, session: *session, explain: *explain, stderr: stderr, tallies: map[string]*classifier.Tally{}}
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
			if !c.handleLine(n, line, party, dir, enc, bad) {
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
	if *report {
		c.printReport()
	}
	if failed {
		return 1
	}
	return 0
}

// classifyRun is one `voicegw classify` run: the engine, the current call
// (with --session) and the tallies for --report.
type classifyRun struct {
	eng     *classifier.Engine
	session bool
	explain bool
	stderr  io.Writer
	sess    *classifier.Session
	conv    string
	tallies map[string]*classifier.Tally
}

func (c *classifyRun) classify(text string, p classifier.Party, d classifier.Direction, conv string) classifier.Decision {
	if !c.session {
		return c.eng.Classify(text, p, d)
	}
	if c.sess == nil || conv != c.conv {
		c.sess, c.conv = c.eng.NewSession(), conv
	}
	return c.sess.Classify(text, p, d)
}

func (c *classifyRun) count(label, style string, flagged bool) {
	for _, k := range []string{"all", "style " + style} {
		if k == "style " {
			continue
		}
		t := c.tallies[k]
		if t == nil {
			t = &classifier.Tally{}
			c.tallies[k] = t
		}
		t.Add(label == "controlled", flagged)
	}
}

func (c *classifyRun) printReport() {
	keys := make([]string, 0, len(c.tallies))
	for k := range c.tallies {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(c.stderr, "%-14s %s\n", k, c.tallies[k])
	}
}

// runClassifyTrain implements `voicegw classify train`.
func runClassifyTrain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("classify train", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, classifyUsage)
		fs.PrintDefaults()
	}
	bundle := fs.String("bundle", "classifier/packs", "bundle directory: its pack and lexicon are read; model.json and manifest.json are written")
	dev := fs.String("dev", "", "development set (JSONL) to report after training")
	version := fs.String("version", "", "model version (default \"dev\")")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "voicegw classify train: no training files")
		return 2
	}
	opt := classifier.TrainOptions{Version: *version, ThresholdOn: classifier.WriterFiles(fs.Args())}
	if _, err := classifier.TrainBundle(*bundle, fs.Args(), *dev, opt, stdout); err != nil {
		fmt.Fprintf(stderr, "voicegw classify train: %v\n", err)
		return 1
	}
	return 0
}

// handleLine classifies one input line; it returns false when the output
// cannot be written.
func (c *classifyRun) handleLine(n int, line []byte, party classifier.Party, dir classifier.Direction,
	enc *json.Encoder, bad func(int, string)) bool {
	explain, stderr := c.explain, c.stderr
	conv, label, style := "", "", ""
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
		if len(in.Conv) > 0 && string(in.Conv) != "null" {
			conv = string(in.Conv)
		}
		label, style = in.Label, in.Style
		switch strings.ToLower(in.Role) {
		case "":
		case "caller", "user":
			d = classifier.Inbound
		case "agent", "assistant", "model":
			d = classifier.Outbound
		default:
			bad(n, fmt.Sprintf("role %q: want caller or agent", in.Role))
			return true
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
	dec := c.classify(text, p, d, conv)
	if label == "controlled" || label == "benign" {
		c.count(label, style, dec.Action != classifier.Allow)
	}
	o := classifyOutput{Model: dec.ModelVersion, Explanation: dec.Explanation, ID: id, Action: dec.Action, Controlled: dec.Controlled, Score: dec.Score, Categories: dec.Categories,
		Rules: dec.Rules, Spans: dec.Spans, Redacted: dec.Redacted, Markings: dec.Markings, Escalate: dec.Escalate,
		Party: p, Direction: d, Pack: dec.PackVersion}
	if o.Spans == nil {
		o.Spans = []classifier.Span{}
	}
	if o.Markings == nil {
		o.Markings = []string{}
	}
	if o.Explanation == nil {
		o.Explanation = []classifier.Contribution{}
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
