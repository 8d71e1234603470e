"""A dropped player keeps their seat and entity for the grace period and comes back whole."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import msgpack

from gameserver.core import codec
from gameserver.web.keys import MANAGER

from .client import Player, matchmake, url


def avatar_of(viewer: Player, pid: int) -> dict[str, Any] | None:
    return next((e.values for e in viewer.replica.entities.values()
                 if e.type == "Avatar" and e.values["pid"] == pid), None)


async def drop(player: Player) -> None:
    """Lose the connection without a close handshake, as a network failure does."""
    transport = player.ws._response.connection.transport  # type: ignore[union-attr]
    transport.abort()
    await asyncio.sleep(0)


async def test_a_dropped_player_reconnects_exactly_where_they_were(
        start_server: Callable[..., Any], session: aiohttp.ClientSession) -> None:
    server = await start_server(reconnect_grace=5)
    base = url(server)
    ann = await Player.join(session, base, name="ann")
    bob = await Player.join(session, base, name="bob")
    await ann.until(lambda: ann.avatar is not None)
    for _ in range(4):
        await ann.send_input(100, 0)
    await ann.until(lambda: ann.replica.ack == 4)
    where = dict(ann.avatar)  # type: ignore[arg-type]
    token = ann.reconnect_token
    assert isinstance(token, str) and len(token) >= 32
    await drop(ann)
    room_host = server.app[MANAGER].room_hosts[ann.room_id]
    for _ in range(50):
        if ann.player_id in room_host.dropped:
            break
        await asyncio.sleep(0.02)
    assert ann.player_id in room_host.dropped
    # The others still see the same player, standing still.
    await bob.until(lambda: avatar_of(bob, ann.player_id) == where)
    back = await Player.connect(session, f"{base}/ws?reconnect={token}")
    assert back.player_id == ann.player_id and back.room_id == ann.room_id
    assert back.reconnect_token not in (None, token)  # rotated
    await back.until(lambda: back.avatar is not None)
    assert back.avatar == where
    assert back.updates[0][1][0] == codec.S_SNAPSHOT
    assert back.replica.ack == 4  # inputs continue after the acknowledged one
    await back.send(codec.C_INPUT, 5, [0, 100])
    await back.until(lambda: back.replica.ack == 5)
    await bob.until(lambda: avatar_of(bob, ann.player_id)["y"] != where["y"])  # type: ignore[index]
    # The same player id, never removed: bob saw no "left" event for ann.
    assert not any(u[1][0] == codec.S_DELTA and ["left", [ann.player_id, "ann"]] in u[1][7]
                   for u in bob.updates)
    # The old token was single use.
    ws = await session.ws_connect(f"{base}/ws?reconnect={token}")
    refused = msgpack.unpackb((await ws.receive()).data)
    assert refused[:2] == [codec.S_ERROR, "reconnect_refused"]
    assert (await ws.receive()).type is aiohttp.WSMsgType.CLOSE
    assert ws.close_code == codec.CLOSE_BAD_RESERVATION


async def test_reconnecting_before_the_server_notices_replaces_the_old_socket(
        session: aiohttp.ClientSession, base: str) -> None:
    ann = await Player.join(session, base, name="ann")
    await ann.pump()
    back = await Player.connect(session, f"{base}/ws?reconnect={ann.reconnect_token}")
    assert back.player_id == ann.player_id
    code, _ = await ann.close_event()
    assert code == codec.CLOSE_REPLACED
    assert 17 <= await back.rate() <= 23


async def test_after_the_grace_the_seat_is_released_and_the_token_refused(
        start_server: Callable[..., Any], session: aiohttp.ClientSession) -> None:
    server = await start_server(reconnect_grace=0.5, empty_room_grace=30)
    base = url(server)
    first = await matchmake(session, base, mode="create", name="ann",
                            options={"max_players": 2})
    ann = await Player.connect(session, first["ws_url"])
    bob = await Player.join(session, base, mode="join", room_id=ann.room_id, name="bob")
    await bob.until(lambda: avatar_of(bob, ann.player_id) is not None)
    await drop(ann)
    await bob.until(lambda: avatar_of(bob, ann.player_id) is None, timeout=5)
    assert any(["left", [ann.player_id, "ann"]] in u[1][7] for u in bob.updates
               if u[1][0] == codec.S_DELTA)
    ws = await session.ws_connect(f"{base}/ws?reconnect={ann.reconnect_token}")
    assert msgpack.unpackb((await ws.receive()).data)[1] == "reconnect_refused"
    # The seat is free for someone else.
    carl = await matchmake(session, base, mode="join", room_id=ann.room_id, name="carl")
    assert carl["room_id"] == ann.room_id


async def test_leaving_on_purpose_gives_up_the_seat_at_once(
        session: aiohttp.ClientSession, base: str) -> None:
    ann = await Player.join(session, base, name="ann", options={"max_players": 1})
    await ann.send(codec.C_LEAVE)
    await ann.close_event()
    ws = await session.ws_connect(f"{base}/ws?reconnect={ann.reconnect_token}")
    assert msgpack.unpackb((await ws.receive()).data)[1] == "reconnect_refused"


async def test_any_node_says_where_to_reconnect(start_server: Callable[..., Any],
                                                session: aiohttp.ClientSession) -> None:
    server = await start_server(reconnect_grace=5)
    base = url(server)
    ann = await Player.join(session, base, name="ann")
    await ann.pump()
    await drop(ann)
    async with session.post(f"{base}/reconnect", json={"token": ann.reconnect_token}) as resp:
        assert resp.status == 200
        where = await resp.json()
    assert where["room_id"] == ann.room_id
    back = await Player.connect(session, where["ws_url"])
    assert (back.room_id, back.player_id) == (ann.room_id, ann.player_id)
    for body, status, code in (({"token": "nope"}, 400, "bad_request"),
                               ({"token": "gone.abc"}, 404, "no_such_room"), ([], 400,
                                                                             "bad_request")):
        async with session.post(f"{base}/reconnect", json=body) as resp:
            assert resp.status == status and (await resp.json())["error"] == code
