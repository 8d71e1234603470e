// Unit tests of the SDK's recording reader (openRecording, Replay): recordings are built
// here in the format of docs/PROTOCOL.md §8, and every seek is checked against a Replica
// that applied every update in order. tests/test_browser_replay.py plays a real one.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { RecordingError, Replica, loadCodec, openRecording } from "../../static/sdk/gameserver.js";

const codec = await loadCodec();
const SCHEMA = [["Dot", [["x", "i"], ["y", "i"], ["pid", "v"], ["name", "v"]]]];
const HEADER = { room_id: "r1", game: "dots", tick_rate: 20, schema: SCHEMA, config: { w: 9 },
  started: 1700000000, part: 1, protocol: 1 };

const tail = (message) => codec.encode(message).subarray(3); // after kind header and ack 0

// A world where dot 1 moves every tick, dot 2 joins at tick 5 and leaves at tick 30,
// with a chat at tick 12; a keyframe every 10 ticks (after that tick's delta).
function build(ticks = 40) {
  const parts = [codec.encode(["gsrec", 1, HEADER])];
  const messages = []; // [ms, message] in play order
  const world = new Map([[1, [0, 0, 1, "ann"]]]);
  const snapshot = (tick, events) => [11, 0, tick, [...world].flatMap(([id, v]) => [id, 0, ...v]), events];
  let first = snapshot(0, [["joined", [1, "ann"]]]);
  parts.push(codec.encode(["k", 0, tail(first)]));
  messages.push([0, first]);
  for (let tick = 1; tick <= ticks; tick++) {
    const created = [];
    const removed = [];
    const events = [];
    world.get(1)[0] += 3;
    const changed = [1, 0b1, 3];
    if (tick === 5) {
      world.set(2, [50, 50, 2, "bob"]);
      created.push(2, 0, 50, 50, 2, "bob");
      events.push(["joined", [2, "bob"]]);
    }
    if (tick > 5 && tick < 30) {
      world.get(2)[1] -= 1;
      changed.push(2, 0b10, -1);
    }
    if (tick === 12) events.push(["chat", [2, "hi"]]);
    if (tick === 30) {
      world.delete(2);
      removed.push(2);
      events.push(["left", [2, "bob"]]);
    }
    const delta = [12, 0, tick, tick - 1, created, changed, removed, events];
    const ms = tick * 50;
    parts.push(codec.encode(["d", ms, tail(delta)]));
    messages.push([ms, delta]);
    if (tick % 10 === 0) parts.push(codec.encode(["k", ms, tail(snapshot(tick, events))]));
  }
  const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    bytes.set(p, at);
    at += p.length;
  }
  return { bytes, messages };
}

function playedTo(messages, ms) {
  const r = new Replica(SCHEMA);
  for (const [at, m] of messages) if (at <= ms) r.apply(m);
  return r;
}

