"""The room directory: where rooms are listed and seats are counted.

Matchmaking reads and reserves through this small interface only, so a
directory shared across processes and machines can replace the in-memory
one without touching rooms. Capacity lives here: a room's ``seats`` counts
connected players plus unexpired reservations, and :meth:`reserve` checks and
takes a seat in one atomic step, which is what keeps concurrent joins from
over-filling a room.
"""

from __future__ import annotations

import heapq
import itertools
import json
import time
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol


@dataclass
class RoomListing:
    room_id: str
    game: str
    max_players: int
    private: bool = False
    locked: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)
    players: int = 0  # connected players
    seats: int = 0  # connected players + pending reservations
    node: str = ""  # the node (process) that hosts the room
    created_at: float = field(default_factory=time.time)
    spectators: int = 0  # connected spectators (they hold no seat)
    # The creation options the room is matched by (Room.match_by), those it was given
    match: dict[str, Any] = field(default_factory=dict)

    @property
    def joinable(self) -> bool:
        return not self.locked and self.seats < self.max_players

    def public_view(self) -> dict[str, Any]:
        # Reserved seats are taken too: without them a room would look joinable
        # until matchmaking answered room_full.
        view = {"room_id": self.room_id, "game": self.game, "players": self.players,
                "reserved": max(0, self.seats - self.players), "max_players": self.max_players,
                "locked": self.locked, "joinable": self.joinable, "metadata": self.metadata,
                "spectators": self.spectators}
        if self.match:  # only then: the listing of every other room stays as it was
            view["match"] = self.match
        return view


def match_values(keys: Iterable[str] | Mapping[str, Any], options: Mapping[str, Any]
                 ) -> dict[str, Any]:
    """What a room created (or a request made) with ``options`` is matched by: the
    options among ``keys`` (``Room.match_by``) that are present, or, when ``keys`` maps
    each key to its default, every key, absent ones at their default."""
    if isinstance(keys, Mapping):
        return {k: options.get(k, default) for k, default in keys.items()}
    return {k: options[k] for k in keys if k in options}


def match_key(match: Mapping[str, Any]) -> str:
    """``match`` as canonical JSON, compared as a string: equal means the same keys with
    the same JSON values (``true`` is not ``1``, as Python's ``True == 1`` would have it)."""
    return json.dumps(match, sort_keys=True, separators=(",", ":")) if match else ""


@dataclass
class Reservation:
    token: str
    room_id: str
    name: str
    options: dict[str, Any]
    expires_at: float  # time.monotonic() deadline
    auth: dict[str, Any] | None = None  # claims of the player's signed join token
    node: str = ""  # the node hosting the room, when matchmaking knows it (cluster.py)


class Directory(Protocol):
    async def add(self, listing: RoomListing) -> None: ...
    async def remove(self, room_id: str) -> None: ...
    async def get(self, room_id: str) -> RoomListing | None: ...
    async def update(self, room_id: str, *, locked: bool, metadata: dict[str, Any],
                     spectators: int = 0) -> None: ...
    async def rooms(self, game: str | None = None) -> list[RoomListing]:
        """Public rooms, oldest first."""
        ...
    async def first_joinable(self, game: str, skip: Collection[str] = (),
                             match: Mapping[str, Any] | None = None) -> RoomListing | None:
        """The oldest public room of ``game`` with a free seat whose id is not in ``skip``
        and whose ``match`` equals ``match`` (:func:`match_key`; None: ``{}``)."""
        ...
    async def reserve(self, room_id: str, reservation: Reservation) -> str | None:
        """Take a seat atomically. Returns None on success, else the refusal code
        (``no_such_room``, ``room_full`` or ``room_locked``)."""
        ...
    async def redeem(self, token: str) -> Reservation | None:
        """Turn a reservation into a connected player (single use; None if unknown or expired)."""
        ...
    async def release(self, room_id: str, seat: str = "") -> None:
        """A connected player left: free their seat (``seat``: the token it was taken
        with; a shared directory frees each seat once, however often it is asked)."""
        ...
    async def expire(self) -> list[str]:
        """Drop expired reservations, freeing their seats; returns the affected room ids."""
        ...
    async def pending(self) -> int:
        """Reservations not yet redeemed or expired."""
        ...
    async def add_pass(self, token: str, room_id: str, ttl: float) -> None:
        """A spectator's pass to ``room_id``, redeemable once within ``ttl`` seconds at the
        node hosting the room. It holds no seat."""
        ...
    async def take_pass(self, token: str) -> str | None:
        """The room a spectator's pass is for (single use; None if unknown or expired)."""
        ...


