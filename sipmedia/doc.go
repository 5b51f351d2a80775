// Package sipmedia is the media side of a SIP call leg: RFC 3264
// offer/answer over SDP, RTP and RTCP on a UDP port pair, SDES-SRTP
// (RFC 4568), an adaptive jitter buffer with loss concealment, and RFC 4733
// telephone-events. A SIP UAS negotiates with Negotiate (or Offer and
// Offered.ParseAnswer), allocates sockets from a PortRange, renders
// Plan.Answer and runs a Stream, which delivers and takes 20 ms frames of
// mono PCM16 at media.PipelineRate like every other leg of the gateway.
//
// # Negotiation
//
// The first audio m= line with a port and an RTP/AVP(F) or RTP/SAVP(F)
// transport is used; the codec is the first of Options.Codecs (PCMU, PCMA,
// opus) that the offer lists, with the offerer's payload type; the
// telephone-event at the codec's clock rate is preferred. Other m= lines
// are answered with port 0. Malformed SDP is an *SDPError with its line
// (SIP 400); well-formed but unacceptable offers wrap ErrNoAudio,
// ErrNoCommonCodec, ErrSRTPRequired or ErrNoCommonCrypto (SIP 488);
// StatusCode maps them. a=ptime of 10 to 40 ms is honoured when sending
// G.711 (a 30 ms ptime gives two packets every three frames); other values,
// and Opus, use 20 ms. Directions mirror (sendonly → recvonly); c=0.0.0.0
// is RFC 2543 hold.
//
// RTCP goes to a=rtcp, else to the RTP port + 1, from our RTP port + 1.
// When the offer has a=rtcp-mux we answer it and send RTCP on the RTP port
// (RFC 5761); RTCP arriving on the RTP port is always accepted, whatever
// was negotiated (packet types 192-223 are told apart from RTP).
//
// # Symmetric RTP
//
// Until the first valid RTP packet arrives we send to the SDP address.
// Valid means version 2, the negotiated audio or telephone-event payload
// type, and, with SRTP, authenticated. Its source address is then latched
// and used for RTP (and for RTCP: the same address when muxed, else its
// port + 1 until RTCP itself arrives from that host, whose source is then
// used). A latched address different from the SDP's is logged once.
// Packets from any other source are dropped, except that a new SSRC
// sending RelatchPackets (10) consecutive valid packets from one new
// address moves the latch there (a media server or SBC that switched
// sources). A known SSRC from a new address is dropped: the latch is reset
// by Update when a re-INVITE changes the address.
//
// # Jitter buffer and concealment
//
// Packets are ordered by RFC 3550 extended sequence number (A.1:
// wraparound, up to 100 misordered, a jump of more than 3000 restarts the
// sequence only when the next packet follows it; a new SSRC resets the
// buffer and the decoder). Duplicates and packets whose playout time has
// passed are dropped and counted. Playout starts, and restarts after an
// underrun, once the oldest buffered packet has waited the target delay,
// clamp(ptime + 3·J, JitterMin, JitterMax), J being the RFC 3550
// interarrival jitter: the delay grows at underruns. It shrinks when the
// buffer held more than target + one packet throughout a 500 ms window:
// one packet is then decoded (to keep the codec's state) and dropped.
// Timestamps only measure jitter and packet duration: silence suppression
// (a timestamp jump with consecutive sequence numbers) is an underrun
// followed by a re-buffer.
//
// The playout runs on its own 20 ms pacer, independent of arrivals, so the
// gateway's VAD sees a steady frame clock: from the first packet played
// on, a frame is emitted every tick, silence when nothing has arrived
// (silence suppression, hold). Incoming packets of any duration are
// decoded into a FIFO and cut into 20 ms frames (repacketisation). A lost
// packet, or the gap of an underrun, is concealed for at most 60 ms: for
// G.711 by repeating the last 20 ms decoded with a linear fade to silence
// over 60 ms; for Opus by libopus's in-band FEC when the next packet is
// there, else its packet loss concealment. Stats.Concealed counts the
// frames that carry concealment. Opus is decoded and encoded at 16 kHz
// directly (libopus resamples internally), so no 48 kHz step is needed;
// its RTP clock is 48 kHz as RFC 7587 requires.
//
// # Sending
//
// WriteFrame resamples to 8 kHz and encodes G.711 (or encodes Opus), then
// packetises at the remote's ptime with a random SSRC, sequence number and
// timestamp; the marker bit is set on the first packet and after a hold.
// While the remote is sendonly, inactive or at a hold address, WriteFrame
// sends nothing and returns nil (the timestamp keeps advancing).
//
// # RTCP
//
// Every StreamConfig.RTCPInterval (5 s) a compound packet is sent: a
// sender report (a receiver report before we have sent any RTP) with one
// reception block for the remote SSRC (fraction and cumulative lost,
// extended highest sequence, jitter, LSR/DLSR from its last SR) and an
// SDES CNAME. Incoming SR are kept for LSR/DLSR; BYE is logged only: the
// call ends by SIP BYE or the RTP timeout, whichever the UAS sees.
//
// # SDES-SRTP
//
// a=crypto lines are tried in the offer's order; the first with a suite we
// support (AES_CM_128_HMAC_SHA1_80/_32, AES_256_CM_HMAC_SHA1_80/_32,
// AEAD_AES_128_GCM, AEAD_AES_256_GCM) and parameters we can honour is
// answered with the same tag and suite and a fresh key from crypto/rand.
// A key lifetime is honoured (packets beyond it are refused until a
// re-INVITE rekeys); an MKI is honoured (the remote's packets must carry
// it; we send none); several keys in one line and session parameters other
// than WSH (UNENCRYPTED_SRTP, KDR, FEC_ORDER…) make that line unacceptable
// with the reason in the error, never silently ignored. Protection is
// pion/srtp with a 128-packet replay window on what we receive.
//
// # Timeouts and lifecycle
//
// While the remote should be sending (sendrecv or sendonly) and no valid
// RTP arrived for StreamConfig.RTPTimeout (30 s), the stream ends with
// ErrRTPTimeout: Done is closed, Frames and DTMF are closed, the sockets
// are closed. On hold (recvonly, inactive) there is no timeout. Close is
// idempotent and waits for the stream's three goroutines (RTP reader, RTCP
// reader, playout). Every packet parse error is counted in RxDropped and
// logged at debug level at most once a second.
package sipmedia
