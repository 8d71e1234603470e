// gameserver JavaScript SDK: play any game hosted by a gameserver, from a browser
// page or from Node 20+ (bots, tests). One ES module, no build step, no dependency
// beyond msgpack (see loadCodec). Served at /sdk/gameserver.js, with its types in
// /sdk/gameserver.d.ts. The wire protocol it speaks is docs/PROTOCOL.md.
//
//   const client = new Client("http://localhost:8000");
//   const room = await client.joinOrCreate("arena", { name: "ann" });
//   room.onAdd("Avatar", (avatar) => console.log("hello", avatar.values.name));
//   room.sendInput([100, 0]);
//
// Sections: the protocol's numbers and texts; msgpack; the replica (Replica); netcode
// (Predictor, Interpolator, RateCounter, StepClock); Client and Room.

// -- the protocol -----------------------------------------------------------------------
// Wire constants (gameserver/core/codec.py, docs/PROTOCOL.md; tests/test_protocol_doc.py
// checks they agree) and the words a player sees for every error the server can report.

export const PROTOCOL_VERSION = 3;

// Client -> server.
export const C_INPUT = 1; // [1, seq, input]
export const C_MESSAGE = 2; // [2, kind, body]
export const C_PING = 3; // [3, client_time]
export const C_LEAVE = 4; // [4]

// Server -> client.
export const S_WELCOME = 10; // [10, version, room_id, game, player_id, tick_rate, schema, config, reconnect_token, keepalive]
export const S_SNAPSHOT = 11; // [11, ack, tick, entities, events(, parts)]
export const S_DELTA = 12; // [12, ack, tick, base_tick, created, changed, removed, events(, parts)]
export const S_PONG = 13; // [13, client_time, tick]
export const S_MESSAGE = 14; // [14, kind, body]
export const S_ERROR = 15; // [15, code, message] or [15, code, message, seq] (a refused INPUT)
export const S_INPUT_LEAD = 16; // [16, ticks]: send inputs this many ticks further ahead
export const S_QUIET = 17; // [17, tick]: a quiet room's keep-alive: nothing changed since tick

export const CLOSE = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002, // malformed WebSocket frames
  ABNORMAL: 1006, // no close frame: the connection dropped (set by the WebSocket library)
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
  DESYNC: 4090, // the SDK's own: it could not apply an update; it closes and rejoins
});

// POST /matchmake error codes -> what to tell the player.
const MATCHMAKE_TEXT = {
  room_full: "That room is full. Pick another room or create your own.",
  no_such_room: "That room doesn't exist any more (or the id is wrong).",
  room_locked: "That room isn't taking new players right now.",
  too_many_rooms: "The server is hosting as many rooms as it can. Join an existing room or try again soon.",
  server_draining: "The server is shutting down for maintenance. Try again in a moment.",
  unknown_game: "This server doesn't host that game.",
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
  spectators_full: "That room has as many spectators as it allows. Try again later.",
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
 * Whether a close after we were playing is worth reconnecting. Not when the
 * server ended our seat on purpose or the room itself is gone.
 */
export function shouldReconnect(code) {
  return ![CLOSE.NORMAL, CLOSE.ROOM_CRASHED, CLOSE.PROTOCOL_ERROR, CLOSE.ROOM_CLOSED,
    CLOSE.KICKED, CLOSE.JOIN_REFUSED, CLOSE.REPLACED].includes(code);
}

/** Matchmake errors after which retrying the same room is pointless. */
export function isFinalMatchmakeError(code) {
  return ["no_such_room", "room_full", "room_locked", "unknown_game", "bad_request",
    "auth_required", "auth_invalid", "auth_expired", "origin_not_allowed",
    "spectators_full"].includes(code);
}

// -- msgpack ----------------------------------------------------------------------------
// The vendored @msgpack/msgpack build (static/vendor/msgpack.min.js, also served as
// /sdk/msgpack.min.js) is a UMD script, which an ES module cannot `import`. So, in
// order: a codec passed in ({encode, decode}); the global `MessagePack` that the
// script defines when a page loads it with a classic <script> tag; in Node, that file
// loaded with require() (next to this module, or in ../vendor/ of a checkout or an
// installed wheel, or the npm package @msgpack/msgpack); in a page, the script added
// to the document from next to this module (same origin: the CSP allows it).

let codecPromise = null;

function asCodec(lib) {
  return {
    encode: (message) => lib.encode(message),
    decode: (data) => lib.decode(data instanceof Uint8Array ? data : new Uint8Array(data)),
  };
}

/** Resolve the msgpack codec (cached). Exported for tests and custom transports. */
export function loadCodec() {
  if (!codecPromise) {
    codecPromise = findCodec().catch((err) => {
      codecPromise = null; // let a later call try again
      throw err;
    });
  }
  return codecPromise;
}

async function findCodec() {
  if (globalThis.MessagePack) return asCodec(globalThis.MessagePack);
  if (typeof process !== "undefined" && process.versions?.node) {
    const { createRequire } = await import("node:module");
    const require = createRequire(import.meta.url);
    for (const name of ["./msgpack.min.js", "../vendor/msgpack.min.js", "@msgpack/msgpack"]) {
      try {
        return asCodec(require(name));
      } catch {
        // try the next place
      }
    }
    throw new Error("gameserver SDK: msgpack not found: put msgpack.min.js (GET /sdk/msgpack.min.js) "
      + "next to gameserver.js, install @msgpack/msgpack, or pass {codec}");
  }
  if (typeof document !== "undefined") {
    await new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = new URL("./msgpack.min.js", import.meta.url).href;
      script.onload = resolve;
      script.onerror = () => reject(new Error(`gameserver SDK: could not load ${script.src}`));
      document.head.append(script);
    });
    if (globalThis.MessagePack) return asCodec(globalThis.MessagePack);
  }
  throw new Error("gameserver SDK: no msgpack codec: load msgpack.min.js first or pass {codec}");
}

// -- the replica ------------------------------------------------------------------------
// A client's copy of a room's world, rebuilt from snapshots and deltas. Port of
// gameserver/core/replica.py, the reference decoder; keep the two the same algorithm.
//
//   SNAPSHOT [11, ack, tick, entities_flat, events]
//            [11, ack, tick, entities_flat, events, parts]
//   DELTA    [12, ack, tick, base_tick, created_flat, changed_flat, removed_ids, events]
//            [12, ack, tick, base_tick, created_flat, changed_flat, removed_ids, events, parts]
//
// entity record (snapshot, created): id, type_index, v0..vn (absolute values)
// change record: id, mask, one value per set bit; "i" fields are differences.
//
// Per-player views (protocol 2): a player who sees more than the public view gets
// `parts`, a list of [created, changed, removed] triples in the same flat formats
// (a group's entities, an interest cell's, entities entering or leaving the player's
// area, and last the player's private part: owner-only fields as change records, a
// null clearing one the player no longer owns). Applying an update:
//   snapshot: clear; create `entities`, then each part's created; then each part's changed.
//   delta:    every removal (removed, then each part's), then every creation (created,
//             then each part's), then every change (changed, then each part's), in order.
// An id may be removed and created again in one update: an entity moving between two
// cells the player sees. Same id and same type: that is the same entity continuing, so
// it keeps its object and uid (interpolation does not snap) and is reported as changed
// (the fields that differ), never as removed and added.
//
// Entity ids are reused by the server once freed, so every entity created here also
// gets a `uid` unique within this replica: interpolation keys on it, so a removed
// player's id reused by a new orb is never blended into it. Each apply() also
// records what it added, changed and removed (the net effect of the whole update),
// for the Room's callbacks.

export class ReplicaError extends Error {}

// Two field values are the same (msgpack arrays and maps compared by content).
function sameValue(a, b) {
  if (Object.is(a, b)) return true;
  return typeof a === "object" && typeof b === "object" && a !== null && b !== null
    && JSON.stringify(a) === JSON.stringify(b);
}

// The parts of an update (its optional last element): a list of [created, changed, removed].
function partsOf(parts) {
  if (parts === undefined || parts === null) return [];
  if (!Array.isArray(parts)) throw new ReplicaError("parts is not a list");
  for (const part of parts) {
    if (!Array.isArray(part) || part.length !== 3 || !part.every(Array.isArray)) {
      throw new ReplicaError("a part is not [created, changed, removed]");
    }
  }
  return parts;
}

export class Replica {
  /** @param {Array} schema [[type_name, [[field, kind], ...]], ...] from WELCOME */
  constructor(schema) {
    this._uid = 0;
    this.reset(schema);
  }

  /** Forget everything (a new schema, or a new seat): the next update must be a snapshot. */
  reset(schema) {
    this.schema = schema;
    this.types = schema.map(([name, fields]) => ({
      name,
      fields: fields.map(([f]) => f),
      kinds: fields.map(([, k]) => k),
    }));
    this.tick = -1;
    this.ack = 0;
    /** @type {Map<number, {id:number, type:string, typeIndex:number, uid:number, values:Object}>} */
    this.entities = new Map();
    /** type name -> Map(id -> entity), one per type of the schema */
    this.byType = new Map(this.types.map((t) => [t.name, new Map()]));
    this.events = [];
    this.added = []; // entities created by the last apply()
    this.changed = []; // [entity, [field, ...]] changed by the last apply(), once per entity
    this.removed = []; // entities gone since the last apply()
  }

