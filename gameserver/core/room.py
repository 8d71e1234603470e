"""The Room API: what a game author subclasses. Pure: no sockets, no event loop.

A room owns a :class:`~gameserver.core.world.World` and its players. The framework
calls the hooks below; the game writes rules only::

    class Tag(Room):
        game = "tag"
        max_players = 8
        entity_types = (Runner,)

        def on_join(self, player):
            player.data["runner"] = self.world.spawn(Runner())

        def validate_input(self, raw):
            ...  # return the parsed input or raise InvalidInput

        def on_input(self, player, data):
            ...  # applied in order, once per tick at most per input credit

        def update(self, dt):
            ...  # the fixed step

Hook order for a player: ``on_join_request`` (may raise :class:`JoinRefused`),
``on_join``, then any number of ``on_input`` / ``on_message`` (with ``on_drop`` and
``on_rejoin`` around a lost connection), then ``on_leave``. For the room:
``on_create`` first, ``on_dispose`` last, and ``update`` once per tick in between.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, ClassVar

from gameserver.core import codec
from gameserver.core.world import Entity, World


class JoinRefused(Exception):
    """Raised by ``on_join_request`` to refuse a player; the message is shown to them."""


class InvalidOption(ValueError):
    """Raised by ``on_create``: the options are refused, matchmaking answers 400."""


class InvalidInput(ValueError):
    """Raised by ``validate_input`` or ``on_message``: the sender gets an error, nothing else."""


MAX_HELD_MESSAGES = 64  # messages a hook may send a player before its socket is attached


class Player:
    """One seat in a room, from join to leave."""

    __slots__ = ("_credit", "_inputs", "_kick", "_last_seq", "_outbox", "_send", "ack", "auth",
                 "connected", "data", "id", "name", "options")

    def __init__(self, player_id: int, name: str, options: dict[str, Any] | None = None,
                 auth: dict[str, Any] | None = None) -> None:
        self.id = player_id
        self.name = name
        self.options = options or {}
        self.auth = auth  # the claims of a signed join token, when the server requires one
        self.data: dict[str, Any] = {}  # the game's own per-player state
        self.connected = True  # False while dropped and awaiting a reconnection
        self.ack = 0  # the last input seq applied
        self._inputs: deque[tuple[int, Any]] = deque()  # (seq, validated input)
        self._last_seq = 0
        self._credit = 0
        # Hooks run before the player's socket is attached (on_join, on_rejoin): what they
        # send, and a kick, wait here until the runtime writes the welcome, then follow it.
        self._outbox: list[bytes] = []
        self._kick: str | None = None
        self._send: Callable[[bytes], None] = self._hold

    def _hold(self, data: bytes) -> None:
        if len(self._outbox) < MAX_HELD_MESSAGES:
            self._outbox.append(data)

    def __repr__(self) -> str:
        return f"Player(id={self.id}, name={self.name!r})"


def _discard(_: bytes) -> None:
    pass


class Room:
    """Base class of a game room. Override the hooks; call the helpers."""

    # -- set by the game ------------------------------------------------------
    game: ClassVar[str] = ""  # the name rooms are created and matched by
    max_players: ClassVar[int] = 8
    tick_rate: ClassVar[float | None] = None  # None: the server's --tick-rate
    entity_types: ClassVar[tuple[type[Entity], ...]] = ()
    max_pending_inputs: ClassVar[int] = 32  # queued inputs per player before refusing more
    input_burst: ClassVar[int] = 3  # inputs a player may bank to catch up after jitter

    def __init__(self, room_id: str, tick_rate: float, options: dict[str, Any] | None = None,
                 private: bool = False) -> None:
        if not self.game:
            raise TypeError(f"{type(self).__name__} must set the class attribute 'game'")
        self.room_id = room_id
        self.rate = float(tick_rate)  # one type on the wire (the welcome): a float
        self.dt = 1.0 / tick_rate
        self.options = options or {}
        self.private = private
        self.locked = False
        self.metadata: dict[str, Any] = {}
        self.world = World(self.entity_types)
        self.players: dict[int, Player] = {}
        self.tick = 0
        self._events: list[Any] = []
        self._next_player_id = 1
        self._base_tick = 0
        self._last_events: list[Any] = []
        self.on_listing_change: Callable[[], None] = _nothing  # set by the runtime
        self.on_kick: Callable[[Player, str], None] = lambda _p, _r: None

    # -- hooks (override) -------------------------------------------------------

    def on_create(self, options: dict[str, Any]) -> None:
        """The room was created with the matchmaking ``options``."""

    def on_join_request(self, player: Player) -> None:
        """Raise :class:`JoinRefused` to turn the player away."""

    def on_join(self, player: Player) -> None:
        """The player holds a seat and will get a snapshot with the next update."""

    def validate_input(self, raw: Any) -> Any:
        """Check and convert a raw input payload; raise :class:`InvalidInput` if bad."""
        return raw

    def on_input(self, player: Player, data: Any) -> None:
        """Apply one validated input of ``player``; called in seq order during a tick."""

    def on_message(self, player: Player, kind: str, body: Any) -> None:
        """A typed message from a player; raise :class:`InvalidInput` to refuse it."""
        raise InvalidInput(f"this room takes no {kind!r} messages")

    def update(self, dt: float) -> None:
        """Advance the game by one fixed step of ``dt`` seconds."""

    def on_drop(self, player: Player) -> None:
        """The player's connection was lost; their seat is kept for a reconnection."""

    def on_rejoin(self, player: Player) -> None:
        """A dropped player reconnected; they get a snapshot with the next update."""

    def on_leave(self, player: Player, consented: bool) -> None:
        """The player left (``consented``), or dropped and did not come back in time."""

    def on_dispose(self) -> None:
        """The room is going away; release what it holds."""

    def client_config(self) -> dict[str, Any]:
        """Game constants the client needs (sent in the welcome message)."""
        return {}

    # -- helpers (call) ---------------------------------------------------------

    def broadcast(self, kind: str, body: Any) -> None:
        """Send an event to every player with the next update (encoded once)."""
        self._events.append([kind, body])

    def send(self, player: Player, kind: str, body: Any) -> None:
        """Send a message to one player now (from ``on_join``/``on_rejoin``: after the welcome)."""
        player._send(codec.encode(codec.S_MESSAGE, kind, body))

    def set_metadata(self, **values: Any) -> None:
        """Update the metadata shown in the room listing."""
        self.metadata.update(values)
        self.on_listing_change()

    def lock(self) -> None:
        """Stop matchmaking from placing new players here."""
        self.locked = True
        self.on_listing_change()

    def unlock(self) -> None:
        self.locked = False
        self.on_listing_change()

    def kick(self, player: Player, reason: str = "kicked") -> None:
        """Close the player's socket (4003) and give up their seat; works from any hook."""
        self.on_kick(player, reason)

    # -- framework internals ------------------------------------------------------

    def _add_player(self, name: str, options: dict[str, Any],
                    auth: dict[str, Any] | None = None) -> Player:
        """Seat a player: ``on_join_request`` then ``on_join``. May raise JoinRefused."""
        player = Player(self._next_player_id, name, options, auth)
        self.on_join_request(player)
        self._next_player_id += 1
        self.players[player.id] = player
        self.on_join(player)
        return player

    def _remove_player(self, player: Player, consented: bool) -> None:
        if self.players.pop(player.id, None) is not None:
            self.on_leave(player, consented)

    def _drop_player(self, player: Player) -> None:
        """Keep the seat, forget what was in flight: the client resends after the ack."""
        player.connected = False
        self._forget_inputs(player)
        self.on_drop(player)

    @staticmethod
    def _forget_inputs(player: Player) -> None:
        """Discard queued, unapplied inputs: the next snapshot's ack is then final."""
        player._inputs.clear()
        player._last_seq = player.ack
        player._credit = 0

    def _rejoin_player(self, player: Player) -> None:
        player.connected = True
        self.on_rejoin(player)

    def _queue_input(self, player: Player, seq: int, raw: Any) -> None:
        """Validate and queue one input. Raises ProtocolError (with the seq if refused)."""
        if seq <= player._last_seq:
            raise codec.ProtocolError(
                "stale_seq", f"input seq {seq} is not after {player._last_seq}", seq)
        if len(player._inputs) >= self.max_pending_inputs:
            raise codec.ProtocolError(
                "input_overflow", f"more than {self.max_pending_inputs} inputs are pending", seq)
        try:
            data = self.validate_input(raw)
        except InvalidInput as exc:
            raise codec.ProtocolError("invalid_input", str(exc), seq) from None
        player._last_seq = seq
        player._inputs.append((seq, data))

    def _step(self) -> None:
        """One fixed step: apply queued inputs (one per earned credit), then ``update``."""
        burst = self.input_burst
        for player in list(self.players.values()):
            credit = min(player._credit + 1, burst)
            inputs = player._inputs
            while inputs and credit:
                seq, data = inputs.popleft()
                credit -= 1
                self.on_input(player, data)
                player.ack = seq
            player._credit = credit
        self.update(self.dt)
        self.tick += 1

    def _collect(self) -> bytes:
        """This update's shared delta tail; marks the world sent."""
        created, changed, removed = self.world.collect()
        events, self._events = self._events, []
        self._last_events = events  # a snapshot taken now carries them too
        base, self._base_tick = self._base_tick, self.tick
        return codec.encode_delta_tail(self.tick, base, created, changed, removed, events)

    def _snapshot_tail(self) -> bytes:
        """The full state as of the last ``_collect``, for joiners and resyncs."""
        return codec.encode_snapshot_tail(self._base_tick, self.world.snapshot(),
                                             self._last_events)

    def _welcome(self, player: Player, reconnect_token: str | None) -> bytes:
        return codec.encode(
            codec.S_WELCOME, codec.PROTOCOL_VERSION, self.room_id, self.game, player.id,
            self.rate, self.world.schema(), self.client_config(), reconnect_token)


def _nothing() -> None:
    pass
