package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/voicegw/voicegw/loadtest/rig"
	"github.com/voicegw/voicegw/loadtest/sipcall"
)

// Exit codes of run and ramp.
const (
	exitOK     = 0 // every SLO held
	exitError  = 1 // bad flags, gateway unreachable, nothing measured
	exitMissed = 2 // an SLO (or the failed ratio) was missed
)

// callFlags are the flags run and ramp share: where to call, how, and what
// to judge.
type callFlags struct {
	gateway, token, apiKey, tenant string
	transport, codec               string
	sip, sipTransport, number      string
	turns                          int
	audio, jsonOut, slo            string
	duration                       time.Duration
	setupTimeout, turnTimeout      time.Duration
	maxFailed                      float64
	progress                       bool
	explicit                       map[string]bool // flags given on the command line
}

func (f *callFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.gateway, "gateway", "http://127.0.0.1:8080", "the gateway's base URL (http://host:port)")
	fs.StringVar(&f.token, "token", os.Getenv("VOICEGW_DEV_TOKEN"), "one call token for every call (default $VOICEGW_DEV_TOKEN)")
	fs.StringVar(&f.apiKey, "api-key", os.Getenv("VOICEGW_API_KEY"), "a tenant API key: mint a token per call at POST /v1/tokens (default $VOICEGW_API_KEY)")
	fs.StringVar(&f.tenant, "tenant", "", "with --api-key: the tenant the key must mint for")
	fs.StringVar(&f.transport, "transport", "webrtc", "webrtc or sip")
	fs.StringVar(&f.codec, "codec", "", "webrtc: opus (default) or pcmu; sip: PCMU (default), PCMA or opus")
	fs.StringVar(&f.sip, "sip", "", "sip: the gateway's SIP address host:port")
	fs.StringVar(&f.sipTransport, "sip-transport", "udp", "sip: udp or tcp")
	fs.StringVar(&f.number, "number", "", "sip: the number called (default the caller's default)")
	fs.IntVar(&f.turns, "turns", 1, "utterances per call, each after the reply to the previous one")
	fs.StringVar(&f.audio, "audio", "", "WAV file the callers speak (16-bit PCM, any rate; default a built-in 4.4 s utterance)")
	fs.DurationVar(&f.duration, "duration", 0, "bound on the whole run; calls still up are hung up (default: enough for the schedule)")
	fs.DurationVar(&f.setupTimeout, "setup-timeout", 15*time.Second, "bound on token + dial + media connected")
	fs.DurationVar(&f.turnTimeout, "turn-timeout", 20*time.Second, "bound on each turn from the end of the utterance to the end of the reply")
	fs.StringVar(&f.jsonOut, "json", "", "write the results as JSON to this file")
	fs.StringVar(&f.slo, "slo", "", `objectives, e.g. "first_audio_p99<=1400ms,asr_to_first_token_p99<=800ms"`)
	fs.Float64Var(&f.maxFailed, "max-failed-ratio", 0.01, "share of started calls that may fail or be refused")
	fs.BoolVar(&f.progress, "progress", true, "print a progress line to stderr every second")
}

// usageError is a problem with the command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// config checks the shared flags and builds the rig's config (without the
// run's or ramp's own numbers).
func (f *callFlags) config() (rig.Config, error) {
	var cfg rig.Config
	if f.turns < 1 {
		return cfg, usagef("--turns must be at least 1")
	}
	if f.duration < 0 || f.setupTimeout <= 0 || f.turnTimeout <= 0 {
		return cfg, usagef("--duration must not be negative; --setup-timeout and --turn-timeout must be positive")
	}
	if f.maxFailed < 0 || f.maxFailed > 1 {
		return cfg, usagef("--max-failed-ratio must be between 0 and 1")
	}
	slos, err := rig.ParseSLOs(f.slo)
	if err != nil {
		return cfg, usagef("--slo: %v", err)
	}
	cfg = rig.Config{
		Transport: f.transport, Turns: f.turns, Duration: f.duration,
		SetupTimeout: f.setupTimeout, TurnTimeout: f.turnTimeout, SLOs: slos, MaxFailedRatio: f.maxFailed,
	}
	if f.audio != "" {
		if cfg.Utterance, err = rig.LoadUtterance(f.audio); err != nil {
			return cfg, usagef("--audio: %v", err)
		}
	}
	switch f.transport {
	case "webrtc":
		if err := checkGatewayURL(f.gateway); err != nil {
			return cfg, err
		}
		codec := strings.ToLower(f.codec)
		if codec != "" && codec != "opus" && codec != "pcmu" {
			return cfg, usagef("--codec %q: webrtc callers offer opus or pcmu", f.codec)
		}
		cfg.Dialer = rig.WebRTC{Gateway: strings.TrimRight(f.gateway, "/"), Codec: codec}
		switch {
		case f.token != "" && f.apiKey != "":
			return cfg, usagef("give --token or --api-key, not both (unset $VOICEGW_DEV_TOKEN or $VOICEGW_API_KEY)")
		case f.apiKey != "":
			cfg.Tokens = &rig.Minter{Gateway: strings.TrimRight(f.gateway, "/"), APIKey: f.apiKey, Tenant: f.tenant}
		case f.token != "":
			if f.tenant != "" {
				return cfg, usagef("--tenant goes with --api-key")
			}
			cfg.Tokens = rig.StaticToken(f.token)
		default:
			return cfg, usagef("webrtc calls need --token (or $VOICEGW_DEV_TOKEN) or --api-key")
		}
	case "sip":
		if _, _, err := net.SplitHostPort(f.sip); err != nil {
			return cfg, usagef("--transport sip needs --sip HOST:PORT: %v", err)
		}
		if f.sipTransport != "udp" && f.sipTransport != "tcp" {
			return cfg, usagef("--sip-transport %q: want udp or tcp", f.sipTransport)
		}
		d, err := sipDialer(f)
		if err != nil {
			return cfg, err
		}
		cfg.Dialer = d
	default:
		return cfg, usagef("--transport %q: want webrtc or sip", f.transport)
	}
	return cfg, nil
}

func checkGatewayURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usagef("--gateway %q: want http://host:port or https://host:port", s)
	}
	return nil
}

// preflight fails fast when the gateway cannot be reached.
func (f *callFlags) preflight(ctx context.Context) error {
	if f.transport != "webrtc" {
		return nil
	}
	return rig.CheckGateway(ctx, f.gateway)
}

// sipDialer places calls with the SIP trunk caller. A final SIP failure
// counts as reason "sip_<status>"; 503 (over the tenant's limits, or
// draining), 486 and 480 (busy) and a 403 U.S. Person Required count as
// refused.
func sipDialer(f *callFlags) (rig.Dialer, error) {
	codec := strings.ToUpper(f.codec)
	switch codec {
	case "":
		codec = "PCMU"
	case "PCMU", "PCMA":
	case "OPUS":
		codec = "opus"
	default:
		return nil, usagef("--codec %q: SIP callers offer PCMU, PCMA or opus", f.codec)
	}
	if f.explicit["token"] || f.explicit["api-key"] || f.explicit["tenant"] {
		return nil, usagef("SIP calls are admitted by the trunk, not by a call token: drop --token, --api-key and --tenant")
	}
	log := slog.New(slog.DiscardHandler)
	cfg := sipcall.SIPConfig{Target: f.sip, Transport: f.sipTransport, Number: f.number, Codec: codec, Logger: log}
	return rig.DialerFunc(func(ctx context.Context, _ string) (rig.Call, error) {
		c, err := sipcall.DialSIP(ctx, cfg)
		if err == nil {
			return c, nil
		}
		ce, ok := errors.AsType[*sipcall.CallError](err)
		if !ok {
			return nil, err
		}
		de := &rig.DialError{Reason: "sip_" + strconv.Itoa(ce.Status), Err: err}
		switch {
		case ce.Status == 403 && strings.Contains(strings.ToLower(ce.Reason), "u.s. person"):
			de.Reason, de.Refused = "us_person_required", true
		case ce.Status == 503 || ce.Status == 486 || ce.Status == 480:
			de.Refused = true
		}
		return nil, de
	}), nil
}

var _ rig.Ender = (*sipcall.SIPCaller)(nil)

// parse parses args; it returns the exit code to stop with, or -1 to go on.
func (f *callFlags) parse(fs *flag.FlagSet, args []string, stderr io.Writer) int {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitError
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return exitError
	}
	f.explicit = map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { f.explicit[fl.Name] = true })
	return -1
}

