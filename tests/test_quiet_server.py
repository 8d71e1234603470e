"""Quiet rooms on a real server over loopback: dormant (no frames but QUIET every
keep-alive), woken by a message within a tick interval, and the Python client's
silence watchdog (QUIET keeps it; silence reconnects it)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

import aiohttp

from gameserver import Entity, Room, message
from gameserver import Player as GamePlayer
from gameserver.client import Client, open_recording
from gameserver.core import codec, recording
from gameserver.web.keys import MANAGER

from .client import Player, url
from .test_recording import files


class Count(Entity):
    value: int = 0


class Hush(Room):
    game = "hush"
    quiet = True
    keepalive = 0.4
    tick_rate = 10
    max_players = 2
    entity_types = (Count,)

    def on_create(self, options: dict[str, Any]) -> None:
        self.count = self.world.spawn(Count())

    @message("add", int)
    def add(self, player: GamePlayer, n: int) -> None:
        self.count.value += n


async def collect(player: Player, seconds: float) -> list[tuple[float, list[Any]]]:
    """Every message that arrives in the next ``seconds``, with its arrival time."""
    got: list[tuple[float, list[Any]]] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            msg = await player.pump(left)
        except TimeoutError:
            break
        got.append((time.monotonic(), msg))
    return got


async def test_a_quiet_room_is_dormant_keeps_alive_and_wakes_on_a_message(
        start_server: Callable[..., Any]) -> None:
    server = await start_server(games=(Hush,))
    base = url(server)
    async with aiohttp.ClientSession() as session:
        ann = await Player.join(session, base, game="hush", mode="create", name="ann")
        bob = await Player.join(session, base, game="hush", mode="join", room_id=ann.room_id,
                                name="bob")
        assert ann.keepalive == bob.keepalive == 0.4
        await ann.until(lambda: len(ann.replica.entities) == 1)
        await bob.until(lambda: len(bob.updates) >= 1)
        host = server.app[MANAGER].room_hosts[ann.room_id]
        await asyncio.sleep(0.3)
        assert host.dormant
        ticks_before = host.stats.count
        got = await collect(ann, 2.0)
        await bob.drain()
        kinds = [m[0] for _, m in got]
        assert codec.S_SNAPSHOT not in kinds and codec.S_DELTA not in kinds, kinds
        quiet = [(at, m) for at, m in got if m[0] == codec.S_QUIET]
        assert 4 <= len(quiet) <= 6, quiet  # one every 0.4 s
        gaps = [b[0] - a[0] for a, b in pairwise(quiet)]
        assert all(0.3 <= g <= 0.6 for g in gaps), gaps
        last_tick = ann.updates[-1][1][2]
        assert all(m[1] == last_tick for _, m in quiet), "QUIET carries the last update's tick"
        assert host.stats.count - ticks_before <= 1, "a dormant room does not tick"
        # A message wakes it: the update arrives within one tick interval (0.1 s), here
        # with slack for a loaded machine, and continues the chain with a jumped tick.
        sent = time.monotonic()
        await bob.send(codec.C_MESSAGE, "add", 7)
        await ann.until(lambda: ann.replica.entities and next(
            iter(ann.replica.entities.values())).values["value"] == 7, timeout=2)
        took = time.monotonic() - sent
        assert took < 0.1 + 0.15, took
        delta = ann.updates[-1][1]
        assert delta[0] == codec.S_DELTA and delta[3] == last_tick and delta[2] > last_tick + 15
        assert ann.gapless()
        assert host.info()["slept_ticks"] > 15


async def test_a_real_time_room_sends_zero_keepalive_and_every_tick(
        start_server: Callable[..., Any]) -> None:
    server = await start_server(tick_rate=20.0)
    async with aiohttp.ClientSession() as session:
        ann = await Player.join(session, url(server), game="arena", name="ann")
        assert ann.keepalive == 0.0
        assert await ann.rate(1.0) >= 15


async def test_the_python_client_stays_on_quiet_and_reconnects_on_silence(
        start_server: Callable[..., Any]) -> None:
    server = await start_server(games=(Hush,))
    async with Client(url(server), name="cli", reconnect_delays=(0.05, 0.1, 0.2)) as client:
        room = await client.join_or_create("hush")
        assert room.quiet and room.keepalive == 0.4
        assert room.silence == 3.0  # max(3 s, 3 x 0.4 s)
        room.silence = 1.0  # faster for the test: QUIETs come every 0.4 s
        await asyncio.sleep(2.0)
        assert room.reconnects == 0 and room.connected
        assert room.last_quiet >= 0
        # The server stops sending anything on this socket: the watchdog reconnects.
        host = server.app[MANAGER].room_hosts[room.room_id]
        host._keepalive = lambda sockets, now: None  # type: ignore[method-assign]
        await room.wait_for(lambda: room.reconnects == 1, timeout=5)
        assert room.connected and room.player_id == 1


async def test_a_quiet_room_records_only_its_updates_and_replays_across_the_gaps(
        start_server: Callable[..., Any], tmp_path: Path) -> None:
    server = await start_server(games=(Hush,), record=str(tmp_path), empty_room_grace=0.2)
    base = url(server)
    async with aiohttp.ClientSession() as session:
        ann = await Player.join(session, base, game="hush", mode="create", name="ann")
        await ann.until(lambda: len(ann.replica.entities) == 1)
        for n in (1, 2, 3):  # three changes, with dormant spells between them
            await asyncio.sleep(0.5)
            await ann.send(codec.C_MESSAGE, "add", n)
        await ann.until(lambda: next(iter(ann.replica.entities.values())).values["value"] == 6)
        live = [m for _, m in ann.updates]
        manager = server.app[MANAGER]
        host = manager.room_hosts[ann.room_id]
        await ann.send(codec.C_LEAVE)
        deadline = time.monotonic() + 5
        while ann.room_id in manager.room_hosts and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        # The recording is complete once the room's recorder has flushed and closed
        # it: on a loaded machine that can take longer than any fixed wait.
        await asyncio.wait_for(host.wait_closed(), 5)
    [path] = files(tmp_path)
    _, frames = recording.read(path.read_bytes())
    recorded = [m for _, m in recording.updates(frames)]
    deltas = [m for m in recorded if m[0] == codec.S_DELTA]
    # What the live client got (its snapshot, then deltas) is what was recorded then;
    # before it the room's first tick, after it ann's leave.
    first, last = live[0][2], live[-1][2]
    assert [m[2] for m in deltas if first <= m[2] <= last] == [m[2] for m in live]
    assert all(b[3] == a[2] for a, b in pairwise(deltas)), "the base chain, with gaps"
    assert any(b[2] - a[2] > 3 for a, b in pairwise(deltas)), "ticks jump"
    replay = open_recording(path.read_bytes())
    async for _ in replay.play(speed=1000):
        pass
    assert [e.values["value"] for e in replay.entities("Count")] == [6]
