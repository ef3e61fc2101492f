// inkcast viewer: plays one tablet's stream in a native <video> over WHEP.
// The link's token is the page's fragment (#token), so it never reaches a server log.
// Query options: mode=obs (no UI), bg=<hex colour>, relay=1 (TURN only).
"use strict";

(() => {
  const video = document.getElementById("video");
  const statusBox = document.getElementById("status");
  const params = new URLSearchParams(location.search);
  const token = decodeURIComponent(location.hash.slice(1));

  if (params.get("mode") === "obs") document.body.classList.add("obs");
  const bg = params.get("bg");
  if (bg && /^[0-9a-fA-F]{3,8}$/.test(bg)) document.documentElement.style.setProperty("--bg", "#" + bg);

  const status = { state: "connecting", message: "", attempts: 0, session: null, pc: null };
  window.inkcast = status;  // for tests and for curious users in the console

  function show(state, message) {
    status.state = state;
    status.message = message;
    statusBox.dataset.state = state;
    statusBox.textContent = message;
  }

  const auth = { Authorization: "Bearer " + token };
  let retryTimer = null;

  function retry(seconds, why, state = "retrying") {
    hangUp();
    const wait = Math.min(seconds * Math.pow(1.5, Math.min(status.attempts, 6)), 10);
    status.attempts += 1;
    let left = Math.ceil(wait);
    show(state, `${why} — retrying in ${left} s`);
    clearInterval(retryTimer);
    retryTimer = setInterval(() => {
      left -= 1;
      if (left > 0) { show(state, `${why} — retrying in ${left} s`); return; }
      clearInterval(retryTimer);
      connect();
    }, 1000);
  }

  // While reconnecting, keep showing the last picture rather than an ended (black) video.
  const still = document.getElementById("still");
  function holdLastPicture() {
    if (!video.srcObject || !video.videoWidth) return;
    still.width = video.videoWidth;
    still.height = video.videoHeight;
    still.getContext("2d").drawImage(video, 0, 0);
    still.hidden = false;
    video.srcObject = null;
  }

  async function hangUp() {
    const { pc, session } = status;
    status.pc = null;
    status.session = null;
    holdLastPicture();
    if (pc) pc.close();
    if (session) fetch(session, { method: "DELETE", headers: auth, keepalive: true }).catch(() => {});
  }

  function gathered(pc, timeoutMs) {
    // WHEP without trickle: the offer carries the candidates found in this time.
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => { if (pc.iceGatheringState === "complete") resolve(); };
      pc.addEventListener("icegatheringstatechange", done);
      setTimeout(resolve, timeoutMs);
    });
  }

  async function errorText(response) {
    try { return (await response.json()).error || response.statusText; } catch { return response.statusText; }
  }

  async function connect() {
    await hangUp();
    if (!token) { show("refused", "this page needs a viewer link (…/view#<token>)"); return; }
    show("connecting", "connecting…");
    let config;
    try {
      const response = await fetch("/api/view", { headers: auth, cache: "no-store" });
      if (response.status === 401 || response.status === 403) {
        show("expired", await errorText(response));
        return;  // a dead link does not come back by retrying
      }
      if (!response.ok) { retry(2, `server said ${response.status}`); return; }
      config = await response.json();
    } catch (e) {
      retry(2, "server unreachable");
      return;
    }

    const relay = params.get("relay") === "1";
    const pc = new RTCPeerConnection({
      iceServers: config.ice_servers || [],
      iceTransportPolicy: relay ? "relay" : "all",
    });
    status.pc = pc;
    const relayErrors = [];
    pc.addEventListener("icecandidateerror", (e) => {
      if (e.errorCode === 401 || e.errorCode === 403 || e.errorCode === 701) relayErrors.push(`${e.errorCode} ${e.errorText}`);
    });
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.addEventListener("track", (e) => {
      video.srcObject = e.streams[0] || new MediaStream([e.track]);
    });
    let interrupted = null;
    pc.addEventListener("connectionstatechange", () => {
      if (status.pc !== pc) return;
      clearTimeout(interrupted);
      if (pc.connectionState === "failed" || pc.connectionState === "closed") retry(2, "connection lost");
      else if (pc.connectionState === "disconnected") {
        show("connecting", "connection interrupted…");
        interrupted = setTimeout(() => { if (status.pc === pc) retry(1, "connection lost"); }, 4000);
      }
      else if (pc.connectionState === "connected" && status.state !== "live") show("connecting", "waiting for the picture…");
    });

    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc, 3000);
    if (relay && !/ typ relay/.test(pc.localDescription.sdp)) {
      const why = relayErrors.length ? `the relay refused: ${relayErrors.join(", ")}` : "no relay candidate";
      retry(5, why, "refused");
      return;
    }
    let response;
    try {
      response = await fetch(config.whep, {
        method: "POST",
        headers: { ...auth, "Content-Type": "application/sdp" },
        body: pc.localDescription.sdp,
      });
    } catch (e) {
      retry(2, "server unreachable");
      return;
    }
    if (status.pc !== pc) return;
    if (response.status === 401 || response.status === 403) { hangUp(); show("expired", await errorText(response)); return; }
    if (response.status === 503) { retry(3, await errorText(response), "offline"); return; }
    if (response.status !== 201) { retry(3, await errorText(response)); return; }
    status.session = new URL(response.headers.get("Location"), location.href).href;
    await pc.setRemoteDescription({ type: "answer", sdp: await response.text() });
  }

  video.addEventListener("playing", () => { status.attempts = 0; still.hidden = true; show("live", "live"); });
  window.addEventListener("pagehide", hangUp);
  connect();
})();
