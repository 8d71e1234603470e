// The live monitor: polls the admin API every second and renders rooms, players and state.
// Everything from the server is inserted as text (names and metadata are player-controlled).

const TOKEN_KEY = "gameserver.adminToken";
const POLL_MS = 1000;
const MAX_ROWS_PER_TYPE = 200;

const $ = (id) => document.getElementById(id);

const state = {
  token: sessionStorage.getItem(TOKEN_KEY) || "",
  selected: null, // room id shown in the detail panel
  timer: null,
  confirmDispose: null, // timeout id while the dispose button waits for a second click
};

class Unauthorized extends Error {}

async function api(path, options = {}) {
  const controller = new AbortController();
  const timeout = setTimeout(() => controller.abort(), 5000);
  try {
    const response = await fetch(path, {
      ...options,
      signal: controller.signal,
      cache: "no-store",
      headers: {
        Authorization: `Bearer ${state.token}`,
        ...(options.body ? { "Content-Type": "application/json" } : {}),
      },
    });
    if (response.status === 401) throw new Unauthorized();
    const body = await response.json().catch(() => ({}));
    return { status: response.status, body };
  } finally {
    clearTimeout(timeout);
  }
}

// -- formatting ------------------------------------------------------------------------

function bytes(n) {
  if (n === null || n === undefined) return "–";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

function rate(n) {
  return n === null || n === undefined ? "–" : `${bytes(Math.round(n))}/s`;
}

function ms(n) {
  return `${n < 10 ? n.toFixed(2) : n.toFixed(1)} ms`;
}

function age(createdAt, now) {
  let s = Math.max(0, Math.round(now - createdAt));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  s %= 60;
  if (m < 60) return `${m}m ${String(s).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, "0")}m`;
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function badge(text, kind = "") {
  return el("span", { class: `badge ${kind}`, text });
}

// -- screens ---------------------------------------------------------------------------

function showLogin(message = "") {
  stopPolling();
  $("board").hidden = true;
  $("summary").hidden = true;
  $("login").hidden = false;
  $("login-error").hidden = !message;
  $("login-error").textContent = message;
  $("token").focus();
}

function showBoard() {
  $("login").hidden = true;
  $("board").hidden = false;
  $("summary").hidden = false;
}

function banner(message) {
  $("banner").hidden = !message;
  $("banner").textContent = message || "";
}

// -- the rooms table -------------------------------------------------------------------

function renderRooms(data) {
  const now = data.time;
  const tbody = $("rooms").querySelector("tbody");
  const rows = data.rooms.map((room) => {
    const tickClass = room.achieved_rate !== null && room.achieved_rate < room.tick_rate * 0.9
      ? "num warn" : "num";
    const p99Class = room.tick_p99_ms > 1000 / room.tick_rate ? "num warn" : "num";
    const name = el("td", { class: "room-cell" },
      el("span", { class: "mono", text: room.room_id }));
    if (room.private) name.append(" ", badge("private", "violet"));
    if (room.locked) name.append(" ", badge("locked", "amber"));
    const row = el("tr", {
      class: room.room_id === state.selected ? "selected" : "",
      tabindex: "0",
      "data-room": room.room_id,
      onclick: () => select(room.room_id),
      onkeydown: (event) => { if (event.key === "Enter") select(room.room_id); },
    },
    name,
    el("td", { text: room.game }),
    el("td", { class: "num", text: `${room.players} / ${room.max_players}` +
      (room.reconnecting ? ` (+${room.reconnecting})` : "") +
      (room.spectators ? `, ${room.spectators} watching` : "") }),
    el("td", { class: tickClass,
      text: `${room.achieved_rate === null ? "–" : room.achieved_rate.toFixed(1)} / ${room.tick_rate} Hz` }),
    el("td", { class: "num", text: ms(room.tick_p50_ms) }),
    el("td", { class: p99Class, text: ms(room.tick_p99_ms) }),
    el("td", { class: "num", text: rate(room.bytes_per_s) }),
    el("td", { class: "num", text: bytes(room.state_bytes) }),
    el("td", { class: "num", text: age(room.created_at, now) }));
    return row;
  });
  tbody.replaceChildren(...rows);
  $("no-rooms").hidden = data.rooms.length > 0;
  $("sum-rooms").textContent = `${data.rooms.length} room${data.rooms.length === 1 ? "" : "s"}`;
  $("sum-players").textContent = `${data.players} player${data.players === 1 ? "" : "s"}`;
  $("sum-state").textContent = data.accepting ? "accepting players" : "draining";
  $("sum-state").className = `pill ${data.accepting ? "ok" : "bad"}`;
  $("sum-updated").textContent = `updated ${new Date(now * 1000).toLocaleTimeString()}`;
}

// -- one room --------------------------------------------------------------------------

function select(roomId) {
  if (state.selected !== roomId) resetDispose();
  state.selected = roomId;
  for (const row of $("rooms").querySelectorAll("tbody tr")) {
    row.classList.toggle("selected", row.dataset.room === roomId);
  }
  $("detail").hidden = false;
  $("d-id").textContent = roomId;
  $("d-gone").hidden = true;
  $("d-dispose").disabled = false;
  refreshDetail();
}

function closeDetail() {
  state.selected = null;
  resetDispose();
  $("detail").hidden = true;
  for (const row of $("rooms").querySelectorAll("tbody tr.selected")) row.classList.remove("selected");
}

function renderDetail(room) {
  $("d-id").textContent = room.room_id;
  const badges = [badge(room.game, "teal")];
  if (room.private) badges.push(badge("private", "violet"));
  if (room.locked) badges.push(badge("locked", "amber"));
  $("d-badges").replaceChildren(...badges);

  const facts = [
    ["Players", `${room.players.filter((p) => p.connected).length} / ${room.max_players}` +
      (room.reconnecting ? `, ${room.reconnecting} reconnecting` : "")],
    ["Spectators", `${room.spectators}`],
    ["Tick", `${room.tick} at ${room.achieved_rate === null ? "–" : room.achieved_rate.toFixed(1)} of ${room.tick_rate} Hz`],
    ["Tick p50 / p99", `${ms(room.tick_p50_ms)} / ${ms(room.tick_p99_ms)}`],
    ["Overruns", String(room.tick_overruns)],
    ["Sent", `${rate(room.bytes_per_s)} (${bytes(room.bytes_sent)} in all)`],
    ["State", `${bytes(room.state_bytes)}, ${room.entities} entities`],
    ["Metadata", Object.keys(room.metadata).length ? JSON.stringify(room.metadata) : "–"],
    ["Options", Object.keys(room.options).length ? JSON.stringify(room.options) : "–"],
  ];
  $("d-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]));

  const rows = room.players.map((p) => el("tr", { "data-player": String(p.id) },
    el("td", { class: "num mono", text: String(p.id) }),
    el("td", { text: p.name }),
    el("td", {}, p.connected
      ? (p.behind ? badge("behind", "amber") : badge("connected", "green"))
      : badge("reconnecting", "amber")),
    el("td", { class: "num", text: String(p.ack) }),
    el("td", { class: "num", text: String(p.pending_inputs) }),
    el("td", { class: "actions" }, el("button", {
      type: "button", class: "small danger-ghost", text: "Kick",
      "aria-label": `kick ${p.name}`,
      onclick: (event) => kick(room.room_id, p, event.currentTarget),
    }))));
  $("d-players").querySelector("tbody").replaceChildren(...rows);
  $("d-players").hidden = rows.length === 0;
  $("d-no-players").hidden = rows.length > 0;
  renderState(room.state);
}

function renderState(world) {
  $("d-state-info").textContent = `tick ${world.tick} · ${world.entity_count} entities` +
    (world.truncated ? " (first ones shown)" : "");
  const byType = new Map();
  for (const [id, entity] of Object.entries(world.entities)) {
    const { type, ...fields } = entity;
    if (!byType.has(type)) byType.set(type, []);
    byType.get(type).push([id, fields]);
  }
  const blocks = [];
  for (const [type, items] of byType) {
    const columns = Object.keys(items[0][1]);
    const head = el("tr", {}, el("th", { class: "num", text: "id" }),
      ...columns.map((c) => el("th", { class: typeof items[0][1][c] === "number" ? "num" : "", text: c })));
    const body = items.slice(0, MAX_ROWS_PER_TYPE).map(([id, fields]) => el("tr", {},
      el("td", { class: "num mono", text: id }),
      ...columns.map((c) => el("td", {
        class: typeof fields[c] === "number" ? "num mono" : "",
        text: typeof fields[c] === "string" ? fields[c] : JSON.stringify(fields[c]),
      }))));
    const more = items.length > MAX_ROWS_PER_TYPE ? ` (first ${MAX_ROWS_PER_TYPE} of ${items.length})` : "";
    blocks.push(el("div", { class: "entity-type" },
      el("h4", {}, el("span", { text: type }), el("span", { class: "muted small", text: ` ${items.length}${more}` })),
      el("div", { class: "table-wrap" },
        el("table", { class: "grid compact" }, el("thead", {}, head), el("tbody", {}, ...body)))));
  }
  if (!blocks.length) blocks.push(el("p", { class: "empty", text: "The world is empty." }));
  $("d-state").replaceChildren(...blocks);
}

function markGone() {
  $("d-gone").hidden = false;
  $("d-dispose").disabled = true;
  for (const b of $("d-players").querySelectorAll("button")) b.disabled = true;
}

async function refreshDetail(listed = null) {
  const roomId = state.selected;
  if (!roomId || !$("d-gone").hidden) return;
  if (listed && !listed.has(roomId)) { // closed since: no need to ask
    markGone();
    return;
  }
  const { status, body } = await api(`/admin/rooms/${encodeURIComponent(roomId)}`);
  if (roomId !== state.selected) return;
  if (status === 404) markGone();
  else if (status === 200) renderDetail(body);
}

async function kick(roomId, player, button) {
  button.disabled = true;
  const { status, body } = await api(`/admin/rooms/${encodeURIComponent(roomId)}/kick`, {
    method: "POST",
    body: JSON.stringify({ player_id: player.id, reason: "kicked by an administrator" }),
  }).catch(handleError);
  banner(status === 200 ? `Kicked ${player.name} (player ${player.id}).`
    : `Kick failed: ${body?.message || status}`);
  await refreshDetail().catch(handleError);
}

function resetDispose() {
  clearTimeout(state.confirmDispose);
  state.confirmDispose = null;
  $("d-dispose").textContent = "Dispose room";
  $("d-dispose").classList.remove("armed");
}

async function dispose() {
  const roomId = state.selected;
  if (!roomId) return;
  if (!state.confirmDispose) { // first click arms the button; a second one within 4 s disposes
    $("d-dispose").textContent = "Click again to dispose";
    $("d-dispose").classList.add("armed");
    state.confirmDispose = setTimeout(resetDispose, 4000);
    return;
  }
  resetDispose();
  $("d-dispose").disabled = true;
  const { status, body } = await api(`/admin/rooms/${encodeURIComponent(roomId)}/dispose`,
    { method: "POST" }).catch(handleError);
  banner(status === 200 ? `Room ${roomId} disposed.` : `Dispose failed: ${body?.message || status}`);
  await poll();
}

// -- polling ---------------------------------------------------------------------------

function handleError(error) {
  if (error instanceof Unauthorized) {
    sessionStorage.removeItem(TOKEN_KEY);
    state.token = "";
    showLogin("That token was refused.");
  } else {
    banner("The server does not answer; retrying…");
  }
  return { status: 0, body: null };
}

async function poll() {
  try {
    const { status, body } = await api("/admin/rooms");
    if (status !== 200) throw new Error(`HTTP ${status}`);
    showBoard();
    if ($("banner").textContent.startsWith("The server does not answer")) banner("");
    renderRooms(body);
    await refreshDetail(new Set(body.rooms.map((r) => r.room_id)));
  } catch (error) {
    handleError(error);
  }
}

function startPolling() {
  stopPolling();
  const loop = async () => {
    await poll();
    if (state.token) state.timer = setTimeout(loop, POLL_MS);
  };
  loop();
}

function stopPolling() {
  clearTimeout(state.timer);
  state.timer = null;
}

$("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  state.token = $("token").value.trim();
  if (!state.token) return;
  sessionStorage.setItem(TOKEN_KEY, state.token);
  $("token").value = "";
  startPolling();
});
$("sign-out").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = "";
  closeDetail();
  showLogin();
});
$("d-close").addEventListener("click", closeDetail);
$("d-dispose").addEventListener("click", dispose);

if (state.token) startPolling();
else showLogin();
