"""The room manager: game registry, matchmaking, and the rooms this process hosts.

Matchmaking answers with a seat *reservation*: a one-time, unguessable
token that holds a seat for ``reservation_ttl`` seconds until the player's
WebSocket redeems it. Seats are counted by the :class:`Directory`, atomically.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from gameserver.config import Settings
from gameserver.core.directory import (
    Directory,
    MemoryDirectory,
    Reservation,
    RoomListing,
    match_values,
)
from gameserver.core.limits import Limits
from gameserver.core.names import clean_name
from gameserver.core.room import InvalidOption, Player, Room
from gameserver.host.counters import Counters
from gameserver.host.recorder import RecordOptions
from gameserver.host.room_host import RoomHost
from gameserver.host.tokens import ReconnectTokens

log = logging.getLogger("gameserver.rooms")

MODES = ("join_or_create", "create", "join")


class MatchmakingError(Exception):
    """A matchmaking request that cannot be served; ``code`` is stable and documented."""

    def __init__(self, code: str, message: str, status: int = 400,
                 retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.retry_after = retry_after  # seconds, for rate_limited (429)


@dataclass(frozen=True)
class SpectatorPass:
    """A spectator's single-use pass: redeemed at ``/ws?watch=TOKEN`` on the room's node."""

    token: str
    room_id: str
    node: str


class DirectoryUnavailable(MatchmakingError):
    """The shared directory (Redis) cannot be reached in time; retry shortly."""

    def __init__(self, message: str) -> None:
        super().__init__("directory_unavailable", message, 503)


class Placement(Protocol):
    """Where new rooms go when several nodes share the directory (cluster.py)."""

    async def pick_node(self) -> str:
        """The node a new room should go to ("" for this one)."""
        ...

    async def create_remote(self, node: str, game: str, private: bool,
                            options: dict[str, Any]) -> str:
        """Have ``node`` create a room; its id. Raises on failure."""
        ...

    async def node_url(self, node: str) -> str:
        """A node's public base URL ("" if unknown)."""
        ...

    async def reachable(self, node: str) -> bool:
        """Whether players can be sent to ``node`` now (False: it stopped answering)."""
        ...


