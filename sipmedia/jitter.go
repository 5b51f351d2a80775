package sipmedia

import (
	"time"
)

// RFC 3550 appendix A.1 constants.
const (
	maxDropout  = 3000
	maxMisorder = 100
	// maxBuffered bounds the packets held (10 ms packets for 2 s).
	maxBuffered = 200
	// shrinkWindow is how many ticks of depth history decide a shrink.
	shrinkWindow = 25
	noBadSeq     = 1 << 17
)

// jbStatus is what pop found at the head of the buffer.
type jbStatus int

const (
	jbEmpty   jbStatus = iota // nothing to play (not started, buffering or underrun)
	jbPacket                  // the next packet, in order
	jbLost                    // the next packet is missing and its time has come
	jbDiscard                 // the next packet, to be decoded and dropped (shrink)
)

// rxPacket is one received RTP packet waiting for playout.
type rxPacket struct {
	ext     uint64 // extended sequence number
	ts      uint32
	payload []byte
	skip    bool // not audio (a telephone-event): consumes a sequence number only
}

// jitterBuffer orders one SSRC's packets by extended sequence number and
// releases them on the playout clock. It is not safe for concurrent use;
// times are passed in so that tests drive it with a fake clock.
//
// Playout starts, and restarts after an underrun, when the oldest
// buffered packet has waited the target delay, which is
// clamp(ptime + 3·J) between minDelay and maxDelay, J being the RFC 3550
// interarrival jitter. Growing therefore happens at underruns; shrinking
// happens when the buffer held more than target + one packet at every
// tick of a 500 ms window: one packet is then decoded and dropped.
type jitterBuffer struct {
	clockRate          int
	minDelay, maxDelay time.Duration
	pktDur             time.Duration // measured packet duration (ts step), default 20 ms

	// RFC 3550 A.1 sequence state.
	ssrc      uint32
	haveSSRC  bool
	maxSeq    uint16
	cycles    uint64
	baseExt   uint64
	badSeq    uint32 // seq+1 of a suspicious jump, noBadSeq when none
	received  uint64
	lastTS    uint32
	haveLast  bool
	lastExt   uint64
	expPrior  uint64
	recvPrior uint64

	// RFC 3550 A.8 jitter, in timestamp units.
	transit     int64
	haveTransit bool
	jitter      float64
	epoch       time.Time

	pkts        []rxPacket
	playing     bool
	begun       bool // nextExt is valid: playout has started once
	nextExt     uint64
	bufferStart time.Time
	minDepth    int
	windowTicks int

	// counters
	late, dups, invalid, overflow, underruns, shrinks uint64
}

func newJitterBuffer(clockRate int, minDelay, maxDelay time.Duration) *jitterBuffer {
	return &jitterBuffer{clockRate: clockRate, minDelay: minDelay, maxDelay: maxDelay,
		pktDur: 20 * time.Millisecond, minDepth: -1}
}

// reset forgets the stream, for a new SSRC or a sequence restart.
func (j *jitterBuffer) reset(ssrc uint32, seq uint16) {
	j.ssrc, j.haveSSRC = ssrc, true
	j.maxSeq, j.cycles, j.baseExt, j.badSeq = seq, 0, uint64(seq), noBadSeq
	j.received, j.expPrior, j.recvPrior = 0, 0, 0
	j.haveTransit, j.haveLast = false, false
	j.pkts = j.pkts[:0]
	j.playing, j.begun = false, false
	j.minDepth, j.windowTicks = -1, 0
}

// target is the playout delay the buffer aims at.
func (j *jitterBuffer) target() time.Duration {
	jit := time.Duration(j.jitter / float64(j.clockRate) * float64(time.Second))
	t := j.pktDur + 3*jit
	return min(max(t, j.minDelay), j.maxDelay)
}

// jitterDuration is the RFC 3550 interarrival jitter as a duration.
func (j *jitterBuffer) jitterDuration() time.Duration {
	return time.Duration(j.jitter / float64(j.clockRate) * float64(time.Second))
}

