"""A test harness for game authors: a room of your game, players, ticks, and what each
player would receive. No sockets, no event loop, no server::

    from gameserver.testing import RoomHarness
    from coins import Coins  # the README's example game

    def test_an_input_moves_the_coin() -> None:
        room = RoomHarness(Coins)
        ann = room.join("ann")
        ann.input("right")
        room.tick()
        assert ann.ack == 1
        assert ann.entity("Coin").values == {"x": 51, "y": 50, "owner": "ann"}
        assert ann.events_of("hello") == ["ann"]

It runs the server's own code: the room's :class:`~gameserver.core.engine.RoomEngine`
(seats, input queues and credits, stepping, encoding) and the server's send path
(:class:`~gameserver.host.room_host.Broadcaster`), writing to in-memory sockets. Each
player decodes its bytes with the reference decoder
(:class:`~gameserver.core.replica.Replica`), so what a test reads is what a real
client would have reconstructed.

A hook that raises makes the call that ran it raise :class:`RoomCrashed` (with the
game's exception as its cause), unless the room's ``on_error`` keeps the room; every
player is then closed with 1011 and the harness refuses to go on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgpack

from gameserver.core import codec
from gameserver.core.engine import RoomCrashed, RoomEngine, Seat
from gameserver.core.limits import Limits
from gameserver.core.replica import Replica, ReplicaEntity
from gameserver.core.room import JoinRefused, Room
from gameserver.host.room_host import Broadcaster, Connection, Watcher
from gameserver.host.tokens import ReconnectTokens

__all__ = ["HarnessPlayer", "JoinRefused", "RoomCrashed", "RoomHarness", "run_ticks"]


class _MemorySocket:
    """A transport that keeps what is written: one server frame per write.

    It is read at once, so it claims no backlog unless a test makes it ``backlog``
    bytes behind (``HarnessPlayer.slow``): then the slow-client rules apply."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closing = False
        self.backlog = 0

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def get_write_buffer_size(self) -> int:
        return self.backlog

    def is_closing(self) -> bool:
        return self.closing

    def abort(self) -> None:
        self.closing = True


def _payload(frame: bytes) -> bytes:
    """The payload of one unmasked server frame."""
    n = frame[1] & 0x7F
    if n == 126:
        return frame[4:]
    if n == 127:
        return frame[10:]
    return frame[2:]