class RoomManager:
    def __init__(self, games: Iterable[type[Room]], *, tick_rate: float = Settings.tick_rate,
                 limits: Limits | None = None, directory: Directory | None = None,
                 node: str = "local", placement: Placement | None = None,
                 record: RecordOptions | None = None) -> None:
        self.games: dict[str, type[Room]] = {}
        for cls in games:
            self.register(cls)
        self.tick_rate = tick_rate
        self.limits = limits or Limits.from_settings(Settings())
        self.directory: Directory = directory or MemoryDirectory()
        self.node = node
        self.placement = placement  # cluster/node.py; None: one process
        self.record = record  # --record: where and how rooms are recorded; None: not
        self.room_hosts: dict[str, RoomHost] = {}
        self.counters = Counters()  # metrics: shared by every room; read by metrics.py
        self.accepting = True
        self._housekeeping: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._locks: dict[str, asyncio.Lock] = {}
        self.tokens = ReconnectTokens(self.limits.reconnect_grace)
        # The token each seated player's seat was taken with, per room: what a shared
        # directory counts (seated() is what cluster.py reconciles into Redis).
        self.seats: dict[str, dict[int, str]] = {}
        # What each room hosted here is matched by (Room.match_by), from its creation
        # options as requested: a game that changes its options cannot change it.
        self.matches: dict[str, dict[str, Any]] = {}

    def register(self, cls: type[Room]) -> None:
        if not cls.game:
            raise ValueError(f"{cls.__name__} has no 'game' name")
        if cls.game in self.games and self.games[cls.game] is not cls:
            raise ValueError(f"game {cls.game!r} is registered twice")
        self.games[cls.game] = cls

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        self._housekeeping = asyncio.get_running_loop().create_task(
            self._housekeeping_loop(), name="rooms:housekeeping")

    async def stop(self, code: int, reason: str) -> None:
        """Close every room (players get ``code``), then stop housekeeping."""
        self.accepting = False
        for room_host in list(self.room_hosts.values()):
            room_host.room.locked = True
            room_host.close(code, reason)
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._housekeeping

    async def _housekeeping_loop(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            try:
                await self.keep_house()
            except DirectoryUnavailable:
                pass  # reported once per outage (cluster.py); the next sweep catches up
            except Exception:
                log.exception("housekeeping failed")

    async def keep_house(self) -> None:
        """Expire reservations; dispose rooms empty for longer than the grace."""
        await self.directory.expire()
        now = time.monotonic()
        for room_host in list(self.room_hosts.values()):
            for player_id in room_host.expire_drops(now):
                await self.seat_freed(room_host, player_id)
            if room_host.empty_since is None or now - room_host.empty_since < \
                    self.limits.empty_room_grace:
                continue
            listing = await self.directory.get(room_host.room_id)
            if listing is None or listing.seats == 0:
                log.info("room %s is empty; disposing it", room_host.room_id,
                         extra={"room_id": room_host.room_id})
                room_host.close()
            else:  # a reservation is on its way: give it its time
                room_host.empty_since = now

    # -- matchmaking -----------------------------------------------------------

    async def _admit(self, game: str, mode: str | None = None) -> type[Room]:
        """The game's class, if this server takes a player (or spectator) for it now."""
        if not self.accepting:
            raise MatchmakingError("server_draining", "this server is shutting down", 503)
        if mode is not None and mode not in MODES:
            raise MatchmakingError("bad_request", f"mode must be one of {', '.join(MODES)}")
        cls = self.games.get(game)
        if cls is None:
            raise MatchmakingError("unknown_game", f"no game named {game!r}", 404)
        # Spectator passes count too: every pending pass or seat is bounded by one limit.
        if await self.directory.pending() >= self.limits.max_reservations:
            raise MatchmakingError("too_many_reservations",
                                   "too many players are joining at once; retry shortly", 503)
        return cls

    async def spectate(self, game: str, room_id: str | None = None) -> SpectatorPass:
        """A pass to watch a room of ``game``: ``room_id``, or the live public room with
        the most players. A spectator holds no seat; its room's node redeems the pass."""
        await self._admit(game)
        if room_id is not None:
            listing = await self.directory.get(room_id)
        else:
            live = [r for r in await self.directory.rooms(game) if r.players > 0]
            listing = max(live, key=lambda r: (r.players, -r.created_at), default=None)
        if listing is None or listing.game != game:
            raise MatchmakingError("no_such_room", f"no live {game} room"
                                   + (f" {room_id!r}" if room_id else ""), 404)
        local = self.room_hosts.get(listing.room_id)
        if local is not None and local.spectators_full:
            raise MatchmakingError("spectators_full", "the room has all the spectators it "
                                   "takes", 409)
        if listing.node != self.node and not await self.reachable(listing.node):
            raise MatchmakingError("no_such_room", f"the node of room {listing.room_id!r} "
                                   "does not answer", 404)
        token = secrets.token_urlsafe(24)
        await self.directory.add_pass(token, listing.room_id, self.limits.reservation_ttl)
        return SpectatorPass(token, listing.room_id, listing.node)

    async def redeem_pass(self, token: str) -> RoomHost | None:
        """The room hosted here that a spectator's pass is for (single use)."""
        room_id = await self.directory.take_pass(token)
        room_host = self.room_hosts.get(room_id) if room_id else None
        return None if room_host is None or room_host.closed else room_host

    async def matchmake(self, game: str, mode: str, *, name: str, room_id: str | None = None,
                        private: bool = False, options: dict[str, Any] | None = None,
                        auth: dict[str, Any] | None = None,
                        may_create: Callable[[], float] | None = None) -> Reservation:
        """A seat reservation. ``may_create`` is asked before a room is created for the
        request: 0 to go ahead (the caller counts it), else seconds to wait."""
        cls = await self._admit(game, mode)
        options = options or {}
        seat = (name, options, auth)
        if mode == "create":
            _check_create(may_create)
            return await self._reserve(*await self._create_anywhere(cls, private, options),
                                       *seat)
        if room_id is not None:
            if mode != "join":
                raise MatchmakingError("bad_request", "room_id goes with mode 'join'")
            listing = await self.directory.get(room_id)
            if listing is None or listing.game != game:
                raise MatchmakingError("no_such_room", f"no {game} room {room_id!r}", 404)
            return await self._reserve(room_id, listing.node, *seat)
        # Only rooms created with the same values of the game's match_by options.
        match = match_values(cls.match_by, options)
        # One find-or-create at a time per game in this process, so a burst of requests
        # packs rooms instead of each creating its own.
        async with self._locks.setdefault(game, asyncio.Lock()):
            # Oldest joinable public room first; a lost race for its last seat (to another
            # node) moves on to the next.
            lost: list[str] = []
            while len(lost) < 8 and (listing := await self.directory.first_joinable(
                    game, lost, match)):
                with contextlib.suppress(MatchmakingError):
                    return await self._reserve(listing.room_id, listing.node, *seat)
                lost.append(listing.room_id)
            if mode == "join":
                raise MatchmakingError("no_such_room", f"no {game} room"
                                       + (f" for {match}" if match else "")
                                       + " has a free seat", 404)
            _check_create(may_create)
            return await self._reserve(*await self._create_anywhere(cls, private, options),
                                       *seat)

    async def _create_anywhere(self, cls: type[Room], private: bool, options: dict[str, Any]
                               ) -> tuple[str, str]:
        """A new room on the least-loaded node (this one without a cluster): (id, node)."""
        if self.placement is not None:
            node = await self.placement.pick_node()
            if node and node != self.node:
                try:
                    return await self.placement.create_remote(node, cls.game, private,
                                                              options), node
                except Exception as exc:
                    log.warning("node %s could not create a %s room (%s); creating it here",
                                node, cls.game, exc)
        return (await self._create(cls, private, options)).room_id, self.node

    async def create_room(self, game: str, private: bool, options: dict[str, Any]) -> str:
        """Create a room in this process for another node's matchmaker; its id."""
        if not self.accepting:
            raise MatchmakingError("server_draining", "this server is shutting down", 503)
        cls = self.games.get(game)
        if cls is None:
            raise MatchmakingError("unknown_game", f"no game named {game!r}", 404)
        return (await self._create(cls, private, options)).room_id

    async def reachable(self, node: str) -> bool:
        """Whether the node hosting a room answers (always True without a cluster)."""
        return self.placement is None or not node or await self.placement.reachable(node)

    async def node_url(self, node: str) -> str:
        """The public base URL of the node hosting a room; "" without a cluster."""
        if self.placement is None or not node:
            return ""
        return await self.placement.node_url(node)

    async def _create(self, cls: type[Room], private: bool, options: dict[str, Any]
                      ) -> RoomHost:
        if len(self.room_hosts) >= self.limits.max_rooms:
            raise MatchmakingError("too_many_rooms",
                                   f"this server hosts its limit of {self.limits.max_rooms} rooms",
                                   503)
        room_id = secrets.token_urlsafe(6)
        match = match_values(cls.match_by, options)
        try:
            room = cls(room_id, cls.tick_rate or self.tick_rate, options, private)
            room.on_create(options)  # may lower max_players, e.g. from the options
        except InvalidOption as exc:  # the client's mistake: a 400, not a crash
            raise MatchmakingError("invalid_option", str(exc)[:200], 400) from None
        except Exception:
            log.exception("creating a %s room failed", cls.game)
            raise MatchmakingError("create_failed", f"the {cls.game} room could not be created",
                                   500) from None
        room.max_players = max(1, min(room.max_players, self.limits.max_players))  # type: ignore[misc]
        record = self.record if self.record is not None and cls.record is not False else None
        room_host = RoomHost(room, self.limits, counters=self.counters, tokens=self.tokens,
                             on_listing=self._listing_changed, on_closed=self._closed,
                             record=record)
        self.room_hosts[room_id] = room_host
        self.matches[room_id] = match
        try:
            await self.directory.add(self.listing(room_host))
        except DirectoryUnavailable:
            del self.room_hosts[room_id]  # never started; a late add is pruned (cluster.py)
            del self.matches[room_id]
            raise
        room_host.start()
        log.info("created %s room %s%s", cls.game, room_id, " (private)" if private else "",
                 extra={"room_id": room_id})
        return room_host

    async def _reserve(self, room_id: str, node: str, name: str, options: dict[str, Any],
                       auth: dict[str, Any] | None) -> Reservation:
        if node != self.node and not await self.reachable(node):
            raise MatchmakingError("no_such_room", f"the node of room {room_id!r} does not "
                                   "answer", 404)
        reservation = Reservation(secrets.token_urlsafe(24), room_id, name, options,
                                  time.monotonic() + self.limits.reservation_ttl, auth, node)
        refused = await self.directory.reserve(room_id, reservation)
        if refused == "room_full":
            raise MatchmakingError("room_full", "the room is full", 409)
        if refused == "room_locked":
            raise MatchmakingError("room_locked", "the room takes no new players", 409)
        if refused is not None:
            raise MatchmakingError("no_such_room", f"no room {room_id!r}", 404)
        return reservation

    # -- sockets -----------------------------------------------------------------

    async def redeem(self, token: str) -> tuple[Reservation, RoomHost] | None:
        """The reservation behind ``token`` and its room, if both are alive (single use)."""
        reservation = await self.directory.redeem(token)
        if reservation is None:
            return None
        room_host = self.room_hosts.get(reservation.room_id)
        if room_host is None or room_host.closed or \
                len(room_host.room.players) >= room_host.room.max_players:  # never over-fill
            with contextlib.suppress(DirectoryUnavailable):
                await self.directory.release(reservation.room_id, token)
            return None
        return reservation, room_host

    def seat_taken(self, room_host: RoomHost, player_id: int, token: str) -> None:
        """The player redeemed ``token`` (call at once, with no await since redeem)."""
        self.seats.setdefault(room_host.room_id, {})[player_id] = token

    def seated(self, room_id: str) -> list[str]:
        """The tokens of the seats taken in a room this process hosts."""
        return list(self.seats.get(room_id, {}).values())

    async def seat_freed(self, room_host: RoomHost, player_id: int | None = None,
                         token: str = "") -> None:
        """A seat is free: ``player_id`` left, or ``token`` was redeemed but not seated.

        If the directory cannot be told now, the node's next reconcile tells it."""
        if player_id is not None:
            self.tokens.forget(room_host.room_id, player_id)
            token = self.seats.get(room_host.room_id, {}).pop(player_id, token)
        with contextlib.suppress(DirectoryUnavailable):
            await self.directory.release(room_host.room_id, token)

    def resume(self, token: str) -> tuple[RoomHost, Player] | None:
        """The room and player a reconnection token is for (single use; None if stale)."""
        seat = self.tokens.redeem(token)
        if seat is None:
            return None
        room_host = self.room_hosts.get(seat[0])
        player = room_host.room.players.get(seat[1]) if room_host and not room_host.closed else None
        if room_host is None or player is None:
            return None
        return room_host, player

    def listing(self, room_host: RoomHost) -> RoomListing:
        """A room hosted here as the directory lists it when it is added."""
        room = room_host.room
        return RoomListing(room_host.room_id, room.game, room.max_players,
                           private=room.private, locked=room.locked,
                           metadata=dict(room.metadata), node=self.node,
                           match=dict(self.matches.get(room_host.room_id, {})))

    def _listing_changed(self, room_host: RoomHost) -> None:
        room = room_host.room
        self._spawn(self.directory.update(room_host.room_id, locked=room.locked,
                                          metadata=dict(room.metadata),
                                          spectators=len(room_host.spectators)))

    def _closed(self, room_host: RoomHost) -> None:
        if self.room_hosts.pop(room_host.room_id, None) is not None:
            self.counters.fold(room_host)  # metrics: keep a closed room's counts
        for player_id in list(room_host.room.players):
            self.tokens.forget(room_host.room_id, player_id)
        self.seats.pop(room_host.room_id, None)
        self.matches.pop(room_host.room_id, None)
        self._spawn(self.directory.remove(room_host.room_id))
        if room_host.recorder is not None:  # stop() waits for the recording to be on disk
            self._spawn(room_host.wait_closed())

    # -- helpers -------------------------------------------------------------------

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None and \
                not isinstance(task.exception(), DirectoryUnavailable):  # reconciled later
            log.error("directory update failed", exc_info=task.exception())

    def summary(self) -> list[dict[str, Any]]:
        return [r.info() for r in self.room_hosts.values()]


def _check_create(may_create: Callable[[], float] | None) -> None:
    wait = may_create() if may_create is not None else 0.0
    if wait > 0:
        raise MatchmakingError("rate_limited", "too many rooms created by this client; join "
                               "one or retry later", 429, retry_after=wait)


def clamp_name(raw: Any, default: str = "player") -> str:
    """A display name: ``default`` when none is given, else ``raw`` cleaned (names.py).

    A name with nothing visible left after cleaning is refused (400 ``bad_request``).
    """
    if not isinstance(raw, str):
        return default
    name = clean_name(raw)
    if not name:
        raise MatchmakingError("bad_request", "'name' must have visible characters")
    return name

