// Crazy Eights in the browser: matchmaking, the table from the `Table` entity, players
// from `Seat`s, cards from `Card`s, moves as room messages. Rules and turns are the
// server's (gameserver/games/cards.py), and so is privacy: the faces (rank, suit) of
// other players' cards and of the draw pile never reach this page; they are null here.
// ?room=ID joins a room; ?watch=ID watches one as a spectator (every hand face down).

import { Client } from "/sdk/gameserver.js";

const $ = (id) => document.getElementById(id);
const GAME = "cards";
const NAME_KEY = "gameserver.name"; // shared with the lobby
const EIGHT = 8;
const RANKS = { 1: "A", 11: "J", 12: "Q", 13: "K" };
const SUITS = { C: "♣", D: "♦", H: "♥", S: "♠" };
const SUIT_NAMES = { C: "clubs", D: "diamonds", H: "hearts", S: "spades" };

const client = new Client({ game: GAME });
let room = null;
let choosing = 0; // the id of the eight waiting for a suit, 0: none
let messageTimer = null;

// -- screens and messages ----------------------------------------------------------

function show(screen) {
  const watching = Boolean(room?.spectator);
  $("start").hidden = screen !== "start";
  $("game").hidden = screen !== "game";
  $("watching").hidden = !watching;
  $("play-buttons").hidden = watching;
  $("share").hidden = watching;
  $("hand").hidden = watching;
  $("draw").disabled = watching;
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

function follow(status) {
  room.onStateChange(render);
  room.onStatus((s, info) => {
    if (s === "reconnecting") setStatus(`reconnecting (attempt ${info.attempt})…`, true);
    else if (s === "playing") setStatus(status);
  });
  setStatus(status);
  say("");
  show("game");
  render();
}

/** how: "quick", "private" or a room id (from a shared link or the lobby). */
async function join(how) {
  if (room) return;
  say(how === "quick" || how === "private" ? "Finding a game…" : `Joining room ${how}…`);
  for (const b of $("start").querySelectorAll("button")) b.disabled = true;
  const options = { name: playerName(), options: { players: Number($("players").value) } };
  try {
    room = how === "quick" ? await client.joinOrCreate(GAME, options)
      : how === "private" ? await client.create(GAME, { ...options, private: true })
        : await client.join(how, { name: options.name });
  } catch (err) {
    history.replaceState(null, "", location.pathname);
    showStart(err.message);
    return;
  }
  history.replaceState(null, "", `?room=${encodeURIComponent(room.id)}`);
  $("share-link").value = location.href;
  room.onError((code, message) => say(message, 4000)); // a refused move: why
  room.onLeave((code, text, consented) => {
    if (!consented) showStart(text);
  });
  follow("connected");
}

/** Watch room `roomId`: the table, every hand's size, the discard pile; no moves. */
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
  document.title = "Watching · Crazy Eights · gameserver";
  $("watch-room").textContent = room.id;
  room.onLeave((code, text, consented) => {
    if (!consented) {
      setStatus("ended", true);
      say(text);
    }
  });
  follow("watching");
}

function showStart(message = "") {
  room = null;
  choosing = 0;
  history.replaceState(null, "", location.pathname);
  for (const b of $("start").querySelectorAll("button")) b.disabled = false;
  setStatus("");
  say(message);
  show("start");
}

// -- what the page knows ---------------------------------------------------------------

const table = () => room?.state?.ofType("Table")[0]?.values ?? null;
const seats = () => (room?.state?.ofType("Seat") ?? []).map((e) => e.values)
  .sort((a, b) => a.position - b.position);
const allCards = () => (room?.state?.ofType("Card") ?? []).map((e) => ({ id: e.id, ...e.values }));
const nameOf = (pid) => seats().find((s) => s.pid === pid)?.name ?? "?";

function hand() {
  const me = room?.playerId;
  if (!me) return [];
  return allCards().filter((c) => c.owner === me && c.place === "hand")
    .sort((a, b) => a.order - b.order);
}

function topCard() {
  const t = table();
  return t?.top ? allCards().find((c) => c.id === t.top) ?? null : null;
}

