"""The Room API: what a game author subclasses. Hooks to override, helpers to call.

A room owns a :class:`~gameserver.core.world.World` and its players. The
framework (:mod:`gameserver.core.engine`) calls the hooks below; the game
writes rules only::

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

        @message("tag", int)
        def on_tag(self, player, target_id):
            ...  # a typed room message, validated before it runs

        def update(self, dt):
            ...  # the fixed step

Hook order for a player: ``on_join_request`` (may raise :class:`JoinRefused`),
``on_join``, then any number of ``on_input`` and message handlers (with ``on_drop``
and ``on_rejoin`` around a lost connection), then ``on_leave``. For the room:
``on_create`` first, ``on_dispose`` last, and ``update`` once per tick in between.

Helpers never reach a socket: ``send``, ``broadcast``, ``kick``, ``set_metadata``
and ``lock`` record what should happen in the room's :class:`Outbox`, and the
host carries it out in order once the hook returns. That is why they work from
every hook, ``on_join`` included (what it sends follows the welcome).

Everything here is public and meant for the game: the framework's own state
(seats, input queues, credits, encoding) lives in the engine, so a helper a
game names ``_step`` or ``_collect_orbs`` cannot collide with it.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from gameserver.core import codec
from gameserver.core.world import Entity, World


class JoinRefused(Exception):
    """Raised by ``on_join_request`` to refuse a player; the message is shown to them."""


class InvalidOption(ValueError):
    """Raised by ``on_create``: the options are refused, matchmaking answers 400."""


class InvalidInput(ValueError):
    """Raised by ``validate_input`` or a message handler: the sender gets an error, nothing
    else happens."""


class Player:
    """One seat in a room, from join to leave. The game keeps its own state in ``data``."""

    __slots__ = ("ack", "auth", "connected", "data", "id", "name", "options")

    def __init__(self, player_id: int, name: str, options: dict[str, Any] | None = None,
                 auth: dict[str, Any] | None = None) -> None:
        self.id = player_id
        self.name = name
        self.options = options or {}
        self.auth = auth  # the claims of a signed join token, when the server requires one
        self.data: dict[str, Any] = {}  # the game's own per-player state
        self.connected = True  # False while dropped and awaiting a reconnection
        self.ack = 0  # the last input seq applied

    def __repr__(self) -> str:
        return f"Player(id={self.id}, name={self.name!r})"


MAX_OUTBOX_FRAMES = 4096  # direct messages held between two drains; past it they are dropped


class Outbox:
    """What a room's helpers decided, waiting for the host. Plain data, no callbacks.

    ``frames`` and ``closes`` are per player (by id), in the order the helpers ran;
    ``events`` go to everyone with the next update; ``listing_changed`` says the
    room's listing (metadata, lock) must be republished. ``pending`` is set by
    everything except events, so the host checks one flag after each call.
    """

    __slots__ = ("closes", "crashed", "events", "frames", "listing_changed", "pending",
                 "wakes")

    def __init__(self) -> None:
        self.frames: list[tuple[int, bytes]] = []
        self.closes: list[tuple[int, int, str]] = []
        self.events: list[Any] = []
        self.listing_changed = False
        self.crashed: BaseException | None = None  # set by the engine, not by helpers
        self.pending = False
        self.wakes: list[int] = []  # a quiet room's timers: ticks it asked to run (a heap)

    def frame(self, player_id: int, payload: bytes) -> None:
        if len(self.frames) < MAX_OUTBOX_FRAMES:
            self.frames.append((player_id, payload))
            self.pending = True

    def close(self, player_id: int, code: int, reason: str) -> None:
        self.closes.append((player_id, code, reason[:120]))
        self.pending = True


H = TypeVar("H", bound=Callable[..., Any])
BodySpec = type | tuple[type, ...] | Callable[[Any], Any] | None


def message(kind: str, body: BodySpec = None) -> Callable[[H], H]:
    """Declare a method as the handler of room messages of ``kind``::

        @message("chat", str)
        def on_chat(self, player, text): ...

    ``body`` checks the message body before the handler runs: a type or a tuple of
    types (``isinstance``; ``bool`` is not an ``int`` here), or a function that returns
    the converted body or raises :class:`InvalidInput` (or ``ValueError``/``TypeError``).
    A refused body, or a kind no handler takes, gets the sender an ``invalid_input``
    error and nothing else happens.
    """
    if not 0 < len(kind) <= codec.MAX_KIND_LEN:
        raise ValueError(f"a message kind is 1-{codec.MAX_KIND_LEN} characters: {kind!r}")

    def mark(handler: H) -> H:
        handler.__gameserver_message__ = (kind, body)  # type: ignore[attr-defined]
        return handler
    return mark


def check_body(kind: str, spec: BodySpec, body: Any) -> Any:
    """``body`` as the handler of ``kind`` takes it, or :class:`InvalidInput`."""
    if spec is None:
        return body
    if isinstance(spec, type | tuple):
        types = spec if isinstance(spec, tuple) else (spec,)
        if isinstance(body, types) and not (type(body) is bool and bool not in types):
            return body
        names = " or ".join(t.__name__ for t in types)
        raise InvalidInput(f"a {kind!r} message takes a {names} body")
    try:
        return spec(body)
    except InvalidInput:
        raise
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"bad {kind!r} message: {exc}"[:200]) from None


class Room:
    """Base class of a game room. Override the hooks; call the helpers."""

    # -- set by the game ------------------------------------------------------
    game: ClassVar[str] = ""  # the name rooms are created and matched by
    max_players: ClassVar[int] = 8
    # Creation options a room is matched by: ``join_or_create`` (and ``join`` without a
    # room id) places a player only in a room created with equal values (as JSON) for
    # these keys; a key the request leaves out matches only rooms created without it.
    # E.g. ``("world",)``: a player asking for a large world never lands in a small one.
    # A dict gives each key its default: with ``{"world": "small"}`` a request without
    # "world" and one with "small" share rooms.
    match_by: ClassVar[tuple[str, ...] | dict[str, Any]] = ()
    max_spectators: ClassVar[int | None] = None  # None: the server's --max-spectators
    # What spectators see of a game that uses views: "public" (what everyone sees), or
    # "nearby": that plus every interest cell, the whole map (never groups' or owners'
    # entities, nor Private fields). "nearby" lets a spectator tab see the whole map.
    spectator_view: ClassVar[str] = "public"
    record: ClassVar[bool] = True  # recorded when the server has --record; False: never
    tick_rate: ClassVar[float | None] = None  # None: the server's --tick-rate
    entity_types: ClassVar[tuple[type[Entity], ...]] = ()
    max_pending_inputs: ClassVar[int] = 32  # queued inputs per player before refusing more
    # A player's inputs are applied one per tick from a buffer whose depth (1 to this
    # many ticks) is learned from how unevenly they arrive (core/inputs.py).
    input_buffer: ClassVar[int] = 3
    input_repeat: ClassVar[int] = 2  # ticks on_input_missing repeats a late input, by default
    # The game's own browser page: a directory with an index.html (and its scripts), served
    # at /play/<game>/ next to /sdk/gameserver.js. Relative to the module defining the class.
    page: ClassVar[str | None] = None
    # A quiet room sends an update only at a tick where something changed (entities,
    # events, a player's ack, a socket needing its snapshot) and, when nothing happens,
    # stops ticking until a player does something, a seat changes, or a timer it set with
    # wake_at/wake_in is due: a turn-based game between moves costs next to nothing.
    # ``tick`` still follows the schedule (it jumps over the ticks slept through), but
    # ``update`` runs only for the ticks that run. Real-time games keep False.
    quiet: ClassVar[bool] = False
    # A quiet room with nothing to send sends each socket a keep-alive (QUIET) at least
    # this often, in seconds, so a client tells a quiet room from a lost connection.
    keepalive: ClassVar[float] = 2.0
    # kind -> (method name, body spec), from the @message handlers of the class and its bases
    message_handlers: ClassVar[dict[str, tuple[str, BodySpec]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.spectator_view not in ("public", "nearby"):
            raise TypeError(f"{cls.__name__}.spectator_view is 'public' or 'nearby', "
                            f"not {cls.spectator_view!r}")
        handlers = dict(cls.message_handlers)
        for name, value in vars(cls).items():
            declared = getattr(value, "__gameserver_message__", None)
            if declared is not None:
                kind, spec = declared
                handlers[kind] = (name, spec)
        cls.message_handlers = handlers

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
        self.__outbox = Outbox()  # name-mangled: a game's own attributes cannot shadow it

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

    def on_input_missing(self, player: Player, last: Any, missed: int) -> Any:
        """A tick came while ``player`` was sending inputs, and theirs has not arrived.

        ``last`` is the input applied at the tick before (or stood in for it), ``missed``
        counts the ticks since one of the player's inputs last arrived (1, 2, ...: a late
        input that arrives after its stand-in starts the count again). Return an input to apply in
        its place: it is acknowledged as the missing one, which is dropped when it comes.
        Return None to let the tick pass without one: the player catches up afterwards.
        The default repeats ``last`` for ``input_repeat`` ticks, which is right for held
        controls (a steering direction); a game of discrete commands returns None.
        """
        return last if missed <= self.input_repeat else None

    def on_message(self, player: Player, kind: str, body: Any) -> None:
        """A room message no ``@message`` handler takes; raise :class:`InvalidInput` to
        refuse it (the default refuses every such kind)."""
        raise InvalidInput(f"this room takes no {kind!r} messages")

    def update(self, dt: float) -> None:
        """Advance the game by one fixed step of ``dt`` seconds."""

    def on_drop(self, player: Player) -> None:
        """The player's connection was lost; their seat is kept for a reconnection."""

    def on_rejoin(self, player: Player) -> None:
        """A dropped player reconnected; they get a snapshot with the next update."""

    def on_leave(self, player: Player, consented: bool) -> None:
        """The player left (``consented``), or dropped and did not come back in time."""

    def on_error(self, exc: Exception) -> bool:
        """A hook raised ``exc`` (anything but :class:`InvalidInput`/:class:`JoinRefused`).

        Return True to keep the room running: the failed call is abandoned (an input
        or message is dropped, a tick's update is cut short, a join is refused). The
        default returns False: the room closes, every player gets 1011 and other rooms
        carry on. The exception is logged either way.
        """
        return False

    def on_dispose(self) -> None:
        """The room is going away; release what it holds."""

    def client_config(self) -> dict[str, Any]:
        """Game constants the client needs (sent in the welcome message)."""
        return {}

    # -- helpers (call) ---------------------------------------------------------

    def broadcast(self, kind: str, body: Any) -> None:
        """Send an event to every player with the next update (encoded once)."""
        self.__outbox.events.append([kind, body])

    def send(self, player: Player, kind: str, body: Any) -> None:
        """Send a message to one player (from ``on_join``/``on_rejoin``: after the welcome).

        Best effort: a player whose connection is behind or gone does not get it."""
        self.__outbox.frame(player.id, codec.encode(codec.S_MESSAGE, kind, body))

    def wake_at(self, tick: int) -> None:
        """A quiet room's timer: run the tick numbered ``tick`` (``update`` is called with
        ``self.tick == tick``) even if nothing else happens by then. Each call is one
        timer; one for a tick already run is ignored. Nothing to do in a room that is not
        ``quiet`` (it runs every tick).

        ``self.tick`` is the tick running in ``update``, and the next one to run in any
        other hook; ``wake_at(self.tick + 1)`` in ``update`` asks for the next tick."""
        if tick >= self.tick:
            heapq.heappush(self.__outbox.wakes, int(tick))

    def wake_in(self, seconds: float) -> None:
        """:meth:`wake_at` the first tick at least ``seconds`` from the next one."""
        self.wake_at(self.tick + max(0, math.ceil(seconds * self.rate - 1e-9)))

    def set_metadata(self, **values: Any) -> None:
        """Update the metadata shown in the room listing."""
        self.metadata.update(values)
        self.__outbox.listing_changed = self.__outbox.pending = True

    def lock(self) -> None:
        """Stop matchmaking from placing new players here."""
        self.locked = True
        self.__outbox.listing_changed = self.__outbox.pending = True

    def unlock(self) -> None:
        self.locked = False
        self.__outbox.listing_changed = self.__outbox.pending = True

    def kick(self, player: Player, reason: str = "kicked") -> None:
        """Close the player's socket (4003) and give up their seat; works from any hook."""
        self.__outbox.close(player.id, codec.CLOSE_KICKED, reason)


def outbox_of(room: Room) -> Outbox:
    """The engine's handle on what ``room``'s helpers recorded."""
    return room._Room__outbox  # type: ignore[attr-defined,no-any-return]
