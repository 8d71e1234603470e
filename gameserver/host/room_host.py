"""One live room on the event loop: its ticks, its sockets both ways, and the
engine's outbox. Nothing here knows aiohttp: a socket is a transport and a close
callback, fed by the web layer.

This is the host side of the data path (README, "How it works")::

    receive: Connection.reader.pull (a real-time room, at each tick) or the event loop
             -> Inbound.frame (the socket's budgets) -> engine.receive
    tick:    the rate's TickScheduler task (Ticker deadlines) -> RoomHost.step: pull every
             socket, engine.tick, engine.collect -> Broadcaster.send: one frame per socket,
             never awaited (a quiet room: a task of its own, RoomHost._run_quiet)
    after every call into the engine: RoomHost.drain (frames, closes, listing, crash)

**Receiving.** A real-time room reads its own sockets, once per tick, just before
the tick that applies what was read (``Connection.reader``, put there by the web
layer: the way Quake's and Source's servers read theirs). An input is applied
at the same tick as if it had been read on arrival, and costs neither a wake-up
of the process nor a pass through the event loop and aiohttp's protocol: per
player-update that was about a fifth of the server's CPU (docs/BENCHMARKS.md).
Everything else is read on arrival by the event loop: a quiet room's sockets (it
sleeps), and a socket from the moment it is detached (the end of its close
handshake). Either way the seam's parser hands each whole message to
:meth:`Inbound.frame` (``web/aiohttp_seam.py``). Each socket has a message and
byte budget (over it: an error, then 4005), and a small budget of its own for
pings, pongs and fragments that the seam's metered parser charges.

**Sending.** Each tick the room's update tail is encoded once; each player's
frame is a cached WebSocket header, the update's kind, that player's input ack
and the shared tail, written straight to the transport (the same whole-frame
write aiohttp's own writer does, so frames never interleave). A socket whose
buffers hold more than ``high_water`` bytes is *behind*: skipped, not awaited,
and marked out of sync; once below ``low_water`` it gets a snapshot, then deltas
again; behind for longer than ``stall_timeout`` it is cut. Memory per slow client
is therefore bounded by ``high_water`` plus one update.
"""

from __future__ import annotations

import asyncio
import logging
import math
import struct
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import msgpack

from gameserver.core import codec
from gameserver.core.codec import (
    DELTA_HEADER,
    DELTA_PARTS_HEADER,
    SNAPSHOT_HEADER,
    SNAPSHOT_PARTS_HEADER,
)
from gameserver.core.engine import RoomEngine, Seat
from gameserver.core.limits import VERDICT_OK, FrameAllowance, Limits, RateLimiter, Verdict
from gameserver.core.room import Player, Room
from gameserver.core.ticker import Ticker, TickStats
from gameserver.core.views import Views
from gameserver.host.counters import Counters, SendStats
from gameserver.host.recorder import Recorder, RecordOptions
from gameserver.host.scheduler import TickScheduler, scheduler_for
from gameserver.host.tokens import ReconnectTokens

log = logging.getLogger("gameserver.room")

_OP_BINARY = 0x82  # FIN + binary opcode
_pack_len2 = struct.Struct("!BBH").pack
_pack_len8 = struct.Struct("!BBQ").pack
_packb = msgpack.Packer(autoreset=True).pack
# The ack is the one per-player field of an update; small ones are cached.
_ACKS = [_packb(i) for i in range(4096)]


def frame_header(length: int) -> bytes:
    """An unmasked, final, binary WebSocket frame header for a payload of ``length`` bytes."""
    if length < 126:
        return bytes((_OP_BINARY, length))
    if length < 65536:
        return _pack_len2(_OP_BINARY, 126, length)
    return _pack_len8(_OP_BINARY, 127, length)


def frame(payload: bytes) -> bytes:
    return frame_header(len(payload)) + payload


class Transport(Protocol):
    def write(self, data: bytes) -> None: ...
    def get_write_buffer_size(self) -> int: ...
    def is_closing(self) -> bool: ...
    def abort(self) -> None: ...


class TickReader(Protocol):
    """A socket its room reads at each tick (the web layer's; see the module doc)."""

    def pull(self) -> None:
        """Read and handle what the socket holds now; the first pull stops the event
        loop's reads of it."""

    def release(self) -> None:
        """Give the socket back to the event loop's reads."""


