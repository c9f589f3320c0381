/*! django-openai-realtime: browser client for OpenAI Realtime over WebRTC. No dependencies.
 *
 * const s = DjangoRealtime.connect({preset: "support", mode: "ephemeral" | "relay"});
 * s.on("session.created", fn); s.on("*", fn); s.on("state", fn); s.on("error", fn);
 * s.send({type: "response.create"}); s.mute(true); s.close();
 * s.state: idle | connecting | connected | reconnecting | closed | failed
 *
 * Elements marked [data-realtime-widget] (see {% realtime_widget %}) are wired on load;
 * after inserting one later (an htmx swap), call DjangoRealtime.init(element). Removing a
 * widget's element from the page hangs up its call and releases the microphone.
 * Options: timeouts {mint, sdp} (ms, default 15000), maxQueue (default 64).
 */
(() => {
  "use strict";

  const MESSAGES = {
    unsupported: "This browser cannot make voice calls here (WebRTC and a secure https page are needed).",
    microphone_denied: "Microphone access is blocked. Allow the microphone for this site, then retry.",
    microphone_missing: "No microphone was found. Connect one, then retry.",
    microphone_error: "The microphone could not be started. Close other apps using it, then retry.",
    microphone_ended: "The microphone stopped (unplugged, or taken by another app). Retry to continue.",
    not_authenticated: "You are signed out. Sign in, then retry.",
    permission_denied: "You may not use this voice assistant.",
    preset_not_found: "This voice assistant is not available.",
    rate_limited: "Too many attempts. Try again in a moment.",
    rate_limited_in: "Too many attempts. Try again in {s}.",
    second: "{n} second",
    seconds: "{n} seconds",
    not_configured: "Voice calls are not configured on this site.",
    server_error: "This site's server failed (HTTP {status}). Try again later.",
    upstream_error: "The voice service failed. Try again in a moment.",
    upstream_unavailable: "The voice service is unavailable. Try again in a moment.",
    upstream_timeout: "The voice service took too long to answer. Try again.",
    timeout: "The connection took too long. Check your network, then retry.",
    sdp_rejected: "The voice service refused the call: {m}",
    ice_failed: "The audio connection failed. Check your network or firewall, then retry.",
    network_error: "Network error. Check your connection, then retry.",
    invalid: "The request was refused.",
    failed: "Could not connect.",
  };
  // Codes where our server's own `detail` says more than a generic sentence.
  const USE_DETAIL = ["invalid", "invalid_override", "permission_denied"];
  const RETRYABLE = ["ice_failed", "network_error", "timeout", "upstream_error", "upstream_unavailable",
    "upstream_timeout"];
  const BY_STATUS = {401: "not_authenticated", 403: "permission_denied", 404: "preset_not_found",
    429: "rate_limited", 502: "upstream_error", 503: "upstream_unavailable", 504: "upstream_timeout"};
  const ACTIVE = ["connecting", "connected", "reconnecting"];
  const TIMEOUT = 15000;
  const MAX_QUEUE = 64;

  class RealtimeError extends Error {
    constructor(code, message, extra) {
      super(message || MESSAGES[code] || MESSAGES.failed);
      this.name = "RealtimeError";
      this.code = code;
      Object.assign(this, extra);
    }
  }

  const abortError = () => new DOMException("closed", "AbortError");
  const isAbort = (e) => e && e.name === "AbortError";

  let pageConfig;
  function readConfig() {
    if (pageConfig === undefined) {
      const el = document.getElementById("django-realtime-config");
      try { pageConfig = el ? JSON.parse(el.textContent) : {}; } catch (e) { pageConfig = {}; }
    }
    return pageConfig;
  }

  function cookie(name) {
    for (const part of document.cookie ? document.cookie.split(/; */) : []) {
      const i = part.indexOf("=");
      if (part.slice(0, i) === name) return decodeURIComponent(part.slice(i + 1));
    }
    return "";
  }

  function csrfHeaders(cfg) {
    // The cookie is fresher than the page (login rotates the token); the config's
    // token covers CSRF_COOKIE_HTTPONLY and CSRF_USE_SESSIONS.
    const token = cookie(cfg.csrfCookieName || "csrftoken") || cfg.csrfToken;
    return token ? {[cfg.csrfHeaderName || "X-CSRFToken"]: token} : {};
  }

  // Turns an error response (ours: {detail, code}; the Realtime API's: {error: {message}})
  // into a RealtimeError with a sentence a person can act on. `ours`: the request went to
  // this site, so a 5xx that is not our JSON came from the site's server or its proxy.
  function httpError(resp, text, ours) {
    let body = null;
    try { body = JSON.parse(text); } catch (e) { /* not JSON */ }
    const status = resp.status;
    if (ours && (status >= 500 || resp.ok) && !(body && body.code)) {
      return new RealtimeError("server_error", MESSAGES.server_error.replace("{status}", status),
        {status, detail: text.slice(0, 200)});
    }
    const retry = parseInt(resp.headers.get("Retry-After"), 10);
    const extra = {status, retryAfter: retry >= 0 ? retry : undefined};
    const api = body && body.error;
    if (api && typeof api === "object") {
      const m = api.message || "HTTP " + status;
      const code = status === 429 ? "rate_limited" : status >= 500 ? "upstream_error" : "sdp_rejected";
      return new RealtimeError(code, MESSAGES.sdp_rejected.replace("{m}", m),
        Object.assign(extra, {detail: m, upstreamCode: api.code}));
    }
    const code = (body && body.code) || BY_STATUS[status] || (status >= 500 ? "upstream_error" : "invalid");
    const detail = body && typeof body.detail === "string" ? body.detail : undefined;
    let message = USE_DETAIL.includes(code) && detail ? detail : MESSAGES[code] || detail;
    if (code === "rate_limited" && extra.retryAfter !== undefined) {
      const s = extra.retryAfter;
      message = MESSAGES.rate_limited_in.replace("{s}", MESSAGES[s === 1 ? "second" : "seconds"].replace("{n}", s));
    }
    return new RealtimeError(code, message, Object.assign(extra, {detail}));
  }

  async function getMic(constraints) {
    const md = navigator.mediaDevices;
    if (!md || !md.getUserMedia || !window.RTCPeerConnection) throw new RealtimeError("unsupported");
    try {
      return await md.getUserMedia({audio: constraints || true});
    } catch (e) {
      const n = e && e.name;
      const code = n === "NotAllowedError" || n === "SecurityError" ? "microphone_denied"
        : n === "NotFoundError" || n === "OverconstrainedError" ? "microphone_missing" : "microphone_error";
      throw new RealtimeError(code, undefined, {cause: e});
    }
  }

  async function micPermission() {
    try { return (await navigator.permissions.query({name: "microphone"})).state; } catch (e) { return "prompt"; }
  }

  const stopStream = (s) => s && s.getTracks().forEach((t) => t.stop());

  // Removing a session's element (an htmx swap) closes it: no microphone stays live
  // behind a page that no longer shows it.
  const attached = new Set();
  let observer = null;
  function watchRemoval(s, on) {
    if (on) attached.add(s); else attached.delete(s);
    if (attached.size && !observer) {
      observer = new MutationObserver(() => attached.forEach((x) => { if (!x.element.isConnected) x.close(); }));
      observer.observe(document, {childList: true, subtree: true});
    } else if (!attached.size && observer) {
      observer = observer.disconnect();
    }
  }

  // On pagehide, tell the site's call controller (if any) to end each call.
  const live = new Set();
  window.addEventListener("pagehide", () => live.forEach((s) => { s._endBeacon(); s.close(); }));

  // The modes a preset allows (presets/, read once a page): relay only with require_control.
  // Unknown (slow, failed) means try ephemeral: a relay-only preset answers relay_required.
  let presetList;
  function presetModes(url, slug) {
    presetList = presetList || fetch(url, {credentials: "same-origin", signal: AbortSignal.timeout(TIMEOUT)}).then((r) => r.json());
    return presetList.then((l) => l.find((p) => p.slug === slug).modes).catch(() => {});
  }

  class Session {
    constructor(opts) {
      this.opts = opts;
      this.config = Object.assign({}, readConfig(), opts.config);
      this.mode = opts.mode === "relay" ? "relay" : "ephemeral";
      this.state = "idle";
      this.callId = null;
      this.error = null;
      this.muted = false;
      this.pc = this.dc = this.stream = this.remoteTrack = null;
      this.soundBlocked = false;
      this.timeouts = Object.assign({mint: TIMEOUT, sdp: TIMEOUT}, this.config.timeouts, opts.timeouts);
      this.maxQueue = opts.maxQueue || MAX_QUEUE;
      this.element = opts.element || null;
      this.audio = opts.audioElement || document.createElement("audio");
      this.audio.autoplay = true;
      this.audio.setAttribute("playsinline", "");
      this._handlers = {};
      this._queue = [];
      this._gen = 0;
      this._tries = 0;
      this._wasConnected = false;
    }

    on(type, fn) { (this._handlers[type] = this._handlers[type] || []).push(fn); return this; }

    off(type, fn) { this._handlers[type] = (this._handlers[type] || []).filter((f) => f !== fn); return this; }

    // Until the channel opens, events wait in a bounded queue (oldest dropped first); a
    // reconnect or hang-up clears it, so nothing replays into the next session.
    send(event) {
      const st = this.state;
      if (this.dc && this.dc.readyState === "open") this.dc.send(JSON.stringify(event));
      else if (st !== "closed" && st !== "failed" && this._queue.push(event) > this.maxQueue) this._queue.shift();
      return this;
    }

    // Call from a click handler after a "sound" event said playback was blocked.
    resumeSound() {
      return this.audio.play().then(() => {
        this.soundBlocked = false;
        this._emit("sound", true, "sound");
      }, () => {});
    }

    mute(on) {
      this.muted = on !== false;
      if (this.stream) this.stream.getAudioTracks().forEach((t) => { t.enabled = !this.muted; });
      this._emit("mute", this.muted);
      return this;
    }

    close() {
      this._stop();
      this._setState("closed");
      return this;
    }

    // -- internals ---------------------------------------------------------------
    _emit(type, data, domType) {
      for (const fn of (this._handlers[type] || []).slice()) {
        try { fn(data, this); } catch (e) { setTimeout(() => { throw e; }); }
      }
      if (domType) {
        (this.element || document).dispatchEvent(
          new CustomEvent("realtime:" + domType, {bubbles: true, detail: {session: this, [domType]: data}}));
      }
    }

    _setState(state) {
      if (state === this.state) return;
      this.state = state;
      this._emit("state", state, "state");
    }

    _fail(err) {
      this._stop();
      this.error = err;
      this._emit("error", err, "error");
      this._setState("failed");
    }

    // Invalidate the running attempt (its callbacks become no-ops) and release everything.
    _stop(keepMic) {
      this._gen++;
      clearTimeout(this._timer);
      this._dropTimer = clearTimeout(this._dropTimer);
      if (this._abort) this._abort.abort();
      if (this.dc) this.dc.close();
      if (this.pc) this.pc.close();
      // (pc.close() ended the remote track.)
      this.pc = this.dc = this.remoteTrack = this.audio.srcObject = null;
      this._queue = [];
      if (this.soundBlocked) { this.soundBlocked = false; this._emit("sound", true, "sound"); }
      if (!keepMic) {
        stopStream(this.stream);
        this.stream = null;
        live.delete(this);
        if (this.element) watchRemoval(this, false);
      }
    }

    _start() {
      this.error = null;
      this._setState("connecting");
      live.add(this);
      if (this.element) watchRemoval(this, true);
      // iOS/Safari: play() inside the click handler unlocks later playback.
      const p = this.audio.play && this.audio.play();
      if (p && p.catch) p.catch(() => {});
      this._run(++this._gen);
    }

    async _run(gen) {
      try {
        const url = this.config.endpoints.presets;
        const modes = this.mode !== "relay" && url && (await presetModes(url, this.opts.preset));
        if (modes && !modes.includes("ephemeral")) this.mode = "relay";
        await this._attempt(gen);
      } catch (e) {
        if (gen !== this._gen || isAbort(e)) return;
        if (e.code === "relay_required" && this.mode !== "relay") {
          this.mode = "relay";
          return this._run(gen);
        }
        this._retry(e instanceof RealtimeError ? e : new RealtimeError("failed", undefined, {cause: e}));
      }
    }

    // Reconnect with backoff after a lost call, a bounded number of times; else fail.
    _retry(err) {
      const rc = Object.assign({attempts: 3, delay: 500}, this.opts.reconnect);
      if (!this._wasConnected || !RETRYABLE.includes(err.code) || this._tries >= rc.attempts) {
        this._fail(err);
        return;
      }
      this._stop(true);
      const gen = this._gen;
      this._setState("reconnecting");
      this._timer = setTimeout(() => this._run(gen), rc.delay * 2 ** this._tries++);
    }

    // fetch + body, aborted by a hang-up or after `ms` (then a RealtimeError "timeout").
    async _fetch(url, init, ms) {
      const ctl = new AbortController(), outer = this._abort.signal;
      const hangUp = () => ctl.abort();
      outer.addEventListener("abort", hangUp);
      let late = false;
      const timer = setTimeout(() => { late = true; ctl.abort(); }, ms);
      try {
        const resp = await fetch(url, Object.assign(init, {signal: ctl.signal}));
        return {resp, text: await resp.text()};
      } catch (e) {
        if (late) throw new RealtimeError("timeout", undefined, {cause: e, timeoutMs: ms});
        throw isAbort(e) ? e : new RealtimeError("network_error", undefined, {cause: e});
      } finally {
        clearTimeout(timer);
        outer.removeEventListener("abort", hangUp);
      }
    }

    async _mint() {
      const body = {};
      if (this.opts.preset) body.preset = this.opts.preset;
      if (this.opts.overrides) body.overrides = this.opts.overrides;
      const {resp, text} = await this._fetch(this.config.endpoints.clientSecrets, {
        method: "POST", credentials: "same-origin", body: JSON.stringify(body),
        headers: Object.assign({"Content-Type": "application/json"}, csrfHeaders(this.config)),
      }, this.timeouts.mint);
      let j;
      try { j = JSON.parse(text); } catch (e) { /* below */ }
      if (!resp.ok || !j) throw httpError(resp, text, true);
      this.sessionType = j.session_type;
      this.model = j.model;
      this.expiresAt = j.expires_at;
      if ("remaining_minutes" in j) this._emit("quota", j.remaining_minutes, "quota");
      return j;
    }

    async _attempt(gen) {
      const live = () => { if (gen !== this._gen) throw abortError(); };
      const relay = this.mode === "relay";
      this._abort = new AbortController();
      let secret;
      if (!this.stream) {
        const mic = getMic(this.opts.audio).then((s) => {
          if (gen !== this._gen) { stopStream(s); throw abortError(); }
          s.getAudioTracks().forEach((t) => {
            t.enabled = !this.muted;
            // The device went away (unplugged, OS revoked it, iOS backgrounding).
            t.addEventListener("ended", () => {
              if (this.stream === s && ACTIVE.includes(this.state)) this._fail(new RealtimeError("microphone_ended"));
            });
          });
          return (this.stream = s);
        });
        // Mint in parallel with the microphone only when the permission is already
        // granted: while a prompt is up the person's click dwarfs the mint, and a
        // blocked microphone must never cost a minted secret.
        if (!relay && (await micPermission()) === "granted") {
          const minted = this._mint();
          minted.catch(() => {});
          await mic;
          secret = await minted;
        } else {
          await mic;
        }
      }
      live();
      if (!relay && !secret) secret = await this._mint();
      live();

      const pc = (this.pc = new RTCPeerConnection(this.opts.rtcConfig || this.config.rtcConfig));
      this._watch(pc, gen);
      this.stream.getAudioTracks().forEach((t) => pc.addTrack(t, this.stream));
      const dc = (this.dc = pc.createDataChannel("oai-events"));
      dc.onopen = () => {
        if (gen !== this._gen) return;
        clearTimeout(this._timer);
        this._wasConnected = true;
        this._tries = 0;
        const q = this._queue.splice(0);
        q.forEach((ev) => this.send(ev));
        this._setState("connected");
      };
      dc.onmessage = (m) => {
        if (gen !== this._gen) return;
        let ev;
        try { ev = JSON.parse(m.data); } catch (e) { return; }
        // The server answers its tools' calls (the page must not answer twice).
        if ((this.config.serverTools || []).includes(ev.name)) return;
        // A server "error" event is not fatal; our "error" channel carries RealtimeErrors.
        this._emit(ev.type === "error" ? "server.error" : ev.type, ev);
        this._emit("*", ev, "event");
      };
      dc.onclose = () => { if (gen === this._gen && this.state === "connected") this._lost(); };

      const offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
      live();
      let url, headers = {"Content-Type": "application/sdp"};
      if (relay) {
        const q = new URLSearchParams();
        if (this.opts.preset) q.set("preset", this.opts.preset);
        if (this.opts.overrides) q.set("overrides", JSON.stringify(this.opts.overrides));
        url = this.config.endpoints.calls + (String(q) ? "?" + q : "");
        Object.assign(headers, csrfHeaders(this.config));
      } else {
        url = secret.connect_url;
        headers.Authorization = "Bearer " + secret.value;
      }
      const {resp, text: sdp} = await this._fetch(url, {method: "POST", body: offer.sdp, headers,
        credentials: relay ? "same-origin" : "omit"}, this.timeouts.sdp);
      if (!resp.ok) throw httpError(resp, sdp, relay);
      // Location may be unreadable cross-origin (not exposed by CORS): then callId stays null.
      const where = resp.headers.get(relay ? "X-Realtime-Call-Id" : "Location");
      this.callId = where ? where.split("/").pop() : null;
      live();
      if (!relay) this._attach();
      await pc.setRemoteDescription({type: "answer", sdp});
      live();
      this._timer = setTimeout(() => this._lost(gen), this.opts.connectTimeout || 15000);
    }

    _watch(pc, gen) {
      pc.ontrack = (e) => {
        if (gen !== this._gen) return;
        this.remoteTrack = e.track;
        this.audio.srcObject = e.streams[0] || new MediaStream([e.track]);
        const p = this.audio.play();
        // Autoplay refused (Safari, Firefox): resumeSound() in a click handler plays it.
        if (p && p.catch) p.catch((err) => {
          if (gen !== this._gen || !err || err.name !== "NotAllowedError") return;
          this.soundBlocked = true;
          this._emit("sound", false, "sound");
        });
        this._emit("track", e.track);
      };
      pc.onconnectionstatechange = pc.oniceconnectionstatechange = () => {
        if (gen !== this._gen) return;
        const s = pc.connectionState || pc.iceConnectionState;
        if (s === "failed") this._lost(gen);
        else if (s !== "disconnected") this._dropTimer = clearTimeout(this._dropTimer);
        else if (!this._dropTimer) this._dropTimer = setTimeout(() => this._lost(gen), 3000);
      };
    }

    // Tell the site's call controller which call this page holds (best effort).
    _attach() {
      const url = this.config.endpoints && this.config.endpoints.callAttach;
      if (!url || !this.callId) return;
      fetch(url, {method: "POST", credentials: "same-origin", body: JSON.stringify({call_id: this.callId}),
        headers: Object.assign({"Content-Type": "application/json"}, csrfHeaders(this.config))})
        .then((r) => { if (!r.ok) throw new Error("HTTP " + r.status); })
        .catch((e) => console.warn("django-realtime: could not attach call " + this.callId + ": " + e.message));
    }

    // A beacon survives the page; it cannot set headers, so the CSRF token is a form field.
    _endBeacon() {
      const url = this.config.endpoints && this.config.endpoints.callEnd;
      if (!url || !this.callId || !navigator.sendBeacon) return;
      const token = cookie(this.config.csrfCookieName || "csrftoken") || this.config.csrfToken || "";
      navigator.sendBeacon(url.replace("{call_id}", encodeURIComponent(this.callId)),
        new URLSearchParams({csrfmiddlewaretoken: token}));
    }

    _lost(gen) {
      if ((gen === undefined || gen === this._gen) && ACTIVE.includes(this.state)) {
        this._retry(new RealtimeError("ice_failed"));
      }
    }
  }

  function connect(opts) {
    const s = new Session(opts || {});
    s._start();
    return s;
  }

  // -- widget ------------------------------------------------------------------------
  const STATUS = {idle: "Ready.", connecting: "Connecting…", connected: "Connected. Speak now.",
    reconnecting: "Connection lost. Reconnecting…", closed: "Call ended.", failed: "Not connected."};
  const TRANSCRIPT = {
    "conversation.item.input_audio_transcription.delta": ["user", "delta"],
    "conversation.item.input_audio_transcription.completed": ["user", "transcript", 1],
    "response.output_audio_transcript.delta": ["assistant", "delta"],
    "response.output_audio_transcript.done": ["assistant", "transcript", 1],
    "response.output_text.delta": ["assistant", "delta"],
    "response.output_text.done": ["assistant", "text", 1],
  };

  const MAX_LINES = 200;

  function wire(el) {
    if (el.realtimeWired) return;
    el.realtimeWired = true;
    const q = (n) => el.querySelector("[data-realtime-" + n + "]");
    const start = q("start"), mute = q("mute"), status = q("status"), list = q("transcript");
    const errBox = q("error"), errText = q("error-message"), retry = q("retry"), sound = q("sound");
    const maxLines = parseInt(el.getAttribute("data-max-lines"), 10) || readConfig().maxTranscriptLines || MAX_LINES;
    const lines = {};
    let s = null;
    // Only touch text that changed: rewriting a live region re-announces it.
    const put = (node, text) => { if (node && node.textContent !== text) node.textContent = text; };
    const attr = (node, name, value) => { if (node && value != null) node.setAttribute(name, value); };

    // Minutes left today (the page's, then each mint's), counted down during a call.
    const quota = q("quota"), plural = new Intl.PluralRules(document.documentElement.lang || undefined);
    let left = quota ? parseFloat(quota.dataset.minutes) : NaN, since = 0, tick;
    const minutes = () => left - (since && (Date.now() - since) / 6e4);
    const showLeft = () => {
      const n = Math.max(0, Math.floor(minutes()));
      if (n >= 0) put(quota, quota.getAttribute("data-label-" + (plural.select(n) == "one" ? "one" : "other")).replace("{n}", n));
    };
    const setLeft = (m) => {
      if (!quota) return;
      quota.hidden = m == null;
      left = m == null ? NaN : m;
      if (since) since = Date.now();
      showLeft();
    };

    const render = () => {
      const st = s ? s.state : "idle", on = ACTIVE.includes(st) ? "stop" : "start";
      el.setAttribute("data-state", st);
      const counting = st === "connected" || st === "reconnecting";
      if (counting && !since) { since = Date.now(); tick = setInterval(showLeft, 1e3); }
      if (!counting && since) { left = minutes(); since = 0; clearInterval(tick); }
      if (start) {
        put(start, start.getAttribute("data-label-" + on));
        attr(start, "aria-label", start.getAttribute("data-aria-" + on));
      }
      if (mute) {
        mute.disabled = st !== "connected";
        mute.setAttribute("aria-pressed", String(!!(s && s.muted)));
      }
      put(status, DjangoRealtime.status[st] || st);
      if (errBox) errBox.hidden = st !== "failed";
      put(errText, s && s.error ? s.error.message : "");
      if (sound) sound.hidden = !(s && s.soundBlocked);
    };

    const line = (ev) => {
      const t = TRANSCRIPT[ev.type];
      if (!t || !list) return;
      const key = t[0] + (ev.item_id || ev.response_id) + ":" + (ev.content_index || 0);
      let li = lines[key];
      if (!li) {
        li = lines[key] = document.createElement("li");
        li.realtimeKey = key;
        li.className = "realtime-widget__line realtime-widget__line--interim";
        li.setAttribute("data-role", t[0]);
        // Interim: italic, "(interim)" for screen readers, and busy so the log
        // announces the line once it is final.
        li.setAttribute("aria-busy", "true");
        const who = document.createElement("span");
        who.className = "realtime-widget__who";
        who.textContent = list.getAttribute("data-label-" + t[0]) || t[0];
        const note = document.createElement("span");
        note.className = "realtime-widget__sr-only realtime-widget__interim";
        note.textContent = " " + (list.getAttribute("data-label-interim") || "(interim)");
        const text = document.createElement("span");
        text.className = "realtime-widget__text";
        li.append(who, note, " ", text);
        list.append(li);
        while (list.children.length > maxLines) {
          delete lines[list.firstElementChild.realtimeKey];
          list.firstElementChild.remove();
        }
      }
      const text = li.lastChild, value = ev[t[1]] || "";
      if (t[2]) {
        if (value) text.textContent = value;
        if (!li.hasAttribute("data-final")) {
          li.setAttribute("data-final", "");
          li.classList.remove("realtime-widget__line--interim");
          li.removeAttribute("aria-busy");
          li.querySelector(".realtime-widget__interim").remove();
        }
      } else {
        text.textContent += value;
      }
      list.scrollTop = list.scrollHeight;
    };

    const go = () => {
      if (s) s.close();
      let overrides;
      try { overrides = JSON.parse(el.getAttribute("data-overrides") || "null") || undefined; } catch (e) { /* ignore */ }
      s = el.realtimeSession = connect({preset: el.getAttribute("data-preset") || undefined,
        mode: el.getAttribute("data-mode") || undefined, overrides, element: el, audioElement: q("audio")});
      s.on("state", render).on("mute", render).on("sound", render).on("*", line).on("quota", setLeft);
      render();
    };

    if (start) start.addEventListener("click", () => (s && ACTIVE.includes(s.state) ? s.close() : go()));
    if (retry) retry.addEventListener("click", go);
    if (mute) mute.addEventListener("click", () => s && s.mute(!s.muted));
    if (sound) sound.addEventListener("click", () => s && s.resumeSound());
    render();
  }

  function init(root) {
    root = root || document;
    if (root.matches && root.matches("[data-realtime-widget]")) wire(root);
    root.querySelectorAll("[data-realtime-widget]").forEach(wire);
  }

  // Strings in the page's language, from {% realtime_script %}; a script may still
  // override DjangoRealtime.messages / .status after this.
  Object.assign(MESSAGES, readConfig().messages);
  Object.assign(STATUS, readConfig().status);
  const DjangoRealtime = (window.DjangoRealtime = {connect, init, Session, RealtimeError,
    messages: MESSAGES, status: STATUS, get config() { return readConfig(); }});

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", () => init());
  else init();
})();