class HarnessPlayer:
    """One player of a :class:`RoomHarness`, and everything it has received."""

    def __init__(self, harness: RoomHarness, name: str) -> None:
        self.harness = harness
        self.name = name
        self.id = 0
        self.welcome: list[Any] = []
        self.config: dict[str, Any] = {}
        self.replica: Replica | None = None
        self.updates = 0  # snapshots and deltas received
        self.events: list[tuple[str, Any]] = []  # (kind, body) of every update's events
        self.messages: list[tuple[str, Any]] = []  # direct messages: (kind, body)
        self.errors: list[list[Any]] = []  # ERROR messages: [code, message(, seq)]
        self.received: list[list[Any]] = []  # every server message, decoded, in order
        self.quiet: list[int] = []  # the ticks of the QUIET keep-alives received
        self.closed: tuple[int, str] | None = None  # (close code, reason) once closed
        self.seq = 0  # the last input seq sent
        self.spectator = False  # watching (RoomHarness.watch): player id 0, no seat
        self.seat: Seat | None = None
        self._socket: _MemorySocket | None = None
        self._conn: Connection | None = None
        self._token: str | None = None

    # -- what a client does -------------------------------------------------------

    def input(self, data: Any, seq: int | None = None) -> int:
        """Send one input, numbered like a real client (after both its last seq and the
        ``ack``, which a stood-in input can take past it) or with ``seq`` (to test a stale
        or out-of-order one); its seq. ``input(None)``: nothing held (the stream ends)."""
        self.seq = max(self.seq, self.ack) + 1 if seq is None else seq
        self.send_raw(codec.encode(codec.C_INPUT, self.seq, data))
        return self.seq

    def send(self, kind: str, body: Any) -> None:
        """Send a room message (e.g. ``send("chat", "hi")``)."""
        self.send_raw(codec.encode(codec.C_MESSAGE, kind, body))

    def send_raw(self, data: bytes) -> None:
        """Send one WebSocket message's bytes as they are, hostile or not.

        They reach the room's engine as a binary message: the WebSocket layer's own
        rules (1009 for an oversized frame, text frames, per-connection budgets) are
        the server's, not the room's, and are not run here."""
        if self.spectator:
            raise RuntimeError(f"{self.name} is a spectator: it sends nothing here")
        if self._conn is None or self.seat is None:
            raise RuntimeError(f"{self.name} is not connected")
        self.harness._receive(self, data)

    def leave(self) -> None:
        """Leave the room on purpose (the client's LEAVE): the seat is freed."""
        self.send_raw(codec.encode(codec.C_LEAVE))

    def drop(self) -> None:
        """Lose the connection without leaving: the seat waits for :meth:`reconnect`."""
        self.harness._disconnect(self, consented=False)

    @property
    def slow(self) -> bool:
        """Whether this player's socket claims to be behind (more than the send high
        water mark buffered). While slow, the server skips its updates (and best-effort
        messages); once it is not, the next update is a snapshot. Slow for longer than
        ``stall_timeout``, the server cuts the socket: the player is dropped. A new
        socket (after :meth:`reconnect`) is not slow."""
        return self._socket is not None and self._socket.backlog > 0

    @slow.setter
    def slow(self, value: bool) -> None:
        if self._conn is None or self._socket is None:
            raise RuntimeError(f"{self.name} is not connected")
        self._socket.backlog = self.harness.limits.send_high_water + 1 if value else 0

    def reconnect(self) -> None:
        """Come back after :meth:`drop` with the last welcome's reconnection token.

        Refused as the server refuses it (the seat was freed: grace over, kicked):
        an ERROR ``reconnect_refused`` and close 4001, no exception."""
        self.harness._reconnect(self)

    # -- what it has received -----------------------------------------------------

    @property
    def ack(self) -> int:
        """The last input seq the server applied, as the last update said."""
        return self.replica.ack if self.replica is not None else 0

    @property
    def connected(self) -> bool:
        return self._conn is not None

    def entities(self, type_name: str | None = None) -> list[ReplicaEntity]:
        """The entities this player knows of (of one type), in id order."""
        if self.replica is None:
            return []
        return [e for _, e in sorted(self.replica.entities.items())
                if type_name is None or e.type == type_name]

    def entity(self, type_name: str, **match: Any) -> ReplicaEntity:
        """The one entity of ``type_name`` whose fields equal ``match``."""
        found = [e for e in self.entities(type_name)
                 if all(e.values.get(k) == v for k, v in match.items())]
        if len(found) != 1:
            raise LookupError(f"{len(found)} {type_name} entities match {match}")
        return found[0]

    def events_of(self, kind: str) -> list[Any]:
        """The bodies of the events of ``kind`` received so far."""
        return [body for k, body in self.events if k == kind]

    def _read(self) -> None:
        socket = self._socket
        if socket is None:
            return
        written, socket.written = socket.written, []
        for frame in written:
            self._handle(msgpack.unpackb(_payload(frame), strict_map_key=False))

    def _handle(self, msg: list[Any]) -> None:
        self.received.append(msg)
        kind = msg[0]
        if kind == codec.S_WELCOME:
            self.welcome = msg
            self.id, schema, self.config, self._token = msg[4], msg[6], msg[7], msg[8]
            if self.replica is None:
                self.replica = Replica(schema)
        elif kind in (codec.S_SNAPSHOT, codec.S_DELTA):
            assert self.replica is not None, "an update before the welcome"
            self.replica.apply(msg)
            self.updates += 1
            self.events.extend((e[0], e[1]) for e in self.replica.events)
        elif kind == codec.S_MESSAGE:
            self.messages.append((msg[1], msg[2]))
        elif kind == codec.S_ERROR:
            self.errors.append(msg[1:])
        elif kind == codec.S_QUIET:
            self.quiet.append(msg[1])

    def __repr__(self) -> str:
        return f"HarnessPlayer(id={self.id}, name={self.name!r})"


