package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voicegw/voicegw/gateway/backends"
	"github.com/voicegw/voicegw/media"
	"github.com/voicegw/voicegw/telemetry"
	"github.com/voicegw/voicegw/tenants"
)

// Hang-up reasons sent in {"type":"hangup","reason":…}.
const (
	reasonCaller      = "caller"       // the caller hung up (signaling)
	reasonMediaEnded  = "media_ended"  // the caller's media path failed or closed
	reasonMaxDuration = "max_duration" // the call reached PipelineConfig.MaxCallDuration
	reasonShutdown    = "shutdown"     // the gateway is stopping
	reasonSignaling   = "signaling_closed"
)

// Notices the caller hears when something fails. They are synthesised once
// and cached (see notices).
const (
	noticeASR   = "Sorry, I'm having trouble hearing you right now. Please try again in a moment."
	noticeLLM   = "Sorry, I can't answer right now. Please try again in a moment."
	noticeBusy  = "Sorry, this line is very busy right now. Please ask again in a moment."
	noticeTTS   = "Sorry, I can't finish that answer right now."
	noticeBlock = "I'm sorry, I can't discuss that."
)

// eventSink receives the session's signaling events (transcripts, turns,
// policy decisions). Implemented by signalConn.
type eventSink interface {
	send(v any) error
}

// sessionDeps is what every session of one gateway shares.
type sessionDeps struct {
	asr      []backends.ASRConfig // in order of preference
	llm      *llmChain
	tts      *ttsChain
	notices  *notices
	metrics  *telemetry.Metrics
	pipeline PipelineConfig
	tenant   string
	policy   Policy
	tokens   LLMTokenLimiter // nil: unmetered
	agents   map[string]AgentSetup
}

// session is one call. A single goroutine (run) owns all of its state;
// the leg, the ASR reader, the turn workers and the player post closures to
// it with post.
type session struct {
	id     string
	caller Caller
	log    *slog.Logger
	deps   *sessionDeps
	leg    Leg
	sig    eventSink

	ctx    context.Context
	cancel context.CancelFunc
	tasks  chan func()
	wg     sync.WaitGroup
	// requested is the reason given to hangup by another goroutine.
	requested  atomic.Value
	reasonOnce sync.Once
	player     *player
	pol        CallPolicy

	// Owned by the run goroutine.
	digits      []rune // keypad entry in progress
	dtmfGen     int
	dtmfTimer   *time.Timer
	det         *media.TurnDetector
	preroll     [][]int16
	asr         backends.ASRStream
	asrGen      int
	asrDialing  bool
	speaking    bool
	awaiting    bool      // committed an utterance, waiting for its final transcript
	speechEnd   time.Time // end of the utterance awaiting its transcript
	partial     map[string]string
	pendingText string // a final that arrived while the caller spoke again
	history     []backends.Message
	turnSeq     int
	cur         *turn
	hangupWhy   string
}

// turn is one caller utterance and the agent's reply.
type turn struct {
	id       int
	cancel   context.CancelFunc
	user     string
	ingress  string
	started  time.Time
	t        map[string]time.Time // stage → time
	spoken   []string
	outcome  string
	finished bool
	// blocked is set by the TTS stage when the outbound classifier blocks
	// a sentence: the rest of the reply is dropped.
	blocked atomic.Bool
	// qmu orders the turn's audio into the play queue: the filler plays
	// only if no reply audio was queued before it.
	qmu         sync.Mutex
	audioQueued bool
	fillerTimer *time.Timer
}

// enqueue queues the turn's audio on p.
func (t *turn) enqueue(p *player, items ...playItem) {
	t.qmu.Lock()
	defer t.qmu.Unlock()
	t.audioQueued = true
	p.enqueue(items...)
}

const prerollFrames = 15 // 300 ms of audio kept before speech is detected

// stageBargeIn is the turn timing at which the caller's speech interrupted
// the agent (sent in the turn event; not a latency stage).
const stageBargeIn = "barge_in"

