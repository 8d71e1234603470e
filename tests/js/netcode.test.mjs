// Unit tests of the arena client's netcode: the SDK's Predictor, Interpolator and
// Replica with the arena's rule (static/js/arena-rules.js), run by `node --test tests/js/`
// (tests/test_browser.py runs them under plain `pytest`).
//
// The centrepiece simulates a server (the same input-credit rule as
// gameserver/room.py Room._step and the same move() rule) behind a 150 ms
// round trip, and checks that prediction + reconciliation end exactly on the
// server's position, with no correction (and no drawn jump) larger than one
// tick's movement on the way.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { move, quantizeInput, step } from "../../static/js/arena-rules.js";
import {
  Interpolator, Predictor, RateCounter, Replica, ReplicaError, StepClock,
} from "../../static/sdk/gameserver.js";

const RULES = { width: 1600, height: 900, speed: 200, player_radius: 20, orb_radius: 8,
  input_max: 100, max_orbs: 40, chat_max_len: 200, step: 10 };
const STEP = RULES.step;
const moveFn = (x, y, dx, dy) => move(x, y, dx, dy, STEP, RULES);
/** The SDK's Predictor with the arena's rule, as the page uses it. */
const arenaPredictor = (options = {}) => new Predictor(step, { config: RULES, ...options });
/** The predicted position as drawn, [x, y]. */
const drawnAt = (predictor, alpha) => {
  const { x, y } = predictor.renderState(alpha);
  return [x, y];
};

/** A tiny deterministic PRNG (mulberry32), so failures reproduce. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("arena-rules move()", () => {
  test("full push moves one step, diagonals are normalised", () => {
    assert.deepEqual(move(100, 100, 100, 0, 10, RULES), [110, 100]);
    assert.deepEqual(move(100, 100, 0, -100, 10, RULES), [100, 90]);
    assert.deepEqual(move(100, 100, 100, 100, 10, RULES), [107, 107]); // 7.07 rounds to 7
    assert.deepEqual(move(100, 100, 0, 0, 10, RULES), [100, 100]);
  });

  test("a half push moves half as far; halves round up like floor(v + 0.5)", () => {
    assert.deepEqual(move(100, 100, 50, 0, 10, RULES), [105, 100]);
    assert.deepEqual(move(100, 100, 25, -25, 10, RULES), [103, 98]); // 2.5 -> 3, -2.5 -> -2
  });

  test("clamps to the field minus the radius", () => {
    assert.deepEqual(move(25, 25, -100, -100, 10, RULES), [20, 20]);
    assert.deepEqual(move(1575, 875, 100, 100, 10, RULES), [1580, 880]);
  });

  test("quantizeInput clamps and never sends -0", () => {
    assert.deepEqual(quantizeInput(2, -0.004, 100), [100, 0]);
    assert.ok(!Object.is(quantizeInput(-0.001, 0, 100)[0], -0));
    assert.deepEqual(quantizeInput(-0.5, 0.333, 100), [-50, 33]);
  });
});

describe("Replica (port of gameserver/core/replica.py)", () => {
  const schema = [["Avatar", [["pid", "i"], ["x", "i"], ["y", "i"], ["score", "i"], ["name", "v"]]],
    ["Orb", [["x", "i"], ["y", "i"]]]];

  test("snapshot, then deltas with int differences, values, removals and creations", () => {
    const r = new Replica(schema);
    r.apply([11, 0, 5, [1, 0, 1, 100, 200, 0, "ann", 2, 1, 50, 60], []]);
    assert.deepEqual(r.view(), { 1: ["Avatar", { pid: 1, x: 100, y: 200, score: 0, name: "ann" }],
      2: ["Orb", { x: 50, y: 60 }] });
    // Avatar 1: x += 10 (bit 1), score += 1 (bit 3), name = "Ann" (bit 4); orb 2 removed; orb 3 created.
    r.apply([12, 7, 6, 5, [3, 1, 10, 20], [1, 0b11010, 10, 1, "Ann"], [2], [["chat", [1, "Ann", "hi"]]]]);
    assert.equal(r.ack, 7);
    assert.equal(r.tick, 6);
    assert.deepEqual(r.view(), { 1: ["Avatar", { pid: 1, x: 110, y: 200, score: 1, name: "Ann" }],
      3: ["Orb", { x: 10, y: 20 }] });
    assert.deepEqual(r.events, [["chat", [1, "Ann", "hi"]]]);
  });

  test("a reused id is a new entity (new uid)", () => {
    const r = new Replica(schema);
    r.apply([11, 0, 1, [4, 1, 1, 1], []]);
    const before = r.entities.get(4).uid;
    r.apply([12, 0, 2, 1, [4, 0, 9, 5, 5, 0, "bo"], [], [4], []]);
    assert.equal(r.entities.get(4).type, "Avatar");
    assert.notEqual(r.entities.get(4).uid, before);
  });

  test("protocol violations throw ReplicaError", () => {
    const r = new Replica(schema);
    r.apply([11, 0, 1, [], []]);
    assert.throws(() => r.apply([12, 0, 3, 2, [], [], [], []]), ReplicaError); // wrong base
    assert.throws(() => r.apply([12, 0, 2, 1, [], [9, 1, 1], [], []]), ReplicaError);
    assert.throws(() => r.apply([12, 0, 2, 1, [], [], [9], []]), ReplicaError);
    assert.throws(() => r.apply([13, 0, 0]), ReplicaError);
  });
});

/**
 * A simulated room: ticks at `tickMs`, inputs reach it after `upMs` (+ jitter),
 * updates reach the client after `downMs` (+ jitter), in order (like TCP).
 * The server's input buffer (gameserver/core/inputs.py) at its shallowest: one input
 * per tick; a stream's missing input is stood in for by the last one (for up to 2
 * ticks), which takes its seq, and the late input is then dropped on arrival.
 */
