"""One live room on the event loop: its tick task, its sockets, and the engine's outbox.

The :class:`~gameserver.core.ticker.Ticker` says when, the
:class:`~gameserver.core.engine.RoomEngine` steps and encodes, the
:class:`~gameserver.host.broadcast.Broadcaster` writes. After every call into the
engine the host carries out what the room decided (``drain``): direct frames to
sockets, closes, listing changes, a crash. Nothing here knows aiohttp: a
connection is a transport and a close callback.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from gameserver.core import codec
from gameserver.core.engine import RoomEngine, Seat
from gameserver.core.limits import Limits
from gameserver.core.room import Player, Room
from gameserver.core.ticker import Ticker, TickStats
from gameserver.host.broadcast import Broadcaster, Connection, Transport
from gameserver.host.counters import Counters
from gameserver.host.tokens import ReconnectTokens

log = logging.getLogger("gameserver.room")


class RoomHost:
    """Drives one room's engine on the loop and connects it to its sockets.

    ``on_listing`` is called when the room's listing (metadata, lock) changed and
    ``on_closed`` once when the room has closed; both are given by whoever owns the
    host (the matchmaker), at construction.
    """

    def __init__(self, room: Room, limits: Limits, *, counters: Counters | None = None,
                 tokens: ReconnectTokens | None = None,
                 on_listing: Callable[[RoomHost], Any] | None = None,
                 on_closed: Callable[[RoomHost], Any] | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.room = room
        self.limits = limits
        # metrics: plain ints, shared by the rooms of a manager
        self.counters = counters if counters is not None else Counters()
        self.engine = RoomEngine(room, max_message_size=limits.max_message_size,
                                 message_rate=limits.message_rate,
                                 message_bytes=limits.message_bytes,
                                 reconnect_grace=limits.reconnect_grace,
                                 rejected=self.counters.rejected)
        self.broadcaster = Broadcaster(limits.send_high_water, limits.send_low_water,
                                       limits.stall_timeout)
        self.max_message_size = limits.max_message_size  # for the socket's rate limiter
        self.connections: dict[int, Connection] = {}  # player id -> their socket
        self.stats = TickStats(1.0 / room.rate)
        self.clock = clock
        self.ticker: Ticker | None = None
        self.started_at = 0.0
        self.empty_since: float | None = time.monotonic()
        self.closed = False
        self._tokens = tokens if tokens is not None else ReconnectTokens(0.0)
        self._on_listing = on_listing
        self._on_closed = on_closed
        self._task: asyncio.Task[None] | None = None

    @property
    def room_id(self) -> str:
        return self.room.room_id

    @property
    def crashed(self) -> BaseException | None:
        return self.engine.crashed

    @property
    def dropped(self) -> dict[int, float]:
        """Players awaiting a reconnection: id -> when they dropped."""
        return self.engine.dropped

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> None:
        self.started_at = self.clock()
        self.ticker = Ticker(self.room.rate, self.started_at, self.limits.max_catch_up)
        self.engine.out.listing_changed = False  # what on_create set is in the first listing
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"room:{self.room.room_id}")

    async def _run(self) -> None:
        assert self.ticker is not None
        ticker, stats, engine, clock = self.ticker, self.stats, self.engine, self.clock
        out, send, connections = engine.out, self.broadcaster.send, self.connections
        sleep = asyncio.sleep
        try:
            while True:
                delay = ticker.next_deadline - clock()
                if delay > 0:
                    await sleep(delay)
                steps = ticker.due(clock())
                if not steps:
                    continue
                began = clock()
                for _ in range(steps):
                    engine.tick()
                if out.pending:
                    self.drain()
                    if self.closed:
                        return
                send(connections.values(), engine.collect(), engine.snapshot_tail,
                     time.monotonic())
                stats.record(clock() - began)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the framework's own failure: close this room only
            engine.crashed = exc
            log.exception("room %s (%s) crashed; closing it", self.room_id, self.room.game,
                          extra={"room_id": self.room_id})
            self.close(codec.CLOSE_ROOM_CRASHED, "room crashed")

    def close(self, code: int = codec.CLOSE_ROOM_CLOSED, reason: str = "room closed") -> None:
        """Stop ticking, disconnect everyone with ``code``, run ``on_dispose``. Idempotent."""
        if self.closed:
            return
        self.closed = True
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
        for conn in list(self.connections.values()):
            conn.detached = True  # frames still in flight go nowhere
            conn.close(code, reason)
        self.connections.clear()
        self.engine.dispose()
        if self._on_closed is not None:
            self._on_closed(self)

    async def wait_closed(self) -> None:
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    # -- the outbox ----------------------------------------------------------------

    def drain(self) -> None:
        """Carry out what the room decided: frames, then closes, then listing and crash."""
        engine = self.engine
        frames, closes, listing_changed = engine.drain()
        connections = self.connections
        for pid, payload in frames:
            conn = connections.get(pid)
            if conn is not None:
                conn.send_now(payload)
        for pid, code, reason in closes:  # a kick or a leave: the seat goes with the socket
            conn = connections.get(pid)
            if conn is not None and not conn.leaving:
                conn.leaving = True
                conn.close(code, reason)
        if listing_changed and self._on_listing is not None and not self.closed:
            self._on_listing(self)
        if engine.crashed is not None:
            self.close(codec.CLOSE_ROOM_CRASHED, "room crashed")

    # -- players -----------------------------------------------------------------

    def connect(self, transport: Transport, name: str, options: dict[str, Any],
                close: Callable[[int, str], None], auth: dict[str, Any] | None = None
                ) -> Connection:
        """Seat a player on this socket and send the welcome.

        Raises JoinRefused, or RoomCrashed (the room is closed by then)."""
        engine = self.engine
        pid = engine.next_player_id
        token = self._tokens.issue(self.room_id, pid)
        try:
            seat = engine.join(name, options, auth, token)
        except Exception:
            self._tokens.forget(self.room_id, pid)
            if engine.out.pending:
                self.drain()
            raise
        return self._attach(seat, transport, close)

    def resume(self, player: Player, transport: Transport, close: Callable[[int, str], None]
               ) -> Connection:
        """Put a dropped (or about to drop) player back on a new socket.

        Raises RoomCrashed if ``on_rejoin`` failed (the room is closed by then)."""
        seat = self.engine.seats[player.id]
        old = self.connections.pop(player.id, None)
        if old is not None:  # the client saw the drop before the server did
            old.detached = True  # its frames still in flight go nowhere
            old.close(codec.CLOSE_REPLACED, "replaced by a newer connection")
        token = self._tokens.issue(self.room_id, player.id)
        try:
            self.engine.rejoin(seat, token, replaced=old is not None)
        except Exception:
            self.drain()
            raise
        self.counters.reconnections += 1  # metrics
        return self._attach(seat, transport, close)

    def _attach(self, seat: Seat, transport: Transport, close: Callable[[int, str], None]
                ) -> Connection:
        conn = Connection(transport, seat, close)
        self.connections[seat.player.id] = conn
        self.empty_since = None
        self.drain()  # the welcome, then what the join/rejoin hooks sent or decided
        return conn

    def receive(self, conn: Connection, data: bytes) -> None:
        """One binary message from a player's socket."""
        engine = self.engine
        engine.receive(conn.seat, data, time.monotonic())
        if engine.out.pending:
            self.drain()

    def disconnect(self, conn: Connection, consented: bool) -> bool:
        """The socket ended. Returns whether the player's seat is free now.

        A player who did not mean to leave keeps the seat for ``reconnect_grace``.
        """
        player = conn.player
        if self.connections.get(player.id) is not conn:
            return False  # replaced by a reconnection, or the room closed
        del self.connections[player.id]
        conn.detached = True
        if not self.connections:
            self.empty_since = time.monotonic()
        engine = self.engine
        freed = consented or conn.leaving or self.limits.reconnect_grace <= 0
        if freed:
            engine.leave(conn.seat, consented or conn.leaving)
            self._tokens.forget(self.room_id, player.id)
        else:
            engine.drop(conn.seat, time.monotonic())
        if engine.out.pending:
            self.drain()
        return freed or player.id not in engine.seats

    def expire_drops(self, now: float) -> list[int]:
        """Remove dropped players whose grace is over; their ids (their seats are free)."""
        engine = self.engine
        expired = [seat.player.id for seat in engine.expire(now)]
        for pid in expired:
            self._tokens.forget(self.room_id, pid)
        if engine.out.pending:
            self.drain()
        return expired

    # -- observation -----------------------------------------------------------

    def info(self) -> dict[str, Any]:
        elapsed = self.clock() - self.started_at if self.started_at else 0.0
        return {
            "room_id": self.room.room_id,
            "game": self.room.game,
            "players": len(self.connections),
            "dropped": len(self.engine.dropped),
            "tick": self.room.tick,
            "tick_rate": self.room.rate,
            "achieved_rate": round(self.stats.count / elapsed, 3) if elapsed > 1 else None,
            "ticks": self.stats.summary(),
            "dropped_ticks": self.ticker.dropped if self.ticker else 0,
        }