class Watcher:
    """A spectator's place on a socket: no seat, no inputs; its updates carry ack 0."""

    __slots__ = ("conn", "player")

    def __init__(self) -> None:
        self.player = Player(0, "spectator")  # never in the room: only its ack (0) is read
        self.conn: Connection | None = None


class _Quiet:
    """A spectator's messages never leave anything in the room's outbox."""

    pending = False


class Connection:
    """One player's (or spectator's) socket as the send path sees it."""

    __slots__ = ("behind_since", "close", "detached", "last_seen", "leaving", "pinged_at",
                 "player", "reader", "seat", "synced", "transport")

    def __init__(self, transport: Transport, seat: Seat | Watcher,
                 close: Callable[[int, str], None]) -> None:
        self.transport = transport
        self.seat = seat  # the engine's seat this socket plays, or a spectator's Watcher
        self.player = seat.player
        self.close = close  # schedules a WebSocket close with a code and reason
        self.synced = False  # has this socket got a baseline the next delta applies to?
        self.behind_since: float | None = None
        self.leaving = False  # the player asked to leave, or was kicked: no reconnection
        self.detached = False  # no longer the player's socket: ignore what it still sends
        self.last_seen = time.monotonic()  # when the client last sent anything (heartbeat.py)
        self.pinged_at: float | None = None
        self.reader: TickReader | None = None  # set by the web layer: read at the tick

    def detach(self) -> None:
        """No longer the player's socket: what it still sends is ignored, and the event
        loop reads it again (to the end of its close handshake)."""
        self.detached = True
        reader = self.reader
        if reader is not None:
            self.reader = None
            reader.release()

    def send_now(self, payload: bytes) -> None:
        """Send one message outside the tick (errors, pongs, direct room messages).

        Dropped when the socket is behind: such messages are best effort.
        """
        t = self.transport
        if not (self.detached or t.is_closing()) and self.behind_since is None:
            t.write(frame(payload))


class Broadcaster:
    """Writes each update to a room's connections under the slow-client policy."""

    def __init__(self, high_water: int, low_water: int, stall_timeout: float) -> None:
        self.high_water = high_water
        self.low_water = low_water
        self.stall_timeout = stall_timeout
        self.stats = SendStats()

    def send(self, connections: Iterable[Connection], delta_tail: bytes,
             snapshot_tail: Callable[[], bytes], now: float, views: Views | None = None
             ) -> None:
        """One update to every connection: ``delta_tail`` (or the snapshot) for all, plus,
        when the world has ``views``, each player's own parts (encoded once per view)."""
        stats = self.stats
        high, low = self.high_water, self.low_water
        snapshot: bytes | None = None
        headers: dict[int, bytes] = {}  # frame headers by payload length: a few variants
        parts = views.all_delta_parts() if views is not None else None
        sent = deltas = 0
        for conn in connections:
            t = conn.transport
            if conn.detached or t.is_closing():  # closing: no data frame after the close
                continue
            backlog = t.get_write_buffer_size()
            if conn.behind_since is not None:
                if backlog > low:
                    if now - conn.behind_since > self.stall_timeout:
                        # A close handshake needs the peer to read: just cut the connection.
                        # Its seat waits for a reconnection like any other drop.
                        stats.closed_stalled += 1
                        t.abort()
                    stats.skipped += 1
                    continue
                conn.behind_since = None
            elif backlog > high:
                conn.behind_since = now
                conn.synced = False
                stats.skipped += 1
                continue
            ack = conn.player.ack
            ack = _ACKS[ack] if ack < 4096 else _packb(ack)
            # This player's parts, if the world has views and they see more than everyone.
            if conn.synced:
                suffix = parts.get(conn.player.id, b"") if parts is not None else b""
                head = DELTA_PARTS_HEADER if suffix else DELTA_HEADER
                tail = delta_tail
                deltas += 1
            else:
                suffix = views.snapshot_parts(conn.player.id) if views is not None else b""
                head = SNAPSHOT_PARTS_HEADER if suffix else SNAPSHOT_HEADER
                if snapshot is None:
                    snapshot = snapshot_tail()
                tail = snapshot
                conn.synced = True
                stats.snapshots += 1
            length = 2 + len(ack) + len(tail) + len(suffix)
            header = headers.get(length)
            if header is None:
                header = headers[length] = frame_header(length)
            data = b"".join((header, head, ack, tail, suffix))
            t.write(data)
            sent += len(data)
        stats.deltas += deltas
        stats.bytes_sent += sent