func newSession(parent context.Context, id string, caller Caller, deps *sessionDeps, leg Leg, sig eventSink, log *slog.Logger) (*session, error) {
	p := deps.pipeline
	det, err := media.NewTurnDetector(media.PipelineRate, p.VADMode, media.EndpointerConfig{Hangover: p.Hangover})
	if err != nil {
		return nil, fmt.Errorf("session: turn detector: %w", err)
	}
	ctx, cancel := context.WithCancel(parent)
	s := &session{
		id:      id,
		caller:  caller,
		log:     log,
		deps:    deps,
		leg:     leg,
		sig:     sig,
		ctx:     ctx,
		cancel:  cancel,
		tasks:   make(chan func(), 256),
		det:     det,
		partial: map[string]string{},
	}
	if p.SystemPrompt != "" {
		s.history = append(s.history, backends.Message{Role: "system", Content: p.SystemPrompt})
	}
	s.pol = allowAll{}
	if deps.policy != nil {
		s.pol = deps.policy.NewCall(caller, id)
	}
	s.player = newPlayer(leg, func(ev playerEvent) { s.post(func() { s.onPlayerEvent(ev) }) })
	return s, nil
}

// discard frees a session that was set up but never run, with its leg.
func (s *session) discard() {
	s.cancel()
	s.det.Close()
	_ = s.leg.Close()
}

// post runs fn on the session goroutine. It never blocks past the session's end.
func (s *session) post(fn func()) {
	select {
	case s.tasks <- fn:
	case <-s.ctx.Done():
	}
}

// hangup asks the session to end with reason; safe from any goroutine.
// The first reason given wins.
func (s *session) hangup(reason string) {
	s.reasonOnce.Do(func() { s.requested.Store(reason) })
	s.cancel()
}

// run is the session's owner goroutine: one select loop from answer to
// hang-up. It returns the hang-up reason after every goroutine the session
// started has ended.
func (s *session) run() string {
	ingress := s.leg.Ingress()
	m := s.deps.metrics
	m.CallsActive.WithLabelValues(ingress).Inc()
	started := time.Now()
	s.log.Info("call started", "ingress", ingress)

	s.goSafe("player", func() { s.player.run(s.ctx) })
	s.serve()
	if r, ok := s.requested.Load().(string); ok {
		s.setReason(r)
	}
	s.setReason(reasonShutdown)
	if s.cur != nil && !s.cur.finished {
		s.finishTurn(s.cur, "hung_up")
	}
	s.cancel()
	if s.dtmfTimer != nil {
		s.dtmfTimer.Stop()
	}
	if s.asr != nil {
		_ = s.asr.Close()
	}
	s.wg.Wait()
	_ = s.leg.Close()
	s.det.Close()
	st := s.leg.Stats()
	m.CallsActive.WithLabelValues(ingress).Dec()
	m.CallsTotal.WithLabelValues(ingress, s.hangupWhy).Inc()
	m.PacketsRx.WithLabelValues(ingress).Add(float64(st.RxPackets))
	m.PacketsTx.WithLabelValues(ingress).Add(float64(st.TxPackets))
	s.log.Info("call ended", "reason", s.hangupWhy, "duration", time.Since(started).Round(time.Millisecond),
		"turns", s.turnSeq, "rx_packets", st.RxPackets, "tx_packets", st.TxPackets, "rx_dropped", st.RxDropped)
	return s.hangupWhy
}

// serve is the session's select loop, from answer to hang-up. A panic in
// it, or in a closure posted to it, ends the call (recoverPanic).
func (s *session) serve() {
	defer s.recoverPanic("session")
	s.dialASR()
	if g := s.deps.pipeline.Greeting; g != "" {
		s.startScriptedTurn(g)
	}
	var maxDur <-chan time.Time
	if d := s.deps.pipeline.MaxCallDuration; d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		maxDur = t.C
	}
	frames := s.leg.Frames()
	for {
		select {
		case <-s.ctx.Done():
			return
		case fn := <-s.tasks:
			fn()
		case f, ok := <-frames:
			if !ok {
				frames = nil
				continue
			}
			s.onFrame(f)
		case <-s.leg.Done():
			s.setReason(reasonMediaEnded)
			return
		case <-maxDur:
			s.setReason(reasonMaxDuration)
			return
		}
	}
}

func (s *session) setReason(r string) {
	if s.hangupWhy == "" {
		s.hangupWhy = r
	}
}

// --- caller audio -------------------------------------------------------

func (s *session) onFrame(f []int16) {
	ev, err := s.det.Push(f)
	if err != nil {
		s.log.Debug("vad", "err", err)
		return
	}
	switch ev {
	case media.EventSpeechStart:
		s.speaking = true
		s.onSpeechStart()
		for _, pf := range s.preroll {
			s.appendASR(pf)
		}
		s.preroll = s.preroll[:0]
	case media.EventSpeechEnd:
		s.appendASR(f)
		s.speaking = false
		s.onSpeechEnd()
		return
	}
	if s.speaking {
		s.appendASR(f)
		return
	}
	if len(s.preroll) == prerollFrames {
		copy(s.preroll, s.preroll[1:])
		s.preroll = s.preroll[:prerollFrames-1]
	}
	s.preroll = append(s.preroll, f)
}