/** The rule, from what we know: may the player to move play this card now? */
function playable(card, t = table(), top = topCard()) {
  if (!t || t.state !== "playing" || !top || card.rank === null) return false;
  if (t.drawn && t.drawn !== card.id) return false;
  return card.rank === EIGHT || card.suit === t.suit || card.rank === top.rank;
}

const myTurn = () => {
  const t = table();
  return Boolean(t && room && !room.spectator && t.state === "playing" && t.turn === room.playerId);
};

// -- drawing -------------------------------------------------------------------------

function face(card, tag = "div") {
  const el = document.createElement(tag);
  el.className = `card ${card.suit === "H" || card.suit === "D" ? "red" : "black"}`;
  const rank = document.createElement("span");
  rank.textContent = RANKS[card.rank] ?? String(card.rank);
  const suit = document.createElement("span");
  suit.className = "s";
  suit.textContent = SUITS[card.suit] ?? "?";
  el.append(rank, suit);
  el.setAttribute("aria-label", `${RANKS[card.rank] ?? card.rank} of ${SUIT_NAMES[card.suit]}`);
  return el;
}

/** Rebuild a container's children only when what they show changed (`sig`): a card is
 * not replaced under the pointer by an identical one at every update. */
function fill(container, sig, build) {
  if (container.dataset.sig === sig) return;
  container.dataset.sig = sig;
  container.replaceChildren(...build());
}

function render() {
  const t = table();
  if (!t) return;
  const me = room.playerId;
  const cards = allCards();
  const counts = new Map();
  for (const c of cards) if (c.place === "hand") counts.set(c.owner, (counts.get(c.owner) ?? 0) + 1);

  const seatList = seats();
  const seatSig = JSON.stringify([me, t.turn, seatList.map((s) => [s.pid, s.name, s.connected,
    s.wins, counts.get(s.pid) ?? 0])]);
  fill($("seats"), seatSig, () => seatList.map((s) => {
    const el = document.createElement("div");
    el.className = `seat${s.pid === t.turn ? " to-move" : ""}${s.connected ? "" : " away"}`;
    el.dataset.pid = s.pid;
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = s.pid === me ? `${s.name} (you)` : s.name + (s.connected ? "" : " (away)");
    const backs = document.createElement("span");
    backs.className = "backs";
    const n = counts.get(s.pid) ?? 0;
    for (let i = 0; i < Math.min(n, 8); i++) {
      const back = document.createElement("span");
      back.className = "back";
      backs.append(back);
    }
    const count = document.createElement("span");
    count.className = "n";
    count.textContent = n;
    count.title = "cards in hand";
    const wins = document.createElement("span");
    wins.className = "wins";
    wins.textContent = s.wins;
    wins.title = "rounds won";
    el.append(who, backs, count, wins);
    return el;
  }));

  const top = topCard();
  const topSig = top && top.rank !== null ? `${top.id}:${top.rank}${top.suit}` : "";
  fill($("discard"), topSig, () => (topSig ? [face(top)] : []));
  $("draw-count").textContent = t.draw_count;
  $("follow").textContent = t.suit ? `${SUITS[t.suit]} ${SUIT_NAMES[t.suit]}` : "";
  $("follow").classList.toggle("red", t.suit === "H" || t.suit === "D");
  $("follow").title = "the suit to follow";

  const mine = myTurn();
  $("draw").disabled = room.spectator || !mine || Boolean(t.drawn) || t.draw_count === 0;
  $("hand").classList.toggle("idle", !mine);
  const held = hand();
  const handSig = JSON.stringify(held.map((c) => [c.id, c.rank, c.suit,
    mine && playable(c, t, top), c.id === t.drawn]));
  fill($("hand"), handSig, () => held.map((c) => {
    const el = face(c, "button");
    el.type = "button";
    el.dataset.id = c.id;
    if (mine && playable(c, t, top)) el.classList.add("playable");
    if (c.id === t.drawn) el.classList.add("drawn");
    el.addEventListener("click", () => clickCard(c.id));
    return el;
  }));
  if (choosing && !(mine && hand().some((c) => c.id === choosing))) choosing = 0;
  $("suits").hidden = !choosing;

  $("turn").textContent = turnText(t, me);
  const seat = seats().find((s) => s.pid === me);
  $("pass").hidden = !mine || !(t.drawn || t.draw_count === 0);
  $("rematch").hidden = t.state !== "over" || room.spectator;
  $("rematch").disabled = Boolean(seat?.rematch);
  $("rematch").textContent = seat?.rematch ? "Waiting for the others…" : "Rematch";
}

