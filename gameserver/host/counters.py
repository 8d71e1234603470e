"""Plain-integer counters the hot paths bump; read by the Prometheus collector at scrape time.

Pure: no prometheus-client, no aiohttp. Nothing here is called per message
except ``+= 1`` on an attribute; per-room figures that already exist
(:class:`~gameserver.core.ticker.TickStats`, :class:`~gameserver.host.broadcast.SendStats`)
are read where they are, and a closing room's totals are folded into its
game's :class:`RoomTotals` so that counters never go backwards when rooms go away.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gameserver.core.ticker import TICK_BUCKETS

if TYPE_CHECKING:
    from gameserver.host.room_host import RoomHost


class RoomTotals:
    """The summed counters of one game's closed rooms."""

    __slots__ = ("bytes_sent", "closed_stalled", "crashes", "deltas", "dropped_ticks",
                 "overruns", "rooms_closed", "skipped", "snapshots", "tick_buckets",
                 "tick_count", "tick_sum")

    def __init__(self) -> None:
        self.rooms_closed = 0
        self.crashes = 0
        self.tick_count = 0
        self.tick_sum = 0.0
        self.tick_buckets = [0] * (len(TICK_BUCKETS) + 1)
        self.overruns = 0
        self.dropped_ticks = 0
        self.deltas = 0
        self.snapshots = 0
        self.skipped = 0
        self.bytes_sent = 0
        self.closed_stalled = 0

    def add(self, runtime: RoomHost) -> None:
        """Add the counters of one room (live or closed) to these totals."""
        stats, sent = runtime.stats, runtime.broadcaster.stats
        self.tick_count += stats.count
        self.tick_sum += stats.total
        buckets = self.tick_buckets
        for i, n in enumerate(stats.buckets):
            buckets[i] += n
        self.overruns += stats.overruns
        self.dropped_ticks += runtime.ticker.dropped if runtime.ticker is not None else 0
        self.deltas += sent.deltas
        self.snapshots += sent.snapshots
        self.skipped += sent.skipped
        self.bytes_sent += sent.bytes_sent
        self.closed_stalled += sent.closed_stalled

    def copy(self) -> RoomTotals:
        other = RoomTotals()
        for name in RoomTotals.__slots__:
            value = getattr(self, name)
            setattr(other, name, list(value) if isinstance(value, list) else value)
        return other


class Counters:
    """Process-wide counters, shared by every room of a ``RoomManager``.

    The WebSocket receive loop and the room runtime bump the plain ints below;
    ``reconnections`` is bumped once per successful reconnection.
    """

    __slots__ = ("closed", "connections", "connections_opened", "matchmake",
                 "received_bytes", "received_messages", "reconnections", "rejected")

    def __init__(self) -> None:
        self.connections = 0  # open WebSockets (a gauge)
        self.connections_opened = 0
        self.received_messages = 0  # WebSocket data frames received from players
        self.received_bytes = 0
        self.reconnections = 0
        self.rejected: dict[str, int] = {}  # refused client messages, by ERROR code
        self.matchmake: dict[str, int] = {}  # POST /matchmake answers: "ok" or the error code
        self.closed: dict[str, RoomTotals] = {}  # by game: what closed rooms counted

    def reject(self, reason: str) -> None:
        """A client message was refused with the ERROR code ``reason`` (not a hot path)."""
        self.rejected[reason] = self.rejected.get(reason, 0) + 1

    def matchmade(self, outcome: str) -> None:
        self.matchmake[outcome] = self.matchmake.get(outcome, 0) + 1

    def fold(self, runtime: RoomHost) -> None:
        """A room closed: keep its counts (call once, when it leaves the manager)."""
        totals = self.closed.get(runtime.room.game)
        if totals is None:
            totals = self.closed[runtime.room.game] = RoomTotals()
        totals.add(runtime)
        totals.rooms_closed += 1
        if runtime.crashed is not None:
            totals.crashes += 1
