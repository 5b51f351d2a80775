package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/voicegw/voicegw/classifier"
	"github.com/voicegw/voicegw/gateway"
	"github.com/voicegw/voicegw/gateway/backends"
	"github.com/voicegw/voicegw/loadtest/sim"
	"github.com/voicegw/voicegw/telemetry"
)

const devSystemPrompt = "You are a helpful voice agent for a defense contractor's help desk. Answer briefly, in one to three spoken sentences."

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dev := fs.Bool("dev", false, "run with the built-in dev tenant and in-process simulated backends (no config needed)")
	configPath := fs.String("config", "", "config file (YAML)")
	httpAddr := fs.String("http", "127.0.0.1:8080", "HTTP listen address (softphone, signaling, /metrics)")
	mediaAddr := fs.String("media", "", "WebRTC media UDP address, one port for all calls (default: the HTTP host, a random port)")
	token := fs.String("token", os.Getenv("VOICEGW_DEV_TOKEN"), "dev mode: the call token (default: random, or $VOICEGW_DEV_TOKEN)")
	greeting := fs.String("greeting", "", "dev mode: a greeting the agent speaks when a call connects")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	sipAddr := fs.String("sip", "", "dev mode: SIP listen address (UDP and TCP), e.g. 127.0.0.1:5060; the dev trunk accepts calls from 127.0.0.0/8 to any number")
	rtpPorts := fs.String("rtp-ports", "20000-29999", "dev mode: RTP port range for SIP calls")
	bundle := fs.String("classifier", "", "dev mode: classifier bundle directory or rule pack file (default: the embedded bundle)")
	usPerson := fs.Bool("dev-us-person", false, "dev mode: attest the dev caller as a verified U.S. person (default: unknown)")
	drain := fs.Duration("drain-timeout", 30*time.Second, "dev mode: how long calls in progress may go on after SIGTERM/SIGINT before they are hung up")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := telemetry.NewLogger(stderr, *logFormat, *logLevel)
	if *configPath != "" {
		return serveConfig(ctx, *configPath, log, stdout, stderr)
	}
	if !*dev {
		fmt.Fprintln(stderr, "voicegw serve: give --config FILE, or --dev (built-in dev tenant and simulated backends)")
		return 2
	}
	var eng *classifier.Engine
	if *bundle != "" {
		var err error
		if eng, err = classifier.Load(*bundle); err != nil {
			fmt.Fprintf(stderr, "voicegw serve: --classifier: %v\n", err)
			return 2
		}
	}

	simCtx, stopSim := context.WithCancel(context.Background())
	defer stopSim()
	_, simURL, err := sim.Listen(simCtx, "127.0.0.1:0", sim.Config{Logger: log.With("component", "sim")})
	if err != nil {
		fmt.Fprintf(stderr, "voicegw serve: simulated backends: %v\n", err)
		return 1
	}
	log.Warn("dev mode: ASR, LLM and TTS are SIMULATED backends", "url", simURL)

	tok := *token
	if tok == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		tok = hex.EncodeToString(b[:])
	}
	host, _, err := net.SplitHostPort(*httpAddr)
	if err != nil {
		fmt.Fprintf(stderr, "voicegw serve: --http %q: %v\n", *httpAddr, err)
		return 2
	}
	media := *mediaAddr
	if media == "" {
		media = net.JoinHostPort(host, "0")
	}
	loopback := false
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() || host == "localhost" {
		loopback = true
	}
	attested := ""
	if *usPerson {
		attested = "dev-mode flag --dev-us-person"
	}
	var sipCfg gateway.SIPConfig
	if *sipAddr != "" {
		lo, hi, err := parsePortRange(*rtpPorts)
		if err != nil {
			fmt.Fprintf(stderr, "voicegw serve: --rtp-ports: %v\n", err)
			return 2
		}
		sipCfg = gateway.SIPConfig{
			UDPAddr: *sipAddr, TCPAddr: *sipAddr, RTPPortMin: lo, RTPPortMax: hi,
			Trunks: []gateway.Trunk{{
				Name: "dev", Tenant: "dev",
				Sources:          []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")},
				Numbers:          map[string]string{"*": ""},
				USPersonAttested: *usPerson, AttestedBy: attested,
			}},
		}
	}
	srv, err := gateway.New(gateway.Config{
		Classifier:   eng,
		HTTPAddr:     *httpAddr,
		SIP:          sipCfg,
		ICE:          gateway.ICEConfig{UDPAddr: media, LoopbackOnly: loopback},
		ASR:          backends.ASRConfig{Endpoint: backends.Endpoint{Name: "sim-asr", URL: simURL, Model: "sim-whisper"}},
		LLM:          backends.LLMConfig{Endpoint: backends.Endpoint{Name: "sim-llm", URL: simURL, Model: "sim-llm"}},
		TTS:          backends.TTSConfig{Endpoint: backends.Endpoint{Name: "sim-tts", URL: simURL, Model: "sim-tts"}, Voice: "sim"},
		Pipeline:     gateway.PipelineConfig{SystemPrompt: devSystemPrompt, Greeting: *greeting},
		Auth:         gateway.StaticTokens{tok: {Tenant: "dev", Subject: "dev-caller", USPerson: *usPerson, AttestedBy: attested}},
		Logger:       log,
		DrainTimeout: *drain,
	})
	if err != nil {
		fmt.Fprintf(stderr, "voicegw serve: %v\n", err)
		return 1
	}
	l, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		fmt.Fprintf(stderr, "voicegw serve: listen %s: %v\n", *httpAddr, err)
		_ = srv.Shutdown(context.Background())
		return 1
	}
	fmt.Fprintf(stdout, "voicegw %s (dev mode, simulated backends)\n", version)
	fmt.Fprintf(stdout, "softphone: http://%s/?token=%s\n", l.Addr(), tok)
	fmt.Fprintf(stdout, "media: udp %s\n", srv.MediaAddr())
	if *sipAddr != "" {
		fmt.Fprintf(stdout, "sip: udp %s, tcp %s (dev trunk: 127.0.0.0/8, any number, no digest)\n", srv.SIPAddr("udp"), srv.SIPAddr("tcp"))
	}

	return serveUntilDone(ctx, srv, l, "", "", log, stderr)
}