  /** Apply one decoded snapshot or delta message (an array), with its view parts if any. */
  apply(message) {
    const kind = message[0];
    this.added = [];
    this.changed = [];
    this.removed = [];
    if (kind === S_SNAPSHOT) {
      const [, ack, tick, records, events, parts] = message;
      this._snapshot(records, partsOf(parts));
      this.ack = ack;
      this.tick = tick;
      this.events = events;
    } else if (kind === S_DELTA) {
      const [, ack, tick, base, created, changed, removed, events, parts] = message;
      if (base !== this.tick) {
        throw new ReplicaError(`delta from tick ${base} applied to tick ${this.tick}`);
      }
      this._delta(created, changed, removed, partsOf(parts));
      this.ack = ack;
      this.tick = tick;
      this.events = events;
    } else {
      throw new ReplicaError(`not an update message: kind ${kind}`);
    }
  }

  /** Entity by id, or undefined. */
  get(id) {
    return this.entities.get(id);
  }

  /** Entities of one type, as an array. */
  ofType(name) {
    const map = this.byType.get(name);
    return map ? [...map.values()] : [];
  }

  /** A plain comparable picture: {id: [type, {field: value}]} (same as Replica.view()). */
  view() {
    const out = {};
    for (const e of this.entities.values()) out[e.id] = [e.type, { ...e.values }];
    return out;
  }

  _delete(entity) {
    this.entities.delete(entity.id);
    this.byType.get(entity.type).delete(entity.id);
  }

  _insert(entity) {
    this.entities.set(entity.id, entity);
    this.byType.get(entity.type).set(entity.id, entity);
  }

  _readRecord(records, i) {
    const n = records.length;
    const id = records[i];
    const typeIndex = records[i + 1];
    const type = this.types[typeIndex];
    if (type === undefined) throw new ReplicaError(`unknown entity type ${typeIndex}`);
    const end = i + 2 + type.fields.length;
    if (end > n) throw new ReplicaError(`truncated entity record for ${id}`);
    const values = {};
    for (let f = 0; f < type.fields.length; f++) values[type.fields[f]] = records[i + 2 + f];
    return [id, typeIndex, type, values, end];
  }

  // A snapshot replaces the world. An entity with the same id and type as before is
  // taken to be the same one (it keeps its uid; its differing fields are "changed"),
  // so a resync or a reconnection does not look like everything left and came back.
  _snapshot(records, parts) {
    const old = this.entities;
    this.entities = new Map();
    for (const map of this.byType.values()) map.clear();
    const before = new Map(); // entity kept from before -> its values before
    this._create(records, old, before);
    for (const part of parts) this._create(part[0], old, before);
    for (const part of parts) this._change(part[1], null);
    for (const entity of old.values()) this.removed.push(entity);
    this._reportKept(before, null);
  }

  // Removals, creations, changes: each of them public first, then the parts in order.
  _delta(created, changed, removed, parts) {
    const gone = new Map(); // id -> entity removed by this update (until created again)
    this._remove(removed, gone);
    for (const part of parts) this._remove(part[2], gone);
    const before = new Map(); // entity removed and created again -> its values before
    this._create(created, gone, before);
    for (const part of parts) this._create(part[0], gone, before);
    const touched = new Map(); // entity -> Set of the fields its change records set
    this._change(changed, touched);
    for (const part of parts) this._change(part[1], touched);
    for (const entity of gone.values()) this.removed.push(entity);
    this._reportKept(before, touched);
  }

  _remove(ids, gone) {
    for (const id of ids) {
      const entity = this.entities.get(id);
      if (entity === undefined) throw new ReplicaError(`removed unknown entity ${id}`);
      this._delete(entity);
      gone.set(id, entity);
    }
  }

  // Create the entities of `records`. One in `old` (removed by this update, or the world
  // before a snapshot) with the same id and type continues: same object and uid, its
  // values before kept in `before`. Creating an id that is live (created twice) replaces
  // it: the same type continues, another type is a new entity.
  _create(records, old, before) {
    let i = 0;
    while (i < records.length) {
      const [id, typeIndex, type, values, end] = this._readRecord(records, i);
      i = end;
      let prev = old.get(id);
      const live = this.entities.get(id);
      if (live !== undefined) {
        if (live.typeIndex === typeIndex) {
          if (!before.has(live) && !this.added.includes(live)) before.set(live, { ...live.values });
          Object.assign(live.values, values);
          continue;
        }
        this._delete(live);
        const k = this.added.indexOf(live);
        if (k >= 0) this.added.splice(k, 1);
        else {
          before.delete(live);
          this.removed.push(live);
        }
        prev = undefined;
      }
      if (prev !== undefined && prev.typeIndex === typeIndex) {
        old.delete(id);
        before.set(prev, { ...prev.values });
        Object.assign(prev.values, values);
        this._insert(prev);
      } else {
        const entity = { id, type: type.name, typeIndex, uid: ++this._uid, values };
        this._insert(entity);
        this.added.push(entity);
      }
    }
  }

  // Apply change records; `touched` (entity -> Set of field names) collects what they set.
  _change(records, touched) {
    const n = records.length;
    let i = 0;
    while (i < n) {
      const id = records[i];
      let mask = records[i + 1];
      i += 2;
      const entity = this.entities.get(id);
      if (entity === undefined) throw new ReplicaError(`changed unknown entity ${id}`);
      const { fields, kinds } = this.types[entity.typeIndex];
      let names = touched?.get(entity);
      if (touched && names === undefined) touched.set(entity, names = new Set());
      let bit = 0;
      while (mask) {
        if (mask & 1) {
          if (bit >= fields.length || i >= n) throw new ReplicaError(`bad change record for ${id}`);
          const name = fields[bit];
          const value = records[i++];
          entity.values[name] = kinds[bit] === "i" ? entity.values[name] + value : value;
          names?.add(name);
        }
        mask = Math.floor(mask / 2); // not >>: masks of 32+ fields stay exact
        bit++;
      }
    }
  }

  // The changed list: an entity that continued (`before`) reports the fields that differ
  // from before; others the fields their change records set (`touched`, none for a
  // snapshot). Entities added by this update are not also reported as changed.
  _reportKept(before, touched) {
    const added = new Set(this.added);
    const order = touched ? [...touched.keys()] : [];
    for (const entity of before.keys()) if (!touched?.has(entity)) order.push(entity);
    for (const entity of order) {
      if (added.has(entity) || this.entities.get(entity.id) !== entity) continue;
      let fields;
      const was = before.get(entity);
      if (was !== undefined) {
        const { fields: all } = this.types[entity.typeIndex];
        fields = all.filter((f) => !sameValue(was[f], entity.values[f]));
      } else {
        fields = [...touched.get(entity)];
      }
      if (fields.length) this.changed.push([entity, fields]);
    }
  }
}

// -- netcode ----------------------------------------------------------------------------
// Prediction + reconciliation of the player's own entity, and interpolation of
// everything else. Pure: no sockets, no clocks of their own (every time is passed in,
// in milliseconds), so they run under `node --test`.
//
// Own entity (Gambetta, "Client-side prediction and server reconciliation"): every
// input gets a sequence number and is applied locally at once with the same step
// function the server uses. Each update carries the server's state of our entity and
// `ack`, the last input seq the server applied; the prediction is rebuilt as server
// state + every input after `ack`. With identical rules that equals the old
// prediction; when it does not (the server refused or changed something), the
// difference in the smoothed fields is not snapped but kept as a visual offset that
// decays over `smoothMs`.
//
// Other entities (Source engine "entity interpolation"): rendered at `now - delayMs`
// on the server's tick timeline, between the two buffered states around that time.

/**
 * Predicts the player's own entity from numbered inputs with the game's rule,
 * `step(entityState, input, config) => entityState` (a port of the server's; it
 * gets a copy, so it may change it in place or return a new object).
 */
export class Predictor {
  constructor(step, { config = null, smooth = ["x", "y"], maxPending = 30, smoothMs = 100,
    snapDistance = 250 } = {}) {
    this.step = step;
    this.config = config;
    this.smooth = smooth; // numeric fields that are blended when drawn (a position)
    this.maxPending = maxPending; // never more unacked inputs than the server queues (32)
    this.smoothMs = smoothMs;
    this.snapDistance = snapDistance; // corrections beyond this (teleports) are not blended
    this.blendMs = 180; // how long a reconnection's correction takes to blend out
    this.drawn = null; // the last renderState(): where a reseed blends from
    this.reset();
  }

  /**
   * After a reconnection: the next reconcile() blends from where the entity was drawn
   * over `blendMs`, whatever the distance (a reconnection is not a teleport), also
   * when reset() dropped the prediction (a new seat).
   */
  reseed() {
    this._reseed = true;
  }

  reset() {
    this.ready = false; // set by the first reconcile()
    this.seq = 0;
    this.ack = 0;
    this.pending = []; // [{seq, input}], oldest first, all with seq > ack
    this.state = null; // predicted state (exactly as the server will compute it)
    this.prev = null; // the state one input earlier, to draw the motion between inputs
    this.server = null; // the last authoritative state seen
    this.offset = Object.fromEntries(this.smooth.map((f) => [f, 0])); // error being blended out
    this.lastCorrection = 0; // size of the last correction (distance over the smoothed fields)
    this.maxCorrection = 0;
    this.corrections = 0; // how many updates changed the prediction
    this.blend = null; // a reconnection's blend: {from: offset, ms: elapsed}, until blendMs
    this._reseed = false;
  }

  /** Whether another input may be predicted now (a state is known, the queue is not full). */
  canInput() {
    return this.ready && this.pending.length < this.maxPending;
  }