const REASONS = { out: "no cards left", forfeit: "the others left", blocked: "nobody could move" };

function turnText(t, me) {
  if (t.state === "waiting") {
    const missing = t.players - seats().length;
    const over = t.winner ? ` ${resultText(t, me)}.` : "";
    return `Waiting for ${missing} more player${missing === 1 ? "" : "s"}…${over}`;
  }
  if (t.state === "playing") {
    if (t.turn !== me) return `${nameOf(t.turn)}'s turn`;
    if (t.drawn) {
      const drawn = hand().find((c) => c.id === t.drawn);
      return drawn && playable(drawn, t) ? "Your turn: play the card you drew, or pass"
        : "The card you drew does not fit: pass";
    }
    if (t.draw_count === 0) return "Your turn: play a card, or pass (nothing to draw)";
    return "Your turn: play a card, or draw";
  }
  return `${resultText(t, me)}. Round ${t.round} is over.`;
}

function resultText(t, me) {
  if (t.winner === -1) return `Nobody wins (${REASONS[t.reason] ?? t.reason})`;
  const who = t.winner === me ? "You win" : `${nameOf(t.winner)} wins`;
  return `${who} (${REASONS[t.reason] ?? t.reason})`;
}

// -- moves -----------------------------------------------------------------------------

function clickCard(id) {
  if (!room || room.spectator) return;
  const card = hand().find((c) => c.id === id);
  if (!card) return;
  if (card.rank === EIGHT && myTurn() && playable(card)) {
    choosing = id; // an eight: ask for the suit first
    $("suits").hidden = false;
    return;
  }
  room.send("play", { card: id }); // the server says why if it does not fit
}

function chooseSuit(suit) {
  if (!choosing || !room) return;
  room.send("play", { card: choosing, suit });
  choosing = 0;
  $("suits").hidden = true;
}

// -- wiring --------------------------------------------------------------------------

try {
  $("name").value = localStorage.getItem(NAME_KEY) || "";
} catch {
  // storage disabled
}
$("quick-play").addEventListener("click", () => join("quick"));
$("create").addEventListener("click", () => join("private"));
$("draw").addEventListener("click", () => room?.send("draw", null));
$("pass").addEventListener("click", () => room?.send("pass", null));
for (const b of $("suits").querySelectorAll("button[data-suit]")) {
  b.addEventListener("click", () => chooseSuit(b.dataset.suit));
}
$("suit-cancel").addEventListener("click", () => {
  choosing = 0;
  $("suits").hidden = true;
});
$("rematch").addEventListener("click", () => room?.send("rematch", null));
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

// A read-only view for tests and debugging: only what this page was sent.
window.__game = {
  state: () => {
    const t = table();
    const top = topCard();
    const me = room?.playerId ?? 0;
    return {
      screen: $("game").hidden ? "start" : "game",
      status: room?.status ?? "idle",
      roomId: room?.id ?? null,
      playerId: me,
      spectator: Boolean(room?.spectator),
      statusText: $("status").textContent,
      message: $("message").hidden ? "" : $("message").textContent,
      table: t && { ...t },
      seats: seats().map((s) => ({ ...s })),
      hand: hand().map((c) => ({ id: c.id, rank: c.rank, suit: c.suit, playable: myTurn() && playable(c, t, top) })),
      top: top && { id: top.id, rank: top.rank, suit: top.suit },
      // Faces this page holds for cards neither in its hand nor on the discard pile: 0.
      hiddenFaces: allCards().filter((c) => c.place !== "discard" && !(me && c.owner === me)
        && (c.rank !== null || c.suit !== null)).length,
      cards: allCards().length,
      choosingSuit: !$("suits").hidden,
      turnText: $("turn").textContent,
      shareLink: $("share-link").value,
    };
  },
};
