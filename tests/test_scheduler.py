"""Every real-time room of a tick rate is ticked by one task; a quiet room has its own.

Through a real server on loopback where a client is involved; the last test drives
room hosts on the loop directly.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from gameserver import Entity, Room
from gameserver.config import Settings
from gameserver.core import codec
from gameserver.core.limits import Limits
from gameserver.host.room_host import RoomHost
from gameserver.host.scheduler import scheduler_for
from gameserver.web.app import BUILTIN_GAMES
from gameserver.web.keys import MANAGER

from .client import Player, url


def room_tasks() -> dict[str, int]:
    """Tasks ticking rooms, by name: "rooms" (a scheduler) or "room:<id>" (a quiet room)."""
    names = [t.get_name() for t in asyncio.all_tasks() if not t.done()]
    return {n: names.count(n) for n in names if n == "rooms" or n.startswith("room:")}


class Dot(Entity):
    x: int = 0


class Slow(Room):
    """A real-time room at another rate."""

    game = "slow"
    tick_rate = 10
    entity_types = (Dot,)


async def test_real_time_rooms_of_a_rate_share_one_task(
        start_server: Callable[..., Any], session: aiohttp.ClientSession) -> None:
    server = await start_server(games=(*BUILTIN_GAMES, Slow))
    base = url(server)
    players = [await Player.join(session, base, mode="create", name=f"p{i}") for i in range(3)]
    slow = await Player.join(session, base, game="slow", name="slow")
    quiet = await Player.join(session, base, game="connect_four", name="quiet")
    assert len({p.room_id for p in [*players, slow, quiet]}) == 5
    tasks = room_tasks()
    # One task for the three arena rooms (20 Hz), one for the room at 10 Hz; the quiet
    # room, which sleeps while nothing happens, has its own.
    assert tasks == {"rooms": 2, f"room:{quiet.room_id}": 1}
    rates = await asyncio.gather(*(p.rate(1.5) for p in players), slow.rate(1.5))
    assert all(17 <= r <= 23 for r in rates[:3]), rates
    assert 8 <= rates[3] <= 12, rates
    assert all(p.gapless() for p in players)


class Flaky(Room):
    """A room whose framework side fails at its tenth tick (see the test)."""

    game = "flaky"
    entity_types = (Dot,)


async def test_a_room_failing_in_its_step_is_closed_and_the_others_tick_on(
        start_server: Callable[..., Any], session: aiohttp.ClientSession,
        caplog: pytest.LogCaptureFixture) -> None:
    server = await start_server(games=(*BUILTIN_GAMES, Flaky))
    base = url(server)
    bystanders = [await Player.join(session, base, mode="create", name=f"b{i}")
                  for i in range(2)]
    victim = await Player.join(session, base, game="flaky", name="victim")
    host: RoomHost = server.app[MANAGER].room_hosts[victim.room_id]
    send = host.broadcaster.send

    def failing(*args: Any, **kwargs: Any) -> None:
        if host.room.tick >= 10:
            raise RuntimeError("the framework's own bug")
        send(*args, **kwargs)

    host.broadcaster.send = failing  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="gameserver.room"):
        code, reason = await victim.close_event()
    assert (code, reason) == (codec.CLOSE_ROOM_CRASHED, "room crashed")
    error = next(r for r in caplog.records if "crashed" in r.getMessage())
    assert error.exc_info is not None and error.exc_info[0] is RuntimeError
    assert victim.room_id not in server.app[MANAGER].room_hosts
    # The others, ticked by the same task, never noticed.
    rates = await asyncio.gather(*(b.rate(1.5) for b in bystanders))
    assert all(17 <= r <= 23 for r in rates) and all(b.gapless() for b in bystanders)
    assert room_tasks() == {"rooms": 1}


async def test_the_task_ends_with_the_last_room_and_a_closed_room_ticks_no_more() -> None:
    limits = Limits.from_settings(Settings())
    hosts = []
    for i in range(3):
        room = Flaky(f"r{i}", 20.0, {})
        room.on_create(room.options)
        host = RoomHost(room, limits)
        host.start()
        hosts.append(host)
    scheduler = scheduler_for(20.0, hosts[0].clock)
    assert scheduler.task is not None and list(scheduler.rooms) == hosts
    await asyncio.sleep(0.3)
    first = hosts[0]
    first.close()
    ticks = first.room.tick
    assert ticks >= 4 and first not in scheduler.rooms
    await asyncio.sleep(0.2)
    assert first.room.tick == ticks  # closed: no more ticks
    assert all(h.room.tick >= ticks + 2 for h in hosts[1:])  # the others went on
    for host in hosts[1:]:
        host.close()
    await asyncio.wait_for(scheduler.task, 0.5)  # nothing left to tick: the task ends
    for host in hosts:
        await host.wait_closed()
