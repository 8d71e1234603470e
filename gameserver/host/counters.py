"""Plain-integer counters the hot paths bump; read by the Prometheus collector at scrape time.

Pure: no prometheus-client, no aiohttp. Nothing here is called per message
except ``+= 1`` on an attribute; per-room figures that already exist
(:class:`~gameserver.core.ticker.TickStats`, :class:`SendStats`)
are read where they are, and a closing room's totals are folded into its
game's :class:`RoomTotals` so that counters never go backwards when rooms go away.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from gameserver.core.ticker import TickStats

if TYPE_CHECKING:
    from gameserver.host.room_host import RoomHost


class SendStats:
    """One room's send path, counted (room_host.Broadcaster bumps them)."""

    __slots__ = ("bytes_sent", "closed_stalled", "deltas", "skipped", "snapshots")

    def __init__(self) -> None:
        self.deltas = 0
        self.snapshots = 0
        self.skipped = 0
        self.bytes_sent = 0
        self.closed_stalled = 0





def add_counts(into: object, other: object, names: Iterable[str]) -> None:
    """``into.name += other.name`` for each name; lists (histogram buckets) element-wise."""
    for name in names:
        value = getattr(other, name)
        if isinstance(value, list):
            mine = getattr(into, name)
            for i, n in enumerate(value):
                mine[i] += n
        else:
            setattr(into, name, getattr(into, name) + value)


class RoomTotals:
    """The summed counters of one game's rooms.

    The per-room figures are summed into a :class:`TickStats` and a :class:`SendStats`
    by their field names (``TickStats.TOTALS``, every ``SendStats`` slot), so a new
    stat is declared once, where it is counted.
    """

    COUNTS: tuple[str, ...] = ("crashes", "dropped_ticks", "rooms_closed")  # plain ints
    __slots__ = (*COUNTS, "sent", "ticks")

    def __init__(self) -> None:
        self.rooms_closed = 0
        self.crashes = 0
        self.dropped_ticks = 0  # Ticker.dropped: the catch-up cap's
        self.ticks = TickStats(0.0, window=0)  # only its TOTALS are summed here
        self.sent = SendStats()

    def add(self, room_host: RoomHost) -> None:
        """Add the counters of one room (live or closed) to these totals."""
        add_counts(self.ticks, room_host.stats, TickStats.TOTALS)
        add_counts(self.sent, room_host.broadcaster.stats, SendStats.__slots__)
        self.dropped_ticks += room_host.ticker.dropped if room_host.ticker is not None else 0

    def merge(self, other: RoomTotals) -> None:
        """Add the counts of other totals to these."""
        add_counts(self, other, RoomTotals.COUNTS)
        add_counts(self.ticks, other.ticks, TickStats.TOTALS)
        add_counts(self.sent, other.sent, SendStats.__slots__)

    def copy(self) -> RoomTotals:
        other = RoomTotals()
        other.merge(self)
        return other


class Counters:
    """Process-wide counters, shared by every room of a ``RoomManager``.

    The WebSocket receive loop and the room room_host bump the plain ints below;
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

    def fold(self, room_host: RoomHost) -> None:
        """A room closed: keep its counts (call once, when it leaves the manager)."""
        totals = self.closed.get(room_host.room.game)
        if totals is None:
            totals = self.closed[room_host.room.game] = RoomTotals()
        totals.add(room_host)
        totals.rooms_closed += 1
        if room_host.crashed is not None:
            totals.crashes += 1