class Inbound:
    """One connection's inbound side: count, rate-limit, dispatch."""

    __slots__ = ("_check", "_clock", "_close", "_counters", "_drain", "_out", "_receive", "conn",
                 "control", "delivered", "flooded", "refused")

    def __init__(self, host: RoomHost, conn: Connection, messages_per_s: float,
                 bytes_per_s: float, close: Callable[[int, str], None],
                 control_per_s: float) -> None:
        self.conn = conn
        self._clock = time.monotonic
        self._check = RateLimiter(messages_per_s, bytes_per_s, self._clock(),
                                  max_message=host.max_message_size).check
        # Pings, pongs and message fragments: a budget of their own (see the module doc).
        self.control = FrameAllowance(control_per_s, self._clock())
        self.refused = False  # a message was refused since the reader last looked
        self.delivered = 0  # messages seen: a read that completes none is charged (reader)
        self.flooded = False  # closed for flooding
        # Straight to the engine, then the host's drain if the room decided something:
        # what RoomHost.receive does, one call shorter on the hottest path. A spectator's
        # messages go to the host instead: they never reach the game.
        spectator = isinstance(conn.seat, Watcher)
        self._receive = (host.spectator_receive if spectator else
                         host.quiet_receive if host.room.quiet else host.engine.receive)
        self._out = _Quiet if spectator else host.engine.out
        self._drain = host.drain
        self._counters = host.counters  # metrics: plain ints, read at scrape time
        self._close = close

    def frame(self, data: bytes, binary: bool = True) -> None:
        self.delivered += 1
        conn = self.conn
        if conn.detached:  # a frame still in flight after a disconnect or a replacement
            return
        counters = self._counters
        counters.received_messages += 1
        counters.received_bytes += len(data)
        now = self._clock()
        conn.last_seen = now
        verdict = self._check(len(data), now)
        if verdict is VERDICT_OK:
            if binary:
                self._receive(conn.seat, data, now)
                if self._out.pending:
                    self._drain()
            else:
                counters.reject("text_frame")
                conn.send_now(codec.encode_error(
                    "text_frame", "send binary msgpack frames, not text"))
            return
        self.refused = True
        if verdict is Verdict.LIMITED:
            counters.reject("rate_limited")
            conn.send_now(codec.encode_error(
                "rate_limited", "too many messages: slow down or be disconnected"))
        elif verdict is Verdict.CLOSE:
            conn.detach()
            self.flooded = True
            self._close(codec.CLOSE_RATE_LIMITED, "rate limit exceeded")

    def control_verdict(self, verdict: Verdict) -> None:
        """Act on the control budget's verdict after a read: tell once, or close."""
        conn = self.conn
        if conn.detached or verdict is Verdict.OK:
            return
        control = self.control
        if verdict is Verdict.CLOSE:
            conn.detach()
            self.flooded = True
            self._close(codec.CLOSE_RATE_LIMITED, "rate limit exceeded")
        elif control.over_since == control.refused_at:  # just went over: tell, once
            self._counters.reject("rate_limited")
            conn.send_now(codec.encode_error(
                "rate_limited", "too many control frames: slow down or be disconnected"))

    def control_frame(self) -> bool:
        """One ping or pong on the handler path (no direct path): within the budget?"""
        control = self.control
        now = self._clock()
        control.refill(now)
        control.allowance -= 1
        self.control_verdict(control.settle(now))
        if control.allowance < 0:
            return False
        self.conn.last_seen = now
        return True


def _wake_up(waker: asyncio.Future[None], woken: bool) -> None:
    if not waker.done():
        waker.set_result(woken)  # type: ignore[arg-type]