  /**
   * Apply an input locally; returns its seq (to send), or 0 if it must not be sent.
   * `seq` defaults to the next number; a Room passes its own (strictly increasing).
   */
  applyInput(input, seq = this.seq + 1) {
    if (!this.canInput()) return 0;
    const next = this._step(this.state, input); // first: a step that throws changes nothing
    this.seq = seq;
    this.pending.push({ seq, input });
    this.prev = this.state;
    this.state = next;
    return seq;
  }

  /** A step passed without an input: the drawn motion ends at the predicted state. */
  hold() {
    this.prev = this.state;
  }

  /**
   * The server refused input `seq` (ERROR with a seq): it will never be applied,
   * and a later ack passes over it, so stop predicting with it now.
   */
  refuse(seq) {
    this.pending = this.pending.filter((p) => p.seq !== seq);
  }

  /**
   * The server's state of our entity after the inputs up to `ack`. Returns the
   * size of the correction it caused (0 when the prediction was right).
   */
  reconcile(serverState, ack) {
    this.server = { ...serverState };
    const reseed = this._reseed;
    this._reseed = false;
    if (!this.ready) {
      this.ready = true;
      this.ack = ack;
      this.seq = Math.max(this.seq, ack);
      this.pending = [];
      this.state = this.prev = { ...serverState };
      if (reseed && this.drawn) {
        // A new seat after a reconnection: start where we were drawn and blend in.
        for (const f of this.smooth) this.offset[f] = this.drawn[f] - serverState[f];
        this.blend = { from: { ...this.offset }, ms: 0 };
      }
      return 0;
    }
    if (ack > this.ack) this.ack = ack;
    let drop = 0;
    while (drop < this.pending.length && this.pending[drop].seq <= this.ack) drop++;
    if (drop) this.pending.splice(0, drop);
    let s = { ...serverState };
    for (const p of this.pending) s = this._step(s, p.input);
    const old = this.state;
    const prev = { ...s };
    let sq = 0;
    const delta = {};
    for (const f of this.smooth) {
      delta[f] = s[f] - old[f];
      sq += delta[f] * delta[f];
      prev[f] = this.prev[f] + delta[f];
    }
    const size = Math.sqrt(sq);
    this.lastCorrection = size;
    this.state = s;
    this.prev = prev;
    if (size === 0) return 0;
    this.corrections++;
    if (size > this.maxCorrection) this.maxCorrection = size;
    const snap = size > this.snapDistance && !reseed;
    for (const f of this.smooth) {
      // Keep the drawn state where it was and let decay() remove the offset; a
      // teleport is not blended (it would only smear it), a reconnection is.
      this.offset[f] = snap ? 0 : this.offset[f] - delta[f];
    }
    // A reconnection's blend takes a fixed time (eased); a later correction during it
    // joins the ordinary decay.
    this.blend = reseed ? { from: { ...this.offset }, ms: 0 } : null;
    return size;
  }

  /** Blend the visual offset out: call once per rendered frame with the frame's dt. */
  decay(dtMs) {
    const blend = this.blend;
    if (blend) {
      // Eased (smoothstep) over blendMs: no first-frame lurch, there on time.
      blend.ms += Math.max(0, dtMs);
      const t = Math.min(1, blend.ms / this.blendMs);
      const k = 1 - t * t * (3 - 2 * t);
      for (const f of this.smooth) this.offset[f] = blend.from[f] * k;
      if (t >= 1) this.blend = null;
      return;
    }
    const k = Math.exp(-Math.max(0, dtMs) / (this.smoothMs / 3)); // ~95% gone after smoothMs
    let left = false;
    for (const f of this.smooth) {
      if (this.offset[f] === 0) continue;
      this.offset[f] *= k;
      if (Math.abs(this.offset[f]) >= 0.05) left = true;
    }
    if (!left) for (const f of this.smooth) this.offset[f] = 0;
  }

  /**
   * What to draw: the predicted state with its smoothed fields between the last
   * two predictions (`alpha` 0..1 through the current input step) plus the offset.
   */
  renderState(alpha = 1) {
    if (!this.ready) return null;
    const a = Math.min(1, Math.max(0, alpha));
    const out = { ...this.state };
    for (const f of this.smooth) {
      out[f] = this.prev[f] + (this.state[f] - this.prev[f]) * a + this.offset[f];
    }
    this.drawn = { ...out };
    return out;
  }

  _step(state, input) {
    if (input === null) return { ...state }; // "nothing held": the server applies nothing
    const next = this.step({ ...state }, input, this.config);
    if (next === null || typeof next !== "object") {
      throw new TypeError("Predictor: step() must return the entity state (an object)");
    }
    return next;
  }
}

/**
 * Buffers server states and samples them `delayMs` in the past (render time =
 * server time - delay). `fields` are interpolated; others are taken from the newer state.
 *
 * Time base: every update has a tick; an update for tick t that arrives at local
 * time `a` gives the sample `a - t * tickMs`. The smallest recent sample (the
 * update that came quickest) maps ticks to local time; larger ones are jitter,
 * which the delay absorbs. The mapping slews slowly so render time never jumps.
 */
export class Interpolator {
  constructor(tickMs, { delayMs = 2.5 * tickMs, fields = ["x", "y"], maxStates = 40,
    windowMs = 2000 } = {}) {
    this.tickMs = tickMs;
    this.delayMs = delayMs;
    this.fields = fields;
    this.maxStates = maxStates;
    this.windowMs = windowMs;
    this.reset();
  }

  reset() {
    this.states = []; // [{tick, entities: Map<key, object>}], ascending tick
    this.samples = []; // [{at, offset}] for the clock mapping
    this.base = null; // local ms at tick 0
  }

  /** Add the state of one update: `entities` maps a stable key to an object. */
  push(tick, arrivalMs, entities) {
    let last = this.states[this.states.length - 1];
    if (last && tick < last.tick) {
      this.reset(); // the tick went back: another room (a reconnect) or a restarted server
      last = undefined;
    }
    if (last && tick === last.tick) last.entities = entities;
    else this.states.push({ tick, entities });
    if (this.states.length > this.maxStates) this.states.shift();

    const offset = arrivalMs - tick * this.tickMs;
    this.samples.push({ at: arrivalMs, offset });
    while (this.samples.length > 1 && arrivalMs - this.samples[0].at > this.windowMs) {
      this.samples.shift();
    }
    let target = Infinity;
    for (const s of this.samples) if (s.offset < target) target = s.offset;
    if (this.base === null || Math.abs(target - this.base) > 250) {
      this.base = target; // first update, or a long stall: re-anchor
    } else {
      const slew = 0.1 * this.tickMs; // at most 10% of a tick per update: 2% time warp
      this.base += Math.max(-slew, Math.min(slew, target - this.base));
    }
  }

  /** The (fractional) server tick that is shown at local time `nowMs`. */
  renderTick(nowMs) {
    if (this.base === null) return -1;
    return (nowMs - this.delayMs - this.base) / this.tickMs;
  }

  /** How far the newest buffered state is ahead of the render time, in ms (>0 is healthy). */
  bufferedMs(nowMs) {
    if (!this.states.length) return 0;
    return (this.states[this.states.length - 1].tick - this.renderTick(nowMs)) * this.tickMs;
  }

  /**
   * Entities at render time: a Map key -> object, `fields` interpolated. An
   * entity is shown from the state it first appears in, until the state it is
   * gone from; past the newest state everything holds still (no extrapolation).
   */
  sample(nowMs) {
    const states = this.states;
    if (!states.length) return new Map();
    const rt = this.renderTick(nowMs);
    if (rt <= states[0].tick) return states[0].entities;
    const newest = states[states.length - 1];
    if (rt >= newest.tick) return newest.entities;
    let i = states.length - 2;
    while (i > 0 && states[i].tick > rt) i--;
    const a = states[i];
    const b = states[i + 1];
    const t = (rt - a.tick) / (b.tick - a.tick);
    const out = new Map();
    for (const [key, ea] of a.entities) {
      const eb = b.entities.get(key);
      if (eb === undefined) {
        out.set(key, ea);
      } else {
        const e = { ...eb };
        for (const f of this.fields) e[f] = ea[f] + (eb[f] - ea[f]) * t;
        out.set(key, e);
      }
    }
    return out;
  }
}

/** Events or bytes per second over a sliding window. */
export class RateCounter {
  constructor(windowMs = 1000) {
    this.windowMs = windowMs;
    this.items = []; // [time, amount]
    this.total = 0;
  }

  add(nowMs, amount = 1) {
    this.items.push([nowMs, amount]);
    this.total += amount;
    this._trim(nowMs);
  }

  rate(nowMs) {
    this._trim(nowMs);
    return (this.total * 1000) / this.windowMs;
  }

  _trim(nowMs) {
    const items = this.items;
    let n = 0;
    while (n < items.length && nowMs - items[n][0] >= this.windowMs) {
      this.total -= items[n][1];
      n++;
    }
    if (n) items.splice(0, n);
  }
}

/**
 * A fixed-step clock: `advance(now)` returns how many steps are due (at most
 * `maxSteps`; the rest is dropped, no spiral of death). `alpha(now)` is the
 * fraction of the current step that has passed.
 */
export class StepClock {
  constructor(stepMs, maxSteps = 3) {
    this.stepMs = stepMs;
    this.maxSteps = maxSteps;
    this.last = null;
    this.gain = 0; // ms still to run ahead (hurry): taken at a quarter of the time passing
    this.seen = null; // the time of the last advance()
  }

  /** Run `steps` steps further ahead, spread out: 25% faster until they are gained. */
  hurry(steps) {
    this.gain += steps * this.stepMs;
  }

  /** Start a step now (e.g. on a key press after idling, for an immediate response). */
  restart(nowMs) {
    this.last = nowMs;
    this.gain = 0; // a new stream: the server fills its buffer before starting it
  }