class MemoryDirectory:
    """The embedded default: one process, in memory, no services."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._rooms: dict[str, RoomListing] = {}
        self._reservations: dict[str, Reservation] = {}
        self._passes: dict[str, tuple[str, float]] = {}  # spectator token -> (room, expiry)
        self._clock = clock
        # Joinable public rooms per game and match values, oldest first, so that
        # matchmaking does not scan every room: a heap of (creation number, room id),
        # cleaned lazily (a room in it may have filled up or gone since), and the set of
        # room ids it holds. _index: each room's (game, match_key), its heap's key;
        # _members: rooms per key, so that the heap of match values no room has any more
        # goes (requests may bring any number of distinct values).
        self._count = itertools.count()
        self._number: dict[str, int] = {}
        self._index: dict[str, tuple[str, str]] = {}
        self._members: Counter[tuple[str, str]] = Counter()
        self._open: dict[tuple[str, str], list[tuple[int, str]]] = {}
        self._queued: set[str] = set()

    def _touch(self, listing: RoomListing) -> None:
        """A listing may have become joinable: queue it for matchmaking."""
        room_id = listing.room_id
        if listing.joinable and not listing.private and room_id not in self._queued:
            heap = self._open.setdefault(self._index[room_id], [])
            heapq.heappush(heap, (self._number[room_id], room_id))
            self._queued.add(room_id)

    async def pending(self) -> int:
        return len(self._reservations) + len(self._passes)

    async def add_pass(self, token: str, room_id: str, ttl: float) -> None:
        self._passes[token] = (room_id, self._clock() + ttl)

    async def take_pass(self, token: str) -> str | None:
        room_id, expires_at = self._passes.pop(token, ("", 0.0))
        return room_id if room_id in self._rooms and expires_at >= self._clock() else None

    async def add(self, listing: RoomListing) -> None:
        self._rooms[listing.room_id] = listing
        self._number[listing.room_id] = next(self._count)
        index = self._index[listing.room_id] = (listing.game, match_key(listing.match))
        self._members[index] += 1
        self._touch(listing)

    async def remove(self, room_id: str) -> None:
        self._rooms.pop(room_id, None)
        self._number.pop(room_id, None)
        index = self._index.pop(room_id, None)
        heap = self._open.get(index, []) if index is not None else []
        if index is not None:
            self._members[index] -= 1
            if self._members[index] <= 0:  # every room it names is gone
                del self._members[index]
                self._queued.difference_update(r for _, r in self._open.pop(index, []))
        if len(heap) > 2 * len(self._rooms) + 64:  # mostly gone rooms: compact it
            heap[:] = [(n, r) for n, r in heap if r in self._rooms]
            heapq.heapify(heap)
            self._queued.intersection_update(self._rooms)
        for token in [t for t, r in self._reservations.items() if r.room_id == room_id]:
            del self._reservations[token]

    async def get(self, room_id: str) -> RoomListing | None:
        listing = self._rooms.get(room_id)
        return None if listing is None else RoomListing(**asdict(listing))

    async def update(self, room_id: str, *, locked: bool, metadata: dict[str, Any],
                     spectators: int = 0) -> None:
        listing = self._rooms.get(room_id)
        if listing is not None:
            listing.locked = locked
            listing.metadata = dict(metadata)
            listing.spectators = spectators
            self._touch(listing)

    async def rooms(self, game: str | None = None) -> list[RoomListing]:
        # Copies, so that callers cannot change ours; shallow ones, as update() stores them.
        return [replace(r, metadata=dict(r.metadata), match=dict(r.match))
                for r in self._rooms.values()
                if not r.private and (game is None or r.game == game)]

    async def first_joinable(self, game: str, skip: Collection[str] = (),
                             match: Mapping[str, Any] | None = None) -> RoomListing | None:
        key = match_key(match or {})
        heap = self._open.get((game, key))
        while heap:
            number, room_id = heap[0]
            listing = self._rooms.get(room_id)
            if listing is not None and listing.joinable and self._number[room_id] == number:
                if room_id not in skip:
                    return RoomListing(**asdict(listing))
                # Rare (reserve here never loses a race): look past it, without the index.
                found = next((r for r in await self.rooms(game)
                              if r.joinable and r.room_id not in skip
                              and match_key(r.match) == key), None)
                return found
            heapq.heappop(heap)
            self._queued.discard(room_id)
        return None

    async def reserve(self, room_id: str, reservation: Reservation) -> str | None:
        listing = self._rooms.get(room_id)
        if listing is None:
            return "no_such_room"
        if listing.locked:
            return "room_locked"
        if listing.seats >= listing.max_players:
            return "room_full"
        listing.seats += 1
        self._reservations[reservation.token] = reservation
        return None

    async def redeem(self, token: str) -> Reservation | None:
        reservation = self._reservations.pop(token, None)
        if reservation is None:
            return None
        listing = self._rooms.get(reservation.room_id)
        if listing is None:
            return None
        if reservation.expires_at < self._clock():
            listing.seats -= 1
            self._touch(listing)
            return None
        listing.players += 1
        return reservation

    async def release(self, room_id: str, seat: str = "") -> None:
        listing = self._rooms.get(room_id)
        if listing is not None:
            listing.players -= 1
            listing.seats -= 1
            self._touch(listing)

    async def expire(self) -> list[str]:
        now = self._clock()
        for token in [t for t, (_, at) in self._passes.items() if at < now]:
            del self._passes[token]
        expired = [r for r in self._reservations.values() if r.expires_at < now]
        for r in expired:
            del self._reservations[r.token]
            listing = self._rooms.get(r.room_id)
            if listing is not None:
                listing.seats -= 1
                self._touch(listing)
        return sorted({r.room_id for r in expired})