func (s *session) onSpeechStart() {
	s.log.Debug("speech start")
	if s.cur != nil && !s.cur.finished {
		s.bargeIn()
	}
	if s.asr == nil {
		s.dialASR()
	}
}

func (s *session) onSpeechEnd() {
	// The caller's speech ended when the hangover began.
	end := time.Now().Add(-s.deps.pipeline.Hangover)
	s.log.Debug("speech end")
	if s.asr == nil {
		s.failTurnBeforeLLM(end, "asr", errors.New("no transcription backend connection"))
		return
	}
	if err := s.asr.Commit(); err != nil {
		s.asrFailed(err)
		s.failTurnBeforeLLM(end, "asr", err)
		return
	}
	s.awaiting = true
	s.speechEnd = end
}

func (s *session) appendASR(f []int16) {
	if s.asr == nil {
		return
	}
	if err := s.asr.Append(f); err != nil {
		s.asrFailed(err)
	}
}

// dialASR opens the call's transcription stream in the background.
func (s *session) dialASR() {
	if s.asrDialing {
		return
	}
	s.asrDialing = true
	s.asrGen++
	gen := s.asrGen
	s.goSafe("asr", func() {
		ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
		defer cancel()
		st, name, err := dialASRChain(ctx, s.deps.asr, s.log, s.deps.metrics)
		if err != nil {
			s.post(func() {
				s.asrDialing = false
				s.log.Warn("transcription backends unavailable", "backend", name, "err", err)
			})
			return
		}
		delivered := make(chan struct{})
		s.post(func() {
			close(delivered)
			s.asrDialing = false
			if gen != s.asrGen {
				_ = st.Close()
				return
			}
			s.asr = st
		})
		select {
		case <-delivered:
		case <-s.ctx.Done():
			_ = st.Close()
			return
		}
		for ev := range st.Events() {
			s.post(func() { s.onASREvent(gen, st, ev) })
		}
	})
}

func (s *session) asrFailed(err error) {
	s.log.Warn("transcription stream failed", "backend", s.deps.asr[0].Name, "err", err)
	s.deps.metrics.BackendErrors.WithLabelValues("asr", s.deps.asr[0].Name).Inc()
	if s.asr != nil {
		_ = s.asr.Close()
		s.asr = nil
	}
	s.asrGen++
}

func (s *session) onASREvent(gen int, st backends.ASRStream, ev backends.ASREvent) {
	if gen != s.asrGen || st != s.asr {
		return
	}
	if ev.Err != nil {
		s.asrFailed(ev.Err)
		if s.awaiting {
			s.awaiting = false
			s.failTurnBeforeLLM(s.speechEnd, "asr", ev.Err)
		}
		return
	}
	if !ev.Final {
		s.partial[ev.ItemID] += ev.Text
		s.sendEvent(transcriptMessage{Type: "transcript", Role: "caller", Text: strings.TrimSpace(s.pendingText + " " + s.partial[ev.ItemID]), Final: false})
		return
	}
	delete(s.partial, ev.ItemID)
	if !s.awaiting {
		return
	}
	text := strings.TrimSpace(ev.Text)
	if s.speaking {
		// The caller went on talking: join this to the next utterance.
		s.pendingText = strings.TrimSpace(s.pendingText + " " + text)
		s.awaiting = false
		return
	}
	s.awaiting = false
	if s.pendingText != "" {
		text = strings.TrimSpace(s.pendingText + " " + text)
		s.pendingText = ""
	}
	if text == "" {
		s.log.Debug("empty transcript; no turn")
		return
	}
	s.callerTurn(text, s.speechEnd, time.Now())
}

