"""A room's sans-I/O engine: seats, input queues, stepping, encoding. No sockets, no loop.

The host feeds the engine events and carries out what it produced, in the way
the ``websockets`` library keeps its protocol apart from its I/O::

    host -> engine:  join(...) / rejoin(seat, ...) / receive(seat, bytes, now)
                     tick() / collect() / drop(seat, now) / leave(seat, ...) / expire(now)
    engine -> host:  engine.out (a room.Outbox): frames and closes per player, whether
                     the listing changed, whether the room crashed; events ride the update

Nothing here holds a transport, a task or a manager, and nothing calls back up:
the host reads ``out.pending`` after each call and drains. ``gameserver.testing``
drives this same engine with a recording host, so a game's tests run the code the
server runs.
"""

from __future__ import annotations

import heapq
import logging
from typing import Any

from gameserver.core import codec
from gameserver.core.codec import Input, Message, Ping, ProtocolError
from gameserver.core.inputs import InputBuffer
from gameserver.core.limits import RateLimiter, Verdict
from gameserver.core.room import (
    InvalidInput,
    JoinRefused,
    Outbox,
    Player,
    Room,
    check_body,
    outbox_of,
)

log = logging.getLogger("gameserver.room")
_decode = codec.decode_client
_LEAD_ONE = codec.encode(codec.S_INPUT_LEAD, 1)


class RoomCrashed(Exception):
    """A hook raised and the game's ``on_error`` did not keep the room: close it (1011)."""


class Seat:
    """The engine's side of one player: their input buffer and budgets."""

    __slots__ = ("budget", "dropped_at", "inputs", "kicked", "player")

    def __init__(self, player: Player, inputs: InputBuffer) -> None:
        self.player = player
        self.inputs = inputs  # queued inputs, taken one per tick (core/inputs.py)
        self.dropped_at: float | None = None  # monotonic seconds, while awaiting a rejoin
        self.budget: RateLimiter | None = None  # room messages, made at the first one
        self.kicked: tuple[int, str] | None = None  # (code, reason) of a kick while away

    def forget_inputs(self) -> None:
        """Discard queued, unapplied inputs: the next snapshot's ack is then final."""
        self.inputs.clear(self.player.ack)


