// One player's session in a room: matchmaking, the game socket, the replica,
// prediction, interpolation, HUD counters and reconnection. No DOM: the view
// (game.js) reads from it and feeds it the input direction.

import { move } from "./arena-rules.js";
import { Interpolator, Predictor, RateCounter, StepClock } from "./netcode.js";
import {
  C_INPUT, C_LEAVE, C_MESSAGE, C_PING, CLOSE, S_DELTA, S_ERROR, S_MESSAGE, S_PONG, S_SNAPSHOT,
  S_WELCOME, closeText, isFinalMatchmakeError, matchmakeText, shouldReconnect,
} from "./protocol.js";
import { Replica } from "./replica.js";
import { decode, encode } from "./wire.js";

export const GAME = "arena";
const RECONNECT_DELAYS_MS = [250, 500, 1000, 2000, 4000, 8000, 8000, 8000]; // ~32 s in all
const PING_EVERY_MS = 1000;
const WELCOME_TIMEOUT_MS = 10000; // a socket that opens but never welcomes us is given up

/** A refused POST /matchmake (or a network failure: code "network"). */
export class MatchmakeError extends Error {
  constructor(code, message, status = 0) {
    super(matchmakeText(code, message));
    this.code = code;
    this.serverMessage = message;
    this.status = status;
  }
}

/** A game socket that closed before its WELCOME. */
export class ConnectError extends Error {
  constructor(code, reason, serverError) {
    super(closeText(code, serverError ? serverError[1] : reason));
    this.code = code;
    this.reason = reason;
  }
}

/** POST /matchmake; resolves to the reservation, rejects with MatchmakeError. */
export async function matchmake(body, fetchFn = globalThis.fetch) {
  let resp;
  try {
    resp = await fetchFn("/matchmake", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ game: GAME, ...body }),
    });
  } catch (err) {
    throw new MatchmakeError("network", String(err));
  }
  let data = null;
  try {
    data = await resp.json();
  } catch {
    // not JSON: a proxy's error page, say
  }
  if (!resp.ok || !data || !data.ws_url) {
    throw new MatchmakeError(data?.error || (resp.ok ? "bad_response" : `http_${resp.status}`),
      data?.message || resp.statusText, resp.status);
  }
  return data;
}

/** GET /rooms for our game; resolves to the list of public rooms. */
export async function listRooms(fetchFn = globalThis.fetch) {
  const resp = await fetchFn(`/rooms?game=${GAME}`, { cache: "no-store" });
  if (!resp.ok) throw new Error(`GET /rooms: HTTP ${resp.status}`);
  return (await resp.json()).rooms || [];
}

