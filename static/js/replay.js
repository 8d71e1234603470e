// The replay player (/replay): a recording (gameserver --record) opened from a file or a
// same-origin URL, played with the SDK's openRecording() as if it were a live room. For
// the arena the field is drawn by the arena's own renderer (render.js) from the replay's
// room (following a player with its camera, where render.js has one, and a ring); other
// games show their entities as a table. Test hook: window.__replay.state().

import { openRecording } from "/sdk/gameserver.js";
import { playerColor, Renderer } from "./render.js";

const $ = (id) => document.getElementById(id);

let replay = null;
let renderer = null;
let avatars = null; // the room's Interpolator of the Avatars (arena)
let following = null; // the pid highlighted
let raf = 0;
let lastPanels = 0;

function status(text, error = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
}

function clock(ms) {
  const s = Math.max(0, ms) / 1000;
  return `${Math.floor(s / 60)}:${(s % 60).toFixed(1).padStart(4, "0")}`;
}

function isArena(r) {
  const cfg = r.room.config;
  return r.room.state.byType.has("Avatar") && r.room.state.byType.has("Orb")
    && cfg && typeof cfg.width === "number" && typeof cfg.height === "number";
}

function describe(event) {
  const b = event.body;
  if (Array.isArray(b)) {
    if (event.kind === "chat" && b.length >= 3) return `${b[1]}: ${b[2]}`;
    if ((event.kind === "joined" || event.kind === "left") && b.length >= 2) return `${b[1]} ${event.kind}`;
  }
  return `${event.kind} ${JSON.stringify(b)}`;
}

async function open(bytes, label) {
  let next;
  try {
    next = await openRecording(bytes);
  } catch (err) {
    status(`Couldn't open ${label}: ${err.message}`, true);
    return;
  }
  replay?.close();
  cancelAnimationFrame(raf);
  replay = next;
  following = null;
  const h = replay.header;
  const arena = isArena(replay);
  $("player").hidden = false;
  $("field").hidden = !arena;
  $("entities").hidden = arena;
  $("follow-hint").hidden = !arena;
  renderer = arena ? new Renderer($("view")) : null;
  avatars = arena ? replay.room.interpolate({ filter: (e) => e.type === "Avatar" }) : null;
  $("seek").min = String(replay.start);
  $("seek").max = String(replay.duration);
  $("info").textContent = `${h.game} · room ${h.room_id} · ${h.tick_rate} Hz · `
    + `${new Date(h.started * 1000).toISOString().replace("T", " ").slice(0, 19)} UTC`;
  status(`${label}: ${clock(replay.duration)}, ${replay.frames.length} frames, `
    + `${replay.events.length} events.`);
  const list = $("timeline");
  list.replaceChildren(...replay.events.map((e, i) => {
    const li = document.createElement("li");
    li.dataset.index = String(i);
    li.dataset.ms = String(e.ms);
    li.dataset.kind = e.kind;
    const at = document.createElement("span");
    at.className = "at";
    at.textContent = clock(e.ms);
    li.append(at, describe(e));
    li.title = `tick ${e.tick}: jump here`;
    return li;
  }));
  replay.onUpdate(() => panels(true));
  panels(true);
  const frame = () => {
    draw();
    panels(false);
    raf = requestAnimationFrame(frame);
  };
  raf = requestAnimationFrame(frame);
}

function draw() {
  if (!replay || !renderer) return;
  const room = replay.room;
  const shown = [...avatars.sample(performance.now()).values()].map((a) => ({
    pid: a.pid, name: a.name, score: a.score, x: a.x, y: a.y, own: false }));
  const orbs = room.state.ofType("Orb").map((o) => o.values);
  const f = shown.find((a) => a.pid === following);
  // Follow: the arena renderer's camera follows `focus` where it has one (the watch
  // mode's follow camera); a ring marks the player either way.
  const focus = f ? { key: `pid:${f.pid}`, x: f.x, y: f.y } : null;
  renderer.draw({ world: room.config, orbs, avatars: shown, raw: null, focus, now: performance.now() });
  if (f) {
    const ctx = renderer.ctx;
    const r = Math.max(5, room.config.player_radius * renderer.scale) + 6;
    ctx.beginPath();
    ctx.arc(renderer.ox + f.x * renderer.scale, renderer.oy + f.y * renderer.scale, r, 0, Math.PI * 2);
    ctx.lineWidth = 3;
    ctx.strokeStyle = "#2dd4bf";
    ctx.stroke();
  }
}