// callerTurn checks the caller's words (a final transcript or keyed
// digits) inbound and, unless policy blocks them, starts a turn with them.
func (s *session) callerTurn(text string, speechEnd, asrFinal time.Time) {
	s.sendEvent(transcriptMessage{Type: "transcript", Role: "caller", Text: text, Final: true})
	d := s.checkPolicy(text, Inbound, CheckMeta{Turn: s.turnSeq + 1, Ingress: s.leg.Ingress(), Backend: s.deps.llm.Name()})
	if d.Action != ActionAllow {
		s.sendPolicy(Inbound, d)
	}
	switch d.Action {
	case ActionBlock:
		// The caller's words never reach the model or the history.
		t := s.newTurn("", speechEnd)
		t.t[telemetry.StageASRFinal] = asrFinal
		t.outcome = "blocked"
		s.cur = t
		t.cancel = func() {}
		s.player.enqueue(s.noticeItems(t, noticeBlock)...)
		return
	case ActionRedact:
		text = d.Redacted
	}
	s.startTurn(text, speechEnd, asrFinal)
}

// Keypad entry (RFC 4733 telephone-events on SIP calls).
const (
	dtmfTimeout   = 2 * time.Second // silence after a digit that ends an entry
	dtmfMaxDigits = 32
)

// onDTMF handles one keypad digit. A digit interrupts the agent as speech
// does; the digits keyed until '#', dtmfTimeout without a key, or
// dtmfMaxDigits become one caller turn that the model reads as
// "Keypad: 1234#" (checked by the policy like any caller text).
func (s *session) onDTMF(key rune) {
	if s.cur != nil && !s.cur.finished {
		s.bargeIn()
	}
	s.sendEvent(dtmfMessage{Type: "dtmf", Digit: string(key)})
	s.digits = append(s.digits, key)
	s.dtmfGen++
	if key == '#' || len(s.digits) >= dtmfMaxDigits {
		s.flushDTMF()
		return
	}
	gen := s.dtmfGen
	t := time.AfterFunc(dtmfTimeout, func() {
		s.post(func() {
			if s.dtmfGen == gen {
				s.flushDTMF()
			}
		})
	})
	s.dtmfTimer = t
}

func (s *session) flushDTMF() {
	if len(s.digits) == 0 {
		return
	}
	text := "Keypad: " + string(s.digits)
	s.digits = s.digits[:0]
	s.dtmfGen++
	now := time.Now()
	s.callerTurn(text, now, now)
}

// sendPolicy tells the client about a classifier decision that was not a
// plain allow.
func (s *session) sendPolicy(dir Direction, d PolicyDecision) {
	s.deps.metrics.PolicyActions.WithLabelValues(string(dir), d.Action).Inc()
	s.sendEvent(policyMessage{Type: "policy", Direction: string(dir), Action: d.Action,
		Categories: nonNil(d.Categories), Rules: nonNil(d.Rules)})
}

// checkPolicy runs the call's policy and fails closed: an unknown action is
// a block.
func (s *session) checkPolicy(text string, dir Direction, meta CheckMeta) PolicyDecision {
	d := s.pol.Check(text, dir, meta)
	switch d.Action {
	case ActionAllow, ActionBlock:
	case ActionRedact:
		if d.Redacted == "" {
			d.Action = ActionBlock
		}
	default:
		s.log.Error("policy returned an unknown action; blocking", "action", d.Action)
		d.Action = ActionBlock
	}
	return d
}

func nonNil(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}

// --- turns ------------------------------------------------------------------

func (s *session) newTurn(user string, speechEnd time.Time) *turn {
	s.turnSeq++
	t := &turn{id: s.turnSeq, user: user, ingress: s.leg.Ingress(), started: time.Now(), t: map[string]time.Time{}}
	if !speechEnd.IsZero() {
		t.t["speech_end"] = speechEnd
	}
	return t
}

// startTurn sends the caller's text, with the history, to the LLM and plays
// the reply as it streams.
func (s *session) startTurn(text string, speechEnd, asrFinal time.Time) {
	t := s.newTurn(text, speechEnd)
	t.t[telemetry.StageASRFinal] = asrFinal
	s.cur = t
	msgs := append(append([]backends.Message(nil), s.history...), backends.Message{Role: "user", Content: text})
	ctx, cancel := context.WithCancel(s.ctx)
	t.cancel = cancel
	s.scheduleFiller(t, speechEnd)
	s.goSafe("turn", func() { s.runTurn(ctx, t, msgs) })
}

// stageFiller is the turn timing at which a filler phrase started playing
// (sent in the turn event; first_audio is then the filler's).
const stageFiller = "filler"