  advance(nowMs) {
    if (this.last === null) {
      this.last = nowMs;
      return 0;
    }
    if (this.gain > 0 && this.seen !== null && nowMs > this.seen) {
      const bonus = Math.min(this.gain, (nowMs - this.seen) * 0.25);
      this.gain -= bonus;
      this.last -= bonus;
    }
    this.seen = nowMs;
    let steps = Math.floor((nowMs - this.last) / this.stepMs);
    if (steps <= 0) return 0;
    if (steps > this.maxSteps) {
      this.last = nowMs - this.stepMs * this.maxSteps;
      steps = this.maxSteps;
    }
    this.last += steps * this.stepMs;
    return steps;
  }

  alpha(nowMs) {
    if (this.last === null) return 1;
    return Math.min(1, Math.max(0, (nowMs - this.last) / this.stepMs));
  }
}

// -- Client and Room --------------------------------------------------------------------

// Reconnection: most drops are blips (a Wi-Fi hand-over, a tunnel), so try every 250 ms
// for about 3 s, then back off; ~32 s in all, longer than the server's 20 s grace.
export const RECONNECT_DELAYS_MS = [...Array(12).fill(250), 500, 1000, 2000, 4000, 8000, 8000, 6000];
const EARLY_RECONNECT_MS = 5000; // attempts this soon after the drop are "early" ...
const EARLY_HANDSHAKE_MS = 1500; // ... and give up on a WELCOME after this (a black hole)
const FAST_FAIL_MS = 500; // an attempt that failed this fast did not wait on the network
const PING_EVERY_MS = 1000;
// The silence watchdog (PROTOCOL §2, Quiet rooms): no frame at all for this long (or 3 x a
// quiet room's keep-alive interval, if longer) and the socket is taken for lost.
export const MIN_SILENCE_MS = 3000;
const WELCOME_TIMEOUT_MS = 10000; // a socket that opens but never welcomes us is given up
const OPEN = 1; // WebSocket readyState values (the same in every implementation)
const CONNECTING = 0;

const now = () => globalThis.performance.now();

/** A refused POST /matchmake or /reconnect (or a network failure: code "network"). */
export class MatchmakeError extends Error {
  constructor(code, message, status = 0) {
    super(matchmakeText(code, message));
    this.name = "MatchmakeError";
    this.code = code;
    this.serverMessage = message;
    this.status = status;
  }
}

/** A game socket that closed before its WELCOME. */
export class ConnectError extends Error {
  constructor(code, reason, serverError) {
    // A room at its spectator cap between matchmaking and the socket: 4004 + spectators_full.
    super(serverError?.[1] === "spectators_full" ? matchmakeText("spectators_full")
      : closeText(code, serverError ? serverError[1] : reason));
    this.name = "ConnectError";
    this.code = code;
    this.reason = reason;
    this.serverError = serverError ? serverError[1] : null; // e.g. "bad_reservation"
  }
}

/** The game socket URL that resumes a seat: same endpoint, `?reconnect=TOKEN`. */
export function resumeUrl(wsUrl, token) {
  const url = new URL(wsUrl);
  url.search = `?reconnect=${encodeURIComponent(token)}`;
  return url.toString();
}

/**
 * A connection to one gameserver: matchmaking and the room listing over HTTP.
 * `baseUrl` defaults to the page's origin (required in Node).
 */
export class Client {
  constructor(baseUrl, options = {}) {
    if (baseUrl && typeof baseUrl === "object") [baseUrl, options] = [undefined, baseUrl];
    const base = baseUrl ?? globalThis.location?.origin;
    if (!base) throw new TypeError("Client: a base URL is required outside a browser page");
    this.baseUrl = String(base).replace(/\/+$/, "");
    this.options = options;
    this.fetch = options.fetch ?? ((...args) => globalThis.fetch(...args));
    this.WebSocket = options.WebSocket ?? null; // else the global one, looked up when needed
    this.codec = options.codec ?? null;
  }

  /** The oldest public room of `game` with a free seat, else a new one. */
  joinOrCreate(game, options = {}) {
    return this._join(game, { mode: "join_or_create" }, options);
  }

  /** A new room (`options.private`: never listed, joined only by id). */
  create(game, options = {}) {
    return this._join(game, { mode: "create", private: Boolean(options.private) }, options);
  }

  /**
   * The room `roomId` (public or private). The server checks that the room plays
   * `options.game` (default: the client's `game` option).
   */
  join(roomId, options = {}) {
    const game = options.game ?? this.options.game;
    if (!game) throw new TypeError("join(roomId): say which game: {game: NAME}");
    return this._join(game, { mode: "join", room_id: roomId }, options);
  }

  /** Any public room of `game` with a free seat, never a new one. */
  joinAny(game, options = {}) {
    return this._join(game, { mode: "join" }, options);
  }

  /**
   * Watch a room without a seat: POST /matchmake mode "spectate". The Room has
   * `spectator === true` and `playerId === 0`; its state, callbacks and
   * interpolation work as a player's, but sendInput()/send() throw. Without
   * `roomId` the server picks the live public room of the game with the most
   * players. `options.game` (default: the client's `game` option) is required.
   * After a drop it spectates the same room again (a new pass), with the usual
   * back-off; `no_such_room` and `spectators_full` end it.
   */
  async spectate(roomId, options = {}) {
    if (roomId && typeof roomId === "object") [roomId, options] = [undefined, roomId];
    const game = options.game ?? this.options.game;
    if (!game) throw new TypeError("spectate(roomId): say which game: {game: NAME}");
    const request = { mode: "spectate" };
    if (roomId) request.room_id = roomId;
    const room = new Room(this, { game, name: null, private: false, options,
      roomId: roomId ?? null, spectator: true });
    await room._start(null, request);
    return room;
  }

  /** Take a seat back after losing the Room object (a reloaded page): POST /reconnect. */
  async reconnect(token, options = {}) {
    const answer = await this._post("/reconnect", { token });
    const room = new Room(this, { game: null, name: options.name ?? null, private: false,
      options, roomId: answer.room_id });
    await room._start(answer.ws_url);
    return room;
  }

  /** Public rooms (of `game`, or all): GET /rooms, every page. */
  async listRooms(game) {
    const rooms = [];
    let after = null;
    do {
      const query = new URLSearchParams();
      if (game) query.set("game", game);
      if (after) query.set("after", after);
      const resp = await this.fetch(`${this.baseUrl}/rooms?${query}`);
      if (!resp.ok) throw new MatchmakeError(`http_${resp.status}`, resp.statusText, resp.status);
      const page = await resp.json();
      rooms.push(...(page.rooms || []));
      after = page.next;
    } while (after);
    return rooms;
  }

  /** The games this server hosts: GET /games. */
  async games() {
    const resp = await this.fetch(`${this.baseUrl}/games`);
    if (!resp.ok) throw new MatchmakeError(`http_${resp.status}`, resp.statusText, resp.status);
    return (await resp.json()).games;
  }

  /** POST /matchmake; resolves to the seat reservation, rejects with MatchmakeError. */
  matchmake(body, { signal } = {}) {
    return this._post("/matchmake", body, signal);
  }

  async _join(game, request, options) {
    const room = new Room(this, { game, name: options.name ?? null,
      private: Boolean(request.private), options, roomId: request.room_id ?? null });
    await room._start(null, request);
    return room;
  }

  async _post(path, body, signal) {
    let resp;
    try {
      const init = { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body) };
      if (signal) init.signal = signal;
      resp = await this.fetch(`${this.baseUrl}${path}`, init);
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

  _socket(url) {
    const Impl = this.WebSocket ?? globalThis.WebSocket;
    if (!Impl) {
      throw new Error("gameserver SDK: no WebSocket: run Node 20 with --experimental-websocket "
        + "(Node 22+ has one), or pass {WebSocket} to new Client()");
    }
    return new Impl(url);
  }

  async _codec() {
    if (!this.codec) this.codec = await loadCodec();
    return this.codec;
  }
}

/**
 * One seat in one room: the socket, the replica (`state`), callbacks, numbered
 * inputs, optional prediction and interpolation, RTT and rates, and automatic
 * reconnection. Made by a Client; resolves once WELCOMEd. A spectator's Room
 * (client.spectate()) holds no seat: the same state and callbacks, no inputs.
 */
export class Room {
  constructor(client, { game, name, private: isPrivate, options, roomId, spectator = false }) {
    this.client = client;
    this.spectator = spectator; // watching: no seat, no inputs (client.spectate())
    this.game = game;
    this.name = name;
    this.private = isPrivate;
    this.joinOptions = options;
    this.id = roomId;
    this.playerId = 0;
    this.tickRate = 0;
    this.tickMs = 50;
    this.config = null;
    this.schema = null;
    this.state = null; // the Replica
    this.reconnectToken = null; // from WELCOME: resumes our seat after a drop
    this.status = "idle"; // connecting | playing | reconnecting | ended
    this.statusInfo = {};
    this.reconnects = 0;
    this.rtt = null; // smoothed round trip, ms
    this.lastRtt = null;
    this.serverTick = 0; // from the last PONG
    this.updates = new RateCounter(1000);
    this.bytes = new RateCounter(1000);
    this.seq = 0; // last input seq sent
    this.pending = []; // [{seq, input}] sent and not yet acknowledged
    this.predictor = null;
    this.interpolators = [];
    this.maxPending = 30; // stays under the server's queue of 32
    this.quiet = false; // from WELCOME: updates only when something changed, QUIET between
    this.keepalive = 0; // from WELCOME: a quiet room's keep-alive interval (s); 0 otherwise
    this.lastQuiet = -1; // the tick of the last QUIET keep-alive
    // Silence watchdog: false turns it off; a number of ms overrides max(3 s, 3 x keepalive).
    this.silenceMs = options.silenceMs ?? client.options.silenceMs;
    this._lastFrameAt = 0;
    this._watchdog = null;
    const reconnect = options.reconnect ?? client.options.reconnect;
    this.reconnectDelays = reconnect === false ? []
      : (reconnect?.delays ?? RECONNECT_DELAYS_MS);
    this._handlers = new Map(); // "add:Type" ... -> Set(fn)
    this._codec = null; // the client's, once loaded
    this._ws = null;
    this._wsUrl = null;
    this._stopped = false;
    this._resync = false;
    this._pingTimer = null;
    this._own = null;
    this._clock = null;
    this._lastInputAt = -Infinity;
    this._wasActive = false;
    this._streams = false; // told the server that our streams end with a null input
    this._wake = null; // ends the current wait between reconnection attempts
    this._cancelAttempt = null; // abandons the reconnection attempt under way
    this._retryAtOnce = false;
  }

