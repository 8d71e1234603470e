"""A real-time room reads its sockets at its tick; everything else is read on arrival.

Through a real server on loopback: what the server's transports do (reading paused or
not), and what a client sees (inputs, pings, closes, floods) on each path.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from gameserver.core import codec
from gameserver.host.room_host import Connection, RoomHost
from gameserver.web.keys import MANAGER

from .client import Player, url


def host_of(server: Any, player: Player) -> RoomHost:
    return server.app[MANAGER].room_hosts[player.room_id]  # type: ignore[no-any-return]


def server_side(server: Any, player: Player) -> Connection:
    return host_of(server, player).connections[player.player_id]


async def test_a_real_time_rooms_sockets_are_read_by_its_tick(
        start_server: Callable[..., Any], session: aiohttp.ClientSession) -> None:
    server = await start_server()
    ann = await Player.join(session, url(server), name="ann")
    await ann.pump()
    conn = server_side(server, ann)
    reader = conn.reader
    assert reader is not None
    await ann.until(lambda: ann.replica.tick >= 2)
    # The event loop no longer watches the socket: the room's tick reads it.
    assert getattr(reader, "ticked", False)
    assert not conn.transport.is_reading()  # type: ignore[attr-defined]
    # ... and everything still arrives: inputs, applied one per tick, and pings.
    for _ in range(3):
        await ann.send_input(100, 0)
    await ann.send(codec.C_PING, 4.5)
    await ann.until(lambda: ann.replica.ack == 3
                    and any(m[0] == codec.S_PONG and m[1] == 4.5 for m in ann.messages))


async def test_a_quiet_rooms_sockets_are_read_on_arrival(
        start_server: Callable[..., Any], session: aiohttp.ClientSession) -> None:
    server = await start_server()
    ann = await Player.join(session, url(server), name="ann", game="connect_four")
    await ann.pump()
    await asyncio.sleep(0.3)  # several ticks' time: a quiet room sleeps through them
    conn = server_side(server, ann)
    assert conn.reader is not None and not getattr(conn.reader, "ticked", True)
    assert conn.transport.is_reading()  # type: ignore[attr-defined]
    await ann.send(codec.C_PING, 1.5)
    await ann.until(lambda: any(m[0] == codec.S_PONG and m[1] == 1.5 for m in ann.messages))


async def test_a_replaced_socket_finishes_its_close_handshake_at_once(
        start_server: Callable[..., Any], session: aiohttp.ClientSession) -> None:
    """The old socket leaves the tick's reads when it is replaced, so the server reads the
    client's close reply as soon as it comes, not after its close timeout (3 s)."""
    server = await start_server(reconnect_grace=5)
    base = url(server)
    ann = await Player.join(session, base, name="ann")
    await ann.until(lambda: ann.replica.tick >= 2)
    old = server_side(server, ann)
    assert getattr(old.reader, "ticked", False)
    back = await Player.connect(session, f"{base}/ws?reconnect={ann.reconnect_token}")
    started = time.monotonic()
    code, _ = await ann.close_event()
    assert code == codec.CLOSE_REPLACED
    while not old.transport.is_closing() and time.monotonic() - started < 2.5:
        await asyncio.sleep(0.01)
    assert old.transport.is_closing()
    assert time.monotonic() - started < 1.0
    # The new socket is read by the tick in its turn.
    await back.until(lambda: back.avatar is not None)
    await back.send_input(0, 100)
    await back.until(lambda: back.replica.ack >= 1)
    assert getattr(server_side(server, back).reader, "ticked", False)


async def test_a_client_that_vanishes_is_noticed_by_the_tick(
        start_server: Callable[..., Any], session: aiohttp.ClientSession) -> None:
    """A reset connection is found by the tick's read (the event loop no longer watches
    it): the player is dropped and keeps the seat for the grace period."""
    server = await start_server(reconnect_grace=5)
    ann = await Player.join(session, url(server), name="ann")
    await ann.until(lambda: ann.replica.tick >= 2)
    host = host_of(server, ann)
    assert getattr(server_side(server, ann).reader, "ticked", False)
    ann.ws._response.connection.transport.abort()  # type: ignore[union-attr]
    deadline = time.monotonic() + 2.0
    while ann.player_id not in host.dropped and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert ann.player_id in host.dropped


async def test_a_burst_on_a_tick_read_socket_is_refused_and_hurts_nobody(
        start_server: Callable[..., Any], session: aiohttp.ClientSession) -> None:
    """The socket budgets hold when the tick does the reading: a burst over the budget,
    read in one tick, gets rate_limited, and the other player plays on. (The close after
    a sustained flood: test_hostile.py, on both receive paths.)"""
    server = await start_server(rate_limit_messages=20)
    base = url(server)
    ann = await Player.join(session, base, name="ann")
    bob = await Player.join(session, base, name="bob")
    await ann.until(lambda: ann.replica.tick >= 2)
    assert getattr(server_side(server, ann).reader, "ticked", False)
    for seq in range(100):  # 100 pings: 2.5 times the burst of 40
        await ann.send(codec.C_PING, seq)
    await ann.until(lambda: any(m[0] == codec.S_ERROR and m[1] == "rate_limited"
                                for m in ann.messages))
    pongs = {m[1] for m in ann.messages if m[0] == codec.S_PONG}
    assert 30 <= len(pongs) <= 50 and min(pongs) == 0  # the first ones, then refusals
    tick = bob.replica.tick
    await bob.send_input(100, 0)
    await bob.until(lambda: bob.replica.ack == 1 and bob.replica.tick > tick + 2)
    assert bob.errors == [] and bob.gapless()


def test_only_a_plain_tcp_socket_is_read_at_the_tick() -> None:
    """A TLS transport's descriptor carries ciphertext, and a transport may have no
    socket at all: neither gets a tick reader (they are read on arrival)."""
    from gameserver.web.aiohttp_seam import _plain_fd

    class Sock:
        def fileno(self) -> int:
            return 17

    class FakeTransport:
        def __init__(self, **extra: Any) -> None:
            self.extra = extra

        def get_extra_info(self, name: str) -> Any:
            return self.extra.get(name)

    assert _plain_fd(FakeTransport(socket=Sock())) == 17
    assert _plain_fd(FakeTransport(socket=Sock(), sslcontext=object())) == -1
    assert _plain_fd(FakeTransport()) == -1