// scheduleFiller arranges for the tenant's filler phrase to play at
// FillerAt after the caller's end of speech if the reply's audio has not
// been queued by then. Only a phrase already synthesised is played: the
// session never waits for TTS to make one.
func (s *session) scheduleFiller(t *turn, speechEnd time.Time) {
	p := s.deps.pipeline
	if p.Filler == "" || speechEnd.IsZero() {
		return
	}
	t.fillerTimer = time.AfterFunc(max(time.Until(speechEnd.Add(p.FillerAt)), 0), func() {
		s.post(func() { s.playFiller(t) })
	})
}

func (s *session) playFiller(t *turn) {
	if t != s.cur || t.finished {
		return
	}
	text := s.deps.pipeline.Filler
	pcm, ok := s.deps.notices.cached(text)
	if !ok {
		s.log.Debug("filler not synthesised yet; not played")
		return
	}
	t.qmu.Lock()
	defer t.qmu.Unlock()
	if t.audioQueued {
		return
	}
	t.audioQueued = true
	n := media.SamplesPerFrame(media.PipelineRate)
	items := []playItem{{mark: playMark{kind: markSentenceStart, turn: t.id, sentence: -2, text: text}}}
	for i := 0; i < len(pcm); i += n {
		f := make([]int16, n)
		copy(f, pcm[i:])
		items = append(items, playItem{frame: f})
	}
	s.player.enqueue(items...)
	t.t[stageFiller] = time.Now()
	s.deps.metrics.Fillers.WithLabelValues(s.deps.tenant).Inc()
	s.log.Info("reply late; filler played", "turn", t.id)
}

// startScriptedTurn plays a fixed agent text (the greeting) through TTS.
func (s *session) startScriptedTurn(text string) {
	t := s.newTurn("", time.Time{})
	s.cur = t
	ctx, cancel := context.WithCancel(s.ctx)
	t.cancel = cancel
	sentences := make(chan string, 1)
	sentences <- text
	close(sentences)
	s.goSafe("greeting", func() {
		s.speakSentences(ctx, t, sentences)
		s.player.enqueue(playItem{mark: playMark{kind: markTurnEnd, turn: t.id}})
	})
}

// runTurn streams the LLM reply, cuts it into sentences and hands them to
// speakSentences. It runs on its own goroutine and reports to the session
// with post.
func (s *session) runTurn(ctx context.Context, t *turn, msgs []backends.Message) {
	p := s.deps.pipeline
	req := backends.ChatRequest{Messages: msgs, MaxTokens: p.MaxTokens, Temperature: p.Temperature}
	if lim := s.deps.tokens; lim != nil {
		n := requestTokens(req)
		if ok, retry := lim.AllowLLMTokens(ctx, s.deps.tenant, n); !ok {
			if ctx.Err() == nil {
				s.post(func() { s.turnRateLimited(t, n, retry) })
			}
			return
		}
	}
	stream, err := s.deps.llm.Stream(ctx, req)
	if err != nil {
		if ctx.Err() == nil {
			s.post(func() { s.turnBackendFailed(t, "llm", err) })
		}
		return
	}
	defer stream.Close()

	sentences := make(chan string, 32)
	speakDone := make(chan struct{})
	go func() {
		defer close(speakDone)
		defer s.recoverPanic("speak")
		s.speakSentences(ctx, t, sentences)
	}()
	split := newSentenceSplitter(p.MaxSentenceChars)
	split.firstClauseWords = p.FirstChunkWords
	first := true
	var streamErr error
	for {
		delta, err := stream.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				streamErr = err
			}
			break
		}
		if t.blocked.Load() {
			break
		}
		if first && delta != "" {
			first = false
			now := time.Now()
			s.post(func() { t.t[telemetry.StageLLMFirstToken] = now })
		}
		for _, sent := range split.push(delta) {
			select {
			case sentences <- sent:
			case <-ctx.Done():
			}
		}
	}
	if streamErr == nil {
		if rest := split.flush(); rest != "" {
			select {
			case sentences <- rest:
			case <-ctx.Done():
			}
		}
	}
	close(sentences)
	<-speakDone
	if ctx.Err() != nil {
		return
	}
	if streamErr != nil {
		s.deps.metrics.BackendErrors.WithLabelValues("llm", s.deps.llm.Name()).Inc()
		s.post(func() { s.turnBackendFailed(t, "llm", streamErr) })
		return
	}
	if t.blocked.Load() {
		return // the block notice ends the turn
	}
	if first {
		s.post(func() { s.turnBackendFailed(t, "llm", errors.New("model returned an empty reply")) })
		return
	}
	s.player.enqueue(playItem{mark: playMark{kind: markTurnEnd, turn: t.id}})
}

