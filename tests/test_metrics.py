"""GET /metrics agrees with what the test really did."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import aiohttp
import msgpack
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gameserver import Entity, Room
from gameserver.core import codec
from gameserver.core.ticker import TICK_BUCKETS, TickStats
from gameserver.games.arena import Arena
from gameserver.host.counters import RoomTotals, SendStats

from .client import MatchmakeFailed, Player, matchmake, url

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(session: aiohttp.ClientSession, base: str) -> Samples:
    async with session.get(f"{base}/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def closed_with(player: Player) -> int:
    """The code of the server's close frame (read as sent)."""
    while (msg := await player.ws.receive(timeout=5)).type is aiohttp.WSMsgType.BINARY:
        pass
    assert msg.type is aiohttp.WSMsgType.CLOSE, msg
    return int(msg.data)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


async def settle(session: aiohttp.ClientSession, base: str, check: Callable[[Samples], bool],
                 timeout: float = 5.0) -> Samples:
    """Scrape until ``check`` holds (sockets close asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        samples = await scrape(session, base)
        if check(samples) or time.monotonic() > deadline:
            return samples
        await asyncio.sleep(0.02)


async def test_the_metrics_say_what_happened(session: aiohttp.ClientSession, base: str
                                             ) -> None:
    players = [await Player.join(session, base, name=f"p{i}") for i in range(5)]
    assert len({p.room_id for p in players}) == 1
    sent_bytes = 0
    for i in range(50):
        p = players[i % 5]
        p.seq += 1
        frame = msgpack.packb([codec.C_INPUT, p.seq, [10, 0]])
        sent_bytes += len(frame)
        await p.ws.send_bytes(frame)
    for p in players:
        await p.until(lambda p=p: p.replica.ack == 10)
    leave = msgpack.packb([codec.C_LEAVE])
    for p in players[:2]:
        await p.ws.send_bytes(leave)
        sent_bytes += len(leave)
        assert await closed_with(p) == codec.CLOSE_NORMAL

    m = await settle(session, base,
                     lambda m: value(m, "gameserver_players", game="arena") == 3
                     and value(m, "gameserver_connections") == 3)
    assert value(m, "gameserver_players", game="arena") == 3
    assert value(m, "gameserver_connections") == 3
    assert value(m, "gameserver_connections_opened_total") == 5
    assert value(m, "gameserver_rooms", game="arena") == 1
    assert value(m, "gameserver_rooms_created_total", game="arena") == 1
    assert value(m, "gameserver_matchmake_requests_total", outcome="ok") == 5
    assert value(m, "gameserver_matchmake_requests_total", outcome="unknown_game") == 0
    assert value(m, "gameserver_received_messages_total") == 52  # 50 inputs + 2 leaves
    assert value(m, "gameserver_received_bytes_total") == sent_bytes
    assert value(m, "gameserver_rejected_inputs_total", reason="invalid_input") == 0
    assert value(m, "gameserver_room_crashes_total", game="arena") == 0
    assert value(m, "gameserver_reconnections_total") == 0
    assert value(m, "gameserver_accepting_players") == 1
    # Every player got a snapshot first; the rest were deltas, one per tick per player.
    assert value(m, "gameserver_updates_sent_total", game="arena", kind="snapshot") >= 5
    deltas = value(m, "gameserver_updates_sent_total", game="arena", kind="delta")
    assert deltas > 0
    ticks = value(m, "gameserver_tick_duration_seconds_count", game="arena")
    assert ticks >= 10  # the 10 inputs per player took at least 10 ticks to apply
    assert value(m, "gameserver_tick_duration_seconds_bucket", game="arena", le="+Inf") == ticks
    assert value(m, "gameserver_tick_duration_seconds_sum", game="arena") > 0
    assert value(m, "gameserver_sent_bytes_total") > 0

    await players[2].updates_for(0.3)
    later = await scrape(session, base)
    assert value(later, "gameserver_updates_sent_total", game="arena", kind="delta") \
        >= deltas + 3 * 4  # three players, at least 4 more ticks at 20 Hz
    assert value(later, "gameserver_tick_duration_seconds_count", game="arena") > ticks
    assert value(later, "gameserver_sent_bytes_total") > value(m, "gameserver_sent_bytes_total")


async def test_rejections_and_failed_matchmaking_are_counted_by_code(
        session: aiohttp.ClientSession, base: str) -> None:
    ann = await Player.join(session, base, name="ann")
    await ann.send(codec.C_INPUT, 1, "not a vector")  # arena refuses it: invalid_input
    await ann.send(codec.C_INPUT, 1, [0, 0])  # fine
    await ann.send(codec.C_INPUT, 1, [0, 0])  # the same seq again: stale_seq
    await ann.ws.send_str("hello")  # text_frame
    await ann.until(lambda: len(ann.errors) == 3)
    with pytest.raises(MatchmakeFailed):
        await matchmake(session, base, game="no-such-game")
    with pytest.raises(MatchmakeFailed):
        await matchmake(session, base, mode="sideways")
    m = await scrape(session, base)
    assert value(m, "gameserver_rejected_inputs_total", reason="invalid_input") == 1
    assert value(m, "gameserver_rejected_inputs_total", reason="stale_seq") == 1
    assert value(m, "gameserver_rejected_inputs_total", reason="text_frame") == 1
    assert value(m, "gameserver_rejected_inputs_total", reason="rate_limited") == 0
    assert value(m, "gameserver_matchmake_requests_total", outcome="unknown_game") == 1
    assert value(m, "gameserver_matchmake_requests_total", outcome="bad_request") == 1
    assert value(m, "gameserver_matchmake_requests_total", outcome="ok") == 1
    assert value(m, "gameserver_received_messages_total") == 4


async def test_a_closed_rooms_counts_stay(start_server: Callable[..., Any],
                                          session: aiohttp.ClientSession) -> None:
    server = await start_server(empty_room_grace=0.1)
    base = url(server)
    ann = await Player.join(session, base, name="ann")
    await ann.updates_for(0.3)
    await ann.send(codec.C_INPUT, 1, "bad")
    await ann.until(lambda: bool(ann.errors))
    before = await scrape(session, base)
    await ann.ws.close()
    after = await settle(session, base,
                         lambda m: value(m, "gameserver_rooms", game="arena") == 0, timeout=5)
    assert value(after, "gameserver_rooms", game="arena") == 0
    assert value(after, "gameserver_players", game="arena") == 0
    assert value(after, "gameserver_connections") == 0
    assert value(after, "gameserver_rooms_created_total", game="arena") == 1
    for name, labels in (("gameserver_updates_sent_total", {"kind": "delta"}),
                         ("gameserver_updates_sent_total", {"kind": "snapshot"}),
                         ("gameserver_tick_duration_seconds_count", {}),
                         ("gameserver_tick_duration_seconds_sum", {})):
        assert value(after, name, game="arena", **labels) >= \
            value(before, name, game="arena", **labels) > 0, name
    assert value(after, "gameserver_sent_bytes_total") >= \
        value(before, "gameserver_sent_bytes_total") > 0
    assert value(after, "gameserver_rejected_inputs_total", reason="invalid_input") == 1


class Bomb(Entity):
    fuse: int = 3


class Crashy(Room):
    game = "crashy"
    entity_types = (Bomb,)

    def on_create(self, options: dict[str, Any]) -> None:
        self.bomb = self.world.spawn(Bomb())

    def update(self, dt: float) -> None:
        self.bomb.fuse -= 1
        if self.bomb.fuse < 0:
            raise RuntimeError("boom")


async def test_crashes_and_reconnections_are_counted(start_server: Callable[..., Any],
                                                     session: aiohttp.ClientSession) -> None:
    server = await start_server(games=(Arena, Crashy), reconnect_grace=5)
    base = url(server)
    victim = await Player.join(session, base, game="crashy", name="v")
    assert await closed_with(victim) == codec.CLOSE_ROOM_CRASHED

    ann = await Player.join(session, base, name="ann")
    await ann.pump()
    transport = ann.ws._response.connection.transport  # type: ignore[union-attr]
    transport.abort()  # a network failure: the seat waits for a reconnection
    await settle(session, base,
                 lambda m: value(m, "gameserver_players_reconnecting", game="arena") == 1)
    back = await Player.connect(session, f"{base}/ws?reconnect={ann.reconnect_token}")
    assert back.player_id == ann.player_id
    m = await settle(session, base,
                     lambda m: value(m, "gameserver_players", game="arena") == 1
                     and value(m, "gameserver_connections") == 1)
    assert value(m, "gameserver_room_crashes_total", game="crashy") == 1
    assert value(m, "gameserver_room_crashes_total", game="arena") == 0
    assert value(m, "gameserver_rooms", game="crashy") == 0
    assert value(m, "gameserver_rooms_created_total", game="crashy") == 1
    assert value(m, "gameserver_reconnections_total") == 1
    assert value(m, "gameserver_players_reconnecting", game="arena") == 0
    assert value(m, "gameserver_connections_opened_total") == 3
    assert value(m, "gameserver_connections") == 1


async def test_two_apps_in_one_process_have_their_own_registries(
        start_server: Callable[..., Any], session: aiohttp.ClientSession) -> None:
    one, two = url(await start_server()), url(await start_server())
    await Player.join(session, one, name="ann")
    assert value(await scrape(session, one), "gameserver_matchmake_requests_total",
                 outcome="ok") == 1
    assert value(await scrape(session, two), "gameserver_matchmake_requests_total",
                 outcome="ok") == 0


def test_the_tick_histogram_buckets_are_inclusive_upper_bounds() -> None:
    stats = TickStats(0.05)
    for seconds in (0.0, TICK_BUCKETS[0], TICK_BUCKETS[0] * 1.01, 0.06, 99.0):
        stats.record(seconds)
    assert stats.buckets[0] == 2 and stats.buckets[1] == 1
    assert stats.buckets[-1] == 1  # +Inf
    assert sum(stats.buckets) == stats.count == 5
    assert stats.overruns == 2
    assert stats.total == pytest.approx(0.0 + TICK_BUCKETS[0] * 2.01 + 0.06 + 99.0)


def test_room_totals_sum_every_tick_and_send_counter() -> None:
    ticks = TickStats(0.05)
    for seconds in (0.001, 0.2):
        ticks.record(seconds)
    sent = SendStats()
    for i, name in enumerate(SendStats.__slots__, 1):
        setattr(sent, name, i)  # a distinct value per counter: a swapped field would show
    room = SimpleNamespace(stats=ticks, broadcaster=SimpleNamespace(stats=sent),
                           ticker=SimpleNamespace(dropped=4))
    totals = RoomTotals()
    totals.add(room)  # type: ignore[arg-type]
    totals.add(room)  # type: ignore[arg-type]
    totals.crashes = 1
    copy = totals.copy()
    totals.add(room)  # type: ignore[arg-type]  # after the copy: not in it
    assert {n: getattr(copy.sent, n) for n in SendStats.__slots__} == \
        {n: 2 * i for i, n in enumerate(SendStats.__slots__, 1)}
    assert (copy.ticks.count, copy.ticks.overruns) == (4, 2)
    assert copy.ticks.total == pytest.approx(0.402)
    assert copy.ticks.buckets == [2 * n for n in ticks.buckets]
    assert (copy.dropped_ticks, copy.crashes, copy.rooms_closed) == (8, 1, 0)
    assert totals.ticks.count == 6


def test_every_tick_counter_is_summed_into_the_totals() -> None:
    # A new counter on TickStats must be listed in TOTALS, or closed rooms would lose it.
    per_room = {"interval", "_durations"}  # one room's recent ticks, not summable
    assert set(vars(TickStats(0.05))) - per_room == set(TickStats.TOTALS)
