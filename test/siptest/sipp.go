package siptest

import (
	"bufio"
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/voicegw/voicegw/media"
	"github.com/voicegw/voicegw/media/mediatest"
)

//go:embed scenarios/*.xml
var scenarioFS embed.FS

// Audio files the scenarios stream with rtp_stream, written into SIPp's
// working directory by Run: headerless 8 kHz G.711.
const (
	AudioFileMulaw = "siptest_audio.ul"
	AudioFileAlaw  = "siptest_audio.al"
)

// DefaultSpeech is what Run renders with espeak-ng when Options.Audio is nil.
const DefaultSpeech = "Hello, this is a test call. I would like to check the status of my order."

// Scenarios returns the names of the embedded scenarios, sorted.
func Scenarios() []string {
	ents, err := fs.ReadDir(scenarioFS, "scenarios")
	if err != nil {
		panic(err) // embedded; cannot fail
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// Scenario returns the XML of an embedded scenario; the ".xml" suffix is
// optional.
func Scenario(name string) ([]byte, error) {
	if !strings.HasSuffix(name, ".xml") {
		name += ".xml"
	}
	b, err := scenarioFS.ReadFile("scenarios/" + name)
	if err != nil {
		return nil, fmt.Errorf("siptest: unknown scenario %q (have %s)", name, strings.Join(Scenarios(), ", "))
	}
	return b, nil
}

// Options describe one SIPp run. The zero value of every field but Target
// and one of Scenario/XML is usable.
type Options struct {
	// Scenario names an embedded scenario ("uac_pcmu" or "uac_pcmu.xml").
	Scenario string
	// XML is a scenario of the caller's own; it takes precedence over Scenario.
	XML string
	// Target is the gateway's SIP address, "127.0.0.1:5060". Required.
	Target string
	// Transport is "udp" (default) or "tcp"; SIPp uses one socket (-t u1, -t t1).
	Transport string
	// Calls is the number of calls to place (-m). Default 1.
	Calls int
	// Rate is the call rate in calls per second (-r, -rp 1000). Default 10.
	Rate float64
	// Limit caps simultaneous calls (-l). Default: SIPp's (3 × call length × rate).
	Limit int
	// Service is the user part of the Request-URI (-s). Default "voicegw".
	Service string
	// AuthUser and AuthPass answer digest challenges (-au, -ap).
	AuthUser, AuthPass string
	// Pause is how long the call scenarios stay up after the answer, so that
	// the gateway's reply audio arrives (-set pause, milliseconds).
	// Default 3 s. Ignored if Vars sets "pause".
	Pause time.Duration
	// Vars are global scenario variables (-set name value).
	Vars map[string]string
	// Keys are keyword substitutions (-key name value), used as [name].
	Keys map[string]string
	// Timeout bounds the whole run: SIPp gets -timeout, and its process group
	// is killed a little after it. Default 60 s.
	Timeout time.Duration
	// RecvTimeout fails a call that waits longer for a message (-recv_timeout).
	// Default 10 s.
	RecvTimeout time.Duration
	// LocalIP is SIPp's signalling and media address (-i, -mi). Default 127.0.0.1.
	LocalIP string
	// LocalPort is SIPp's SIP port (-p). Default: a free port.
	LocalPort int
	// MediaPort is SIPp's RTP port (-mp); SIPp binds it and MediaPort+2, and
	// streams all calls' audio from it. Default: a free pair (FreeMediaPort).
	// Choose it first with FreeMediaPort when sniffing it.
	MediaPort int
	// Audio is 8 kHz mono PCM the scenarios stream to the gateway, written as
	// AudioFileMulaw and AudioFileAlaw. Default: DefaultSpeech rendered with
	// espeak-ng (about 3 s; follows mediatest.RequireTool).
	Audio []int16
	// AllowFailure makes Run return a failed run without failing the test,
	// for tests that expect calls to fail.
	AllowFailure bool
	// Args are extra SIPp arguments, appended last.
	Args []string
}

// Result is the outcome of one SIPp run.
type Result struct {
	// ExitCode is SIPp's: 0 every call succeeded, 1 some failed, 97 stopped
	// by an internal command, 99 no call was processed, 255/254 fatal
	// (-1, -2), -1 here when killed at Options.Timeout.
	ExitCode int
	// Created, Successful and Failed are SIPp's cumulative call counters.
	Created, Successful, Failed int
	// TimedOut says Run killed SIPp at Options.Timeout.
	TimedOut bool
	// Dir is SIPp's working directory (logs, scenario, audio); it is removed
	// at the end of the test.
	Dir string
	// LocalPort and MediaPort are the ports SIPp used.
	LocalPort, MediaPort int
	// Args is SIPp's command line, without the program name.
	Args []string
	// Elapsed is the wall time of the run.
	Elapsed time.Duration
	// Output is SIPp's stdout and stderr.
	Output string
	// Errors is the tail of SIPp's error log.
	Errors string
	// Messages is the tail of SIPp's message trace (-trace_msg).
	Messages string
	// Log is the scenario's <log> output.
	Log string
}

// OK says every requested call succeeded and SIPp exited 0.
func (r Result) OK() bool {
	return r.ExitCode == 0 && !r.TimedOut && r.Failed == 0 && r.Successful > 0
}

// Report is a multi-line description of the run for test failure output: the
// counters, the command line and the tails of SIPp's logs.
func (r Result) Report() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sipp exit=%d timedOut=%v created=%d successful=%d failed=%d elapsed=%v\n",
		r.ExitCode, r.TimedOut, r.Created, r.Successful, r.Failed, r.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(&b, "command: sipp %s\n", strings.Join(r.Args, " "))
	section := func(name, s string) {
		if s = strings.TrimSpace(s); s != "" {
			fmt.Fprintf(&b, "--- %s ---\n%s\n", name, s)
		}
	}
	section("sipp errors (tail)", r.Errors)
	section("scenario log (tail)", r.Log)
	section("sipp messages (tail)", r.Messages)
	section("sipp output (tail)", tail(r.Output, 40))
	return b.String()
}

// RequireSIPp returns the path of sipp, skipping the test when it is missing
// outside CI and failing it in CI (mediatest.RequireTool). Install it with
// `apt-get install -y sip-tester`.
func RequireSIPp(tb testing.TB) string {
	tb.Helper()
	return mediatest.RequireTool(tb, "sipp")
}

// Run runs SIPp once, as a client of opts.Target, and waits for it. It fails
// the test (with the tails of SIPp's logs) if SIPp cannot be run, or if any
// call failed and opts.AllowFailure is not set. SIPp never outlives
// opts.Timeout: its process group is killed.
func Run(tb testing.TB, opts Options) Result {
	tb.Helper()
	sipp := RequireSIPp(tb)
	if opts.Target == "" {
		tb.Fatal("siptest.Run: Options.Target is required")
	}
	xml := []byte(opts.XML)
	name := "custom"
	if opts.XML == "" {
		if opts.Scenario == "" {
			tb.Fatal("siptest.Run: Options.Scenario or Options.XML is required")
		}
		var err error
		if xml, err = Scenario(opts.Scenario); err != nil {
			tb.Fatal(err)
		}
		name = strings.TrimSuffix(opts.Scenario, ".xml")
	}
	opts.fill(tb)

	dir := tb.TempDir()
	sf := filepath.Join(dir, name+".xml")
	mustWrite(tb, sf, xml)
	audio := opts.Audio
	if audio == nil {
		audio = defaultAudio(tb)
	}
	ul := make([]byte, len(audio))
	media.EncodeMulaw(ul, audio)
	mustWrite(tb, filepath.Join(dir, AudioFileMulaw), ul)
	al := make([]byte, len(audio))
	media.EncodeAlaw(al, audio)
	mustWrite(tb, filepath.Join(dir, AudioFileAlaw), al)

	autoLocal, autoMedia := opts.LocalPort == 0, opts.MediaPort == 0
	opts.pickPorts(tb)
	usesPause := pauseDecl.Match(xml)
	var res Result
	for attempt := 1; ; attempt++ {
		res = run(tb, sipp, dir, opts.args(sf, usesPause), opts.Timeout)
		res.LocalPort, res.MediaPort = opts.LocalPort, opts.MediaPort
		// Another process may take a port between picking and binding it.
		if res.ExitCode < 254 || !strings.Contains(strings.ToLower(res.Output), "bind") ||
			!(autoLocal || autoMedia) || attempt == 3 {
			break
		}
		tb.Logf("siptest.Run: sipp could not bind its ports, retrying: %s", tail(res.Output, 2))
		if autoLocal {
			opts.LocalPort = FreeSIPPort(tb)
		}
		if autoMedia {
			opts.MediaPort = FreeMediaPort(tb)
		}
	}
	res.Created, res.Successful, res.Failed = readStats(filepath.Join(dir, "stat.csv"))
	res.Errors = tailFile(filepath.Join(dir, "errors.log"), 40)
	res.Messages = tailFile(filepath.Join(dir, "messages.log"), 120)
	res.Log = tailFile(filepath.Join(dir, "scenario.log"), 40)
	if !res.OK() && !opts.AllowFailure {
		tb.Errorf("siptest.Run %s against %s over %s: calls failed\n%s", name, opts.Target, opts.Transport, res.Report())
	}
	return res
}

// run runs sipp once in dir and collects its exit status and output.
func run(tb testing.TB, sipp, dir string, args []string, timeout time.Duration) Result {
	tb.Helper()
	res := Result{Dir: dir, Args: args}
	for _, f := range []string{"stat.csv", "errors.log", "screen.log", "messages.log", "scenario.log"} {
		_ = os.Remove(filepath.Join(dir, f))
	}

	// SIPp's own -timeout ends it gracefully; the context is the hard bound.
	ctx, cancel := context.WithTimeout(context.Background(), timeout+10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sipp, args...)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var killed atomic.Bool
	cmd.Cancel = func() error {
		killed.Store(true)
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout = &tailBuffer{b: &out, max: 1 << 20}
	cmd.Stderr = cmd.Stdout
	start := time.Now()
	err := cmd.Run()
	res.Elapsed = time.Since(start)
	res.TimedOut = killed.Load()
	res.Output = out.String()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		res.ExitCode = exitErr.ExitCode() // -1 when killed
	default:
		tb.Fatalf("siptest.Run: %v\n%s", err, res.Output)
	}
	// A killed SIPp may leave children (none expected, but bound everything).
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}

	return res
}