function simulate({ upMs = 75, downMs = 75, jitterMs = 0, seconds = 4, script, nudgeAt = null,
  seed = 1, frameMs = 1000 / 60 }) {
  const tickMs = 50;
  const random = rng(seed);
  const server = { x: 400, y: 450, ack: 0, queue: [], tick: 0, run: 0, missed: 0, last: null };
  const predictor = arenaPredictor();
  const clock = new StepClock(tickMs, 3);
  const toServer = []; // [arrival, {seq, dx, dy}]
  const toClient = []; // [arrival, {x, y, ack, tick}]
  let lastUp = 0;
  let lastDown = 0;
  const corrections = [];
  const frameJumps = [];
  let lastDrawn = null;
  let active = false;
  let nextTick = 0;
  let nextFrame = 0;
  const end = seconds * 1000;
  const events = [];

  for (let now = 0; now <= end; now += 1) { // 1 ms resolution
    // Server: receive inputs, then tick.
    while (toServer.length && toServer[0][0] <= now) {
      const input = toServer.shift()[1];
      if (input.seq > server.ack) server.queue.push(input); // else stood in for: dropped
      else if (input.stop) server.last = null;
    }
    if (now >= nextTick) {
      nextTick += tickMs;
      const input = server.queue.shift();
      if (input) {
        server.ack = input.seq;
        server.missed = 0;
        if (input.stop) {
          server.last = null;
          server.run = 0;
        } else {
          [server.x, server.y] = moveFn(server.x, server.y, input.dx, input.dy);
          server.last = input;
          server.run++;
        }
      } else if (server.last && server.run >= 2 && ++server.missed <= 2) {
        [server.x, server.y] = moveFn(server.x, server.y, server.last.dx, server.last.dy);
        server.ack++; // the stand-in takes the missing input's seq
      }
      if (nudgeAt !== null && server.tick === nudgeAt) server.x += STEP; // e.g. a push
      server.tick++;
      const arrival = Math.max(lastDown, now + downMs + random() * jitterMs);
      lastDown = arrival;
      toClient.push([arrival, { x: server.x, y: server.y, ack: server.ack, tick: server.tick }]);
    }
    // Client: updates, the input clock, a frame.
    while (toClient.length && toClient[0][0] <= now) {
      const u = toClient.shift()[1];
      corrections.push(predictor.reconcile({ x: u.x, y: u.y }, u.ack));
      events.push(["update", now, u]);
    }
    const [dx, dy] = script(now);
    if (predictor.ready) {
      const steps = clock.advance(now);
      for (let i = 0; i < steps; i++) {
        const idle = dx === 0 && dy === 0;
        if (idle && !active) {
          predictor.hold();
          continue;
        }
        active = !idle; // the first idle step sends a null input: let go
        // After the ack too: a stand-in may have taken a seq we had not sent yet.
        const seq = predictor.applyInput(idle ? null : [dx, dy],
          Math.max(predictor.seq, predictor.ack) + 1);
        if (!seq) continue;
        const arrival = Math.max(lastUp, now + upMs + random() * jitterMs);
        lastUp = arrival;
        toServer.push([arrival, { seq, dx, dy, stop: idle }]);
      }
    }
    if (now >= nextFrame && predictor.ready) {
      nextFrame += frameMs;
      predictor.decay(frameMs);
      const drawn = drawnAt(predictor, clock.alpha(now));
      if (lastDrawn) frameJumps.push(Math.hypot(drawn[0] - lastDrawn[0], drawn[1] - lastDrawn[1]));
      lastDrawn = drawn;
    }
  }
  return { server, predictor, corrections, frameJumps, events };
}

