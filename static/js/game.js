// The game screen: canvas, HUD, scoreboard, chat, status overlay. Plugs the
// arena's rule into the SDK's Room (prediction of our avatar, interpolation of
// the others), reads it every frame and feeds it the input direction. A spectator's
// room (client.spectate()) is drawn the same way without an avatar of ours: every
// avatar interpolated, no input, no chat; the field fits the window, or the camera
// follows a player (click or tap an avatar, a scoreboard name, or keys 1-9; Esc,
// a click on empty space or "Free camera" go back to the whole field).
//
// The large world (config.world "large": 8000 × 8000, each player sent only what is
// near them): the camera follows our avatar showing about PLAYER_VIEW units, a minimap
// shows the whole field with what we know of it and our interest area, and the
// scoreboard lists the players we know of (those nearby).

import { ownAvatar, step } from "./arena-rules.js";
import { Controls } from "./input.js";
import { interestArea } from "./minimap.js";
import { FOLLOW_ZOOM, PLAYER_VIEW, playerColor, Renderer } from "./render.js";

const $ = (id) => document.getElementById(id);
const CHAT_KEEP = 120;

/** A phone or tablet: its main pointer is a finger (or it cannot hover). */
export function isTouchDevice() {
  const media = (q) => window.matchMedia?.(q).matches ?? false;
  return media("(pointer: coarse)") || media("(hover: none)") || navigator.maxTouchPoints > 0;
}

