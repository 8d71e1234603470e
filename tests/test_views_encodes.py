"""Per-player views (issue 14) cost encodes per *view*, not per player, and a game that
uses no views is sent exactly the bytes it was sent before (protocol: 8-element DELTA,
5-element SNAPSHOT)."""

from __future__ import annotations

from typing import Any

import msgpack

from gameserver import Entity, Room
from gameserver.core import codec
from gameserver.core.world import Private
from gameserver.host.room_host import frame
from gameserver.testing import HarnessPlayer, RoomHarness

PLAYERS = 40
GROUPS = ("red", "blue", "green", "gold")


class Orb(Entity):
    x: int = 0
    y: int = 0


class Flag(Entity):
    x: int = 0
    label: str = ""


class Card(Entity):
    owner_field = "owner"
    owner: int = 0
    face: int = 0
    rank: Private[int] = 0


class Avatar(Entity):
    owner_field = "owner"
    owner: int = 0
    x: int = 0
    y: int = 0


class Grouped(Room):
    """40 players in 4 groups: 10 orbs for everyone, 5 flags per group, a card each
    (shown to its owner only, with a private rank)."""

    game = "grouped"
    max_players = PLAYERS
    entity_types = (Orb, Flag, Card)

    def on_create(self, options: dict[str, Any]) -> None:
        world = self.world
        self.orbs = [world.spawn(Orb(x=i)) for i in range(10)]
        self.flags: dict[str, list[Flag]] = {}
        for group in GROUPS:
            self.flags[group] = [world.spawn(Flag(x=i, label=group)) for i in range(5)]
            for flag in self.flags[group]:
                world.show_to_group(flag, group)
        self.cards: dict[int, Card] = {}

    def on_join(self, player: Any) -> None:
        self.world.join_group(player.id, GROUPS[player.id % len(GROUPS)])
        card = self.cards[player.id] = self.world.spawn(Card(owner=player.id, rank=player.id))
        self.world.show_to_owner(card)

    def update(self, dt: float) -> None:
        for orb in self.orbs:
            orb.x += 1
        for flags in self.flags.values():
            for flag in flags:
                flag.x += 1


class Spread(Room):
    """40 players in 4 far-apart interest cells, each following its own avatar; every
    avatar moves each tick without leaving its cell."""

    game = "spread"
    max_players = PLAYERS
    entity_types = (Avatar, Orb)
    corners = ((50, 50), (550, 50), (50, 550), (550, 550))  # cells (0,0) (5,0) (0,5) (5,5)

    def on_create(self, options: dict[str, Any]) -> None:
        self.world.interest(cell=100, reach=1)
        self.avatars: list[Avatar] = []
        self.step = 1

    def on_join(self, player: Any) -> None:
        x, y = self.corners[player.id % len(self.corners)]
        avatar = self.world.spawn(Avatar(owner=player.id, x=x, y=y))
        self.world.show_nearby(avatar)
        self.world.follow(player.id, avatar)
        self.avatars.append(avatar)

    def update(self, dt: float) -> None:
        self.step = -self.step
        for avatar in self.avatars:
            avatar.x += self.step  # 50 <-> 49 or 51: never out of the cell


def group_of(player: HarnessPlayer) -> str:
    return GROUPS[player.id % len(GROUPS)]


def test_a_steady_tick_encodes_one_part_per_group_plus_the_changed_private_parts() -> None:
    harness = RoomHarness(Grouped)
    players = [harness.join(f"p{i}") for i in range(PLAYERS)]
    harness.tick(3)  # snapshots, then steady deltas
    room = harness.room
    assert isinstance(room, Grouped)
    world = room.world
    assert world.views is not None
    assert world.views.encodes <= len(GROUPS)  # orbs and flags move; no card changed
    assert world.views.encodes >= len(GROUPS)  # every group's flags did move
    # Three players' private ranks change: three more parts at most.
    changed = players[:3]
    for player in changed:
        room.cards[player.id].rank += 100
    harness.tick()
    assert len(GROUPS) <= world.views.encodes <= len(GROUPS) + len(changed)
    assert world.views.encodes < PLAYERS
    for player in players:  # and each got its view: its group's flags, its own card only
        flags = {e.values["label"] for e in player.entities("Flag")}
        assert flags == {group_of(player)}
        cards = player.entities("Card")
        assert [c.values["owner"] for c in cards] == [player.id]
        bonus = 100 if player in changed else 0
        assert cards[0].values["rank"] == player.id + bonus
        assert len(player.entities("Orb")) == 10
    # A tick that changes nothing but the orbs (public): no view part at all.
    room.flags = {}
    harness.tick()
    assert world.views.encodes == 0