class SpectatorsFull(Exception):
    """The room has all the spectators it takes."""


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
                 record: RecordOptions | None = None,
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
        self.spectators: set[Connection] = set()  # sockets watching: no seat, no inputs
        self.stats = TickStats(1.0 / room.rate)
        self.clock = clock
        self.ticker: Ticker | None = None
        self.started_at = 0.0
        self.empty_since: float | None = time.monotonic()
        self.closed = False
        self._tokens = tokens if tokens is not None else ReconnectTokens(0.0)
        self._on_listing = on_listing
        self._on_closed = on_closed
        self._task: asyncio.Task[None] | None = None  # a quiet room's own task
        self._scheduler: TickScheduler | None = None  # a real-time room's
        # Written off the tick path (recorder.py); None: this room is not recorded.
        self.recorder = Recorder(self.engine, record) if record is not None else None
        self._recorder_closed: asyncio.Task[None] | None = None
        # A quiet room (Room.quiet): while dormant, _waker is the future its task awaits.
        self._waker: asyncio.Future[None] | None = None
        self.dormant = False
        self.keepalives = 0  # QUIET frames sent (each to every socket)
        self._last_sent = 0.0  # clock() of the last update or keep-alive

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
        self.started_at = now = self.clock()
        # Rooms of one tick rate share one grid of deadlines (multiples of the interval on
        # this process's clock), so the loop wakes once per tick for all of them, not once
        # per room: with many small rooms those wake-ups are a large part of the cost
        # (docs/BENCHMARKS.md, "Against Colyseus 0.16"). The first tick waits for the grid.
        interval = 1.0 / self.room.rate
        first = math.ceil(now / interval) * interval
        self.ticker = Ticker(self.room.rate, first, self.limits.max_catch_up)
        self.engine.out.listing_changed = False  # what on_create set is in the first listing
        if self.recorder is not None:
            self.recorder.start()
        self._last_sent = self.started_at
        if self.room.quiet:  # it sleeps while nothing happens: a task of its own
            self._task = asyncio.get_running_loop().create_task(
                self._run_quiet(), name=f"room:{self.room.room_id}")
        else:  # one task runs every real-time room of its rate (scheduler.py)
            self._scheduler = scheduler_for(self.room.rate, self.clock)
            self._scheduler.add(self)

    def _sockets(self) -> Iterable[Connection]:
        """The room's sockets: its players', and its spectators' when it has any."""
        if self.spectators:
            return [*self.connections.values(), *self.spectators]
        return self.connections.values()

    @property
    def next_deadline(self) -> float:
        """When this room's next tick is due (its scheduler's clock)."""
        assert self.ticker is not None
        return self.ticker.next_deadline

    def step(self) -> None:
        """A real-time room's ticks that are due, run by its scheduler (scheduler.py):
        read the sockets, tick, send the update."""
        assert self.ticker is not None
        clock = self.clock
        steps = self.ticker.due(clock())
        if not steps or self.closed:
            return
        began = clock()
        for conn in self._sockets():  # what the sockets hold, for this tick (module doc)
            reader = conn.reader
            if reader is not None:
                reader.pull()
                if self.closed:  # crashed on what it read
                    return
        if not self._tick(steps):
            return
        engine = self.engine
        tail = engine.collect()
        self.broadcaster.send(self._sockets(), tail, engine.snapshot_tail, time.monotonic(),
                              self.room.world.views)
        if self.recorder is not None:
            self.recorder.update(tail)  # appended to a buffer: the disk is not waited on
        self.stats.record(clock() - began)

    def _tick(self, steps: int) -> bool:
        """The engine's ``steps`` ticks, then what they decided; False if that closed
        the room (the game crashed)."""
        engine = self.engine
        for _ in range(steps):
            engine.tick()
        if engine.out.pending:
            self.drain()
        return not self.closed

    def crashed_in_tick(self, exc: Exception) -> None:
        """The framework's own failure while ticking (its scheduler's or its own task):
        close this room only."""
        self.engine.crashed = exc
        log.error("room %s (%s) crashed; closing it", self.room_id, self.room.game,
                  exc_info=exc, extra={"room_id": self.room_id})
        self.close(codec.CLOSE_ROOM_CRASHED, "room crashed")

    async def _run_quiet(self) -> None:
        """A quiet room's own task: its ticks while something happens, then dormant."""
        assert self.ticker is not None
        ticker, stats, clock = self.ticker, self.stats, self.clock
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
                if not self._tick(steps):
                    return
                dormant = self._quiet_update(began)
                stats.record(clock() - began)
                if dormant:
                    await self._sleep()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the framework's own failure: close this room only
            self.crashed_in_tick(exc)

    # -- a quiet room (Room.quiet) ------------------------------------------------------

    def _quiet_update(self, began: float) -> bool:
        """After a quiet room's tick: an update only when something changed
        (``engine.collect_changed``), else a QUIET keep-alive every ``room.keepalive``
        seconds without one. True when nothing is going on: the room may go dormant
        (:meth:`_sleep`: no ticks at all while nothing happens)."""
        engine = self.engine
        sockets = self._sockets()
        # A socket awaiting its snapshot (a joiner, a resync) forces an update;
        # one still behind waits, and keeps the room awake until it can take it.
        low = self.broadcaster.low_water
        unsynced = [c for c in sockets if not c.synced and not c.detached]
        force = any(c.behind_since is None
                    or c.transport.get_write_buffer_size() <= low for c in unsynced)
        tail = engine.collect_changed(force)
        if tail is not None:
            self.broadcaster.send(sockets, tail, engine.snapshot_tail, time.monotonic(),
                                  self.room.world.views)
            if self.recorder is not None:
                self.recorder.update(tail)
            self._last_sent = began
        elif began - self._last_sent >= self.room.keepalive:
            self._keepalive(sockets, began)
        return tail is None and not unsynced and not engine.out.pending and engine.idle()

    async def _sleep(self) -> None:
        """Dormant: no ticks until :meth:`wake` (a message, a seat change), the room's own
        timer (``Room.wake_at``) or close; a QUIET to every socket each ``keepalive``
        seconds meanwhile. Then back on the schedule: the ticks slept through are
        skipped (``room.tick`` jumps over them), the next one runs at its deadline."""
        assert self.ticker is not None
        ticker, engine, clock = self.ticker, self.engine, self.clock
        loop = asyncio.get_running_loop()
        keepalive = self.room.keepalive
        self.dormant = True
        limit: int | None = None
        try:
            while True:
                wake = engine.next_wake()
                now = clock()
                until = self._last_sent + keepalive
                limit = None
                if wake is not None:  # the timer's tick index and deadline
                    limit = ticker.index + (wake - self.room.tick)
                    until = min(until, ticker.start + limit / ticker.rate)
                waker = self._waker = loop.create_future()
                timer = loop.call_later(max(0.0, until - now), _wake_up, waker, False)
                try:
                    woken = await waker
                finally:
                    timer.cancel()
                    self._waker = None
                if woken:
                    break
                now = clock()
                if limit is not None and now >= ticker.start + limit / ticker.rate - 0.002:
                    break  # the timer's tick (the loop waits out the last ms, if early)
                if now >= self._last_sent + keepalive - 0.002:
                    self._keepalive(self._sockets(), now)
        finally:
            self.dormant = False
        slept = ticker.skip_to(clock(), limit)
        engine.skip(slept)

    def wake(self) -> None:
        """Something happened in a quiet room: a dormant one ticks again from its next
        deadline (a no-op for a room that is awake)."""
        waker = self._waker
        if waker is not None:
            _wake_up(waker, True)

    def quiet_receive(self, seat: Seat, data: bytes, now: float) -> None:
        """A quiet room's player message: to the engine, then wake the room (a ping does
        not: it changes nothing)."""
        self.engine.receive(seat, data, now)
        if self._waker is not None and data[:2] != b"\x92\x03":  # [3, client_time]
            _wake_up(self._waker, True)

    def _keepalive(self, sockets: Iterable[Connection], now: float) -> None:
        """QUIET ``[17, tick]`` to every socket: nothing changed since ``tick``."""
        data = frame(codec.encode(codec.S_QUIET, self.engine.last_update_tick))
        for conn in sockets:
            t = conn.transport
            if not (conn.detached or t.is_closing()) and conn.behind_since is None:
                t.write(data)
        self._last_sent = now
        self.keepalives += 1

    def close(self, code: int = codec.CLOSE_ROOM_CLOSED, reason: str = "room closed") -> None:
        """Stop ticking, disconnect everyone with ``code``, run ``on_dispose``. Idempotent."""
        if self.closed:
            return
        self.closed = True
        if self._scheduler is not None:
            self._scheduler.remove(self)
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
        for conn in [*self.connections.values(), *self.spectators]:
            conn.detach()  # frames still in flight go nowhere
            conn.close(code, reason)
        self.connections.clear()
        self.spectators.clear()
        self.engine.dispose()
        if self.recorder is not None:
            self._recorder_closed = asyncio.get_running_loop().create_task(
                self.recorder.close(), name=f"recorder:{self.room_id}:close")
        if self._on_closed is not None:
            self._on_closed(self)

    async def wait_closed(self) -> None:
        """A quiet room's task has ended and the recording (if any) is on disk."""
        waits = [t for t in (self._task, self._recorder_closed) if t is not None]
        if waits:
            await asyncio.gather(*waits, return_exceptions=True)

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
                conn.detach()  # the close frame is the last thing it gets
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
            old.detach()  # its frames still in flight go nowhere
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
        self.wake()  # a quiet room: the joiner needs its snapshot
        return conn

    def receive(self, conn: Connection, data: bytes, now: float | None = None) -> None:
        """One binary message from a player's socket (:class:`Inbound` calls the engine
        directly, the same two steps)."""
        engine = self.engine
        engine.receive(conn.seat, data, time.monotonic() if now is None else now)
        if engine.out.pending:
            self.drain()
        self.wake()

    def disconnect(self, conn: Connection, consented: bool) -> bool:
        """The socket ended. Returns whether the player's seat is free now.

        A player who did not mean to leave keeps the seat for ``reconnect_grace``.
        """
        player = conn.player
        if self.connections.get(player.id) is not conn:
            return False  # replaced by a reconnection, or the room closed
        del self.connections[player.id]
        conn.detach()
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
        self.wake()
        return freed or player.id not in engine.seats

    def expire_drops(self, now: float) -> list[int]:
        """Remove dropped players whose grace is over; their ids (their seats are free)."""
        engine = self.engine
        expired = [seat.player.id for seat in engine.expire(now)]
        for pid in expired:
            self._tokens.forget(self.room_id, pid)
        if engine.out.pending:
            self.drain()
        if expired:
            self.wake()
        return expired

    # -- spectators ----------------------------------------------------------------

    @property
    def spectator_cap(self) -> int:
        own = self.room.max_spectators
        cap = self.limits.max_spectators
        return cap if own is None else max(0, min(own, cap))

    @property
    def spectators_full(self) -> bool:
        return len(self.spectators) >= self.spectator_cap

    def watch(self, transport: Transport, close: Callable[[int, str], None]) -> Connection:
        """A spectator on this socket: the welcome (player id 0, no reconnection token)
        now, then the room's updates with everyone else's. Raises SpectatorsFull."""
        if self.spectators_full:
            raise SpectatorsFull(f"the room takes {self.spectator_cap} spectators")
        watcher = Watcher()
        conn = watcher.conn = Connection(transport, watcher, close)
        self.spectators.add(conn)
        conn.send_now(self.engine.spectator_welcome())
        if self._on_listing is not None:
            self._on_listing(self)  # the listing shows how many watch
        self.wake()  # a quiet room: the spectator needs its snapshot
        return conn

    def unwatch(self, conn: Connection) -> None:
        """A spectator's socket ended."""
        if conn in self.spectators:
            self.spectators.discard(conn)
            conn.detach()
            if self._on_listing is not None and not self.closed:
                self._on_listing(self)

    def spectator_receive(self, watcher: Watcher, data: bytes, now: float) -> None:
        """A spectator may ping and leave; anything else is refused, never shown the game."""
        conn = watcher.conn
        assert conn is not None
        try:
            msg = codec.decode_client(data, self.max_message_size)
        except codec.ProtocolError as exc:
            self.counters.reject(exc.code)
            conn.send_now(codec.encode_error(exc.code, exc.message))
            return
        if type(msg) is codec.Ping:
            conn.send_now(codec.encode(codec.S_PONG, msg.client_time, self.room.tick))
        elif type(msg) is codec.Leave:
            conn.leaving = True
            conn.detach()
            conn.close(codec.CLOSE_NORMAL, "left")
        else:
            self.counters.reject("spectator")
            conn.send_now(codec.encode_error(
                "spectator", "spectators cannot send inputs or room messages"))

    # -- observation -----------------------------------------------------------

    def info(self) -> dict[str, Any]:
        elapsed = self.clock() - self.started_at if self.started_at else 0.0
        return {
            "room_id": self.room.room_id,
            "game": self.room.game,
            "players": len(self.connections),
            "spectators": len(self.spectators),
            "dropped": len(self.engine.dropped),
            "tick": self.room.tick,
            "tick_rate": self.room.rate,
            "achieved_rate": round(self.stats.count / elapsed, 3) if elapsed > 1 else None,
            "ticks": self.stats.summary(),
            "dropped_ticks": self.ticker.dropped if self.ticker else 0,
            "quiet": self.room.quiet,
            "dormant": self.dormant,
            "slept_ticks": self.ticker.slept if self.ticker else 0,
            "stood_in_inputs": self.engine.inputs_stood_in,
        }
