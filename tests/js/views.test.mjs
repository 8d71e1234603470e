// Unit tests of the SDK's Replica with per-player views (protocol 2, issue 14): the
// `parts` element of SNAPSHOT (6th) and DELTA (9th), applied as docs/PROTOCOL.md says:
// a snapshot creates its entities, then each part's created, then each part's changed;
// a delta removes (public, then each part), creates (public, then each part), changes
// (public, then each part, in order). Built by hand from the wire format; the same
// algorithm as gameserver/core/replica.py (tests/test_browser.py compares the two).

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { Replica, ReplicaError } from "../../static/sdk/gameserver.js";

// Avatar: x, y are "i" (differences); Card: owner public, rank and suit private ("v").
const SCHEMA = [
  ["Avatar", [["x", "i"], ["y", "i"], ["pid", "v"], ["name", "v"]]],
  ["Card", [["owner", "v"], ["rank", "v"], ["suit", "v"]]],
];
const AVATAR = 0;
const CARD = 1;
const RANK = 0b010;
const SUIT = 0b100;
const X = 0b0001;
const Y = 0b0010;

const ids = (list) => list.map((e) => e.id);
const changes = (r) => r.changed.map(([e, f]) => [e.id, f]);

/** A replica at tick 10: a public avatar 1 (ours, pid 7), a nearby avatar 2, card 3 of ours. */
function seeded() {
  const r = new Replica(SCHEMA);
  r.apply([11, 0, 10, [1, AVATAR, 100, 100, 7, "me"], [],
    [[[2, AVATAR, 900, 100, 8, "near", 3, CARD, 7, null, null], [], []],
      [[], [3, RANK | SUIT, 12, "hearts"], []]]]);
  return r;
}