def test_a_steady_tick_encodes_per_interest_area_not_per_player() -> None:
    harness = RoomHarness(Spread)
    players = [harness.join(f"p{i}") for i in range(PLAYERS)]
    harness.tick(3)
    world = harness.room.world
    assert world.views is not None
    areas = len(Spread.corners)
    assert 1 <= world.views.encodes <= areas, world.views.encodes
    for player in players:  # each sees the 10 avatars of its own corner only
        mine = {(a.values["x"] // 100, a.values["y"] // 100)
                for a in player.entities("Avatar")}
        assert len(player.entities("Avatar")) == PLAYERS // areas
        assert len(mine) == 1


class SpreadMap(Spread):
    game = "spread-map"
    spectator_view = "nearby"


def test_spectators_who_see_the_map_share_the_cells_parts() -> None:
    harness = RoomHarness(SpreadMap)
    for i in range(PLAYERS):
        harness.join(f"p{i}")
    watchers = [harness.watch() for _ in range(10)]
    harness.tick(3)
    world = harness.room.world
    assert world.views is not None
    assert 1 <= world.views.encodes <= len(Spread.corners), world.views.encodes
    for eye in watchers:
        assert len(eye.entities("Avatar")) == PLAYERS
        assert len(eye.received[-1]) == 9 and len(eye.received[-1][8]) == len(Spread.corners)


class Mixed(Spread):
    """40 players: two groups crossed with two far-apart interest areas (four distinct
    views), a flag per group moving every tick, and a revealed card per group whose
    private rank changes every tick (public to everyone who sees it: no private part)."""

    game = "mixed"
    entity_types = (Avatar, Orb, Card)
    corners = ((50, 50), (550, 550))

    def on_create(self, options: dict[str, Any]) -> None:
        super().on_create(options)
        world = self.world
        self.flags = [world.spawn(Orb(x=i)) for i in range(2)]
        self.cards = [world.spawn(Card(owner=1 + i, rank=i)) for i in range(2)]
        for group, flag, card in zip(GROUPS, self.flags, self.cards, strict=False):
            world.show_to_group(flag, group)
            world.show_to_group(card, group)
            world.reveal(card)

    def on_join(self, player: Any) -> None:
        super().on_join(player)
        self.world.join_group(player.id, GROUPS[(player.id // 2) % 2])

    def update(self, dt: float) -> None:
        super().update(dt)
        for flag in self.flags:
            flag.x += 1
        for card in self.cards:
            card.rank += 1


def test_views_crossing_groups_and_areas_share_their_parts() -> None:
    harness = RoomHarness(Mixed)
    players = [harness.join(f"p{i}") for i in range(PLAYERS)]
    harness.tick(3)
    world = harness.room.world
    assert world.views is not None
    views = {(GROUPS[(p.id // 2) % 2], p.id % 2) for p in players}
    assert len(views) == 4
    assert 1 <= world.views.encodes <= len(views), world.views.encodes
    for player in players:  # the revealed rank, as everyone in the group sees it
        group = GROUPS[(player.id // 2) % 2]
        card = player.entity("Card")
        assert card.values["rank"] == GROUPS.index(group) + harness.room.tick
        assert len(player.entities("Orb")) == 1
        assert len(player.entities("Avatar")) == PLAYERS // 2


class Crowded(Room):
    """One player in 20 groups, each with an orb that moves every tick: 20 parts, more
    than a msgpack fixarray holds (an array 16 header)."""

    game = "crowded"
    entity_types = (Orb,)

    def on_create(self, options: dict[str, Any]) -> None:
        self.orbs = [self.world.spawn(Orb(x=i)) for i in range(20)]
        for i, orb in enumerate(self.orbs):
            self.world.show_to_group(orb, f"g{i}")

    def on_join(self, player: Any) -> None:
        if player.name == "ann":
            for i in range(len(self.orbs)):
                self.world.join_group(player.id, f"g{i}")

    def update(self, dt: float) -> None:
        for orb in self.orbs:
            orb.y += 1


def test_more_than_15_parts_in_one_update() -> None:
    harness = RoomHarness(Crowded)
    ann, bob = harness.join("ann"), harness.join("bob")
    harness.tick()
    assert len(ann.received[-1]) == 6 and len(ann.received[-1][5]) >= 16  # snapshot
    harness.tick(2)
    last = ann.received[-1]
    assert last[0] == codec.S_DELTA and len(last[8]) == 20
    assert sorted((o.values["x"], o.values["y"]) for o in ann.entities("Orb")) == \
        [(i, 3) for i in range(20)]
    assert bob.entities() == [] and len(bob.received[-1]) == 8


def test_views_give_each_player_the_parts_the_host_sends() -> None:
    """The host contract (core/views.py): ``delta_parts(pid)`` / ``snapshot_parts(pid)``
    are the update's last element, one msgpack array, or b"" for the classic message."""
    harness = RoomHarness(Grouped)
    ann = harness.join("ann")
    eye = harness.watch()
    harness.tick(2)
    views = harness.room.world.views
    assert views is not None
    last = ann.received[-1]
    assert last[0] == codec.S_DELTA and msgpack.unpackb(views.delta_parts(ann.id)) == last[8]
    assert views.delta_parts(eye.id) == b""  # a spectator of a public-view game
    parts = msgpack.unpackb(views.snapshot_parts(ann.id))
    assert len(parts) >= 2  # her group's flags, her card (and its private rank)
    assert views.snapshot_parts(0) == b""


# -- a game without views: the wire of protocol 1 -----------------------------------------


class Dot(Entity):
    x: int = 0
    label: str = ""


class Plain(Room):
    """No view feature anywhere."""

    game = "plain"
    entity_types = (Dot,)

    def on_join(self, player: Any) -> None:
        player.data["dot"] = self.world.spawn(Dot(x=player.id, label="d"))

    def on_input(self, player: Any, data: Any) -> None:
        player.data["dot"].x += data

    def on_leave(self, player: Any, consented: bool) -> None:
        self.world.remove(player.data["dot"])


def capture(player: HarnessPlayer) -> list[bytes]:
    """Every frame written to the player's socket from now on, as written."""
    written: list[bytes] = []
    socket = player._socket
    assert socket is not None
    write = socket.write

    def record(data: bytes) -> None:
        written.append(bytes(data))
        write(data)

    socket.write = record  # type: ignore[method-assign]
    return written


def test_a_game_without_views_gets_the_classic_messages_byte_for_byte() -> None:
    harness = RoomHarness(Plain)
    ann = harness.join("ann")
    frames = capture(ann)
    harness.tick()  # ann's snapshot, of her dot (id 1: [1, type 0, x 1, "d"])
    assert harness.room.world.views is None
    pack = msgpack.Packer(use_bin_type=True).pack
    assert frames == [frame(pack([codec.S_SNAPSHOT, 0, 1, [1, 0, 1, "d"], []]))]
    bob = harness.join("bob")
    ann.input(5)
    harness.room.broadcast("hi", 7)
    harness.tick()  # a delta: ann's dot moved by 5, bob's dot is new, one event
    assert frames[1:] == [frame(pack([codec.S_DELTA, 1, 2, 1, [2, 0, 2, "d"], [1, 1, 5],
                                      [], [["hi", 7]]]))]
    assert bob.received[-1] == [codec.S_SNAPSHOT, 0, 2, [1, 0, 6, "d", 2, 0, 2, "d"],
                                [["hi", 7]]]
    bob.leave()
    harness.tick()
    assert frames[2:] == [frame(pack([codec.S_DELTA, 1, 3, 2, [], [], [2], []]))]
    assert harness.room.world.views is None


def test_a_game_without_views_sends_8_element_deltas_and_5_element_snapshots() -> None:
    harness = RoomHarness(Plain)
    players = [harness.join(n) for n in ("ann", "bob", "cat")]
    watcher = harness.watch()
    for n in range(1, 20):
        if players[n % 3].connected:
            players[n % 3].input(1)
        if n == 7:
            players[1].slow = True
        if n == 9:
            players[1].slow = False  # back: a snapshot
        if n == 12:
            players[2].drop()
        if n == 14:
            players[2].reconnect()  # back: a snapshot
        harness.tick()
    for who in [*players, watcher]:
        updates = [m for m in who.received if m[0] in (codec.S_SNAPSHOT, codec.S_DELTA)]
        assert updates
        for m in updates:
            assert len(m) == (5 if m[0] == codec.S_SNAPSHOT else 8), m
    assert [m[0] for m in players[1].received if m[0] == codec.S_SNAPSHOT] == [11, 11]
    assert harness.room.world.views is None


class Wall(Entity, frozen=True):
    x: int = 0
    y: int = 0
    kind: str = ""


class Walled(Room):
    """A cell of 300 frozen walls, (0, 0), and players whose area is their own cell
    (reach 0), each following an avatar that starts two cells to the right."""

    game = "walled"
    max_players = 4
    entity_types = (Avatar, Wall)

    def on_create(self, options: dict[str, Any]) -> None:
        self.world.interest(cell=100, reach=0)
        self.walls = [self.world.spawn(Wall(x=i % 100, y=i // 100, kind="brick"))
                      for i in range(300)]
        for wall in self.walls:
            self.world.show_nearby(wall)
        self.avatars: dict[int, Avatar] = {}

    def on_join(self, player: Any) -> None:
        avatar = self.avatars[player.id] = self.world.spawn(Avatar(owner=player.id, x=250))
        self.world.show_nearby(avatar)
        self.world.follow(player.id, avatar)


def test_frozen_entities_are_encoded_once_per_cell_not_once_per_crossing(
        monkeypatch: Any) -> None:
    """Crossing into a cell of frozen entities copies their kept bytes; they are packed
    again only after one of them came or went, and every crosser sees them all."""
    from gameserver.core import views as views_module

    packed: list[int] = []  # bytes packed by the views in the current tick
    real = views_module._packb

    def counting(value: Any) -> bytes:
        data = real(value)
        packed.append(len(data))
        return data

    monkeypatch.setattr(views_module, "_packb", counting)
    harness = RoomHarness(Walled)
    room = harness.room
    assert isinstance(room, Walled)
    ann, bob = harness.join("ann"), harness.join("bob")
    harness.tick(2)
    walls = len(real([v for w in room.walls for v in (w.id, 1, w.x, w.y, w.kind)]))  # records

    def cross(player: HarnessPlayer, x: int) -> tuple[int, int]:
        """Move the player's avatar to ``x``; (bytes packed, bytes the player got)."""
        room.avatars[player.id].x = x
        packed.clear()
        harness.tick()
        return sum(packed), len(msgpack.packb(player.received[-1]))

    first, got = cross(ann, 50)  # into the walls' cell: packed once, here
    assert first >= walls and got >= walls
    assert len(ann.entities("Wall")) == 300 and bob.entities("Wall") == []
    cross(ann, 250)
    assert ann.entities("Wall") == []
    again, got = cross(bob, 50)  # the same cell later: the walls' bytes are copied
    assert again < walls // 4 <= walls <= got, (again, walls, got)
    assert len(bob.entities("Wall")) == 300
    cross(bob, 250)
    room.world.remove(room.walls.pop())  # one goes, one comes: packed again, once
    room.walls.append(room.world.spawn(Wall(x=99, y=99, kind="gate")))
    room.world.show_nearby(room.walls[-1])
    harness.tick()
    after, got = cross(ann, 50)
    assert after >= walls and got >= walls
    assert sorted(w.values["kind"] for w in ann.entities("Wall")).count("gate") == 1
    assert {w.id for w in ann.entities("Wall")} == {w.id for w in room.walls}