  // -- callbacks: each returns a function that removes it --------------------------------

  // Per update: removals, then additions, then changes. With per-player views an entity
  // also appears when it comes into this player's view (its interest area, a group) and
  // goes when it leaves it; one moving between two cells the player sees only changes.

  /**
   * An entity appeared (of `type`, or any type when only `fn` is given): fn(entity).
   * Entities already in the state are passed to fn at once, so a callback added after
   * `await join()` misses none (the first snapshot may come with the welcome).
   */
  onAdd(type, fn) {
    const off = this._on("add", type, fn);
    const [only, cb] = typeof type === "function" ? [null, type] : [type, fn];
    for (const entity of [...(this.state?.entities.values() ?? [])]) {
      if (only !== null && entity.type !== only) continue;
      try {
        cb(entity);
      } catch (err) {
        console.error("gameserver: an add callback failed:", err);
      }
    }
    return off;
  }

  /** An entity's fields changed: fn(entity, fieldNames). */
  onChange(type, fn) { return this._on("change", type, fn); }

  /** An entity is gone: fn(entity). */
  onRemove(type, fn) { return this._on("remove", type, fn); }

  /** A broadcast event in an update (arena: "chat", "joined", "left"): fn(body, kind). */
  onEvent(kind, fn) { return this._on("event", kind, fn); }

  /** A message from the room to this player only: fn(body, kind). */
  onMessage(kind, fn) { return this._on("message", kind, fn); }

  /** After every update, once the callbacks above ran: fn(state, room). */
  onStateChange(fn) { return this._on("state", "*", fn); }

  /** The server refused something we sent (an ERROR): fn(code, message, seq). */
  onError(fn) { return this._on("error", "*", fn); }

  /** connecting | playing | reconnecting | ended, with details: fn(status, info). */
  onStatus(fn) { return this._on("status", "*", fn); }

  /** The seat is ours again after a drop (`info.resumed`: the same seat): fn(info). */
  onReconnect(fn) { return this._on("reconnect", "*", fn); }

  /**
   * The room is over for us: fn(code, text, consented). `consented`: we called
   * leave(); otherwise kicked, the room closed, or reconnecting was given up.
   */
  onLeave(fn) { return this._on("leave", "*", fn); }

  // -- sending ------------------------------------------------------------------------------

  /** A typed message to the room (chat, ready, ...). False if not connected. */
  send(kind, body) {
    this._noSpectator("send()");
    return this._send([C_MESSAGE, kind, body]);
  }

  /**
   * Send one input, numbered; predicted at once if predict() was called. Returns
   * its seq, or 0 when it cannot be sent now (not playing, resyncing after a
   * reconnection, the prediction not seeded yet, or too many unacknowledged).
   * Unacknowledged inputs are resent after a reconnection to the same seat.
   */
  sendInput(input) {
    this._noSpectator("sendInput()");
    if (this.status !== "playing" || this._resync || this.pending.length >= this.maxPending) return 0;
    // After the ack too: the server may have stood in for a seq not sent yet (PROTOCOL §2).
    let seq = Math.max(this.seq, this.state?.ack ?? 0) + 1;
    if (this.predictor) {
      seq = this.predictor.applyInput(input, seq);
      if (!seq) return 0;
    }
    this.seq = seq;
    this.pending.push({ seq, input });
    this._send([C_INPUT, seq, input]);
    return seq;
  }

  /**
   * An input clock for held controls: call often (every frame and from a timer)
   * with the current input, or null when idle. Sends one input per server tick
   * while active, the first one at once on a fresh press, and a null input when
   * the control is let go (the server then stops standing in for late inputs:
   * docs/PROTOCOL.md §2, *Inputs*); tells the predictor when a tick passes idle.
   * Returns how many inputs it sent.
   */
  pumpInput(input, at = now()) {
    this._noSpectator("pumpInput()");
    if (this.status !== "playing" || this._resync) return 0;
    if (this.predictor && !this.predictor.ready) return 0;
    this._clock ??= new StepClock(this.tickMs, 3);
    const active = input !== null && input !== undefined;
    let sent = 0;
    const send = () => {
      if (!this.sendInput(input)) return;
      this._lastInputAt = at;
      sent++;
    };
    if (!active && !this._streams) {
      // One null while idle, first: the server then knows a missing input in our streams
      // is late, not the end of a discrete command, and stands in for it (PROTOCOL §2).
      this._streams = Boolean(this.sendInput(null));
      return this._streams ? 1 : 0;
    }
    if (active && !this._wasActive && at - this._lastInputAt >= this.tickMs) {
      this._clock.restart(at); // respond to a fresh press at once, not at the next tick
      send();
    } else {
      const steps = this._clock.advance(at);
      if (active) {
        for (let i = 0; i < steps; i++) send();
      } else if (this._wasActive) {
        send(); // null: let go, the stream of inputs ends here
      } else if (steps) {
        this.predictor?.hold(); // a step without input: stand still
      }
    }
    this._wasActive = active;
    return sent;
  }

  /** Leave on purpose: LEAVE, then a normal close; the seat is freed at once. */
  leave() {
    if (this._stopped) return;
    this._stopped = true;
    this._wake?.(); // a reconnection waiting to try again stops now
    const ws = this._ws;
    try {
      if (ws && ws.readyState === OPEN) {
        ws.send(this._codec.encode([C_LEAVE]));
        ws.close(CLOSE.NORMAL, "left");
      } else if (ws && ws.readyState === CONNECTING) {
        ws.close(CLOSE.NORMAL, "left");
      }
    } catch {
      // closing anyway
    }
    this._stopTimers();
    const text = closeText(CLOSE.NORMAL);
    this._setStatus("ended", { text, code: CLOSE.NORMAL });
    this._emit("leave", "*", CLOSE.NORMAL, text, true);
  }

  // -- netcode helpers ---------------------------------------------------------------------

  /**
   * Predict our own entity with the game's rule. `own(room)` finds it in
   * `room.state` (e.g. the Avatar whose pid is room.playerId); its values are the
   * server state each update reconciles with. Options: those of Predictor.
   */
  predict(step, { own, ...options }) {
    this._noSpectator("predict()");
    if (typeof own !== "function") throw new TypeError("predict(step, {own}): own(room) finds our entity");
    this._own = own;
    this.predictor = new Predictor(step, { config: this.config, ...options });
    return this.predictor;
  }

  /** Our entity as the server last sent it (via predict()'s `own`), or null. */
  ownEntity() {
    return this._own && this.state ? this._own(this) ?? null : null;
  }

  /** What to draw for our entity: predicted and smoothed (null before the first update). */
  predicted(at = now()) {
    if (!this.predictor?.ready) return null;
    return this.predictor.renderState(this._clock ? this._clock.alpha(at) : 1);
  }

  /**
   * Interpolate the entities `filter(entity, room)` accepts: each update pushes
   * Map(uid -> {id, type, ...values}); draw `interpolator.sample(performance.now())`.
   * Options: those of Interpolator (delayMs defaults to max(100 ms, 2.5 ticks)).
   */
  interpolate({ filter = () => true, ...options } = {}) {
    const interp = new Interpolator(this.tickMs,
      { delayMs: Math.max(100, 2.5 * this.tickMs), ...options });
    this.interpolators.push({ interp, filter });
    return interp;
  }

  /** Network figures for a HUD. */
  stats(at = now()) {
    return {
      rttMs: this.rtt === null ? null : Math.round(this.rtt),
      tickRate: this.tickRate,
      serverTick: this.serverTick,
      updatesPerSec: this.updates.rate(at),
      bytesPerSec: this.bytes.rate(at),
      pendingInputs: this.pending.length,
      reconnects: this.reconnects,
    };
  }

  // -- life ----------------------------------------------------------------------------------

  async _start(wsUrl, request = null) {
    this._setStatus("connecting", {});
    try {
      this._codec = await this.client._codec();
      if (request) {
        const reservation = await this.client.matchmake(this._matchBody(request));
        this.name = reservation.name ?? null;
        this.id = reservation.room_id;
        wsUrl = reservation.ws_url;
      }
      await this._connect(wsUrl);
    } catch (err) {
      this._stopped = true;
      this._setStatus("ended", { text: err.message });
      throw err;
    }
  }