/** The game socket URL that resumes a seat: same endpoint, `?reconnect=TOKEN`. */
export function resumeUrl(wsUrl, token) {
  const url = new URL(wsUrl);
  url.search = `?reconnect=${encodeURIComponent(token)}`;
  return url.toString();
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export class Session {
  /**
   * handlers: onStatus(status, info), onEvent(kind, body), onServerError(code, message, seq),
   * onEnd(text, code), onWelcome(session). status: connecting | playing | reconnecting | ended.
   */
  constructor(name, handlers = {}) {
    this.name = name;
    this.h = handlers;
    this.status = "idle";
    this.statusInfo = {};
    this.roomId = null;
    this.private = false;
    this.playerId = 0;
    this.tickRate = 0;
    this.tickMs = 50;
    this.config = null;
    this.replica = null;
    this.predictor = null;
    this.interp = null;
    this.clock = null;
    this.ws = null;
    this.wsUrl = null; // the last game socket URL: reconnections go to the same endpoint
    this.reconnectToken = null; // from WELCOME: resumes our seat after a drop
    this.resync = false; // resumed: resend the unacknowledged inputs after the first update
    this.stopped = false;
    this.reconnects = 0;
    this.rtt = null;
    this.serverTick = 0;
    this.updates = new RateCounter(1000);
    this.bytes = new RateCounter(1000);
    this.lastInputAt = -Infinity;
    this.wasMoving = false;
    this._pingTimer = null;
  }

  // -- life ----------------------------------------------------------------

  /**
   * Matchmake and connect. `request`: {mode, room_id?, private?, options?}.
   * Resolves once WELCOMEd; rejects with MatchmakeError or ConnectError.
   */
  async start(request) {
    this._setStatus("connecting", {});
    this.private = Boolean(request.private);
    try {
      const reservation = await matchmake({ name: this.name, ...request });
      this.name = reservation.name;
      this.roomId = reservation.room_id;
      await this._connect(reservation.ws_url);
    } catch (err) {
      this._setStatus("ended", { text: err.message });
      this.stopped = true;
      throw err;
    }
  }

  /** Leave on purpose: LEAVE, then a normal close. Safe to call twice. */
  leave() {
    if (this.stopped) return;
    this.stopped = true;
    const ws = this.ws;
    if (ws && ws.readyState === WebSocket.OPEN) {
      try {
        ws.send(encode([C_LEAVE]));
        ws.close(CLOSE.NORMAL, "left");
      } catch {
        // closing anyway
      }
    } else if (ws && ws.readyState === WebSocket.CONNECTING) {
      ws.close(CLOSE.NORMAL, "left");
    }
    this._stopTimers();
    this._setStatus("ended", { text: "You left the room." });
  }

  _connect(url, resume = false) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      this.wsUrl = url;
      ws.binaryType = "arraybuffer";
      this.ws = ws;
      let welcomed = false;
      let lastError = null;
      let closeOverride = 0;
      const timeout = setTimeout(() => {
        if (!welcomed && ws === this.ws) ws.close();
      }, WELCOME_TIMEOUT_MS);
      ws.onmessage = (ev) => {
        if (ws !== this.ws) return;
        const now = performance.now();
        let msg;
        try {
          msg = decode(ev.data);
        } catch (err) {
          console.warn("gameserver: undecodable frame", err);
          return;
        }
        const kind = msg[0];
        if (kind === S_WELCOME) {
          welcomed = true;
          clearTimeout(timeout);
          this._welcome(msg, now, resume);
          resolve();
        } else if (kind === S_SNAPSHOT || kind === S_DELTA) {
          this.bytes.add(now, ev.data.byteLength);
          try {
            this._update(msg, now);
          } catch (err) {
            console.warn("gameserver: resyncing after a bad update:", err.message);
            closeOverride = CLOSE.DESYNC;
            ws.close(CLOSE.DESYNC, "desync");
          }
        } else {
          this.bytes.add(now, ev.data.byteLength);
          if (kind === S_PONG) {
            const rtt = now - msg[1];
            this.rtt = this.rtt === null ? rtt : this.rtt * 0.7 + rtt * 0.3;
            this.lastRtt = rtt;
            this.serverTick = msg[2];
          } else if (kind === S_ERROR) {
            lastError = msg;
            // [15, code, message] or, for a refused INPUT, [15, code, message, seq].
            if (typeof msg[3] === "number") this.predictor?.refuse(msg[3]);
            this.h.onServerError?.(msg[1], msg[2], msg[3]);
          } else if (kind === S_MESSAGE) {
            this.h.onEvent?.(msg[1], msg[2]);
          }
        }
      };
      ws.onclose = (ev) => {
        clearTimeout(timeout);
        if (ws !== this.ws) return;
        const code = closeOverride || ev.code;
        if (!welcomed) {
          reject(new ConnectError(code, ev.reason, lastError));
          return;
        }
        this._dropped(code, ev.reason);
      };
    });
  }

  _welcome(msg, now, resume) {
    const [, version, roomId, game, playerId, tickRate, schema, config, reconnectToken] = msg;
    if (version !== 1) console.warn(`gameserver: protocol version ${version}, expected 1`);
    this.reconnectToken = reconnectToken ?? null;
    this._stopTimers();
    this._pingTimer = setInterval(() => this._ping(), PING_EVERY_MS);
    this._ping();
    if (resume && this.predictor && playerId === this.playerId && roomId === this.roomId) {
      // Same seat, same avatar: keep the prediction and its unacknowledged inputs
      // (the server forgot the ones in flight; they are resent after the next ack).
      this.replica = new Replica(schema);
      this.interp.reset();
      this.resync = true;
      this._setStatus("playing", { resumed: true });
      this.h.onWelcome?.(this, now);
      return;
    }
    this.resync = false;
    this.roomId = roomId;
    this.game = game;
    this.playerId = playerId;
    this.tickRate = tickRate;
    this.tickMs = 1000 / tickRate;
    this.config = config;
    this.replica = new Replica(schema);
    const step = config.step;
    this.predictor = new Predictor((x, y, dx, dy) => move(x, y, dx, dy, step, config));
    this.interp = new Interpolator(this.tickMs, { delayMs: Math.max(100, 2.5 * this.tickMs) });
    this.clock = new StepClock(this.tickMs, 3);
    this.lastInputAt = -Infinity;
    this.wasMoving = false;
    this._setStatus("playing", {});
    this.h.onWelcome?.(this, now);
  }

  _update(msg, now) {
    const replica = this.replica;
    replica.apply(msg);
    this.updates.add(now, 1);
    const others = new Map();
    let own = null;
    for (const e of replica.entities.values()) {
      if (e.type !== "Avatar") continue;
      if (e.values.pid === this.playerId) own = e;
      else others.set(e.uid, { id: e.id, ...e.values });
    }
    if (own) this.predictor.reconcile(own.values.x, own.values.y, replica.ack);
    if (this.resync) {
      this.resync = false;
      if (own) for (const p of this.predictor.pending) this._send([C_INPUT, p.seq, [p.dx, p.dy]]);
      else this.predictor.reset(); // no avatar of ours: start over with the next one seen
    }
    this.interp.push(replica.tick, now, others);
    for (const [kind, body] of replica.events) this.h.onEvent?.(kind, body);
  }

  _dropped(code, reason) {
    this._stopTimers();
    if (this.stopped) return;
    if (!shouldReconnect(code)) {
      this._end(closeText(code, reason), code);
      return;
    }
    this._reconnect(code, reason);
  }

  async _reconnect(code, reason) {
    const why = closeText(code, reason);
    for (let attempt = 1; attempt <= RECONNECT_DELAYS_MS.length; attempt++) {
      const delay = RECONNECT_DELAYS_MS[attempt - 1] * (0.8 + 0.4 * Math.random());
      this._setStatus("reconnecting", { attempt, text: why, retryInMs: delay });
      await sleep(delay);
      if (this.stopped) return;
      const token = this.reconnectToken;
      if (token) {
        // First choice: our own seat back, with the single-use token from WELCOME.
        this.reconnectToken = null;
        try {
          await this._connect(resumeUrl(this.wsUrl, token), true);
          this.reconnects++;
          return;
        } catch (err) {
          if (this.stopped) return;
          // Never reached the server: the token is still good for the next attempt.
          if (err instanceof ConnectError && err.code === CLOSE.ABNORMAL) {
            this.reconnectToken = token;
            continue;
          }
          // Refused (the seat is gone): fall through to a new seat in the same room.
        }
      }
      try {
        const reservation = await matchmake({ name: this.name, mode: "join", room_id: this.roomId });
        if (this.stopped) return;
        await this._connect(reservation.ws_url);
        this.reconnects++;
        return;
      } catch (err) {
        if (this.stopped) return;
        if (err instanceof MatchmakeError && isFinalMatchmakeError(err.code)) {
          this._end(`${why} Couldn't rejoin: ${err.message}`, code);
          return;
        }
        if (err instanceof ConnectError && !shouldReconnect(err.code)) {
          this._end(`${why} Couldn't rejoin: ${err.message}`, err.code);
          return;
        }
      }
    }
    this._end(`${why} Gave up reconnecting after ${RECONNECT_DELAYS_MS.length} attempts.`, code);
  }

  _end(text, code) {
    this.stopped = true;
    this._stopTimers();
    this._setStatus("ended", { text, code });
    this.h.onEnd?.(text, code);
  }

  _setStatus(status, info) {
    this.status = status;
    this.statusInfo = info;
    this.h.onStatus?.(status, info);
  }

  _stopTimers() {
    if (this._pingTimer !== null) clearInterval(this._pingTimer);
    this._pingTimer = null;
  }

  _send(message) {
    const ws = this.ws;
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(encode(message));
  }

  _ping() {
    this._send([C_PING, performance.now()]);
  }

  // -- play ------------------------------------------------------------------

  /**
   * Run the input clock: called often (every frame and from a timer) with the
   * current direction. Sends one numbered input per server tick while a
   * direction is held, and predicts it at once.
   */
  pump(now, dx, dy) {
    if (this.status !== "playing" || this.resync || !this.predictor?.ready) return;
    const moving = dx !== 0 || dy !== 0;
    if (moving && !this.wasMoving && now - this.lastInputAt >= this.tickMs) {
      this.clock.restart(now); // respond to a fresh press at once, not at the next tick
      this._input(now, dx, dy);
    } else {
      const steps = this.clock.advance(now);
      if (moving) for (let i = 0; i < steps; i++) this._input(now, dx, dy);
      else if (steps) this.predictor.hold(); // a step without input: stand still
    }
    this.wasMoving = moving;
  }

  _input(now, dx, dy) {
    const seq = this.predictor.applyInput(dx, dy);
    if (!seq) return;
    this.lastInputAt = now;
    this._send([C_INPUT, seq, [dx, dy]]);
  }

  chat(text) {
    const max = this.config?.chat_max_len ?? 200;
    const clean = String(text).trim().slice(0, max);
    if (clean) this._send([C_MESSAGE, "chat", clean]);
  }

  // -- reading -----------------------------------------------------------------

  /** Our avatar's drawn position (predicted, smoothed), or null before the first update. */
  ownRenderPosition(now) {
    if (!this.predictor?.ready) return null;
    return this.predictor.renderPosition(this.clock.alpha(now));
  }

  /** Other avatars as drawn: interpolated, `delayMs` in the past. */
  othersAt(now) {
    return this.interp ? this.interp.sample(now) : new Map();
  }

  avatars() {
    return this.replica ? this.replica.ofType("Avatar") : [];
  }

  orbs() {
    return this.replica ? this.replica.ofType("Orb") : [];
  }

  hud(now) {
    return {
      rttMs: this.rtt === null ? null : Math.round(this.rtt),
      tickRate: this.tickRate,
      updatesPerSec: this.updates.rate(now),
      kbPerSec: this.bytes.rate(now) / 1024,
      players: this.avatars().length,
      bufferMs: this.interp ? Math.round(this.interp.bufferedMs(now)) : 0,
      pending: this.predictor ? this.predictor.pending.length : 0,
      lastCorrection: this.predictor ? this.predictor.lastCorrection : 0,
    };
  }
}
