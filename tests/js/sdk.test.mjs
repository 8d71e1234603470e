// Unit tests of the JavaScript SDK (static/sdk/gameserver.js) under Node's test runner:
// the replica and its change lists, the Room's callbacks, inputs and reconnection
// against a fake socket and a fake fetch, and a Predictor with a game's own step
// function. No server: tests/test_sdk.py plays against a real one.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  C_INPUT, C_LEAVE, C_MESSAGE, C_PING, CLOSE, Client, ConnectError, Interpolator, MatchmakeError,
  MIN_SILENCE_MS, PROTOCOL_VERSION, S_QUIET, Predictor, RECONNECT_DELAYS_MS, Replica, ReplicaError, loadCodec,
} from "../../static/sdk/gameserver.js";

const codec = await loadCodec();
const SCHEMA = [["Dot", [["x", "i"], ["y", "i"], ["pid", "v"], ["name", "v"]]], ["Coin", [["v", "v"]]]];

// -- the replica ---------------------------------------------------------------------------

describe("Replica", () => {
  test("entities by id and by type, with what each update added, changed and removed", () => {
    const r = new Replica(SCHEMA);
    r.apply([11, 0, 5, [1, 0, 10, 20, 1, "ann", 2, 1, "gold"], [["joined", [1, "ann"]]]]);
    assert.deepEqual(r.view(), { 1: ["Dot", { x: 10, y: 20, pid: 1, name: "ann" }], 2: ["Coin", { v: "gold" }] });
    assert.deepEqual(r.added.map((e) => e.id), [1, 2]);
    assert.equal(r.ofType("Dot").length, 1);
    assert.equal(r.byType.get("Coin").get(2).values.v, "gold");
    assert.deepEqual(r.events, [["joined", [1, "ann"]]]);
    // Dot 1 moves +5 on x; coin 2 goes; dot 3 arrives.
    r.apply([12, 4, 6, 5, [3, 0, 1, 2, 2, "bob"], [1, 0b1, 5], [2], []]);
    assert.equal(r.ack, 4);
    assert.equal(r.tick, 6);
    assert.deepEqual(r.added.map((e) => e.id), [3]);
    assert.deepEqual(r.removed.map((e) => e.id), [2]);
    assert.deepEqual(r.changed.map(([e, f]) => [e.id, f]), [[1, ["x"]]]);
    assert.equal(r.get(1).values.x, 15);
    assert.deepEqual(r.ofType("Coin"), []);
  });

  test("a snapshot is diffed: the same id and type keeps its uid; only real changes count", () => {
    const r = new Replica(SCHEMA);
    r.apply([11, 0, 5, [1, 0, 10, 20, 1, "ann", 2, 1, "gold"], []]);
    const uid = r.get(1).uid;
    r.apply([11, 0, 9, [1, 0, 10, 25, 1, "ann", 2, 0, 0, 0, 2, "bob"], []]);
    assert.equal(r.get(1).uid, uid);
    assert.deepEqual(r.changed.map(([e, f]) => [e.id, f]), [[1, ["y"]]]);
    assert.deepEqual(r.removed.map((e) => e.type), ["Coin"], "id 2 is now another type");
    assert.deepEqual(r.added.map((e) => e.type), ["Dot"]);
    assert.notEqual(r.get(2).uid, uid);
  });

  test("protocol violations throw ReplicaError", () => {
    const r = new Replica(SCHEMA);
    r.apply([11, 0, 5, [1, 1, "x"], []]);
    assert.throws(() => r.apply([12, 0, 7, 6, [], [], [], []]), ReplicaError);
    assert.throws(() => r.apply([12, 0, 6, 5, [], [9, 1, 1], [], []]), ReplicaError);
    assert.throws(() => r.apply([12, 0, 6, 5, [], [], [9], []]), ReplicaError);
    assert.throws(() => r.apply([12, 0, 6, 5, [4, 7], [], [], []]), ReplicaError);
    assert.throws(() => r.apply([13, 0]), ReplicaError);
  });
});

// -- a Predictor with a game's own rule ------------------------------------------------

// A made-up game: a ship with a heading (degrees) and a speed along x; input
// {turn, thrust}; the state has fields the prediction must carry but not blend.
const shipStep = (s, { turn, thrust }, config) => {
  s.heading = (s.heading + turn * config.turnRate + 360) % 360;
  s.x = Math.min(config.width, s.x + thrust * config.accel);
  s.fuel -= thrust;
  return s;
};
const SHIP = { turnRate: 15, accel: 4, width: 1000 };

describe("Predictor with a custom step function", () => {
  test("predicts at once, reconciles each ack without a correction when the rules agree", () => {
    const p = new Predictor(shipStep, { config: SHIP, smooth: ["x"] });
    assert.equal(p.applyInput({ turn: 1, thrust: 1 }), 0, "nothing before the first server state");
    p.reconcile({ x: 100, heading: 0, fuel: 50 }, 0);
    const server = { x: 100, heading: 0, fuel: 50 };
    const inputs = [{ turn: 1, thrust: 1 }, { turn: -1, thrust: 2 }, { turn: 1, thrust: 0 }];
    for (const input of inputs) assert.ok(p.applyInput(input));
    assert.deepEqual(p.state, { x: 112, heading: 15, fuel: 47 });
    // The server applies the first two; the third is still in flight.
    shipStep(server, inputs[0], SHIP);
    shipStep(server, inputs[1], SHIP);
    assert.equal(p.reconcile({ ...server }, 2), 0);
    assert.deepEqual(p.pending.map((q) => q.seq), [3]);
    assert.deepEqual(p.state, { x: 112, heading: 15, fuel: 47 });
    assert.equal(p.renderState(1).x, 112);
  });

  test("a server-side difference is corrected, and the drawn x blends it out", () => {
    const p = new Predictor(shipStep, { config: SHIP, smooth: ["x"], smoothMs: 100 });
    p.reconcile({ x: 100, heading: 0, fuel: 50 }, 0);
    p.applyInput({ turn: 0, thrust: 1 });
    p.applyInput({ turn: 0, thrust: 1 });
    // The server pushed the ship back 20 units before applying input 1.
    const size = p.reconcile({ x: 84, heading: 0, fuel: 49 }, 1);
    assert.equal(size, 20);
    assert.deepEqual(p.state, { x: 88, heading: 0, fuel: 48 });
    assert.equal(p.renderState(1).x, 108, "drawn where it was");
    for (let i = 0; i < 20; i++) p.decay(16);
    assert.equal(p.renderState(1).x, 88);
    assert.equal(p.maxCorrection, 20);
  });

  test("refused inputs are dropped; the queue is bounded; the step gets a copy", () => {
    const mutating = (s, n) => { s.n += n; return s; };
    const p = new Predictor(mutating, { smooth: ["n"], maxPending: 5 });
    const seed = { n: 0 };
    p.reconcile(seed, 0);
    let sent = 0;
    for (let i = 0; i < 9; i++) if (p.applyInput(1)) sent++;
    assert.equal(sent, 5);
    assert.equal(seed.n, 0, "the server state passed in is never changed");
    p.refuse(3);
    assert.equal(p.reconcile({ n: 2 }, 2), 1, "re-predicted from inputs 4 and 5, not 3");
    assert.equal(p.state.n, 4);
  });

  test("Interpolator blends the fields it is told to", () => {
    const interp = new Interpolator(50, { delayMs: 100, fields: ["angle"] });
    interp.push(0, 0, new Map([["a", { angle: 0, label: "old" }]]));
    interp.push(1, 50, new Map([["a", { angle: 90, label: "new" }]]));
    const at = interp.sample(125); // render tick 0.5
    assert.deepEqual(at.get("a"), { angle: 45, label: "new" });
  });
});