// speakSentences synthesises each sentence and queues its audio, in order.
func (s *session) speakSentences(ctx context.Context, t *turn, sentences <-chan string) {
	idx := 0
	failed := false
	for sent := range sentences {
		if failed || ctx.Err() != nil {
			continue // drain
		}
		// Nothing unclassified is ever spoken.
		d := s.checkPolicy(sent, Outbound, CheckMeta{Turn: t.id, Ingress: s.leg.Ingress(), Backend: s.deps.tts.Name()})
		if d.Action != ActionAllow {
			s.post(func() { s.sendPolicy(Outbound, d) })
		}
		if d.Action == ActionBlock {
			t.blocked.Store(true)
			failed = true
			s.post(func() { t.outcome = "blocked" })
			s.player.enqueue(s.noticeItems(t, noticeBlock)...)
			continue
		}
		if d.Action == ActionRedact {
			sent = d.Redacted
		}
		if idx == 0 {
			now := time.Now()
			s.post(func() { t.t[telemetry.StageFirstSentence] = now })
		}
		if err := s.speak(ctx, t, idx, sent); err != nil {
			if ctx.Err() == nil {
				failed = true
				s.post(func() { s.ttsFailed(t, err) })
			}
			continue
		}
		idx++
	}
}

// speak streams one sentence from TTS into the play queue.
func (s *session) speak(ctx context.Context, t *turn, idx int, text string) error {
	st, err := s.deps.tts.Speak(ctx, text)
	if err != nil {
		return err
	}
	defer st.Close()
	rs, err := media.NewResampler(st.SampleRate(), media.PipelineRate)
	if err != nil {
		return fmt.Errorf("tts audio at %d Hz: %w", st.SampleRate(), err)
	}
	var fr framer
	buf := make([]int16, st.SampleRate()/25) // 40 ms
	var out []int16
	started := false
	for {
		n, err := st.Read(buf)
		if n > 0 {
			if !started && idx == 0 {
				now := time.Now()
				s.post(func() {
					if _, ok := t.t[telemetry.StageTTSFirstByte]; !ok {
						t.t[telemetry.StageTTSFirstByte] = now
					}
				})
			}
			out = rs.Process(out[:0], buf[:n])
			frames := fr.push(out)
			if len(frames) > 0 {
				items := make([]playItem, 0, len(frames)+1)
				if !started {
					items = append(items, playItem{mark: playMark{kind: markSentenceStart, turn: t.id, sentence: idx, text: text}})
					started = true
				}
				for _, f := range frames {
					items = append(items, playItem{frame: f})
				}
				if ctx.Err() != nil {
					return ctx.Err()
				}
				t.enqueue(s.player, items...)
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
	}
	var items []playItem
	if !started {
		items = append(items, playItem{mark: playMark{kind: markSentenceStart, turn: t.id, sentence: idx, text: text}})
	}
	if rest := fr.pending; len(rest) > 0 {
		last := make([]int16, media.SamplesPerFrame(media.PipelineRate))
		copy(last, rest)
		items = append(items, playItem{frame: last})
	}
	items = append(items, playItem{mark: playMark{kind: markSentenceEnd, turn: t.id, sentence: idx, text: text}})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	t.enqueue(s.player, items...)
	return nil
}

// onPlayerEvent runs on the session goroutine when the player passes a mark.
func (s *session) onPlayerEvent(ev playerEvent) {
	t := s.cur
	if t == nil || t.id != ev.mark.turn || t.finished {
		return
	}
	switch ev.mark.kind {
	case markSentenceStart:
		if _, ok := t.t[telemetry.StageFirstAudio]; !ok {
			t.t[telemetry.StageFirstAudio] = ev.at
		}
		if ev.mark.sentence < 0 { // a notice: captioned, never part of the history
			s.sendEvent(transcriptMessage{Type: "transcript", Role: "agent", Text: ev.mark.text, Final: true})
			return
		}
		text := strings.TrimSpace(strings.Join(append(append([]string(nil), t.spoken...), ev.mark.text), " "))
		s.sendEvent(transcriptMessage{Type: "transcript", Role: "agent", Text: text, Final: false})
	case markSentenceEnd:
		t.spoken = append(t.spoken, ev.mark.text)
	case markTurnEnd:
		if t.outcome == "" {
			t.outcome = "completed"
		}
		s.finishTurn(t, t.outcome)
	}
}

// bargeIn stops the agent: playback stops before the next frame, the LLM and
// TTS work in flight is cancelled, and the history keeps only what the caller
// heard.
func (s *session) bargeIn() {
	t := s.cur
	prog := s.player.flush()
	t.t[stageBargeIn] = time.Now()
	t.cancel()
	if prog.turn == t.id {
		t.spoken = prog.played
	}
	s.deps.metrics.BargeIns.WithLabelValues(t.ingress).Inc()
	s.log.Info("barge-in", "turn", t.id, "sentences_heard", len(t.spoken), "cut_off", prog.partial != "")
	s.finishTurn(t, "barged_in")
}

// finishTurn closes a turn: history, captions, timings and metrics.
func (s *session) finishTurn(t *turn, outcome string) {
	if t.finished {
		return
	}
	t.finished = true
	if t.cancel != nil {
		t.cancel()
	}
	if t.fillerTimer != nil {
		t.fillerTimer.Stop()
	}
	spoken := strings.TrimSpace(strings.Join(t.spoken, " "))
	if t.user != "" {
		s.history = append(s.history, backends.Message{Role: "user", Content: t.user})
	}
	if spoken != "" {
		s.history = append(s.history, backends.Message{Role: "assistant", Content: spoken})
		s.sendEvent(transcriptMessage{Type: "transcript", Role: "agent", Text: spoken, Final: true})
	}
	s.trimHistory()
	timings := s.recordTimings(t)
	s.deps.metrics.TurnsTotal.WithLabelValues(t.ingress, outcome).Inc()
	msg := turnMessage{Type: "turn", Turn: t.id, Outcome: outcome, Timings: timings}
	if end, ok := t.t["speech_end"]; ok {
		msg.SpeechEndAt = end.UnixMilli()
	}
	s.sendEvent(msg)
	s.log.Info("turn", "turn", t.id, "outcome", outcome, "timings_ms", timings)
	if s.cur == t {
		s.cur = nil
	}
}

// recordTimings converts the turn's stage times to milliseconds since the
// caller's end of speech, observes them and counts budget misses.
func (s *session) recordTimings(t *turn) map[string]int64 {
	out := map[string]int64{}
	end, ok := t.t["speech_end"]
	if !ok {
		return out
	}
	m := s.deps.metrics
	for _, stage := range []string{telemetry.StageASRFinal, telemetry.StageLLMFirstToken, telemetry.StageFirstSentence, telemetry.StageTTSFirstByte, telemetry.StageFirstAudio} {
		at, ok := t.t[stage]
		if !ok {
			continue
		}
		d := at.Sub(end)
		out[stage] = d.Milliseconds()
		m.TurnStage.WithLabelValues(stage, t.ingress).Observe(d.Seconds())
	}
	for _, st := range []string{stageBargeIn, stageFiller} {
		if at, ok := t.t[st]; ok {
			out[st] = at.Sub(end).Milliseconds()
		}
	}
	p := s.deps.pipeline
	var missed []string
	if fin, ok := t.t[telemetry.StageASRFinal]; ok {
		if tok, ok := t.t[telemetry.StageLLMFirstToken]; ok {
			d := tok.Sub(fin)
			out[telemetry.StageASRToFirstToken] = d.Milliseconds()
			m.TurnStage.WithLabelValues(telemetry.StageASRToFirstToken, t.ingress).Observe(d.Seconds())
			if p.FirstTokenBudget > 0 && d > p.FirstTokenBudget {
				m.BudgetMisses.WithLabelValues(telemetry.StageASRToFirstToken, s.deps.tenant).Inc()
				missed = append(missed, telemetry.StageASRToFirstToken)
			}
		}
	}
	if fa, ok := t.t[telemetry.StageFirstAudio]; ok && p.FirstAudioBudget > 0 {
		if d := fa.Sub(end); d > p.FirstAudioBudget {
			m.BudgetMisses.WithLabelValues(telemetry.StageFirstAudio, s.deps.tenant).Inc()
			missed = append(missed, telemetry.StageFirstAudio)
		}
	}
	if len(missed) > 0 {
		s.log.Warn("latency budget missed", "turn", t.id, "stages", missed, "first_token_budget_ms", p.FirstTokenBudget.Milliseconds(),
			"first_audio_budget_ms", p.FirstAudioBudget.Milliseconds(), "timings_ms", out)
	}
	return out
}

// trimHistory keeps the system prompt and the last MaxHistory messages.
func (s *session) trimHistory() {
	max := s.deps.pipeline.MaxHistory
	if max <= 0 {
		return
	}
	var sys []backends.Message
	rest := s.history
	if len(rest) > 0 && rest[0].Role == "system" {
		sys, rest = rest[:1], rest[1:]
	}
	if len(rest) > max {
		rest = rest[len(rest)-max:]
		s.history = append(append([]backends.Message(nil), sys...), rest...)
	}
}

// --- failures -----------------------------------------------------------------

// failTurnBeforeLLM ends an utterance that never reached the model, with a
// spoken notice.
func (s *session) failTurnBeforeLLM(speechEnd time.Time, role string, err error) {
	t := s.newTurn("", speechEnd)
	s.cur = t
	s.turnBackendFailed(t, role, err)
}

// turnBackendFailed tells the caller, by a short spoken notice and an error
// event, that a backend failed; the call stays up.
func (s *session) turnBackendFailed(t *turn, role string, err error) {
	if t.finished {
		return
	}
	name := s.backendName(role)
	s.log.Warn("backend failed during turn", "role", role, "backend", name, "turn", t.id, "err", err)
	s.sendEvent(errorMessage{Type: "error", Code: codeBackend, Message: role + " backend unavailable"})
	notice := noticeLLM
	if role == "asr" {
		notice = noticeASR
	}
	t.outcome = "failed"
	s.playNotice(t, notice)
}

// turnRateLimited ends a turn whose LLM request the tenant's tokens per
// minute did not allow: the caller hears a notice and gets a rate_limited
// event; the call stays up.
func (s *session) turnRateLimited(t *turn, tokens int, retry time.Duration) {
	if t.finished {
		return
	}
	s.log.Info("LLM request refused by tenant limits", "reason", tenants.ReasonLLMTokens, "tokens", tokens, "retry_after", retry, "turn", t.id)
	s.deps.metrics.LimitRefusals.WithLabelValues(s.deps.tenant, tenants.ReasonLLMTokens).Inc()
	s.sendEvent(errorMessage{Type: "error", Code: codeRateLimited, Message: "over the tenant's " + tenants.ReasonLLMTokens + " limit", RetryAfterMs: retry.Milliseconds()})
	t.outcome = "rate_limited"
	s.playNotice(t, noticeBusy)
}

// requestTokens is what an LLM request is charged against the tenant's
// tokens per minute before it is sent: its max_tokens (the most the reply
// can use, as OpenAI-style limits count it) plus the prompt, estimated at
// four bytes per token and four tokens of overhead per message.
func requestTokens(req backends.ChatRequest) int {
	n := req.MaxTokens
	for _, m := range req.Messages {
		n += 4 + (len(m.Content)+3)/4
	}
	return n
}

func (s *session) ttsFailed(t *turn, err error) {
	if t.finished {
		return
	}
	var be *backends.Error
	if errors.As(err, &be) && strings.HasSuffix(be.Op, "stream") {
		// Failed mid-stream, after the chain had chosen a backend.
		s.deps.metrics.BackendErrors.WithLabelValues("tts", be.Backend).Inc()
	}
	s.turnBackendFailed(t, "tts", err)
}

// playNotice queues a cached notice as the end of turn t.
func (s *session) playNotice(t *turn, text string) {
	if t.cancel == nil {
		t.cancel = func() {}
	}
	s.player.enqueue(s.noticeItems(t, text)...)
}

// noticeItems is a notice's audio as the end of turn t. Safe from any
// goroutine.
func (s *session) noticeItems(t *turn, text string) []playItem {
	pcm := s.deps.notices.get(s.ctx, text)
	n := media.SamplesPerFrame(media.PipelineRate)
	items := []playItem{{mark: playMark{kind: markSentenceStart, turn: t.id, sentence: -1, text: text}}}
	for i := 0; i < len(pcm); i += n {
		f := make([]int16, n)
		copy(f, pcm[i:])
		items = append(items, playItem{frame: f})
	}
	return append(items, playItem{mark: playMark{kind: markTurnEnd, turn: t.id}})
}

func (s *session) backendName(role string) string {
	switch role {
	case "asr":
		return s.deps.asr[0].Name
	case "llm":
		return s.deps.llm.Name()
	case "tts":
		return s.deps.tts.Name()
	}
	return role
}

func (s *session) sendEvent(v any) {
	if err := s.sig.send(v); err != nil && !errors.Is(err, errSessionClosed) {
		s.log.Debug("signaling send", "err", err)
	}
}