  _matchBody(request) {
    const o = this.joinOptions;
    const body = { game: this.game, ...request };
    if (this.spectator) {
      // A pass to watch: no name, options or seat; the server ignores a name anyway.
      if (o.auth !== undefined) body.auth = o.auth;
      return body;
    }
    if (this.name !== null && this.name !== undefined) body.name = this.name;
    if (o.options !== undefined) body.options = o.options;
    if (o.auth !== undefined) body.auth = o.auth;
    return body;
  }

  _connect(url, resume = false, handshakeMs = WELCOME_TIMEOUT_MS) {
    return new Promise((resolve, reject) => {
      let ws;
      try {
        ws = this.client._socket(url);
      } catch (err) {
        reject(err);
        return;
      }
      this._wsUrl = url;
      ws.binaryType = "arraybuffer";
      this._ws = ws;
      let welcomed = false;
      let lastError = null;
      let closeOverride = 0;
      // No WELCOME in time (or retryNow()): give up on this socket now (a black-holed one
      // may not even report its close for a long while); as a drop, so a token is kept.
      const abandon = (why) => {
        if (welcomed || ws !== this._ws) return;
        this._ws = null;
        try {
          ws.close();
        } catch {
          // gone anyway
        }
        reject(new ConnectError(CLOSE.ABNORMAL, why, lastError));
      };
      const timeout = setTimeout(() => abandon("no welcome in time"), handshakeMs);
      if (resume) this._cancelAttempt = () => abandon("tried again");
      ws.onmessage = (ev) => {
        if (ws !== this._ws) return;
        const at = now();
        this._lastFrameAt = at; // any frame says the connection is alive (the watchdog)
        const data = ev.data;
        let msg;
        try {
          msg = this._codec.decode(data);
        } catch (err) {
          console.warn("gameserver: undecodable frame", err);
          return;
        }
        if (!Array.isArray(msg)) return;
        const kind = msg[0];
        const size = data.byteLength ?? data.length ?? 0;
        if (kind === S_WELCOME) {
          welcomed = true;
          clearTimeout(timeout);
          this._welcome(msg, resume);
          resolve();
        } else if (kind === S_SNAPSHOT || kind === S_DELTA) {
          this.bytes.add(at, size);
          try {
            this.state.apply(msg);
          } catch (err) {
            // Our copy no longer matches the server's: rejoin for a fresh snapshot.
            console.warn("gameserver: resyncing after a bad update:", err.message);
            closeOverride = CLOSE.DESYNC;
            ws.close(CLOSE.DESYNC, "desync");
            return;
          }
          this._updated(at);
        } else {
          this.bytes.add(at, size);
          if (kind === S_PONG) {
            const rtt = at - msg[1];
            this.rtt = this.rtt === null ? rtt : this.rtt * 0.7 + rtt * 0.3;
            this.lastRtt = rtt;
            this.serverTick = msg[2];
          } else if (kind === S_QUIET) {
            this.lastQuiet = msg[1]; // nothing changed since that tick: the room is alive
          } else if (kind === S_INPUT_LEAD) {
            // Our inputs reach the server late: run the input clock that much further
            // ahead, a little faster for a moment rather than in one hop (PROTOCOL §2).
            if (Number.isInteger(msg[1]) && msg[1] > 0 && msg[1] <= 3) this._clock?.hurry(msg[1]);
          } else if (kind === S_ERROR) {
            lastError = msg;
            // [15, code, message] or, for a refused INPUT, [15, code, message, seq].
            if (typeof msg[3] === "number") {
              this.predictor?.refuse(msg[3]);
              this.pending = this.pending.filter((p) => p.seq !== msg[3]);
            }
            this._emit("error", "*", msg[1], msg[2], msg[3]);
          } else if (kind === S_MESSAGE) {
            this._emit("message", msg[1], msg[2], msg[1]);
          }
        }
      };
      ws.onclose = (ev) => {
        clearTimeout(timeout);
        if (ws !== this._ws) return;
        const code = closeOverride || ev.code;
        if (!welcomed) {
          reject(new ConnectError(code, ev.reason, lastError));
          return;
        }
        this._dropped(code, ev.reason);
      };
    });
  }

  _welcome(msg, resume) {
    const [, version, roomId, game, playerId, tickRate, schema, config, reconnectToken, keepalive] = msg;
    if (version !== PROTOCOL_VERSION) {
      console.warn(`gameserver: protocol version ${version}, expected ${PROTOCOL_VERSION}`);
    }
    this.reconnectToken = reconnectToken ?? null;
    this._stopTimers();
    this.keepalive = typeof keepalive === "number" && keepalive > 0 ? keepalive : 0;
    this.quiet = this.keepalive > 0;
    // A quiet room's keep-alive tells us it is alive: ping (for the RTT) only as often.
    this._pingTimer = setInterval(() => this._ping(), Math.max(PING_EVERY_MS, this.keepalive * 1000));
    this._ping();
    this._lastFrameAt = now();
    const silence = this.silenceWindow();
    if (silence) {
      this._watchdog = setInterval(() => this._checkSilence(silence), Math.min(1000, silence / 3));
    }
    const sameSeat = resume && !this.spectator && playerId === this.playerId && roomId === this.id;
    const sameSchema = this.state && JSON.stringify(schema) === JSON.stringify(this.schema);
    this.id = roomId;
    this.game = game;
    this.playerId = playerId;
    this.tickRate = tickRate;
    this.tickMs = 1000 / tickRate;
    this.config = config;
    this.schema = schema;
    if (this.predictor) this.predictor.config = config;
    for (const { interp } of this.interpolators) {
      interp.tickMs = this.tickMs;
      interp.reset();
    }
    if (!this.state) {
      this.state = new Replica(schema);
    } else if (sameSchema) {
      this.state.tick = -1; // the next update is a snapshot; it is diffed against what we have
    } else {
      for (const entity of this.state.entities.values()) this._emitEntity("remove", entity);
      this.state.reset(schema);
    }
    if (sameSeat) {
      // Same seat: keep the prediction and the unacknowledged inputs (the server
      // forgot the ones in flight); they are resent after the next update's ack.
      this._resync = true;
      this.predictor?.reseed();
    } else {
      // A new seat (first join, or a rejoin after the old one was refused).
      this._resync = false;
      this.pending = [];
      this.predictor?.reset();
      this.seq = 0;
      this._clock = null;
      this._lastInputAt = -Infinity;
      this._wasActive = false;
      this._streams = false; // a new socket, maybe a new seat: say it again
      if (resume) this.predictor?.reseed(); // blend from where we were drawn
    }
    const info = { resumed: sameSeat };
    this._setStatus("playing", info);
    if (resume) {
      this.reconnects++;
      this._emit("reconnect", "*", info);
    }
  }

  // After an update is applied: inputs, prediction, interpolation, then callbacks.
  _updated(at, quiet = false) {
    const state = this.state;
    this.updates.add(at, 1);
    const ack = state.ack;
    if (this.pending.length && this.pending[0].seq <= ack) {
      this.pending = this.pending.filter((p) => p.seq > ack);
    }
    if (ack > this.seq) this.seq = ack;
    let own = null;
    try {
      own = this._own ? this.ownEntity() : null;
      if (this.predictor && own) this.predictor.reconcile(own.values, ack);
    } catch (err) {
      console.error("gameserver: prediction failed (the game's own() or step()):", err);
    }
    if (this._resync) {
      this._resync = false;
      if (!this._own || own) {
        for (const p of this.pending) this._send([C_INPUT, p.seq, p.input]);
      } else {
        this.pending = []; // no entity of ours: start over with the next one seen
        this.predictor?.reset();
        this.predictor?.reseed();
      }
    }
    for (const { interp, filter } of this.interpolators) {
      const entities = new Map();
      try {
        for (const e of state.entities.values()) {
          if (filter(e, this)) entities.set(e.uid, { id: e.id, type: e.type, ...e.values });
        }
      } catch (err) {
        console.error("gameserver: an interpolate() filter failed:", err);
      }
      interp.push(state.tick, at, entities);
    }
    for (const entity of state.removed) this._emitEntity("remove", entity);
    for (const entity of state.added) this._emitEntity("add", entity);
    for (const [entity, fields] of state.changed) this._emitEntity("change", entity, fields);
    this._emit("state", "*", state, this);
    if (quiet) return; // a replay's seek: the events of the updates skipped are not news
    for (const [kind, body] of state.events) this._emit("event", kind, body, kind);
  }

  _dropped(code, reason) {
    this._stopTimers();
    if (this._stopped) return;
    if (!shouldReconnect(code) || !this.reconnectDelays.length) {
      this._end(closeText(code, reason), code);
      return;
    }
    this._reconnect(code, reason);
  }

  /**
   * While reconnecting, stop waiting and try at once (a "Retry now" button; the
   * browser coming back online). True if an attempt was started; a no-op otherwise.
   */
  retryNow() {
    if (this.status !== "reconnecting") return false;
    if (this._wake) {
      this._wake();
    } else if (this._cancelAttempt) {
      this._retryAtOnce = true; // an attempt still waiting on the network: start afresh
      this._cancelAttempt();
    } else {
      return false;
    }
    return true;
  }