/** Right for 1 s, down-left diagonal for 1 s, into the top wall for 0.5 s, then stop. */
function zigzag(now) {
  if (now < 1000) return [100, 0];
  if (now < 2000) return [-100, 100];
  if (now < 2500) return [37, -100];
  return [0, 0];
}

describe("prediction and reconciliation with a 150 ms round trip", () => {
  test("ends exactly on the server's position; no correction while moving", () => {
    const { server, predictor, corrections, frameJumps } = simulate({ script: zigzag });
    assert.deepEqual([predictor.state.x, predictor.state.y], [server.x, server.y]);
    assert.equal(predictor.pending.length, 0);
    assert.equal(predictor.ack, predictor.seq);
    assert.ok(predictor.seq > 45, `sent ${predictor.seq} inputs`);
    assert.equal(Math.max(...corrections), 0, "identical rules: the prediction is never wrong");
    assert.ok(Math.max(...frameJumps) <= STEP, `drawn jump ${Math.max(...frameJumps)} > ${STEP}`);
    const drawn = drawnAt(predictor, 1);
    assert.deepEqual(drawn, [server.x, server.y]);
  });

  test("with 0-60 ms jitter each way: same end state, corrections only from stand-ins", () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const { server, predictor, corrections, frameJumps } = simulate({
        script: zigzag, jitterMs: 60, seed });
      assert.deepEqual([predictor.state.x, predictor.state.y], [server.x, server.y], `seed ${seed}`);
      // A late input the server stood in for with the previous one is only wrong where
      // the direction changed: at most the distance between two steps, at most 3 times.
      assert.ok(Math.max(...corrections) <= 2 * STEP, `seed ${seed}: ${Math.max(...corrections)}`);
      assert.ok(corrections.filter((c) => c > 0).length <= 3, `seed ${seed}`);
      assert.ok(Math.max(...frameJumps) <= STEP, `seed ${seed}: ${Math.max(...frameJumps)}`);
    }
  });

  test("a server-side correction is blended out, not snapped", () => {
    const { server, predictor, corrections, frameJumps } = simulate({
      script: zigzag, nudgeAt: 10 }); // while moving right: the push adds to the motion
    assert.equal(Math.max(...corrections), STEP, "the push shows up as one correction");
    assert.ok(Math.max(...frameJumps) <= STEP, `drawn jump ${Math.max(...frameJumps)}`);
    assert.deepEqual([predictor.state.x, predictor.state.y], [server.x, server.y]);
    assert.deepEqual(drawnAt(predictor, 1), [server.x, server.y], "the offset decayed");
  });

  test("the first update seeds the prediction; nothing is sent before it", () => {
    const p = arenaPredictor();
    assert.equal(p.applyInput([100, 0]), 0);
    assert.equal(p.reconcile({ x: 50, y: 60 }, 0), 0);
    assert.equal(p.applyInput([100, 0]), 1);
    assert.deepEqual([p.state.x, p.state.y], [60, 60]);
  });

  test("an input the server refused (ERROR with its seq) is no longer predicted", () => {
    const p = arenaPredictor();
    p.reconcile({ x: 500, y: 500 }, 0);
    p.applyInput([100, 0]);
    p.applyInput([100, 0]);
    p.applyInput([100, 0]);
    p.refuse(2);
    assert.deepEqual(p.pending.map((i) => i.seq), [1, 3]);
    assert.equal(p.reconcile({ x: 500, y: 500 }, 0), STEP, "re-predicted from two inputs, not three");
    assert.deepEqual([p.state.x, p.state.y], [500 + 2 * STEP, 500]);
  });

  test("never more unacknowledged inputs than the server queues", () => {
    const p = arenaPredictor({ maxPending: 30 });
    p.reconcile({ x: 500, y: 500 }, 0);
    let sent = 0;
    for (let i = 0; i < 100; i++) if (p.applyInput([100, 0])) sent++;
    assert.equal(sent, 30);
    p.reconcile({ x: 600, y: 500 }, 10);
    assert.equal(p.pending.length, 20);
    assert.ok(p.canInput());
  });
});