class RoomHarness:
    """A room of one game, driven by hand: ``join``, then ``tick`` and look.

    ``tick_rate`` defaults to the game's own or 20 Hz; ``limits`` to the server's
    defaults (room-message budget, reconnection grace, message size, player cap...).
    Time is simulated: each tick advances ``now`` by one step, :meth:`advance` by any
    amount; either ends the grace of dropped players, as the server's sweep does.
    ``listing`` is what matchmaking would show of the room (``locked``, ``metadata``),
    republished when a hook changes it. Sockets fall behind only when a test says so
    (``player.slow = True``), and there is no heartbeat. :meth:`watch` adds a spectator.

    A ``quiet`` room runs as on the server: an update only at a tick where something
    changed, and once nothing happens it is ``dormant``: :meth:`tick` then only moves
    ``room.tick`` on (``slept`` counts those ticks; no ``update``) until a player acts,
    a seat changes or the room's ``wake_at`` tick comes, with a QUIET keep-alive to
    everyone each ``keepalive`` seconds of simulated time without an update.
    """

    def __init__(self, game: type[Room], options: dict[str, Any] | None = None, *,
                 tick_rate: float | None = None, limits: Limits | None = None,
                 room_id: str = "test-room", private: bool = False) -> None:
        defaults = _default_settings()
        self.limits = limits or Limits.from_settings(defaults)
        rate = tick_rate or game.tick_rate or defaults.tick_rate
        self.options = dict(options or {})
        self.room: Room = game(room_id, rate, self.options, private)
        self.room.on_create(self.options)
        # As matchmaking does: on_create may lower max_players, the server caps it.
        self.room.max_players = max(1, min(self.room.max_players,  # type: ignore[misc]
                                           self.limits.max_players))
        self.engine = RoomEngine(self.room, max_message_size=self.limits.max_message_size,
                                 message_rate=self.limits.message_rate,
                                 message_bytes=self.limits.message_bytes,
                                 reconnect_grace=self.limits.reconnect_grace)
        self.broadcaster = Broadcaster(self.limits.send_high_water, self.limits.send_low_water,
                                       self.limits.stall_timeout)
        self.engine.out.listing_changed = False  # on_create's is the first listing itself
        self.listing: dict[str, Any] = self._listing()
        self.now = 0.0
        self.players: list[HarnessPlayer] = []
        self.spectators: list[HarnessPlayer] = []
        self.closed = False
        self._connections: dict[int, Connection] = {}
        self._watching: dict[HarnessPlayer, Connection] = {}
        self._tokens = ReconnectTokens(self.limits.reconnect_grace)
        self.dormant = False  # a quiet room with nothing happening: no ticks run
        self.slept = 0  # ticks a quiet room slept through
        self._woken = False
        self._last_sent = 0.0  # simulated time of the last update or keep-alive

    # -- driving the room -----------------------------------------------------------

    def join(self, name: str = "player", options: dict[str, Any] | None = None,
             auth: dict[str, Any] | None = None) -> HarnessPlayer:
        """Seat a player (``on_join_request``, ``on_join``); raises :class:`JoinRefused`.

        It gets its snapshot with the next :meth:`tick`, as on the server."""
        self._check_open()
        # Matchmaking's refusals (room_full, room_locked), as a JoinRefused here.
        if len(self.room.players) >= self.room.max_players:
            raise JoinRefused("the room is full")
        if self.room.locked:
            raise JoinRefused("the room takes no new players")
        player = HarnessPlayer(self, name)
        room_id, pid = self.room.room_id, self.engine.next_player_id
        try:
            seat = self.engine.join(name, options or {}, auth,
                                    self._tokens.issue(room_id, pid))
        except (JoinRefused, RoomCrashed):
            self._tokens.forget(room_id, pid)
            self._drain()  # what the hooks decided before failing (a crash raises here)
            raise
        # Listed before the welcome is drained, so that it (and what on_join sent) is
        # read at once: player.id is known when join returns.
        self.players.append(player)
        self._attach(player, seat)
        return player

    def watch(self, name: str = "spectator") -> HarnessPlayer:
        """A spectator: welcomed with player id 0, then sent every update (its snapshot
        with the next :meth:`tick`). It sends nothing; :meth:`HarnessPlayer.drop` ends
        it. The server's cap on spectators is not applied here."""
        self._check_open()
        watcher = HarnessPlayer(self, name)
        watcher.spectator = True
        socket = _MemorySocket()
        conn = Connection(socket, Watcher(),
                          lambda code, reason: self._watch_closed(watcher, code, reason))
        watcher._socket, watcher._conn = socket, conn
        self.spectators.append(watcher)
        self._watching[watcher] = conn
        conn.send_now(self.engine.spectator_welcome())
        watcher._read()
        self._woken = True
        return watcher

    def tick(self, n: int = 1) -> None:
        """Run ``n`` ticks, each followed by an update to every connected player."""
        engine = self.engine
        if self.room.quiet:
            for _ in range(n):
                self._quiet_tick()
            return
        for _ in range(n):
            self._check_open()
            self.now += self.room.dt
            self._expire()
            engine.tick()
            self._drain()
            self.broadcaster.send([*self._connections.values(), *self._watching.values()],
                                  engine.collect(), engine.snapshot_tail, self.now,
                                  self.room.world.views)
            self._read_all()
            self._cut_stalled()

    def _quiet_tick(self) -> None:
        """One tick of a quiet room, as RoomHost._run_quiet (_quiet_update, _sleep) runs it."""
        engine, room = self.engine, self.room
        self._check_open()
        self.now += room.dt
        self._expire()
        sockets = [*self._connections.values(), *self._watching.values()]
        if self.dormant:
            wake = engine.next_wake()
            if not self._woken and (wake is None or wake > room.tick):
                engine.skip(1)
                self.slept += 1
                if self.now - self._last_sent >= room.keepalive - 1e-9:
                    self._keepalive(sockets)
                return
            self.dormant = False
        self._woken = False
        engine.tick()
        self._drain()
        sockets = [*self._connections.values(), *self._watching.values()]
        unsynced = any(not c.synced for c in sockets)
        tail = engine.collect_changed(unsynced)
        if tail is not None:
            self.broadcaster.send(sockets, tail, engine.snapshot_tail, self.now,
                                  room.world.views)
            self._last_sent = self.now
            self._read_all()
        elif self.now - self._last_sent >= room.keepalive - 1e-9:
            self._keepalive(sockets)
        self._cut_stalled()
        if tail is None and not unsynced and not engine.out.pending and engine.idle():
            self.dormant = True

    def _keepalive(self, sockets: list[Connection]) -> None:
        data = codec.encode(codec.S_QUIET, self.engine.last_update_tick)
        for conn in sockets:
            conn.send_now(data)
        self._last_sent = self.now
        self._read_all()

    def advance(self, seconds: float) -> None:
        """Let time pass without ticking: dropped players whose grace is over leave."""
        self._check_open()
        self.now += seconds
        self._expire()

    # -- what the harness does for a player -------------------------------------------

    def _listing(self) -> dict[str, Any]:
        return {"locked": self.room.locked, "metadata": dict(self.room.metadata)}

    def _expire(self) -> None:
        for seat in self.engine.expire(self.now):
            self._tokens.forget(self.room.room_id, seat.player.id)
            self._woken = True
        self._drain()

    def _attach(self, player: HarnessPlayer, seat: Seat) -> None:
        socket = _MemorySocket()
        conn = Connection(socket, seat, lambda code, reason: self._closed(player, code, reason))
        player.seat, player._socket, player._conn, player.closed = seat, socket, conn, None
        self._connections[seat.player.id] = conn
        self._woken = True
        self._drain()

    def _receive(self, player: HarnessPlayer, data: bytes) -> None:
        self._check_open()
        assert player.seat is not None
        self.engine.receive(player.seat, data, self.now)
        if data[:2] != b"\x92\x03":  # a ping does not wake a quiet room (RoomHost)
            self._woken = True
        self._drain()

    def _cut_stalled(self) -> None:
        """Sockets the send path cut (behind for too long) are lost connections."""
        for player in [*self.players, *self.spectators]:
            if player._conn is not None and player._socket is not None \
                    and player._socket.closing:
                player.drop()

    def _unwatch(self, watcher: HarnessPlayer) -> None:
        self._watching.pop(watcher, None)
        watcher._conn = None

    def _watch_closed(self, watcher: HarnessPlayer, code: int, reason: str) -> None:
        watcher._read()
        watcher.closed = (code, reason)
        self._unwatch(watcher)

    def _disconnect(self, player: HarnessPlayer, consented: bool) -> None:
        if player.spectator:
            self._unwatch(player)
            return
        conn = player._conn
        if conn is None or player.seat is None:
            raise RuntimeError(f"{player.name} is not connected")
        del self._connections[player.seat.player.id]
        player._conn = None
        if consented or conn.leaving or self.limits.reconnect_grace <= 0:
            self.engine.leave(player.seat, consented or conn.leaving)
            self._tokens.forget(self.room.room_id, player.seat.player.id)
        else:
            self.engine.drop(player.seat, self.now)
        self._woken = True
        self._drain()

    def _reconnect(self, player: HarnessPlayer) -> None:
        self._check_open()
        seat = player.seat
        if player.spectator:
            raise RuntimeError(f"{player.name} is a spectator: watch() again")
        if player._conn is not None or seat is None:
            raise RuntimeError(f"{player.name} is connected or never joined")
        token = player._token
        if token is None or self._tokens.redeem(token) is None:
            # What the server answers a stale token with, on a socket that never joins.
            player._handle([codec.S_ERROR, "reconnect_refused",
                            "the reconnection token is unknown or used, or the seat "
                            "was released"])
            player.closed = (codec.CLOSE_BAD_RESERVATION, "reconnect_refused")
            return
        try:
            self.engine.rejoin(seat, self._tokens.issue(self.room.room_id, seat.player.id))
        except RoomCrashed:
            self._drain()  # raises
            raise
        self._attach(player, seat)

    def _closed(self, player: HarnessPlayer, code: int, reason: str) -> None:
        """The server closed this player's socket (a kick, a leave, the room closing)."""
        player._read()
        player.closed = (code, reason)
        if player._conn is not None and player.seat is not None and \
                self._connections.get(player.seat.player.id) is player._conn:
            self._disconnect(player, consented=False)
        player._conn = None  # also when the room crashed: no socket is left to send on

    def _drain(self) -> None:
        engine = self.engine
        if not engine.out.pending:
            self._read_all()
            return
        frames, closes, listing_changed = engine.drain()
        for pid, payload in frames:
            conn = self._connections.get(pid)
            if conn is not None:
                conn.send_now(payload)
        self._read_all()
        for pid, code, reason in closes:
            conn = self._connections.get(pid)
            if conn is not None and not conn.leaving:
                conn.leaving = True
                conn.close(code, reason)
        if listing_changed and not self.closed:
            self.listing = self._listing()
        if engine.crashed is not None:
            self._crash()
            raise RoomCrashed(str(engine.crashed)) from engine.crashed

    def _crash(self) -> None:
        if self.closed:
            return
        self.closed = True
        # As the host does: let go of every socket first, so that their closing runs no
        # hook (no on_drop) on the crashed room and every player gets its 1011.
        connections = [*self._connections.values(), *self._watching.values()]
        self._connections.clear()
        self._watching.clear()
        for conn in connections:
            conn.detach()
            conn.close(codec.CLOSE_ROOM_CRASHED, "room crashed")
        self.engine.dispose()

    def _read_all(self) -> None:
        for player in self.players:
            player._read()
        for watcher in self.spectators:
            watcher._read()

    def _check_open(self) -> None:
        if self.closed:
            raise RoomCrashed("the room has closed")


def _default_settings() -> Any:
    from gameserver.config import Settings  # stdlib only: no server is loaded by this
    return Settings()


def run_ticks(harness: RoomHarness, until: Callable[[], bool], limit: int = 1000) -> int:
    """Tick until ``until()`` holds (at most ``limit`` ticks); how many ticks it took."""
    for n in range(1, limit + 1):
        harness.tick()
        if until():
            return n
    raise AssertionError(f"not true after {limit} ticks")
