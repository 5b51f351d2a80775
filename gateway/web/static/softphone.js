// voicegw softphone: one WebRTC call to the gateway, signaling over the
// /v1/calls WebSocket. State is published on window.voicegw for automation:
//   {state, callId, captions: [{role, text, final}], rxPackets, txPackets,
//    rxEnergy, policy: [...], turns: [...], error, hangupReason}
// Query parameters: token=… (call token; removed from the address bar once
// read), autocall=1 (call on load),
// raw=1 (no echo cancellation / noise suppression / gain control).
(function () {
  "use strict";
  const params = new URLSearchParams(location.search);
  const $ = (id) => document.getElementById(id);
  const vg = {
    state: "idle", callId: null, captions: [], rxPackets: 0, txPackets: 0, rxEnergy: 0,
    policy: [], turns: [], error: null, hangupReason: null,
  };
  window.voicegw = vg;

  let ws = null, pc = null, mic = null, statsTimer = null, audioCtx = null, levelTimer = null;

  function setState(s, info) {
    vg.state = s;
    const el = $("state");
    el.textContent = s;
    el.className = "state " + s;
    $("call").disabled = (s === "connecting" || s === "connected");
    $("hangup").disabled = !(s === "connecting" || s === "connected");
    if (info !== undefined) $("info").textContent = info;
  }

  // Captions: a non-final caption replaces the previous non-final caption of
  // the same role; a final one settles it.
  function caption(role, text, final) {
    const list = vg.captions;
    let i = -1;
    for (let k = list.length - 1; k >= 0; k--) {
      if (list[k].role === role && !list[k].final) { i = k; break; }
    }
    const entry = { role: role, text: text, final: !!final };
    if (i >= 0) list[i] = entry; else list.push(entry);
    render();
  }

  function render() {
    const ol = $("captions");
    ol.textContent = "";
    for (const c of vg.captions) {
      const li = document.createElement("li");
      li.className = c.role + (c.final ? "" : " partial");
      const who = document.createElement("span");
      who.className = "who";
      who.textContent = c.role === "caller" ? "you" : (c.role === "agent" ? "agent" : c.role);
      li.appendChild(who);
      li.appendChild(document.createTextNode(c.text));
      ol.appendChild(li);
    }
    ol.parentElement.scrollTop = ol.parentElement.scrollHeight;
  }

  function wsURL(token) {
    const u = new URL("/v1/calls", location.href);
    u.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    u.searchParams.set("token", token);
    return u.toString();
  }

  function waitGathering(pc, ms) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      pc.addEventListener("icegatheringstatechange", () => {
        if (pc.iceGatheringState === "complete") { clearTimeout(t); resolve(); }
      });
    });
  }

  async function call() {
    const token = $("token").value.trim();
    if (!token) { setState("failed", "A call token is required."); return; }
    vg.error = null; vg.hangupReason = null; vg.callId = null;
    setState("connecting", "Opening the microphone…");
    const raw = params.get("raw") === "1";
    try {
      mic = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: !raw, noiseSuppression: !raw, autoGainControl: !raw, channelCount: 1 },
      });
    } catch (e) {
      setState("failed", "Microphone unavailable: " + e.message);
      vg.error = "microphone: " + e.message;
      return;
    }
    startLevel(mic);
    pc = new RTCPeerConnection({ iceServers: [] });
    for (const tr of mic.getAudioTracks()) pc.addTrack(tr, mic);
    pc.ontrack = (ev) => { $("remote").srcObject = ev.streams[0] || new MediaStream([ev.track]); };
    pc.onconnectionstatechange = () => {
      if (!pc) return;
      if (pc.connectionState === "connected") setState("connected", "Connected. Speak when ready.");
      if (pc.connectionState === "failed") { vg.error = "media connection failed"; end("failed", "Media connection failed."); }
    };
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    await waitGathering(pc, 3000);

    setState("connecting", "Calling…");
    ws = new WebSocket(wsURL(token));
    ws.onopen = () => ws.send(JSON.stringify({ type: "offer", sdp: pc.localDescription.sdp }));
    ws.onmessage = (ev) => onMessage(ev.data);
    ws.onclose = () => {
      if (vg.state === "connecting" || vg.state === "connected") end(vg.error ? "failed" : "ended", vg.error || "Call ended.");
    };
    statsTimer = setInterval(pollStats, 250);
  }

  async function onMessage(data) {
    let m;
    try { m = JSON.parse(data); } catch (e) { return; }
    switch (m.type) {
      case "answer":
        vg.callId = m.callId;
        try {
          await pc.setRemoteDescription({ type: "answer", sdp: m.sdp });
        } catch (e) {
          vg.error = "bad answer: " + e.message;
          end("failed", vg.error);
        }
        break;
      case "transcript":
        caption(m.role, m.text, m.final);
        break;
      case "policy":
        vg.policy.push(m);
        break;
      case "turn":
        vg.turns.push(m);
        break;
      case "error":
        vg.error = m.code + ": " + m.message;
        $("info").textContent = "Error: " + m.message;
        if (m.code === "unauthorized" || m.code === "rate_limited" || vg.callId === null) end("failed", "Error: " + m.message);
        break;
      case "hangup":
        vg.hangupReason = m.reason;
        end("ended", "The call ended (" + m.reason + ").");
        break;
    }
  }

  async function pollStats() {
    if (!pc) return;
    const stats = await pc.getStats();
    stats.forEach((r) => {
      if (r.type === "inbound-rtp" && r.kind === "audio") {
        vg.rxPackets = r.packetsReceived || 0;
        vg.rxEnergy = r.totalAudioEnergy || 0;
      }
      if (r.type === "outbound-rtp" && r.kind === "audio") vg.txPackets = r.packetsSent || 0;
    });
  }

  function startLevel(stream) {
    try {
      audioCtx = new AudioContext();
      const src = audioCtx.createMediaStreamSource(stream);
      const an = audioCtx.createAnalyser();
      an.fftSize = 512;
      src.connect(an);
      const buf = new Float32Array(an.fftSize);
      levelTimer = setInterval(() => {
        an.getFloatTimeDomainData(buf);
        let sum = 0;
        for (const v of buf) sum += v * v;
        const db = 10 * Math.log10(sum / buf.length + 1e-10);
        $("level").style.width = Math.max(0, Math.min(100, (db + 60) * 100 / 60)) + "%";
      }, 60);
    } catch (e) { /* the level meter is optional */ }
  }

  function end(state, info) {
    if (statsTimer) { pollStats(); clearInterval(statsTimer); statsTimer = null; }
    if (levelTimer) { clearInterval(levelTimer); levelTimer = null; $("level").style.width = "0"; }
    if (audioCtx) { audioCtx.close(); audioCtx = null; }
    if (ws && ws.readyState === WebSocket.OPEN) ws.close();
    ws = null;
    if (pc) { pc.close(); pc = null; }
    if (mic) { mic.getTracks().forEach((t) => t.stop()); mic = null; }
    setState(state, info);
  }

  function hangup() {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "hangup" }));
    setTimeout(() => { if (vg.state === "connecting" || vg.state === "connected") end("ended", "Call ended."); }, 1000);
  }

  $("call").addEventListener("click", call);
  $("hangup").addEventListener("click", hangup);
  vg.call = call;
  vg.hangup = hangup;
  if (params.get("token")) {
    $("token").value = params.get("token");
    // Keep the token out of the history, bookmarks and anything that
    // reads the address bar: it stays only in the field.
    const clean = new URL(location.href);
    clean.searchParams.delete("token");
    history.replaceState(history.state, "", clean.pathname + clean.search + clean.hash);
  }
  setState("idle", "Press Call to talk to the agent.");
  if (params.get("autocall") === "1") call();
})();