  async _reconnect(code, reason) {
    const why = closeText(code, reason);
    const delays = this.reconnectDelays;
    const started = now();
    const total = delays.reduce((a, b) => a + b, 0);
    const win = typeof window === "undefined" ? null : window;
    const online = () => this.retryNow();
    win?.addEventListener?.("online", online);
    try {
      let fast = false; // the last attempt failed at once: the next waits the short delay
      // Every delay is tried; fast failures (offline) go on at the short delay until
      // the schedule's time is spent, so being offline does not use up the attempts.
      let attempt = 0;
      while (attempt < delays.length || now() - started < 0.8 * total) {
        attempt++;
        const planned = fast ? delays[0] : delays[Math.min(attempt, delays.length) - 1];
        const delay = planned * (0.8 + 0.4 * Math.random());
        this._setStatus("reconnecting",
          { attempt, retryAt: now() + delay, retryInMs: delay, text: why, code });
        await this._wait(delay);
        if (this._stopped) return;
        const tried = now();
        const early = tried - started < EARLY_RECONNECT_MS;
        const result = await this._attempt(why, code, early ? EARLY_HANDSHAKE_MS : WELCOME_TIMEOUT_MS)
          .finally(() => { this._cancelAttempt = null; });
        if (result === "ok" || result === "ended") return;
        if (result === "lost") break;
        fast = result === "unreached" && now() - tried < FAST_FAIL_MS;
      }
      this._end(`${why} Gave up reconnecting after ${attempt} attempts.`, code);
    } finally {
      win?.removeEventListener?.("online", online);
    }
  }

  /** Sleep `ms`, or less if retryNow() wakes us. */
  _wait(ms) {
    if (this._retryAtOnce) ms = 0; // retryNow() during the last attempt
    this._retryAtOnce = false;
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        if (this._wake === done) this._wake = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this._wake = done;
    });
  }

  /**
   * One reconnection attempt: "ok", "ended" (final), "lost" (nothing to rejoin),
   * "unreached" (never reached the server) or "failed".
   */
  async _attempt(why, code, handshakeMs) {
    const token = this.reconnectToken;
    if (token) {
      // First choice: our own seat back, with the single-use token from WELCOME.
      this.reconnectToken = null;
      try {
        await this._connect(resumeUrl(this._wsUrl, token), true, handshakeMs);
        return "ok";
      } catch (err) {
        if (this._stopped) return "ended";
        // Never reached the server: the token is still good for the next attempt.
        if (err instanceof ConnectError && err.code === CLOSE.ABNORMAL) {
          this.reconnectToken = token;
          return "unreached";
        }
        // Refused (the seat is gone): fall through to a new seat in the same room.
      }
    }
    if (!this.game) return "lost"; // resumed by token alone: we do not know what to rejoin
    const abort = typeof AbortController === "function" ? new AbortController() : null;
    const timer = abort && setTimeout(() => abort.abort(), handshakeMs);
    if (abort) this._cancelAttempt = () => abort.abort();
    try {
      // A spectator has no token: it always comes back with a new pass to the same room.
      const mode = this.spectator ? "spectate" : "join";
      const reservation = await this.client.matchmake(this._matchBody({ mode, room_id: this.id }),
        { signal: abort?.signal });
      clearTimeout(timer);
      if (this._stopped) return "ended";
      await this._connect(reservation.ws_url, true, handshakeMs);
      return "ok";
    } catch (err) {
      clearTimeout(timer);
      if (this._stopped) return "ended";
      if (err instanceof MatchmakeError && isFinalMatchmakeError(err.code)) {
        this._end(`${why} Couldn't rejoin: ${err.message}`, code);
        return "ended";
      }
      if (err instanceof ConnectError && !shouldReconnect(err.code)) {
        this._end(`${why} Couldn't rejoin: ${err.message}`, err.code);
        return "ended";
      }
      const unreached = (err instanceof MatchmakeError && err.code === "network")
        || (err instanceof ConnectError && err.code === CLOSE.ABNORMAL);
      return unreached ? "unreached" : "failed";
    }
  }

  _noSpectator(what) {
    if (this.spectator) {
      throw new Error(`gameserver SDK: ${what}: this Room is a spectator (client.spectate()); `
        + "spectators cannot send inputs or room messages");
    }
  }

  _end(text, code) {
    this._stopped = true;
    this._stopTimers();
    this._setStatus("ended", { text, code });
    this._emit("leave", "*", code, text, false);
  }

  _setStatus(status, info) {
    this.status = status;
    this.statusInfo = info;
    this._emit("status", "*", status, info);
  }

  _stopTimers() {
    if (this._pingTimer !== null) clearInterval(this._pingTimer);
    this._pingTimer = null;
    if (this._watchdog !== null) clearInterval(this._watchdog);
    this._watchdog = null;
  }

  /** How long (ms) without any frame before the socket is taken for lost; 0: never. */
  silenceWindow() {
    if (this.silenceMs === false) return 0;
    if (typeof this.silenceMs === "number") return this.silenceMs;
    return Math.max(MIN_SILENCE_MS, 3000 * this.keepalive);
  }

  // Nothing at all arrived for `silence` ms (no update, no QUIET, no PONG): the connection
  // is gone even if the socket has not said so (a black hole). Drop it and reconnect.
  _checkSilence(silence) {
    const ws = this._ws;
    if (!ws || this.status !== "playing" || now() - this._lastFrameAt <= silence) return;
    this._ws = null; // its close, whenever it comes, is not news
    try {
      ws.close();
    } catch {
      // gone anyway
    }
    this._dropped(CLOSE.ABNORMAL, "no frame from the server in time");
  }

  _send(message) {
    const ws = this._ws;
    if (!ws || ws.readyState !== OPEN) return false;
    ws.send(this._codec.encode(message));
    return true;
  }

  _ping() {
    this._send([C_PING, now()]);
  }

  _on(what, key, fn) {
    if (typeof key === "function") [key, fn] = ["*", key];
    if (typeof fn !== "function") throw new TypeError(`on${what}: a callback is required`);
    const name = `${what}:${key}`;
    if (!this._handlers.has(name)) this._handlers.set(name, new Set());
    this._handlers.get(name).add(fn);
    return () => this._handlers.get(name)?.delete(fn);
  }

  _emitEntity(what, entity, fields) {
    this._emit(what, entity.type, entity, fields);
    this._emit(what, "*", entity, fields);
  }

  // A callback that throws is reported, never allowed to break the session.
  _emit(what, key, ...args) {
    const names = key === "*" || what === "add" || what === "change" || what === "remove"
      ? [`${what}:${key}`] : [`${what}:${key}`, `${what}:*`];
    for (const name of names) {
      const fns = this._handlers.get(name);
      if (!fns) continue;
      for (const fn of [...fns]) {
        try {
          fn(...args);
        } catch (err) {
          console.error(`gameserver: an ${what} callback failed:`, err);
        }
      }
    }
  }
}

// -- recordings ---------------------------------------------------------------------------
// A room recorded with `gameserver --record DIR` (docs/PROTOCOL.md §8), played as if
// it were a live room: the Replay's `room` is a spectator Room (same replica,
// callbacks and interpolate()) fed from the file instead of a socket, so a game
// client renders both unchanged. gameserver/core/recording.py is the reference reader.

const REC_MAGIC = "gsrec";
const REC_VERSION = 1;
const SNAPSHOT_PREFIX = [0x95, S_SNAPSHOT, 0x00];
const DELTA_PREFIX = [0x98, S_DELTA, 0x00];
const FIXED_SIZE = {
  0xc0: 1, 0xc2: 1, 0xc3: 1, 0xca: 5, 0xcb: 9, 0xcc: 2, 0xcd: 3, 0xce: 5, 0xcf: 9, 0xd0: 2,
  0xd1: 3, 0xd2: 5, 0xd3: 9, 0xd4: 3, 0xd5: 4, 0xd6: 6, 0xd7: 10, 0xd8: 18,
};

export class RecordingError extends Error {}

// Where the msgpack object at `i` ends, or -1 when the data stops first (a cut file).
function msgpackEnd(b, i) {
  const n = b.length;
  if (i >= n) return -1;
  const t = b[i];
  if (t <= 0x7f || t >= 0xe0) return i + 1;
  if (FIXED_SIZE[t]) return i + FIXED_SIZE[t] > n ? -1 : i + FIXED_SIZE[t];
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const u = (at, width) => {
    if (at + width > n) return -1;
    return width === 1 ? b[at] : width === 2 ? dv.getUint16(at) : dv.getUint32(at);
  };
  let head = 1;
  let size = 0; // raw bytes after the head
  let count = 0; // objects after the head
  if ((t & 0xf0) === 0x80) count = 2 * (t & 0x0f);
  else if ((t & 0xf0) === 0x90) count = t & 0x0f;
  else if ((t & 0xe0) === 0xa0) size = t & 0x1f;
  else {
    const width = { 0xc4: 1, 0xd9: 1, 0xc5: 2, 0xda: 2, 0xc6: 4, 0xdb: 4, 0xc7: 1, 0xc8: 2, 0xc9: 4,
      0xdc: 2, 0xdd: 4, 0xde: 2, 0xdf: 4 }[t];
    if (width === undefined) throw new RecordingError(`not msgpack: byte 0x${t.toString(16)} at ${i}`);
    const len = u(i + 1, width);
    if (len < 0) return -1;
    head = 1 + width;
    if (t >= 0xdc) count = t >= 0xde ? 2 * len : len;
    else if (t >= 0xc7 && t <= 0xc9) [head, size] = [head + 1, len]; // ext: a type byte too
    else size = len;
  }
  let end = i + head + size;
  if (end > n) return -1;
  for (let k = 0; k < count; k++) {
    end = msgpackEnd(b, end);
    if (end < 0) return -1;
  }
  return end;
}

function asBytes(data) {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new TypeError("openRecording: bytes (Uint8Array or ArrayBuffer) are required");
}

async function gunzip(bytes) {
  if (typeof DecompressionStream === "undefined") {
    throw new RecordingError("a gzipped recording, and no DecompressionStream here to open it");
  }
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  const chunks = [];
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
    }
  } catch {
    // a gzip stream cut short: keep what came out (a recording reads up to a cut)
  }
  return new Uint8Array(await new Blob(chunks).arrayBuffer());
}

