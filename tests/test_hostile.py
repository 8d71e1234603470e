"""Hostile input against a live server: errors for the sender, nothing for anyone else."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import msgpack
import pytest
from aiohttp.test_utils import TestServer

from gameserver.auth import sign
from gameserver.core import codec
from gameserver.web.keys import MANAGER
from loadtest.wsclient import OP_TEXT, RawSocket

from .client import MatchmakeFailed, Player, matchmake, url
from .conftest import ReceivePath


async def pair(session: aiohttp.ClientSession, base: str) -> tuple[Player, Player]:
    ann = await Player.join(session, base, name="ann")
    bob = await Player.join(session, base, name="bob")
    await bob.until(lambda: len([e for e in bob.replica.entities.values()
                                 if e.type == "Avatar"]) == 2)
    return ann, bob


async def test_each_bad_message_gets_its_error_and_the_room_sees_nothing(
        session: aiohttp.ClientSession, base: str) -> None:
    ann, bob = await pair(session, base)
    await ann.until(lambda: ann.avatar is not None)
    before = dict(ann.avatar)  # type: ignore[arg-type]
    bad: list[tuple[bytes, str]] = [
        (b"\xc1", "bad_msgpack"),
        (msgpack.packb({"kind": 1}), "bad_message"),
        (msgpack.packb([77, 1]), "unknown_kind"),
        (msgpack.packb([1, -4, [1, 1]]), "bad_seq"),
        (msgpack.packb([1, 1, "north"]), "invalid_input"),
        (msgpack.packb([1, 1, [1.5, 2]]), "invalid_input"),
        (msgpack.packb([2, "chat", 12]), "invalid_input"),
        (msgpack.packb([2, "chat", "x" * 300]), "invalid_input"),
        (msgpack.packb([2, "teleport", [0, 0]]), "invalid_input"),
        (b"\xdf\xff\xff\xff\xff", "bad_msgpack"),  # a map of 4 billion entries
    ]
    for data, _ in bad:
        await ann.ws.send_bytes(data)
    await ann.send(codec.C_INPUT, 9, [0, 0])
    await ann.send(codec.C_INPUT, 3, [0, 0])  # stale: 9 was accepted
    await ann.until(lambda: len(ann.errors) == len(bad) + 1)
    assert [e[1] for e in ann.errors] == [code for _, code in bad] + ["stale_seq"]
    assert all(isinstance(e[2], str) and e[2] for e in ann.errors)
    await ann.until(lambda: ann.replica.ack == 9)
    assert {k: ann.avatar[k] for k in ("x", "y")} == {k: before[k] for k in ("x", "y")}  # type: ignore[index]
    await bob.updates_for(0.3)
    assert bob.errors == [] and not any(ev[0] == "chat" for ev in bob.replica.events)


async def test_an_oversized_message_closes_only_its_sender(
        session: aiohttp.ClientSession, base: str, receive_path: ReceivePath) -> None:
    ann, bob = await pair(session, base)
    await ann.ws.send_bytes(msgpack.packb([2, "chat", "x" * 10_000]))
    code, _ = await ann.close_event()
    assert code == codec.CLOSE_TOO_BIG
    assert 17 <= await bob.rate() <= 23 and bob.gapless()
    receive_path.check()


async def test_a_player_moves_only_their_own_avatar_and_only_by_the_rules(
        session: aiohttp.ClientSession, base: str) -> None:
    ann, bob = await pair(session, base)
    await bob.until(lambda: bob.avatar is not None)
    bob_at = dict(bob.avatar)  # type: ignore[arg-type]
    await ann.until(lambda: ann.avatar is not None)
    x0 = ann.avatar["x"]  # type: ignore[index]
    direction = 1 if x0 < 800 else -1
    await ann.send(codec.C_INPUT, 1, [direction * 10**9, 0])  # "teleport"
    await ann.until(lambda: ann.replica.ack == 1)
    assert abs(ann.avatar["x"] - x0) == ann.config["step"]  # type: ignore[index]
    await bob.updates_for(0.2)
    assert bob.avatar == bob_at


async def test_a_flood_is_rate_limited_then_closed(start_server: Callable[..., Any],
                                                   session: aiohttp.ClientSession,
                                                   receive_path: ReceivePath) -> None:
    server = await start_server(rate_limit_messages=20)
    ann, bob = await pair(session, url(server))
    began = time.monotonic()

    async def flood() -> None:
        seq = 0
        while not ann.ws.closed and time.monotonic() - began < 8:
            seq += 1
            await ann.send(codec.C_PING, seq)
            await asyncio.sleep(0.005)

    flooding = asyncio.create_task(flood())
    code, reason = await ann.close_event(timeout=8)
    await flooding
    codes = [e[1] for e in ann.errors]
    assert "rate_limited" in codes
    assert code == codec.CLOSE_RATE_LIMITED and "rate limit" in reason
    assert 3.0 < time.monotonic() - began < 6.0  # told, then closed after the patience
    assert 17 <= await bob.rate() <= 23 and bob.errors == [] and bob.gapless()
    receive_path.check()


@pytest.mark.parametrize(("origin", "allowed"), [
    ("http://evil.example", False),
    ("null", False),
    ("http://localhost:5173", True),
    ("http://127.0.0.1:9", True),
    ("https://game.example", True),  # configured below
])
async def test_browser_origins_are_checked(start_server: Callable[..., Any],
                                           session: aiohttp.ClientSession, origin: str,
                                           allowed: bool) -> None:
    server = await start_server(allowed_origins=("https://game.example",))
    base = url(server)
    async with session.post(f"{base}/matchmake", json={"game": "arena", "name": "o"},
                            headers={"Origin": origin}) as resp:
        assert (resp.status == 200) is allowed
        body = await resp.json()
    if not allowed:
        assert body["error"] == "origin_not_allowed"
        body = await matchmake(session, base, name="o")
    try:
        ws = await session.ws_connect(body["ws_url"], headers={"Origin": origin})
    except aiohttp.WSServerHandshakeError as exc:
        assert not allowed and exc.status == 403
    else:
        assert allowed
        assert msgpack.unpackb((await ws.receive()).data)[0] == codec.S_WELCOME


async def test_same_origin_pages_may_connect(session: aiohttp.ClientSession,
                                             server: TestServer) -> None:
    base = url(server)
    body = await matchmake(session, base, name="o")
    ws = await session.ws_connect(body["ws_url"], headers={"Origin": base})
    assert msgpack.unpackb((await ws.receive()).data)[0] == codec.S_WELCOME


async def test_connections_per_address_are_limited(start_server: Callable[..., Any],
                                                   session: aiohttp.ClientSession) -> None:
    server = await start_server(max_connections_per_ip=2, ip_limit_exempt=())
    base = url(server)
    first = [await Player.join(session, base, name=f"p{i}") for i in range(2)]
    reservation = await matchmake(session, base, name="third")
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await session.ws_connect(reservation["ws_url"])
    assert refused.value.status == 429
    await first[0].ws.close()
    await asyncio.sleep(0.1)
    await Player.connect(session, reservation["ws_url"])  # a slot is free again


async def test_pending_reservations_are_limited(start_server: Callable[..., Any],
                                                session: aiohttp.ClientSession) -> None:
    server = await start_server(max_reservations=3)
    base = url(server)
    for i in range(3):
        await matchmake(session, base, name=f"p{i}")
    with pytest.raises(MatchmakeFailed) as err:
        await matchmake(session, base, name="late")
    assert err.value.status == 503 and err.value.body["error"] == "too_many_reservations"


async def test_signed_join_tokens_are_required_when_configured(
        start_server: Callable[..., Any], session: aiohttp.ClientSession) -> None:
    server = await start_server(auth_secret="s3cret")
    base = url(server)
    good = sign({"sub": "u-42", "name": "Verified Ann", "exp": int(time.time()) + 60}, "s3cret")
    cases = [
        ({}, "auth_required"),
        ({"auth": good + "x"}, "auth_invalid"),
        ({"auth": sign({"sub": "u-42", "exp": int(time.time()) + 60}, "wrong")},
         "auth_invalid"),
        ({"auth": sign({"sub": "u-42", "exp": int(time.time()) - 1}, "s3cret")},
         "auth_expired"),
    ]
    for extra, code in cases:
        with pytest.raises(MatchmakeFailed) as err:
            await matchmake(session, base, name="mallory", **extra)
        assert (err.value.status, err.value.body["error"]) == (401, code)
    async with session.post(f"{base}/matchmake", json={"game": "arena", "name": "x"},
                            headers={"Authorization": f"Bearer {good}"}) as resp:
        reservation = await resp.json()
    assert reservation["name"] == "Verified Ann"
    ann = await Player.connect(session, reservation["ws_url"])
    room = server.app[MANAGER].room_hosts[ann.room_id].room
    assert room.players[ann.player_id].auth["sub"] == "u-42"


async def test_raw_protocol_abuse_is_survived(server: TestServer,
                                              session: aiohttp.ClientSession) -> None:
    base = url(server)
    host, port = server.host, server.port
    assert port is not None
    ann, _ = await pair(session, base)
    # A text frame, a fragmented-then-abandoned message, garbage after a good frame.
    reservation = await matchmake(session, base, name="raw")
    raw = await RawSocket.open(host, port, "/ws?token=" + reservation["token"])
    assert (await raw.read_message())[0] == codec.S_WELCOME
    raw.send_frame(b"hello", OP_TEXT)
    while (msg := await raw.read_message())[0] != codec.S_ERROR:
        pass
    assert msg[1] == "text_frame"
    raw.send(3, 1.0)
    raw.write(b"\xff\xff\xff\xff")  # an invalid frame header (reserved opcode)
    with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)) as closed:
        while True:
            await raw.read_message()
    if isinstance(closed.value, ConnectionResetError):
        assert closed.value.args[1] == codec.CLOSE_PROTOCOL_ERROR
    assert 17 <= await ann.rate() <= 23 and ann.gapless()
