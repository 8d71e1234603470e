"""Slow, stalled, vanished and crashing things: the server keeps running and leaks nothing."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from gameserver import Entity, Room
from gameserver.core import codec
from gameserver.web.app import BUILTIN_GAMES
from gameserver.web.keys import ADDRESSES, MANAGER
from loadtest.wsclient import RawSocket

from .client import Player, matchmake, url


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


class Blob(Entity):
    n: int = 0


class Firehose(Room):
    """Sends about 20 KB per update, to fill a non-reading client's buffers quickly."""

    game = "firehose"
    max_players = 16
    entity_types = (Blob,)

    def on_create(self, options: dict[str, Any]) -> None:
        self.blob = self.world.spawn(Blob())

    def update(self, dt: float) -> None:
        self.blob.n += 1
        self.broadcast("blob", "x" * 20_000)


async def stalled_client(server: TestServer, session: aiohttp.ClientSession,
                         room_id: str) -> tuple[RawSocket, Any]:
    """A raw client that reads its welcome, then nothing; small buffers on both ends."""
    reservation = await matchmake(session, url(server), game="firehose", mode="join",
                                  room_id=room_id, name="stalled")
    assert server.port is not None
    raw = await RawSocket.open("127.0.0.1", server.port, "/ws?token=" + reservation["token"],
                               rcvbuf=4096)
    welcome = await raw.read_message()
    room_host = server.app[MANAGER].room_hosts[room_id]
    conn = room_host.connections[welcome[4]]
    conn.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF,
                                                       8192)
    return raw, conn


async def test_a_client_that_stops_reading_costs_bounded_memory_and_is_resynced(
        start_server: Callable[..., Any], session: aiohttp.ClientSession) -> None:
    server = await start_server(games=(*BUILTIN_GAMES, Firehose), send_high_water=32768,
                                stall_timeout=30)
    reader = await Player.join(session, url(server), game="firehose", name="reader")
    raw, conn = await stalled_client(server, session, reader.room_id)

    async def keep_reading() -> None:
        while True:
            await reader.pump()

    reading = asyncio.create_task(keep_reading())
    try:
        for _ in range(100):
            if conn.behind_since is not None:
                break
            await asyncio.sleep(0.05)
        assert conn.behind_since is not None, "the stalled client was never skipped"
        rss_before = rss_bytes()
        seen = len(reader.updates)
        buffered = []
        for _ in range(30):  # 3 s of a stalled client
            buffered.append(conn.transport.get_write_buffer_size())
            await asyncio.sleep(0.1)
        # Bounded: at most the high-water mark plus the update that crossed it.
        assert max(buffered) <= 32768 + 25_000
        assert rss_bytes() - rss_before < 8 * 2**20
        # The reader got every tick meanwhile.
        assert 55 <= len(reader.updates) - seen <= 65 and reader.gapless()
        # Resume reading: a snapshot brings the client current, then deltas follow.
        kinds = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            kinds.append((await raw.read_message())[0])
            if codec.S_SNAPSHOT in kinds and kinds[-1] == codec.S_DELTA:
                break
        assert kinds.count(codec.S_SNAPSHOT) == 1 and kinds[-1] == codec.S_DELTA
    finally:
        reading.cancel()
        raw.abort()


async def test_a_client_stalled_too_long_is_cut_and_its_seat_waits(
        start_server: Callable[..., Any], session: aiohttp.ClientSession) -> None:
    server = await start_server(games=(*BUILTIN_GAMES, Firehose), send_high_water=16384,
                                stall_timeout=1.0, reconnect_grace=30)
    reader = await Player.join(session, url(server), game="firehose", name="reader")
    raw, conn = await stalled_client(server, session, reader.room_id)
    room_host = server.app[MANAGER].room_hosts[reader.room_id]
    pid = conn.player.id
    began = time.monotonic()
    while pid in room_host.connections and time.monotonic() - began < 15:
        await reader.pump()
    assert pid not in room_host.connections
    assert pid in room_host.dropped  # the seat and entity wait for a reconnection
    assert room_host.broadcaster.stats.closed_stalled == 1
    assert 17 <= await reader.rate() <= 23
    raw.abort()


async def test_a_silent_peer_is_detected_by_heartbeat(start_server: Callable[..., Any],
                                                      session: aiohttp.ClientSession) -> None:
    server = await start_server(heartbeat=0.5, reconnect_grace=30)
    reservation = await matchmake(session, url(server), name="paused")
    assert server.port is not None
    # Never reads again after the welcome: pings go unanswered, as with a paused process.
    raw = await RawSocket.open("127.0.0.1", server.port, "/ws?token=" + reservation["token"])
    pid = (await raw.read_message())[4]
    room_host = server.app[MANAGER].room_hosts[reservation["room_id"]]
    began = time.monotonic()
    while pid in room_host.connections and time.monotonic() - began < 5:
        await asyncio.sleep(0.05)
    detected = time.monotonic() - began
    assert pid not in room_host.connections and pid in room_host.dropped
    assert detected < 1.5  # heartbeat + half of it, plus scheduling slack
    raw.abort()