describe("Replica with view parts", () => {
  test("a snapshot with parts: entities, each part's created, then the parts' changes", () => {
    const r = seeded();
    assert.equal(r.tick, 10);
    assert.deepEqual(r.view(), {
      1: ["Avatar", { x: 100, y: 100, pid: 7, name: "me" }],
      2: ["Avatar", { x: 900, y: 100, pid: 8, name: "near" }],
      3: ["Card", { owner: 7, rank: 12, suit: "hearts" }],
    });
    assert.deepEqual(ids(r.added), [1, 2, 3]);
    assert.deepEqual(r.changed, [], "the private fields of a new entity come with its add");
    assert.deepEqual(r.ofType("Card").map((c) => c.values.rank), [12]);
  });

  test("a snapshot without parts is as before; the 5-element form still applies", () => {
    const r = new Replica(SCHEMA);
    r.apply([11, 0, 3, [1, AVATAR, 1, 2, 7, "me"], [["hi", 1]]]);
    r.apply([11, 0, 4, [1, AVATAR, 1, 2, 7, "me"], [], []]);
    assert.deepEqual(Object.keys(r.view()), ["1"]);
    assert.deepEqual(r.events, []);
  });

  test("a delta's parts: all removals, then all creations, then all changes, in order", () => {
    const r = seeded();
    const uid1 = r.get(1).uid;
    // Part 1 removes avatar 2 (it left our area); part 2 creates avatar 4 (entered) and
    // changes it (a change of an entity created by an earlier part of the same update);
    // the public changed moves avatar 1; part 3 moves it again: changes add up in order.
    r.apply([12, 5, 11, 10, [], [1, X, 10], [], [["joined", [9]]], [
      [[], [], [2]],
      [[4, AVATAR, 500, 500, 9, "new"], [4, X | Y, 1, -1], []],
      [[], [1, X, 5], []],
    ]]);
    assert.equal(r.ack, 5);
    assert.equal(r.tick, 11);
    assert.deepEqual(r.events, [["joined", [9]]]);
    assert.deepEqual(r.get(1).values, { x: 115, y: 100, pid: 7, name: "me" });
    assert.equal(r.get(1).uid, uid1);
    assert.deepEqual(r.get(4).values, { x: 501, y: 499, pid: 9, name: "new" });
    assert.equal(r.get(2), undefined);
    assert.deepEqual(ids(r.removed), [2]);
    assert.deepEqual(ids(r.added), [4]);
    assert.deepEqual(changes(r), [[1, ["x"]]], "one entry per entity; none for the added one");
  });

  test("removals come before creations, whatever the order of the parts", () => {
    const r = seeded();
    const near = r.get(2);
    // Avatar 2 enters the cell of part 1 and leaves the cell of part 2, listed after it:
    // applied part by part it would be created over itself, then removed.
    r.apply([12, 0, 11, 10, [], [], [], [], [
      [[2, AVATAR, 1610, 100, 8, "near"], [], []],
      [[], [], [2]],
    ]]);
    assert.equal(r.get(2), near);
    assert.deepEqual(r.get(2).values, { x: 1610, y: 100, pid: 8, name: "near" });
    assert.deepEqual([r.added, r.removed, changes(r)], [[], [], [[2, ["x"]]]]);
  });

  test("remove + create of the same id in one update is the same entity continuing", () => {
    const r = seeded();
    const near = r.get(2);
    const values = near.values;
    // Avatar 2 moves from one cell we see to another: the first cell's part removes it,
    // the second's creates it at the new place.
    r.apply([12, 0, 11, 10, [], [], [], [], [
      [[], [], [2]],
      [[2, AVATAR, 830, 100, 8, "near"], [], []],
    ]]);
    assert.equal(r.get(2), near, "the same object");
    assert.equal(r.get(2).uid, near.uid, "the same uid: interpolation keeps blending");
    assert.equal(r.get(2).values, values, "its values object is updated in place");
    assert.equal(near.values.x, 830);
    assert.deepEqual(r.added, []);
    assert.deepEqual(r.removed, []);
    assert.deepEqual(changes(r), [[2, ["x"]]]);
    assert.equal(r.byType.get("Avatar").get(2), near);
    // Public removal + a part's creation (a public entity that became nearby-only) too;
    // and with a change record after the creation: the net change is reported, once.
    r.apply([12, 0, 12, 11, [], [], [2], [], [[[2, AVATAR, 830, 100, 8, "near"], [2, Y, 4], []]]]);
    assert.equal(r.get(2), near);
    assert.deepEqual([r.added, r.removed], [[], []]);
    assert.deepEqual(changes(r), [[2, ["y"]]]);
    // Removed and created again unchanged: nothing to report at all.
    r.apply([12, 0, 13, 12, [], [], [], [], [[[], [], [2]], [[2, AVATAR, 830, 104, 8, "near"], [], []]]]);
    assert.deepEqual([r.added, r.removed, r.changed], [[], [], []]);
  });

  test("an id removed and created as another type is a removal and an addition", () => {
    const r = seeded();
    const old = r.get(2);
    r.apply([12, 0, 11, 10, [], [], [], [], [[[], [], [2]], [[2, CARD, 0, null, null], [], []]]]);
    assert.deepEqual(r.removed, [old]);
    assert.deepEqual(ids(r.added), [2]);
    assert.notEqual(r.get(2).uid, old.uid);
    assert.equal(r.byType.get("Avatar").has(2), false);
    assert.equal(r.byType.get("Card").get(2).values.owner, 0);
  });

  test("the private part sets private fields, and a null clears one no longer owned", () => {
    const r = seeded();
    // Card 3 changes hands: its public owner field changes, and our private part clears
    // the fields we no longer own (private fields travel as values, kind "v").
    r.apply([12, 0, 11, 10, [], [3, 0b001, 8], [], [], [[[], [3, RANK | SUIT, null, null], []]]]);
    assert.deepEqual(r.get(3).values, { owner: 8, rank: null, suit: null });
    assert.deepEqual(changes(r), [[3, ["owner", "rank", "suit"]]], "one entry, the fields merged");
    // A card dealt to us: created with its private slots null, then the private part fills them.
    r.apply([12, 0, 12, 11, [5, CARD, 7, null, null], [], [], [], [[[], [5, RANK, 3], []]]]);
    assert.deepEqual(r.get(5).values, { owner: 7, rank: 3, suit: null });
    assert.deepEqual(ids(r.added), [5]);
    assert.deepEqual(r.changed, []);
    // A revealed card: its entity record carries the values; nothing private needed.
    r.apply([12, 0, 13, 12, [], [3, RANK | SUIT, 1, "spades"], [], []]);
    assert.deepEqual(r.get(3).values, { owner: 8, rank: 1, suit: "spades" });
  });

  test("a snapshot with parts keeps what continues (uid, private fields) and diffs it", () => {
    const r = seeded();
    const [me, near, card] = [r.get(1), r.get(2), r.get(3)];
    // A resync: the same world; the card's private fields come from the private part again.
    r.apply([11, 0, 20, [1, AVATAR, 100, 100, 7, "me"], [],
      [[[2, AVATAR, 910, 100, 8, "near", 3, CARD, 7, null, null], [], []],
        [[], [3, RANK | SUIT, 12, "hearts"], []]]]);
    assert.deepEqual([r.get(1), r.get(2), r.get(3)], [me, near, card]);
    assert.deepEqual([r.added, r.removed], [[], []]);
    assert.deepEqual(changes(r), [[2, ["x"]]], "rank went null and back: no change");
    // The next snapshot: avatar 2 is out of our area (not in any part): it is removed.
    r.apply([11, 0, 21, [1, AVATAR, 100, 100, 7, "me"], [], [[[3, CARD, 7, null, null], [], []]]]);
    assert.deepEqual(r.removed, [near]);
    assert.deepEqual(changes(r), [[3, ["rank", "suit"]]]);
  });

  test("bad parts throw ReplicaError", () => {
    const bad = [
      [12, 0, 11, 10, [], [], [], [], 5], // parts not a list
      [12, 0, 11, 10, [], [], [], [], [[[], []]]], // a part not a triple
      [12, 0, 11, 10, [], [], [], [], [[[], [], 2]]], // removed not a list
      [12, 0, 11, 10, [], [], [], [], [[[], [], [99]]]], // removing an unknown id
      [12, 0, 11, 10, [], [], [], [], [[[], [99, 1, 0], []]]], // changing an unknown id
      [12, 0, 11, 10, [], [], [], [], [[[], [], [2]], [[], [2, 1, 0], []]]], // changing a removed one
      [12, 0, 11, 10, [], [], [], [], [[[6, 7], [], []]]], // an unknown type
      [11, 0, 11, [], [], [[[], [3, RANK, 1], []]]], // a snapshot part changing what it lacks
    ];
    for (const message of bad) assert.throws(() => seeded().apply(message), ReplicaError, JSON.stringify(message));
  });
});