func (o *Options) fill(tb testing.TB) {
	tb.Helper()
	if o.Transport == "" {
		o.Transport = "udp"
	}
	if o.Transport != "udp" && o.Transport != "tcp" {
		tb.Fatalf("siptest.Run: Transport %q: want udp or tcp", o.Transport)
	}
	if o.Calls <= 0 {
		o.Calls = 1
	}
	if o.Rate <= 0 {
		o.Rate = 10
	}
	if o.Service == "" {
		o.Service = "voicegw"
	}
	if o.Pause <= 0 {
		o.Pause = 3 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 60 * time.Second
	}
	if o.RecvTimeout <= 0 {
		o.RecvTimeout = 10 * time.Second
	}
	if o.LocalIP == "" {
		o.LocalIP = "127.0.0.1"
	}
}

func (o *Options) pickPorts(tb testing.TB) {
	tb.Helper()
	if o.LocalPort == 0 {
		o.LocalPort = FreeSIPPort(tb)
	}
	if o.MediaPort == 0 {
		o.MediaPort = FreeMediaPort(tb)
	}
}

// pauseDecl finds a scenario's declaration of the global variable "pause".
var pauseDecl = regexp.MustCompile(`<Global\s+variables\s*=\s*"[^"]*\bpause\b`)

func (o *Options) args(scenarioFile string, usesPause bool) []string {
	t := "u1"
	if o.Transport == "tcp" {
		t = "t1"
	}
	a := []string{
		o.Target,
		"-sf", scenarioFile,
		"-t", t,
		"-i", o.LocalIP, "-mi", o.LocalIP,
		"-p", strconv.Itoa(o.LocalPort),
		"-mp", strconv.Itoa(o.MediaPort),
		"-s", o.Service,
		"-m", strconv.Itoa(o.Calls),
		"-r", strconv.FormatFloat(o.Rate, 'f', -1, 64), "-rp", "1000",
		"-nostdin",
		"-timeout", strconv.Itoa(int(o.Timeout.Round(time.Second)/time.Second)) + "s",
		"-timeout_error",
		"-recv_timeout", strconv.FormatInt(o.RecvTimeout.Milliseconds(), 10),
		"-trace_stat", "-stf", "stat.csv", "-fd", "1",
		"-trace_err", "-error_file", "errors.log",
		"-trace_screen", "-screen_file", "screen.log",
		"-trace_msg", "-message_file", "messages.log",
		"-trace_logs", "-log_file", "scenario.log",
	}
	if o.Limit > 0 {
		a = append(a, "-l", strconv.Itoa(o.Limit))
	}
	if o.AuthUser != "" {
		a = append(a, "-au", o.AuthUser, "-ap", o.AuthPass)
	}
	vars := make(map[string]string)
	if usesPause {
		vars["pause"] = strconv.FormatInt(o.Pause.Milliseconds(), 10)
	}
	for k, v := range o.Vars {
		vars[k] = v
	}
	for _, k := range sortedKeys(vars) {
		a = append(a, "-set", k, vars[k])
	}
	for _, k := range sortedKeys(o.Keys) {
		a = append(a, "-key", k, o.Keys[k])
	}
	return append(a, o.Args...)
}

