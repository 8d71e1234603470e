"""Spectators: a pass from POST /matchmake (mode "spectate"), a socket that gets the room's
updates and holds no seat, and everything it may not do (docs/PROTOCOL.md §2)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import msgpack

from gameserver.core import codec
from gameserver.web.keys import MANAGER

from .client import MatchmakeFailed, Player, matchmake, url


async def spectate(session: aiohttp.ClientSession, base: str, **body: Any) -> dict[str, Any]:
    return await matchmake(session, base, mode="spectate", **body)


async def watch(session: aiohttp.ClientSession, base: str, **body: Any) -> Player:
    return await Player.connect(session, (await spectate(session, base, **body))["ws_url"])


async def listed(session: aiohttp.ClientSession, base: str) -> dict[str, Any]:
    async with session.get(f"{base}/rooms") as resp:
        return {r["room_id"]: r for r in (await resp.json())["rooms"]}


async def test_a_spectator_sees_what_the_players_see_and_holds_no_seat(
        start_server: Callable[..., Any], session: aiohttp.ClientSession) -> None:
    server = await start_server()
    base = url(server)
    ann = await Player.join(session, base, name="ann", options={"max_players": 1})
    pass_ = await spectate(session, base, game="arena", room_id=ann.room_id)
    assert pass_["spectator"] is True and pass_["room_id"] == ann.room_id
    assert pass_["ws_url"].endswith(f"/ws?watch={pass_['token']}")
    eve = await Player.connect(session, pass_["ws_url"])
    assert eve.room_id == ann.room_id and eve.player_id == 0 and eve.reconnect_token is None
    assert eve.welcome[6] == ann.welcome[6] and eve.welcome[7] == ann.welcome[7]

    await ann.until(lambda: ann.avatar is not None)
    start = dict(ann.avatar or {})
    for _ in range(3):
        await ann.send_input(100, 0)
    await ann.until(lambda: ann.replica.ack == 3)
    tick = ann.replica.tick
    await eve.until(lambda: eve.replica.tick >= tick)
    await ann.until(lambda: ann.replica.tick == eve.replica.tick)
    # The same state at the same tick, and the spectator's updates never acknowledge.
    assert eve.replica.view() == ann.replica.view()
    assert eve.replica.ack == 0
    moved = next(e.values for e in eve.replica.entities.values() if e.type == "Avatar")
    assert moved["x"] > start["x"]

    # No seat: the room of one is still full for players, and lists one spectator.
    try:
        await matchmake(session, base, mode="join", room_id=ann.room_id)
        raise AssertionError("a second player got a seat")
    except MatchmakeFailed as exc:
        assert (exc.status, exc.body["error"]) == (409, "room_full")
    room = server.app[MANAGER].room_hosts[ann.room_id]
    assert list(room.room.players) == [ann.player_id]
    await asyncio.sleep(0.6)  # the listing is rebuilt every 0.5 s
    assert (await listed(session, base))[ann.room_id]["spectators"] == 1

    await eve.send(codec.C_LEAVE)
    assert (await eve.close_event())[0] == codec.CLOSE_NORMAL
    await asyncio.sleep(0.6)
    assert (await listed(session, base))[ann.room_id]["spectators"] == 0
    assert list(room.room.players) == [ann.player_id]


async def test_a_spectator_only_watches(start_server: Callable[..., Any],
                                        session: aiohttp.ClientSession) -> None:
    server = await start_server()
    base = url(server)
    ann = await Player.join(session, base, name="ann")
    eve = await watch(session, base, game="arena", room_id=ann.room_id)
    await eve.send(codec.C_INPUT, 1, [100, 0])
    await eve.send(codec.C_MESSAGE, "chat", "let me play")
    await eve.send(codec.C_PING, 12.5)
    await eve.until(lambda: any(m[0] == codec.S_PONG for m in eve.messages))
    await eve.until(lambda: len(eve.errors) == 2)
    assert [e[1] for e in eve.errors] == ["spectator", "spectator"]
    # Nothing reached the game: no chat event, and ann's avatar stood still for eve's input.
    await ann.drain()
    assert not any(ev[0] == "chat" for _, u in ann.updates for ev in u[-1])
    assert server.app[MANAGER].room_hosts[ann.room_id].engine.seats.keys() == {ann.player_id}


async def test_the_spectator_cap(start_server: Callable[..., Any],
                                 session: aiohttp.ClientSession) -> None:
    server = await start_server(max_spectators=1)
    base = url(server)
    ann = await Player.join(session, base, name="ann")
    first = await spectate(session, base, game="arena", room_id=ann.room_id)
    second = await spectate(session, base, game="arena", room_id=ann.room_id)  # none in yet
    eve = await Player.connect(session, first["ws_url"])
    assert eve.player_id == 0
    # The room filled between the pass and the socket: refused at the socket...
    late = await session.ws_connect(second["ws_url"])
    error = await late.receive(timeout=5)
    assert msgpack.unpackb(error.data)[:2] == [codec.S_ERROR, "spectators_full"]
    assert (await late.receive(timeout=5)).type is aiohttp.WSMsgType.CLOSE
    assert late.close_code == codec.CLOSE_JOIN_REFUSED
    # ...and at matchmaking once it is full.
    try:
        await spectate(session, base, game="arena", room_id=ann.room_id)
        raise AssertionError("a spectator over the cap got a pass")
    except MatchmakeFailed as exc:
        assert (exc.status, exc.body["error"]) == (409, "spectators_full")
    assert len(server.app[MANAGER].room_hosts[ann.room_id].spectators) == 1


async def test_passes_are_single_use_and_checked(start_server: Callable[..., Any],
                                                 session: aiohttp.ClientSession) -> None:
    server = await start_server()
    base = url(server)
    ann = await Player.join(session, base, name="ann")
    used = await spectate(session, base, game="arena", room_id=ann.room_id)
    await Player.connect(session, used["ws_url"])
    for ws_url in (used["ws_url"], f"{base}/ws?watch=not-a-pass".replace("http", "ws")):
        ws = await session.ws_connect(ws_url)
        refusal = await ws.receive(timeout=5)
        assert msgpack.unpackb(refusal.data)[:2] == [codec.S_ERROR, "bad_reservation"]
        assert (await ws.receive(timeout=5)).type is aiohttp.WSMsgType.CLOSE
        assert ws.close_code == codec.CLOSE_BAD_RESERVATION
    for body, status, code in (({"room_id": "nope"}, 404, "no_such_room"),
                               ({"game": "connect_four", "room_id": ann.room_id}, 404,
                                "no_such_room"),
                               ({"game": "chess"}, 404, "unknown_game"),
                               ({"room_id": 7}, 400, "bad_request")):
        try:
            await spectate(session, base, **{"game": "arena", **body})
            raise AssertionError(f"{body} got a pass")
        except MatchmakeFailed as exc:
            assert (exc.status, exc.body["error"]) == (status, code), body


async def test_without_a_room_id_the_busiest_live_room_is_watched(
        start_server: Callable[..., Any], session: aiohttp.ClientSession) -> None:
    server = await start_server()
    base = url(server)
    try:
        await spectate(session, base, game="arena")
        raise AssertionError("a pass with no live room")
    except MatchmakeFailed as exc:
        assert (exc.status, exc.body["error"]) == (404, "no_such_room")
    quiet = await Player.join(session, base, mode="create", name="solo")
    busy = [await Player.join(session, base, mode="create", name="ann")]
    busy.append(await Player.join(session, base, mode="join", room_id=busy[0].room_id))
    private = await Player.join(session, base, mode="create", private=True, name="p")
    for _ in range(2):
        await Player.join(session, base, mode="join", room_id=private.room_id)
    eve = await watch(session, base, game="arena")
    assert eve.room_id == busy[0].room_id != quiet.room_id
    # A private room is watched by its id, as it is joined.
    assert (await watch(session, base, game="arena", room_id=private.room_id)).room_id == \
        private.room_id
    assert server.app[MANAGER].room_hosts[private.room_id].spectators


async def test_spectators_go_when_the_room_does(start_server: Callable[..., Any],
                                               session: aiohttp.ClientSession) -> None:
    server = await start_server(empty_room_grace=0.2)
    base = url(server)
    ann = await Player.join(session, base, name="ann")
    eve = await watch(session, base, game="arena", room_id=ann.room_id)
    await ann.send(codec.C_LEAVE)
    # Spectators do not keep an empty room: it is disposed, and they are told.
    code, _ = await eve.close_event(timeout=5)
    assert code == codec.CLOSE_ROOM_CLOSED
    assert ann.room_id not in server.app[MANAGER].room_hosts
