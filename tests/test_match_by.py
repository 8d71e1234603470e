"""Matchmaking by creation options (``Room.match_by``), through ``POST /matchmake`` on a
real loopback server: in memory, and with two nodes sharing the Redis directory."""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from gameserver import Entity, Room
from gameserver.core.directory import MemoryDirectory, RoomListing
from gameserver.games.arena import Arena
from gameserver.games.connect_four import ConnectFour

from .client import MatchmakeFailed, Player, matchmake, url


class Token(Entity):
    x: int = 0


class Duel(Room):
    game = "duel"
    match_by = ("mode", "level")
    max_players = 4
    entity_types = (Token,)


async def rooms(session: aiohttp.ClientSession, base: str, game: str) -> list[dict[str, Any]]:
    async with session.get(f"{base}/rooms?game={game}") as resp:
        assert resp.status == 200
        return list((await resp.json())["rooms"])


async def test_arena_players_asking_for_a_large_world_never_land_in_a_small_one(
        session: aiohttp.ClientSession, base: str) -> None:
    # Interleaved, in rooms of 2 (max_players is an option but not a matched one).
    worlds = ["large", "small", "large", "small", "large", "small", None, None]
    placed: dict[str, set[str | None]] = defaultdict(set)
    seats: dict[str, int] = defaultdict(int)
    first: dict[str | None, str] = {}
    for world in worlds:
        options: dict[str, Any] = {"max_players": 2}
        if world is not None:
            options["world"] = world
        r = await matchmake(session, base, options=options)
        placed[r["room_id"]].add(world)
        seats[r["room_id"]] += 1
        first.setdefault(world, r["room_id"])
    # arena's match_by gives "world" its default: no world is the small one.
    worlds_of = {k: {w or "small" for w in v} for k, v in placed.items()}
    assert all(len(w) == 1 for w in worlds_of.values()), placed  # never mixed
    assert sorted(seats.values()) == [1, 1, 2, 2, 2]  # equal options share a room
    assert worlds_of[first[None]] == {"small"} and first["small"] != first["large"]
    listed = {r["room_id"]: r for r in await rooms(session, base, "arena")}
    assert set(listed) == set(placed)
    for room_id, (world,) in ((k, tuple(v)) for k, v in worlds_of.items()):
        assert listed[room_id].get("match") == {"world": world}  # what it is matched by
    # A socket lands where its reservation says: the free seat of the second large room.
    ann = await Player.join(session, base, options={"world": "large"})
    large = [k for k, v in placed.items() if v == {"large"} and seats[k] == 1]
    assert ann.room_id == large[0]
    await ann.ws.close()


async def test_values_compare_as_json_and_a_missing_key_only_matches_its_absence(
        start_server: Callable[..., Any], session: aiohttp.ClientSession) -> None:
    base = url(await start_server(games=(Duel, Arena)))

    async def place(**options: Any) -> str:
        return str((await matchmake(session, base, game="duel", options=options))["room_id"])

    ranked = await place(mode="ranked", level=1)
    assert await place(mode="ranked", level=1, note="x") == ranked  # not matched by
    assert await place(level=1, mode="ranked") == ranked
    others = [await place(mode="ranked", level=True),  # JSON true is not 1
              await place(mode="ranked", level="1"),
              await place(mode="ranked", level=1.0),  # nor is 1.0
              await place(mode="ranked"),  # no level: only rooms created without one
              await place(mode="ranked", level=None),  # null is a value, not an absence
              await place()]
    assert len({ranked, *others}) == 7
    assert await place(mode="ranked") == others[3]
    assert await place(mode="ranked", level=None) == others[4]
    assert await place() == others[5]
    nested = await place(mode={"b": [1, 2], "a": 0})
    assert await place(mode={"a": 0, "b": [1, 2]}) == nested  # objects: key order aside
    assert await place(mode={"a": 0, "b": [2, 1]}) != nested  # lists: order counts
    # join without a room id is matched too, and never creates a room
    with pytest.raises(MatchmakeFailed) as refused:
        await matchmake(session, base, game="duel", mode="join", options={"mode": "casual"})
    assert (refused.value.status, refused.value.body["error"]) == (404, "no_such_room")
    joined = await matchmake(session, base, game="duel", mode="join",
                             options={"mode": "ranked", "level": True})
    assert joined["room_id"] == others[0]
    # by id, the options are the player's own: no matching
    by_id = await matchmake(session, base, game="duel", mode="join", room_id=ranked,
                            options={"mode": "casual"})
    assert by_id["room_id"] == ranked
    # a created room is matched by its options; a private one never is
    private = await matchmake(session, base, game="duel", mode="create", private=True,
                              options={"mode": "casual"})
    created = await matchmake(session, base, game="duel", mode="create",
                              options={"mode": "casual"})
    casual = await place(mode="casual")
    assert casual == created["room_id"] != private["room_id"]
    listed = {r["room_id"]: r.get("match") for r in await rooms(session, base, "duel")}
    assert listed[ranked] == {"mode": "ranked", "level": 1}
    assert listed[others[4]] == {"mode": "ranked", "level": None}
    assert listed[others[5]] is None and private["room_id"] not in listed