describe("openRecording", () => {
  test("header, duration and the timeline of events", async () => {
    const { bytes } = build();
    const replay = await openRecording(bytes.buffer.slice(0));
    assert.equal(replay.header.game, "dots");
    assert.equal(replay.header.room_id, "r1");
    assert.deepEqual(replay.header.schema, SCHEMA);
    assert.equal(replay.duration, 2000);
    assert.equal(replay.room.tickRate, 20);
    assert.deepEqual(replay.room.config, { w: 9 });
    assert.deepEqual(replay.events.map((e) => [e.ms, e.tick, e.kind]),
      [[0, 0, "joined"], [250, 5, "joined"], [600, 12, "chat"], [1500, 30, "left"]]);
    assert.deepEqual(replay.events[2].body, [2, "hi"]);
    assert.equal(replay.tick, 0, "opened at the first keyframe");
  });

  test("seek equals sequential play at that time, forwards, backwards, across keyframes", async () => {
    const { bytes, messages } = build();
    const replay = await openRecording(bytes);
    for (const ms of [1000, 1234, 260, 0, 2000, 525, 1999, 1500, 1501, 50]) {
      replay.seek(ms);
      const expected = playedTo(messages, ms);
      assert.equal(replay.tick, expected.tick, `tick at ${ms}`);
      assert.deepEqual(replay.room.state.view(), expected.view(), `state at ${ms}`);
      assert.equal(replay.time, ms);
    }
    replay.seek(99999);
    assert.equal(replay.time, 2000, "clamped");
  });

  test("seeking from the start applies the nearest keyframe, not every delta", async () => {
    const { bytes } = build();
    const replay = await openRecording(bytes);
    let applied = 0;
    const apply = replay.room.state.apply.bind(replay.room.state);
    replay.room.state.apply = (m) => {
      applied++;
      return apply(m);
    };
    replay.seek(1525); // the keyframe of tick 30 (1500 ms); tick 31 is at 1550 ms
    assert.equal(replay.tick, 30);
    assert.equal(applied, 1);
  });

  test("callbacks: the net change on a seek, every update while playing, events only in play", async () => {
    const { bytes, messages } = build();
    const replay = await openRecording(bytes);
    const room = replay.room;
    const seen = { add: [], remove: [], change: 0, state: 0, events: [] };
    room.onAdd("Dot", (e) => seen.add.push(e.values.name));
    const there = seen.add.splice(0); // the dots already there, reported at once
    room.onRemove((e) => seen.remove.push(e.values.name));
    room.onChange("Dot", () => seen.change++);
    room.onStateChange(() => seen.state++);
    room.onEvent((body, kind) => seen.events.push(kind));
    const interp = room.interpolate({ filter: (e) => e.type === "Dot" });
    replay.seek(700); // bob is here now, and dot 1 moved
    assert.ok(!there.includes("bob"));
    assert.deepEqual(seen.add, ["bob"]);
    assert.equal(seen.change, 1);
    assert.equal(seen.state, 1);
    assert.deepEqual(seen.events, [], "a seek fires no events");
    assert.equal(interp.sample(performance.now()).size, 2);
    replay.seek(1600);
    assert.deepEqual(seen.remove, ["bob"]);

    replay.seek(500);
    seen.events = [];
    replay.speed = 8;
    assert.equal(replay.speed, 8);
    replay.speed = 100;
    assert.equal(replay.speed, 8, "at most 8x");
    let updates = 0;
    replay.onUpdate(() => updates++);
    replay.play();
    assert.equal(replay.playing, true);
    await new Promise((resolve) => setTimeout(resolve, 120)); // ~1 s of the recording
    replay.pause();
    assert.equal(replay.playing, false);
    assert.ok(replay.time > 600 && replay.time < 2000, `time ${replay.time}`);
    assert.deepEqual(seen.events, ["chat"], "the chat at 600 ms was played");
    const expected = playedTo(messages, replay.time);
    assert.deepEqual(room.state.view(), expected.view());
    const paused = replay.time;
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal(replay.time, paused, "paused");
    replay.play();
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(replay.playing, false, "stops at the end");
    assert.equal(replay.time, 2000);
    assert.equal(replay.tick, 40);
    assert.ok(updates >= 3);
    replay.close();
  });

  test("a cut file reads up to the cut; garbage is refused", async () => {
    const { bytes, messages } = build();
    const replay = await openRecording(bytes.subarray(0, Math.floor(bytes.length * 0.6) + 1));
    assert.ok(replay.duration < 1500 && replay.duration > 500, `duration ${replay.duration}`);
    replay.seek(replay.duration);
    assert.deepEqual(replay.room.state.view(), playedTo(messages, replay.duration).view());
    await assert.rejects(openRecording(new Uint8Array([0x93, 1, 2, 3])), RecordingError);
    await assert.rejects(openRecording(codec.encode(["k", 0, new Uint8Array(0)])), RecordingError);
    await assert.rejects(openRecording(new Uint8Array(0)), RecordingError);
  });

  test("a gzipped recording opens", async () => {
    const { bytes, messages } = build();
    const { gzipSync } = await import("node:zlib");
    const replay = await openRecording(gzipSync(bytes));
    replay.seek(800);
    assert.deepEqual(replay.room.state.view(), playedTo(messages, 800).view());
  });
});

describe("Client.fetchRecording", () => {
  test("a name is fetched from /admin/recordings with the token as a Bearer header", async () => {
    const { Client } = await import("../../static/sdk/gameserver.js");
    const { bytes } = build(12);
    const calls = [];
    const fetch = async (url, init) => {
      calls.push([url, init.headers]);
      return { ok: true, status: 200, statusText: "OK", arrayBuffer: async () => bytes.buffer.slice(0) };
    };
    const client = new Client("http://game.test", { fetch });
    const replay = await client.fetchRecording("dots-1-r1.gsrec", { adminToken: "t0k" });
    assert.equal(replay.duration, 600);
    await client.fetchRecording("/files/x.gsrec");
    assert.deepEqual(calls, [
      ["http://game.test/admin/recordings/dots-1-r1.gsrec", { Authorization: "Bearer t0k" }],
      ["http://game.test/files/x.gsrec", {}],
    ]);
    const refusing = new Client("http://game.test",
      { fetch: async () => ({ ok: false, status: 401, statusText: "Unauthorized" }) });
    await assert.rejects(refusing.fetchRecording("x.gsrec"), RecordingError);
  });
});
