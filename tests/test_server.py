"""A real server on loopback, real WebSocket clients."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import msgpack
import pytest

from gameserver.core import codec
from gameserver.web import aiohttp_seam

from .client import MatchmakeFailed, Player, matchmake
from .conftest import ReceivePath


async def test_matchmake_and_join(session: aiohttp.ClientSession, base: str) -> None:
    reservation = await matchmake(session, base, name="ann")
    assert set(reservation) >= {"room_id", "token", "ws_url", "expires_in", "protocol"}
    assert reservation["ws_url"].startswith("ws://127.0.0.1:")
    assert len(reservation["token"]) >= 32
    ann = await Player.connect(session, reservation["ws_url"])
    assert ann.version == codec.PROTOCOL_VERSION
    assert ann.room_id == reservation["room_id"]
    assert ann.game == "arena" and ann.tick_rate == 20
    assert ann.config["step"] == 10
    await ann.until(lambda: ann.avatar is not None)
    assert ann.updates[0][1][0] == codec.S_SNAPSHOT  # a snapshot first...
    await ann.until(lambda: len(ann.updates) >= 3)
    assert {u[1][0] for u in ann.updates[1:]} == {codec.S_DELTA}  # ...then deltas
    assert ann.avatar["name"] == "ann"
    async with session.get(f"{base}/rooms") as resp:
        rooms = (await resp.json())["rooms"]
    assert rooms == [{"room_id": ann.room_id, "game": "arena", "players": 1, "reserved": 0,
                      "max_players": 16, "locked": False, "joinable": True,
                      "metadata": {"mode": "ffa", "world": "small"}, "spectators": 0,
                      "match": {"world": "small"}}]


async def test_two_players_see_each_other_move(session: aiohttp.ClientSession,
                                               base: str) -> None:
    ann = await Player.join(session, base, name="ann")
    bob = await Player.join(session, base, name="bob")
    assert bob.room_id == ann.room_id
    await ann.until(lambda: ann.avatar is not None)
    x0 = ann.avatar["x"]

    def bobs_view_of_ann() -> dict[str, Any] | None:
        return next((e.values for e in bob.replica.entities.values()
                     if e.type == "Avatar" and e.values["pid"] == ann.player_id), None)

    await bob.until(lambda: bobs_view_of_ann() is not None)
    direction = -100 if x0 > 800 else 100
    for _ in range(5):
        await ann.send_input(direction, 0)
    await ann.until(lambda: ann.replica.ack == 5)
    moved = ann.avatar["x"]
    assert moved == x0 + direction // 10 * 5
    await bob.until(lambda: bobs_view_of_ann()["x"] == moved)  # type: ignore[index]


async def test_inputs_are_acknowledged_in_order(session: aiohttp.ClientSession,
                                                base: str) -> None:
    ann = await Player.join(session, base, name="ann")
    for _ in range(12):
        await ann.send_input(0, 100)
    await ann.until(lambda: ann.replica.ack == 12)
    acks = [u[1][1] for u in ann.updates]
    assert acks == sorted(acks)
    assert len(set(acks) - {0}) >= 4  # at most 3 per tick: applied over several ticks


async def test_a_late_joiner_gets_a_snapshot_of_the_current_world(
        session: aiohttp.ClientSession, base: str) -> None:
    ann = await Player.join(session, base, name="ann")
    for _ in range(6):
        await ann.send_input(100, 100)
    await ann.until(lambda: ann.replica.ack == 6)
    await ann.updates_for(0.2)
    carl = await Player.join(session, base, name="carl")
    await carl.pump()
    first = carl.updates[0][1]
    assert first[0] == codec.S_SNAPSHOT
    await ann.until(lambda: ann.replica.tick >= carl.replica.tick)
    # Everything ann's replica held at that tick is in carl's snapshot, bar carl himself.
    seen_by_carl = {k: v for k, v in carl.replica.view().items()
                    if not (v[0] == "Avatar" and v[1]["pid"] == carl.player_id)}
    await carl.until(lambda: carl.replica.tick == ann.replica.tick)
    assert {k: v for k, v in ann.replica.view().items()
            if not (v[0] == "Avatar" and v[1]["pid"] == carl.player_id)}.keys() >= \
        seen_by_carl.keys() - {k for k, v in seen_by_carl.items() if v[0] == "Orb"}
    assert carl.replica.view() == ann.replica.view()


async def test_leaving_removes_the_player_and_an_empty_room_is_disposed(
        start_server: Callable[..., Any], session: aiohttp.ClientSession) -> None:
    server = await start_server(empty_room_grace=0.3)
    base = str(server.make_url("")).rstrip("/")
    ann = await Player.join(session, base, name="ann")
    bob = await Player.join(session, base, name="bob")
    await bob.until(lambda: len([e for e in bob.replica.entities.values()
                                 if e.type == "Avatar"]) == 2)
    await ann.send(codec.C_LEAVE)
    code, _ = await ann.close_event()
    assert code == codec.CLOSE_NORMAL
    await bob.until(lambda: len([e for e in bob.replica.entities.values()
                                 if e.type == "Avatar"]) == 1)
    await bob.until(lambda: any(ev[0] == "left" for ev in bob.replica.events))
    await bob.ws.close()
    for _ in range(40):
        async with session.get(f"{base}/rooms") as resp:
            if not (await resp.json())["rooms"]:
                break
        await asyncio.sleep(0.1)
    else:
        pytest.fail("the empty room was not disposed")


async def test_concurrent_joins_never_overfill_a_room(session: aiohttp.ClientSession,
                                                      base: str) -> None:
    first = await matchmake(session, base, mode="create", name="host",
                            options={"max_players": 8})
    results = await asyncio.gather(
        *(matchmake(session, base, mode="join", room_id=first["room_id"], name=f"p{i}")
          for i in range(50)), return_exceptions=True)
    won = [r for r in results if isinstance(r, dict)]
    lost = [r for r in results if isinstance(r, MatchmakeFailed)]
    assert len(won) == 7 and len(lost) == 43
    assert {e.body["error"] for e in lost} == {"room_full"}
    assert {e.status for e in lost} == {409}
    players = await asyncio.gather(*(Player.connect(session, r["ws_url"])
                                     for r in [first, *won]))
    assert len({p.player_id for p in players}) == 8


async def test_concurrent_join_or_create_fills_rooms_without_overfill(
        session: aiohttp.ClientSession, base: str) -> None:
    results = await asyncio.gather(
        *(matchmake(session, base, name=f"p{i}", options={"max_players": 8})
          for i in range(50)))
    per_room: dict[str, int] = {}
    for r in results:
        per_room[r["room_id"]] = per_room.get(r["room_id"], 0) + 1
    assert sum(per_room.values()) == 50
    assert max(per_room.values()) <= 8
    assert len(per_room) == 7  # 6 full rooms and one with 2
    players = await asyncio.gather(*(Player.connect(session, r["ws_url"]) for r in results))
    async with session.get(f"{base}/rooms") as resp:
        listed = {r["room_id"]: r["players"] for r in (await resp.json())["rooms"]}
    assert listed == per_room
    assert len(players) == 50


async def test_expired_and_reused_tokens_are_refused(
        start_server: Callable[..., Any], session: aiohttp.ClientSession) -> None:
    server = await start_server(reservation_ttl=0.3)
    base = str(server.make_url("")).rstrip("/")
    late = await matchmake(session, base, name="late")
    await asyncio.sleep(0.5)
    for url in (late["ws_url"], late["ws_url"].split("?")[0] + "?token=forged",
                late["ws_url"].split("?")[0]):
        ws = await session.ws_connect(url)
        msg = await ws.receive(timeout=5)
        assert msgpack.unpackb(msg.data)[:2] == [codec.S_ERROR, "bad_reservation"]
        assert (await ws.receive(timeout=5)).type is aiohttp.WSMsgType.CLOSE
        assert ws.close_code == codec.CLOSE_BAD_RESERVATION
    used = await matchmake(session, base, name="once")
    await Player.connect(session, used["ws_url"])
    ws = await session.ws_connect(used["ws_url"])
    assert msgpack.unpackb((await ws.receive(timeout=5)).data)[1] == "bad_reservation"


async def test_an_expired_reservation_frees_its_seat(
        start_server: Callable[..., Any], session: aiohttp.ClientSession) -> None:
    server = await start_server(reservation_ttl=0.3, empty_room_grace=30)
    base = str(server.make_url("")).rstrip("/")
    first = await matchmake(session, base, mode="create", name="a", options={"max_players": 1})
    with pytest.raises(MatchmakeFailed) as full:
        await matchmake(session, base, mode="join", room_id=first["room_id"], name="b")
    assert full.value.body["error"] == "room_full"
    await asyncio.sleep(1.2)  # the reservation expires; housekeeping runs every 0.5 s
    again = await matchmake(session, base, mode="join", room_id=first["room_id"], name="b")
    assert again["room_id"] == first["room_id"]


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"game": "chess", "mode": "join_or_create"}, 404, "unknown_game"),
    ({"game": "arena", "mode": "teleport"}, 400, "bad_request"),
    ({"mode": "create"}, 400, "bad_request"),
    ({"game": "arena", "mode": "join", "room_id": "nope"}, 404, "no_such_room"),
    ({"game": "arena", "mode": "join"}, 404, "no_such_room"),
    ({"game": "arena", "mode": "join_or_create", "private": True}, 400, "bad_request"),
    ({"game": "arena", "mode": "create", "options": []}, 400, "bad_request"),
    ([1, 2], 400, "bad_request"),
])
async def test_matchmaking_errors_are_json_with_stable_codes(
        session: aiohttp.ClientSession, base: str, body: Any, status: int, code: str) -> None:
    async with session.post(f"{base}/matchmake", json=body) as resp:
        assert resp.status == status
        data = await resp.json()
    assert data["error"] == code and data["message"]


async def test_malformed_json_is_a_bad_request(session: aiohttp.ClientSession,
                                               base: str) -> None:
    async with session.post(f"{base}/matchmake", data=b"{nope") as resp:
        assert resp.status == 400
        assert (await resp.json())["error"] == "bad_request"


async def test_private_rooms_are_unlisted_and_joinable_by_id(
        session: aiohttp.ClientSession, base: str) -> None:
    secret = await matchmake(session, base, mode="create", private=True, name="host")
    async with session.get(f"{base}/rooms") as resp:
        assert (await resp.json())["rooms"] == []
    other = await matchmake(session, base, name="stranger")  # join_or_create skips it
    assert other["room_id"] != secret["room_id"]
    friend = await matchmake(session, base, mode="join", room_id=secret["room_id"], name="f")
    assert friend["room_id"] == secret["room_id"]


async def test_updates_arrive_at_the_tick_rate(session: aiohttp.ClientSession,
                                               base: str) -> None:
    ann = await Player.join(session, base, name="ann")
    await ann.pump()
    count = await ann.updates_for(2.0)
    assert 37 <= count <= 43
    ticks = [u[1][2] for u in ann.updates]
    assert ticks == list(range(ticks[0], ticks[0] + len(ticks)))  # none skipped


async def test_bad_frames_get_errors_and_hurt_nobody(session: aiohttp.ClientSession,
                                                     base: str) -> None:
    ann = await Player.join(session, base, name="ann")
    bob = await Player.join(session, base, name="bob")
    await ann.ws.send_bytes(b"\xc1")
    await ann.ws.send_str("hello")
    await ann.send(codec.C_INPUT, 1, ["left"])
    await ann.send(codec.C_MESSAGE, "chat", "hi all")
    await ann.until(lambda: len(ann.errors) == 3)
    assert [e[1] for e in ann.errors] == ["bad_msgpack", "text_frame", "invalid_input"]
    await bob.until(lambda: any(ev == ["chat", [ann.player_id, "ann", "hi all"]]
                                for ev in bob.replica.events))
    assert bob.errors == []


async def test_ping_is_answered_with_the_client_time_and_tick(
        session: aiohttp.ClientSession, base: str) -> None:
    ann = await Player.join(session, base, name="ann")
    await ann.send(codec.C_PING, 123.5)
    await ann.until(lambda: any(m[0] == codec.S_PONG for m in ann.messages))
    pong = next(m for m in ann.messages if m[0] == codec.S_PONG)
    assert pong[1] == 123.5 and isinstance(pong[2], int)


async def test_a_game_round_trips_on_either_receive_path(
        session: aiohttp.ClientSession, base: str, receive_path: ReceivePath,
        caplog: pytest.LogCaptureFixture) -> None:
    if receive_path.direct:  # the pinned aiohttp has the internals the seam expects
        assert aiohttp_seam.fast_path_available(), aiohttp_seam.fast_path_reason()
    ann = await Player.join(session, base, name="ann")
    bob = await Player.join(session, base, name="bob")
    await ann.until(lambda: ann.avatar is not None)
    x0 = ann.avatar["x"]  # type: ignore[index]
    direction = -100 if x0 > 800 else 100
    for _ in range(3):
        await ann.send_input(direction, 0)
    await ann.send(codec.C_PING, 7.5)
    await ann.until(lambda: ann.replica.ack == 3
                    and any(m[0] == codec.S_PONG and m[1] == 7.5 for m in ann.messages))
    assert ann.avatar["x"] == x0 + direction // 10 * 3  # type: ignore[index]
    await bob.until(lambda: any(e.type == "Avatar" and e.values["pid"] == ann.player_id
                                and e.values["x"] == ann.avatar["x"]  # type: ignore[index]
                                for e in bob.replica.entities.values()))
    receive_path.check()
    fallbacks = [r for r in caplog.records if "direct receive path unavailable" in r.message]
    # Off: the server says so, once, and plays on; on: not a word.
    assert len(fallbacks) == (0 if receive_path.direct else 1)