async def test_full_rooms_are_skipped_for_the_next_with_equal_options(
        start_server: Callable[..., Any], session: aiohttp.ClientSession) -> None:
    base = url(await start_server(games=(Duel,)))
    placed = [(await matchmake(session, base, game="duel",
                               options={"mode": m}))["room_id"]
              for m in ["a"] * 5 + ["b"] * 3 + ["a"] * 4]
    # a: the first room fills up, then the second, then a third; b: one room of 3
    assert [placed.count(r) for r in dict.fromkeys(placed)] == [4, 4, 3, 1]
    assert len(set(placed[5:8])) == 1 and placed[5] not in {*placed[:5], *placed[8:]}


async def test_a_game_without_match_by_shares_rooms_whatever_the_options(
        start_server: Callable[..., Any], session: aiohttp.ClientSession) -> None:
    base = url(await start_server(games=(ConnectFour,)))
    a = await matchmake(session, base, game="connect_four", options={"turn_seconds": 10})
    b = await matchmake(session, base, game="connect_four", options={"turn_seconds": 20})
    assert a["room_id"] == b["room_id"]
    assert "match" not in (await rooms(session, base, "connect_four"))[0]


async def test_the_memory_directory_forgets_match_values_no_room_has() -> None:
    d = MemoryDirectory()
    for i in range(50):
        await d.add(RoomListing(f"r{i}", "duel", 2, match={"seed": i}))
    assert (await d.first_joinable("duel", match={"seed": 7}) or RoomListing("", "", 0)
            ).room_id == "r7"
    assert await d.first_joinable("duel") is None
    for i in range(50):
        await d.remove(f"r{i}")
    assert await d.first_joinable("duel", match={"seed": 7}) is None
    assert not d._open and not d._queued  # no heap per value ever seen


async def test_two_nodes_on_redis_match_by_options(start_server: Callable[..., Any],
                                                   redis_url: str,
                                                   session: aiohttp.ClientSession) -> None:
    from gameserver.cluster.node import announce

    prefix = f"mb{secrets.token_hex(4)}"
    nodes = [await start_server(games=(Arena,), redis=redis_url, cluster_prefix=prefix)
             for _ in range(2)]
    for n in nodes:
        await announce(n.app, "127.0.0.1", n.port)
    a, b = (url(n) for n in nodes)
    large = await matchmake(session, a, name="ann", options={"world": "large"})
    small = await matchmake(session, b, name="bob", options={"world": "small"})
    plain = await matchmake(session, a, name="cy")  # arena's default world: small
    assert len({large["room_id"], small["room_id"]}) == 2
    assert plain["room_id"] == small["room_id"]
    # through either node, each request goes to the room with its options
    for base in (a, b):
        again = await matchmake(session, base, options={"world": "large", "max_players": 3})
        assert again["room_id"] == large["room_id"]
        assert (await matchmake(session, base, options={"world": "small"}))["room_id"] == \
            small["room_id"]
        assert (await matchmake(session, base))["room_id"] == small["room_id"]
    with pytest.raises(MatchmakeFailed) as refused:
        await matchmake(session, b, mode="join", options={"world": ["large"]})
    assert refused.value.body["error"] == "no_such_room"
    listed = {r["room_id"]: r.get("match") for r in await rooms(session, b, "arena")}
    assert listed == {large["room_id"]: {"world": "large"},
                      small["room_id"]: {"world": "small"}}
    # the seats are real: a socket lands in the large room on the node that hosts it
    ann = await Player.connect(session, large["ws_url"])
    assert ann.room_id == large["room_id"]
    await ann.ws.close()
