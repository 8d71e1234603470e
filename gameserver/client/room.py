"""A joined room: the game socket, the replica, inputs, callbacks and reconnection.

A :class:`Room` reads its socket in a background task from the moment it is
welcomed: every SNAPSHOT and DELTA is applied to :attr:`Room.state` (the
reference decoder, :class:`gameserver.core.replica.Replica`), callbacks run,
and waiters (:meth:`Room.wait_for`, :meth:`Room.next_update`) wake up. When
the connection drops abnormally the room reconnects with its reconnection
token (docs/PROTOCOL.md §2, *Reconnecting*), with back-off, and resends the
inputs the new snapshot's ``ack`` does not cover. A spectator's room
(:meth:`Client.spectate <gameserver.client.Client.spectate>`) has no token and
sends no inputs: it spectates the same room again with a new pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import aiohttp
import msgpack

from gameserver.core import codec
from gameserver.core.replica import Replica, ReplicaEntity, ReplicaError

from .errors import ConnectError, MatchmakeError, RoomClosed, ServerError, SpectatorError

if TYPE_CHECKING:
    from .client import Client

log = logging.getLogger("gameserver.client")

CLOSE_ABNORMAL = 1006  # no close frame: the connection was cut (never sent by anyone)
CLOSE_DESYNC = 4090  # ours: an update did not fit the replica; close and reconnect

# Close codes after which reconnecting is pointless (docs/PROTOCOL.md §3): the
# player left (1000) or was kicked (4003); the room or server is gone (1001,
# 1011, 4002); the seat never existed (4001, 4004); the seat continues on
# another socket (4007); or this client broke the rules and would again (1002,
# 1007, 1009, 4005). Every other ending (1006 cuts, 1013, 4090...) reconnects.
FINAL_CLOSE_CODES = frozenset({
    codec.CLOSE_NORMAL, codec.CLOSE_GOING_AWAY, codec.CLOSE_PROTOCOL_ERROR,
    codec.CLOSE_BAD_TEXT, codec.CLOSE_TOO_BIG, codec.CLOSE_ROOM_CRASHED,
    codec.CLOSE_BAD_RESERVATION, codec.CLOSE_ROOM_CLOSED, codec.CLOSE_KICKED,
    codec.CLOSE_JOIN_REFUSED, codec.CLOSE_RATE_LIMITED, codec.CLOSE_REPLACED,
})

# Seconds before each reconnection attempt (each scaled by 0.8-1.2): ~32 s in all,
# longer than the default --reconnect-grace of 20 s.
RECONNECT_DELAYS: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0)
# MatchmakeError codes after which reconnecting (or re-spectating) tries again.
_TRANSIENT = frozenset({"network", "directory_unavailable", "rate_limited", "bad_response",
                        "internal_error"})
PING_INTERVAL = 1.0  # seconds between PINGs (for rtt); a quiet room's keep-alive if longer
# The silence watchdog (docs/PROTOCOL.md §2, Quiet rooms): a socket that delivered no
# frame at all for max(MIN_SILENCE, 3 x the keep-alive interval) is taken for lost.
MIN_SILENCE = 3.0
CLOSE_SILENT = 4091  # ours: the watchdog closes a silent socket (not 1000: the seat is kept)
WELCOME_TIMEOUT = 10.0  # a socket that opens but never welcomes is given up


def should_reconnect(code: int) -> bool:
    """Whether a socket closing with ``code`` is worth a reconnection (a seated
    player's) or a new spectator pass (a spectator's)."""
    return code not in FINAL_CLOSE_CODES


class Event(NamedTuple):
    """A room event (``Room.broadcast``) as delivered with the update of ``tick``."""

    tick: int
    kind: str
    body: Any


class Message(NamedTuple):
    """A MESSAGE from the room to this player only (``Room.send``)."""

    kind: str
    body: Any


Callback = Callable[..., Any]
_ANY = "*"


class Room:
    """One seat in a room, or a spectator's view of one, as a client sees it. Made by
    :class:`~gameserver.client.Client`.

    Read: ``room_id``, ``game``, ``player_id``, ``name``, ``tick_rate``,
    ``config``, ``schema``, ``state`` (the replica: ``state.entities`` maps
    ids to entities with ``.type`` and ``.values``, fields by name), ``tick``,
    ``ack``, ``events`` / ``messages`` / ``errors`` (the most recent ``history``
    of each), ``rtt`` (seconds, smoothed; None before the first PONG),
    ``pending_inputs``, ``reconnects``, ``connected``, ``closed``,
    ``close_code``, ``close_reason``; ``quiet`` (the room sends updates only when
    something changed, and a QUIET keep-alive every ``keepalive`` seconds otherwise),
    ``last_quiet`` (the tick of the last QUIET: nothing changed since), ``silence``
    (seconds without any frame after which the socket is taken for lost: closed and
    reconnected as for a drop; ``watchdog=False`` turns this off).

    ``auto_reconnect`` (settable): resume the seat after an abnormal close
    (:func:`should_reconnect`), waiting ``reconnect_delays`` seconds (each
    scaled by 0.8-1.2) before the attempts; when they are used up, or the token
    is refused, the room ends (``on_leave``).

    ``spectator``: the room is watched, not played (``player_id`` 0, no
    ``reconnect_token``, ``ack`` always 0). It reads and waits like a player's;
    :meth:`send_input` and :meth:`send` raise :class:`SpectatorError` without
    sending; after an abnormal close it asks for a new spectator pass to the same
    room (with the same back-off), and ends if the room is gone (4002) or has its
    cap of spectators (4004).
    """

    def __init__(self, client: Client, ws: aiohttp.ClientWebSocketResponse,
                 welcome: list[Any], ws_url: str, *,
                 reconnect_delays: Sequence[float] = RECONNECT_DELAYS,
                 ping_interval: float | None = PING_INTERVAL, history: int = 1000,
                 auto_reconnect: bool = True, spectator: bool = False,
                 watchdog: bool = True) -> None:
        self.client = client
        self.spectator = spectator
        self.name = ""
        self.ws: aiohttp.ClientWebSocketResponse = ws
        self.ws_url = ws_url
        (_, self.version, self.room_id, self.game, self.player_id, self.tick_rate,
         self.schema, self.config, self.reconnect_token) = welcome[:9]
        # WELCOME's 10th element: the keep-alive interval of a quiet room, 0 otherwise.
        self.keepalive = float(welcome[9]) if len(welcome) > 9 and welcome[9] else 0.0
        self.quiet = self.keepalive > 0
        self.silence: float | None = (max(MIN_SILENCE, 3 * self.keepalive) if watchdog
                                      else None)
        self.last_quiet = -1  # the tick of the last QUIET keep-alive
        if ping_interval and self.quiet:
            ping_interval = max(ping_interval, self.keepalive)  # the keep-alive says enough
        self.state = Replica(self.schema)
        self.events: deque[Event] = deque(maxlen=history)
        self.messages: deque[Message] = deque(maxlen=history)
        self.errors: deque[ServerError] = deque(maxlen=history)
        self.rtt: float | None = None
        self.server_tick = -1  # from the last PONG
        self.updates = 0  # updates applied since the room was joined
        self.reconnects = 0
        self.connected = True
        self.closed = False
        self.close_code: int | None = None
        self.close_reason = ""
        self._seq = 0
        self._pending: dict[int, Any] = {}  # sent, not yet acknowledged or refused: seq -> input
        # After a reconnection: inputs are held back (only kept) until the new snapshot's
        # ack is known and the unacknowledged ones have been sent again, in seq order.
        self._resync = False
        self._awaiting_snapshot = False
        self._leaving = False
        self.auto_reconnect = auto_reconnect
        self._delays = tuple(reconnect_delays)
        self._ping_interval = ping_interval
        self._callbacks: dict[str, dict[str, list[Callback]]] = {
            k: {} for k in ("add", "change", "remove", "event", "message")}
        self._on_update: list[Callback] = []
        self._on_leave: list[Callback] = []
        self._on_error: list[Callback] = []
        self._on_reconnect: list[Callback] = []
        self._wake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._background: set[asyncio.Task[Any]] = set()
        self._task = asyncio.create_task(self._run(), name=f"room {self.room_id}")
        self._pinger = (asyncio.create_task(self._ping_loop(), name=f"pings {self.room_id}")
                        if ping_interval else None)

    def __repr__(self) -> str:
        who = "spectator" if self.spectator else f"player {self.player_id}"
        return (f"<Room {self.game} {self.room_id} {who} tick {self.tick}"
                f"{' closed' if self.closed else ''}>")

    # -- reading ---------------------------------------------------------------

    @property
    def tick(self) -> int:
        """The tick of the last update applied (-1 before the first)."""
        return self.state.tick

    @property
    def ack(self) -> int:
        """The seq of this player's last input the server has applied (0 before any)."""
        return self.state.ack

    @property
    def pending_inputs(self) -> list[tuple[int, Any]]:
        """Inputs sent and neither acknowledged nor refused yet, as ``(seq, input)``."""
        return sorted(self._pending.items())

    def entities(self, type_name: str | None = None) -> list[ReplicaEntity]:
        """The entities in the replica, of one type if given, in id order."""
        return [e for _, e in sorted(self.state.entities.items())
                if type_name is None or e.type == type_name]

    # -- callbacks ---------------------------------------------------------------

    def on_add(self, type_name: str, fn: Callable[[ReplicaEntity], Any]) -> Callback:
        """``fn(entity)`` for each entity of ``type_name`` (``"*"``: any) that appears."""
        return self._register("add", type_name, fn)

    def on_change(self, type_name: str,
                  fn: Callable[[ReplicaEntity, dict[str, Any]], Any]) -> Callback:
        """``fn(entity, changed)`` when an entity's fields change; ``changed`` maps
        the changed fields to their previous values."""
        return self._register("change", type_name, fn)

    def on_remove(self, type_name: str, fn: Callable[[ReplicaEntity], Any]) -> Callback:
        """``fn(entity)`` (as it last was) for each entity of ``type_name`` that goes."""
        return self._register("remove", type_name, fn)

    def on_event(self, kind: str, fn: Callback) -> Callback:
        """``fn(body)`` for each room event of ``kind``; with ``"*"``: ``fn(kind, body)``."""
        return self._register("event", kind, fn)

    def on_message(self, kind: str, fn: Callback) -> Callback:
        """``fn(body)`` for each MESSAGE of ``kind`` to this player; ``"*"``: ``fn(kind, body)``."""
        return self._register("message", kind, fn)

    def on_update(self, fn: Callable[[Room], Any]) -> Callback:
        """``fn(room)`` after each SNAPSHOT or DELTA is applied (after the entity and
        event callbacks): ``room.tick``, ``room.ack`` and ``room.state`` are that update's."""
        self._on_update.append(fn)
        return fn

    def on_error(self, fn: Callable[[ServerError], Any]) -> Callback:
        """``fn(error)`` for each ERROR the server sends (a refused input has its seq)."""
        self._on_error.append(fn)
        return fn

    def on_reconnect(self, fn: Callable[[], Any]) -> Callback:
        """``fn()`` after a dropped connection was resumed (the seat is the same)."""
        self._on_reconnect.append(fn)
        return fn

    def on_leave(self, fn: Callable[[int, str], Any]) -> Callback:
        """``fn(code, reason)`` once, when the room ends for good (no reconnection)."""
        self._on_leave.append(fn)
        return fn

    def _register(self, what: str, key: str, fn: Callback) -> Callback:
        self._callbacks[what].setdefault(key, []).append(fn)
        return fn

    def _call(self, fns: list[Callback], *args: Any) -> None:
        for fn in list(fns):
            try:
                result = fn(*args)
                if inspect.isawaitable(result):  # a coroutine callback runs as a task
                    self._spawn(result)
            except Exception:
                log.exception("gameserver.client: a room callback raised")

    def _spawn(self, awaitable: Awaitable[Any]) -> None:
        async def run() -> None:
            try:
                await awaitable
            except Exception:
                log.exception("gameserver.client: a room callback raised")

        task = asyncio.create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _keyed(self, what: str, key: str, *args: Any) -> None:
        table = self._callbacks[what]
        if key in table:
            self._call(table[key], *args)
        if _ANY in table:
            self._call(table[_ANY], *((key, *args) if what in ("event", "message") else args))

    # -- waiting -------------------------------------------------------------------

    async def wait_for(self, predicate: Callable[[], Any], timeout: float | None = 5.0) -> None:
        """Wait until ``predicate()`` is true; it is checked now and after every message.

        Raises TimeoutError, or :class:`RoomClosed` if the room ends first.
        """
        async with asyncio.timeout(timeout):
            while not predicate():
                if self.closed:
                    raise RoomClosed(self.close_code or CLOSE_ABNORMAL, self.close_reason)
                await asyncio.shield(self._wake)

    async def next_update(self, timeout: float | None = 5.0) -> int:
        """Wait for the next SNAPSHOT or DELTA to be applied; its tick."""
        count = self.updates
        await self.wait_for(lambda: self.updates > count, timeout)
        return self.tick

    async def wait_closed(self, timeout: float | None = None) -> int:
        """Wait until the room has ended for good; the final close code."""
        async with asyncio.timeout(timeout):
            await asyncio.shield(self._task)
        return self.close_code or CLOSE_ABNORMAL

    def _notify(self) -> None:
        wake, self._wake = self._wake, asyncio.get_running_loop().create_future()
        wake.set_result(None)

    # -- sending ---------------------------------------------------------------------

    async def send_input(self, data: Any) -> int:
        """Send one INPUT; its seq (1, 2, ...). It is kept until an update's ``ack``
        covers it or the server refuses it (an entry in ``errors`` with this seq), and
        sent again after a reconnection if the new snapshot's ``ack`` does not cover it.
        While disconnected it is only kept, and sent after the reconnection.
        Send ``None`` once when a held control is let go: it ends the input stream, so
        the server stops standing in for late inputs (docs/PROTOCOL.md §2, *Inputs*).
        A spectator raises :class:`SpectatorError`."""
        self._refuse_spectator("inputs")
        if self.closed or self._leaving:
            raise RoomClosed(self.close_code or CLOSE_ABNORMAL, self.close_reason)
        # After the ack too: the server may have stood in for a seq we never sent (§2, Inputs).
        seq = self._seq = max(self._seq, self.state.ack) + 1
        self._pending[seq] = data
        if self.connected and not self._resync:
            await self._send((codec.C_INPUT, seq, data))
        return seq

    async def send(self, kind: str, body: Any = None) -> None:
        """Send a room MESSAGE (``@message(kind, ...)`` handlers). Dropped while
        disconnected. A spectator raises :class:`SpectatorError`."""
        self._refuse_spectator("room messages")
        if self.closed or self._leaving:
            raise RoomClosed(self.close_code or CLOSE_ABNORMAL, self.close_reason)
        await self._send((codec.C_MESSAGE, kind, body))

    def _refuse_spectator(self, what: str) -> None:
        if self.spectator:
            raise SpectatorError(f"a spectator cannot send {what} (room {self.room_id})")

    async def ping(self) -> None:
        """Send a PING now; the PONG updates ``rtt``."""
        await self._send((codec.C_PING, asyncio.get_running_loop().time()))

    async def _send(self, message: tuple[Any, ...]) -> None:
        if not self.connected:
            return
        try:
            await self.ws.send_bytes(msgpack.packb(message))
        except (ConnectionError, aiohttp.ClientError, RuntimeError):
            pass  # the socket is going; the receive task notices and reconnects

    async def _resend(self) -> None:
        """Send the kept inputs again (all above the snapshot's ack), and the ones kept
        meanwhile, in seq order; then inputs go straight out again."""
        ws, sent = self.ws, 0
        while todo := [(s, d) for s, d in sorted(self._pending.items()) if s > sent]:
            for seq, data in todo:
                if self.ws is not ws:  # dropped again: the next snapshot starts over
                    return
                await self._send((codec.C_INPUT, seq, data))
                sent = seq
        self._resync = False

    async def _ping_loop(self) -> None:
        assert self._ping_interval
        while not self.closed:
            if self.connected:
                await self.ping()
            await asyncio.sleep(self._ping_interval)

    # -- leaving ------------------------------------------------------------------------

    async def leave(self, timeout: float = 5.0) -> int:
        """Leave on purpose: LEAVE, then wait for the server's close (1000). The seat is
        freed (a spectator's place too). Returns the close code. Safe to call twice."""
        if self.closed:
            return self.close_code or CLOSE_ABNORMAL
        self._leaving = True
        if self.connected:
            await self._send((codec.C_LEAVE,))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await asyncio.shield(self._task)
        return await self.close()

    async def close(self) -> int:
        """Stop: close the socket (1000, which also gives up the seat), stop reconnecting,
        and wait for the background task. Returns the final close code."""
        self._leaving = True
        if not self._task.done():
            if self.connected:
                await self.ws.close()  # the receive task sees the end and stops
            else:
                self._task.cancel()  # waiting to reconnect
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        return self.close_code or CLOSE_ABNORMAL

    async def __aenter__(self) -> Room:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.leave()

    # -- the receive task ------------------------------------------------------------------

    async def _run(self) -> None:
        code, reason = CLOSE_ABNORMAL, ""
        try:
            while True:
                code, reason = await self._read(self.ws)
                self.connected = False
                self._notify()
                if self._leaving or not self.auto_reconnect or not should_reconnect(code):
                    break
                log.info("gameserver.client: room %s closed with %s; reconnecting",
                         self.room_id, code)
                resumed = await self._reconnect()
                if resumed is not None:
                    code, reason = resumed
                    break
        except asyncio.CancelledError:
            code = self.ws.close_code or code
        except Exception:  # a bug: end the room visibly rather than leave it hanging
            log.exception("gameserver.client: room %s failed", self.room_id)
            code, reason = CLOSE_ABNORMAL, "client error"
            await self.ws.close()
        finally:
            self._finish(code, reason)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> tuple[int, str]:
        """Dispatch this socket's messages until it ends; its close code and reason."""
        while True:
            try:
                msg = await ws.receive(timeout=self.silence)
            except TimeoutError:  # nothing at all, not even a keep-alive: the link is gone
                log.info("gameserver.client: room %s silent for %.1f s; reconnecting",
                         self.room_id, self.silence)
                with contextlib.suppress(Exception):  # not 1000: that would give up the seat
                    async with asyncio.timeout(1.0):
                        await ws.close(code=CLOSE_SILENT, message=b"silent")
                return CLOSE_ABNORMAL, "silent"
            if msg.type is aiohttp.WSMsgType.BINARY:
                try:
                    message = msgpack.unpackb(msg.data)
                except Exception:
                    log.warning("gameserver.client: an undecodable frame")
                    continue
                try:
                    self._dispatch(message)
                except (ReplicaError, LookupError, TypeError, ValueError) as exc:
                    if not (isinstance(message, list) and message
                            and message[0] in (codec.S_SNAPSHOT, codec.S_DELTA)):
                        log.warning("gameserver.client: a malformed message: %r", message)
                        continue
                    # The replica cannot follow: start again from a snapshot, as the
                    # browser does (close with 4090 and resume the seat).
                    log.warning("gameserver.client: resyncing after a bad update: %r", exc)
                    await ws.close(code=CLOSE_DESYNC, message=b"desync")
                    return CLOSE_DESYNC, "desync"
                self._notify()
            elif msg.type is aiohttp.WSMsgType.CLOSE:  # the server's close frame
                return int(msg.data), str(msg.extra or "")
            elif msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING,
                              aiohttp.WSMsgType.ERROR):
                # No close frame from the server: a cut (aiohttp reports an EOF as
                # 1000, which it is not), unless we closed it ourselves.
                return (ws.close_code or codec.CLOSE_NORMAL) if self._leaving else (
                    CLOSE_ABNORMAL), ""

    def _dispatch(self, message: list[Any]) -> None:
        kind = message[0]
        if kind in (codec.S_SNAPSHOT, codec.S_DELTA):
            self._update(message)
        elif kind == codec.S_PONG:
            sample = asyncio.get_running_loop().time() - message[1]
            self.rtt = sample if self.rtt is None else 0.7 * self.rtt + 0.3 * sample
            self.server_tick = message[2]
        elif kind == codec.S_QUIET:  # a quiet room is alive; nothing changed since then
            self.last_quiet = message[1]
        elif kind == codec.S_MESSAGE:
            self.messages.append(Message(message[1], message[2]))
            self._keyed("message", message[1], message[2])
        elif kind == codec.S_ERROR:
            error = ServerError(message[1], message[2],
                                message[3] if len(message) > 3 else None)
            if error.seq is not None:
                self._pending.pop(error.seq, None)
            self.errors.append(error)
            self._call(self._on_error, error)

    def _update(self, message: list[Any]) -> None:
        watching = any(self._callbacks[k] for k in ("add", "change", "remove"))
        before = {eid: (e, dict(e.values)) for eid, e in self.state.entities.items()
                  } if watching else {}
        self.state.apply(message)
        self.updates += 1
        ack = self.state.ack
        for seq in [s for s in self._pending if s <= ack]:
            del self._pending[seq]
        if self._awaiting_snapshot and message[0] == codec.S_SNAPSHOT:
            self._awaiting_snapshot = False
            self._spawn(self._resend())
        if watching:
            self._entity_callbacks(before)
        for kind, body in self.state.events:
            self.events.append(Event(self.state.tick, kind, body))
            self._keyed("event", kind, body)
        self._call(self._on_update, self)

    def _entity_callbacks(self, before: dict[int, tuple[ReplicaEntity, dict[str, Any]]]
                          ) -> None:
        now = self.state.entities
        for eid, (entity, _) in before.items():
            if eid not in now or now[eid].type != entity.type:
                self._keyed("remove", entity.type, entity)
        for eid, entity in now.items():
            old = before.get(eid)
            if old is None or old[0].type != entity.type:
                self._keyed("add", entity.type, entity)
                continue
            changed = {k: v for k, v in old[1].items() if entity.values.get(k) != v}
            if changed:
                self._keyed("change", entity.type, entity, changed)

    async def _reconnect(self) -> tuple[int, str] | None:
        """Resume the seat with the reconnection token (a spectator: with a new pass to
        the same room), with back-off. None when resumed; else the (code, reason) the
        room ends with."""
        last: tuple[int, str] = (CLOSE_ABNORMAL, "gave up reconnecting")
        for delay in self._delays:
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            if self._leaving:
                return codec.CLOSE_NORMAL, "left"
            token = self.reconnect_token
            if not token and not self.spectator:
                return CLOSE_ABNORMAL, "no reconnection token (--reconnect-grace 0)"
            try:
                if self.spectator:
                    url = str((await self.client.spectator_pass(self.game, self.room_id)
                               )["ws_url"])
                else:
                    url = await self.client.reconnect_url(str(token))
                ws, welcome = await self.client.open_socket(url)
            except MatchmakeError as exc:
                if exc.code in _TRANSIENT:
                    last = (CLOSE_ABNORMAL, str(exc))
                    continue
                if self.spectator and exc.code == "spectators_full":
                    return codec.CLOSE_JOIN_REFUSED, str(exc)  # as the socket would say
                if self.spectator and exc.code == "no_such_room":
                    return codec.CLOSE_ROOM_CLOSED, str(exc)
                return codec.CLOSE_BAD_RESERVATION, str(exc)  # no_such_room: the room is gone
            except ConnectError as exc:
                if exc.error is not None:
                    self.errors.append(exc.error)
                    self._call(self._on_error, exc.error)
                if should_reconnect(exc.code):  # never reached the room: the token is good
                    last = (exc.code, exc.reason)
                    continue
                return exc.code, exc.reason
            if self._leaving:
                await ws.close()
                return codec.CLOSE_NORMAL, "left"
            if welcome[2] != self.room_id or welcome[4] != self.player_id:
                await ws.close()  # cannot happen with a good server: a token names its seat
                return CLOSE_DESYNC, ("watching a different room" if self.spectator
                                      else "resumed a different seat")
            self.ws, self.ws_url = ws, url
            self.reconnect_token = welcome[8]
            # The replica stays as it was (and readable) until the next update, a
            # snapshot that restores the world exactly: entity callbacks then report
            # only what changed while the connection was down.
            self._resync = self._awaiting_snapshot = True
            self.connected = True
            self.reconnects += 1
            self._call(self._on_reconnect)
            self._notify()
            return None
        return last

    def _finish(self, code: int, reason: str) -> None:
        self.connected = False
        self.closed = True
        self.close_code, self.close_reason = code, reason
        if self._pinger is not None:
            self._pinger.cancel()
        self.client._forget(self)
        self._notify()
        self._call(self._on_leave, code, reason)