function panels(force) {
  if (!replay) return;
  const now = performance.now();
  if (!force && now - lastPanels < 100) return;
  lastPanels = now;
  $("play").textContent = replay.playing ? "Pause" : "Play";
  if (document.activeElement !== $("seek") || replay.playing) $("seek").value = String(Math.round(replay.time));
  $("time").textContent = `${clock(replay.time)} / ${clock(replay.duration)} · tick ${replay.tick}`;
  for (const li of $("timeline").children) li.classList.toggle("past", Number(li.dataset.ms) <= replay.time);
  const state = replay.room.state;
  if (renderer) {
    const rows = state.ofType("Avatar").map((a) => a.values)
      .sort((a, b) => b.score - a.score || a.pid - b.pid)
      .map((a) => {
        const li = document.createElement("li");
        li.dataset.pid = String(a.pid);
        li.classList.toggle("followed", a.pid === following);
        const dot = document.createElement("span");
        dot.className = "dot";
        dot.style.background = playerColor(a.pid);
        li.append(dot, `${a.name} · ${a.score}`);
        return li;
      });
    $("players").replaceChildren(...rows);
  } else {
    const body = $("entities").tBodies[0];
    body.replaceChildren(...[...state.entities.values()].map((e) => {
      const tr = document.createElement("tr");
      for (const text of [e.id, e.type, JSON.stringify(e.values)]) {
        const td = document.createElement("td");
        td.textContent = String(text);
        tr.append(td);
      }
      return tr;
    }));
  }
}

async function fetchUrl(url, token) {
  let target;
  try {
    target = new URL(url, location.origin);
  } catch {
    status(`Not a URL: ${url}`, true);
    return;
  }
  if (target.origin !== location.origin) {
    status("Only recordings on this server can be loaded (same origin).", true);
    return;
  }
  if (target.pathname.startsWith("/admin/") && !token) {
    status("This recording needs the admin token: paste it and press Load.", true);
    $("token").focus();
    return;
  }
  status(`Loading ${target.pathname}…`);
  try {
    const resp = await fetch(target.href, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
    if (!resp.ok) {
      status(`Couldn't load ${target.pathname}: HTTP ${resp.status} ${resp.statusText}`, true);
      return;
    }
    await open(await resp.arrayBuffer(), target.pathname.split("/").pop());
  } catch (err) {
    status(`Couldn't load ${target.pathname}: ${err.message}`, true);
  }
}

$("file").addEventListener("change", async (e) => {
  const file = e.target.files?.[0];
  if (file) await open(await file.arrayBuffer(), file.name);
});
$("url-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const url = $("url").value.trim();
  if (url) fetchUrl(url, $("token").value.trim());
});
$("play").addEventListener("click", () => {
  if (!replay) return;
  if (replay.playing) replay.pause();
  else replay.play();
});
$("speed").addEventListener("change", (e) => {
  if (replay) replay.speed = Number(e.target.value);
});
$("seek").addEventListener("input", (e) => replay?.seek(Number(e.target.value)));
$("timeline").addEventListener("click", (e) => {
  const li = e.target.closest("li");
  if (replay && li) replay.seek(Number(li.dataset.ms));
});
$("players").addEventListener("click", (e) => {
  const li = e.target.closest("li");
  if (!li) return;
  const pid = Number(li.dataset.pid);
  following = following === pid ? null : pid;
  panels(true);
});
window.addEventListener("keydown", (e) => {
  if (e.key === " " && replay && e.target === document.body) {
    e.preventDefault();
    $("play").click();
  }
});

const query = new URLSearchParams(location.search);
if (query.get("url")) {
  $("url").value = query.get("url");
  fetchUrl(query.get("url"), "");
}

// A read-only view for tests and debugging.
window.__replay = {
  state() {
    if (!replay) return { loaded: false, status: $("status").textContent };
    return {
      loaded: true,
      status: $("status").textContent,
      game: replay.header.game,
      roomId: replay.header.room_id,
      time: replay.time,
      duration: replay.duration,
      start: replay.start,
      tick: replay.tick,
      playing: replay.playing,
      speed: replay.speed,
      view: replay.room.state.view(),
      following,
      players: [...$("players").children].map((li) => li.textContent),
      timeline: [...$("timeline").children].map((li) => li.textContent),
      ticks: replay.frames.map((f) => [f.ms, f.message[2]]),
    };
  },
};