// progressPrinter writes progress lines to stderr: one line rewritten in
// place with \r on a terminal, plain lines otherwise.
func progressPrinter(stderr io.Writer) (func(rig.Progress), func()) {
	tty := isTerminal(stderr)
	wrote := false
	show := func(p rig.Progress) {
		if tty {
			fmt.Fprintf(stderr, "\r%s\033[K", p)
			wrote = true
			return
		}
		fmt.Fprintln(stderr, p)
	}
	done := func() {
		if wrote {
			fmt.Fprintln(stderr)
			wrote = false
		}
	}
	return show, done
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// writeJSON writes v to path, indented.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// runConfig is the config part of run's JSON document.
type runConfig struct {
	Gateway        string   `json:"gateway,omitempty"`
	Transport      string   `json:"transport"`
	SIP            string   `json:"sip,omitempty"`
	Auth           string   `json:"auth"`
	Tenant         string   `json:"tenant,omitempty"`
	Calls          int      `json:"calls,omitempty"`
	Rate           float64  `json:"rate,omitempty"`
	Concurrency    int      `json:"concurrency,omitempty"`
	Turns          int      `json:"turns"`
	Audio          string   `json:"audio"`
	DurationMS     int64    `json:"duration_ms,omitempty"`
	SetupTimeoutMS int64    `json:"setup_timeout_ms"`
	TurnTimeoutMS  int64    `json:"turn_timeout_ms"`
	SLO            []string `json:"slo"`
	MaxFailedRatio float64  `json:"max_failed_ratio"`
	Start          int      `json:"start,omitempty"`
	Step           int      `json:"step,omitempty"`
	Max            int      `json:"max,omitempty"`
	StepDurationMS int64    `json:"step_duration_ms,omitempty"`
	CallsPerStep   int      `json:"calls_per_step,omitempty"`
}

// describe returns the JSON config shared by run and ramp (never the token
// or key).
func (f *callFlags) describe(cfg rig.Config) runConfig {
	rc := runConfig{Transport: f.transport, Turns: f.turns, Audio: f.audio, DurationMS: f.duration.Milliseconds(),
		SetupTimeoutMS: f.setupTimeout.Milliseconds(), TurnTimeoutMS: f.turnTimeout.Milliseconds(),
		SLO: []string{}, MaxFailedRatio: f.maxFailed, Tenant: f.tenant}
	if f.transport == "sip" {
		rc.SIP = f.sip + "/" + f.sipTransport
	} else {
		rc.Gateway = f.gateway
	}
	switch {
	case f.transport == "sip":
		rc.Auth = "trunk"
	case f.apiKey != "":
		rc.Auth = "api-key"
	case f.token != "":
		rc.Auth = "token"
	default:
		rc.Auth = "none"
	}
	if rc.Audio == "" {
		rc.Audio = "built-in"
	}
	for _, s := range cfg.SLOs {
		rc.SLO = append(rc.SLO, s.Expr)
	}
	return rc
}

// runLoad is "loadtest run": an open-model load at a fixed arrival rate.
func runLoad(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loadtest run", flag.ContinueOnError)
	var f callFlags
	f.register(fs)
	calls := fs.Int("calls", 10, "number of calls (arrivals) to schedule")
	rate := fs.Float64("rate", 1, "arrivals per second: arrival i starts at i/rate whatever earlier calls are doing")
	concurrency := fs.Int("concurrency", 0, "cap on calls up at once; an arrival over it is dropped (dropped_by_rig), not delayed (default no cap)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: loadtest run --gateway URL (--token T | --api-key K) [--calls N] [--rate R] [--slo EXPR] [flags]")
		fs.PrintDefaults()
	}
	if code := f.parse(fs, args, stderr); code >= 0 {
		return code
	}
	cfg, err := f.config()
	if err == nil {
		switch {
		case *calls < 1:
			err = usagef("--calls must be at least 1")
		case !(*rate > 0):
			err = usagef("--rate must be positive")
		case *concurrency < 0:
			err = usagef("--concurrency must not be negative")
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "loadtest run: %v\n", err)
		return exitError
	}
	cfg.Calls, cfg.Rate, cfg.Concurrency = *calls, *rate, *concurrency
	if err := f.preflight(ctx); err != nil {
		fmt.Fprintf(stderr, "loadtest run: %v\n", err)
		return exitError
	}
	done := func() {}
	if f.progress {
		cfg.OnProgress, done = progressPrinter(stderr)
	}
	res, err := rig.Run(ctx, cfg)
	done()
	if res == nil {
		fmt.Fprintf(stderr, "loadtest run: %v\n", err)
		return exitError
	}
	res.WriteText(stdout)
	if f.jsonOut != "" {
		desc := f.describe(cfg)
		desc.Calls, desc.Rate, desc.Concurrency = *calls, *rate, *concurrency
		if werr := writeJSON(f.jsonOut, res.Report(desc)); werr != nil {
			fmt.Fprintf(stderr, "loadtest run: --json: %v\n", werr)
			return exitError
		}
	}
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "loadtest run: %v\n", err)
		return exitError
	case ctx.Err() != nil:
		fmt.Fprintln(stderr, "loadtest run: interrupted")
		return exitError
	case res.Measured() == 0:
		fmt.Fprintln(stderr, "loadtest run: no turn was measured; see the reasons above")
		return exitError
	case !res.OK():
		return exitMissed
	}
	return exitOK
}