// parsePortRange parses "LOW-HIGH".
func parsePortRange(s string) (int, int, error) {
	a, b, ok := strings.Cut(s, "-")
	lo, err1 := strconv.Atoi(strings.TrimSpace(a))
	hi, err2 := strconv.Atoi(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil || lo < 1024 || hi > 65535 || hi-lo < 1 {
		return 0, 0, fmt.Errorf("want LOW-HIGH within 1024-65535, got %q", s)
	}
	return lo, hi, nil
}

// serveUntilDone serves srv on l (TLS when certFile is set) until ctx ends
// (SIGTERM or SIGINT) or serving fails, then drains the calls and shuts the
// gateway down: calls in progress go on for the drain timeout, and a
// second SIGTERM or SIGINT hangs them up at once. SIGHUP never stops the
// process: it is logged and ignored.
func serveUntilDone(ctx context.Context, srv *gateway.Server, l net.Listener, certFile, keyFile string, log *slog.Logger, stderr io.Writer) int {
	stopHUP := ignoreHangups(log)
	defer stopHUP()
	errc := make(chan error, 1)
	go func() {
		if certFile != "" {
			errc <- srv.ServeTLS(l, certFile, keyFile)
			return
		}
		errc <- srv.Serve(l)
	}()
	code := 0
	select {
	case <-ctx.Done():
		log.Info("signal received: draining calls, then shutting down")
	case err := <-errc:
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(stderr, "voicegw serve: %v\n", err)
			code = 1
		}
	}
	sctx, force := context.WithCancel(context.Background())
	defer force()
	stopForce := onSignal(func() {
		log.Warn("second signal: hanging up the calls in progress now")
		force()
	}, os.Interrupt, syscall.SIGTERM)
	defer stopForce()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown", "err", err)
	}
	return code
}

// ignoreHangups keeps SIGHUP from killing the process while the gateway
// serves: each one is logged and otherwise ignored (a later change will
// reload the config on it). The returned stop leaves SIGHUP ignored.
func ignoreHangups(log *slog.Logger) (stop func()) {
	stopHUP := onSignal(func() {
		log.Info("SIGHUP received and ignored: the configuration is not reloaded; restart to apply changes")
	}, syscall.SIGHUP)
	return func() {
		// Ignore before Stop, so SIGHUP never falls back to its default
		// action, which ends the process.
		signal.Ignore(syscall.SIGHUP)
		stopHUP()
	}
}

// onSignal calls fn, on its own goroutine, for every one of sigs the
// process receives until stop is called; stop waits for that goroutine.
func onSignal(fn func(), sigs ...os.Signal) (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		for {
			select {
			case <-ch:
				fn()
			case <-done:
				return
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			signal.Stop(ch)
			close(done)
			<-exited
		})
	}
}