// -- the Room against a fake server ----------------------------------------------------------

/** A WebSocket double: the test plays the server with welcome(), frame() and drop(). */
class FakeSocket {
  static all = [];

  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    this.closed = null;
    FakeSocket.all.push(this);
    queueMicrotask(() => {
      if (this.readyState === 0) this.readyState = 1;
    });
  }

  send(bytes) {
    assert.equal(this.readyState, 1, "sent on a socket that is not open");
    this.sent.push(codec.decode(bytes));
  }

  close(code = 1005, reason = "") {
    if (this.readyState >= 2) return;
    this.closed = [code, reason];
    this.readyState = 3;
    queueMicrotask(() => this.onclose?.({ code, reason }));
  }

  /** The server sends one message. */
  frame(message) {
    const bytes = codec.encode(message);
    this.onmessage({ data: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) });
  }

  /** The server (or the network) ends the connection. */
  drop(code = CLOSE.ABNORMAL, reason = "") {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }

  inputs() {
    return this.sent.filter((m) => m[0] === C_INPUT);
  }
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

async function until(check, what, ms = 2000) {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** A fake fetch answering /matchmake with reservations and recording the requests. */
function fakeServer() {
  const requests = [];
  let seat = 0;
  const refuse = new Map(); // path -> [status, code] for the next request
  const fetch = async (url, init = {}) => {
    const path = new URL(url).pathname;
    const body = init.body ? JSON.parse(init.body) : null;
    requests.push([path, body]);
    const answer = (status, data) => ({
      ok: status === 200, status, statusText: String(status), json: async () => data,
    });
    if (refuse.has(path)) {
      const [status, code] = refuse.get(path);
      refuse.delete(path);
      return answer(status, { error: code, message: code });
    }
    if (path === "/matchmake" && body.mode === "spectate") {
      seat++;
      return answer(200, { room_id: body.room_id ?? "R1", game: body.game, token: `w${seat}`,
        ws_url: `ws://game.test/ws?watch=w${seat}`, expires_in: 10, spectator: true, protocol: 1 });
    }
    if (path === "/matchmake") {
      seat++;
      return answer(200, { room_id: body.room_id ?? "R1", game: body.game, name: body.name ?? "player",
        token: `t${seat}`, ws_url: `ws://game.test/ws?token=t${seat}` });
    }
    if (path === "/reconnect") {
      return answer(200, { room_id: "R1", ws_url: `ws://game.test/ws?reconnect=${body.token}` });
    }
    if (path === "/rooms") return answer(200, { rooms: [{ room_id: "R1", game: "dots" }], next: null });
    return answer(404, { error: "not_found" });
  };
  return { fetch, requests, refuse };
}

const welcome = (pid, token, config = { step: 1 }) =>
  [10, PROTOCOL_VERSION, "R1", "dots", pid, 20.0, SCHEMA, config, token];

/** Join with the fake server; returns the room and the socket the server plays. */
async function joined(options = {}) {
  FakeSocket.all = [];
  const server = fakeServer();
  const client = new Client("http://game.test/", { WebSocket: FakeSocket, fetch: server.fetch,
    reconnect: { delays: [1, 1, 1] }, ...options });
  const joining = client.joinOrCreate("dots", { name: "ann", options: { mode: "x" } });
  await until(() => FakeSocket.all.length === 1, "a socket");
  const ws = FakeSocket.all[0];
  await tick();
  ws.frame(welcome(1, "R1.first"));
  const room = await joining;
  return { room, ws, server, client };
}

const dotStep = (s, [dx, dy], config) => ({ ...s, x: s.x + dx * config.step, y: s.y + dy * config.step });

describe("Room", () => {
  test("matchmakes, connects, and exposes the welcome", async () => {
    const { room, ws, server } = await joined();
    assert.deepEqual(server.requests[0], ["/matchmake",
      { game: "dots", mode: "join_or_create", name: "ann", options: { mode: "x" } }]);
    assert.equal(ws.url, "ws://game.test/ws?token=t1");
    assert.equal(ws.binaryType, "arraybuffer");
    assert.equal(room.id, "R1");
    assert.equal(room.playerId, 1);
    assert.equal(room.tickRate, 20);
    assert.equal(room.status, "playing");
    assert.equal(room.reconnectToken, "R1.first");
    assert.equal(ws.sent[0][0], C_PING, "it pings at once, for the RTT");
    ws.frame([13, ws.sent[0][1] - 40, 77]);
    assert.ok(room.rtt >= 40 && room.stats().rttMs >= 40);
    assert.equal(room.serverTick, 77);
    room.leave();
  });

  test("callbacks: add, change, remove per type and for all, events, messages, errors", async () => {
    const { room, ws } = await joined();
    const seen = [];
    room.onAdd("Dot", (e) => seen.push(["add Dot", e.id]));
    room.onAdd((e) => seen.push(["add", e.type]));
    room.onChange("Dot", (e, fields) => seen.push(["change", e.id, fields]));
    room.onRemove("Coin", (e) => seen.push(["remove", e.id]));
    room.onEvent("joined", (body) => seen.push(["joined", body]));
    room.onEvent((body, kind) => seen.push(["event", kind]));
    room.onMessage("hint", (body) => seen.push(["hint", body]));
    room.onError((code, message, seq) => seen.push(["error", code, seq]));
    const states = [];
    room.onStateChange((state) => states.push(state.tick));
    const off = room.onChange((e) => { throw new Error(`a broken callback ${e.id}`); });
    const logged = [];
    const consoleError = console.error;
    console.error = (...args) => logged.push(args);
    try {
      ws.frame([14, "hint", "welcome!"]);
      ws.frame([11, 0, 5, [1, 0, 10, 20, 1, "ann", 2, 1, "gold"], [["joined", [1, "ann"]]]]);
      ws.frame([12, 0, 6, 5, [], [1, 0b10, -3], [2], [["chat", "hi"]]]);
    } finally {
      console.error = consoleError;
    }
    off();
    ws.frame([15, "stale_seq", "seq went back", 9]);
    assert.deepEqual(seen, [
      ["hint", "welcome!"],
      ["add Dot", 1], ["add", "Dot"], ["add", "Coin"], ["joined", [1, "ann"]], ["event", "joined"],
      ["remove", 2], ["change", 1, ["y"]], ["event", "chat"],
      ["error", "stale_seq", 9],
    ]);
    assert.equal(logged.length, 1, "the throwing callback was reported, the rest still ran");
    assert.deepEqual(states, [5, 6]);
    assert.equal(room.state.get(1).values.y, 17);
    assert.equal(room.stats().updatesPerSec, 2);
    room.send("chat", "hello");
    assert.deepEqual(ws.sent.at(-1), [C_MESSAGE, "chat", "hello"]);
    room.leave();
  });

  test("view parts: a dot moving between two cells we see stays the same dot for callbacks "
    + "and interpolation", async () => {
    const { room, ws } = await joined();
    const seen = [];
    room.onAdd((e) => seen.push(["add", e.id]));
    room.onChange((e, fields) => seen.push(["change", e.id, fields]));
    room.onRemove((e) => seen.push(["remove", e.id]));
    const interp = room.interpolate({ delayMs: 0 });
    // Snapshot with a part: dot 2 (someone else's) is in a cell near us.
    ws.frame([11, 0, 5, [1, 0, 10, 20, 1, "ann"], [], [[[2, 0, 700, 20, 2, "bob"], [], []]]]);
    const uid = room.state.get(2).uid;
    // Bob crosses into the next cell: its old cell's part removes him, the new one creates him.
    ws.frame([12, 0, 6, 5, [], [], [], [], [[[], [], [2]], [[2, 0, 810, 20, 2, "bob"], [], []]]]);
    // He leaves our area (removed by a part), and someone new enters it (created by one).
    ws.frame([12, 0, 7, 6, [], [], [], [], [[[3, 0, 50, 50, 3, "cy"], [], [2]]]]);
    assert.deepEqual(seen, [
      ["add", 1], ["add", 2],
      ["change", 2, ["x"]],
      ["remove", 2], ["add", 3],
    ]);
    assert.deepEqual(interp.states.map((s) => [s.tick, [...s.entities.keys()]]),
      [[5, [room.state.get(1).uid, uid]], [6, [room.state.get(1).uid, uid]],
        [7, [room.state.get(1).uid, room.state.get(3).uid]]]);
    assert.equal(interp.states[1].entities.get(uid).x, 810, "one key: blended from 700 to 810");
    room.leave();
  });

  test("inputs are numbered and predicted; acked ones are dropped; a refused one too", async () => {
    const { room, ws } = await joined();
    room.predict(dotStep, { own: (r) => r.state.ofType("Dot").find((d) => d.values.pid === r.playerId) });
    assert.equal(room.sendInput([1, 0]), 0, "no prediction before our entity is known");
    ws.frame([11, 0, 5, [1, 0, 10, 20, 1, "ann"], []]);
    assert.deepEqual(room.predicted(), { x: 10, y: 20, pid: 1, name: "ann" });
    assert.equal(room.sendInput([1, 0]), 1);
    assert.equal(room.sendInput([1, 0]), 2);
    assert.equal(room.sendInput([0, 1]), 3);
    assert.deepEqual(ws.inputs(), [[C_INPUT, 1, [1, 0]], [C_INPUT, 2, [1, 0]], [C_INPUT, 3, [0, 1]]]);
    assert.deepEqual([room.predictor.state.x, room.predictor.state.y], [12, 21]);
    ws.frame([15, "invalid_input", "no", 2]);
    ws.frame([12, 1, 6, 5, [], [1, 0b1, 1], [], []]);
    assert.deepEqual(room.pending.map((p) => p.seq), [3]);
    assert.deepEqual([room.predictor.state.x, room.predictor.state.y], [11, 21]);
    assert.equal(room.predictor.lastCorrection, 1, "input 2 is no longer predicted");
    const left = [];
    room.onLeave((...args) => left.push(args));
    room.leave();
    room.leave();
    assert.deepEqual(left, [[CLOSE.NORMAL, "You left the room.", true]], "once, consented");
    assert.deepEqual(ws.sent.at(-1), [C_LEAVE]);
    assert.deepEqual(ws.closed, [CLOSE.NORMAL, "left"]);
    assert.equal(room.sendInput([1, 0]), 0, "nothing after leaving");
  });

  test("onAdd added after the first snapshot is called for what is already there", async () => {
    const { room, ws } = await joined();
    ws.frame([11, 0, 5, [1, 0, 10, 20, 1, "ann", 2, 0, 30, 40, 2, "bob"], []]);
    const seen = [];
    room.onAdd("Dot", (e) => seen.push(e.values.name));
    room.onAdd((e) => seen.push(`any ${e.id}`));
    assert.deepEqual(seen, ["ann", "bob", "any 1", "any 2"]);
    room.onAdd("Nothing", () => seen.push("never"));
    assert.equal(seen.length, 4);
    room.leave();
  });

  test("pumpInput sends one input per tick while active, the first at once", async () => {
    const { room, ws } = await joined();
    ws.frame([11, 0, 5, [], []]);
    assert.equal(room.pumpInput(null, 1000), 1, "first, one null: our streams end with one");
    assert.equal(room.pumpInput(null, 1000), 0);
    assert.equal(room.pumpInput([1, 0], 1001), 1, "a fresh press is sent at once");
    assert.equal(room.pumpInput([1, 0], 1030), 0);
    assert.equal(room.pumpInput([1, 0], 1051), 1, "then one per 50 ms tick");
    assert.equal(room.pumpInput([1, 0], 1400), 3, "at most 3 to catch up");
    assert.equal(room.pumpInput(null, 1460), 1, "let go: one null input ends the stream");
    assert.equal(room.pumpInput(null, 1520), 0);
    const sent = ws.inputs();
    assert.equal(sent.length, 7);
    assert.deepEqual(sent[0], [C_INPUT, 1, null]);
    assert.deepEqual(sent.at(-1), [C_INPUT, 7, null]);
    room.leave();
  });

  test("a drop resumes the same seat with the token and resends unacknowledged inputs", async () => {
    const { room, ws } = await joined();
    room.predict(dotStep, { own: (r) => r.state.ofType("Dot").find((d) => d.values.pid === r.playerId) });
    const statuses = [];
    room.onStatus((status, info) => statuses.push([status, info.attempt ?? null]));
    const reconnected = [];
    room.onReconnect((info) => reconnected.push(info));
    const added = [];
    room.onAdd((e) => added.push(e.id));
    ws.frame([11, 0, 5, [1, 0, 10, 20, 1, "ann"], []]);
    for (let i = 0; i < 4; i++) room.sendInput([1, 0]);
    ws.frame([12, 1, 6, 5, [], [1, 0b1, 1], [], []]);
    ws.drop(CLOSE.ABNORMAL);
    assert.equal(room.status, "reconnecting");
    assert.equal(room.sendInput([1, 0]), 0, "no input while away");
    await until(() => FakeSocket.all.length === 2, "a second socket");
    const ws2 = FakeSocket.all[1];
    assert.equal(ws2.url, "ws://game.test/ws?reconnect=R1.first");
    await tick();
    ws2.frame(welcome(1, "R1.second"));
    assert.deepEqual(reconnected, [{ resumed: true }]);
    assert.equal(room.reconnectToken, "R1.second");
    assert.equal(room.sendInput([1, 0]), 0, "not before the snapshot says what was applied");
    // The server had applied input 2 as well before the drop: 3 and 4 are resent as they were.
    ws2.frame([11, 2, 9, [1, 0, 12, 20, 1, "ann"], []]);
    assert.deepEqual(ws2.inputs(), [[C_INPUT, 3, [1, 0]], [C_INPUT, 4, [1, 0]]]);
    assert.equal(room.predictor.state.x, 14);
    assert.equal(room.predictor.lastCorrection, 0);
    assert.deepEqual(added, [1], "the resync snapshot is the same entity, not a new one");
    assert.equal(room.sendInput([1, 0]), 5);
    assert.equal(room.reconnects, 1);
    assert.deepEqual(statuses, [["reconnecting", 1], ["playing", null]]);
    room.leave();
  });

  test("a refused token falls back to a new seat in the same room; a kick ends it", async () => {
    const { room, ws, server } = await joined();
    room.predict(dotStep, { own: (r) => r.state.ofType("Dot").find((d) => d.values.pid === r.playerId) });
    ws.frame([11, 0, 5, [1, 0, 10, 20, 1, "ann"], []]);
    room.sendInput([1, 0]);
    const left = [];
    room.onLeave((code, text, consented) => left.push([code, text, consented]));
    ws.drop(CLOSE.GOING_AWAY);
    await until(() => FakeSocket.all.length === 2, "the resume socket");
    const ws2 = FakeSocket.all[1];
    await tick();
    ws2.frame([15, "reconnect_refused", "the grace is over"]);
    ws2.drop(CLOSE.BAD_RESERVATION);
    await until(() => FakeSocket.all.length === 3, "a new seat's socket");
    assert.deepEqual(server.requests.at(-1), ["/matchmake",
      { game: "dots", mode: "join", room_id: "R1", name: "ann", options: { mode: "x" } }]);
    const ws3 = FakeSocket.all[2];
    await tick();
    ws3.frame(welcome(7, "R1.third"));
    assert.equal(room.playerId, 7);
    assert.deepEqual(room.pending, [], "the old seat's inputs are gone with it");
    assert.equal(room.predictor.ready, false);
    ws3.frame([11, 0, 30, [1, 0, 10, 20, 1, "ann", 4, 0, 50, 50, 7, "ann"], []]);
    assert.deepEqual(room.predicted(), { x: 50, y: 50, pid: 7, name: "ann" });
    ws3.drop(CLOSE.KICKED, "afk");
    assert.equal(room.status, "ended");
    assert.deepEqual(left, [[CLOSE.KICKED, "You were removed from the room (afk).", false]]);
    await tick();
    assert.equal(FakeSocket.all.length, 3, "no reconnection after a kick");
  });

  test("an update that does not apply closes with 4090 and resumes; a failing step() does not", async () => {
    const { room, ws } = await joined();
    let broken = false;
    const step = (d, [dx]) => {
      if (broken) throw new Error("a bug in the game's rule");
      return { ...d, x: d.x + dx };
    };
    room.predict(step, { own: (r) => r.state.ofType("Dot")[0] });
    const logged = [];
    const [consoleError, consoleWarn] = [console.error, console.warn];
    console.error = (...args) => logged.push(["error", String(args[0])]);
    console.warn = (...args) => logged.push(["warn", String(args[0])]);
    try {
      ws.frame([11, 0, 5, [1, 0, 10, 20, 1, "ann"], []]);
      assert.equal(room.sendInput([1, 0]), 1);
      broken = true;
      assert.throws(() => room.sendInput([1, 0]), /a bug/, "the caller sees its own bug");
      assert.deepEqual(room.pending.map((p) => p.seq), [1], "and nothing was half sent");
      ws.frame([12, 0, 6, 5, [], [], [], []]); // input 1 is re-predicted: the step throws
      assert.equal(ws.closed, null, "the game's bug is reported, the session goes on");
      assert.ok(logged.some(([level, text]) => level === "error" && /prediction failed/.test(text)));
      ws.frame([12, 0, 8, 7, [], [], [], []]); // not based on our tick 6
      assert.deepEqual(ws.closed, [CLOSE.DESYNC, "desync"]);
      assert.ok(logged.some(([level, text]) => level === "warn" && /resyncing/.test(text)));
    } finally {
      [console.error, console.warn] = [consoleError, consoleWarn];
    }
    await until(() => FakeSocket.all.length === 2, "the resume socket");
    assert.match(FakeSocket.all[1].url, /reconnect=R1.first$/);
    room.leave();
  });

  test("gives up after its delays when the server stays away", async () => {
    const { room, ws } = await joined();
    const left = [];
    room.onLeave((code, text) => left.push([code, text]));
    ws.drop(CLOSE.ABNORMAL);
    for (let n = 2; n <= 4; n++) {
      await until(() => FakeSocket.all.length === n, `socket ${n}`);
      FakeSocket.all[n - 1].drop(CLOSE.ABNORMAL); // never reaches the server
    }
    await until(() => left.length === 1, "the end");
    assert.match(left[0][1], /Gave up reconnecting after 3 attempts/);
    assert.equal(FakeSocket.all.length, 4);
    assert.ok(FakeSocket.all.slice(1).every((s) => s.url.endsWith("reconnect=R1.first")),
      "a token that never reached the server is still good");
  });

  test("errors: a refused matchmake and a refused socket reject with player-facing text", async () => {
    FakeSocket.all = [];
    const server = fakeServer();
    const client = new Client("http://game.test", { WebSocket: FakeSocket, fetch: server.fetch });
    server.refuse.set("/matchmake", [409, "room_full"]);
    await assert.rejects(client.join("R9", { game: "dots" }), (err) =>
      err instanceof MatchmakeError && err.code === "room_full" && /full/.test(err.message));
    assert.throws(() => client.join("R9"), TypeError);
    const joining = client.create("dots", { private: true });
    await until(() => FakeSocket.all.length === 1, "a socket");
    assert.equal(server.requests.at(-1)[1].private, true);
    await tick();
    FakeSocket.all[0].frame([15, "join_refused", "no"]);
    FakeSocket.all[0].drop(CLOSE.JOIN_REFUSED, "no");
    await assert.rejects(joining, (err) => err instanceof ConnectError && err.code === 4004);
    assert.deepEqual(await client.listRooms("dots"), [{ room_id: "R1", game: "dots" }]);
    assert.equal(server.requests.at(-1)[0], "/rooms");
  });

  test("client.reconnect(token) takes a seat back through POST /reconnect", async () => {
    FakeSocket.all = [];
    const server = fakeServer();
    const client = new Client("http://game.test", { WebSocket: FakeSocket, fetch: server.fetch });
    const resuming = client.reconnect("R1.saved");
    await until(() => FakeSocket.all.length === 1, "a socket");
    assert.deepEqual(server.requests[0], ["/reconnect", { token: "R1.saved" }]);
    assert.equal(FakeSocket.all[0].url, "ws://game.test/ws?reconnect=R1.saved");
    await tick();
    FakeSocket.all[0].frame(welcome(3, "R1.next"));
    const room = await resuming;
    assert.equal(room.game, "dots");
    assert.equal(room.playerId, 3);
    room.leave();
  });

  test("without a WebSocket it says how to get one", async () => {
    const server = fakeServer();
    const client = new Client("http://game.test", { fetch: server.fetch });
    const saved = globalThis.WebSocket;
    globalThis.WebSocket = undefined;
    try {
      await assert.rejects(client.joinOrCreate("dots"), /experimental-websocket/);
    } finally {
      globalThis.WebSocket = saved;
    }
  });
});

// -- spectators ---------------------------------------------------------------------------

/** Spectate with the fake server; returns the room and the socket the server plays. */
async function watching(roomId = "R1", options = {}) {
  FakeSocket.all = [];
  const server = fakeServer();
  const client = new Client("http://game.test/", { WebSocket: FakeSocket, fetch: server.fetch,
    reconnect: { delays: [1, 1, 1] }, ...options });
  const spectating = client.spectate(roomId, { game: "dots" });
  await until(() => FakeSocket.all.length === 1, "a socket");
  const ws = FakeSocket.all[0];
  await tick();
  ws.frame(welcome(0, null));
  const room = await spectating;
  return { room, ws, server, client };
}

describe("Spectator", () => {
  test("watches a room: a pass from /matchmake, the same state, callbacks and interpolation", async () => {
    const { room, ws, server } = await watching();
    assert.deepEqual(server.requests, [["/matchmake", { game: "dots", mode: "spectate", room_id: "R1" }]]);
    assert.equal(ws.url, "ws://game.test/ws?watch=w1");
    assert.equal(room.spectator, true);
    assert.equal(room.playerId, 0);
    assert.equal(room.id, "R1");
    assert.equal(room.name, null);
    assert.equal(room.reconnectToken, null);
    assert.equal(room.status, "playing");
    const seen = [];
    room.onAdd("Dot", (e) => seen.push(["add", e.values.name]));
    room.onChange((e, fields) => seen.push(["change", e.id, fields]));
    room.onEvent("joined", (body) => seen.push(["joined", body]));
    const interp = room.interpolate({ filter: (e) => e.type === "Dot" });
    ws.frame([11, 0, 5, [1, 0, 10, 20, 1, "ann", 2, 0, 50, 50, 2, "bob"], [["joined", [2, "bob"]]]]);
    ws.frame([12, 0, 6, 5, [], [1, 0b1, 4], [], []]);
    assert.deepEqual(seen, [["add", "ann"], ["add", "bob"], ["joined", [2, "bob"]], ["change", 1, ["x"]]]);
    assert.equal(room.state.get(1).values.x, 14);
    assert.equal(interp.sample(performance.now() + 1000).size, 2);
    ws.frame([13, ws.sent[0][1] - 10, 6]);
    assert.ok(room.rtt >= 10, "spectators ping too");
    room.leave();
    assert.deepEqual(ws.sent.at(-1), [C_LEAVE]);
    assert.deepEqual(ws.closed, [CLOSE.NORMAL, "left"]);
    assert.equal(room.status, "ended");
  });

  test("sendInput, send, pumpInput and predict throw, and nothing reaches the server", async () => {
    const { room, ws } = await watching();
    ws.frame([11, 0, 5, [1, 0, 10, 20, 1, "ann"], []]);
    assert.throws(() => room.sendInput([1, 0]), /spectator.*cannot send inputs/);
    assert.throws(() => room.send("chat", "hi"), /send\(\).*spectator/);
    assert.throws(() => room.pumpInput([1, 0]), /spectator/);
    assert.throws(() => room.predict(dotStep, { own: () => null }), /spectator/);
    assert.deepEqual(ws.sent.filter((m) => m[0] !== C_PING), []);
    // Should one get through anyway, the server's ERROR reaches onError like any other.
    const errors = [];
    room.onError((code, message) => errors.push(code));
    ws.frame([15, "spectator", "spectators cannot send inputs or room messages"]);
    assert.deepEqual(errors, ["spectator"]);
    assert.equal(room.status, "playing");
    room.leave();
  });

  test("without a room id the server picks; the game is required", async () => {
    FakeSocket.all = [];
    const server = fakeServer();
    const client = new Client("http://game.test", { WebSocket: FakeSocket, fetch: server.fetch, game: "dots" });
    const spectating = client.spectate();
    await until(() => FakeSocket.all.length === 1, "a socket");
    assert.deepEqual(server.requests[0], ["/matchmake", { game: "dots", mode: "spectate" }]);
    await tick();
    FakeSocket.all[0].frame(welcome(0, null));
    const room = await spectating;
    assert.equal(room.id, "R1", "the room the server picked");
    assert.equal(room.spectator, true);
    room.leave();
    const bare = new Client("http://game.test", { WebSocket: FakeSocket, fetch: server.fetch });
    await assert.rejects(bare.spectate("R1"), TypeError);
  });

  test("an abnormal close spectates the same room again with a new pass", async () => {
    const { room, ws, server } = await watching();
    ws.frame([11, 0, 5, [1, 0, 10, 20, 1, "ann"], []]);
    const statuses = [];
    room.onStatus((status, info) => statuses.push([status, info.attempt ?? null]));
    const reconnected = [];
    room.onReconnect((info) => reconnected.push(info));
    const added = [];
    room.onAdd((e) => added.push(e.id));
    assert.deepEqual(added, [1], "what is already there is reported at once");
    added.length = 0;
    ws.drop(CLOSE.ABNORMAL);
    assert.equal(room.status, "reconnecting");
    await until(() => FakeSocket.all.length === 2, "a second socket");
    assert.deepEqual(server.requests.at(-1), ["/matchmake", { game: "dots", mode: "spectate", room_id: "R1" }]);
    const ws2 = FakeSocket.all[1];
    assert.equal(ws2.url, "ws://game.test/ws?watch=w2");
    await tick();
    ws2.frame(welcome(0, null));
    ws2.frame([11, 0, 9, [1, 0, 12, 20, 1, "ann"], []]);
    assert.deepEqual(reconnected, [{ resumed: false }]);
    assert.deepEqual(added, [], "the fresh snapshot is diffed against what we had");
    assert.equal(room.state.get(1).values.x, 12);
    assert.equal(room.spectator, true);
    assert.equal(room.reconnects, 1);
    assert.deepEqual(statuses, [["reconnecting", 1], ["playing", null]]);
    // A used pass (4001) is retried with a new one, as a bad seat token would be.
    ws2.drop(CLOSE.ABNORMAL);
    await until(() => FakeSocket.all.length === 3, "a third socket");
    await tick();
    FakeSocket.all[2].frame([15, "bad_reservation", "unknown token"]);
    FakeSocket.all[2].drop(CLOSE.BAD_RESERVATION);
    await until(() => FakeSocket.all.length === 4, "a fourth socket");
    assert.equal(FakeSocket.all[3].url, "ws://game.test/ws?watch=w4");
    room.leave();
  });

  for (const [code, status, text] of [["spectators_full", 409, /as many spectators/],
    ["no_such_room", 404, /doesn't exist/]]) {
    test(`${code} when coming back is final`, async () => {
      const { room, ws, server } = await watching();
      const left = [];
      room.onLeave((closeCode, message, consented) => left.push([closeCode, message, consented]));
      server.refuse.set("/matchmake", [status, code]);
      ws.drop(CLOSE.GOING_AWAY);
      await until(() => left.length === 1, "the end");
      assert.equal(room.status, "ended");
      assert.match(left[0][1], /Couldn't rejoin/);
      assert.match(left[0][1], text);
      assert.equal(left[0][2], false);
      await new Promise((resolve) => setTimeout(resolve, 20));
      assert.equal(FakeSocket.all.length, 1, "no socket after a final refusal");
      assert.equal(server.requests.length, 2, "one try only");
    });
  }

  test("refusals: spectators_full and no_such_room reject; so does the cap reached at the socket", async () => {
    FakeSocket.all = [];
    const server = fakeServer();
    const client = new Client("http://game.test", { WebSocket: FakeSocket, fetch: server.fetch });
    server.refuse.set("/matchmake", [409, "spectators_full"]);
    await assert.rejects(client.spectate("R1", { game: "dots" }), (err) =>
      err instanceof MatchmakeError && err.code === "spectators_full" && /spectators/.test(err.message));
    server.refuse.set("/matchmake", [404, "no_such_room"]);
    await assert.rejects(client.spectate({ game: "dots" }), (err) =>
      err instanceof MatchmakeError && err.code === "no_such_room");
    const spectating = client.spectate("R1", { game: "dots" });
    await until(() => FakeSocket.all.length === 1, "a socket");
    await tick();
    FakeSocket.all[0].frame([15, "spectators_full", "the room has 64 spectators"]);
    FakeSocket.all[0].drop(CLOSE.JOIN_REFUSED);
    await assert.rejects(spectating, (err) => err instanceof ConnectError && err.code === 4004
      && err.serverError === "spectators_full" && /as many spectators/.test(err.message));
  });

  test("the room closing ends the watch", async () => {
    const { room, ws } = await watching();
    const left = [];
    room.onLeave((code, text) => left.push([code, text]));
    ws.drop(CLOSE.ROOM_CLOSED);
    assert.deepEqual(left, [[CLOSE.ROOM_CLOSED, "The room was closed."]]);
    await tick();
    assert.equal(FakeSocket.all.length, 1);
  });
});

describe("Quiet rooms and the silence watchdog", () => {
  const quietWelcome = (pid, token, keepalive) =>
    [10, PROTOCOL_VERSION, "R1", "dots", pid, 4.0, SCHEMA, { step: 1 }, token, keepalive];

  async function joinedQuiet(keepalive, options = {}) {
    FakeSocket.all = [];
    const server = fakeServer();
    const client = new Client("http://game.test/", { WebSocket: FakeSocket, fetch: server.fetch,
      reconnect: { delays: [1, 1, 1] }, ...options });
    const joining = client.joinOrCreate("dots", { name: "ann" });
    await until(() => FakeSocket.all.length === 1, "a socket");
    await tick();
    FakeSocket.all[0].frame(quietWelcome(1, "R1.first", keepalive));
    return { room: await joining, ws: FakeSocket.all[0] };
  }

  test("the welcome's keepalive: quiet, the window max(3 s, 3 x keepalive), QUIET read", async () => {
    const { room, ws } = await joinedQuiet(2.0);
    assert.equal(room.quiet, true);
    assert.equal(room.keepalive, 2.0);
    assert.equal(room.silenceWindow(), 6000);
    ws.frame([11, 0, 5, [1, 0, 10, 20, 1, "ann"], []]);
    ws.frame([S_QUIET, 5]);
    assert.equal(room.lastQuiet, 5);
    assert.equal(room.state.tick, 5, "a QUIET changes no state");
    ws.frame([12, 0, 40, 5, [], [1, 0b1, 1], [], []]); // ticks jump in a quiet room
    assert.equal(room.state.tick, 40);
    room.leave();
    const realtime = await joined();
    assert.equal(realtime.room.quiet, false);
    assert.equal(realtime.room.keepalive, 0);
    assert.equal(realtime.room.silenceWindow(), MIN_SILENCE_MS);
    realtime.room.leave();
  });

  test("a quiet room pings only every keep-alive interval", async () => {
    const { room, ws } = await joinedQuiet(0.4);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const pings = ws.sent.filter((m) => m[0] === C_PING).length;
    assert.ok(pings >= 2 && pings <= 4, `${pings} pings in 1.1 s`); // at once, then every 400 ms
    room.leave();
  });

  test("QUIET keep-alives keep a quiet room's socket; silence drops it and it reconnects",
    async () => {
      const { room, ws } = await joinedQuiet(0.1, { silenceMs: 300 });
      const statuses = [];
      room.onStatus((status) => statuses.push(status));
      ws.frame([11, 0, 5, [1, 0, 10, 20, 1, "ann"], []]);
      for (let i = 0; i < 8; i++) { // 800 ms with a QUIET every 100 ms: alive
        await new Promise((resolve) => setTimeout(resolve, 100));
        ws.frame([S_QUIET, 5]);
      }
      assert.equal(FakeSocket.all.length, 1, "no reconnection while QUIETs come");
      assert.equal(room.status, "playing");
      const t0 = performance.now();
      await until(() => FakeSocket.all.length === 2, "a reconnection after the silence", 2000);
      const waited = performance.now() - t0;
      assert.ok(waited >= 250 && waited <= 800, `${waited} ms`);
      assert.ok(ws.closed, "the silent socket is closed");
      assert.match(FakeSocket.all[1].url, /reconnect=R1.first$/);
      assert.deepEqual(statuses, ["reconnecting"]);
      await tick();
      FakeSocket.all[1].frame(quietWelcome(1, "R1.second", 0.1));
      assert.equal(room.status, "playing");
      ws.drop(CLOSE.ABNORMAL); // the old socket's late close is not news
      assert.equal(room.status, "playing");
      room.leave();
    });

  test("a real-time room whose updates stop is dropped after the window too", async () => {
    const { room } = await joined({ silenceMs: 300 });
    await until(() => FakeSocket.all.length === 2, "a reconnection after the silence", 2000);
    assert.equal(room.status, "reconnecting");
    room.leave();
  });

  test("silenceMs: false turns the watchdog off", async () => {
    const { room } = await joinedQuiet(0.05, { silenceMs: false });
    assert.equal(room.silenceWindow(), 0);
    await new Promise((resolve) => setTimeout(resolve, 400));
    assert.equal(FakeSocket.all.length, 1);
    room.leave();
  });
});

test("the ping carries the client's clock", async () => {
  const { room, ws } = await joined();
  assert.equal(typeof ws.sent.find((m) => m[0] === C_PING)[1], "number");
  room.leave();
});

// -- fast reconnection ----------------------------------------------------------------------

describe("Reconnection schedule", () => {
  test("the default: every ~250 ms for about 3 s, then back-off, ~30 s in all", () => {
    const d = RECONNECT_DELAYS_MS;
    const early = d.filter((ms) => ms === 250).length;
    assert.ok(early * 250 >= 2500 && early * 250 <= 3500, `${early} quick attempts`);
    assert.deepEqual(d.slice(0, early), Array(early).fill(250), "the quick ones come first");
    for (let i = early; i < d.length - 1; i++) assert.ok(d[i] >= d[i - 1] || d[i] >= 4000);
    const total = d.reduce((a, b) => a + b, 0);
    assert.ok(total >= 25000 && total <= 36000, `${total} ms in all`);
  });

  test("status info carries the attempt and when the next try is (performance.now() ms)", async () => {
    const { room, ws } = await joined({ reconnect: { delays: [300, 300] } });
    ws.drop(CLOSE.ABNORMAL);
    const info = room.statusInfo;
    assert.equal(room.status, "reconnecting");
    assert.equal(info.attempt, 1);
    assert.equal(info.code, CLOSE.ABNORMAL);
    assert.ok(info.retryInMs >= 240 && info.retryInMs <= 360, info.retryInMs);
    assert.ok(Math.abs(info.retryAt - (performance.now() + info.retryInMs)) < 50);
    assert.match(info.text, /connection/i);
    room.leave();
  });

  test("a socket that fails at once is retried after the short delay, a slow failure backs off",
    async () => {
      const { room, ws } = await joined({ reconnect: { delays: [5, 2000, 2000, 2000] } });
      ws.drop(CLOSE.ABNORMAL);
      await until(() => FakeSocket.all.length === 2, "attempt 1");
      FakeSocket.all[1].drop(CLOSE.ABNORMAL); // refused at once: nothing on the way
      await until(() => room.statusInfo.attempt === 2, "attempt 2 planned");
      assert.ok(room.statusInfo.retryInMs < 10, `short: ${room.statusInfo.retryInMs}`);
      await until(() => FakeSocket.all.length === 3, "attempt 2", 500);
      await new Promise((resolve) => setTimeout(resolve, 600)); // a slow failure
      FakeSocket.all[2].drop(CLOSE.ABNORMAL);
      await until(() => room.statusInfo.attempt === 3, "attempt 3 planned");
      assert.ok(room.statusInfo.retryInMs >= 1600, `backed off: ${room.statusInfo.retryInMs}`);
      assert.ok(FakeSocket.all.slice(1).every((s) => s.url.endsWith("reconnect=R1.first")));
      room.leave();
    });

  test("fast failures while offline do not use up the attempts before the schedule's time",
    async () => {
      const { room, ws } = await joined({ reconnect: { delays: [5, 5, 150] } });
      const left = [];
      room.onLeave((code, text) => left.push(text));
      ws.drop(CLOSE.ABNORMAL);
      let dropped = 1;
      while (!left.length) {
        await until(() => FakeSocket.all.length > dropped || left.length, "an attempt");
        for (; dropped < FakeSocket.all.length; dropped++) FakeSocket.all[dropped].drop(CLOSE.ABNORMAL);
      }
      assert.ok(FakeSocket.all.length - 1 > 3, `${FakeSocket.all.length - 1} attempts in ~130 ms`);
      assert.match(left[0], /Gave up reconnecting after \d+ attempts/);
    });

  test("an early attempt that gets no WELCOME is abandoned after ~1.5 s; the token is kept",
    async () => {
      const { room, ws } = await joined({ reconnect: { delays: [5, 5, 5] } });
      ws.drop(CLOSE.ABNORMAL);
      await until(() => FakeSocket.all.length === 2, "attempt 1");
      const t0 = performance.now();
      await until(() => FakeSocket.all.length === 3, "attempt 2", 3000); // socket 2 hangs
      const waited = performance.now() - t0;
      assert.ok(waited >= 1300 && waited <= 2200, `${waited} ms`);
      assert.ok(FakeSocket.all[1].closed, "the hung socket is closed");
      assert.match(FakeSocket.all[2].url, /reconnect=R1.first$/);
      await tick();
      FakeSocket.all[2].frame(welcome(1, "R1.second"));
      assert.equal(room.status, "playing");
      assert.equal(room.playerId, 1);
      room.leave();
    });

  test("retryNow() ends the wait or a hung attempt at once; a no-op unless reconnecting", async () => {
    const { room, ws } = await joined({ reconnect: { delays: [60000] } });
    assert.equal(room.retryNow(), false, "playing: nothing to retry");
    ws.drop(CLOSE.ABNORMAL);
    assert.ok(room.statusInfo.retryInMs > 40000);
    assert.equal(room.retryNow(), true);
    await until(() => FakeSocket.all.length === 2, "an attempt at once", 200);
    // An attempt that hangs (no WELCOME): retrying abandons it for a new one at once.
    assert.equal(room.retryNow(), true);
    await until(() => FakeSocket.all.length === 3, "another attempt at once", 200);
    assert.ok(FakeSocket.all[1].closed, "the hung one is closed");
    assert.match(FakeSocket.all[2].url, /reconnect=R1.first$/, "its token was never used");
    await tick();
    FakeSocket.all[2].frame(welcome(1, "R1.second"));
    assert.equal(room.status, "playing");
    assert.equal(room.reconnects, 1);
    room.leave();
  });

  test("the browser coming back online tries again at once", async () => {
    globalThis.window = new EventTarget();
    try {
      const { room, ws } = await joined({ reconnect: { delays: [60000, 60000] } });
      ws.drop(CLOSE.ABNORMAL);
      await tick();
      assert.equal(FakeSocket.all.length, 1);
      window.dispatchEvent(new Event("online"));
      await until(() => FakeSocket.all.length === 2, "an attempt at once", 200);
      await tick();
      FakeSocket.all[1].frame(welcome(1, "R1.second"));
      assert.equal(room.status, "playing");
      window.dispatchEvent(new Event("online")); // playing: nothing happens
      await tick();
      assert.equal(FakeSocket.all.length, 2);
      room.leave();
    } finally {
      delete globalThis.window;
    }
  });
});

describe("Reseed after a reconnection", () => {
  const walk = (s, dx) => ({ ...s, x: s.x + dx });

  test("a new seat's first state blends in from where we were drawn", () => {
    const p = new Predictor(walk, { smooth: ["x"] });
    p.reconcile({ x: 100 }, 0);
    assert.equal(p.renderState(1).x, 100);
    p.reset();
    p.reseed();
    p.reconcile({ x: 700 }, 0); // far beyond snapDistance: still blended
    assert.equal(p.renderState(1).x, 100, "drawn where it was");
    let last = 100;
    let biggest = 0;
    for (let t = 0; t < 200; t += 16) {
      p.decay(16);
      const x = p.renderState(1).x;
      biggest = Math.max(biggest, Math.abs(x - last));
      last = x;
    }
    assert.equal(p.renderState(1).x, 700, "there after ~200 ms");
    assert.ok(biggest < 600 * 0.3, `at most ${biggest} in one frame`);
  });

  test("the same seat's correction blends whatever its size; a teleport otherwise snaps", () => {
    const p = new Predictor(walk, { smooth: ["x"], snapDistance: 250 });
    p.reconcile({ x: 100 }, 0);
    p.renderState(1);
    p.reseed();
    assert.equal(p.reconcile({ x: 500 }, 0), 400);
    assert.equal(p.renderState(1).x, 100);
    for (let t = 0; t < 100; t += 16) p.decay(16);
    const x = p.renderState(1).x;
    assert.ok(x > 300 && x < 500, `half-way after 100 ms: ${x}`);
    for (let t = 0; t < 200; t += 16) p.decay(16);
    assert.equal(p.renderState(1).x, 500);
    assert.equal(p.reconcile({ x: 900 }, 0), 400, "a respawn");
    assert.equal(p.renderState(1).x, 900, "snapped");
  });
});
