// Wire constants (gameserver/protocol.py, docs/PROTOCOL.md) and the words the
// player sees for every error the server can report. Pure (no DOM).

export const PROTOCOL_VERSION = 1;

// Client -> server.
export const C_INPUT = 1; // [1, seq, [dx, dy]]
export const C_MESSAGE = 2; // [2, kind, body]
export const C_PING = 3; // [3, client_time]
export const C_LEAVE = 4; // [4]

// Server -> client.
export const S_WELCOME = 10; // [10, version, room_id, game, player_id, tick_rate, schema, config, reconnect_token]
export const S_SNAPSHOT = 11; // [11, ack, tick, entities, events]
export const S_DELTA = 12; // [12, ack, tick, base_tick, created, changed, removed, events]
export const S_PONG = 13; // [13, client_time, tick]
export const S_MESSAGE = 14; // [14, kind, body]
export const S_ERROR = 15; // [15, code, message] or [15, code, message, seq] (a refused INPUT)

export const CLOSE = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002, // malformed WebSocket frames
  ABNORMAL: 1006, // no close frame: the connection dropped (set by the browser)
  BAD_TEXT: 1007, // a text frame that was not UTF-8
  TOO_BIG: 1009, // a message over --max-message-size
  ROOM_CRASHED: 1011,
  TRY_AGAIN: 1013, // (cluster) the room directory did not answer: retry in a moment
  BAD_RESERVATION: 4001,
  ROOM_CLOSED: 4002,
  KICKED: 4003,
  JOIN_REFUSED: 4004,
  RATE_LIMITED: 4005,
  REPLACED: 4007, // this seat was resumed on another socket (another tab, or a reconnect)
  DESYNC: 4090, // ours: the client could not apply an update; it closes and rejoins
});

// POST /matchmake error codes -> what to tell the player.
const MATCHMAKE_TEXT = {
  room_full: "That room is full. Pick another room or create your own.",
  no_such_room: "That room doesn't exist any more (or the id is wrong).",
  room_locked: "That room isn't taking new players right now.",
  too_many_rooms: "The server is hosting as many rooms as it can. Join an existing room or try again soon.",
  server_draining: "The server is shutting down for maintenance. Try again in a moment.",
  unknown_game: "This server doesn't host the arena game.",
  too_many_reservations: "Too many players are joining right now. Try again in a few seconds.",
  create_failed: "The server couldn't create the room. Try again.",
  auth_required: "This server only admits signed-in players (it needs a join token).",
  auth_invalid: "Your sign-in token was not accepted.",
  auth_expired: "Your sign-in token has expired. Sign in again.",
  origin_not_allowed: "This page is not allowed to use that server (origin refused).",
  bad_request: "The server refused the request",
  network: "Can't reach the server. Check your connection and try again.",
  rate_limited: "Too many requests from here. Wait a few seconds and try again.",
  directory_unavailable: "The server is briefly unable to find rooms. Try again in a moment.",
};

/** Text for a failed matchmake: `code` from the JSON error body (or "network"). */
export function matchmakeText(code, message) {
  const text = MATCHMAKE_TEXT[code];
  if (code === "bad_request") return `${text}: ${message || "bad request"}.`;
  if (text) return text;
  return `The server refused to seat you (${code || "error"}${message ? `: ${message}` : ""}).`;
}

/** Text for a WebSocket close code (and the server's reason, when it gave one). */
export function closeText(code, reason) {
  const why = reason ? ` (${reason})` : "";
  switch (code) {
    case CLOSE.NORMAL: return "You left the room.";
    case CLOSE.GOING_AWAY: return "The server is going away (restarting or shutting down).";
    case CLOSE.ABNORMAL: return "Lost the connection to the server.";
    case CLOSE.ROOM_CRASHED: return "The room crashed on the server. Sorry! Pick another room.";
    case CLOSE.TRY_AGAIN: return "The server is briefly unable to seat you; trying again.";
    case CLOSE.PROTOCOL_ERROR:
    case CLOSE.BAD_TEXT:
    case CLOSE.TOO_BIG: return `The server rejected a message from this client${why}.`;
    case CLOSE.BAD_RESERVATION:
      return "Your seat reservation expired or was already used. Please join again.";
    case CLOSE.ROOM_CLOSED: return "The room was closed.";
    case CLOSE.KICKED: return `You were removed from the room${why}.`;
    case CLOSE.JOIN_REFUSED: return `The room refused to let you in${why}.`;
    case CLOSE.RATE_LIMITED: return "Disconnected for sending too many messages.";
    case CLOSE.REPLACED: return "You joined this seat from another tab or connection.";
    case CLOSE.DESYNC: return "Lost track of the game state.";
    default: return `Disconnected (code ${code}${reason ? `: ${reason}` : ""}).`;
  }
}

/**
 * Whether a close after we were playing is worth a reconnect (a new `join` of
 * the same room). Not when the server ended our seat on purpose or the room
 * itself is gone.
 */
export function shouldReconnect(code) {
  return ![CLOSE.NORMAL, CLOSE.ROOM_CRASHED, CLOSE.PROTOCOL_ERROR, CLOSE.ROOM_CLOSED,
    CLOSE.KICKED, CLOSE.JOIN_REFUSED, CLOSE.REPLACED].includes(code);
}

/** Matchmake errors after which retrying the same room is pointless. */
export function isFinalMatchmakeError(code) {
  return ["no_such_room", "room_full", "room_locked", "unknown_game", "bad_request",
    "auth_required", "auth_invalid", "auth_expired", "origin_not_allowed"].includes(code);
}