export class GameView {
  constructor() {
    this.renderer = new Renderer($("view"));
    this.controls = new Controls($("stick"));
    this.room = null;
    this.others = null; // the SDK's Interpolator of the other avatars
    this.showServer = false;
    this.lastFrame = 0;
    this.lastPanels = 0;
    this.raf = 0;
    this.timer = null;
    this.chatLines = [];
    this.rendered = { own: null, others: [] };
    this.follow = null; // a spectator's camera: the pid followed, null for the whole field
    this.scoresKey = "";

    const canvas = $("view");
    canvas.addEventListener("click", (e) => {
      if (!this.room?.spectator) return;
      const box = canvas.getBoundingClientRect();
      this.setFollow(this.renderer.pick(e.clientX - box.left, e.clientY - box.top));
    });
    canvas.addEventListener("pointermove", (e) => {
      if (!this.room?.spectator || e.pointerType !== "mouse") return;
      const box = canvas.getBoundingClientRect();
      const over = this.renderer.pick(e.clientX - box.left, e.clientY - box.top) !== null;
      canvas.style.cursor = over ? "pointer" : "";
    });
    $("free-camera").addEventListener("click", () => this.setFollow(null));
    $("retry-now").addEventListener("click", () => this.room?.retryNow());
    $("scores").addEventListener("click", (e) => {
      const button = e.target.closest?.("button.who");
      if (!button || !this.room?.spectator) return;
      const pid = Number(button.dataset.pid);
      this.setFollow(this.follow === pid ? null : pid);
    });

    $("chat-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const input = $("chat-input");
      if (this.room && !this.room.spectator && input.value.trim()) this.chat(input.value);
      input.value = "";
      input.blur(); // back to steering
    });
    $("show-server").addEventListener("change", (e) => {
      this.showServer = e.target.checked;
    });
    window.addEventListener("keydown", (e) => {
      if (!this.room) return;
      const typing = document.activeElement === $("chat-input");
      if (e.key === "Enter" && !typing && !this.room.spectator) {
        e.preventDefault();
        $("chat-input").focus();
      } else if (e.key === "Escape" && typing) {
        $("chat-input").blur();
      } else if ((e.key === "h" || e.key === "H") && !typing && !e.ctrlKey && !e.metaKey) {
        this.setShowServer(!this.showServer);
      } else if (this.room.spectator && !typing && !e.ctrlKey && !e.metaKey && !e.altKey) {
        if (e.key === "Escape" || e.key === "0") {
          this.setFollow(null);
        } else if (/^[1-9]$/.test(e.key)) {
          const row = this.scoreboard()[Number(e.key) - 1]; // by rank, as listed
          if (row) this.setFollow(row.pid);
        }
      }
    });
    // A touch device gets the stick and touch help instead of keyboard help.
    if (isTouchDevice()) document.body.classList.add("touch");
    window.addEventListener("touchstart", () => document.body.classList.add("touch"),
      { once: true, passive: true });
  }

  /** A spectator's camera: follow player `pid`, or (null) show the whole field. */
  setFollow(pid) {
    const room = this.room;
    if (!room?.spectator) pid = null;
    if (pid !== null && !this.avatars().some((a) => a.values.pid === pid)) pid = null;
    if (pid === this.follow) return;
    this.follow = pid;
    this.updateCameraBar();
    if (room) this.updatePanels(performance.now());
  }

  /** The followed player's name, or null. */
  followName() {
    if (this.follow === null) return null;
    return this.avatars().find((a) => a.values.pid === this.follow)?.values.name ?? null;
  }

  updateCameraBar() {
    const following = this.follow !== null;
    $("camera-bar").classList.toggle("following", following);
    $("free-camera").hidden = !following;
    $("camera-hint").hidden = following;
    $("camera-follow").hidden = !following;
    $("follow-name").textContent = following ? this.followName() ?? "" : "";
    $("follow-dot").style.background = following ? playerColor(this.follow) : "";
  }

  /** Whether the room plays the large world (the camera follows us; a minimap). */
  large() {
    return this.room?.config?.world === "large";
  }

  /** The zoom a followed avatar is shown at: FOLLOW_ZOOM, or PLAYER_VIEW's in the large world. */
  followZoom() {
    return this.large() ? this.renderer.viewZoom(PLAYER_VIEW) : FOLLOW_ZOOM;
  }

  /**
   * The camera as last drawn, for tests: {follow, followName, x, y, zoom, scale, bounds,
   * world, large, ownFollowed, viewport, minimap}.
   */
  cameraState() {
    const r = this.renderer;
    const cfg = this.room?.config;
    if (!r.camera || !cfg) return null;
    const zoom = this.followZoom();
    return {
      follow: this.follow,
      followName: this.followName(),
      x: r.camera.x,
      y: r.camera.y,
      zoom: r.camera.zoom,
      scale: r.scale,
      followZoom: zoom,
      bounds: r.bounds(cfg, zoom),
      world: { width: cfg.width, height: cfg.height },
      large: this.large(),
      ownFollowed: r.cameraKey === "own", // the camera is on our own avatar
      viewport: r.viewport ? { ...r.viewport } : null,
      minimap: r.minimap ? { ...r.minimap } : null,
    };
  }

  setShowServer(on) {
    this.showServer = on;
    $("show-server").checked = on;
  }

  /** Show the game for `room` (a WELCOMEd SDK Room), predicting our avatar with arena's rule. */
  attach(room) {
    this.room = room;
    const watching = room.spectator;
    if (!watching) room.predict(step, { own: ownAvatar });
    this.others = room.interpolate({
      filter: (e) => e.type === "Avatar" && (watching || e.values.pid !== room.playerId) });
    this.chatLines = [];
    $("chat-log").replaceChildren();
    this.controls.inputMax = room.config?.input_max ?? 100;
    this.controls.enabled = !watching;
    document.body.classList.toggle("watching", watching);
    $("chat-input").disabled = watching;
    $("chat-input").placeholder = watching ? "Spectators can't chat"
      : document.body.classList.contains("touch") ? "Tap to chat" : "Press Enter to chat";
    this.follow = null;
    this.scoresKey = "";
    this.renderer.camera = null;
    $("camera-bar").hidden = !watching;
    this.updateCameraBar();
    const large = this.large();
    document.body.classList.toggle("large-world", large);
    $("scores-title").textContent = large ? "Nearby players" : "Scoreboard";
    $("hud-players-label").textContent = large ? "Nearby" : "Players";
    this.addChat(null, watching ? `You are watching room ${room.id}.` : `You joined room ${room.id} as ${room.name}.`);
    if (large) {
      this.addChat(null, watching
        ? "A large world: players see only what is near them; as a spectator you see the whole map."
        : "A large world: you see what is near you. The minimap shows what you know of the field.");
    }
    cancelAnimationFrame(this.raf);
    clearInterval(this.timer);
    const frame = (t) => {
      this.frame(t);
      this.raf = requestAnimationFrame(frame);
    };
    this.raf = requestAnimationFrame(frame);
    // Inputs must keep their rhythm when frames are slow or paused (background tab).
    this.timer = setInterval(() => this.pump(performance.now()), 8);
  }

  detach() {
    cancelAnimationFrame(this.raf);
    clearInterval(this.timer);
    this.timer = null;
    this.controls.enabled = false;
    this.controls.release();
    document.body.classList.remove("watching", "large-world");
    $("scores-title").textContent = "Scoreboard";
    $("hud-players-label").textContent = "Players";
    $("chat-input").disabled = false;
    $("chat-input").placeholder = "Press Enter to chat";
    $("camera-bar").hidden = true;
    $("reconnect-banner").hidden = true;
    $("view").style.cursor = "";
    this.follow = null;
    this.room = null;
    this.others = null;
  }

  /** The input clock: one input per server tick while a direction is held. */
  pump(now) {
    const room = this.room;
    if (!room || room.spectator) return;
    const [dx, dy] = this.controls.direction();
    room.pumpInput(dx !== 0 || dy !== 0 ? [dx, dy] : null, now);
  }

  chat(text) {
    const max = this.room.config?.chat_max_len ?? 200;
    const clean = String(text).trim().slice(0, max);
    if (clean) this.room.send("chat", clean);
  }

  avatars() {
    return this.room?.state ? this.room.state.ofType("Avatar") : [];
  }

  hud(now) {
    const room = this.room;
    const stats = room.stats(now);
    return {
      rttMs: stats.rttMs,
      tickRate: stats.tickRate,
      updatesPerSec: stats.updatesPerSec,
      kbPerSec: stats.bytesPerSec / 1024,
      players: this.avatars().length,
      bufferMs: this.others ? Math.round(this.others.bufferedMs(now)) : 0,
      pending: stats.pendingInputs,
      lastCorrection: room.predictor ? room.predictor.lastCorrection : 0,
    };
  }

  /** One animation frame. */
  frame() {
    const room = this.room;
    if (!room) return;
    const now = performance.now();
    this.pump(now);
    const dt = this.lastFrame ? now - this.lastFrame : 16;
    this.lastFrame = now;
    const cfg = room.config;
    if (cfg && room.state) {
      room.predictor?.decay(dt);
      const avatars = [];
      const others = [];
      let focus = null;
      for (const o of this.others.sample(now).values()) {
        const followed = o.pid === this.follow;
        const away = Boolean(o.away);
        avatars.push({ pid: o.pid, name: o.name, score: o.score, x: o.x, y: o.y, own: false,
          followed, away });
        others.push({ pid: o.pid, name: o.name, x: o.x, y: o.y, away });
        if (followed) focus = { key: o.pid, x: o.x, y: o.y };
      }
      if (this.follow !== null && !focus) {
        // Not drawn yet (just joined: interpolation runs behind), or gone: then the whole field.
        const live = this.avatars().find((a) => a.values.pid === this.follow);
        if (live) focus = { key: this.follow, x: live.values.x, y: live.values.y };
        else this.setFollow(null);
      }
      const own = room.spectator ? null : room.predicted(now);
      const ownEntity = room.spectator ? null : room.ownEntity();
      if (own && ownEntity) {
        avatars.push({ pid: room.playerId, name: ownEntity.values.name, score: ownEntity.values.score,
          x: own.x, y: own.y, own: true });
      }
      const large = this.large();
      if (large && own && ownEntity) focus = { key: "own", x: own.x, y: own.y };
      this.rendered = { own: own ? { x: own.x, y: own.y } : null, others };
      const raw = this.showServer
        ? this.avatars().map((a) => ({ x: a.values.x, y: a.values.y,
          own: !room.spectator && a.values.pid === room.playerId }))
        : null;
      const orbs = room.state.ofType("Orb").map((o) => o.values);
      // The interest area is where the server has our avatar (it sends what is near that).
      const minimap = large
        ? { interest: ownEntity ? interestArea(ownEntity.values.x, ownEntity.values.y, cfg) : null }
        : null;
      this.renderer.draw({ world: cfg, orbs, avatars, raw, focus, now,
        view: large ? PLAYER_VIEW : null, minimap });
    }
    this.updateReconnecting(now);
    if (now - this.lastPanels > 250) {
      this.lastPanels = now;
      this.updatePanels(now);
    }
  }

  updatePanels(now) {
    const room = this.room;
    const hud = this.hud(now);
    $("hud-rtt").textContent = hud.rttMs === null ? "–" : `${hud.rttMs} ms`;
    $("hud-tick").textContent = hud.tickRate ? `${+hud.tickRate.toFixed(1)} Hz` : "–";
    $("hud-ups").textContent = `${Math.round(hud.updatesPerSec)}/s`;
    $("hud-kbps").textContent = `${hud.kbPerSec.toFixed(1)} KB/s`;
    $("hud-players").textContent = String(hud.players);
    $("hud-buffer").textContent = `${Math.max(0, hud.bufferMs)} ms`;

    const list = $("scores");
    const avatars = this.scoreboard();
    const watching = room.spectator;
    // Rebuilt only when it changes, keeping the keyboard focus on the same name.
    const key = JSON.stringify([room.playerId, this.follow,
      avatars.map((a) => [a.pid, a.name, a.score, Boolean(a.away)])]);
    if (key === this.scoresKey) return;
    this.scoresKey = key;
    const focused = list.contains(document.activeElement) ? document.activeElement.dataset.pid : null;
    const rows = avatars.map((a, i) => {
      const li = document.createElement("li");
      if (a.pid === room.playerId) li.className = "me";
      const followed = watching && a.pid === this.follow;
      if (followed) li.className = "following";
      if (a.away) li.classList.add("away");
      const rank = document.createElement("span");
      rank.className = "rank";
      rank.textContent = `${i + 1}`;
      const dot = document.createElement("span");
      dot.className = "dot";
      dot.style.background = playerColor(a.pid);
      // A spectator's names are buttons: follow that player (again: the whole field).
      const name = document.createElement(watching ? "button" : "span");
      name.className = "who";
      name.textContent = a.pid === room.playerId ? `${a.name} (you)` : a.name;
      if (watching) {
        name.type = "button";
        name.dataset.pid = String(a.pid);
        name.setAttribute("aria-pressed", String(followed));
        name.title = followed ? "Following: press again for the whole field"
          : i < 9 ? `Follow ${a.name} (${i + 1})` : `Follow ${a.name}`;
      }
      if (a.away) {
        const tag = document.createElement("small");
        tag.className = "away-tag";
        tag.textContent = "reconnecting";
        tag.title = `${a.name} lost the connection; the seat is kept for a while`;
        name.append(" ", tag);
      }
      const score = document.createElement("span");
      score.className = "score";
      score.textContent = String(a.score);
      li.append(rank, dot, name, score);
      return li;
    });
    list.replaceChildren(...rows);
    if (focused !== null && focused !== undefined) {
      list.querySelector(`button.who[data-pid="${focused}"]`)?.focus({ preventScroll: true });
    }
    if (watching) $("follow-name").textContent = this.followName() ?? "";
  }

  /** The players as the scoreboard lists them: best score first. */
  scoreboard() {
    return this.avatars().map((a) => a.values)
      .sort((a, b) => b.score - a.score || a.name.localeCompare(b.name) || a.pid - b.pid);
  }

  /** Add a chat line; `who` null for a notice. */
  addChat(who, text, pid = 0) {
    const log = $("chat-log");
    const li = document.createElement("li");
    if (who === null) {
      li.className = "notice";
      li.textContent = text;
    } else {
      const name = document.createElement("b");
      name.textContent = who;
      name.style.color = playerColor(pid);
      li.append(name, document.createTextNode(` ${text}`));
    }
    this.chatLines.push(who === null ? text : `${who}: ${text}`);
    if (this.chatLines.length > CHAT_KEEP) this.chatLines.shift();
    const stick = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    log.append(li);
    while (log.childElementCount > CHAT_KEEP) log.firstElementChild.remove();
    if (stick) log.scrollTop = log.scrollHeight;
  }

  onEvent(kind, body) {
    const room = this.room;
    if (kind === "chat") {
      const [pid, name, text] = body;
      this.addChat(name, text, pid);
    } else if (kind === "joined") {
      if (room && body[0] !== room.playerId) this.addChat(null, `${body[1]} joined.`);
    } else if (kind === "left") {
      this.addChat(null, `${body[1]} left.`);
    }
  }

  /**
   * The reconnection banner over the field, with a live countdown to the next attempt
   * (the SDK's statusInfo.retryAt) and "Retry now"; hidden unless reconnecting.
   */
  updateReconnecting(now) {
    const room = this.room;
    const banner = $("reconnect-banner");
    const on = room?.status === "reconnecting";
    if (banner.hidden === on) banner.hidden = !on;
    if (!on) return;
    const info = room.statusInfo;
    const left = Math.max(0, (info.retryAt ?? now) - now);
    const text = left > 50 ? `Reconnecting… next try in ${(left / 1000).toFixed(1)} s`
      : "Reconnecting… trying now";
    if ($("reconnect-text").textContent !== text) $("reconnect-text").textContent = text;
    const why = `${info.text ?? ""} Attempt ${info.attempt ?? 1}.`.trim();
    if ($("reconnect-why").textContent !== why) $("reconnect-why").textContent = why;
  }

  setOverlay(text, busy = true) {
    const overlay = $("overlay");
    overlay.hidden = !text;
    $("overlay-text").textContent = text || "";
    overlay.classList.toggle("busy", busy);
  }
}
