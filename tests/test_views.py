"""Per-player views (core/views.py), scenario by scenario, through the harness's real
engine and send path, and the large-world arena over a real socket."""

from __future__ import annotations

from typing import Any

import pytest

from gameserver import Entity, Player, Private, Room
from gameserver.client import Client
from gameserver.games.arena import Arena
from gameserver.testing import HarnessPlayer, RoomHarness
from tests.client import url


class Card(Entity):
    owner_field = "owner"
    owner: int = 0
    rank: Private[int] = 0
    suit: Private[str] = ""


class Dot(Entity):
    pid: int = 0
    x: int = 0
    y: int = 0


class Views(Room):
    """Four cards and a dot per player, which the players' inputs move."""

    game = "views"
    max_players = 4
    entity_types = (Card, Dot)

    def on_create(self, options: dict[str, Any]) -> None:
        self.world.interest(cell=10, reach=0)
        self.cards = [self.world.spawn(Card(rank=r, suit="hearts")) for r in range(1, 5)]

    def on_join(self, player: Player) -> None:
        dot = player.data["dot"] = self.world.spawn(Dot(pid=player.id, x=5 + 100 * player.id))
        self.world.show_nearby(dot)
        self.world.follow(player.id, dot)

    def validate_input(self, raw: Any) -> Any:
        return raw

    def on_input(self, player: Player, data: Any) -> None:
        player.data["dot"].x = data


def faces(player: HarnessPlayer) -> dict[int, Any]:
    return {e.id: e.values["rank"] for e in player.entities("Card")}


def dots(player: HarnessPlayer) -> set[int]:
    return {e.values["pid"] for e in player.entities("Dot")}


def test_private_fields_reach_their_owner_only_and_follow_the_card() -> None:
    room = RoomHarness(Views)
    ann, bob = room.join("ann"), room.join("bob")
    card = room.room.cards[0]
    card.owner = ann.id
    room.tick()
    assert faces(ann)[card.id] == 1 and faces(bob)[card.id] is None
    assert all(rank is None for cid, rank in faces(bob).items())

    card.owner = bob.id  # passed on: bob learns it, ann's copy is cleared
    room.tick()
    assert faces(bob)[card.id] == 1 and faces(ann)[card.id] is None

    card.rank = 9  # only the holder hears of the change
    room.tick()
    assert faces(bob)[card.id] == 9 and faces(ann)[card.id] is None

    room.room.world.reveal(card)  # face up: everyone, spectators' view included
    room.tick()
    assert faces(ann)[card.id] == 9 and faces(bob)[card.id] == 9

    room.room.world.conceal(card)  # back in bob's hand only
    room.tick()
    assert faces(bob)[card.id] == 9 and faces(ann)[card.id] is None
    assert ann.entity("Card", owner=bob.id).values["suit"] is None


def test_a_snapshot_holds_the_view_a_late_joiner_or_a_reconnection_gets() -> None:
    room = RoomHarness(Views)
    ann = room.join("ann")
    room.room.cards[1].owner = ann.id
    room.tick(2)
    ann.drop()
    room.room.cards[2].owner = ann.id  # dealt while away
    room.tick()
    ann.reconnect()
    room.tick()
    assert faces(ann) == {room.room.cards[0].id: None, room.room.cards[1].id: 2,
                          room.room.cards[2].id: 3, room.room.cards[3].id: None}
    bob = room.join("bob")
    room.tick()
    assert faces(bob) == dict.fromkeys(faces(ann))


def test_nearby_entities_enter_and_leave_a_players_view() -> None:
    room = RoomHarness(Views)
    ann, bob = room.join("ann"), room.join("bob")  # dots at x 105 and 205: cells apart
    room.tick()
    assert dots(ann) == {ann.id} and dots(bob) == {bob.id}
    ann.input(201)  # into bob's cell: each now sees the other
    room.tick()
    assert dots(ann) == dots(bob) == {ann.id, bob.id}
    assert ann.entity("Dot", pid=bob.id).values["x"] == 205
    ann.input(203)  # moving inside the cell: a change, seen by both
    room.tick()
    assert bob.entity("Dot", pid=ann.id).values["x"] == 203
    ann.input(5)  # far away again
    room.tick()
    assert dots(ann) == {ann.id} and dots(bob) == {bob.id}


def test_groups_and_owner_only_entities() -> None:
    room = RoomHarness(Views)
    ann, bob = room.join("ann"), room.join("bob")
    world = room.room.world
    secret, team = room.room.cards[0], room.room.cards[1]
    secret.owner = bob.id
    world.show_to_owner(secret)
    world.show_to_group(team, "red")
    world.join_group(ann.id, "red")
    room.tick()
    assert secret.id not in faces(ann) and secret.id in faces(bob)
    assert team.id in faces(ann) and team.id not in faces(bob)
    world.leave_group(ann.id, "red")
    world.join_group(bob.id, "red")
    world.show_to_everyone(secret)
    room.tick()
    assert team.id not in faces(ann) and team.id in faces(bob)
    assert secret.id in faces(ann) and faces(ann)[secret.id] is None


def test_a_game_without_views_never_loads_them() -> None:
    """The small arena asks for no view: no views object, so the update path of before."""
    room = RoomHarness(Arena)
    ann = room.join("ann")
    ann.input([100, 0])
    room.tick(3)
    assert room.room.world.views is None
    assert ann.entity("Avatar", pid=ann.id).values["x"] > 0


