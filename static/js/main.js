// The app: lobby <-> game, shareable links (/?room=ID), the test hook. The
// connection, the replica, netcode and reconnection are the SDK's (/sdk/gameserver.js).
// The lobby plays arena here and lists every game the server hosts (GET /games): the
// ones with a page of their own (/play/<game>/) are played there. Every listed room
// can be watched as a spectator (/?watch=ID here, <page>?watch=ID on a game's page).

import { Client } from "/sdk/gameserver.js";

import { GameView } from "./game.js";

const $ = (id) => document.getElementById(id);
const GAME = "arena";
const NAME_KEY = "gameserver.name";
const WORLD_KEY = "gameserver.arena.world"; // the lobby's last World choice
const ROOMS_EVERY_MS = 2000;

const client = new Client({ game: GAME }); // this page's server
const app = {
  screen: "lobby",
  room: null,
  busy: false,
  lobbyMessage: "",
  lobbyMessageKind: "",
  roomsTimer: null,
  rooms: [],
  games: [GAME], // until GET /games answers
  pages: {}, // game -> its page's URL
};
const view = new GameView();

// -- name ----------------------------------------------------------------------

function storedName() {
  try {
    return localStorage.getItem(NAME_KEY) || "";
  } catch {
    return ""; // storage disabled
  }
}

/** The lobby's World choice ("small" or "large"), remembered for the next visit. */
function currentWorld() {
  const world = $("world").value === "large" ? "large" : "small";
  try {
    localStorage.setItem(WORLD_KEY, world);
  } catch {
    // not remembered, still used
  }
  return world;
}

function currentName() {
  const input = $("name");
  let name = input.value.trim().slice(0, 24);
  if (!name) {
    name = `Guest ${Math.floor(100 + Math.random() * 900)}`;
    input.value = name;
  }
  try {
    localStorage.setItem(NAME_KEY, name);
  } catch {
    // not remembered, still used
  }
  return name;
}

// -- lobby -----------------------------------------------------------------------

function setLobbyMessage(text, kind = "error") {
  app.lobbyMessage = text || "";
  app.lobbyMessageKind = text ? kind : "";
  const banner = $("lobby-message");
  banner.hidden = !text;
  banner.textContent = text || "";
  banner.className = `banner ${kind}`;
}

function setBusy(busy) {
  app.busy = busy;
  for (const el of document.querySelectorAll("#lobby button, #lobby input, #lobby select")) {
    el.disabled = busy;
  }
}

function showLobby(message, kind = "error") {
  app.screen = "lobby";
  $("game").hidden = true;
  $("lobby").hidden = false;
  document.title = "Arena · gameserver";
  setLobbyMessage(message, kind);
  setBusy(false);
  refreshRooms();
  clearInterval(app.roomsTimer);
  app.roomsTimer = setInterval(refreshRooms, ROOMS_EVERY_MS);
}

async function loadGames() {
  try {
    const resp = await fetch("/games");
    if (!resp.ok) return;
    const answer = await resp.json();
    app.games = answer.games;
    app.pages = answer.pages ?? {};
  } catch {
    return; // the room list says the server can't be reached
  }
  $("game-list").replaceChildren(...app.games.map((game) => {
    const li = document.createElement("li");
    const name = document.createElement("code");
    name.textContent = game;
    let action;
    if (game === GAME) {
      action = document.createElement("span");
      action.className = "muted";
      action.textContent = "on this page";
    } else if (app.pages[game]) {
      action = document.createElement("a");
      action.className = "play";
      action.id = `play-${game}`;
      action.href = app.pages[game];
      action.textContent = `Play ${game} →`;
    } else {
      action = document.createElement("span");
      action.className = "muted";
      action.textContent = "no browser page (SDK or API)";
    }
    li.append(name, action);
    return li;
  }));
  refreshRooms();
}

/** Where a listed room is played: here (arena), its game's page, or nowhere in a browser. */
function joinRoom(room) {
  if (room.game === GAME) join({ mode: "join", room_id: room.room_id });
  else location.assign(`${app.pages[room.game]}?room=${encodeURIComponent(room.room_id)}`);
}

/** Watch a listed room as a spectator: here (arena) or on its game's page. */
function watchRoom(room) {
  if (room.game === GAME) watch(room.room_id);
  else location.assign(`${app.pages[room.game]}?watch=${encodeURIComponent(room.room_id)}`);
}