class RoomEngine:
    """Drives one :class:`Room`: the only caller of its hooks.

    ``rejected`` is a plain counter of refused client messages by ERROR code, shared
    with whoever reports metrics (a dict, not a callback).
    """

    def __init__(self, room: Room, *, max_message_size: int, message_rate: float,
                 message_bytes: float, reconnect_grace: float,
                 rejected: dict[str, int] | None = None) -> None:
        self.room = room
        self.out: Outbox = outbox_of(room)
        self.seats: dict[int, Seat] = {}
        self.max_message_size = max_message_size
        self.message_budget = (message_rate, float(message_bytes))
        self.reconnect_grace = reconnect_grace
        self.rejected: dict[str, int] = {} if rejected is None else rejected
        self.crashed: BaseException | None = None
        self.inputs_stood_in = 0  # late inputs the game stood in for (GET /stats)
        self._next_player_id = 1
        self._base_tick = 0  # the tick the last collected update brought clients to
        self._last_events: list[Any] = []  # a snapshot taken now carries them too
        self._sent_acks: dict[int, int] = {}  # a quiet room: the acks of its last update
        # Bound once: the message handlers of the room's class.
        self._handlers = {kind: (getattr(room, name), spec)
                          for kind, (name, spec) in type(room).message_handlers.items()}

    # -- seats -----------------------------------------------------------------

    def join(self, name: str, options: dict[str, Any], auth: dict[str, Any] | None = None,
             reconnect_token: str | None = None) -> Seat:
        """Seat a player: ``on_join_request``, the welcome, then ``on_join``.

        Raises :class:`JoinRefused` (nothing is seated), or :class:`RoomCrashed` (a hook
        failed and ``on_error`` let the room close).
        What ``on_join`` sends or decides lands in ``out`` after the welcome.
        """
        room = self.room
        player = Player(self._next_player_id, name, options, auth)
        try:
            room.on_join_request(player)
        except JoinRefused:
            raise
        except Exception as exc:
            self._join_failed(exc)
        self._next_player_id += 1
        seat = self.seats[player.id] = Seat(player, InputBuffer(room.rate, room.input_buffer))
        room.players[player.id] = player
        self.out.frame(player.id, self._welcome(player.id, reconnect_token))
        try:
            room.on_join(player)
        except Exception as exc:  # undo the seat; on_leave is for players who joined
            del self.seats[player.id]
            room.players.pop(player.id, None)
            out = self.out
            out.frames = [f for f in out.frames if f[0] != player.id]
            out.closes = [c for c in out.closes if c[0] != player.id]
            if isinstance(exc, JoinRefused):
                raise
            self._join_failed(exc)
        return seat

    def rejoin(self, seat: Seat, reconnect_token: str | None = None,
               replaced: bool = False) -> None:
        """Put a dropped player back (or move a connected one to a new socket: ``replaced``).

        The welcome goes first; ``on_rejoin`` runs if the player was dropped. A player
        kicked while away is closed with that kick instead (no ``on_rejoin``)."""
        player = seat.player
        if replaced:  # as on a drop: what the old socket queued is not applied
            seat.forget_inputs()
        was_dropped = seat.dropped_at is not None or not player.connected
        seat.dropped_at = None
        player.connected = True
        self.out.frame(player.id, self._welcome(player.id, reconnect_token))
        if seat.kicked is not None:  # came back before expire() freed the seat: the kick stands
            self.out.close(player.id, *seat.kicked)
            return
        if was_dropped:
            try:
                self.room.on_rejoin(player)
            except Exception as exc:
                self._failed(exc)
                if self.crashed is not None:
                    raise RoomCrashed(str(exc)) from exc

    def _join_failed(self, exc: Exception) -> None:
        self._failed(exc)
        if self.crashed is not None:
            raise RoomCrashed(str(exc)) from exc
        raise JoinRefused("the room could not seat you") from None

    def drop(self, seat: Seat, now: float) -> None:
        """The player's socket was lost: keep the seat for ``reconnect_grace`` seconds and
        forget what was in flight (the client resends after the ack)."""
        player = seat.player
        player.connected = False
        seat.dropped_at = now
        seat.forget_inputs()
        try:
            self.room.on_drop(player)
        except Exception as exc:
            self._failed(exc)

    def leave(self, seat: Seat, consented: bool) -> None:
        """Free the seat; ``on_leave``."""
        player = seat.player
        if self.seats.pop(player.id, None) is None:
            return
        seat.dropped_at = None
        if self.room.players.pop(player.id, None) is not None:
            try:
                self.room.on_leave(player, consented)
            except Exception as exc:
                self._failed(exc)

    def expire(self, now: float) -> list[Seat]:
        """Remove dropped players whose grace is over; the seats freed."""
        grace = self.reconnect_grace
        expired = [s for s in self.seats.values()
                   if s.dropped_at is not None and now - s.dropped_at >= grace]
        for seat in expired:
            self.leave(seat, consented=False)
        return expired

    @property
    def next_player_id(self) -> int:
        """The id the next :meth:`join` gives (so a host can issue its token first)."""
        return self._next_player_id

    @property
    def dropped(self) -> dict[int, float]:
        """Players awaiting a reconnection: id -> when they dropped."""
        return {pid: s.dropped_at for pid, s in self.seats.items() if s.dropped_at is not None}

    # -- client messages ---------------------------------------------------------

    def receive(self, seat: Seat, data: bytes, now: float) -> None:
        """One binary message from a player. Bad input gets an ERROR to the sender only.

        An input is validated and queued in the player's buffer (the hot path: one per
        player per tick, so it is written out here rather than in a helper). An input
        of ``None`` ends the player's stream (nothing held) and is not validated. One
        whose tick the game already filled in (``on_input_missing``: its seq is
        acknowledged) is dropped without an error: it came too late to be used."""
        try:
            msg = _decode(data, self.max_message_size)
            if type(msg) is Input:
                seq = msg.seq
                buffer = seat.inputs
                if seq <= buffer.last_seq:
                    raise ProtocolError(
                        "stale_seq", f"input seq {seq} is not after {buffer.last_seq}", seq)
                room = self.room
                if msg.data is None:
                    buffer.streams = True  # this client marks where its streams end
                if seq <= seat.player.ack:  # stood in for at its tick: too late to apply
                    buffer.last_seq = seq
                    if msg.data is None:
                        buffer.stop()
                    elif buffer.streaming:
                        buffer.missed = 0  # late, not lost: stand-ins may go on
                        if buffer.late():
                            self.out.frame(seat.player.id, _LEAD_ONE)
                    return
                if len(buffer.queue) >= room.max_pending_inputs:
                    raise ProtocolError("input_overflow", f"more than {room.max_pending_inputs}"
                                        " inputs are pending", seq)
                valid = msg.data
                if valid is not None:
                    try:
                        valid = room.validate_input(valid)
                    except InvalidInput as exc:
                        raise ProtocolError("invalid_input", str(exc), seq) from None
                buffer.last_seq = seq
                buffer.queue.append((seq, valid))
            elif type(msg) is Ping:
                self.out.frame(seat.player.id,
                               codec.encode(codec.S_PONG, msg.client_time, self.room.tick))
            elif type(msg) is Message:
                self._message(seat, msg, len(data), now)
            else:  # Leave: the host closes the socket; the seat goes with it
                self.out.close(seat.player.id, codec.CLOSE_NORMAL, "left")
        except ProtocolError as exc:
            self._refuse(seat, exc.code, exc.message, exc.seq)
        except InvalidInput as exc:
            self._refuse(seat, "invalid_input", str(exc))
        except Exception as exc:  # the game's own code failed
            self._failed(exc)

    def _message(self, seat: Seat, msg: Message, size: int, now: float) -> None:
        """A room message: within the player's budget, to its handler."""
        budget = seat.budget
        if budget is None:
            messages_per_s, bytes_per_s = self.message_budget
            budget = seat.budget = RateLimiter(messages_per_s, bytes_per_s, now, burst_s=3.0,
                                               patience=float("inf"),
                                               max_message=self.max_message_size)
        if budget.check(size, now) is not Verdict.OK:  # refusing is enough: never closes
            self._refuse(seat, "message_rate_limited",
                         "too many room messages: this one was dropped")
            return
        handler = self._handlers.get(msg.kind)
        if handler is None:
            self.room.on_message(seat.player, msg.kind, msg.body)
        else:
            method, spec = handler
            method(seat.player, check_body(msg.kind, spec, msg.body))

    def _refuse(self, seat: Seat, code: str, message: str, seq: int | None = None) -> None:
        self.rejected[code] = self.rejected.get(code, 0) + 1  # metrics
        self.out.frame(seat.player.id, codec.encode_error(code, message, seq))

    # -- the tick ----------------------------------------------------------------

    def tick(self) -> None:
        """One fixed step: each player's input for this tick (core/inputs.py), then ``update``."""
        room = self.room
        on_input = room.on_input
        for seat in list(self.seats.values()):
            buffer = seat.inputs
            if not buffer.queue and not buffer.streaming:
                continue  # idle
            player = seat.player
            target = buffer.target
            due = buffer.due()
            if buffer.target > target and buffer.streaming:  # its inputs came late
                self.out.frame(player.id, _LEAD_ONE)
            try:
                if due > 0:
                    queue = buffer.queue
                    for _ in range(due):
                        seq, data = queue.popleft()
                        player.ack = seq  # first: an input that fails is not applied again
                        if data is None:
                            buffer.stop()
                        else:
                            buffer.last = data
                            on_input(player, data)
                elif due < 0:  # late or lost: the game says what this tick does
                    data = room.on_input_missing(player, buffer.last, buffer.missed)
                    if data is None:
                        buffer.stood()
                    else:  # it stands in for the next seq: that input is dropped if it comes
                        player.ack += 1
                        buffer.stood_in += 1
                        self.inputs_stood_in += 1
                        buffer.last = data
                        on_input(player, data)
            except Exception as exc:
                self._failed(exc)
                if self.crashed is not None:
                    return
        try:
            room.update(room.dt)
        except Exception as exc:
            self._failed(exc)
        room.tick += 1

    def collect(self) -> bytes:
        """This update's shared delta tail (encoded once for everyone); marks it sent."""
        return self._encode_update(*self._collect_world())

    def _collect_world(self) -> tuple[list[Any], list[Any], list[int]]:
        room = self.room
        # Views are worked out for the players (the seats) and, with 0, for spectators.
        viewers = self.seats if room.spectator_view == "public" else [*self.seats, 0]
        return room.world.collect(viewers)

    def _encode_update(self, created: list[Any], changed: list[Any],
                       removed: list[int]) -> bytes:
        """The delta tail from the last update to now, with the events since; it becomes
        the base of the next one."""
        room, out = self.room, self.out
        events, out.events = out.events, []
        self._last_events = events
        base, self._base_tick = self._base_tick, room.tick
        return codec.encode_delta_tail(room.tick, base, created, changed, removed, events)

    # -- a quiet room (Room.quiet) ------------------------------------------------------

    def collect_changed(self, force: bool = False) -> bytes | None:
        """A quiet room's :meth:`collect`: the update's delta tail, or None when nothing
        changed for anyone since the last update (no entity created, changed or removed,
        no view part, no event, no player's ack moved) and nothing ``force``s one (a
        socket awaiting its snapshot). None sends nothing and keeps the base: the next
        update's ``base_tick`` is the last update's tick, so the chain stays exact."""
        created, changed, removed = self._collect_world()
        views = self.room.world.views
        acks = {pid: seat.player.ack for pid, seat in self.seats.items()}
        if not (force or created or changed or removed or self.out.events
                or acks != self._sent_acks
                or (views is not None and views.all_delta_parts())):
            return None
        self._sent_acks = acks
        return self._encode_update(created, changed, removed)

    @property
    def last_update_tick(self) -> int:
        """The tick of the last update collected (what a QUIET keep-alive carries)."""
        return self._base_tick

    def idle(self) -> bool:
        """No player has an input queued or a stream running: a tick would apply none."""
        return not any(s.inputs.queue or s.inputs.streaming for s in self.seats.values())

    def next_wake(self) -> int | None:
        """The earliest tick the room asked to run (``Room.wake_at``) that is still to
        come, or None; the ones already run are forgotten."""
        wakes = self.out.wakes
        tick = self.room.tick
        while wakes and wakes[0] < tick:
            heapq.heappop(wakes)
        return wakes[0] if wakes else None

    def skip(self, ticks: int) -> None:
        """A quiet room slept through ``ticks`` ticks: its clock follows the schedule
        (``room.tick`` jumps over them) but no ``update`` ran for them."""
        self.room.tick += ticks

    def snapshot_tail(self) -> bytes:
        """The full state as of the last :meth:`collect`, for joiners and resyncs."""
        return codec.encode_snapshot_tail(self._base_tick, self.room.world.snapshot(),
                                          self._last_events)

    def spectator_welcome(self) -> bytes:
        """A spectator's WELCOME: player id 0 and no reconnection token."""
        return self._welcome(0, None)

    def _welcome(self, player_id: int, reconnect_token: str | None) -> bytes:
        room = self.room
        return codec.encode(codec.S_WELCOME, codec.PROTOCOL_VERSION, room.room_id, room.game,
                            player_id, room.rate, room.world.schema(), room.client_config(),
                            reconnect_token, float(room.keepalive) if room.quiet else 0.0)

    # -- the outbox ----------------------------------------------------------------

    def drain(self) -> tuple[list[tuple[int, bytes]], list[tuple[int, int, str]], bool]:
        """What the host must do now: ``(frames, closes, listing_changed)``.

        A kick of a player who is away (no socket to close) ends their grace here; a
        close for a player no longer seated is dropped. ``crashed`` stays set.
        """
        out = self.out
        frames, out.frames = out.frames, []
        closes, out.closes = out.closes, []
        changed, out.listing_changed = out.listing_changed, False
        out.pending = self.crashed is not None
        live = []
        for pid, code, reason in closes:
            seat = self.seats.get(pid)
            if seat is None:
                continue
            if seat.dropped_at is not None:
                seat.dropped_at = -1e18  # kicked while away: the next expire() frees it
                seat.kicked = (code, reason)  # and a rejoin before that is closed with it
            else:
                live.append((pid, code, reason))
        return frames, live, changed

    def dispose(self) -> None:
        """The room is going away: ``on_dispose`` (an exception there is only logged)."""
        try:
            self.room.on_dispose()
        except Exception:
            log.exception("room %s: on_dispose raised", self.room.room_id,
                          extra={"room_id": self.room.room_id})

    def _failed(self, exc: Exception) -> None:
        """A hook raised: the game's ``on_error`` decides whether the room carries on."""
        room = self.room
        if self.crashed is not None:
            return
        try:
            keep = room.on_error(exc) is True
        except Exception as again:
            keep, exc = False, again
        if keep:
            log.warning("room %s (%s): a hook raised; on_error kept the room", room.room_id,
                        room.game, exc_info=exc, extra={"room_id": room.room_id})
            return
        log.error("room %s (%s) crashed in a hook; closing it", room.room_id, room.game,
                  exc_info=exc, extra={"room_id": room.room_id})
        self.crashed = self.out.crashed = exc
        self.out.pending = True
