"""A live room: its tick task, its connections, and the dispatch of client messages.

This is where the pure pieces meet the event loop: the :class:`Ticker` says
when, the :class:`Room` steps and yields a delta, the :class:`Broadcaster`
writes it. It knows nothing of aiohttp: a connection is a transport and a
close callback.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from gameserver.core import codec
from gameserver.core.codec import ProtocolError
from gameserver.core.limits import RateLimiter, Verdict
from gameserver.core.room import InvalidInput, Player, Room, _discard
from gameserver.core.ticker import Ticker, TickStats
from gameserver.host.broadcast import Broadcaster, Connection, Transport
from gameserver.host.counters import Counters

log = logging.getLogger("gameserver.room")


class RoomRuntime:
    def __init__(self, room: Room, broadcaster: Broadcaster, *, max_catch_up: int = 3,
                 on_closed: Callable[[RoomRuntime], Any] | None = None,
                 reconnect_grace: float = 0.0,
                 issue_token: Callable[[RoomRuntime, Player], str | None] | None = None,
                 clock: Callable[[], float] = time.perf_counter,
                 max_message_size: int = codec.MAX_CLIENT_MESSAGE,
                 message_budget: tuple[float, float] = (2.0, 1024.0)) -> None:
        self.room = room
        self.max_message_size = max_message_size  # --max-message-size, for the decoder
        # Room messages (e.g. chat) fan out to every player: (messages/s, bytes/s) per player.
        self.message_budget = message_budget
        self.reconnect_grace = reconnect_grace
        self.dropped: dict[int, float] = {}  # player id -> when it dropped (monotonic)
        self._issue_token = issue_token or (lambda _runtime, _player: None)
        self.broadcaster = broadcaster
        self.connections: dict[int, Connection] = {}
        self.max_catch_up = max_catch_up
        self.stats = TickStats(1.0 / room.rate)
        self.counters = Counters()  # metrics: the RoomManager shares its own (counters.py)
        self.clock = clock
        self.ticker: Ticker | None = None
        self.started_at = 0.0
        self.empty_since: float | None = time.monotonic()
        self.closed = False
        self.crashed: BaseException | None = None
        self._task: asyncio.Task[None] | None = None
        self._on_closed = on_closed
        room.on_kick = self._kick

    @property
    def room_id(self) -> str:
        return self.room.room_id

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> None:
        self.started_at = self.clock()
        self.ticker = Ticker(self.room.rate, self.started_at, self.max_catch_up)
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"room:{self.room.room_id}")

    async def _run(self) -> None:
        assert self.ticker is not None
        ticker, stats, room, clock = self.ticker, self.stats, self.room, self.clock
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
                    room._step()
                tail = room._collect()
                self.broadcaster.send(self.connections.values(), tail, room._snapshot_tail,
                                      time.monotonic())
                stats.record(clock() - began)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.crashed = exc
            log.exception("room %s (%s) crashed; closing it", room.room_id, room.game,
                          extra={"room_id": room.room_id})
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
        try:
            self.room.on_dispose()
        except Exception:
            log.exception("room %s: on_dispose raised", self.room.room_id,
                          extra={"room_id": self.room.room_id})
        if self._on_closed is not None:
            self._on_closed(self)

    async def wait_closed(self) -> None:
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    # -- players -----------------------------------------------------------------

    def connect(self, transport: Transport, name: str, options: dict[str, Any],
                close: Callable[[int, str], None], auth: dict[str, Any] | None = None
                ) -> Connection:
        """Seat a player on this socket and send the welcome. May raise JoinRefused."""
        player = self.room._add_player(name, options, auth)
        return self._attach(player, transport, close)

    def resume(self, player: Player, transport: Transport, close: Callable[[int, str], None]
               ) -> Connection:
        """Put a dropped (or about to drop) player back on a new socket."""
        old = self.connections.pop(player.id, None)
        if old is not None:  # the client saw the drop before the server did
            old.detached = True  # its frames still in flight go nowhere
            old.close(codec.CLOSE_REPLACED, "replaced by a newer connection")
            # As on a drop: what the old socket queued is not applied, so the new
            # snapshot's ack is final and the client numbers its inputs after it.
            self.room._forget_inputs(player)
        player._send = player._hold  # on_rejoin runs before the new socket is attached
        if self.dropped.pop(player.id, None) is not None or not player.connected:
            self.room._rejoin_player(player)
        self.counters.reconnections += 1  # metrics
        return self._attach(player, transport, close)

    def _attach(self, player: Player, transport: Transport, close: Callable[[int, str], None]
                ) -> Connection:
        conn = Connection(transport, player, close)
        self.connections[player.id] = conn
        self.empty_since = None
        conn.send_now(self.room._welcome(player, self._issue_token(self, player)))
        # What the join/rejoin hooks sent or decided, in order after the welcome.
        held, player._outbox = player._outbox, []
        for data in held:
            conn.send_now(data)
        if player._kick is not None:
            reason, player._kick = player._kick, None
            self._kick(player, reason)
        return conn

    def disconnect(self, conn: Connection, consented: bool) -> bool:
        """The socket ended. Returns whether the player's seat is free now.

        A player who did not mean to leave keeps the seat for ``reconnect_grace``.
        """
        player = conn.player
        if self.connections.get(player.id) is not conn:
            return False  # replaced by a reconnection, or the room closed
        del self.connections[player.id]
        conn.detached = True
        player._send = _discard
        if not self.connections:
            self.empty_since = time.monotonic()
        try:
            if consented or conn.leaving or self.reconnect_grace <= 0:
                self.room._remove_player(player, consented or conn.leaving)
                return True
            self.dropped[player.id] = time.monotonic()  # first: on_drop may kick
            self.room._drop_player(player)
            return False
        except Exception as exc:
            self._crash_from_hook(exc)
            return True

    def expire_drops(self, now: float) -> list[int]:
        """Remove dropped players whose grace is over; their ids (their seats are free)."""
        expired = [pid for pid, at in self.dropped.items() if now - at >= self.reconnect_grace]
        for pid in expired:
            del self.dropped[pid]
            player = self.room.players.get(pid)
            if player is not None:
                try:
                    self.room._remove_player(player, consented=False)
                except Exception as exc:
                    self._crash_from_hook(exc)
        return expired

    def receive(self, conn: Connection, data: bytes) -> None:
        """Handle one binary frame from a player. Bad input gets an error to the sender only."""
        player = conn.player
        try:
            msg = codec.decode_client(data, self.max_message_size)
            if type(msg) is codec.Input:
                self.room._queue_input(player, msg.seq, msg.data)
            elif type(msg) is codec.Ping:
                conn.send_now(codec.encode(codec.S_PONG, msg.client_time, self.room.tick))
            elif type(msg) is codec.Message:
                if self._message_allowed(conn, len(data)):
                    self.room.on_message(player, msg.kind, msg.body)
                else:
                    self.counters.reject("message_rate_limited")  # metrics
                    conn.send_now(codec.encode_error(
                        "message_rate_limited", "too many room messages: this one was dropped"))
            else:
                conn.leaving = True
                conn.close(codec.CLOSE_NORMAL, "left")
        except ProtocolError as exc:
            self.counters.reject(exc.code)  # metrics
            conn.send_now(codec.encode_error(exc.code, exc.message, exc.seq))
        except InvalidInput as exc:
            self.counters.reject("invalid_input")  # metrics
            conn.send_now(codec.encode_error("invalid_input", str(exc)))
        except Exception as exc:  # the game's own code failed: that is the room's crash
            self._crash_from_hook(exc)

    def _message_allowed(self, conn: Connection, size: int) -> bool:
        """Within the player's room-message budget? (Never closes: refusing is enough.)"""
        now = time.monotonic()
        budget = conn.message_budget
        if budget is None:
            messages_per_s, bytes_per_s = self.message_budget
            budget = conn.message_budget = RateLimiter(messages_per_s, bytes_per_s, now,
                                                       burst_s=3.0, patience=float("inf"),
                                                       max_message=self.max_message_size)
        return budget.check(size, now) is Verdict.OK

    def _crash_from_hook(self, exc: Exception) -> None:
        self.crashed = exc
        log.error("room %s (%s) crashed in a hook; closing it", self.room.room_id,
                  self.room.game, exc_info=exc, extra={"room_id": self.room.room_id})
        self.close(codec.CLOSE_ROOM_CRASHED, "room crashed")

    def _kick(self, player: Player, reason: str) -> None:
        conn = self.connections.get(player.id)
        if conn is not None:
            conn.leaving = True
            conn.close(codec.CLOSE_KICKED, reason)
        elif player.id in self.dropped:  # kicked while away: no seat to come back to
            self.dropped[player.id] = -1e18
        elif self.room.players.get(player.id) is player:
            player._kick = reason  # from on_join/on_rejoin: done once the socket is attached

    # -- observation -----------------------------------------------------------

    def info(self) -> dict[str, Any]:
        elapsed = self.clock() - self.started_at if self.started_at else 0.0
        return {
            "room_id": self.room.room_id,
            "game": self.room.game,
            "players": len(self.connections),
            "dropped": len(self.dropped),
            "tick": self.room.tick,
            "tick_rate": self.room.rate,
            "achieved_rate": round(self.stats.count / elapsed, 3) if elapsed > 1 else None,
            "ticks": self.stats.summary(),
            "dropped_ticks": self.ticker.dropped if self.ticker else 0,
        }