async function refreshRooms() {
  if (app.screen !== "lobby") return;
  const status = $("rooms-status");
  try {
    const games = app.games.filter((g) => g === GAME || app.pages[g]);
    app.rooms = (await Promise.all(games.map((g) => client.listRooms(g)))).flat();
    status.textContent = `updated ${new Date().toLocaleTimeString()}`;
    status.classList.remove("bad");
  } catch {
    status.textContent = "can't reach the server";
    status.classList.add("bad");
    return;
  }
  const list = $("room-list");
  if (!app.rooms.length) {
    const li = document.createElement("li");
    li.className = "empty";
    li.textContent = "No public rooms yet. Quick play or create one!";
    list.replaceChildren(li);
    return;
  }
  list.replaceChildren(...app.rooms.map((room) => {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "room";
    button.dataset.room = room.room_id;
    // Reserved seats (players on their way in) count: `joinable` says so.
    const full = room.joinable === undefined ? room.players >= room.max_players
      : !room.joinable && !room.locked;
    button.dataset.game = room.game;
    button.disabled = app.busy || full || room.locked;
    const id = document.createElement("code");
    id.textContent = room.room_id;
    const mode = document.createElement("span");
    mode.className = "mode";
    let kind = room.game === GAME ? room.metadata?.mode || room.game : room.game;
    if (room.game === GAME && room.metadata?.world === "large") kind += " · large";
    mode.textContent = room.locked ? "locked" : full ? "full" : kind;
    const count = document.createElement("span");
    count.className = "count";
    count.textContent = `${room.players} / ${room.max_players}`;
    const go = document.createElement("span");
    go.className = "go";
    go.textContent = "Join →";
    button.append(id, mode, count);
    // A server with spectators lists how many watch each room; any room can be watched.
    const watchable = room.spectators !== undefined;
    if (watchable) {
      const watchers = document.createElement("span");
      watchers.className = "watchers";
      watchers.title = "spectators";
      watchers.textContent = `${room.spectators} watching`;
      button.append(watchers);
    }
    button.append(go);
    button.addEventListener("click", () => joinRoom(room));
    li.append(button);
    if (watchable) {
      const watchButton = document.createElement("button");
      watchButton.type = "button";
      watchButton.className = "watch";
      watchButton.dataset.watch = room.room_id;
      watchButton.dataset.game = room.game;
      watchButton.disabled = app.busy;
      watchButton.textContent = "Watch";
      watchButton.title = `Watch room ${room.room_id} without playing`;
      watchButton.addEventListener("click", () => watchRoom(room));
      li.append(watchButton);
    }
    return li;
  }));
}

// -- playing -----------------------------------------------------------------------

/**
 * Matchmake (`request`: {mode, room_id?, private?, world?}) and enter the game, or back to
 * the lobby. `world` "large" asks for (or creates) a room of the large world; the small
 * world is the default (no option sent, so it matches rooms created by any client).
 */
async function join(request) {
  if (app.busy || app.room) return;
  setBusy(true);
  setLobbyMessage(request.room_id ? `Joining room ${request.room_id}…` : "Finding a room…", "info");
  const options = { name: currentName() };
  if (request.world === "large" && !request.room_id) options.options = { world: "large" };
  let room;
  try {
    if (request.mode === "create") room = await client.create(GAME, { ...options, private: request.private });
    else if (request.room_id) room = await client.join(request.room_id, options);
    else room = await client.joinOrCreate(GAME, options);
  } catch (err) {
    if (request.room_id) $("join-id").value = request.room_id;
    history.replaceState(null, "", "/");
    showLobby(err.message);
    return;
  }
  wire(room);
  enterGame(room);
}

/** Watch arena room `roomId` as a spectator: everyone drawn, no avatar of ours, no input. */
async function watch(roomId) {
  if (app.busy || app.room) return;
  setBusy(true);
  setLobbyMessage(`Joining room ${roomId} as a spectator…`, "info");
  let room;
  try {
    room = await client.spectate(roomId, { game: GAME });
  } catch (err) {
    history.replaceState(null, "", "/");
    showLobby(err.message);
    return;
  }
  wire(room);
  enterGame(room);
}

/** The game screen's reactions to a room's life (a player's or a spectator's). */
function wire(room) {
  room.onStatus((status, info) => {
    if (app.room !== room) return;
    // The banner over the field (game.js) counts down to the next attempt every frame.
    if (status === "reconnecting" || status === "playing") {
      view.setOverlay(null);
      view.updateReconnecting(performance.now());
    }
  });
  room.onReconnect(() => {
    if (app.room !== room) return;
    view.addChat(null, "Reconnected.");
    updateTopbar(room);
  });
  room.onEvent((body, kind) => {
    if (app.room === room) view.onEvent(kind, body);
  });
  room.onError((code, message) => {
    if (app.room === room) view.addChat(null, `Server: ${message} (${code})`);
  });
  room.onLeave((code, text, consented) => {
    // A leave of our own (the Leave button, closing the page) is handled where it is made.
    if (app.room === room && !consented) endGame(text);
  });
}

function updateTopbar(room) {
  const kind = room.spectator ? "watching" : room.private ? "private" : "public";
  $("room-id").textContent = room.id;
  $("room-kind").textContent = kind;
  $("room-kind").className = `badge ${kind}`;
  $("share-link").value = shareLink(room.id, room.spectator);
  $("leave").textContent = room.spectator ? "Back to lobby" : "Leave";
  $("leave").classList.toggle("danger", !room.spectator);
}

function shareLink(roomId, watching = false) {
  return `${location.origin}/?${watching ? "watch" : "room"}=${encodeURIComponent(roomId)}`;
}