// defaultAudio renders DefaultSpeech at 8 kHz, trimmed or padded to 3 s.
func defaultAudio(tb testing.TB) []int16 {
	tb.Helper()
	s := mediatest.Speech(tb, DefaultSpeech, 8000)
	const n = 3 * 8000
	out := make([]int16, n)
	copy(out, s)
	return out
}

// FreeSIPPort returns a port that is free for both UDP and TCP on 127.0.0.1.
func FreeSIPPort(tb testing.TB) int {
	tb.Helper()
	for range 100 {
		l, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			tb.Fatalf("siptest: free port: %v", err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p})
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		return p
	}
	tb.Fatal("siptest: no free SIP port")
	return 0
}

// FreeMediaPort returns an even UDP port p on 127.0.0.1 such that p, p+1 and
// p+2 are free: SIPp binds p (audio) and p+2 (video), +1 is RTCP's.
func FreeMediaPort(tb testing.TB) int {
	tb.Helper()
	for range 200 {
		u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			tb.Fatalf("siptest: free port: %v", err)
		}
		p := u.LocalAddr().(*net.UDPAddr).Port
		u.Close()
		p &^= 1
		if p < 1024 || p+2 > 65535 {
			continue
		}
		ok := true
		var held []*net.UDPConn
		for _, q := range []int{p, p + 1, p + 2} {
			c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: q})
			if err != nil {
				ok = false
				break
			}
			held = append(held, c)
		}
		for _, c := range held {
			c.Close()
		}
		if ok {
			return p
		}
	}
	tb.Fatal("siptest: no free media port")
	return 0
}