// push adds a packet that arrived at now. It reports whether the stream
// was reset (new SSRC or sequence restart: the caller resets its decoder)
// and whether the packet was kept.
func (j *jitterBuffer) push(ssrc uint32, seq uint16, ts uint32, payload []byte, skip bool, now time.Time) (reset, kept bool) {
	var ext uint64
	if !j.haveSSRC || ssrc != j.ssrc {
		j.reset(ssrc, seq)
		reset = true
		ext = uint64(seq)
	} else {
		d := seq - j.maxSeq
		switch {
		case d == 0:
			j.dups++
			return reset, false
		case d < maxDropout: // ahead, with a permissible gap
			if seq < j.maxSeq {
				j.cycles += 1 << 16
			}
			j.maxSeq = seq
			ext = j.cycles | uint64(seq)
		case d <= 1<<16-maxMisorder:
			// A big jump: restart if the next packet follows it
			// (RFC 3550 A.1), else drop it.
			if j.badSeq == uint32(seq) {
				j.reset(ssrc, seq)
				reset = true
				ext = uint64(seq)
				break
			}
			j.badSeq = uint32(seq + 1)
			j.invalid++
			return reset, false
		default: // misordered: behind the highest by less than maxMisorder
			ext = j.cycles | uint64(seq)
			if seq > j.maxSeq { // from the previous cycle
				if j.cycles == 0 {
					j.late++
					return reset, false
				}
				ext -= 1 << 16
			}
		}
	}
	j.badSeq = noBadSeq
	if j.begun && ext < j.nextExt {
		j.late++
		return reset, false
	}
	// insert sorted, refusing duplicates
	i := len(j.pkts)
	for i > 0 && j.pkts[i-1].ext > ext {
		i--
	}
	if i > 0 && j.pkts[i-1].ext == ext {
		j.dups++
		return reset, false
	}
	j.received++
	if !skip {
		j.updateJitter(ts, now)
		if j.haveLast && ext == j.highestExt() && ext == j.lastExt+1 {
			// measure the packet duration from consecutive timestamps
			if step := ts - j.lastTS; step > 0 && step <= uint32(j.clockRate/10) {
				j.pktDur = time.Duration(step) * time.Second / time.Duration(j.clockRate)
			}
		}
		if ext == j.highestExt() {
			j.lastTS, j.lastExt, j.haveLast = ts, ext, true
		}
	}
	if len(j.pkts) == 0 && !j.playing {
		j.bufferStart = now
	}
	j.pkts = append(j.pkts, rxPacket{})
	copy(j.pkts[i+1:], j.pkts[i:])
	j.pkts[i] = rxPacket{ext: ext, ts: ts, payload: append([]byte(nil), payload...), skip: skip}
	if len(j.pkts) > maxBuffered {
		j.pkts = j.pkts[1:]
		j.overflow++
	}
	return reset, true
}

func (j *jitterBuffer) highestExt() uint64 { return j.cycles | uint64(j.maxSeq) }

// updateJitter is RFC 3550 A.8: J += (|D| - J)/16, in timestamp units.
func (j *jitterBuffer) updateJitter(ts uint32, now time.Time) {
	if j.epoch.IsZero() {
		j.epoch = now
	}
	arrival := int64(now.Sub(j.epoch)) * int64(j.clockRate) / int64(time.Second)
	transit := arrival - int64(ts)
	if j.haveTransit {
		d := transit - j.transit
		// 32-bit timestamp arithmetic: a wrapped ts shows as a ±2^32 step
		d = int64(int32(d))
		if d < 0 {
			d = -d
		}
		j.jitter += (float64(d) - j.jitter) / 16
	}
	j.transit, j.haveTransit = transit, true
}

// tick is called once per 20 ms playout tick, before the pops of that
// tick: it tracks the buffer depth and reports when the caller should
// pop one packet and drop its audio to shrink the delay.
func (j *jitterBuffer) tick() (shrink bool) {
	if !j.playing {
		j.minDepth, j.windowTicks = -1, 0
		return false
	}
	depth := len(j.pkts)
	if j.minDepth < 0 || depth < j.minDepth {
		j.minDepth = depth
	}
	j.windowTicks++
	if j.windowTicks < shrinkWindow {
		return false
	}
	surplus := time.Duration(j.minDepth)*j.pktDur - j.target()
	j.minDepth, j.windowTicks = -1, 0
	if surplus >= j.pktDur {
		j.shrinks++
		return true
	}
	return false
}

// pop returns the next packet to play at now.
func (j *jitterBuffer) pop(now time.Time) (rxPacket, jbStatus) {
	if !j.playing {
		if len(j.pkts) == 0 || now.Sub(j.bufferStart) < j.target() {
			return rxPacket{}, jbEmpty
		}
		j.playing, j.begun = true, true
		j.nextExt = j.pkts[0].ext
	}
	if len(j.pkts) == 0 {
		j.playing = false // underrun: rebuffer to the target delay
		j.underruns++
		return rxPacket{}, jbEmpty
	}
	head := j.pkts[0]
	if head.ext > j.nextExt {
		gap := head.ext - j.nextExt
		if time.Duration(gap)*j.pktDur > j.maxDelay {
			j.nextExt = head.ext // too far to conceal: resynchronise
		} else {
			j.nextExt++
			return rxPacket{}, jbLost
		}
	}
	j.pkts = j.pkts[1:]
	j.nextExt = head.ext + 1
	return head, jbPacket
}

// buffered returns the duration of audio waiting in the buffer.
func (j *jitterBuffer) buffered() time.Duration { return time.Duration(len(j.pkts)) * j.pktDur }

// lossStats is RFC 3550 A.3: cumulative lost, and the fraction lost since
// the previous call (8-bit fixed point), for a reception report.
func (j *jitterBuffer) lossStats() (cumLost int64, fraction uint8, highest uint32) {
	if !j.haveSSRC {
		return 0, 0, 0
	}
	expected := j.highestExt() - j.baseExt + 1
	cumLost = int64(expected) - int64(j.received)
	expInt := expected - j.expPrior
	recvInt := j.received - j.recvPrior
	j.expPrior, j.recvPrior = expected, j.received
	if lostInt := int64(expInt) - int64(recvInt); expInt > 0 && lostInt > 0 {
		fraction = uint8((lostInt << 8) / int64(expInt))
	}
	return cumLost, fraction, uint32(j.highestExt())
}

// lost is the cumulative number of packets lost (never negative).
func (j *jitterBuffer) lost() uint64 {
	if !j.haveSSRC {
		return 0
	}
	expected := j.highestExt() - j.baseExt + 1
	if expected <= j.received {
		return 0
	}
	return expected - j.received
}