function enterGame(room) {
  app.room = room;
  app.screen = "game";
  clearInterval(app.roomsTimer);
  setBusy(false);
  setLobbyMessage("");
  $("lobby").hidden = true;
  $("game").hidden = false;
  document.title = `Arena · ${room.spectator ? "watching " : ""}room ${room.id}`;
  updateTopbar(room);
  history.replaceState(null, "", `/?${room.spectator ? "watch" : "room"}=${encodeURIComponent(room.id)}`);
  view.setOverlay(null);
  view.attach(room);
}

function endGame(text, kind = "error") {
  view.detach();
  view.setOverlay(null);
  app.room = null;
  history.replaceState(null, "", "/");
  showLobby(text, kind);
}

function leaveRoom() {
  const room = app.room;
  if (!room) return;
  room.leave();
  endGame(room.spectator ? `You stopped watching room ${room.id}.` : `You left room ${room.id}.`, "info");
}

// -- wiring --------------------------------------------------------------------------

function init() {
  $("name").value = storedName();
  $("name").addEventListener("change", () => currentName());
  try {
    if (localStorage.getItem(WORLD_KEY) === "large") $("world").value = "large";
  } catch {
    // storage disabled: the default world
  }
  $("world").addEventListener("change", () => currentWorld());
  $("quick-play").addEventListener("click", () =>
    join({ mode: "join_or_create", world: currentWorld() }));
  $("create-room").addEventListener("click", () =>
    join({ mode: "create", private: $("create-private").checked, world: currentWorld() }));
  $("join-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const id = $("join-id").value.trim();
    if (!id) {
      setLobbyMessage("Enter a room id to join, or pick a room from the list.");
      return;
    }
    join({ mode: "join", room_id: id });
  });
  $("refresh-rooms").addEventListener("click", refreshRooms);
  $("leave").addEventListener("click", leaveRoom);
  $("copy-link").addEventListener("click", async () => {
    const input = $("share-link");
    try {
      await navigator.clipboard.writeText(input.value);
      $("copy-link").textContent = "Copied!";
    } catch {
      input.select(); // no clipboard access (plain http on a LAN): let the player copy it
      $("copy-link").textContent = "Press Ctrl+C";
    }
    setTimeout(() => { $("copy-link").textContent = "Copy link"; }, 1500);
  });
  // Leave cleanly on page close: LEAVE + close 1000, so the seat is freed at once.
  window.addEventListener("pagehide", () => app.room?.leave());
  // Back from the back/forward cache: that room was left on pagehide; rejoin it.
  window.addEventListener("pageshow", (e) => {
    const room = app.room;
    if (!e.persisted || !room) return;
    endGame("");
    if (room.spectator) watch(room.id);
    else join({ mode: "join", room_id: room.id });
  });

  const query = new URLSearchParams(location.search);
  showLobby("");
  loadGames();
  if (query.get("watch")) watch(query.get("watch"));
  else if (query.get("room")) join({ mode: "join", room_id: query.get("room") });
}

// A read-only window into the client for tests and debugging (no pixel-peeping).
window.__game = {
  state() {
    const s = app.room;
    const now = performance.now();
    const p = s?.predictor;
    const ownEntity = s?.ownEntity();
    return {
      screen: app.screen,
      lobbyMessage: app.lobbyMessage,
      lobbyMessageKind: app.lobbyMessageKind,
      rooms: app.rooms.map((r) => ({ ...r })),
      games: [...app.games],
      pages: { ...app.pages },
      status: s ? s.status : "idle",
      statusInfo: s ? { ...s.statusInfo } : {},
      roomId: s?.id ?? null,
      private: s?.private ?? false,
      spectator: Boolean(s?.spectator),
      playerId: s?.playerId ?? 0,
      name: s?.name ?? null,
      shareLink: s?.id ? shareLink(s.id, s.spectator) : null,
      reconnects: s?.reconnects ?? 0,
      canResume: Boolean(s?.reconnectToken),
      own: p?.ready ? { x: p.state.x, y: p.state.y } : null,
      // A reconnection's correction being blended in (the SDK's Predictor), and its offset.
      blending: Boolean(p?.blend),
      ownOffset: p ? { ...p.offset } : null,
      reconnectBanner: $("reconnect-banner").hidden ? null : {
        text: $("reconnect-text").textContent, why: $("reconnect-why").textContent },
      touch: document.body.classList.contains("touch"),
      avatarRadius: view.renderer.avatarR,
      ownRendered: view.rendered.own,
      ownServer: ownEntity ? { x: ownEntity.values.x, y: ownEntity.values.y } : null,
      others: view.rendered.others.map((o) => ({ ...o })),
      avatars: view.avatars().map((a) => ({ ...a.values })),
      orbs: s?.state ? s.state.ofType("Orb").length : 0,
      world: s?.config?.world ?? null,
      seq: p?.seq ?? 0,
      ack: p?.ack ?? 0,
      maxCorrection: p?.maxCorrection ?? 0,
      hud: s?.config ? view.hud(now) : null,
      showServer: view.showServer,
      camera: view.cameraState(),
      chat: [...view.chatLines],
      config: s?.config ? { ...s.config } : null,
    };
  },
};

init();