def test_misdeclared_views_are_refused_with_a_clear_error() -> None:
    with pytest.raises(TypeError, match="owner_field"):
        class Bad(Entity):
            secret: Private[int] = 0
    room = RoomHarness(Arena)
    room.join("ann")
    avatar = next(iter(room.room.world.entities.values()))
    with pytest.raises(ValueError, match="interest"):
        room.room.world.show_nearby(avatar)
    with pytest.raises(TypeError, match="owner_field"):
        room.room.world.show_to_owner(avatar)
    with pytest.raises(ValueError, match="spawn"):
        room.room.world.show_to_group(Dot(), "red")


def test_players_who_see_alike_share_encoded_parts() -> None:
    """40 players in 4 groups, one entity per group changing every tick: 4 encodes."""

    class Groups(Views):
        game = "groups"
        max_players = 40

        def on_join(self, player: Player) -> None:
            self.world.join_group(player.id, f"g{player.id % 4}")

    room = RoomHarness(Groups)
    players = [room.join(f"p{i}") for i in range(40)]
    world = room.room.world
    for i, card in enumerate(room.room.cards):
        world.show_to_group(card, f"g{i}")
        world.reveal(card)
    room.tick(2)
    for card in room.room.cards:
        card.rank += 1
    room.tick()
    assert world.views is not None and world.views.encodes == 4
    for p in players:
        group_card = room.room.cards[p.id % 4]
        assert faces(p) == {group_card.id: group_card.rank}


async def test_the_large_arena_shows_near_players_only(aiohttp_client: Any) -> None:
    """Two players far apart in one large-world room: neither sees the other, over a
    real socket, and the update bytes carry the parts element."""
    from gameserver.config import Settings
    from gameserver.web.app import create_app

    server = await aiohttp_client(create_app(Settings()))
    options = {"world": "large", "seed": 7}
    async with Client(url(server)) as client:
        ann = await client.create("arena", options, name="ann")
        bob = await client.join(ann.room_id, game="arena", options=options, name="bob")
        await ann.wait_for(lambda: ann.tick > 2)
        await bob.wait_for(lambda: bob.tick > 2)
        assert ann.config["world"] == "large" and ann.config["interest_cell"] == 800
        mine = {e.values["pid"] for e in ann.state.entities.values() if e.type == "Avatar"}
        theirs = {e.values["pid"] for e in bob.state.entities.values() if e.type == "Avatar"}
        ax = next(e for e in ann.state.entities.values() if e.type == "Avatar")
        bx = next(e for e in bob.state.entities.values() if e.type == "Avatar")
        near = (abs(ax.values["x"] // 800 - bx.values["x"] // 800) <= 1
                and abs(ax.values["y"] // 800 - bx.values["y"] // 800) <= 1)
        assert (mine == theirs == {ann.player_id, bob.player_id}) if near else (
            mine == {ann.player_id} and theirs == {bob.player_id})
        orbs = [e for e in ann.state.entities.values() if e.type == "Orb"]
        assert all(abs(o.values["x"] // 800 - ax.values["x"] // 800) <= 1 for o in orbs)


async def test_spectators_of_a_large_world_see_the_whole_map(aiohttp_client: Any) -> None:
    """Room.spectator_view = "nearby" (arena): a spectator gets every cell, so it sees
    both players however far apart they are; Private fields and owners' entities never
    (the cards tests check those)."""
    from gameserver.config import Settings
    from gameserver.web.app import create_app

    server = await aiohttp_client(create_app(Settings()))
    options = {"world": "large", "seed": 11}
    async with Client(url(server)) as client:
        ann = await client.create("arena", options, name="ann")
        bob = await client.join(ann.room_id, game="arena", options=options, name="bob")
        watcher = await client.spectate(ann.room_id, game="arena")
        await watcher.wait_for(lambda: len(watcher.entities("Avatar")) == 2)
        await bob.wait_for(lambda: bob.tick > 2)
        seen = {e.values["pid"] for e in watcher.entities("Avatar")}
        assert seen == {ann.player_id, bob.player_id}
        orbs = len(watcher.entities("Orb"))
        assert orbs >= len(ann.entities("Orb")) and orbs >= len(bob.entities("Orb"))


def test_map_spectators_never_see_what_nobody_owns() -> None:
    """An owner-only entity without an owner is seen by nobody, map spectators included
    (found by the view property test: spectators are viewer 0, like "owner 0")."""

    class MapCards(Views):
        game = "map-cards"
        spectator_view = "nearby"

    room = RoomHarness(MapCards)
    ann = room.join("ann")
    eye = room.watch()
    hidden = room.room.cards[0]
    room.room.world.show_to_owner(hidden)  # owner 0: the draw pile, say
    room.tick(2)
    assert hidden.id not in faces(ann)
    assert hidden.id not in {e.id for e in eye.entities("Card")}
    assert {e.id for e in eye.entities("Card")} == {c.id for c in room.room.cards[1:]}


def test_frozen_entities_refuse_changes_and_are_sent_once() -> None:
    """``frozen=True``: set before spawn, never after; created once, then never looked at."""

    class Wall(Entity, frozen=True):
        x: int = 0
        y: int = 0

    class Walls(Room):
        game = "walls"
        entity_types = (Wall, Dot)

        def on_create(self, options: dict[str, Any]) -> None:
            self.wall = self.world.spawn(Wall(x=3, y=4))

    room = RoomHarness(Walls)
    ann = room.join("ann")
    room.tick()
    assert ann.entity("Wall").values == {"x": 3, "y": 4}
    with pytest.raises(AttributeError, match="frozen"):
        room.room.wall.x = 5
    world = room.room.world
    assert room.room.wall.id not in world._live  # never compared again
    world.remove(room.room.wall)
    room.tick()
    assert ann.entities("Wall") == []
    with pytest.raises(TypeError, match="frozen"):
        class Secret(Entity, frozen=True):
            owner_field = "owner"
            owner: int = 0
            code: Private[int] = 0
