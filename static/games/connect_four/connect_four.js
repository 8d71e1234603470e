// Connect Four in the browser: matchmaking, the board from the `Board` entity, players
// from `Seat` entities, moves as room messages. Rules, turns and the clock are the
// server's (gameserver/games/connect_four.py); the SDK does the socket and reconnection.
// ?room=ID joins a room; ?watch=ID watches one as a spectator (read-only: no seat, no
// moves; the lobby's Watch button leads here).

import { Client } from "/sdk/gameserver.js";

const $ = (id) => document.getElementById(id);
const GAME = "connect_four";
const COLS = 7;
const ROWS = 6;
const NAME_KEY = "gameserver.name"; // shared with the lobby

const client = new Client({ game: GAME });
let room = null;
let messageTimer = null;

// -- screens and messages ----------------------------------------------------------

function show(screen) {
  const watching = Boolean(room?.spectator);
  $("start").hidden = screen !== "start";
  $("game").hidden = screen !== "game";
  // Watching: read-only, no seat; only the way back to the lobby.
  $("watching").hidden = !watching;
  $("play-buttons").hidden = watching;
  $("share").hidden = watching;
  $("board").classList.toggle("watch", watching);
  $("board").setAttribute("aria-label", watching ? "Board" : "Board: tap a column to drop a disc");
  for (const column of $("board").querySelectorAll(".column")) column.disabled = watching;
}

function say(text, ms = 0) {
  clearTimeout(messageTimer);
  $("message").textContent = text;
  $("message").hidden = !text;
  if (text && ms) messageTimer = setTimeout(() => say(""), ms);
}

function setStatus(text, bad = false) {
  $("status").textContent = text;
  $("status").classList.toggle("bad", bad);
}

function playerName() {
  const name = $("name").value.trim() || `Guest ${Math.floor(100 + Math.random() * 900)}`;
  try {
    localStorage.setItem(NAME_KEY, name);
  } catch {
    // storage disabled: used, not remembered
  }
  return name;
}

// -- joining and leaving -----------------------------------------------------------

/** how: "quick", "private" or a room id (from a shared link). */
async function join(how) {
  if (room) return;
  say(how === "quick" || how === "private" ? "Finding a game…" : `Joining room ${how}…`);
  for (const b of $("start").querySelectorAll("button")) b.disabled = true;
  const options = { name: playerName() };
  try {
    room = how === "quick" ? await client.joinOrCreate(GAME, options)
      : how === "private" ? await client.create(GAME, { ...options, private: true })
        : await client.join(how, options);
  } catch (err) {
    history.replaceState(null, "", location.pathname);
    showStart(err.message);
    return;
  }
  history.replaceState(null, "", `?room=${encodeURIComponent(room.id)}`);
  $("share-link").value = location.href;
  say("");
  show("game");
  room.onStateChange(render);
  room.onError((code, message) => say(message, 3000)); // a refused move: why
  room.onStatus((status, info) => {
    if (status === "reconnecting") setStatus(`reconnecting (attempt ${info.attempt})…`, true);
    else if (status === "playing") setStatus("connected");
  });
  room.onLeave((code, text, consented) => {
    if (!consented) showStart(text);
  });
  setStatus("connected");
  render();
}

/** Watch room `roomId` as a spectator: the same board, names, turn and result; no moves. */
async function watch(roomId) {
  if (room) return;
  say(`Joining room ${roomId} as a spectator…`);
  try {
    room = await client.spectate(roomId, { game: GAME });
  } catch (err) {
    showStart(err.message);
    return;
  }
  history.replaceState(null, "", `?watch=${encodeURIComponent(room.id)}`);
  document.title = "Watching · Connect Four · gameserver";
  $("watch-room").textContent = room.id;
  say("");
  show("game");
  room.onStateChange(render);
  room.onStatus((status, info) => {
    if (status === "reconnecting") setStatus(`reconnecting (attempt ${info.attempt})…`, true);
    else if (status === "playing") setStatus("watching");
  });
  room.onLeave((code, text, consented) => {
    // The room closed (or we could not come back): keep the last board, say why.
    if (!consented) {
      setStatus("ended", true);
      say(text);
    }
  });
  setStatus("watching");
  render();
}

function showStart(message = "") {
  room = null;
  history.replaceState(null, "", location.pathname);
  for (const b of $("start").querySelectorAll("button")) b.disabled = false;
  setStatus("");
  say(message);
  show("start");
}

// -- drawing -------------------------------------------------------------------------