/**
 * A recording's header and frames [{kind: "k"|"d", ms, message}] (the SNAPSHOT or
 * DELTA a spectator got, decoded). A frame cut short at the end is left out.
 */
export function readRecording(bytes, codec) {
  const b = asBytes(bytes);
  let header = null;
  const frames = [];
  let i = 0;
  while (i < b.length) {
    const end = msgpackEnd(b, i);
    if (end < 0) break; // cut short: the rest is a frame still being written
    const item = codec.decode(b.subarray(i, end));
    i = end;
    if (!Array.isArray(item) || !item.length) throw new RecordingError("not a recording frame");
    if (item[0] === REC_MAGIC) {
      if (item[1] !== REC_VERSION) {
        throw new RecordingError(`recording version ${item[1]} (this reads ${REC_VERSION})`);
      }
      header = header ?? item[2];
    } else if ((item[0] === "k" || item[0] === "d") && item.length === 3 && header) {
      const tail = asBytes(item[2]);
      const raw = new Uint8Array(3 + tail.length);
      raw.set(item[0] === "k" ? SNAPSHOT_PREFIX : DELTA_PREFIX);
      raw.set(tail, 3);
      frames.push({ kind: item[0], ms: Number(item[1]), message: codec.decode(raw) });
    } else {
      throw new RecordingError("not a recording (no header, or an unknown frame)");
    }
  }
  if (!header) throw new RecordingError("not a recording: no header");
  if (!frames.some((f) => f.kind === "k")) throw new RecordingError("a recording without a keyframe");
  return { header, frames };
}

/**
 * Open a recording (its bytes; a gzipped part is unzipped) as a Replay: `room` is a
 * spectator Room fed from the file. Options: `codec` (default: loadCodec()).
 */
export async function openRecording(data, { codec } = {}) {
  let bytes = asBytes(data);
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) bytes = await gunzip(bytes);
  const { header, frames } = readRecording(bytes, codec ?? await loadCodec());
  return new Replay(header, frames);
}

/**
 * A recording played as a room: play(), pause(), `speed`, seek(ms), `time`, and the
 * timeline of its `events`. `room` has the state, callbacks and interpolate() of a
 * spectator's Room. Seeking applies the last keyframe at or before the time, then the
 * updates up to it; callbacks report the net change, and the skipped updates' events
 * are not fired (they are all in `events`).
 */
export class Replay {
  constructor(header, frames) {
    this.header = header;
    this.frames = frames;
    const first = frames.findIndex((f) => f.kind === "k");
    this._first = first;
    this.start = frames[first].ms;
    this.duration = frames[frames.length - 1].ms;
    const room = new Room({ options: {} }, { game: header.game, name: null, private: false,
      options: { reconnect: false }, roomId: header.room_id, spectator: true });
    room.tickRate = header.tick_rate;
    room.tickMs = 1000 / header.tick_rate;
    room.config = header.config;
    room.schema = header.schema;
    room.state = new Replica(header.schema);
    room._stopped = true; // never a socket
    room.status = "playing";
    room.replay = this;
    this.room = room;
    this.events = [];
    this.ticks = []; // the tick of every frame, for the timeline
    for (let i = 0; i < frames.length; i++) {
      const f = frames[i];
      this.ticks.push(f.message[2]);
      if (i < first || (f.kind === "k" && i !== first)) continue; // a later keyframe repeats its update
      for (const [kind, body] of f.message[f.kind === "k" ? 4 : 7]) {
        this.events.push({ ms: f.ms, tick: f.message[2], kind, body });
      }
    }
    this._pos = -1; // the last frame applied
    this._time = 0;
    this._speed = 1;
    this.playing = false;
    this._timer = null;
    this._wall = 0;
    this._handlers = new Set();
    this.seek(this.start);
  }

  /** Playback position, ms from the recording's start (header.started). */
  get time() { return this._time; }

  /** The replica's tick now. */
  get tick() { return this.room.state.tick; }

  get speed() { return this._speed; }

  /** Playback rate, 0.25 to 8. */
  set speed(value) {
    const v = Math.min(8, Math.max(0.25, Number(value) || 1));
    if (v === this._speed) return;
    this._speed = v;
    this._retime();
  }

  play() {
    if (this.playing) return;
    if (this._time >= this.duration) this.seek(this.start);
    this.playing = true;
    this._wall = now();
    this._retime();
    this._timer = setInterval(() => this._advance(), 10);
    this._notify();
  }

  pause() {
    if (!this.playing) return;
    this._advance();
    this.playing = false;
    clearInterval(this._timer);
    this._timer = null;
    this._notify();
  }

  /** Stop for good (timers off); the room ends. */
  close() {
    this.pause();
    this.room._setStatus("ended", { text: "The replay was closed." });
  }

  /** After each update, seek, play or pause: fn(replay). Returns a remover. */
  onUpdate(fn) {
    this._handlers.add(fn);
    return () => this._handlers.delete(fn);
  }

  /** Go to `ms`: the last keyframe at or before it, then the updates up to it. */
  seek(ms) {
    const target = Math.min(this.duration, Math.max(this.start, Number(ms) || 0));
    const frames = this.frames;
    let last = this._first; // last frame with ms <= target
    while (last + 1 < frames.length && frames[last + 1].ms <= target) last++;
    let key = this._first;
    for (let i = last; i >= this._first; i--) {
      if (frames[i].kind === "k") {
        key = i;
        break;
      }
    }
    const state = this.room.state;
    const before = new Map();
    for (const e of state.entities.values()) before.set(e, { ...e.values });
    if (!(this._pos >= key && this._pos <= last)) this._apply(key); // else: on from here
    this._applyUpTo(last);
    // The net change since before the seek, for the callbacks.
    state.added = [];
    state.removed = [];
    state.changed = [];
    for (const [entity, values] of before) {
      if (state.entities.get(entity.id) !== entity) state.removed.push(entity);
      else {
        const fields = Object.keys(entity.values).filter((f) => !Object.is(values[f], entity.values[f])
          && JSON.stringify(values[f]) !== JSON.stringify(entity.values[f]));
        if (fields.length) state.changed.push([entity, fields]);
      }
    }
    for (const e of state.entities.values()) if (!before.has(e)) state.added.push(e);
    this._time = target;
    this._wall = now();
    this._retime();
    this.room._updated(now(), true);
    this._notify();
  }

  _apply(i) {
    this.room.state.apply(this.frames[i].message);
    this._pos = i;
  }

  // Apply the frames after the current one up to `last`: deltas; a keyframe only when
  // the chain of deltas is broken (a frame lost), to get back in step.
  _applyUpTo(last, emit = null) {
    const frames = this.frames;
    const state = this.room.state;
    for (let i = this._pos + 1; i <= last; i++) {
      const f = frames[i];
      if (f.kind === "k") {
        if (f.message[2] === state.tick) {
          this._pos = i;
          continue;
        }
      } else if (f.message[3] !== state.tick) {
        this._pos = i; // a delta we cannot apply: wait for the next keyframe
        continue;
      }
      this._apply(i);
      emit?.();
    }
    this._pos = Math.max(this._pos, last);
  }

  _advance() {
    if (!this.playing) return;
    const t = now();
    this._time = Math.min(this.duration, this._time + (t - this._wall) * this._speed);
    this._wall = t;
    let last = this._pos;
    while (last + 1 < this.frames.length && this.frames[last + 1].ms <= this._time) last++;
    let changed = false;
    if (last > this._pos) {
      this._applyUpTo(last, () => {
        changed = true;
        this.room._updated(t);
      });
    }
    if (this._time >= this.duration) {
      this.playing = false;
      clearInterval(this._timer);
      this._timer = null;
      changed = true;
    }
    if (changed) this._notify();
  }

  // Interpolators see ticks arrive `speed` times as fast: scale their tick length so
  // the clock mapping stays steady, and start them over after a jump.
  _retime() {
    for (const { interp } of this.room.interpolators) {
      interp.tickMs = this.room.tickMs / this._speed;
      interp.reset();
    }
    const state = this.room.state;
    if (state && state.tick >= 0) {
      for (const { interp, filter } of this.room.interpolators) {
        const entities = new Map();
        for (const e of state.entities.values()) {
          if (filter(e, this.room)) entities.set(e.uid, { id: e.id, type: e.type, ...e.values });
        }
        interp.push(state.tick, now(), entities);
      }
    }
  }

  _notify() {
    for (const fn of [...this._handlers]) {
      try {
        fn(this);
      } catch (err) {
        console.error("gameserver: an onUpdate callback failed:", err);
      }
    }
  }
}

/**
 * Download a recording and open it: a URL (same origin or absolute), or a name from
 * GET /admin/recordings. `adminToken` is sent as `Authorization: Bearer`.
 */
Client.prototype.fetchRecording = async function fetchRecording(urlOrName, { adminToken, codec } = {}) {
  const url = /^[A-Za-z0-9._-]+$/.test(urlOrName) && !urlOrName.startsWith(".")
    ? `${this.baseUrl}/admin/recordings/${encodeURIComponent(urlOrName)}`
    : new URL(urlOrName, `${this.baseUrl}/`).href;
  const headers = adminToken ? { Authorization: `Bearer ${adminToken}` } : {};
  const resp = await this.fetch(url, { headers });
  if (!resp.ok) throw new RecordingError(`GET ${url}: HTTP ${resp.status} ${resp.statusText}`);
  return openRecording(await resp.arrayBuffer(), { codec: codec ?? this.codec ?? undefined });
};