// readStats returns the cumulative counters of the last line of SIPp's
// statistics CSV (-trace_stat), which SIPp writes at exit.
func readStats(path string) (created, ok, failed int) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, 0
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) < 2 {
		return 0, 0, 0
	}
	head := strings.Split(lines[0], ";")
	last := strings.Split(lines[len(lines)-1], ";")
	get := func(col string) int {
		for i, h := range head {
			if h == col && i < len(last) {
				n, _ := strconv.Atoi(strings.TrimSpace(last[i]))
				return n
			}
		}
		return 0
	}
	return get("TotalCallCreated"), get("SuccessfulCall(C)"), get("FailedCall(C)")
}

func tailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	// Keep the last n lines of at most the last 1 MiB.
	if st, err := f.Stat(); err == nil && st.Size() > 1<<20 {
		_, _ = f.Seek(-1<<20, 2)
	}
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > 2*n {
			lines = append(lines[:0], lines[len(lines)-n:]...)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func mustWrite(tb testing.TB, path string, b []byte) {
	tb.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		tb.Fatal(err)
	}
}

// tailBuffer keeps about the last max bytes written to it.
type tailBuffer struct {
	b   *bytes.Buffer
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b.Write(p)
	if t.b.Len() > 2*t.max {
		keep := append([]byte(nil), t.b.Bytes()[t.b.Len()-t.max:]...)
		t.b.Reset()
		t.b.Write(keep)
	}
	return len(p), nil
}