async def test_a_quiet_client_that_answers_pings_stays(start_server: Callable[..., Any],
                                                       session: aiohttp.ClientSession) -> None:
    server = await start_server(heartbeat=0.5)
    idle = await Player.join(session, url(server), name="idle")  # answers pings by itself
    await idle.pump()
    assert 17 <= await idle.rate(2.0) <= 23  # four heartbeat periods without sending
    assert idle.player_id in server.app[MANAGER].room_hosts[idle.room_id].connections


class Crashy(Room):
    game = "crashy"
    entity_types = (Blob,)

    def on_create(self, options: dict[str, Any]) -> None:
        self.where = options.get("where", "update")

    def update(self, dt: float) -> None:
        if self.where == "update" and self.tick == 10:
            raise ZeroDivisionError("the game's bug")

    def on_input(self, player: Any, data: Any) -> None:
        if self.where == "input":
            raise KeyError("the game's other bug")

    def on_rejoin(self, player: Any) -> None:
        if self.where == "rejoin":
            raise KeyError("the game's bug on the way back")


@pytest.mark.parametrize("where", ["update", "input", "rejoin"])
async def test_a_crashing_room_is_closed_and_no_other_room_notices(
        start_server: Callable[..., Any], session: aiohttp.ClientSession,
        caplog: pytest.LogCaptureFixture, where: str) -> None:
    server = await start_server(games=(*BUILTIN_GAMES, Crashy))
    base = url(server)
    bystander = await Player.join(session, base, name="bystander")
    victim = await Player.join(session, base, game="crashy", mode="create", name="victim",
                               options={"where": where})
    with caplog.at_level(logging.ERROR, logger="gameserver.room"):
        if where == "input":
            await victim.send(codec.C_INPUT, 1, [0, 0])
        if where == "rejoin":  # the socket vanishes; the reconnection runs on_rejoin
            victim.ws._response.connection.transport.abort()  # type: ignore[union-attr]
            room_host = server.app[MANAGER].room_hosts[victim.room_id]
            for _ in range(250):
                if victim.player_id in room_host.dropped:
                    break
                await asyncio.sleep(0.02)
            ws = await session.ws_connect(f"{base}/ws?reconnect={victim.reconnect_token}")
            victim = Player(ws, victim.welcome)
        code, reason = await victim.close_event()
    assert code == codec.CLOSE_ROOM_CRASHED and reason == "room crashed"
    error = next(r for r in caplog.records if "crashed" in r.getMessage())
    assert error.exc_info is not None
    assert error.exc_info[0] in (ZeroDivisionError, KeyError)
    assert victim.room_id not in server.app[MANAGER].room_hosts
    async with session.get(f"{base}/rooms") as resp:
        assert [r["game"] for r in (await resp.json())["rooms"]] == ["arena"]
    assert 17 <= await bystander.rate() <= 23 and bystander.gapless()


async def test_abrupt_ends_everywhere_leak_no_tasks_seats_or_rooms(
        start_server: Callable[..., Any], session: aiohttp.ClientSession) -> None:
    server = await start_server(reservation_ttl=0.5, empty_room_grace=0.3,
                                reconnect_grace=0.5)
    base = url(server)
    manager = server.app[MANAGER]
    assert server.port is not None
    port = server.port
    await asyncio.sleep(0.1)
    baseline_tasks = len(asyncio.all_tasks())  # the test itself, the server's housekeeping
    for round_ in range(3):
        players = [await Player.join(session, base, mode="create" if i % 3 == 0 else
                                     "join_or_create", name=f"p{round_}{i}")
                   for i in range(12)]
        await asyncio.gather(*(p.pump() for p in players))
        for i, p in enumerate(players):
            if i % 2:
                await p.send(codec.C_LEAVE)
            else:
                p.ws._response.connection.transport.abort()  # type: ignore[union-attr]
        # Reservations never used.
        for i in range(3):
            await matchmake(session, base, name=f"ghost{i}")
        # A handshake cut off half way.
        raw = await RawSocket.open("127.0.0.1", port, "/ws?token=abc", handshake=False)
        raw.write(raw.request[:len(raw.request) // 2])
        await raw.writer.drain()
        raw.abort()
        # A frame cut off half way.
        token = (await matchmake(session, base, name="cut"))["token"]
        raw = await RawSocket.open("127.0.0.1", port, "/ws?token=" + token)
        await raw.read_message()
        raw.send_frame(b"\x93\x01\x01" + b"\x00" * 200, cut=40)
        await asyncio.sleep(0.05)
        raw.abort()
        # A matchmaking request cut off mid-body.
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /matchmake HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"ga")
        await writer.drain()
        writer.transport.abort()
    deadline = time.monotonic() + 10
    while (manager.room_hosts or await manager.directory.rooms()) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert manager.room_hosts == {}
    assert await manager.directory.rooms() == []
    assert await manager.directory.pending() == 0
    assert len(manager.tokens) == 0  # no reconnection token outlives its seat
    assert server.app[ADDRESSES].counts == {}
    await session.close()  # its pooled keep-alive connection has a handler task too
    await asyncio.sleep(0.2)
    assert len(asyncio.all_tasks()) <= baseline_tasks


async def test_matchmaking_is_refused_while_draining(
        server: TestServer, session: aiohttp.ClientSession) -> None:
    server.app[MANAGER].accepting = False
    async with session.post(f"{url(server)}/matchmake", json={"game": "arena"}) as resp:
        assert resp.status == 503
        assert (await resp.json())["error"] == "server_draining"