describe("interpolation of other entities", () => {
  test("smooth, monotonic motion 2-3 updates behind, across jitter", () => {
    const tickMs = 50;
    const interp = new Interpolator(tickMs, { delayMs: 125 });
    const random = rng(7);
    let lastArrival = 0;
    const xs = [];
    for (let now = 0, tick = 0, frame = 0; now < 3000; now++) {
      if (now >= tick * tickMs) {
        tick++;
        // An entity moving +10 per tick; its update arrives 30-70 ms later, in order.
        const arrival = Math.max(lastArrival, now + 30 + random() * 40);
        lastArrival = arrival;
        const state = new Map([["a", { x: tick * 10, y: 0 }]]);
        setTimeout0(arrival, () => interp.push(tick, arrival, state));
      }
      runDue(now);
      if (now >= frame * (1000 / 60)) {
        frame++;
        const e = interp.sample(now).get("a");
        if (e && now > 500) xs.push([now, e.x]);
      }
    }
    for (let i = 1; i < xs.length; i++) {
      const d = xs[i][1] - xs[i - 1][1];
      assert.ok(d >= 0, `moved backwards at ${xs[i][0]} ms`);
      assert.ok(d <= 6.5, `jumped ${d} at ${xs[i][0]} ms (one frame is ~3.3)`);
    }
    // The drawn position trails the newest state by about the delay.
    const [t, x] = xs[xs.length - 1];
    const newest = Math.floor(t / tickMs) * 10;
    assert.ok(newest - x >= 10 && newest - x <= 40, `lag ${newest - x} units`);
  });

  test("entities appear and disappear with their states; ticks going back reset", () => {
    const interp = new Interpolator(50, { delayMs: 100 });
    interp.push(1, 50, new Map([["a", { x: 0, y: 0 }]]));
    interp.push(2, 100, new Map([["a", { x: 10, y: 0 }], ["b", { x: 5, y: 5 }]]));
    interp.push(3, 150, new Map([["b", { x: 5, y: 5 }]]));
    // Render time = now - 100 ms; tick t arrived at t * 50 ms, so tick = (now - 100) / 50.
    assert.deepEqual([...interp.sample(175).keys()], ["a"]); // tick 1.5: b not there yet
    assert.equal(interp.sample(175).get("a").x, 5);
    assert.deepEqual([...interp.sample(225).keys()].sort(), ["a", "b"]); // a lasts until tick 3
    assert.deepEqual([...interp.sample(400).keys()], ["b"]); // past the newest: hold it
    interp.push(1, 500, new Map([["c", { x: 1, y: 1 }]]));
    assert.equal(interp.states.length, 1);
  });
});

describe("counters and clocks", () => {
  test("RateCounter counts a sliding second", () => {
    const r = new RateCounter(1000);
    for (let t = 0; t < 2000; t += 50) r.add(t, 100);
    assert.equal(r.rate(1999), 2000); // 20 x 100 B in the last second
    assert.equal(r.rate(5000), 0);
  });

  test("StepClock gives fixed steps and caps catch-up", () => {
    const c = new StepClock(50, 3);
    assert.equal(c.advance(0), 0);
    assert.equal(c.advance(49), 0);
    assert.equal(c.advance(50), 1);
    assert.equal(c.advance(175), 2);
    assert.equal(c.alpha(175), 0.5);
    assert.equal(c.advance(10000), 3); // a stall: no burst of hundreds of inputs
    assert.equal(c.advance(10049), 0);
  });

  test("StepClock.hurry runs one step further ahead, spread over several", () => {
    const c = new StepClock(50, 3);
    const steady = new StepClock(50, 3);
    c.advance(0);
    steady.advance(0);
    c.hurry(1);
    let ahead = 0;
    let most = 0;
    for (let t = 10; t <= 1000; t += 10) {
      const n = c.advance(t);
      most = Math.max(most, n);
      ahead += n - steady.advance(t);
    }
    assert.equal(ahead, 1, "exactly one step gained");
    assert.equal(most, 1, "never two steps at once: no hop");
    c.restart(2000);
    c.hurry(1);
    c.restart(2001);
    assert.equal(c.gain, 0, "a new stream forgets it");
  });
});

// A minimal deterministic timer queue for the interpolation test.
const due = [];
function setTimeout0(at, fn) {
  due.push([at, fn]);
  due.sort((a, b) => a[0] - b[0]);
}
function runDue(now) {
  while (due.length && due[0][0] <= now) due.shift()[1]();
}
