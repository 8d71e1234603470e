// The game screen: canvas, HUD, scoreboard, chat, status overlay. Plugs the
// arena's rule into the SDK's Room (prediction of our avatar, interpolation of
// the others), reads it every frame and feeds it the input direction. A spectator's
// room (client.spectate()) is drawn the same way without an avatar of ours: every
// avatar interpolated, no input, no chat; the field already fits the window.

import { ownAvatar, step } from "./arena-rules.js";
import { Controls } from "./input.js";
import { playerColor, Renderer } from "./render.js";

const $ = (id) => document.getElementById(id);
const CHAT_KEEP = 120;

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
      }
    });
    if (window.matchMedia?.("(pointer: coarse)").matches) document.body.classList.add("touch");
    window.addEventListener("touchstart", () => document.body.classList.add("touch"),
      { once: true, passive: true });
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
    $("chat-input").placeholder = watching ? "Spectators can't chat" : "Press Enter to chat";
    this.addChat(null, watching ? `You are watching room ${room.id}.` : `You joined room ${room.id} as ${room.name}.`);
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
    document.body.classList.remove("watching");
    $("chat-input").disabled = false;
    $("chat-input").placeholder = "Press Enter to chat";
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
      for (const o of this.others.sample(now).values()) {
        avatars.push({ pid: o.pid, name: o.name, score: o.score, x: o.x, y: o.y, own: false });
        others.push({ pid: o.pid, name: o.name, x: o.x, y: o.y });
      }
      const own = room.spectator ? null : room.predicted(now);
      const ownEntity = room.spectator ? null : room.ownEntity();
      if (own && ownEntity) {
        avatars.push({ pid: room.playerId, name: ownEntity.values.name, score: ownEntity.values.score,
          x: own.x, y: own.y, own: true });
      }
      this.rendered = { own: own ? { x: own.x, y: own.y } : null, others };
      const raw = this.showServer
        ? this.avatars().map((a) => ({ x: a.values.x, y: a.values.y,
          own: !room.spectator && a.values.pid === room.playerId }))
        : null;
      const orbs = room.state.ofType("Orb").map((o) => o.values);
      this.renderer.draw({ world: cfg, orbs, avatars, raw });
    }
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
    const avatars = this.avatars().map((a) => a.values)
      .sort((a, b) => b.score - a.score || a.name.localeCompare(b.name) || a.pid - b.pid);
    const rows = avatars.map((a, i) => {
      const li = document.createElement("li");
      if (a.pid === room.playerId) li.className = "me";
      const rank = document.createElement("span");
      rank.className = "rank";
      rank.textContent = `${i + 1}`;
      const dot = document.createElement("span");
      dot.className = "dot";
      dot.style.background = playerColor(a.pid);
      const name = document.createElement("span");
      name.className = "who";
      name.textContent = a.pid === room.playerId ? `${a.name} (you)` : a.name;
      const score = document.createElement("span");
      score.className = "score";
      score.textContent = String(a.score);
      li.append(rank, dot, name, score);
      return li;
    });
    list.replaceChildren(...rows);
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

  setOverlay(text, busy = true) {
    const overlay = $("overlay");
    overlay.hidden = !text;
    $("overlay-text").textContent = text || "";
    overlay.classList.toggle("busy", busy);
  }
}