function buildBoard() {
  // One button per column (a click anywhere in it drops there), cells top row first.
  for (let col = 0; col < COLS; col++) {
    const column = document.createElement("button");
    column.type = "button";
    column.className = "column";
    column.dataset.col = col;
    column.setAttribute("aria-label", `Column ${col + 1}`);
    for (let row = ROWS - 1; row >= 0; row--) {
      const cell = document.createElement("span");
      cell.className = "cell";
      cell.dataset.cell = row * COLS + col;
      column.append(cell);
    }
    column.addEventListener("click", () => {
      if (room && !room.spectator) room.send("drop", col);
    });
    $("board").append(column);
  }
}

const board = () => room?.state?.ofType("Board")[0]?.values ?? null;
const seats = () => (room?.state?.ofType("Seat") ?? []).map((e) => e.values).sort((a, b) => a.disc - b.disc);
const nameOf = (pid) => seats().find((s) => s.pid === pid)?.name ?? "?";

function render() {
  const b = board();
  if (!b) return;
  const me = room.playerId;
  const line = new Set(b.line);
  for (const cell of $("board").querySelectorAll(".cell")) {
    const i = Number(cell.dataset.cell);
    cell.className = `cell d${b.cells[i]}${line.has(i) ? " win" : ""}${i === b.last ? " last" : ""}`;
  }
  const myTurn = b.state === "playing" && b.turn === me;
  $("board").classList.toggle("mine", myTurn);

  $("seats").replaceChildren(...seats().map((s) => {
    const card = document.createElement("div");
    card.className = `seat${s.pid === b.turn ? " to-move" : ""}${s.connected ? "" : " away"}`;
    const disc = document.createElement("span");
    disc.className = `disc d${s.disc}`;
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = s.pid === me ? `${s.name} (you)` : s.name + (s.connected ? "" : " (away)");
    const wins = document.createElement("span");
    wins.className = "wins";
    wins.textContent = s.wins;
    wins.title = "rounds won";
    card.append(disc, who, wins);
    return card;
  }));

  $("turn").textContent = turnText(b, me);
  const mine = seats().find((s) => s.pid === me);
  $("rematch").hidden = b.state !== "over" || room.spectator;
  $("rematch").disabled = Boolean(mine?.rematch);
  $("rematch").textContent = mine?.rematch ? "Waiting for the other player…" : "Rematch";
  $("resign").hidden = b.state !== "playing" || room.spectator;
}

const REASONS = { four: "four in a row", timeout: "out of time", resign: "resigned", forfeit: "the other player left" };

function turnText(b, me) {
  if (b.state === "waiting") {
    const over = b.winner ? ` ${resultText(b, me)}.` : "";
    return `Waiting for an opponent…${over}`;
  }
  if (b.state === "playing") {
    const who = b.turn === me ? "Your turn" : `${nameOf(b.turn)}'s turn`;
    return `${who} · ${b.seconds_left} s`;
  }
  return `${resultText(b, me)}. Round ${b.round} is over.`;
}

function resultText(b, me) {
  if (b.winner === -1) return "A draw";
  const who = b.winner === me ? "You win" : `${nameOf(b.winner)} wins`;
  return `${who} (${REASONS[b.reason] ?? b.reason})`;
}

// -- wiring --------------------------------------------------------------------------

buildBoard();
try {
  $("name").value = localStorage.getItem(NAME_KEY) || "";
} catch {
  // storage disabled
}
$("quick-play").addEventListener("click", () => join("quick"));
$("create").addEventListener("click", () => join("private"));
$("rematch").addEventListener("click", () => room?.send("rematch", null));
$("resign").addEventListener("click", () => room?.send("resign", null));
$("leave").addEventListener("click", () => {
  room?.leave();
  showStart("You left the game.");
});
$("share-link").addEventListener("focus", (e) => e.target.select());
window.addEventListener("pagehide", () => room?.leave()); // frees the seat at once

const query = new URLSearchParams(location.search);
if (query.get("watch")) watch(query.get("watch"));
else if (query.get("room")) join(query.get("room"));
else showStart();

// A read-only view for tests and debugging.
window.__game = {
  state: () => ({
    screen: $("game").hidden ? "start" : "game",
    status: room?.status ?? "idle",
    roomId: room?.id ?? null,
    playerId: room?.playerId ?? 0,
    spectator: Boolean(room?.spectator),
    watching: !$("watching").hidden,
    statusText: $("status").textContent,
    message: $("message").hidden ? "" : $("message").textContent,
    board: board() && { ...board() },
    seats: seats().map((s) => ({ ...s })),
    turnText: $("turn").textContent,
    shareLink: $("share-link").value,
  }),
};
