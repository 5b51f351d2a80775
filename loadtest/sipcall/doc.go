// Package sipcall is a synthetic SIP trunk caller for load tests: a UAC that
// places a call to a voicegw gateway (or any SIP UAS) with an SDP offer,
// answers digest challenges, runs the audio over RTP with sipmedia, and
// hangs up with BYE. It mirrors loadtest.Caller, the WebRTC caller: it sends
// a 20 ms frame every 20 ms (silence unless Say queued speech), as a phone
// does, and records every frame of agent audio it hears on its own clock.
//
// A call:
//
//	c, err := sipcall.DialSIP(ctx, sipcall.SIPConfig{Target: "127.0.0.1:5060"})
//	var refused *sipcall.CallError
//	if errors.As(err, &refused) {
//		// refused.Status is 404, 503 (with RetryAfter), 403, 401 ...
//	}
//	defer c.Close()
//	sent := c.Say(speech)        // mono PCM16 at media.PipelineRate
//	<-sent                       // its last frame went out
//	...                          // c.Received() holds what the agent said
//	err = c.Hangup()             // BYE, waits for the 200
//
// # Signaling
//
// DialSIP sends an INVITE with our offer (sipmedia.Offer: the configured
// codec plus telephone-event, ptime 20), skips provisional responses,
// answers a 401 or 407 with digest credentials (the first challenge's
// algorithm, SHA-256 or MD5; a second challenge, for a stale nonce, is
// answered too), and on a 2xx parses the answer and sends the ACK. A final
// failure is a *CallError with the status, reason phrase and Retry-After.
// Canceling DialSIP's context while the INVITE is pending sends a CANCEL.
//
// Calls with the same transport and local IP share one sipgo user agent
// and its sockets, whatever the number of calls: over UDP one socket for
// every gateway, over TCP one connection per gateway address. The INVITE's
// Contact is that socket's address, so the gateway's requests come back on
// it, to one server handler that answers a BYE with 200 (481 for a dialog
// that already ended) and any other request with 405. The user agent is
// created by the first call and closed with the last (reference counted),
// so an idle process holds no SIP socket. The user agent owns its sockets
// rather than letting sipgo open and close them: sipgo closes a connection
// whose reference count reaches zero, a count that can drift while calls
// still use the connection.
//
// # Media
//
// Each call takes an RTP/RTCP port pair (RTP even, RTCP the next odd port)
// from a range on the local IP, default 30000-39999, shared by every call
// with the same range. The gateway's audio goes through sipmedia's jitter
// buffer and is delivered as 20 ms frames, each recorded as a loadtest.RxFrame
// with its arrival time and level; a frame at or below SilenceDBFS is silent.
//
// # End of a call
//
// Done is closed when the call ended; HangupReason says why: "caller"
// (Hangup or Close), "remote_bye" (the gateway's BYE) or "media" (no RTP for
// sipmedia's RTP timeout, 30 s; the caller then sends BYE itself). Close
// hangs up if needed, stops the call's goroutines, closes its sockets and
// releases the shared user agent; it is idempotent.
package sipcall
